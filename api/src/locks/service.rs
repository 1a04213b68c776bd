//! Locking and unlocking months, listing locks, and the check every write makes before it
//! changes a unit's figures for a day or period.
use crate::audit::service::{AuditAction, Change, RequestId, record, reread};
use crate::auth::{Action, Columns, Last, Principal, allows, scope_condition};
use crate::db::{OnUnique, Unique, Where, placeholders, query};
use crate::error::{Error, Problems, Result};
use crate::ids;
use crate::paging::{PageArgs, Window};
use crate::text;
use chrono::{Datelike, Months, NaiveDate, Utc};
use cnscd_entity::period_lock;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, ModelTrait,
    QueryFilter, Set, Value,
};

/// One lock per unit and period.
const PERIOD_LOCK: Unique = Unique {
    name: "ux_period_lock",
    columns: "period_lock.unit_code, period_lock.period_start, period_lock.period_end",
};

/// Columns of `period_lock l` for area conditions: a lock concerns every day of its period.
pub const LOCK_COLUMNS: Columns<'static> = Columns {
    unit: "l.unit_code",
    from: "l.period_start",
    last: Last::Through("l.period_end"),
    team: None,
    submitter: None,
};

const MAX_REASON: usize = 500;

/// A calendar month, as written in inputs: `2025-03`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Month {
    pub start: NaiveDate,
}

impl Month {
    /// Parses `YYYY-MM` (months 1900-01 to 2100-12).
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        let (y, m) = s.split_once('-')?;
        if y.len() != 4 || m.len() != 2 || !y.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit()) {
            return None;
        }
        let start = NaiveDate::from_ymd_opt(y.parse().ok()?, m.parse().ok()?, 1)?;
        (1900..=2100)
            .contains(&start.year())
            .then_some(Self { start })
    }

    /// Last day of the month.
    pub fn end(self) -> NaiveDate {
        self.start
            .checked_add_months(Months::new(1))
            .and_then(|d| d.pred_opt())
            .unwrap_or(self.start)
    }
}

impl std::fmt::Display for Month {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.start.format("%Y-%m"))
    }
}

/// How a locked period is named in messages and in the API: `2025-03` for a month, the first
/// and last day otherwise.
pub fn label(start: NaiveDate, end: NaiveDate) -> String {
    let month = Month { start };
    if start.day() == 1 && month.end() == end {
        month.to_string()
    } else {
        format!("{start} to {end}")
    }
}

/// Refuses a change to any day from `from` to `to` of a unit when that period overlaps a lock
/// of one of `units` (the unit and every unit above it): PERIOD_LOCKED, naming the unit and
/// the locked month.
pub async fn ensure_unlocked(
    db: &impl ConnectionTrait,
    units: &[String],
    from: NaiveDate,
    to: NaiveDate,
) -> Result<()> {
    if units.is_empty() {
        return Ok(());
    }
    let mut values: Vec<Value> = units.iter().map(|u| Value::from(u.clone())).collect();
    values.extend([Value::from(to), from.into()]);
    let rows = query(
        db,
        &format!(
            "SELECT unit_code, period_start, period_end FROM period_lock WHERE unit_code IN ({}) \
             AND period_start <= ? AND period_end >= ? ORDER BY period_start, unit_code LIMIT 1",
            placeholders(units.len())
        ),
        values,
    )
    .await?;
    if let Some(r) = rows.first() {
        let unit: String = r.try_get("", "unit_code")?;
        let start: NaiveDate = r.try_get("", "period_start")?;
        let end: NaiveDate = r.try_get("", "period_end")?;
        let what = if from == to {
            format!("{from}")
        } else {
            format!("{from} to {to}")
        };
        return Err(Error::PeriodLocked(format!(
            "{} is locked for unit {unit} (and everything under it); {what} cannot be changed \
             until it is unlocked",
            label(start, end)
        )));
    }
    Ok(())
}

/// Orders a write that checks locks after every lock change and every other such write that
/// committed before it, and before those that start after it: on PostgreSQL it holds the data
/// generation row (`FOR UPDATE`, no change to it) until the transaction ends; on SQLite the
/// write transaction ([`crate::db::begin_write`]) already keeps every other writer out.
/// Taken first in the transaction, before any rollup write (which takes the rollup rows and
/// the rollup generation after it).
pub async fn take_turn(txn: &sea_orm::DatabaseTransaction) -> Result<()> {
    if txn.get_database_backend() == sea_orm::DbBackend::Postgres {
        query(
            txn,
            "SELECT n FROM data_generation WHERE id = 1 FOR UPDATE",
            vec![],
        )
        .await?;
    }
    Ok(())
}

/// A lock or unlock as asked for.
#[derive(Debug, Clone)]
pub struct LockRequest {
    pub unit_code: String,
    pub month: String,
    pub reason: Option<String>,
}

/// Checks the input and the caller's right over the unit in that month; answers the unit and
/// month.
async fn check(
    db: &impl ConnectionTrait,
    principal: &Principal,
    input: &LockRequest,
    reason_required: bool,
) -> Result<(String, Month, Option<String>)> {
    let mut p = Problems::default();
    let unit = input.unit_code.trim().to_owned();
    let month = Month::parse(&input.month);
    if month.is_none() {
        p.add(
            "input.month",
            format!(
                "`{}` is not a month: expected YYYY-MM, e.g. 2025-03",
                input.month
            ),
        );
    }
    let reason = input
        .reason
        .as_deref()
        .map(text::clean)
        .filter(|r| !r.is_empty());
    match &reason {
        None if reason_required => p.add("input.reason", "a reason is required"),
        Some(r) if r.chars().count() > MAX_REASON => p.add(
            "input.reason",
            format!("reason must be at most {MAX_REASON} characters"),
        ),
        _ => {}
    }
    if let Some(m) = month {
        let today = crate::units::service::today();
        if m.start > today {
            p.add(
                "input.month",
                format!("{m} has not begun; only months that have begun can be locked"),
            );
        } else if crate::units::service::version_on(db, &unit, m.start)
            .await?
            .is_none()
        {
            p.add(
                "input.unitCode",
                format!("no administrative unit `{unit}` exists on {}", m.start),
            );
        }
    }
    p.finish()?;
    let month = month.ok_or_else(|| Error::Internal("month checked above".into()))?;
    let scope = principal.scope(Action::LockPeriods);
    for day in [month.start, month.end()] {
        // A unit that ceases within the month is checked on its last day only.
        if day != month.start
            && crate::units::service::version_on(db, &unit, day)
                .await?
                .is_none()
        {
            continue;
        }
        if !allows(db, &scope, None, &unit, day).await? {
            return Err(Error::forbidden(format!(
                "unit {unit} is not in the caller's area in {month}"
            )));
        }
    }
    Ok((unit, month, reason))
}

/// Locks a month for a unit and everything under it; audited.
pub async fn lock(
    db: &DatabaseConnection,
    principal: &Principal,
    request: Option<&RequestId>,
    input: LockRequest,
) -> Result<period_lock::Model> {
    let (unit, month, reason) = check(db, principal, &input, false).await?;
    let txn = crate::db::begin_write(db).await?;
    take_turn(&txn).await?;
    let lock = period_lock::ActiveModel {
        unit_code: Set(unit.clone()),
        period_start: Set(month.start),
        period_end: Set(month.end()),
        locked_by: Set(principal.subject.clone()),
        locked_at: Set(Utc::now()),
        reason: Set(reason),
        ..Default::default()
    }
    .insert(&txn)
    .await
    .map_err(|e| {
        e.on_unique(PERIOD_LOCK, || {
            Error::Conflict(format!("{month} is already locked for unit {unit}"))
        })
    })?;
    record(
        &txn,
        principal,
        request,
        Change {
            action: AuditAction::LockPeriod,
            entity_id: format!("{unit}:{month}"),
            unit_code: Some(unit.clone()),
            concerns: Some((lock.period_start, Some(lock.period_end))),
            before: None,
            after: serde_json::to_value(&lock).ok(),
        },
    )
    .await?;
    txn.commit().await?;
    Ok(lock)
}

/// Removes the lock of a month for a unit; audited with the reason. Answers the lock removed.
pub async fn unlock(
    db: &DatabaseConnection,
    principal: &Principal,
    request: Option<&RequestId>,
    input: LockRequest,
) -> Result<period_lock::Model> {
    let (unit, month, reason) = check(db, principal, &input, true).await?;
    let find = || {
        period_lock::Entity::find()
            .filter(period_lock::Column::UnitCode.eq(unit.clone()))
            .filter(period_lock::Column::PeriodStart.eq(month.start))
            .filter(period_lock::Column::PeriodEnd.eq(month.end()))
    };
    let Some(found) = find().one(db).await? else {
        return Err(Error::NotFound(format!(
            "{month} is not locked for unit {unit} itself (see periodLocks: a lock of a unit \
             above it is unlocked there)"
        )));
    };
    let txn = crate::db::begin_write(db).await?;
    take_turn(&txn).await?;
    let lock = reread(&txn, find(), &found, "period lock").await?;
    lock.clone().delete(&txn).await?;
    let mut before = serde_json::to_value(&lock).unwrap_or_default();
    before["unlockReason"] = serde_json::to_value(&reason).unwrap_or_default();
    record(
        &txn,
        principal,
        request,
        Change {
            action: AuditAction::UnlockPeriod,
            entity_id: format!("{unit}:{month}"),
            unit_code: Some(unit.clone()),
            concerns: Some((lock.period_start, Some(lock.period_end))),
            before: Some(before),
            after: Some(serde_json::json!({ "reason": reason })),
        },
    )
    .await?;
    txn.commit().await?;
    Ok(lock)
}

/// Filters of the `periodLocks` list.
#[derive(Debug, Default)]
pub struct LockFilter {
    /// Locks of this unit or of units under it (during the locked period).
    pub under: Option<String>,
    /// Locks of months from this one on.
    pub from: Option<Month>,
    /// Locks of months up to this one.
    pub to: Option<Month>,
}

/// The locks the caller may read, newest month first.
pub async fn list(
    db: &impl ConnectionTrait,
    principal: &Principal,
    filter: &LockFilter,
    args: &PageArgs,
) -> Result<(Vec<period_lock::Model>, Window, u64)> {
    let mut w = Where::new();
    if let Some((sql, values)) =
        scope_condition(&principal.scope(Action::ReadPeriodLocks), &LOCK_COLUMNS)
    {
        w.and(sql, values);
    }
    if let Some(u) = &filter.under {
        let (sql, values) = crate::auth::under_indexed(std::slice::from_ref(u), &LOCK_COLUMNS);
        w.and(sql, values);
    }
    if let Some(m) = filter.from {
        w.and("l.period_end >= ?", [m.start.into()]);
    }
    if let Some(m) = filter.to {
        w.and("l.period_start <= ?", [m.end().into()]);
    }
    crate::db::page::<period_lock::Entity>(
        db,
        "l",
        "period_lock l",
        "l.period_start DESC, l.unit_code, l.id",
        &w,
        args,
    )
    .await
}

/// The lock with this id, if the caller may read it.
pub async fn get(
    db: &impl ConnectionTrait,
    principal: &Principal,
    id: i64,
) -> Result<period_lock::Model> {
    let mut w = Where::new();
    w.and("l.id = ?", [id.into()]);
    if let Some((sql, values)) =
        scope_condition(&principal.scope(Action::ReadPeriodLocks), &LOCK_COLUMNS)
    {
        w.and(sql, values);
    }
    period_lock::Entity::find()
        .from_raw_sql(crate::db::stmt(
            db.get_database_backend(),
            &format!("SELECT l.* FROM period_lock l{}", w.sql()),
            w.values,
        ))
        .one(db)
        .await?
        .ok_or_else(|| {
            Error::not_found(format!(
                "no period lock {} in the caller's area",
                ids::global(ids::PERIOD_LOCK, id)
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_parse_strictly() {
        let m = Month::parse("2025-03").map(|m| (m.start, m.end()));
        assert_eq!(
            m,
            Some((
                NaiveDate::from_ymd_opt(2025, 3, 1).unwrap_or_default(),
                NaiveDate::from_ymd_opt(2025, 3, 31).unwrap_or_default()
            ))
        );
        assert_eq!(
            Month::parse("2024-02").map(|m| m.end().day()),
            Some(29),
            "leap year"
        );
        for bad in [
            "2025-3",
            "2025-13",
            "25-03",
            "2025-03-01",
            "+202-03",
            "",
            "3000-01",
        ] {
            assert!(Month::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn labels_name_months() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap_or_default();
        assert_eq!(label(d("2025-03-01"), d("2025-03-31")), "2025-03");
        assert_eq!(
            label(d("2024-01-01"), d("2024-03-31")),
            "2024-01-01 to 2024-03-31"
        );
    }
}

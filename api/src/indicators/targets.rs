//! Indicator targets: one per indicator, unit and calendar period (a whole month, quarter or
//! year), set by ADMIN anywhere and by UNIT_ADMIN for units under its area on every day of the
//! period. Values carry their targets: the indicator service reads them from its in-memory copy
//! ([`crate::memory`]), where a change to a target shows at once.
use super::periods::{self, Granularity};
use crate::audit::service::{AuditAction, Change, RequestId, record, reread};
use crate::auth::{Action, Coverage, Principal};
use crate::db::{OnUnique, Unique};

use crate::error::{Error, Problems, Result};
use chrono::{NaiveDate, Utc};
use cnscd_entity::{indicator_definition, indicator_target};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, ModelTrait,
    QueryFilter, QueryOrder, Set,
};
use std::collections::BTreeSet;

/// The targets set for `unit_codes` (and `codes`, when given) whose periods overlap
/// `from ..= to`, that the caller may read: those of units under its area on every day of the
/// period, as for indicator values. By indicator, unit, then period.
pub async fn list(
    db: &impl ConnectionTrait,
    principal: &Principal,
    codes: &[String],
    unit_codes: &[String],
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<indicator_target::Model>> {
    if unit_codes.is_empty() || from > to {
        return Ok(Vec::new());
    }
    let mut select = indicator_target::Entity::find()
        .filter(indicator_target::Column::UnitCode.is_in(unit_codes.iter().cloned()))
        .filter(indicator_target::Column::PeriodStart.lte(to))
        .filter(indicator_target::Column::PeriodEnd.gte(from));
    if !codes.is_empty() {
        select =
            select.filter(indicator_target::Column::IndicatorCode.is_in(codes.iter().cloned()));
    }
    let rows = select
        .order_by_asc(indicator_target::Column::IndicatorCode)
        .order_by_asc(indicator_target::Column::UnitCode)
        .order_by_asc(indicator_target::Column::PeriodStart)
        .order_by_asc(indicator_target::Column::PeriodEnd)
        .all(db)
        .await?;
    let scope = principal.scope(Action::ReadIndicators);
    if scope.all {
        return Ok(rows);
    }
    let (Some(first), Some(last)) = (
        rows.iter().map(|r| r.period_start).min(),
        rows.iter().map(|r| r.period_end).max(),
    ) else {
        return Ok(rows);
    };
    let units: Vec<String> = rows
        .iter()
        .map(|r| r.unit_code.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let coverage = Coverage::load(db, &scope, &units, first, last).await?;
    Ok(rows
        .into_iter()
        .filter(|r| coverage.every_day(&r.unit_code, r.period_start, r.period_end))
        .collect())
}

/// `value / target × 100` when both are known and the target is above 0.
pub fn attainment(value: Option<f64>, target: Option<f64>) -> Option<f64> {
    match (value, target) {
        (Some(v), Some(t)) if t > 0.0 => Some(v / t * 100.0),
        _ => None,
    }
}

/// Whether `[start, end]` is a whole calendar month, quarter or year.
pub fn whole_period(start: NaiveDate, end: NaiveDate) -> bool {
    [Granularity::Month, Granularity::Quarter, Granularity::Year]
        .into_iter()
        .any(|g| {
            let p = periods::containing(start, g);
            p.start == start && p.end == end
        })
}

/// A target to set (`target: None` clears it).
pub struct SetTarget {
    pub indicator: String,
    pub unit_code: String,
    pub period_start: NaiveDate,
    pub period_end: NaiveDate,
    pub target: Option<f64>,
}

/// What [`set`] answers: the indicator (its version valid for the period) and the target row
/// as it is now (`None` when cleared).
pub struct SetResult {
    pub indicator: indicator_definition::Model,
    pub target: Option<indicator_target::Model>,
}

/// Sets, changes or clears a target; audited.
pub async fn set(
    db: &DatabaseConnection,
    principal: &Principal,
    request_id: Option<&RequestId>,
    input: SetTarget,
) -> Result<SetResult> {
    let code = input.indicator.trim().to_owned();
    let unit = input.unit_code.trim().to_owned();
    let (start, end) = (input.period_start, input.period_end);
    let indicator = validate(db, &input, &code, &unit).await?;
    authorise(db, principal, &unit, start, end).await?;
    let key = TargetKey {
        code,
        unit,
        start,
        end,
    };
    let target = write(db, principal, request_id, &key, input.target).await?;
    Ok(SetResult { indicator, target })
}

/// What a target is set for: indicator, unit, period.
struct TargetKey {
    code: String,
    unit: String,
    start: NaiveDate,
    end: NaiveDate,
}

/// Checks the input: a known indicator (answered: its version for the period), a whole
/// period, a finite target of 0 or more, a unit that existed in the period.
async fn validate(
    db: &DatabaseConnection,
    input: &SetTarget,
    code: &str,
    unit: &str,
) -> Result<indicator_definition::Model> {
    let (start, end) = (input.period_start, input.period_end);
    let mut problems = Problems::default();
    let versions = super::definitions::versions(db).await?;
    let indicator = versions.get(code).and_then(|vs| {
        super::definitions::valid_for(vs, start).or_else(|| vs.iter().max_by_key(|v| v.version))
    });
    if indicator.is_none() {
        problems.add(
            "input.indicator",
            format!("unknown indicator `{code}` (see indicatorDefinitions)"),
        );
    }
    if !whole_period(start, end) {
        problems.add(
            "input.periodEnd",
            format!(
                "{start} to {end} is not a whole month, quarter or year: start on the first day \
                 and end on the last day of the same month, quarter or year"
            ),
        );
    }
    if let Some(t) = input.target
        && (!t.is_finite() || t < 0.0)
    {
        problems.add(
            "input.target",
            format!("`target` must be a finite number, 0 or more, not {t}"),
        );
    }
    let unit_versions = crate::units::service::all_versions(db, &[unit.to_owned()])
        .await?
        .remove(unit)
        .unwrap_or_default();
    if unit_versions.is_empty() {
        problems.add("input.unitCode", format!("unknown unit `{unit}`"));
    } else if start <= end
        && !unit_versions
            .iter()
            .any(|v| v.valid_from <= end && v.valid_to >= start)
    {
        problems.add(
            "input.unitCode",
            format!("unit {unit} did not exist between {start} and {end}"),
        );
    }
    problems.finish()?;
    indicator
        .cloned()
        .ok_or_else(|| Error::Internal("indicator checked above".into()))
}

/// The caller's area must hold the unit on every day of the period.
async fn authorise(
    db: &DatabaseConnection,
    principal: &Principal,
    unit: &str,
    start: NaiveDate,
    end: NaiveDate,
) -> Result<()> {
    let scope = principal.scope(Action::SetIndicatorTargets);
    if scope.all {
        return Ok(());
    }
    let coverage = Coverage::load(db, &scope, &[unit.to_owned()], start, end).await?;
    if coverage.every_day(unit, start, end) {
        Ok(())
    } else {
        Err(Error::forbidden(format!(
            "unit {unit} is not in the caller's area on every day from {start} to {end}"
        )))
    }
}

/// Inserts, updates or deletes the target row (`target`: the new value, or none to clear),
/// with its audit entry, in one transaction; answers the row after.
async fn write(
    db: &DatabaseConnection,
    principal: &Principal,
    request_id: Option<&RequestId>,
    key: &TargetKey,
    target: Option<f64>,
) -> Result<Option<indicator_target::Model>> {
    let TargetKey {
        code,
        unit,
        start,
        end,
    } = key;
    let (start, end) = (*start, *end);
    let entity_id = format!("{code}:{unit}:{start}:{end}");
    let find = || {
        indicator_target::Entity::find()
            .filter(indicator_target::Column::IndicatorCode.eq(code.clone()))
            .filter(indicator_target::Column::UnitCode.eq(unit.clone()))
            .filter(indicator_target::Column::PeriodStart.eq(start))
            .filter(indicator_target::Column::PeriodEnd.eq(end))
    };
    let txn = crate::db::begin_write(db).await?;
    let existing = match find().one(&txn).await? {
        Some(row) => Some(reread(&txn, find(), &row, "indicator target").await?),
        None => None,
    };
    let now = Utc::now();
    let identity = principal.identity();
    let after = match (&existing, target) {
        (None, None) => {
            // Nothing to clear: no change, no entry.
            txn.commit().await?;
            return Ok(None);
        }
        (None, Some(t)) => {
            let row = indicator_target::ActiveModel {
                indicator_code: Set(code.clone()),
                unit_code: Set(unit.clone()),
                period_start: Set(start),
                period_end: Set(end),
                target: Set(t),
                set_by: Set(identity),
                set_at: Set(now),
                ..Default::default()
            }
            .insert(&txn)
            .await
            .map_err(|e| conflict_or(e, &entity_id))?;
            Some(row)
        }
        (Some(row), Some(t)) => {
            let mut active: indicator_target::ActiveModel = row.clone().into();
            active.target = Set(t);
            active.set_by = Set(identity);
            active.set_at = Set(now);
            Some(active.update(&txn).await?)
        }
        (Some(row), None) => {
            row.clone().delete(&txn).await?;
            None
        }
    };
    record(
        &txn,
        principal,
        request_id,
        Change {
            action: AuditAction::SetIndicatorTarget,
            entity_id,
            unit_code: Some(unit.clone()),
            concerns: Some((start, Some(end))),
            before: existing.and_then(|r| serde_json::to_value(r).ok()),
            after: after.as_ref().and_then(|r| serde_json::to_value(r).ok()),
        },
    )
    .await?;
    txn.commit().await?;
    Ok(after)
}

/// One target per indicator, unit and period.
const TARGET: Unique = Unique {
    name: "ux_indicator_target",
    columns: "indicator_target.indicator_code, indicator_target.unit_code, \
              indicator_target.period_start, indicator_target.period_end",
};

fn conflict_or(e: sea_orm::DbErr, what: &str) -> Error {
    e.on_unique(TARGET, || {
        Error::Conflict(format!(
            "the target {what} was set by another request at the same time; read it again and retry"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap_or_default()
    }

    #[test]
    fn targets_are_for_whole_months_quarters_or_years() {
        for (s, e) in [
            ("2023-01-01", "2023-01-31"),
            ("2024-02-01", "2024-02-29"),
            ("2023-04-01", "2023-06-30"),
            ("2023-10-01", "2023-12-31"),
            ("2023-01-01", "2023-12-31"),
            ("2023-01-01", "2023-03-31"),
        ] {
            assert!(whole_period(d(s), d(e)), "{s} {e}");
        }
        for (s, e) in [
            ("2023-01-02", "2023-01-31"),
            ("2023-01-01", "2023-01-30"),
            ("2023-02-01", "2023-04-30"),
            ("2023-01-01", "2023-02-28"),
            ("2023-07-01", "2024-06-30"),
            ("2023-12-31", "2023-01-01"),
            ("2023-02-01", "2023-03-31"),
        ] {
            assert!(!whole_period(d(s), d(e)), "{s} {e}");
        }
    }

    #[test]
    fn attainment_needs_both_and_a_positive_target() {
        assert_eq!(attainment(Some(50.0), Some(200.0)), Some(25.0));
        assert_eq!(attainment(Some(50.0), Some(0.0)), None);
        assert_eq!(attainment(None, Some(10.0)), None);
        assert_eq!(attainment(Some(1.0), None), None);
    }
}

//! Monthly rollups of derived data elements, kept per unit where activities were recorded (its
//! own activities only), so indicator queries read units × months instead of raw activities.
//! The units above are summed in memory ([`crate::memory`]), following the dated
//! hierarchy: a rollup row is keyed by the first day from which its unit sat where it sits for
//! the rest of the month (the month's first day, unless the unit moved in the hierarchy within
//! the month), so every activity it counts had the same units above it.
//!
//! They are written in the same transaction as the activity, as deltas (`unit_month_delta`,
//! one row per write, holding every unit, month and element amount it adds) appended without
//! touching any existing row, so concurrent writers never wait for each other; a
//! compaction ([`compact`]) folds them into `unit_month_fact` now and then. A cell is its
//! `unit_month_fact` value plus its deltas. Everything can be rebuilt from scratch.
//!
//! A rebuild is one transaction that intake cannot interleave with: on SQLite it is a write
//! transaction (`BEGIN IMMEDIATE`, so writers queue behind it); on PostgreSQL it first locks
//! `unit_month_fact` and `unit_month_delta` in EXCLUSIVE mode, which waits for intake
//! transactions that already added deltas and makes new ones wait at their delta insert until
//! the rebuild commits (readers are not blocked; they see the old rollups until then). An
//! activity whose transaction is still open when the rebuild reads is not counted by it, and
//! adds its own delta after the rebuild commits; one that committed before is counted: never
//! both, never neither.
//!
//! Every row written (delta or rollup row) is stamped (`seq`) so that the in-memory copy can
//! catch up with what changed: on SQLite with the rollup generation (`data_generation` row 2,
//! bumped by each write: SQLite has one writer at a time, so stamps follow commit order); on
//! PostgreSQL with the writing transaction's id, which needs no shared counter (see the
//! migrations `m20261129_000020_rollup_units` and `m20261129_000040_rollup_deltas`).
use crate::db::{placeholders, query, stmt};
use crate::error::Result;
pub use crate::memory::Chain;
pub use crate::memory::rollups::{Cell, delta_cells, delta_text, month_start};
use chrono::NaiveDate;
use cnscd_entity::{activity, activity_outcome, admin_unit_closure, digital_service};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Value,
};
use std::collections::{BTreeMap, HashMap, HashSet};

/// A data element an activity adds to (its code by [`Element::code`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Element<'a> {
    Activities,
    /// Activities of one kind.
    Kind(&'a str),
    Participants,
    HouseholdsReached,
    /// People helped with one service.
    People(&'a str),
    /// Households helped with one service.
    Households(&'a str),
    /// People helped with any cashless-payment service.
    PeopleCashless,
}

impl Element<'_> {
    pub fn code(&self) -> String {
        match self {
            Self::Activities => "ACTIVITIES".into(),
            Self::Kind(k) => format!("ACTIVITIES_{k}"),
            Self::Participants => "PARTICIPANTS".into(),
            Self::HouseholdsReached => "HOUSEHOLDS_REACHED".into(),
            Self::People(s) => format!("PEOPLE_{s}"),
            Self::Households(s) => format!("HOUSEHOLDS_{s}"),
            Self::PeopleCashless => "PEOPLE_CASHLESS".into(),
        }
    }
}

/// Calls `emit` with each data element amount one activity contributes: of `kind`, with
/// `participants` and `households` reached, and outcomes as (service, people, households).
/// What [`contributions`] lists, for callers that hold an activity in another form (the bulk
/// loaders of `seed`).
pub fn contributions_of<'a>(
    kind: &'a str,
    participants: Option<i32>,
    households: Option<i32>,
    outcomes: impl IntoIterator<Item = (&'a str, i32, Option<i32>)>,
    cashless: impl Fn(&str) -> bool,
    mut emit: impl FnMut(Element<'a>, f64),
) {
    emit(Element::Activities, 1.0);
    emit(Element::Kind(kind), 1.0);
    if let Some(p) = participants {
        emit(Element::Participants, p as f64);
    }
    if let Some(h) = households {
        emit(Element::HouseholdsReached, h as f64);
    }
    let mut cashless_people = 0.0;
    for (service, people, households) in outcomes {
        emit(Element::People(service), people as f64);
        if let Some(h) = households {
            emit(Element::Households(service), h as f64);
        }
        if cashless(service) {
            cashless_people += people as f64;
        }
    }
    if cashless_people > 0.0 {
        emit(Element::PeopleCashless, cashless_people);
    }
}

/// The data element amounts one activity contributes.
pub fn contributions(
    a: &activity::Model,
    outcomes: &[activity_outcome::Model],
    cashless: &HashSet<String>,
) -> Vec<(String, f64)> {
    let mut out = Vec::with_capacity(4 + 2 * outcomes.len());
    contributions_of(
        &a.kind_code,
        a.participants,
        a.households_reached,
        outcomes
            .iter()
            .map(|o| (o.service_code.as_str(), o.people, o.households)),
        |s| cashless.contains(s),
        |e, v| out.push((e.code(), v)),
    );
    out
}

/// Codes of the services that count as cashless payment.
pub async fn cashless_services(db: &impl ConnectionTrait) -> Result<HashSet<String>> {
    Ok(digital_service::Entity::find()
        .filter(digital_service::Column::Cashless.eq(true))
        .all(db)
        .await?
        .into_iter()
        .map(|s| s.code)
        .collect())
}

/// `unit`'s place in the hierarchy on `on` (no codes when it does not exist then).
pub async fn ancestors_on(db: &impl ConnectionTrait, unit: &str, on: NaiveDate) -> Result<Chain> {
    let rows = query(
        db,
        "SELECT ancestor_code, valid_from FROM admin_unit_closure WHERE descendant_code = ? \
         AND valid_from <= ? AND valid_to >= ? ORDER BY depth",
        vec![unit.into(), on.into(), on.into()],
    )
    .await?;
    let mut chain = Chain {
        codes: Vec::with_capacity(rows.len()),
        since: NaiveDate::MIN,
    };
    for r in rows {
        chain.codes.push(r.try_get("", "ancestor_code")?);
        chain.since = chain.since.max(r.try_get("", "valid_from")?);
    }
    Ok(chain)
}

/// The first day of the rollup row an activity of `day` counts in, for a unit whose place in
/// the hierarchy holds since `since`.
pub fn span_start(day: NaiveDate, since: NaiveDate) -> NaiveDate {
    month_start(day).max(since.min(day))
}

/// Adds `sign` × the activity's contributions to `cells` (for writing several activities, or
/// an activity's old and new versions, in one [`record`]).
pub fn add(
    cells: &mut BTreeMap<Cell, f64>,
    a: &activity::Model,
    outcomes: &[activity_outcome::Model],
    since: NaiveDate,
    cashless: &HashSet<String>,
    sign: f64,
) {
    let start = span_start(a.occurred_on, since);
    for (element, v) in contributions(a, outcomes, cashless) {
        *cells
            .entry((a.unit_code.clone(), element, start))
            .or_default() += sign * v;
    }
}

/// The rollup generation, bumped (SQLite, whose one writer at a time makes generations follow
/// commit order): the stamp of what the caller's write transaction writes.
pub(crate) async fn bump(db: &impl ConnectionTrait) -> Result<i64> {
    Ok(query(
        db,
        "UPDATE data_generation SET n = n + 1 WHERE id = 2 RETURNING n",
        vec![],
    )
    .await?
    .first()
    .map(|r| r.try_get::<i64>("", "n"))
    .transpose()?
    .unwrap_or(1))
}

/// Adds a delta's cells to `cells`.
fn add_delta(cells: &mut BTreeMap<Cell, f64>, text: &str) {
    for (unit, day, amounts) in delta_cells(text) {
        for (element, v) in amounts {
            *cells.entry((unit.clone(), element, day)).or_default() += v;
        }
    }
}

/// Records amounts added to rollup cells as one delta row, inside the caller's transaction
/// (the type says so: the stamp and the row must commit together). Appending conflicts with
/// no other writer.
///
/// The row is stamped for the in-memory copy to catch up (see the module's documentation):
/// on PostgreSQL with the transaction's id (the column's default), on SQLite with a new rollup
/// generation.
pub async fn record(db: &sea_orm::DatabaseTransaction, cells: &BTreeMap<Cell, f64>) -> Result<()> {
    let Some(text) = delta_text(cells) else {
        return Ok(());
    };
    let backend = db.get_database_backend();
    if backend == sea_orm::DbBackend::Postgres {
        db.execute_raw(stmt(
            backend,
            "INSERT INTO unit_month_delta (cells) VALUES (?)",
            vec![text.into()],
        ))
        .await?;
    } else {
        let seq = bump(db).await?;
        db.execute_raw(stmt(
            backend,
            "INSERT INTO unit_month_delta (cells, seq) VALUES (?, ?)",
            vec![text.into(), seq.into()],
        ))
        .await?;
    }
    Ok(())
}

/// Adds amounts to the rollup rows themselves (`unit_month_fact`; one statement per 500
/// cells, in key order to avoid deadlocks between concurrent writers), recording that every
/// delta stamped below `horizon` is in them: for [`rebuild`] and [`compact`].
async fn add_to_rollups(
    db: &sea_orm::DatabaseTransaction,
    cells: &BTreeMap<Cell, f64>,
    horizon: i64,
) -> Result<()> {
    if cells.is_empty() {
        return Ok(());
    }
    let backend = db.get_database_backend();
    let postgres = backend == sea_orm::DbBackend::Postgres;
    let seq = if postgres {
        None
    } else {
        Some(bump(db).await?)
    };
    let entries: Vec<_> = cells.iter().collect();
    for chunk in entries.chunks(500) {
        let mut values: Vec<Value> = Vec::with_capacity(chunk.len() * 6);
        for ((unit, element, month), v) in chunk {
            values.extend([
                Value::from(unit.clone()),
                element.clone().into(),
                (*month).into(),
                (**v).into(),
                horizon.into(),
            ]);
            if let Some(seq) = seq {
                values.push(seq.into());
            }
        }
        let row = format!("({})", placeholders(if postgres { 5 } else { 6 }));
        let rows = vec![row; chunk.len()].join(", ");
        let sql = if postgres {
            // Stamped with the writing transaction's id.
            format!(
                "INSERT INTO unit_month_fact (unit_code, element_code, month_start, value, \
                 horizon, seq) \
                 SELECT v.unit_code, v.element_code, v.month_start, v.value, v.horizon, \
                 pg_current_xact_id()::text::bigint \
                 FROM (VALUES {rows}) AS v(unit_code, element_code, month_start, value, horizon) \
                 ORDER BY v.unit_code, v.element_code, v.month_start \
                 ON CONFLICT (unit_code, element_code, month_start) \
                 DO UPDATE SET value = unit_month_fact.value + excluded.value, \
                 horizon = excluded.horizon, seq = excluded.seq"
            )
        } else {
            format!(
                "INSERT INTO unit_month_fact (unit_code, element_code, month_start, value, \
                 horizon, seq) VALUES {rows} \
                 ON CONFLICT (unit_code, element_code, month_start) \
                 DO UPDATE SET value = unit_month_fact.value + excluded.value, \
                 horizon = excluded.horizon, seq = excluded.seq"
            )
        };
        db.execute_raw(stmt(backend, &sql, values)).await?;
    }
    Ok(())
}

/// Folds the deltas into the rollup rows, a slice at a time, until fewer than a slice are
/// left to fold, then prunes the deltas of folds older than [`KEEP_FOLDED`]. Returns the
/// deltas folded.
pub async fn compact(db: &sea_orm::DatabaseConnection) -> Result<u64> {
    let mut folded = 0;
    loop {
        let n = fold_slice(db, SLICE).await?;
        folded += n;
        if n < SLICE as u64 {
            break;
        }
        tokio::task::yield_now().await;
    }
    prune_folded(db, KEEP_FOLDED).await?;
    Ok(folded)
}

/// Deltas folded by one transaction: each holds the writers (SQLite's, one at a time) for a
/// few milliseconds only.
const SLICE: i64 = 100;

/// How long folded deltas are kept: a copy in memory reads every delta once, folded or not,
/// and one that has not read that far since loads anew ([`crate::memory`]).
pub const KEEP_FOLDED: std::time::Duration = std::time::Duration::from_secs(600);

/// Every delta stamped up to this is in the rollup rows (0 before the first fold).
pub async fn folded_upto(db: &impl ConnectionTrait) -> Result<i64> {
    Ok(query(
        db,
        "SELECT COALESCE(MAX(upto), 0) AS upto FROM unit_month_fold",
        vec![],
    )
    .await?
    .first()
    .map(|r| r.try_get::<i64>("", "upto"))
    .transpose()?
    .unwrap_or(0))
}

/// Folds the oldest deltas not yet folded in one transaction that adds them to their rollup
/// rows, sets the rows' `horizon` (every delta stamped below it is in the row) and notes the
/// fold (`unit_month_fold`: every delta stamped up to `upto` is in the rows). The deltas stay
/// until [`prune_folded`]. The slice is every unfolded delta stamped up to the `slice`-th
/// lowest stamp (a write's deltas fold together), among those that can no longer be joined by
/// another (on PostgreSQL stamped below the oldest transaction still running; on SQLite,
/// inside the write transaction, all). Readers see the deltas and the fold that took them in
/// together. On PostgreSQL one replica at a time (a transaction-scoped advisory lock; the
/// others skip). Returns the deltas folded.
pub async fn fold_slice(db: &sea_orm::DatabaseConnection, slice: i64) -> Result<u64> {
    let txn = crate::db::begin_write(db).await?;
    let postgres = txn.get_database_backend() == sea_orm::DbBackend::Postgres;
    let below: i64 = if postgres {
        let row = query(
            &txn,
            "SELECT pg_try_advisory_xact_lock(?) AS got, \
             pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS horizon",
            vec![COMPACTION_LOCK.into()],
        )
        .await?;
        match row.first() {
            Some(row) if row.try_get::<bool>("", "got")? => row.try_get("", "horizon")?,
            // Another replica is folding.
            _ => {
                txn.rollback().await?;
                return Ok(0);
            }
        }
    } else {
        i64::MAX
    };
    let done = folded_upto(&txn).await?;
    let last: Option<i64> = query(
        &txn,
        "SELECT MAX(seq) AS seq FROM (SELECT seq FROM unit_month_delta WHERE seq > ? \
         AND seq < ? ORDER BY seq LIMIT ?) t",
        vec![done.into(), below.into(), slice.into()],
    )
    .await?
    .first()
    .map(|r| r.try_get::<Option<i64>>("", "seq"))
    .transpose()?
    .flatten();
    let Some(last) = last else {
        txn.rollback().await?;
        return Ok(0);
    };
    let folded = query(
        &txn,
        "SELECT cells FROM unit_month_delta WHERE seq > ? AND seq <= ?",
        vec![done.into(), last.into()],
    )
    .await?;
    let mut cells: BTreeMap<Cell, f64> = BTreeMap::new();
    for r in &folded {
        add_delta(&mut cells, &r.try_get::<String>("", "cells")?);
    }
    // Every delta stamped up to `last` is in the rows now; any other is stamped past it.
    add_to_rollups(&txn, &cells, last + 1).await?;
    txn.execute_raw(stmt(
        txn.get_database_backend(),
        "INSERT INTO unit_month_fold (upto, folded_at) VALUES (?, ?)",
        vec![last.into(), chrono::Utc::now().into()],
    ))
    .await?;
    txn.commit().await?;
    Ok(folded.len() as u64)
}

/// Deletes the deltas of folds done more than `keep` ago, and notes on the latest such fold
/// that its deltas are gone (a copy that has not read up to it loads anew; the data generation
/// moves, so that every copy looks). Returns the deltas deleted.
pub async fn prune_folded(
    db: &sea_orm::DatabaseConnection,
    keep: std::time::Duration,
) -> Result<u64> {
    let cutoff = chrono::Utc::now() - chrono::Duration::from_std(keep).unwrap_or_default();
    let txn = crate::db::begin_write(db).await?;
    let upto: Option<i64> = query(
        &txn,
        "SELECT MAX(upto) AS upto FROM unit_month_fold WHERE folded_at < ? AND NOT pruned",
        vec![cutoff.into()],
    )
    .await?
    .first()
    .map(|r| r.try_get::<Option<i64>>("", "upto"))
    .transpose()?
    .flatten();
    let Some(upto) = upto else {
        txn.rollback().await?;
        return Ok(0);
    };
    let backend = txn.get_database_backend();
    let deleted = txn
        .execute_raw(stmt(
            backend,
            "DELETE FROM unit_month_delta WHERE seq <= ?",
            vec![upto.into()],
        ))
        .await?
        .rows_affected();
    txn.execute_raw(stmt(
        backend,
        "UPDATE unit_month_fold SET pruned = TRUE WHERE upto = ?",
        vec![upto.into()],
    ))
    .await?;
    txn.execute_raw(stmt(
        backend,
        "DELETE FROM unit_month_fold WHERE upto < ?",
        vec![upto.into()],
    ))
    .await?;
    // Copies look again at the data change log, where they learn what was pruned.
    txn.execute_unprepared("UPDATE data_generation SET n = n + 1 WHERE id = 1")
        .await?;
    txn.commit().await?;
    Ok(deleted)
}

/// Key of the advisory lock one compaction at a time holds (PostgreSQL).
const COMPACTION_LOCK: i64 = 0x636e_7363_6400_0001;

/// Every rollup cell as stored: the rollup rows plus the deltas not folded into them (for
/// checks).
pub async fn stored(db: &impl ConnectionTrait) -> Result<BTreeMap<Cell, f64>> {
    let mut cells: BTreeMap<Cell, f64> = BTreeMap::new();
    for r in query(
        db,
        "SELECT unit_code, element_code, month_start, value FROM unit_month_fact",
        vec![],
    )
    .await?
    {
        *cells
            .entry((
                r.try_get("", "unit_code")?,
                r.try_get("", "element_code")?,
                r.try_get("", "month_start")?,
            ))
            .or_default() += r.try_get::<f64>("", "value")?;
    }
    let folded = folded_upto(db).await?;
    for r in query(
        db,
        "SELECT cells FROM unit_month_delta WHERE seq > ?",
        vec![folded.into()],
    )
    .await?
    {
        add_delta(&mut cells, &r.try_get::<String>("", "cells")?);
    }
    Ok(cells)
}

/// Recomputes every rollup from the raw activities (after a unit import changed the
/// hierarchy, or after a bulk load), in a transaction of its own. Returns the number of
/// activities read.
pub async fn rebuild(db: &sea_orm::DatabaseConnection) -> Result<u64> {
    let txn = crate::db::begin_write(db).await?;
    let read = rebuild_in(&txn).await?;
    txn.commit().await?;
    Ok(read)
}

/// [`rebuild`] inside the caller's write transaction (a bulk load that writes the activities
/// and their rollups together).
pub async fn rebuild_in(db: &sea_orm::DatabaseTransaction) -> Result<u64> {
    if db.get_database_backend() == sea_orm::DbBackend::Postgres {
        // Outside a transaction PostgreSQL refuses LOCK TABLE: the rebuild cannot run
        // unprotected by mistake.
        db.execute_unprepared("LOCK TABLE unit_month_fact, unit_month_delta IN EXCLUSIVE MODE")
            .await?;
    }
    let (read, cells) = recount(db).await?;
    db.execute_unprepared("DELETE FROM unit_month_fact").await?;
    db.execute_unprepared("DELETE FROM unit_month_delta")
        .await?;
    db.execute_unprepared("DELETE FROM unit_month_fold").await?;
    // Every copy loads afresh (the deltas it holds are gone), even where no rollup row was
    // there to delete (SQLite's row triggers would not fire).
    db.execute_unprepared("UPDATE data_generation SET n = n + 1 WHERE id = 1")
        .await?;
    db.execute_unprepared("INSERT INTO data_change (kind, key) VALUES ('reload', '')")
        .await?;
    add_to_rollups(db, &cells, 0).await?;
    Ok(read)
}

/// Every rollup cell as the raw rows make it (recorded activities and their outcomes, on the
/// dated hierarchy), computed in memory: what [`rebuild`] writes, and what a check compares
/// the stored rollups with. Returns the number of activities read and the cells.
pub async fn recount(db: &impl ConnectionTrait) -> Result<(u64, BTreeMap<Cell, f64>)> {
    let cashless = cashless_services(db).await?;
    // When each unit's place in the hierarchy began: the days its closure rows run.
    let mut closure: HashMap<String, Vec<(NaiveDate, NaiveDate)>> = HashMap::new();
    for c in admin_unit_closure::Entity::find().all(db).await? {
        closure
            .entry(c.descendant_code)
            .or_default()
            .push((c.valid_from, c.valid_to));
    }
    let mut cells: BTreeMap<Cell, f64> = BTreeMap::new();
    let mut last_id = 0i64;
    let mut read = 0u64;
    loop {
        let batch = activity::Entity::find()
            .filter(activity::Column::Id.gt(last_id))
            .filter(activity::Column::Status.eq(cnscd_entity::codes::ActivityStatus::Recorded))
            .order_by_asc(activity::Column::Id)
            .limit(5000)
            .all(db)
            .await?;
        let Some(last) = batch.last() else { break };
        last_id = last.id;
        read += batch.len() as u64;
        let ids: Vec<Value> = batch.iter().map(|a| Value::from(a.id)).collect();
        let mut outcomes: HashMap<i64, Vec<activity_outcome::Model>> = HashMap::new();
        for o in activity_outcome::Entity::find()
            .from_raw_sql(stmt(
                db.get_database_backend(),
                &format!(
                    "SELECT * FROM activity_outcome WHERE activity_id IN ({})",
                    placeholders(ids.len())
                ),
                ids,
            ))
            .all(db)
            .await?
        {
            outcomes.entry(o.activity_id).or_default().push(o);
        }
        for a in &batch {
            let since = closure
                .get(&a.unit_code)
                .into_iter()
                .flatten()
                .filter(|(f, t)| *f <= a.occurred_on && a.occurred_on <= *t)
                .map(|(f, _)| *f)
                .max()
                .unwrap_or(a.occurred_on);
            let outs = outcomes.get(&a.id).map(Vec::as_slice).unwrap_or(&[]);
            add(&mut cells, a, outs, since, &cashless, 1.0);
        }
    }
    Ok((read, cells))
}

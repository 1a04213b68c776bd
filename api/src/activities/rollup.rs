//! Monthly rollups of derived data elements, kept per unit and every unit above it as of the
//! activity's date, so indicator queries read units × months rows instead of raw activities.
//! They are written in the same transaction as the activity, and can be rebuilt from scratch.
//!
//! A rebuild is one transaction that intake cannot interleave with: on SQLite it is a write
//! transaction (`BEGIN IMMEDIATE`, so writers queue behind it); on PostgreSQL it first locks
//! `unit_month_fact` in EXCLUSIVE mode, which waits for intake transactions that already added
//! to the rollups and makes new ones wait at their rollup upsert until the rebuild commits
//! (readers are not blocked; they see the old rollups until then). An activity whose
//! transaction is still open when the rebuild reads is not counted by it, and adds its own
//! amounts after the rebuild commits; one that committed before is counted: never both,
//! never neither.
use crate::db::{placeholders, query, stmt};
use crate::error::Result;
use chrono::{Datelike, NaiveDate};
use cnscd_entity::{activity, activity_outcome, admin_unit_closure, digital_service};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Value,
};
use std::collections::{BTreeMap, HashMap, HashSet};

/// Key of one rollup cell.
pub type Cell = (String, String, NaiveDate);

/// First day of the month of `d`.
pub fn month_start(d: NaiveDate) -> NaiveDate {
    d.with_day(1).unwrap_or(d)
}

/// The data element amounts one activity contributes.
pub fn contributions(
    a: &activity::Model,
    outcomes: &[activity_outcome::Model],
    cashless: &HashSet<String>,
) -> Vec<(String, f64)> {
    let mut out = vec![
        ("ACTIVITIES".to_owned(), 1.0),
        (format!("ACTIVITIES_{}", a.kind_code), 1.0),
    ];
    if let Some(p) = a.participants {
        out.push(("PARTICIPANTS".into(), p as f64));
    }
    if let Some(h) = a.households_reached {
        out.push(("HOUSEHOLDS_REACHED".into(), h as f64));
    }
    let mut cashless_people = 0.0;
    for o in outcomes {
        out.push((format!("PEOPLE_{}", o.service_code), o.people as f64));
        if let Some(h) = o.households {
            out.push((format!("HOUSEHOLDS_{}", o.service_code), h as f64));
        }
        if cashless.contains(&o.service_code) {
            cashless_people += o.people as f64;
        }
    }
    if cashless_people > 0.0 {
        out.push(("PEOPLE_CASHLESS".into(), cashless_people));
    }
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

/// Codes of `unit` and every unit above it on `on`, nearest first.
pub async fn ancestors_on(
    db: &impl ConnectionTrait,
    unit: &str,
    on: NaiveDate,
) -> Result<Vec<String>> {
    let rows = query(
        db,
        "SELECT ancestor_code FROM admin_unit_closure WHERE descendant_code = ? \
         AND valid_from <= ? AND valid_to >= ? ORDER BY depth",
        vec![unit.into(), on.into(), on.into()],
    )
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|r| r.try_get::<String>("", "ancestor_code").ok())
        .collect())
}

/// Adds `sign` × the activity's contributions to the rollups of its unit and the units above
/// it on its day (`ancestors`, the unit included).
pub async fn apply(
    db: &sea_orm::DatabaseTransaction,
    a: &activity::Model,
    outcomes: &[activity_outcome::Model],
    ancestors: &[String],
    cashless: &HashSet<String>,
    sign: f64,
) -> Result<()> {
    let month = month_start(a.occurred_on);
    let mut cells: BTreeMap<Cell, f64> = BTreeMap::new();
    for (element, v) in contributions(a, outcomes, cashless) {
        for unit in ancestors {
            *cells
                .entry((unit.clone(), element.clone(), month))
                .or_default() += sign * v;
        }
    }
    upsert(db, &cells).await
}

/// Adds amounts to rollup cells (one statement per 500 cells, in key order to avoid
/// deadlocks between concurrent writers), inside the caller's transaction (the type says so:
/// the stamp and the rows must commit together).
///
/// First the rollup generation is bumped, and the rows written are stamped with it: the bump
/// holds the counter until commit, so stamps follow commit order and a reader that sees a
/// value knows every row stamped up to it is committed (the in-memory copy of
/// [`crate::indicators::store`] catches up from the stamps).
pub async fn upsert(db: &sea_orm::DatabaseTransaction, cells: &BTreeMap<Cell, f64>) -> Result<()> {
    if cells.is_empty() {
        return Ok(());
    }
    let backend = db.get_database_backend();
    if backend == sea_orm::DbBackend::Postgres {
        // On PostgreSQL the first statement bumps the generation in a data-modifying CTE and
        // writes the rows with its value; the following ones (past 500 cells) read it back.
        // Either way the statement locks the rollup table before the counter row, the order
        // the rebuild takes them in too ([`rebuild_in`]).
        let entries: Vec<_> = cells.iter().collect();
        for (i, chunk) in entries.chunks(500).enumerate() {
            let (rows, values) = chunk_values(chunk, None);
            let generation = if i == 0 {
                "WITH g AS (UPDATE data_generation SET n = n + 1 WHERE id = 2 RETURNING n) "
            } else {
                "WITH g AS (SELECT n FROM data_generation WHERE id = 2) "
            };
            db.execute_raw(stmt(
                backend,
                &format!(
                    "{generation}INSERT INTO unit_month_fact \
                     (unit_code, element_code, month_start, value, seq) \
                     SELECT v.unit_code, v.element_code, v.month_start, v.value, g.n \
                     FROM g CROSS JOIN (VALUES {rows}) AS v(unit_code, element_code, month_start, value) \
                     ORDER BY v.unit_code, v.element_code, v.month_start \
                     ON CONFLICT (unit_code, element_code, month_start) \
                     DO UPDATE SET value = unit_month_fact.value + excluded.value, seq = excluded.seq"
                ),
                values,
            ))
            .await?;
        }
        return Ok(());
    }
    // SQLite has one writer at a time: the bump, then the rows.
    let seq: i64 = query(
        db,
        "UPDATE data_generation SET n = n + 1 WHERE id = 2 RETURNING n",
        vec![],
    )
    .await?
    .first()
    .map(|r| r.try_get("", "n"))
    .transpose()?
    .unwrap_or(1);
    let entries: Vec<_> = cells.iter().collect();
    for chunk in entries.chunks(500) {
        let (rows, values) = chunk_values(chunk, Some(seq));
        db.execute_raw(stmt(
            db.get_database_backend(),
            &format!(
                "INSERT INTO unit_month_fact (unit_code, element_code, month_start, value, seq) \
                 VALUES {rows} ON CONFLICT (unit_code, element_code, month_start) \
                 DO UPDATE SET value = unit_month_fact.value + excluded.value, seq = excluded.seq"
            ),
            values,
        ))
        .await?;
    }
    Ok(())
}

/// A chunk of rollup cells as `VALUES` rows and their values: unit, element, month, amount,
/// and the stamp when given.
fn chunk_values(chunk: &[(&Cell, &f64)], seq: Option<i64>) -> (String, Vec<Value>) {
    let width = if seq.is_some() { 5 } else { 4 };
    let mut values: Vec<Value> = Vec::with_capacity(chunk.len() * width);
    for ((unit, element, month), v) in chunk {
        values.extend([
            Value::from(unit.clone()),
            element.clone().into(),
            (*month).into(),
            (**v).into(),
        ]);
        if let Some(seq) = seq {
            values.push(seq.into());
        }
    }
    let row = format!("({})", vec!["?"; width].join(", "));
    (vec![row; chunk.len()].join(", "), values)
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
        db.execute_unprepared("LOCK TABLE unit_month_fact IN EXCLUSIVE MODE")
            .await?;
    }
    // Then the rollup generation: the table before the counter, the order every rollup write
    // takes them in ([`upsert`]), so neither waits for the other while holding what it needs.
    db.execute_unprepared("UPDATE data_generation SET n = n + 1 WHERE id = 2")
        .await?;
    let cashless = cashless_services(db).await?;
    let mut closure: HashMap<String, Vec<(String, NaiveDate, NaiveDate)>> = HashMap::new();
    for c in admin_unit_closure::Entity::find().all(db).await? {
        closure.entry(c.descendant_code).or_default().push((
            c.ancestor_code,
            c.valid_from,
            c.valid_to,
        ));
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
            let month = month_start(a.occurred_on);
            let ancestors: Vec<&str> = closure
                .get(&a.unit_code)
                .into_iter()
                .flatten()
                .filter(|(_, f, t)| *f <= a.occurred_on && a.occurred_on <= *t)
                .map(|(code, _, _)| code.as_str())
                .collect();
            let outs = outcomes.get(&a.id).map(Vec::as_slice).unwrap_or(&[]);
            for (element, v) in contributions(a, outs, &cashless) {
                for unit in &ancestors {
                    *cells
                        .entry(((*unit).to_owned(), element.clone(), month))
                        .or_default() += v;
                }
            }
        }
    }
    db.execute_unprepared("DELETE FROM unit_month_fact").await?;
    upsert(db, &cells).await?;
    Ok(read)
}

//! The data change log: what changed in the tables the copy holds, read past the copy's mark
//! and applied as changes.
//!
//! Triggers (migration `m20261207_000002_data_changes`) write one row per changed key in the
//! transaction of the change, stamped as the rollups are ([`super::marks`]):
//!
//! | kind | key | applied by reading again |
//! |---|---|---|
//! | `team` | a team id (a team, or one of its memberships, changed) | the teams, with their memberships, of the units it sat in and sits in: those units' steps are rebuilt |
//! | `data_value` | element, period start and end | the figures of that element and period (flows) or year (reference figures), summed again |
//! | `target` | indicator, unit, period start and end | that target |
//! | `definition` | indicator code | the code's active versions |
//! | `lock` | unit code | the unit's period locks |
//! | `kinds`, `services` | — | the (small) catalogue |
//! | `rollup` | unit, element, first day | a rollup row written without a stamp (by hand, a rebuild) |
//! | `reload` | — | everything: a unit catalogue or data element changed; a new copy is loaded |
//!
//! A change is applied by reading its rows as they are now, so applying one twice, or after a
//! later change to the same rows, gives the same copy: the log needs no order within a read.
//! Old rows are pruned ([`prune`]); a copy whose mark lies before what was pruned loads anew.
use super::hierarchy::Hierarchy;
use super::marks::{Mark, past_mark};
use super::reported::FlowGroup;
use super::rollups::Read;
use super::{Live, Snapshot, load};
use crate::db::query;
use crate::error::Result;
use chrono::{Datelike, NaiveDate};
use cnscd_entity::codes::Aggregation;
use sea_orm::{ConnectionTrait, StreamTrait};
use std::collections::BTreeSet;

/// Most changes applied one by one; a bulk operation (a rebuild of the rollups, an import of
/// figures) past it loads a new copy instead.
pub const MAX_CHANGES: usize = 2_000;

/// How long change rows are kept; a replica that has not read the log for longer loads anew.
pub const KEEP: std::time::Duration = std::time::Duration::from_secs(3600);

/// What applying the log found.
#[derive(Debug, Default)]
pub struct Applied {
    /// Changes read (distinct keys).
    pub changes: usize,
    /// Something the copy cannot take as a change: a new copy must be loaded.
    pub reload: bool,
}

/// One change row: kind and key.
type Change = (String, String);

/// What a read of the log found: the changes (a key changed twice is applied once; a rollup
/// row's amounts each count), the new mark, the generation, the highest change stamp pruned
/// and the highest rollup delta stamp pruned.
struct LogRead {
    changes: Vec<Change>,
    mark: Mark,
    generation: i64,
    pruned: i64,
    deltas_pruned: i64,
}

/// Reads the log past `mark`, with the new mark, the generation and what was pruned (of the
/// log and of the rollup deltas), in one statement.
async fn read(db: &impl ConnectionTrait, mark: &Mark) -> Result<LogRead> {
    let postgres = db.get_database_backend() == sea_orm::DbBackend::Postgres;
    let head = if postgres {
        "SELECT '' AS kind, pg_current_snapshot()::text AS key, n AS stamp FROM data_generation \
         WHERE id = 1 UNION ALL SELECT '', 'pruned', below FROM data_change_pruned \
         UNION ALL SELECT '', 'deltas_pruned', COALESCE(MAX(upto), 0) FROM unit_month_fold \
         WHERE pruned"
    } else {
        "SELECT '' AS kind, CAST((SELECT COALESCE(MAX(stamp), 0) FROM data_change) AS TEXT) \
         AS key, n AS stamp FROM data_generation WHERE id = 1 UNION ALL \
         SELECT '', 'pruned', below FROM data_change_pruned UNION ALL \
         SELECT '', 'deltas_pruned', COALESCE(MAX(upto), 0) FROM unit_month_fold WHERE pruned"
    };
    let (past, values) = past_mark("kind, key, stamp", "data_change", "stamp", mark, postgres);
    let rows = query(db, &format!("{head} UNION ALL {past}"), values).await?;
    let mut found = LogRead {
        changes: Vec::new(),
        mark: mark.clone(),
        generation: 0,
        pruned: 0,
        deltas_pruned: 0,
    };
    for r in rows {
        let kind: String = r.try_get("", "kind")?;
        let key: String = r.try_get("", "key")?;
        let stamp: i64 = r.try_get("", "stamp")?;
        match (kind.as_str(), key.as_str()) {
            ("", "pruned") => found.pruned = stamp,
            ("", "deltas_pruned") => found.deltas_pruned = stamp,
            ("", m) => {
                found.generation = stamp;
                let read = if postgres {
                    Mark::of_snapshot(m)
                } else {
                    m.parse().ok().map(Mark::of_counter)
                };
                if let Some(read) = read {
                    found.mark = read;
                }
            }
            _ => found.changes.push((kind, key)),
        }
    }
    found.changes.sort();
    found.changes.dedup_by(|a, b| a == b && a.0 != "rollup");
    Ok(found)
}

/// A change as it will be applied, its rows read.
enum Step {
    /// Units, and every team that sits in one of them now.
    Teams(Vec<u32>, Vec<(i64, super::states::TeamShare)>),
    Flows(FlowGroup, Vec<(u32, f64)>),
    Flow(FlowGroup, u32, Option<f64>),
    References(u16, i32, Vec<(u32, NaiveDate, NaiveDate, f64)>),
    Target(String, u32, NaiveDate, NaiveDate, Option<f64>),
    Definition(String, Vec<cnscd_entity::indicator_definition::Model>),
    Lock(u32, Vec<(NaiveDate, NaiveDate)>),
    Kinds(std::collections::HashMap<String, bool>),
    Services(std::collections::HashMap<String, (bool, bool)>),
    Rollup(u32, u16, NaiveDate, Read),
}

fn date(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()
}

impl Snapshot {
    /// Reads the change log past the copy's mark and applies every change: the rows of each
    /// are read again (statements grow with the changes, not with the data), then applied at
    /// once under the write lock, with the new mark and generation. Says when a change needs a
    /// new copy.
    pub(super) async fn apply_changes(
        &self,
        db: &(impl ConnectionTrait + StreamTrait),
    ) -> Result<Applied> {
        let mark = self.view().live.changes.clone();
        let LogRead {
            changes,
            mark: new_mark,
            generation,
            pruned,
            deltas_pruned,
        } = read(db, &mark).await?;
        let mut applied = Applied {
            changes: changes.len(),
            // Also when rollup deltas this copy has not read are gone (see `rollups`).
            reload: pruned > mark.lowest_unread()
                || deltas_pruned >= self.rollup_mark().lowest_unread()
                || changes.len() > MAX_CHANGES,
        };
        let mut steps = Vec::new();
        if !applied.reload {
            // Teams in one read (memberships change the most, often many of one team).
            let teams: Vec<i64> = changes
                .iter()
                .filter(|(kind, _)| kind == "team")
                .filter_map(|(_, key)| key.parse().ok())
                .collect();
            match self.team_steps(db, &teams).await? {
                Some(mut s) => steps.append(&mut s),
                None => applied.reload = true,
            }
        }
        if !applied.reload {
            for (kind, key) in changes.iter().filter(|(kind, _)| kind != "team") {
                match self.step(db, kind, key).await? {
                    Some(mut s) => steps.append(&mut s),
                    None => {
                        applied.reload = true;
                        break;
                    }
                }
            }
        }
        if applied.reload {
            self.needs_reload
                .store(true, std::sync::atomic::Ordering::SeqCst);
        }
        let mut live = match self.live.write() {
            Ok(l) => l,
            Err(poisoned) => poisoned.into_inner(),
        };
        let mut rollup_reads = Vec::new();
        for step in steps {
            match step {
                Step::Rollup(u, e, day, read) => rollup_reads.push(((u, e, day), read)),
                step => apply(&self.hierarchy, &mut live, step),
            }
        }
        live.changes = new_mark;
        live.generation = live.generation.max(generation);
        drop(live);
        if !rollup_reads.is_empty()
            && let Ok(mut r) = self.rollups.write()
        {
            r.apply(&self.hierarchy, rollup_reads, None, 0);
        }
        if applied.changes > 0 {
            tracing::debug!(
                changes = applied.changes,
                reload = applied.reload,
                "data changes applied"
            );
        }
        Ok(applied)
    }

    /// Reads the teams of the units changed teams sat in and sit in now, with their
    /// memberships (two statements); `None` when one sits in a unit this copy does not know
    /// (it came with a catalogue import).
    async fn team_steps(
        &self,
        db: &(impl ConnectionTrait + StreamTrait),
        ids: &[i64],
    ) -> Result<Option<Vec<Step>>> {
        if ids.is_empty() {
            return Ok(Some(Vec::new()));
        }
        let h: &Hierarchy = &self.hierarchy;
        // Where they sat (a team gone or moved leaves its unit's count).
        let mut units: BTreeSet<u32> = {
            let view = self.view();
            ids.iter()
                .filter_map(|id| view.live.states.team(*id).map(|t| t.unit))
                .collect()
        };
        // Where they sit now.
        for r in query(
            db,
            &format!(
                "SELECT unit_code FROM team WHERE id IN ({})",
                crate::db::placeholders(ids.len())
            ),
            ids.iter().map(|i| sea_orm::Value::from(*i)).collect(),
        )
        .await?
        {
            let code: String = r.try_get("", "unit_code")?;
            match h.unit(&code) {
                Some(u) => units.insert(u),
                None => return Ok(None),
            };
        }
        let units: Vec<u32> = units.into_iter().collect();
        let codes: Vec<&str> = units.iter().map(|u| h.code(*u)).collect();
        let teams = load::teams(db, h, load::Teams::In(&codes)).await?;
        Ok(Some(vec![Step::Teams(units, teams)]))
    }

    /// Reads the rows one change needs; `None` when the copy cannot take it as a change.
    async fn step(
        &self,
        db: &(impl ConnectionTrait + StreamTrait),
        kind: &str,
        key: &str,
    ) -> Result<Option<Vec<Step>>> {
        let h: &Hierarchy = &self.hierarchy;
        let parts: Vec<&str> = key.split('|').collect();
        Ok(Some(match (kind, parts.as_slice()) {
            // A flow figure of one unit (the log names the unit): that unit's figure only.
            ("data_value", [element, start, end, unit])
                if self
                    .elements
                    .get(*element)
                    .is_some_and(|e| e.aggregation != Aggregation::Reference) =>
            {
                return self.figure_step(db, element, start, end, unit).await;
            }
            // A reference figure (summed per year), or a key without its unit: the group.
            ("data_value", [element, start, end, ..]) => {
                return self.figure_group_step(db, element, start, end).await;
            }
            ("target", [code, unit, start, end]) => {
                let (Some(start), Some(end), Some(u)) = (date(start), date(end), h.unit(unit))
                else {
                    return Ok(None);
                };
                let rows = load::targets(
                    db,
                    h,
                    " WHERE indicator_code = ? AND unit_code = ? AND period_start = ? AND period_end = ?",
                    vec![(*code).into(), (*unit).into(), start.into(), end.into()],
                )
                .await?;
                vec![Step::Target(
                    (*code).to_owned(),
                    u,
                    start,
                    end,
                    rows.first().map(|r| r.4),
                )]
            }
            ("definition", [code]) => {
                let mut found = load::definitions(db, Some(code)).await?;
                vec![Step::Definition(
                    (*code).to_owned(),
                    found.remove(*code).unwrap_or_default(),
                )]
            }
            ("lock", [unit]) => {
                let Some(u) = h.unit(unit) else {
                    return Ok(None);
                };
                let mut found = load::locks(db, h, Some(unit)).await?;
                vec![Step::Lock(u, found.remove(&u).unwrap_or_default())]
            }
            ("kinds", _) => vec![Step::Kinds(load::kinds(db).await?)],
            ("services", _) => vec![Step::Services(load::services(db).await?)],
            // A rollup row written by hand, with what it added.
            ("rollup", [unit, element, day, amount]) => {
                let (Some(u), Some(e), Some(day), Ok(amount)) = (
                    h.unit(unit),
                    self.element_index(element),
                    date(day),
                    amount.parse::<f64>(),
                ) else {
                    return Ok(None);
                };
                vec![Step::Rollup(u, e, day, Read::Amount(amount))]
            }
            _ => return Ok(None),
        }))
    }

    /// The steps of a flow figure of one unit: that unit's latest figure for the period.
    async fn figure_step(
        &self,
        db: &(impl ConnectionTrait + StreamTrait),
        element: &str,
        start: &str,
        end: &str,
        unit: &str,
    ) -> Result<Option<Vec<Step>>> {
        let h: &Hierarchy = &self.hierarchy;
        let (Some(start), Some(end), Some(u), Some(e)) = (
            date(start),
            date(end),
            h.unit(unit),
            self.element_index(element),
        ) else {
            return Ok(None);
        };
        let mut latest = None;
        load::figures(
            db,
            h,
            &self.element_index,
            " WHERE v.element_code = ? AND v.period_start = ? AND v.period_end = ? \
             AND v.unit_code = ?",
            vec![element.into(), start.into(), end.into(), unit.into()],
            // In submission order: the latest wins.
            |r| latest = Some(r.4),
        )
        .await?;
        Ok(Some(vec![Step::Flow((e, start, end), u, latest)]))
    }

    /// The steps of a reference figure (every figure of its element and year) or of a figure
    /// whose key does not name its unit (every figure of its element and period).
    async fn figure_group_step(
        &self,
        db: &(impl ConnectionTrait + StreamTrait),
        element: &str,
        start: &str,
        end: &str,
    ) -> Result<Option<Vec<Step>>> {
        let h: &Hierarchy = &self.hierarchy;
        let (Some(start), Some(end), Some(e)) =
            (date(start), date(end), self.element_index(element))
        else {
            return Ok(None);
        };
        let Some(model) = self.elements.get(element) else {
            return Ok(None);
        };
        let steps = if model.aggregation == Aggregation::Reference {
            let year = start.year();
            let (first, last) = (
                NaiveDate::from_ymd_opt(year, 1, 1).unwrap_or(start),
                NaiveDate::from_ymd_opt(year, 12, 31).unwrap_or(end),
            );
            let mut values = Vec::new();
            load::figures(
                db,
                h,
                &self.element_index,
                " WHERE v.element_code = ? AND v.period_start >= ? AND v.period_end <= ?",
                vec![element.into(), first.into(), last.into()],
                |r| values.push((r.0, r.2, r.3, r.4)),
            )
            .await?;
            vec![Step::References(e, year, values)]
        } else {
            let mut values = Vec::new();
            load::figures(
                db,
                h,
                &self.element_index,
                " WHERE v.element_code = ? AND v.period_start = ? AND v.period_end = ?",
                vec![element.into(), start.into(), end.into()],
                |r| values.push((r.0, r.4)),
            )
            .await?;
            vec![Step::Flows((e, start, end), values)]
        };
        Ok(Some(steps))
    }
}

/// Applies one step to what routine changes move.
fn apply(h: &Hierarchy, live: &mut Live, step: Step) {
    match step {
        Step::Teams(units, teams) => live.states.set_units(h, &units, teams),
        Step::Flows(group, values) => live.figures.set_flows(h, group, values),
        Step::Flow(group, unit, value) => live.figures.set_flow(h, group, unit, value),
        Step::References(element, year, values) => {
            live.figures.set_references(element, year, values)
        }
        Step::Target(code, unit, start, end, target) => {
            live.targets.set(&code, unit, start, end, target)
        }
        Step::Definition(code, versions) => {
            if versions.is_empty() {
                live.definitions.remove(&code);
            } else {
                live.definitions.insert(code, versions);
            }
        }
        Step::Lock(unit, spans) => {
            if spans.is_empty() {
                live.intake.locks.remove(&unit);
            } else {
                live.intake.locks.insert(unit, spans);
            }
        }
        Step::Kinds(kinds) => live.intake.kinds = kinds,
        Step::Services(services) => live.intake.services = services,
        Step::Rollup(..) => {}
    }
}

/// Deletes change rows older than [`KEEP`] and notes the highest stamp deleted, so that a copy
/// that has not read past it loads anew. Returns the rows deleted.
pub async fn prune(db: &sea_orm::DatabaseConnection) -> Result<u64> {
    let cutoff = chrono::Utc::now() - chrono::Duration::from_std(KEEP).unwrap_or_default();
    let txn = crate::db::begin_write(db).await?;
    let rows = query(
        &txn,
        "SELECT MAX(stamp) AS top FROM data_change WHERE created_at < ?",
        vec![cutoff.into()],
    )
    .await?;
    let top: Option<i64> = rows.first().and_then(|r| r.try_get("", "top").ok());
    let Some(top) = top else {
        txn.rollback().await?;
        return Ok(0);
    };
    let deleted = txn
        .execute_raw(crate::db::stmt(
            txn.get_database_backend(),
            "DELETE FROM data_change WHERE stamp <= ?",
            vec![top.into()],
        ))
        .await?
        .rows_affected();
    txn.execute_raw(crate::db::stmt(
        txn.get_database_backend(),
        "UPDATE data_change_pruned SET below = ? WHERE id = 1 AND below < ?",
        vec![(top + 1).into(), (top + 1).into()],
    ))
    .await?;
    txn.commit().await?;
    Ok(deleted)
}

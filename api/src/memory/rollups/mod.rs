//! The monthly activity rollups held in memory, summed up the hierarchy as of their days, and
//! the format of a rollup delta (written by `activities::rollup`, read here).
//!
//! `unit_month_fact` holds one row per unit where activities were recorded, element and
//! month; `unit_month_delta` the amounts intake added since, folded into the rows now and then
//! and kept a while after (`unit_month_fold` says how far). A copy reads every row and the
//! deltas not folded when it loads, then only the deltas stamped past its mark (see
//! [`super::marks`]), folded or not: a fold changes no value it holds.
use super::FastMap;
use super::hierarchy::Hierarchy;
use super::marks::Mark;
use crate::error::Result;
use chrono::{Datelike, NaiveDate};
use sea_orm::ConnectionTrait;
use std::collections::{BTreeMap, HashMap};
use std::sync::RwLock;

mod reading;
mod series;

pub(in crate::memory) use reading::{read, read_copied};
use series::{Series, UnitSeries, month_number};

/// Key of one rollup cell: unit, element, first day.
pub type Cell = (String, String, NaiveDate);

/// First day of the month of `d`.
pub fn month_start(d: NaiveDate) -> NaiveDate {
    d.with_day(1).unwrap_or(d)
}

/// One delta: the cells a write adds to, as text (`[["05677-01","2024-03-01",
/// {"ACTIVITIES":1.0,...}],...]`: unit, first day, amount by element); `None` when they add
/// nothing.
pub fn delta_text(cells: &BTreeMap<Cell, f64>) -> Option<String> {
    let mut rows: BTreeMap<(&str, NaiveDate), BTreeMap<&str, f64>> = BTreeMap::new();
    for ((unit, element, day), v) in cells {
        if *v != 0.0 {
            rows.entry((unit, *day)).or_default().insert(element, *v);
        }
    }
    if rows.is_empty() {
        return None;
    }
    let rows: Vec<(&str, NaiveDate, BTreeMap<&str, f64>)> = rows
        .into_iter()
        .map(|((unit, day), amounts)| (unit, day, amounts))
        .collect();
    serde_json::to_string(&rows).ok()
}

/// The cells of a delta ([`delta_text`]).
pub fn delta_cells(text: &str) -> Vec<(String, NaiveDate, BTreeMap<String, f64>)> {
    serde_json::from_str(text).unwrap_or_default()
}

/// Monthly rollups of derived flow elements, summed up the hierarchy, for the units with units
/// under them; the units without (hamlets, most of the rows) are read from the rollup rows
/// when an answer asks for them ([`LeafFlows`]), with the deltas this copy read that are not
/// folded into the rows yet.
///
/// Nothing is held per rollup row: a copy reads each row once, when it loads, and each delta
/// once, past its mark; a fold moves deltas the copy has already read (or will read, folded
/// deltas are kept a while: [`crate::activities::rollup::KEEP_FOLDED`]) into the rows, which
/// changes no value the copy holds.
#[derive(Default)]
pub(super) struct Rollups {
    /// Deltas stamped past this may not have been read yet.
    pub(super) mark: Mark,
    /// By unit index, then element: a month series each, summed over the units under it (for
    /// units with units under them).
    units: FastMap<u32, UnitSeries>,
    /// Deltas of units without units under them, read and not known to be folded: by unit,
    /// element and month, their stamps and amounts.
    pending: FastMap<(u32, u16, i32), Vec<(i64, f64)>>,
    /// Rollup rows of units without units under them, for a copy built by hand (one loaded
    /// from a database reads them when asked).
    kept: FastMap<(u32, u16), Series>,
    /// Whether to keep those rows ([`Rollups::by_hand`]).
    keep_rows: bool,
}

/// What a read found for a rollup cell: its rollup row's value, a delta (amount, stamp), or
/// an amount a rollup row written by hand added.
pub(super) enum Read {
    Row(f64),
    Delta(f64, i64),
    Amount(f64),
}

/// Flows of units without units under them, read for one answer: by unit and element.
#[derive(Default)]
pub struct LeafFlows(FastMap<(u32, u16), Series>);

/// A rollup cell as read: unit index, element index, first day, and what was read.
pub(super) type CellRead = ((u32, u16, NaiveDate), Read);

/// What a read of the rollups found besides its cells: the mark of the read, and the folds it
/// saw: every delta stamped up to `folded` is in the rows, every one stamped up to `pruned` is
/// gone.
pub(super) struct Found {
    pub(super) mark: Option<Mark>,
    pub(super) folded: i64,
    pub(super) pruned: i64,
}

impl Rollups {
    /// Rollups for a copy built by hand: the rows of units without units under them are kept
    /// (there is no database to read them from).
    pub(super) fn by_hand() -> Self {
        Self {
            keep_rows: true,
            ..Self::default()
        }
    }

    /// Applies what a read found: each row, delta or amount adds to the units above its unit
    /// on its day that have units under them (its own unit among them); a delta of a unit
    /// without is also held until it is known to be folded. `folded` drops those held deltas
    /// that are in the rows now. A delta is read once: the mark moves past exactly what the
    /// statement saw.
    pub(super) fn apply(
        &mut self,
        hierarchy: &Hierarchy,
        cells: Vec<CellRead>,
        new_mark: Option<Mark>,
        folded: i64,
    ) {
        for cell in cells {
            self.add(hierarchy, cell, folded);
        }
        self.read_to(new_mark, folded);
    }

    /// Adds one cell as read (see [`Rollups::apply`]).
    pub(super) fn add(&mut self, hierarchy: &Hierarchy, cell: CellRead, folded: i64) {
        let ((unit, element, day), read) = cell;
        let amount = match read {
            Read::Row(v) | Read::Amount(v) | Read::Delta(v, _) => v,
        };
        if amount == 0.0 {
            return;
        }
        let month = month_number(day);
        if !hierarchy.holds_flows(unit) {
            match read {
                Read::Delta(v, stamp) if stamp > folded => self
                    .pending
                    .entry((unit, element, month))
                    .or_default()
                    .push((stamp, v)),
                Read::Row(v) if self.keep_rows => {
                    self.kept.entry((unit, element)).or_default().add(month, v)
                }
                _ => {}
            }
        }
        for link in hierarchy.links_up(unit).filter(|l| l.on(day)) {
            if hierarchy.holds_flows(link.ancestor) {
                self.units
                    .entry(link.ancestor)
                    .or_default()
                    .add(element, month, amount);
            }
        }
    }

    /// Gives back what the series grew by while they were read (a load adds months one by
    /// one).
    pub(super) fn shrink_to_fit(&mut self) {
        self.units.shrink_to_fit();
        for series in self.units.values_mut() {
            series.shrink_to_fit();
        }
    }

    /// Notes a read done: the held deltas now in the rows are dropped, and the mark moves.
    pub(super) fn read_to(&mut self, new_mark: Option<Mark>, folded: i64) {
        if folded > 0 {
            self.pending.retain(|_, deltas| {
                deltas.retain(|(stamp, _)| *stamp > folded);
                !deltas.is_empty()
            });
        }
        if let Some(mark) = new_mark {
            self.mark = mark;
        }
    }
}

/// The flows of `units` (without units under them) over `first ..= last` (first days of
/// months), for one answer: their rollup rows, read in one statement, and (with `deltas`) the
/// deltas this copy read that the rows do not hold yet (stamped past the folds).
pub(super) async fn leaf_flows(
    db: &impl ConnectionTrait,
    hierarchy: &Hierarchy,
    element_index: &HashMap<String, u16>,
    rollups: &RwLock<Rollups>,
    units: &[u32],
    (first, last): (NaiveDate, NaiveDate),
    deltas: bool,
) -> Result<LeafFlows> {
    let mut flows = LeafFlows::default();
    if units.is_empty() {
        return Ok(flows);
    }
    let postgres = db.get_database_backend() == sea_orm::DbBackend::Postgres;
    let codes: Vec<&str> = units.iter().map(|u| hierarchy.code(*u)).collect();
    // One statement whatever the number of units on PostgreSQL (an array); chunks of IN lists
    // on SQLite. Each reads, with the rows, how far the deltas are folded (a row `folds`): the
    // rows hold every delta stamped up to it, and no other.
    let chunks: Vec<Vec<&str>> = if postgres {
        vec![codes]
    } else {
        codes.chunks(500).map(<[&str]>::to_vec).collect()
    };
    let mut rows = Vec::new();
    let mut folded: FastMap<u32, i64> = FastMap::default();
    for chunk in chunks {
        let (list, mut values): (String, Vec<sea_orm::Value>) = if postgres {
            (
                "= ANY(string_to_array(?, ','))".to_owned(),
                vec![chunk.join(",").into()],
            )
        } else {
            (
                format!("IN ({})", crate::db::placeholders(chunk.len())),
                chunk.iter().map(|c| sea_orm::Value::from(*c)).collect(),
            )
        };
        values.extend([first.into(), last.into()]);
        let mut upto = 0;
        for r in crate::db::query(
            db,
            &format!(
                "SELECT unit_code, element_code, month_start, value, 0 AS upto \
                 FROM unit_month_fact WHERE unit_code {list} \
                 AND month_start >= ? AND month_start <= ? UNION ALL \
                 SELECT 'folds', NULL, NULL, NULL, COALESCE(MAX(upto), 0) FROM unit_month_fold"
            ),
            values,
        )
        .await?
        {
            match r.try_get::<String>("", "unit_code")?.as_str() {
                "folds" => upto = r.try_get("", "upto")?,
                _ => rows.push(r),
            }
        }
        for code in chunk {
            if let Some(u) = hierarchy.unit(code) {
                folded.insert(u, upto);
            }
        }
    }
    let held = match rollups.read() {
        Ok(r) => r,
        Err(poisoned) => poisoned.into_inner(),
    };
    for r in rows {
        let unit: String = r.try_get("", "unit_code")?;
        let element: String = r.try_get("", "element_code")?;
        let (Some(u), Some(e)) = (hierarchy.unit(&unit), element_index.get(&element)) else {
            continue;
        };
        let month = month_number(r.try_get("", "month_start")?);
        flows
            .0
            .entry((u, *e))
            .or_default()
            .add(month, r.try_get("", "value")?);
    }
    let (from, to) = (month_number(first), month_number(last));
    for ((u, e, month), deltas) in held.pending.iter().filter(|_| deltas) {
        let Some(upto) = folded.get(u) else { continue };
        if *month < from || *month > to {
            continue;
        }
        // Deltas folded since this copy read them are in the rows (or in no row, if one was
        // deleted by hand): only those past the fold are added.
        let v: f64 = deltas
            .iter()
            .filter(|(stamp, _)| stamp > upto)
            .map(|(_, v)| v)
            .sum();
        if v != 0.0 {
            flows.0.entry((*u, *e)).or_default().add(*month, v);
        }
    }
    Ok(flows)
}

/// The rollups held by a copy, read-locked while an answer is evaluated, with the flows read
/// for it of units without units under them.
pub struct RollupsRead<'a> {
    pub(super) guard: Option<std::sync::RwLockReadGuard<'a, Rollups>>,
    pub(super) hierarchy: &'a Hierarchy,
    pub(super) leaves: &'a LeafFlows,
}

impl RollupsRead<'_> {
    /// The sum of `element` for `unit` over the months starting from `first` to `last`.
    pub fn flow(&self, unit: u32, element: u16, first: NaiveDate, last: NaiveDate) -> f64 {
        let Some(r) = &self.guard else { return 0.0 };
        let (first, last) = (month_number(first), month_number(last));
        if self.hierarchy.holds_flows(unit) {
            return r
                .units
                .get(&unit)
                .map_or(0.0, |series| series.sum(element, first, last));
        }
        self.leaves
            .0
            .get(&(unit, element))
            .or_else(|| r.kept.get(&(unit, element)))
            .map_or(0.0, |s| s.sum(first, last))
    }
}

#[cfg(test)]
mod held_tests {
    use super::{LeafFlows, Read, Rollups, RollupsRead};
    use crate::memory::Hierarchy;
    use chrono::NaiveDate;
    use std::sync::RwLock;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap_or_default()
    }

    /// A commune the catalogue lists no hamlets for answers from the copy, like one with
    /// hamlets; a hamlet's flows are left to its rollup rows (read per answer).
    #[test]
    fn every_unit_above_hamlet_level_answers_from_the_copy() {
        let h = Hierarchy::two_communes();
        let u = |code: &str| h.unit(code).unwrap_or_default();
        let month = d("2025-03-01");
        let mut rollups = Rollups::default();
        for (unit, value) in [("C2", 4.0), ("H", 3.0)] {
            rollups.add(&h, ((u(unit), 0, month), Read::Row(value)), 0);
        }
        let held = RwLock::new(rollups);
        let leaves = LeafFlows::default();
        let read = RollupsRead {
            guard: held.read().ok(),
            hierarchy: &h,
            leaves: &leaves,
        };
        let flow = |unit: &str| read.flow(u(unit), 0, month, month);
        assert_eq!(
            (flow("P"), flow("C1"), flow("C2"), flow("H")),
            (7.0, 3.0, 4.0, 0.0)
        );
        assert!(!h.holds_flows(u("H")));
    }
}

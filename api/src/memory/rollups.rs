//! The monthly activity rollups held in memory, summed up the hierarchy as of their days, and
//! the format of a rollup delta (written by `activities::rollup`, read here).
//!
//! `unit_month_fact` holds one row per unit where activities were recorded, element and
//! month; `unit_month_delta` the amounts intake added since, not yet folded into the rows. Both
//! are stamped (see [`super::marks`]): a copy reads every row and delta once, then only what is
//! stamped past its mark.
use super::FastMap;
use super::hierarchy::Hierarchy;
use super::marks::{Mark, past_mark};
use crate::error::Result;
use async_graphql::futures_util::StreamExt;
use chrono::{Datelike, NaiveDate};
use sea_orm::{ConnectionTrait, StreamTrait};
use std::collections::{BTreeMap, HashMap};

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

/// Monthly rollups of derived flow elements: by unit, element and month.
#[derive(Default)]
pub(super) struct Rollups {
    /// Rows stamped past this may have changed since they were read.
    pub(super) mark: Mark,
    /// The cells as read: by the unit they were recorded at, element, and first day.
    own: FastMap<(u32, u16, NaiveDate), Held>,
    /// By unit index, then element: a month series each, summed over the units under it.
    units: Vec<FastMap<u16, Series>>,
}

/// A rollup cell as read: its rollup row and the deltas read since.
#[derive(Default)]
struct Held {
    /// The rollup row's value.
    base: f64,
    /// Every delta stamped below this is in `base`.
    horizon: i64,
    /// Deltas not in `base`: stamp and amount.
    pending: Vec<(i64, f64)>,
}

impl Held {
    fn value(&self) -> f64 {
        self.base + self.pending.iter().map(|(_, v)| v).sum::<f64>()
    }
}

/// What a read found for a rollup cell: its rollup row (value, horizon) or a delta (amount,
/// stamp).
pub(super) enum Read {
    Row(f64, i64),
    Delta(f64, i64),
}

/// Months counted from year 0.
fn month_number(d: NaiveDate) -> i32 {
    d.year() * 12 + d.month0() as i32
}

/// Values of consecutive months, from `first` on.
#[derive(Default, Debug)]
struct Series {
    first: i32,
    values: Vec<f64>,
}

impl Series {
    fn add(&mut self, month: i32, value: f64) {
        if self.values.is_empty() {
            self.first = month;
        } else if month < self.first {
            let shift = (self.first - month) as usize;
            self.values.splice(0..0, std::iter::repeat_n(0.0, shift));
            self.first = month;
        }
        let i = (month - self.first) as usize;
        if i >= self.values.len() {
            self.values.resize(i + 1, 0.0);
        }
        self.values[i] += value;
    }

    /// The sum over months `first..=last`.
    fn sum(&self, first: i32, last: i32) -> f64 {
        let from = (first - self.first).max(0) as usize;
        let to = (last - self.first + 1).max(0) as usize;
        self.values
            .get(from..to.min(self.values.len()))
            .map_or(0.0, |v| v.iter().sum())
    }
}

/// Reads rollup rows and deltas (all, or those stamped past `mark`) and the new mark, in one
/// statement (one snapshot): the cells read by unit index, element index and day, and the mark
/// of the read.
pub(super) async fn read(
    db: &(impl ConnectionTrait + StreamTrait),
    hierarchy: &Hierarchy,
    element_index: &HashMap<String, u16>,
    mark: Option<&Mark>,
) -> Result<(Vec<((u32, u16, NaiveDate), Read)>, Option<Mark>)> {
    let postgres = ConnectionTrait::get_database_backend(db) == sea_orm::DbBackend::Postgres;
    let mark_row = if postgres {
        "SELECT NULL AS unit_code, pg_current_snapshot()::text AS element_code, \
         NULL::date AS month_start, NULL::float8 AS value, NULL::bigint AS stamp, \
         NULL::text AS cells"
    } else {
        "SELECT NULL AS unit_code, CAST(n AS TEXT) AS element_code, NULL AS month_start, \
         NULL AS value, NULL AS stamp, NULL AS cells FROM data_generation WHERE id = 2"
    };
    let facts = "unit_code, element_code, month_start, value, horizon, NULL";
    let deltas = "NULL, NULL, NULL, NULL, seq, cells";
    let mut values: Vec<sea_orm::Value> = Vec::new();
    let sql = match mark {
        Some(mark) => {
            let (f, v) = past_mark(facts, "unit_month_fact", "seq", mark, postgres);
            values.extend(v);
            let (d, v) = past_mark(deltas, "unit_month_delta", "seq", mark, postgres);
            values.extend(v);
            format!("{mark_row} UNION ALL {f} UNION ALL {d}")
        }
        None => format!(
            "{mark_row} UNION ALL SELECT {facts} FROM unit_month_fact UNION ALL \
             SELECT {deltas} FROM unit_month_delta"
        ),
    };
    // Streamed: a full load reads every rollup row, and holding them all as driver rows would
    // cost several times what they take decoded.
    let rows = db
        .stream_raw(crate::db::stmt(
            ConnectionTrait::get_database_backend(db),
            &sql,
            values,
        ))
        .await?;
    let mut rows = std::pin::pin!(rows);
    let mut decoded: Vec<((u32, u16, NaiveDate), Read)> = Vec::new();
    let mut new_mark = None;
    while let Some(r) = rows.next().await {
        let r = r?;
        let unit: Option<String> = r.try_get_by_index(0)?;
        let element: Option<String> = r.try_get_by_index(1)?;
        let stamp: Option<i64> = r.try_get_by_index(4)?;
        let (Some(unit), Some(stamp)) = (unit, stamp) else {
            match stamp {
                // A delta: every cell it adds to.
                Some(stamp) => {
                    let text: String = r.try_get_by_index(5)?;
                    for (unit, day, amounts) in delta_cells(&text) {
                        // Every delta's unit and elements are known (the writer's checks); a
                        // unit added since this copy was loaded is loaded with the next copy.
                        let Some(u) = hierarchy.unit(&unit) else {
                            continue;
                        };
                        for (element, v) in amounts {
                            if let Some(e) = element_index.get(&element) {
                                decoded.push(((u, *e, day), Read::Delta(v, stamp)));
                            }
                        }
                    }
                }
                // The mark.
                None => {
                    let element = element.unwrap_or_default();
                    new_mark = if postgres {
                        Mark::of_snapshot(&element)
                    } else {
                        element.parse().ok().map(Mark::of_counter)
                    };
                }
            }
            continue;
        };
        // A rollup row (its unit and element are known: foreign keys).
        let day: NaiveDate = r.try_get_by_index(2)?;
        let value: f64 = r.try_get_by_index(3)?;
        if let (Some(u), Some(e)) = (
            hierarchy.unit(&unit),
            element.and_then(|e| element_index.get(&e).copied()),
        ) {
            decoded.push(((u, e, day), Read::Row(value, stamp)));
        }
    }
    Ok((decoded, new_mark))
}

impl Rollups {
    /// Applies what a read found: a rollup row replaces what was held for its unit, element
    /// and day with its value plus the deltas read that it does not hold yet, a delta adds to
    /// it, and the units above it on that day move by the difference. A delta is read once:
    /// the mark moves past exactly what the statement saw.
    pub(super) fn apply(
        &mut self,
        hierarchy: &Hierarchy,
        decoded: Vec<((u32, u16, NaiveDate), Read)>,
        new_mark: Option<Mark>,
    ) {
        if self.units.len() < hierarchy.len() {
            self.units.resize_with(hierarchy.len(), FastMap::default);
        }
        for (key @ (unit, element, day), read) in decoded {
            let held = self.own.entry(key).or_default();
            let before = held.value();
            match read {
                Read::Row(value, horizon) => {
                    held.base = value;
                    held.horizon = horizon;
                    held.pending.retain(|(stamp, _)| *stamp >= horizon);
                }
                Read::Delta(v, stamp) if stamp >= held.horizon => held.pending.push((stamp, v)),
                Read::Delta(..) => {}
            }
            let delta = held.value() - before;
            if delta == 0.0 {
                continue;
            }
            let month = month_number(day);
            for link in hierarchy.links_up(unit).filter(|l| l.on(day)) {
                self.units[link.ancestor as usize]
                    .entry(element)
                    .or_default()
                    .add(month, delta);
            }
        }
        if let Some(mark) = new_mark {
            self.mark = mark;
        }
    }
}

/// The rollups held by a copy, read-locked while an answer is evaluated.
pub struct RollupsRead<'a> {
    pub(super) guard: Option<std::sync::RwLockReadGuard<'a, Rollups>>,
}

impl RollupsRead<'_> {
    /// The sum of `element` for `unit` over the months starting from `first` to `last`.
    pub fn flow(&self, unit: u32, element: u16, first: NaiveDate, last: NaiveDate) -> f64 {
        let Some(r) = &self.guard else { return 0.0 };
        r.units
            .get(unit as usize)
            .and_then(|by_element| by_element.get(&element))
            .map_or(0.0, |series| {
                series.sum(month_number(first), month_number(last))
            })
    }
}

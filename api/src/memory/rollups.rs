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
use super::marks::{Mark, past_mark};
use crate::error::Result;
use async_graphql::futures_util::StreamExt;
use chrono::{Datelike, NaiveDate};
use sea_orm::{ConnectionTrait, StreamTrait};
use std::collections::{BTreeMap, HashMap};
use std::sync::RwLock;

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

/// Months counted from year 0.
fn month_number(d: NaiveDate) -> i32 {
    d.year() * 12 + d.month0() as i32
}

/// Values of consecutive months, from `first` on. Every amount a rollup adds is a count
/// (activities, people, households): most months of most units hold a count below 65,536,
/// kept in two bytes; a series takes four (`f32`, exact for a count below 2^24, 16.7 million
/// in one unit and month) once one of its values does not fit. Sums over months are taken in
/// `f64`.
#[derive(Default, Debug, Clone)]
pub struct Series {
    first: i32,
    values: Values,
}

#[derive(Debug, Clone)]
enum Values {
    Small(Vec<u16>),
    Large(Vec<f32>),
}

impl Default for Values {
    fn default() -> Self {
        Self::Small(Vec::new())
    }
}

impl Values {
    fn len(&self) -> usize {
        match self {
            Self::Small(v) => v.len(),
            Self::Large(v) => v.len(),
        }
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn get(&self, i: usize) -> f64 {
        match self {
            Self::Small(v) => f64::from(v[i]),
            Self::Large(v) => f64::from(v[i]),
        }
    }

    fn set(&mut self, i: usize, value: f64) {
        match self {
            Self::Small(v)
                if value.fract() == 0.0 && (0.0..=f64::from(u16::MAX)).contains(&value) =>
            {
                v[i] = value as u16;
            }
            Self::Small(v) => {
                let mut wide: Vec<f32> = v.iter().map(|x| f32::from(*x)).collect();
                wide[i] = value as f32;
                *self = Self::Large(wide);
            }
            Self::Large(v) => v[i] = value as f32,
        }
    }

    /// Makes room for `before` months before the first and up to `len` months in all.
    fn grow(&mut self, before: usize, len: usize) {
        match self {
            Self::Small(v) => {
                v.splice(0..0, std::iter::repeat_n(0, before));
                v.resize(len.max(v.len()), 0);
            }
            Self::Large(v) => {
                v.splice(0..0, std::iter::repeat_n(0.0, before));
                v.resize(len.max(v.len()), 0.0);
            }
        }
    }

    fn sum(&self, from: usize, to: usize) -> f64 {
        match self {
            Self::Small(v) => v
                .get(from..to.min(v.len()))
                .map_or(0.0, |v| v.iter().map(|x| f64::from(*x)).sum()),
            Self::Large(v) => v
                .get(from..to.min(v.len()))
                .map_or(0.0, |v| v.iter().map(|x| f64::from(*x)).sum()),
        }
    }
}

impl Series {
    fn add(&mut self, month: i32, value: f64) {
        if self.values.is_empty() {
            self.first = month;
        } else if month < self.first {
            let shift = (self.first - month) as usize;
            self.values.grow(shift, 0);
            self.first = month;
        }
        let i = (month - self.first) as usize;
        if i >= self.values.len() {
            self.values.grow(0, i + 1);
        }
        self.values.set(i, self.values.get(i) + value);
    }

    /// The sum over months `first..=last`.
    fn sum(&self, first: i32, last: i32) -> f64 {
        let from = (first - self.first).max(0) as usize;
        let to = (last - self.first + 1).max(0) as usize;
        self.values.sum(from, to)
    }
}

#[cfg(test)]
mod series_tests {
    use super::{Series, UnitSeries};
    use std::collections::BTreeMap;

    /// A unit's series in one buffer answer as one [`Series`] per element would, through
    /// months added before, between and after, values past two bytes, and negative amounts.
    #[test]
    fn a_units_series_in_one_buffer_equal_a_series_per_element() {
        let mut packed = UnitSeries::default();
        let mut plain: BTreeMap<u16, Series> = BTreeMap::new();
        let mut state: u64 = 7;
        let mut next = |n: u64| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) % n
        };
        for step in 0..5_000 {
            let element = next(6) as u16;
            let month = 24_000 + next(40) as i32;
            // Elements 0-2 outgrow two bytes (or go negative) now and then; 3-5 never do.
            let value = match next(20) {
                0 if element < 3 => 70_000.0,
                1 if element < 3 => -1.0,
                _ => next(50) as f64,
            };
            packed.add(element, month, value);
            plain.entry(element).or_default().add(month, value);
            if step % 97 == 0 {
                for e in 0..6u16 {
                    let (a, b) = (24_000 + next(45) as i32 - 3, 24_000 + next(45) as i32);
                    let want = plain.get(&e).map_or(0.0, |s| s.sum(a, b));
                    assert_eq!(packed.sum(e, a, b), want, "element {e}, months {a}..={b}");
                }
            }
        }
        assert!(packed.entries.iter().any(|e| e.wide()));
        assert!(packed.entries.iter().any(|e| !e.wide()));
    }

    #[test]
    fn a_series_holds_small_counts_narrow_and_widens_for_larger_values() {
        let mut s = Series::default();
        s.add(100, 3.0);
        s.add(98, 2.0);
        s.add(103, 1.0);
        assert_eq!(
            (s.sum(98, 103), s.sum(99, 100), s.sum(0, 97)),
            (6.0, 3.0, 0.0)
        );
        assert!(matches!(s.values, super::Values::Small(_)));
        // A count past two bytes, then a voided one: the series widens and keeps every month.
        s.add(99, 70_000.0);
        s.add(100, -1.0);
        assert!(matches!(s.values, super::Values::Large(_)));
        assert_eq!(
            (s.sum(98, 103), s.sum(99, 99), s.sum(100, 100)),
            (70_005.0, 70_000.0, 2.0)
        );
    }
}

/// A unit's month series, by element: the counts of all of them in one buffer of two-byte
/// values (and one of `f32` for the series a value outgrew, as [`Series`] does), with a
/// 12-byte entry per element. A nation holds about 300,000 series over 11,000 units: one
/// allocation per series and a [`Series`] each would take more than the counts do.
#[derive(Default, Debug)]
struct UnitSeries {
    /// Sorted by element.
    entries: Vec<Entry>,
    small: Vec<u16>,
    large: Vec<f32>,
}

/// One element's series in a [`UnitSeries`]: its first month, its length, and where its
/// values start (in `large` when the [`WIDE`] bit is set, else in `small`).
#[derive(Clone, Copy, Debug)]
struct Entry {
    element: u16,
    len: u16,
    first: i32,
    at: u32,
}

const WIDE: u32 = 1 << 31;

impl Entry {
    fn wide(&self) -> bool {
        self.at & WIDE != 0
    }

    fn offset(&self) -> usize {
        (self.at & !WIDE) as usize
    }
}

impl UnitSeries {
    /// The sum of `element` over months `first..=last`.
    fn sum(&self, element: u16, first: i32, last: i32) -> f64 {
        let Ok(i) = self.entries.binary_search_by_key(&element, |e| e.element) else {
            return 0.0;
        };
        let e = self.entries[i];
        let from = (first - e.first).max(0) as usize;
        let to = ((last - e.first + 1).max(0) as usize).min(usize::from(e.len));
        if from >= to {
            return 0.0;
        }
        let (a, b) = (e.offset() + from, e.offset() + to);
        if e.wide() {
            self.large[a..b].iter().map(|x| f64::from(*x)).sum()
        } else {
            self.small[a..b].iter().map(|x| f64::from(*x)).sum()
        }
    }

    fn add(&mut self, element: u16, month: i32, value: f64) {
        let i = match self.entries.binary_search_by_key(&element, |e| e.element) {
            Ok(i) => i,
            Err(i) => {
                let at = self.small.len() as u32;
                self.entries.insert(
                    i,
                    Entry {
                        element,
                        len: 0,
                        first: month,
                        at,
                    },
                );
                i
            }
        };
        let e = self.entries[i];
        if month < e.first {
            self.grow(i, (e.first - month) as usize, true);
        } else if month - e.first >= i32::from(e.len) {
            self.grow(
                i,
                (month - e.first) as usize + 1 - usize::from(e.len),
                false,
            );
        }
        let e = self.entries[i];
        let k = e.offset() + (month - e.first) as usize;
        if e.wide() {
            self.large[k] = (f64::from(self.large[k]) + value) as f32;
            return;
        }
        let sum = f64::from(self.small[k]) + value;
        if sum.fract() == 0.0 && (0.0..=f64::from(u16::MAX)).contains(&sum) {
            self.small[k] = sum as u16;
        } else {
            let k = self.widen(i) + (month - e.first) as usize;
            self.large[k] = sum as f32;
        }
    }

    /// Adds `count` zero months to series `i`, before its first month or after its last,
    /// moving the series stored after it.
    fn grow(&mut self, i: usize, count: usize, before: bool) {
        let e = self.entries[i];
        let at = e.offset() + if before { 0 } else { usize::from(e.len) };
        if e.wide() {
            self.large.splice(at..at, std::iter::repeat_n(0.0, count));
        } else {
            self.small.splice(at..at, std::iter::repeat_n(0, count));
        }
        for (j, other) in self.entries.iter_mut().enumerate() {
            if j != i && other.wide() == e.wide() && other.offset() >= at {
                other.at += count as u32;
            }
        }
        let e = &mut self.entries[i];
        e.len += count as u16;
        if before {
            e.first -= count as i32;
        }
    }

    /// Moves series `i` to the `f32` values; returns where it starts there.
    fn widen(&mut self, i: usize) -> usize {
        let e = self.entries[i];
        let (a, n) = (e.offset(), usize::from(e.len));
        let at = self.large.len();
        self.large.extend(self.small.drain(a..a + n).map(f32::from));
        for other in &mut self.entries {
            if !other.wide() && other.offset() > a {
                other.at -= n as u32;
            }
        }
        self.entries[i].at = at as u32 | WIDE;
        at
    }

    fn shrink_to_fit(&mut self) {
        self.entries.shrink_to_fit();
        self.small.shrink_to_fit();
        self.large.shrink_to_fit();
    }
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

/// The statement of a read (see [`read`]) and its values: with no mark, every rollup row and
/// the deltas not folded into them; past `mark`, the deltas stamped past it. Its columns: unit,
/// element, first day, value, stamp, cells.
fn read_statement(mark: Option<&Mark>, postgres: bool) -> (String, Vec<sea_orm::Value>) {
    let mark_row = if postgres {
        "SELECT NULL AS unit_code, pg_current_snapshot()::text AS element_code, \
         NULL::date AS month_start, NULL::float8 AS value, NULL::bigint AS stamp, \
         NULL::text AS cells"
    } else {
        "SELECT NULL AS unit_code, CAST(n AS TEXT) AS element_code, NULL AS month_start, \
         NULL AS value, NULL AS stamp, NULL AS cells FROM data_generation WHERE id = 2"
    };
    // The folds: the highest `upto` as `value`, and the highest pruned one as `stamp`.
    let folds = "SELECT 'folds', NULL, NULL, \
         (SELECT COALESCE(MAX(upto), 0) FROM unit_month_fold), \
         (SELECT COALESCE(MAX(upto), 0) FROM unit_month_fold WHERE pruned), NULL";
    let deltas = "NULL, NULL, NULL, NULL, seq, cells";
    match mark {
        Some(mark) => {
            let (d, values) = past_mark(deltas, "unit_month_delta", "seq", mark, postgres);
            (
                format!("{mark_row} UNION ALL {folds} UNION ALL {d}"),
                values,
            )
        }
        None => (
            format!(
                "{mark_row} UNION ALL {folds} UNION ALL \
                 SELECT unit_code, element_code, month_start, value, 0, NULL FROM unit_month_fact \
                 UNION ALL SELECT {deltas} FROM unit_month_delta WHERE seq > \
                 (SELECT COALESCE(MAX(upto), 0) FROM unit_month_fold)"
            ),
            Vec::new(),
        ),
    }
}

/// Reads, in one statement (one snapshot), with the read's mark and the folds: with no mark,
/// every rollup row and the deltas not folded into them (a load); past `mark`, the deltas
/// stamped past it, folded or not (a catch-up: rows are never read again). Each cell goes to
/// `sink` as it is read (a load reads millions: none is held).
pub(super) async fn read(
    db: &(impl ConnectionTrait + StreamTrait),
    hierarchy: &Hierarchy,
    element_index: &HashMap<String, u16>,
    mark: Option<&Mark>,
    sink: &mut (dyn FnMut(CellRead) + Send),
) -> Result<Found> {
    let backend = ConnectionTrait::get_database_backend(db);
    let postgres = backend == sea_orm::DbBackend::Postgres;
    let (sql, values) = read_statement(mark, postgres);
    // Streamed: a full load reads every rollup row, and holding them all as driver rows would
    // cost several times what they take decoded.
    let rows = db
        .stream_raw(crate::db::stmt(backend, &sql, values))
        .await?;
    let mut rows = std::pin::pin!(rows);
    let mut reading = Reading::new(hierarchy, element_index, postgres, sink);
    while let Some(r) = rows.next().await {
        let r = r?;
        let unit: Option<String> = r.try_get_by_index(0)?;
        let element: Option<String> = r.try_get_by_index(1)?;
        // The folds' `upto` is a float on PostgreSQL (the column's type), an integer on SQLite.
        let value = match r.try_get_by_index::<Option<f64>>(3) {
            Ok(v) => v,
            Err(_) => r.try_get_by_index::<Option<i64>>(3)?.map(|v| v as f64),
        };
        let cells: Option<String> = r.try_get_by_index(5)?;
        reading.take(Raw {
            unit: unit.as_deref(),
            element: element.as_deref(),
            day: r.try_get_by_index(2)?,
            value,
            stamp: r.try_get_by_index(4)?,
            cells: cells.as_deref(),
        });
    }
    Ok(reading.found)
}

/// A full read (no mark) on PostgreSQL, as [`read`] does it but through `COPY ... TO STDOUT`:
/// the same statement, sent as text lines. A nation's load reads tens of millions of rollup
/// rows, and a driver row costs several times what parsing a line does (this halves a load).
pub(super) async fn read_copied(
    pool: &sea_orm::sqlx::PgPool,
    hierarchy: &Hierarchy,
    element_index: &HashMap<String, u16>,
    sink: &mut (dyn FnMut(CellRead) + Send),
) -> Result<Found> {
    use sea_orm::sqlx::postgres::PgPoolCopyExt;
    let (sql, _) = read_statement(None, true);
    let driver = |e: sea_orm::sqlx::Error| {
        crate::error::Error::Db(sea_orm::DbErr::Query(sea_orm::RuntimeErr::SqlxError(
            std::sync::Arc::new(e),
        )))
    };
    let mut chunks = pool
        .copy_out_raw(&format!("COPY ({sql}) TO STDOUT"))
        .await
        .map_err(driver)?;
    let mut reading = Reading::new(hierarchy, element_index, true, sink);
    // PostgreSQL sends a line per message; a line split over messages is put together here.
    let mut buffer: Vec<u8> = Vec::new();
    while let Some(chunk) = chunks.next().await {
        buffer.extend_from_slice(&chunk.map_err(driver)?);
        let mut done = 0;
        while let Some(n) = buffer[done..].iter().position(|b| *b == b'\n') {
            reading.take_line(&buffer[done..done + n])?;
            done += n + 1;
        }
        buffer.drain(..done);
    }
    if !buffer.is_empty() {
        reading.take_line(&buffer)?;
    }
    Ok(reading.found)
}

/// One row of a read, however it came (a driver row or a line of `COPY`).
struct Raw<'a> {
    unit: Option<&'a str>,
    element: Option<&'a str>,
    day: Option<NaiveDate>,
    value: Option<f64>,
    stamp: Option<i64>,
    cells: Option<&'a str>,
}

/// A read under way: where its cells go, and what it found besides them.
struct Reading<'a> {
    hierarchy: &'a Hierarchy,
    element_index: &'a HashMap<String, u16>,
    postgres: bool,
    sink: &'a mut (dyn FnMut(CellRead) + Send),
    found: Found,
}

impl<'a> Reading<'a> {
    fn new(
        hierarchy: &'a Hierarchy,
        element_index: &'a HashMap<String, u16>,
        postgres: bool,
        sink: &'a mut (dyn FnMut(CellRead) + Send),
    ) -> Self {
        Self {
            hierarchy,
            element_index,
            postgres,
            sink,
            found: Found {
                mark: None,
                folded: 0,
                pruned: 0,
            },
        }
    }

    fn take(&mut self, r: Raw<'_>) {
        match (r.unit, r.stamp) {
            (Some("folds"), _) => {
                self.found.folded = r.value.map_or(0, |v| v as i64);
                self.found.pruned = r.stamp.unwrap_or(0);
            }
            // A delta: every cell it adds to.
            (None, Some(stamp)) => {
                for (unit, day, amounts) in delta_cells(r.cells.unwrap_or_default()) {
                    // Every delta's unit and elements are known (the writer's checks); a unit
                    // added since this copy was loaded is loaded with the next copy.
                    let Some(u) = self.hierarchy.unit(&unit) else {
                        continue;
                    };
                    for (element, v) in amounts {
                        if let Some(e) = self.element_index.get(&element) {
                            (self.sink)(((u, *e, day), Read::Delta(v, stamp)));
                        }
                    }
                }
            }
            // The mark.
            (None, None) => {
                let element = r.element.unwrap_or_default();
                self.found.mark = if self.postgres {
                    Mark::of_snapshot(element)
                } else {
                    element.parse().ok().map(Mark::of_counter)
                };
            }
            // A rollup row (its unit and element are known: foreign keys).
            (Some(unit), _) => {
                if let (Some(u), Some(e), Some(day), Some(value)) = (
                    self.hierarchy.unit(unit),
                    r.element.and_then(|e| self.element_index.get(e).copied()),
                    r.day,
                    r.value,
                ) {
                    (self.sink)(((u, e, day), Read::Row(value)));
                }
            }
        }
    }

    /// Takes one line of `COPY`'s text format: six fields split by tabs, `\N` for null.
    fn take_line(&mut self, line: &[u8]) -> Result<()> {
        let bad = || crate::error::Error::Internal("a rollup line COPY sent is malformed".into());
        let line = std::str::from_utf8(line).map_err(|_| bad())?;
        let mut fields = line.split('\t').map(copy_field);
        let mut next = || fields.next().ok_or_else(bad);
        let (unit, element, day, value, stamp, cells) =
            (next()?, next()?, next()?, next()?, next()?, next()?);
        let parse_day = |d: &str| iso_day(d).ok_or_else(bad);
        self.take(Raw {
            unit: unit.as_deref(),
            element: element.as_deref(),
            day: day.as_deref().map(parse_day).transpose()?,
            value: value
                .as_deref()
                .map(|v| v.parse())
                .transpose()
                .map_err(|_| bad())?,
            stamp: stamp
                .as_deref()
                .map(|v| v.parse())
                .transpose()
                .map_err(|_| bad())?,
            cells: cells.as_deref(),
        });
        Ok(())
    }
}

/// A day as PostgreSQL writes it (`YYYY-MM-DD`, the ISO style sqlx sets), read without the
/// general parser: a load reads tens of millions.
fn iso_day(d: &str) -> Option<NaiveDate> {
    let b = d.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return d.parse().ok();
    }
    let number = |s: &[u8]| {
        s.iter().try_fold(0u32, |n, c| {
            c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
        })
    };
    NaiveDate::from_ymd_opt(number(&b[..4])? as i32, number(&b[5..7])?, number(&b[8..])?)
}

/// A field of `COPY`'s text format: `\N` is null; a backslash escapes the character after it.
fn copy_field(field: &str) -> Option<std::borrow::Cow<'_, str>> {
    if field == "\\N" {
        return None;
    }
    if !field.contains('\\') {
        return Some(field.into());
    }
    let mut out = String::with_capacity(field.len());
    let mut chars = field.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('b') => out.push('\u{8}'),
            Some('f') => out.push('\u{c}'),
            Some('v') => out.push('\u{b}'),
            Some(other) => out.push(other),
            None => {}
        }
    }
    Some(out.into())
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
mod copy_tests {
    #![allow(clippy::unwrap_used)]
    use super::{Found, Reading, copy_field, iso_day};
    use crate::memory::Hierarchy;
    use chrono::NaiveDate;
    use std::collections::HashMap;

    #[test]
    fn copy_fields_unescape_and_null() {
        assert_eq!(copy_field("\\N"), None);
        assert_eq!(copy_field("05677").as_deref(), Some("05677"));
        assert_eq!(copy_field("a\\tb\\\\c\\nd").as_deref(), Some("a\tb\\c\nd"));
        assert_eq!(iso_day("2024-03-01"), NaiveDate::from_ymd_opt(2024, 3, 1));
        assert_eq!(iso_day("2024-02-30"), None);
        assert_eq!(iso_day("20x4-03-01"), None);
    }

    /// Each kind of line lands where a driver row of the same statement would.
    #[test]
    fn copy_lines_read_as_the_statements_rows() {
        let hierarchy = Hierarchy::default();
        let elements: HashMap<String, u16> = HashMap::new();
        let mut cells = 0;
        let mut sink = |_| cells += 1;
        let mut reading = Reading::new(&hierarchy, &elements, true, &mut sink);
        reading
            .take_line(b"\\N\t10:20:\t\\N\t\\N\t\\N\t\\N")
            .unwrap();
        reading.take_line(b"folds\t\\N\t\\N\t17\t12\t\\N").unwrap();
        // A row of a unit this copy does not know is left out, as a driver row's would be.
        reading
            .take_line(b"99999\tACTIVITIES\t2024-03-01\t2.5\t0\t\\N")
            .unwrap();
        assert!(reading.take_line(b"folds\t\\N").is_err());
        assert!(reading.take_line(b"x\tE\tnot a day\t1\t0\t\\N").is_err());
        let Found {
            mark,
            folded,
            pruned,
        } = reading.found;
        assert!(mark.is_some());
        assert_eq!((folded, pruned), (17, 12));
        assert_eq!(cells, 0);
    }
}

#[cfg(test)]
mod held_tests {
    use super::{LeafFlows, Read, Rollups, RollupsRead};
    use crate::memory::Hierarchy;
    use chrono::NaiveDate;
    use cnscd_entity::codes::UnitLevel::{Commune, Hamlet, Province};
    use std::sync::RwLock;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap_or_default()
    }

    /// A commune the catalogue lists no hamlets for answers from the copy, like one with
    /// hamlets; a hamlet's flows are left to its rollup rows (read per answer).
    #[test]
    fn every_unit_above_hamlet_level_answers_from_the_copy() {
        let (min, max) = (d("2000-01-01"), d("9999-12-31"));
        let h = Hierarchy::from_parts(
            Vec::new(),
            vec![
                ("P", "P", 0, Province, min, max),
                ("C1", "C1", 0, Commune, min, max),
                ("C2", "C2", 0, Commune, min, max),
                ("H", "H", 0, Hamlet, min, max),
                ("P", "C1", 1, Commune, min, max),
                ("P", "C2", 1, Commune, min, max),
                ("C1", "H", 1, Hamlet, min, max),
                ("P", "H", 2, Hamlet, min, max),
            ],
        );
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

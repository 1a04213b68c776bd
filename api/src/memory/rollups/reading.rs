//! Reading the rollups: the rows, the deltas and the read's mark in one statement (one
//! snapshot), sent as driver rows or, for a load on PostgreSQL, as the lines of `COPY`.
use super::{CellRead, Found, Read, delta_cells};
use crate::error::Result;
use crate::memory::hierarchy::Hierarchy;
use crate::memory::marks::{Mark, past_mark};
use async_graphql::futures_util::StreamExt;
use chrono::NaiveDate;
use sea_orm::{ConnectionTrait, StreamTrait};
use std::collections::HashMap;

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
pub(in crate::memory) async fn read(
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
pub(in crate::memory) async fn read_copied(
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

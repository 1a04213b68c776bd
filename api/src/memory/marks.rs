//! Marks: how far a copy has read a log of stamped rows (the rollup rows and deltas, the data
//! change log), and the one statement a request runs to learn whether the copy is current.
//!
//! A row is stamped by the transaction that writes it: on PostgreSQL with the transaction's id
//! (the columns' default), on SQLite with a counter its one writer at a time takes. A mark is
//! taken by the statement that reads: rows stamped from `from` on, or with one of the stamps
//! of `running` (PostgreSQL: transactions still running when the statement read), may still
//! appear; every other row was read as it stays. So each row is read exactly once, and a copy
//! catches up by reading the rows past its mark.
use crate::db::query;
use crate::error::Result;
use sea_orm::{ConnectionTrait, StreamTrait};

/// Where a copy stands in a stamped log (see the module's documentation).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Mark {
    pub(crate) from: i64,
    /// Comma-separated stamps.
    pub(crate) running: String,
}

impl Mark {
    /// The mark of a read done with the PostgreSQL snapshot `xmin:xmax:xip,...`.
    pub(crate) fn of_snapshot(snapshot: &str) -> Option<Self> {
        let mut parts = snapshot.split(':');
        let (_xmin, xmax, xip) = (parts.next()?, parts.next()?, parts.next().unwrap_or(""));
        Some(Self {
            from: xmax.parse().ok()?,
            running: xip.to_owned(),
        })
    }

    /// The mark of a read that saw the counter at `n` (SQLite).
    pub(crate) fn of_counter(n: i64) -> Self {
        Self {
            from: n + 1,
            running: String::new(),
        }
    }

    /// The lowest stamp a row not yet read may have.
    pub(crate) fn lowest_unread(&self) -> i64 {
        self.running
            .split(',')
            .filter_map(|s| s.trim().parse::<i64>().ok())
            .chain(std::iter::once(self.from))
            .min()
            .unwrap_or(self.from)
    }

    /// The condition "stamped past this mark" on `column`, as two branches an index serves
    /// under a generic plan too (an `OR` of the two is a sequential scan there), and their
    /// values in order: `(sql with {c} for the column, values)`. The branches are written as
    /// `{c} >= ?` and `{c} IN (…)` over the running stamps, below `from`.
    pub(crate) fn past(&self, postgres: bool) -> (String, String, Vec<sea_orm::Value>) {
        if !postgres {
            return ("{c} >= ?".to_owned(), String::new(), vec![self.from.into()]);
        }
        (
            "{c} >= ?".to_owned(),
            "{c} = ANY(string_to_array(?, ',')::bigint[]) AND {c} < ?".to_owned(),
            vec![
                self.from.into(),
                self.running.clone().into(),
                self.from.into(),
            ],
        )
    }
}

/// `SELECT … FROM {table} WHERE <past the mark>` as one statement (two index-served branches
/// on PostgreSQL), with `{select}` the column list, and its values.
pub(crate) fn past_mark(
    select: &str,
    table: &str,
    column: &str,
    mark: &Mark,
    postgres: bool,
) -> (String, Vec<sea_orm::Value>) {
    let (first, second, values) = mark.past(postgres);
    let sql = if second.is_empty() {
        format!(
            "SELECT {select} FROM {table} WHERE {}",
            first.replace("{c}", column)
        )
    } else {
        format!(
            "SELECT {select} FROM {table} WHERE {} UNION ALL SELECT {select} FROM {table} WHERE {}",
            first.replace("{c}", column),
            second.replace("{c}", column)
        )
    };
    (sql, values)
}

/// The database's data generation, and whether rollup deltas may have been written past
/// `mark` (the copy's, if there is one), in one statement. (Rollup rows change only by folds
/// of deltas, which a copy reads as deltas, or by hand, which the data change log carries.)
///
/// On PostgreSQL the check runs on every request, as a prepared statement that switches to a
/// generic plan after its fifth run on a connection, planned without the mark's values: it
/// must not depend on them to stay on the `seq` indexes. "Stamped past the mark" as a filter
/// does (in a generic plan, `seq >= $1 OR seq = ANY(…)` is estimated to match a third of the
/// rows or more, and a table whose rows share a few stamps, as a rebuild leaves them, is read
/// whole). So the same question is asked as index look-ups that read one entry each whatever
/// the values: a row stamped at or past `from` exists when the highest stamp is (`max(seq)`,
/// the last entry of the index); a row stamped by a transaction that was running exists when
/// the lowest stamp at or past it is its own (`min(seq) … WHERE seq >= x`, the first entry
/// from `x` on).
pub async fn generations(
    db: &(impl ConnectionTrait + StreamTrait),
    mark: Option<&Mark>,
) -> Result<(i64, bool)> {
    let postgres = ConnectionTrait::get_database_backend(db) == sea_orm::DbBackend::Postgres;
    let rows = match mark {
        Some(mark) if postgres => {
            query(
                db,
                "SELECT id, n FROM data_generation WHERE id = 1 UNION ALL \
                 SELECT 2, COUNT(*) FROM (SELECT 1 FROM (SELECT max(seq) AS m FROM \
                 unit_month_delta) h WHERE m >= ? UNION ALL SELECT 1 FROM \
                 unnest(string_to_array(?, ',')::bigint[]) r(x) \
                 WHERE (SELECT min(seq) FROM unit_month_delta WHERE seq >= r.x) = r.x \
                 LIMIT 1) p",
                vec![mark.from.into(), mark.running.clone().into()],
            )
            .await?
        }
        _ => query(db, "SELECT id, n FROM data_generation", vec![]).await?,
    };
    let (mut data, mut pending) = (0, false);
    for r in rows {
        let n: i64 = r.try_get("", "n")?;
        match (r.try_get::<i32>("", "id")?, mark) {
            (1, _) => data = n,
            (_, None) => {}
            (_, Some(_)) if postgres => pending = n > 0,
            (_, Some(mark)) => pending = n >= mark.from,
        }
    }
    Ok((data, pending))
}

/// The data generation and the change log's mark, read in one statement: a copy loaded after
/// it holds every change up to the generation, and reads the log from the mark on.
pub(crate) async fn current_mark(db: &impl ConnectionTrait) -> Result<(i64, Mark)> {
    let postgres = db.get_database_backend() == sea_orm::DbBackend::Postgres;
    let sql = if postgres {
        "SELECT n, pg_current_snapshot()::text AS mark FROM data_generation WHERE id = 1"
    } else {
        "SELECT n, CAST((SELECT COALESCE(MAX(stamp), 0) FROM data_change) AS TEXT) AS mark \
         FROM data_generation WHERE id = 1"
    };
    let rows = query(db, sql, vec![]).await?;
    let Some(r) = rows.first() else {
        return Ok((0, Mark::default()));
    };
    let n: i64 = r.try_get("", "n")?;
    let mark: String = r.try_get("", "mark")?;
    let mark = if postgres {
        Mark::of_snapshot(&mark)
    } else {
        mark.parse().ok().map(Mark::of_counter)
    };
    Ok((n, mark.unwrap_or_default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mark_knows_the_lowest_stamp_it_has_not_read() {
        let m = Mark::of_snapshot("100:120:105,111").unwrap_or_default();
        assert_eq!(m.from, 120);
        assert_eq!(m.lowest_unread(), 105);
        assert_eq!(Mark::of_counter(7).lowest_unread(), 8);
    }

    #[test]
    fn past_a_mark_is_two_branches_on_postgres() {
        let m = Mark::of_snapshot("1:9:3").unwrap_or_default();
        let (sql, values) = past_mark("a", "t", "s", &m, true);
        assert_eq!(
            sql,
            "SELECT a FROM t WHERE s >= ? UNION ALL SELECT a FROM t WHERE \
             s = ANY(string_to_array(?, ',')::bigint[]) AND s < ?"
        );
        assert_eq!(values.len(), 3);
        let (sql, values) = past_mark("a", "t", "s", &Mark::of_counter(4), false);
        assert_eq!(sql, "SELECT a FROM t WHERE s >= ?");
        assert_eq!(values, vec![sea_orm::Value::from(5i64)]);
    }
}

//! Rows written in bulk inside one transaction: PostgreSQL's `COPY ... FROM STDIN` (text
//! format, sent in chunks of a few megabytes while the next chunk is generated), or SQLite's
//! multi-row INSERTs (one prepared statement, reused). The [`Loader`] is also a sea-orm
//! connection on the same transaction, so the unit importer and any query run inside it.
//!
//! While it loads, a table's secondary indexes (and, on PostgreSQL, its foreign keys) are
//! set aside and created again at the end ([`Loader::set_aside`], [`Loader::restore`]): an
//! index built once from all its rows is several times cheaper than one kept up row by row,
//! and a foreign key added back is checked by one join instead of one probe per row. Both
//! are checked in full when they come back, inside the transaction: a row that breaks one
//! fails the load and nothing is kept.
use crate::db::WriteTxn;
use crate::error::{Error, Result};
use crate::seed::progress::Progress;
use chrono::{DateTime, Datelike, NaiveDate, Timelike, Utc};
use sea_orm::sqlx::{self, Postgres};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, DbErr, ExecResult, QueryResult, RuntimeErr,
    Statement, Value,
};
use std::sync::Arc;
use tokio::sync::{Mutex, mpsc};

/// Bytes of COPY text per message sent to PostgreSQL.
const CHUNK_BYTES: usize = 1 << 20;
/// Chunks generated ahead of what PostgreSQL has taken.
const CHUNKS_AHEAD: usize = 4;
/// Bound parameters per SQLite INSERT (well inside its limit of 32,766).
const SQLITE_PARAMS: usize = 8_000;

fn sqlx_err(e: sqlx::Error) -> DbErr {
    DbErr::Exec(RuntimeErr::SqlxError(Arc::new(e)))
}

/// The write transaction a data set is loaded in.
pub struct Loader {
    inner: Inner,
    /// Definitions set aside by [`Loader::set_aside`]: (statement that drops, statement that
    /// creates again).
    aside: std::sync::Mutex<Vec<(String, String)>>,
}

enum Inner {
    /// A transaction of our own on a connection of the pool (`None` while a COPY holds it).
    Postgres(Mutex<Option<sqlx::Transaction<'static, Postgres>>>),
    Sqlite(WriteTxn),
}

impl Loader {
    /// Begins the transaction, with settings for a bulk load.
    pub async fn begin(db: &DatabaseConnection) -> Result<Self> {
        let inner = match db.get_database_backend() {
            DbBackend::Postgres => {
                let mut tx = db
                    .get_postgres_connection_pool()
                    .begin()
                    .await
                    .map_err(sqlx_err)?;
                // The commit waits for nothing but the disk's own pace (a crash before the
                // flush loses the load, never half of it); index builds sort in memory.
                sqlx::raw_sql(
                    "SET LOCAL synchronous_commit = off; \
                     SET LOCAL maintenance_work_mem = '256MB'",
                )
                .execute(&mut *tx)
                .await
                .map_err(sqlx_err)?;
                Inner::Postgres(Mutex::new(Some(tx)))
            }
            _ => {
                // A larger page cache for this connection while it loads (it stays with the
                // connection: harmless, the pool's connections are few).
                db.execute_unprepared("PRAGMA cache_size = -262144").await?;
                Inner::Sqlite(crate::db::begin_write(db).await?)
            }
        };
        Ok(Self {
            inner,
            aside: std::sync::Mutex::new(Vec::new()),
        })
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self.inner, Inner::Postgres(_))
    }

    pub async fn commit(self) -> Result<()> {
        match self.inner {
            Inner::Postgres(tx) => match tx.into_inner() {
                Some(tx) => tx.commit().await.map_err(sqlx_err)?,
                None => return Err(Error::Internal("the load's connection was lost".into())),
            },
            Inner::Sqlite(txn) => txn.commit().await?,
        }
        Ok(())
    }

    /// Sets aside the secondary indexes of `tables` (and on PostgreSQL their foreign keys, and
    /// the primary keys of `keyed`: composite text keys that cost more kept up row by row than
    /// built once) until [`Loader::restore`].
    pub async fn set_aside(&self, tables: &[&str], keyed: &[&str]) -> Result<()> {
        let mut found: Vec<(String, String)> = Vec::new();
        for table in tables {
            if self.is_postgres() {
                let kinds = if keyed.contains(table) { "fp" } else { "f" };
                for r in crate::db::query(
                    self,
                    "SELECT conname AS name, pg_get_constraintdef(oid) AS def FROM pg_constraint \
                     WHERE conrelid = CAST(? AS regclass) AND strpos(?, contype::text) > 0 \
                     ORDER BY contype DESC, conname",
                    vec![(*table).into(), kinds.into()],
                )
                .await?
                {
                    let name: String = r.try_get("", "name")?;
                    let def: String = r.try_get("", "def")?;
                    found.push((
                        format!("ALTER TABLE {table} DROP CONSTRAINT {name}"),
                        format!("ALTER TABLE {table} ADD CONSTRAINT {name} {def}"),
                    ));
                }
                for r in crate::db::query(
                    self,
                    "SELECT CAST(i.indexrelid AS regclass)::text AS name, \
                     pg_get_indexdef(i.indexrelid) AS def FROM pg_index i \
                     WHERE i.indrelid = CAST(? AS regclass) AND NOT i.indisprimary \
                     AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid) \
                     ORDER BY 1",
                    vec![(*table).into()],
                )
                .await?
                {
                    let name: String = r.try_get("", "name")?;
                    let def: String = r.try_get("", "def")?;
                    found.push((format!("DROP INDEX {name}"), def));
                }
            } else {
                // Indexes SQLite made for a constraint have no SQL and stay.
                for r in crate::db::query(
                    self,
                    "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? \
                     AND sql IS NOT NULL ORDER BY name",
                    vec![(*table).into()],
                )
                .await?
                {
                    let name: String = r.try_get("", "name")?;
                    let def: String = r.try_get("", "sql")?;
                    found.push((format!("DROP INDEX \"{name}\""), def));
                }
            }
        }
        for (drop, _) in &found {
            self.execute_unprepared(drop).await?;
        }
        self.aside
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(found);
        Ok(())
    }

    /// Creates again what [`Loader::set_aside`] set aside, checking every row: primary keys
    /// and indexes, then the foreign keys (added unchecked, then validated: one statement
    /// each, so the progress line can tell them apart).
    pub async fn restore(&self, progress: &Progress) -> Result<()> {
        let aside = std::mem::take(&mut *self.aside.lock().unwrap_or_else(|e| e.into_inner()));
        let (keys, indexes): (Vec<_>, Vec<_>) = aside
            .into_iter()
            .partition(|(_, create)| create.contains(" FOREIGN KEY "));
        progress.phase("indexes", Some(indexes.len() as u64));
        for (i, (_, create)) in indexes.iter().enumerate() {
            self.execute_unprepared(create).await?;
            progress.set(i as u64 + 1);
        }
        progress.phase("foreign keys", Some(keys.len() as u64));
        for (i, (_, create)) in keys.iter().enumerate() {
            self.execute_unprepared(&format!("{create} NOT VALID"))
                .await?;
            let (table, name) = foreign_key_of(create);
            self.execute_unprepared(&format!("ALTER TABLE {table} VALIDATE CONSTRAINT {name}"))
                .await?;
            progress.set(i as u64 + 1);
        }
        Ok(())
    }

    /// Starts writing rows of `table` (`columns` in this order).
    pub async fn writer(&self, table: &str, columns: &[&str]) -> Result<Writer<'_>> {
        let sink = match &self.inner {
            Inner::Postgres(slot) => {
                let Some(mut tx) = slot.lock().await.take() else {
                    return Err(Error::Internal("a COPY is already running".into()));
                };
                let sql = format!("COPY {table} ({}) FROM STDIN", columns.join(", "));
                let (send, mut receive) = mpsc::channel::<Vec<u8>>(CHUNKS_AHEAD);
                // The COPY runs as a task of its own, fed through the channel: the generator
                // formats the next chunk while the last one goes out.
                let task = tokio::spawn(async move {
                    let result = async {
                        let mut copy = tx.copy_in_raw(&sql).await?;
                        while let Some(chunk) = receive.recv().await {
                            if let Err(e) = copy.send(chunk).await {
                                copy.abort("the load failed").await.ok();
                                return Err(e);
                            }
                        }
                        copy.finish().await
                    }
                    .await;
                    (tx, result)
                });
                Sink::Copy {
                    send: Some(send),
                    task: Some(task),
                }
            }
            Inner::Sqlite(_) => {
                let per_insert = (SQLITE_PARAMS / columns.len().max(1)).max(1);
                let row = format!("({})", vec!["?"; columns.len()].join(", "));
                Sink::Insert {
                    head: format!("INSERT INTO {table} ({}) VALUES ", columns.join(", ")),
                    row,
                    per_insert,
                    full: String::new(),
                }
            }
        };
        let rows = match sink {
            Sink::Copy { .. } => Rows::text(),
            Sink::Insert { .. } => Rows::values(),
        };
        Ok(Writer {
            loader: self,
            sink,
            rows,
            written: 0,
        })
    }

    async fn sqlite_insert(&self, sql: &str, values: Vec<Value>) -> Result<()> {
        self.execute_raw(Statement::from_sql_and_values(
            DbBackend::Sqlite,
            sql,
            values,
        ))
        .await?;
        Ok(())
    }
}

/// The table and constraint of `ALTER TABLE t ADD CONSTRAINT c ...`.
fn foreign_key_of(create: &str) -> (&str, &str) {
    let mut words = create.split_whitespace().skip(2);
    let table = words.next().unwrap_or_default();
    let name = words.nth(2).unwrap_or_default();
    (table, name)
}

enum Sink {
    Copy {
        send: Option<mpsc::Sender<Vec<u8>>>,
        #[allow(clippy::type_complexity)]
        task: Option<
            tokio::task::JoinHandle<(
                sqlx::Transaction<'static, Postgres>,
                std::result::Result<u64, sqlx::Error>,
            )>,
        >,
    },
    Insert {
        head: String,
        row: String,
        per_insert: usize,
        /// The statement for a full batch, built once (SQLite prepares it once).
        full: String,
    },
}

/// Rows of one table on their way to the database: add rows with [`Writer::row`], call
/// [`Writer::flush_if_full`] now and then, and [`Writer::finish`] at the end.
pub struct Writer<'a> {
    loader: &'a Loader,
    sink: Sink,
    rows: Rows,
    written: u64,
}

impl Writer<'_> {
    /// The next row: put its fields in column order, then [`Row::end`].
    pub fn row(&mut self) -> Row<'_> {
        Row {
            rows: &mut self.rows,
        }
    }

    /// Rows written so far (sent or waiting in the buffer).
    pub fn count(&self) -> u64 {
        self.written + self.rows.count as u64
    }

    /// Sends the buffered rows when there are enough of them.
    pub async fn flush_if_full(&mut self) -> Result<()> {
        let full = match &self.sink {
            Sink::Copy { .. } => self.rows.text.len() >= CHUNK_BYTES,
            Sink::Insert { per_insert, .. } => self.rows.count >= *per_insert,
        };
        if full { self.flush().await } else { Ok(()) }
    }

    async fn flush(&mut self) -> Result<()> {
        if self.rows.count == 0 {
            return Ok(());
        }
        self.written += self.rows.count as u64;
        match &mut self.sink {
            Sink::Copy { send, .. } => {
                let chunk =
                    std::mem::replace(&mut self.rows.text, Vec::with_capacity(CHUNK_BYTES + 4096));
                self.rows.count = 0;
                let sent = match send {
                    Some(s) => s.send(chunk).await.is_ok(),
                    None => false,
                };
                if !sent {
                    // The COPY task ended early: its error is what `finish` reports.
                    return self.finish_copy().await.map(|_| ());
                }
            }
            Sink::Insert {
                head,
                row,
                per_insert,
                full,
            } => {
                let values = std::mem::take(&mut self.rows.values);
                let n = std::mem::take(&mut self.rows.count);
                let cols = values.len() / n.max(1);
                let mut values = values.into_iter();
                let mut left = n;
                while left > 0 {
                    let take = left.min(*per_insert);
                    let batch: Vec<Value> = values.by_ref().take(take * cols).collect();
                    let sql = if take == *per_insert {
                        if full.is_empty() {
                            *full = format!("{head}{}", vec![row.as_str(); take].join(", "));
                        }
                        full.clone()
                    } else {
                        format!("{head}{}", vec![row.as_str(); take].join(", "))
                    };
                    self.loader.sqlite_insert(&sql, batch).await?;
                    left -= take;
                }
            }
        }
        Ok(())
    }

    async fn finish_copy(&mut self) -> Result<u64> {
        let Sink::Copy { send, task } = &mut self.sink else {
            return Ok(self.written);
        };
        drop(send.take());
        let Some(task) = task.take() else {
            return Ok(self.written);
        };
        let (tx, result) = task
            .await
            .map_err(|e| Error::Internal(format!("the COPY task failed: {e}")))?;
        if let Inner::Postgres(slot) = &self.loader.inner {
            *slot.lock().await = Some(tx);
        }
        result.map_err(|e| Error::from(sqlx_err(e)))
    }

    /// Sends what is left and ends the table; returns the rows written.
    pub async fn finish(mut self) -> Result<u64> {
        self.flush().await?;
        self.finish_copy().await?;
        Ok(self.written)
    }
}

/// Buffered rows: COPY text (PostgreSQL) or bound values (SQLite).
struct Rows {
    postgres: bool,
    text: Vec<u8>,
    values: Vec<Value>,
    count: usize,
}

impl Rows {
    fn text() -> Self {
        Self {
            postgres: true,
            text: Vec::with_capacity(CHUNK_BYTES + 4096),
            values: Vec::new(),
            count: 0,
        }
    }

    fn values() -> Self {
        Self {
            postgres: false,
            text: Vec::new(),
            values: Vec::with_capacity(SQLITE_PARAMS + 64),
            count: 0,
        }
    }
}

/// One row being written: fields in column order, then [`Row::end`].
pub struct Row<'a> {
    rows: &'a mut Rows,
}

impl Row<'_> {
    pub fn put(self, field: impl Field) -> Self {
        if self.rows.postgres {
            field.text(&mut self.rows.text);
            self.rows.text.push(b'\t');
        } else {
            self.rows.values.push(field.value());
        }
        self
    }

    pub fn end(self) {
        if self.rows.postgres
            && let Some(last) = self.rows.text.last_mut()
        {
            // The last field's tab becomes the line's end.
            *last = b'\n';
        }
        self.rows.count += 1;
    }
}

/// A value of a column, as COPY text or as a bound value.
pub trait Field {
    /// Appends the value in COPY's text format.
    fn text(&self, out: &mut Vec<u8>);
    fn value(self) -> Value;
}

fn digits(out: &mut Vec<u8>, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

fn two(out: &mut Vec<u8>, n: u32) {
    out.push(b'0' + (n / 10 % 10) as u8);
    out.push(b'0' + (n % 10) as u8);
}

impl Field for i64 {
    fn text(&self, out: &mut Vec<u8>) {
        if *self < 0 {
            out.push(b'-');
        }
        digits(out, self.unsigned_abs());
    }
    fn value(self) -> Value {
        Value::BigInt(Some(self))
    }
}

impl Field for i32 {
    fn text(&self, out: &mut Vec<u8>) {
        i64::from(*self).text(out);
    }
    fn value(self) -> Value {
        Value::Int(Some(self))
    }
}

impl Field for f64 {
    fn text(&self, out: &mut Vec<u8>) {
        if self.fract() == 0.0 && self.abs() < 1e15 {
            (*self as i64).text(out);
        } else {
            out.extend_from_slice(self.to_string().as_bytes());
        }
    }
    fn value(self) -> Value {
        Value::Double(Some(self))
    }
}

impl Field for bool {
    fn text(&self, out: &mut Vec<u8>) {
        out.push(if *self { b't' } else { b'f' });
    }
    fn value(self) -> Value {
        Value::Bool(Some(self))
    }
}

impl Field for &str {
    fn text(&self, out: &mut Vec<u8>) {
        for b in self.bytes() {
            match b {
                b'\\' => out.extend_from_slice(b"\\\\"),
                b'\t' => out.extend_from_slice(b"\\t"),
                b'\n' => out.extend_from_slice(b"\\n"),
                b'\r' => out.extend_from_slice(b"\\r"),
                _ => out.push(b),
            }
        }
    }
    fn value(self) -> Value {
        Value::String(Some(self.to_owned()))
    }
}

impl Field for &String {
    fn text(&self, out: &mut Vec<u8>) {
        self.as_str().text(out);
    }
    fn value(self) -> Value {
        Value::String(Some(self.clone()))
    }
}

impl Field for NaiveDate {
    fn text(&self, out: &mut Vec<u8>) {
        digits(out, self.year().max(0) as u64);
        out.push(b'-');
        two(out, self.month());
        out.push(b'-');
        two(out, self.day());
    }
    fn value(self) -> Value {
        Value::ChronoDate(Some(self))
    }
}

impl Field for DateTime<Utc> {
    fn text(&self, out: &mut Vec<u8>) {
        self.date_naive().text(out);
        out.push(b' ');
        two(out, self.hour());
        out.push(b':');
        two(out, self.minute());
        out.push(b':');
        two(out, self.second());
        out.extend_from_slice(b"+00");
    }
    fn value(self) -> Value {
        Value::ChronoDateTimeUtc(Some(self))
    }
}

/// A null of the column's type (SQLite binds it typed, PostgreSQL reads `\N`).
pub struct Null<T>(std::marker::PhantomData<T>);

impl<T> Null<T> {
    pub fn new() -> Self {
        Self(std::marker::PhantomData)
    }
}

impl<T> Default for Null<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Field> Field for Option<T>
where
    Null<T>: Field,
{
    fn text(&self, out: &mut Vec<u8>) {
        match self {
            Some(v) => v.text(out),
            None => out.extend_from_slice(b"\\N"),
        }
    }
    fn value(self) -> Value {
        match self {
            Some(v) => v.value(),
            None => Null::<T>::new().value(),
        }
    }
}

macro_rules! null_of {
    ($t:ty, $v:expr) => {
        impl Field for Null<$t> {
            fn text(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(b"\\N");
            }
            fn value(self) -> Value {
                $v
            }
        }
    };
}
null_of!(i64, Value::BigInt(None));
null_of!(i32, Value::Int(None));
null_of!(f64, Value::Double(None));
null_of!(&str, Value::String(None));
null_of!(&String, Value::String(None));
null_of!(NaiveDate, Value::ChronoDate(None));

#[async_trait::async_trait]
impl ConnectionTrait for Loader {
    fn get_database_backend(&self) -> DbBackend {
        match self.inner {
            Inner::Postgres(_) => DbBackend::Postgres,
            Inner::Sqlite(_) => DbBackend::Sqlite,
        }
    }

    async fn execute_raw(&self, stmt: Statement) -> std::result::Result<ExecResult, DbErr> {
        match &self.inner {
            Inner::Postgres(slot) => {
                let mut guard = slot.lock().await;
                let tx = busy(&mut guard)?;
                let values =
                    sea_query_sqlx::SqlxValues(stmt.values.unwrap_or(sea_orm::Values(Vec::new())));
                let done = sqlx::query_with(sqlx::AssertSqlSafe(stmt.sql), values)
                    .execute(&mut **tx)
                    .await
                    .map_err(sqlx_err)?;
                Ok(done.into())
            }
            Inner::Sqlite(txn) => txn.execute_raw(stmt).await,
        }
    }

    async fn execute_unprepared(&self, sql: &str) -> std::result::Result<ExecResult, DbErr> {
        match &self.inner {
            Inner::Postgres(slot) => {
                let mut guard = slot.lock().await;
                let tx = busy(&mut guard)?;
                let done = sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
                    .execute(&mut **tx)
                    .await
                    .map_err(sqlx_err)?;
                Ok(done.into())
            }
            Inner::Sqlite(txn) => txn.execute_unprepared(sql).await,
        }
    }

    async fn query_one_raw(
        &self,
        stmt: Statement,
    ) -> std::result::Result<Option<QueryResult>, DbErr> {
        match &self.inner {
            Inner::Postgres(_) => Ok(self.query_all_raw(stmt).await?.into_iter().next()),
            Inner::Sqlite(txn) => txn.query_one_raw(stmt).await,
        }
    }

    async fn query_all_raw(&self, stmt: Statement) -> std::result::Result<Vec<QueryResult>, DbErr> {
        match &self.inner {
            Inner::Postgres(slot) => {
                let mut guard = slot.lock().await;
                let tx = busy(&mut guard)?;
                let values =
                    sea_query_sqlx::SqlxValues(stmt.values.unwrap_or(sea_orm::Values(Vec::new())));
                let rows = sqlx::query_with(sqlx::AssertSqlSafe(stmt.sql), values)
                    .fetch_all(&mut **tx)
                    .await
                    .map_err(sqlx_err)?;
                Ok(rows.into_iter().map(QueryResult::from).collect())
            }
            Inner::Sqlite(txn) => txn.query_all_raw(stmt).await,
        }
    }

    fn support_returning(&self) -> bool {
        match &self.inner {
            Inner::Postgres(_) => true,
            Inner::Sqlite(txn) => txn.support_returning(),
        }
    }
}

fn busy<'a>(
    guard: &'a mut tokio::sync::MutexGuard<'_, Option<sqlx::Transaction<'static, Postgres>>>,
) -> std::result::Result<&'a mut sqlx::Transaction<'static, Postgres>, DbErr> {
    guard
        .as_mut()
        .ok_or_else(|| DbErr::Custom("the load's connection is busy with a COPY".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(f: impl Field) -> String {
        let mut out = Vec::new();
        f.text(&mut out);
        String::from_utf8(out).unwrap_or_default()
    }

    #[test]
    fn copy_text_escapes_and_formats() {
        assert_eq!(text("a\tb\\c\nd"), "a\\tb\\\\c\\nd");
        assert_eq!(text(-1203i64), "-1203");
        assert_eq!(text(0i32), "0");
        assert_eq!(text(12.0f64), "12");
        assert_eq!(text(12.5f64), "12.5");
        assert_eq!(text(None::<&str>), "\\N");
        let d = NaiveDate::from_ymd_opt(2025, 7, 1).unwrap_or_default();
        assert_eq!(text(d), "2025-07-01");
        let t = d
            .and_hms_opt(9, 5, 3)
            .map(|t| t.and_utc())
            .unwrap_or_default();
        assert_eq!(text(t), "2025-07-01 09:05:03+00");
        assert_eq!(text("Xóm Cà Phê"), "Xóm Cà Phê");
    }

    #[test]
    fn foreign_keys_are_named_from_their_statement() {
        assert_eq!(
            foreign_key_of(
                "ALTER TABLE activity ADD CONSTRAINT fk_activity_team FOREIGN KEY (team_id) \
                 REFERENCES team(id)"
            ),
            ("activity", "fk_activity_team")
        );
    }

    #[test]
    fn a_row_ends_with_a_newline() {
        let mut rows = Rows::text();
        Row { rows: &mut rows }
            .put(1i64)
            .put("x")
            .put(None::<i32>)
            .end();
        assert_eq!(String::from_utf8_lossy(&rows.text), "1\tx\t\\N\n");
        let mut rows = Rows::values();
        Row { rows: &mut rows }
            .put(1i64)
            .put("x")
            .put(None::<i32>)
            .end();
        assert_eq!(rows.values.len(), 3);
        assert_eq!(rows.count, 1);
    }
}

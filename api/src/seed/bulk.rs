//! Rows written in bulk inside one transaction: PostgreSQL's `COPY ... FROM STDIN` (binary
//! format, sent in chunks of a megabyte while the next chunk is generated), or SQLite's
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
use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::sqlx::{self, Postgres};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, DbErr, ExecResult, QueryResult, RuntimeErr,
    Statement, Value,
};
use std::sync::Arc;
use tokio::sync::{Mutex, mpsc};

/// Bytes of COPY data per message sent to PostgreSQL.
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
                     SET LOCAL maintenance_work_mem = '1GB'",
                )
                .execute(&mut *tx)
                .await
                .map_err(sqlx_err)?;
                Inner::Postgres(Mutex::new(Some(tx)))
            }
            _ => {
                let txn = crate::db::begin_write(db).await?;
                // A larger page cache for the transaction's connection while it loads (it
                // stays with the connection: harmless, the pool's connections are few).
                txn.execute_unprepared("PRAGMA cache_size = -262144")
                    .await?;
                Inner::Sqlite(txn)
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
                // The data change log's row triggers (a row per loaded row): off during the
                // load, which leaves one `reload` instead (see `restore`).
                for r in crate::db::query(
                    self,
                    "SELECT tgname AS name FROM pg_trigger WHERE tgrelid = CAST(? AS regclass) \
                     AND NOT tgisinternal AND tgname LIKE 'tr\\_%\\_change%' ORDER BY 1",
                    vec![(*table).into()],
                )
                .await?
                {
                    let name: String = r.try_get("", "name")?;
                    found.push((
                        format!("ALTER TABLE {table} DISABLE TRIGGER {name}"),
                        format!("ALTER TABLE {table} ENABLE TRIGGER {name}"),
                    ));
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
        progress.phase_of("indexes", Some(indexes.len() as u64), "statements");
        for (i, (_, create)) in indexes.iter().enumerate() {
            self.execute_unprepared(create).await?;
            progress.set(i as u64 + 1);
        }
        progress.phase_of("foreign keys", Some(keys.len() as u64), "statements");
        for (i, (_, create)) in keys.iter().enumerate() {
            self.execute_unprepared(&format!("{create} NOT VALID"))
                .await?;
            let (table, name) = foreign_key_of(create);
            self.execute_unprepared(&format!("ALTER TABLE {table} VALIDATE CONSTRAINT {name}"))
                .await?;
            progress.set(i as u64 + 1);
        }
        // The data change log holds one change for the whole load: a running server loads its
        // copy anew (the load went into an empty database, so nothing else is in the log; on
        // SQLite, whose row triggers stayed, the rows they wrote go).
        self.execute_unprepared("DELETE FROM data_change").await?;
        self.execute_unprepared("INSERT INTO data_change (kind, key) VALUES ('reload', '')")
            .await?;
        Ok(())
    }

    /// Starts writing rows of `table` (`columns` in this order).
    pub async fn writer(&self, table: &str, columns: &[&str]) -> Result<Writer<'_>> {
        let sink = match &self.inner {
            Inner::Postgres(slot) => {
                let Some(mut tx) = slot.lock().await.take() else {
                    return Err(Error::Internal("a COPY is already running".into()));
                };
                // Binary: PostgreSQL parses no dates, timestamps or numbers (a third of the
                // time a text COPY of the activities took).
                let sql = format!(
                    "COPY {table} ({}) FROM STDIN WITH (FORMAT binary)",
                    columns.join(", ")
                );
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
            Sink::Copy { .. } => Rows::binary(columns.len()),
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
        Row::start(&mut self.rows)
    }

    /// Rows written so far (sent or waiting in the buffer).
    pub fn count(&self) -> u64 {
        self.written + self.rows.count as u64
    }

    /// Sends the buffered rows when there are enough of them.
    pub async fn flush_if_full(&mut self) -> Result<()> {
        let full = match &self.sink {
            Sink::Copy { .. } => self.rows.data.len() >= CHUNK_BYTES,
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
                    std::mem::replace(&mut self.rows.data, Vec::with_capacity(CHUNK_BYTES + 4096));
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
        if let Sink::Copy { .. } = self.sink {
            // The trailer: a row of -1 fields.
            self.rows.data.extend_from_slice(&(-1i16).to_be_bytes());
            self.rows.count += 1;
            self.flush().await?;
            self.written -= 1;
        }
        self.flush().await?;
        self.finish_copy().await?;
        Ok(self.written)
    }
}

/// Buffered rows: COPY's binary format (PostgreSQL) or bound values (SQLite).
struct Rows {
    /// Fields per row, for PostgreSQL's rows (None: SQLite's values).
    columns: Option<i16>,
    data: Vec<u8>,
    values: Vec<Value>,
    count: usize,
}

/// The binary COPY header: signature, flags, no extension.
const BINARY_HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";

impl Rows {
    fn binary(columns: usize) -> Self {
        let mut data = Vec::with_capacity(CHUNK_BYTES + 4096);
        data.extend_from_slice(BINARY_HEADER);
        Self {
            columns: Some(columns as i16),
            data,
            values: Vec::new(),
            count: 0,
        }
    }

    fn values() -> Self {
        Self {
            columns: None,
            data: Vec::new(),
            values: Vec::with_capacity(SQLITE_PARAMS + 64),
            count: 0,
        }
    }
}

/// One row being written: fields in column order, then [`Row::end`].
pub struct Row<'a> {
    rows: &'a mut Rows,
}

impl<'a> Row<'a> {
    fn start(rows: &'a mut Rows) -> Self {
        if let Some(n) = rows.columns {
            rows.data.extend_from_slice(&n.to_be_bytes());
        }
        Self { rows }
    }

    pub fn put(self, field: impl Field) -> Self {
        if self.rows.columns.is_some() {
            field.binary(&mut self.rows.data);
        } else {
            self.rows.values.push(field.value());
        }
        self
    }

    pub fn end(self) {
        self.rows.count += 1;
    }
}

/// A value of a column, in COPY's binary format or as a bound value.
pub trait Field {
    /// Appends the field in COPY's binary format: its length (-1 for null), then its bytes
    /// as PostgreSQL sends that type (`…_send`).
    fn binary(&self, out: &mut Vec<u8>);
    fn value(self) -> Value;
}

fn field(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as i32).to_be_bytes());
    out.extend_from_slice(bytes);
}

/// PostgreSQL's epoch for dates and timestamps.
const PG_EPOCH: NaiveDate = match NaiveDate::from_ymd_opt(2000, 1, 1) {
    Some(d) => d,
    None => NaiveDate::MIN,
};

impl Field for i64 {
    fn binary(&self, out: &mut Vec<u8>) {
        field(out, &self.to_be_bytes());
    }
    fn value(self) -> Value {
        Value::BigInt(Some(self))
    }
}

impl Field for i32 {
    fn binary(&self, out: &mut Vec<u8>) {
        field(out, &self.to_be_bytes());
    }
    fn value(self) -> Value {
        Value::Int(Some(self))
    }
}

impl Field for f64 {
    fn binary(&self, out: &mut Vec<u8>) {
        field(out, &self.to_bits().to_be_bytes());
    }
    fn value(self) -> Value {
        Value::Double(Some(self))
    }
}

impl Field for bool {
    fn binary(&self, out: &mut Vec<u8>) {
        field(out, &[u8::from(*self)]);
    }
    fn value(self) -> Value {
        Value::Bool(Some(self))
    }
}

impl Field for &str {
    fn binary(&self, out: &mut Vec<u8>) {
        field(out, self.as_bytes());
    }
    fn value(self) -> Value {
        Value::String(Some(self.to_owned()))
    }
}

impl Field for &String {
    fn binary(&self, out: &mut Vec<u8>) {
        field(out, self.as_bytes());
    }
    fn value(self) -> Value {
        Value::String(Some(self.clone()))
    }
}

impl Field for NaiveDate {
    fn binary(&self, out: &mut Vec<u8>) {
        let days = (*self - PG_EPOCH).num_days() as i32;
        field(out, &days.to_be_bytes());
    }
    fn value(self) -> Value {
        Value::ChronoDate(Some(self))
    }
}

impl Field for DateTime<Utc> {
    fn binary(&self, out: &mut Vec<u8>) {
        let micros = (self.naive_utc() - PG_EPOCH.and_time(chrono::NaiveTime::MIN))
            .num_microseconds()
            .unwrap_or(0);
        field(out, &micros.to_be_bytes());
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
    fn binary(&self, out: &mut Vec<u8>) {
        match self {
            Some(v) => v.binary(out),
            None => out.extend_from_slice(&(-1i32).to_be_bytes()),
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
            fn binary(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(&(-1i32).to_be_bytes());
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

/// A sea-orm statement as a sqlx query with its values bound (the PostgreSQL transaction).
fn bound(
    stmt: Statement,
) -> sqlx::query::Query<'static, sqlx::Postgres, sea_query_sqlx::SqlxValues> {
    let values = sea_query_sqlx::SqlxValues(stmt.values.unwrap_or(sea_orm::Values(Vec::new())));
    sqlx::query_with(sqlx::AssertSqlSafe(stmt.sql), values)
}

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
                let done = bound(stmt).execute(&mut **tx).await.map_err(sqlx_err)?;
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
                let rows = bound(stmt).fetch_all(&mut **tx).await.map_err(sqlx_err)?;
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

    fn binary(f: impl Field) -> Vec<u8> {
        let mut out = Vec::new();
        f.binary(&mut out);
        out
    }

    #[test]
    fn copy_binary_fields_are_length_and_bytes() {
        assert_eq!(
            binary("Xóm"),
            [&[0, 0, 0, 4][..], "Xóm".as_bytes()].concat()
        );
        assert_eq!(
            binary(-2i64),
            [0, 0, 0, 8, 255, 255, 255, 255, 255, 255, 255, 254]
        );
        assert_eq!(binary(7i32), [0, 0, 0, 4, 0, 0, 0, 7]);
        assert_eq!(binary(None::<&str>), [255, 255, 255, 255]);
        assert_eq!(binary(1.0f64)[4..], 1.0f64.to_bits().to_be_bytes());
        // Days and microseconds since 2000-01-01.
        let d = NaiveDate::from_ymd_opt(2000, 1, 3).unwrap_or_default();
        assert_eq!(binary(d), [0, 0, 0, 4, 0, 0, 0, 2]);
        let t = d
            .and_hms_opt(0, 0, 1)
            .map(|t| t.and_utc())
            .unwrap_or_default();
        let micros: i64 = 2 * 86_400 * 1_000_000 + 1_000_000;
        assert_eq!(binary(t)[4..], micros.to_be_bytes());
        let before = NaiveDate::from_ymd_opt(1999, 12, 31).unwrap_or_default();
        assert_eq!(binary(before)[4..], (-1i32).to_be_bytes());
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
    fn a_row_starts_with_its_field_count() {
        let mut rows = Rows::binary(3);
        Row::start(&mut rows)
            .put(1i64)
            .put("x")
            .put(None::<i32>)
            .end();
        let row = &rows.data[BINARY_HEADER.len()..];
        assert_eq!(row[..2], [0, 3]);
        assert_eq!(row.len(), 2 + 12 + 5 + 4);
        assert_eq!(rows.count, 1);
        let mut rows = Rows::values();
        Row::start(&mut rows)
            .put(1i64)
            .put("x")
            .put(None::<i32>)
            .end();
        assert_eq!(rows.values.len(), 3);
        assert_eq!(rows.count, 1);
    }
}

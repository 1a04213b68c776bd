//! Database connection and the small helpers every service shares.
use crate::error::Error as AppError;
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr, EntityTrait,
    FromQueryResult, QueryResult, Statement, Value,
};
use std::time::Duration;

/// How long a statement waits for a pooled connection (and a new connection for the
/// database to answer) before failing with "the database is unavailable": short, so that
/// requests fail fast while the database is away rather than pile up.
pub const DEFAULT_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// Opens a pool. SQLite gets WAL, NORMAL synchronous, a busy timeout and foreign keys on
/// every connection of the pool.
pub async fn connect(url: &str) -> Result<DatabaseConnection, DbErr> {
    connect_pool(url, None, DEFAULT_ACQUIRE_TIMEOUT).await
}

/// Like [`connect`], waiting at most `acquire_timeout` for a connection, with at most `size`
/// connections (the default when `None`).
pub async fn connect_with(
    url: &str,
    size: Option<u32>,
    acquire_timeout: Duration,
) -> Result<DatabaseConnection, DbErr> {
    connect_pool(url, size, acquire_timeout).await
}

/// A pool of one connection, for tools whose statements depend on per-connection state
/// (`migrate fresh` turns SQLite's foreign keys off on its connection while it drops tables).
pub async fn connect_single(url: &str) -> Result<DatabaseConnection, DbErr> {
    connect_pool(url, Some(1), DEFAULT_ACQUIRE_TIMEOUT).await
}

async fn connect_pool(
    url: &str,
    size: Option<u32>,
    acquire_timeout: Duration,
) -> Result<DatabaseConnection, DbErr> {
    Database::connect(options(url, size, acquire_timeout)).await
}

/// A pool for a background loop beside the requests' pool: at most two connections, opened
/// when a statement needs one and closed after a second unused, so a loop that rarely has work
/// holds none.
pub async fn connect_background(
    url: &str,
    acquire_timeout: Duration,
) -> Result<DatabaseConnection, DbErr> {
    let mut opts = options(url, Some(2), acquire_timeout);
    opts.min_connections(0)
        .idle_timeout(Duration::from_secs(1))
        .connect_lazy(true);
    Database::connect(opts).await
}

fn options(url: &str, size: Option<u32>, acquire_timeout: Duration) -> ConnectOptions {
    let mut opts = ConnectOptions::new(url.to_owned());
    let sqlite = url.starts_with("sqlite:");
    if sqlite {
        // Per connection, so every connection of the pool gets them (a PRAGMA run through
        // the pool reaches one connection only): WAL, so readers never block the writer;
        // commits that wait for the disk only at checkpoints (an application crash loses
        // nothing committed; a power cut may lose the last commits); a busy timeout for
        // writers of other processes; foreign keys enforced (SQLite's own default is off).
        opts.map_sqlx_sqlite_opts(|o| {
            use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
            o.foreign_keys(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(5))
        });
    }
    // sqlx reports how long each acquire waited as an INFO event, which the telemetry layer
    // turns into the `cnscd_db_pool_acquire_seconds` histogram (logs never show it). INFO and
    // not TRACE, so that no layer asks for TRACE: that level would wake every trace and debug
    // call site of sqlx and sea-orm, once per row read (15% of a full load).
    opts.map_sqlx_sqlite_pool_opts(|o| o.acquire_time_level(log::LevelFilter::Info));
    opts.map_sqlx_postgres_pool_opts(|o| o.acquire_time_level(log::LevelFilter::Info));
    opts.connect_timeout(acquire_timeout)
        .acquire_timeout(acquire_timeout)
        .sqlx_logging(false)
        .max_connections(size.unwrap_or(if sqlite { 4 } else { 16 }));
    opts
}

/// Builds a statement from SQL written with `?` placeholders, numbering them for PostgreSQL.
pub fn stmt(backend: DbBackend, sql: &str, values: Vec<Value>) -> Statement {
    let sql = if backend == DbBackend::Postgres {
        let mut out = String::with_capacity(sql.len() + 16);
        let mut n = 0;
        for c in sql.chars() {
            if c == '?' {
                n += 1;
                out.push('$');
                out.push_str(&n.to_string());
            } else {
                out.push(c);
            }
        }
        out
    } else {
        sql.to_owned()
    };
    Statement::from_sql_and_values(backend, sql, values)
}

/// Runs a query written with `?` placeholders and returns its rows.
pub async fn query(
    db: &impl ConnectionTrait,
    sql: &str,
    values: Vec<Value>,
) -> Result<Vec<QueryResult>, DbErr> {
    db.query_all_raw(stmt(db.get_database_backend(), sql, values))
        .await
}

/// `?, ?, ?` for `n` values (`NULL` for none, so `IN ()` never appears).
pub fn placeholders(n: usize) -> String {
    if n == 0 {
        return "NULL".to_owned();
    }
    vec!["?"; n].join(", ")
}

/// A unique index, as each database names it in a violation: PostgreSQL by the index's name,
/// SQLite by its columns (`table.column, …`; it names no index).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unique {
    pub name: &'static str,
    pub columns: &'static str,
}

impl Unique {
    /// Whether `err` is a violation of this index (and not of another one).
    pub fn violated_by(&self, err: &DbErr) -> bool {
        match err.sql_err() {
            Some(sea_orm::SqlErr::UniqueConstraintViolation(message)) => {
                message.contains(&format!("\"{}\"", self.name))
                    || message
                        .rsplit_once("constraint failed: ")
                        .is_some_and(|(_, columns)| columns.trim() == self.columns)
            }
            _ => false,
        }
    }
}

/// The idempotency guard of a key, per caller: shared by every write that takes a key (intake
/// batches, reported figures).
pub const IDEMPOTENCY_KEY: Unique = Unique {
    name: "ux_idempotency",
    columns: "idempotency_record.scope, idempotency_record.idempotency_key",
};

/// Maps the violation of one unique index to the caller's error: the one way every service
/// turns "this already exists" into a `CONFLICT` that says what exists. Any other error stays
/// as it was, so the indexes of one table are told apart by calls in a row
/// (`e.on_unique(A, …).on_unique(B, …)`).
pub trait OnUnique {
    fn on_unique(self, index: Unique, conflict: impl FnOnce() -> AppError) -> AppError;
}

impl OnUnique for DbErr {
    fn on_unique(self, index: Unique, conflict: impl FnOnce() -> AppError) -> AppError {
        AppError::Db(self).on_unique(index, conflict)
    }
}

impl OnUnique for AppError {
    fn on_unique(self, index: Unique, conflict: impl FnOnce() -> AppError) -> AppError {
        match self {
            AppError::Db(e) if index.violated_by(&e) => conflict(),
            other => other,
        }
    }
}

/// A WHERE clause built from `?`-placeholder fragments and their values.
#[derive(Default, Debug, Clone)]
pub struct Where {
    parts: Vec<String>,
    pub values: Vec<Value>,
}

impl Where {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `AND (fragment)` with its values.
    pub fn and(&mut self, fragment: impl Into<String>, values: impl IntoIterator<Item = Value>) {
        self.parts.push(fragment.into());
        self.values.extend(values);
    }

    /// ` WHERE a AND b` or the empty string.
    pub fn sql(&self) -> String {
        if self.parts.is_empty() {
            String::new()
        } else {
            format!(" WHERE ({})", self.parts.join(") AND ("))
        }
    }
}

/// Runs `SELECT COUNT(*) AS n ...` and returns n.
pub async fn count(db: &impl ConnectionTrait, sql: &str, values: Vec<Value>) -> Result<u64, DbErr> {
    let row = db
        .query_one_raw(stmt(db.get_database_backend(), sql, values))
        .await?;
    Ok(match row {
        Some(r) => r.try_get::<i64>("", "n").unwrap_or(0).max(0) as u64,
        None => 0,
    })
}

/// Counts the rows of `table` matching `w`, and fetches the window `args` select (the
/// columns of `alias`).
///
/// The count and the rows are two statements, which need not see the same rows when another
/// request writes in between. A forward page (`first`/`after`, no `last` nor `before`) is
/// therefore fetched by its size alone, never cut to a count that may be behind a row inserted
/// meanwhile (that row, and the last of the page, would be missing from it and from the next
/// page); the total answered is at least what the page shows.
pub async fn page<E>(
    db: &impl ConnectionTrait,
    alias: &str,
    table: &str,
    order: &str,
    w: &Where,
    args: &crate::paging::PageArgs,
) -> crate::error::Result<(Vec<E::Model>, crate::paging::Window, u64)>
where
    E: EntityTrait,
    E::Model: FromQueryResult + Send + Sync,
{
    if args.last.is_none() && args.before.is_none() {
        let window = args.window(u64::MAX)?;
        let rows = if window.limit == 0 {
            Vec::new()
        } else {
            rows::<E>(db, alias, table, order, w, window.limit, window.offset).await?
        };
        let total = count(
            db,
            &format!("SELECT COUNT(*) AS n FROM {table}{}", w.sql()),
            w.values.clone(),
        )
        .await?;
        if rows.is_empty() {
            // Nothing from the offset on: the window as the count places it.
            return Ok((rows, args.window(total)?, total));
        }
        let total = total.max(window.offset + rows.len() as u64);
        return Ok((rows, window, total));
    }
    let total = count(
        db,
        &format!("SELECT COUNT(*) AS n FROM {table}{}", w.sql()),
        w.values.clone(),
    )
    .await?;
    let window = args.window(total)?;
    if window.limit == 0 {
        return Ok((Vec::new(), window, total));
    }
    let rows = rows::<E>(db, alias, table, order, w, window.limit, window.offset).await?;
    Ok((rows, window, total))
}

/// The rows `limit` and `offset` select of `table` matching `w`, in `order`.
async fn rows<E>(
    db: &impl ConnectionTrait,
    alias: &str,
    table: &str,
    order: &str,
    w: &Where,
    limit: u64,
    offset: u64,
) -> Result<Vec<E::Model>, DbErr>
where
    E: EntityTrait,
    E::Model: FromQueryResult + Send + Sync,
{
    let mut values = w.values.clone();
    values.push((limit as i64).into());
    values.push((offset as i64).into());
    E::find()
        .from_raw_sql(stmt(
            db.get_database_backend(),
            &format!(
                "SELECT {alias}.* FROM {table}{} ORDER BY {order} LIMIT ? OFFSET ?",
                w.sql()
            ),
            values,
        ))
        .all(db)
        .await
}

/// [`page`] for a caller that does not show the total: a forward page (`first`/`after`, no
/// `last` nor `before`) needs no COUNT, only one row beyond the window to tell whether a next
/// page exists. The total answered is then `offset + rows (+ 1 when there are more)`, which
/// gives the right `hasNextPage`; callers use this only when `totalCount` is not selected.
/// Other pages fall back to [`page`].
pub async fn page_untotalled<E>(
    db: &impl ConnectionTrait,
    alias: &str,
    table: &str,
    order: &str,
    w: &Where,
    args: &crate::paging::PageArgs,
) -> crate::error::Result<(Vec<E::Model>, crate::paging::Window, u64)>
where
    E: EntityTrait,
    E::Model: FromQueryResult + Send + Sync,
{
    let window = args.window(u64::MAX)?;
    if args.last.is_some() || args.before.is_some() || window.limit == 0 {
        // Backward pages are counted from the end; an empty window says whether rows follow
        // only by counting them.
        return page::<E>(db, alias, table, order, w, args).await;
    }
    let mut rows = rows::<E>(db, alias, table, order, w, window.limit + 1, window.offset).await?;
    let more = rows.len() as u64 > window.limit;
    rows.truncate(window.limit as usize);
    let total = window.offset + rows.len() as u64 + u64::from(more);
    Ok((rows, window, total))
}

/// Starts a transaction that will write. On SQLite it takes the write lock at once
/// (`BEGIN IMMEDIATE`), so concurrent writers wait for each other instead of failing when a
/// read transaction tries to become a write transaction; and the writers of one process take
/// turns before they ask (an async lock per database file), so that they queue without
/// meeting SQLite's busy handler, which sleeps in steps of up to 100 ms between tries.
pub async fn begin_write(db: &DatabaseConnection) -> Result<WriteTxn, DbErr> {
    use sea_orm::{SqliteTransactionMode, TransactionOptions, TransactionTrait};
    let turn = match db.get_database_backend() {
        DbBackend::Sqlite => Some(writer_turn(db).lock_owned().await),
        _ => None,
    };
    let txn = db
        .begin_with_options(TransactionOptions {
            sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
            ..TransactionOptions::default()
        })
        .await?;
    Ok(WriteTxn { txn, _turn: turn })
}

/// The lock writers of one SQLite database take turns with in this process.
fn writer_turn(db: &DatabaseConnection) -> std::sync::Arc<tokio::sync::Mutex<()>> {
    use std::collections::HashMap;
    use std::sync::{Arc, LazyLock, Mutex};
    static TURNS: LazyLock<Mutex<HashMap<std::path::PathBuf, Arc<tokio::sync::Mutex<()>>>>> =
        LazyLock::new(Default::default);
    let file = db
        .get_sqlite_connection_pool()
        .connect_options()
        .get_filename()
        .to_path_buf();
    let mut turns = TURNS.lock().unwrap_or_else(|e| e.into_inner());
    turns.entry(file).or_default().clone()
}

/// A write transaction ([`begin_write`]): used as a connection; the process's next writer of
/// the same SQLite database goes when it commits, rolls back or is dropped.
pub struct WriteTxn {
    // Declared first, so dropped (rolled back) before the turn is handed on.
    txn: sea_orm::DatabaseTransaction,
    _turn: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl WriteTxn {
    pub async fn commit(self) -> Result<(), DbErr> {
        self.txn.commit().await
    }

    pub async fn rollback(self) -> Result<(), DbErr> {
        self.txn.rollback().await
    }
}

impl std::ops::Deref for WriteTxn {
    type Target = sea_orm::DatabaseTransaction;

    fn deref(&self) -> &Self::Target {
        &self.txn
    }
}

#[async_trait::async_trait]
impl ConnectionTrait for WriteTxn {
    fn get_database_backend(&self) -> DbBackend {
        self.txn.get_database_backend()
    }

    async fn execute_raw(&self, stmt: Statement) -> Result<sea_orm::ExecResult, DbErr> {
        self.txn.execute_raw(stmt).await
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<sea_orm::ExecResult, DbErr> {
        self.txn.execute_unprepared(sql).await
    }

    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        self.txn.query_one_raw(stmt).await
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        self.txn.query_all_raw(stmt).await
    }

    fn support_returning(&self) -> bool {
        self.txn.support_returning()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ONE_LEADER: Unique = Unique {
        name: "ux_m_leader",
        columns: "m.team_id",
    };
    const OPEN: Unique = Unique {
        name: "ux_m_open",
        columns: "m.team_id, m.person_id",
    };

    /// Two partial unique indexes of one table: each violation is told apart, on SQLite by its
    /// columns (the tests through HTTP cover PostgreSQL's index names).
    #[tokio::test]
    async fn each_unique_violation_names_its_own_index() -> Result<(), DbErr> {
        let db = Database::connect("sqlite::memory:").await?;
        for sql in [
            "CREATE TABLE m (id INTEGER PRIMARY KEY, team_id INTEGER, person_id INTEGER, \
             role TEXT, ended_on TEXT)",
            "CREATE UNIQUE INDEX ux_m_leader ON m (team_id) WHERE role = 'LEADER' AND ended_on IS NULL",
            "CREATE UNIQUE INDEX ux_m_open ON m (team_id, person_id) WHERE ended_on IS NULL",
            "INSERT INTO m (team_id, person_id, role) VALUES (1, 1, 'LEADER')",
        ] {
            db.execute_unprepared(sql).await?;
        }
        let Err(leader) = db
            .execute_unprepared("INSERT INTO m (team_id, person_id, role) VALUES (1, 2, 'LEADER')")
            .await
        else {
            panic!("a second open leader was stored");
        };
        let Err(open) = db
            .execute_unprepared("INSERT INTO m (team_id, person_id, role) VALUES (1, 1, 'MEMBER')")
            .await
        else {
            panic!("a second open membership was stored");
        };
        assert!(ONE_LEADER.violated_by(&leader) && !OPEN.violated_by(&leader));
        assert!(OPEN.violated_by(&open) && !ONE_LEADER.violated_by(&open));
        let mapped = open
            .on_unique(ONE_LEADER, || AppError::Conflict("leader".into()))
            .on_unique(OPEN, || AppError::Conflict("open".into()));
        assert!(matches!(mapped, AppError::Conflict(m) if m == "open"));
        let other = DbErr::Custom("not a violation".into())
            .on_unique(ONE_LEADER, || AppError::Conflict("leader".into()));
        assert!(matches!(other, AppError::Db(_)));
        Ok(())
    }
}

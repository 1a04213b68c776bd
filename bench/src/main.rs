//! Benchmarks, kept out of the test run. Each reports a ratio against a reference measured in
//! the same run, with medians of several runs, and the data size.
//!
//! `cnscd-bench indicators --database-url URL`: the province-wide indicator request (every
//! commune of province 19, 12 months, CNS01-CNS10: states, flows and reference figures) in
//! process and through HTTP, against the same numbers computed from the raw rows by grouped
//! statements after `ANALYZE` (`--explain` prints their plans); then `--sequential` (40)
//! requests one after another on one keep-alive connection to a fresh server, each timed
//! (request 1, 5, 6 and 40, p50, p99), with the server on one database connection and on its
//! pool: PostgreSQL switches a prepared statement to a generic plan at its sixth run on a
//! connection, which a median of a few runs from a pool never reaches. Load the data first
//! with `cnscd seed demo --scale N` (see bench/indicators.sh).
//!
//! `cnscd-bench lists --database-url URL [--peer HOST:PORT]`: `teams(first: 100)` with every
//! membership and its person, over HTTP from concurrent clients, against the same nesting asked
//! of a PostGraphile v5 server on the same PostgreSQL database (see bench/lists.sh).
//!
//! `cnscd-bench intake --database-url URL`: `submitActivity` over HTTP from concurrent clients
//! against the service started in-process on that database (demo data loaded): requests per
//! second and latency percentiles (see bench/intake.sh).
//!
//! `cnscd-bench crash --database-url URL --server PATH`: batched and single intake from
//! concurrent clients while the server (the `cnscd` binary at PATH, a child process) is killed
//! with SIGKILL and restarted; proves every acknowledged item stored exactly once and the
//! rollups and indicators equal to a recount from the raw rows (see bench/crash.sh).
use anyhow::{Context, bail};
use chrono::NaiveDate;
use clap::{Parser, Subcommand};
use cnscd_api::auth::{Claims, Principal};
use cnscd_api::db::{placeholders, query};
use cnscd_api::indicators::periods::Granularity;
use cnscd_api::indicators::service::{Breakdown, Request, compute};
use sea_orm::{ConnectionTrait, DbBackend, EntityTrait, Value};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

mod crash;
mod receiver;

/// mimalloc rather than the system allocator: a GraphQL response is built from many small
/// short-lived values, and glibc's malloc spent about a third of the nested-list benchmark's
/// time in its slow paths (consolidation under concurrent requests).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "cnscd-bench",
    about = "cnscd benchmarks (not part of the test run)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Province-wide indicators against one GROUP BY over the raw activities.
    Indicators {
        #[arg(long, env = "CNSCD_DATABASE_URL")]
        database_url: String,
        /// Runs of each side; the median is reported.
        #[arg(long, default_value_t = 7)]
        runs: usize,
        /// Province whose communes are queried.
        #[arg(long, default_value = "19")]
        province: String,
        /// Year queried, month by month.
        #[arg(long, default_value_t = 2024)]
        year: i32,
        /// Print the plan of each reference statement first.
        #[arg(long)]
        explain: bool,
        /// Time the service only (to profile it): no reference runs, no comparison.
        #[arg(long)]
        service_only: bool,
        /// Sequential requests timed one by one on one keep-alive connection, after a
        /// discarded warm-up: past PostgreSQL's switch to generic plans (a prepared statement's
        /// sixth run on a database connection).
        #[arg(long, default_value_t = 40)]
        sequential: usize,
        /// Seconds the same request is timed again while routine changes arrive (4 a second:
        /// a team renamed, a member added or ended, a figure sent, a target set); 0 skips it.
        #[arg(long, default_value_t = 60)]
        under_change: u64,
        /// Also time the nation-wide request: CNS01–CNS10 for every province of the year's
        /// end, by month, on one keep-alive connection.
        #[arg(long)]
        nation: bool,
    },
    /// Nested list requests per second, against PostGraphile on the same data.
    Lists {
        #[arg(long, env = "CNSCD_DATABASE_URL")]
        database_url: String,
        /// Address of a PostGraphile v5 server on the same database (HOST:PORT).
        #[arg(long)]
        peer: Option<String>,
        #[arg(long, default_value_t = 16)]
        clients: usize,
        /// Requests per run and side.
        #[arg(long, default_value_t = 2000)]
        requests: usize,
        /// Runs of each side, alternating; the median is reported.
        #[arg(long, default_value_t = 3)]
        runs: usize,
        /// Also time the same request with the teams' `name` asked twice, which sends the page
        /// of teams through async-graphql's normal resolution instead of the one-step path (the
        /// answer is the same, checked), to measure what that path saves.
        #[arg(long)]
        normal: bool,
    },
    /// submitActivity requests per second from concurrent clients.
    Intake {
        #[arg(long, env = "CNSCD_DATABASE_URL")]
        database_url: String,
        #[arg(long, default_value_t = 16)]
        clients: usize,
        /// Requests in all (after a warm-up of one per client).
        #[arg(long, default_value_t = 4000)]
        requests: usize,
        /// Batches of 100 activities for the batched phase (0 skips it).
        #[arg(long, default_value_t = 60)]
        batches: usize,
        /// Register a webhook for the submitted activities (its receiver in this process) and
        /// report the delivery latency, commit to receiver, under the single-request load.
        #[arg(long)]
        webhook: bool,
    },
    /// Exactly-once intake through SIGKILLs of the server, checked against the raw rows.
    Crash {
        #[arg(long, env = "CNSCD_DATABASE_URL")]
        database_url: String,
        /// The `cnscd` binary to run as the server (default: the one beside this binary).
        #[arg(long)]
        server: Option<std::path::PathBuf>,
        /// Concurrent clients.
        #[arg(long, default_value_t = 8)]
        clients: usize,
        /// Activities submitted in all (each with its own idempotency key).
        #[arg(long, default_value_t = 2000)]
        items: usize,
        /// Times the server is killed (SIGKILL) and started again.
        #[arg(long, default_value_t = 3)]
        kills: usize,
        /// Items per submitActivities batch.
        #[arg(long, default_value_t = 25, value_parser = clap::value_parser!(u16).range(1..=500))]
        batch: u16,
        /// Seed of the plan (items, batches, kill points); random when not given.
        #[arg(long)]
        seed: Option<u64>,
        /// Longest the whole run may take, e.g. 10m.
        #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
        timeout: Duration,
    },
}

/// Numerator and denominator by (indicator, unit, month label).
type Numbers = BTreeMap<(String, String, String), (Option<f64>, Option<f64>)>;

/// Every indicator of the standard catalogue that the province-wide request asks for: states
/// (CNS01-CNS04), flows (CNS05-CNS10) and reference figures (CNS03, CNS06 denominators).
const CODES: [&str; 10] = [
    "CNS01", "CNS02", "CNS03", "CNS04", "CNS05", "CNS06", "CNS07", "CNS08", "CNS09", "CNS10",
];

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn bench_admin() -> Principal {
    Principal::from_claims(Claims {
        sub: "bench".into(),
        roles: vec!["ADMIN".into()],
        ..Claims::default()
    })
}

fn province_request(province: &str, from: NaiveDate, to: NaiveDate) -> Request {
    Request {
        codes: CODES.iter().map(|c| (*c).to_owned()).collect(),
        unit_codes: vec![province.to_owned()],
        from,
        to,
        granularity: Granularity::Month,
        breakdown: Breakdown::Level(cnscd_entity::codes::UnitLevel::Commune),
        mode: Default::default(),
    }
}

/// The service's numbers, from its answer.
fn numbers(values: Vec<cnscd_api::indicators::service::Computed>) -> Numbers {
    values
        .into_iter()
        .map(|v| {
            (
                (
                    v.definition.code.clone(),
                    v.unit.code.clone(),
                    v.period.label.clone(),
                ),
                (v.numerator, v.denominator),
            )
        })
        .collect()
}

/// The values of `request`, as the service computes them (what is timed).
async fn service_side(
    db: &sea_orm::DatabaseConnection,
    store: &cnscd_api::memory::Store,
    request: &Request,
) -> anyhow::Result<Vec<cnscd_api::indicators::service::Computed>> {
    compute(db, store, &bench_admin(), request)
        .await
        .map_err(|e| anyhow::anyhow!(e.message()))
}

/// The reference: the same numbers straight from the raw rows (activities and their outcomes,
/// teams, memberships, the closure, reported values), one grouped statement per kind of data
/// element, every month at once.
struct Reference {
    statements: Vec<String>,
    values: Vec<Value>,
}

impl Reference {
    fn new(backend: DbBackend, communes: &[String], year: i32) -> anyhow::Result<Self> {
        let month = match backend {
            DbBackend::Postgres => "to_char(a.occurred_on, 'YYYY-MM')",
            _ => "strftime('%Y-%m', a.occurred_on)",
        };
        let c = placeholders(communes.len());
        // From each reporting unit up the closure (SQLite would otherwise probe every commune
        // for every value: `+` keeps it from using the ancestor index there).
        let unindexed = if backend == DbBackend::Postgres {
            ""
        } else {
            "+"
        };
        // Month ends as a VALUES list: (label, last day).
        let months = ["(?, ?)"; 12].join(", ");
        let flows = format!(
            "SELECT ac.ancestor_code AS unit_code, {month} AS month, \
             CAST(COUNT(*) AS BIGINT) AS activities, \
             CAST(SUM(CASE WHEN a.kind_code = 'COMMUNITY_MEETING' THEN 1 ELSE 0 END) AS BIGINT) AS meetings, \
             CAST(SUM(COALESCE(a.households_reached, 0)) AS BIGINT) AS households_reached \
             FROM activity a JOIN admin_unit_closure ac ON ac.descendant_code = a.unit_code \
               AND ac.valid_from <= a.occurred_on AND ac.valid_to >= a.occurred_on \
             WHERE ac.ancestor_code IN ({c}) AND a.status = 'RECORDED' \
               AND a.occurred_on >= ? AND a.occurred_on <= ? \
             GROUP BY ac.ancestor_code, {month}"
        );
        let outcomes = format!(
            "SELECT ac.ancestor_code AS unit_code, {month} AS month, \
             CAST(SUM(CASE WHEN o.service_code = 'ONLINE_PUBLIC_SERVICE' THEN o.people ELSE 0 END) AS BIGINT) AS ops, \
             CAST(SUM(CASE WHEN ds.cashless THEN o.people ELSE 0 END) AS BIGINT) AS cashless, \
             CAST(SUM(CASE WHEN o.service_code = 'VNEID' THEN o.people ELSE 0 END) AS BIGINT) AS vneid \
             FROM activity a JOIN admin_unit_closure ac ON ac.descendant_code = a.unit_code \
               AND ac.valid_from <= a.occurred_on AND ac.valid_to >= a.occurred_on \
             JOIN activity_outcome o ON o.activity_id = a.id \
             JOIN digital_service ds ON ds.code = o.service_code \
             WHERE ac.ancestor_code IN ({c}) AND a.status = 'RECORDED' \
               AND a.occurred_on >= ? AND a.occurred_on <= ? \
             GROUP BY ac.ancestor_code, {month}"
        );
        // States on each month's last day.
        let teams = format!(
            "WITH m(label, d) AS (VALUES {months}) \
             SELECT ac.ancestor_code AS unit_code, m.label AS month, \
             CAST(COUNT(*) AS BIGINT) AS teams, \
             CAST(COUNT(DISTINCT CASE WHEN ac.descendant_level = 'HAMLET' THEN t.unit_code END) AS BIGINT) AS hamlets_with_team \
             FROM m JOIN team t ON t.founded_on <= m.d AND (t.dissolved_on IS NULL OR t.dissolved_on > m.d) \
             JOIN admin_unit_closure ac ON ac.descendant_code = t.unit_code \
               AND ac.valid_from <= m.d AND ac.valid_to >= m.d \
             WHERE ac.ancestor_code IN ({c}) GROUP BY ac.ancestor_code, m.label"
        );
        // Joined from the commune down (closure, then its teams, then their memberships): the
        // order the indexes serve; `CROSS JOIN` keeps SQLite's planner to it.
        let members = format!(
            "WITH m(label, d) AS (VALUES {months}) \
             SELECT ac.ancestor_code AS unit_code, m.label AS month, \
             CAST(COUNT(*) AS BIGINT) AS members, \
             CAST(SUM(CASE WHEN ms.affiliation = 'YOUTH_UNION' THEN 1 ELSE 0 END) AS BIGINT) AS youth \
             FROM m CROSS JOIN admin_unit_closure ac CROSS JOIN team t CROSS JOIN membership ms \
             WHERE ac.ancestor_code IN ({c}) AND ac.valid_from <= m.d AND ac.valid_to >= m.d \
               AND t.unit_code = ac.descendant_code \
               AND t.founded_on <= m.d AND (t.dissolved_on IS NULL OR t.dissolved_on > m.d) \
               AND ms.team_id = t.id AND ms.started_on <= m.d \
               AND (ms.ended_on IS NULL OR ms.ended_on >= m.d) \
             GROUP BY ac.ancestor_code, m.label"
        );
        let hamlets = format!(
            "WITH m(label, d) AS (VALUES {months}) \
             SELECT ac.ancestor_code AS unit_code, m.label AS month, CAST(COUNT(*) AS BIGINT) AS hamlets \
             FROM m JOIN admin_unit_closure ac ON ac.valid_from <= m.d AND ac.valid_to >= m.d \
             WHERE ac.ancestor_code IN ({c}) AND ac.descendant_level = 'HAMLET' \
             GROUP BY ac.ancestor_code, m.label"
        );
        // Reference figures: the latest value of the year per reporting unit, summed over the
        // units under the commune on the day, leaving out a unit whose figure is stood for by
        // a unit between it and the commune that reported the figure itself (set-based: the
        // commune-reporter pairs; the reporters stood for by a unit above that reported too;
        // an anti-join where that unit lies under the commune).
        // The latest value of the year per reporting unit and element: DISTINCT ON where
        // PostgreSQL has it (its planner misjudges `row_number() = 1` as a couple of rows and
        // picks nested loops), a window function on SQLite.
        let latest = match backend {
            DbBackend::Postgres => {
                "latest AS MATERIALIZED (SELECT DISTINCT ON (v.unit_code, v.element_code) \
                 v.unit_code, v.element_code, v.value FROM data_value v \
                 WHERE v.element_code IN ('POPULATION', 'HOUSEHOLDS') \
                 AND v.period_start >= ? AND v.period_end <= ? \
                 ORDER BY v.unit_code, v.element_code, v.period_end DESC, v.id DESC)"
            }
            _ => {
                "ranked AS (SELECT v.unit_code, v.element_code, v.value, ROW_NUMBER() OVER ( \
                 PARTITION BY v.unit_code, v.element_code ORDER BY v.period_end DESC, v.id DESC) AS r \
                 FROM data_value v WHERE v.element_code IN ('POPULATION', 'HOUSEHOLDS') \
                 AND v.period_start >= ? AND v.period_end <= ?), \
                 latest AS MATERIALIZED (SELECT unit_code, element_code, value FROM ranked WHERE r = 1)"
            }
        };
        let references = format!(
            "WITH m(label, d) AS (VALUES {months}), \
             {latest}, \
             pairs AS MATERIALIZED (SELECT ac.ancestor_code AS unit_code, m.label, m.d, \
                 l.unit_code AS reporter, l.element_code, l.value \
               FROM m JOIN admin_unit_closure ac ON ac.valid_from <= m.d AND ac.valid_to >= m.d \
               JOIN latest l ON l.unit_code = ac.descendant_code \
               WHERE {unindexed}ac.ancestor_code IN ({c})), \
             stood_for AS MATERIALIZED (SELECT l.unit_code AS reporter, l.element_code, m.label, \
                 x.ancestor_code AS above \
               FROM latest l CROSS JOIN m \
               JOIN admin_unit_closure x ON x.descendant_code = l.unit_code AND x.depth > 0 \
                 AND x.valid_from <= m.d AND x.valid_to >= m.d \
               JOIN latest l2 ON l2.unit_code = x.ancestor_code AND l2.element_code = l.element_code) \
             SELECT p.unit_code, p.label AS month, p.element_code, SUM(p.value) AS total \
             FROM pairs p WHERE NOT EXISTS (SELECT 1 FROM stood_for s \
               JOIN admin_unit_closure y ON y.descendant_code = s.above \
                 AND y.valid_from <= p.d AND y.valid_to >= p.d \
               WHERE s.reporter = p.reporter AND s.element_code = p.element_code \
                 AND s.label = p.label AND y.ancestor_code = p.unit_code) \
             GROUP BY p.unit_code, p.label, p.element_code"
        );
        let mut values: Vec<Value> = Vec::new();
        for m in 1..=12u32 {
            let next = if m == 12 {
                NaiveDate::from_ymd_opt(year + 1, 1, 1)
            } else {
                NaiveDate::from_ymd_opt(year, m + 1, 1)
            }
            .context("bad year")?;
            values.push(Value::from(format!("{year}-{m:02}")));
            values.push(Value::from(next.pred_opt().context("bad year")?));
        }
        Ok(Self {
            statements: vec![flows, outcomes, teams, members, hamlets, references],
            values,
        })
    }

    /// Placeholder values of statement `i`.
    fn values(&self, i: usize, communes: &[String], year: i32) -> Vec<Value> {
        let from = NaiveDate::from_ymd_opt(year, 1, 1).unwrap_or_default();
        let to = NaiveDate::from_ymd_opt(year, 12, 31).unwrap_or_default();
        let units = communes.iter().map(|c| Value::from(c.clone()));
        match i {
            0 | 1 => units.chain([Value::from(from), to.into()]).collect(),
            2..=4 => self.values.iter().cloned().chain(units).collect(),
            _ => self
                .values
                .iter()
                .cloned()
                .chain([Value::from(from), to.into()])
                .chain(units)
                .collect(),
        }
    }

    async fn run(
        &self,
        db: &sea_orm::DatabaseConnection,
        communes: &[String],
        year: i32,
    ) -> anyhow::Result<Numbers> {
        let mut out = Numbers::new();
        // Every commune and month has every value: zero counts, and no reference figure.
        for unit in communes {
            for m in 1..=12 {
                let month = format!("{year}-{m:02}");
                for code in CODES {
                    let den = match code {
                        "CNS01" | "CNS04" | "CNS10" => Some(0.0),
                        _ => None,
                    };
                    out.insert((code.into(), unit.clone(), month.clone()), (Some(0.0), den));
                }
            }
        }
        let mut set = |code: &str, unit: &str, month: &str, num: Option<f64>, den: Option<f64>| {
            if let Some(e) = out.get_mut(&(code.to_owned(), unit.to_owned(), month.to_owned())) {
                if let Some(n) = num {
                    e.0 = Some(n);
                }
                if let Some(d) = den {
                    e.1 = Some(d);
                }
            }
        };
        for (i, sql) in self.statements.iter().enumerate() {
            for row in query(db, sql, self.values(i, communes, year)).await? {
                let unit: String = row.try_get("", "unit_code")?;
                let month: String = row.try_get("", "month")?;
                let n =
                    |col: &str| -> anyhow::Result<f64> { Ok(row.try_get::<i64>("", col)? as f64) };
                match i {
                    0 => {
                        set("CNS05", &unit, &month, Some(n("meetings")?), None);
                        set("CNS06", &unit, &month, Some(n("households_reached")?), None);
                        set("CNS10", &unit, &month, Some(n("activities")?), None);
                    }
                    1 => {
                        set("CNS07", &unit, &month, Some(n("ops")?), None);
                        set("CNS08", &unit, &month, Some(n("cashless")?), None);
                        set("CNS09", &unit, &month, Some(n("vneid")?), None);
                    }
                    2 => {
                        set("CNS02", &unit, &month, Some(n("teams")?), None);
                        set("CNS01", &unit, &month, Some(n("hamlets_with_team")?), None);
                    }
                    3 => {
                        let members = n("members")?;
                        set("CNS03", &unit, &month, Some(members), None);
                        set("CNS04", &unit, &month, Some(n("youth")?), Some(members));
                        set("CNS10", &unit, &month, None, Some(members));
                    }
                    4 => set("CNS01", &unit, &month, None, Some(n("hamlets")?)),
                    _ => {
                        let element: String = row.try_get("", "element_code")?;
                        let total: f64 = row.try_get("", "total")?;
                        let code = if element == "POPULATION" {
                            "CNS03"
                        } else {
                            "CNS06"
                        };
                        set(code, &unit, &month, None, Some(total));
                    }
                }
            }
        }
        Ok(out)
    }

    /// The plan of each statement, as the database reports it.
    async fn explain(
        &self,
        db: &sea_orm::DatabaseConnection,
        communes: &[String],
        year: i32,
    ) -> anyhow::Result<()> {
        let prefix = match db.get_database_backend() {
            DbBackend::Postgres => "EXPLAIN ",
            _ => "EXPLAIN QUERY PLAN ",
        };
        for (i, sql) in self.statements.iter().enumerate() {
            let start = Instant::now();
            let rows = query(db, sql, self.values(i, communes, year)).await?.len();
            println!(
                "  reference statement {} ({rows} rows, {:.1} ms):",
                i + 1,
                start.elapsed().as_secs_f64() * 1e3
            );
            for row in query(
                db,
                &format!("{prefix}{sql}"),
                self.values(i, communes, year),
            )
            .await?
            {
                let line: String = row
                    .try_get("", "QUERY PLAN")
                    .or_else(|_| row.try_get("", "detail"))
                    .unwrap_or_default();
                println!("    {line}");
            }
        }
        Ok(())
    }
}

async fn indicators(
    url: &str,
    runs: usize,
    province: &str,
    year: i32,
    explain: bool,
    service_only: bool,
    sequential: usize,
) -> anyhow::Result<()> {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let mut db = cnscd_api::db::connect(url)
        .await
        .context("Failed to connect")?;
    // The reference gets fresh planner statistics.
    db.execute_unprepared("ANALYZE").await?;
    let statements = Arc::new(AtomicUsize::new(0));
    let counter = statements.clone();
    db.set_metric_callback(move |_| {
        counter.fetch_add(1, Ordering::SeqCst);
    });
    let from = NaiveDate::from_ymd_opt(year, 1, 1).context("bad year")?;
    let to = NaiveDate::from_ymd_opt(year, 12, 31).context("bad year")?;
    let activities =
        cnscd_api::db::count(&db, "SELECT COUNT(*) AS n FROM activity", vec![]).await?;
    let communes: Vec<String> = cnscd_api::units::service::subtree_on(&db, province, to)
        .await
        .map_err(|e| anyhow::anyhow!(e.message()))?
        .into_iter()
        .filter(|(_, level)| *level == cnscd_entity::codes::UnitLevel::Commune)
        .map(|(code, _)| code)
        .collect();
    if communes.is_empty() {
        bail!("province {province} has no communes on {to}: load data with `cnscd seed demo`");
    }
    let reference = Reference::new(db.get_database_backend(), &communes, year)?;
    if explain {
        reference.explain(&db, &communes, year).await?;
    }
    let store = cnscd_api::memory::Store::new();
    let request = province_request(province, from, to);
    // Warm up both sides (the in-memory copy, caches, prepared statements), then alternate.
    let ours = numbers(service_side(&db, &store, &request).await?);
    let theirs = if service_only {
        ours.clone()
    } else {
        reference.run(&db, &communes, year).await?
    };
    let before = statements.load(Ordering::SeqCst);
    service_side(&db, &store, &request).await?;
    let per_request = statements.load(Ordering::SeqCst) - before;
    let (mut t_ours, mut t_ref) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let start = Instant::now();
        service_side(&db, &store, &request).await?;
        t_ours.push(start.elapsed());
        if !service_only {
            let start = Instant::now();
            reference.run(&db, &communes, year).await?;
            t_ref.push(start.elapsed());
        }
    }
    let mut mismatches = Vec::new();
    for (key, expected) in &theirs {
        let mine = ours.get(key).copied().unwrap_or((None, None));
        let same = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(x), Some(y)) => (x - y).abs() < 1e-6,
            (None, None) => true,
            _ => false,
        };
        if !same(mine.0, expected.0) || !same(mine.1, expected.1) {
            mismatches.push(format!("{key:?}: service {mine:?}, reference {expected:?}"));
        }
    }
    let extra = ours.keys().filter(|k| !theirs.contains_key(*k)).count();
    let ours_ms = median(t_ours);
    let ref_ms = if service_only {
        Duration::ZERO
    } else {
        median(t_ref)
    };

    // Through HTTP: the service started in-process on the same database, one client, the
    // column form dashboards use.
    let secret = "cnscd-bench-secret-0123456789";
    let mut settings = cnscd_api::Settings::for_tests(url, secret);
    settings.listen = "127.0.0.1:0".into();
    let verifier = cnscd_api::auth::TokenVerifier::hs256(secret, None, None)?;
    let app =
        cnscd_api::startup::Application::with_database(&settings, verifier, db.clone()).await?;
    let addr = app.address();
    tokio::spawn(app.run_until_stopped());
    let token = cnscd_api::auth::mint(
        secret,
        &Claims {
            sub: "bench".into(),
            exp: chrono::Utc::now().timestamp() + 3600,
            roles: vec!["VIEWER".into()],
            units: vec![province.to_owned()],
            ..Claims::default()
        },
    )?;
    let args = format!(
        "codes: {:?}, unitCodes: [\"{province}\"], from: \"{from}\", to: \"{to}\", \
         granularity: MONTH, breakdown: LEVEL, level: COMMUNE",
        CODES
    );
    let table = serde_json::json!({ "query": format!(
        "{{ indicatorTable({args}) {{ codes units periods values numerators denominators statuses }} }}"
    ) })
    .to_string();
    let mut client = Client::connect(addr).await?;
    let (http, bytes) = timed(&mut client, &token, &table, runs).await?;

    // Sequential requests on one keep-alive connection, as a dashboard's backend sends them,
    // to a fresh server: on a pool of two database connections (the change feed holds one on
    // PostgreSQL), so that every request's statements run on the same connection and pass its
    // switch to generic plans; and on the pool a server opens.
    let mut series = Vec::new();
    for (label, size) in [
        ("on one database connection", Some(2)),
        ("on the server's pool", None),
    ] {
        let db = match size {
            Some(n) => {
                let mut opts = sea_orm::ConnectOptions::new(url.to_owned());
                opts.max_connections(n).sqlx_logging(false);
                sea_orm::Database::connect(opts).await?
            }
            None => cnscd_api::db::connect(url).await?,
        };
        let app = cnscd_api::startup::Application::with_database(
            &settings,
            cnscd_api::auth::TokenVerifier::hs256(secret, None, None)?,
            db,
        )
        .await?;
        let addr = app.address();
        tokio::spawn(app.run_until_stopped());
        let mut client = Client::connect(addr).await?;
        series.push((
            label,
            one_by_one(&mut client, &token, &table, sequential).await?,
        ));
    }

    println!(
        "indicators: {activities} activities; CNS01-CNS10 (states, flows, reference figures) for \
         {} communes x 12 months of {year} ({} values), {} database",
        communes.len(),
        ours.len(),
        match db.get_database_backend() {
            DbBackend::Postgres => "PostgreSQL",
            _ => "SQLite",
        }
    );
    println!(
        "  service in-process       median {:>9.2} ms, {per_request} SQL statements per request",
        ours_ms.as_secs_f64() * 1e3
    );
    println!(
        "  service HTTP (table)     median {:>9.2} ms ({} KiB)",
        http.as_secs_f64() * 1e3,
        bytes / 1024
    );
    for (label, times) in &series {
        let mut sorted = times.clone();
        sorted.sort();
        let at = |i: usize| times.get(i - 1).map_or(0.0, |d| d.as_secs_f64() * 1e3);
        println!(
            "  service HTTP, one keep-alive connection, {label}: request 1 {:.2} ms, 5 {:.2} ms, \
             6 {:.2} ms, 40 {:.2} ms; p50 {:.2} ms, p99 {:.2} ms ({} requests after a warm-up)",
            at(1),
            at(5),
            at(6),
            at(40),
            percentile(&sorted, 0.5),
            percentile(&sorted, 0.99),
            times.len()
        );
    }
    println!(
        "  reference (raw rows)     median {:>9.2} ms ({} grouped statements, after ANALYZE)",
        ref_ms.as_secs_f64() * 1e3,
        reference.statements.len()
    );
    println!(
        "  speed-up  in-process {:.1}x, HTTP {:.1}x   numbers: {} mismatches, {} values missing from the reference",
        ref_ms.as_secs_f64() / ours_ms.as_secs_f64(),
        ref_ms.as_secs_f64() / http.as_secs_f64(),
        mismatches.len(),
        extra
    );
    for m in mismatches.iter().take(10) {
        println!("    {m}");
    }
    if !mismatches.is_empty() || extra > 0 {
        bail!("the service and the reference disagree");
    }
    Ok(())
}

/// The nation-wide request through HTTP: CNS01–CNS10 for every province on the year's last
/// day, by month (10 codes × 34 provinces × 12 months after 2025), as a dashboard of the
/// ministry asks it, on one keep-alive connection of a fresh server; the time to its first
/// answer (the copy loaded), then `n` requests after a warm-up.
async fn indicators_nation(url: &str, year: i32, n: usize) -> anyhow::Result<()> {
    let secret = "cnscd-bench-secret-0123456789";
    let mut settings = cnscd_api::Settings::for_tests(url, secret);
    settings.listen = "127.0.0.1:0".into();
    let to = NaiveDate::from_ymd_opt(year, 12, 31).context("bad year")?;
    let from = NaiveDate::from_ymd_opt(year, 1, 1).context("bad year")?;
    let started = Instant::now();
    let db = cnscd_api::db::connect(url).await?;
    let provinces: Vec<String> = cnscd_api::db::query(
        &db,
        "SELECT code FROM admin_unit WHERE level = 'PROVINCE' AND valid_from <= ? AND valid_to >= ? \
         ORDER BY code",
        vec![to.into(), to.into()],
    )
    .await
    .map_err(|e| anyhow::anyhow!(e.to_string()))?
    .into_iter()
    .filter_map(|r| r.try_get::<String>("", "code").ok())
    .collect();
    let app = cnscd_api::startup::Application::with_database(
        &settings,
        cnscd_api::auth::TokenVerifier::hs256(secret, None, None)?,
        db,
    )
    .await?;
    let addr = app.address();
    tokio::spawn(app.run_until_stopped());
    let token = cnscd_api::auth::mint(
        secret,
        &Claims {
            sub: "bench".into(),
            exp: chrono::Utc::now().timestamp() + 3600,
            roles: vec!["ADMIN".into()],
            ..Claims::default()
        },
    )?;
    let table = serde_json::json!({ "query": format!(
        "{{ indicatorTable(codes: {:?}, unitCodes: {:?}, from: \"{from}\", to: \"{to}\", \
         granularity: MONTH) {{ codes units periods values numerators denominators statuses }} }}",
        CODES, provinces
    ) })
    .to_string();
    let mut client = Client::connect(addr).await?;
    let (status, text) = client.post(&token, &table).await?;
    let first = started.elapsed();
    if status != 200 || text.contains("\"errors\"") {
        bail!(
            "nation-wide request failed: {status} {}",
            &text[..text.len().min(300)]
        );
    }
    let times = one_by_one(&mut client, &token, &table, n).await?;
    let mut sorted = times.clone();
    sorted.sort();
    let at = |i: usize| times.get(i - 1).map_or(0.0, |d| d.as_secs_f64() * 1e3);
    println!(
        "nation-wide: CNS01-CNS10 x {} provinces x 12 months of {year} through HTTP: first answer \
         {:.1} s after start (RSS {} MB); request 1 {:.2} ms, 40 {:.2} ms; p50 {:.2} ms, p99 {:.2} ms \
         ({} requests on one keep-alive connection)",
        provinces.len(),
        first.as_secs_f64(),
        rss_kb() / 1024,
        at(1),
        at(40),
        percentile(&sorted, 0.5),
        percentile(&sorted, 0.99),
        times.len()
    );
    Ok(())
}

/// The resident set size of this process now (`VmRSS`), in KiB.
fn rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// The province-wide request on one keep-alive connection, quiet and then for `seconds` while
/// 4 routine changes a second arrive through the same server (a team renamed, a member added
/// or ended, a figure sent, a target set, in turn): p50 and p99 of both, the full loads of the
/// in-memory data during the changes (the bar: none), and the peak resident memory of each
/// phase.
async fn indicators_under_change(
    url: &str,
    province: &str,
    year: i32,
    seconds: u64,
) -> anyhow::Result<()> {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
    let secret = "cnscd-bench-secret-0123456789";
    let mut settings = cnscd_api::Settings::for_tests(url, secret);
    settings.listen = "127.0.0.1:0".into();
    let db = cnscd_api::db::connect(url).await?;
    let from = NaiveDate::from_ymd_opt(year, 1, 1).context("bad year")?;
    let to = NaiveDate::from_ymd_opt(year, 12, 31).context("bad year")?;
    let units: Vec<(String, cnscd_entity::codes::UnitLevel)> =
        cnscd_api::units::service::subtree_on(&db, province, to)
            .await
            .map_err(|e| anyhow::anyhow!(e.message()))?;
    let communes: Vec<String> = units
        .iter()
        .filter(|(_, l)| *l == cnscd_entity::codes::UnitLevel::Commune)
        .map(|(c, _)| c.clone())
        .collect();
    let codes: Vec<String> = units.iter().map(|(c, _)| c.clone()).collect();
    use sea_orm::{ColumnTrait, QueryFilter, QuerySelect};
    let teams: Vec<i64> = cnscd_entity::team::Entity::find()
        .filter(cnscd_entity::team::Column::UnitCode.is_in(codes))
        .limit(50)
        .all(&db)
        .await?
        .into_iter()
        .map(|t| t.id)
        .collect();
    if teams.is_empty() || communes.is_empty() {
        bail!("province {province} has no teams: load data with `cnscd seed demo`");
    }
    let app = cnscd_api::startup::Application::with_database(
        &settings,
        cnscd_api::auth::TokenVerifier::hs256(secret, None, None)?,
        db,
    )
    .await?;
    let addr = app.address();
    let store = app.store().clone();
    tokio::spawn(app.run_until_stopped());
    let claims = |roles: &[&str]| Claims {
        sub: "bench".into(),
        exp: chrono::Utc::now().timestamp() + 3600,
        roles: roles.iter().map(|r| r.to_string()).collect(),
        units: vec![province.to_owned()],
        ..Claims::default()
    };
    let viewer = cnscd_api::auth::mint(secret, &claims(&["VIEWER"]))?;
    let admin = cnscd_api::auth::mint(secret, &claims(&["ADMIN"]))?;
    let table = serde_json::json!({ "query": format!(
        "{{ indicatorTable(codes: {:?}, unitCodes: [\"{province}\"], from: \"{from}\", to: \"{to}\", \
         granularity: MONTH, breakdown: LEVEL, level: COMMUNE) {{ codes units periods values \
         numerators denominators statuses }} }}",
        CODES
    ) })
    .to_string();
    // The peak resident memory of each phase, sampled.
    let peak = Arc::new(AtomicU64::new(0));
    let sampling = Arc::new(AtomicBool::new(true));
    {
        let (peak, sampling) = (peak.clone(), sampling.clone());
        tokio::spawn(async move {
            while sampling.load(Ordering::SeqCst) {
                peak.fetch_max(rss_kb(), Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
    }
    let mut client = Client::connect(addr).await?;
    // Quiet: as long as the changes will run, after a warm-up.
    let mut quiet = one_by_one(&mut client, &viewer, &table, 40).await?;
    let quiet_started = Instant::now();
    while quiet_started.elapsed() < Duration::from_secs(seconds) {
        quiet.extend(one_by_one(&mut client, &viewer, &table, 40).await?);
    }
    let quiet_peak = peak.swap(0, Ordering::SeqCst);
    // Under change: a writer sends 4 changes a second while the reader times.
    let loads = store.loads();
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    let writer = {
        let (stop, done, admin) = (stop.clone(), done.clone(), admin.clone());
        let communes = communes.clone();
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            let url = format!("http://{addr}/graphql");
            let mut members: Vec<String> = Vec::new();
            let mut n: usize = 0;
            let mut tick = tokio::time::interval(Duration::from_millis(250));
            while !stop.load(Ordering::SeqCst) {
                tick.tick().await;
                let team = cnscd_api::graphql::ids::encode(
                    cnscd_api::graphql::ids::TEAM,
                    teams[n % teams.len()],
                )
                .0;
                let commune = &communes[n % communes.len()];
                let (query, input) = match n % 4 {
                    0 => (
                        "mutation($i: UpdateTeamInput!) { updateTeam(input: $i) { userErrors { message } } }",
                        serde_json::json!({ "teamId": team, "name": format!("Tổ công nghệ số {n}") }),
                    ),
                    1 => match members.pop() {
                        Some(m) if n % 8 == 5 => (
                            "mutation($i: EndMembershipInput!) { endMembership(input: $i) { userErrors { message } } }",
                            serde_json::json!({ "membershipId": m, "endedOn": format!("{year}-12-31") }),
                        ),
                        _ => (
                            "mutation($i: AddMemberInput!) { addMember(input: $i) { membership { id } userErrors { message } } }",
                            serde_json::json!({ "teamId": team, "person": { "fullName": format!("Thành viên {n}") },
                                "role": "MEMBER", "affiliation": "VOLUNTEER", "startedOn": format!("{year}-06-01") }),
                        ),
                    },
                    2 => (
                        "mutation($i: SubmitDataValuesInput!) { submitDataValues(input: $i) { userErrors { message } } }",
                        serde_json::json!({ "idempotencyKey": format!("bench-{n}-{}", uuid::Uuid::new_v4()), "sourceSystem": "BENCH",
                            "values": [{ "element": "DOSSIERS_ONLINE", "unitCode": commune,
                                "periodStart": format!("{year}-{:02}-01", n % 12 + 1),
                                "periodEnd": cnscd_api::indicators::periods::containing(
                                    NaiveDate::from_ymd_opt(year, (n % 12 + 1) as u32, 1).unwrap_or(from),
                                    cnscd_api::indicators::periods::Granularity::Month).end.to_string(),
                                "value": (n % 50) as f64 }] }),
                    ),
                    _ => (
                        "mutation($i: SetIndicatorTargetInput!) { setIndicatorTarget(input: $i) { userErrors { message } } }",
                        serde_json::json!({ "indicator": "CNS05", "unitCode": commune, "periodStart": format!("{year}-01-01"),
                            "periodEnd": format!("{year}-12-31"), "target": (n % 90 + 10) as f64 }),
                    ),
                };
                let answer = http
                    .post(&url)
                    .bearer_auth(&admin)
                    .json(&serde_json::json!({ "query": query, "variables": { "i": input } }))
                    .send()
                    .await;
                if let Ok(r) = answer
                    && let Ok(body) = r.json::<serde_json::Value>().await
                {
                    if let Some(id) = body["data"]["addMember"]["membership"]["id"].as_str() {
                        members.push(id.to_owned());
                    }
                    if body["errors"].is_null() {
                        done.fetch_add(1, Ordering::SeqCst);
                    }
                }
                n += 1;
            }
        })
    };
    let mut busy = Vec::new();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(seconds) {
        busy.extend(one_by_one(&mut client, &viewer, &table, 40).await?);
    }
    stop.store(true, Ordering::SeqCst);
    writer.await?;
    let busy_peak = peak.swap(0, Ordering::SeqCst);
    sampling.store(false, Ordering::SeqCst);
    let full_loads = store.loads() - loads;
    let (mut quiet_sorted, mut busy_sorted) = (quiet.clone(), busy.clone());
    quiet_sorted.sort();
    busy_sorted.sort();
    let quiet_p50 = percentile(&quiet_sorted, 0.5);
    println!(
        "  under change ({seconds} s, {} changes applied: team renamed, member added or ended, \
         figure sent, target set, in turn):",
        done.load(Ordering::SeqCst)
    );
    println!(
        "    quiet        p50 {:.2} ms, p99 {:.2} ms ({} requests); peak RSS {} MB",
        quiet_p50,
        percentile(&quiet_sorted, 0.99),
        quiet.len(),
        quiet_peak / 1024
    );
    println!(
        "    under change p50 {:.2} ms, p99 {:.2} ms ({} requests); peak RSS {} MB; full loads {full_loads}",
        percentile(&busy_sorted, 0.5),
        percentile(&busy_sorted, 0.99),
        busy.len(),
        busy_peak / 1024
    );
    println!(
        "    bars: p99 under change <= 2 x quiet p50 + 10 ms = {:.2} ms; peak RSS under change <= 1.2 x quiet; no full load",
        2.0 * quiet_p50 + 10.0
    );
    Ok(())
}

/// Median time of `runs` posts of `body` (after one checked warm-up), and the answer's size.
async fn timed(
    client: &mut Client,
    token: &str,
    body: &str,
    runs: usize,
) -> anyhow::Result<(Duration, usize)> {
    let (status, text) = client.post(token, body).await?;
    if status != 200 || text.contains("\"errors\"") {
        bail!("request failed: {status} {}", &text[..text.len().min(300)]);
    }
    let mut times = Vec::new();
    for _ in 0..runs {
        let start = Instant::now();
        client.post(token, body).await?;
        times.push(start.elapsed());
    }
    Ok((median(times), text.len()))
}

/// The time of each of `n` posts of `body`, in order, after one checked warm-up.
async fn one_by_one(
    client: &mut Client,
    token: &str,
    body: &str,
    n: usize,
) -> anyhow::Result<Vec<Duration>> {
    let (status, text) = client.post(token, body).await?;
    if status != 200 || text.contains("\"errors\"") {
        bail!("request failed: {status} {}", &text[..text.len().min(300)]);
    }
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let start = Instant::now();
        let (status, _) = client.post(token, body).await?;
        times.push(start.elapsed());
        if status != 200 {
            bail!("request failed: {status}");
        }
    }
    Ok(times)
}

/// A keep-alive HTTP/1.1 connection that posts JSON and reads the status line.
struct Client {
    stream: tokio::io::BufReader<tokio::net::TcpStream>,
    host: String,
}

impl Client {
    async fn connect(addr: std::net::SocketAddr) -> anyhow::Result<Self> {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Self {
            stream: tokio::io::BufReader::new(stream),
            host: addr.to_string(),
        })
    }

    /// Posts `body` to /graphql and returns the status and the response body.
    async fn post(&mut self, token: &str, body: &str) -> anyhow::Result<(u16, String)> {
        use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
        let request = format!(
            "POST /graphql HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.host,
            body.len()
        );
        self.stream.get_mut().write_all(request.as_bytes()).await?;
        let mut line = String::new();
        self.stream.read_line(&mut line).await?;
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .context("no HTTP status line")?;
        let mut length = 0usize;
        let mut chunked = false;
        loop {
            line.clear();
            self.stream.read_line(&mut line).await?;
            if line == "\r\n" || line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse()?;
                } else if name.eq_ignore_ascii_case("transfer-encoding") {
                    chunked = value.trim().eq_ignore_ascii_case("chunked");
                }
            }
        }
        let mut buf = Vec::new();
        if chunked {
            loop {
                line.clear();
                self.stream.read_line(&mut line).await?;
                let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or("0"), 16)?;
                let mut chunk = vec![0u8; size + 2];
                self.stream.read_exact(&mut chunk).await?;
                if size == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..size]);
            }
        } else {
            buf.resize(length, 0);
            self.stream.read_exact(&mut buf).await?;
        }
        Ok((status, String::from_utf8_lossy(&buf).into_owned()))
    }
}

async fn intake(
    url: &str,
    clients: usize,
    requests: usize,
    batches: usize,
    webhook: bool,
) -> anyhow::Result<()> {
    use cnscd_api::startup::{Application, prepare_database};
    let db = prepare_database(url).await?;
    let teams: Vec<(i64, chrono::NaiveDate)> = cnscd_entity::team::Entity::find()
        .all(&db)
        .await?
        .into_iter()
        .filter(|t| t.dissolved_on.is_none())
        .map(|t| (t.id, t.founded_on))
        .collect();
    if teams.is_empty() {
        bail!("no teams: load data with `cnscd seed demo`");
    }
    let before = cnscd_api::db::count(&db, "SELECT COUNT(*) AS n FROM activity", vec![]).await?;
    let secret = "cnscd-bench-secret-0123456789";
    let mut settings = cnscd_api::Settings::for_tests(url, secret);
    settings.listen = "127.0.0.1:0".into();
    let verifier = cnscd_api::auth::TokenVerifier::hs256(secret, None, None)?;
    let app = Application::with_database(&settings, verifier, db.clone()).await?;
    let addr = app.address();
    tokio::spawn(app.run_until_stopped());
    let token = cnscd_api::auth::mint(
        secret,
        &Claims {
            sub: "bench-app".into(),
            exp: chrono::Utc::now().timestamp() + 3600,
            roles: vec!["REPORTER".into()],
            units: vec!["19".into()],
            client_id: Some("bench".into()),
            ..Claims::default()
        },
    )?;
    let receiver = if webhook {
        let admin = cnscd_api::auth::mint(
            secret,
            &Claims {
                sub: "bench-admin".into(),
                exp: chrono::Utc::now().timestamp() + 3600,
                roles: vec!["ADMIN".into()],
                ..Claims::default()
            },
        )?;
        let receiver = crate::receiver::Receiver::start().await?;
        crate::receiver::register(addr, &admin, &receiver.url, "19").await?;
        Some(receiver)
    } else {
        None
    };
    let run = uuid::Uuid::new_v4().simple().to_string();
    let body = |n: usize| {
        let (team, _) = teams[n % teams.len()];
        let day = chrono::NaiveDate::from_ymd_opt(2026, 1, 1)
            .map(|d| d + chrono::Duration::days((n % 300) as i64))
            .unwrap_or_default();
        serde_json::json!({
            "query": "mutation($i: SubmitActivityInput!) { submitActivity(input: $i) { replayed activity { id } userErrors { code message } } }",
            "variables": { "i": {
                "idempotencyKey": format!("{run}-{n}"),
                "teamId": cnscd_api::graphql::ids::encode(cnscd_api::graphql::ids::TEAM, team).0,
                "kind": "DOOR_TO_DOOR", "occurredOn": day.to_string(),
                "title": "Hướng dẫn kích hoạt VNeID mức 2", "participants": 12, "householdsReached": 8,
                "outcomes": [ { "service": "VNEID", "people": 9, "households": 7 },
                              { "service": "UTILITY_BILL_PAYMENT", "people": 3 } ]
            } }
        })
        .to_string()
    };
    let per_client = requests.div_ceil(clients);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let token = token.clone();
        let bodies: Vec<String> = (0..=per_client)
            .map(|i| body(c * (per_client + 1) + i))
            .collect();
        tasks.push(tokio::spawn(async move {
            let mut client = Client::connect(addr).await?;
            let mut latencies = Vec::with_capacity(bodies.len());
            for (i, b) in bodies.iter().enumerate() {
                let t = Instant::now();
                let (status, text) = client.post(&token, b).await?;
                if status != 200 || !text.contains("\"userErrors\":[]") {
                    bail!("request failed: {status} {text}");
                }
                if i > 0 {
                    latencies.push(t.elapsed());
                }
            }
            anyhow::Ok(latencies)
        }));
    }
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await??);
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    let after = cnscd_api::db::count(&db, "SELECT COUNT(*) AS n FROM activity", vec![]).await?;
    println!(
        "intake ({}): {} submitActivity from {clients} clients on {} existing activities: {:.0} req/s, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; {} activities stored",
        db.get_database_backend().as_str(),
        latencies.len() + clients,
        before,
        (latencies.len() + clients) as f64 / elapsed.as_secs_f64(),
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        latencies.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
        after - before
    );
    if let Some(receiver) = &receiver {
        let expected = latencies.len() + clients;
        let waited = Instant::now();
        while crate::receiver::latencies(&receiver.got()).len() < expected
            && waited.elapsed() < Duration::from_secs(60)
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let took = crate::receiver::latencies(&receiver.got());
        let at =
            |p: f64| took[((took.len() as f64 * p) as usize).min(took.len().saturating_sub(1))];
        if took.is_empty() {
            bail!("no webhook delivery arrived");
        }
        println!(
            "  webhook: {} of {expected} activities delivered within {:.1} s of the last request; \
             commit to receiver p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            took.len(),
            waited.elapsed().as_secs_f64(),
            at(0.50).as_secs_f64() * 1e3,
            at(0.99).as_secs_f64() * 1e3,
            took.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
        );
    }
    if batches > 0 {
        batched(&db, addr, &token, &teams, &run, batches).await?;
    }
    println!(
        "  peak RSS of the process (server and clients): {} MB",
        peak_rss_kb().unwrap_or(0) / 1024
    );
    Ok(())
}

/// The peak resident set size of this process (`VmHWM`), in KiB.
fn peak_rss_kb() -> Option<u64> {
    std::fs::read_to_string("/proc/self/status")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Batched intake: `submitActivities` of 100 items from 4 clients, then the same rows (the
/// activities and their outcomes) written by plain multi-row INSERTs through the same driver
/// from 4 tasks, alternating three times; rows per second, medians.
async fn batched(
    db: &sea_orm::DatabaseConnection,
    addr: std::net::SocketAddr,
    token: &str,
    teams: &[(i64, chrono::NaiveDate)],
    run: &str,
    batches: usize,
) -> anyhow::Result<()> {
    const SIZE: usize = 100;
    const TASKS: usize = 4;
    let item = |n: usize| {
        let (team, _) = teams[n % teams.len()];
        let day = chrono::NaiveDate::from_ymd_opt(2026, 1, 1)
            .map(|d| d + chrono::Duration::days((n % 300) as i64))
            .unwrap_or_default();
        (team, day)
    };
    let mut ours = Vec::new();
    let mut reference = Vec::new();
    for round in 0..3 {
        // Through the service.
        let per_task = batches.div_ceil(TASKS);
        // The requests are written before the clock starts: what is timed is the service.
        let mut bodies_of: Vec<Vec<String>> = Vec::new();
        for t in 0..TASKS {
            let bodies: Vec<String> = (0..per_task)
                .map(|b| {
                    let items: Vec<serde_json::Value> = (0..SIZE)
                        .map(|i| {
                            let n = ((round * TASKS + t) * per_task + b) * SIZE + i;
                            let (team, day) = item(n);
                            serde_json::json!({
                                "idempotencyKey": format!("{run}-b{n}"),
                                "teamId": cnscd_api::graphql::ids::encode(cnscd_api::graphql::ids::TEAM, team).0,
                                "kind": "DOOR_TO_DOOR", "occurredOn": day.to_string(),
                                "title": "Hướng dẫn kích hoạt VNeID mức 2", "participants": 12, "householdsReached": 8,
                                "outcomes": [ { "service": "VNEID", "people": 9, "households": 7 },
                                              { "service": "UTILITY_BILL_PAYMENT", "people": 3 } ]
                            })
                        })
                        .collect();
                    serde_json::json!({
                        "query": "mutation($i: SubmitActivitiesInput!) { submitActivities(input: $i) { results { replayed activity { id } userErrors { code message } } userErrors { message } } }",
                        "variables": { "i": { "items": items } }
                    })
                    .to_string()
                })
                .collect();
            bodies_of.push(bodies);
        }
        let started = Instant::now();
        let mut tasks = Vec::new();
        for bodies in bodies_of {
            let token = token.to_owned();
            tasks.push(tokio::spawn(async move {
                let mut client = Client::connect(addr).await?;
                for b in &bodies {
                    let (status, text) = client.post(&token, b).await?;
                    if status != 200
                        || text.contains("\"code\"")
                        || text.matches("\"id\"").count() != SIZE
                    {
                        bail!("batch failed: {status} {}", &text[..text.len().min(400)]);
                    }
                }
                anyhow::Ok(())
            }));
        }
        for t in tasks {
            t.await??;
        }
        ours.push((per_task * TASKS * SIZE) as f64 / started.elapsed().as_secs_f64());

        // The same rows by plain multi-row INSERTs (ids from the table's own default).
        let started = Instant::now();
        let mut tasks = Vec::new();
        for t in 0..TASKS {
            let db = db.clone();
            let rows: Vec<(i64, chrono::NaiveDate)> = (0..per_task * SIZE)
                .map(|i| item((round * TASKS + t) * per_task * SIZE + i))
                .collect();
            tasks.push(tokio::spawn(async move {
                let backend = db.get_database_backend();
                for chunk in rows.chunks(SIZE) {
                    let now = chrono::Utc::now();
                    let mut values: Vec<Value> = Vec::new();
                    for (team, day) in chunk {
                        values.extend([
                            Value::from(*team),
                            "05677-01".into(),
                            "DOOR_TO_DOOR".into(),
                            (*day).into(),
                            "Hướng dẫn kích hoạt VNeID mức 2".into(),
                            12i32.into(),
                            8i32.into(),
                            "RECORDED".into(),
                            "bench-reference".into(),
                            "[\"bench-reference\",null]".into(),
                            now.into(),
                            now.into(),
                        ]);
                    }
                    let row = format!("({})", placeholders(12));
                    let ids: Vec<i64> = query(
                        &db,
                        &format!(
                            "INSERT INTO activity (team_id, unit_code, kind_code, occurred_on, title, \
                             participants, households_reached, status, submitted_by, submitter, \
                             created_at, updated_at) VALUES {} RETURNING id",
                            vec![row; chunk.len()].join(", ")
                        ),
                        values,
                    )
                    .await?
                    .iter()
                    .map(|r| r.try_get::<i64>("", "id"))
                    .collect::<Result<_, _>>()?;
                    let mut values: Vec<Value> = Vec::new();
                    for id in &ids {
                        values.extend([
                            Value::from(*id),
                            "VNEID".into(),
                            9i32.into(),
                            Some(7i32).into(),
                            (*id).into(),
                            "UTILITY_BILL_PAYMENT".into(),
                            3i32.into(),
                            None::<i32>.into(),
                        ]);
                    }
                    db.execute_raw(cnscd_api::db::stmt(
                        backend,
                        &format!(
                            "INSERT INTO activity_outcome (activity_id, service_code, people, \
                             households) VALUES {}",
                            vec!["(?, ?, ?, ?)"; ids.len() * 2].join(", ")
                        ),
                        values,
                    ))
                    .await?;
                }
                anyhow::Ok(())
            }));
        }
        for t in tasks {
            t.await??;
        }
        reference.push((per_task * TASKS * SIZE) as f64 / started.elapsed().as_secs_f64());
    }
    // The reference rows are not activities anyone submitted: out again.
    db.execute_unprepared(
        "DELETE FROM activity_outcome WHERE activity_id IN \
         (SELECT id FROM activity WHERE submitted_by = 'bench-reference')",
    )
    .await?;
    db.execute_unprepared("DELETE FROM activity WHERE submitted_by = 'bench-reference'")
        .await?;
    let median = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    let (ours, reference) = (median(&mut ours), median(&mut reference));
    println!(
        "  batched: submitActivities of {SIZE} from {TASKS} clients {ours:.0} rows/s; plain \
         multi-row INSERTs of the same rows (activities and outcomes, same driver, {TASKS} \
         tasks) {reference:.0} rows/s; ratio {:.2}x (median of 3)",
        ours / reference
    );
    Ok(())
}

/// One load run: `requests` POSTs of `body` from `clients` keep-alive connections; answers
/// requests per second and the sorted latencies. Every answer must be 200 and pass `check`.
async fn load(
    addr: std::net::SocketAddr,
    token: &str,
    body: &str,
    clients: usize,
    requests: usize,
    check: fn(&str) -> bool,
) -> anyhow::Result<(f64, Vec<Duration>)> {
    let per_client = requests.div_ceil(clients);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (token, body) = (token.to_owned(), body.to_owned());
        tasks.push(tokio::spawn(async move {
            let mut client = Client::connect(addr).await?;
            let mut latencies = Vec::with_capacity(per_client);
            for _ in 0..per_client {
                let t = Instant::now();
                let (status, text) = client.post(&token, &body).await?;
                if status != 200 || !check(&text) {
                    bail!("request failed: {status} {}", &text[..text.len().min(300)]);
                }
                latencies.push(t.elapsed());
            }
            anyhow::Ok(latencies)
        }));
    }
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await??);
    }
    let rate = latencies.len() as f64 / started.elapsed().as_secs_f64();
    latencies.sort();
    Ok((rate, latencies))
}

/// User and system CPU time of this process so far (Linux: /proc/self/stat, in clock ticks of
/// 1/100 s); `None` elsewhere.
fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The fields after the command name (which may hold spaces, inside parentheses).
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split(' ');
    let utime: f64 = fields.nth(11)?.parse().ok()?;
    let stime: f64 = fields.next()?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    sorted
        .get(((sorted.len() as f64 * p) as usize).min(sorted.len().saturating_sub(1)))
        .map_or(0.0, |d| d.as_secs_f64() * 1e3)
}

/// How many memberships a response lists (both servers name the field `role`).
fn memberships_in(text: &str) -> usize {
    text.matches("\"role\"").count()
}

async fn lists(
    url: &str,
    peer: Option<&str>,
    clients: usize,
    requests: usize,
    runs: usize,
    normal: bool,
) -> anyhow::Result<()> {
    use cnscd_api::startup::{Application, prepare_database};
    const OURS: &str = "{ teams(first: 100) { edges { node { id code name \
        members(includeEnded: true) { role person { fullName } } } } } }";
    const PEER: &str = "{ allTeams(first: 100, orderBy: PRIMARY_KEY_ASC) { nodes { rowId code name \
        membershipsByTeamId { nodes { role personByPersonId { fullName } } } } } }";
    let db = prepare_database(url).await?;
    let teams = cnscd_api::db::count(&db, "SELECT COUNT(*) AS n FROM team", vec![]).await?;
    let memberships =
        cnscd_api::db::count(&db, "SELECT COUNT(*) AS n FROM membership", vec![]).await?;
    let secret = "cnscd-bench-secret-0123456789";
    let mut settings = cnscd_api::Settings::for_tests(url, secret);
    settings.listen = "127.0.0.1:0".into();
    let verifier = cnscd_api::auth::TokenVerifier::hs256(secret, None, None)?;
    let app = Application::with_database(&settings, verifier, db.clone()).await?;
    let ours = app.address();
    tokio::spawn(app.run_until_stopped());
    let token = |roles: &[&str], units: &[&str]| {
        cnscd_api::auth::mint(
            secret,
            &Claims {
                sub: "bench".into(),
                exp: chrono::Utc::now().timestamp() + 3600,
                roles: roles.iter().map(|r| r.to_string()).collect(),
                units: units.iter().map(|u| u.to_string()).collect(),
                ..Claims::default()
            },
        )
    };
    let admin = token(&["ADMIN"], &[])?;
    let viewer = token(&["VIEWER"], &["19"])?;
    let ours_body = serde_json::json!({ "query": OURS }).to_string();
    let peer_body = serde_json::json!({ "query": PEER }).to_string();
    let peer_addr: Option<std::net::SocketAddr> = match peer {
        Some(p) => Some(
            tokio::net::lookup_host(p)
                .await?
                .next()
                .context("peer address")?,
        ),
        None => None,
    };
    // The same rows both ways: the first page of teams with all their memberships.
    let mut probe = Client::connect(ours).await?;
    let (_, ours_text) = probe.post(&admin, &ours_body).await?;
    let listed = memberships_in(&ours_text);
    if let Some(addr) = peer_addr {
        let (status, text) = Client::connect(addr).await?.post("", &peer_body).await?;
        if status != 200 || memberships_in(&text) != listed {
            bail!(
                "PostGraphile answers {status} with {} memberships, cnscd {listed}: {}",
                memberships_in(&text),
                &text[..text.len().min(300)]
            );
        }
    }
    let check: fn(&str) -> bool = |t| !t.contains("\"errors\"") && memberships_in(t) > 0;
    let mut sides: Vec<(&str, std::net::SocketAddr, String, String)> = vec![
        ("cnscd (ADMIN)", ours, admin.clone(), ours_body.clone()),
        (
            "cnscd (VIEWER of 19, area-scoped)",
            ours,
            viewer,
            ours_body.clone(),
        ),
    ];
    if let Some(addr) = peer_addr {
        sides.push(("PostGraphile v5", addr, String::new(), peer_body));
    }
    if normal {
        // `name` asked twice (merged into one answer): async-graphql drops `@include` before
        // resolving, so only a selection that is not plain sends the page the normal way.
        let normal_body =
            serde_json::json!({ "query": OURS.replace("name", "name name") }).to_string();
        let (_, normal_text) = probe.post(&admin, &normal_body).await?;
        let data = |t: &str| {
            t.split(",\"extensions\"")
                .next()
                .unwrap_or_default()
                .to_owned()
        };
        if data(&normal_text) != data(&ours_text) {
            bail!("the normal resolution answers otherwise than the one-step path");
        }
        sides.push((
            "cnscd (ADMIN), normal resolution",
            ours,
            admin.clone(),
            normal_body.clone(),
        ));
        sides.push((
            "cnscd (VIEWER of 19), normal resolution",
            ours,
            sides[1].2.clone(),
            normal_body,
        ));
    }
    for (_, addr, token, body) in &sides {
        load(*addr, token, body, clients, clients * 10, check).await?;
    }
    let mut results: Vec<Vec<(f64, Vec<Duration>)>> = vec![Vec::new(); sides.len()];
    // CPU time of this process (the cnscd server and the clients) per request: far less
    // sensitive than requests/s to the other work of a shared machine.
    let mut cpu: Vec<Vec<f64>> = vec![Vec::new(); sides.len()];
    for _ in 0..runs {
        for (i, (_, addr, token, body)) in sides.iter().enumerate() {
            let before = process_cpu_seconds();
            results[i].push(load(*addr, token, body, clients, requests, check).await?);
            if let (Some(a), Some(b)) = (before, process_cpu_seconds()) {
                cpu[i].push((b - a) * 1e3 / requests as f64);
            }
        }
    }
    println!(
        "lists: teams(first: 100) with {listed} memberships and their persons ({teams} teams, \
         {memberships} memberships in the database), {clients} clients, {requests} requests per \
         run, median of {runs} runs"
    );
    let mut medians = Vec::new();
    for (((name, ..), mut rs), mut cpu) in sides.iter().zip(results).zip(cpu) {
        rs.sort_by(|a, b| a.0.total_cmp(&b.0));
        let (rate, lat) = &rs[rs.len() / 2];
        cpu.sort_by(f64::total_cmp);
        let cpu = cpu
            .get(cpu.len() / 2)
            .map(|c| format!("   cpu here {c:>5.2} ms/req"))
            .unwrap_or_default();
        println!(
            "  {name:<40} {rate:>8.0} req/s   p50 {:>6.1} ms   p99 {:>6.1} ms{cpu}",
            percentile(lat, 0.5),
            percentile(lat, 0.99)
        );
        medians.push(*rate);
    }
    if peer_addr.is_some() {
        println!(
            "  ratio cnscd / PostGraphile: {:.2}x (ADMIN), {:.2}x (VIEWER)",
            medians[0] / medians[2],
            medians[1] / medians[2]
        );
    }
    if normal {
        let n = medians.len();
        println!(
            "  one-step / normal resolution: {:.2}x (ADMIN), {:.2}x (VIEWER)",
            medians[0] / medians[n - 2],
            medians[1] / medians[n - 1]
        );
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Crash {
            database_url,
            server,
            clients,
            items,
            kills,
            batch,
            seed,
            timeout,
        } => {
            crash::run(crash::Options {
                database_url,
                server: server.unwrap_or_else(crash::default_server),
                clients: clients.max(1),
                items: items.max(1),
                kills,
                batch: batch.into(),
                seed,
                timeout,
            })
            .await
        }
        Command::Intake {
            database_url,
            clients,
            requests,
            batches,
            webhook,
        } => {
            intake(
                &database_url,
                clients.max(1),
                requests.max(1),
                batches,
                webhook,
            )
            .await
        }
        Command::Indicators {
            database_url,
            runs,
            province,
            year,
            explain,
            service_only,
            sequential,
            under_change,
            nation,
        } => {
            if nation {
                indicators_nation(&database_url, year, sequential.max(40)).await?;
            }
            indicators(
                &database_url,
                runs.max(1),
                &province,
                year,
                explain,
                service_only,
                sequential.max(40),
            )
            .await?;
            if under_change > 0 {
                indicators_under_change(&database_url, &province, year, under_change).await?;
            }
            Ok(())
        }
        Command::Lists {
            database_url,
            peer,
            clients,
            requests,
            runs,
            normal,
        } => {
            lists(
                &database_url,
                peer.as_deref(),
                clients.max(1),
                requests.max(1),
                runs.max(1),
                normal,
            )
            .await
        }
    }
}

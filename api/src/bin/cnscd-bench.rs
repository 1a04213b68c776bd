//! Benchmarks, kept out of the test run. Each reports a ratio against a reference measured in
//! the same run, with medians of several runs, and the data size.
//!
//! `cnscd-bench indicators --database-url URL`: a province-wide indicator query (every commune of
//! province 19, 12 months, 5 activity indicators) through the indicator service, against the
//! same numbers computed by one GROUP BY over the raw activity tables. Load the data first with
//! `cnscd seed demo --scale N` (see bench/indicators.sh).
use anyhow::{Context, bail};
use chrono::NaiveDate;
use clap::{Parser, Subcommand};
use cnscd_api::auth::{Claims, Principal};
use cnscd_api::db::{placeholders, query};
use cnscd_api::indicators::periods::Granularity;
use cnscd_api::indicators::service::{Breakdown, Request, compute};
use sea_orm::{DbBackend, Value};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

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
    },
}

/// The indicators measured: activity-derived flows with a simple GROUP BY equivalent.
const CODES: [&str; 5] = ["CNS05", "CNS06", "CNS07", "CNS08", "CNS09"];

type Numbers = BTreeMap<(String, String, String), f64>;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

async fn service_side(
    db: &sea_orm::DatabaseConnection,
    province: &str,
    from: NaiveDate,
    to: NaiveDate,
) -> anyhow::Result<Numbers> {
    let admin = Principal::from_claims(Claims {
        sub: "bench".into(),
        roles: vec!["ADMIN".into()],
        ..Claims::default()
    });
    let request = Request {
        codes: CODES.iter().map(|c| (*c).to_owned()).collect(),
        unit_codes: vec![province.to_owned()],
        from,
        to,
        granularity: Granularity::Month,
        breakdown: Breakdown::Level("COMMUNE"),
    };
    let values = compute(db, &admin, &request)
        .await
        .map_err(|e| anyhow::anyhow!(e.message()))?;
    Ok(values
        .into_iter()
        .map(|v| {
            (
                (v.definition.code, v.unit.code, v.period.label),
                v.numerator.unwrap_or(0.0),
            )
        })
        .collect())
}

async fn reference_side(
    db: &sea_orm::DatabaseConnection,
    communes: &[String],
    from: NaiveDate,
    to: NaiveDate,
) -> anyhow::Result<Numbers> {
    let month = match db.get_database_backend() {
        DbBackend::Postgres => "to_char(a.occurred_on, 'YYYY-MM')",
        _ => "strftime('%Y-%m', a.occurred_on)",
    };
    let sql = format!(
        "SELECT ac.ancestor_code AS unit_code, {month} AS month, \
         CAST(SUM(CASE WHEN a.kind_code = 'COMMUNITY_MEETING' THEN 1 ELSE 0 END) AS BIGINT) AS cns05, \
         CAST(SUM(COALESCE(a.households_reached, 0)) AS BIGINT) AS cns06, \
         CAST(SUM(COALESCE(o.ops, 0)) AS BIGINT) AS cns07, \
         CAST(SUM(COALESCE(o.cashless, 0)) AS BIGINT) AS cns08, \
         CAST(SUM(COALESCE(o.vneid, 0)) AS BIGINT) AS cns09 \
         FROM activity a \
         JOIN admin_unit_closure ac ON ac.descendant_code = a.unit_code \
           AND ac.valid_from <= a.occurred_on AND ac.valid_to >= a.occurred_on \
         LEFT JOIN (SELECT activity_id, \
             SUM(CASE WHEN service_code = 'ONLINE_PUBLIC_SERVICE' THEN people ELSE 0 END) AS ops, \
             SUM(CASE WHEN service_code IN (SELECT code FROM digital_service WHERE cashless) \
                 THEN people ELSE 0 END) AS cashless, \
             SUM(CASE WHEN service_code = 'VNEID' THEN people ELSE 0 END) AS vneid \
           FROM activity_outcome GROUP BY activity_id) o ON o.activity_id = a.id \
         WHERE ac.ancestor_code IN ({}) AND a.status = 'RECORDED' \
           AND a.occurred_on >= ? AND a.occurred_on <= ? \
         GROUP BY ac.ancestor_code, {month}",
        placeholders(communes.len())
    );
    let mut values: Vec<Value> = communes.iter().map(|c| Value::from(c.clone())).collect();
    values.extend([Value::from(from), Value::from(to)]);
    let mut out = Numbers::new();
    for row in query(db, &sql, values).await? {
        let unit: String = row.try_get("", "unit_code")?;
        let month: String = row.try_get("", "month")?;
        for code in CODES {
            let v: i64 = row.try_get("", &code.to_lowercase())?;
            out.insert((code.to_owned(), unit.clone(), month.clone()), v as f64);
        }
    }
    Ok(out)
}

async fn indicators(url: &str, runs: usize, province: &str, year: i32) -> anyhow::Result<()> {
    let db = cnscd_api::db::connect(url)
        .await
        .context("Failed to connect")?;
    let from = NaiveDate::from_ymd_opt(year, 1, 1).context("bad year")?;
    let to = NaiveDate::from_ymd_opt(year, 12, 31).context("bad year")?;
    let activities =
        cnscd_api::db::count(&db, "SELECT COUNT(*) AS n FROM activity", vec![]).await?;
    let communes: Vec<String> = cnscd_api::units::service::subtree_on(&db, province, to)
        .await
        .map_err(|e| anyhow::anyhow!(e.message()))?
        .into_iter()
        .filter(|(_, level)| level == "COMMUNE")
        .map(|(code, _)| code)
        .collect();
    if communes.is_empty() {
        bail!("province {province} has no communes on {to}: load data with `cnscd seed demo`");
    }
    // Warm up both sides (caches, prepared statements), then alternate runs.
    let ours = service_side(&db, province, from, to).await?;
    let reference = reference_side(&db, &communes, from, to).await?;
    let (mut t_ours, mut t_ref) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let start = Instant::now();
        service_side(&db, province, from, to).await?;
        t_ours.push(start.elapsed());
        let start = Instant::now();
        reference_side(&db, &communes, from, to).await?;
        t_ref.push(start.elapsed());
    }
    // The reference has rows only where there were activities; ours has every cell.
    let mut mismatches = 0;
    for ((code, unit, month), v) in &reference {
        let label = month.clone();
        let mine = ours
            .get(&(code.clone(), unit.clone(), label))
            .copied()
            .unwrap_or(0.0);
        if (mine - v).abs() > 1e-6 {
            mismatches += 1;
        }
    }
    let extra = ours
        .iter()
        .filter(|(k, v)| **v != 0.0 && !reference.contains_key(*k))
        .count();
    let (ours_ms, ref_ms) = (median(t_ours), median(t_ref));
    println!(
        "indicators: {} activities, {} communes x 12 months x {} indicators ({} values)",
        activities,
        communes.len(),
        CODES.len(),
        ours.len()
    );
    println!(
        "  service   median {:>9.2} ms\n  reference median {:>9.2} ms (one GROUP BY over raw activities)\n  speed-up  {:.1}x   numbers: {} mismatches, {} values missing from the reference",
        ours_ms.as_secs_f64() * 1e3,
        ref_ms.as_secs_f64() * 1e3,
        ref_ms.as_secs_f64() / ours_ms.as_secs_f64(),
        mismatches,
        extra
    );
    if mismatches + extra > 0 {
        bail!("the service and the reference disagree");
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Indicators {
            database_url,
            runs,
            province,
            year,
        } => indicators(&database_url, runs.max(1), &province, year).await,
    }
}

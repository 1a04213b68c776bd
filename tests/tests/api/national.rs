//! The national data set (`seed national`), small: deterministic from its seed, present in
//! every province asked for, hamlets of merged communes moved on 2025-07-01, and its rollups
//! and indicators equal to a recount from its raw rows.
use cnscd_api::activities::rollup;
use cnscd_api::demo::national::Options;
use cnscd_tests::*;
use sea_orm::{ConnectionTrait, DatabaseConnection};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::hash::{DefaultHasher, Hash, Hasher};

/// Lai Châu (unchanged by the 2025 mergers of provinces) and Cà Mau (which took in Bạc Liêu).
const PROVINCES: &[&str] = &["12", "96"];

fn options() -> Options {
    Options {
        activities: 20_000,
        seed: 11,
        provinces: PROVINCES.iter().map(|p| (*p).to_owned()).collect(),
    }
}

async fn rows(db: &DatabaseConnection, sql: &str, values: Vec<sea_orm::Value>) -> Vec<Vec<String>> {
    cnscd_api::db::query(db, sql, values)
        .await
        .unwrap()
        .iter()
        .map(|r| {
            (0..)
                .map_while(|i| {
                    r.try_get_by_index::<Option<String>>(i)
                        .map(|v| v.unwrap_or_default())
                        .or_else(|_| {
                            r.try_get_by_index::<Option<i64>>(i)
                                .map(|v| format!("{v:?}"))
                        })
                        .or_else(|_| {
                            r.try_get_by_index::<Option<chrono::NaiveDate>>(i)
                                .map(|v| format!("{v:?}"))
                        })
                        .or_else(|_| {
                            r.try_get_by_index::<Option<i32>>(i)
                                .map(|v| format!("{v:?}"))
                        })
                        .ok()
                })
                .collect()
        })
        .collect()
}

/// A digest of the rows a seed wrote: counts of every table, and the activities, people and
/// figures themselves.
async fn digest(db: &DatabaseConnection) -> (Vec<u64>, u64) {
    let mut counts = Vec::new();
    for table in [
        "admin_unit",
        "admin_unit_closure",
        "team",
        "person",
        "membership",
        "activity",
        "activity_outcome",
        "data_value",
        "unit_month_fact",
    ] {
        counts.push(
            cnscd_api::db::count(db, &format!("SELECT COUNT(*) AS n FROM {table}"), vec![])
                .await
                .unwrap(),
        );
    }
    let mut h = DefaultHasher::new();
    for sql in [
        "SELECT unit_code, kind_code, occurred_on, title, participants, households_reached \
         FROM activity ORDER BY id",
        "SELECT full_name, phone, email, birth_year FROM person ORDER BY id",
        "SELECT code, unit_code, founded_on, dissolved_on FROM team ORDER BY id",
        "SELECT unit_code, element_code, period_start, CAST(value AS BIGINT) FROM data_value \
         ORDER BY id",
        "SELECT code, parent_code, valid_from, valid_to FROM admin_unit WHERE level = 'HAMLET' \
         ORDER BY code, valid_from",
    ] {
        let r = rows(db, sql, vec![]).await;
        assert!(!r.is_empty(), "{sql}");
        r.hash(&mut h);
    }
    (counts, h.finish())
}

async fn count(db: &DatabaseConnection, sql: &str, values: Vec<sea_orm::Value>) -> u64 {
    cnscd_api::db::count(db, sql, values).await.unwrap()
}

/// Every province asked for has hamlets, teams, members, activities and figures.
async fn every_province_is_there(db: &DatabaseConnection) {
    let under = "JOIN admin_unit_closure ac ON ac.descendant_code = {u} \
                 AND ac.valid_from <= {d} AND ac.valid_to >= {d} WHERE ac.ancestor_code = ?";
    let on = |u: &str, d: &str| under.replace("{u}", u).replace("{d}", d);
    for p in PROVINCES {
        for (what, sql) in [
            (
                "hamlets",
                format!(
                    "SELECT COUNT(*) AS n FROM admin_unit h {} AND h.level = 'HAMLET' \
                     AND h.valid_from <= '2025-12-31' AND h.valid_to >= '2025-12-31'",
                    on("h.code", "'2025-12-31'")
                ),
            ),
            (
                "teams",
                format!(
                    "SELECT COUNT(*) AS n FROM team t {}",
                    on("t.unit_code", "'2025-12-31'")
                ),
            ),
            (
                "members",
                format!(
                    "SELECT COUNT(*) AS n FROM membership m JOIN team t ON t.id = m.team_id {}",
                    on("t.unit_code", "'2025-12-31'")
                ),
            ),
            (
                "activities",
                format!(
                    "SELECT COUNT(*) AS n FROM activity a {}",
                    on("a.unit_code", "a.occurred_on")
                ),
            ),
            (
                "figures",
                format!(
                    "SELECT COUNT(*) AS n FROM data_value v {}",
                    on("v.unit_code", "v.period_end")
                ),
            ),
        ] {
            let n = count(db, &sql, vec![(*p).into()]).await;
            assert!(n > 0, "province {p} has no {what}");
        }
    }
}

/// Hamlets of merged communes sit under their old commune until 2025-06-30 and under the one
/// that succeeded it from 2025-07-01, through the API as in the rows.
async fn moved_hamlets_changed_commune(db: &DatabaseConnection, address: &str) {
    let moved = rows(
        db,
        "SELECT a.code, a.parent_code, b.parent_code, a.name FROM admin_unit a \
         JOIN admin_unit b ON b.code = a.code AND b.valid_from = '2025-07-01' \
         WHERE a.level = 'HAMLET' AND a.valid_to = '2025-06-30' ORDER BY a.code",
        vec![],
    )
    .await;
    assert!(moved.len() > 100, "{} hamlets moved", moved.len());
    let client = reqwest::Client::new();
    for m in moved.iter().step_by(moved.len() / 5) {
        let (code, old, new, name) = (&m[0], &m[1], &m[2], &m[3]);
        assert!(code.starts_with(&format!("{old}-")), "{m:?}");
        assert_ne!(old, new);
        for (under, on, expected) in [
            (old, "2025-06-30", true),
            (new, "2025-06-30", false),
            (old, "2025-07-01", false),
            (new, "2025-07-01", true),
        ] {
            let body: serde_json::Value = client
                .post(format!("{address}/graphql"))
                .bearer_auth(admin())
                .json(&json!({
                    "query": "query($under: String, $on: Date, $search: String) { adminUnits(under: $under, on: $on, search: $search, level: HAMLET, first: 100) { edges { node { code } } } }",
                    "variables": { "under": under, "on": on, "search": name },
                }))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let edges = body["data"]["adminUnits"]["edges"]
                .as_array()
                .unwrap_or_else(|| panic!("{body}"));
            let found = edges.iter().any(|e| e["node"]["code"] == code.as_str());
            assert_eq!(found, expected, "{code} under {under} on {on}: {body}");
        }
    }
}

/// The stored rollups equal a recount from the raw rows, cell by cell.
async fn rollups_recount(db: &DatabaseConnection) {
    let (read, expected) = rollup::recount(db).await.unwrap();
    assert_eq!(read, 20_000);
    let stored = rollup::stored(db).await.unwrap();
    let cells: BTreeSet<_> = expected.keys().chain(stored.keys()).collect();
    let differ: Vec<String> = cells
        .iter()
        .filter_map(|c| {
            let (want, got) = (
                expected.get(*c).copied().unwrap_or(0.0),
                stored.get(*c).copied().unwrap_or(0.0),
            );
            ((want - got).abs() > 1e-9).then(|| format!("{c:?}: stored {got}, recount {want}"))
        })
        .collect();
    assert!(
        differ.is_empty(),
        "{} cells differ: {:?}",
        differ.len(),
        &differ[..differ.len().min(5)]
    );
    assert!(cells.len() > 10_000, "{}", cells.len());
}

/// (indicator, unit, period label) → (numerator, denominator).
type Numbers = BTreeMap<(String, String, String), (f64, Option<f64>)>;

const CODES: &[&str] = &["CNS02", "CNS05", "CNS07", "CNS08", "CNS09", "CNS10"];

/// The numbers as the server answers them.
async fn answered(
    address: &str,
    units: &[String],
    from: &str,
    to: &str,
    granularity: &str,
) -> Numbers {
    let body: serde_json::Value = reqwest::Client::new()
        .post(format!("{address}/graphql"))
        .bearer_auth(admin())
        .json(&json!({
            "query": format!("query($codes: [String!]!, $units: [String!]!) {{ indicators(codes: $codes, unitCodes: $units, from: \"{from}\", to: \"{to}\", granularity: {granularity}) {{ indicator {{ code }} unit {{ code }} period {{ label }} numerator denominator }} }}"),
            "variables": { "codes": CODES, "units": units },
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let list = body["data"]["indicators"]
        .as_array()
        .unwrap_or_else(|| panic!("{body}"));
    list.iter()
        .map(|v| {
            (
                (
                    v["indicator"]["code"].as_str().unwrap_or("").to_owned(),
                    v["unit"]["code"].as_str().unwrap_or("").to_owned(),
                    v["period"]["label"].as_str().unwrap_or("").to_owned(),
                ),
                (
                    v["numerator"].as_f64().unwrap_or(0.0),
                    v["denominator"].as_f64(),
                ),
            )
        })
        .collect()
}

/// The same numbers from the raw rows, for `unit` over `from..=to` (one period).
async fn recounted(
    db: &DatabaseConnection,
    unit: &str,
    from: &str,
    to: &str,
) -> BTreeMap<&'static str, (f64, Option<f64>)> {
    let (u, f, t) = (
        sea_orm::Value::from(unit),
        sea_orm::Value::from(date(from)),
        sea_orm::Value::from(date(to)),
    );
    let flows = "FROM activity a JOIN admin_unit_closure ac ON ac.descendant_code = a.unit_code \
                 AND ac.valid_from <= a.occurred_on AND ac.valid_to >= a.occurred_on \
                 WHERE ac.ancestor_code = ? AND a.status = 'RECORDED' \
                 AND a.occurred_on >= ? AND a.occurred_on <= ?";
    let n = |sql: String, values: Vec<sea_orm::Value>| async move {
        count(db, &sql, values).await as f64
    };
    let activities = n(
        format!("SELECT COUNT(*) AS n {flows}"),
        vec![u.clone(), f.clone(), t.clone()],
    )
    .await;
    let meetings = n(
        format!("SELECT COUNT(*) AS n {flows} AND a.kind_code = 'COMMUNITY_MEETING'"),
        vec![u.clone(), f.clone(), t.clone()],
    )
    .await;
    let people = |filter: &'static str| {
        let values = vec![u.clone(), f.clone(), t.clone()];
        let sql = format!(
            "SELECT CAST(COALESCE(SUM(o.people), 0) AS BIGINT) AS n FROM activity_outcome o \
             JOIN digital_service ds ON ds.code = o.service_code \
             JOIN activity a ON a.id = o.activity_id \
             JOIN admin_unit_closure ac ON ac.descendant_code = a.unit_code \
             AND ac.valid_from <= a.occurred_on AND ac.valid_to >= a.occurred_on \
             WHERE ac.ancestor_code = ? AND a.status = 'RECORDED' \
             AND a.occurred_on >= ? AND a.occurred_on <= ? AND {filter}"
        );
        async move { count(db, &sql, values).await as f64 }
    };
    let ops = people("o.service_code = 'ONLINE_PUBLIC_SERVICE'").await;
    let vneid = people("o.service_code = 'VNEID'").await;
    let cashless = people("ds.cashless").await;
    // States on the period's last day.
    let teams_on = "FROM team t JOIN admin_unit_closure ac ON ac.descendant_code = t.unit_code \
                    AND ac.valid_from <= ? AND ac.valid_to >= ? \
                    WHERE ac.ancestor_code = ? AND t.founded_on <= ? \
                    AND (t.dissolved_on IS NULL OR t.dissolved_on > ?)";
    let state = vec![t.clone(), t.clone(), u.clone(), t.clone(), t.clone()];
    let teams = n(format!("SELECT COUNT(*) AS n {teams_on}"), state.clone()).await;
    let mut members_values = state;
    members_values.extend([t.clone(), t.clone()]);
    let members = n(
        format!(
            "SELECT COUNT(*) AS n FROM membership ms JOIN ({}) t ON ms.team_id = t.id \
             WHERE ms.started_on <= ? AND (ms.ended_on IS NULL OR ms.ended_on >= ?)",
            format_args!("SELECT t.id {teams_on}")
        ),
        members_values,
    )
    .await;
    BTreeMap::from([
        ("CNS02", (teams, None)),
        ("CNS05", (meetings, None)),
        ("CNS07", (ops, None)),
        ("CNS08", (cashless, None)),
        ("CNS09", (vneid, None)),
        ("CNS10", (activities, Some(members))),
    ])
}

/// Provinces on `day`.
async fn provinces_on(db: &DatabaseConnection, day: &str) -> Vec<String> {
    rows(
        db,
        "SELECT code FROM admin_unit WHERE level = 'PROVINCE' AND valid_from <= ? \
         AND valid_to >= ? ORDER BY code",
        vec![date(day).into(), date(day).into()],
    )
    .await
    .into_iter()
    .map(|r| r[0].clone())
    .collect()
}

async fn indicators_recount(db: &DatabaseConnection, address: &str) {
    // Province by province: every year, as answered and as recounted.
    for (from, to, label) in [
        ("2023-01-01", "2023-12-31", "2023"),
        ("2024-01-01", "2024-12-31", "2024"),
        ("2025-01-01", "2025-12-31", "2025"),
    ] {
        let units: Vec<String> = PROVINCES.iter().map(|p| (*p).to_owned()).collect();
        let got = answered(address, &units, from, to, "YEAR").await;
        for p in PROVINCES {
            for (code, (num, den)) in recounted(db, p, from, to).await {
                let Some((n, d)) = got.get(&(code.to_owned(), (*p).to_owned(), label.to_owned()))
                else {
                    panic!("{code} {p} {label}: not answered");
                };
                assert_eq!(*n, num, "{code} {p} {label}: numerator");
                if let Some(den) = den {
                    assert_eq!(*d, Some(den), "{code} {p} {label}: denominator");
                }
                if code == "CNS10" {
                    assert!(num > 0.0, "{p} {label}: no activities");
                }
            }
        }
    }
    // The nation: the provinces of the day add up to every activity of the period.
    for (from, to, day, label) in [
        ("2024-01-01", "2024-12-31", "2024-12-31", "2024"),
        ("2025-07-01", "2025-09-30", "2025-09-30", "2025-Q3"),
    ] {
        let provinces = provinces_on(db, day).await;
        assert_eq!(provinces.len(), if day < "2025-07-01" { 63 } else { 34 });
        let got = answered(
            address,
            &provinces,
            from,
            to,
            if label.contains('Q') {
                "QUARTER"
            } else {
                "YEAR"
            },
        )
        .await;
        let nation: f64 = got
            .iter()
            .filter(|((code, _, period), _)| code == "CNS10" && period == label)
            .map(|(_, (n, _))| n)
            .sum();
        let raw = count(
            db,
            "SELECT COUNT(*) AS n FROM activity WHERE status = 'RECORDED' \
             AND occurred_on >= ? AND occurred_on <= ?",
            vec![date(from).into(), date(to).into()],
        )
        .await as f64;
        assert!(raw > 1_000.0);
        assert_eq!(nation, raw, "the nation's activities in {label}");
        let teams: f64 = got
            .iter()
            .filter(|((code, _, period), _)| code == "CNS02" && period == label)
            .map(|(_, (n, _))| n)
            .sum();
        let raw_teams = count(
            db,
            "SELECT COUNT(*) AS n FROM team WHERE founded_on <= ? \
             AND (dissolved_on IS NULL OR dissolved_on > ?)",
            vec![date(to).into(), date(to).into()],
        )
        .await as f64;
        assert_eq!(teams, raw_teams, "the nation's teams at the end of {label}");
    }
}

#[tokio::test]
async fn a_national_set_is_deterministic_complete_and_recounts_to_its_indicators() {
    let (test_db, db, report) = seed_national(&options()).await;
    assert_eq!(report.activities, 20_000);
    assert!(report.hamlets > 1_500 && report.teams > 1_300, "{report:?}");
    assert!(report.hamlets_moved > 100, "{report:?}");
    // The same seed again: the same rows.
    let (_again_db, again, again_report) = seed_national(&options()).await;
    assert_eq!(report, again_report);
    assert_eq!(digest(&db).await, digest(&again).await);
    drop(again);

    every_province_is_there(&db).await;
    rollups_recount(&db).await;
    let address = serve(&test_db, db.clone()).await;
    moved_hamlets_changed_commune(&db, &address).await;
    indicators_recount(&db, &address).await;
    // Loading again into the same database is refused.
    let data = std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../data"));
    let err = cnscd_api::demo::national::seed(
        &db,
        &data,
        &options(),
        &cnscd_api::seed::progress::Progress::hidden(),
    )
    .await
    .err()
    .map(|e| e.message())
    .unwrap_or_default();
    assert!(err.contains("empty database"), "{err}");
    let _ = db.execute_unprepared("SELECT 1").await;
}

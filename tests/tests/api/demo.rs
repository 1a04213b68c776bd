//! The demo data set: Đồng Hỷ's published 2023 figures come out of the indicators.
use cnscd_tests::*;
use serde_json::json;

#[tokio::test]
async fn demo_data_reproduces_dong_hys_2023_figures() {
    let (test_db, report, address) = spawn_demo_app().await;
    assert_eq!(report.teams, 143);
    assert!((700..=900).contains(&report.members), "{report:?}");
    let viewer = token(&["VIEWER"], &["19"], &[]);
    let body: serde_json::Value = reqwest::Client::new()
        .post(format!("{address}/graphql"))
        .bearer_auth(viewer)
        .json(&json!({ "query": "{ indicators(codes: [\"EG01\", \"CNS02\", \"EG02\", \"DS01\"], unitCodes: [\"169\"], from: \"2023-01-01\", to: \"2023-12-31\", granularity: YEAR) { indicator { code } value numerator status } }" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let rows = body["data"]["indicators"]
        .as_array()
        .unwrap_or_else(|| panic!("{body}"));
    let get = |code: &str| {
        rows.iter()
            .find(|r| r["indicator"]["code"] == code)
            .unwrap()
    };
    let eg01 = get("EG01");
    assert!(
        (eg01["value"].as_f64().unwrap() - 73.0).abs() < 1.0,
        "{eg01}"
    );
    assert!(
        (eg01["numerator"].as_f64().unwrap() - 27_000.0).abs() < 1_000.0,
        "{eg01}"
    );
    assert_eq!(get("CNS02")["value"], 143.0);
    assert!(get("EG02")["value"].as_f64().unwrap() > 72_000.0);
    assert!((get("DS01")["value"].as_f64().unwrap() - 70.0).abs() < 1.5);
    breakdowns_add_up(&address, &test_db).await;
    // Xóm Cà Phê is there, under Minh Lập before the reorganisation.
    let body: serde_json::Value = reqwest::Client::new()
        .post(format!("{address}/graphql"))
        .bearer_auth(token(&["VIEWER"], &["19"], &[]))
        .json(&json!({ "query": "{ adminUnits(under: \"05677\", on: \"2024-01-01\", search: \"ca phe\") { edges { node { name level } } } }" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        body["data"]["adminUnits"]["edges"][0]["node"]["name"],
        "Xóm Cà Phê"
    );
}

/// For every granularity from 2023 to 2026, the children of a unit (every unit that was its
/// child on some day of the period, over the days it was) add up to the unit: activities
/// (a flow) over all children, members (a state) over the children still there at the period's
/// end; and the unit's activities are exactly the raw rows under it on their days.
async fn breakdowns_add_up(address: &str, test_db: &TestDb) {
    let db = cnscd_api::db::connect(&test_db.url).await.unwrap();
    let client = reqwest::Client::new();
    let ask = |unit: &'static str, granularity: &'static str, breakdown: &'static str| {
        let client = client.clone();
        async move {
            let body: serde_json::Value = client
                .post(format!("{address}/graphql"))
                .bearer_auth(admin())
                .json(&json!({ "query": format!("{{ indicators(codes: [\"CNS10\"], unitCodes: [\"{unit}\"], from: \"2023-01-01\", to: \"2026-12-31\", granularity: {granularity}, breakdown: {breakdown}) {{ unit {{ code }} period {{ label start end }} asOf numerator denominator status }} }}") }))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            body["data"]["indicators"]
                .as_array()
                .unwrap_or_else(|| panic!("{body}"))
                .clone()
        }
    };
    let num = |v: &serde_json::Value, f: &str| v[f].as_f64().unwrap_or(0.0);
    let (mut activities_seen, mut members_seen) = (0.0, 0.0);
    for unit in ["19", "169", "05692"] {
        for granularity in ["MONTH", "QUARTER", "YEAR"] {
            let parents = ask(unit, granularity, "SELF").await;
            let children = ask(unit, granularity, "CHILDREN").await;
            for p in &parents {
                let label = p["period"]["label"].as_str().unwrap();
                let of_period: Vec<&serde_json::Value> = children
                    .iter()
                    .filter(|c| c["period"]["label"] == label)
                    .collect();
                let activities: f64 = of_period.iter().map(|c| num(c, "numerator")).sum();
                assert_eq!(
                    activities,
                    num(p, "numerator"),
                    "{unit} {label}: children's activities {activities} vs {}",
                    p["numerator"]
                );
                let raw = cnscd_api::db::count(
                    &db,
                    "SELECT COUNT(*) AS n FROM activity a JOIN admin_unit_closure ac \
                     ON ac.descendant_code = a.unit_code AND ac.valid_from <= a.occurred_on \
                     AND ac.valid_to >= a.occurred_on WHERE ac.ancestor_code = $1 \
                     AND a.status = 'RECORDED' AND a.occurred_on >= $2 AND a.occurred_on <= $3",
                    vec![
                        unit.into(),
                        date(p["period"]["start"].as_str().unwrap()).into(),
                        date(p["period"]["end"].as_str().unwrap()).into(),
                    ],
                )
                .await
                .unwrap();
                assert_eq!(num(p, "numerator"), raw as f64, "{unit} {label}: raw rows");
                activities_seen += activities;
                if p["status"] == "NO_DATA" || p["denominator"].is_null() {
                    continue;
                }
                // Members: the children there on the parent's last day add up to the parent.
                let full: f64 = of_period
                    .iter()
                    .filter(|c| c["asOf"] == p["asOf"])
                    .map(|c| num(c, "denominator"))
                    .sum();
                assert_eq!(full, num(p, "denominator"), "{unit} {label}: members");
                members_seen += full;
            }
        }
    }
    assert!(activities_seen > 10_000.0 && members_seen > 1_000.0);
}

//! The demo data set: Đồng Hỷ's published 2023 figures come out of the indicators.
use cnscd_tests::*;
use serde_json::json;

#[tokio::test]
async fn demo_data_reproduces_dong_hys_2023_figures() {
    let test_db = TestDb::new().await;
    let db = cnscd_api::startup::prepare_database(&test_db.url)
        .await
        .unwrap();
    let dir = std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../data"));
    let report = cnscd_api::demo::seed(&db, &dir, 1).await.unwrap();
    assert_eq!(report.teams, 143);
    assert!((700..=900).contains(&report.members), "{report:?}");
    let settings = cnscd_api::config::Settings::for_tests(&test_db.url, SECRET);
    let verifier = cnscd_api::auth::TokenVerifier::hs256(SECRET, None, None).unwrap();
    let app = cnscd_api::startup::Application::with_database(&settings, verifier, db)
        .await
        .unwrap();
    let address = format!("http://{}", app.address());
    tokio::spawn(app.run_until_stopped());
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

//! Batched intake (`submitActivities`): per-item results in input order, partial or atomic
//! storage, retries that store nothing twice, limits.
use cnscd_tests::*;
use serde_json::{Value, json};

const BATCH: &str = "mutation($i: SubmitActivitiesInput!) { submitActivities(input: $i) { \
    results { replayed activity { id unitCode kind participants outcomes { service people } } \
    userErrors { field message code } } userErrors { field message code } } }";

fn item(team: &str, key: &str, on: &str) -> Value {
    json!({
        "idempotencyKey": key, "teamId": team, "kind": "DOOR_TO_DOOR", "occurredOn": on,
        "title": "Hướng dẫn thanh toán không dùng tiền mặt", "participants": 5,
        "outcomes": [ { "service": "VNEID", "people": 3 }, { "service": "UTILITY_BILL_PAYMENT", "people": 2 } ]
    })
}

async fn scalar(app: &TestApp, sql: &str) -> f64 {
    let rows = cnscd_api::db::query(&app.db, sql, vec![]).await.unwrap();
    let r = &rows[0];
    r.try_get::<Option<f64>>("", "n")
        .ok()
        .flatten()
        .or_else(|| r.try_get::<i64>("", "n").ok().map(|n| n as f64))
        .unwrap_or(0.0)
}

/// Activities stored in the hamlet, and what its rollups (rows and deltas) count for them.
async fn stored(app: &TestApp) -> (f64, f64) {
    let cells = cnscd_api::activities::rollup::stored(&app.db)
        .await
        .unwrap();
    (
        scalar(
            app,
            "SELECT COUNT(*) AS n FROM activity WHERE unit_code = '05677-01'",
        )
        .await,
        cells
            .iter()
            .filter(|((unit, element, _), _)| unit == "05677-01" && element == "ACTIVITIES")
            .map(|(_, v)| v)
            .sum(),
    )
}

fn fields(results: &Value, i: usize) -> Vec<Value> {
    results[i]["userErrors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].clone())
        .collect()
}

#[tokio::test]
async fn a_batch_stores_the_items_that_pass_and_answers_each_in_order() {
    let app = spawn_app().await;
    let team = app.create_team("05677-01", "Tổ Cà Phê", "2022-05-01").await;
    let far = app.create_team("05692", "Tổ xa", "2022-05-01").await;
    let reporter = token(&["REPORTER"], &["05677"], &[]);
    let mut bad_kind = item(&team, "k2", "2024-03-06");
    bad_kind["kind"] = json!("DANCING");
    let mut future = item(&team, "k5", "2099-01-01");
    future["participants"] = json!(-3);
    let items = json!([
        item(&team, "k0", "2024-03-05"),
        item(&team, "k1", "2024-04-05"),
        bad_kind,
        item(&far, "k3", "2024-03-05"),
        item("not-an-id", "k4", "2024-03-05"),
        future,
        item(&team, "k0", "2024-05-05"),
        item(&team, "k7", "2024-06-05"),
    ]);
    let r = app
        .gql(&reporter, BATCH, json!({ "i": { "items": items } }))
        .await
        .ok();
    let results = r.at("submitActivities.results").clone();
    assert_eq!(results.as_array().unwrap().len(), 8, "{}", r.body);
    for i in [0, 1, 7] {
        assert_eq!(results[i]["userErrors"], json!([]), "item {i}: {}", r.body);
        assert_eq!(results[i]["activity"]["unitCode"], "05677-01");
        assert_eq!(results[i]["replayed"], false);
    }
    for i in [2, 3, 4, 5, 6] {
        assert!(results[i]["activity"].is_null(), "item {i}");
        for f in fields(&results, i) {
            assert_eq!(f[0], "items", "item {i}: {}", r.body);
            assert_eq!(f[1], i.to_string(), "item {i}: {}", r.body);
        }
    }
    assert_eq!(fields(&results, 2), [json!(["items", "2", "kind"])]);
    assert_eq!(results[3]["userErrors"][0]["code"], "NOT_FOUND");
    assert_eq!(fields(&results, 4), [json!(["items", "4", "teamId"])]);
    assert_eq!(
        fields(&results, 5),
        [
            json!(["items", "5", "participants"]),
            json!(["items", "5", "occurredOn"])
        ]
    );
    assert!(
        results[6]["userErrors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("item 0"),
        "{}",
        r.body
    );
    assert_eq!(stored(&app).await, (3.0, 3.0));

    // The same batch again: the same activities, as replays; nothing stored twice.
    let again = app
        .gql(&reporter, BATCH, json!({ "i": { "items": items } }))
        .await
        .ok();
    let replayed = again.at("submitActivities.results").clone();
    for i in [0, 1, 7] {
        assert_eq!(replayed[i]["replayed"], true);
        assert_eq!(replayed[i]["activity"]["id"], results[i]["activity"]["id"]);
    }
    for i in [2, 3, 4, 5, 6] {
        assert_eq!(
            replayed[i]["userErrors"], results[i]["userErrors"],
            "item {i}"
        );
    }
    assert_eq!(stored(&app).await, (3.0, 3.0));
    // A key reused for different input is refused for that item only.
    let mut changed = item(&team, "k1", "2024-04-06");
    changed["participants"] = json!(6);
    let r = app
        .gql(
            &reporter,
            BATCH,
            json!({ "i": { "items": [changed, item(&team, "k8", "2024-07-01")] } }),
        )
        .await
        .ok();
    assert_eq!(
        r.at("submitActivities.results.0.userErrors.0.code"),
        "IDEMPOTENCY_KEY_REUSED"
    );
    assert_eq!(
        r.at("submitActivities.results.0.userErrors.0.field"),
        &json!(["items", "0"])
    );
    assert_eq!(r.at("submitActivities.results.1.userErrors"), &json!([]));
    assert_eq!(stored(&app).await, (4.0, 4.0));
}

#[tokio::test]
async fn an_atomic_batch_stores_all_or_nothing() {
    let app = spawn_app().await;
    let team = app.create_team("05677-01", "Tổ Cà Phê", "2022-05-01").await;
    let mut bad = item(&team, "a2", "2024-03-07");
    bad["outcomes"] = json!([{ "service": "TELEPORT", "people": 1 }]);
    let items = json!([
        item(&team, "a0", "2024-03-05"),
        item(&team, "a1", "2024-03-06"),
        bad
    ]);
    let r = app
        .gql(
            &admin(),
            BATCH,
            json!({ "i": { "items": items, "atomic": true } }),
        )
        .await
        .ok();
    let results = r.at("submitActivities.results");
    assert_eq!(
        results[2]["userErrors"][0]["field"],
        json!(["items", "2", "outcomes", "0", "service"])
    );
    for i in [0, 1] {
        assert!(results[i]["activity"].is_null());
        assert_eq!(
            results[i]["userErrors"][0]["field"],
            json!(["items", i.to_string()])
        );
        assert!(
            results[i]["userErrors"][0]["message"]
                .as_str()
                .unwrap()
                .contains("atomic"),
            "{}",
            r.body
        );
    }
    assert_eq!(stored(&app).await, (0.0, 0.0));
    // Fixed, the same keys go through together.
    let items = json!([
        item(&team, "a0", "2024-03-05"),
        item(&team, "a1", "2024-03-06"),
        item(&team, "a2", "2024-03-07")
    ]);
    let r = app
        .gql(
            &admin(),
            BATCH,
            json!({ "i": { "items": items, "atomic": true } }),
        )
        .await
        .ok();
    for i in 0..3 {
        assert_eq!(
            r.at(&format!("submitActivities.results.{i}.userErrors")),
            &json!([])
        );
    }
    assert_eq!(stored(&app).await, (3.0, 3.0));
}

#[tokio::test]
async fn batch_size_is_bounded_and_large_batches_store_every_item_once() {
    let app = spawn_app().await;
    let team = app.create_team("05677-01", "Tổ Cà Phê", "2022-05-01").await;
    let r = app
        .gql(&admin(), BATCH, json!({ "i": { "items": [] } }))
        .await
        .ok();
    assert_eq!(
        r.at("submitActivities.userErrors.0.field"),
        &json!(["input", "items"]),
        "{}",
        r.body
    );
    assert_eq!(r.at("submitActivities.results"), &json!([]));
    // Over the limit: refused before it runs, naming the list and the limit.
    let items: Vec<Value> = (0..501)
        .map(|i| item(&team, &format!("x{i}"), "2024-03-05"))
        .collect();
    let r = app
        .gql(&admin(), BATCH, json!({ "i": { "items": items } }))
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.error_codes(), ["VALIDATION"]);
    assert_eq!(
        r.body["errors"][0]["extensions"]["field"],
        json!(["input", "items"])
    );
    assert!(
        r.body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("at most 500")
    );
    // 250 items (more than one write statement's worth), sent twice at once: each stored
    // once, both answers naming the same activities.
    let items: Vec<Value> = (0..250)
        .map(|i| {
            item(
                &team,
                &format!("big{i}"),
                &format!("2024-{:02}-10", i % 12 + 1),
            )
        })
        .collect();
    let body = json!({ "i": { "items": items } });
    let admin = admin();
    let (a, b) = tokio::join!(
        app.gql(&admin, BATCH, body.clone()),
        app.gql(&admin, BATCH, body.clone())
    );
    let (a, b) = (a.ok(), b.ok());
    for i in 0..250 {
        let path = format!("submitActivities.results.{i}.activity.id");
        assert!(a.at(&path).is_string(), "{}", a.body);
        assert_eq!(a.at(&path), b.at(&path));
    }
    assert_eq!(stored(&app).await, (250.0, 250.0));
}

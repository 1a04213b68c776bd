//! Apollo's automatic persisted queries through `POST` and `GET /graphql`: an unknown hash is
//! `PersistedQueryNotFound`, a text sent with its hash is kept for every replica, a hash alone
//! then runs it with the caller's own token, area and limits; a hash that is not the text's, a
//! malformed extension and a mutation over GET are refused; the table keeps at most its bound,
//! the least recently used dropped.
use cnscd_api::http::persisted::{MAX_STORED, hash_of};
use cnscd_tests::*;
use serde_json::{Value, json};

const QUERY: &str = "query Units($code: String!) { adminUnit(code: $code) { code name } }";

fn viewer() -> String {
    token(&["VIEWER"], &["169"], &[])
}

fn extension(hash: &str) -> Value {
    json!({ "persistedQuery": { "version": 1, "sha256Hash": hash } })
}

async fn post(app: &TestApp, address: &str, token: Option<&str>, body: Value) -> (u16, Value) {
    let mut request = app.client.post(format!("{address}/graphql")).json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn get(app: &TestApp, params: &[(&str, String)]) -> (u16, Value) {
    let response = app
        .client
        .get(format!("{}/graphql", app.address))
        .bearer_auth(viewer())
        .query(params)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn message(body: &Value) -> &str {
    body["errors"][0]["message"].as_str().unwrap_or_default()
}

async fn stored(app: &TestApp) -> u64 {
    cnscd_api::db::count(&app.db, "SELECT COUNT(*) AS n FROM persisted_query", vec![])
        .await
        .unwrap()
}

#[tokio::test]
async fn a_hash_is_learned_once_and_then_runs_alone_on_every_replica() {
    let app = spawn_app().await;
    let hash = hash_of(QUERY);
    let variables = json!({ "code": "169" });
    let hash_alone = json!({ "variables": variables, "extensions": extension(&hash) });

    // Unknown: the answer Apollo's clients wait for, and nothing stored.
    let (status, body) = post(&app, &app.address, Some(&viewer()), hash_alone.clone()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(message(&body), "PersistedQueryNotFound", "{body}");
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "PERSISTED_QUERY_NOT_FOUND",
        "{body}"
    );
    assert_eq!(stored(&app).await, 0);

    // The text with its hash: answered and kept.
    let with_text =
        json!({ "query": QUERY, "variables": variables, "extensions": extension(&hash) });
    let (status, first) = post(&app, &app.address, Some(&viewer()), with_text).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["data"]["adminUnit"]["code"], "169", "{first}");
    assert_eq!(stored(&app).await, 1);

    // The hash alone, here and on a replica that never saw the text, over POST and GET.
    let replica = app.replica().await;
    for address in [app.address.clone(), replica] {
        let (status, body) = post(&app, &address, Some(&viewer()), hash_alone.clone()).await;
        assert_eq!(
            (status, &body["data"]),
            (200, &first["data"]),
            "{address}: {body}"
        );
    }
    let (status, body) = get(
        &app,
        &[
            ("variables", variables.to_string()),
            ("extensions", extension(&hash).to_string()),
        ],
    )
    .await;
    assert_eq!(
        (status, &body["data"]),
        (200, &first["data"]),
        "GET: {body}"
    );

    // A stranger learns nothing from a hash: the token comes first.
    let (status, body) = post(&app, &app.address, None, hash_alone).await;
    assert_eq!(status, 401, "{body}");
    assert!(body["data"].is_null(), "{body}");
}

#[tokio::test]
async fn a_persisted_query_runs_with_the_callers_own_rights() {
    let app = spawn_app().await;
    let query = "{ auditLog(first: 1) { totalCount } }";
    let hash = hash_of(query);
    let (status, body) = post(
        &app,
        &app.address,
        Some(&admin()),
        json!({ "query": query, "extensions": extension(&hash) }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["errors"].is_null(), "{body}");
    // A viewer may not read the audit log, by hash as by text.
    let (_, body) = post(
        &app,
        &app.address,
        Some(&viewer()),
        json!({ "extensions": extension(&hash) }),
    )
    .await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{body}"
    );
}

#[tokio::test]
async fn bad_persisted_queries_are_refused_with_what_is_wrong() {
    let app = spawn_app().await;
    let hash = hash_of(QUERY);
    let other = hash_of("{ me { subject } }");
    let cases = [
        // A text under another text's hash would let that hash run something else.
        (
            json!({ "query": QUERY, "extensions": extension(&other) }),
            "provided sha does not match query",
        ),
        (
            json!({ "query": "{ me { subject ", "extensions": extension(&other) }),
            "provided sha does not match query",
        ),
        (
            json!({ "extensions": { "persistedQuery": { "version": 2, "sha256Hash": hash } } }),
            "must be 1",
        ),
        (
            json!({ "extensions": { "persistedQuery": { "version": 1, "sha256Hash": "abc" } } }),
            "64 hex digits",
        ),
        (
            json!({ "extensions": { "persistedQuery": "yes" } }),
            "must be 1",
        ),
    ];
    for (body, expected) in cases {
        let (status, answer) = post(&app, &app.address, Some(&viewer()), body.clone()).await;
        assert_eq!(status, 400, "{body}: {answer}");
        assert_eq!(
            answer["errors"][0]["extensions"]["code"], "VALIDATION",
            "{body}: {answer}"
        );
        assert!(message(&answer).contains(expected), "{body}: {answer}");
    }
    assert_eq!(stored(&app).await, 0, "nothing refused is kept");

    // A mutation known by its hash is still not run over GET.
    let mutation = "mutation { endMembership(input: {membershipId: \"x\", endedOn: \"2025-01-01\"}) { userErrors { code } } }";
    let hash = hash_of(mutation);
    let (status, _) = post(
        &app,
        &app.address,
        Some(&viewer()),
        json!({ "query": mutation, "extensions": extension(&hash) }),
    )
    .await;
    assert_eq!(status, 200);
    let (status, body) = get(&app, &[("extensions", extension(&hash).to_string())]).await;
    assert_eq!(status, 405, "{body}");
}

#[tokio::test]
async fn the_table_keeps_its_bound_and_drops_the_least_recently_used() {
    let app = spawn_app().await;
    // The table full of texts used long ago, the first of them longest ago.
    let fill = format!(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {MAX_STORED}) \
         INSERT INTO persisted_query (hash, query, last_used) \
         SELECT 'old' || i, '{{ me {{ subject }} }}', {} FROM n",
        if app.test_db.is_postgres() {
            "TIMESTAMPTZ '2020-01-01 00:00:00+00' + i * INTERVAL '1 second'"
        } else {
            "strftime('%Y-%m-%dT%H:%M:%S+00:00', '2020-01-01', '+' || i || ' seconds')"
        }
    );
    sea_orm::ConnectionTrait::execute_unprepared(&app.db, &fill)
        .await
        .unwrap();
    assert_eq!(stored(&app).await, MAX_STORED as u64);

    let hash = hash_of(QUERY);
    let body =
        json!({ "query": QUERY, "variables": { "code": "169" }, "extensions": extension(&hash) });
    let (status, answer) = post(&app, &app.address, Some(&viewer()), body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(stored(&app).await, MAX_STORED as u64, "still at the bound");
    let oldest = cnscd_api::db::count(
        &app.db,
        "SELECT COUNT(*) AS n FROM persisted_query WHERE hash = 'old1'",
        vec![],
    )
    .await
    .unwrap();
    assert_eq!(oldest, 0, "the least recently used went");
    let kept = cnscd_api::db::count(
        &app.db,
        "SELECT COUNT(*) AS n FROM persisted_query WHERE hash = ?",
        vec![hash.clone().into()],
    )
    .await
    .unwrap();
    assert_eq!(kept, 1, "the new one stays");
}

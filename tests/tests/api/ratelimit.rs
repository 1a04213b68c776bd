//! Per-caller rate limits (subject and client together): a token bucket charged by each request's cost, 429 with
//! Retry-After when empty, its state in `extensions.cost`, per-role limits, shared by replicas
//! on PostgreSQL.
use cnscd_api::auth::mint;
use cnscd_api::config::Settings;
use cnscd_tests::*;
use serde_json::{Value, json};
use std::time::Duration;

const ME: &str = "{ me { subject } }";

/// A response with the headers the limiter sets.
struct Answer {
    status: u16,
    retry_after: Option<u64>,
    body: Value,
}

impl Answer {
    fn code(&self) -> &str {
        self.body["errors"][0]["extensions"]["code"]
            .as_str()
            .unwrap_or_default()
    }

    fn cost(&self) -> &Value {
        &self.body["extensions"]["cost"]
    }

    fn available(&self) -> u64 {
        self.cost()["throttleStatus"]["currentlyAvailable"]
            .as_u64()
            .unwrap_or_else(|| panic!("no throttleStatus: {}", self.body))
    }
}

async fn ask(app: &TestApp, address: &str, token: &str, query: &str) -> Answer {
    let resp = app
        .client
        .post(format!("{address}/graphql"))
        .bearer_auth(token)
        .json(&json!({ "query": query }))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    Answer {
        status,
        retry_after,
        body: resp.json().await.unwrap_or(Value::Null),
    }
}

/// A token of `client` (or, without one, keyed by its subject).
fn client_token(sub: &str, client: Option<&str>, roles: &[&str]) -> String {
    let mut c = claims(sub, roles, &["169"], &[]);
    c.client_id = client.map(str::to_owned);
    mint(SECRET, &c).unwrap()
}

/// Asks until the bucket is empty; returns how many requests were let through and the
/// refusal.
async fn drain(app: &TestApp, address: &str, token: &str) -> (usize, Answer) {
    for allowed in 0..10_000 {
        let a = ask(app, address, token, ME).await;
        if a.status != 200 {
            return (allowed, a);
        }
    }
    panic!("never limited");
}

/// `n` aliased `me` fields: a query whose cost grows with `n`.
fn aliases(n: usize) -> String {
    let fields: Vec<String> = (0..n).map(|i| format!("a{i}: me {{ subject }}")).collect();
    format!("{{ {} }}", fields.join(" "))
}

fn limited(per_minute: u32) -> impl FnOnce(&mut Settings) {
    move |s| s.rate_limit_per_minute = per_minute
}

#[tokio::test]
async fn an_empty_bucket_answers_429_with_retry_after_and_rate_limited_then_refills() {
    // 300 points a minute: 5 a second.
    let app = spawn_app_with(limited(300)).await;
    let token = client_token("u", Some("field-app"), &["VIEWER"]);
    let first = ask(&app, &app.address, &token, ME).await;
    assert_eq!(first.status, 200, "{}", first.body);
    let cost = first.cost()["requestedQueryCost"].as_u64().unwrap();
    assert!(cost >= 1);
    let status = &first.cost()["throttleStatus"];
    assert_eq!(status["maximumAvailable"], 300);
    assert_eq!(status["restoreRate"], 5.0);
    assert!(first.available() <= 300 - cost);
    let second = ask(&app, &app.address, &token, ME).await;
    assert!(second.available() < first.available() + 2);
    let (allowed, refused) = drain(&app, &app.address, &token).await;
    // About 300 / cost requests in all (plus what refilled meanwhile).
    let expected = (300 / cost) as usize;
    assert!(
        allowed + 2 >= expected - 2 && allowed + 2 <= expected * 2,
        "{allowed} allowed at {cost} points each"
    );
    assert_eq!(refused.status, 429, "{}", refused.body);
    assert_eq!(refused.code(), "RATE_LIMITED");
    let retry = refused.retry_after.expect("Retry-After");
    assert!((1..=60).contains(&retry), "{retry}");
    let msg = refused.body["errors"][0]["message"].as_str().unwrap();
    assert!(
        msg.contains("rate limit") && msg.contains("retry after"),
        "{msg}"
    );
    assert!(refused.available() < cost, "{}", refused.body);
    assert!(refused.body.get("data").is_none());
    // It refills at 5 points a second: a request goes through again within the Retry-After.
    let started = std::time::Instant::now();
    loop {
        let a = ask(&app, &app.address, &token, ME).await;
        if a.status == 200 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(retry + 1),
            "not refilled after {retry} s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn each_caller_has_its_own_bucket_keyed_by_subject_and_client_together() {
    // 60 points a minute, and a query costing about half of it: once a bucket is spent it takes
    // half a minute to pay for the next one, however slow the machine is.
    let app = spawn_app_with(limited(60)).await;
    let costly = aliases(15);
    let drain_costly = async |token: &str| {
        for _ in 0..10 {
            let a = ask(&app, &app.address, token, &costly).await;
            if a.status != 200 {
                return a;
            }
            assert!(
                a.cost()["requestedQueryCost"].as_u64().unwrap() >= 25,
                "{}",
                a.body
            );
        }
        panic!("never limited");
    };
    let a = client_token("alice", Some("app-a"), &["VIEWER"]);
    assert_eq!(drain_costly(&a).await.status, 429);
    // The same user again through the same client: the same bucket.
    let a_again = client_token("alice", Some("app-a"), &["VIEWER"]);
    assert_eq!(ask(&app, &app.address, &a_again, &costly).await.status, 429);
    // Another user of the same shared client (a dashboard's `azp`) is not locked out by her.
    let a2 = client_token("bob", Some("app-a"), &["VIEWER"]);
    assert_eq!(ask(&app, &app.address, &a2, &costly).await.status, 200);
    // The same user through another client, and without a client id, has other buckets.
    let b = client_token("alice", Some("app-b"), &["VIEWER"]);
    assert_eq!(ask(&app, &app.address, &b, &costly).await.status, 200);
    let alice = client_token("alice", None, &["VIEWER"]);
    assert_eq!(drain_costly(&alice).await.status, 429);
    let bob = client_token("bob", None, &["VIEWER"]);
    assert_eq!(ask(&app, &app.address, &bob, &costly).await.status, 200);
}

#[tokio::test]
async fn limits_are_configurable_per_role() {
    let app = spawn_app_with(|s| {
        s.rate_limit_per_minute = 60;
        s.rate_limit_per_role = "VIEWER=30,ADMIN=0,UNIT_ADMIN=600".parse().unwrap();
    })
    .await;
    let viewer = client_token("v", Some("viewer-app"), &["VIEWER"]);
    let a = ask(&app, &app.address, &viewer, ME).await;
    assert_eq!(a.cost()["throttleStatus"]["maximumAvailable"], 30);
    let reporter = client_token("r", Some("reporter-app"), &["REPORTER"]);
    let a = ask(&app, &app.address, &reporter, ME).await;
    assert_eq!(a.cost()["throttleStatus"]["maximumAvailable"], 60);
    // The most generous of a caller's roles.
    let both = client_token("b", Some("both-app"), &["VIEWER", "UNIT_ADMIN"]);
    let a = ask(&app, &app.address, &both, ME).await;
    assert_eq!(a.cost()["throttleStatus"]["maximumAvailable"], 600);
    let (viewer_allowed, refused) = drain(&app, &app.address, &viewer).await;
    assert_eq!(refused.status, 429);
    let (reporter_allowed, _) = drain(&app, &app.address, &reporter).await;
    assert!(
        viewer_allowed < reporter_allowed,
        "{viewer_allowed} {reporter_allowed}"
    );
    // ADMIN=0: not limited, the cost still reported.
    let admin = client_token("a", Some("admin-app"), &["ADMIN"]);
    for _ in 0..100 {
        let a = ask(&app, &app.address, &admin, ME).await;
        assert_eq!(a.status, 200);
        assert!(a.cost()["requestedQueryCost"].as_u64().unwrap() >= 1);
        assert!(a.cost().get("throttleStatus").is_none(), "{}", a.body);
    }
}

#[tokio::test]
async fn zero_turns_limiting_off() {
    let app = spawn_app_with(limited(0)).await;
    let token = client_token("u", Some("app"), &["VIEWER"]);
    for _ in 0..200 {
        let a = ask(&app, &app.address, &token, ME).await;
        assert_eq!(a.status, 200);
        assert!(a.cost().get("throttleStatus").is_none());
    }
}

#[tokio::test]
async fn a_query_costing_more_than_the_bucket_holds_is_refused_as_too_complex() {
    let app = spawn_app_with(limited(500)).await;
    let token = client_token("u", Some("app"), &["VIEWER"]);
    let costly = "{ indicators(codes: [\"CNS01\"], unitCodes: [\"169\"], from: \"2024-01-01\", to: \"2024-12-31\") { value } }";
    let a = ask(&app, &app.address, &token, costly).await;
    assert_eq!(a.status, 400, "{}", a.body);
    assert_eq!(a.code(), "QUERY_TOO_COMPLEX");
    assert!(a.retry_after.is_none());
    let msg = a.body["errors"][0]["message"].as_str().unwrap();
    assert!(msg.contains("more than the 500"), "{msg}");
    // Nothing was charged.
    assert_eq!(ask(&app, &app.address, &token, ME).await.status, 200);
}

#[tokio::test]
async fn requests_refused_before_they_run_cost_one_point() {
    let app = spawn_app_with(limited(60)).await;
    let token = client_token("u", Some("app"), &["VIEWER"]);
    let mut refused = None;
    for _ in 0..200 {
        let a = ask(&app, &app.address, &token, "{ me { nope } }").await;
        if a.status == 429 {
            refused = Some(a);
            break;
        }
        assert_eq!(a.status, 400, "{}", a.body);
    }
    let refused = refused.expect("invalid requests are limited too");
    assert_eq!(refused.code(), "RATE_LIMITED");
}

#[tokio::test]
async fn replicas_on_postgresql_share_one_bucket() {
    let app = spawn_app_with(limited(120)).await;
    if !app.test_db.is_postgres() {
        // On SQLite there is one process: buckets are kept in memory.
        return;
    }
    let replica = app.replica_with(limited(120)).await;
    let token = client_token("u", Some("shared-app"), &["VIEWER"]);
    let cost = ask(&app, &app.address, &token, ME).await.cost()["requestedQueryCost"]
        .as_u64()
        .unwrap();
    // Alternating between the two servers drains one bucket, not two.
    let mut allowed = 1u64;
    let refused = loop {
        let address = if allowed.is_multiple_of(2) {
            &app.address
        } else {
            &replica
        };
        let a = ask(&app, address, &token, ME).await;
        if a.status != 200 {
            break a;
        }
        allowed += 1;
        assert!(allowed < 1000, "never limited");
    };
    assert_eq!(refused.status, 429);
    // Two buckets would let 240 points through; the refill (2 a second) adds less than that
    // unless draining took a minute.
    assert!(
        allowed * cost < 230,
        "{allowed} requests at {cost} points let through by two replicas sharing 120 points"
    );
    // Both replicas now refuse a query costing half the bucket (half a minute of refill).
    let costly = aliases(30);
    for address in [&app.address, &replica] {
        let a = ask(&app, address, &token, &costly).await;
        assert_eq!(a.status, 429, "{}", a.body);
        assert!(a.cost()["requestedQueryCost"].as_u64().unwrap() >= 50);
    }
}

#[tokio::test]
async fn the_csv_export_is_charged_to_the_same_bucket() {
    // An export of one code for one unit over twelve months costs 1 × 1 × 12 × 13 columns +
    // 1,000 = 1,156 points: two fit in 2,500.
    let app = spawn_app_with(limited(2_500)).await;
    let token = client_token("u", Some("app"), &["VIEWER"]);
    let url = format!(
        "{}/exports/indicators.csv?codes=CNS01&unitCodes=169&from=2024-01-01&to=2024-12-31",
        app.address
    );
    let get = async || {
        app.client
            .get(&url)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
    };
    assert_eq!(get().await.status(), 200);
    assert_eq!(get().await.status(), 200);
    let refused = get().await;
    assert_eq!(refused.status(), 429);
    assert!(refused.headers().get("retry-after").is_some());
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "RATE_LIMITED");
    assert_eq!(body["extensions"]["cost"]["requestedQueryCost"], 1_156);
    // The GraphQL endpoint draws on the same bucket.
    let a = ask(&app, &app.address, &token, ME).await;
    assert!(a.status == 200 || a.status == 429);
    assert!(
        a.cost()["throttleStatus"]["currentlyAvailable"]
            .as_u64()
            .unwrap()
            < 1_156
    );
}

/// Refusals are counted in `cnscd_rate_limited_total{role}`. A plain test with its own
/// single-threaded runtime, so that the recorder this test installs for its thread sees what
/// the server's tasks count.
#[test]
fn refusals_are_counted_by_role() {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let refused = metrics::with_local_recorder(&recorder, || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async {
                let app = spawn_app_with(limited(60)).await;
                let token = client_token("u", Some("app"), &["REPORTER"]);
                let mut refused = 0;
                for _ in 0..3 {
                    let (_, a) = drain(&app, &app.address, &token).await;
                    assert_eq!(a.status, 429);
                    refused += 1;
                }
                refused
            })
    });
    let counted: u64 = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .filter(|(key, ..)| {
            let key = key.key();
            key.name() == "cnscd_rate_limited_total"
                && key
                    .labels()
                    .any(|l| l.key() == "role" && l.value() == "REPORTER")
        })
        .map(|(.., value)| match value {
            DebugValue::Counter(n) => n,
            _ => 0,
        })
        .sum();
    assert_eq!(counted, refused);
}

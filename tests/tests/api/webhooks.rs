//! Webhooks through the real endpoint, with receivers on loopback: signed as Standard Webhooks
//! sign, retried until accepted with the same `webhook-id`, a hanging receiver timed out
//! without holding up another, a receiver that was down served when it is back, two replicas
//! delivering one outbox without losing an event, and each webhook shown exactly what its
//! owner's audit log shows of its events. Bad input to every mutation is refused by name.
use axum::http::{HeaderMap, StatusCode};
use cnscd_api::webhooks::model::signature;
use cnscd_tests::*;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What a receiver got: the Standard Webhooks headers and the body.
#[derive(Clone, Debug)]
struct Received {
    /// The URL's query string (tells webhooks sharing a receiver apart).
    query: String,
    id: String,
    timestamp: String,
    signature: String,
    body: String,
}

impl Received {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

#[derive(Clone, Copy)]
enum Behaviour {
    /// 500 to the first n requests, then 200.
    FailFirst(usize),
    /// Never answers.
    Hang,
}

#[derive(Clone)]
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    fn got(&self) -> Vec<Received> {
        self.got.lock().map(|g| g.clone()).unwrap_or_default()
    }
}

async fn receiver(behaviour: Behaviour) -> Receiver {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    receiver_on(listener, behaviour)
}

fn receiver_on(listener: tokio::net::TcpListener, behaviour: Behaviour) -> Receiver {
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let got: Arc<Mutex<Vec<Received>>> = Arc::default();
    let seen = Arc::new(AtomicUsize::new(0));
    let handler = {
        let got = got.clone();
        move |uri: axum::http::Uri, headers: HeaderMap, body: String| {
            let got = got.clone();
            let seen = seen.clone();
            async move {
                let header = |n: &str| {
                    headers
                        .get(n)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned()
                };
                got.lock().unwrap().push(Received {
                    query: uri.query().unwrap_or_default().to_owned(),
                    id: header("webhook-id"),
                    timestamp: header("webhook-timestamp"),
                    signature: header("webhook-signature"),
                    body,
                });
                let n = seen.fetch_add(1, Ordering::SeqCst);
                match behaviour {
                    Behaviour::FailFirst(k) if n < k => StatusCode::INTERNAL_SERVER_ERROR,
                    Behaviour::FailFirst(_) => StatusCode::OK,
                    Behaviour::Hang => {
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                        StatusCode::OK
                    }
                }
            }
        }
    };
    let app = axum::Router::new().route("/hook", axum::routing::post(handler));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Receiver { url, got }
}

/// Waits (at most 20 s) until `done` holds.
async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let started = std::time::Instant::now();
    while !done() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "waited too long for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

const CREATE: &str = "mutation($i: CreateWebhookInput!) { createWebhook(input: $i) { webhook { id url events under secret } userErrors { field message code } } }";
const DELIVERIES: &str = "query($w: ID!) { webhookDeliveries(webhookId: $w, first: 100) { totalCount nodes { id event status attempts lastStatus lastError payload } } }";

/// Creates a webhook as `token`; its id and secret.
async fn create(app: &TestApp, token: &str, input: Value) -> (String, String) {
    let r = app.gql(token, CREATE, json!({ "i": input })).await.ok();
    let id = r.at("createWebhook.webhook.id").as_str();
    let secret = r.at("createWebhook.webhook.secret").as_str();
    match (id, secret) {
        (Some(id), Some(secret)) => (id.to_owned(), secret.to_owned()),
        _ => panic!("not created: {:?}", r.body),
    }
}

async fn deliveries(app: &TestApp, token: &str, webhook: &str) -> Vec<Value> {
    let r = app
        .gql(token, DELIVERIES, json!({ "w": webhook }))
        .await
        .ok();
    r.at("webhookDeliveries.nodes")
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn signed_by(secret: &str, r: &Received) -> bool {
    let ts: i64 = r.timestamp.parse().unwrap_or_default();
    !r.signature.is_empty() && signature(secret, &r.id, ts, &r.body) == r.signature
}

#[tokio::test]
async fn events_are_signed_and_retried_with_the_same_id_until_accepted() {
    let app = spawn_app().await;
    let hook = receiver(Behaviour::FailFirst(2)).await;
    let (webhook, secret) = create(
        &app,
        &admin(),
        json!({ "url": hook.url, "events": ["TEAM_CHANGED"], "description": "Trung tâm IOC" }),
    )
    .await;
    assert!(secret.starts_with("whsec_"), "{secret}");
    // The secret is given once.
    let listed = app
        .gql(&admin(), "{ webhooks { id url secret events } }", json!({}))
        .await
        .ok();
    assert_eq!(listed.at("webhooks.0.id"), webhook.as_str());
    assert!(
        listed.at("webhooks.0.secret").is_null(),
        "{:?}",
        listed.body
    );

    let team = app
        .create_team("05677-01", "Tổ CNSCĐ Xóm Cà Phê", "2022-05-01")
        .await;
    until("the third attempt", || hook.got().len() >= 3).await;
    let got = hook.got();
    assert_eq!(got.len(), 3, "{got:?}");
    assert!(
        got.iter().all(|r| r.id == got[0].id),
        "one webhook-id: {got:?}"
    );
    assert!(got.iter().all(|r| signed_by(&secret, r)), "signed: {got:?}");
    assert!(
        !signed_by("whsec_AAAA", &got[0]),
        "the signature depends on the secret"
    );
    let body = got[2].json();
    assert_eq!(body["type"], "TEAM_CHANGED", "{body}");
    assert_eq!(body["data"]["entityId"], team.as_str(), "{body}");
    assert_eq!(body["data"]["action"], "createTeam", "{body}");
    assert_eq!(
        body["data"]["after"]["name"], "Tổ CNSCĐ Xóm Cà Phê",
        "{body}"
    );

    let mut listed = Vec::new();
    for _ in 0..500 {
        listed = deliveries(&app, &admin(), &webhook).await;
        if listed.first().is_some_and(|d| d["status"] == "SUCCEEDED") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["status"], "SUCCEEDED", "{listed:?}");
    assert_eq!(listed[0]["attempts"], 3, "{listed:?}");
    assert_eq!(listed[0]["lastStatus"], 200, "{listed:?}");
    assert_eq!(format!("msg_{}", decode_key(&listed[0]["id"])), got[0].id);

    // Sent again on request, with the same id.
    let r = app
        .gql(
            &admin(),
            "mutation($i: RedeliverWebhookInput!) { redeliverWebhook(input: $i) { delivery { status } userErrors { code } } }",
            json!({ "i": { "deliveryId": listed[0]["id"] } }),
        )
        .await
        .ok();
    assert_eq!(
        r.at("redeliverWebhook.delivery.status"),
        "PENDING",
        "{:?}",
        r.body
    );
    until("the redelivery", || hook.got().len() >= 4).await;
    assert_eq!(hook.got()[3].id, got[0].id);
}

fn decode_key(id: &Value) -> String {
    cnscd_api::ids::decode(id.as_str().unwrap_or_default())
        .map(|(_, key)| key)
        .unwrap_or_default()
}

#[tokio::test]
async fn a_hanging_receiver_is_timed_out_and_holds_up_no_other() {
    let app = spawn_app_with(|s| s.webhook_timeout = Duration::from_millis(500)).await;
    let hanging = receiver(Behaviour::Hang).await;
    let quick = receiver(Behaviour::FailFirst(0)).await;
    let (slow, _) = create(
        &app,
        &admin(),
        json!({ "url": hanging.url, "events": ["TEAM_CHANGED"] }),
    )
    .await;
    create(
        &app,
        &admin(),
        json!({ "url": quick.url, "events": ["TEAM_CHANGED"] }),
    )
    .await;
    for i in 0..3 {
        app.create_team("05677-01", &format!("Tổ {i}"), "2022-05-01")
            .await;
    }
    until("the quick receiver's three events", || {
        quick.got().len() >= 3
    })
    .await;
    let mut failed = Vec::new();
    for _ in 0..500 {
        failed = deliveries(&app, &admin(), &slow).await;
        if failed.iter().any(|d| d["lastError"].as_str().is_some()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let timed_out = failed
        .iter()
        .find(|d| d["lastError"].as_str().is_some())
        .unwrap_or_else(|| panic!("no attempt recorded: {failed:?}"));
    assert_eq!(timed_out["status"], "PENDING", "retried: {timed_out}");
    assert!(
        timed_out["lastError"]
            .as_str()
            .is_some_and(|e| e.contains("CNSCD_WEBHOOK_TIMEOUT")),
        "{timed_out}"
    );
}

#[tokio::test]
async fn a_receiver_that_was_down_gets_the_event_when_it_is_back() {
    let app = spawn_app().await;
    // A port nobody listens on yet.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{port}/hook");
    let (webhook, secret) = create(
        &app,
        &admin(),
        json!({ "url": url, "events": ["TEAM_CHANGED"] }),
    )
    .await;
    app.create_team("05677-01", "Tổ CNSCĐ Xóm Cà Phê", "2022-05-01")
        .await;
    let mut tried = Vec::new();
    for _ in 0..500 {
        tried = deliveries(&app, &admin(), &webhook).await;
        if tried
            .first()
            .is_some_and(|d| d["attempts"].as_i64() >= Some(2))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        tried
            .first()
            .is_some_and(|d| d["attempts"].as_i64() >= Some(2)
                && d["lastError"]
                    .as_str()
                    .is_some_and(|e| e.contains("connection"))),
        "{tried:?}"
    );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let back = receiver_on(listener, Behaviour::FailFirst(0));
    until("the event after the outage", || !back.got().is_empty()).await;
    assert!(signed_by(&secret, &back.got()[0]));
}

#[tokio::test]
async fn two_replicas_deliver_one_outbox_without_losing_an_event() {
    let app = spawn_app().await;
    let _replica = app.replica().await;
    let hook = receiver(Behaviour::FailFirst(0)).await;
    create(
        &app,
        &admin(),
        json!({ "url": hook.url, "events": ["TEAM_CHANGED", "ACTIVITY_SUBMITTED"] }),
    )
    .await;
    let team = app
        .create_team("05677-01", "Tổ CNSCĐ Xóm Cà Phê", "2022-05-01")
        .await;
    let mut ids = BTreeSet::from([team.clone()]);
    for day in 1..=20 {
        ids.insert(
            app.submit(&team, "HELP_DESK", &format!("2024-03-{day:02}"), json!({}))
                .await,
        );
    }
    until("every event", || {
        let got: BTreeSet<String> = hook
            .got()
            .iter()
            .filter_map(|r| r.json()["data"]["entityId"].as_str().map(str::to_owned))
            .collect();
        got == ids
    })
    .await;
    // A repeat (at least once) carries the id of the first.
    let mut by_entry: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in hook.got() {
        let entry = r.json()["data"]["auditEntryId"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        by_entry.entry(entry).or_default().insert(r.id);
    }
    assert_eq!(by_entry.len(), 21);
    assert!(by_entry.values().all(|ids| ids.len() == 1), "{by_entry:?}");
}

/// Each webhook gets exactly the entries of its events that its owner's `auditLog` shows (and
/// that lie under its `under`), with the sides the log withholds withheld: over teams,
/// memberships, activities (moved by the 2025 reorganisation) and locks, in several units.
#[tokio::test]
async fn every_webhook_sees_what_its_owners_audit_log_shows() {
    let app = spawn_app().await;
    let hook = receiver(Behaviour::FailFirst(0)).await;
    let all = [
        "TEAM_CHANGED",
        "MEMBERSHIP_CHANGED",
        "ACTIVITY_SUBMITTED",
        "PERIOD_LOCKED",
    ];
    let owners = [
        ("admin", admin(), None),
        ("admin under 05692", admin(), Some("05692")),
        (
            "unit admin of 05692",
            token(&["UNIT_ADMIN"], &["05692"], &[]),
            None,
        ),
        (
            "unit admin of 05677",
            token(&["UNIT_ADMIN"], &["05677"], &[]),
            None,
        ),
        (
            "unit admin of 169",
            token(&["UNIT_ADMIN"], &["169"], &[]),
            None,
        ),
    ];
    let mut webhooks = Vec::new();
    for (name, owner, under) in &owners {
        let url = format!("{}?owner={}", hook.url, webhooks.len());
        let (id, _) = create(
            &app,
            owner,
            json!({ "url": url, "events": all, "under": under }),
        )
        .await;
        webhooks.push((name.to_string(), owner.clone(), *under, id));
    }
    // Changes across the reorganisation: a hamlet under 05677 (169) until 2025-07-01, then
    // under 05692.
    let team = app
        .create_team("05677-01", "Tổ CNSCĐ Xóm Cà Phê", "2022-05-01")
        .await;
    app.add_member(&team, "Nguyễn Văn A", "MEMBER", "YOUTH_UNION", "2022-06-01")
        .await;
    for day in ["2025-06-16", "2025-07-16"] {
        app.submit(&team, "HELP_DESK", day, json!({})).await;
    }
    let lock = app
        .gql(
            &admin(),
            "mutation { lockPeriod(input: {unitCode: \"05692\", month: \"2025-08\"}) { userErrors { message } } }",
            json!({}),
        )
        .await
        .ok();
    assert!(
        lock.at("lockPeriod.userErrors.0").is_null(),
        "{:?}",
        lock.body
    );

    // What each owner's audit log shows of those events.
    let log = "{ auditLog(first: 100) { nodes { id action before after } } }";
    let mut expected = BTreeMap::new();
    for (name, owner, under, _) in &webhooks {
        // Withheld sides come with FORBIDDEN errors: not `ok()`.
        let r = app.gql(owner, log, json!({})).await;
        let mut shown: BTreeSet<(String, bool, bool)> = r
            .at("auditLog.nodes")
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .filter(|e| e["action"] != "createWebhook")
            .map(|e| {
                (
                    e["id"].as_str().unwrap_or_default().to_owned(),
                    e["before"].is_null(),
                    e["after"].is_null(),
                )
            })
            .collect();
        if let Some(under) = under {
            let r = app
                .gql(&token(&["UNIT_ADMIN"], &[under], &[]), log, json!({}))
                .await;
            let inside: BTreeSet<String> = r
                .at("auditLog.nodes")
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .filter_map(|e| e["id"].as_str().map(str::to_owned))
                .collect();
            shown.retain(|(id, ..)| inside.contains(id));
        }
        expected.insert(name.clone(), shown);
    }
    assert!(
        expected["unit admin of 05692"] != expected["unit admin of 05677"],
        "the reorganisation splits what the communes see: {expected:?}"
    );
    assert!(!expected["unit admin of 05692"].is_empty());

    // Everything delivered, then compared.
    let total: usize = expected.values().map(BTreeSet::len).sum();
    until("every delivery", || hook.got().len() >= total).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut received: BTreeMap<String, BTreeSet<(String, bool, bool)>> = webhooks
        .iter()
        .map(|(n, ..)| (n.clone(), BTreeSet::new()))
        .collect();
    for r in hook.got() {
        let body = r.json();
        let entry = (
            body["data"]["auditEntryId"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            body["data"]["before"].is_null(),
            body["data"]["after"].is_null(),
        );
        let index: usize = r
            .query
            .trim_start_matches("owner=")
            .parse()
            .unwrap_or(usize::MAX);
        let name = webhooks
            .get(index)
            .map(|(n, ..)| n.clone())
            .unwrap_or_else(|| panic!("a delivery to no webhook: {r:?}"));
        received.entry(name).or_default().insert(entry);
    }
    assert_eq!(received, expected);
}

#[tokio::test]
async fn bad_webhook_input_is_refused_by_name() {
    let app = spawn_app_with(|s| s.webhook_allow_private = false).await;
    let cases = [
        (
            json!({ "url": "not a url", "events": ["TEAM_CHANGED"] }),
            "url",
            "VALIDATION",
        ),
        (
            json!({ "url": "ftp://example.org/x", "events": ["TEAM_CHANGED"] }),
            "url",
            "VALIDATION",
        ),
        (
            json!({ "url": "http://127.0.0.1:9/hook", "events": ["TEAM_CHANGED"] }),
            "url",
            "VALIDATION",
        ),
        (
            json!({ "url": "http://169.254.169.254/latest", "events": ["TEAM_CHANGED"] }),
            "url",
            "VALIDATION",
        ),
        (
            json!({ "url": "https://203.113.0.1/hook", "events": [] }),
            "events",
            "VALIDATION",
        ),
        (
            json!({ "url": "https://203.113.0.1/hook", "events": ["TEAM_CHANGED"], "under": "nowhere" }),
            "under",
            "VALIDATION",
        ),
        (
            json!({ "url": "https://203.113.0.1/hook", "events": ["TEAM_CHANGED"], "description": "x".repeat(501) }),
            "description",
            "VALIDATION",
        ),
    ];
    for (input, field, code) in cases {
        let r = app.gql(&admin(), CREATE, json!({ "i": input })).await.ok();
        assert!(
            r.at("createWebhook.webhook").is_null(),
            "{input}: {:?}",
            r.body
        );
        assert_eq!(
            r.at("createWebhook.userErrors.0.code"),
            code,
            "{input}: {:?}",
            r.body
        );
        assert_eq!(
            r.at("createWebhook.userErrors.0.field.1"),
            field,
            "{input}: {:?}",
            r.body
        );
    }
    // A unit administrator only under its own area; other roles not at all.
    let ua = token(&["UNIT_ADMIN"], &["05692"], &[]);
    let r = app
        .gql(&ua, CREATE, json!({ "i": { "url": "https://203.113.0.1/hook", "events": ["TEAM_CHANGED"], "under": "169" } }))
        .await
        .ok();
    assert_eq!(
        r.at("createWebhook.userErrors.0.code"),
        "FORBIDDEN",
        "{:?}",
        r.body
    );
    for role in ["VIEWER", "REPORTER", "TEAM_LEADER"] {
        let r = app
            .gql(
                &token(&[role], &["169"], &[]),
                CREATE,
                json!({ "i": { "url": "https://203.113.0.1/hook", "events": ["TEAM_CHANGED"] } }),
            )
            .await;
        assert_eq!(r.error_codes(), vec!["FORBIDDEN"], "{role}: {:?}", r.body);
    }
    // Another owner's webhook is not there for a unit administrator; ids are checked.
    let (mine, _) = create(
        &app,
        &admin(),
        json!({ "url": "https://203.113.0.1/hook", "events": ["TEAM_CHANGED"] }),
    )
    .await;
    let delete = "mutation($i: DeleteWebhookInput!) { deleteWebhook(input: $i) { webhook { id } userErrors { code } } }";
    for (who, id, code) in [
        (ua.clone(), mine.clone(), "NOT_FOUND"),
        (admin(), "garbage".to_owned(), "VALIDATION"),
    ] {
        let r = app
            .gql(&who, delete, json!({ "i": { "webhookId": id } }))
            .await
            .ok();
        assert_eq!(
            r.at("deleteWebhook.userErrors.0.code"),
            code,
            "{:?}",
            r.body
        );
    }
    let r = app.gql(&ua, DELIVERIES, json!({ "w": mine })).await;
    assert_eq!(r.error_codes(), vec!["NOT_FOUND"], "{:?}", r.body);
    let r = app
        .gql(&admin(), delete, json!({ "i": { "webhookId": mine } }))
        .await
        .ok();
    assert_eq!(
        r.at("deleteWebhook.webhook.id"),
        mine.as_str(),
        "{:?}",
        r.body
    );
    let listed = app
        .gql(&admin(), "{ webhooks { id } }", json!({}))
        .await
        .ok();
    assert_eq!(listed.at("webhooks"), &json!([]));

    // Created and deleted, in the audit log (ADMIN's to read), never with the secret.
    let log = "{ auditLog(entityType: \"Webhook\") { nodes { action before after } } }";
    let r = app.gql(&admin(), log, json!({})).await.ok();
    let actions: Vec<&str> = r
        .at("auditLog.nodes")
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert_eq!(
        actions,
        vec!["deleteWebhook", "createWebhook"],
        "{:?}",
        r.body
    );
    assert!(!r.body.to_string().contains("whsec_"), "{:?}", r.body);
    let r = app.gql(&ua, log, json!({})).await.ok();
    assert_eq!(r.at("auditLog.nodes"), &json!([]), "{:?}", r.body);
}

//! The live feed: subscriptions over graphql-transport-ws at /graphql/ws, through the real
//! WebSocket endpoint.
use cnscd_tests::*;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// What the server sent: a protocol message, or the close code and reason.
#[derive(Debug)]
enum Got {
    Msg(Value),
    Closed(u16, String),
    Nothing,
}

struct Ws(Socket);

impl Ws {
    async fn open(address: &str) -> Self {
        let url = format!("{}/graphql/ws", address.replace("http://", "ws://"));
        let mut req = url.into_client_request().unwrap();
        req.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            "graphql-transport-ws".parse().unwrap(),
        );
        let (socket, resp) = tokio_tungstenite::connect_async(req).await.unwrap();
        assert_eq!(
            resp.headers()["sec-websocket-protocol"],
            "graphql-transport-ws"
        );
        Self(socket)
    }

    async fn send(&mut self, v: Value) {
        self.0
            .send(Message::Text(v.to_string().into()))
            .await
            .unwrap();
    }

    /// The next message within `wait` (pings answered on the way).
    async fn next(&mut self, wait: Duration) -> Got {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let Ok(m) = tokio::time::timeout_at(deadline, self.0.next()).await else {
                return Got::Nothing;
            };
            match m {
                Some(Ok(Message::Text(t))) => {
                    let v: Value = serde_json::from_str(&t).unwrap();
                    if v["type"] == "ping" {
                        self.send(json!({ "type": "pong" })).await;
                        continue;
                    }
                    return Got::Msg(v);
                }
                Some(Ok(Message::Close(f))) => {
                    return f
                        .map(|f| Got::Closed(f.code.into(), f.reason.to_string()))
                        .unwrap_or(Got::Closed(1005, String::new()));
                }
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Got::Closed(1006, e.to_string()),
                None => return Got::Closed(1006, "ended".into()),
            }
        }
    }

    async fn msg(&mut self) -> Value {
        match self.next(Duration::from_secs(10)).await {
            Got::Msg(v) => v,
            other => panic!("expected a message, got {other:?}"),
        }
    }

    async fn closed(&mut self, wait: Duration) -> (u16, String) {
        match self.next(wait).await {
            Got::Closed(code, reason) => (code, reason),
            other => panic!("expected the socket closed, got {other:?}"),
        }
    }

    /// Opens a connection acknowledged for `token` (sent as `Authorization: Bearer`).
    async fn ready(address: &str, token: &str) -> Self {
        let mut ws = Self::open(address).await;
        ws.send(json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {token}") } }))
            .await;
        assert_eq!(ws.msg().await["type"], "connection_ack");
        ws
    }

    async fn subscribe(&mut self, id: &str, query: &str, variables: Value) {
        self.send(json!({ "id": id, "type": "subscribe", "payload": { "query": query, "variables": variables } }))
            .await;
    }
}

const ACTIVITIES: &str = "subscription($u: String) { activitySubmitted(under: $u) { id unitCode occurredOn team { id } } }";

/// Submits as ADMIN; the activity id, or `None` when it is refused.
async fn try_submit(
    app: &TestApp,
    team: &str,
    unit: Option<&str>,
    on: &str,
    kind: &str,
) -> Option<String> {
    let mut i = json!({ "idempotencyKey": uuid::Uuid::new_v4().to_string(), "teamId": team,
        "kind": kind, "occurredOn": on, "title": "Hướng dẫn cài VNeID",
        "outcomes": [ { "service": "ONLINE_PUBLIC_SERVICE", "people": 3 } ] });
    if let Some(u) = unit {
        i["unitCode"] = json!(u);
    }
    let r = app
        .gql(
            &admin(),
            "mutation($i: SubmitActivityInput!) { submitActivity(input: $i) { activity { id } userErrors { message } } }",
            json!({ "i": i }),
        )
        .await
        .ok();
    r.at("submitActivity.activity.id")
        .as_str()
        .map(str::to_owned)
}

/// The ids of the `activities` list the caller sees among `ids` (the oracle).
async fn visible(app: &TestApp, token: &str, ids: &[String]) -> BTreeSet<String> {
    let r = app
        .gql(
            token,
            "{ activities(first: 100, from: \"2000-01-01\") { edges { node { id } } } }",
            json!({}),
        )
        .await
        .ok();
    r.at("activities.edges")
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["id"].as_str().unwrap().to_owned())
        .filter(|id| ids.contains(id))
        .collect()
}

/// Reads `next` events of subscription `id` until every one of `expected` came, then a little
/// longer for anything that should not come; the ids received.
/// The day probe activities are submitted on (no test looks at its month).
const PROBE_DAY: &str = "2024-01-15";

/// Submits probe activities of `team` until one reaches subscription `id` of `ws` (a
/// subscription starts once the server has run its resolver, some time after `subscribe` is
/// sent): from then on it is live, and events reach it in order.
async fn until_live(app: &TestApp, ws: &mut Ws, id: &str, team: &str) {
    for _ in 0..50 {
        let probe = try_submit(app, team, None, PROBE_DAY, "OTHER")
            .await
            .unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_millis(300);
        loop {
            let wait = deadline.saturating_duration_since(tokio::time::Instant::now());
            match ws.next(wait).await {
                Got::Msg(v) => {
                    let data = &v["payload"]["data"];
                    if v["id"] == id
                        && (data["activitySubmitted"]["id"] == probe.as_str()
                            || data["indicatorChanged"]["period"]["label"] == "2024-01")
                    {
                        return;
                    }
                }
                Got::Nothing => break,
                Got::Closed(c, r) => panic!("closed {c} {r}"),
            }
        }
    }
    panic!("subscription {id} never received a probe");
}

/// Reads `next` events of subscription `id` until every one of `expected` came, then a little
/// longer for anything that should not come; the ids received among `of_interest` (probes
/// submitted for other sockets may come too).
async fn received_of(
    ws: &mut Ws,
    id: &str,
    expected: &BTreeSet<String>,
    of_interest: &[String],
) -> BTreeSet<String> {
    received(ws, id, expected)
        .await
        .into_iter()
        .filter(|a| of_interest.contains(a))
        .collect()
}

async fn received(ws: &mut Ws, id: &str, expected: &BTreeSet<String>) -> BTreeSet<String> {
    let mut got = BTreeSet::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let wait = if expected.is_subset(&got) {
            Duration::from_millis(300)
        } else {
            deadline.saturating_duration_since(tokio::time::Instant::now())
        };
        match ws.next(wait).await {
            Got::Msg(v) => {
                assert_eq!(v["type"], "next", "{v}");
                assert_eq!(v["id"], id, "{v}");
                assert!(v["payload"].get("errors").is_none(), "{v}");
                got.insert(
                    v["payload"]["data"]["activitySubmitted"]["id"]
                        .as_str()
                        .unwrap()
                        .to_owned(),
                );
            }
            Got::Nothing => return got,
            Got::Closed(c, r) => panic!("closed {c} {r}"),
        }
    }
}

#[tokio::test]
async fn each_subscriber_receives_exactly_the_activities_of_its_area_on_their_day() {
    let app = spawn_app().await;
    let cafe = app.create_team("05677-01", "Tổ Cà Phê", "2022-05-01").await;
    let town = app
        .create_team("05692", "Tổ Hóa Thượng", "2022-05-01")
        .await;
    let far = app
        .create_team("05659-01", "Tổ Chùa Hang", "2022-05-01")
        .await;
    let callers = [
        token(&["VIEWER"], &["05677"], &[]),
        // District 169 ceased on 2025-06-30: its area holds nothing after.
        token(&["VIEWER"], &["169"], &[]),
        token(&["UNIT_ADMIN"], &["05692"], &[]),
        token(&["TEAM_LEADER"], &[], &[&far]),
        admin(),
    ];
    let probes = [&cafe, &cafe, &town, &far, &cafe];
    let mut sockets = Vec::new();
    for (t, probe) in callers.iter().zip(probes) {
        let mut ws = Ws::ready(&app.address, t).await;
        ws.subscribe("1", ACTIVITIES, json!({})).await;
        until_live(&app, &mut ws, "1", probe).await;
        sockets.push(ws);
    }
    let mut ids = Vec::new();
    for (team, unit, on) in [
        (&cafe, None, "2024-03-05"),
        (&cafe, Some("05677"), "2025-02-01"),
        (&town, None, "2025-03-10"),
        (&town, None, "2025-08-10"),
        (&far, None, "2024-11-20"),
        (&far, None, "2025-09-01"),
        (&cafe, None, "2025-06-30"),
    ] {
        if let Some(id) = try_submit(&app, team, unit, on, "DOOR_TO_DOOR").await {
            ids.push(id);
        }
    }
    assert!(ids.len() >= 5, "most submissions should be stored: {ids:?}");
    for (t, ws) in callers.iter().zip(sockets.iter_mut()) {
        let expected = visible(&app, t, &ids).await;
        let got = received_of(ws, "1", &expected, &ids).await;
        assert_eq!(got, expected, "the feed disagrees with the activities list");
    }
    // The oracle is not trivial: the commune's viewer sees some and not all.
    let commune = visible(&app, &callers[0], &ids).await;
    assert!(!commune.is_empty() && commune.len() < ids.len());
}

#[tokio::test]
async fn under_narrows_the_feed_and_must_lie_in_the_area() {
    let app = spawn_app().await;
    let cafe = app.create_team("05677-01", "Tổ Cà Phê", "2022-05-01").await;
    let other = app.create_team("05677-02", "Tổ Na Lay", "2022-05-01").await;
    let viewer = token(&["VIEWER"], &["05677"], &[]);
    let mut ws = Ws::ready(&app.address, &viewer).await;
    ws.subscribe("narrow", ACTIVITIES, json!({ "u": "05677-01" }))
        .await;
    for (id, under, code) in [
        ("above", "169", "FORBIDDEN"),
        ("beside", "05659", "FORBIDDEN"),
        ("unknown", "99999", "VALIDATION"),
    ] {
        ws.subscribe(id, ACTIVITIES, json!({ "u": under })).await;
        let v = ws.msg().await;
        assert_eq!(v["type"], "next", "{v}");
        assert_eq!(v["id"], id);
        assert_eq!(v["payload"]["errors"][0]["extensions"]["code"], code, "{v}");
        let v = ws.msg().await;
        assert_eq!(
            (v["type"].as_str(), v["id"].as_str()),
            (Some("complete"), Some(id))
        );
    }
    until_live(&app, &mut ws, "narrow", &cafe).await;
    let wanted = try_submit(&app, &cafe, None, "2024-05-05", "TRAINING")
        .await
        .unwrap();
    let beside = try_submit(&app, &other, None, "2024-05-05", "TRAINING")
        .await
        .unwrap();
    let got = received_of(
        &mut ws,
        "narrow",
        &BTreeSet::from([wanted.clone()]),
        &[wanted.clone(), beside],
    )
    .await;
    assert_eq!(got, BTreeSet::from([wanted]));
}

#[tokio::test]
async fn a_retried_submission_is_not_told_twice() {
    let app = spawn_app().await;
    let cafe = app.create_team("05677-01", "Tổ Cà Phê", "2022-05-01").await;
    let mut ws = Ws::ready(&app.address, &admin()).await;
    ws.subscribe("1", ACTIVITIES, json!({})).await;
    until_live(&app, &mut ws, "1", &cafe).await;
    let i = json!({ "i": { "idempotencyKey": "once", "teamId": cafe, "kind": "TRAINING",
        "occurredOn": "2024-05-05", "title": "Tập huấn" } });
    let q = "mutation($i: SubmitActivityInput!) { submitActivity(input: $i) { replayed activity { id } } }";
    let first = app.gql(&admin(), q, i.clone()).await.ok();
    let again = app.gql(&admin(), q, i).await.ok();
    assert_eq!(again.at("submitActivity.replayed"), true);
    let id = first
        .at("submitActivity.activity.id")
        .as_str()
        .unwrap()
        .to_owned();
    let expected = BTreeSet::from([id]);
    let of_interest: Vec<String> = expected.iter().cloned().collect();
    assert_eq!(
        received_of(&mut ws, "1", &expected, &of_interest).await,
        expected
    );
}

#[tokio::test]
async fn the_token_is_checked_in_connection_init() {
    let app = spawn_app().await;
    let good = token(&["VIEWER"], &["05677"], &[]);
    let mut expired = claims("old", &["VIEWER"], &["05677"], &[]);
    expired.exp = chrono::Utc::now().timestamp() - 3600;
    let expired = cnscd_api::auth::mint(SECRET, &expired).unwrap();
    let forged = cnscd_api::auth::mint(
        "another-secret-0123456789",
        &claims("x", &["ADMIN"], &[], &[]),
    )
    .unwrap();
    for (payload, code) in [
        (json!({ "Authorization": "Bearer not-a-jwt" }), 4401),
        (json!({ "token": forged }), 4401),
        (json!({ "token": expired }), 4401),
        (json!({}), 4401),
        (json!({ "Authorization": good.clone() }), 4401),
        (json!({ "token": 42 }), 4401),
        // A role that would read only over units or teams the token does not name.
        (json!({ "token": token(&["TEAM_LEADER"], &[], &[]) }), 4403),
        (json!({ "token": token(&["VIEWER"], &[], &[]) }), 4403),
        // A role this service does not know.
        (
            json!({ "token": token(&["SUPERUSER"], &["05677"], &[]) }),
            4401,
        ),
    ] {
        let mut ws = Ws::open(&app.address).await;
        ws.send(json!({ "type": "connection_init", "payload": payload }))
            .await;
        let (got, reason) = ws.closed(Duration::from_secs(10)).await;
        assert_eq!(got, code, "{payload}: {reason}");
        assert!(!reason.is_empty());
    }
    // Both forms of the payload are accepted; an `exp` in the year 9999 sets no timer to trip.
    let mut lasting = claims("lasting", &["VIEWER"], &["05677"], &[]);
    lasting.exp = 253_402_300_799;
    let lasting = cnscd_api::auth::mint(SECRET, &lasting).unwrap();
    for payload in [
        json!({ "Authorization": format!("Bearer {good}") }),
        json!({ "token": good }),
        json!({ "token": lasting }),
    ] {
        let mut ws = Ws::open(&app.address).await;
        ws.send(json!({ "type": "connection_init", "payload": payload }))
            .await;
        assert_eq!(ws.msg().await["type"], "connection_ack");
        ws.send(json!({ "type": "ping" })).await;
        assert_eq!(ws.msg().await["type"], "pong");
    }
    // A subscribe before connection_init: 4401.
    let mut ws = Ws::open(&app.address).await;
    ws.subscribe("1", ACTIVITIES, json!({})).await;
    assert_eq!(ws.closed(Duration::from_secs(10)).await.0, 4401);
    // Not the protocol: 4400.
    let mut ws = Ws::open(&app.address).await;
    ws.0.send(Message::Text("{\"hello\": 1}".into()))
        .await
        .unwrap();
    assert_eq!(ws.closed(Duration::from_secs(10)).await.0, 4400);
}

#[tokio::test]
async fn the_socket_is_closed_when_the_token_expires() {
    let app = spawn_app().await;
    let mut c = claims("brief", &["VIEWER"], &["05677"], &[]);
    c.exp = chrono::Utc::now().timestamp() + 2;
    let brief = cnscd_api::auth::mint(SECRET, &c).unwrap();
    let started = std::time::Instant::now();
    let mut ws = Ws::ready(&app.address, &brief).await;
    ws.subscribe("1", ACTIVITIES, json!({})).await;
    let (code, reason) = ws.closed(Duration::from_secs(6)).await;
    assert_eq!(code, 4401, "{reason}");
    assert!(reason.contains("expired"), "{reason}");
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "closed too early"
    );
}

#[tokio::test]
async fn only_subscriptions_run_over_the_socket_and_plain_http_is_refused() {
    let app = spawn_app().await;
    let mut ws = Ws::ready(&app.address, &admin()).await;
    for (id, query) in [
        ("query", "{ me { subject } }"),
        (
            "mutation",
            "mutation { dissolveTeam(input: {teamId: \"x\", dissolvedOn: \"2024-01-01\"}) { userErrors { message } } }",
        ),
        (
            "unknown field",
            "subscription { activitySubmitted { nope } }",
        ),
        ("not parsed", "subscription { activitySubmitted { "),
    ] {
        ws.subscribe(id, query, json!({})).await;
        let v = ws.msg().await;
        assert_eq!(v["type"], "next", "{v}");
        assert_eq!(
            v["payload"]["errors"][0]["extensions"]["code"], "VALIDATION",
            "{id}: {v}"
        );
        assert_eq!(ws.msg().await["type"], "complete");
    }
    // A plain GET: 400 (no upgrade), naming what is wrong.
    let r = app
        .client
        .get(format!("{}/graphql/ws", app.address))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error(), "{}", r.status());
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "VALIDATION");
    // Over POST a subscription is not run.
    let r = app.gql(&admin(), ACTIVITIES, json!({})).await;
    assert!(r.body.get("errors").is_some(), "{:?}", r.body);
}

#[tokio::test]
async fn an_activity_written_through_one_replica_reaches_subscribers_of_another() {
    let app = spawn_app().await;
    if !app.test_db.is_postgres() {
        // Replicas share events through PostgreSQL's LISTEN/NOTIFY; SQLite serves one server.
        return;
    }
    let replica = app.replica().await;
    let cafe = app.create_team("05677-01", "Tổ Cà Phê", "2022-05-01").await;
    let far = app
        .create_team("05659-01", "Tổ Chùa Hang", "2022-05-01")
        .await;
    let viewer = token(&["VIEWER"], &["05677"], &[]);
    let mut there = Ws::ready(&replica, &viewer).await;
    there.subscribe("1", ACTIVITIES, json!({})).await;
    let mut here = Ws::ready(&app.address, &viewer).await;
    here.subscribe("1", ACTIVITIES, json!({})).await;
    until_live(&app, &mut there, "1", &cafe).await;
    until_live(&app, &mut here, "1", &cafe).await;
    let id = try_submit(&app, &cafe, None, "2024-06-01", "TRAINING")
        .await
        .unwrap();
    let beside = try_submit(&app, &far, None, "2024-06-01", "TRAINING")
        .await
        .unwrap();
    let expected = BTreeSet::from([id.clone()]);
    let of_interest = [id, beside];
    for ws in [&mut there, &mut here] {
        assert_eq!(
            received_of(ws, "1", &expected, &of_interest).await,
            expected
        );
    }
}

#[tokio::test]
async fn indicator_changed_sends_the_value_the_indicators_query_gives() {
    let app = spawn_app().await;
    let cafe = app.create_team("05677-01", "Tổ Cà Phê", "2022-05-01").await;
    let far = app
        .create_team("05659-01", "Tổ Chùa Hang", "2022-05-01")
        .await;
    let viewer = token(&["VIEWER"], &["05677"], &[]);
    let mut ws = Ws::ready(&app.address, &viewer).await;
    let sub = "subscription($c: [String!]!, $u: [String!]!) { indicatorChanged(codes: $c, unitCodes: $u) { indicator { code } unit { code } period { label start end } numerator value status } }";
    ws.subscribe("i", sub, json!({ "c": ["CNS05", "CNS07"], "u": ["05677"] }))
        .await;
    // Outside the area, and unknown codes, are refused.
    ws.subscribe("far", sub, json!({ "c": ["CNS05"], "u": ["05659"] }))
        .await;
    let v = ws.msg().await;
    assert_eq!(
        v["payload"]["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{v}"
    );
    assert_eq!(ws.msg().await["type"], "complete");
    ws.subscribe("bad", sub, json!({ "c": ["NOPE"], "u": ["05677"] }))
        .await;
    let v = ws.msg().await;
    assert_eq!(
        v["payload"]["errors"][0]["extensions"]["code"], "VALIDATION",
        "{v}"
    );
    assert_eq!(ws.msg().await["type"], "complete");
    until_live(&app, &mut ws, "i", &cafe).await;
    // The probe's other values.
    while let Got::Msg(v) = ws.next(Duration::from_millis(300)).await {
        assert_eq!(
            v["payload"]["data"]["indicatorChanged"]["period"]["label"],
            "2024-01"
        );
    }
    // Outside the units asked for: nothing.
    try_submit(&app, &far, None, "2024-04-02", "COMMUNITY_MEETING")
        .await
        .unwrap();
    assert!(matches!(
        ws.next(Duration::from_millis(300)).await,
        Got::Nothing
    ));
    try_submit(&app, &cafe, None, "2024-04-02", "COMMUNITY_MEETING")
        .await
        .unwrap();
    try_submit(&app, &cafe, None, "2024-04-20", "COMMUNITY_MEETING")
        .await
        .unwrap();
    // The latest value of each code, as sent.
    let mut latest: std::collections::BTreeMap<String, Value> = Default::default();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let numerator = |l: &std::collections::BTreeMap<String, Value>, code: &str| {
        l.get(code).and_then(|v| v["numerator"].as_f64())
    };
    while numerator(&latest, "CNS05") != Some(2.0) || numerator(&latest, "CNS07") != Some(6.0) {
        let wait = deadline.saturating_duration_since(tokio::time::Instant::now());
        let Got::Msg(v) = ws.next(wait).await else {
            panic!("no value with both meetings: {latest:?}")
        };
        assert_eq!(v["id"], "i", "{v}");
        let value = v["payload"]["data"]["indicatorChanged"].clone();
        assert_eq!(value["unit"]["code"], "05677");
        if value["period"]["label"] != "2024-04" {
            // A probe's value, late.
            assert_eq!(value["period"]["label"], "2024-01");
            continue;
        }
        latest.insert(
            value["indicator"]["code"].as_str().unwrap().to_owned(),
            value,
        );
    }
    let r = app
        .gql(
            &viewer,
            "{ indicators(codes: [\"CNS05\", \"CNS07\"], unitCodes: [\"05677\"], from: \"2024-04-01\", to: \"2024-04-30\") { indicator { code } numerator } }",
            json!({}),
        )
        .await
        .ok();
    for row in r.at("indicators").as_array().unwrap() {
        let code = row["indicator"]["code"].as_str().unwrap();
        assert_eq!(latest[code]["numerator"], row["numerator"], "{code}");
    }
    assert_eq!(r.at("indicators").as_array().unwrap().len(), 2);

    // A meeting corrected to another month: the month it left is told its new value too.
    let moved = try_submit(&app, &cafe, None, "2024-04-25", "COMMUNITY_MEETING")
        .await
        .unwrap();
    let mut april = None;
    while april != Some(3.0) {
        let Got::Msg(v) = ws.next(Duration::from_secs(10)).await else {
            panic!("no April value with the third meeting")
        };
        let value = &v["payload"]["data"]["indicatorChanged"];
        if value["indicator"]["code"] == "CNS05" && value["period"]["label"] == "2024-04" {
            april = value["numerator"].as_f64();
        }
    }
    let r = app
        .gql(
            &admin(),
            "mutation($i: CorrectActivityInput!) { correctActivity(input: $i) { activity { id } userErrors { message } } }",
            json!({ "i": { "activityId": moved, "reason": "Nhập nhầm tháng", "occurredOn": "2024-05-03" } }),
        )
        .await
        .ok();
    assert!(
        r.at("correctActivity.activity.id").is_string(),
        "{:?}",
        r.body
    );
    let (mut april, mut may) = (None, None);
    while april != Some(2.0) || may != Some(1.0) {
        let Got::Msg(v) = ws.next(Duration::from_secs(10)).await else {
            panic!("after the correction: April {april:?}, May {may:?}")
        };
        let value = &v["payload"]["data"]["indicatorChanged"];
        if value["indicator"]["code"] != "CNS05" {
            continue;
        }
        match value["period"]["label"].as_str() {
            Some("2024-04") => april = value["numerator"].as_f64(),
            Some("2024-05") => may = value["numerator"].as_f64(),
            _ => {}
        }
    }
}

#[tokio::test]
async fn subscriptions_are_limited_per_connection_and_charged_to_the_rate_limit() {
    let app = spawn_app().await;
    let mut ws = Ws::ready(&app.address, &admin()).await;
    for i in 0..50 {
        ws.subscribe(&i.to_string(), ACTIVITIES, json!({})).await;
    }
    ws.subscribe("one too many", ACTIVITIES, json!({})).await;
    let v = ws.msg().await;
    assert_eq!(v["id"], "one too many", "{v}");
    assert_eq!(
        v["payload"]["errors"][0]["extensions"]["code"], "QUERY_TOO_COMPLEX",
        "{v}"
    );
    assert_eq!(ws.msg().await["type"], "complete");
    // Completing one makes room.
    ws.send(json!({ "id": "0", "type": "complete" })).await;
    assert_eq!(ws.msg().await["type"], "complete");
    ws.subscribe("again", ACTIVITIES, json!({})).await;
    assert!(matches!(
        ws.next(Duration::from_millis(200)).await,
        Got::Nothing
    ));

    // Each subscription is charged its admission cost when it starts (`ACTIVITIES` costs
    // 6 points), so a bucket of 15 admits two of three.
    let app = spawn_app_with(|s| s.rate_limit_per_minute = 15).await;
    let mut ws = Ws::ready(&app.address, &admin()).await;
    for id in ["a", "b", "c"] {
        ws.subscribe(id, ACTIVITIES, json!({})).await;
    }
    // One of the three (admitted concurrently) is refused.
    let v = ws.msg().await;
    assert!(["a", "b", "c"].contains(&v["id"].as_str().unwrap()), "{v}");
    assert_eq!(
        v["payload"]["errors"][0]["extensions"]["code"], "RATE_LIMITED",
        "{v}"
    );
    assert_eq!(ws.msg().await["type"], "complete");
    assert!(matches!(
        ws.next(Duration::from_millis(200)).await,
        Got::Nothing
    ));
}

/// The selection of an activity that costs more than a 600-point bucket (and less than the
/// 20,000 any request may cost): its unit's children, priced at 100.
const HEAVY_SELECTION: &str =
    "id unit { children { code name type level parentCode validFrom validTo } }";

#[tokio::test]
async fn a_subscription_is_priced_like_the_query_post_would_run() {
    let app = spawn_app_with(|s| s.rate_limit_per_minute = 600).await;
    let viewer = token(&["VIEWER"], &["169"], &[]);
    // Over POST the same selection of an activity (here under `activities`) is refused as
    // too costly for the bucket.
    let post = app
        .gql(
            &viewer,
            &format!("{{ activities(first: 1) {{ nodes {{ {HEAVY_SELECTION} }} }} }}"),
            json!({}),
        )
        .await;
    assert_eq!(post.status, 400, "{}", post.body);
    assert_eq!(post.error_codes(), ["QUERY_TOO_COMPLEX"]);
    // Over the socket, 50 of them are refused alike, and none runs.
    let mut ws = Ws::ready(&app.address, &viewer).await;
    for i in 0..50 {
        ws.subscribe(
            &format!("heavy{i}"),
            &format!("subscription {{ activitySubmitted {{ {HEAVY_SELECTION} }} }}"),
            json!({}),
        )
        .await;
    }
    let (mut refused, mut completed) = (0, 0);
    while refused + completed < 100 {
        let v = ws.msg().await;
        if v["type"] == "complete" {
            completed += 1;
            continue;
        }
        assert_eq!(
            v["payload"]["errors"][0]["extensions"]["code"], "QUERY_TOO_COMPLEX",
            "{v}"
        );
        let message = v["payload"]["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains("600"), "{message}");
        refused += 1;
    }
    assert_eq!(refused, 50);
    // The socket still runs what the bucket can pay for.
    ws.subscribe("light", ACTIVITIES, json!({})).await;
    assert!(matches!(
        ws.next(Duration::from_millis(300)).await,
        Got::Nothing
    ));
}

#[tokio::test]
async fn connection_init_is_read_only_up_to_a_few_kilobytes_before_the_token_is_checked() {
    let app = spawn_app().await;
    let good = token(&["VIEWER"], &["05677"], &[]);
    let init = |pad: usize| json!({ "type": "connection_init", "payload": { "token": good, "pad": "x".repeat(pad) } });
    // Within the bound: accepted.
    let mut ws = Ws::open(&app.address).await;
    ws.send(init(12 * 1024)).await;
    assert_eq!(ws.msg().await["type"], "connection_ack");
    // Past it, even with a good token: never acknowledged; the socket is closed (1009 naming
    // the bound, or reset when the rest was left unread).
    for pad in [20 * 1024, 60 * 1024 * 1024] {
        let mut ws = Ws::open(&app.address).await;
        let sent = ws.0.send(Message::Text(init(pad).to_string().into())).await;
        if sent.is_ok() {
            match ws.next(Duration::from_secs(10)).await {
                Got::Closed(code, reason) => assert!(
                    code == 1006 || code == 1009 && reason.contains("16384"),
                    "{code} {reason}"
                ),
                other => panic!("{pad} bytes: expected the socket closed, got {other:?}"),
            }
        }
    }
    // After the token, a message may be as large as a POST body, not larger.
    let mut ws = Ws::ready(&app.address, &good).await;
    let big = json!({ "type": "ping", "payload": { "pad": "x".repeat(900 * 1024) } });
    ws.send(big).await;
    assert_eq!(ws.msg().await["type"], "pong");
    let huge = json!({ "type": "ping", "payload": { "pad": "x".repeat(1100 * 1024) } });
    let _ = ws.0.send(Message::Text(huge.to_string().into())).await;
    let (code, reason) = ws.closed(Duration::from_secs(10)).await;
    assert!(code == 1009 || code == 1006, "{code} {reason}");
    // The server still takes connections.
    Ws::ready(&app.address, &good).await;
}

#[tokio::test]
async fn deep_nesting_on_the_socket_is_refused_before_it_is_parsed() {
    let app = spawn_app().await;
    let n = 10 * cnscd_api::graphql::nesting::MAX_NESTING;
    let deep_json = format!("{}1{}", "{\"a\":".repeat(n), "}".repeat(n));
    // A message nested too deeply, before and after the token: closed with 4400, naming it.
    for ready in [false, true] {
        let mut ws = if ready {
            Ws::ready(&app.address, &admin()).await
        } else {
            Ws::open(&app.address).await
        };
        let text = format!("{{\"type\": \"connection_init\", \"payload\": {deep_json}}}");
        ws.0.send(Message::Text(text.into())).await.unwrap();
        let (code, reason) = ws.closed(Duration::from_secs(10)).await;
        assert_eq!(code, 4400, "{reason}");
        assert!(reason.contains("deeper than"), "{reason}");
    }
    // A subscription document nested too deeply: an error naming the bound, the socket open.
    let mut ws = Ws::ready(&app.address, &admin()).await;
    for value in [
        format!("{}1{}", "[".repeat(n), "]".repeat(n)),
        format!("{}1{}", "{a:".repeat(n), "}".repeat(n)),
    ] {
        ws.subscribe(
            "deep",
            &format!("subscription {{ activitySubmitted(under: {value}) {{ id }} }}"),
            json!({}),
        )
        .await;
        let v = ws.msg().await;
        assert_eq!(
            v["payload"]["errors"][0]["extensions"]["code"], "QUERY_TOO_COMPLEX",
            "{v}"
        );
        assert_eq!(ws.msg().await["type"], "complete");
    }
    ws.send(json!({ "type": "ping" })).await;
    assert_eq!(ws.msg().await["type"], "pong");
}

#[tokio::test]
async fn sockets_are_bounded_while_they_wait_and_per_caller_after() {
    let app = spawn_app_with(|s| {
        s.ws_max_unauthenticated = 2;
        s.ws_max_sockets_per_caller = 2;
        s.ws_max_subscriptions_per_caller = 3;
    })
    .await;
    let viewer = token(&["VIEWER"], &["05677"], &[]);
    // Two sockets wait for connection_init; a third is refused before the upgrade.
    let mut a = Ws::open(&app.address).await;
    let _b = Ws::open(&app.address).await;
    let url = format!("{}/graphql/ws", app.address.replace("http://", "ws://"));
    let mut req = url.clone().into_client_request().unwrap();
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    match tokio_tungstenite::connect_async(req).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status(), 503);
            assert!(resp.headers().contains_key("retry-after"));
        }
        other => panic!("expected 503, got {other:?}"),
    }
    // Once one authenticates, its place is free again.
    a.send(json!({ "type": "connection_init", "payload": { "token": viewer } }))
        .await;
    assert_eq!(a.msg().await["type"], "connection_ack");
    let mut c = Ws::open(&app.address).await;
    // One caller holds two sockets at most; another caller is not held back by it.
    c.send(json!({ "type": "connection_init", "payload": { "token": viewer } }))
        .await;
    assert_eq!(c.msg().await["type"], "connection_ack");
    let mut d = Ws::open(&app.address).await;
    d.send(json!({ "type": "connection_init", "payload": { "token": viewer } }))
        .await;
    let (code, reason) = d.closed(Duration::from_secs(10)).await;
    assert_eq!(code, 4429, "{reason}");
    assert!(reason.contains("at most 2"), "{reason}");
    Ws::ready(&app.address, &token(&["VIEWER"], &["05692"], &[])).await;
    // Three subscriptions over both sockets; the fourth is refused.
    a.subscribe("1", ACTIVITIES, json!({})).await;
    a.subscribe("2", ACTIVITIES, json!({})).await;
    c.subscribe("3", ACTIVITIES, json!({})).await;
    assert!(matches!(
        c.next(Duration::from_millis(300)).await,
        Got::Nothing
    ));
    c.subscribe("4", ACTIVITIES, json!({})).await;
    let v = c.msg().await;
    assert_eq!(v["id"], "4", "{v}");
    assert_eq!(
        v["payload"]["errors"][0]["extensions"]["code"], "QUERY_TOO_COMPLEX",
        "{v}"
    );
    // Closing a socket gives its sockets and subscriptions back.
    drop(a);
    let mut e = Ws::open(&app.address).await;
    let mut tries = 0;
    loop {
        e.send(json!({ "type": "connection_init", "payload": { "token": viewer } }))
            .await;
        match e.next(Duration::from_secs(10)).await {
            Got::Msg(v) if v["type"] == "connection_ack" => break,
            // The server may not have seen the close yet.
            Got::Closed(4429, _) if tries < 50 => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
                e = Ws::open(&app.address).await;
            }
            other => panic!("{other:?}"),
        }
    }
    e.subscribe("5", ACTIVITIES, json!({})).await;
    assert!(matches!(
        e.next(Duration::from_millis(300)).await,
        Got::Nothing
    ));
}

#[tokio::test]
async fn the_socket_needs_the_graphql_transport_ws_subprotocol() {
    let app = spawn_app().await;
    let url = format!("{}/graphql/ws", app.address.replace("http://", "ws://"));
    match tokio_tungstenite::connect_async(url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status(), 400);
            let body: Value = serde_json::from_slice(resp.body().as_deref().unwrap()).unwrap();
            assert!(
                body["errors"][0]["message"]
                    .as_str()
                    .unwrap()
                    .contains("graphql-transport-ws"),
                "{body}"
            );
        }
        other => panic!("expected 400, got {other:?}"),
    }
}

#[tokio::test]
async fn stopping_the_server_closes_the_sockets_with_1001() {
    let test_db = TestDb::new().await;
    let settings = cnscd_api::Settings::for_tests(&test_db.url, SECRET);
    let db = cnscd_api::startup::prepare_database(&settings.database_url)
        .await
        .unwrap();
    load_units(&db).await;
    let verifier = cnscd_api::startup::verifier(&settings, false)
        .await
        .unwrap();
    let app = cnscd_api::Application::with_database(&settings, verifier, db)
        .await
        .unwrap();
    let address = format!("http://{}", app.address());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async move {
        let _ = stopped.await;
    }));
    let mut ws = Ws::ready(&address, &admin()).await;
    ws.subscribe("1", ACTIVITIES, json!({})).await;
    stop.send(()).unwrap();
    let (code, reason) = ws.closed(Duration::from_secs(10)).await;
    assert_eq!(code, 1001, "{reason}");
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("the server stopped")
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn each_subscription_needs_its_role() {
    let app = spawn_app().await;
    let team = app.create_team("05677-01", "Tổ Cà Phê", "2022-05-01").await;
    // A team leader reads its team's activities, not indicators.
    let mut ws = Ws::ready(&app.address, &token(&["TEAM_LEADER"], &[], &[&team])).await;
    ws.subscribe(
        "i",
        "subscription { indicatorChanged(codes: [\"CNS05\"], unitCodes: [\"05677\"]) { value } }",
        json!({}),
    )
    .await;
    let v = ws.msg().await;
    assert_eq!(
        v["payload"]["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{v}"
    );
    assert_eq!(ws.msg().await["type"], "complete");
    ws.subscribe("a", ACTIVITIES, json!({})).await;
    until_live(&app, &mut ws, "a", &team).await;
    // Empty or oversized lists are refused, naming the argument.
    let mut ws = Ws::ready(&app.address, &admin()).await;
    let many: Vec<String> = (0..51).map(|i| format!("C{i}")).collect();
    for (vars, field) in [
        (json!({ "c": [], "u": ["05677"] }), "codes"),
        (json!({ "c": ["CNS05"], "u": [] }), "unitCodes"),
        (json!({ "c": many, "u": ["05677"] }), "codes"),
        (json!({ "c": ["CNS05"], "u": ["nope"] }), "unitCodes"),
    ] {
        ws.subscribe(
            "x",
            "subscription($c: [String!]!, $u: [String!]!) { indicatorChanged(codes: $c, unitCodes: $u) { value } }",
            vars.clone(),
        )
        .await;
        let v = ws.msg().await;
        let e = &v["payload"]["errors"][0];
        assert_eq!(e["extensions"]["code"], "VALIDATION", "{vars}: {v}");
        assert_eq!(e["extensions"]["field"][0], field, "{vars}: {v}");
        assert_eq!(ws.msg().await["type"], "complete");
    }
}

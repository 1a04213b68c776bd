//! Fuzzing: requests generated from the schema's introspection, valid and invalid (deeply
//! nested ones among them), with a token of each role and without one, never get a server
//! error, a panic or an INTERNAL error; WebSocket frames generated the same way never take the
//! server down. A short seeded run here; `bench/fuzz.sh N` runs the same with more iterations
//! (`CNSCD_FUZZ_ITERATIONS`, `CNSCD_FUZZ_SEED`).
use cnscd_tests::fuzz::{Generator, Pools, Schema};
use cnscd_tests::*;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const CODES: &[&str] = &[
    "UNAUTHENTICATED",
    "FORBIDDEN",
    "NOT_FOUND",
    "VALIDATION",
    "CONFLICT",
    "IDEMPOTENCY_KEY_REUSED",
    "PERIOD_LOCKED",
    "RATE_LIMITED",
    "QUERY_TOO_COMPLEX",
];

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::test]
async fn generated_requests_never_get_a_server_error() {
    let app = spawn_app().await;
    // Something to find: teams, members, activities on both sides of the reorganisation.
    let team = app.create_team("05677-01", "Tổ Cà Phê", "2022-05-01").await;
    let other = app
        .create_team("05659-01", "Tổ Chùa Hang", "2022-01-01")
        .await;
    let member = app
        .add_member(
            &team,
            "Nguyễn Văn An",
            "LEADER",
            "HAMLET_HEAD",
            "2022-05-01",
        )
        .await;
    let activity = app
        .submit(&team, "COMMUNITY_MEETING", "2024-03-05", json!({}))
        .await;
    let later = app
        .submit(&other, "DOOR_TO_DOOR", "2025-08-01", json!({}))
        .await;
    let units = app
        .gql(
            &admin(),
            "{ adminUnits(first: 20) { nodes { id } } }",
            json!({}),
        )
        .await
        .ok();
    let mut ids = vec![
        team.clone(),
        other.clone(),
        member.clone(),
        activity.clone(),
        later.clone(),
    ];
    ids.extend(
        units
            .at("adminUnits.nodes")
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|n| n["id"].as_str().map(str::to_owned)),
    );
    let introspection = app
        .gql(&admin(), &introspection_query(), json!({}))
        .await
        .ok();
    let schema = Schema::from_introspection(&introspection.body["data"]);
    assert!(schema.types.contains_key("Query") && schema.mutation.is_some());
    let mut pools = Pools::with_ids(ids);
    let hints: &[(&str, Value)] = &[
        ("teamId", json!([team, other])),
        ("membershipId", json!([member])),
        ("activityId", json!([activity, later])),
        (
            "unitCode",
            json!(["05677-01", "05677-02", "05692-01", "05659-01", "05677"]),
        ),
        (
            "kind",
            json!(["COMMUNITY_MEETING", "DOOR_TO_DOOR", "HELP_DESK"]),
        ),
        (
            "service",
            json!(["VNEID", "ONLINE_PUBLIC_SERVICE", "TUITION_PAYMENT"]),
        ),
        (
            "affiliation",
            json!(["YOUTH_UNION", "POLICE", "HAMLET_HEAD"]),
        ),
        ("idempotencyKey", json!(["{unique}", "fixed-key"])),
        (
            "foundedOn",
            json!(["2022-01-01", "2023-06-01", "2025-07-01"]),
        ),
        (
            "startedOn",
            json!(["2023-01-01", "2024-05-01", "2025-08-01"]),
        ),
        ("endedOn", json!(["2024-12-31", "2025-09-30"])),
        ("dissolvedOn", json!(["2025-10-01"])),
        (
            "occurredOn",
            json!(["2023-03-01", "2024-06-15", "2025-08-20"]),
        ),
        ("fullName", json!(["Nguyễn Văn Bình", "Trần Thị Lệ"])),
        ("phone", json!(["0912345678", "+84912345678"])),
        ("email", json!(["a@example.vn"])),
        ("birthYear", json!([1960, 1990, 2001])),
        ("name", json!(["Tổ công nghệ số", "Tổ Na Lay"])),
        ("title", json!(["Hướng dẫn cài VNeID"])),
        ("reason", json!(["Sửa số liệu", "Chuyển công tác"])),
        ("people", json!([1, 5, 30])),
        ("participants", json!([10, 40])),
        ("householdsReached", json!([5, 12])),
    ];
    for (name, values) in hints {
        pools.hints.insert(
            (*name).to_owned(),
            values.as_array().cloned().unwrap_or_default(),
        );
    }
    let tokens: Vec<(&str, Option<String>)> = vec![
        ("ADMIN", Some(admin())),
        ("UNIT_ADMIN", Some(token(&["UNIT_ADMIN"], &["169"], &[]))),
        ("TEAM_LEADER", Some(token(&["TEAM_LEADER"], &[], &[&team]))),
        ("REPORTER", Some(token(&["REPORTER"], &["05692"], &[]))),
        ("VIEWER", Some(token(&["VIEWER"], &["05677"], &[]))),
        ("none", None),
    ];

    let iterations = env_number("CNSCD_FUZZ_ITERATIONS", 600);
    let seed = env_number("CNSCD_FUZZ_SEED", 0x0C5C_D5EE_D001);
    let mut generator = Generator::new(&schema, &pools, seed);
    let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
    let mut codes: BTreeMap<String, usize> = BTreeMap::new();
    let mut slowest = (0u128, String::new());
    // Mutation payloads that changed something (no userErrors): the generator reaches the
    // services, not only the validation.
    let mut changes = 0usize;
    let url = format!("{}/graphql", app.address);
    let started = Instant::now();
    for i in 0..iterations {
        let request = generator.request();
        let (role, bearer) = &tokens[i as usize % tokens.len()];
        let mut post = app
            .client
            .post(&url)
            .header("Content-Type", "application/json")
            .body(request.body());
        if let Some(t) = bearer {
            post = post.bearer_auth(t);
        }
        let t0 = Instant::now();
        let resp = post.send().await.unwrap_or_else(|e| {
            panic!(
                "no response (a panic?) for #{i} as {role}: {e}\n{}\n{}",
                request.query, request.variables
            )
        });
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        let took = t0.elapsed().as_millis();
        if took > slowest.0 {
            slowest = (took, request.query.chars().take(300).collect());
        }
        let context = || {
            format!(
                "#{i} (seed {seed}) as {role}: {status}\nquery: {}\nvariables: {}\nbody: {}",
                request.query,
                request
                    .variables
                    .to_string()
                    .chars()
                    .take(2000)
                    .collect::<String>(),
                body.to_string().chars().take(2000).collect::<String>()
            )
        };
        *statuses.entry(status).or_default() += 1;
        assert!(status < 500, "server error {}", context());
        assert!(body.is_object(), "not JSON: {}", context());
        if bearer.is_none() {
            assert_eq!(status, 401, "{}", context());
        }
        if status == 200 {
            assert!(
                body.get("data").is_some(),
                "200 without data: {}",
                context()
            );
        } else {
            assert!(
                body["errors"][0]["message"].is_string(),
                "{status} without a message: {}",
                context()
            );
        }
        if request.query.starts_with("mutation") {
            changes += body["data"]
                .as_object()
                .into_iter()
                .flat_map(|d| d.values())
                .filter(|p| p["userErrors"].as_array().is_some_and(Vec::is_empty))
                .count();
        }
        for e in body["errors"].as_array().into_iter().flatten() {
            let code = e["extensions"]["code"].as_str().unwrap_or("(none)");
            *codes.entry(code.to_owned()).or_default() += 1;
            assert!(
                CODES.contains(&code) || (code == "UNAUTHENTICATED"),
                "error code {code}: {}",
                context()
            );
        }
    }
    eprintln!(
        "fuzz: {iterations} requests (seed {seed}) in {:.1} s; statuses {statuses:?}; codes {codes:?}; {changes} mutations done; slowest {} ms: {}",
        started.elapsed().as_secs_f64(),
        slowest.0,
        slowest.1
    );
    // The generator reaches past validation: some requests run and succeed.
    assert!(statuses.get(&200).copied().unwrap_or(0) > iterations as usize / 10);
}

/// Close codes the live feed may end a socket with (docs/operations.md, "The live feed: subscriptions").
const CLOSE_CODES: &[u16] = &[1000, 1001, 1002, 1007, 1009, 4400, 4401, 4403, 4408, 4429];

#[tokio::test]
async fn generated_socket_frames_never_take_the_server_down() {
    let app = spawn_app().await;
    let team = app.create_team("05677-01", "Tổ Cà Phê", "2022-05-01").await;
    let introspection = app
        .gql(&admin(), &introspection_query(), json!({}))
        .await
        .ok();
    let schema = Schema::from_introspection(&introspection.body["data"]);
    assert!(schema.subscription.is_some());
    let pools = Pools::with_ids(vec![team.clone()]);
    let tokens = vec![
        admin(),
        token(&["VIEWER"], &["05677"], &[]),
        token(&["REPORTER"], &["05692"], &[]),
        token(&["TEAM_LEADER"], &[], &[&team]),
    ];
    let iterations = env_number("CNSCD_FUZZ_ITERATIONS", 600) / 5;
    let seed = env_number("CNSCD_FUZZ_SEED", 0x0C5C_D5EE_D001);
    let mut generator = Generator::new(&schema, &pools, seed);
    let url = format!("{}/graphql/ws", app.address.replace("http://", "ws://"));
    let mut closes: BTreeMap<u16, usize> = BTreeMap::new();
    let started = Instant::now();
    for i in 0..iterations {
        let mut req = url.as_str().into_client_request().unwrap();
        req.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            "graphql-transport-ws".parse().unwrap(),
        );
        let (mut ws, _) = tokio_tungstenite::connect_async(req)
            .await
            .unwrap_or_else(|e| panic!("#{i} (seed {seed}): no socket: {e}"));
        // Usually a real connection_init first, so that later frames reach the subscriptions.
        if generator.rng.chance(70) {
            let t = generator.rng.pick(&tokens).clone();
            let init = json!({ "type": "connection_init", "payload": { "token": t } });
            let _ = ws.send(Message::Text(init.to_string().into())).await;
        }
        let mut sent = Vec::new();
        for _ in 0..1 + generator.rng.below(6) {
            let frame = generator.frame(&tokens);
            sent.push(format!("{:.200?}", frame));
            let message = match frame {
                cnscd_tests::fuzz::Frame::Text(t) => Message::Text(t.into()),
                cnscd_tests::fuzz::Frame::Binary(b) => Message::Binary(b.into()),
            };
            if ws.send(message).await.is_err() {
                break;
            }
        }
        // Then a ping: the socket answers (pong, or its other messages first) or is closed
        // with one of the protocol's codes; it never just hangs.
        let _ = ws
            .send(Message::Text(json!({ "type": "ping" }).to_string().into()))
            .await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let next = tokio::time::timeout_at(deadline, ws.next()).await;
            let context = || format!("#{i} (seed {seed}), frames {sent:?}");
            match next {
                Err(_) => panic!("no answer and no close: {}", context()),
                Ok(Some(Ok(Message::Text(t)))) => {
                    let v: Value = serde_json::from_str(&t)
                        .unwrap_or_else(|e| panic!("not JSON ({e}): {t}: {}", context()));
                    for e in v["payload"]["errors"].as_array().into_iter().flatten() {
                        let code = e["extensions"]["code"].as_str().unwrap_or("(none)");
                        assert!(CODES.contains(&code), "error code {code}: {}", context());
                    }
                    if v["type"] == "pong" {
                        *closes.entry(0).or_default() += 1;
                        break;
                    }
                }
                Ok(Some(Ok(Message::Close(frame)))) => {
                    let code = frame.map_or(1005, |f| u16::from(f.code));
                    assert!(
                        CLOSE_CODES.contains(&code),
                        "closed with {code}: {}",
                        context()
                    );
                    *closes.entry(code).or_default() += 1;
                    break;
                }
                Ok(Some(Ok(_))) => {}
                // Dropped after a message past a bound that was left unread.
                Ok(Some(Err(_)) | None) => {
                    *closes.entry(1006).or_default() += 1;
                    break;
                }
            }
        }
    }
    eprintln!(
        "fuzz: {iterations} sockets (seed {seed}) in {:.1} s; endings (0: answered) {closes:?}",
        started.elapsed().as_secs_f64()
    );
    // The server is still there and still serves.
    app.gql(&admin(), "{ me { subject } }", json!({}))
        .await
        .ok();
    assert!(closes.get(&0).copied().unwrap_or(0) > iterations as usize / 20);
}

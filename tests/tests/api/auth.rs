//! Tokens: every way a token can be wrong is refused with 401 and a clear message.
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cnscd_api::auth::mint;
use cnscd_tests::*;
use serde_json::json;

const ME: &str = "{ me { subject roles units teams clientId } }";

async fn refused(app: &TestApp, token: &str, expect: &str) {
    let r = app.gql(token, ME, json!({})).await;
    assert_eq!(r.status, 401, "{token}: {:?}", r.body);
    assert_eq!(r.error_codes(), ["UNAUTHENTICATED"]);
    let msg = r.body["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(msg.contains(expect), "`{msg}` should mention `{expect}`");
}

fn b64(v: &serde_json::Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string())
}

#[tokio::test]
async fn me_answers_who_the_caller_is() {
    let app = spawn_app().await;
    let r = app
        .gql(
            &token(&["VIEWER", "NOT_A_ROLE"], &["169"], &[]),
            ME,
            json!({}),
        )
        .await
        .ok();
    assert_eq!(r.at("me.roles"), &json!(["VIEWER"]));
    assert_eq!(r.at("me.units"), &json!(["169"]));
    assert_eq!(r.at("me.clientId"), "test-app");
}

#[tokio::test]
async fn missing_and_malformed_authorization_is_refused() {
    let app = spawn_app().await;
    let resp = app
        .client
        .post(format!("{}/graphql", app.address))
        .json(&json!({ "query": ME }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
    let resp = app
        .client
        .post(format!("{}/graphql", app.address))
        .header("Authorization", "Basic abc")
        .json(&json!({ "query": ME }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    refused(&app, "not-a-jwt", "malformed").await;
}

#[tokio::test]
async fn bad_tokens_are_refused_with_the_reason() {
    let app = spawn_app().await;
    let now = chrono::Utc::now().timestamp();
    let mut c = claims("u", &["ADMIN"], &[], &[]);
    c.exp = now - 3600;
    refused(&app, &mint(SECRET, &c).unwrap(), "expired").await;
    let mut c = claims("u", &["ADMIN"], &[], &[]);
    c.nbf = Some(now + 3600);
    refused(&app, &mint(SECRET, &c).unwrap(), "not valid yet").await;
    let c = claims("u", &["ADMIN"], &[], &[]);
    refused(
        &app,
        &mint("another-secret-0123456789", &c).unwrap(),
        "signature",
    )
    .await;
    // alg: none, unsigned.
    let header = b64(&json!({ "alg": "none", "typ": "JWT" }));
    let payload = b64(&json!({ "sub": "u", "exp": now + 3600, "roles": ["ADMIN"] }));
    refused(&app, &format!("{header}.{payload}."), "algorithm").await;
    // Missing exp.
    let good = mint(SECRET, &claims("u", &["VIEWER"], &["169"], &[])).unwrap();
    let header = good.split('.').next().unwrap();
    let payload = b64(&json!({ "sub": "u", "roles": ["ADMIN"] }));
    refused(
        &app,
        &format!("{header}.{payload}.{}", good.split('.').nth(2).unwrap()),
        "",
    )
    .await;
    // Tampered payload: a VIEWER token promoted to ADMIN keeps its old signature.
    let parts: Vec<&str> = good.split('.').collect();
    let tampered = b64(&json!({ "sub": "u", "exp": now + 3600, "roles": ["ADMIN"] }));
    refused(
        &app,
        &format!("{}.{tampered}.{}", parts[0], parts[2]),
        "signature",
    )
    .await;
    // Tampered signature.
    refused(
        &app,
        &format!("{}.{}.AAAA{}", parts[0], parts[1], &parts[2][4..]),
        "signature",
    )
    .await;
}

#[tokio::test]
async fn issuer_and_audience_are_enforced_when_configured() {
    let app = spawn_app_with(|s| {
        s.jwt_issuer = Some("https://id.thainguyen.gov.vn".into());
        s.jwt_audience = Some("cnscd".into());
    })
    .await;
    let mut c = claims("u", &["ADMIN"], &[], &[]);
    c.iss = Some("https://id.thainguyen.gov.vn".into());
    c.aud = Some(json!("cnscd"));
    app.gql(&mint(SECRET, &c).unwrap(), ME, json!({}))
        .await
        .ok();
    let mut wrong_iss = c.clone();
    wrong_iss.iss = Some("https://evil.example".into());
    refused(&app, &mint(SECRET, &wrong_iss).unwrap(), "issuer").await;
    let mut wrong_aud = c.clone();
    wrong_aud.aud = Some(json!("other"));
    refused(&app, &mint(SECRET, &wrong_aud).unwrap(), "audience").await;
}

#[tokio::test]
async fn a_configured_issuer_or_audience_must_be_present() {
    let app = spawn_app_with(|s| {
        s.jwt_issuer = Some("https://id.thainguyen.gov.vn".into());
        s.jwt_audience = Some("cnscd".into());
    })
    .await;
    let mut no_iss = claims("u", &["ADMIN"], &[], &[]);
    no_iss.aud = Some(json!("cnscd"));
    refused(
        &app,
        &mint(SECRET, &no_iss).unwrap(),
        "`iss` claim is missing",
    )
    .await;
    let mut no_aud = claims("u", &["ADMIN"], &[], &[]);
    no_aud.iss = Some("https://id.thainguyen.gov.vn".into());
    refused(
        &app,
        &mint(SECRET, &no_aud).unwrap(),
        "`aud` claim is missing",
    )
    .await;
    // Without configuration, neither is required.
    let plain = spawn_app().await;
    plain
        .gql(
            &mint(SECRET, &claims("u", &["ADMIN"], &[], &[])).unwrap(),
            ME,
            json!({}),
        )
        .await
        .ok();
}

#[tokio::test]
async fn a_token_without_a_known_role_is_refused() {
    let app = spawn_app().await;
    let known = "ADMIN, UNIT_ADMIN, TEAM_LEADER, REPORTER, VIEWER";
    for (roles, got) in [
        (vec!["SUPERUSER", "viewer"], "`SUPERUSER`, `viewer`"),
        (vec![], "none"),
    ] {
        let t = mint(SECRET, &claims("u", &roles, &["169"], &[])).unwrap();
        let r = app.gql(&t, ME, json!({})).await;
        assert_eq!(r.status, 401, "{:?}", r.body);
        assert_eq!(r.error_codes(), ["UNAUTHENTICATED"]);
        let msg = r.body["errors"][0]["message"].as_str().unwrap_or_default();
        assert!(msg.contains(known) && msg.contains(got), "{msg}");
    }
}

#[tokio::test]
async fn an_oversized_authorization_header_is_refused_unread() {
    let app = spawn_app().await;
    // A validly signed token that is merely too large, and junk of the same size.
    let mut c = claims("u", &["ADMIN"], &[], &[]);
    c.units = (0..1500).map(|i| format!("{i:05}")).collect();
    let big = mint(SECRET, &c).unwrap();
    assert!(big.len() > 8 * 1024);
    refused(&app, &big, "at most 8192 bytes").await;
    refused(&app, &"x".repeat(64 * 1024), "at most 8192 bytes").await;
}

/// Two callers whose naive concatenations (`sub:client`, `sub|client`) are equal are still two
/// callers: neither reads the other's activities nor replays the other's idempotency keys.
#[tokio::test]
async fn callers_whose_names_concatenate_alike_stay_apart() {
    let app = spawn_app().await;
    let team = app.create_team("05677-01", "Tổ Cà Phê", "2022-05-01").await;
    let submit = "mutation($i: SubmitActivityInput!) { submitActivity(input: $i) { replayed activity { id title } userErrors { message } } }";
    let list = "{ activities { totalCount edges { node { id } } } }";
    for (a, b) in [
        (("a:b", Some("c")), ("a", Some("b:c"))),
        (("a|b", Some("c")), ("a", Some("b|c"))),
        (("a|", None), ("a", Some("|"))),
    ] {
        let reporter = |(sub, client): (&str, Option<&str>)| {
            let mut c = claims(sub, &["REPORTER"], &["169"], &[]);
            c.client_id = client.map(str::to_owned);
            mint(SECRET, &c).unwrap()
        };
        let (ta, tb) = (reporter(a), reporter(b));
        let key = format!("same-key-{}", a.0);
        let input = |title: &str| {
            json!({ "i": { "idempotencyKey": key, "teamId": team, "kind": "DOOR_TO_DOOR",
                "occurredOn": "2024-03-05", "title": title } })
        };
        let ra = app.gql(&ta, submit, input("first")).await.ok();
        assert_eq!(ra.at("submitActivity.replayed"), false);
        // The same key with another input is not "reused" by the other caller: it is theirs.
        let rb = app.gql(&tb, submit, input("second")).await.ok();
        assert_eq!(rb.at("submitActivity.replayed"), false, "{:?}", rb.body);
        assert_eq!(rb.at("submitActivity.activity.title"), "second");
        // ... and with the same input it is not a replay of the other caller's activity.
        let rb2 = app.gql(&tb, submit, input("first")).await;
        assert_ne!(
            rb2.at("submitActivity.activity.id"),
            ra.at("submitActivity.activity.id")
        );
        // Each reads only its own.
        for (t, r) in [(&ta, &ra), (&tb, &rb)] {
            let l = app.gql(t, list, json!({})).await.ok();
            assert_eq!(l.at("activities.totalCount"), 1, "{:?}", l.body);
            assert_eq!(
                l.at("activities.edges.0.node.id"),
                r.at("submitActivity.activity.id")
            );
        }
        // A retry by the first caller is still a replay.
        let again = app.gql(&ta, submit, input("first")).await.ok();
        assert_eq!(again.at("submitActivity.replayed"), true);
    }
}

fn demo_settings(url: &str, listen: &str) -> cnscd_api::config::Settings {
    let mut s = cnscd_api::config::Settings::for_tests(url, SECRET);
    s.jwt_secret = None;
    s.listen = listen.into();
    s
}

async fn demo_refusal(settings: &cnscd_api::config::Settings) -> String {
    match cnscd_api::startup::Application::build(settings, true).await {
        Ok(_) => String::new(),
        Err(e) => format!("{e:#}"),
    }
}

#[tokio::test]
async fn serve_demo_never_uses_the_development_secret_where_it_is_unsafe() {
    // A database with other data.
    let test_db = TestDb::new().await;
    let db = cnscd_api::startup::prepare_database(&test_db.url)
        .await
        .unwrap();
    load_units(&db).await;
    let err = demo_refusal(&demo_settings(&test_db.url, "127.0.0.1:0")).await;
    assert!(
        err.contains("not the demo data set") && err.contains("CNSCD_JWT_SECRET"),
        "{err}"
    );
    // A non-loopback address, even on an empty database.
    let empty = TestDb::new().await;
    for listen in ["0.0.0.0:0", "[::]:0"] {
        let err = demo_refusal(&demo_settings(&empty.url, listen)).await;
        assert!(err.contains("loopback"), "{listen}: {err}");
    }
    // An empty database on loopback is fine, and so is any database with a real secret.
    assert_eq!(
        demo_refusal(&demo_settings(&empty.url, "127.0.0.1:0")).await,
        ""
    );
    let mut with_secret = demo_settings(&test_db.url, "0.0.0.0:0");
    with_secret.jwt_secret = Some(SECRET.into());
    assert_eq!(demo_refusal(&with_secret).await, "");
}

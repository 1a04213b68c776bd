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

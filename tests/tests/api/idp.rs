//! Tokens from an identity provider: RS256, ES256 and EdDSA keys the tests generate, given as a
//! PEM file, a JWKS file, or a JWKS served on loopback (with rotation and outages), and
//! Keycloak's claim layout.
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cnscd_tests::*;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

const ME: &str = "{ me { subject roles units teams clientId } }";

/// A signing key with its public forms.
#[derive(Clone)]
struct Signer {
    kid: String,
    alg: Algorithm,
    key: EncodingKey,
    public_pem: String,
    jwk: Value,
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn random32() -> [u8; 32] {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).unwrap();
    b
}

/// One RSA key per test process: generating one takes a while.
fn rsa_key() -> &'static rsa::PrivateKey {
    static KEY: OnceLock<rsa::PrivateKey> = OnceLock::new();
    KEY.get_or_init(|| rsa::PrivateKey::new(&mut getrandom::SysRng, 2048).unwrap())
}

fn rsa_signer(kid: &str) -> Signer {
    use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
    use rsa::traits::PublicKeyParts;
    let private = rsa_key();
    let public = private.to_public_key();
    let pem = private.to_pkcs8_pem(LineEnding::LF).unwrap();
    Signer {
        kid: kid.into(),
        alg: Algorithm::RS256,
        key: EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap(),
        public_pem: public.to_public_key_pem(LineEnding::LF).unwrap(),
        jwk: json!({ "kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
                     "n": b64(&public.n_bytes()), "e": b64(&public.e_bytes()) }),
    }
}

fn ec_signer(kid: &str) -> Signer {
    use p256::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
    let secret = p256::SecretKey::from_slice(&random32()).unwrap();
    let public = secret.public_key();
    let point = public.to_sec1_bytes();
    assert_eq!(point.len(), 65, "an uncompressed P-256 point");
    let pem = secret.to_pkcs8_pem(LineEnding::LF).unwrap();
    Signer {
        kid: kid.into(),
        alg: Algorithm::ES256,
        key: EncodingKey::from_ec_pem(pem.as_bytes()).unwrap(),
        public_pem: public.to_public_key_pem(LineEnding::LF).unwrap(),
        jwk: json!({ "kty": "EC", "kid": kid, "crv": "P-256",
                     "x": b64(&point[1..33]), "y": b64(&point[33..65]) }),
    }
}

fn ed_signer(kid: &str) -> Signer {
    use ed25519_dalek::pkcs8::{EncodePrivateKey, EncodePublicKey, spki::der::pem::LineEnding};
    let signing = ed25519_dalek::SigningKey::from_bytes(&random32());
    let verifying = signing.verifying_key();
    let pem = signing.to_pkcs8_pem(LineEnding::LF).unwrap();
    Signer {
        kid: kid.into(),
        alg: Algorithm::EdDSA,
        key: EncodingKey::from_ed_pem(pem.as_bytes()).unwrap(),
        public_pem: verifying.to_public_key_pem(LineEnding::LF).unwrap(),
        jwk: json!({ "kty": "OKP", "kid": kid, "crv": "Ed25519", "x": b64(verifying.as_bytes()) }),
    }
}

/// Claims the way Keycloak lays them out.
fn keycloak_claims(roles: &[&str], units: &[&str]) -> Value {
    let now = chrono::Utc::now().timestamp();
    json!({
        "sub": "f3c1a6a2-5a61-4d7b-9d0e-3b2f0c1d9e11",
        "exp": now + 300,
        "iat": now,
        "iss": "https://sso.thainguyen.gov.vn/realms/cnscd",
        "aud": "cnscd-api",
        "azp": "cnscd-dashboard",
        "realm_access": { "roles": roles.iter().chain(["offline_access", "uma_authorization"].iter()).collect::<Vec<_>>() },
        "units": units,
    })
}

/// Claims in the service's own layout.
fn plain_claims(roles: &[&str]) -> Value {
    let now = chrono::Utc::now().timestamp();
    json!({ "sub": "idp-user", "exp": now + 300, "roles": roles, "units": ["169"], "client_id": "idp-app" })
}

/// Signs `claims` with `signer`, naming its kid (or none).
fn sign(signer: &Signer, claims: &Value, with_kid: bool) -> String {
    let mut header = Header::new(signer.alg);
    if with_kid {
        header.kid = Some(signer.kid.clone());
    }
    jsonwebtoken::encode(&header, claims, &signer.key).unwrap()
}

/// A token with a hand-made header and the signature of another token.
fn reheader(token: &str, header: Value) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        parts[1],
        parts[2]
    )
}

async fn refused(app: &TestApp, token: &str, expect: &[&str]) {
    let r = app.gql(token, ME, json!({})).await;
    assert_eq!(r.status, 401, "{:?}", r.body);
    assert_eq!(r.error_codes(), ["UNAUTHENTICATED"]);
    let msg = r.body["errors"][0]["message"].as_str().unwrap_or_default();
    for e in expect {
        assert!(msg.contains(e), "`{msg}` should mention `{e}`");
    }
    // Whatever went wrong, a stranger learns nothing of the identity provider: not its
    // address, its path nor how it answered (that is in the server's log).
    for secret in ["http", "127.0.0.1", "realms", "certs", "HTTP 5", "503"] {
        assert!(!msg.contains(secret), "`{msg}` reveals `{secret}`");
    }
}

/// An identity provider serving its JWKS on loopback.
struct Provider {
    url: String,
    keys: Arc<Mutex<Vec<Value>>>,
    fetches: Arc<AtomicUsize>,
    up: Arc<AtomicBool>,
}

impl Provider {
    async fn start(keys: Vec<Value>, cache_control: &'static str) -> Self {
        let keys = Arc::new(Mutex::new(keys));
        let fetches = Arc::new(AtomicUsize::new(0));
        let up = Arc::new(AtomicBool::new(true));
        let (k, f, u) = (keys.clone(), fetches.clone(), up.clone());
        let router = axum::Router::new().route(
            "/realms/cnscd/protocol/openid-connect/certs",
            axum::routing::get(move || {
                let (k, f, u) = (k.clone(), f.clone(), u.clone());
                async move {
                    f.fetch_add(1, Ordering::SeqCst);
                    if !u.load(Ordering::SeqCst) {
                        return StatusCode::SERVICE_UNAVAILABLE.into_response();
                    }
                    let body = json!({ "keys": *k.lock().unwrap() }).to_string();
                    let mut resp = body.into_response();
                    resp.headers_mut().insert(
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("application/json"),
                    );
                    resp.headers_mut().insert(
                        header::CACHE_CONTROL,
                        HeaderValue::from_static(cache_control),
                    );
                    resp
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "http://{}/realms/cnscd/protocol/openid-connect/certs",
            listener.local_addr().unwrap()
        );
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self {
            url,
            keys,
            fetches,
            up,
        }
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }

    fn publish(&self, jwk: Value) {
        self.keys.lock().unwrap().push(jwk);
    }
}

/// An app that verifies with the provider's keys only, Keycloak's claim layout.
async fn keycloak_app(provider: &Provider, refetch: Duration) -> TestApp {
    let url = provider.url.clone();
    spawn_app_with(move |s| {
        s.jwt_secret = None;
        s.jwks_url = Some(url);
        s.jwks_refetch_interval = refetch;
        s.jwt_roles_claim = "realm_access.roles".into();
        s.jwt_client_claim = "azp".into();
        s.jwt_issuer = Some("https://sso.thainguyen.gov.vn/realms/cnscd".into());
        s.jwt_audience = Some("cnscd-api".into());
    })
    .await
}

/// Polls (every 5 ms, at most 1,000 times) until `done`.
async fn eventually(mut done: impl AsyncFnMut() -> bool) {
    for _ in 0..1000 {
        if done().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("not reached after 1,000 polls");
}

#[tokio::test]
async fn rs256_es256_and_eddsa_tokens_verify_with_a_pem_file() {
    let signers = [rsa_signer("r"), ec_signer("e"), ed_signer("d")];
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.pem");
    let pems: Vec<&str> = signers.iter().map(|s| s.public_pem.as_str()).collect();
    std::fs::write(&path, pems.join("\n")).unwrap();
    let path = path.display().to_string();
    let app = spawn_app_with(|s| {
        s.jwt_secret = None;
        s.jwt_public_keys = Some(path);
    })
    .await;
    for signer in &signers {
        // PEM keys have no kid: tokens with or without one are verified by them.
        for with_kid in [false, true] {
            let r = app
                .gql(
                    &sign(signer, &plain_claims(&["VIEWER"]), with_kid),
                    ME,
                    json!({}),
                )
                .await
                .ok();
            assert_eq!(r.at("me.roles"), &json!(["VIEWER"]), "{:?}", signer.alg);
            assert_eq!(r.at("me.clientId"), "idp-app");
        }
    }
    // A key the service does not hold.
    refused(
        &app,
        &sign(&ec_signer("other"), &plain_claims(&["VIEWER"]), false),
        &["signature"],
    )
    .await;
    // HS256 is not accepted without a shared secret, whatever it was signed with; signed
    // with the RSA public key (algorithm confusion) it is refused by name.
    let confused = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &plain_claims(&["ADMIN"]),
        &EncodingKey::from_secret(signers[0].public_pem.as_bytes()).unwrap(),
    )
    .unwrap();
    refused(
        &app,
        &confused,
        &["`HS256` is not accepted", "no shared secret"],
    )
    .await;
    refused(
        &app,
        &token(&["ADMIN"], &[], &[]),
        &["`HS256` is not accepted"],
    )
    .await;
}

#[tokio::test]
async fn hs256_signed_with_the_public_key_is_refused_when_a_secret_is_configured_too() {
    let rsa = rsa_signer("r");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.pem");
    std::fs::write(&path, &rsa.public_pem).unwrap();
    let path = path.display().to_string();
    // The secret and the public keys together: HS256 tokens are checked with the secret only.
    let app = spawn_app_with(|s| s.jwt_public_keys = Some(path)).await;
    app.gql(&token(&["ADMIN"], &[], &[]), ME, json!({}))
        .await
        .ok();
    app.gql(&sign(&rsa, &plain_claims(&["ADMIN"]), false), ME, json!({}))
        .await
        .ok();
    let confused = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &plain_claims(&["ADMIN"]),
        &EncodingKey::from_secret(rsa.public_pem.as_bytes()).unwrap(),
    )
    .unwrap();
    refused(&app, &confused, &["signature does not match"]).await;
}

#[tokio::test]
async fn a_jwks_file_chooses_keys_by_kid_and_refuses_unknown_kids_and_wrong_key_types() {
    let (rsa, ec, ed) = (rsa_signer("rsa-1"), ec_signer("ec-1"), ed_signer("ed-1"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jwks.json");
    std::fs::write(
        &path,
        json!({ "keys": [rsa.jwk, ec.jwk, ed.jwk] }).to_string(),
    )
    .unwrap();
    let path = path.display().to_string();
    let app = spawn_app_with(|s| {
        s.jwt_secret = None;
        s.jwt_public_keys = Some(path);
    })
    .await;
    for signer in [&rsa, &ec, &ed] {
        app.gql(
            &sign(signer, &plain_claims(&["VIEWER"]), true),
            ME,
            json!({}),
        )
        .await
        .ok();
    }
    // Unknown kid.
    let mut stranger = ec_signer("ec-2");
    refused(
        &app,
        &sign(&stranger, &plain_claims(&["VIEWER"]), true),
        &["kid", "`ec-2` is unknown", "rsa-1"],
    )
    .await;
    // The right kid on a token signed by another key.
    stranger.kid = "ec-1".into();
    refused(
        &app,
        &sign(&stranger, &plain_claims(&["VIEWER"]), true),
        &["signature does not match"],
    )
    .await;
    // A key of the wrong type for the token's alg: ES256 naming the RSA key, EdDSA naming the
    // EC key, RS256 naming the EdDSA key.
    let es = sign(&ec, &plain_claims(&["ADMIN"]), false);
    refused(
        &app,
        &reheader(&es, json!({ "alg": "ES256", "kid": "rsa-1" })),
        &["`rsa-1`", "wrong type", "RSA key", "EC P-256 key"],
    )
    .await;
    let ed_token = sign(&ed, &plain_claims(&["ADMIN"]), false);
    refused(
        &app,
        &reheader(&ed_token, json!({ "alg": "EdDSA", "kid": "ec-1" })),
        &["`ec-1`", "wrong type", "Ed25519 key"],
    )
    .await;
    let rs = sign(&rsa, &plain_claims(&["ADMIN"]), false);
    refused(
        &app,
        &reheader(&rs, json!({ "alg": "RS256", "kid": "ed-1" })),
        &["`ed-1`", "wrong type"],
    )
    .await;
    // A key pinned to one algorithm (`alg` in the JWKS) refuses another of its family.
    refused(
        &app,
        &reheader(&rs, json!({ "alg": "RS384", "kid": "rsa-1" })),
        &["`rsa-1` is for `RS256` only"],
    )
    .await;
}

#[tokio::test]
async fn bad_asymmetric_tokens_are_refused_with_the_reason() {
    let provider = Provider::start(vec![rsa_signer("rsa-1").jwk], "max-age=3600").await;
    let app = keycloak_app(&provider, Duration::from_secs(60)).await;
    let rsa = rsa_signer("rsa-1");
    let good = keycloak_claims(&["VIEWER"], &["169"]);
    app.gql(&sign(&rsa, &good, true), ME, json!({})).await.ok();
    let with = |f: &dyn Fn(&mut Value)| {
        let mut c = good.clone();
        f(&mut c);
        sign(&rsa, &c, true)
    };
    let now = chrono::Utc::now().timestamp();
    refused(&app, &with(&|c| c["exp"] = json!(now - 3600)), &["expired"]).await;
    refused(
        &app,
        &with(&|c| c["nbf"] = json!(now + 3600)),
        &["not valid yet"],
    )
    .await;
    refused(
        &app,
        &with(&|c| c["iss"] = json!("https://evil.example")),
        &["issuer"],
    )
    .await;
    refused(&app, &with(&|c| c["aud"] = json!("other")), &["audience"]).await;
    refused(
        &app,
        &with(&|c| {
            c.as_object_mut().unwrap().remove("exp");
        }),
        &["`exp` claim is missing"],
    )
    .await;
    // Tampered payload (promoted to ADMIN) and tampered signature.
    let token = sign(&rsa, &good, true);
    let parts: Vec<&str> = token.split('.').collect();
    let promoted = URL_SAFE_NO_PAD.encode(keycloak_claims(&["ADMIN"], &[]).to_string());
    refused(
        &app,
        &format!("{}.{promoted}.{}", parts[0], parts[2]),
        &["signature"],
    )
    .await;
    refused(
        &app,
        &format!("{}.{}.AAAA{}", parts[0], parts[1], &parts[2][4..]),
        &["signature"],
    )
    .await;
    // alg: none, naming a known kid.
    let none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(json!({ "alg": "none", "kid": "rsa-1" }).to_string()),
        parts[1]
    );
    refused(&app, &none, &["algorithm `none` is not accepted"]).await;
    // The roles claim at the configured path in the wrong shape.
    refused(
        &app,
        &with(&|c| c["realm_access"]["roles"] = json!({ "ADMIN": true })),
        &["`realm_access.roles` claim"],
    )
    .await;
    // Roles where Keycloak does not put them are not read.
    refused(
        &app,
        &with(&|c| {
            c["realm_access"]["roles"] = json!(["offline_access"]);
            c["roles"] = json!(["ADMIN"]);
        }),
        &["no role this service knows"],
    )
    .await;
}

#[tokio::test]
async fn keycloak_tokens_are_read_at_the_configured_claim_paths() {
    let rsa = rsa_signer("kc-rsa");
    let provider = Provider::start(vec![rsa.jwk.clone()], "max-age=3600").await;
    let app = keycloak_app(&provider, Duration::from_secs(60)).await;
    let r = app
        .gql(
            &sign(&rsa, &keycloak_claims(&["UNIT_ADMIN"], &["169"]), true),
            ME,
            json!({}),
        )
        .await
        .ok();
    assert_eq!(r.at("me.roles"), &json!(["UNIT_ADMIN"]));
    assert_eq!(r.at("me.units"), &json!(["169"]));
    assert_eq!(r.at("me.clientId"), "cnscd-dashboard");
    assert_eq!(r.at("me.subject"), "f3c1a6a2-5a61-4d7b-9d0e-3b2f0c1d9e11");
    // Keycloak's own realm roles (offline_access, ...) are left out, as any unknown role.
}

#[tokio::test]
async fn a_key_rotated_in_at_the_provider_is_accepted_after_one_refetch_at_most_once_a_minute() {
    let (a, b, c) = (
        ed_signer("2026-a"),
        ec_signer("2026-b"),
        ed_signer("2026-c"),
    );
    let provider = Provider::start(vec![a.jwk.clone()], "max-age=3600").await;
    // The real interval: one minute.
    let app = keycloak_app(&provider, Duration::from_secs(60)).await;
    assert_eq!(provider.fetches(), 1, "fetched once at start");
    let claims = keycloak_claims(&["VIEWER"], &["169"]);
    for _ in 0..5 {
        app.gql(&sign(&a, &claims, true), ME, json!({})).await.ok();
    }
    assert_eq!(provider.fetches(), 1, "never fetched per request");
    // The provider rotates a new key in: the first token naming it triggers one refetch.
    provider.publish(b.jwk.clone());
    app.gql(&sign(&b, &claims, true), ME, json!({})).await.ok();
    assert_eq!(provider.fetches(), 2);
    app.gql(&sign(&b, &claims, true), ME, json!({})).await.ok();
    app.gql(&sign(&a, &claims, true), ME, json!({})).await.ok();
    assert_eq!(provider.fetches(), 2);
    // Another rotation within the minute: refused, and the provider is not asked again, not
    // even by a flood of made-up kids.
    provider.publish(c.jwk.clone());
    refused(
        &app,
        &sign(&c, &claims, true),
        &["`2026-c` is unknown", "refetched less than 1m ago"],
    )
    .await;
    for i in 0..20 {
        let mut fake = c.clone();
        fake.kid = format!("made-up-{i}");
        refused(&app, &sign(&fake, &claims, true), &["unknown"]).await;
    }
    assert_eq!(provider.fetches(), 2);
}

#[tokio::test]
async fn the_service_keeps_verifying_with_the_keys_it_has_while_the_provider_is_down() {
    let (a, b) = (rsa_signer("live-a"), ec_signer("live-b"));
    // `no-cache`: refreshed as often as the refetch interval allows (shortened here).
    let provider = Provider::start(vec![a.jwk.clone()], "no-cache").await;
    let app = keycloak_app(&provider, Duration::from_millis(20)).await;
    let claims = keycloak_claims(&["VIEWER"], &["169"]);
    app.gql(&sign(&a, &claims, true), ME, json!({})).await.ok();
    provider.up.store(false, Ordering::SeqCst);
    let down_at = provider.fetches();
    // The background refresh fails again and again...
    eventually(async || provider.fetches() >= down_at + 3).await;
    // ... and tokens signed by the keys held are still accepted.
    app.gql(&sign(&a, &claims, true), ME, json!({})).await.ok();
    // A new kid cannot be fetched: refused, saying why.
    provider.publish(b.jwk.clone());
    refused(
        &app,
        &sign(&b, &claims, true),
        &["`live-b` is unknown", "could not be fetched"],
    )
    .await;
    app.gql(&sign(&a, &claims, true), ME, json!({})).await.ok();
    // The provider is back: the background refresh picks the new key up.
    provider.up.store(true, Ordering::SeqCst);
    let token = sign(&b, &claims, true);
    eventually(async || app.gql(&token, ME, json!({})).await.status == 200).await;
}

#[tokio::test]
async fn a_provider_down_at_start_does_not_stop_the_service() {
    let a = ed_signer("late");
    let provider = Provider::start(vec![a.jwk.clone()], "max-age=3600").await;
    provider.up.store(false, Ordering::SeqCst);
    let app = keycloak_app(&provider, Duration::from_millis(20)).await;
    let token = sign(&a, &keycloak_claims(&["VIEWER"], &["169"]), true);
    refused(&app, &token, &["unknown", "(known: none)"]).await;
    provider.up.store(true, Ordering::SeqCst);
    eventually(async || app.gql(&token, ME, json!({})).await.status == 200).await;
}

#[tokio::test]
async fn bad_key_configuration_stops_the_start_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let check = async |content: Option<&str>, url: Option<&str>, roles: &str, expect: &str| {
        let path = dir.path().join("keys");
        if let Some(c) = content {
            std::fs::write(&path, c).unwrap();
        }
        let mut s = cnscd_api::config::Settings::for_tests("sqlite::memory:", SECRET);
        s.jwt_secret = None;
        s.jwt_public_keys = content.map(|_| path.display().to_string());
        s.jwks_url = url.map(str::to_owned);
        s.jwt_roles_claim = roles.into();
        let err = match cnscd_api::startup::verifier(&s, false).await {
            Ok(_) => String::new(),
            Err(e) => format!("{e:#}"),
        };
        assert!(err.contains(expect), "`{err}` should mention `{expect}`");
    };
    let ec = ec_signer("x");
    let private = {
        use p256::pkcs8::{EncodePrivateKey, LineEnding};
        p256::SecretKey::from_slice(&random32())
            .unwrap()
            .to_pkcs8_pem(LineEnding::LF)
            .unwrap()
            .to_string()
    };
    check(Some(&private), None, "roles", "private key").await;
    check(Some("hello"), None, "roles", "no PEM block").await;
    check(Some("{\"kid\": 1}"), None, "roles", "no `keys` array").await;
    check(
        Some(&ec.public_pem),
        None,
        "realm_access..roles",
        "CNSCD_JWT_ROLES_CLAIM",
    )
    .await;
    check(None, Some("ftp://sso/certs"), "roles", "https://").await;
    check(None, Some("not a url"), "roles", "not a URL").await;
    check(None, None, "roles", "no way to verify tokens").await;
    // A missing file.
    let mut s = cnscd_api::config::Settings::for_tests("sqlite::memory:", SECRET);
    s.jwt_public_keys = Some("/nonexistent/keys.pem".into());
    let err = cnscd_api::startup::verifier(&s, false)
        .await
        .err()
        .map(|e| format!("{e:#}"))
        .unwrap_or_default();
    assert!(err.contains("/nonexistent/keys.pem"), "{err}");
}

#[tokio::test]
async fn a_pem_file_and_a_jwks_url_together_still_refetch_for_a_new_kid() {
    let pem = ec_signer("local");
    let (a, b) = (ed_signer("idp-a"), rsa_signer("idp-b"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.pem");
    std::fs::write(&path, &pem.public_pem).unwrap();
    let path = path.display().to_string();
    let provider = Provider::start(vec![a.jwk.clone()], "max-age=3600").await;
    let url = provider.url.clone();
    let app = spawn_app_with(move |s| {
        s.jwt_public_keys = Some(path);
        s.jwks_url = Some(url);
    })
    .await;
    let claims = plain_claims(&["VIEWER"]);
    // HS256 (the secret), the PEM key, the provider's key.
    app.gql(&token(&["VIEWER"], &["169"], &[]), ME, json!({}))
        .await
        .ok();
    app.gql(&sign(&pem, &claims, false), ME, json!({}))
        .await
        .ok();
    app.gql(&sign(&a, &claims, true), ME, json!({})).await.ok();
    assert_eq!(provider.fetches(), 1);
    // A kid rotated in at the provider is fetched, though the PEM key (no kid) could be tried.
    provider.publish(b.jwk.clone());
    app.gql(&sign(&b, &claims, true), ME, json!({})).await.ok();
    assert_eq!(provider.fetches(), 2);
}

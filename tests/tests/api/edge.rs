//! The edge (issue 15): nothing a stranger sends takes the service down or grows it without
//! bound. Deep nesting at every entrance, with and without a token; the token before the body;
//! metrics labels and log fields from closed sets. (The socket's own bounds are in
//! `subscriptions.rs`.)
use cnscd_api::graphql::nesting::MAX_NESTING;
use cnscd_tests::*;
use serde_json::{Value, json};

fn viewer() -> String {
    token(&["VIEWER"], &["169"], &[])
}

/// A list value nested `n` deep, and an object value nested `n` deep.
fn deep_values(n: usize) -> [String; 2] {
    [
        format!("{}1{}", "[".repeat(n), "]".repeat(n)),
        format!("{}1{}", "{a:".repeat(n), "}".repeat(n)),
    ]
}

/// A JSON text nested `n` deep.
fn deep_json(n: usize) -> String {
    format!("{}1{}", "{\"a\":".repeat(n), "}".repeat(n))
}

/// The depths every entrance is tried at: ten times the bound, and the thousands that took the
/// process down before it (in a URL, as many as a URL holds).
fn depths() -> [(usize, usize); 2] {
    [(10 * MAX_NESTING, 10 * MAX_NESTING), (2_000, 20_000)]
}

/// The status and body of a response.
async fn answer(r: reqwest::RequestBuilder) -> (u16, Value) {
    let r = r
        .send()
        .await
        .unwrap_or_else(|e| panic!("no answer: {:?}", e.without_url()));
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// With a token: 400 `QUERY_TOO_COMPLEX` naming the bound. Without: 401, nothing else read.
fn assert_refused(what: &str, with_token: bool, (status, body): (u16, Value)) {
    let code = &body["errors"][0]["extensions"]["code"];
    if with_token {
        assert_eq!(status, 400, "{what}: {body}");
        assert_eq!(code, "QUERY_TOO_COMPLEX", "{what}: {body}");
        let message = body["errors"][0]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(&format!("deeper than {MAX_NESTING} levels")),
            "{what}: {body}"
        );
    } else {
        assert_eq!(status, 401, "{what}: {body}");
        assert_eq!(code, "UNAUTHENTICATED", "{what}: {body}");
    }
}

/// The server still answers: health, and a real query.
async fn still_answers(app: &TestApp) {
    let r = app
        .client
        .get(format!("{}/healthz", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    app.gql(&viewer(), "{ me { subject } }", json!({}))
        .await
        .ok();
}

#[tokio::test]
async fn deep_nesting_is_refused_at_every_http_entrance_before_it_is_parsed() {
    let app = spawn_app().await;
    let url = format!("{}/graphql", app.address);
    let viewer = viewer();
    for (in_url, in_body) in depths() {
        for (value, body_value) in deep_values(in_url).into_iter().zip(deep_values(in_body)) {
            let doc = format!("{{a(b:{value})}}");
            let body_doc = format!("{{a(b:{body_value})}}");
            for with_token in [false, true] {
                let auth = |r: reqwest::RequestBuilder| {
                    if with_token {
                        r.bearer_auth(&viewer)
                    } else {
                        r
                    }
                };
                let n = in_url;
                let what = format!("GET {n} deep, token {with_token}");
                let r = auth(app.client.get(&url).query(&[("query", &doc)]));
                assert_refused(&what, with_token, answer(r).await);
                let what = format!("GET variables {n} deep, token {with_token}");
                let r = auth(app.client.get(&url).query(&[
                    ("query", "query($v: String) { me { subject } }"),
                    ("variables", &format!("{{\"v\": {}}}", deep_json(n))),
                ]));
                assert_refused(&what, with_token, answer(r).await);
                let n = in_body;
                let what = format!("POST query {n} deep, token {with_token}");
                let r = auth(app.client.post(&url).json(&json!({ "query": body_doc })));
                assert_refused(&what, with_token, answer(r).await);
                let what = format!("POST variables {n} deep, token {with_token}");
                let body = format!(
                    "{{\"query\": \"{{ me {{ subject }} }}\", \"variables\": {}}}",
                    deep_json(n)
                );
                let r = auth(
                    app.client
                        .post(&url)
                        .header("Content-Type", "application/json")
                        .body(body),
                );
                assert_refused(&what, with_token, answer(r).await);
                let what = format!("POST application/graphql {n} deep, token {with_token}");
                let r = auth(
                    app.client
                        .post(&url)
                        .header("Content-Type", "application/graphql")
                        .body(body_doc.clone()),
                );
                assert_refused(&what, with_token, answer(r).await);
                // The CSV export parses no document: nested text in a parameter is a bad code.
                let r = auth(
                    app.client
                        .get(format!("{}/exports/indicators.csv", app.address))
                        .query(&[
                            ("codes", value.as_str()),
                            ("unitCodes", value.as_str()),
                            ("from", "2024-01-01"),
                            ("to", "2024-12-31"),
                        ]),
                );
                let (status, body) = answer(r).await;
                let expected = if with_token { [400, 403] } else { [401, 401] };
                assert!(
                    expected.contains(&status),
                    "export {n} deep, token {with_token}: {status} {body}"
                );
            }
        }
    }
    still_answers(&app).await;
}

#[tokio::test]
async fn nesting_within_the_bound_still_runs() {
    let app = spawn_app().await;
    // 20 levels of lists in a variable of a real argument: parsed and validated as usual.
    let list = format!("{}\"169\"{}", "[".repeat(20), "]".repeat(20));
    let r = app
        .gql(
            &viewer(),
            &format!(
                "{{ indicators(codes: [\"CNS02\"], unitCodes: {list}, from: \"2024-01-01\", to: \"2024-12-31\") {{ value }} }}"
            ),
            json!({}),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.error_codes().iter().all(|c| c == "VALIDATION"),
        "{}",
        r.body
    );
}

#[tokio::test]
async fn the_token_is_checked_before_the_body_is_read() {
    let app = spawn_app().await;
    let url = format!("{}/graphql", app.address);
    // A body that is not JSON, and one over the size bound: without a token both are a 401
    // (the body was never looked at); with one, what is wrong with the body.
    for (body, with_token_status) in [
        ("{ not json".to_owned(), 400),
        ("x".repeat(cnscd_api::http::MAX_BODY + 1), 413),
    ] {
        let (status, r) = answer(
            app.client
                .post(&url)
                .header("Content-Type", "application/json")
                .body(body.clone()),
        )
        .await;
        assert_eq!(status, 401, "{r}");
        assert_eq!(r["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
        let (status, r) = answer(
            app.client
                .post(&url)
                .bearer_auth(viewer())
                .header("Content-Type", "application/json")
                .body(body),
        )
        .await;
        assert_eq!(status, with_token_status, "{r}");
    }
    // GET parses nothing before the token either: a document that does not parse is a 401.
    let (status, r) = answer(app.client.get(&url).query(&[("query", "{ me { ")])).await;
    assert_eq!(status, 401, "{r}");

    // A REST endpoint's body likewise (problem documents: the code at the top).
    let saved = app
        .gql(
            &admin(),
            "mutation { saveRestEndpoint(input: {name: \"me\", method: POST, document: \"{ me { subject } }\"}) { userErrors { message } } }",
            json!({}),
        )
        .await
        .ok();
    assert_eq!(saved.at("saveRestEndpoint.userErrors"), &json!([]));
    let rest = format!("{}/api/rest/me", app.address);
    for (body, with_token_status) in [
        ("{ not json".to_owned(), 400),
        ("x".repeat(cnscd_api::http::MAX_BODY + 1), 413),
    ] {
        let (status, r) = answer(app.client.post(&rest).body(body.clone())).await;
        assert_eq!(
            (status, &r["code"]),
            (401, &json!("UNAUTHENTICATED")),
            "{r}"
        );
        let (status, r) = answer(app.client.post(&rest).bearer_auth(viewer()).body(body)).await;
        assert_eq!(status, with_token_status, "{r}");
    }
}

/// The whole `/metrics` page.
async fn scrape(app: &TestApp) -> String {
    app.client
        .get(format!("{}/metrics", app.address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test]
async fn metrics_labels_come_from_closed_sets_whatever_strangers_send() {
    let app = spawn_app().await;
    let marker = uuid::Uuid::new_v4().simple().to_string()[..8].to_uppercase();
    // Invented methods, each 1,000 characters.
    for i in 0..50 {
        let method = format!("X{marker}{i}{}", "M".repeat(990));
        let r = app
            .client
            .request(
                reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
                format!("{}/healthz", app.address),
            )
            .send()
            .await
            .unwrap();
        assert!(r.status().as_u16() < 500);
    }
    // Operation names without a token, named like personal data.
    for i in 0..50 {
        let name = format!("Phone{marker}0912345{i:03}");
        let r = app
            .client
            .post(format!("{}/graphql", app.address))
            .json(&json!({ "query": format!("query {name} {{ me {{ subject }} }}"), "operationName": name }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
    }
    // REST endpoint names, unknown, with and without a token: the label is the route.
    for i in 0..20 {
        let url = format!("{}/api/rest/phone{marker}0912{i:03}", app.address);
        let r = app.client.get(&url).send().await.unwrap();
        assert_eq!(r.status(), 401);
        let r = app
            .client
            .get(&url)
            .bearer_auth(viewer())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404);
    }
    // With a token, a name holding a phone number is not a label either.
    let name = format!("Phone{marker}0912345678");
    app.gql(
        &viewer(),
        &format!("query {name} {{ me {{ subject }} }}"),
        json!({}),
    )
    .await
    .ok();
    // A long request id is replaced by one of the service's own.
    let r = app
        .client
        .get(format!("{}/healthz", app.address))
        .header("x-request-id", format!("{marker}{}", "r".repeat(500)))
        .send()
        .await
        .unwrap();
    let id = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert!(id.len() <= 64 && !id.contains(&marker), "{id}");

    let page = scrape(&app).await;
    assert!(
        !page.contains(&marker),
        "a label carries what a caller sent: {}",
        page.lines()
            .filter(|l| l.contains(&marker))
            .take(3)
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        page.contains("method=\"other\""),
        "invented methods are counted as `other`"
    );
    assert!(page.contains("operation=\"unauthenticated\""));
}

#[tokio::test]
async fn a_request_head_sent_too_slowly_loses_its_connection() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app =
        spawn_app_with(|s| s.header_read_timeout = std::time::Duration::from_millis(300)).await;
    let address = app.address.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    // Half a request head, and then nothing: closed once the timeout passes.
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(std::time::Duration::from_secs(20), stream.read(&mut buf))
        .await
        .expect("the connection is still open");
    assert!(
        matches!(read, Ok(0) | Err(_)) || buf.starts_with(b"HTTP/1.1 408"),
        "{read:?} {:?}",
        String::from_utf8_lossy(&buf)
    );
    // A whole request on a new connection is served as ever.
    still_answers(&app).await;
}

//! Operations: `/metrics` in the Prometheus text format, the pages and assets served by the
//! binary itself, and readiness that follows the database (through a TCP proxy the test opens
//! and closes) without a restart.
use cnscd_tests::*;
use serde_json::json;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::task::JoinHandle;

async fn scrape(app: &TestApp) -> String {
    let r = app
        .client
        .get(format!("{}/metrics", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let media = r.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(
        media.starts_with("text/plain; version=0.0.4"),
        "Prometheus text format, got {media}"
    );
    r.text().await.unwrap()
}

/// The sum of the samples whose series starts with `series` (`name{labels` without the
/// closing brace matches every series with those first labels); 0 when there is none.
fn sample(body: &str, series: &str) -> f64 {
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' '))
        .filter(|(s, _)| {
            *s == series
                || s.strip_prefix(series)
                    .is_some_and(|rest| rest.starts_with(',') || rest.starts_with('{'))
        })
        .map(|(_, v)| v.parse::<f64>().unwrap())
        .sum()
}

#[tokio::test]
async fn metrics_answer_in_prometheus_text_and_move_after_requests() {
    let app = spawn_app().await;
    let before = scrape(&app).await;
    // Every sample line is `name{labels} value`; every metric has its TYPE.
    for line in before
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let (series, value) = line.rsplit_once(' ').unwrap();
        assert!(value.parse::<f64>().is_ok(), "not a sample: {line}");
        let name = series.split('{').next().unwrap();
        assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "{line}"
        );
    }
    let ok = "cnscd_graphql_requests_total{operation=\"MetricsProbe\",outcome=\"ok\"}";
    // A request without a valid token is counted without the name it gave.
    let refused =
        "cnscd_graphql_requests_total{operation=\"unauthenticated\",outcome=\"unauthenticated\"}";
    let invalid = "cnscd_graphql_requests_total{operation=\"MetricsProbeBad\",outcome=\"invalid\"}";

    app.gql(&admin(), "query MetricsProbe { me { subject } }", json!({}))
        .await
        .ok();
    let r = app
        .client
        .post(format!("{}/graphql", app.address))
        .json(&json!({ "query": "query MetricsProbeNoToken { me { subject } }", "operationName": "MetricsProbeNoToken" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = app
        .gql(&admin(), "query MetricsProbeBad { noSuchField }", json!({}))
        .await;
    assert_eq!(r.status, 400);
    // Intake and the indicator store.
    let team = app
        .create_team("05677-01", "Tổ Metrics", "2024-01-01")
        .await;
    let key = uuid::Uuid::new_v4().to_string();
    let submit = "mutation($i: SubmitActivityInput!) { submitActivity(input: $i) { replayed userErrors { code } } }";
    let input = json!({ "i": { "idempotencyKey": key, "teamId": team, "kind": "DOOR_TO_DOOR", "occurredOn": "2024-03-01", "title": "Cài VNeID" } });
    let created = sample(
        &before,
        "cnscd_activities_submitted_total{result=\"created\"}",
    );
    let replayed = sample(
        &before,
        "cnscd_activities_submitted_total{result=\"replayed\"}",
    );
    let rejected = sample(
        &before,
        "cnscd_activities_submitted_total{result=\"rejected\"}",
    );
    assert_eq!(
        app.gql(&admin(), submit, input.clone())
            .await
            .ok()
            .at("submitActivity.replayed"),
        false
    );
    assert_eq!(
        app.gql(&admin(), submit, input)
            .await
            .ok()
            .at("submitActivity.replayed"),
        true
    );
    let bad = json!({ "i": { "idempotencyKey": uuid::Uuid::new_v4().to_string(), "teamId": team, "kind": "NO_SUCH_KIND", "occurredOn": "2024-03-01", "title": "x" } });
    assert!(
        !app.gql(&admin(), submit, bad)
            .await
            .ok()
            .user_error_codes("submitActivity")
            .is_empty()
    );
    let store = sample(&before, "cnscd_indicator_store_requests_total");
    app.gql(
        &admin(),
        "{ indicators(codes: [\"CNS02\"], unitCodes: [\"169\"], from: \"2024-01-01\", to: \"2024-12-31\", granularity: YEAR) { value } }",
        json!({}),
    )
    .await
    .ok();
    // Whatever the facade records is published, the rate limiter's counter among them.
    let limited = sample(&before, "cnscd_rate_limited_total");
    metrics::counter!("cnscd_rate_limited_total").increment(1);

    let after = scrape(&app).await;
    assert!(sample(&after, ok) >= sample(&before, ok) + 1.0, "{after}");
    assert!(sample(&after, refused) >= sample(&before, refused) + 1.0);
    assert!(sample(&after, invalid) >= sample(&before, invalid) + 1.0);
    let count =
        "cnscd_graphql_request_duration_seconds_count{operation=\"MetricsProbe\",outcome=\"ok\"}";
    assert!(sample(&after, count) >= sample(&before, count) + 1.0);
    assert!(
        after.contains("# TYPE cnscd_graphql_request_duration_seconds histogram")
            && after.contains(
                "cnscd_graphql_request_duration_seconds_bucket{operation=\"MetricsProbe\",outcome=\"ok\",le=\"+Inf\"}"
            ),
        "latency is a histogram with buckets"
    );
    assert!(
        sample(
            &after,
            "cnscd_http_requests_total{path=\"/graphql\",method=\"POST\""
        ) >= sample(
            &before,
            "cnscd_http_requests_total{path=\"/graphql\",method=\"POST\""
        ) + 3.0
    );
    assert!(sample(&after, "cnscd_db_pool_connections{state=\"max\"}") >= 1.0);
    assert!(after.contains("cnscd_db_pool_connections{state=\"in_use\"}"));
    assert!(after.contains("cnscd_db_pool_connections{state=\"idle\"}"));
    assert!(
        sample(
            &after,
            "cnscd_activities_submitted_total{result=\"created\"}"
        ) >= created + 1.0
    );
    assert!(
        sample(
            &after,
            "cnscd_activities_submitted_total{result=\"replayed\"}"
        ) >= replayed + 1.0
    );
    assert!(
        sample(
            &after,
            "cnscd_activities_submitted_total{result=\"rejected\"}"
        ) >= rejected + 1.0
    );
    assert!(sample(&after, "cnscd_indicator_store_requests_total") >= store + 1.0);
    assert!(sample(&after, "cnscd_rate_limited_total") >= limited + 1.0);
}

#[tokio::test]
async fn pages_and_their_assets_come_from_the_binary() {
    let app = spawn_app().await;
    for (path, accept) in [("/graphql", "text/html"), ("/dashboard", "text/html")] {
        let r = app
            .client
            .get(format!("{}{path}", app.address))
            .header("Accept", accept)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let csp = r.headers()["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("script-src 'self'"), "{csp}");
        let html = r.text().await.unwrap();
        assert!(
            !html.contains("//cdn") && !html.contains("https://"),
            "{path}: {html}"
        );
        assert!(html.contains("name=\"token\""), "{path} has a token field");
        // Every script and style the page names is served here, with its media type.
        let refs: Vec<&str> = html
            .split(['"', '\''])
            .filter(|s| s.starts_with("/assets/"))
            .collect();
        assert!(refs.len() >= 2, "{path}: {refs:?}");
        for asset in refs {
            let r = app
                .client
                .get(format!("{}{asset}", app.address))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "{asset}");
            let media = r.headers()["content-type"].to_str().unwrap().to_owned();
            let want = if asset.ends_with(".js") {
                "text/javascript"
            } else if asset.ends_with(".css") {
                "text/css"
            } else {
                ""
            };
            assert!(media.starts_with(want), "{asset}: {media}");
            assert!(!r.bytes().await.unwrap().is_empty());
        }
    }
    // The licences of what is vendored are served beside it, with the pinned versions.
    let manifest: serde_json::Value = app
        .client
        .get(format!("{}/assets/MANIFEST.json", app.address))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let packages = manifest["packages"].as_array().unwrap();
    for p in packages {
        let licence = format!(
            "{}/assets/{}.LICENSE",
            app.address,
            p["name"].as_str().unwrap()
        );
        let text = app
            .client
            .get(licence)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(text.contains("MIT License"), "{p}");
    }
    assert!(packages.iter().any(|p| p["name"] == "graphiql"));
    let r = app
        .client
        .get(format!("{}/assets/..%2Fsecret", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert!(r.text().await.unwrap().contains("graphiql.min.js"));
}

/// A TCP forwarder to the database that the test can close (the port stops answering and
/// every forwarded connection is cut) and open again on the same port.
struct Proxy {
    addr: SocketAddr,
    target: SocketAddr,
    accept: Option<JoinHandle<()>>,
    conns: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Proxy {
    async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut proxy = Self {
            addr: listener.local_addr().unwrap(),
            target,
            accept: None,
            conns: Arc::default(),
        };
        proxy.serve(listener);
        proxy
    }

    fn serve(&mut self, listener: TcpListener) {
        let (target, conns) = (self.target, self.conns.clone());
        self.accept = Some(tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let task = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                conns.lock().unwrap().push(task);
            }
        }));
    }

    fn close(&mut self) {
        if let Some(accept) = self.accept.take() {
            accept.abort();
        }
        for task in self.conns.lock().unwrap().drain(..) {
            task.abort();
        }
    }

    async fn open(&mut self) {
        // The aborted accept task releases the port once the runtime has dropped it.
        let deadline = Instant::now() + Duration::from_secs(5);
        let listener = loop {
            let socket = TcpSocket::new_v4().unwrap();
            socket.set_reuseaddr(true).unwrap();
            match socket.bind(self.addr).and_then(|()| socket.listen(64)) {
                Ok(listener) => break listener,
                Err(e) if Instant::now() > deadline => panic!("cannot reopen {}: {e}", self.addr),
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        };
        self.serve(listener);
    }
}

async fn ready(client: &reqwest::Client, address: &str) -> u16 {
    client
        .get(format!("{address}/readyz"))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Polls `/readyz` every 20 ms until it answers `want`, for at most 20 s; the answer seen.
async fn wait_ready(client: &reqwest::Client, address: &str, want: u16) -> u16 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got = ready(client, address).await;
        if got == want || Instant::now() > deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn readiness_follows_the_database_and_requests_fail_fast_while_it_is_away() {
    let test_db = TestDb::new().await;
    if !test_db.is_postgres() {
        eprintln!(
            "skipped on SQLite: the database is a file; run with CNSCD_TEST_DATABASE=postgres://…"
        );
        return;
    }
    cnscd_api::startup::prepare_database(&test_db.url)
        .await
        .unwrap();
    let mut url = reqwest::Url::parse(&test_db.url).unwrap();
    let target = tokio::net::lookup_host(format!(
        "{}:{}",
        url.host_str().unwrap(),
        url.port().unwrap_or(5432)
    ))
    .await
    .unwrap()
    .next()
    .unwrap();
    let mut proxy = Proxy::start(target).await;
    url.set_host(Some("127.0.0.1")).unwrap();
    url.set_port(Some(proxy.addr.port())).unwrap();
    let acquire_timeout = Duration::from_millis(1500);
    let mut settings = cnscd_api::config::Settings::for_tests(url.as_str(), SECRET);
    settings.db_acquire_timeout = acquire_timeout;
    let db = cnscd_api::db::connect_with(url.as_str(), None, acquire_timeout)
        .await
        .unwrap();
    let verifier = cnscd_api::auth::TokenVerifier::hs256(SECRET, None, None).unwrap();
    let app = cnscd_api::startup::Application::with_database(&settings, verifier, db)
        .await
        .unwrap();
    let address = format!("http://{}", app.address());
    tokio::spawn(app.run_until_stopped());
    let client = reqwest::Client::new();
    let query = json!({ "query": "{ teams(first: 1) { totalCount } }" });
    assert_eq!(ready(&client, &address).await, 200);

    proxy.close();
    assert_eq!(wait_ready(&client, &address, 503).await, 503);
    let started = Instant::now();
    let r = client
        .post(format!("{address}/graphql"))
        .bearer_auth(admin())
        .json(&query)
        .send()
        .await
        .unwrap();
    let waited = started.elapsed();
    assert_eq!(r.status(), 503, "nothing could be read: 503 for a retry");
    assert_eq!(r.headers()["retry-after"], "5");
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(
        waited < acquire_timeout * 3,
        "a request while the database is away fails within the acquire timeout, took {waited:?}"
    );
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "INTERNAL",
        "{body}"
    );
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("the database is unavailable"),
        "{body}"
    );
    let r = client
        .get(format!("{address}/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(r.text().await.unwrap(), "database unavailable");

    proxy.open().await;
    assert_eq!(wait_ready(&client, &address, 200).await, 200);
    let r = client
        .post(format!("{address}/graphql"))
        .bearer_auth(admin())
        .json(&query)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["data"]["teams"]["totalCount"], 0, "{body}");
    proxy.close();
}

/// Every variable the service reads (`env = "…"` in its sources) and every one the contract
/// names is in `.env.example`.
#[test]
fn env_example_lists_every_variable() {
    let root = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    let example = std::fs::read_to_string(root.join(".env.example")).unwrap();
    let listed = |name: &str| {
        example
            .lines()
            .any(|l| l.trim_start_matches('#').starts_with(&format!("{name}=")))
    };
    let mut read = Vec::new();
    let mut dirs = vec![root.join("api/src")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                for part in text.split("env = \"").skip(1) {
                    read.push(part.split('"').next().unwrap().to_owned());
                }
            }
        }
    }
    assert!(read.iter().any(|v| v == "CNSCD_DATABASE_URL"), "{read:?}");
    let contract = [
        "CNSCD_DATABASE_URL",
        "CNSCD_LISTEN",
        "CNSCD_JWT_SECRET",
        "CNSCD_JWT_PUBLIC_KEYS",
        "CNSCD_JWKS_URL",
        "CNSCD_JWT_ISSUER",
        "CNSCD_JWT_AUDIENCE",
        "CNSCD_JWT_ROLES_CLAIM",
        "CNSCD_JWT_UNITS_CLAIM",
        "CNSCD_JWT_TEAMS_CLAIM",
        "CNSCD_JWT_CLIENT_CLAIM",
        "CNSCD_RATE_LIMIT_PER_MINUTE",
        "CNSCD_LOG",
        "CNSCD_LOG_FORMAT",
    ];
    let missing: Vec<&str> = read
        .iter()
        .map(String::as_str)
        .chain(contract)
        .filter(|v| !listed(v))
        .collect();
    assert!(missing.is_empty(), ".env.example lacks {missing:?}");
}

/// docker compose starts with any one way to verify tokens: none of them is required by the
/// compose file, each is passed through (empty when unset, which the service reads as unset),
/// and the keys' folder is mounted.
#[test]
fn compose_starts_with_the_secret_or_the_identity_providers_keys() {
    let root = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    let compose = std::fs::read_to_string(root.join("docker-compose.yml")).unwrap();
    assert!(
        !compose.contains(":?"),
        "no variable may be required by the compose file"
    );
    for name in [
        "CNSCD_JWT_SECRET",
        "CNSCD_JWKS_URL",
        "CNSCD_JWT_PUBLIC_KEYS",
    ] {
        assert!(
            compose.contains(&format!("{name}: ${{{name}:-}}")),
            "{name} is passed through"
        );
    }
    assert!(compose.contains("./deploy/keys:/etc/cnscd/keys:ro"));
    assert!(root.join("deploy/keys/README.md").exists());
}

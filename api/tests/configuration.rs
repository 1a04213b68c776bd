//! Configuration as operators write it, through the real binary: an environment variable set
//! to the empty string (`NAME=` in an env file or a compose file) means the same as an unset
//! one, for every `CNSCD_*` variable; the service starts with an identity provider's keys and
//! no HS256 secret. On SQLite, or on PostgreSQL when `CNSCD_TEST_DATABASE` names a server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use sea_orm::ConnectionTrait;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A key pair made for this test only (`openssl genpkey -algorithm ed25519`).
const PRIVATE_KEY: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIAVx4EpwqlVPWP6P1D5xpgU/uqgPfCcW4rQnNLAdlx94
-----END PRIVATE KEY-----
";
const PUBLIC_KEY: &str = "-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEAeV/mRjwaLActUo7ySTmUnrxm4IkeGE7ZmWDXV6xDqg4=
-----END PUBLIC KEY-----
";

/// Every variable that takes a value and may be left out, set empty.
const EMPTY: &[&str] = &[
    "CNSCD_JWT_SECRET",
    "CNSCD_JWKS_URL",
    "CNSCD_JWT_ISSUER",
    "CNSCD_JWT_AUDIENCE",
    "CNSCD_JWT_ROLES_CLAIM",
    "CNSCD_JWT_UNITS_CLAIM",
    "CNSCD_JWT_TEAMS_CLAIM",
    "CNSCD_JWT_CLIENT_CLAIM",
    "CNSCD_RATE_LIMIT_PER_MINUTE",
    "CNSCD_RATE_LIMIT_PER_ROLE",
    "CNSCD_REQUEST_TIMEOUT",
    "CNSCD_DB_ACQUIRE_TIMEOUT",
    "CNSCD_HEADER_READ_TIMEOUT",
    "CNSCD_WS_MAX_UNAUTHENTICATED",
    "CNSCD_WS_MAX_SOCKETS_PER_CALLER",
    "CNSCD_WS_MAX_SUBSCRIPTIONS_PER_CALLER",
    "CNSCD_DATA_DIR",
    "CNSCD_LOG",
];

/// A database for the server: a temporary SQLite file, or a new PostgreSQL database (with
/// the statement that drops it).
async fn database(dir: &std::path::Path) -> (String, Option<String>) {
    let target = std::env::var("CNSCD_TEST_DATABASE").unwrap_or_default();
    if !target.starts_with("postgres") {
        return (
            format!("sqlite://{}?mode=rwc", dir.join("config.db").display()),
            None,
        );
    }
    let name = format!("cnscd_config_{}", uuid::Uuid::new_v4().simple());
    let admin = sea_orm::Database::connect(&target).await.unwrap();
    admin
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    let base = target.rsplit_once('/').map(|(b, _)| b).unwrap_or(&target);
    (
        format!("{base}/{name}"),
        Some(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")),
    )
}

/// The server as a child process, killed when dropped.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `cnscd serve` with `env` and returns it with its address, read from its log.
fn start(env: &[(&str, String)]) -> (Server, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cnscd"));
    cmd.arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let server = Server(child);
    let started = Instant::now();
    let mut log = Vec::new();
    for line in BufReader::new(stderr).lines() {
        let line = line.unwrap();
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
            && let Some(address) = v["fields"]["address"].as_str()
        {
            return (server, format!("http://{address}"));
        }
        log.push(line);
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "never listened"
        );
    }
    panic!("the server stopped before listening:\n{}", log.join("\n"));
}

/// Claims of a VIEWER of 169, valid for an hour.
fn claims() -> serde_json::Value {
    serde_json::json!({
        "sub": "config-test",
        "exp": chrono::Utc::now().timestamp() + 3600,
        "roles": ["VIEWER"],
        "units": ["169"],
    })
}

async fn me(address: &str, token: &str) -> u16 {
    reqwest::Client::new()
        .post(format!("{address}/graphql"))
        .bearer_auth(token)
        .json(&serde_json::json!({ "query": "{ me { subject } }" }))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn empty_variables_are_unset_and_keys_alone_verify_tokens() {
    let dir = tempfile_dir();
    let keys = dir.join("keys.pem");
    std::fs::write(&keys, PUBLIC_KEY).unwrap();
    let (url, drop_database) = database(&dir).await;
    let mut env: Vec<(&str, String)> = EMPTY.iter().map(|k| (*k, String::new())).collect();
    env.extend([
        ("CNSCD_DATABASE_URL", url),
        ("CNSCD_LISTEN", "127.0.0.1:0".to_owned()),
        ("CNSCD_JWT_PUBLIC_KEYS", keys.display().to_string()),
        ("CNSCD_LOG_FORMAT", "json".to_owned()),
    ]);
    let (server, address) = start(&env);
    let signed = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA),
        &claims(),
        &jsonwebtoken::EncodingKey::from_ed_pem(PRIVATE_KEY.as_bytes()).unwrap(),
    )
    .unwrap();
    // Keys alone verify tokens; the empty issuer and audience require nothing; the empty
    // rate limit is the default, not a parse error.
    assert_eq!(me(&address, &signed).await, 200);
    // And the empty secret set no secret: an HS256 token is refused, whatever its key.
    let hs = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims(),
        &jsonwebtoken::EncodingKey::from_secret(b"0123456789abcdef0123").unwrap(),
    )
    .unwrap();
    assert_eq!(me(&address, &hs).await, 401);
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
    if let Some(sql) = drop_database {
        let target = std::env::var("CNSCD_TEST_DATABASE").unwrap_or_default();
        let admin = sea_orm::Database::connect(&target).await.unwrap();
        admin.execute_unprepared(&sql).await.unwrap();
    }
}

/// A fresh temporary folder.
fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("cnscd-config-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

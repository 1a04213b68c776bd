//! Real GraphQL clients from npm against a server on the demo data: `web/clients-test.mjs`
//! runs Apollo Client over HTTP for queries with withheld fields (a key with `null` and an error
//! with its path), Apollo's persisted-query link over POST and GET (the hash alone, then the
//! text once, then the hash alone answered), and graphql-ws's client over `/graphql/ws` for the
//! live feed. This test
//! starts the server, runs the script, and submits an activity over HTTP once the script has
//! subscribed.
//!
//! Needs `node` and `web/node_modules` (`npm ci` in `web/`); `.ci/run` installs them. Without
//! them the test says what is missing and passes, except under `CI=true`, where it fails.
use cnscd_tests::*;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

fn missing(web: &Path) -> Vec<String> {
    let mut missing = Vec::new();
    if Command::new("node").arg("--version").output().is_err() {
        missing.push("node (apt-get install nodejs npm)".to_owned());
    }
    for package in ["@apollo/client", "graphql-ws", "ws", "graphql"] {
        if !web.join("node_modules").join(package).is_dir() {
            missing.push(format!(
                "{}/node_modules/{package} (npm ci in web/)",
                web.display()
            ));
        }
    }
    missing
}

async fn gql(address: &str, token: &str, query: &str, variables: Value) -> Value {
    reqwest::Client::new()
        .post(format!("{address}/graphql"))
        .bearer_auth(token)
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn apollo_client_and_graphql_ws_read_withheld_fields_as_null_on_the_demo_data() {
    let root = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    let web = root.join("web");
    let missing = missing(&web);
    if !missing.is_empty() {
        let msg = format!("the client test needs: {}", missing.join(", "));
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{msg}");
        eprintln!("skipped: {msg}");
        return;
    }

    let (_db, _, address) = spawn_demo_app().await;

    let viewer = token(&["VIEWER"], &["169"], &[]);
    let reporter = token(&["REPORTER"], &["169"], &[]);
    let teams = gql(
        &address,
        &admin(),
        "{ teams(first: 1) { nodes { id } } }",
        json!({}),
    )
    .await;
    let team = teams["data"]["teams"]["nodes"][0]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no team in the demo data: {teams}"))
        .to_owned();

    let mut child = Command::new("node")
        .arg(web.join("clients-test.mjs"))
        .current_dir(&web)
        .env("CNSCD_URL", &address)
        .env("CNSCD_VIEWER_TOKEN", &viewer)
        .env("CNSCD_REPORTER_TOKEN", &reporter)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The script's lines as they come (a thread reads them; the channel closes at its end).
    let (tx, mut lines) = tokio::sync::mpsc::unbounded_channel::<String>();
    let out = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut err = child.stderr.take().unwrap();
    let stderr = std::thread::spawn(move || {
        let mut s = String::new();
        err.read_to_string(&mut s).ok();
        s
    });
    let mut stdout = Vec::new();
    // The script prints "subscribed" once graphql-ws's connection is acknowledged, and exits
    // (after at most its own two minutes) otherwise.
    while let Some(line) = lines.recv().await {
        stdout.push(line.clone());
        if line == "subscribed" {
            break;
        }
    }
    // The subscribe message may reach the server a moment after the acknowledgement: submit
    // until the script has its event (each a new activity, at most 40).
    let mut submitted = Vec::new();
    'submit: for attempt in 0..40 {
        if stdout.last().is_none_or(|l| l != "subscribed") {
            break;
        }
        let r = gql(
            &address,
            &reporter,
            "mutation($i: SubmitActivityInput!) { submitActivity(input: $i) { activity { id } userErrors { code message } } }",
            json!({ "i": { "idempotencyKey": format!("clients-test-{attempt}"), "teamId": team,
                "kind": "HELP_DESK", "occurredOn": "2025-06-16", "title": "Hỗ trợ cài VNeID" } }),
        )
        .await;
        let id = r["data"]["submitActivity"]["activity"]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("the reporter's submission was refused: {r}"))
            .to_owned();
        submitted.push(id);
        while let Ok(line) = tokio::time::timeout(Duration::from_millis(500), lines.recv()).await {
            let Some(line) = line else {
                break 'submit;
            };
            let done = line.starts_with("event ");
            stdout.push(line);
            if done {
                break 'submit;
            }
        }
    }
    while let Some(line) = lines.recv().await {
        stdout.push(line);
    }
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    let stderr = stderr.join().unwrap_or_default();
    let stdout = stdout.join("\n");
    println!("{stdout}");
    assert!(
        status.success(),
        "the client checks failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("client checks passed"), "{stdout}");
    // The event is one of the activities submitted here.
    let event = stdout
        .lines()
        .find_map(|l| l.strip_prefix("event "))
        .unwrap_or_default();
    assert!(
        submitted.iter().any(|id| id == event),
        "event {event} is not among {submitted:?}"
    );
}

//! The pages in a real browser: `web/browser-test.mjs` drives headless Chromium (Debian's
//! `chromium`, through playwright-core from `web/node_modules`) against a server on the demo
//! data — GraphiQL with a token, the schema's documentation and a query; the dashboard's
//! numbers against the API, its languages, its CSV download — and saves screenshots under
//! `target/browser/`.
//!
//! Needs `node`, `web/node_modules` (`npm ci` in `web/`) and Chromium (`CHROMIUM`, default
//! `/usr/bin/chromium`); `.ci/run` installs them. Without them the test says what is missing
//! and passes, except under `CI=true`, where it fails.
use cnscd_tests::*;
use std::path::{Path, PathBuf};
use std::process::Command;

fn missing(web: &Path, chromium: &Path) -> Vec<String> {
    let mut missing = Vec::new();
    if Command::new("node").arg("--version").output().is_err() {
        missing.push("node (apt-get install nodejs npm)".to_owned());
    }
    if !web.join("node_modules/playwright-core").is_dir() {
        missing.push(format!(
            "{}/node_modules/playwright-core (npm ci in web/)",
            web.display()
        ));
    }
    if !chromium.exists() {
        missing.push(format!("{} (apt-get install chromium)", chromium.display()));
    }
    missing
}

#[tokio::test]
async fn graphiql_and_the_dashboard_work_in_headless_chromium_on_the_demo_data() {
    let root = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    let web = root.join("web");
    let chromium =
        PathBuf::from(std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()));
    let missing = missing(&web, &chromium);
    if !missing.is_empty() {
        let msg = format!("the browser test needs: {}", missing.join(", "));
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{msg}");
        eprintln!("skipped: {msg}");
        return;
    }

    let (_db, _, address) = spawn_demo_app().await;

    let shots = root.join("target/browser");
    std::fs::create_dir_all(&shots).unwrap();
    let viewer = token(&["VIEWER"], &["19"], &[]);
    let script = web.join("browser-test.mjs");
    let output = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(script)
            .current_dir(&web)
            .env("CNSCD_URL", &address)
            .env("CNSCD_TOKEN", viewer)
            .env("CNSCD_SCREENSHOTS", &shots)
            .env("CHROMIUM", &chromium)
            .output()
    })
    .await
    .unwrap()
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    assert!(
        output.status.success(),
        "the browser checks failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("browser checks passed"), "{stdout}");
    eprintln!(
        "dashboard screenshot: {}",
        root.join("target/browser/dashboard.png").display()
    );
}

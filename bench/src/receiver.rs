//! A webhook receiver for the crash run: it records every delivery (the Standard Webhooks
//! headers and the body) and answers 200, so the run can prove that every activity stored
//! through the kills reached the webhook, signed, with one `webhook-id` however often it came.
use anyhow::Context;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

/// One delivery as it arrived.
#[derive(Clone, Debug)]
pub struct Delivery {
    /// When it arrived.
    pub arrived: chrono::DateTime<chrono::Utc>,
    pub id: String,
    pub timestamp: i64,
    pub signature: String,
    pub body: String,
}

/// A receiver listening on loopback.
#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    got: Arc<Mutex<Vec<Delivery>>>,
}

impl Receiver {
    pub async fn start() -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/hook", listener.local_addr()?);
        let got: Arc<Mutex<Vec<Delivery>>> = Arc::default();
        let record = got.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
                let record = record.clone();
                async move {
                    let header = |n: &str| {
                        headers
                            .get(n)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_owned()
                    };
                    record
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(Delivery {
                            arrived: chrono::Utc::now(),
                            id: header("webhook-id"),
                            timestamp: header("webhook-timestamp").parse().unwrap_or_default(),
                            signature: header("webhook-signature"),
                            body,
                        });
                    axum::http::StatusCode::OK
                }
            }),
        );
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { url, got })
    }

    pub fn got(&self) -> Vec<Delivery> {
        self.got.lock().map(|g| g.clone()).unwrap_or_default()
    }
}

/// From each change's commit (the `timestamp` of its payload, the audit entry's time) to its
/// first arrival, sorted.
pub fn latencies(got: &[Delivery]) -> Vec<std::time::Duration> {
    let mut first: BTreeMap<String, std::time::Duration> = BTreeMap::new();
    for d in got {
        let body: serde_json::Value = serde_json::from_str(&d.body).unwrap_or_default();
        let Some(at) = body["timestamp"]
            .as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        else {
            continue;
        };
        let took = (d.arrived - at.with_timezone(&chrono::Utc))
            .to_std()
            .unwrap_or_default();
        let entry = body["data"]["auditEntryId"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        first
            .entry(entry)
            .and_modify(|t| *t = (*t).min(took))
            .or_insert(took);
    }
    let mut out: Vec<_> = first.into_values().collect();
    out.sort();
    out
}

/// Registers a webhook for the activities of `under` as `admin`; its secret.
pub async fn register(
    server: std::net::SocketAddr,
    admin: &str,
    url: &str,
    under: &str,
) -> anyhow::Result<String> {
    let body = serde_json::json!({
        "query": "mutation($i: CreateWebhookInput!) { createWebhook(input: $i) { webhook { secret } userErrors { message } } }",
        "variables": { "i": { "url": url, "events": ["ACTIVITY_SUBMITTED"], "under": under,
            "description": "cnscd-bench crash" } },
    });
    let answer: serde_json::Value = reqwest::Client::new()
        .post(format!("http://{server}/graphql"))
        .bearer_auth(admin)
        .json(&body)
        .send()
        .await?
        .json()
        .await?;
    answer["data"]["createWebhook"]["webhook"]["secret"]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("the webhook was not created: {answer}"))
}

/// What the deliveries of a run show, against the activities stored (by global id).
pub struct Report {
    /// Activities stored that no delivery named.
    pub missing: Vec<String>,
    /// Deliveries whose signature does not verify with the secret.
    pub unsigned: usize,
    /// Activities delivered under more than one `webhook-id`.
    pub split: Vec<String>,
    /// Deliveries beyond the first of an activity (at least once allows them).
    pub repeats: usize,
    pub received: usize,
}

pub fn report(got: &[Delivery], secret: &str, stored: &BTreeSet<String>) -> Report {
    let mut by_activity: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut copies: BTreeMap<String, usize> = BTreeMap::new();
    let mut unsigned = 0;
    for d in got {
        let expected = cnscd_api::webhooks::model::signature(secret, &d.id, d.timestamp, &d.body);
        if expected != d.signature {
            unsigned += 1;
        }
        let body: serde_json::Value = serde_json::from_str(&d.body).unwrap_or_default();
        if let Some(entity) = body["data"]["entityId"].as_str() {
            by_activity
                .entry(entity.to_owned())
                .or_default()
                .insert(d.id.clone());
            *copies.entry(entity.to_owned()).or_default() += 1;
        }
    }
    Report {
        missing: stored
            .iter()
            .filter(|a| !by_activity.contains_key(*a))
            .cloned()
            .collect(),
        unsigned,
        split: by_activity
            .iter()
            .filter(|(_, ids)| ids.len() > 1)
            .map(|(a, ids)| format!("{a}: {ids:?}"))
            .collect(),
        repeats: copies.values().map(|n| n.saturating_sub(1)).sum(),
        received: got.len(),
    }
}

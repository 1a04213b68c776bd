//! An activity as a client submits it, and the hash that tells a retry from a reuse of its
//! key: what intake checks and what the service takes, below both.
use chrono::NaiveDate;
use sha2::{Digest, Sha256};

/// One activity as submitted.
#[derive(Debug, Clone, serde::Serialize)]
pub struct NewActivity {
    #[serde(skip)]
    pub idempotency_key: String,
    pub team_id: i64,
    pub kind: String,
    pub occurred_on: NaiveDate,
    pub unit_code: Option<String>,
    pub title: String,
    pub description: Option<String>,
    pub participants: Option<i32>,
    pub households_reached: Option<i32>,
    pub outcomes: Vec<NewOutcome>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct NewOutcome {
    pub service: String,
    pub people: i32,
    pub households: Option<i32>,
}

pub fn request_hash(input: &NewActivity) -> String {
    let canonical = serde_json::to_string(input).unwrap_or_default();
    format!("{:x}", Sha256::digest(canonical.as_bytes()))
}

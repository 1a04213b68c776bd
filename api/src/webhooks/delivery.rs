//! The delivery loop every replica runs: it fans the outbox out to deliveries (one per webhook
//! whose owner may read the change, by the audit log's own rule) and sends the deliveries that
//! are due, each in a task of its own, so that a slow receiver holds up only its own.
//!
//! Rows are claimed so that replicas do not step on each other: on PostgreSQL with
//! `FOR UPDATE SKIP LOCKED`, and a claimed delivery is leased (its next attempt moved past the
//! send's timeout), so one a replica died holding is sent again once the lease ends. A
//! delivery is marked only after its receiver answered: at least once, never lost.
use super::model::{Event, Status, retry_delay, signature};
use super::service::{DeliveryRow, WebhookRow};
use crate::error::Result;
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, FromQueryResult, Value};
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How the loop sends.
#[derive(Clone, Debug)]
pub struct Rules {
    /// Whether webhooks may reach private addresses (`CNSCD_WEBHOOK_ALLOW_PRIVATE`).
    pub allow_private: bool,
    /// Longest one attempt may take (`CNSCD_WEBHOOK_TIMEOUT`).
    pub timeout: Duration,
    /// How long after its event a delivery is still tried (`CNSCD_WEBHOOK_RETRY_FOR`).
    pub retry_for: Duration,
    /// The wait after the first failure; the later ones are multiples of it
    /// (`CNSCD_WEBHOOK_FIRST_RETRY`).
    pub first_retry: Duration,
}

/// How often the loop looks for work when there was none (and no change on this replica woke
/// it: changes made through another replica wait for this).
const IDLE: Duration = Duration::from_millis(200);
/// How often it looks while no webhook exists (one made on this replica wakes it at once; one
/// made on another is noticed within this).
const QUIET: Duration = Duration::from_secs(5);
/// Most outbox entries fanned out, and deliveries claimed, at a time.
const BATCH: i64 = 200;
/// Most attempts in flight to one webhook: a slow receiver cannot take the loop's every send.
const PER_WEBHOOK: usize = 16;
/// Most of a receiver's answer read.
const MAX_ANSWER: usize = 64 * 1024;

/// Starts the loop on `db` (a pool of its own: the loop's statements neither wait for nor hold
/// up the requests' connections); it ends when `stop` turns true.
pub fn start(
    db: DatabaseConnection,
    rules: Rules,
    wake: Arc<tokio::sync::Notify>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Result<tokio::task::JoinHandle<()>> {
    let client = reqwest::Client::builder()
        .timeout(rules.timeout)
        .connect_timeout(rules.timeout)
        .dns_resolver(Arc::new(super::address::Resolver {
            allow_private: rules.allow_private,
        }))
        .redirect(super::address::redirects(rules.allow_private))
        .user_agent(concat!("cnscd-webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| crate::error::Error::Internal(format!("the webhook client: {e}")))?;
    let (outcomes, recorded) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(recorder(db.clone(), recorded));
    let sender = Sender {
        db,
        client,
        rules,
        in_flight: Arc::default(),
        outcomes,
    };
    Ok(tokio::spawn(async move {
        loop {
            let (busy, pause) = match sender.round().await {
                Ok(Round::Busy) => (true, IDLE),
                Ok(Round::Idle) => (false, IDLE),
                Ok(Round::NoWebhook) => (false, QUIET),
                Err(e) => {
                    tracing::warn!(error = %e.message(), "webhook delivery round failed");
                    (false, IDLE)
                }
            };
            if *stop.borrow() {
                break;
            }
            if !busy {
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    _ = wake.notified() => {}
                    _ = stop.changed() => break,
                }
            }
        }
    }))
}

/// What a round found.
enum Round {
    /// Work done: look again at once.
    Busy,
    /// Nothing to do.
    Idle,
    /// Not a webhook to deliver to.
    NoWebhook,
}

#[derive(Clone)]
struct Sender {
    db: DatabaseConnection,
    client: reqwest::Client,
    rules: Rules,
    /// Attempts in flight per webhook.
    in_flight: Arc<Mutex<HashMap<i64, usize>>>,
    /// Where attempts' outcomes go to be written, many at a time ([`recorder`]).
    outcomes: tokio::sync::mpsc::UnboundedSender<Outcome>,
}

/// What an attempt left a delivery as.
struct Outcome {
    id: i64,
    state: Status,
    attempts: i32,
    next: DateTime<Utc>,
    status: Option<i32>,
    error: Option<String>,
    finished: Option<DateTime<Utc>>,
}

/// Writes attempts' outcomes as they come, up to 200 in one statement: one write per delivery
/// would hold a busy webhook to what its database round trips allow. An outcome lost with the
/// process leaves its delivery leased, so it is sent again when the lease ends.
async fn recorder(
    db: DatabaseConnection,
    mut outcomes: tokio::sync::mpsc::UnboundedReceiver<Outcome>,
) {
    while let Some(first) = outcomes.recv().await {
        let mut batch = vec![first];
        while batch.len() < 200
            && let Ok(next) = outcomes.try_recv()
        {
            batch.push(next);
        }
        if let Err(e) = write_outcomes(&db, &batch).await {
            tracing::warn!(error = %e.message(), "webhook delivery outcomes not recorded");
        }
    }
}

async fn write_outcomes(db: &DatabaseConnection, batch: &[Outcome]) -> Result<()> {
    let rows = vec!["(?, ?, ?, ?, ?, ?, ?)"; batch.len()].join(", ");
    let mut values: Vec<Value> = Vec::with_capacity(batch.len() * 7);
    for o in batch {
        values.extend([
            o.id.into(),
            o.state.as_str().into(),
            o.attempts.into(),
            o.next.into(),
            o.status.into(),
            o.error.clone().into(),
            o.finished.into(),
        ]);
    }
    let txn = crate::db::begin_write(db).await?;
    txn.execute_raw(crate::db::stmt(
        db.get_database_backend(),
        &format!(
            "WITH v (id, status, attempts, next_attempt_at, last_status, last_error, \
             finished_at) AS (VALUES {rows}) UPDATE webhook_delivery SET status = v.status, \
             attempts = v.attempts, next_attempt_at = v.next_attempt_at, \
             last_status = v.last_status, last_error = v.last_error, \
             finished_at = v.finished_at FROM v WHERE webhook_delivery.id = v.id"
        ),
        values,
    ))
    .await?;
    txn.commit().await?;
    Ok(())
}

impl Sender {
    /// One round: the outbox fanned out, the due deliveries sent. Without any webhook, one
    /// statement.
    async fn round(&self) -> Result<Round> {
        let any = crate::db::count(&self.db, "SELECT COUNT(*) AS n FROM webhook", vec![]).await?;
        if any == 0 {
            metrics::gauge!("cnscd_webhook_queue_age_seconds").set(0.0);
            return Ok(Round::NoWebhook);
        }
        let fanned = fan_out(&self.db).await?;
        let claimed = self.claim(any).await?;
        let sent = claimed.len();
        for (delivery, webhook) in claimed {
            let sender = self.clone();
            tokio::spawn(async move {
                let webhook_id = webhook.id;
                if let Err(e) = sender.send(delivery, webhook).await {
                    tracing::warn!(error = %e.message(), "webhook delivery not recorded");
                }
                let mut in_flight = sender.in_flight.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(n) = in_flight.get_mut(&webhook_id) {
                    *n = n.saturating_sub(1);
                }
            });
        }
        queue_age(&self.db).await?;
        Ok(if fanned > 0 || sent > 0 {
            Round::Busy
        } else {
            Round::Idle
        })
    }

    /// Claims the due deliveries, leasing each past the send's timeout; those of a webhook
    /// with enough attempts in flight are left for a later round.
    async fn claim(&self, count: u64) -> Result<Vec<(DeliveryRow, WebhookRow)>> {
        // No more than the webhooks can take now: what is claimed and cannot go is put back.
        let in_flight: usize = self
            .in_flight
            .lock()
            .map(|m| m.values().sum())
            .unwrap_or_default();
        let room = (count as usize * PER_WEBHOOK).saturating_sub(in_flight);
        let limit = (room as i64).min(BATCH);
        if limit == 0 {
            return Ok(Vec::new());
        }
        let now = Utc::now();
        let lease = now + chrono::Duration::from_std(self.rules.timeout * 3).unwrap_or_default();
        let lock = match self.db.get_database_backend() {
            DbBackend::Postgres => " FOR UPDATE SKIP LOCKED",
            _ => "",
        };
        // Writes take the turn among the process's writers (on SQLite, rather than meet its
        // busy handler's sleeps while intake writes).
        let txn = crate::db::begin_write(&self.db).await?;
        let claimed = DeliveryRow::find_by_statement(crate::db::stmt(
            self.db.get_database_backend(),
            &format!(
                "UPDATE webhook_delivery SET next_attempt_at = ? WHERE id IN \
                 (SELECT id FROM webhook_delivery WHERE status = 'PENDING' \
                 AND next_attempt_at <= ? ORDER BY next_attempt_at LIMIT ?{lock}) RETURNING *"
            ),
            vec![lease.into(), now.into(), limit.into()],
        ))
        .all(&txn)
        .await?;
        txn.commit().await?;
        if claimed.is_empty() {
            return Ok(Vec::new());
        }
        let webhooks = webhooks(&self.db).await?;
        let mut out = Vec::new();
        let mut released = Vec::new();
        {
            let mut in_flight = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
            for d in claimed {
                let Some(w) = webhooks.get(&d.webhook_id) else {
                    continue;
                };
                let n = in_flight.entry(w.id).or_default();
                if *n >= PER_WEBHOOK {
                    released.push(d.id);
                    continue;
                }
                *n += 1;
                out.push((d, w.clone()));
            }
        }
        if !released.is_empty() {
            let mut values: Vec<Value> = vec![Utc::now().into()];
            values.extend(released.iter().map(|id| Value::from(*id)));
            self.db
                .execute_raw(crate::db::stmt(
                    self.db.get_database_backend(),
                    &format!(
                        "UPDATE webhook_delivery SET next_attempt_at = ? WHERE id IN ({})",
                        crate::db::placeholders(released.len())
                    ),
                    values,
                ))
                .await?;
        }
        Ok(out)
    }

    /// One attempt, and its outcome recorded.
    async fn send(&self, delivery: DeliveryRow, webhook: WebhookRow) -> Result<()> {
        let id = format!("msg_{}", delivery.id);
        let timestamp = Utc::now().timestamp();
        let outcome = self
            .client
            .post(&webhook.url)
            .header("content-type", "application/json")
            .header("webhook-id", &id)
            .header("webhook-timestamp", timestamp.to_string())
            .header(
                "webhook-signature",
                signature(&webhook.secret, &id, timestamp, &delivery.payload),
            )
            .body(delivery.payload.clone())
            .send()
            .await;
        let (status, error) = match outcome {
            Ok(response) => {
                let status = response.status();
                let answer = read_some(response).await;
                if status.is_success() {
                    (Some(status.as_u16()), None)
                } else {
                    (
                        Some(status.as_u16()),
                        Some(format!("HTTP {status}: {answer}")),
                    )
                }
            }
            Err(e) => (None, Some(describe(&e))),
        };
        self.record(&delivery, status, error).await
    }

    /// Marks a delivery after an attempt: delivered, tried again later, or failed for good
    /// once its retry window has passed.
    async fn record(
        &self,
        delivery: &DeliveryRow,
        status: Option<u16>,
        error: Option<String>,
    ) -> Result<()> {
        let now = Utc::now();
        let attempts = delivery.attempts + 1;
        let (state, next) = match &error {
            None => (Status::Succeeded, now),
            Some(_) => {
                let wait = retry_delay(attempts as u32, self.rules.first_retry, jitter());
                let next = now + chrono::Duration::from_std(wait).unwrap_or_default();
                let ends = delivery.created_at
                    + chrono::Duration::from_std(self.rules.retry_for).unwrap_or_default();
                if next > ends {
                    (Status::Failed, now)
                } else {
                    (Status::Pending, next)
                }
            }
        };
        let result = match state {
            Status::Succeeded => "succeeded",
            Status::Pending => "retried",
            Status::Failed => "failed",
        };
        metrics::counter!("cnscd_webhook_deliveries_total", "result" => result).increment(1);
        let finished: Option<DateTime<Utc>> = (state != Status::Pending).then_some(now);
        let outcome = Outcome {
            id: delivery.id,
            state,
            attempts,
            next,
            status: status.map(i32::from),
            error: error.map(|e| e.chars().take(500).collect::<String>()),
            finished,
        };
        self.outcomes
            .send(outcome)
            .map_err(|_| crate::error::Error::Internal("the webhook recorder stopped".into()))?;
        Ok(())
    }
}

/// A number in [0, 1) for the retry's jitter.
fn jitter() -> f64 {
    let mut b = [0u8; 2];
    if getrandom::fill(&mut b).is_err() {
        return 0.5;
    }
    f64::from(u16::from_le_bytes(b)) / 65_536.0
}

/// What went wrong with an attempt that got no answer, in words for `lastError`.
fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "no answer within CNSCD_WEBHOOK_TIMEOUT".to_owned()
    } else if e.is_redirect() {
        format!("redirect refused: {e}")
    } else if e.is_connect() {
        format!(
            "no connection: {}",
            std::error::Error::source(e).map_or_else(|| e.to_string(), |s| s.to_string())
        )
    } else {
        e.to_string()
    }
}

/// The start of a receiver's answer (at most [`MAX_ANSWER`] bytes read), for `lastError`.
async fn read_some(mut response: reqwest::Response) -> String {
    let mut body = Vec::new();
    while body.len() < MAX_ANSWER {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            _ => break,
        }
    }
    body.truncate(MAX_ANSWER);
    String::from_utf8_lossy(&body).chars().take(200).collect()
}

/// Every webhook by id.
async fn webhooks(db: &impl ConnectionTrait) -> Result<BTreeMap<i64, WebhookRow>> {
    Ok(WebhookRow::find_by_statement(crate::db::stmt(
        db.get_database_backend(),
        "SELECT * FROM webhook",
        vec![],
    ))
    .all(db)
    .await?
    .into_iter()
    .map(|w| (w.id, w))
    .collect())
}

#[derive(FromQueryResult)]
struct Queued {
    audit_id: i64,
}

/// Turns outbox entries into deliveries, in one transaction with their removal from the
/// outbox: each webhook gets the entries of its events that its owner may read (and that lie
/// under its `under`), with the sides its owner may not read left out. How many entries.
pub async fn fan_out(db: &DatabaseConnection) -> Result<usize> {
    // A read first: an empty outbox takes no write transaction (on SQLite, no turn among the
    // process's writers).
    let waiting = crate::db::count(
        db,
        "SELECT COUNT(*) AS n FROM (SELECT 1 FROM webhook_outbox LIMIT 1) w",
        vec![],
    )
    .await?;
    if waiting == 0 {
        return Ok(0);
    }
    let txn = crate::db::begin_write(db).await?;
    let lock = match db.get_database_backend() {
        DbBackend::Postgres => " FOR UPDATE SKIP LOCKED",
        _ => "",
    };
    let queued: Vec<i64> = Queued::find_by_statement(crate::db::stmt(
        db.get_database_backend(),
        &format!("SELECT audit_id FROM webhook_outbox ORDER BY audit_id LIMIT ?{lock}"),
        vec![BATCH.into()],
    ))
    .all(&txn)
    .await?
    .into_iter()
    .map(|q| q.audit_id)
    .collect();
    if queued.is_empty() {
        txn.rollback().await?;
        return Ok(0);
    }
    let now = Utc::now();
    let mut rows: Vec<[Value; 6]> = Vec::new();
    for webhook in webhooks(&txn).await?.into_values() {
        for listed in visible_to(&txn, &webhook, &queued).await? {
            let Some(event) = Event::of_action(&listed.entry.action) else {
                continue;
            };
            if !webhook.events().contains(&event) {
                continue;
            }
            rows.push([
                webhook.id.into(),
                listed.entry.id.into(),
                event.as_str().into(),
                payload(event, &listed).to_string().into(),
                listed.entry.occurred_at.into(),
                now.into(),
            ]);
        }
    }
    // Many rows a statement.
    for chunk in rows.chunks(100) {
        let places = vec!["(?, ?, ?, ?, 'PENDING', 0, ?, ?)"; chunk.len()].join(", ");
        txn.execute_raw(crate::db::stmt(
            db.get_database_backend(),
            &format!(
                "INSERT INTO webhook_delivery (webhook_id, audit_id, event, payload, status, \
                 attempts, next_attempt_at, created_at) VALUES {places} \
                 ON CONFLICT (webhook_id, audit_id) DO NOTHING"
            ),
            chunk.iter().flat_map(|r| r.iter().cloned()).collect(),
        ))
        .await?;
    }
    let mut values: Vec<Value> = Vec::new();
    values.extend(queued.iter().map(|id| Value::from(*id)));
    txn.execute_raw(crate::db::stmt(
        db.get_database_backend(),
        &format!(
            "DELETE FROM webhook_outbox WHERE audit_id IN ({})",
            crate::db::placeholders(queued.len())
        ),
        values,
    ))
    .await?;
    txn.commit().await?;
    Ok(queued.len())
}

/// The entries among `ids` a webhook's owner may read, and that lie under its `under`.
async fn visible_to(
    db: &impl ConnectionTrait,
    webhook: &WebhookRow,
    ids: &[i64],
) -> Result<Vec<crate::audit::service::Listed>> {
    let mut visible = crate::audit::service::visible(db, &webhook.owner(), ids).await?;
    if let Some(under) = webhook.under_principal() {
        let inside: std::collections::BTreeSet<i64> =
            crate::audit::service::visible(db, &under, ids)
                .await?
                .into_iter()
                .map(|l| l.entry.id)
                .collect();
        visible.retain(|l| inside.contains(&l.entry.id));
    }
    Ok(visible)
}

/// What a receiver is sent: the event, the changed object's id, unit and dates, what changed
/// (the audit entry's before and after, a side the owner may not read as null), and how to
/// fetch more.
fn payload(event: Event, listed: &crate::audit::service::Listed) -> serde_json::Value {
    let e = &listed.entry;
    json!({
        "type": event.as_str(),
        "timestamp": e.occurred_at.to_rfc3339(),
        "data": {
            "auditEntryId": crate::ids::global(crate::ids::AUDIT_ENTRY, e.id),
            "action": e.action,
            "entityType": e.entity_type,
            "entityId": e.entity_id,
            "unitCode": e.unit_code,
            "concernsFrom": e.concerns_from,
            "concernsTo": e.concerns_to,
            "subject": e.subject,
            "before": if listed.before_withheld { serde_json::Value::Null } else { e.before.clone().unwrap_or_default() },
            "after": if listed.after_withheld { serde_json::Value::Null } else { e.after.clone().unwrap_or_default() },
            "beforeWithheld": listed.before_withheld,
            "afterWithheld": listed.after_withheld,
        },
        "links": {
            "graphql": "/graphql",
            "query": format!("{{ node(id: \"{}\") {{ id }} }}", e.entity_id),
            "auditLog": format!("{{ auditLog(entityId: \"{}\") {{ nodes {{ action occurredAt }} }} }}", e.entity_id),
        }
    })
}

/// The age of the oldest delivery due and not yet sent, as a gauge.
async fn queue_age(db: &impl ConnectionTrait) -> Result<()> {
    #[derive(FromQueryResult)]
    struct Oldest {
        oldest: Option<DateTime<Utc>>,
    }
    let oldest = Oldest::find_by_statement(crate::db::stmt(
        db.get_database_backend(),
        "SELECT MIN(next_attempt_at) AS oldest FROM webhook_delivery WHERE status = 'PENDING'",
        vec![],
    ))
    .one(db)
    .await?
    .and_then(|o| o.oldest);
    let age = oldest.map_or(0.0, |t| {
        (Utc::now() - t).num_milliseconds().max(0) as f64 / 1000.0
    });
    metrics::gauge!("cnscd_webhook_queue_age_seconds").set(age);
    Ok(())
}

//! PostgreSQL: changes go out as `NOTIFY cnscd_events` from one task per server, after the
//! writing transaction committed, many to a statement: the writer does not wait for it, and
//! under load one `pg_notify` carries every change queued meanwhile.
use super::{CHANNEL, Change};
use sea_orm::DatabaseConnection;
use tokio::sync::mpsc;

/// Changes queued for the task before new ones are dropped (and counted).
const QUEUE: usize = 16_384;
/// Largest payload sent (PostgreSQL refuses more than 8,000 bytes).
const MAX_PAYLOAD: usize = 7_500;

/// The queue of the NOTIFY task.
#[derive(Clone)]
pub struct Outbox(mpsc::Sender<Vec<Change>>);

impl Outbox {
    /// Starts the task; it ends when every `Outbox` is dropped.
    pub fn start(db: &DatabaseConnection) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(db.clone(), rx));
        Self(tx)
    }

    /// Queues changes; never waits.
    pub fn push(&self, changes: Vec<Change>) {
        if changes.is_empty() {
            return;
        }
        if self.0.try_send(changes).is_err() {
            metrics::counter!("cnscd_live_events_dropped_total").increment(1);
            tracing::warn!("live feed: the NOTIFY queue is full; changes not published");
        }
    }
}

async fn run(db: DatabaseConnection, mut rx: mpsc::Receiver<Vec<Change>>) {
    while let Some(first) = rx.recv().await {
        let mut changes = first;
        while let Ok(more) = rx.try_recv() {
            changes.extend(more);
        }
        for payload in payloads(&changes) {
            // Straight through the pool, past sea-orm: off every request's path, it is not one
            // of the statements a request is counted for (the tests' and bench's counters).
            let sent = sea_orm::sqlx::query("SELECT pg_notify($1, $2)")
                .bind(CHANNEL)
                .bind(&payload)
                .execute(db.get_postgres_connection_pool())
                .await;
            if let Err(e) = sent {
                metrics::counter!("cnscd_live_events_dropped_total").increment(1);
                tracing::warn!(error = %e, "live feed: NOTIFY failed; changes not published");
            }
        }
    }
}

/// The changes as JSON arrays, each under [`MAX_PAYLOAD`] bytes.
pub fn payloads(changes: &[Change]) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::from("[");
    for c in changes {
        let Ok(item) = serde_json::to_string(c) else {
            continue;
        };
        if current.len() > 1 && current.len() + item.len() + 2 > MAX_PAYLOAD {
            current.push(']');
            out.push(std::mem::replace(&mut current, String::from("[")));
        }
        if current.len() > 1 {
            current.push(',');
        }
        current.push_str(&item);
    }
    if current.len() > 1 {
        current.push(']');
        out.push(current);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_stay_under_the_limit_and_keep_every_change() {
        let changes: Vec<Change> = (0..1000)
            .map(|i| Change {
                activity: Some(i),
                unit: "05677-01".into(),
                day: chrono::NaiveDate::from_ymd_opt(2025, 3, 10).unwrap_or_default(),
            })
            .collect();
        let sent = payloads(&changes);
        assert!(sent.len() > 1);
        let mut back = Vec::new();
        for p in &sent {
            assert!(p.len() <= MAX_PAYLOAD, "{}", p.len());
            back.extend(serde_json::from_str::<Vec<Change>>(p).unwrap_or_default());
        }
        assert_eq!(back, changes);
        assert!(payloads(&[]).is_empty());
    }
}

//! The live feed: what changed (an activity stored, a unit's figures moved), told to every
//! subscriber on every replica.
//!
//! A change is published after its transaction commits. On PostgreSQL it goes out as
//! `NOTIFY cnscd_events` ([`publish`], batched: one statement carries many changes) and every
//! replica, the publishing one included, hears it through `LISTEN` ([`listener`]); on SQLite
//! (a single server) it goes straight to this process's subscribers. Either way each server
//! fans its events out through one `tokio::sync::broadcast` channel ([`Bus`]), each event
//! carrying the unit's place in the hierarchy on the event's day, so that a subscriber checks
//! its area without a statement.
//!
//! The feed is live, not a log: a change is told at most once, and one published while a
//! replica's LISTEN connection is down (or in the instant between a commit and a crash) is not
//! told at all. A client that must not miss anything reads the `activities` list too.
pub mod listener;
pub mod publish;
pub mod resolvers;
pub mod service;

use chrono::NaiveDate;
use cnscd_entity::activity;
use sea_orm::{DatabaseConnection, DbBackend};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use tokio::sync::broadcast;

/// The PostgreSQL channel changes are published on.
pub const CHANNEL: &str = "cnscd_events";

/// Events a slow subscriber may fall behind by before it misses some (it is told in the log).
const CAPACITY: usize = 4096;

/// One change as published: small, so that many fit in one NOTIFY payload (8,000 bytes).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// The activity stored, when the change is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activity: Option<i64>,
    /// The unit whose figures changed.
    pub unit: String,
    /// The day the change concerns (an activity's `occurred_on`).
    pub day: NaiveDate,
}

/// A change as a server's subscribers receive it.
#[derive(Clone, Debug)]
pub struct Event {
    pub change: Change,
    /// The unit and every unit above it on the change's day, nearest first (empty when the
    /// unit does not exist on that day): the area rule for one row, in memory.
    pub chain: Vec<String>,
    /// The stored activity, when the change is one and it could be read.
    pub activity: Option<Arc<activity::Model>>,
}

/// This server's end of the feed: cheap to clone, one per application.
#[derive(Clone)]
pub struct Bus {
    tx: broadcast::Sender<Arc<Event>>,
    /// PostgreSQL: the queue of the task that NOTIFYs; `None` on SQLite.
    outbox: Option<publish::Outbox>,
    store: crate::memory::Store,
    db: DatabaseConnection,
}

impl Bus {
    /// The feed of `db`: on PostgreSQL it starts listening (before it returns, so that nothing
    /// published after is missed) and starts the publishing task.
    pub async fn start(db: &DatabaseConnection, store: &crate::memory::Store) -> Self {
        let (tx, _) = broadcast::channel(CAPACITY);
        let mut bus = Self {
            tx,
            outbox: None,
            store: store.clone(),
            db: db.clone(),
        };
        if db.get_database_backend() == DbBackend::Postgres {
            listener::start(bus.clone()).await;
            bus.outbox = Some(publish::Outbox::start(db));
        }
        bus
    }

    /// A receiver of every event from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.tx.subscribe()
    }

    /// Tells the subscribers of this server about changes: their chains from the in-memory
    /// hierarchy (refreshed first, one statement), their activities as given or read (one
    /// statement).
    pub(crate) async fn deliver(&self, changes: Vec<Change>, mut known: Vec<activity::Model>) {
        if self.tx.receiver_count() == 0 || changes.is_empty() {
            return;
        }
        let snap = match self.store.snapshot(&self.db).await {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!(error = %e.message(), "live feed: hierarchy not refreshed");
                self.store.held()
            }
        };
        let wanted: Vec<i64> = changes
            .iter()
            .filter_map(|c| c.activity)
            .filter(|id| !known.iter().any(|m| m.id == *id))
            .collect();
        if !wanted.is_empty() {
            match service::activities(&self.db, &wanted).await {
                Ok(rows) => known.extend(rows),
                Err(e) => {
                    tracing::warn!(error = %e.message(), "live feed: activities not read")
                }
            }
        }
        for change in changes {
            let chain = snap
                .as_ref()
                .and_then(|s| s.chain(&change.unit, change.day))
                .map(|c| c.codes)
                .unwrap_or_default();
            let activity = change
                .activity
                .and_then(|id| known.iter().find(|m| m.id == id))
                .cloned()
                .map(Arc::new);
            metrics::counter!("cnscd_live_events_total").increment(1);
            // An error means nobody listens any more: nothing to do.
            let _ = self.tx.send(Arc::new(Event {
                change,
                chain,
                activity,
            }));
        }
    }

    /// Publishes changes committed by this process.
    pub fn publish(&self, changes: Vec<Change>, stored: Vec<activity::Model>) {
        match &self.outbox {
            Some(outbox) => outbox.push(changes),
            None => {
                // Off the writer's path: the mutation answers without waiting for it.
                let bus = self.clone();
                tokio::spawn(async move { bus.deliver(changes, stored).await });
            }
        }
    }

    /// Publishes activities just stored (after their transaction committed).
    pub fn activities_stored(&self, stored: &[&activity::Model]) {
        let changes = stored
            .iter()
            .map(|m| Change {
                activity: Some(m.id),
                unit: m.unit_code.clone(),
                day: m.occurred_on,
            })
            .collect();
        self.publish(changes, stored.iter().map(|m| (*m).clone()).collect());
    }

    /// Publishes a change of a unit's figures on a day that is not a new activity (reported
    /// figures, corrections, voids).
    pub fn figures_changed(&self, unit: &str, day: NaiveDate) {
        self.publish(
            vec![Change {
                activity: None,
                unit: unit.to_owned(),
                day,
            }],
            Vec::new(),
        );
    }
}

/// The schema's bus, from a resolver.
pub fn bus<'a>(ctx: &async_graphql::Context<'a>) -> crate::error::Result<&'a Bus> {
    ctx.data::<Bus>()
        .map_err(|_| crate::error::Error::Internal("no event bus in the schema".into()))
}

/// Publishes activities a mutation just stored (and committed); never fails the mutation.
pub fn publish_activities(ctx: &async_graphql::Context<'_>, stored: &[&activity::Model]) {
    match bus(ctx) {
        Ok(bus) => bus.activities_stored(stored),
        Err(e) => tracing::warn!(error = %e.message(), "live feed: not published"),
    }
}

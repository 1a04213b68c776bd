//! PostgreSQL: every server LISTENs on `cnscd_events` and hands what it hears to its own
//! subscribers, so a change written through any replica reaches subscribers on all of them.
use super::{Bus, CHANNEL, Change};
use sea_orm::sqlx::postgres::PgListener;
use std::time::Duration;

/// Longest wait between attempts to listen again after the connection is lost.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// Starts listening, then hands notifications to the bus from a task of their own. When the
/// first attempt fails the task keeps trying (the server works meanwhile, without a feed).
pub async fn start(bus: Bus) {
    let first = listen(&bus).await;
    tokio::spawn(run(bus, first));
}

async fn listen(bus: &Bus) -> Option<PgListener> {
    let pool = bus.db.get_postgres_connection_pool();
    let attempt = async {
        let mut l = PgListener::connect_with(pool).await?;
        l.listen(CHANNEL).await?;
        Ok::<_, sea_orm::sqlx::Error>(l)
    };
    match attempt.await {
        Ok(l) => Some(l),
        Err(e) => {
            tracing::warn!(error = %e, "live feed: LISTEN failed; retrying");
            None
        }
    }
}

async fn run(bus: Bus, mut listener: Option<PgListener>) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let Some(l) = listener.as_mut() else {
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
            listener = listen(&bus).await;
            continue;
        };
        // `recv` reconnects by itself after a dropped connection (what was published while it
        // was down is lost: the feed is live, not a log).
        match l.recv().await {
            Ok(n) => {
                backoff = Duration::from_millis(100);
                match serde_json::from_str::<Vec<Change>>(n.payload()) {
                    Ok(changes) => bus.deliver(changes, Vec::new()).await,
                    Err(e) => {
                        tracing::warn!(error = %e, "live feed: a notification not understood")
                    }
                }
            }
            Err(sea_orm::sqlx::Error::PoolClosed) => return,
            Err(e) => {
                tracing::warn!(error = %e, "live feed: listening failed; listening again");
                listener = None;
            }
        }
    }
}

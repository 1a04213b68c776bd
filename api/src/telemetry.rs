//! Tracing to stderr, pretty or JSON, so `cnscd schema` and `cnscd token` print clean stdout;
//! and the layer that turns the database pool's acquire events into metrics.
use crate::config::LogFormat;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::Context;
use tracing_subscriber::{EnvFilter, Layer, fmt, prelude::*};

/// The target under which sqlx reports each pool acquire (see [`crate::db::connect`], which
/// turns the report on at TRACE level).
pub const POOL_ACQUIRE_TARGET: &str = "sqlx::pool::acquire";

/// Installs the global subscriber once; later calls (tests) are ignored. `filter` applies to
/// the log output only: the pool-acquire metrics layer sees its events whatever the filter.
pub fn init(filter: &str, format: LogFormat) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = match format {
        LogFormat::Json => fmt::layer()
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .with_writer(std::io::stderr)
            .with_filter(filter)
            .boxed(),
        LogFormat::Pretty => fmt::layer()
            .with_writer(std::io::stderr)
            .with_filter(filter)
            .boxed(),
    };
    let result = tracing_subscriber::registry()
        .with(logs)
        .with(
            PoolAcquireMetrics
                .with_filter(Targets::new().with_target(POOL_ACQUIRE_TARGET, Level::TRACE)),
        )
        .try_init();
    drop(result);
}

/// Records `cnscd_db_pool_acquire_seconds` from sqlx's "acquired connection" events (their
/// `acquired_after_secs` field): how long each statement waited for a pooled connection.
pub struct PoolAcquireMetrics;

struct AcquiredAfter(Option<f64>);

impl Visit for AcquiredAfter {
    fn record_f64(&mut self, field: &Field, value: f64) {
        if field.name() == "acquired_after_secs" {
            self.0 = Some(value);
        }
    }

    fn record_debug(&mut self, _: &Field, _: &dyn std::fmt::Debug) {}
}

impl<S: Subscriber> Layer<S> for PoolAcquireMetrics {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let mut seen = AcquiredAfter(None);
        event.record(&mut seen);
        if let Some(secs) = seen.0 {
            metrics::histogram!("cnscd_db_pool_acquire_seconds").record(secs);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The layer records sqlx's acquire reports into the histogram `/metrics` publishes.
    #[test]
    fn pool_acquire_events_become_a_histogram() {
        let Some(handle) = crate::http::metrics::handle() else {
            panic!("no recorder")
        };
        let count = |text: &str| -> f64 {
            text.lines()
                .find_map(|l| l.strip_prefix("cnscd_db_pool_acquire_seconds_count "))
                .map_or(0.0, |v| v.parse().unwrap_or(0.0))
        };
        let before = count(&handle.render());
        let subscriber = tracing_subscriber::registry().with(
            PoolAcquireMetrics
                .with_filter(Targets::new().with_target(POOL_ACQUIRE_TARGET, Level::TRACE)),
        );
        tracing::subscriber::with_default(subscriber, || {
            tracing::trace!(target: "sqlx::pool::acquire", acquired_after_secs = 0.25_f64, "acquired connection");
            tracing::trace!(target: "somewhere::else", acquired_after_secs = 9.0_f64, "not a pool");
        });
        let after = handle.render();
        assert_eq!(count(&after), before + 1.0, "{after}");
    }
}

//! Tracing to stderr, pretty or JSON, so `cnscd schema` and `cnscd token` print clean stdout;
//! and the layer that turns the database pool's acquire events into metrics.
use crate::config::LogFormat;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::Context;
use tracing_subscriber::{EnvFilter, Layer, fmt, prelude::*};

/// The target under which sqlx reports each pool acquire (see [`crate::db::connect`], which
/// turns the report on at INFO level).
pub const POOL_ACQUIRE_TARGET: &str = "sqlx::pool::acquire";

/// What [`init`] started that must be stopped at exit: the trace exporter, whose last spans
/// are flushed when this is dropped.
#[must_use = "dropping it stops the trace export"]
pub struct Telemetry {
    traces: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(provider) = self.traces.take()
            && let Err(e) = provider.shutdown()
        {
            eprintln!("trace export did not shut down cleanly: {e}");
        }
    }
}

/// Installs the global subscriber once; later calls (tests) are ignored. `filter` applies to
/// the log output only: the pool-acquire metrics layer sees its events whatever the filter.
/// With `OTEL_EXPORTER_OTLP_ENDPOINT` set (e.g. `http://otel-collector:4318`), the service's
/// spans (the request span with its operation, subject and roles, and the services' spans)
/// are also exported as OpenTelemetry traces over OTLP/HTTP; the exporter reads the standard
/// `OTEL_*` variables (`OTEL_SERVICE_NAME`, `OTEL_EXPORTER_OTLP_HEADERS`, ...).
pub fn init(filter: &str, format: LogFormat) -> Telemetry {
    let mut filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    // The pool's acquire reports are for the metrics layer, never the log.
    if let Ok(quiet) = format!("{POOL_ACQUIRE_TARGET}=off").parse() {
        filter = filter.add_directive(quiet);
    }
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
    let endpoint = std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT")
        .ok()
        .filter(|e| !e.trim().is_empty());
    let (traces, provider) = match endpoint.as_deref().map(otlp) {
        Some(Ok((layer, provider))) => (Some(layer), Some(provider)),
        Some(Err(e)) => {
            eprintln!("OTEL_EXPORTER_OTLP_ENDPOINT is set but traces cannot be exported: {e}");
            (None, None)
        }
        None => (None, None),
    };
    let result = tracing_subscriber::registry()
        .with(logs)
        .with(pool_acquire_metrics())
        .with(traces)
        .try_init();
    if result.is_ok()
        && let Some(endpoint) = &endpoint
        && provider.is_some()
    {
        tracing::info!(endpoint = %endpoint, "exporting traces over OTLP/HTTP");
    }
    drop(result);
    Telemetry { traces: provider }
}

/// A layer exporting the service's spans to the OTLP/HTTP collector at `endpoint` (batched, on
/// the exporter's own thread), and its provider (to flush and stop it).
pub fn otlp<S>(
    endpoint: &str,
) -> Result<
    (
        Box<dyn Layer<S> + Send + Sync>,
        opentelemetry_sdk::trace::SdkTracerProvider,
    ),
    String,
>
where
    S: Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a> + Send + Sync,
{
    use opentelemetry::trace::TracerProvider;
    use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(format!("{}/v1/traces", endpoint.trim_end_matches('/')))
        .with_headers(Default::default())
        .build()
        .map_err(|e| e.to_string())?;
    let service = std::env::var("OTEL_SERVICE_NAME").unwrap_or_else(|_| "cnscd".to_owned());
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            opentelemetry_sdk::Resource::builder()
                .with_service_name(service)
                .build(),
        )
        .build();
    let layer = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer("cnscd"))
        .with_filter(
            Targets::new()
                .with_target("cnscd_api", Level::INFO)
                .with_target("tower_http", Level::INFO)
                .with_target("async_graphql", Level::INFO),
        )
        .boxed();
    Ok((layer, provider))
}

/// [`PoolAcquireMetrics`] seeing sqlx's acquire reports and nothing else.
pub fn pool_acquire_metrics<S>() -> impl Layer<S>
where
    S: Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    PoolAcquireMetrics.with_filter(Targets::new().with_target(POOL_ACQUIRE_TARGET, Level::INFO))
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
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// With an endpoint, spans reach an OTLP/HTTP collector (one the test serves on loopback).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn spans_are_exported_over_otlp_http() {
        let received = Arc::new(AtomicUsize::new(0));
        let seen = received.clone();
        let collector = axum::Router::new().route(
            "/v1/traces",
            axum::routing::post(move |body: axum::body::Bytes| {
                let seen = seen.clone();
                async move {
                    if !body.is_empty() {
                        seen.fetch_add(1, Ordering::SeqCst);
                    }
                    ""
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, collector).await });
        let (layer, provider) =
            otlp::<tracing_subscriber::Registry>(&format!("http://{address}/")).unwrap();
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, || {
            tracing::info_span!("request", operation = "Probe")
                .in_scope(|| tracing::info!("inside the request"));
        });
        tokio::task::spawn_blocking(move || provider.force_flush())
            .await
            .unwrap()
            .unwrap();
        assert!(received.load(Ordering::SeqCst) >= 1, "no spans exported");
    }

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
        let subscriber = tracing_subscriber::registry().with(pool_acquire_metrics());
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(target: "sqlx::pool::acquire", acquired_after_secs = 0.25_f64, "acquired connection");
            tracing::info!(target: "somewhere::else", acquired_after_secs = 9.0_f64, "not a pool");
        });
        let after = handle.render();
        assert_eq!(count(&after), before + 1.0, "{after}");
        // Nothing below INFO is asked for, so sqlx's per-row trace call sites stay asleep.
        assert_eq!(
            pool_acquire_metrics::<tracing_subscriber::Registry>().max_level_hint(),
            Some(tracing::level_filters::LevelFilter::INFO)
        );
    }
}

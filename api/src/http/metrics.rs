//! `GET /metrics`: what the service records through the `metrics` facade, in the Prometheus
//! text format, by `metrics-exporter-prometheus`; and the HTTP layer that records requests.
//!
//! The recorder is process-wide (the facade has one global recorder): every application in a
//! process, the tests' servers among them, records into it and answers the same exposition.
//! What is recorded, by name:
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `cnscd_http_requests_total` | counter | `path` (the route), `method`, `status` |
//! | `cnscd_http_request_duration_seconds` | histogram | `path`, `method` |
//! | `cnscd_graphql_requests_total` | counter | `operation`, `outcome` |
//! | `cnscd_graphql_request_duration_seconds` | histogram | `operation`, `outcome` |
//! | `cnscd_db_pool_connections` | gauge | `state` (`in_use`, `idle`, `max`) |
//! | `cnscd_db_pool_acquire_seconds` | histogram | time waited for a pooled connection |
//! | `cnscd_db_pool_acquire_timeouts_total` | counter | requests that found no connection in time |
//! | `cnscd_activities_submitted_total` | counter | `result` (`created`, `replayed`, `rejected`) |
//! | `cnscd_indicator_store_requests_total` | counter | `result` (`hit`, `catch_up`, `reload`) |
//! | `cnscd_indicator_store_load_seconds` | histogram | full loads of the in-memory copy |
//! | `cnscd_indicator_data_loads_total` | counter | full loads of the in-memory copy (1 after start) |
//! | `cnscd_rate_limited_total` | counter | requests refused by the rate limiter |
//!
//! `outcome` is one of `ok`, `partial` (data with errors), `invalid` (400), `unauthenticated`,
//! `forbidden`, `rate_limited`, `unavailable` (503: stopped at the request timeout, or the
//! database did not answer), `error`. Every label comes from a closed set or is bounded:
//! `method` is one of the methods HTTP defines, else `other`; `path` is a route of the
//! router; `operation` is the GraphQL operation name of an *authenticated* caller (`anonymous`
//! without one, `unauthenticated` for a request without a valid token, whatever it named), and
//! only names of at most 64 characters made of letters, `_` and at most four digits are used
//! (no phone numbers or ids), and only the first [`MAX_OPERATIONS`] distinct ones: later ones
//! are counted as `other`, so nobody can grow the exposition without bound.
use super::AppState;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

/// Distinct operation names labelled before the rest are counted as `other`.
pub const MAX_OPERATIONS: usize = 200;

/// Histogram buckets for durations, in seconds: 1 ms to 30 s.
const DURATION_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The process's Prometheus recorder, installed on first use.
///
/// Returns `None` only when another recorder was installed first (by an embedding program);
/// `/metrics` then says so rather than answering an empty page.
pub fn handle() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), DURATION_BUCKETS)
                .map_err(|e| tracing::warn!(error = %e, "metric buckets refused"))
                .ok()?;
            match builder.install_recorder() {
                Ok(handle) => {
                    describe();
                    Some(handle)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "metrics recorder not installed");
                    None
                }
            }
        })
        .as_ref()
}

/// Help texts (`# HELP` lines) for the metrics this service records.
fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "cnscd_http_requests_total",
        "HTTP requests answered, by route, method and status"
    );
    describe_histogram!(
        "cnscd_http_request_duration_seconds",
        Unit::Seconds,
        "Time to answer an HTTP request, by route and method"
    );
    describe_counter!(
        "cnscd_graphql_requests_total",
        "GraphQL requests, by operation name and outcome"
    );
    describe_histogram!(
        "cnscd_graphql_request_duration_seconds",
        Unit::Seconds,
        "Time to answer a GraphQL request, by operation name and outcome"
    );
    describe_gauge!(
        "cnscd_db_pool_connections",
        "Database pool connections: in_use, idle, and the pool's max"
    );
    describe_histogram!(
        "cnscd_db_pool_acquire_seconds",
        Unit::Seconds,
        "Time a statement waited for a pooled database connection"
    );
    describe_counter!(
        "cnscd_db_pool_acquire_timeouts_total",
        "Requests that got no database connection within the acquire timeout"
    );
    describe_counter!(
        "cnscd_activities_submitted_total",
        "Activities submitted, by result: created, replayed (same idempotency key), rejected"
    );
    describe_counter!(
        "cnscd_indicator_store_requests_total",
        "Reads of the in-memory indicator data: hit (current), catch_up (new rollups read), reload (full load)"
    );
    describe_histogram!(
        "cnscd_indicator_store_load_seconds",
        Unit::Seconds,
        "Time to load the in-memory indicator data in full"
    );
    describe_counter!(
        "cnscd_indicator_data_loads_total",
        "Full loads of the in-memory indicator data (1 after start; changes are applied as changes)"
    );
    describe_counter!(
        "cnscd_rate_limited_total",
        "Requests refused by the rate limiter (HTTP 429)"
    );
}

/// `GET /metrics`: the Prometheus text exposition.
pub async fn metrics(State(state): State<AppState>) -> Response {
    let Some(handle) = handle() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "metrics are not available: another metrics recorder is installed in this process",
        )
            .into_response();
    };
    record_pool(&state.db);
    let mut resp = handle.render().into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    resp
}

/// Sets the pool gauges from the pool as it is now.
fn record_pool(db: &sea_orm::DatabaseConnection) {
    let (size, idle, max) = match db.get_database_backend() {
        sea_orm::DbBackend::Postgres => {
            let pool = db.get_postgres_connection_pool();
            (
                pool.size(),
                pool.num_idle(),
                pool.options().get_max_connections(),
            )
        }
        sea_orm::DbBackend::Sqlite => {
            let pool = db.get_sqlite_connection_pool();
            (
                pool.size(),
                pool.num_idle(),
                pool.options().get_max_connections(),
            )
        }
        _ => return,
    };
    let idle = idle as f64;
    metrics::gauge!("cnscd_db_pool_connections", "state" => "in_use")
        .set((f64::from(size) - idle).max(0.0));
    metrics::gauge!("cnscd_db_pool_connections", "state" => "idle").set(idle);
    metrics::gauge!("cnscd_db_pool_connections", "state" => "max").set(f64::from(max));
}

/// The GraphQL operation a response answered, set by the GraphQL handler for [`track`].
#[derive(Clone, Debug)]
pub enum Operation {
    /// An authenticated caller's request, with the operation name it gave, if any.
    Named(Option<String>),
    /// A request without a valid token: nothing it chose is recorded.
    Unauthenticated,
}

/// The label for an HTTP method: one of the methods HTTP defines, else `other` (HTTP allows
/// any token as a method, and a label may not grow with what strangers send).
pub fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}

/// Most digits an operation name may hold to be used as a label: a phone number (10 digits),
/// a citizen id (12) or a date with a serial are data, not names of operations.
const MAX_OPERATION_DIGITS: usize = 4;

/// The label for an operation name of an authenticated caller: the name when it is short and
/// plain (letters, `_`, at most [`MAX_OPERATION_DIGITS`] digits) and among the first
/// [`MAX_OPERATIONS`] seen, `other` past them, `anonymous` without one. Requests without a
/// valid token are labelled `unauthenticated`, whatever name they gave.
pub fn operation_label(name: Option<&str>) -> String {
    static SEEN: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    let Some(name) = name.filter(|n| !n.is_empty()) else {
        return "anonymous".to_owned();
    };
    let plain = name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.chars().filter(char::is_ascii_digit).count() <= MAX_OPERATION_DIGITS;
    if !plain {
        return "other".to_owned();
    }
    let Ok(mut seen) = SEEN.get_or_init(Default::default).lock() else {
        return "other".to_owned();
    };
    if seen.contains(name) {
        return name.to_owned();
    }
    if seen.len() < MAX_OPERATIONS {
        seen.insert(name.to_owned());
        return name.to_owned();
    }
    "other".to_owned()
}

/// The outcome label of a GraphQL response from its status (and, on 200, whether it carried
/// errors).
fn outcome(status: StatusCode, with_errors: bool) -> &'static str {
    match status.as_u16() {
        200 if with_errors => "partial",
        200 => "ok",
        400 | 405 | 413 | 415 => "invalid",
        401 => "unauthenticated",
        403 => "forbidden",
        429 => "rate_limited",
        503 | 408 => "unavailable",
        _ => "error",
    }
}

/// Whether a GraphQL response had errors, as the handler noted it.
#[derive(Clone, Copy, Debug)]
pub struct HadErrors(pub bool);

/// Middleware on every route: counts requests and times them, by route; GraphQL requests also
/// by operation and outcome.
pub async fn track(request: Request, next: Next) -> Response {
    // Installed on first use, so the facade records from the first request on.
    let _ = handle();
    let started = Instant::now();
    let path = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = method_label(request.method());
    let response = next.run(request).await;
    let elapsed = started.elapsed().as_secs_f64();
    let status = response.status();
    metrics::counter!(
        "cnscd_http_requests_total",
        "path" => path.clone(),
        "method" => method,
        "status" => status.as_str().to_owned()
    )
    .increment(1);
    metrics::histogram!(
        "cnscd_http_request_duration_seconds",
        "path" => path,
        "method" => method
    )
    .record(elapsed);
    if let Some(op) = response.extensions().get::<Operation>() {
        let with_errors = response
            .extensions()
            .get::<HadErrors>()
            .is_some_and(|h| h.0);
        let operation = match op {
            Operation::Named(name) => operation_label(name.as_deref()),
            Operation::Unauthenticated => "unauthenticated".to_owned(),
        };
        let outcome = outcome(status, with_errors);
        metrics::counter!(
            "cnscd_graphql_requests_total",
            "operation" => operation.clone(),
            "outcome" => outcome
        )
        .increment(1);
        metrics::histogram!(
            "cnscd_graphql_request_duration_seconds",
            "operation" => operation,
            "outcome" => outcome
        )
        .record(elapsed);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_labels_are_bounded_and_plain() {
        assert_eq!(operation_label(None), "anonymous");
        assert_eq!(operation_label(Some("")), "anonymous");
        assert_eq!(operation_label(Some("TeamsPage")), "TeamsPage");
        assert_eq!(operation_label(Some("a\"b")), "other");
        assert_eq!(operation_label(Some(&"x".repeat(65))), "other");
        assert_eq!(operation_label(Some("Phone0912345000")), "other");
        assert_eq!(operation_label(Some("Report2025")), "Report2025");
        for i in 0..MAX_OPERATIONS + 5 {
            operation_label(Some(&format!("Op{i}")));
        }
        assert_eq!(operation_label(Some("OneTooMany")), "other");
        // Names seen before the cap keep their label.
        assert_eq!(operation_label(Some("TeamsPage")), "TeamsPage");
    }

    #[test]
    fn methods_are_labelled_from_a_closed_set() {
        use axum::http::Method;
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::DELETE), "DELETE");
        let invented = Method::from_bytes("X".repeat(1_000).as_bytes()).ok();
        assert_eq!(invented.as_ref().map(method_label), Some("other"));
        let lower = Method::from_bytes(b"get").ok();
        assert_eq!(lower.as_ref().map(method_label), Some("other"));
    }

    #[test]
    fn outcomes_follow_the_status() {
        assert_eq!(outcome(StatusCode::OK, false), "ok");
        assert_eq!(outcome(StatusCode::OK, true), "partial");
        assert_eq!(outcome(StatusCode::BAD_REQUEST, false), "invalid");
        assert_eq!(outcome(StatusCode::UNAUTHORIZED, false), "unauthenticated");
        assert_eq!(
            outcome(StatusCode::TOO_MANY_REQUESTS, false),
            "rate_limited"
        );
        assert_eq!(
            outcome(StatusCode::SERVICE_UNAVAILABLE, false),
            "unavailable"
        );
    }
}

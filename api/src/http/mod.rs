//! HTTP: the router, the GraphQL handler, the CSV export, health checks, metrics, and the
//! browser pages (GraphiQL, the dashboard) with their assets.
pub mod assets;
pub mod dashboard;
pub mod export;
pub mod graphiql;
pub mod graphql;
pub mod health;
pub mod metrics;
pub mod persisted;
pub mod ratelimit;
pub mod rest;
pub mod serve;
pub mod ws;

use crate::auth::TokenVerifier;
use crate::schema::AppSchema;
use crate::schema::admission::Admission;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, Request};
use axum::response::IntoResponse;
use axum::routing::get;
use sea_orm::DatabaseConnection;
use std::time::Duration;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

/// Largest request body accepted.
pub const MAX_BODY: usize = 1024 * 1024;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub schema: AppSchema,
    /// Admits requests before `schema` runs them (limits and validation).
    pub admission: std::sync::Arc<Admission>,
    pub db: DatabaseConnection,
    /// The in-memory indicator data of `db`, shared with `schema`.
    pub store: crate::memory::Store,
    pub verifier: TokenVerifier,
    /// Per-client request limits.
    pub limiter: ratelimit::RateLimiter,
    /// Longest a GraphQL request may run; past it, it is stopped and answered 503.
    pub request_timeout: Duration,
    /// Tells open subscription sockets that the server is stopping.
    pub closing: ws::Closing,
    /// Subscription sockets open now, and their bounds.
    pub sockets: ws::Sockets,
    /// The query texts of Apollo's automatic persisted queries.
    pub persisted: persisted::PersistedQueries,
    /// Wakes the webhook delivery loop after a change this replica made.
    pub webhook_wake: std::sync::Arc<tokio::sync::Notify>,
}

/// A panic in a handler is answered 500 `INTERNAL` (and logged), never a dropped connection.
fn panic_response(err: Box<dyn std::any::Any + Send + 'static>) -> axum::response::Response {
    let detail = err
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| err.downcast_ref::<&str>().copied())
        .unwrap_or("(no message)");
    tracing::error!(panic = detail, "request handler panicked");
    let body = serde_json::json!({
        "errors": [{ "message": "internal error; it has been logged", "extensions": { "code": "INTERNAL" } }]
    });
    let mut resp = (
        axum::http::StatusCode::INTERNAL_SERVER_ERROR,
        body.to_string(),
    )
        .into_response();
    resp.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/json"),
    );
    resp
}

pub fn router(state: AppState) -> Router {
    let request_id = HeaderName::from_static("x-request-id");
    // A backstop behind the GraphQL handler's own timeout, for every route.
    let backstop = state.request_timeout + Duration::from_secs(5);
    Router::new()
        .route(
            "/graphql",
            get(graphql::get_handler).post(graphql::post_handler),
        )
        .route("/graphql/ws", get(ws::handler))
        .route(
            "/api/rest/{name}",
            get(rest::get_endpoint).post(rest::post_endpoint),
        )
        .route("/api/openapi.json", get(rest::openapi))
        .route("/exports/indicators.csv", get(export::indicators_csv))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(metrics::metrics))
        .route("/dashboard", get(dashboard::page))
        .route("/assets/{file}", get(assets::asset))
        // On matched routes only, so the `path` label is always a route, never a client's URL.
        .route_layer(axum::middleware::from_fn(metrics::track))
        .with_state(state)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            backstop,
        ))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(
            TraceLayer::new_for_http()
                .on_response(
                    tower_http::trace::DefaultOnResponse::new()
                        .level(tracing::Level::INFO)
                        .latency_unit(tower_http::LatencyUnit::Millis),
                )
                .make_span_with(|req: &Request<_>| {
                    let id = req
                        .headers()
                        .get("x-request-id")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("");
                    tracing::info_span!(
                        "request",
                        request_id = %id,
                        method = metrics::method_label(req.method()),
                        path = %bounded_path(req.uri().path()),
                        operation = tracing::field::Empty,
                        subject = tracing::field::Empty,
                        roles = tracing::field::Empty,
                    )
                }),
        )
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .layer(axum::middleware::map_request(drop_unusable_request_id))
}

/// Longest request path written to the log; the rest is cut (a path is the caller's text).
const MAX_LOGGED_PATH: usize = 128;

/// A request path as the log shows it: at most [`MAX_LOGGED_PATH`] bytes.
fn bounded_path(path: &str) -> &str {
    let mut end = path.len().min(MAX_LOGGED_PATH);
    while !path.is_char_boundary(end) {
        end -= 1;
    }
    &path[..end]
}

/// Whether a caller's `x-request-id` may be kept: it is logged, quoted in errors and stored in
/// audit entries, so only a short plain token (a UUID, a load balancer's id) is.
fn usable_request_id(value: &axum::http::HeaderValue) -> bool {
    let v = value.as_bytes();
    (1..=64).contains(&v.len())
        && v.iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// Drops an `x-request-id` that is not [`usable_request_id`], so that the service gives the
/// request one of its own.
async fn drop_unusable_request_id<B>(mut req: Request<B>) -> Request<B> {
    let bad = req
        .headers()
        .get_all("x-request-id")
        .iter()
        .any(|v| !usable_request_id(v));
    if bad {
        req.headers_mut().remove("x-request-id");
    }
    req
}

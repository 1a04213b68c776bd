//! `GET /graphql/ws`: subscriptions over the `graphql-transport-ws` protocol
//! (<https://github.com/enisdenjo/graphql-ws/blob/master/PROTOCOL.md>).
//!
//! The socket carries no token in its upgrade request (browsers cannot set headers on one):
//! the client sends it in `connection_init`, as `{"Authorization": "Bearer <jwt>"}` or
//! `{"token": "<jwt>"}`, and it is checked by the verifier every HTTP request goes through.
//! The socket is closed with
//! - 4401 when the token is missing, invalid or expired, and when it expires later (a timer
//!   set to its `exp`), and when a `subscribe` comes before `connection_ack`;
//! - 4403 when its roles grant neither reading activities nor indicators;
//! - 4408 when no `connection_init` comes within [`INIT_TIMEOUT`];
//! - 4400 for a message that is not of the protocol; 4429 for a second `connection_init`.
//!
//! The protocol itself (init, ack, subscribe, next, complete, ping, pong) is async-graphql's
//! [`async_graphql::http::WebSocket`]; this module drives it so that it can close with these
//! codes (async-graphql-axum's `GraphQLWebSocket::serve` closes every refused init with 1002
//! and knows no expiry). Each `subscribe` is admitted as a POST is (limits and validation, see
//! [`crate::graphql::limits`]) and costs 1 point of the caller's rate limit; only
//! subscriptions are run here (queries and mutations go to `POST /graphql`).
use super::AppState;
use crate::auth::{Action, Principal};
use crate::error::ErrorCode;
use crate::graphql::limits::with_code;
use crate::graphql::loaders::Loaders;
use async_graphql::futures_util::stream::{self, BoxStream, StreamExt};
use async_graphql::futures_util::{SinkExt, future};
use async_graphql::http::{WebSocket as Protocol, WebSocketProtocols, WsMessage};
use async_graphql::parser::types::OperationType;
use async_graphql::{Data, Executor, ServerError};
use axum::extract::State;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::time::Instant;

/// The one subprotocol spoken.
pub const PROTOCOL: &str = "graphql-transport-ws";
/// How long a client has to send `connection_init` after the upgrade.
pub const INIT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest a message may wait for the client to take it before the connection is dropped.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// Most subscriptions running at once on one connection.
pub const MAX_SUBSCRIPTIONS: usize = 50;

/// The server's stop, as the sockets see it; cheap to clone.
#[derive(Clone)]
pub struct Closing {
    tx: Arc<tokio::sync::watch::Sender<bool>>,
    open: Arc<AtomicUsize>,
}

impl Default for Closing {
    fn default() -> Self {
        Self::new()
    }
}

impl Closing {
    pub fn new() -> Self {
        Self {
            tx: Arc::new(tokio::sync::watch::channel(false).0),
            open: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Tells every open socket to close (1001).
    pub fn start(&self) {
        self.tx.send_replace(true);
    }

    /// Waits until every socket has closed, or `at_most`.
    pub async fn drained(&self, at_most: Duration) {
        let deadline = Instant::now() + at_most;
        while self.open.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// Where the connection stands with its token.
#[derive(Clone, Debug)]
enum Auth {
    Waiting,
    /// Until the token's `exp` (`None`: too far off to matter).
    Accepted {
        expires: Option<Instant>,
    },
    Refused(u16, String),
}

/// `GET /graphql/ws`.
pub async fn handler(
    State(state): State<AppState>,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let offered = headers
        .get(header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|p| p.trim() == PROTOCOL));
    let refuse = |status: StatusCode, message: String| {
        let body = serde_json::json!({
            "errors": [{ "message": message, "extensions": { "code": ErrorCode::Validation.as_str() } }]
        });
        let mut resp = (status, body.to_string()).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static("application/json"),
        );
        resp
    };
    let upgrade = match upgrade {
        Ok(u) => u,
        Err(e) => {
            return refuse(
                e.status(),
                format!(
                    "/graphql/ws takes WebSocket connections ({}); subscribe with the \
                     {PROTOCOL} protocol",
                    e.body_text()
                ),
            );
        }
    };
    if !offered {
        return refuse(
            StatusCode::BAD_REQUEST,
            format!("offer the `{PROTOCOL}` subprotocol (Sec-WebSocket-Protocol: {PROTOCOL})"),
        );
    }
    upgrade
        .protocols([PROTOCOL])
        .on_upgrade(move |socket| serve(state, socket))
}

/// The caller's token from the `connection_init` payload.
fn token_of(payload: &serde_json::Value) -> Result<&str, String> {
    const HOW: &str = "send the token in connection_init: {\"Authorization\": \"Bearer <token>\"} \
                       or {\"token\": \"<token>\"}";
    let Some(obj) = payload.as_object() else {
        return Err(format!("no token: {HOW}"));
    };
    if let Some((_, v)) = obj
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
    {
        let value = v
            .as_str()
            .ok_or_else(|| format!("`Authorization` is not text: {HOW}"))?;
        return value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .map(str::trim)
            .ok_or_else(|| format!("`Authorization` must be `Bearer <token>`: {HOW}"));
    }
    match obj.get("token") {
        Some(serde_json::Value::String(t)) => Ok(t.trim()),
        Some(_) => Err(format!("`token` is not text: {HOW}")),
        None => Err(format!("no token: {HOW}")),
    }
}

/// Checks the token of `connection_init`: the caller, and when its token expires; or the
/// close code and reason.
async fn accept(
    state: &AppState,
    payload: &serde_json::Value,
) -> Result<(Principal, Option<Instant>), (u16, String)> {
    let token = token_of(payload).map_err(|m| (4401, m))?;
    let claims = state
        .verifier
        .verify(token)
        .await
        .map_err(|e| (4401, e.message()))?;
    let left_ms = claims
        .exp
        .saturating_mul(1000)
        .saturating_sub(chrono::Utc::now().timestamp_millis());
    // An `exp` too far off for the clock to hold sets no timer.
    let expires = Instant::now().checked_add(Duration::from_millis(left_ms.max(0) as u64));
    let principal = Principal::from_claims(claims);
    if !principal.may(Action::ReadActivities) && !principal.may(Action::ReadIndicators) {
        return Err((
            4403,
            format!(
                "Forbidden: the token's roles ({}) may neither read activities nor indicators",
                principal.roles_label()
            ),
        ));
    }
    Ok((principal, expires))
}

/// The schema as the socket runs it: subscriptions only, each admitted as a POST is.
#[derive(Clone)]
struct Admitted {
    state: AppState,
    principal: Arc<OnceLock<Principal>>,
    /// Quoted in `INTERNAL` errors, as a request id is over HTTP.
    id: String,
    /// Subscriptions running on the connection.
    running: Arc<AtomicUsize>,
}

/// Counts a running subscription until its stream is dropped (completed, stopped, or the
/// connection gone).
struct Running(Arc<AtomicUsize>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn refused(code: ErrorCode, message: impl Into<String>) -> async_graphql::Response {
    async_graphql::Response::from_errors(vec![with_code(
        ServerError::new(message.into(), None),
        code,
    )])
}

impl Admitted {
    /// The request ready to run, or the answer that refuses it.
    async fn admit(
        &self,
        mut request: async_graphql::Request,
    ) -> Result<async_graphql::Request, async_graphql::Response> {
        let Some(principal) = self.principal.get() else {
            return Err(refused(
                ErrorCode::Unauthenticated,
                "no connection_init yet",
            ));
        };
        let doc = async_graphql::parser::parse_query(&request.query)
            .map_err(|e| refused(ErrorCode::Validation, e.to_string()))?;
        let selected =
            doc.operations
                .iter()
                .find(|(name, _)| match (&request.operation_name, name) {
                    (Some(want), Some(n)) => want.as_str() == n.as_str(),
                    (None, _) => true,
                    (Some(_), None) => false,
                });
        if let Some((_, op)) = selected
            && op.node.ty != OperationType::Subscription
        {
            return Err(refused(
                ErrorCode::Validation,
                "only subscriptions are run over /graphql/ws: send queries and mutations with \
                 POST /graphql",
            ));
        }
        let admitted = self
            .state
            .admission
            .check(&doc, request.operation_name.as_deref(), &request.variables)
            .await;
        let decision = self.state.limiter.charge(principal, 1).await;
        if let crate::http::ratelimit::Decision::Refused { retry_after, .. } = decision {
            let mut e = with_code(
                ServerError::new(
                    format!("rate limit: no points left to subscribe; retry after {retry_after} s"),
                    None,
                ),
                ErrorCode::RateLimited,
            );
            e.extensions
                .get_or_insert_with(Default::default)
                .set("retryAfter", retry_after);
            return Err(async_graphql::Response::from_errors(vec![e]));
        }
        admitted.map_err(async_graphql::Response::from_errors)?;
        request.set_parsed_query(doc);
        Ok(request)
    }
}

impl Executor for Admitted {
    async fn execute(&self, _request: async_graphql::Request) -> async_graphql::Response {
        refused(
            ErrorCode::Validation,
            "only subscriptions are run over /graphql/ws: send queries and mutations with POST \
             /graphql",
        )
    }

    fn execute_stream(
        &self,
        request: async_graphql::Request,
        session_data: Option<Arc<Data>>,
    ) -> BoxStream<'static, async_graphql::Response> {
        // The slot is taken here, in the order the client sent its messages (what follows
        // runs concurrently), and given back when the stream is dropped.
        let taken = self.running.fetch_add(1, Ordering::SeqCst);
        let running = Running(self.running.clone());
        let id = self.id.clone();
        let classify = move |mut response: async_graphql::Response| {
            let _running = &running;
            super::graphql::classify(&mut response, true, &id);
            response
        };
        if taken >= MAX_SUBSCRIPTIONS {
            let answer = refused(
                ErrorCode::QueryTooComplex,
                format!(
                    "at most {MAX_SUBSCRIPTIONS} subscriptions at once on one connection: \
                     complete one first, or open another connection"
                ),
            );
            return stream::once(future::ready(answer)).map(classify).boxed();
        }
        let this = self.clone();
        let schema = self.state.schema.clone();
        stream::once(async move { this.admit(request).await })
            .flat_map(move |admitted| match admitted {
                Ok(request) => schema.execute_stream_with_session_data(
                    request,
                    session_data.clone().unwrap_or_default(),
                ),
                Err(answer) => stream::once(future::ready(answer)).boxed(),
            })
            .map(classify)
            .boxed()
    }
}

/// Runs one connection to its end.
async fn serve(state: AppState, socket: WebSocket) {
    metrics::gauge!("cnscd_live_connections").increment(1.0);
    let open = state.closing.open.clone();
    open.fetch_add(1, Ordering::SeqCst);
    run(state, socket).await;
    open.fetch_sub(1, Ordering::SeqCst);
    metrics::gauge!("cnscd_live_connections").decrement(1.0);
}

/// The connection's loop: the protocol's messages out, its close codes, the timers.
async fn run(state: AppState, socket: WebSocket) {
    let (mut sink, source) = socket.split();
    let auth = Arc::new(Mutex::new(Auth::Waiting));
    let principal = Arc::new(OnceLock::new());
    let input = source
        .take_while(|m| future::ready(m.is_ok()))
        .filter_map(|m| {
            future::ready(match m {
                Ok(m @ (Message::Text(_) | Message::Binary(_))) => Some(m.into_data()),
                _ => None,
            })
        });
    let on_init = {
        let state = state.clone();
        let auth = auth.clone();
        let principal = principal.clone();
        move |payload: serde_json::Value| async move {
            let outcome = accept(&state, &payload).await;
            let mut slot = auth.lock().unwrap_or_else(|e| e.into_inner());
            match outcome {
                Ok((p, expires)) => {
                    *slot = Auth::Accepted { expires };
                    tracing::info!(subject = %p.subject, roles = %p.roles_label(), "live feed: connection accepted");
                    let mut data = Data::default();
                    data.insert(Loaders::new(&state.db, &state.store, &p));
                    data.insert(p.clone());
                    let _ = principal.set(p);
                    Ok(data)
                }
                Err((code, reason)) => {
                    *slot = Auth::Refused(code, reason.clone());
                    Err(async_graphql::Error::new(reason))
                }
            }
        }
    };
    let executor = Admitted {
        state: state.clone(),
        principal,
        id: uuid::Uuid::new_v4().to_string(),
        running: Arc::new(AtomicUsize::new(0)),
    };
    let mut protocol = Box::pin(
        Protocol::new(executor, input, WebSocketProtocols::GraphQLWS).on_connection_init(on_init),
    );
    let init_deadline = Instant::now() + INIT_TIMEOUT;
    let mut stopping = state.closing.tx.subscribe();
    loop {
        let auth_now = auth.lock().map(|a| a.clone()).unwrap_or(Auth::Waiting);
        let deadline = match &auth_now {
            Auth::Waiting => Some((init_deadline, 4408, "Connection initialisation timeout")),
            Auth::Accepted { expires } => {
                expires.map(|at| (at, 4401, "Unauthorized: the token expired"))
            }
            Auth::Refused(..) => None,
        };
        let timer = async {
            match deadline {
                Some((at, ..)) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        let close = tokio::select! {
            msg = protocol.next() => match msg {
                None => break,
                Some(WsMessage::Text(text)) => {
                    // A client that stops reading is dropped rather than left to block the
                    // timers.
                    let sent = tokio::time::timeout(SEND_TIMEOUT, sink.send(Message::Text(text.into())));
                    if !matches!(sent.await, Ok(Ok(()))) {
                        break;
                    }
                    continue;
                }
                Some(WsMessage::Close(code, reason)) => {
                    let current = auth.lock().map(|a| a.clone()).unwrap_or(Auth::Waiting);
                    match (current, code) {
                        (Auth::Refused(code, reason), _) => (code, reason),
                        // A subscribe before the connection was acknowledged.
                        (_, 1011) => (4401, "Unauthorized".to_owned()),
                        // A message that is not of the protocol.
                        (_, 1002) => (4400, reason),
                        _ => (code, reason),
                    }
                }
            },
            () = stopped(&mut stopping) => {
                (1001, "the server is shutting down: connect again".to_owned())
            }
            () = timer => {
                let (_, code, reason) = deadline.unwrap_or((init_deadline, 4401, "Unauthorized"));
                (code, reason.to_owned())
            }
        };
        let (code, reason) = close;
        let reason = fit(reason);
        tracing::info!(code, reason = %reason, "live feed: connection closed");
        let close = sink.send(Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        })));
        let _ = tokio::time::timeout(SEND_TIMEOUT, close).await;
        break;
    }
}

/// Completes when the server stops.
async fn stopped(rx: &mut tokio::sync::watch::Receiver<bool>) {
    let gone = rx.wait_for(|s| *s).await.is_err();
    if gone {
        // No server to stop (cannot happen while the connection holds the state): never.
        std::future::pending::<()>().await;
    }
}

/// A close reason as the protocol allows it: at most 123 bytes, cut at a character boundary.
fn fit(mut reason: String) -> String {
    const MAX: usize = 123;
    if reason.len() > MAX {
        let mut end = MAX - 3;
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        reason.truncate(end);
        reason.push_str("...");
    }
    reason
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_reasons_fit_a_control_frame() {
        let long = "Trần Thị Lệ ".repeat(30);
        let cut = fit(long);
        assert!(cut.len() <= 123 && cut.ends_with("..."));
        assert_eq!(fit("short".into()), "short");
    }

    #[test]
    fn tokens_come_in_either_form() {
        let j = |v: &str| serde_json::from_str::<serde_json::Value>(v).unwrap_or_default();
        assert_eq!(
            token_of(&j(r#"{"Authorization": "Bearer abc"}"#)),
            Ok("abc")
        );
        assert_eq!(
            token_of(&j(r#"{"authorization": "bearer abc"}"#)),
            Ok("abc")
        );
        assert_eq!(token_of(&j(r#"{"token": " abc "}"#)), Ok("abc"));
        for bad in [
            r#"{"Authorization": "abc"}"#,
            r#"{"token": 1}"#,
            r#"{}"#,
            "null",
            "[]",
        ] {
            assert!(token_of(&j(bad)).is_err(), "{bad}");
        }
    }
}

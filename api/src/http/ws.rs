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
//!
//! # What a socket may cost
//!
//! The upgrade is done here (not by axum's `WebSocketUpgrade`) so that the connection's reader
//! can be bounded by whether the socket has authenticated yet:
//! - before `connection_init` is accepted, at most [`INIT_MAX_BYTES`] are read from the
//!   connection at all (the reader itself stops there: nothing more is buffered), and at most
//!   [`Sockets`]' `max_unauthenticated` sockets wait at once (a 503 for more);
//! - after, a message and a frame are at most [`MAX_MESSAGE_BYTES`] (what POST allows), every
//!   message's JSON and every subscription's document nest at most
//!   [`nesting::MAX_NESTING`] levels, and one caller (subject and client) holds at most
//!   `max_sockets_per_caller` sockets and `max_subscriptions_per_caller` subscriptions;
//! - each subscription is admitted as a POST is and charged its cost to the caller's rate-limit
//!   bucket when it starts; one that costs more than the bucket holds is refused
//!   (`QUERY_TOO_COMPLEX`), as POST refuses it.
use super::AppState;
use crate::auth::{Action, Principal};
use crate::error::ErrorCode;
use crate::graphql::limits::with_code;
use crate::graphql::nesting;
use async_graphql::futures_util::stream::{self, BoxStream, StreamExt};
use async_graphql::futures_util::{SinkExt, future};
use async_graphql::http::{WebSocket as Protocol, WebSocketProtocols, WsMessage};
use async_graphql::parser::types::OperationType;
use async_graphql::{Data, Executor, ServerError};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::TokioIo;
use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

/// The one subprotocol spoken.
pub const PROTOCOL: &str = "graphql-transport-ws";
/// How long a client has to send `connection_init` after the upgrade.
pub const INIT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest a message may wait for the client to take it before the connection is dropped.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// Most subscriptions running at once on one connection.
pub const MAX_SUBSCRIPTIONS: usize = 50;
/// Most bytes read from a connection before its `connection_init` is accepted: the message
/// with a token (an identity provider's tokens run to a few kilobytes) and its frame header.
pub const INIT_MAX_BYTES: usize = 16 * 1024;
/// Largest message (and frame) after `connection_init`: what a POST body may be.
pub const MAX_MESSAGE_BYTES: usize = super::MAX_BODY;
/// Sockets waiting for `connection_init` at once, unless configured.
pub const DEFAULT_MAX_UNAUTHENTICATED: usize = 100;
/// Sockets of one caller (subject and client) at once, unless configured.
pub const DEFAULT_MAX_SOCKETS_PER_CALLER: usize = 20;
/// Subscriptions of one caller, over all its sockets, at once, unless configured.
pub const DEFAULT_MAX_SUBSCRIPTIONS_PER_CALLER: usize = 100;

/// The bounds on sockets (settings `CNSCD_WS_*`).
#[derive(Clone, Copy, Debug)]
pub struct SocketLimits {
    pub max_unauthenticated: usize,
    pub max_sockets_per_caller: usize,
    pub max_subscriptions_per_caller: usize,
}

impl Default for SocketLimits {
    fn default() -> Self {
        Self {
            max_unauthenticated: DEFAULT_MAX_UNAUTHENTICATED,
            max_sockets_per_caller: DEFAULT_MAX_SOCKETS_PER_CALLER,
            max_subscriptions_per_caller: DEFAULT_MAX_SUBSCRIPTIONS_PER_CALLER,
        }
    }
}

/// The sockets open now: how many wait for `connection_init`, and each caller's sockets and
/// subscriptions. Cheap to clone.
#[derive(Clone, Default)]
pub struct Sockets {
    limits: SocketLimits,
    waiting: Arc<AtomicUsize>,
    callers: Arc<Mutex<HashMap<String, Held>>>,
}

/// What one caller holds.
#[derive(Default, Debug)]
struct Held {
    sockets: usize,
    subscriptions: usize,
}

impl Sockets {
    pub fn new(limits: SocketLimits) -> Self {
        Self {
            limits,
            ..Self::default()
        }
    }

    /// A place for a socket that has not authenticated yet, if one is free.
    fn wait(&self) -> Option<Waiting> {
        let taken = self.waiting.fetch_add(1, Ordering::SeqCst);
        let slot = Waiting(Some(self.waiting.clone()));
        (taken < self.limits.max_unauthenticated).then_some(slot)
    }

    /// Counts one more of the caller's sockets or subscriptions, if under its bound; the
    /// returned guard gives it back.
    fn hold(&self, caller: &str, what: Kind) -> Result<Holding, String> {
        let mut callers = self.callers.lock().unwrap_or_else(|e| e.into_inner());
        let held = callers.entry(caller.to_owned()).or_default();
        let (count, max, noun) = match what {
            Kind::Socket => (
                &mut held.sockets,
                self.limits.max_sockets_per_caller,
                "connections",
            ),
            Kind::Subscription => (
                &mut held.subscriptions,
                self.limits.max_subscriptions_per_caller,
                "subscriptions",
            ),
        };
        if *count >= max {
            return Err(format!(
                "at most {max} {noun} at once per caller (token subject and client): close one \
                 first"
            ));
        }
        *count += 1;
        Ok(Holding {
            sockets: self.clone(),
            caller: caller.to_owned(),
            what,
        })
    }
}

/// A socket's place among those waiting for `connection_init`, given back on drop.
struct Waiting(Option<Arc<AtomicUsize>>);

impl Waiting {
    fn release(&mut self) {
        if let Some(n) = self.0.take() {
            n.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.release();
    }
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Socket,
    Subscription,
}

/// One of a caller's sockets or subscriptions, given back on drop.
struct Holding {
    sockets: Sockets,
    caller: String,
    what: Kind,
}

impl Drop for Holding {
    fn drop(&mut self) {
        let mut callers = self
            .sockets
            .callers
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(held) = callers.get_mut(&self.caller) {
            match self.what {
                Kind::Socket => held.sockets = held.sockets.saturating_sub(1),
                Kind::Subscription => held.subscriptions = held.subscriptions.saturating_sub(1),
            }
            if held.sockets == 0 && held.subscriptions == 0 {
                callers.remove(&self.caller);
            }
        }
    }
}

/// The connection as the WebSocket reader sees it: before authentication it reads at most the
/// bytes left in its budget (no more is buffered anywhere), then fails; after, it reads freely
/// (tungstenite bounds messages and frames).
struct Budgeted<T> {
    inner: T,
    /// Bytes that may still be read; `usize::MAX` once authenticated.
    left: Arc<AtomicUsize>,
}

/// The read error of a connection that sent more than [`INIT_MAX_BYTES`] before it
/// authenticated.
#[derive(Debug)]
struct InitTooLarge;

impl std::fmt::Display for InitTooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "connection_init may be at most {INIT_MAX_BYTES} bytes, and nothing else may come \
             before it is acknowledged"
        )
    }
}

impl std::error::Error for InitTooLarge {}

impl<T: AsyncRead + Unpin> AsyncRead for Budgeted<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let left = self.left.load(Ordering::SeqCst);
        if left == usize::MAX {
            return Pin::new(&mut self.inner).poll_read(cx, buf);
        }
        if left == 0 {
            return Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                InitTooLarge,
            )));
        }
        // Read into a buffer no larger than the budget, so that nothing past it is taken off
        // the connection.
        let mut scratch = vec![0u8; buf.remaining().min(left)];
        let mut limited = ReadBuf::new(&mut scratch);
        match Pin::new(&mut self.inner).poll_read(cx, &mut limited) {
            Poll::Ready(Ok(())) => {
                let n = limited.filled().len();
                buf.put_slice(limited.filled());
                self.left.fetch_sub(n.min(left), Ordering::SeqCst);
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Budgeted<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

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

/// A refusal of the upgrade, as JSON shaped like a GraphQL error.
fn refuse(status: StatusCode, code: ErrorCode, message: String) -> Response {
    let body = serde_json::json!({
        "errors": [{ "message": message, "extensions": { "code": code.as_str() } }]
    });
    let mut resp = (status, body.to_string()).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// Whether a header holds `token` among its comma-separated values, in any case.
fn has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// `Sec-WebSocket-Accept` for a client's key (RFC 6455, section 4.2.2).
fn accept_key(key: &[u8]) -> String {
    use base64::Engine;
    use sha1::{Digest, Sha1};
    let mut sha1 = Sha1::new();
    sha1.update(key);
    sha1.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    base64::engine::general_purpose::STANDARD.encode(sha1.finalize())
}

/// `GET /graphql/ws`: the WebSocket handshake (HTTP/1.1 upgrade), then [`serve`].
pub async fn handler(State(state): State<AppState>, mut request: Request) -> Response {
    let headers = request.headers();
    let how =
        format!("/graphql/ws takes WebSocket connections; subscribe with the {PROTOCOL} protocol");
    if request.method() != Method::GET
        || !has_token(headers, header::CONNECTION, "upgrade")
        || !has_token(headers, header::UPGRADE, "websocket")
    {
        return refuse(
            StatusCode::UPGRADE_REQUIRED,
            ErrorCode::Validation,
            format!("{how} (an HTTP/1.1 GET with `Connection: upgrade` and `Upgrade: websocket`)"),
        );
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_none_or(|v| v.as_bytes() != b"13")
    {
        return refuse(
            StatusCode::BAD_REQUEST,
            ErrorCode::Validation,
            format!("{how} (Sec-WebSocket-Version: 13)"),
        );
    }
    let Some(key) = headers
        .get(header::SEC_WEBSOCKET_KEY)
        .map(|k| accept_key(k.as_bytes()))
    else {
        return refuse(
            StatusCode::BAD_REQUEST,
            ErrorCode::Validation,
            format!("{how} (Sec-WebSocket-Key is missing)"),
        );
    };
    if !has_token(headers, header::SEC_WEBSOCKET_PROTOCOL, PROTOCOL) {
        return refuse(
            StatusCode::BAD_REQUEST,
            ErrorCode::Validation,
            format!("offer the `{PROTOCOL}` subprotocol (Sec-WebSocket-Protocol: {PROTOCOL})"),
        );
    }
    let Some(on_upgrade) = request
        .extensions_mut()
        .remove::<hyper::upgrade::OnUpgrade>()
    else {
        return refuse(
            StatusCode::UPGRADE_REQUIRED,
            ErrorCode::Validation,
            format!("{how} (this connection cannot be upgraded: use HTTP/1.1)"),
        );
    };
    let Some(waiting) = state.sockets.wait() else {
        let mut resp = refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Internal,
            format!(
                "too many connections are waiting to authenticate (at most {}); try again \
                 shortly",
                state.sockets.limits.max_unauthenticated
            ),
        );
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        return resp;
    };
    tokio::spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(u) => u,
            Err(e) => {
                tracing::debug!(error = %e, "live feed: upgrade failed");
                return;
            }
        };
        let budget = Arc::new(AtomicUsize::new(INIT_MAX_BYTES));
        let io = Budgeted {
            inner: TokioIo::new(upgraded),
            left: budget.clone(),
        };
        let config = WebSocketConfig::default()
            .read_buffer_size(8 * 1024)
            .max_message_size(Some(MAX_MESSAGE_BYTES))
            .max_frame_size(Some(MAX_MESSAGE_BYTES));
        let socket = WebSocketStream::from_raw_socket(io, Role::Server, Some(config)).await;
        serve(state, socket, Gate { waiting, budget }).await;
    });
    let mut resp = StatusCode::SWITCHING_PROTOCOLS.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(
        header::SEC_WEBSOCKET_PROTOCOL,
        HeaderValue::from_static(PROTOCOL),
    );
    if let Ok(v) = HeaderValue::from_str(&key) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, v);
    }
    resp
}

/// What a socket holds until it authenticates: its place among the waiting, and the reader's
/// budget, lifted once `connection_init` is accepted.
struct Gate {
    waiting: Waiting,
    budget: Arc<AtomicUsize>,
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
struct Running {
    on_socket: Arc<AtomicUsize>,
    /// The caller's count, once admitted.
    for_caller: Mutex<Option<Holding>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.on_socket.fetch_sub(1, Ordering::SeqCst);
    }
}

fn refused(code: ErrorCode, message: impl Into<String>) -> async_graphql::Response {
    async_graphql::Response::from_errors(vec![with_code(
        ServerError::new(message.into(), None),
        code,
    )])
}

impl Admitted {
    /// The request ready to run, or the answer that refuses it. A subscription is charged
    /// its admission cost when it starts, as a POST is; it counts against the caller's
    /// subscriptions while it runs.
    async fn admit(
        &self,
        mut request: async_graphql::Request,
        running: &Running,
    ) -> Result<async_graphql::Request, async_graphql::Response> {
        let Some(principal) = self.principal.get() else {
            return Err(refused(
                ErrorCode::Unauthenticated,
                "no connection_init yet",
            ));
        };
        if let Err(e) = nesting::check_document(&request.query) {
            return Err(refused(
                ErrorCode::QueryTooComplex,
                e.message("the subscription"),
            ));
        }
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
        let (cost, admitted) = match self
            .state
            .admission
            .check(&doc, request.operation_name.as_deref(), &request.variables)
            .await
        {
            Ok(cost) => (cost, Ok(())),
            Err(errors) => (1, Err(errors)),
        };
        let decision = self.state.limiter.charge(principal, cost).await;
        match decision {
            crate::http::ratelimit::Decision::Refused { retry_after, .. } => {
                let mut e = with_code(
                    ServerError::new(
                        format!(
                            "rate limit: this subscription costs {cost} points, more than your \
                             client has left; retry after {retry_after} s"
                        ),
                        None,
                    ),
                    ErrorCode::RateLimited,
                );
                e.extensions
                    .get_or_insert_with(Default::default)
                    .set("retryAfter", retry_after);
                return Err(async_graphql::Response::from_errors(vec![e]));
            }
            crate::http::ratelimit::Decision::TooCostly { throttle, .. } => {
                return Err(refused(
                    ErrorCode::QueryTooComplex,
                    format!(
                        "the subscription costs {cost} points, more than the {} a minute your \
                         client's rate limit allows: ask for less",
                        throttle.maximum
                    ),
                ));
            }
            _ => {}
        }
        admitted.map_err(async_graphql::Response::from_errors)?;
        let holding = self
            .state
            .sockets
            .hold(&principal.identity(), Kind::Subscription)
            .map_err(|m| refused(ErrorCode::QueryTooComplex, m))?;
        *running.for_caller.lock().unwrap_or_else(|e| e.into_inner()) = Some(holding);
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
        let running = Arc::new(Running {
            on_socket: self.running.clone(),
            for_caller: Mutex::new(None),
        });
        let id = self.id.clone();
        let classify = {
            let running = running.clone();
            move |mut response: async_graphql::Response| {
                let _running = &running;
                super::graphql::classify(&mut response, true, &id);
                response
            }
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
        stream::once(async move { this.admit(request, &running).await })
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

type Socket = WebSocketStream<Budgeted<TokioIo<hyper::upgrade::Upgraded>>>;

/// Runs one connection to its end.
async fn serve(state: AppState, socket: Socket, gate: Gate) {
    metrics::gauge!("cnscd_live_connections").increment(1.0);
    let open = state.closing.open.clone();
    open.fetch_add(1, Ordering::SeqCst);
    run(state, socket, gate).await;
    open.fetch_sub(1, Ordering::SeqCst);
    metrics::gauge!("cnscd_live_connections").decrement(1.0);
}

/// Why the client's messages stopped coming, when it was not the client's choice: the close
/// code and reason to send.
type Ended = Arc<Mutex<Option<(u16, String)>>>;

/// The close code and reason for a read error.
fn close_for(e: &WsError) -> Option<(u16, String)> {
    match e {
        WsError::Capacity(_) => Some((
            1009,
            format!("a message may be at most {MAX_MESSAGE_BYTES} bytes"),
        )),
        WsError::Io(io) if io.get_ref().is_some_and(|inner| inner.is::<InitTooLarge>()) => {
            Some((1009, InitTooLarge.to_string()))
        }
        WsError::Protocol(p) => Some((1002, p.to_string())),
        WsError::Utf8(_) => Some((1007, "a text message is not UTF-8".to_owned())),
        _ => None,
    }
}

/// The client's messages as the protocol reads them: text and binary payloads, each checked
/// for nesting before it is parsed. Ends at a close, a read error or a message nested too
/// deeply, noting why in `ended`.
fn messages(
    source: impl async_graphql::futures_util::Stream<Item = Result<Message, WsError>>
    + Unpin
    + Send
    + 'static,
    ended: Ended,
) -> impl async_graphql::futures_util::Stream<Item = Vec<u8>> + Send + 'static {
    stream::unfold((source, ended), |(mut source, ended)| async move {
        loop {
            let data = match source.next().await? {
                Ok(Message::Text(t)) => t.as_bytes().to_vec(),
                Ok(Message::Binary(b)) => b.to_vec(),
                Ok(Message::Close(_)) => return None,
                Ok(_) => continue,
                Err(e) => {
                    *ended.lock().unwrap_or_else(|e| e.into_inner()) = close_for(&e);
                    return None;
                }
            };
            if let Err(e) = nesting::check_json(&data) {
                *ended.lock().unwrap_or_else(|e| e.into_inner()) =
                    Some((4400, e.message("the message")));
                return None;
            }
            return Some((data, (source, ended)));
        }
    })
}

/// What `connection_init` settles, shared with the connection's loop.
struct Init {
    state: AppState,
    auth: Arc<Mutex<Auth>>,
    principal: Arc<OnceLock<Principal>>,
    held: Arc<Mutex<Option<Holding>>>,
    gate: Arc<Mutex<Gate>>,
}

impl Init {
    /// Checks the token of `connection_init` and takes one of the caller's sockets: on
    /// success the connection's request data, else the close code and reason, kept for the
    /// loop to send.
    async fn accept(self, payload: serde_json::Value) -> async_graphql::Result<Data> {
        let outcome = match accept(&self.state, &payload).await {
            Ok((p, expires)) => match self.state.sockets.hold(&p.identity(), Kind::Socket) {
                Ok(h) => Ok((p, expires, h)),
                Err(m) => Err((4429, m)),
            },
            Err(e) => Err(e),
        };
        let mut slot = self.auth.lock().unwrap_or_else(|e| e.into_inner());
        match outcome {
            Ok((p, expires, holding)) => {
                *slot = Auth::Accepted { expires };
                {
                    let mut gate = self.gate.lock().unwrap_or_else(|e| e.into_inner());
                    gate.budget.store(usize::MAX, Ordering::SeqCst);
                    gate.waiting.release();
                }
                *self.held.lock().unwrap_or_else(|e| e.into_inner()) = Some(holding);
                tracing::info!(subject = %p.subject, roles = %p.roles_label(), "live feed: connection accepted");
                let mut data = Data::default();
                crate::schema::loaders::insert(&mut data, &self.state.db, &self.state.store, &p);
                data.insert(p.clone());
                let _ = self.principal.set(p);
                Ok(data)
            }
            Err((code, reason)) => {
                *slot = Auth::Refused(code, reason.clone());
                Err(async_graphql::Error::new(reason))
            }
        }
    }
}

/// The connection's loop: the protocol's messages out, its close codes, the timers.
async fn run(state: AppState, socket: Socket, gate: Gate) {
    let (mut sink, source) = socket.split();
    let auth = Arc::new(Mutex::new(Auth::Waiting));
    let principal = Arc::new(OnceLock::new());
    let ended: Ended = Arc::default();
    let input = messages(source, ended.clone());
    // The caller's hold on one of its sockets, from `connection_init` to the end.
    let held: Arc<Mutex<Option<Holding>>> = Arc::default();
    let gate = Arc::new(Mutex::new(gate));
    let init = Init {
        state: state.clone(),
        auth: auth.clone(),
        principal: principal.clone(),
        held: held.clone(),
        gate,
    };
    let executor = Admitted {
        state: state.clone(),
        principal,
        id: uuid::Uuid::new_v4().to_string(),
        running: Arc::new(AtomicUsize::new(0)),
    };
    let mut protocol = Box::pin(
        Protocol::new(executor, input, WebSocketProtocols::GraphQLWS)
            .on_connection_init(move |payload| init.accept(payload)),
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
                None => match ended.lock().map(|e| e.clone()).ok().flatten() {
                    // The client stopped sending what it may: say why.
                    Some(why) => why,
                    None => break,
                },
                Some(WsMessage::Text(text)) => {
                    // A client that stops reading is dropped rather than left to block the
                    // timers.
                    let sent = tokio::time::timeout(SEND_TIMEOUT, sink.send(Message::text(text)));
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
            code: CloseCode::from(code),
            reason: reason.into(),
        })));
        let _ = tokio::time::timeout(SEND_TIMEOUT, close).await;
        break;
    }
    drop(protocol);
    drop(held);
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

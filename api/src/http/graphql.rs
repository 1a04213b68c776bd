//! The GraphQL handler: authentication, per-request loaders, GraphQL-over-HTTP status codes
//! and media types, GraphiQL for browsers, and no mutations over GET.
use super::AppState;
use super::metrics;
use super::persisted;
use crate::audit::service::RequestId;
use crate::auth::Principal;
use crate::error::{DATABASE_UNAVAILABLE, ErrorCode};
use crate::graphql::limits::with_code;
use crate::graphql::nesting;
use async_graphql::parser::types::OperationType;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";
const JSON: &str = "application/json";

/// A response with a single top-level error.
fn error_response(
    status: StatusCode,
    code: ErrorCode,
    message: &str,
    media: &'static str,
) -> Response {
    let body = serde_json::json!({
        "errors": [{ "message": message, "extensions": { "code": code.as_str() } }]
    });
    let mut resp = (status, body.to_string()).into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(media));
    if status == StatusCode::UNAUTHORIZED {
        resp.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    resp
}

/// Apollo's automatic persisted queries (`extensions.persistedQuery`): a hash sent alone is
/// replaced by the text stored under it; a text sent with its hash is checked against it and
/// stored for the requests that will send the hash alone. An unknown hash is answered as
/// Apollo's clients expect (200, `PersistedQueryNotFound`), so that they send the text.
async fn with_persisted(
    state: &AppState,
    mut request: async_graphql::Request,
    media: &'static str,
) -> Result<async_graphql::Request, Response> {
    let Some(value) = request.extensions.remove("persistedQuery") else {
        return Ok(request);
    };
    let value = value.into_json().unwrap_or(serde_json::Value::Null);
    let refused = |e: crate::error::Error| {
        if e.is_user_error() {
            error_response(StatusCode::BAD_REQUEST, e.code(), &e.message(), media)
        } else {
            tracing::error!(error = %e.message(), "persisted query not read");
            error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                ErrorCode::Internal,
                "internal error; it has been logged",
                media,
            )
        }
    };
    let asked = match persisted::asked(Some(&value)) {
        Ok(Some(asked)) => asked,
        Ok(None) => return Ok(request),
        Err(e) => return Err(refused(e)),
    };
    if request.query.is_empty() {
        return match state.persisted.text_of(&state.db, &asked.hash).await {
            Ok(Some(text)) => {
                request.query = text.to_string();
                Ok(request)
            }
            Ok(None) => {
                let body = serde_json::json!({
                    "errors": [{
                        "message": persisted::NOT_FOUND_MESSAGE,
                        "extensions": { "code": persisted::NOT_FOUND_CODE }
                    }]
                });
                let mut resp = (StatusCode::OK, body.to_string()).into_response();
                resp.headers_mut()
                    .insert(header::CONTENT_TYPE, HeaderValue::from_static(media));
                Err(resp)
            }
            Err(e) => Err(refused(e)),
        };
    }
    // The hash must be the text's; only a text that could run is kept (it still goes through
    // every check below).
    let runnable = nesting::check_document(&request.query).is_ok()
        && async_graphql::parser::parse_query(&request.query).is_ok();
    let checked = if runnable {
        state
            .persisted
            .remember(&state.db, &asked.hash, &request.query)
            .await
    } else {
        persisted::check_hash(&asked.hash, &request.query)
    };
    checked.map_err(refused)?;
    Ok(request)
}

/// The media type to answer with, from the Accept header.
fn media(headers: &HeaderMap) -> &'static str {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if accept.contains(GRAPHQL_RESPONSE)
        || accept.is_empty()
        || accept.contains("*/*") && !accept.contains(JSON)
    {
        GRAPHQL_RESPONSE
    } else {
        JSON
    }
}

/// The caller of a request from its bearer token (also the CSV export's check).
pub(super) async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Principal, String> {
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or("missing Authorization header: send `Authorization: Bearer <token>`")?;
    let value = value
        .to_str()
        .map_err(|_| "the Authorization header is not text")?;
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .ok_or("the Authorization header must be `Bearer <token>`")?
        .trim();
    state
        .verifier
        .verify(token)
        .await
        .map(Principal::from_claims)
        .map_err(|e| e.message())
}

/// Runs a request of an authenticated caller and labels the response with its operation for
/// the metrics layer.
pub(super) async fn execute(
    state: AppState,
    principal: Principal,
    headers: HeaderMap,
    request: async_graphql::Request,
    media: &'static str,
) -> Response {
    let operation = OnceLock::new();
    if let Some(name) = &request.operation_name {
        let _ = operation.set(name.clone());
    }
    let mut resp = run(state, principal, headers, request, media, &operation).await;
    resp.extensions_mut()
        .insert(metrics::Operation::Named(operation.into_inner()));
    resp
}

/// The 401 of a request without a valid token, before anything it sent but its headers was
/// read; labelled for the metrics without any name the caller chose.
fn unauthenticated(msg: &str, media: &'static str) -> Response {
    let mut resp = error_response(
        StatusCode::UNAUTHORIZED,
        ErrorCode::Unauthenticated,
        msg,
        media,
    );
    resp.extensions_mut()
        .insert(metrics::Operation::Unauthenticated);
    resp
}

/// A 400 for a document or JSON text nested past [`nesting::MAX_NESTING`].
fn too_deep(e: nesting::TooDeep, what: &str, media: &'static str) -> Response {
    error_response(
        StatusCode::BAD_REQUEST,
        ErrorCode::QueryTooComplex,
        &e.message(what),
        media,
    )
}

async fn run(
    state: AppState,
    principal: Principal,
    headers: HeaderMap,
    request: async_graphql::Request,
    media: &'static str,
    operation: &OnceLock<String>,
) -> Response {
    let span = tracing::Span::current();
    span.record("subject", principal.subject.as_str());
    span.record("roles", principal.roles_label().as_str());
    if let Some(op) = &request.operation_name {
        span.record("operation", op.as_str());
    }
    let request_id = headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let executed = AtomicBool::new(false);
    // The stages, one by one: parse, admission (limits and validation), execution. The
    // timeout covers them all; execution stops at it, the resolvers' futures being dropped at
    // their next await (every statement is one), so no loop outlives the request.
    // Each stage's outcome is charged to the caller's rate-limit bucket before it is answered:
    // the query's cost once admitted, 1 for a request refused before it runs.
    let staged = async {
        if let Err(e) = nesting::check_document(&request.query) {
            let decision = state.limiter.charge(&principal, 1).await;
            if let Some(refused) = decision.refusal(media) {
                return Err(refused);
            }
            return Err(too_deep(e, "the query", media));
        }
        let doc = match async_graphql::parser::parse_query(&request.query) {
            Ok(doc) => doc,
            Err(e) => {
                let decision = state.limiter.charge(&principal, 1).await;
                if let Some(refused) = decision.refusal(media) {
                    return Err(refused);
                }
                let e = with_code(async_graphql::ServerError::from(e), ErrorCode::Validation);
                return Ok(async_graphql::Response::from_errors(vec![e]));
            }
        };
        // A document with one named operation names the request even without
        // `operationName` (the metrics label it by that name).
        if let async_graphql::parser::types::DocumentOperations::Multiple(ops) = &doc.operations
            && ops.len() == 1
            && let Some(name) = ops.keys().next()
        {
            let _ = operation.set(name.to_string());
        }
        let (cost, admitted) = match state
            .admission
            .check(&doc, request.operation_name.as_deref(), &request.variables)
            .await
        {
            Ok(cost) => (cost, Ok(())),
            Err(errors) => (1, Err(errors)),
        };
        let decision = state.limiter.charge(&principal, cost).await;
        if let Some(refused) = decision.refusal(media) {
            return Err(refused);
        }
        if let Err(errors) = admitted {
            return Ok(async_graphql::Response::from_errors(errors));
        }
        executed.store(true, Ordering::SeqCst);
        let changes = changes_anything(&doc);
        let mut response = execute_admitted(&state, &principal, request, doc, &request_id).await;
        if changes {
            // A mutation has committed whatever it changed: this replica's webhook deliveries
            // need not wait for their next look.
            state.webhook_wake.notify_one();
        }
        response
            .extensions
            .insert("cost".to_owned(), decision.report());
        Ok(response)
    };
    let mut response = match tokio::time::timeout(state.request_timeout, staged).await {
        Ok(Ok(r)) => r,
        Ok(Err(refused)) => return refused,
        Err(_) => return stopped(state.request_timeout, &request_id, media),
    };
    let status = classify(&mut response, executed.load(Ordering::SeqCst), &request_id);
    let body = serde_json::to_string(&response).unwrap_or_else(|_| "{}".to_owned());
    let mut resp = (status, body).into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(media));
    if status == StatusCode::SERVICE_UNAVAILABLE {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    }
    resp.extensions_mut()
        .insert(metrics::HadErrors(!response.errors.is_empty()));
    resp
}

/// Whether a document holds a mutation (which commits before its answer is sent).
fn changes_anything(doc: &async_graphql::parser::types::ExecutableDocument) -> bool {
    doc.operations
        .iter()
        .any(|(_, op)| op.node.ty == OperationType::Mutation)
}

/// Executes an admitted request (`doc`: its parsed query) with the caller's loaders; the
/// answer notes which data it reflects (`extensions.dataAsOf`).
async fn execute_admitted(
    state: &AppState,
    principal: &Principal,
    request: async_graphql::Request,
    doc: async_graphql::parser::types::ExecutableDocument,
    request_id: &str,
) -> async_graphql::Response {
    let as_of = std::sync::Arc::new(crate::graphql::DataAsOf::default());
    let mut request =
        crate::schema::loaders::with_loaders(request, &state.db, &state.store, principal)
            .data(principal.clone())
            .data(RequestId(request_id.to_owned()))
            .data(as_of.clone());
    request.set_parsed_query(doc);
    let mut response = state.schema.execute(request).await;
    if let Some(at) = as_of.get() {
        response.extensions.insert(
            "dataAsOf".to_owned(),
            async_graphql::Value::String(at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
        );
    }
    response
}

/// The answer to a request stopped at the request timeout: 503, to be tried again.
fn stopped(timeout: std::time::Duration, request_id: &str, media: &'static str) -> Response {
    tracing::error!(
        timeout_ms = timeout.as_millis() as u64,
        "request stopped: it ran past the request timeout"
    );
    let body = serde_json::json!({ "errors": [{
        "message": format!(
            "the request did not finish within {} ms and was stopped; ask for less \
             (fewer units, periods or fields) or try again later (request {request_id})",
            timeout.as_millis()
        ),
        "extensions": { "code": ErrorCode::Internal.as_str(), "requestId": request_id },
    }] });
    let mut resp = (StatusCode::SERVICE_UNAVAILABLE, body.to_string()).into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(media));
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    resp
}

/// Gives every error its `extensions.code` by the stage that raised it, and the response its
/// HTTP status. No message text is read:
/// - before execution (parse, admission: limits, validation, operation selection): the request
///   is invalid, 400; every error already has its code (`VALIDATION`, or `QUERY_TOO_COMPLEX`
///   for limits);
/// - during execution: resolvers' errors carry their code (every [`crate::error::Error`] does).
///   An error without a code either wraps a Rust error converted with `?` (it has a `source`,
///   e.g. a database error in a loader): `INTERNAL`, its message replaced and logged; or was
///   raised by async-graphql itself while coercing a field's arguments or variables (no
///   source): `VALIDATION`. The status is 200 when there is data, 400 when nothing answered
///   (see [`nothing_answered`]) and every error is `VALIDATION` (nothing could run);
/// - `INTERNAL` errors get the request id, so a caller can quote it and the log (which has the
///   cause under the same id) can be searched.
pub(super) fn classify(
    response: &mut async_graphql::Response,
    executed: bool,
    request_id: &str,
) -> StatusCode {
    for e in &mut response.errors {
        let code = match e.extensions.as_ref().and_then(|x| x.get("code")) {
            Some(async_graphql::Value::String(c)) => c.clone(),
            Some(_) | None => {
                let code = if executed && e.source.is_some() {
                    tracing::error!(error = %e.message, path = ?e.path, "request failed");
                    e.message = "internal error; it has been logged".to_owned();
                    e.source = None;
                    ErrorCode::Internal
                } else {
                    ErrorCode::Validation
                }
                .as_str();
                e.extensions
                    .get_or_insert_with(Default::default)
                    .set("code", code);
                code.to_owned()
            }
        };
        if code == ErrorCode::Internal.as_str() {
            e.message = format!("{} (request {request_id})", e.message);
            e.extensions
                .get_or_insert_with(Default::default)
                .set("requestId", request_id);
        }
    }
    let invalid = response.errors.iter().all(|e| {
        e.extensions
            .as_ref()
            .and_then(|x| x.get("code"))
            .is_some_and(|c| {
                *c == async_graphql::Value::from(ErrorCode::Validation.as_str())
                    || *c == async_graphql::Value::from(ErrorCode::QueryTooComplex.as_str())
            })
    });
    let nothing = nothing_answered(response);
    let rejected = !response.errors.is_empty() && (!executed || nothing && invalid);
    // Nothing could be read because the database is away: 503, so that a load balancer or
    // client retries (with Retry-After) rather than take it as an answer.
    let unavailable = nothing
        && response.errors.iter().any(|e| {
            e.extensions
                .as_ref()
                .and_then(|x| x.get("reason"))
                .is_some_and(|r| *r == async_graphql::Value::from(DATABASE_UNAVAILABLE))
        });
    if rejected {
        StatusCode::BAD_REQUEST
    } else if unavailable {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    }
}

/// Whether no field of the operation answered: `data` is null (a non-null root field failed),
/// or each root field is null with an error of its own (a field error answers null in place,
/// as the GraphQL spec says, so `data` holds the keys asked for).
fn nothing_answered(response: &async_graphql::Response) -> bool {
    match &response.data {
        async_graphql::Value::Null => true,
        async_graphql::Value::Object(fields) => {
            !fields.is_empty()
                && fields.iter().all(|(key, value)| {
                    *value == async_graphql::Value::Null
                        && response.errors.iter().any(|e| {
                            matches!(e.path.as_slice(),
                                [async_graphql::PathSegment::Field(f)] if f == key.as_str())
                        })
                })
        }
        _ => false,
    }
}

/// `POST /graphql` with `application/json` or `application/graphql` bodies. The token is
/// checked from the headers before the body is read: an unauthenticated request costs what its
/// headers cost.
pub async fn post_handler(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    let media = media(&headers);
    let principal = match authenticate(&state, &headers).await {
        Ok(p) => p,
        Err(msg) => return unauthenticated(&msg, media),
    };
    let body = match axum::body::to_bytes(body, super::MAX_BODY).await {
        Ok(b) => b,
        Err(e) => {
            // `to_bytes` stops at the limit with a length-limit error in its source chain.
            let too_large = std::error::Error::source(&e)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
            let (status, code, message) = if too_large {
                (
                    StatusCode::PAYLOAD_TOO_LARGE,
                    ErrorCode::QueryTooComplex,
                    format!(
                        "the request body is larger than {} bytes; send less at once",
                        super::MAX_BODY
                    ),
                )
            } else {
                (
                    StatusCode::BAD_REQUEST,
                    ErrorCode::Validation,
                    format!("the request body cannot be read: {e}"),
                )
            };
            return error_response(status, code, &message, media);
        }
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or(JSON);
    let request = if content_type.starts_with("application/graphql")
        && !content_type.starts_with(GRAPHQL_RESPONSE)
    {
        match std::str::from_utf8(&body) {
            Ok(q) => async_graphql::Request::new(q),
            Err(_) => {
                return error_response(
                    StatusCode::BAD_REQUEST,
                    ErrorCode::Validation,
                    "the body is not UTF-8",
                    media,
                );
            }
        }
    } else if content_type.starts_with(JSON) || content_type.is_empty() {
        if let Err(e) = nesting::check_json(&body) {
            return too_deep(e, "the JSON body", media);
        }
        match serde_json::from_slice::<async_graphql::Request>(&body) {
            Ok(r) => r,
            Err(e) => {
                let msg = format!(
                    "the body is not a GraphQL request ({e}): send {{\"query\": \"...\", \"variables\": {{...}}}}"
                );
                return error_response(StatusCode::BAD_REQUEST, ErrorCode::Validation, &msg, media);
            }
        }
    } else {
        return error_response(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::Validation,
            "send the request as application/json (or application/graphql)",
            media,
        );
    };
    let request = match with_persisted(&state, request, media).await {
        Ok(r) => r,
        Err(refused) => return refused,
    };
    execute(state, principal, headers, request, media).await
}

/// A GET request that would change something (a mutation or subscription selected), refused:
/// GET must be safe to repeat and to cache.
fn refused_over_get(request: &async_graphql::Request, media: &'static str) -> Option<Response> {
    if let Err(e) = nesting::check_document(&request.query) {
        return Some(too_deep(e, "the query", media));
    }
    let doc = async_graphql::parser::parse_query(&request.query).ok()?;
    let is_mutation = doc.operations.iter().any(|(name, op)| {
        let selected = match (&request.operation_name, name) {
            (Some(want), Some(n)) => want.as_str() == n.as_str(),
            (None, _) => true,
            (Some(_), None) => false,
        };
        selected && op.node.ty != OperationType::Query
    });
    if !is_mutation {
        return None;
    }
    let mut resp = error_response(
        StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::Validation,
        "mutations and subscriptions are not allowed over GET: use POST",
        media,
    );
    resp.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("POST"));
    Some(resp)
}

/// Query-string parameters of `GET /graphql`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetParams {
    query: Option<String>,
    operation_name: Option<String>,
    variables: Option<String>,
    extensions: Option<String>,
}

/// `GET /graphql`: GraphiQL for a browser, otherwise a query (never a mutation).
pub async fn get_handler(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let media = media(&headers);
    let wants_html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    let params: GetParams = match serde_json::to_value(&params).and_then(serde_json::from_value) {
        Ok(p) => p,
        Err(e) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                ErrorCode::Validation,
                &e.to_string(),
                media,
            );
        }
    };
    let persisted = params
        .extensions
        .as_deref()
        .is_some_and(|e| e.contains("persistedQuery"));
    let query = match params.query {
        Some(query) => query,
        // A persisted query's hash alone.
        None if persisted => String::new(),
        None if wants_html => return super::graphiql::page(),
        None => {
            return error_response(
                StatusCode::BAD_REQUEST,
                ErrorCode::Validation,
                "missing `query` parameter",
                media,
            );
        }
    };
    // The token first: nothing but the headers is looked at for a stranger.
    let principal = match authenticate(&state, &headers).await {
        Ok(p) => p,
        Err(msg) => return unauthenticated(&msg, media),
    };
    let mut request = async_graphql::Request::new(query);
    if let Some(op) = params.operation_name {
        request = request.operation_name(op);
    }
    for (name, raw) in [
        ("variables", params.variables),
        ("extensions", params.extensions),
    ] {
        let Some(raw) = raw else { continue };
        if let Err(e) = nesting::check_json(raw.as_bytes()) {
            return too_deep(e, &format!("`{name}`"), media);
        }
        match serde_json::from_str::<serde_json::Value>(&raw) {
            Ok(v) if name == "variables" => {
                request = request.variables(async_graphql::Variables::from_json(v))
            }
            Ok(v) => {
                if let Ok(extensions) = serde_json::from_value(v) {
                    request.extensions = extensions;
                }
            }
            Err(e) => {
                return error_response(
                    StatusCode::BAD_REQUEST,
                    ErrorCode::Validation,
                    &format!("`{name}` is not JSON: {e}"),
                    media,
                );
            }
        }
    }
    let request = match with_persisted(&state, request, media).await {
        Ok(r) => r,
        Err(refused) => return refused,
    };
    if let Some(refused) = refused_over_get(&request, media) {
        return refused;
    }
    execute(state, principal, headers, request, media).await
}

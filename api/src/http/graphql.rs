//! The GraphQL handler: authentication, per-request loaders, GraphQL-over-HTTP status codes
//! and media types, GraphiQL for browsers, and no mutations over GET.
use super::AppState;
use crate::audit::service::RequestId;
use crate::auth::Principal;
use crate::error::ErrorCode;
use crate::graphql::loaders::Loaders;
use async_graphql::http::GraphiQLSource;
use async_graphql::parser::types::OperationType;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use std::collections::HashMap;

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

fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<Principal, String> {
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
        .map(Principal::from_claims)
        .map_err(|e| e.message())
}

async fn execute(
    state: AppState,
    headers: HeaderMap,
    request: async_graphql::Request,
    media: &'static str,
) -> Response {
    let principal = match authenticate(&state, &headers) {
        Ok(p) => p,
        Err(msg) => {
            return error_response(
                StatusCode::UNAUTHORIZED,
                ErrorCode::Unauthenticated,
                &msg,
                media,
            );
        }
    };
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
    let loaders = Loaders::new(&state.db, &principal);
    let request = request
        .data(principal)
        .data(loaders)
        .data(RequestId(request_id));
    let mut response = state.schema.execute(request).await;
    // Errors raised before execution (parse, validation, limits) carry no path and no data;
    // arguments and variables that fail to coerce are reported on the field, but they too
    // mean the request was invalid.
    let rejected = response.data == async_graphql::Value::Null
        && !response.errors.is_empty()
        && response
            .errors
            .iter()
            .all(|e| e.path.is_empty() || is_input_error(e));
    for e in &mut response.errors {
        if e.extensions
            .as_ref()
            .is_some_and(|x| x.get("code").is_some())
        {
            continue;
        }
        let code = if is_input_error(e) {
            ErrorCode::Validation
        } else if e.message.contains("too complex")
            || e.message.contains("nested too deep")
            || e.message.contains("too many")
        {
            ErrorCode::QueryTooComplex
        } else if rejected {
            ErrorCode::Validation
        } else {
            ErrorCode::Internal
        };
        e.extensions
            .get_or_insert_with(Default::default)
            .set("code", code.as_str());
    }
    let status = if rejected {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let body = serde_json::to_string(&response).unwrap_or_else(|_| "{}".to_owned());
    let mut resp = (status, body).into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(media));
    resp
}

/// Whether async-graphql raised this error because an argument or variable could not be
/// coerced to its input type.
fn is_input_error(e: &async_graphql::ServerError) -> bool {
    e.extensions
        .as_ref()
        .is_none_or(|x| x.get("code").is_none())
        && (e.message.starts_with("Failed to parse")
            || e.message.starts_with("Expected input type")
            || e.message.starts_with("Invalid value for argument")
            || e.message.contains("(occurred while parsing"))
}

/// `POST /graphql` with `application/json` or `application/graphql` bodies.
pub async fn post_handler(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let media = media(&headers);
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
    execute(state, headers, request, media).await
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
    let Some(query) = params.query else {
        if wants_html {
            return Html(
                GraphiQLSource::build()
                    .endpoint("/graphql")
                    .title("cnscd")
                    .finish(),
            )
            .into_response();
        }
        return error_response(
            StatusCode::BAD_REQUEST,
            ErrorCode::Validation,
            "missing `query` parameter",
            media,
        );
    };
    if let Ok(doc) = async_graphql::parser::parse_query(&query) {
        let is_mutation = doc.operations.iter().any(|(name, op)| {
            let selected = match (&params.operation_name, name) {
                (Some(want), Some(n)) => want.as_str() == n.as_str(),
                (None, _) => true,
                (Some(_), None) => false,
            };
            selected && op.node.ty != OperationType::Query
        });
        if is_mutation {
            let mut resp = error_response(
                StatusCode::METHOD_NOT_ALLOWED,
                ErrorCode::Validation,
                "mutations and subscriptions are not allowed over GET: use POST",
                media,
            );
            resp.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("POST"));
            return resp;
        }
    }
    let mut request = async_graphql::Request::new(query);
    if let Some(op) = params.operation_name {
        request = request.operation_name(op);
    }
    for (name, raw) in [
        ("variables", params.variables),
        ("extensions", params.extensions),
    ] {
        let Some(raw) = raw else { continue };
        match serde_json::from_str::<serde_json::Value>(&raw) {
            Ok(v) if name == "variables" => {
                request = request.variables(async_graphql::Variables::from_json(v))
            }
            Ok(_) => {}
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
    execute(state, headers, request, media).await
}

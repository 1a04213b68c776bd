//! `GET|POST /api/rest/{name}`: a saved operation run as `/graphql` runs it (the same token,
//! area, limits and rate limit), answered as plain JSON (the operation's `data`) or, when it
//! has errors, as an RFC 9457 problem document with the status its first error calls for; and
//! `GET /api/openapi.json`, the OpenAPI document of the saved operations. GET answers carry an
//! `ETag` and answer 304 to a matching `If-None-Match`.
use super::AppState;
use crate::error::ErrorCode;
use crate::rest::document;
use crate::rest::service::{self, Method};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const PROBLEM: &str = "application/problem+json";
const JSON: &str = "application/json";

/// A problem document.
fn problem(status: StatusCode, code: &str, detail: &str, errors: Option<Value>) -> Response {
    let mut body = json!({
        "type": "about:blank",
        "title": status.canonical_reason().unwrap_or("Error"),
        "status": status.as_u16(),
        "detail": detail,
        "code": code,
    });
    if let Some(errors) = errors {
        body["errors"] = errors;
    }
    let mut resp = (status, body.to_string()).into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM));
    if status == StatusCode::UNAUTHORIZED {
        resp.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    resp
}

fn refused(e: &crate::error::Error) -> Response {
    let status = status_of(e.code().as_str(), None);
    if !e.is_user_error() {
        tracing::error!(error = %e.message(), "REST endpoint failed");
        return problem(
            status,
            ErrorCode::Internal.as_str(),
            "internal error; it has been logged",
            None,
        );
    }
    problem(status, e.code().as_str(), &e.message(), None)
}

/// The status an answer's first error calls for.
fn status_of(code: &str, reason: Option<&str>) -> StatusCode {
    match code {
        "UNAUTHENTICATED" => StatusCode::UNAUTHORIZED,
        "FORBIDDEN" => StatusCode::FORBIDDEN,
        "NOT_FOUND" => StatusCode::NOT_FOUND,
        "CONFLICT" | "IDEMPOTENCY_KEY_REUSED" | "PERIOD_LOCKED" => StatusCode::CONFLICT,
        "RATE_LIMITED" => StatusCode::TOO_MANY_REQUESTS,
        "VALIDATION" | "QUERY_TOO_COMPLEX" => StatusCode::BAD_REQUEST,
        _ if reason == Some(crate::error::DATABASE_UNAVAILABLE) => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// An `ETag` for a body, and 304 when the client holds it already.
fn with_etag(headers: &HeaderMap, mut resp: Response, body: &[u8]) -> Response {
    let tag = format!("\"{:x}\"", Sha256::digest(body));
    let held = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag || t.trim() == "*"));
    if held {
        resp = StatusCode::NOT_MODIFIED.into_response();
    }
    if let Ok(value) = HeaderValue::from_str(&tag) {
        resp.headers_mut().insert(header::ETAG, value);
    }
    resp
}

/// `GET /api/rest/{name}`.
pub async fn get_endpoint(
    State(state): State<AppState>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let pairs: Vec<(String, String)> = query.as_deref().map(url_pairs).unwrap_or_default();
    run(state, name, Method::Get, Input::Query(pairs), headers).await
}

/// `POST /api/rest/{name}`.
pub async fn post_endpoint(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    run(state, name, Method::Post, Input::Body(body), headers).await
}

/// `a=1&b=x%20y` as pairs, decoded.
fn url_pairs(query: &str) -> Vec<(String, String)> {
    reqwest::Url::parse(&format!("http://x/?{query}"))
        .map(|u| {
            u.query_pairs()
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        })
        .unwrap_or_default()
}

enum Input {
    Query(Vec<(String, String)>),
    /// Read only once the token is checked, as `/graphql` reads its body.
    Body(axum::body::Body),
}

async fn run(
    state: AppState,
    name: String,
    method: Method,
    input: Input,
    headers: HeaderMap,
) -> Response {
    let principal = match super::graphql::authenticate(&state, &headers).await {
        Ok(p) => p,
        Err(msg) => return problem(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", &msg, None),
    };
    let endpoint = match service::get(&state.db, &name).await {
        Ok(Some(e)) => e,
        Ok(None) => {
            return problem(
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
                &format!("no REST endpoint is named `{name}`"),
                None,
            );
        }
        Err(e) => return refused(&e),
    };
    if endpoint.method() != method {
        let mut resp = problem(
            StatusCode::METHOD_NOT_ALLOWED,
            "VALIDATION",
            &format!("`{name}` is served with {}", endpoint.method().as_str()),
            None,
        );
        if let Ok(allow) = HeaderValue::from_str(endpoint.method().as_str()) {
            resp.headers_mut().insert(header::ALLOW, allow);
        }
        return resp;
    }
    let doc = match document::parsed(&endpoint) {
        Ok(d) => d,
        Err(e) => return refused(&e),
    };
    let definitions = document::operation(&doc)
        .map(|op| op.node.variable_definitions.clone())
        .unwrap_or_default();
    let variables = match input {
        Input::Query(pairs) => crate::rest::variables::from_query(&definitions, &pairs),
        Input::Body(body) => match axum::body::to_bytes(body, super::MAX_BODY).await {
            Ok(bytes) => body_variables(&definitions, &bytes),
            Err(_) => {
                return problem(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    ErrorCode::QueryTooComplex.as_str(),
                    &format!(
                        "the body could not be read whole, or is larger than {} bytes",
                        super::MAX_BODY
                    ),
                    None,
                );
            }
        },
    };
    let variables = match variables {
        Ok(v) => v,
        Err(e) => return refused(&e),
    };
    let request = async_graphql::Request::new(endpoint.document.clone()).variables(
        async_graphql::Variables::from_json(Value::Object(variables)),
    );
    let answer = super::graphql::execute(state, principal, headers.clone(), request, JSON).await;
    answered(answer, &headers, method).await
}

/// The GraphQL answer as REST: its `data` as plain JSON (with an `ETag` for GET), or, when it
/// has errors, a problem document with the status the first error calls for.
async fn answered(answer: Response, headers: &HeaderMap, method: Method) -> Response {
    let (parts, body) = answer.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let parsed: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    if let Some(errors) = parsed
        .get("errors")
        .and_then(Value::as_array)
        .filter(|e| !e.is_empty())
    {
        let first = &errors[0];
        let code = first["extensions"]["code"].as_str().unwrap_or("INTERNAL");
        let reason = first["extensions"]["reason"].as_str();
        let status = if parts.status.is_client_error() || parts.status.is_server_error() {
            parts.status
        } else {
            status_of(code, reason)
        };
        let detail = first["message"].as_str().unwrap_or("the operation failed");
        let mut resp = problem(status, code, detail, Some(Value::Array(errors.clone())));
        if let Some(retry) = parts.headers.get(header::RETRY_AFTER) {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, retry.clone());
        }
        return resp;
    }
    let data = parsed
        .get("data")
        .cloned()
        .unwrap_or(Value::Null)
        .to_string();
    let mut resp = (StatusCode::OK, data.clone()).into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON));
    if method == Method::Get {
        return with_etag(headers, resp, data.as_bytes());
    }
    resp
}

/// A POST endpoint's variables: a JSON object (an empty body is none), checked against the
/// operation's variables as the query string is.
fn body_variables(
    definitions: &[async_graphql::Positioned<async_graphql::parser::types::VariableDefinition>],
    body: &[u8],
) -> crate::error::Result<serde_json::Map<String, Value>> {
    use crate::error::Error;
    if body.iter().all(u8::is_ascii_whitespace) {
        return crate::rest::variables::from_query(definitions, &[]);
    }
    if crate::graphql::nesting::check_json(body).is_err() {
        return Err(Error::invalid("body", "the body is nested too deep"));
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| Error::invalid("body", format!("the body is not JSON: {e}")))?;
    let Value::Object(map) = value else {
        return Err(Error::invalid(
            "body",
            "the body is a JSON object of the variables",
        ));
    };
    for d in definitions {
        let name = d.node.name.node.as_str();
        let ty = &d.node.var_type.node;
        if !map.contains_key(name) && !ty.nullable && d.node.default_value.is_none() {
            return Err(Error::invalid(name, format!("`{name}` is required ({ty})")));
        }
    }
    if let Some(unknown) = map.keys().find(|k| {
        !definitions
            .iter()
            .any(|d| d.node.name.node.as_str() == k.as_str())
    }) {
        return Err(Error::invalid(
            unknown,
            format!("`{unknown}` is not a variable of this endpoint"),
        ));
    }
    Ok(map)
}

/// `GET /api/openapi.json`: the OpenAPI 3.1 document of the saved endpoints (any valid token).
pub async fn openapi(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(msg) = super::graphql::authenticate(&state, &headers).await {
        return problem(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", &msg, None);
    }
    let endpoints = match service::list(&state.db).await {
        Ok(e) => e,
        Err(e) => return refused(&e),
    };
    let body = crate::rest::openapi::document(&endpoints).to_string();
    let mut resp = (StatusCode::OK, body.clone()).into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON));
    with_etag(&headers, resp, body.as_bytes())
}

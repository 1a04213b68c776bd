//! `GET /assets/{file}`: the scripts and styles of the browser pages, built into the binary so
//! the pages work inside a network without internet access.
//!
//! GraphiQL, React and ReactDOM come from `web/vendor/`, which `web/vendor.mjs` fills from the
//! npm packages that `web/package-lock.json` pins (their licences beside them, and listed in
//! `web/vendor/MANIFEST.json`); CI checks the folder against the registry's files. The pages'
//! own scripts live in `web/src/`.
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// The content-security policy of every page: scripts, styles and requests from this server
/// only (GraphiQL sets inline styles and its fonts are data: URLs).
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; \
     connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const TEXT: &str = "text/plain; charset=utf-8";
const JSON: &str = "application/json";

/// Every asset: name under `/assets/`, media type, bytes.
const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "graphiql.min.js",
        JS,
        include_bytes!("../../../web/vendor/graphiql.min.js"),
    ),
    (
        "graphiql.min.css",
        CSS,
        include_bytes!("../../../web/vendor/graphiql.min.css"),
    ),
    (
        "graphiql.LICENSE",
        TEXT,
        include_bytes!("../../../web/vendor/graphiql.LICENSE"),
    ),
    (
        "react.production.min.js",
        JS,
        include_bytes!("../../../web/vendor/react.production.min.js"),
    ),
    (
        "react.LICENSE",
        TEXT,
        include_bytes!("../../../web/vendor/react.LICENSE"),
    ),
    (
        "react-dom.production.min.js",
        JS,
        include_bytes!("../../../web/vendor/react-dom.production.min.js"),
    ),
    (
        "react-dom.LICENSE",
        TEXT,
        include_bytes!("../../../web/vendor/react-dom.LICENSE"),
    ),
    (
        "MANIFEST.json",
        JSON,
        include_bytes!("../../../web/vendor/MANIFEST.json"),
    ),
    (
        "cnscd.css",
        CSS,
        include_bytes!("../../../web/src/cnscd.css"),
    ),
    ("token.js", JS, include_bytes!("../../../web/src/token.js")),
    (
        "graphiql-page.js",
        JS,
        include_bytes!("../../../web/src/graphiql-page.js"),
    ),
    (
        "dashboard.js",
        JS,
        include_bytes!("../../../web/src/dashboard.js"),
    ),
];

/// The asset named `file`, or 404 naming the ones there are.
pub async fn asset(Path(file): Path<String>) -> Response {
    let Some((_, media, bytes)) = ASSETS.iter().find(|(name, _, _)| *name == file) else {
        let names: Vec<&str> = ASSETS.iter().map(|(n, _, _)| *n).collect();
        return (
            StatusCode::NOT_FOUND,
            format!("no asset {file:?}; there are: {}", names.join(", ")),
        )
            .into_response();
    };
    let mut resp = bytes.into_response();
    let headers = resp.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(media));
    // The assets change only with the binary: an hour's caching, revalidated after.
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}

/// An HTML page with the security headers every page gets.
pub fn page(html: &'static str) -> Response {
    let mut resp = axum::response::Html(html).into_response();
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

//! GraphiQL at `GET /graphql` for browsers: the page, served with its scripts from this
//! binary (see [`super::assets`]), with a field for the bearer token its requests send.
use axum::response::Response;

/// The page (`web/src/graphiql.html`).
pub fn page() -> Response {
    super::assets::page(include_str!("../../../web/src/graphiql.html"))
}

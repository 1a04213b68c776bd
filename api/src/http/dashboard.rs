//! `GET /dashboard`: a page for officials — an indicator of a unit and its children for a year
//! as a table and a bar chart, the unit's months as a line, the CSV download; Vietnamese and
//! English. The page needs no token; the requests it sends carry the one entered in it.
use axum::response::Response;

/// The page (`web/src/dashboard.html`).
pub async fn page() -> Response {
    super::assets::page(include_str!("../../../web/src/dashboard.html"))
}

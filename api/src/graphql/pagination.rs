//! Relay cursor connections over offset windows (the windows themselves, which services use
//! too, are [`crate::paging`]'s).
pub use crate::paging::{DEFAULT_PAGE, MAX_PAGE, PageArgs, Window, cursor};
use async_graphql::{
    OutputType, SimpleObject,
    connection::{Connection, Edge, EmptyFields},
};

/// Connection fields beyond the Relay ones.
#[derive(SimpleObject)]
pub struct ConnectionFields {
    /// Number of items matching the filters, across all pages.
    pub total_count: u64,
}

pub type Conn<T> = Connection<String, T, ConnectionFields, EmptyFields>;

/// Complexity of a connection field: its children count once per item of the page asked for,
/// so `first: 100` on nested lists is priced as what it costs.
pub fn page_complexity(first: Option<i32>, last: Option<i32>, child_complexity: usize) -> usize {
    let size = first.or(last).unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE) as usize;
    size.saturating_mul(child_complexity).saturating_add(1)
}

/// Builds the connection for a page of rows: the rows fetched for `window` out of `total`.
pub fn connection<M, T: OutputType + From<M>>(page: (Vec<M>, Window, u64)) -> Conn<T> {
    let (items, window, total) = page;
    let has_previous = window.offset > 0;
    let has_next = window.offset + (items.len() as u64) < total;
    let mut conn = Connection::with_additional_fields(
        has_previous,
        has_next,
        ConnectionFields { total_count: total },
    );
    conn.edges.extend(
        items
            .into_iter()
            .enumerate()
            .map(|(i, item)| Edge::new(cursor(window.offset + i as u64), T::from(item))),
    );
    conn
}

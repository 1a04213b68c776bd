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

/// Declares a query root whose one field is a cursor-paged list: the field's own arguments as
/// written, then the four page arguments every list takes (`first`, `after`, `last`,
/// `before`, described once here), priced by [`page_complexity`]. The field is answered by
/// `$resolve(ctx, <own arguments in order>, page)`, an ordinary function beside it, behind the
/// guard given after it, if any. The page arguments cannot be shared any other way:
/// async-graphql takes a resolver's arguments from its parameters one by one.
///
/// ```ignore
/// list_field! {
///     /// Reading activities.
///     ActivityQuery,
///     /// Activities in the caller's area.
///     activities(#[graphql(desc = "Activity kind code.")] kind: Option<String>) -> Conn<Activity>
///         = list_activities, guard = "Allowed(Action::ReadActivities)"
/// }
/// ```
macro_rules! list_field {
    (
        $(#[$root_attr:meta])*
        $root:ident,
        $(#[$field_attr:meta])*
        $field:ident($($(#[$arg_attr:meta])* $arg:ident: $arg_type:ty),* $(,)?) -> $output:ty
            = $resolve:path $(, guard = $guard:literal)? $(,)?
    ) => {
        $(#[$root_attr])*
        #[derive(Default)]
        pub struct $root;

        #[async_graphql::Object]
        impl $root {
            $(#[$field_attr])*
            #[graphql(
                $(guard = $guard,)?
                complexity = "crate::graphql::pagination::page_complexity(first, last, child_complexity)"
            )]
            #[allow(clippy::too_many_arguments)]
            async fn $field(
                &self,
                ctx: &async_graphql::Context<'_>,
                $($(#[$arg_attr])* $arg: $arg_type,)*
                #[graphql(
                    desc = "Number of items from the start of the list (after `after`), 0 to 100; 20 when neither `first` nor `last` is given."
                )]
                first: Option<i32>,
                #[graphql(desc = "Cursor of an edge: only items after it.")] after: Option<String>,
                #[graphql(
                    desc = "Number of items from the end of the list (before `before`), 0 to 100; not with `first`."
                )]
                last: Option<i32>,
                #[graphql(desc = "Cursor of an edge: only items before it.")] before: Option<String>,
            ) -> async_graphql::Result<$output> {
                $resolve(
                    ctx,
                    $($arg,)*
                    $crate::graphql::pagination::PageArgs::new(first, after, last, before),
                )
                .await
            }
        }
    };
}
pub(crate) use list_field;

//! The schema's assembly: the features' query, mutation and subscription roots merged into one
//! schema (the helpers every resolver shares are in [`crate::graphql`]).
pub mod admission;
pub mod node;

use async_graphql::{MergedObject, MergedSubscription, Schema};
use sea_orm::DatabaseConnection;

/// Reading. Teams, members, activities, indicators and the audit log are limited to the
/// caller's area; units and catalogues are open to every authenticated caller.
#[derive(MergedObject, Default)]
pub struct Query(
    crate::auth::resolvers::MeQuery,
    node::NodeQuery,
    crate::units::resolvers::UnitQuery,
    crate::teams::resolvers::TeamQuery,
    crate::members::resolvers::MemberQuery,
    crate::activities::resolvers::ActivityQuery,
    crate::activities::corrections::CorrectionQuery,
    crate::catalog::resolvers::CatalogQuery,
    crate::indicators::resolvers::IndicatorQuery,
    crate::indicators::admin::IndicatorTargetQuery,
    crate::audit::resolvers::AuditQuery,
    crate::datavalues::resolvers::DataValueQuery,
    crate::locks::resolvers::LockQuery,
);

/// Changing: each mutation takes one `input`, answers problems the caller can fix in
/// `userErrors`, and leaves an entry in the audit log.
#[derive(MergedObject, Default)]
pub struct Mutation(
    crate::teams::resolvers::TeamMutation,
    crate::members::resolvers::MemberMutation,
    crate::activities::resolvers::ActivityMutation,
    crate::indicators::admin::IndicatorMutation,
    crate::activities::corrections::CorrectionMutation,
    crate::datavalues::resolvers::DataValueMutation,
    crate::locks::resolvers::LockMutation,
);

/// The live feed, over `graphql-transport-ws` at `/graphql/ws` with the token in
/// `connection_init`: events limited to the caller's area on their day.
#[derive(MergedSubscription, Default)]
pub struct Subscription(crate::events::resolvers::EventSubscription);

pub type AppSchema = Schema<Query, Mutation, Subscription>;

/// Builds the schema; `db`, `store` (the in-memory indicator data of that database) and
/// `events` (the live feed) are shared, everything per caller is added per request.
pub fn build_schema(
    db: DatabaseConnection,
    store: crate::memory::Store,
    events: crate::events::Bus,
) -> AppSchema {
    Schema::build(
        Query::default(),
        Mutation::default(),
        Subscription::default(),
    )
    .data(db)
    .data(store)
    .data(crate::activities::intake::Pool::default())
    .data(events)
    // Requests reach this schema parsed and admitted (`admission::Admission`: limits and the
    // validation rules), so it skips the rules and carries no extension.
    .validation_mode(async_graphql::ValidationMode::Fast)
    .limit_recursive_depth(crate::graphql::limits::RECURSIVE_DEPTH)
    .limit_directives(crate::graphql::limits::MAX_DIRECTIVES)
    .finish()
}

/// The schema without a database, to print the SDL.
pub fn sdl() -> String {
    Schema::build(
        Query::default(),
        Mutation::default(),
        Subscription::default(),
    )
    .finish()
    .sdl()
}

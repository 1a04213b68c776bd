//! Schema assembly: the merged query and mutation roots, limits, and request context helpers.
pub mod guard;
pub mod ids;
pub mod limits;
pub mod loaders;
pub mod nesting;
pub mod node;
pub mod pagination;
pub mod scalars;

use crate::auth::Principal;
use crate::error::Error;
use async_graphql::{Context, MergedObject, MergedSubscription, Schema};
use sea_orm::DatabaseConnection;

pub use scalars::Date;

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

pub use limits::{MAX_COMPLEXITY, MAX_DEPTH};

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
    // Requests reach this schema parsed and admitted (`limits::Admission`: limits and the
    // validation rules), so it skips the rules and carries no extension.
    .validation_mode(async_graphql::ValidationMode::Fast)
    .limit_recursive_depth(limits::RECURSIVE_DEPTH)
    .limit_directives(limits::MAX_DIRECTIVES)
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

/// The database and the caller of this request.
pub fn state<'a>(ctx: &Context<'a>) -> Result<(&'a DatabaseConnection, &'a Principal), Error> {
    let db = ctx
        .data::<DatabaseConnection>()
        .map_err(|_| Error::Internal("no database in the schema".into()))?;
    let principal = ctx
        .data::<Principal>()
        .map_err(|_| Error::Unauthenticated("no bearer token".into()))?;
    Ok((db, principal))
}

/// The in-memory indicator data of the schema's database.
pub fn store<'a>(ctx: &Context<'a>) -> Result<&'a crate::memory::Store, Error> {
    ctx.data::<crate::memory::Store>()
        .map_err(|_| Error::Internal("no indicator store in the schema".into()))
}

/// Which data the answers of a request reflect (`extensions.dataAsOf`): the oldest time up to
/// which the in-memory data it was computed from held what was committed. One per request.
#[derive(Default)]
pub struct DataAsOf(std::sync::Mutex<Option<chrono::DateTime<chrono::Utc>>>);

impl DataAsOf {
    /// The time noted, if any answer was computed from the in-memory data.
    pub fn get(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        self.0.lock().ok().and_then(|t| *t)
    }
}

/// Notes that an answer of this request reflects the data as of `at`.
pub fn note_data_as_of(ctx: &Context<'_>, at: chrono::DateTime<chrono::Utc>) {
    if let Some(noted) = ctx.data_opt::<std::sync::Arc<DataAsOf>>()
        && let Ok(mut t) = noted.0.lock()
    {
        *t = Some(t.map_or(at, |old| old.min(at)));
    }
}

/// Intake's pool of the application (activity ids taken ahead, deltas written).
pub fn intake_pool<'a>(ctx: &Context<'a>) -> Result<&'a crate::activities::intake::Pool, Error> {
    ctx.data::<crate::activities::intake::Pool>()
        .map_err(|_| Error::Internal("no intake pool in the schema".into()))
}

/// The per-request loaders.
pub fn loaders<'a>(ctx: &Context<'a>) -> Result<&'a crate::graphql::loaders::Loaders, Error> {
    ctx.data::<crate::graphql::loaders::Loaders>()
        .map_err(|_| Error::Internal("no loaders in the request".into()))
}

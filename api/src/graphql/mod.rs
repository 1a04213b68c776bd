//! What every resolver shares: the request's context (database, caller, in-memory data,
//! loaders), ids, pages, scalars, guards and the limits. The schema is assembled from the
//! features' resolvers in [`crate::schema`], outside this module, so that no feature's
//! resolvers and this module import each other.
pub mod guard;
pub mod ids;
pub mod limits;
pub mod nesting;
pub mod pagination;
pub mod plain;
pub mod scalars;

use crate::auth::Principal;
use crate::error::Error;
use async_graphql::Context;
use sea_orm::DatabaseConnection;

pub use scalars::Date;

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

/// A feature's loaders of this request (`L`: its bundle, which the schema's assembly put in
/// every request: `crate::schema::loaders`).
pub fn loaders<'a, L: Send + Sync + 'static>(ctx: &Context<'a>) -> Result<&'a L, Error> {
    ctx.data::<L>()
        .map_err(|_| Error::Internal(format!("no {} in the request", std::any::type_name::<L>())))
}

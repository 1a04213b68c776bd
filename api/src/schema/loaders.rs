//! The per-request DataLoaders of every feature (never shared between requests or callers).
//! Every loader of rows that belong to an area carries the caller's scope for reading them, so
//! a nested field shows only what its own rows' rule shows (`auth::area`). Each feature reads
//! its own bundle with [`crate::graphql::loaders`].
use crate::activities::loaders::ActivityLoaders;
use crate::auth::Principal;
use crate::members::loaders::MemberLoaders;
use crate::memory::Store;
use crate::teams::loaders::TeamLoaders;
use crate::units::loaders::UnitLoaders;
use async_graphql::Data;
use sea_orm::DatabaseConnection;

/// Puts the loaders of a request of `principal` into `data`.
pub fn insert(data: &mut Data, db: &DatabaseConnection, store: &Store, principal: &Principal) {
    data.insert(UnitLoaders::new(db));
    data.insert(TeamLoaders::new(db, principal));
    data.insert(MemberLoaders::new(db, store, principal));
    data.insert(ActivityLoaders::new(db));
}

/// The request with the loaders of `principal`.
pub fn with_loaders(
    mut request: async_graphql::Request,
    db: &DatabaseConnection,
    store: &Store,
    principal: &Principal,
) -> async_graphql::Request {
    insert(&mut request.data, db, store, principal);
    request
}

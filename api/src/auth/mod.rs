//! Authentication (token verification) and authorisation (roles, the caller's area).
mod area;
pub mod jwks;
pub mod keys;
mod principal;
pub mod resolvers;
mod token;

pub use area::{
    Columns, Coverage, Last, allows, allows_in_chain, condition as scope_condition,
    condition_every_existing_day, condition_throughout, covered_places, under, under_indexed,
};
pub use principal::{Action, Principal, Role, Scope, identity};
pub use token::{ClaimPaths, Claims, TokenVerifier, VerifierBuilder, mint};

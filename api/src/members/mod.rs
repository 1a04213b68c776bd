//! Members: persons and their memberships of teams, kept as history.
pub mod loaders;
pub mod resolvers;
pub mod service;
pub mod types;

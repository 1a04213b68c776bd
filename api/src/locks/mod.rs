//! Period locks: a month closed to changes for a unit and everything under it.
pub mod resolvers;
pub mod service;
pub mod types;

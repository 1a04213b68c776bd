//! Reported figures (data values) sent by other systems: idempotent batches, validation,
//! replacement with history, and reading in the caller's area.
pub mod resolvers;
pub mod service;
pub mod types;

//! Administrative units: versions with validity periods, the hierarchy closure, successions.
pub mod import;
pub mod loaders;
pub mod resolvers;
pub mod service;
pub mod types;

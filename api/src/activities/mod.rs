//! Activities: intake (idempotent), corrections and voids, reading in the caller's area, and
//! monthly rollups.
pub mod corrections;
pub mod input;
pub mod intake;
pub mod loaders;
pub mod resolvers;
pub mod rollup;
pub mod service;
pub mod types;

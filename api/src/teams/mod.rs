//! Teams (Tổ CNSCĐ): founding, changes, dissolution, and reading them in the caller's area.
pub mod fields;
pub mod loaders;
pub mod resolvers;
pub mod service;
pub mod types;

//! Loading large generated data sets fast: the bulk loader (COPY on PostgreSQL, batched
//! INSERTs on SQLite) and the progress line the `seed` commands show. What is loaded is
//! generated in [`crate::demo`] (the demo and the national data sets).
pub mod bulk;
pub mod progress;

//! Indicators: versioned formulas over data elements, rolled up along the hierarchy by summing
//! numerators and denominators and dividing last.
pub mod periods;
pub mod rebase;
pub mod resolvers;
pub mod service;
pub mod types;

//! Indicators: versioned formulas over data elements, rolled up along the hierarchy by summing
//! numerators and denominators and dividing last.
pub mod admin;
pub mod compute;
pub mod definitions;
pub mod model;
pub mod periods;
pub mod resolvers;
pub mod service;
pub mod targets;
pub mod types;

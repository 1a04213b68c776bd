//! cnscd: the GraphQL API service for community digital technology teams.
pub mod activities;
pub mod audit;
pub mod auth;
pub mod catalog;
pub mod cli;
pub mod config;
pub mod datavalues;
pub mod db;
pub mod demo;
pub mod error;
pub mod events;
pub mod graphql;
pub mod http;
pub mod indicators;
pub mod locks;
pub mod members;
pub mod memory;
pub mod schema;
pub mod seed;
pub mod startup;
pub mod teams;
pub mod telemetry;
pub mod text;
pub mod units;

pub use config::Settings;
pub use schema::{AppSchema, build_schema};
pub use startup::Application;

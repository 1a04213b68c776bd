//! End-to-end tests through the real HTTP endpoint, on SQLite or PostgreSQL
//! (`CNSCD_TEST_DATABASE`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod activities;
mod area;
mod area_oracle;
mod audit;
mod auth;
mod browser;
mod demo;
mod export;
mod fuzz;
mod http;
mod idp;
mod indicators;
mod integrity;
mod limits;
mod members;
mod ops;
mod ratelimit;
mod schema;
mod subscriptions;
mod targets;
mod teams;

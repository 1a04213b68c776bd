//! GraphQL types of REST endpoints.
use super::service::{self, Endpoint};
use crate::error::UserError;
use async_graphql::{Enum, InputObject, SimpleObject};
use chrono::{DateTime, Utc};

/// How a REST endpoint is called.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "service::Method")]
pub enum RestMethod {
    /// Variables from the query string; queries only.
    Get,
    /// Variables as a JSON body.
    Post,
}

/// A saved operation served at `/api/rest/{name}`.
#[derive(SimpleObject)]
pub struct RestEndpoint {
    /// `[a-z0-9-]{1,64}`.
    pub name: String,
    pub method: RestMethod,
    /// The GraphQL query or mutation it runs.
    pub document: String,
    pub description: Option<String>,
    /// Where it is served.
    pub path: String,
    /// Token subject that saved it last.
    pub saved_by: String,
    pub saved_at: DateTime<Utc>,
}

impl From<Endpoint> for RestEndpoint {
    fn from(e: Endpoint) -> Self {
        Self {
            method: e.method().into(),
            path: service::path(&e.name),
            name: e.name,
            document: e.document,
            description: e.description,
            saved_by: e.saved_by,
            saved_at: e.saved_at,
        }
    }
}

/// Saving (or replacing) a REST endpoint (ADMIN).
#[derive(InputObject, Debug)]
pub struct SaveRestEndpointInput {
    /// `[a-z0-9-]{1,64}`: the endpoint is `/api/rest/{name}`.
    pub name: String,
    pub method: RestMethod,
    /// One GraphQL query (GET or POST) or mutation (POST), checked against the schema.
    pub document: String,
    /// What it is for (the OpenAPI summary).
    pub description: Option<String>,
}

/// Deleting a REST endpoint (ADMIN).
#[derive(InputObject, Debug)]
pub struct DeleteRestEndpointInput {
    pub name: String,
}

#[derive(SimpleObject)]
pub struct RestEndpointPayload {
    pub endpoint: Option<RestEndpoint>,
    pub user_errors: Vec<UserError>,
}

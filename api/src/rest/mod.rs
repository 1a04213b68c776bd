//! Saved GraphQL operations served as REST endpoints for systems that do not speak GraphQL
//! (the provincial integration platform): an ADMIN saves a named query or mutation; it is
//! served at `/api/rest/{name}` with the same token, area and limits as `/graphql`, and
//! described by the OpenAPI document at `/api/openapi.json` ([`openapi`]).
pub mod document;
pub mod openapi;
pub mod resolvers;
pub mod service;
pub mod types;
pub mod variables;

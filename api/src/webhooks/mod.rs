//! Webhooks: other systems told of changes by an HTTP POST, at least once, signed as Standard
//! Webhooks sign, each seeing only what its owner may read. A trigger writes an outbox entry in
//! the transaction of every audited change; every replica's delivery loop fans the outbox out
//! to deliveries and sends them, retrying with backoff ([`delivery`]).
pub mod address;
pub mod delivery;
pub mod model;
pub mod resolvers;
pub mod service;
pub mod types;

//! Opaque global object ids (Relay): base64url of `Type:key`. Below GraphQL: services name
//! objects by these ids in messages and audit entries; `graphql::ids` makes them `ID`s.
use crate::error::Error;
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

pub const TEAM: &str = "Team";
pub const MEMBERSHIP: &str = "Membership";
pub const ACTIVITY: &str = "Activity";
pub const ADMIN_UNIT: &str = "AdminUnit";
pub const AUDIT_ENTRY: &str = "AuditEntry";
pub const INDICATOR: &str = "IndicatorDefinition";
pub const PERIOD_LOCK: &str = "PeriodLock";
pub const WEBHOOK: &str = "Webhook";
pub const WEBHOOK_DELIVERY: &str = "WebhookDelivery";

/// The global id of the object of type `kind` with key `key`.
pub fn global(kind: &str, key: impl std::fmt::Display) -> String {
    URL_SAFE_NO_PAD.encode(format!("{kind}:{key}"))
}

/// Splits a global id into its type and key.
pub fn decode(id: &str) -> Option<(String, String)> {
    let raw = URL_SAFE_NO_PAD.decode(id.trim_end_matches('=')).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (kind, key) = text.split_once(':')?;
    Some((kind.to_owned(), key.to_owned()))
}

/// Decodes a numeric id of the given type, or says the id is not one.
pub fn decode_as(kind: &str, id: &str) -> Result<i64, Error> {
    match decode(id) {
        Some((k, key)) if k == kind => key
            .parse()
            .map_err(|_| Error::not_found(format!("no {kind} has id {id}"))),
        _ => Err(Error::not_found(format!(
            "`{id}` is not the id of a {kind}"
        ))),
    }
}

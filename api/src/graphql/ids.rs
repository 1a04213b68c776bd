//! Opaque global object ids (Relay): base64url of `Type:key`.
use crate::error::Error;
use async_graphql::ID;
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

pub const TEAM: &str = "Team";
pub const MEMBERSHIP: &str = "Membership";
pub const ACTIVITY: &str = "Activity";
pub const ADMIN_UNIT: &str = "AdminUnit";
pub const AUDIT_ENTRY: &str = "AuditEntry";
pub const INDICATOR: &str = "IndicatorDefinition";
pub const PERIOD_LOCK: &str = "PeriodLock";

pub fn encode(kind: &str, key: impl std::fmt::Display) -> ID {
    ID(URL_SAFE_NO_PAD.encode(format!("{kind}:{key}")))
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

/// Like [`decode_as`] but as a validation error on an input field.
pub fn input_id(kind: &str, field: &str, id: &ID) -> Result<i64, Error> {
    decode_as(kind, id).map_err(|_| Error::invalid(field, format!("`{}` is not a {kind} id", id.0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_reject_other_types() {
        let id = encode(TEAM, 42);
        assert_eq!(decode_as(TEAM, &id).ok(), Some(42));
        assert!(decode_as(ACTIVITY, &id).is_err());
        assert!(decode_as(TEAM, "not base64 !").is_err());
    }
}

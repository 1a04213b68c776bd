//! Global object ids as GraphQL `ID`s (the ids themselves are [`crate::ids`]').
use crate::error::Error;
pub use crate::ids::{
    ACTIVITY, ADMIN_UNIT, AUDIT_ENTRY, INDICATOR, MEMBERSHIP, PERIOD_LOCK, TEAM, WEBHOOK,
    WEBHOOK_DELIVERY, decode, decode_as,
};
use async_graphql::ID;

/// The global id of the object of type `kind` with key `key`.
pub fn encode(kind: &str, key: impl std::fmt::Display) -> ID {
    ID(crate::ids::global(kind, key))
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

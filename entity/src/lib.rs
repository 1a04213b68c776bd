//! sea-orm entities of cnscd: tables only, no GraphQL.
pub mod activity;
pub mod activity_kind;
pub mod activity_outcome;
pub mod activity_version;
pub mod admin_unit;
pub mod admin_unit_closure;
pub mod admin_unit_succession;
pub mod affiliation;
pub mod audit_entry;
pub mod codes;
pub mod data_element;
pub mod data_value;
pub mod data_value_history;
pub mod digital_service;
pub mod idempotency_record;
pub mod indicator_definition;
pub mod indicator_target;
pub mod membership;
pub mod period_lock;
pub mod person;
pub mod team;
pub mod unit_month_fact;

/// Last day of validity of a unit that still exists (validity periods are inclusive).
pub const OPEN_END: chrono::NaiveDate = match chrono::NaiveDate::from_ymd_opt(9999, 12, 31) {
    Some(d) => d,
    None => chrono::NaiveDate::MAX,
};

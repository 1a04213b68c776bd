//! GraphQL types of reported figures and their inputs.
use super::service::StoredValue;
use crate::error::UserError;
use crate::graphql::{Date, loaders};
use crate::units::types::AdminUnit;
use async_graphql::{ComplexObject, Context, InputObject, Result, SimpleObject};
use chrono::{DateTime, Utc};

/// A figure another system reported for a unit and period, e.g. the dossiers a commune
/// received online in March 2025.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct DataValue {
    /// Reported data element code, e.g. DOSSIERS_ONLINE.
    pub element: String,
    /// Administrative unit code.
    pub unit_code: String,
    /// First day of the period (a whole month, quarter or year).
    pub period_start: Date,
    /// Last day of the period.
    pub period_end: Date,
    /// The figure.
    pub value: f64,
    /// The system that reported it, e.g. DVCQG.
    pub source_system: String,
    /// When it was stored.
    pub submitted_at: DateTime<Utc>,
}

impl From<StoredValue> for DataValue {
    fn from(v: StoredValue) -> Self {
        Self {
            element: v.element,
            unit_code: v.unit_code,
            period_start: v.period_start.into(),
            period_end: v.period_end.into(),
            value: v.value,
            source_system: v.source_system,
            submitted_at: v.submitted_at,
        }
    }
}

impl From<cnscd_entity::data_value::Model> for DataValue {
    fn from(m: cnscd_entity::data_value::Model) -> Self {
        StoredValue::from(m).into()
    }
}

#[ComplexObject]
impl DataValue {
    /// The unit, in its latest version.
    async fn unit(&self, ctx: &Context<'_>) -> Result<AdminUnit> {
        loaders::<crate::units::loaders::UnitLoaders>(ctx)?
            .unit
            .load_one(self.unit_code.clone())
            .await?
            .map(Into::into)
            .ok_or_else(|| {
                crate::error::Error::Internal(format!("unit {} has no version", self.unit_code))
                    .into()
            })
    }
}

/// A batch of reported figures from one source system. A retry with the same key and input
/// returns the original result.
#[derive(InputObject, Debug)]
pub struct SubmitDataValuesInput {
    /// Chosen by the client, unique per batch (a UUID is a good choice), at most 200
    /// characters.
    pub idempotency_key: String,
    /// The system reporting, e.g. DVCQG for the public-service portal: 1 to 100 letters,
    /// digits, `_`, `-` or `.`.
    pub source_system: String,
    /// The figures: 1 to 500, each unit, element and period at most once.
    pub values: Vec<DataValueInput>,
}

/// One reported figure.
#[derive(InputObject, Debug)]
pub struct DataValueInput {
    /// Reported data element code (see `indicatorDefinitions` / the catalogue): DOSSIERS_ONLINE,
    /// DOSSIERS_TOTAL, EDOCS_EXCHANGED, HH_BUSINESSES, HH_BUSINESSES_EPAY, POPULATION,
    /// HOUSEHOLDS, ADULTS.
    pub element: String,
    /// Administrative unit code: a unit that exists on every day of the period and lies in
    /// the caller's area on each of them.
    pub unit_code: String,
    /// First day of a month, quarter or year that has begun.
    pub period_start: Date,
    /// Last day of the same month, quarter or year.
    pub period_end: Date,
    /// The figure: a count, so a whole number from 0 to 1000000000.
    pub value: f64,
}

/// Result of `submitDataValues`. Field paths of user errors are relative to the input:
/// `["values", "3", "unitCode"]` names the unit of the fourth figure.
#[derive(SimpleObject)]
pub struct SubmitDataValuesPayload {
    /// The figures stored (by this request or, on a retry, an earlier one), in input order;
    /// empty when there are user errors (a batch is stored whole or not at all).
    pub values: Vec<DataValue>,
    /// True when this answers a retry: the figures were stored by an earlier request.
    pub replayed: bool,
    /// What was wrong with the input; empty on success.
    pub user_errors: Vec<UserError>,
}

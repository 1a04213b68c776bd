//! GraphQL types of indicators.
use super::service::{Computed, Status};
use crate::graphql::{Date, ids};
use crate::units::types::AdminUnit;
use async_graphql::{Enum, ID, SimpleObject};
use cnscd_entity::indicator_definition;

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum PeriodGranularity {
    Month,
    Quarter,
    Year,
}

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum UnitBreakdown {
    /// The requested units themselves.
    #[graphql(name = "SELF")]
    Own,
    /// Their direct children in each period.
    Children,
    /// Every unit of `level` under them in each period.
    Level,
}

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum IndicatorMode {
    /// Units as they were in each period.
    AsRecorded,
    /// Re-based to today's units through the successions (not available yet).
    Rebased,
}

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum IndicatorStatus {
    /// Every figure the formula needs was there for the whole period.
    Ok,
    /// Nothing to compute from: no figures reported, or the unit did not exist in the period.
    NoData,
    /// Computed from part of what the formula needs, or the unit existed for part of the period.
    Partial,
    /// Re-based through a PARTIAL succession: an estimate.
    Estimated,
}

impl From<Status> for IndicatorStatus {
    fn from(s: Status) -> Self {
        match s {
            Status::Ok => Self::Ok,
            Status::NoData => Self::NoData,
            Status::Partial => Self::Partial,
            Status::Estimated => Self::Estimated,
        }
    }
}

/// A named, versioned indicator formula: numerator ÷ denominator × factor.
#[derive(SimpleObject, Clone)]
pub struct IndicatorDefinition {
    pub id: ID,
    pub code: String,
    pub version: i32,
    pub name_vi: String,
    pub name_en: String,
    pub description: Option<String>,
    /// Data elements summed for the numerator, e.g. `DOSSIERS_ONLINE`.
    pub numerator: String,
    /// Data elements summed for the denominator; null for a count.
    pub denominator: Option<String>,
    /// 100 for a percentage, 1000 per thousand, 1 for a count or ratio.
    pub factor: f64,
}

impl From<indicator_definition::Model> for IndicatorDefinition {
    fn from(m: indicator_definition::Model) -> Self {
        Self {
            id: ids::encode(ids::INDICATOR, m.id),
            code: m.code,
            version: m.version,
            name_vi: m.name_vi,
            name_en: m.name_en,
            description: m.description,
            numerator: m.numerator,
            denominator: m.denominator,
            factor: m.factor,
        }
    }
}

/// A calendar period.
#[derive(SimpleObject, Clone)]
pub struct Period {
    pub start: Date,
    pub end: Date,
    /// "2023", "2023-Q1" or "2023-03".
    pub label: String,
}

/// An indicator's value for a unit and period, with what it was computed from.
#[derive(SimpleObject)]
pub struct IndicatorValue {
    pub indicator: IndicatorDefinition,
    pub unit: AdminUnit,
    pub period: Period,
    /// numerator ÷ denominator × factor; null when there is no data or the denominator is 0.
    pub value: Option<f64>,
    pub numerator: Option<f64>,
    /// Null for counts (indicators without a denominator) and when there is no data.
    pub denominator: Option<f64>,
    pub status: IndicatorStatus,
}

impl From<Computed> for IndicatorValue {
    fn from(c: Computed) -> Self {
        Self {
            indicator: c.definition.into(),
            unit: c.unit.into(),
            period: Period {
                start: c.period.start.into(),
                end: c.period.end.into(),
                label: c.period.label,
            },
            value: c.value,
            numerator: c.numerator,
            denominator: c.denominator,
            status: c.status.into(),
        }
    }
}

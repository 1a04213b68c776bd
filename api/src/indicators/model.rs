//! What an indicators request asks for and what it answers (the request, the computed values,
//! the formula's terms): shared by the service, the computation and the definitions, below
//! all three.
use super::periods::{Granularity, Span};
use crate::error::{Error, Result};
use chrono::NaiveDate;
use cnscd_entity::codes::UnitLevel;
use cnscd_entity::{admin_unit, indicator_definition};
use std::sync::Arc;

/// Largest number of values one query may ask for.
pub const MAX_VALUES: usize = 50_000;
/// Most periods one query may span (20 years of months).
pub const MAX_PERIODS: usize = 240;
/// Most units one query may name.
pub const MAX_UNITS: usize = 500;

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Breakdown {
    /// The requested units themselves.
    Own,
    /// Their direct children in each period.
    Children,
    /// Every unit of a level under them in each period.
    Level(UnitLevel),
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Status {
    Ok,
    NoData,
    Partial,
    Estimated,
}

/// What an `indicators` query asks for.
pub struct Request {
    pub codes: Vec<String>,
    pub unit_codes: Vec<String>,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub granularity: Granularity,
    pub breakdown: Breakdown,
    pub mode: Mode,
}

/// How reorganised units are treated.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Default)]
pub enum Mode {
    /// Units as they were in each period.
    #[default]
    AsRecorded,
    /// Every period in today's units, through the successions (see [`super::rebase`]).
    Rebased,
}

/// One computed value.
pub struct Computed {
    /// Shared by every value of the definition version (no copy per value).
    pub definition: Arc<indicator_definition::Model>,
    /// Shared by every value of the unit version.
    pub unit: Arc<admin_unit::Model>,
    /// Shared by every value of the period.
    pub period: Arc<Span>,
    pub value: Option<f64>,
    pub numerator: Option<f64>,
    pub denominator: Option<f64>,
    pub status: Status,
    /// The day states and reference figures are taken on (the last day the unit is looked at
    /// in the period); `None` when the unit is not there in the period.
    pub as_of: Option<NaiveDate>,
    /// Whether the caller's area covers the unit on every day of the period on which it
    /// existed; when not, the numbers are withheld (null, FORBIDDEN) and the status is NO_DATA.
    pub readable: bool,
    /// The target set for the indicator, unit and period (`setIndicatorTarget`); `None` when
    /// there is none or the value is not readable.
    pub target: Option<f64>,
}

impl Computed {
    /// value ÷ target × 100, when both exist and the target is above 0.
    pub fn attainment(&self) -> Option<f64> {
        match (self.value, self.target) {
            (Some(v), Some(t)) if t > 0.0 => Some(v / t * 100.0),
            _ => None,
        }
    }
}

/// A parsed formula: signed data element codes.
pub fn parse_expression(expr: &str) -> Result<Vec<(f64, String)>> {
    let mut terms = Vec::new();
    let mut sign = 1.0;
    let mut expect_term = true;
    for token in expr.split_whitespace() {
        match token {
            "+" | "-" if !expect_term => {
                sign = if token == "-" { -1.0 } else { 1.0 };
                expect_term = true;
            }
            t if expect_term
                && !t.is_empty()
                && t.chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_') =>
            {
                terms.push((sign, t.to_owned()));
                sign = 1.0;
                expect_term = false;
            }
            t => {
                return Err(Error::invalid(
                    "expression",
                    format!("unexpected `{t}` in formula `{expr}`"),
                ));
            }
        }
    }
    if expect_term {
        return Err(Error::invalid(
            "expression",
            format!("formula `{expr}` is incomplete"),
        ));
    }
    Ok(terms)
}

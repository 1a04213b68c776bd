//! What else the copy holds, all of it small or keyed by what changes it: indicator
//! definitions and targets, and what a submitted activity is checked against (teams' days,
//! activity kinds, digital services, period locks).
use super::FastMap;
use chrono::NaiveDate;
use cnscd_entity::indicator_definition;
use std::collections::HashMap;

/// A team as intake checks it (see [`super::View::team`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TeamDays {
    pub unit_code: String,
    pub founded_on: NaiveDate,
    pub dissolved_on: Option<NaiveDate>,
}

/// The catalogues, teams and period locks a submitted activity is checked against (see
/// `activities::intake`).
#[derive(Default)]
pub struct IntakeData {
    /// Activity kinds: whether each is active.
    pub kinds: HashMap<String, bool>,
    /// Digital services: (active, counts as cashless payment).
    pub services: HashMap<String, (bool, bool)>,
    /// Locked periods by unit index.
    pub(super) locks: FastMap<u32, Vec<(NaiveDate, NaiveDate)>>,
}

/// Indicator targets by unit index and period: (indicator code, target).
#[derive(Default)]
pub struct Targets(FastMap<(u32, NaiveDate, NaiveDate), Vec<(String, f64)>>);

impl Targets {
    /// Sets (or, with `None`, clears) the target of `code` for `unit` and the period.
    pub fn set(
        &mut self,
        code: &str,
        unit: u32,
        start: NaiveDate,
        end: NaiveDate,
        target: Option<f64>,
    ) {
        let key = (unit, start, end);
        let list = self.0.entry(key).or_default();
        list.retain(|(c, _)| c != code);
        if let Some(t) = target {
            list.push((code.to_owned(), t));
        }
        if list.is_empty() {
            self.0.remove(&key);
        }
    }

    /// The target set for indicator `code`, `unit` and the period `start ..= end`.
    pub fn get(&self, code: &str, unit: u32, start: NaiveDate, end: NaiveDate) -> Option<f64> {
        if self.0.is_empty() {
            return None;
        }
        self.0
            .get(&(unit, start, end))?
            .iter()
            .find(|(c, _)| c == code)
            .map(|(_, t)| *t)
    }
}

/// Active versions of each indicator, by code: ordered by `valid_from`, then version.
pub type Definitions = HashMap<String, Vec<indicator_definition::Model>>;

//! Reported figures held in memory: flows (dossiers, e-documents) summed up the hierarchy of
//! their period's first day, and reference figures (population, households) kept per year and
//! summed per day looked at. A figure counts for its unit and the units above it up to the
//! first that reported the same figure itself, so nothing is summed twice.
//!
//! Figures are grouped the way a change touches them: flows by element and period, reference
//! figures by element and year. A change to one figure re-reads and sums its group again.
use super::hierarchy::Hierarchy;
use super::{FastMap, FastSet};
use chrono::{Datelike, NaiveDate};
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

/// A reported value's period and amount.
pub type Reported = (NaiveDate, NaiveDate, f64);

/// A figure as read: reporting unit, element, period, value, and the element's aggregation.
pub type FigureRow = (u32, String, NaiveDate, NaiveDate, f64, String);

/// Reference figures on one day: for each unit and element, the sum over the units under it
/// of the latest value each reported for the day's year, and whether it covers the whole
/// territory.
#[derive(Default)]
pub struct DayReferences {
    /// By element, then unit.
    sums: HashMap<String, FastMap<u32, f64>>,
    incomplete: HashMap<String, FastSet<u32>>,
}

impl DayReferences {
    pub fn value(&self, unit: u32, element: &str) -> Option<f64> {
        self.sums.get(element)?.get(&unit).copied()
    }

    pub fn incomplete(&self, unit: u32, element: &str) -> bool {
        self.incomplete
            .get(element)
            .is_some_and(|units| units.contains(&unit))
    }
}

/// A flow group: one element and period.
type FlowGroup = (String, NaiveDate, NaiveDate);

/// By reporting unit and element: the latest reference value of a year, with its period's end.
type Latest = HashMap<(u32, String), (NaiveDate, f64)>;

/// The reported figures and what is computed from them.
#[derive(Default)]
pub struct Figures {
    /// Flow values as reported, by group then reporting unit (the latest submission wins).
    flows: HashMap<FlowGroup, FastMap<u32, f64>>,
    /// Flows summed for each unit: `(unit, element)` → `(start, end, sum)`.
    sums: HashMap<(u32, String), Vec<Reported>>,
    /// The units each flow group has sums for.
    summed: HashMap<FlowGroup, Vec<u32>>,
    /// The latest reference value per year, reporting unit and element, with its period's end.
    reference_latest: HashMap<i32, Latest>,
    /// Reference sums per day looked at, computed once and kept until a reference figure of
    /// that year changes.
    references: Mutex<HashMap<NaiveDate, Arc<DayReferences>>>,
}

impl Figures {
    /// Figures from rows in submission order (later rows replace earlier ones).
    pub fn build(hierarchy: &Hierarchy, rows: Vec<FigureRow>) -> Self {
        let mut f = Self::default();
        let mut groups: BTreeSet<FlowGroup> = BTreeSet::new();
        for (unit, element, start, end, value, aggregation) in rows {
            if aggregation == "REFERENCE" {
                f.add_reference(unit, element, start, end, value);
            } else {
                f.flows
                    .entry((element.clone(), start, end))
                    .or_default()
                    .insert(unit, value);
                groups.insert((element, start, end));
            }
        }
        for group in groups {
            f.sum_group(hierarchy, &group);
        }
        f
    }

    fn add_reference(
        &mut self,
        unit: u32,
        element: String,
        start: NaiveDate,
        end: NaiveDate,
        value: f64,
    ) {
        // A value counts for the year its period lies in; the latest period wins.
        if start.year() != end.year() {
            return;
        }
        let latest = self.reference_latest.entry(start.year()).or_default();
        let e = latest.entry((unit, element)).or_insert((end, value));
        if end >= e.0 {
            *e = (end, value);
        }
    }

    /// Sums one flow group up the hierarchy, replacing what was summed for it before. Costs
    /// what the group holds.
    fn sum_group(&mut self, hierarchy: &Hierarchy, group: &FlowGroup) {
        let (element, start, end) = group;
        for unit in self.summed.remove(group).unwrap_or_default() {
            let key = (unit, element.clone());
            if let Some(list) = self.sums.get_mut(&key) {
                list.retain(|(s, e, _)| !(s == start && e == end));
                if list.is_empty() {
                    self.sums.remove(&key);
                }
            }
        }
        let Some(values) = self.flows.get(group) else {
            return;
        };
        let mut sums: FastMap<u32, f64> = FastMap::default();
        for (source, value) in values {
            let itself = |a: u32| values.contains_key(&a);
            for a in hierarchy.counted_for(*source, *start, itself) {
                *sums.entry(a).or_default() += value;
            }
        }
        let mut units = Vec::with_capacity(sums.len());
        for (unit, v) in sums {
            units.push(unit);
            self.sums
                .entry((unit, element.clone()))
                .or_default()
                .push((*start, *end, v));
        }
        self.summed.insert(group.clone(), units);
    }

    /// Replaces the flow values of one element and period by `values` (reporting unit and
    /// value, in submission order), and sums them again.
    pub fn set_flows(&mut self, hierarchy: &Hierarchy, group: FlowGroup, values: Vec<(u32, f64)>) {
        if values.is_empty() {
            self.flows.remove(&group);
        } else {
            self.flows
                .insert(group.clone(), values.into_iter().collect::<FastMap<_, _>>());
        }
        self.sum_group(hierarchy, &group);
    }

    /// Sets the flow value one unit reported for one element and period (`None`: it has none
    /// now). When the unit reported before and still does, the sums above it move by the
    /// difference; otherwise which units count for which changes, and the group is summed
    /// again.
    pub fn set_flow(
        &mut self,
        hierarchy: &Hierarchy,
        group: FlowGroup,
        unit: u32,
        value: Option<f64>,
    ) {
        let values = self.flows.entry(group.clone()).or_default();
        let old = match value {
            Some(v) => values.insert(unit, v),
            None => values.remove(&unit),
        };
        if values.is_empty() {
            self.flows.remove(&group);
        }
        let (Some(old), Some(new)) = (old, value) else {
            if old.is_some() || value.is_some() {
                self.sum_group(hierarchy, &group);
            }
            return;
        };
        if new == old {
            return;
        }
        let (element, start, end) = &group;
        let Some(values) = self.flows.get(&group) else {
            return;
        };
        let itself = |a: u32| values.contains_key(&a);
        let mut found = true;
        for a in hierarchy.counted_for(unit, *start, itself) {
            let sum = self
                .sums
                .get_mut(&(a, element.clone()))
                .and_then(|list| list.iter_mut().find(|(s, e, _)| s == start && e == end));
            match sum {
                Some((_, _, v)) => *v += new - old,
                None => found = false,
            }
        }
        if !found {
            self.sum_group(hierarchy, &group);
        }
    }

    /// Replaces the reference values of one element and year by `values` (reporting unit,
    /// period and value, in submission order), and forgets the day sums of that year.
    pub fn set_references(
        &mut self,
        element: &str,
        year: i32,
        values: Vec<(u32, NaiveDate, NaiveDate, f64)>,
    ) {
        if let Some(latest) = self.reference_latest.get_mut(&year) {
            latest.retain(|(_, e), _| e != element);
        }
        for (unit, start, end, value) in values {
            self.add_reference(unit, element.to_owned(), start, end, value);
        }
        if let Ok(mut cache) = self.references.lock() {
            cache.retain(|day, _| day.year() != year);
        }
    }

    /// Reported flow values summed for `unit`: `(period start, period end, sum)`.
    pub fn reported_for(&self, unit: u32, element: &str) -> &[Reported] {
        self.sums
            .get(&(unit, element.to_owned()))
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// Reference figures on `day`, computed once and kept.
    pub fn references(&self, hierarchy: &Hierarchy, day: NaiveDate) -> Arc<DayReferences> {
        if let Some(r) = self
            .references
            .lock()
            .ok()
            .and_then(|m| m.get(&day).cloned())
        {
            return r;
        }
        let computed = Arc::new(self.compute_references(hierarchy, day));
        if let Ok(mut m) = self.references.lock() {
            m.insert(day, computed.clone());
        }
        computed
    }

    fn compute_references(&self, hierarchy: &Hierarchy, day: NaiveDate) -> DayReferences {
        let mut out = DayReferences::default();
        let Some(latest) = self.reference_latest.get(&day.year()) else {
            // Nothing reported for the year: every unit lacks every figure.
            return out;
        };
        for ((source, element), (_, value)) in latest {
            let itself = |a: u32| latest.contains_key(&(a, element.clone()));
            for a in hierarchy.counted_for(*source, day, itself) {
                *out.sums
                    .entry(element.clone())
                    .or_default()
                    .entry(a)
                    .or_default() += value;
            }
        }
        // Where a figure is known for only part of a unit's territory, its sum is not the
        // unit's figure: a unit is covered when it reported the figure itself, or has units
        // below it on the day and all of them are covered.
        let elements: BTreeSet<&String> = latest.keys().map(|(_, e)| e).collect();
        for element in elements {
            let mut memo: HashMap<u32, bool> = HashMap::new();
            let units: BTreeSet<u32> = out
                .sums
                .get(element)
                .map(|m| m.keys().copied().collect())
                .unwrap_or_default();
            for unit in units {
                if !covered(hierarchy, unit, element, day, latest, &mut memo, 0) {
                    out.incomplete
                        .entry(element.clone())
                        .or_default()
                        .insert(unit);
                }
            }
        }
        out
    }
}

fn covered(
    hierarchy: &Hierarchy,
    unit: u32,
    element: &String,
    day: NaiveDate,
    latest: &Latest,
    memo: &mut HashMap<u32, bool>,
    depth: usize,
) -> bool {
    if let Some(c) = memo.get(&unit) {
        return *c;
    }
    let result = if latest.contains_key(&(unit, element.clone())) {
        true
    } else {
        let children = hierarchy.children_on(unit, day);
        !children.is_empty()
            && depth < 8
            && children
                .iter()
                .all(|c| covered(hierarchy, *c, element, day, latest, memo, depth + 1))
    };
    memo.insert(unit, result);
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use cnscd_entity::codes::UnitLevel::{Commune, Hamlet, Province};

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap_or_default()
    }

    #[test]
    fn a_flow_figure_set_alone_sums_as_the_whole_group_would() {
        let (min, max) = (d("2000-01-01"), d("9999-12-31"));
        let h = Hierarchy::from_parts(
            Vec::new(),
            vec![
                ("P", "P", 0, Province, min, max),
                ("C1", "C1", 0, Commune, min, max),
                ("C2", "C2", 0, Commune, min, max),
                ("H", "H", 0, Hamlet, min, max),
                ("P", "C1", 1, Commune, min, max),
                ("P", "C2", 1, Commune, min, max),
                ("C1", "H", 1, Hamlet, min, max),
                ("P", "H", 2, Hamlet, min, max),
            ],
        );
        let u = |code: &str| h.unit(code).unwrap_or_default();
        let (start, end) = (d("2025-01-01"), d("2025-01-31"));
        let row = |unit: &str, v: f64| {
            (
                u(unit),
                "DOSSIERS".to_owned(),
                start,
                end,
                v,
                "FLOW".to_owned(),
            )
        };
        let group = ("DOSSIERS".to_owned(), start, end);
        let mut rows = vec![row("C1", 10.0), row("C2", 5.0), row("H", 3.0)];
        let mut figures = Figures::build(&h, rows.clone());
        for (unit, value) in [
            ("C2", Some(7.0)), // replaced: the sums above move by the difference
            ("H", Some(4.0)),  // under C1, which reports itself: C1 and P keep C1's own
            ("P", Some(30.0)), // P reports for the first time: the group is summed again
            ("C2", None),      // withdrawn
        ] {
            figures.set_flow(&h, group.clone(), u(unit), value);
            rows.retain(|r| r.0 != u(unit));
            if let Some(v) = value {
                rows.push(row(unit, v));
            }
            let fresh = Figures::build(&h, rows.clone());
            for code in ["P", "C1", "C2", "H"] {
                assert_eq!(
                    figures.reported_for(u(code), "DOSSIERS"),
                    fresh.reported_for(u(code), "DOSSIERS"),
                    "{code} after {unit} set to {value:?}"
                );
            }
        }
    }
}

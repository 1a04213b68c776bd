//! Reported figures held in memory: flows (dossiers, e-documents) summed up the hierarchy of
//! their period's first day, and reference figures (population, households) kept per year and
//! summed per day looked at. A figure counts for its unit and the units above it up to the
//! first that reported the same figure itself, so nothing is summed twice.
//!
//! Figures are grouped the way a change touches them: flows by element and period, reference
//! figures by element and year. A change to one figure re-reads and sums its group again.
//! Elements are held by their index among the copy's data elements; a nation reports about a
//! million reference figures, so each is held in 16 bytes.
use super::hierarchy::Hierarchy;
use super::{FastMap, FastSet};
use chrono::{Datelike, NaiveDate};
use std::collections::{BTreeMap, HashMap};
use std::ops::RangeInclusive;
use std::sync::{Arc, Mutex};

/// A reported value's period and amount.
pub type Reported = (NaiveDate, NaiveDate, f64);

/// A figure as read: reporting unit, element index, period and value.
pub type FigureRow = (u32, u16, NaiveDate, NaiveDate, f64);

/// A reference value as read: the latest a unit reported for an element and year, with the
/// day of the year its period ends.
#[derive(Clone, Copy, Debug)]
struct ReferenceValue {
    value: f64,
    unit: u32,
    element: u16,
    end: u16,
}

/// A reference value as held, in 12 bytes: its value as an `f32` where that is exact (counts
/// of people and households below 16,777,216 are), NaN where the value is held in
/// [`Latest::wide`].
#[derive(Clone, Copy, Debug)]
struct Held {
    value: f32,
    unit: u32,
    element: u16,
    end: u16,
}

/// The latest reference values of one year, one per unit and element, sorted by them.
#[derive(Default, Clone, Debug)]
pub struct Latest {
    held: Vec<Held>,
    /// The values an `f32` does not hold exactly, by unit and element.
    wide: FastMap<(u32, u16), f64>,
}

impl Latest {
    /// Keeps, of `values` in submission order, the one of each unit and element whose period
    /// ends last (of those ending on the same day, the last submitted).
    fn from_values(mut values: Vec<ReferenceValue>) -> Self {
        values.sort_by_key(|v| (v.unit, v.element, v.end));
        values.dedup_by(|next, kept| {
            let same = (next.unit, next.element) == (kept.unit, kept.element);
            if same {
                *kept = *next;
            }
            same
        });
        let mut wide = FastMap::default();
        let held = values
            .into_iter()
            .map(|v| {
                let narrow = v.value as f32;
                let value = if f64::from(narrow) == v.value {
                    narrow
                } else {
                    wide.insert((v.unit, v.element), v.value);
                    f32::NAN
                };
                Held {
                    value,
                    unit: v.unit,
                    element: v.element,
                    end: v.end,
                }
            })
            .collect();
        Self { held, wide }
    }

    fn value(&self, h: &Held) -> f64 {
        if h.value.is_nan() {
            self.wide
                .get(&(h.unit, h.element))
                .copied()
                .unwrap_or(f64::NAN)
        } else {
            f64::from(h.value)
        }
    }

    /// The values, as read.
    fn iter(&self) -> impl Iterator<Item = ReferenceValue> + '_ {
        self.held.iter().map(|h| ReferenceValue {
            value: self.value(h),
            unit: h.unit,
            element: h.element,
            end: h.end,
        })
    }

    fn get(&self, unit: u32, element: u16) -> Option<f64> {
        self.held
            .binary_search_by_key(&(unit, element), |v| (v.unit, v.element))
            .ok()
            .map(|i| self.value(&self.held[i]))
    }
}

/// Reference figures on one day: for each unit with units under it and each element, the sum
/// over the units under it of the latest value each reported for the day's year, and whether
/// it covers the whole territory. A unit without units under it has the value it reported.
#[derive(Default)]
pub struct DayReferences {
    sums: FastMap<(u32, u16), f64>,
    incomplete: FastSet<(u32, u16)>,
    own: Arc<Latest>,
}

impl DayReferences {
    pub fn value(&self, unit: u32, element: u16) -> Option<f64> {
        self.sums
            .get(&(unit, element))
            .copied()
            .or_else(|| self.own.get(unit, element))
    }

    pub fn incomplete(&self, unit: u32, element: u16) -> bool {
        self.incomplete.contains(&(unit, element))
    }
}

/// A flow group: one element and period.
pub type FlowGroup = (u16, NaiveDate, NaiveDate);

/// The values of one flow group, by reporting unit (sorted).
#[derive(Default, Debug)]
struct FlowValues(Vec<(u32, f64)>);

impl FlowValues {
    /// From values in submission order: the last of each unit wins.
    fn from_values(values: Vec<(u32, f64)>) -> Self {
        let mut values = values;
        // Stable: of one unit's values, the last submitted stays last.
        values.sort_by_key(|(u, _)| *u);
        let mut out: Vec<(u32, f64)> = Vec::with_capacity(values.len());
        for (unit, value) in values {
            match out.last_mut() {
                Some(last) if last.0 == unit => last.1 = value,
                _ => out.push((unit, value)),
            }
        }
        out.shrink_to_fit();
        Self(out)
    }

    fn contains(&self, unit: u32) -> bool {
        self.get(unit).is_some()
    }

    fn get(&self, unit: u32) -> Option<f64> {
        self.0
            .binary_search_by_key(&unit, |(u, _)| *u)
            .ok()
            .map(|i| self.0[i].1)
    }

    /// Sets (or, with `None`, removes) the value of `unit`, returning the one it replaces.
    fn set(&mut self, unit: u32, value: Option<f64>) -> Option<f64> {
        match (self.0.binary_search_by_key(&unit, |(u, _)| *u), value) {
            (Ok(i), Some(v)) => Some(std::mem::replace(&mut self.0[i].1, v)),
            (Ok(i), None) => Some(self.0.remove(i).1),
            (Err(i), Some(v)) => {
                self.0.insert(i, (unit, v));
                None
            }
            (Err(_), None) => None,
        }
    }
}

/// Day sums kept at most; past it they are forgotten all at once (they are kept per year and
/// stretch of days the hierarchy does not change in: a few per year).
const DAYS_KEPT: usize = 64;

/// The reported figures and what is computed from them.
#[derive(Default)]
pub struct Figures {
    /// Flow values as reported, by group then reporting unit (the latest submission wins):
    /// what a unit that reported a group itself counts for it.
    flows: BTreeMap<FlowGroup, FlowValues>,
    /// Flows summed for each unit that did not report the group itself, from the units
    /// under it: `(unit, element)` → `(start, end, sum)`.
    sums: FastMap<(u32, u16), Vec<Reported>>,
    /// The latest reference values per year.
    reference_latest: HashMap<i32, Arc<Latest>>,
    /// Flow values read and not yet sorted into `flows` ([`Figures::add`]).
    flows_read: HashMap<FlowGroup, Vec<(u32, f64)>>,
    /// Reference values read and not yet sorted into `reference_latest` ([`Figures::add`]).
    reference_read: HashMap<i32, Vec<ReferenceValue>>,
    /// Reference sums by year and the first day of the stretch the hierarchy does not change
    /// in, computed once and kept until a reference figure of that year changes.
    references: Mutex<HashMap<(i32, NaiveDate), Arc<DayReferences>>>,
}

impl Figures {
    /// Figures from rows in submission order (later rows replace earlier ones); `reference`
    /// tells the elements that are reference figures.
    pub fn build(
        hierarchy: &Hierarchy,
        rows: impl IntoIterator<Item = FigureRow>,
        reference: impl Fn(u16) -> bool,
    ) -> Self {
        let mut f = Self::default();
        for row in rows {
            f.add(row, reference(row.1));
        }
        f.finish(hierarchy);
        f
    }

    /// Takes one figure read, in submission order ([`Figures::finish`] when all are read).
    pub fn add(&mut self, (unit, element, start, end, value): FigureRow, reference: bool) {
        if !reference {
            self.flows_read
                .entry((element, start, end))
                .or_default()
                .push((unit, value));
        } else if let Some(v) = reference_value(unit, element, start, end, value) {
            self.reference_read.entry(start.year()).or_default().push(v);
        }
    }

    /// Sums what [`Figures::add`] took.
    pub fn finish(&mut self, hierarchy: &Hierarchy) {
        for (group, values) in std::mem::take(&mut self.flows_read) {
            self.flows.insert(group, FlowValues::from_values(values));
        }
        for (year, values) in std::mem::take(&mut self.reference_read) {
            self.reference_latest
                .insert(year, Arc::new(Latest::from_values(values)));
        }
        let groups: Vec<FlowGroup> = self.flows.keys().copied().collect();
        for group in groups {
            self.sum_group(hierarchy, &group, &[]);
        }
        for list in self.sums.values_mut() {
            list.shrink_to_fit();
        }
    }

    /// Sums one flow group up the hierarchy, replacing what was summed for it before, when
    /// `before` reported (sums are kept only for them and units above them). Costs what the
    /// group holds.
    fn sum_group(&mut self, hierarchy: &Hierarchy, group: &FlowGroup, before: &[u32]) {
        let (element, start, end) = *group;
        let summed: FastSet<u32> = before
            .iter()
            .flat_map(|u| hierarchy.above_some_day(*u))
            .collect();
        for unit in summed {
            let key = (unit, element);
            if let Some(list) = self.sums.get_mut(&key) {
                list.retain(|(s, e, _)| !(*s == start && *e == end));
                if list.is_empty() {
                    self.sums.remove(&key);
                }
            }
        }
        let Some(values) = self.flows.get(group) else {
            return;
        };
        let mut sums: FastMap<u32, f64> = FastMap::default();
        for (source, value) in &values.0 {
            let itself = |a: u32| values.contains(a);
            // The source counts its own value from `flows`.
            for a in hierarchy.counted_for(*source, start, itself).skip(1) {
                *sums.entry(a).or_default() += value;
            }
        }
        for (unit, v) in sums {
            self.sums
                .entry((unit, element))
                .or_default()
                .push((start, end, v));
        }
    }

    /// Replaces the flow values of one element and period by `values` (reporting unit and
    /// value, in submission order), and sums them again.
    pub fn set_flows(&mut self, hierarchy: &Hierarchy, group: FlowGroup, values: Vec<(u32, f64)>) {
        let before = self.flows.remove(&group).unwrap_or_default();
        if !values.is_empty() {
            self.flows.insert(group, FlowValues::from_values(values));
        }
        let before: Vec<u32> = before.0.iter().map(|(u, _)| *u).collect();
        self.sum_group(hierarchy, &group, &before);
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
        let values = self.flows.entry(group).or_default();
        let old = values.set(unit, value);
        if values.0.is_empty() {
            self.flows.remove(&group);
        }
        // The units that reported before: those that do now, and `unit`.
        let before = |f: &Self| -> Vec<u32> {
            let now = f.flows.get(&group).map_or(&[][..], |v| v.0.as_slice());
            now.iter().map(|(u, _)| *u).chain([unit]).collect()
        };
        let (Some(old), Some(new)) = (old, value) else {
            if old.is_some() || value.is_some() {
                let before = before(self);
                self.sum_group(hierarchy, &group, &before);
            }
            return;
        };
        if new == old {
            return;
        }
        let (element, start, end) = group;
        let Some(values) = self.flows.get(&group) else {
            return;
        };
        let itself = |a: u32| values.contains(a);
        let mut found = true;
        for a in hierarchy.counted_for(unit, start, itself).skip(1) {
            let sum = self
                .sums
                .get_mut(&(a, element))
                .and_then(|list| list.iter_mut().find(|(s, e, _)| *s == start && *e == end));
            match sum {
                Some((_, _, v)) => *v += new - old,
                None => found = false,
            }
        }
        if !found {
            let before = before(self);
            self.sum_group(hierarchy, &group, &before);
        }
    }

    /// Replaces the reference values of one element and year by `values` (reporting unit,
    /// period and value, in submission order), and forgets the day sums of that year.
    pub fn set_references(
        &mut self,
        element: u16,
        year: i32,
        values: Vec<(u32, NaiveDate, NaiveDate, f64)>,
    ) {
        let mut kept: Vec<ReferenceValue> = self
            .reference_latest
            .get(&year)
            .map(|l| l.iter().filter(|v| v.element != element).collect())
            .unwrap_or_default();
        kept.extend(values.into_iter().filter_map(|(unit, start, end, value)| {
            reference_value(unit, element, start, end, value)
        }));
        self.reference_latest
            .insert(year, Arc::new(Latest::from_values(kept)));
        if let Ok(mut cache) = self.references.lock() {
            cache.retain(|(y, _), _| *y != year);
        }
    }

    /// The flow values `unit` counts, reported by itself or summed from the units under it,
    /// for the periods that start in `starts` and end by `end_by` (`None`: no such value).
    pub fn reported(
        &self,
        unit: u32,
        element: u16,
        starts: RangeInclusive<NaiveDate>,
        end_by: NaiveDate,
    ) -> Option<f64> {
        let (first, last) = (*starts.start(), *starts.end());
        let mut found: Option<f64> = None;
        let own = self
            .flows
            .range((element, first, NaiveDate::MIN)..=(element, last, NaiveDate::MAX))
            .filter(|((_, _, end), _)| *end <= end_by)
            .filter_map(|(_, values)| values.get(unit));
        let summed = self
            .sums
            .get(&(unit, element))
            .map_or(&[][..], Vec::as_slice)
            .iter()
            .filter(|(start, end, _)| first <= *start && *start <= last && *end <= end_by)
            .map(|(_, _, v)| *v);
        for v in own.chain(summed) {
            *found.get_or_insert(0.0) += v;
        }
        found
    }

    /// Reference figures on `day`, computed once and kept.
    pub fn references(&self, hierarchy: &Hierarchy, day: NaiveDate) -> Arc<DayReferences> {
        let key = (day.year(), hierarchy.unchanged_since(day));
        if let Some(r) = self
            .references
            .lock()
            .ok()
            .and_then(|m| m.get(&key).cloned())
        {
            return r;
        }
        let computed = Arc::new(self.compute_references(hierarchy, day));
        if let Ok(mut m) = self.references.lock() {
            if m.len() >= DAYS_KEPT {
                m.clear();
            }
            m.insert(key, computed.clone());
        }
        computed
    }

    fn compute_references(&self, hierarchy: &Hierarchy, day: NaiveDate) -> DayReferences {
        let Some(latest) = self.reference_latest.get(&day.year()) else {
            // Nothing reported for the year: every unit lacks every figure.
            return DayReferences::default();
        };
        let mut out = DayReferences {
            own: latest.clone(),
            ..DayReferences::default()
        };
        for v in latest.iter() {
            let itself = |a: u32| latest.get(a, v.element).is_some();
            for a in hierarchy.counted_for(v.unit, day, itself) {
                if hierarchy.has_units_under(a) {
                    *out.sums.entry((a, v.element)).or_default() += v.value;
                }
            }
        }
        // Where a figure is known for only part of a unit's territory, its sum is not the
        // unit's figure: a unit is covered when it reported the figure itself, or has units
        // below it on the day and all of them are covered.
        let mut memo: FastMap<(u32, u16), bool> = FastMap::default();
        let mut keys: Vec<(u32, u16)> = out.sums.keys().copied().collect();
        keys.sort_unstable();
        for (unit, element) in keys {
            if !covered(hierarchy, unit, element, day, latest, &mut memo, 0) {
                out.incomplete.insert((unit, element));
            }
        }
        out
    }
}

/// A reference value as held, if its period lies in one year (it counts for that year).
fn reference_value(
    unit: u32,
    element: u16,
    start: NaiveDate,
    end: NaiveDate,
    value: f64,
) -> Option<ReferenceValue> {
    (start.year() == end.year()).then(|| ReferenceValue {
        value,
        unit,
        element,
        end: end.ordinal() as u16,
    })
}

fn covered(
    hierarchy: &Hierarchy,
    unit: u32,
    element: u16,
    day: NaiveDate,
    latest: &Latest,
    memo: &mut FastMap<(u32, u16), bool>,
    depth: usize,
) -> bool {
    if let Some(c) = memo.get(&(unit, element)) {
        return *c;
    }
    let result = if latest.get(unit, element).is_some() {
        true
    } else {
        let children = hierarchy.children_on(unit, day);
        !children.is_empty()
            && depth < 8
            && children
                .iter()
                .all(|c| covered(hierarchy, *c, element, day, latest, memo, depth + 1))
    };
    memo.insert((unit, element), result);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap_or_default()
    }

    #[test]
    fn a_flow_figure_set_alone_sums_as_the_whole_group_would() {
        let h = Hierarchy::two_communes();
        let u = |code: &str| h.unit(code).unwrap_or_default();
        let (start, end) = (d("2025-01-01"), d("2025-01-31"));
        const DOSSIERS: u16 = 0;
        let row = |unit: &str, v: f64| (u(unit), DOSSIERS, start, end, v);
        let group = (DOSSIERS, start, end);
        let mut rows = vec![row("C1", 10.0), row("C2", 5.0), row("H", 3.0)];
        let mut figures = Figures::build(&h, rows.clone(), |_| false);
        let month = |f: &Figures, code: &str| f.reported(u(code), DOSSIERS, start..=start, end);
        // A unit that reported counts its own value; one that did not, the sum of those under
        // it up to the first that did (H stops at C1).
        for (code, value) in [("P", 15.0), ("C1", 10.0), ("C2", 5.0), ("H", 3.0)] {
            assert_eq!(month(&figures, code), Some(value), "{code}");
        }
        assert_eq!(
            figures.reported(u("P"), DOSSIERS, start..=start, d("2025-01-30")),
            None,
            "a period ending after the window's end is not counted"
        );
        for (unit, value) in [
            ("C2", Some(7.0)), // replaced: the sums above move by the difference
            ("H", Some(4.0)),  // under C1, which reports itself: C1 and P keep C1's own
            ("P", Some(30.0)), // P reports for the first time: the group is summed again
            ("C2", None),      // withdrawn
        ] {
            figures.set_flow(&h, group, u(unit), value);
            rows.retain(|r| r.0 != u(unit));
            if let Some(v) = value {
                rows.push(row(unit, v));
            }
            let fresh = Figures::build(&h, rows.clone(), |_| false);
            if unit == "P" {
                assert_eq!(month(&figures, "P"), Some(30.0), "P's own figure stands");
            }
            for code in ["P", "C1", "C2", "H"] {
                for (starts, end_by) in [
                    (start..=start, end),
                    (d("2025-01-01")..=d("2025-12-31"), d("2025-12-31")),
                    (d("2025-02-01")..=d("2025-12-31"), d("2025-12-31")),
                ] {
                    assert_eq!(
                        figures.reported(u(code), DOSSIERS, starts.clone(), end_by),
                        fresh.reported(u(code), DOSSIERS, starts, end_by),
                        "{code} after {unit} set to {value:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn latest_reference_values_keep_the_last_and_every_value_exactly() {
        let v = |unit, end, value| ReferenceValue {
            value,
            unit,
            element: 0,
            end,
        };
        let latest = Latest::from_values(vec![
            v(2, 365, 0.1),          // not an f32: held wide, and replaced below
            v(1, 365, 1_234.0),      // an f32
            v(2, 365, 16_777_217.0), // past an f32's integers: wide
            v(1, 180, 99.0),         // ends earlier: the one ending last wins
            v(3, 365, 2.5),
        ]);
        assert_eq!(latest.get(1, 0), Some(1_234.0));
        assert_eq!(latest.get(2, 0), Some(16_777_217.0));
        assert_eq!(latest.get(3, 0), Some(2.5));
        assert_eq!(latest.get(4, 0), None);
        assert_eq!(latest.get(1, 1), None);
        assert_eq!(latest.wide.len(), 1);
        let again: Vec<f64> = latest.iter().map(|r| r.value).collect();
        assert_eq!(again, [1_234.0, 16_777_217.0, 2.5]);
    }
}

//! State elements held in memory: how many teams and members there were on each day, as
//! steps per unit where the teams sit. A change to a team or its members reads the teams of
//! the units it touches again, and rebuilds those units' steps only.
//!
//! A nation has about 100,000 teams and 500,000 memberships: the steps of a unit are one
//! sorted slice of `(element, day, count)`, elements by a small index; memberships are not
//! held once counted.
use super::FastMap;
use super::hierarchy::Hierarchy;
use chrono::NaiveDate;
use cnscd_entity::codes::UnitLevel;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// A unit's state elements over time: `(element, first day, count from that day on)`,
/// sorted by element then day. Days are held as days since [`EPOCH`] (8 bytes a step: a
/// nation has about 1.5 million); a unit with a day outside 2000–2179 keeps full dates.
#[derive(Debug, Clone, PartialEq)]
enum Steps {
    Near(Box<[(u16, u16, i32)]>),
    Far(Box<[(u16, NaiveDate, i32)]>),
}

/// The first day [`Steps::Near`] holds.
const EPOCH: NaiveDate = NaiveDate::from_ymd_opt(2000, 1, 1).expect("a valid day");

/// `day` as days since [`EPOCH`], if it is one of the days a `u16` holds.
fn near(day: NaiveDate) -> Option<u16> {
    u16::try_from((day - EPOCH).num_days()).ok()
}

impl Default for Steps {
    fn default() -> Self {
        Self::Near(Box::default())
    }
}

impl Steps {
    /// From `(element, day, +1 / −1)` events.
    fn from_events(mut events: Vec<(u16, NaiveDate, i32)>) -> Self {
        events.sort_by_key(|e| (e.0, e.1));
        let mut steps: Vec<(u16, NaiveDate, i32)> = Vec::with_capacity(events.len());
        let mut total = 0;
        for (element, day, delta) in events {
            match steps.last_mut() {
                Some(last) if last.0 == element && last.1 == day => {
                    total += delta;
                    last.2 = total;
                }
                Some(last) if last.0 == element => {
                    total += delta;
                    steps.push((element, day, total));
                }
                _ => {
                    total = delta;
                    steps.push((element, day, total));
                }
            }
        }
        let narrow: Option<Box<[(u16, u16, i32)]>> = steps
            .iter()
            .map(|&(element, day, count)| near(day).map(|d| (element, d, count)))
            .collect();
        match narrow {
            Some(steps) => Self::Near(steps),
            None => Self::Far(steps.into_boxed_slice()),
        }
    }

    /// The count of `element` on `day`.
    fn on(&self, element: u16, day: NaiveDate) -> f64 {
        fn count<D: Ord + Copy>(steps: &[(u16, D, i32)], element: u16, day: D) -> f64 {
            let first = steps.partition_point(|s| s.0 < element);
            let next = steps.partition_point(|s| (s.0, s.1) <= (element, day));
            if next > first {
                f64::from(steps[next - 1].2)
            } else {
                0.0
            }
        }
        match self {
            Self::Far(steps) => count(steps, element, day),
            // Before the epoch nothing has started; past the last day a `u16` holds,
            // everything has.
            Self::Near(_) if day < EPOCH => 0.0,
            Self::Near(steps) => count(steps, element, near(day).unwrap_or(u16::MAX)),
        }
    }
}

/// A membership as the states count it: its affiliation and days.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub affiliation: Arc<str>,
    pub started_on: NaiveDate,
    pub ended_on: Option<NaiveDate>,
}

/// A team as read for the states to count: where it sits, its days and its memberships.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TeamShare {
    pub unit: u32,
    pub founded_on: NaiveDate,
    pub dissolved_on: Option<NaiveDate>,
    pub members: Vec<Member>,
}

const ACTIVE_TEAMS: &str = "ACTIVE_TEAMS";
const ACTIVE_MEMBERS: &str = "ACTIVE_MEMBERS";

impl TeamShare {
    /// What the team adds to its unit's state elements: `(element, day, +1 / −1)`. A team
    /// counts from its founding to the day before its dissolution; a membership from its start
    /// to its end, while its team counts.
    fn events(&self, elements: &mut Elements) -> Vec<(u16, NaiveDate, i32)> {
        let teams = elements.id(ACTIVE_TEAMS);
        let members = elements.id(ACTIVE_MEMBERS);
        let mut out = vec![(teams, self.founded_on, 1)];
        if let Some(d) = self.dissolved_on {
            out.push((teams, d, -1));
        }
        for m in &self.members {
            let first = m.started_on.max(self.founded_on);
            // The first day it no longer counts.
            let stop = match (m.ended_on.and_then(|e| e.succ_opt()), self.dissolved_on) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            if stop.is_some_and(|s| s <= first) {
                continue;
            }
            let by_affiliation = elements.affiliation(&m.affiliation);
            for element in [members, by_affiliation] {
                out.push((element, first, 1));
                if let Some(s) = stop {
                    out.push((element, s, -1));
                }
            }
        }
        out
    }
}

/// The state elements counted from teams, by a small index.
#[derive(Default)]
struct Elements {
    ids: HashMap<String, u16>,
    /// The element of each affiliation's members.
    affiliations: HashMap<Arc<str>, u16>,
}

impl Elements {
    fn id(&mut self, element: &str) -> u16 {
        if let Some(i) = self.ids.get(element) {
            return *i;
        }
        let i = self.ids.len() as u16;
        self.ids.insert(element.to_owned(), i);
        i
    }

    fn affiliation(&mut self, affiliation: &Arc<str>) -> u16 {
        if let Some(i) = self.affiliations.get(affiliation) {
            return *i;
        }
        let i = self.id(&format!("{ACTIVE_MEMBERS}_{affiliation}"));
        self.affiliations.insert(affiliation.clone(), i);
        i
    }
}

/// A team as held: where it sits and its days.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Team {
    pub unit: u32,
    pub founded_on: NaiveDate,
    pub dissolved_on: Option<NaiveDate>,
}

/// The state steps, and the teams they are made of.
#[derive(Default)]
pub struct States {
    teams: FastMap<i64, Team>,
    /// By unit, for units where teams sit: the teams' ids, and the steps they make.
    units: FastMap<u32, (Box<[i64]>, Steps)>,
    elements: Elements,
    /// Counts of units with units under them (communes, districts, provinces: a sum over
    /// dozens to thousands of units), made when first asked and forgotten when a team under
    /// the unit changes.
    counted: Mutex<Counted>,
}

/// Counts made ([`States::state`]): by unit, element and day.
#[derive(Default)]
struct Counted {
    by_unit: FastMap<u32, HashMap<String, FastMap<NaiveDate, f64>>>,
    entries: usize,
}

/// Counts kept at most; past it they are forgotten all at once (days asked are month and
/// quarter ends, mostly: a province's communes over a few years stay well below).
const COUNTED_MAX: usize = 200_000;

impl States {
    /// The steps of `teams`.
    pub fn build(teams: Vec<(i64, TeamShare)>) -> Self {
        let mut s = Self::default();
        let mut by_unit: FastMap<u32, Vec<(i64, TeamShare)>> = FastMap::default();
        for (id, share) in teams {
            by_unit.entry(share.unit).or_default().push((id, share));
        }
        for (unit, shares) in by_unit {
            s.set_unit(unit, shares);
        }
        s
    }

    /// The team with this id.
    pub fn team(&self, id: i64) -> Option<&Team> {
        self.teams.get(&id)
    }

    /// Replaces the teams of `units` by `teams` (every team that sits in one of them now,
    /// with its memberships), rebuilds those units' steps, and forgets the counts made of the
    /// units above them. A team that moved is given with the units it left and joined; one
    /// that is gone, with the unit it left. Costs what the units' teams and memberships are.
    pub fn set_units(
        &mut self,
        hierarchy: &Hierarchy,
        units: &[u32],
        teams: Vec<(i64, TeamShare)>,
    ) {
        let mut by_unit: FastMap<u32, Vec<(i64, TeamShare)>> =
            units.iter().map(|u| (*u, Vec::new())).collect();
        for (id, share) in teams {
            if let Some(list) = by_unit.get_mut(&share.unit) {
                list.push((id, share));
            }
        }
        let counted = self.counted.get_mut().unwrap_or_else(|p| p.into_inner());
        for unit in units {
            for above in hierarchy.above_some_day(*unit) {
                if let Some(forgotten) = counted.by_unit.remove(&above) {
                    counted.entries -= forgotten.values().map(FastMap::len).sum::<usize>();
                }
            }
        }
        for (unit, shares) in by_unit {
            self.set_unit(unit, shares);
        }
    }

    /// Replaces the teams of one unit, and builds its steps from them.
    fn set_unit(&mut self, unit: u32, shares: Vec<(i64, TeamShare)>) {
        let (held, _) = self.units.remove(&unit).unwrap_or_default();
        for id in held {
            if self.teams.get(&id).is_some_and(|t| t.unit == unit) {
                self.teams.remove(&id);
            }
        }
        let mut events = Vec::new();
        let mut ids = Vec::with_capacity(shares.len());
        for (id, share) in shares {
            events.extend(share.events(&mut self.elements));
            let team = Team {
                unit,
                founded_on: share.founded_on,
                dissolved_on: share.dissolved_on,
            };
            // Moved here: no longer in the unit it left.
            if let Some(old) = self.teams.insert(id, team)
                && old.unit != unit
                && let Some((ids, _)) = self.units.get_mut(&old.unit)
            {
                *ids = ids.iter().copied().filter(|t| *t != id).collect();
            }
            ids.push(id);
        }
        if !ids.is_empty() {
            self.units
                .insert(unit, (ids.into_boxed_slice(), Steps::from_events(events)));
        }
    }

    /// The count of `element` in `unit` alone on `day`.
    fn own(&self, unit: u32, element: u16, day: NaiveDate) -> f64 {
        self.units
            .get(&unit)
            .map_or(0.0, |(_, steps)| steps.on(element, day))
    }

    /// The count of a state element (ACTIVE_TEAMS, ACTIVE_MEMBERS,
    /// ACTIVE_MEMBERS_<affiliation>, HAMLETS, HAMLETS_WITH_TEAM) for `unit` on `day`: over the
    /// unit and every unit under it on that day. Kept once made for a unit with units under
    /// it (a commune sums over its fifty-odd hamlets, a province over thousands).
    pub fn state(&self, hierarchy: &Hierarchy, unit: u32, element: &str, day: NaiveDate) -> f64 {
        if !hierarchy.has_units_under(unit) {
            return self.count(hierarchy, unit, element, day);
        }
        let kept = self
            .counted
            .lock()
            .ok()
            .and_then(|c| c.by_unit.get(&unit)?.get(element)?.get(&day).copied());
        if let Some(v) = kept {
            return v;
        }
        let v = self.count(hierarchy, unit, element, day);
        if let Ok(mut c) = self.counted.lock() {
            if c.entries >= COUNTED_MAX {
                *c = Counted::default();
            }
            let days = c
                .by_unit
                .entry(unit)
                .or_default()
                .entry(element.to_owned())
                .or_default();
            if days.insert(day, v).is_none() {
                c.entries += 1;
            }
        }
        v
    }

    /// [`Self::state`], counted.
    fn count(&self, hierarchy: &Hierarchy, unit: u32, element: &str, day: NaiveDate) -> f64 {
        match element {
            "HAMLETS" => hierarchy
                .links_down(unit)
                .filter(|l| l.level == UnitLevel::Hamlet && l.on(day))
                .count() as f64,
            "HAMLETS_WITH_TEAM" => {
                let Some(teams) = self.elements.ids.get(ACTIVE_TEAMS).copied() else {
                    return 0.0;
                };
                hierarchy
                    .links_down(unit)
                    .filter(|l| {
                        l.level == UnitLevel::Hamlet
                            && l.on(day)
                            && self.own(l.descendant, teams, day) > 0.0
                    })
                    .count() as f64
            }
            _ => {
                let Some(element) = self.elements.ids.get(element).copied() else {
                    return 0.0;
                };
                hierarchy
                    .links_down(unit)
                    .filter(|l| l.on(day))
                    .map(|l| self.own(l.descendant, element, day))
                    .sum()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap_or_default()
    }

    fn team(
        unit: u32,
        founded: &str,
        dissolved: Option<&str>,
        members: &[(&str, &str)],
    ) -> TeamShare {
        TeamShare {
            unit,
            founded_on: d(founded),
            dissolved_on: dissolved.map(d),
            members: members
                .iter()
                .map(|(aff, start)| Member {
                    affiliation: (*aff).into(),
                    started_on: d(start),
                    ended_on: None,
                })
                .collect(),
        }
    }

    fn on(s: &States, element: &str, unit: u32, day: &str) -> f64 {
        s.elements
            .ids
            .get(element)
            .map_or(0.0, |e| s.own(unit, *e, d(day)))
    }

    #[test]
    fn a_changed_team_rebuilds_its_units_only_and_equals_a_fresh_build() {
        let mut teams = FastMap::default();
        teams.insert(1, team(0, "2023-01-01", None, &[("POLICE", "2023-02-01")]));
        teams.insert(
            2,
            team(1, "2023-01-01", None, &[("YOUTH_UNION", "2023-03-01")]),
        );
        let all = |teams: &FastMap<i64, TeamShare>| -> Vec<(i64, TeamShare)> {
            teams.iter().map(|(id, t)| (*id, t.clone())).collect()
        };
        let mut s = States::build(all(&teams));
        assert_eq!(on(&s, "ACTIVE_MEMBERS", 0, "2023-06-01"), 1.0);
        // Team 1 moves to unit 2 and is dissolved; team 3 is founded in unit 0.
        let moved = team(
            2,
            "2023-01-01",
            Some("2024-01-01"),
            &[("POLICE", "2023-02-01")],
        );
        let new = team(0, "2024-05-01", None, &[]);
        teams.insert(1, moved);
        teams.insert(3, new);
        // The units team 1 left and joined, and team 3's: their teams as they are now.
        s.set_units(&Hierarchy::default(), &[0, 2], all(&teams));
        let fresh = States::build(all(&teams));
        for element in ["ACTIVE_TEAMS", "ACTIVE_MEMBERS", "ACTIVE_MEMBERS_POLICE"] {
            for unit in 0..3 {
                for day in ["2023-06-01", "2024-02-01", "2024-06-01"] {
                    assert_eq!(
                        on(&s, element, unit, day),
                        on(&fresh, element, unit, day),
                        "{element} {unit} {day}"
                    );
                }
            }
        }
        assert_eq!(s.team(1).map(|t| t.unit), Some(2));
        // Gone: counts nowhere.
        teams.remove(&2);
        s.set_units(&Hierarchy::default(), &[1], all(&teams));
        assert_eq!(s.team(2), None);
        assert_eq!(on(&s, "ACTIVE_TEAMS", 1, "2023-06-01"), 0.0);
        assert_eq!(on(&s, "ACTIVE_MEMBERS_YOUTH_UNION", 1, "2023-06-01"), 0.0);
    }

    #[test]
    fn counts_above_hamlets_are_kept_until_a_team_under_them_changes() {
        let (min, max) = (d("2000-01-01"), d("9999-12-31"));
        use UnitLevel::{Commune, Hamlet, Province};
        let h = Hierarchy::from_parts(
            Vec::new(),
            vec![
                ("P", "P", 0, Province, min, max),
                ("C", "C", 0, Commune, min, max),
                ("H", "H", 0, Hamlet, min, max),
                ("P", "C", 1, Commune, min, max),
                ("C", "H", 1, Hamlet, min, max),
                ("P", "H", 2, Hamlet, min, max),
                ("Q", "Q", 0, Province, min, max),
            ],
        );
        let u = |code: &str| h.unit(code).unwrap_or_default();
        let first = team(u("H"), "2023-01-01", None, &[("POLICE", "2023-01-01")]);
        let mut s = States::build(vec![(1, first)]);
        let day = d("2024-06-30");
        // Both the province and the commune have units under them: both keep their counts.
        assert!(
            h.has_units_under(u("P")) && h.has_units_under(u("C")) && !h.has_units_under(u("H"))
        );
        // Kept for the province and the commune alike (both have units under them).
        for unit in ["P", "C"] {
            assert_eq!(s.state(&h, u(unit), "ACTIVE_MEMBERS", day), 1.0);
            assert_eq!(s.state(&h, u(unit), "HAMLETS_WITH_TEAM", day), 1.0);
        }
        // A second team, a member more: the counts above it follow at once.
        let second = team(u("C"), "2023-01-01", None, &[("POLICE", "2024-01-01")]);
        s.set_units(&h, &[u("C")], vec![(2, second)]);
        for unit in ["P", "C"] {
            assert_eq!(s.state(&h, u(unit), "ACTIVE_MEMBERS", day), 2.0);
            assert_eq!(s.state(&h, u(unit), "ACTIVE_TEAMS", day), 2.0);
        }
        // The hamlet's team dissolved: gone from the commune and the province too.
        s.set_units(&h, &[u("H")], Vec::new());
        for unit in ["P", "C"] {
            assert_eq!(s.state(&h, u(unit), "HAMLETS_WITH_TEAM", day), 0.0);
            assert_eq!(s.state(&h, u(unit), "ACTIVE_MEMBERS", day), 1.0);
        }
    }

    #[test]
    fn steps_answer_alike_with_days_held_near_or_as_dates() {
        let days = [
            "2023-01-01",
            "2023-03-15",
            "2024-07-01",
            "2024-07-01",
            "2025-12-31",
        ];
        let mut events: Vec<(u16, NaiveDate, i32)> = days
            .iter()
            .flat_map(|day| [(0, d(day), 1), (1, d(day), 1)])
            .collect();
        events.push((0, d("2024-07-01"), -3));
        let near = Steps::from_events(events.clone());
        events.extend([(0, d("1999-12-31"), 1), (1, d("1999-12-31"), 1)]);
        let far = Steps::from_events(events);
        assert!(matches!(near, Steps::Near(_)));
        assert!(matches!(far, Steps::Far(_)));
        // The far set has one more step, before everything the near one holds.
        let far_without_it =
            |element, day: &str| far.on(element, d(day)) - f64::from(d(day) >= d("1999-12-31"));
        for day in [
            "1990-01-01",
            "1999-12-31",
            "2000-01-01",
            "2022-12-31",
            "2023-01-01",
            "2023-03-14",
            "2023-03-15",
            "2024-06-30",
            "2024-07-01",
            "2025-12-30",
            "2025-12-31",
            "2179-06-01",
            "2300-01-01",
        ] {
            for element in [0, 1, 2] {
                let expected = if element == 2 {
                    0.0
                } else {
                    far_without_it(element, day)
                };
                assert_eq!(
                    near.on(element, d(day)),
                    expected,
                    "element {element} on {day}"
                );
            }
        }
        assert_eq!(near.on(1, d("2300-01-01")), 5.0);
        assert_eq!(near.on(1, d("2022-12-31")), 0.0);
    }
}

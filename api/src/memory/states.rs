//! State elements held in memory: how many teams and members there were on each day, as
//! timelines per unit where the teams sit. Each team's share (its days, its memberships) is
//! kept, so a change to a team or its members rebuilds the timelines of its unit only.
use super::FastMap;
use super::hierarchy::Hierarchy;
use chrono::NaiveDate;
use cnscd_entity::codes::UnitLevel;
use std::collections::HashMap;
use std::sync::Mutex;

/// A count over time as steps: `(first day, count from that day on)`, by day.
#[derive(Default, Debug, Clone, PartialEq)]
pub struct Timeline(Vec<(NaiveDate, f64)>);

impl Timeline {
    fn from_events(mut events: Vec<(NaiveDate, f64)>) -> Self {
        events.sort_by_key(|e| e.0);
        let mut steps: Vec<(NaiveDate, f64)> = Vec::with_capacity(events.len());
        let mut total = 0.0;
        for (day, delta) in events {
            total += delta;
            match steps.last_mut() {
                Some(last) if last.0 == day => last.1 = total,
                _ => steps.push((day, total)),
            }
        }
        Self(steps)
    }

    /// The count on `day`.
    pub fn on(&self, day: NaiveDate) -> f64 {
        match self.0.partition_point(|(d, _)| *d <= day) {
            0 => 0.0,
            i => self.0[i - 1].1,
        }
    }
}

/// A membership as the states count it: its affiliation and days.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub affiliation: String,
    pub started_on: NaiveDate,
    pub ended_on: Option<NaiveDate>,
}

/// A team as the states count it: where it sits, its days and its memberships.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TeamShare {
    pub unit: u32,
    pub founded_on: NaiveDate,
    pub dissolved_on: Option<NaiveDate>,
    pub members: Vec<Member>,
}

impl TeamShare {
    /// What the team adds to its unit's state elements: `(element, day, +1 / −1)`. A team
    /// counts from its founding to the day before its dissolution; a membership from its start
    /// to its end, while its team counts.
    fn events(&self) -> Vec<(String, NaiveDate, f64)> {
        let mut out = vec![("ACTIVE_TEAMS".to_owned(), self.founded_on, 1.0)];
        if let Some(d) = self.dissolved_on {
            out.push(("ACTIVE_TEAMS".to_owned(), d, -1.0));
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
            for element in [
                "ACTIVE_MEMBERS".to_owned(),
                format!("ACTIVE_MEMBERS_{}", m.affiliation),
            ] {
                out.push((element.clone(), first, 1.0));
                if let Some(s) = stop {
                    out.push((element, s, -1.0));
                }
            }
        }
        out
    }
}

/// The state timelines, and the teams they are made of.
#[derive(Default)]
pub struct States {
    teams: FastMap<i64, TeamShare>,
    /// Team ids by the unit they sit in.
    by_unit: FastMap<u32, Vec<i64>>,
    /// By element, then unit index.
    timelines: HashMap<String, Vec<Option<Timeline>>>,
    units: usize,
    /// Counts of units with units two levels or more under them (districts, provinces: a
    /// sum over thousands of units), made when first asked and forgotten when a team under
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
/// quarter ends, mostly: a nation's provinces and districts over years stay well below).
const COUNTED_MAX: usize = 200_000;

impl States {
    /// The timelines of `teams`, for a hierarchy of `units` units.
    pub fn build(units: usize, teams: FastMap<i64, TeamShare>) -> Self {
        let mut s = Self {
            teams,
            units,
            ..Self::default()
        };
        let mut events: HashMap<(String, u32), Vec<(NaiveDate, f64)>> = HashMap::new();
        for (id, team) in &s.teams {
            s.by_unit.entry(team.unit).or_default().push(*id);
            for (element, day, delta) in team.events() {
                events
                    .entry((element, team.unit))
                    .or_default()
                    .push((day, delta));
            }
        }
        for ((element, unit), e) in events {
            s.timelines
                .entry(element)
                .or_insert_with(|| vec![None; units])[unit as usize] =
                Some(Timeline::from_events(e));
        }
        s
    }

    /// The team with this id, as counted.
    pub fn team(&self, id: i64) -> Option<&TeamShare> {
        self.teams.get(&id)
    }

    /// Replaces a team's share (`None`: it is gone), rebuilds the timelines of the units it
    /// sat in and sits in now, and forgets the counts made of the units above them. Costs what
    /// the units' teams and memberships are.
    pub fn set_team(&mut self, hierarchy: &Hierarchy, id: i64, share: Option<TeamShare>) {
        let old = match share {
            Some(share) => self.teams.insert(id, share),
            None => self.teams.remove(&id),
        };
        let mut units = Vec::new();
        if let Some(old) = old {
            if let Some(ids) = self.by_unit.get_mut(&old.unit) {
                ids.retain(|t| *t != id);
            }
            units.push(old.unit);
        }
        if let Some(new) = self.teams.get(&id) {
            let ids = self.by_unit.entry(new.unit).or_default();
            if !ids.contains(&id) {
                ids.push(id);
            }
            units.push(new.unit);
        }
        units.dedup();
        let counted = self.counted.get_mut().unwrap_or_else(|p| p.into_inner());
        for unit in &units {
            for above in hierarchy.above_some_day(*unit) {
                if let Some(forgotten) = counted.by_unit.remove(&above) {
                    counted.entries -= forgotten.values().map(FastMap::len).sum::<usize>();
                }
            }
        }
        for unit in units {
            self.rebuild(unit);
        }
    }

    /// Builds the timelines of one unit again from its teams.
    fn rebuild(&mut self, unit: u32) {
        let mut events: HashMap<String, Vec<(NaiveDate, f64)>> = HashMap::new();
        for id in self.by_unit.get(&unit).into_iter().flatten() {
            if let Some(team) = self.teams.get(id) {
                for (element, day, delta) in team.events() {
                    events.entry(element).or_default().push((day, delta));
                }
            }
        }
        let units = self.units;
        for (element, by_unit) in &mut self.timelines {
            if !events.contains_key(element)
                && let Some(slot) = by_unit.get_mut(unit as usize)
            {
                *slot = None;
            }
        }
        for (element, e) in events {
            let by_unit = self
                .timelines
                .entry(element)
                .or_insert_with(|| vec![None; units]);
            if let Some(slot) = by_unit.get_mut(unit as usize) {
                *slot = Some(Timeline::from_events(e));
            }
        }
    }

    /// The count of a state element (ACTIVE_TEAMS, ACTIVE_MEMBERS,
    /// ACTIVE_MEMBERS_<affiliation>, HAMLETS, HAMLETS_WITH_TEAM) for `unit` on `day`: over the
    /// unit and every unit under it on that day. Kept once made for a district or a province.
    pub fn state(&self, hierarchy: &Hierarchy, unit: u32, element: &str, day: NaiveDate) -> f64 {
        if !hierarchy.has_units_two_below(unit) {
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
                let Some(teams) = self.timelines.get("ACTIVE_TEAMS") else {
                    return 0.0;
                };
                hierarchy
                    .links_down(unit)
                    .filter(|l| {
                        l.level == UnitLevel::Hamlet
                            && l.on(day)
                            && teams
                                .get(l.descendant as usize)
                                .and_then(Option::as_ref)
                                .is_some_and(|t| t.on(day) > 0.0)
                    })
                    .count() as f64
            }
            _ => {
                let Some(by_unit) = self.timelines.get(element) else {
                    return 0.0;
                };
                hierarchy
                    .links_down(unit)
                    .filter(|l| l.on(day))
                    .filter_map(|l| by_unit.get(l.descendant as usize).and_then(Option::as_ref))
                    .map(|t| t.on(day))
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
                    affiliation: (*aff).to_owned(),
                    started_on: d(start),
                    ended_on: None,
                })
                .collect(),
        }
    }

    fn on(s: &States, element: &str, unit: u32, day: &str) -> f64 {
        s.timelines
            .get(element)
            .and_then(|v| v[unit as usize].as_ref())
            .map_or(0.0, |t| t.on(d(day)))
    }

    #[test]
    fn a_changed_team_rebuilds_its_units_only_and_equals_a_fresh_build() {
        let mut teams = FastMap::default();
        teams.insert(1, team(0, "2023-01-01", None, &[("POLICE", "2023-02-01")]));
        teams.insert(
            2,
            team(1, "2023-01-01", None, &[("YOUTH_UNION", "2023-03-01")]),
        );
        let mut s = States::build(3, teams.clone());
        assert_eq!(on(&s, "ACTIVE_MEMBERS", 0, "2023-06-01"), 1.0);
        // Team 1 moves to unit 2 and is dissolved; team 3 is founded in unit 0.
        let moved = team(
            2,
            "2023-01-01",
            Some("2024-01-01"),
            &[("POLICE", "2023-02-01")],
        );
        let new = team(0, "2024-05-01", None, &[]);
        s.set_team(&Hierarchy::default(), 1, Some(moved.clone()));
        s.set_team(&Hierarchy::default(), 3, Some(new.clone()));
        teams.insert(1, moved);
        teams.insert(3, new);
        let fresh = States::build(3, teams.clone());
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
        // Gone: counts nowhere.
        s.set_team(&Hierarchy::default(), 2, None);
        assert_eq!(on(&s, "ACTIVE_TEAMS", 1, "2023-06-01"), 0.0);
        assert_eq!(on(&s, "ACTIVE_MEMBERS_YOUTH_UNION", 1, "2023-06-01"), 0.0);
    }

    #[test]
    fn a_provinces_counts_are_kept_until_a_team_under_it_changes() {
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
        let mut teams = FastMap::default();
        teams.insert(
            1,
            team(u("H"), "2023-01-01", None, &[("POLICE", "2023-01-01")]),
        );
        let mut s = States::build(h.len(), teams);
        let day = d("2024-06-30");
        assert!(h.has_units_two_below(u("P")) && !h.has_units_two_below(u("C")));
        assert_eq!(s.state(&h, u("P"), "ACTIVE_MEMBERS", day), 1.0);
        assert_eq!(s.state(&h, u("P"), "HAMLETS_WITH_TEAM", day), 1.0);
        // A second team, a member more: the province's counts follow at once.
        s.set_team(
            &h,
            2,
            Some(team(
                u("C"),
                "2023-01-01",
                None,
                &[("POLICE", "2024-01-01")],
            )),
        );
        assert_eq!(s.state(&h, u("P"), "ACTIVE_MEMBERS", day), 2.0);
        assert_eq!(s.state(&h, u("P"), "ACTIVE_TEAMS", day), 2.0);
        // The hamlet's team dissolved: gone from the province too.
        s.set_team(&h, 1, None);
        assert_eq!(s.state(&h, u("P"), "HAMLETS_WITH_TEAM", day), 0.0);
        assert_eq!(s.state(&h, u("P"), "ACTIVE_MEMBERS", day), 1.0);
    }
}

//! State elements held in memory: how many teams and members there were on each day, as
//! timelines per unit where the teams sit. Each team's share (its days, its memberships) is
//! kept, so a change to a team or its members rebuilds the timelines of its unit only.
use super::FastMap;
use super::hierarchy::Hierarchy;
use chrono::NaiveDate;
use cnscd_entity::codes::UnitLevel;
use std::collections::HashMap;

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
}

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

    /// Replaces a team's share (`None`: it is gone), and rebuilds the timelines of the units it
    /// sat in and sits in now. Costs what the units' teams and memberships are.
    pub fn set_team(&mut self, id: i64, share: Option<TeamShare>) {
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
    /// unit and every unit under it on that day.
    pub fn state(&self, hierarchy: &Hierarchy, unit: u32, element: &str, day: NaiveDate) -> f64 {
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

impl States {
    /// The count of a state element for `unit` on every day at once, as one timeline ([`Self::state`]
    /// on each day): for an answer that asks for many days of a unit with many units under it
    /// (a province's months), one pass over the units under it instead of one per day.
    pub fn subtree(&self, hierarchy: &Hierarchy, unit: u32, element: &str) -> Timeline {
        let mut events: Vec<(NaiveDate, f64)> = Vec::new();
        let teams = self.timelines.get("ACTIVE_TEAMS");
        let timeline = |element: &str, u: u32| {
            self.timelines
                .get(element)
                .and_then(|by_unit| by_unit.get(u as usize))
                .and_then(Option::as_ref)
        };
        for l in hierarchy.links_down(unit) {
            let hamlet = l.level == UnitLevel::Hamlet;
            match element {
                "HAMLETS" if hamlet => restricted(&mut events, None, l.from, l.to, |_| 1.0),
                "HAMLETS" => {}
                "HAMLETS_WITH_TEAM" if hamlet => {
                    let t = teams
                        .and_then(|by_unit| by_unit.get(l.descendant as usize))
                        .and_then(Option::as_ref);
                    if let Some(t) = t {
                        restricted(&mut events, Some(t), l.from, l.to, |v| {
                            if v > 0.0 { 1.0 } else { 0.0 }
                        });
                    }
                }
                "HAMLETS_WITH_TEAM" => {}
                _ => {
                    if let Some(t) = timeline(element, l.descendant) {
                        restricted(&mut events, Some(t), l.from, l.to, |v| v);
                    }
                }
            }
        }
        Timeline::from_events(events)
    }
}

/// Adds to `events` the steps of `f` of `timeline` (of 1 throughout, without one) over the days
/// `from ..= to`, and nothing outside them.
fn restricted(
    events: &mut Vec<(NaiveDate, f64)>,
    timeline: Option<&Timeline>,
    from: NaiveDate,
    to: NaiveDate,
    f: impl Fn(f64) -> f64,
) {
    let value = |day: NaiveDate| f(timeline.map_or(1.0, |t| t.on(day)));
    let mut last = value(from);
    events.push((from, last));
    for (day, v) in timeline.map_or(&[][..], |t| t.0.as_slice()) {
        if *day > from && *day <= to {
            let now = f(*v);
            events.push((*day, now - last));
            last = now;
        }
    }
    if let Some(after) = to.succ_opt() {
        events.push((after, -last));
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
        s.set_team(1, Some(moved.clone()));
        s.set_team(3, Some(new.clone()));
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
        s.set_team(2, None);
        assert_eq!(on(&s, "ACTIVE_TEAMS", 1, "2023-06-01"), 0.0);
        assert_eq!(on(&s, "ACTIVE_MEMBERS_YOUTH_UNION", 1, "2023-06-01"), 0.0);
    }

    #[test]
    fn a_units_subtree_timeline_counts_what_each_day_counts() {
        let (min, max) = (d("2000-01-01"), d("9999-12-31"));
        let (moved, before) = (d("2025-07-01"), d("2025-06-30"));
        use UnitLevel::{Commune, Hamlet, Province};
        let mut closure = vec![("P", "P", 0, Province, min, max)];
        for c in ["C1", "C2"] {
            closure.push((c, c, 0, Commune, min, max));
        }
        for h in ["H1", "H2", "H3"] {
            closure.push((h, h, 0, Hamlet, min, max));
        }
        closure.extend([
            ("C1", "H1", 1, Hamlet, min, max),
            ("C1", "H2", 1, Hamlet, min, before),
            ("C2", "H2", 1, Hamlet, moved, max),
            ("C2", "H3", 1, Hamlet, d("2024-01-01"), max),
            ("P", "C1", 1, Commune, min, before),
            ("P", "C2", 1, Commune, min, max),
            ("P", "H1", 2, Hamlet, min, max),
            ("P", "H2", 2, Hamlet, min, max),
            ("P", "H3", 2, Hamlet, d("2024-01-01"), max),
        ]);
        let h = Hierarchy::from_parts(Vec::new(), closure);
        let u = |code: &str| h.unit(code).unwrap_or_default();
        let mut teams = FastMap::default();
        teams.insert(
            1,
            team(u("H1"), "2023-01-01", None, &[("POLICE", "2023-02-01")]),
        );
        teams.insert(
            2,
            team(
                u("H2"),
                "2024-03-01",
                Some("2025-09-01"),
                &[("POLICE", "2024-03-01"), ("YOUTH_UNION", "2025-08-01")],
            ),
        );
        teams.insert(3, team(u("C2"), "2022-06-15", None, &[]));
        let states = States::build(h.len(), teams);
        let days = [
            "2022-01-01",
            "2022-06-15",
            "2023-01-31",
            "2024-01-01",
            "2024-03-01",
            "2025-06-30",
            "2025-07-01",
            "2025-08-31",
            "2025-09-01",
            "2026-01-01",
        ];
        for element in [
            "ACTIVE_TEAMS",
            "ACTIVE_MEMBERS",
            "ACTIVE_MEMBERS_POLICE",
            "ACTIVE_MEMBERS_YOUTH_UNION",
            "HAMLETS",
            "HAMLETS_WITH_TEAM",
        ] {
            for unit in ["P", "C1", "C2", "H2"] {
                let whole = states.subtree(&h, u(unit), element);
                for day in days {
                    assert_eq!(
                        whole.on(d(day)),
                        states.state(&h, u(unit), element, d(day)),
                        "{element} of {unit} on {day}"
                    );
                }
            }
        }
    }
}

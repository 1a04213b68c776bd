//! The oracle's model, independent of the service's SQL: the hierarchy written out by hand and
//! the area rule over it, the callers, and who may read (the rules over the fixture's rows)
//! and do (writes and locks) what.
use super::fixture::{FAudit, Fx};
use chrono::{Days, NaiveDate};
use cnscd_tests::date;
use std::collections::BTreeSet;
use std::sync::LazyLock;

// ------------------------------------------------------------------------------------------
// The hierarchy, by hand (tests/src/lib.rs: OLD_UNITS, NEW_UNITS, SUCCESSIONS).

const LAST: &str = "9999-12-31";
const REORG: &str = "2025-07-01";

/// Unit versions: code, first day, last day, parent.
const VERSIONS: &[(&str, &str, &str, Option<&str>)] = &[
    ("19", "2000-01-01", LAST, None),
    ("06", "2000-01-01", "2025-06-30", None),
    ("169", "2000-01-01", "2025-06-30", Some("19")),
    ("164", "2000-01-01", "2025-06-30", Some("19")),
    ("05677", "2000-01-01", "2025-06-30", Some("169")),
    ("05692", "2000-01-01", "2025-06-30", Some("169")),
    ("05692", REORG, LAST, Some("19")),
    ("05659", "2000-01-01", "2025-06-30", Some("164")),
    ("05710", REORG, LAST, Some("19")),
    ("05677-01", "2000-01-01", "2025-06-30", Some("05677")),
    ("05677-01", REORG, LAST, Some("05692")),
    ("05677-02", "2000-01-01", "2025-06-30", Some("05677")),
    ("05677-02", REORG, LAST, Some("05692")),
    ("05692-01", "2000-01-01", LAST, Some("05692")),
    ("05659-01", "2000-01-01", "2025-06-30", Some("05659")),
    ("05659-01", REORG, LAST, Some("05710")),
];

pub(super) struct Version {
    pub(super) code: &'static str,
    pub(super) from: NaiveDate,
    pub(super) to: NaiveDate,
    pub(super) parent: Option<&'static str>,
}

pub(super) static TABLE: LazyLock<Vec<Version>> = LazyLock::new(|| {
    VERSIONS
        .iter()
        .map(|(code, from, to, parent)| Version {
            code,
            from: date(from),
            to: date(to),
            parent: *parent,
        })
        .collect()
});

fn today() -> NaiveDate {
    cnscd_api::units::service::today()
}

/// The version of `code` valid on `day`, if the unit exists then.
fn version(code: &str, day: NaiveDate) -> Option<&'static Version> {
    TABLE
        .iter()
        .find(|v| v.code == code && v.from <= day && day <= v.to)
}

fn exists(code: &str, day: NaiveDate) -> bool {
    version(code, day).is_some()
}

/// Whether `unit` is one of `area` or below one of them on `day`.
pub(super) fn under(unit: &str, area: &[String], day: NaiveDate) -> bool {
    let mut current = unit;
    loop {
        let Some(v) = version(current, day) else {
            return false;
        };
        if area.iter().any(|a| a == current) {
            return true;
        }
        match v.parent {
            Some(p) => current = p,
            None => return false,
        }
    }
}

/// The days on which `[from, to]` must be looked at: its first day and every day inside it on
/// which the table changes.
fn probe_days(from: NaiveDate, to: NaiveDate) -> Vec<NaiveDate> {
    let mut days = BTreeSet::from([from]);
    for v in TABLE.iter() {
        for day in [Some(v.from), v.to.checked_add_days(Days::new(1))]
            .into_iter()
            .flatten()
        {
            if from < day && day <= to {
                days.insert(day);
            }
        }
    }
    days.into_iter().collect()
}

pub(super) fn under_some_day(unit: &str, area: &[String], from: NaiveDate, to: NaiveDate) -> bool {
    from <= to
        && probe_days(from, to)
            .into_iter()
            .any(|d| under(unit, area, d))
}

/// Under the area on every day of `[from, to]` on which the unit exists.
pub(super) fn under_every_existing_day(
    unit: &str,
    area: &[String],
    from: NaiveDate,
    to: NaiveDate,
) -> bool {
    probe_days(from, to)
        .into_iter()
        .all(|d| !exists(unit, d) || under(unit, area, d))
}

/// Under the area on every day of `[from, to]` (the unit existing on each).
pub(super) fn under_every_day(unit: &str, area: &[String], from: NaiveDate, to: NaiveDate) -> bool {
    probe_days(from, to)
        .into_iter()
        .all(|d| under(unit, area, d))
}

/// First and last day of a month written `YYYY-MM`.
pub(super) fn month_span(month: &str) -> (NaiveDate, NaiveDate) {
    let start = date(&format!("{month}-01"));
    let end = start
        .checked_add_months(chrono::Months::new(1))
        .unwrap()
        .pred_opt()
        .unwrap();
    (start, end)
}

pub(super) fn exists_every_day(unit: &str, from: NaiveDate, to: NaiveDate) -> bool {
    probe_days(from, to).into_iter().all(|d| exists(unit, d))
}

pub(super) fn child_some_day(child: &str, parent: &str, from: NaiveDate, to: NaiveDate) -> bool {
    probe_days(from, to)
        .into_iter()
        .any(|d| version(child, d).is_some_and(|v| v.parent == Some(parent)))
}

// ------------------------------------------------------------------------------------------
// Callers.

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(super) enum Role {
    Admin,
    UnitAdmin,
    TeamLeader,
    Reporter,
    Viewer,
}

impl Role {
    pub(super) fn name(self) -> &'static str {
        match self {
            Role::Admin => "ADMIN",
            Role::UnitAdmin => "UNIT_ADMIN",
            Role::TeamLeader => "TEAM_LEADER",
            Role::Reporter => "REPORTER",
            Role::Viewer => "VIEWER",
        }
    }
}

#[derive(Clone, Debug)]
pub(super) struct Caller {
    pub(super) label: String,
    pub(super) role: Role,
    pub(super) units: Vec<String>,
    /// Fixture team indices (TEAM_LEADER).
    pub(super) teams: Vec<usize>,
    pub(super) sub: String,
    pub(super) client: String,
    pub(super) token: String,
}

// ------------------------------------------------------------------------------------------
// Reads: what each caller may see of the fixture (its rows: fixture.rs).

impl Fx {
    // --- the oracle --------------------------------------------------------------------

    pub(super) fn team_visible(&self, c: &Caller, t: usize) -> bool {
        let team = &self.teams[t];
        match c.role {
            Role::Admin => true,
            Role::TeamLeader => c.teams.contains(&t),
            _ => {
                let last = team
                    .dissolved
                    .map(|d| d.pred_opt().unwrap())
                    .unwrap_or_else(today);
                under_some_day(team.unit, &c.units, team.founded, last)
            }
        }
    }

    pub(super) fn members_readable(c: &Caller) -> bool {
        c.role != Role::Reporter
    }

    pub(super) fn member_visible(&self, c: &Caller, m: usize) -> bool {
        let member = &self.members[m];
        match c.role {
            Role::Admin => true,
            Role::TeamLeader => c.teams.contains(&member.team),
            Role::Reporter => false,
            Role::UnitAdmin | Role::Viewer => under_some_day(
                self.teams[member.team].unit,
                &c.units,
                member.started,
                member.ended.unwrap_or_else(today),
            ),
        }
    }

    pub(super) fn personal_readable(&self, c: &Caller, m: usize) -> bool {
        match c.role {
            Role::Admin => true,
            Role::UnitAdmin | Role::TeamLeader => self.member_visible(c, m),
            _ => false,
        }
    }

    pub(super) fn act_visible(&self, c: &Caller, a: usize) -> bool {
        let act = &self.acts[a];
        match c.role {
            Role::Admin => true,
            Role::TeamLeader => c.teams.contains(&act.team),
            Role::Reporter => act.sub == c.sub && act.client == c.client,
            Role::UnitAdmin | Role::Viewer => under(act.unit, &c.units, act.on),
        }
    }

    pub(super) fn latest_act(&self, c: &Caller, t: usize) -> Option<usize> {
        (0..self.acts.len())
            .filter(|&a| self.acts[a].team == t && self.act_visible(c, a))
            .max_by_key(|&a| (self.acts[a].on, a))
    }

    /// The changed row's unit (as the change left it) in the area on the day of the change,
    /// and the row visible to the caller by its own kind's rule (area.md): an entry says
    /// nothing of a row the caller may not see. Teams, memberships and activities: the row's
    /// unit now on some day the row concerns now (an activity moved by a correction takes its
    /// earlier entries with it); a figure, a lock, a target: as `dataValues`, `periodLocks` and
    /// `indicatorTargets` show that row (the oracle's own rules below); an indicator
    /// definition has no unit, and only ADMIN reads its entries.
    pub(super) fn audit_visible(&self, c: &Caller, e: &FAudit) -> bool {
        match c.role {
            Role::Admin => return true,
            Role::UnitAdmin => {}
            _ => return false,
        }
        let Some(unit) = e.unit else {
            return false;
        };
        let row = |keys: Vec<&String>| -> usize {
            keys.iter()
                .position(|k| **k == e.entity)
                .unwrap_or_else(|| panic!("fixture: no {} {}", e.kind, e.entity))
        };
        let now_unit = e.now_unit.unwrap_or(unit);
        under(unit, &c.units, e.day)
            && match e.kind.as_str() {
                "Team" | "Membership" | "Activity" => e
                    .concerns
                    .is_none_or(|(from, to)| under_some_day(now_unit, &c.units, from, to)),
                "DataValue" => {
                    self.value_visible(c, row(self.values.iter().map(|v| &v.key).collect()))
                }
                "PeriodLock" => {
                    self.lock_visible(c, row(self.locks.iter().map(|l| &l.key).collect()))
                }
                "IndicatorTarget" => {
                    self.target_visible(c, row(self.targets.iter().map(|t| &t.key).collect()))
                }
                _ => false,
            }
    }

    /// A target is read as the indicator value of its unit and period: the unit in the area
    /// on every day of the period on which it existed (ADMIN, UNIT_ADMIN, VIEWER).
    pub(super) fn target_visible(&self, c: &Caller, t: usize) -> bool {
        let t = &self.targets[t];
        match c.role {
            Role::Admin => true,
            Role::UnitAdmin | Role::Viewer => {
                under_every_existing_day(t.unit, &c.units, t.start, t.end)
            }
            Role::Reporter | Role::TeamLeader => false,
        }
    }

    /// Version `v` (0-based) of activity `a` is read by the activity rule on its own day and
    /// unit: the team and the submitter are the activity's (a correction changes neither).
    pub(super) fn version_visible(&self, c: &Caller, a: usize, v: usize) -> bool {
        let (on, unit, _) = &self.acts[a].history[v];
        self.state_visible(c, a, *on, unit)
    }

    /// Activity `a` as it was on day `on` at `unit` (a version, a side of an audit entry): the
    /// activity rule on that day and unit.
    fn state_visible(&self, c: &Caller, a: usize, on: NaiveDate, unit: &str) -> bool {
        let act = &self.acts[a];
        match c.role {
            Role::Admin => true,
            Role::TeamLeader => c.teams.contains(&act.team),
            Role::Reporter => act.sub == c.sub && act.client == c.client,
            Role::UnitAdmin | Role::Viewer => under(unit, &c.units, on),
        }
    }

    /// The sides (`before`, `after`) of an activity's entry that `c` may not read: each holds
    /// the activity as it was, read by the version rule ([`Fx::state_visible`]).
    pub(super) fn withheld_sides(&self, c: &Caller, e: &FAudit) -> Vec<&'static str> {
        let Some((a, states)) = &e.states else {
            return Vec::new();
        };
        ["before", "after"]
            .into_iter()
            .zip(states)
            .filter(|(_, s)| s.is_some_and(|(on, unit)| !self.state_visible(c, *a, on, unit)))
            .map(|(side, _)| side)
            .collect()
    }

    /// A figure concerns every day of its period: its unit must be in the area on each
    /// (ADMIN everything; a REPORTER reads what it sent itself, subject and client together).
    pub(super) fn value_visible(&self, c: &Caller, v: usize) -> bool {
        let v = &self.values[v];
        match c.role {
            Role::Admin => true,
            Role::UnitAdmin | Role::Viewer => under_every_day(v.unit, &c.units, v.start, v.end),
            Role::Reporter => v.sub == c.sub && v.client == c.client,
            Role::TeamLeader => false,
        }
    }

    /// A lock of a month is in the area when its unit is during the month.
    pub(super) fn lock_visible(&self, c: &Caller, l: usize) -> bool {
        let l = &self.locks[l];
        match c.role {
            Role::Admin => true,
            Role::UnitAdmin | Role::Viewer | Role::Reporter => {
                under_some_day(l.unit, &c.units, l.start, l.end)
            }
            Role::TeamLeader => false,
        }
    }

    pub(super) fn cns05(&self, unit: &str, from: NaiveDate, to: NaiveDate) -> usize {
        let area = [unit.to_owned()];
        self.acts
            .iter()
            .filter(|a| a.kind == "COMMUNITY_MEETING" && from <= a.on && a.on <= to)
            .filter(|a| under(a.unit, &area, a.on))
            .count()
    }

    pub(super) fn cns02(&self, unit: &str, end: NaiveDate) -> usize {
        let area = [unit.to_owned()];
        self.teams
            .iter()
            .filter(|t| t.founded <= end && t.dissolved.is_none_or(|d| d > end))
            .filter(|t| under(t.unit, &area, end))
            .count()
    }
}

// ------------------------------------------------------------------------------------------
// Writes: who may do what (the cases: writes.rs).

#[derive(Clone, Debug)]
pub(super) enum Op {
    CreateTeam {
        unit: &'static str,
        on: &'static str,
    },
    RenameTeam {
        unit: &'static str,
        founded: &'static str,
        dissolved: Option<&'static str>,
    },
    MoveFounding {
        unit: &'static str,
        from: &'static str,
        to: &'static str,
    },
    DissolveTeam {
        unit: &'static str,
        founded: &'static str,
        on: &'static str,
    },
    AddMember {
        unit: &'static str,
        on: &'static str,
    },
    UpdateMembership {
        unit: &'static str,
        started: &'static str,
    },
    EndMembership {
        unit: &'static str,
        started: &'static str,
        on: &'static str,
    },
    Submit {
        unit: &'static str,
        on: &'static str,
        at: Option<&'static str>,
    },
    /// The same submission as the one item of a `submitActivities` batch.
    SubmitBatch {
        unit: &'static str,
        on: &'static str,
        at: Option<&'static str>,
    },
    /// `voidActivity` of an activity ADMIN recorded for the team on `on`.
    Void {
        unit: &'static str,
        on: &'static str,
    },
    /// `correctActivity` of an activity of the team at `unit`, recorded at `from` (unit, day)
    /// by ADMIN (or by the caller, when it is a [`Who::Submitter`]): a new title, and moved to
    /// `to` (unit, day) when given.
    Correct {
        unit: &'static str,
        from: (&'static str, &'static str),
        to: Option<(&'static str, &'static str)>,
    },
    /// `submitDataValues` of one figure of `unit` for `start..=end`.
    SubmitValues {
        unit: &'static str,
        start: &'static str,
        end: &'static str,
    },
}

#[derive(Clone, Debug)]
pub(super) enum Who {
    Admin,
    UnitAdmin(&'static str),
    Viewer(&'static str),
    Reporter(&'static str),
    /// The REPORTER (of this unit) that recorded the activity a correction changes.
    Submitter(&'static str),
    LeaderOfTheTeam,
    LeaderOfAnotherTeam,
}

/// The oracle for writes.
pub(super) fn may(who: &Who, op: &Op) -> bool {
    let d = date;
    let at = |unit: &str, day: &str| match who {
        Who::Admin => true,
        Who::UnitAdmin(a) | Who::Reporter(a) => under(unit, &[a.to_string()], d(day)),
        _ => false,
    };
    let some_day = |unit: &str, from: &str, last: Option<NaiveDate>| match who {
        Who::Admin => true,
        Who::UnitAdmin(a) => {
            under_some_day(unit, &[a.to_string()], d(from), last.unwrap_or_else(today))
        }
        _ => false,
    };
    let manages_teams = matches!(who, Who::Admin | Who::UnitAdmin(_));
    let leader = matches!(who, Who::LeaderOfTheTeam);
    match op {
        Op::CreateTeam { unit, on } => manages_teams && at(unit, on),
        Op::RenameTeam {
            unit,
            founded,
            dissolved,
        } => manages_teams && some_day(unit, founded, dissolved.map(|x| d(x).pred_opt().unwrap())),
        Op::MoveFounding { unit, from, to } => manages_teams && at(unit, from) && at(unit, to),
        Op::DissolveTeam { unit, on, .. } => manages_teams && at(unit, on),
        Op::AddMember { unit, on } => leader || manages_teams && at(unit, on),
        Op::UpdateMembership { unit, started } => {
            leader || manages_teams && some_day(unit, started, None)
        }
        Op::EndMembership { unit, on, .. } => leader || manages_teams && at(unit, on),
        Op::Submit {
            unit,
            on,
            at: place,
        }
        | Op::SubmitBatch {
            unit,
            on,
            at: place,
        } => match who {
            Who::LeaderOfTheTeam => place.is_none(),
            Who::Admin | Who::UnitAdmin(_) | Who::Reporter(_) => at(place.unwrap_or(unit), on),
            _ => false,
        },
        // The submitter (ADMIN here), the team's leader, or an admin of the activity's unit on
        // its day.
        Op::Void { unit, on } => leader || manages_teams && at(unit, on),
        // The caller's right over the activity as it was (it recorded it, leads its team, or
        // administers its unit on its day) and over it as it will be (it may record that: its
        // unit on its day in the caller's area, or, for the team's leader, at the team's own
        // unit on any day).
        Op::Correct { unit, from, to } => {
            let (place, on) = to.unwrap_or(*from);
            let before = match who {
                Who::Admin | Who::Submitter(_) | Who::LeaderOfTheTeam => true,
                Who::UnitAdmin(a) => under(from.0, &[a.to_string()], d(from.1)),
                _ => false,
            };
            let after = match who {
                Who::Admin => true,
                Who::UnitAdmin(a) | Who::Submitter(a) => under(place, &[a.to_string()], d(on)),
                Who::LeaderOfTheTeam => place == *unit,
                _ => false,
            };
            before && after
        }
        // The unit in the area on every day of the period.
        Op::SubmitValues { unit, start, end } => match who {
            Who::Admin => true,
            Who::UnitAdmin(a) | Who::Reporter(a) => {
                under_every_day(unit, &[a.to_string()], d(start), d(end))
            }
            _ => false,
        },
    }
}

// ------------------------------------------------------------------------------------------
// Locks: who may lock or unlock which month (the cases: locks.rs).

/// `lockPeriod` (or, with `unlock`, `unlockPeriod` of a lock ADMIN set) of `unit` in `month`.
#[derive(Clone, Debug)]
pub(super) struct LockOp {
    pub(super) unit: &'static str,
    pub(super) month: &'static str,
    pub(super) unlock: bool,
}

/// The oracle for locks: ADMIN, or UNIT_ADMIN whose area holds the unit on every day of the
/// month on which the unit exists.
pub(super) fn may_lock(who: &Who, op: &LockOp) -> bool {
    let (start, end) = month_span(op.month);
    assert!(exists(op.unit, start), "{op:?}");
    match who {
        Who::Admin => true,
        Who::UnitAdmin(a) => under_every_existing_day(op.unit, &[a.to_string()], start, end),
        _ => false,
    }
}

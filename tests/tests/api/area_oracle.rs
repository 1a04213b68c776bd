//! The area oracle (issue 5, item 2): every read path and every mutation, for every role over
//! a set of areas, answers what a plain model of the fixture says (area.md, row by row).
//!
//! The oracle below knows nothing of the service's SQL: it has its own table of unit versions
//! (the harness fixture, written out by hand) and decides "is unit U under area A on day D" by
//! walking parents on D. Because that table only changes on 2025-07-01, "some day of a range" and
//! "every day of a range" are decided on the range's first day and on each day the table
//! changes inside the range, which is exact for a piecewise-constant hierarchy.
//!
//! A failing check names the caller (role and area), the path and the differing rows (by fixture
//! label, e.g. `M3(T1-cafe@05677-01 2023-01-10..2025-09-30)`), and all failures are listed
//! together after a count per path.
//!
//! Reads (24 callers: ADMIN; UNIT_ADMIN, VIEWER and REPORTER of 169, 05677, 05692, 05677-01, 19,
//! 05710; a REPORTER with the same subject but another client; four TEAM_LEADER tokens):
//! `teams` (ids, totalCount), `team(id:)`, `node(id:)` for teams, memberships and activities,
//! `members(active: true | false | null)` (ids, totalCount), `activities` (ids, totalCount),
//! nested `Team.members` (current and `includeEnded`), `Team.memberCount`, `Team.latestActivity`,
//! `Membership.person.phone` (on three paths), `Membership.team`, `Activity.team`, `auditLog`
//! (entries, page by page, totalCount, and each activity entry's `before` and `after`;
//! FORBIDDEN to other roles) and `indicators` (CNS05
//! and CNS02, YEAR and MONTH over 2024–2025, SELF and CHILDREN, per value; whole request
//! FORBIDDEN when the unit is never in the area; values checked against the oracle's own count
//! where the unit existed),
//! the same as `indicatorTable` (entries outside the area hold nothing), and `indicators` in
//! REBASED mode (no rows for units that are gone; readable where today's unit is in the area
//! today); `dataValues` (ids and totalCount, unfiltered and filtered by `under`, `from`, `to`:
//! the unit in the area on every day of the figure's period, a REPORTER what it sent; FORBIDDEN
//! to TEAM_LEADER), `periodLocks` (the same filters: the unit in the area during the month;
//! FORBIDDEN to TEAM_LEADER), `indicatorTargets` (the unit in the area on every day of the
//! target's period on which it existed, as an indicator value; FORBIDDEN to REPORTER and
//! TEAM_LEADER) and `activityVersions(activityId:)` (each version kept, with its day, unit and
//! changer, where the version is visible by the activity rule on its own day and unit: its
//! unit on its day, the activity's team, the activity's submitter; NOT_FOUND when neither the
//! activity as it is now nor any version is). The fixture corrects activities (across
//! 2025-07-01, from the ceased commune to the new one, up from a hamlet to its commune, by the
//! reporter that sent one, twice), so the lists, indicators, `auditLog` and
//! `activityVersions` follow an activity to its new day and unit while each side of a move
//! keeps its own versions.
//!
//! An audit entry is read where the changed row's unit (as the change left it) was in the area
//! on the day of the change and the row as it is now is visible by its own kind's rule
//! (area.md): a team's, membership's or activity's entry where the row's unit now is in the
//! area on some day the row concerns now (a correction that moves an activity to other days
//! or another unit moves them for all its entries); a figure's as `dataValues` shows the
//! figure (every day of its period), a lock's as `periodLocks` (during its month), a target's as
//! the indicator value it belongs to (every day of the period the unit existed); an indicator
//! definition's (no unit) by ADMIN only. The fixture holds figures, locks, CNS05 targets (set,
//! changed and cleared, on days either side of 2025-07-01, for a hamlet that moves, a ceased
//! commune and district, a new commune) and a definition, with their entries dated on days that
//! make the rules differ. An activity entry's `before` and `after` hold the activity as it was
//! before and after the change (a submission's `after`, a correction's both): each is checked
//! per caller by the version rule of `activityVersions` (the activity rule on that state's own
//! day and unit), null with a FORBIDDEN error on its path where the caller may not read that
//! version and present where it may; one activity (A14) is sent after the reorganisation about
//! a day before it, then corrected into July, so that its submission's `after` is withheld from
//! the commune that reads the entry now.
//!
//! Writes: createTeam, updateTeam (name; foundedOn moved across 2025-07-01 and not),
//! dissolveTeam, addMember, updateMembership, endMembership and submitActivity (with and without
//! a `unitCode` above the team's hamlet), on dates before and after 2025-07-01, in a hamlet that
//! moves, one that stays and an outsider, for ADMIN, UNIT_ADMIN of seven units, VIEWER,
//! REPORTERs and the team's own and another team's TEAM_LEADER: allowed exactly when the oracle
//! says so, and when refused (FORBIDDEN or NOT_FOUND) the database is unchanged. Also
//! submitActivities (each submission as a batch's one item), voidActivity, correctActivity
//! (moved across 2025-07-01 both ways, to and from a commune above the team, title only; the
//! oracle: the caller's right over the activity as it was, as its submitter, its team's leader
//! or an admin of its unit on its day, and over it as it will be, as one who may record that),
//! including the REPORTER that recorded it; submitDataValues (months, quarters and years on
//! either side and across 2025-07-01, a ceased commune's last quarter, a new commune's first:
//! the unit in the area on every day of the period); lockPeriod and unlockPeriod (in a test of
//! their own, callers in turn: the unit in the area on every day of the month it exists).
//!
//! Each of these later checks was seen to fail with the oracle's rule broken, then restored:
//! correctActivity with only the "before" or only the "after" half; submitDataValues and
//! `dataValues` with "every day of the period" made "some day"; lockPeriod, unlockPeriod and
//! `periodLocks` decided on today's hierarchy instead of the month's; `activityVersions` with
//! visibility inverted; `auditLog` without the days the row concerns.
//!
//! And with the service's rule broken (issue 15, item 4), on SQLite and on PostgreSQL: the
//! audit log's rule of before (one "some day the row concerns" for every kind: figures' and
//! targets' entries leak, e.g. to UNIT_ADMIN[05692] the moving hamlet's 2025 figure and target
//! changed after July); targets' entries by "every day" instead of "every day the unit existed"
//! (a ceased commune's, a district's and a new commune's 2025 targets go missing) or by "some
//! day"; figures' entries by "some day"; locks' entries dropped; a definition's entry shown to
//! every UNIT_ADMIN; `activityVersions` as before (every version where the activity is visible
//! now: both sides of a move wrong); versions by unit and day only (the team's leader and the
//! submitting reporter lose them). Each failed this test, and passes with the rule restored.
//!
//! And (issue 15, item 4, the row's unit now and the versions in an entry), on SQLite and on
//! PostgreSQL: the row's rule taken on the entry's unit at the change (`unit_code`) instead of
//! the row's unit now (`concerns_unit`), or that unit not brought forward onto the row's earlier
//! entries by a correction: UNIT_ADMIN[19] misses the entry of A3's submission at the ceased
//! commune (A3 now lies at the new one), UNIT_ADMIN[05677-01] still reads the entry of A2's
//! submission after A2 moved up to the commune; no side withheld: UNIT_ADMIN[05692] reads the
//! `before` of the corrections of A1, A3 and A14 and the `after` of A14's submission,
//! UNIT_ADMIN[05710] the `before` of A11's correction; every activity side withheld: the sides
//! each admin may read answer null. Each failed this test, and passes with the rule restored.
//!
//! Run: `cargo test -p cnscd-tests --test api area_oracle`, and with
//! `CNSCD_TEST_DATABASE=postgres://...` for PostgreSQL.
use chrono::{Days, NaiveDate};
use cnscd_api::auth::mint;
use cnscd_tests::*;
use futures::stream::{self, StreamExt};
use serde_json::{Value, json};
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

struct Version {
    code: &'static str,
    from: NaiveDate,
    to: NaiveDate,
    parent: Option<&'static str>,
}

static TABLE: LazyLock<Vec<Version>> = LazyLock::new(|| {
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
fn under(unit: &str, area: &[String], day: NaiveDate) -> bool {
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

fn under_some_day(unit: &str, area: &[String], from: NaiveDate, to: NaiveDate) -> bool {
    from <= to
        && probe_days(from, to)
            .into_iter()
            .any(|d| under(unit, area, d))
}

/// Under the area on every day of `[from, to]` on which the unit exists.
fn under_every_existing_day(unit: &str, area: &[String], from: NaiveDate, to: NaiveDate) -> bool {
    probe_days(from, to)
        .into_iter()
        .all(|d| !exists(unit, d) || under(unit, area, d))
}

/// Under the area on every day of `[from, to]` (the unit existing on each).
fn under_every_day(unit: &str, area: &[String], from: NaiveDate, to: NaiveDate) -> bool {
    probe_days(from, to)
        .into_iter()
        .all(|d| under(unit, area, d))
}

/// First and last day of a month written `YYYY-MM`.
fn month_span(month: &str) -> (NaiveDate, NaiveDate) {
    let start = date(&format!("{month}-01"));
    let end = start
        .checked_add_months(chrono::Months::new(1))
        .unwrap()
        .pred_opt()
        .unwrap();
    (start, end)
}

fn exists_every_day(unit: &str, from: NaiveDate, to: NaiveDate) -> bool {
    probe_days(from, to).into_iter().all(|d| exists(unit, d))
}

fn child_some_day(child: &str, parent: &str, from: NaiveDate, to: NaiveDate) -> bool {
    probe_days(from, to)
        .into_iter()
        .any(|d| version(child, d).is_some_and(|v| v.parent == Some(parent)))
}

// ------------------------------------------------------------------------------------------
// Callers.

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Role {
    Admin,
    UnitAdmin,
    TeamLeader,
    Reporter,
    Viewer,
}

impl Role {
    fn name(self) -> &'static str {
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
struct Caller {
    label: String,
    role: Role,
    units: Vec<String>,
    /// Fixture team indices (TEAM_LEADER).
    teams: Vec<usize>,
    sub: String,
    client: String,
    token: String,
}

fn mint_token(
    role: Role,
    units: &[String],
    team_ids: &[String],
    sub: &str,
    client: &str,
) -> String {
    let units: Vec<&str> = units.iter().map(String::as_str).collect();
    let teams: Vec<&str> = team_ids.iter().map(String::as_str).collect();
    let mut c = claims(sub, &[role.name()], &units, &teams);
    c.client_id = Some(client.to_owned());
    mint(SECRET, &c).unwrap()
}

/// The areas of the matrix: old district, ceased commune, merged commune, hamlet that moves,
/// province, outsider commune (new, formerly under district 164).
const AREAS: [&str; 6] = ["169", "05677", "05692", "05677-01", "19", "05710"];

// ------------------------------------------------------------------------------------------
// The fixture, as the oracle knows it.

struct FTeam {
    label: String,
    id: String,
    unit: &'static str,
    founded: NaiveDate,
    dissolved: Option<NaiveDate>,
}

struct FMember {
    label: String,
    id: String,
    team: usize,
    started: NaiveDate,
    ended: Option<NaiveDate>,
}

struct FAct {
    label: String,
    id: String,
    team: usize,
    unit: &'static str,
    on: NaiveDate,
    kind: &'static str,
    sub: String,
    client: String,
    /// The versions kept by corrections, oldest first: the day and unit the activity had,
    /// and the subject that changed it.
    history: Vec<(NaiveDate, &'static str, String)>,
}

struct FAudit {
    action: String,
    /// The kind of row changed, as the entry names it (`Team`, `DataValue`, ...).
    kind: String,
    entity: String,
    /// The changed row's unit when the change was made (none for an indicator definition).
    unit: Option<&'static str>,
    day: NaiveDate,
    /// The changed row's unit now: a correction that moves an activity to another unit moves
    /// it for the activity's earlier entries.
    now_unit: Option<&'static str>,
    /// The days the changed row concerns now, where the fixture knows them (activities,
    /// figures, locks, targets): a correction that moves an activity moves them for its
    /// earlier entries.
    concerns: Option<(NaiveDate, NaiveDate)>,
    /// For an activity's entry: the activity (fixture index) and the day and unit it had in
    /// the entry's `before` and `after` (each a version of it, read by the version rule).
    states: Option<(usize, [Option<State>; 2])>,
}

/// The day and unit an activity had in a version of it.
type State = (NaiveDate, &'static str);

/// A reported figure (`dataValues`), keyed as `element:unit:start:end:source`.
struct FValue {
    key: String,
    label: String,
    unit: &'static str,
    start: NaiveDate,
    end: NaiveDate,
    sub: String,
    client: String,
}

/// An indicator target (`indicatorTargets`), keyed as `indicator:unit:start:end`.
struct FTarget {
    key: String,
    label: String,
    unit: &'static str,
    start: NaiveDate,
    end: NaiveDate,
    /// Cleared since (its entries stay).
    cleared: bool,
}

/// A period lock (`periodLocks`), keyed as `unit:YYYY-MM`.
struct FLock {
    key: String,
    unit: &'static str,
    start: NaiveDate,
    end: NaiveDate,
}

#[derive(Default)]
struct Fx {
    teams: Vec<FTeam>,
    members: Vec<FMember>,
    acts: Vec<FAct>,
    audits: Vec<FAudit>,
    values: Vec<FValue>,
    locks: Vec<FLock>,
    targets: Vec<FTarget>,
    /// Codes of the indicator definitions the fixture saved.
    definitions: Vec<String>,
    last_audit: i64,
}

const CREATE: &str = "mutation($i: CreateTeamInput!) { createTeam(input: $i) { team { id } userErrors { code message } } }";
const UPDATE_TEAM: &str = "mutation($i: UpdateTeamInput!) { updateTeam(input: $i) { team { id } userErrors { code message } } }";
const DISSOLVE: &str = "mutation($i: DissolveTeamInput!) { dissolveTeam(input: $i) { team { id } userErrors { code message } } }";
const ADD: &str = "mutation($i: AddMemberInput!) { addMember(input: $i) { membership { id } userErrors { code message } } }";
const UPDATE_MEMBER: &str = "mutation($i: UpdateMembershipInput!) { updateMembership(input: $i) { membership { id } userErrors { code message } } }";
const END_MEMBER: &str = "mutation($i: EndMembershipInput!) { endMembership(input: $i) { membership { id } userErrors { code message } } }";
const SUBMIT: &str = "mutation($i: SubmitActivityInput!) { submitActivity(input: $i) { activity { id } userErrors { code message } } }";
const VOID: &str = "mutation($i: VoidActivityInput!) { voidActivity(input: $i) { activity { id } userErrors { code message } } }";
const SUBMIT_BATCH: &str = "mutation($i: SubmitActivitiesInput!) { submitActivities(input: $i) { results { activity { id } userErrors { code message } } } }";
const CORRECT: &str = "mutation($i: CorrectActivityInput!) { correctActivity(input: $i) { activity { id } userErrors { code message } } }";
const SUBMIT_VALUES: &str = "mutation($i: SubmitDataValuesInput!) { submitDataValues(input: $i) { values { unitCode } userErrors { code message } } }";
const LOCK: &str = "mutation($i: LockPeriodInput!) { lockPeriod(input: $i) { lock { unitCode month } userErrors { code message } } }";
const UNLOCK: &str = "mutation($i: UnlockPeriodInput!) { unlockPeriod(input: $i) { lock { unitCode month } userErrors { code message } } }";
const SET_TARGET: &str = "mutation($i: SetIndicatorTargetInput!) { setIndicatorTarget(input: $i) { indicator { code } userErrors { code message } } }";
const SAVE_DEFINITION: &str = "mutation($i: SaveIndicatorDefinitionInput!) { saveIndicatorDefinition(input: $i) { indicator { code } userErrors { code message } } }";

fn payload_id(r: &Gql, path: &str) -> String {
    r.at(path)
        .as_str()
        .unwrap_or_else(|| panic!("fixture mutation failed: {}", r.body))
        .to_owned()
}

impl Fx {
    /// Backdates the audit entries written since the last call to `day` and records them.
    async fn stamp(&mut self, app: &TestApp, day: &str, unit: &'static str) {
        self.stamp_concerning(app, day, Some(unit), None).await;
    }

    /// [`Fx::stamp`] for entries of a row whose days the fixture knows.
    async fn stamp_concerning(
        &mut self,
        app: &TestApp,
        day: &str,
        unit: Option<&'static str>,
        concerns: Option<(NaiveDate, NaiveDate)>,
    ) {
        use cnscd_entity::audit_entry::{Column, Entity};
        use sea_orm::sea_query::Expr;
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect};
        let at = date(day).and_hms_opt(10, 0, 0).unwrap().and_utc();
        Entity::update_many()
            .col_expr(Column::OccurredAt, Expr::value(at))
            .filter(Column::Id.gt(self.last_audit))
            .exec(&app.db)
            .await
            .unwrap();
        let rows: Vec<(i64, String, String, String)> = Entity::find()
            .select_only()
            .column(Column::Id)
            .column(Column::Action)
            .column(Column::EntityType)
            .column(Column::EntityId)
            .filter(Column::Id.gt(self.last_audit))
            .into_tuple()
            .all(&app.db)
            .await
            .unwrap();
        for (id, action, kind, entity) in rows {
            self.last_audit = self.last_audit.max(id);
            self.audits.push(FAudit {
                action,
                kind,
                entity,
                unit,
                day: date(day),
                now_unit: unit,
                concerns,
                states: None,
            });
        }
    }

    async fn team(&mut self, app: &TestApp, key: &str, unit: &'static str, founded: &str) -> usize {
        let r = app
            .gql(
                &admin(),
                CREATE,
                json!({ "i": { "unitCode": unit, "name": format!("Tổ {key}"), "foundedOn": founded } }),
            )
            .await;
        let id = payload_id(&r, "createTeam.team.id");
        self.teams.push(FTeam {
            label: format!("{key}@{unit}"),
            id,
            unit,
            founded: date(founded),
            dissolved: None,
        });
        self.stamp(app, founded, unit).await;
        self.teams.len() - 1
    }

    async fn rename(&mut self, app: &TestApp, team: usize, name: &str, day: &str) {
        let r = app
            .gql(
                &admin(),
                UPDATE_TEAM,
                json!({ "i": { "teamId": self.teams[team].id, "name": name } }),
            )
            .await;
        payload_id(&r, "updateTeam.team.id");
        self.stamp(app, day, self.teams[team].unit).await;
    }

    async fn dissolve(&mut self, app: &TestApp, team: usize, on: &str) {
        let r = app
            .gql(
                &admin(),
                DISSOLVE,
                json!({ "i": { "teamId": self.teams[team].id, "dissolvedOn": on } }),
            )
            .await;
        payload_id(&r, "dissolveTeam.team.id");
        self.teams[team].dissolved = Some(date(on));
        for m in self.members.iter_mut().filter(|m| m.team == team) {
            if m.ended.is_none() {
                m.ended = Some(date(on));
                m.label = format!("{}{on})", m.label.trim_end_matches(')'));
            }
        }
        self.stamp(app, on, self.teams[team].unit).await;
    }

    async fn member(
        &mut self,
        app: &TestApp,
        key: &str,
        team: usize,
        role: &str,
        started: &str,
    ) -> usize {
        let id = app
            .add_member(
                &self.teams[team].id,
                &format!("Người {}", alpha(self.members.len())),
                role,
                "VOLUNTEER",
                started,
            )
            .await;
        let t = &self.teams[team];
        self.members.push(FMember {
            label: format!("{key}({} {started}..)", t.label),
            id,
            team,
            started: date(started),
            ended: None,
        });
        self.stamp(app, started, t.unit).await;
        self.members.len() - 1
    }

    async fn end(&mut self, app: &TestApp, member: usize, on: &str) {
        let r = app
            .gql(
                &admin(),
                END_MEMBER,
                json!({ "i": { "membershipId": self.members[member].id, "endedOn": on } }),
            )
            .await;
        payload_id(&r, "endMembership.membership.id");
        let m = &mut self.members[member];
        m.ended = Some(date(on));
        m.label = format!("{}{on})", m.label.trim_end_matches(')'));
        let unit = self.teams[m.team].unit;
        self.stamp(app, on, unit).await;
    }

    #[allow(clippy::too_many_arguments)]
    async fn act(
        &mut self,
        app: &TestApp,
        key: &str,
        by: Option<(&str, &str, &[String])>,
        team: usize,
        kind: &'static str,
        on: &str,
        at: Option<&'static str>,
    ) {
        let (sub, client, token) = match by {
            None => ("admin-".to_owned(), "test-app".to_owned(), admin()),
            Some((sub, client, units)) => (
                sub.to_owned(),
                client.to_owned(),
                mint_token(Role::Reporter, units, &[], sub, client),
            ),
        };
        let mut input = json!({ "idempotencyKey": uuid::Uuid::new_v4().to_string(), "teamId": self.teams[team].id, "kind": kind, "occurredOn": on, "title": format!("Hoạt động {key}") });
        if let Some(at) = at {
            input["unitCode"] = json!(at);
        }
        let r = app.gql(&token, SUBMIT, json!({ "i": input })).await;
        let id = payload_id(&r, "submitActivity.activity.id");
        let unit = at.unwrap_or(self.teams[team].unit);
        self.acts.push(FAct {
            label: format!(
                "{key}({} {kind} @{unit} {on} by {sub}/{client})",
                self.teams[team].label
            ),
            id,
            team,
            unit,
            on: date(on),
            kind,
            sub,
            client,
            history: Vec::new(),
        });
        self.stamp_concerning(app, on, Some(unit), Some((date(on), date(on))))
            .await;
        let a = self.acts.len() - 1;
        if let Some(e) = self.audits.last_mut() {
            e.states = Some((a, [None, Some((date(on), unit))]));
        }
    }

    /// Dates the submission entry of activity `key` on `day` (sent later than it happened).
    async fn sent_on(&mut self, app: &TestApp, key: &str, day: &str) {
        use cnscd_entity::audit_entry::{Column, Entity};
        use sea_orm::sea_query::Expr;
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
        let id = self
            .acts
            .iter()
            .find(|a| a.label.starts_with(&format!("{key}(")))
            .map(|a| a.id.clone())
            .unwrap();
        let at = date(day).and_hms_opt(10, 0, 0).unwrap().and_utc();
        Entity::update_many()
            .col_expr(Column::OccurredAt, Expr::value(at))
            .filter(Column::EntityId.eq(id.as_str()))
            .filter(Column::Action.eq("submitActivity"))
            .exec(&app.db)
            .await
            .unwrap();
        for e in self
            .audits
            .iter_mut()
            .filter(|e| e.entity == id && e.action == "submitActivity")
        {
            e.day = date(day);
        }
    }

    /// Corrects activity `key` (ADMIN, or the reporter that sent it): a new title, and the
    /// day, the unit and the kind when given. Its audit entries then concern the new day; the
    /// correction's own entry is dated `on` the new day.
    async fn correct(
        &mut self,
        app: &TestApp,
        key: &str,
        by: Option<&[String]>,
        on: Option<&str>,
        at: Option<&'static str>,
        kind: Option<&'static str>,
    ) {
        let a = self
            .acts
            .iter()
            .position(|a| a.label.starts_with(&format!("{key}(")))
            .unwrap();
        let act = &self.acts[a];
        let token = match by {
            None => admin(),
            Some(units) => mint_token(Role::Reporter, units, &[], &act.sub, &act.client),
        };
        let changer = match by {
            None => "admin-".to_owned(),
            Some(_) => act.sub.clone(),
        };
        let mut input = json!({ "activityId": act.id, "reason": "ghi nhầm", "title": format!("Hoạt động {key} (sửa {})", act.history.len() + 1) });
        if let Some(on) = on {
            input["occurredOn"] = json!(on);
        }
        if let Some(at) = at {
            input["unitCode"] = json!(at);
        }
        if let Some(kind) = kind {
            input["kind"] = json!(kind);
        }
        let r = app.gql(&token, CORRECT, json!({ "i": input })).await;
        payload_id(&r, "correctActivity.activity.id");
        let act = &mut self.acts[a];
        let was = (act.on, act.unit);
        act.history.push((act.on, act.unit, changer));
        act.on = on.map_or(act.on, date);
        act.unit = at.unwrap_or(act.unit);
        act.kind = kind.unwrap_or(act.kind);
        act.label = format!(
            "{key}({} {} @{} {} by {}/{}, corrected {}x)",
            self.teams[act.team].label,
            act.kind,
            act.unit,
            act.on,
            act.sub,
            act.client,
            act.history.len()
        );
        let (id, unit, day) = (act.id.clone(), act.unit, act.on);
        for e in self.audits.iter_mut().filter(|e| e.entity == id) {
            e.concerns = Some((day, day));
            e.now_unit = Some(unit);
        }
        self.stamp_concerning(app, &day.to_string(), Some(unit), Some((day, day)))
            .await;
        if let Some(e) = self.audits.last_mut() {
            e.states = Some((a, [Some(was), Some((day, unit))]));
        }
    }

    /// A reported figure of POPULATION, sent by ADMIN or by a reporter (subject, client,
    /// units); its audit entry is dated on the period's first day.
    async fn value(
        &mut self,
        app: &TestApp,
        by: Option<(&str, &str, &[String])>,
        unit: &'static str,
        start: &str,
        end: &str,
        source: &str,
    ) {
        self.value_sent_on(app, by, unit, start, end, source, start)
            .await;
    }

    /// [`Fx::value`] with its audit entry dated `day`.
    #[allow(clippy::too_many_arguments)]
    async fn value_sent_on(
        &mut self,
        app: &TestApp,
        by: Option<(&str, &str, &[String])>,
        unit: &'static str,
        start: &str,
        end: &str,
        source: &str,
        day: &str,
    ) {
        let (sub, client, token) = match by {
            None => ("admin-".to_owned(), "test-app".to_owned(), admin()),
            Some((sub, client, units)) => (
                sub.to_owned(),
                client.to_owned(),
                mint_token(Role::Reporter, units, &[], sub, client),
            ),
        };
        let input = json!({ "idempotencyKey": uuid::Uuid::new_v4().to_string(), "sourceSystem": source, "values": [{ "element": "POPULATION", "unitCode": unit, "periodStart": start, "periodEnd": end, "value": 100.0 + self.values.len() as f64 }] });
        let r = app.gql(&token, SUBMIT_VALUES, json!({ "i": input })).await;
        if r.body["data"]["submitDataValues"]["values"][0].is_null() {
            panic!("fixture figure refused: {}", r.body);
        }
        let key = format!("POPULATION:{unit}:{start}:{end}:{source}");
        self.values.push(FValue {
            label: format!("figure({unit} {start}..{end} {source} by {sub}/{client})"),
            key,
            unit,
            start: date(start),
            end: date(end),
            sub,
            client,
        });
        self.stamp_concerning(app, day, Some(unit), Some((date(start), date(end))))
            .await;
    }

    /// Sets (or, with `None`, clears) the CNS05 target of `unit` for `start ..= end`, as
    /// ADMIN; its audit entry is dated `day`.
    async fn target(
        &mut self,
        app: &TestApp,
        unit: &'static str,
        start: &str,
        end: &str,
        target: Option<f64>,
        day: &str,
    ) {
        let r = app
            .gql(
                &admin(),
                SET_TARGET,
                json!({ "i": { "indicator": "CNS05", "unitCode": unit, "periodStart": start, "periodEnd": end, "target": target } }),
            )
            .await;
        if r.body["data"]["setIndicatorTarget"]["indicator"].is_null() {
            panic!("fixture target refused: {}", r.body);
        }
        let key = format!("CNS05:{unit}:{start}:{end}");
        match self.targets.iter_mut().find(|t| t.key == key) {
            Some(t) => t.cleared = target.is_none(),
            None => self.targets.push(FTarget {
                label: format!("target(CNS05 {unit} {start}..{end})"),
                key,
                unit,
                start: date(start),
                end: date(end),
                cleared: target.is_none(),
            }),
        }
        self.stamp_concerning(app, day, Some(unit), Some((date(start), date(end))))
            .await;
    }

    /// Saves a new indicator definition `code` (no unit), as ADMIN; its entry is dated `day`.
    async fn definition(&mut self, app: &TestApp, code: &str, day: &str) {
        let r = app
            .gql(
                &admin(),
                SAVE_DEFINITION,
                json!({ "i": { "code": code, "nameVi": "Dân số (kiểm tra)", "nameEn": "Population (check)", "numerator": "POPULATION", "validFrom": "2024-01-01" } }),
            )
            .await;
        if r.body["data"]["saveIndicatorDefinition"]["indicator"].is_null() {
            panic!("fixture definition refused: {}", r.body);
        }
        self.definitions.push(code.to_owned());
        self.stamp_concerning(app, day, None, None).await;
    }

    /// A lock of `month` (`YYYY-MM`) for `unit`, by ADMIN; its audit entry is dated on the
    /// month's first day.
    async fn lock(&mut self, app: &TestApp, unit: &'static str, month: &str) {
        let r = app
            .gql(
                &admin(),
                LOCK,
                json!({ "i": { "unitCode": unit, "month": month } }),
            )
            .await;
        if r.body["data"]["lockPeriod"]["lock"].is_null() {
            panic!("fixture lock refused: {}", r.body);
        }
        let (start, end) = month_span(month);
        self.locks.push(FLock {
            key: format!("{unit}:{month}"),
            unit,
            start,
            end,
        });
        self.stamp_concerning(app, &start.to_string(), Some(unit), Some((start, end)))
            .await;
    }

    fn label(&self, id: &str) -> String {
        self.teams
            .iter()
            .map(|t| (&t.id, &t.label))
            .chain(self.members.iter().map(|m| (&m.id, &m.label)))
            .chain(self.acts.iter().map(|a| (&a.id, &a.label)))
            .chain(self.values.iter().map(|v| (&v.key, &v.label)))
            .chain(self.locks.iter().map(|l| (&l.key, &l.key)))
            .chain(self.targets.iter().map(|t| (&t.key, &t.label)))
            .chain(self.definitions.iter().map(|d| (d, d)))
            .find(|(i, _)| i.as_str() == id)
            .map(|(_, l)| l.clone())
            .unwrap_or_else(|| format!("<unknown {id}>"))
    }

    // --- the oracle --------------------------------------------------------------------

    fn team_visible(&self, c: &Caller, t: usize) -> bool {
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

    fn members_readable(c: &Caller) -> bool {
        c.role != Role::Reporter
    }

    fn member_visible(&self, c: &Caller, m: usize) -> bool {
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

    fn personal_readable(&self, c: &Caller, m: usize) -> bool {
        match c.role {
            Role::Admin => true,
            Role::UnitAdmin | Role::TeamLeader => self.member_visible(c, m),
            _ => false,
        }
    }

    fn act_visible(&self, c: &Caller, a: usize) -> bool {
        let act = &self.acts[a];
        match c.role {
            Role::Admin => true,
            Role::TeamLeader => c.teams.contains(&act.team),
            Role::Reporter => act.sub == c.sub && act.client == c.client,
            Role::UnitAdmin | Role::Viewer => under(act.unit, &c.units, act.on),
        }
    }

    fn latest_act(&self, c: &Caller, t: usize) -> Option<usize> {
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
    fn audit_visible(&self, c: &Caller, e: &FAudit) -> bool {
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
    fn target_visible(&self, c: &Caller, t: usize) -> bool {
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
    fn version_visible(&self, c: &Caller, a: usize, v: usize) -> bool {
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
    fn withheld_sides(&self, c: &Caller, e: &FAudit) -> Vec<&'static str> {
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
    fn value_visible(&self, c: &Caller, v: usize) -> bool {
        let v = &self.values[v];
        match c.role {
            Role::Admin => true,
            Role::UnitAdmin | Role::Viewer => under_every_day(v.unit, &c.units, v.start, v.end),
            Role::Reporter => v.sub == c.sub && v.client == c.client,
            Role::TeamLeader => false,
        }
    }

    /// A lock of a month is in the area when its unit is during the month.
    fn lock_visible(&self, c: &Caller, l: usize) -> bool {
        let l = &self.locks[l];
        match c.role {
            Role::Admin => true,
            Role::UnitAdmin | Role::Viewer | Role::Reporter => {
                under_some_day(l.unit, &c.units, l.start, l.end)
            }
            Role::TeamLeader => false,
        }
    }

    fn cns05(&self, unit: &str, from: NaiveDate, to: NaiveDate) -> usize {
        let area = [unit.to_owned()];
        self.acts
            .iter()
            .filter(|a| a.kind == "COMMUNITY_MEETING" && from <= a.on && a.on <= to)
            .filter(|a| under(a.unit, &area, a.on))
            .count()
    }

    fn cns02(&self, unit: &str, end: NaiveDate) -> usize {
        let area = [unit.to_owned()];
        self.teams
            .iter()
            .filter(|t| t.founded <= end && t.dissolved.is_none_or(|d| d > end))
            .filter(|t| under(t.unit, &area, end))
            .count()
    }
}

/// Teams, memberships, activities and audit entries on both sides of 2025-07-01.
async fn build(app: &TestApp) -> Fx {
    let mut fx = Fx::default();
    let r169 = vec!["169".to_owned()];
    let r5692 = vec!["05692".to_owned()];
    // Teams: in hamlets that move (05677-01, 05677-02), one that stays (05692-01), an outsider.
    let cafe = fx.team(app, "T1-cafe", "05677-01", "2022-05-01").await;
    let nalay_old = fx
        .team(app, "T2-nalay-gone2024", "05677-02", "2022-06-01")
        .await;
    let nalay = fx
        .team(app, "T3-nalay-gone2025", "05677-02", "2023-03-01")
        .await;
    let tdp = fx.team(app, "T4-tdp1", "05692-01", "2023-06-15").await;
    let cafe_new = fx.team(app, "T5-cafe-new", "05677-01", "2025-08-01").await;
    let outsider = fx.team(app, "T6-chuahang", "05659-01", "2022-01-01").await;
    fx.rename(app, cafe, "Tổ CNSCĐ Xóm Cà Phê", "2023-01-01")
        .await;
    fx.rename(app, cafe, "Tổ công nghệ số Cà Phê", "2025-08-15")
        .await;
    // Memberships: ended before, started after, spanning, open.
    let m1 = fx.member(app, "M1", cafe, "LEADER", "2022-05-01").await;
    let m3 = fx.member(app, "M3", cafe, "DEPUTY", "2023-01-10").await;
    fx.member(app, "M4", cafe, "MEMBER", "2022-05-01").await;
    fx.member(app, "M6", nalay_old, "MEMBER", "2022-06-01")
        .await;
    fx.member(app, "M7", nalay, "MEMBER", "2023-03-01").await;
    fx.member(app, "M8", tdp, "LEADER", "2023-06-15").await;
    let m8b = fx.member(app, "M8b", tdp, "MEMBER", "2024-02-01").await;
    fx.member(app, "M9", cafe_new, "LEADER", "2025-08-01").await;
    fx.member(app, "M10", outsider, "LEADER", "2022-01-01")
        .await;
    let m11 = fx
        .member(app, "M11", outsider, "MEMBER", "2022-02-01")
        .await;
    fx.member(app, "M12", outsider, "MEMBER", "2025-09-01")
        .await;
    fx.end(app, m1, "2024-12-31").await;
    fx.member(app, "M2", cafe, "LEADER", "2025-08-01").await;
    // Activities on both sides, at hamlets and at the commune above them.
    let cm = "COMMUNITY_MEETING";
    fx.act(app, "A1", None, cafe, cm, "2024-03-05", None).await;
    fx.act(app, "A2", None, cafe, cm, "2025-08-10", None).await;
    fx.act(
        app,
        "A3",
        None,
        cafe,
        "TRAINING",
        "2025-03-01",
        Some("05677"),
    )
    .await;
    fx.act(app, "A4", None, cafe, cm, "2025-09-01", Some("05692"))
        .await;
    fx.act(app, "A5", None, nalay_old, cm, "2023-05-05", None)
        .await;
    fx.act(app, "A6", None, nalay, cm, "2025-07-15", None).await;
    fx.act(app, "A7", None, nalay, "TRAINING", "2024-11-11", None)
        .await;
    fx.act(app, "A8", None, tdp, cm, "2024-06-06", None).await;
    fx.act(app, "A9", None, tdp, cm, "2025-11-11", None).await;
    fx.act(app, "A10", None, cafe_new, cm, "2025-09-09", None)
        .await;
    fx.act(app, "A11", None, outsider, cm, "2024-02-02", None)
        .await;
    fx.act(app, "A12", None, outsider, cm, "2025-12-01", None)
        .await;
    fx.act(app, "A13", None, nalay_old, cm, "2024-08-20", Some("05677"))
        .await;
    // Sent after the reorganisation, about a day before it (then corrected into July).
    fx.act(app, "A14", None, cafe, cm, "2025-06-20", None).await;
    fx.sent_on(app, "A14", "2025-07-05").await;
    // What reporters submitted (subject and client together).
    fx.act(
        app,
        "R1",
        Some(("reporter-169", "test-app", &r169)),
        cafe,
        cm,
        "2024-05-05",
        None,
    )
    .await;
    fx.act(
        app,
        "R2",
        Some(("reporter-05692", "test-app", &r5692)),
        cafe,
        cm,
        "2025-10-10",
        None,
    )
    .await;
    fx.act(
        app,
        "R3",
        Some(("reporter-05692", "other-app", &r5692)),
        tdp,
        cm,
        "2025-10-11",
        None,
    )
    .await;
    // Corrections: moved across 2025-07-01 (at the hamlet, and from the old commune to the
    // new one), up from the hamlet to its commune, by the reporter that sent it, twice (the
    // kind too), the outsider's.
    let r19 = ["19".to_owned()];
    fx.correct(app, "A1", None, Some("2025-08-05"), None, None)
        .await;
    fx.correct(app, "A3", None, Some("2025-09-03"), Some("05692"), None)
        .await;
    fx.correct(app, "A2", None, None, Some("05692"), None).await;
    fx.correct(app, "A14", None, Some("2025-07-02"), None, None)
        .await;
    fx.correct(app, "R1", Some(&r169), None, None, None).await;
    fx.correct(app, "A7", None, None, None, None).await;
    fx.correct(app, "A7", None, None, None, Some(cm)).await;
    fx.correct(app, "A11", None, Some("2025-07-20"), None, None)
        .await;
    // Ends and dissolutions on both sides.
    fx.end(app, m3, "2025-09-30").await;
    fx.end(app, m11, "2023-05-01").await;
    fx.end(app, m8b, "2025-02-28").await;
    fx.dissolve(app, nalay_old, "2024-09-01").await;
    fx.dissolve(app, nalay, "2025-10-01").await;
    // Reported figures: months, quarters and years on either side, years across 2025-07-01,
    // a ceased commune's last quarter, a new commune's first; some sent by reporters.
    for (unit, start, end) in [
        ("05677-01", "2024-03-01", "2024-03-31"),
        ("05677-01", "2025-07-01", "2025-09-30"),
        ("05677-01", "2025-01-01", "2025-12-31"),
        ("05677-01", "2024-01-01", "2024-12-31"),
        ("05677", "2025-04-01", "2025-06-30"),
        ("05692", "2025-01-01", "2025-12-31"),
        ("05692", "2025-08-01", "2025-08-31"),
        ("05692-01", "2025-01-01", "2025-12-31"),
        ("05692-01", "2024-06-01", "2024-06-30"),
        ("05659-01", "2024-01-01", "2024-03-31"),
        ("05659-01", "2025-01-01", "2025-12-31"),
        ("05710", "2025-07-01", "2025-09-30"),
        ("169", "2024-01-01", "2024-12-31"),
        ("19", "2025-01-01", "2025-12-31"),
    ] {
        fx.value(app, None, unit, start, end, "DVCQG").await;
    }
    fx.value(
        app,
        Some(("reporter-169", "test-app", &r169[..])),
        "05677-01",
        "2024-05-01",
        "2024-05-31",
        "APP1",
    )
    .await;
    fx.value(
        app,
        Some(("reporter-05692", "test-app", &r5692[..])),
        "05692-01",
        "2025-10-01",
        "2025-10-31",
        "APP1",
    )
    .await;
    fx.value(
        app,
        Some(("reporter-05692", "other-app", &r5692[..])),
        "05692-01",
        "2025-10-01",
        "2025-10-31",
        "APP2",
    )
    .await;
    fx.value(
        app,
        Some(("reporter-19", "test-app", &r19[..])),
        "05677-02",
        "2025-01-01",
        "2025-12-31",
        "APP1",
    )
    .await;
    // A figure of a hamlet's 2025 sent after the reorganisation: the commune that holds it
    // now may not read the figure (it held the hamlet from July only), nor its entry.
    fx.value_sent_on(
        app,
        None,
        "05677-01",
        "2025-01-01",
        "2025-12-31",
        "LATE",
        "2025-12-20",
    )
    .await;
    // Targets (CNS05), set on days on either side of 2025-07-01: the moving hamlet's 2025
    // (set before, changed after), its third quarter, a ceased commune's and district's 2025
    // (they existed in its first half only), the new commune's 2025 (its second half only),
    // a merged commune's 2025, a hamlet's month (set, then cleared), an outsider's 2024, the
    // moving hamlet's 2024 (set after the reorganisation).
    for (unit, start, end, target, day) in [
        (
            "05677-01",
            "2025-01-01",
            "2025-12-31",
            Some(777.0),
            "2025-03-01",
        ),
        (
            "05677-01",
            "2025-01-01",
            "2025-12-31",
            Some(778.0),
            "2025-10-15",
        ),
        (
            "05677-01",
            "2025-07-01",
            "2025-09-30",
            Some(88.0),
            "2025-10-15",
        ),
        ("05677", "2025-01-01", "2025-12-31", Some(5.0), "2025-03-01"),
        ("169", "2025-01-01", "2025-12-31", Some(50.0), "2025-02-01"),
        ("05710", "2025-01-01", "2025-12-31", Some(7.0), "2025-11-01"),
        ("05692", "2025-01-01", "2025-12-31", Some(9.0), "2025-12-01"),
        (
            "05692-01",
            "2024-06-01",
            "2024-06-30",
            Some(2.0),
            "2024-06-15",
        ),
        ("05692-01", "2024-06-01", "2024-06-30", None, "2024-07-01"),
        (
            "05659-01",
            "2024-01-01",
            "2024-12-31",
            Some(3.0),
            "2024-05-01",
        ),
        (
            "05677-01",
            "2024-01-01",
            "2024-12-31",
            Some(4.0),
            "2025-08-01",
        ),
    ] {
        fx.target(app, unit, start, end, target, day).await;
    }
    // An indicator definition (no unit): its entry is ADMIN's only.
    fx.definition(app, "ORACLE01", "2025-08-01").await;
    // Locks last (they would refuse the writes above): units on either side, the province,
    // the old district, the new commune.
    for (unit, month) in [
        ("05677", "2024-02"),
        ("05692", "2025-02"),
        ("05692", "2025-09"),
        ("05677-01", "2025-10"),
        ("05659-01", "2024-01"),
        ("19", "2023-12"),
        ("169", "2023-11"),
        ("05710", "2025-11"),
        ("05692-01", "2024-06"),
    ] {
        fx.lock(app, unit, month).await;
    }
    fx
}

fn callers(fx: &Fx) -> Vec<Caller> {
    let mut out = vec![Caller {
        label: "ADMIN".into(),
        role: Role::Admin,
        units: vec![],
        teams: vec![],
        sub: "admin-".into(),
        client: "test-app".into(),
        token: admin(),
    }];
    for role in [Role::UnitAdmin, Role::Viewer, Role::Reporter] {
        for area in AREAS {
            let units = vec![area.to_owned()];
            let sub = format!("{}-{area}", role.name().to_lowercase());
            out.push(Caller {
                label: format!("{}[{area}]", role.name()),
                role,
                token: mint_token(role, &units, &[], &sub, "test-app"),
                units,
                teams: vec![],
                sub,
                client: "test-app".into(),
            });
        }
    }
    let units = vec!["05692".to_owned()];
    out.push(Caller {
        label: "REPORTER[05692, same subject, client other-app]".into(),
        role: Role::Reporter,
        token: mint_token(Role::Reporter, &units, &[], "reporter-05692", "other-app"),
        units,
        teams: vec![],
        sub: "reporter-05692".into(),
        client: "other-app".into(),
    });
    for teams in [vec![0], vec![1], vec![5], vec![2, 3]] {
        let ids: Vec<String> = teams.iter().map(|&t| fx.teams[t].id.clone()).collect();
        let names: Vec<&str> = teams.iter().map(|&t| fx.teams[t].label.as_str()).collect();
        out.push(Caller {
            label: format!("TEAM_LEADER[{}]", names.join(",")),
            role: Role::TeamLeader,
            token: mint_token(Role::TeamLeader, &[], &ids, "leader", "test-app"),
            units: vec![],
            teams,
            sub: "leader".into(),
            client: "test-app".into(),
        });
    }
    out
}

// ------------------------------------------------------------------------------------------
// Comparing answers.

fn codes_at(body: &Value, prefix: &[Value]) -> Vec<String> {
    body["errors"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|e| {
                    e["path"]
                        .as_array()
                        .is_some_and(|p| p.len() >= prefix.len() && p[..prefix.len()] == *prefix)
                })
                .map(|e| e["extensions"]["code"].as_str().unwrap_or("?").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn top_codes(body: &Value) -> Vec<String> {
    body["errors"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| e["extensions"]["code"].as_str().unwrap_or("?").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn edge_ids(list: &Value) -> Vec<String> {
    list["edges"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|e| e["node"]["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn id_list(list: &Value) -> Vec<String> {
    list.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|e| e["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

struct Report<'a> {
    fx: &'a Fx,
    failures: Vec<String>,
}

impl Report<'_> {
    fn fail(&mut self, c: &Caller, path: &str, what: String) {
        self.failures.push(format!("{} | {path} | {what}", c.label));
    }

    /// Compares the ids a path returned with the ids the oracle expects.
    fn ids(&mut self, c: &Caller, path: &str, got: &[String], expected: &[String]) {
        let got_set: BTreeSet<&String> = got.iter().collect();
        let exp_set: BTreeSet<&String> = expected.iter().collect();
        let extra: Vec<String> = got_set
            .difference(&exp_set)
            .map(|i| self.fx.label(i))
            .collect();
        let missing: Vec<String> = exp_set
            .difference(&got_set)
            .map(|i| self.fx.label(i))
            .collect();
        if !extra.is_empty() || !missing.is_empty() || got.len() != got_set.len() {
            self.fail(
                c,
                path,
                format!("leaked (not in area) {extra:?}; missing {missing:?}"),
            );
        }
    }

    fn count(&mut self, c: &Caller, path: &str, got: &Value, expected: usize) {
        if got.as_u64() != Some(expected as u64) {
            self.fail(c, path, format!("got {got}, oracle says {expected}"));
        }
    }
}

const Q_TEAMS: &str = "{ teams(first: 100) { totalCount edges { node { id } } } }";
const Q_TEAMS_NESTED: &str = "{ teams(first: 100) { edges { node { id latestActivity { id } current: members { id } all: members(includeEnded: true) { id person { phone } } } } } }";
const Q_MEMBER_COUNT: &str = "{ teams(first: 100) { edges { node { id memberCount } } } }";
const Q_MEMBERS: &str = "query($a: Boolean) { members(active: $a, first: 100) { totalCount edges { node { id person { phone } team { id } } } } }";
const Q_ACTIVITIES: &str =
    "{ activities(first: 100) { totalCount edges { node { id team { id } } } } }";
// Two requests: a root field the caller may not read (`members` for a REPORTER) is non-null,
// so its error nulls the whole `data` (GraphQL spec, "Handling Field Errors") and would hide
// the other list.
const Q_MEMBERS_OF_TEAM: &str =
    "query($t: ID) { members(teamId: $t, first: 100) { totalCount edges { node { id } } } }";
const Q_ACTIVITIES_OF_TEAM: &str =
    "query($t: ID) { activities(teamId: $t, first: 100) { totalCount edges { node { id } } } }";
const Q_AUDIT: &str = "query($after: String) { auditLog(first: 40, after: $after) { totalCount pageInfo { hasNextPage endCursor } edges { node { action entityId occurredAt before after } } } }";
const Q_TEAM: &str = "query($id: ID!) { team(id: $id) { id } }";
const Q_NODE: &str = "query($id: ID!) { node(id: $id) { id ... on Membership { team { id } person { phone } } ... on Activity { team { id } } } }";
const Q_INDICATORS: &str = "query($u: [String!]!, $g: PeriodGranularity!, $b: UnitBreakdown!) { indicators(codes: [\"CNS05\", \"CNS02\"], unitCodes: $u, from: \"2024-01-01\", to: \"2025-12-31\", granularity: $g, breakdown: $b) { indicator { code } unit { code } period { label start end } value numerator denominator status } }";

/// One request of the read matrix.
enum Probe {
    Teams,
    TeamsNested,
    MemberCount,
    Members(Option<bool>),
    Activities,
    /// `members(teamId:)` and `activities(teamId:)` of one team.
    ListsOfTeam(usize),
    Audit,
    TeamById(usize),
    Node(String),
    Indicators(&'static str, &'static str, &'static str),
    /// `dataValues` unfiltered and with each filter of [`VALUE_FILTERS`], in one request.
    DataValues,
    /// `periodLocks` unfiltered and with each filter of [`LOCK_FILTERS`], in one request.
    PeriodLocks,
    /// `activityVersions(activityId:)` of one activity.
    Versions(usize),
    /// `indicatorTargets` of every unit of the fixture's targets.
    Targets,
}

/// Filters of `dataValues` (under, from, to) checked for every caller.
const VALUE_FILTERS: &[(Option<&str>, Option<&str>, Option<&str>)] = &[
    (None, None, None),
    (Some("169"), None, None),
    (Some("05677"), None, None),
    (Some("05692"), None, None),
    (Some("05677-01"), None, None),
    (Some("19"), None, None),
    (Some("05710"), None, None),
    (Some("05692-01"), None, None),
    (None, Some("2025-07-01"), None),
    (None, None, Some("2025-06-30")),
    (None, Some("2025-02-01"), Some("2025-08-31")),
    (Some("19"), Some("2025-10-01"), None),
];

/// Filters of `periodLocks` (under, from, to) checked for every caller.
const LOCK_FILTERS: &[(Option<&str>, Option<&str>, Option<&str>)] = &[
    (None, None, None),
    (Some("169"), None, None),
    (Some("05677"), None, None),
    (Some("05692"), None, None),
    (Some("05677-01"), None, None),
    (Some("19"), None, None),
    (Some("05710"), None, None),
    (None, Some("2025-07"), None),
    (None, None, Some("2025-06")),
    (Some("19"), Some("2024-01"), Some("2025-09")),
];

/// One request selecting `field` once per filter, aliased `f0`, `f1`, …
fn filtered_query(
    field: &str,
    filters: &[(Option<&str>, Option<&str>, Option<&str>)],
    node: &str,
) -> String {
    let arg =
        |name: &str, v: &Option<&str>| v.map(|v| format!("{name}: \"{v}\", ")).unwrap_or_default();
    let lists: Vec<String> = filters
        .iter()
        .enumerate()
        .map(|(i, (u, f, t))| {
            format!(
                "f{i}: {field}({}{}{}first: 40) {{ totalCount edges {{ node {{ {node} }} }} }}",
                arg("under", u),
                arg("from", f),
                arg("to", t)
            )
        })
        .collect();
    format!("{{ {} }}", lists.join(" "))
}

fn filter_label(field: &str, (u, f, t): &(Option<&str>, Option<&str>, Option<&str>)) -> String {
    let parts: Vec<String> = [("under", u), ("from", f), ("to", t)]
        .iter()
        .filter_map(|(k, v)| v.map(|v| format!("{k}: {v}")))
        .collect();
    format!("{field}({})", parts.join(", "))
}

const Q_TARGETS: &str = "query($u: [String!]!) { indicatorTargets(unitCodes: $u, from: \"2023-01-01\", to: \"2026-12-31\") { indicator unitCode periodStart periodEnd } }";

const Q_VERSIONS: &str =
    "query($id: ID!) { activityVersions(activityId: $id) { version changedBy activity } }";

async fn probe(app: &TestApp, fx: &Fx, c: &Caller, p: &Probe) -> Vec<String> {
    let mut rep = Report {
        fx,
        failures: Vec::new(),
    };
    let visible_teams: Vec<String> = (0..fx.teams.len())
        .filter(|&t| fx.team_visible(c, t))
        .map(|t| fx.teams[t].id.clone())
        .collect();
    let team_of = |t: usize| -> Value {
        if fx.team_visible(c, t) {
            json!(fx.teams[t].id)
        } else {
            Value::Null
        }
    };
    match p {
        Probe::Teams => {
            let r = app.gql(&c.token, Q_TEAMS, json!({})).await;
            rep.ids(
                c,
                "teams.edges",
                &edge_ids(&r.body["data"]["teams"]),
                &visible_teams,
            );
            rep.count(
                c,
                "teams.totalCount",
                &r.body["data"]["teams"]["totalCount"],
                visible_teams.len(),
            );
        }
        Probe::TeamsNested => {
            let r = app.gql(&c.token, Q_TEAMS_NESTED, json!({})).await;
            let edges = r.body["data"]["teams"]["edges"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            if edges.is_empty() && !visible_teams.is_empty() {
                rep.fail(c, "teams{nested}", format!("no teams: {}", r.body));
            }
            for (i, e) in edges.iter().enumerate() {
                let node = &e["node"];
                let Some(t) = fx.teams.iter().position(|t| node["id"] == t.id.as_str()) else {
                    continue;
                };
                let tl = &fx.teams[t].label;
                let latest = fx.latest_act(c, t).map(|a| fx.acts[a].id.clone());
                let got = node["latestActivity"]["id"].as_str().map(str::to_owned);
                if got != latest {
                    rep.fail(
                        c,
                        &format!("team({tl}).latestActivity"),
                        format!(
                            "got {:?}, oracle says {:?}",
                            got.map(|g| fx.label(&g)),
                            latest.map(|g| fx.label(&g))
                        ),
                    );
                }
                let all: Vec<usize> = (0..fx.members.len())
                    .filter(|&m| fx.members[m].team == t && fx.member_visible(c, m))
                    .collect();
                let ids = |ms: &[usize]| -> Vec<String> {
                    ms.iter().map(|&m| fx.members[m].id.clone()).collect()
                };
                let open: Vec<usize> = all
                    .iter()
                    .copied()
                    .filter(|&m| fx.members[m].ended.is_none())
                    .collect();
                if Fx::members_readable(c) {
                    rep.ids(
                        c,
                        &format!("team({tl}).members(includeEnded: true)"),
                        &id_list(&node["all"]),
                        &ids(&all),
                    );
                    rep.ids(
                        c,
                        &format!("team({tl}).members"),
                        &id_list(&node["current"]),
                        &ids(&open),
                    );
                    for (j, m) in node["all"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default()
                        .iter()
                        .enumerate()
                    {
                        let Some(mi) = fx.members.iter().position(|x| m["id"] == x.id.as_str())
                        else {
                            continue;
                        };
                        let path = [
                            json!("teams"),
                            json!("edges"),
                            json!(i),
                            json!("node"),
                            json!("all"),
                            json!(j),
                            json!("person"),
                            json!("phone"),
                        ];
                        check_phone(
                            &mut rep,
                            c,
                            &format!(
                                "team({tl}).members.person.phone of {}",
                                fx.members[mi].label
                            ),
                            fx.personal_readable(c, mi),
                            &m["person"]["phone"],
                            &codes_at(&r.body, &path),
                        );
                    }
                } else {
                    for alias in ["all", "current"] {
                        let got = id_list(&node[alias]);
                        if !got.is_empty() {
                            rep.fail(
                                c,
                                &format!("team({tl}).members"),
                                format!(
                                    "role may not read members, got {:?}",
                                    got.iter().map(|g| fx.label(g)).collect::<Vec<_>>()
                                ),
                            );
                        }
                    }
                }
            }
        }
        Probe::MemberCount => {
            let r = app.gql(&c.token, Q_MEMBER_COUNT, json!({})).await;
            let edges = r.body["data"]["teams"]["edges"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            if edges.is_empty() && !visible_teams.is_empty() {
                rep.fail(c, "teams.memberCount", format!("no teams: {}", r.body));
            }
            for (i, e) in edges.iter().enumerate() {
                let node = &e["node"];
                let Some(t) = fx.teams.iter().position(|t| node["id"] == t.id.as_str()) else {
                    continue;
                };
                let tl = &fx.teams[t].label;
                let open = (0..fx.members.len())
                    .filter(|&m| {
                        fx.members[m].team == t
                            && fx.members[m].ended.is_none()
                            && fx.member_visible(c, m)
                    })
                    .count();
                let path = [
                    json!("teams"),
                    json!("edges"),
                    json!(i),
                    json!("node"),
                    json!("memberCount"),
                ];
                if Fx::members_readable(c) {
                    rep.count(
                        c,
                        &format!("team({tl}).memberCount"),
                        &node["memberCount"],
                        open,
                    );
                } else if !node["memberCount"].is_null()
                    || !codes_at(&r.body, &path).contains(&"FORBIDDEN".to_owned())
                {
                    rep.fail(c, &format!("team({tl}).memberCount"), format!("role may not read members: expected null + FORBIDDEN, got {} (errors {:?})", node["memberCount"], codes_at(&r.body, &path)));
                }
            }
        }
        Probe::Members(active) => {
            let r = app.gql(&c.token, Q_MEMBERS, json!({ "a": active })).await;
            let path = format!("members(active: {active:?})");
            let list = &r.body["data"]["members"];
            if !Fx::members_readable(c) {
                let got = edge_ids(list);
                if !got.is_empty() || list["totalCount"].as_u64().is_some_and(|n| n > 0) {
                    rep.fail(
                        c,
                        &path,
                        format!(
                            "role may not read members, got {} {:?}",
                            list["totalCount"],
                            got.iter().map(|g| fx.label(g)).collect::<Vec<_>>()
                        ),
                    );
                }
                return rep.failures;
            }
            let expected: Vec<usize> = (0..fx.members.len())
                .filter(|&m| fx.member_visible(c, m))
                .filter(|&m| active.is_none_or(|a| a == fx.members[m].ended.is_none()))
                .collect();
            let exp_ids: Vec<String> = expected.iter().map(|&m| fx.members[m].id.clone()).collect();
            rep.ids(c, &format!("{path}.edges"), &edge_ids(list), &exp_ids);
            rep.count(
                c,
                &format!("{path}.totalCount"),
                &list["totalCount"],
                expected.len(),
            );
            for (i, e) in list["edges"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .enumerate()
            {
                let Some(m) = fx
                    .members
                    .iter()
                    .position(|x| e["node"]["id"] == x.id.as_str())
                else {
                    continue;
                };
                let ml = &fx.members[m].label;
                let base = [json!("members"), json!("edges"), json!(i), json!("node")];
                let mut pp = base.to_vec();
                pp.extend([json!("person"), json!("phone")]);
                check_phone(
                    &mut rep,
                    c,
                    &format!("{path}.person.phone of {ml}"),
                    fx.personal_readable(c, m),
                    &e["node"]["person"]["phone"],
                    &codes_at(&r.body, &pp),
                );
                let want = team_of(fx.members[m].team);
                if e["node"]["team"]["id"] != want
                    && !(want.is_null() && e["node"]["team"].is_null())
                {
                    rep.fail(
                        c,
                        &format!("{path}.team of {ml}"),
                        format!("got {}, oracle says {want}", e["node"]["team"]),
                    );
                }
            }
        }
        Probe::Activities => {
            let r = app.gql(&c.token, Q_ACTIVITIES, json!({})).await;
            let list = &r.body["data"]["activities"];
            let expected: Vec<usize> = (0..fx.acts.len())
                .filter(|&a| fx.act_visible(c, a))
                .collect();
            let exp_ids: Vec<String> = expected.iter().map(|&a| fx.acts[a].id.clone()).collect();
            rep.ids(c, "activities.edges", &edge_ids(list), &exp_ids);
            rep.count(
                c,
                "activities.totalCount",
                &list["totalCount"],
                expected.len(),
            );
            for e in list["edges"].as_array().cloned().unwrap_or_default() {
                let Some(a) = fx
                    .acts
                    .iter()
                    .position(|x| e["node"]["id"] == x.id.as_str())
                else {
                    continue;
                };
                let want = team_of(fx.acts[a].team);
                let got = if e["node"]["team"].is_null() {
                    Value::Null
                } else {
                    e["node"]["team"]["id"].clone()
                };
                if got != want {
                    rep.fail(
                        c,
                        &format!("activities.team of {}", fx.acts[a].label),
                        format!("got {got}, oracle says {want}"),
                    );
                }
            }
        }
        Probe::ListsOfTeam(t) => {
            let tl = &fx.teams[*t].label;
            let r = app
                .gql(&c.token, Q_MEMBERS_OF_TEAM, json!({ "t": fx.teams[*t].id }))
                .await;
            // An invisible team may answer NOT_FOUND or an empty list; either way nothing leaks.
            let members = &r.body["data"]["members"];
            let expected: Vec<String> = (0..fx.members.len())
                .filter(|&m| fx.members[m].team == *t && fx.member_visible(c, m))
                .map(|m| fx.members[m].id.clone())
                .collect();
            rep.ids(
                c,
                &format!("members(teamId: {tl}).edges"),
                &edge_ids(members),
                &expected,
            );
            if !members["totalCount"].is_null() {
                rep.count(
                    c,
                    &format!("members(teamId: {tl}).totalCount"),
                    &members["totalCount"],
                    expected.len(),
                );
            }
            let r = app
                .gql(
                    &c.token,
                    Q_ACTIVITIES_OF_TEAM,
                    json!({ "t": fx.teams[*t].id }),
                )
                .await;
            let acts = &r.body["data"]["activities"];
            let expected: Vec<String> = (0..fx.acts.len())
                .filter(|&a| fx.acts[a].team == *t && fx.act_visible(c, a))
                .map(|a| fx.acts[a].id.clone())
                .collect();
            rep.ids(
                c,
                &format!("activities(teamId: {tl}).edges"),
                &edge_ids(acts),
                &expected,
            );
            if !acts["totalCount"].is_null() {
                rep.count(
                    c,
                    &format!("activities(teamId: {tl}).totalCount"),
                    &acts["totalCount"],
                    expected.len(),
                );
            }
        }
        Probe::Audit => {
            let r = app.gql(&c.token, Q_AUDIT, json!({})).await;
            let list = &r.body["data"]["auditLog"];
            if matches!(c.role, Role::Admin | Role::UnitAdmin) {
                // Every page (pages of 40: the fixture holds over 80 entries), with the errors
                // each answered, by the index of their edge among all pages.
                let mut edges = list["edges"].as_array().cloned().unwrap_or_default();
                let mut errors: Vec<(usize, Value)> = r.body["errors"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|e| (0, e))
                    .collect();
                let mut page = list.clone();
                while page["pageInfo"]["hasNextPage"] == true {
                    let next = app
                        .gql(
                            &c.token,
                            Q_AUDIT,
                            json!({ "after": page["pageInfo"]["endCursor"] }),
                        )
                        .await;
                    page = next.body["data"]["auditLog"].clone();
                    if page.is_null() {
                        rep.fail(c, "auditLog(after:)", format!("no answer: {}", next.body));
                        break;
                    }
                    let offset = edges.len();
                    errors.extend(
                        next.body["errors"]
                            .as_array()
                            .cloned()
                            .unwrap_or_default()
                            .into_iter()
                            .map(|e| (offset, e)),
                    );
                    edges.extend(page["edges"].as_array().cloned().unwrap_or_default());
                }
                let entry = |n: &Value| {
                    format!(
                        "{} {} {}",
                        n["action"].as_str().unwrap_or("?"),
                        fx.label(n["entityId"].as_str().unwrap_or("?")),
                        n["occurredAt"]
                            .as_str()
                            .unwrap_or("?")
                            .get(..10)
                            .unwrap_or("?")
                    )
                };
                let mut got: Vec<String> = edges.iter().map(|e| entry(&e["node"])).collect();
                let visible: Vec<&FAudit> = fx
                    .audits
                    .iter()
                    .filter(|e| fx.audit_visible(c, e))
                    .collect();
                let key = |e: &FAudit| format!("{} {} {}", e.action, fx.label(&e.entity), e.day);
                let mut expected: Vec<String> = visible.iter().map(|e| key(e)).collect();
                got.sort();
                expected.sort();
                if got != expected {
                    let extra: Vec<&String> =
                        got.iter().filter(|g| !expected.contains(g)).collect();
                    let missing: Vec<&String> =
                        expected.iter().filter(|g| !got.contains(g)).collect();
                    rep.fail(
                        c,
                        "auditLog.edges",
                        format!(
                            "leaked {extra:?}; missing {missing:?}; errors {:?}",
                            top_codes(&r.body)
                        ),
                    );
                }
                rep.count(
                    c,
                    "auditLog.totalCount",
                    &list["totalCount"],
                    expected.len(),
                );
                // An activity's entry holds the activity as it was before and after the
                // change: each side null with FORBIDDEN on its path where the caller may not
                // read that version, and shown otherwise.
                let mut got_withheld: Vec<String> = Vec::new();
                for (offset, e) in &errors {
                    let path = e["path"].as_array().cloned().unwrap_or_default();
                    let side = path.get(4).and_then(Value::as_str).unwrap_or("?");
                    let at = path
                        .get(2)
                        .and_then(Value::as_u64)
                        .map(|i| offset + i as usize);
                    match at.and_then(|i| edges.get(i)) {
                        Some(edge)
                            if path.len() == 5
                                && path[0] == "auditLog"
                                && e["extensions"]["code"] == "FORBIDDEN"
                                && matches!(side, "before" | "after")
                                && edge["node"][side].is_null() =>
                        {
                            got_withheld.push(format!("{} {side}", entry(&edge["node"])));
                        }
                        _ => rep.fail(c, "auditLog", format!("unexpected error {e}")),
                    }
                }
                let mut expected_withheld: Vec<String> = visible
                    .iter()
                    .flat_map(|e| {
                        fx.withheld_sides(c, e)
                            .into_iter()
                            .map(move |side| format!("{} {side}", key(e)))
                    })
                    .collect();
                got_withheld.sort();
                expected_withheld.sort();
                if got_withheld != expected_withheld {
                    let extra: Vec<&String> = got_withheld
                        .iter()
                        .filter(|g| !expected_withheld.contains(g))
                        .collect();
                    let missing: Vec<&String> = expected_withheld
                        .iter()
                        .filter(|g| !got_withheld.contains(g))
                        .collect();
                    rep.fail(
                        c,
                        "auditLog.edges.node.before/after",
                        format!("withheld (FORBIDDEN) but readable {extra:?}; shown but not readable {missing:?}"),
                    );
                }
                // A side the caller may read is there (an activity's entry always has an
                // `after`, a correction's a `before`).
                for e in &visible {
                    let Some((_, states)) = &e.states else {
                        continue;
                    };
                    let withheld = fx.withheld_sides(c, e);
                    for (side, state) in ["before", "after"].into_iter().zip(states) {
                        if state.is_none() || withheld.contains(&side) {
                            continue;
                        }
                        let shown = edges.iter().any(|edge| {
                            entry(&edge["node"]) == key(e) && !edge["node"][side].is_null()
                        });
                        if !shown {
                            rep.fail(
                                c,
                                "auditLog.edges.node.before/after",
                                format!("{} {side}: null, the caller may read it", key(e)),
                            );
                        }
                    }
                }
            } else if !edge_ids(list).is_empty()
                || list["edges"].as_array().is_some_and(|a| !a.is_empty())
                || top_codes(&r.body) != ["FORBIDDEN"]
            {
                rep.fail(
                    c,
                    "auditLog",
                    format!("expected FORBIDDEN and no entries, got {}", r.body),
                );
            }
        }
        Probe::TeamById(t) => {
            let r = app
                .gql(&c.token, Q_TEAM, json!({ "id": fx.teams[*t].id }))
                .await;
            let path = format!("team(id: {})", fx.teams[*t].label);
            by_id(
                &mut rep,
                c,
                &path,
                fx.team_visible(c, *t),
                &r.body["data"]["team"],
                &top_codes(&r.body),
                false,
            );
        }
        Probe::Node(id) => {
            let r = app.gql(&c.token, Q_NODE, json!({ "id": id })).await;
            let node = &r.body["data"]["node"];
            let path = format!("node(id: {})", fx.label(id));
            if let Some(t) = fx.teams.iter().position(|t| &t.id == id) {
                by_id(
                    &mut rep,
                    c,
                    &path,
                    fx.team_visible(c, t),
                    node,
                    &top_codes(&r.body),
                    false,
                );
            } else if let Some(m) = fx.members.iter().position(|x| &x.id == id) {
                let visible = fx.member_visible(c, m);
                by_id(
                    &mut rep,
                    c,
                    &path,
                    visible,
                    node,
                    &top_codes(&r.body),
                    c.role == Role::Reporter,
                );
                if visible && !node.is_null() {
                    let want = team_of(fx.members[m].team);
                    let got = if node["team"].is_null() {
                        Value::Null
                    } else {
                        node["team"]["id"].clone()
                    };
                    if got != want {
                        rep.fail(
                            c,
                            &format!("{path}.team"),
                            format!("got {got}, oracle says {want}"),
                        );
                    }
                    let pp = [json!("node"), json!("person"), json!("phone")];
                    check_phone(
                        &mut rep,
                        c,
                        &format!("{path}.person.phone"),
                        fx.personal_readable(c, m),
                        &node["person"]["phone"],
                        &codes_at(&r.body, &pp),
                    );
                }
            } else if let Some(a) = fx.acts.iter().position(|x| &x.id == id) {
                let visible = fx.act_visible(c, a);
                by_id(
                    &mut rep,
                    c,
                    &path,
                    visible,
                    node,
                    &top_codes(&r.body),
                    false,
                );
                if visible && !node.is_null() {
                    let want = team_of(fx.acts[a].team);
                    let got = if node["team"].is_null() {
                        Value::Null
                    } else {
                        node["team"]["id"].clone()
                    };
                    if got != want {
                        rep.fail(
                            c,
                            &format!("{path}.team"),
                            format!("got {got}, oracle says {want}"),
                        );
                    }
                }
            }
        }
        Probe::DataValues => {
            let q = filtered_query(
                "dataValues",
                VALUE_FILTERS,
                "element unitCode periodStart periodEnd sourceSystem",
            );
            let r = app.gql(&c.token, &q, json!({})).await;
            if c.role == Role::TeamLeader {
                forbidden_whole(&mut rep, c, "dataValues", &r);
                return rep.failures;
            }
            for (i, filter) in VALUE_FILTERS.iter().enumerate() {
                let (u, f, t) = filter;
                let path = filter_label("dataValues", filter);
                let list = &r.body["data"][format!("f{i}")];
                let got: Vec<String> = list["edges"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .iter()
                    .map(|e| {
                        let n = &e["node"];
                        let s = |k: &str| n[k].as_str().unwrap_or("?").to_owned();
                        format!(
                            "{}:{}:{}:{}:{}",
                            s("element"),
                            s("unitCode"),
                            s("periodStart"),
                            s("periodEnd"),
                            s("sourceSystem")
                        )
                    })
                    .collect();
                let expected: Vec<String> = (0..fx.values.len())
                    .filter(|&v| fx.value_visible(c, v))
                    .filter(|&v| {
                        let v = &fx.values[v];
                        u.is_none_or(|u| under_every_day(v.unit, &[u.to_owned()], v.start, v.end))
                            && f.is_none_or(|f| v.end >= date(f))
                            && t.is_none_or(|t| v.start <= date(t))
                    })
                    .map(|v| fx.values[v].key.clone())
                    .collect();
                if list.is_null() {
                    rep.fail(c, &path, format!("no answer: {}", r.body));
                    continue;
                }
                rep.ids(c, &format!("{path}.edges"), &got, &expected);
                rep.count(
                    c,
                    &format!("{path}.totalCount"),
                    &list["totalCount"],
                    expected.len(),
                );
            }
        }
        Probe::PeriodLocks => {
            let q = filtered_query("periodLocks", LOCK_FILTERS, "unitCode month");
            let r = app.gql(&c.token, &q, json!({})).await;
            if c.role == Role::TeamLeader {
                forbidden_whole(&mut rep, c, "periodLocks", &r);
                return rep.failures;
            }
            for (i, filter) in LOCK_FILTERS.iter().enumerate() {
                let (u, f, t) = filter;
                let path = filter_label("periodLocks", filter);
                let list = &r.body["data"][format!("f{i}")];
                let got: Vec<String> = list["edges"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .iter()
                    .map(|e| {
                        let n = &e["node"];
                        format!(
                            "{}:{}",
                            n["unitCode"].as_str().unwrap_or("?"),
                            n["month"].as_str().unwrap_or("?")
                        )
                    })
                    .collect();
                let expected: Vec<String> = (0..fx.locks.len())
                    .filter(|&l| fx.lock_visible(c, l))
                    .filter(|&l| {
                        let l = &fx.locks[l];
                        u.is_none_or(|u| under_some_day(l.unit, &[u.to_owned()], l.start, l.end))
                            && f.is_none_or(|f| l.end >= month_span(f).0)
                            && t.is_none_or(|t| l.start <= month_span(t).1)
                    })
                    .map(|l| fx.locks[l].key.clone())
                    .collect();
                if list.is_null() {
                    rep.fail(c, &path, format!("no answer: {}", r.body));
                    continue;
                }
                rep.ids(c, &format!("{path}.edges"), &got, &expected);
                rep.count(
                    c,
                    &format!("{path}.totalCount"),
                    &list["totalCount"],
                    expected.len(),
                );
            }
        }
        Probe::Targets => {
            let units: BTreeSet<&str> = fx.targets.iter().map(|t| t.unit).collect();
            let r = app.gql(&c.token, Q_TARGETS, json!({ "u": units })).await;
            if matches!(c.role, Role::Reporter | Role::TeamLeader) {
                forbidden_whole(&mut rep, c, "indicatorTargets", &r);
                return rep.failures;
            }
            let list = &r.body["data"]["indicatorTargets"];
            if list.is_null() {
                rep.fail(c, "indicatorTargets", format!("no answer: {}", r.body));
                return rep.failures;
            }
            let got: Vec<String> = list
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|t| {
                    let s = |k: &str| t[k].as_str().unwrap_or("?").to_owned();
                    format!(
                        "{}:{}:{}:{}",
                        s("indicator"),
                        s("unitCode"),
                        s("periodStart"),
                        s("periodEnd")
                    )
                })
                .collect();
            let expected: Vec<String> = (0..fx.targets.len())
                .filter(|&t| !fx.targets[t].cleared && fx.target_visible(c, t))
                .map(|t| fx.targets[t].key.clone())
                .collect();
            rep.ids(c, "indicatorTargets", &got, &expected);
        }
        Probe::Versions(a) => {
            let act = &fx.acts[*a];
            let path = format!("activityVersions(activityId: {})", act.label);
            let r = app.gql(&c.token, Q_VERSIONS, json!({ "id": act.id })).await;
            let list = &r.body["data"]["activityVersions"];
            // Each version by its own day and unit; NOT_FOUND when neither the activity now
            // nor any version is visible.
            let visible: Vec<usize> = (0..act.history.len())
                .filter(|&v| fx.version_visible(c, *a, v))
                .collect();
            if visible.is_empty() && !fx.act_visible(c, *a) {
                if !list.is_null() || top_codes(&r.body) != ["NOT_FOUND"] {
                    rep.fail(
                        c,
                        &path,
                        format!("outside the area: expected NOT_FOUND, got {}", r.body),
                    );
                }
                return rep.failures;
            }
            let got: Vec<String> = list
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|v| {
                    format!(
                        "v{} {} @{} by {}",
                        v["version"],
                        v["activity"]["occurred_on"].as_str().unwrap_or("?"),
                        v["activity"]["unit_code"].as_str().unwrap_or("?"),
                        v["changedBy"].as_str().unwrap_or("?")
                    )
                })
                .collect();
            let expected: Vec<String> = visible
                .iter()
                .map(|&i| {
                    let (on, unit, by) = &act.history[i];
                    format!("v{} {on} @{unit} by {by}", i + 1)
                })
                .collect();
            if got != expected || !top_codes(&r.body).is_empty() {
                rep.fail(
                    c,
                    &path,
                    format!(
                        "got {got:?}, oracle says {expected:?} (errors {:?})",
                        top_codes(&r.body)
                    ),
                );
            }
        }
        Probe::Indicators(unit, g, b) => {
            let r = app
                .gql(
                    &c.token,
                    Q_INDICATORS,
                    json!({ "u": [unit], "g": g, "b": b }),
                )
                .await;
            check_indicators(&mut rep, fx, c, unit, g, b, &r);
            let r = app
                .gql(&c.token, Q_TABLE, json!({ "u": [unit], "g": g, "b": b }))
                .await;
            check_table(&mut rep, fx, c, unit, g, b, &r);
            if *b == "SELF" && *g == "YEAR" {
                let r = app.gql(&c.token, Q_REBASED, json!({ "u": [unit] })).await;
                check_rebased(&mut rep, c, unit, &r);
            }
        }
    }
    rep.failures
}

/// A role without the right at all: the whole request FORBIDDEN, nothing answered.
fn forbidden_whole(rep: &mut Report<'_>, c: &Caller, path: &str, r: &Gql) {
    if !r.body["data"].is_null() || !top_codes(&r.body).contains(&"FORBIDDEN".to_owned()) {
        rep.fail(
            c,
            path,
            format!("role may not read it: expected FORBIDDEN, got {}", r.body),
        );
    }
}

fn check_phone(
    rep: &mut Report<'_>,
    c: &Caller,
    path: &str,
    readable: bool,
    phone: &Value,
    codes: &[String],
) {
    if readable {
        if !phone.is_string() || !codes.is_empty() {
            rep.fail(
                c,
                path,
                format!("readable by the oracle, got {phone} (errors {codes:?})"),
            );
        }
    } else if !phone.is_null() || !codes.contains(&"FORBIDDEN".to_owned()) {
        rep.fail(
            c,
            path,
            format!("personal data: expected null + FORBIDDEN, got {phone} (errors {codes:?})"),
        );
    }
}

fn by_id(
    rep: &mut Report<'_>,
    c: &Caller,
    path: &str,
    visible: bool,
    got: &Value,
    codes: &[String],
    forbidden_ok: bool,
) {
    if visible {
        if got["id"].is_null() {
            rep.fail(
                c,
                path,
                format!("visible by the oracle, got null (errors {codes:?})"),
            );
        }
    } else {
        let refused = codes
            .iter()
            .any(|c| c == "NOT_FOUND" || (forbidden_ok && c == "FORBIDDEN"));
        if !got.is_null() || !refused {
            rep.fail(
                c,
                path,
                format!(
                    "outside the area: expected null + NOT_FOUND, got {got} (errors {codes:?})"
                ),
            );
        }
    }
}

fn periods(g: &str) -> Vec<(String, NaiveDate, NaiveDate)> {
    let mut out = Vec::new();
    for year in [2024, 2025] {
        if g == "YEAR" {
            out.push((
                year.to_string(),
                NaiveDate::from_ymd_opt(year, 1, 1).unwrap(),
                NaiveDate::from_ymd_opt(year, 12, 31).unwrap(),
            ));
        } else {
            for month in 1..=12 {
                let start = NaiveDate::from_ymd_opt(year, month, 1).unwrap();
                let end = start
                    .checked_add_months(chrono::Months::new(1))
                    .unwrap()
                    .pred_opt()
                    .unwrap();
                out.push((format!("{year}-{month:02}"), start, end));
            }
        }
    }
    out
}

#[allow(clippy::too_many_arguments)]
const Q_TABLE: &str = "query($u: [String!]!, $g: PeriodGranularity!, $b: UnitBreakdown!) { indicatorTable(codes: [\"CNS05\", \"CNS02\"], unitCodes: $u, from: \"2024-01-01\", to: \"2025-12-31\", granularity: $g, breakdown: $b) { codes units periods values numerators denominators statuses targets } }";

const Q_REBASED: &str = "query($u: [String!]!) { indicators(codes: [\"CNS05\"], unitCodes: $u, from: \"2024-01-01\", to: \"2025-12-31\", granularity: YEAR, mode: REBASED) { unit { code } value numerator status } }";

/// `indicatorTable` answers as `indicators` does: refused where the request is, and an entry
/// whose unit is not in the area on every day of its period that the unit existed holds
/// nothing (null numbers, NO_DATA).
#[allow(clippy::too_many_arguments)]
fn check_table(rep: &mut Report<'_>, fx: &Fx, c: &Caller, unit: &str, g: &str, b: &str, r: &Gql) {
    let path = format!("indicatorTable({unit}, {g}, {b})");
    let may_read = matches!(c.role, Role::Admin | Role::UnitAdmin | Role::Viewer);
    let in_area = c.role == Role::Admin
        || under_some_day(unit, &c.units, date("2024-01-01"), date("2025-12-31"));
    let t = &r.body["data"]["indicatorTable"];
    if !may_read || !in_area {
        if !t.is_null() || !top_codes(&r.body).contains(&"FORBIDDEN".to_owned()) {
            rep.fail(c, &path, format!("expected FORBIDDEN, got {}", r.body));
        }
        return;
    }
    let list = |k: &str| t[k].as_array().cloned().unwrap_or_default();
    let (codes, units, labels) = (list("codes"), list("units"), list("periods"));
    let spans = periods(g);
    let mut leaked = Vec::new();
    let mut wrong = Vec::new();
    for (ci, code) in codes.iter().enumerate() {
        for (ui, u) in units.iter().enumerate() {
            for (pi, label) in labels.iter().enumerate() {
                let i = (ci * units.len() + ui) * labels.len() + pi;
                let (Some(code), Some(u), Some((_, start, end))) = (
                    code.as_str(),
                    u.as_str(),
                    spans.iter().find(|p| label == p.0.as_str()),
                ) else {
                    rep.fail(c, &path, format!("unexpected entry {code} {u} {label}"));
                    continue;
                };
                let cell = format!("{code} {u} {label}");
                let readable =
                    c.role == Role::Admin || under_every_existing_day(u, &c.units, *start, *end);
                if !readable {
                    let empty = ["values", "numerators", "denominators", "targets"]
                        .iter()
                        .all(|k| t[*k][i].is_null());
                    if !empty || t["statuses"][i] != "NO_DATA" {
                        leaked.push(cell);
                    }
                } else if b == "SELF" && exists_every_day(u, *start, *end) {
                    let want = if code == "CNS05" {
                        fx.cns05(u, *start, *end)
                    } else {
                        fx.cns02(u, *end)
                    } as f64;
                    if !t["values"][i]
                        .as_f64()
                        .map_or(want == 0.0, |v| (v - want).abs() < 1e-9)
                    {
                        wrong.push(format!(
                            "{cell}: got {}, oracle says {want}",
                            t["values"][i]
                        ));
                    }
                }
            }
        }
    }
    if !leaked.is_empty() {
        rep.fail(
            c,
            &path,
            format!("entries outside the area hold data: {leaked:?}"),
        );
    }
    if !wrong.is_empty() {
        rep.fail(
            c,
            &path,
            format!("entries differ from the oracle: {wrong:?}"),
        );
    }
}

/// Re-based values are today's units: none for a unit that is gone, readable where today's
/// unit is in the area today.
fn check_rebased(rep: &mut Report<'_>, c: &Caller, unit: &str, r: &Gql) {
    let path = format!("indicators({unit}, REBASED)");
    let may_read = matches!(c.role, Role::Admin | Role::UnitAdmin | Role::Viewer);
    let in_area = c.role == Role::Admin
        || under_some_day(unit, &c.units, date("2024-01-01"), date("2025-12-31"));
    let rows = r.body["data"]["indicators"].as_array();
    if !may_read || !in_area {
        if rows.is_some() || !top_codes(&r.body).contains(&"FORBIDDEN".to_owned()) {
            rep.fail(c, &path, format!("expected FORBIDDEN, got {}", r.body));
        }
        return;
    }
    let Some(rows) = rows else {
        rep.fail(c, &path, format!("expected rows, got {}", r.body));
        return;
    };
    let today = (chrono::Utc::now() + chrono::Duration::hours(7)).date_naive();
    if !exists_every_day(unit, today, today) {
        if !rows.is_empty() {
            rep.fail(
                c,
                &path,
                format!("a unit that is gone has re-based rows: {rows:?}"),
            );
        }
        return;
    }
    let readable = c.role == Role::Admin || under_some_day(unit, &c.units, today, today);
    for (i, row) in rows.iter().enumerate() {
        let forbidden =
            codes_at(&r.body, &[json!("indicators"), json!(i)]).contains(&"FORBIDDEN".to_owned());
        let withheld = forbidden
            && row["value"].is_null()
            && row["numerator"].is_null()
            && row["status"] == "NO_DATA";
        if (readable && forbidden) || (!readable && !withheld) {
            rep.fail(
                c,
                &path,
                format!("readable today: {readable}, but got {row} (FORBIDDEN: {forbidden})"),
            );
        }
    }
}

fn check_indicators(
    rep: &mut Report<'_>,
    fx: &Fx,
    c: &Caller,
    unit: &str,
    g: &str,
    b: &str,
    r: &Gql,
) {
    let path = format!("indicators({unit}, {g}, {b})");
    let from = date("2024-01-01");
    let to = date("2025-12-31");
    let may_read = matches!(c.role, Role::Admin | Role::UnitAdmin | Role::Viewer);
    let in_area = c.role == Role::Admin || under_some_day(unit, &c.units, from, to);
    let rows = r.body["data"]["indicators"].as_array();
    if !may_read || !in_area {
        if rows.is_some() || !top_codes(&r.body).contains(&"FORBIDDEN".to_owned()) {
            let why = if may_read {
                "unit not in the area on any day"
            } else {
                "role may not read indicators"
            };
            rep.fail(
                c,
                &path,
                format!(
                    "{why}: expected FORBIDDEN, got {} rows (errors {:?})",
                    rows.map_or(0, Vec::len),
                    top_codes(&r.body)
                ),
            );
        }
        return;
    }
    let Some(rows) = rows else {
        rep.fail(c, &path, format!("oracle says readable, got {}", r.body));
        return;
    };
    let mut seen = BTreeSet::new();
    let mut leaked = Vec::new();
    let mut hidden = Vec::new();
    let mut wrong = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        let code = row["indicator"]["code"].as_str().unwrap_or("?");
        let u = row["unit"]["code"].as_str().unwrap_or("?");
        let label = row["period"]["label"].as_str().unwrap_or("?");
        let (Some(start), Some(end)) = (
            row["period"]["start"].as_str().map(date),
            row["period"]["end"].as_str().map(date),
        ) else {
            rep.fail(c, &path, format!("row without period: {row}"));
            continue;
        };
        seen.insert((code.to_owned(), u.to_owned(), label.to_owned()));
        let cell = format!("{code} {u} {label}");
        if b == "SELF" && u != unit {
            rep.fail(c, &path, format!("row for another unit: {cell}"));
            continue;
        }
        if b == "CHILDREN" && !child_some_day(u, unit, start, end) {
            rep.fail(
                c,
                &path,
                format!("row for a unit that was not a child in the period: {cell}"),
            );
            continue;
        }
        let readable = c.role == Role::Admin || under_every_existing_day(u, &c.units, start, end);
        let forbidden =
            codes_at(&r.body, &[json!("indicators"), json!(i)]).contains(&"FORBIDDEN".to_owned());
        if readable {
            if forbidden {
                hidden.push(cell.clone());
            }
            if b == "SELF" && exists_every_day(u, start, end) {
                let want = if code == "CNS05" {
                    fx.cns05(u, start, end)
                } else {
                    fx.cns02(u, end)
                } as f64;
                let ok = match row["value"].as_f64() {
                    Some(v) => (v - want).abs() < 1e-9,
                    None => want == 0.0,
                };
                if !ok {
                    wrong.push(format!("{cell}: got {}, oracle says {want}", row["value"]));
                }
            }
        } else {
            let nulls = row["value"].is_null()
                && row["numerator"].is_null()
                && row["denominator"].is_null();
            if !nulls || row["status"] != "NO_DATA" || !forbidden {
                leaked.push(format!(
                    "{cell} (value {}, status {}, FORBIDDEN on path: {forbidden})",
                    row["value"], row["status"]
                ));
            }
        }
    }
    if b == "SELF" {
        for (label, start, end) in periods(g) {
            if exists_every_day(unit, start, end) {
                for code in ["CNS05", "CNS02"] {
                    if !seen.contains(&(code.to_owned(), unit.to_owned(), label.clone())) {
                        rep.fail(c, &path, format!("missing row {code} {unit} {label}"));
                    }
                }
            }
        }
    }
    if !leaked.is_empty() {
        rep.fail(
            c,
            &path,
            format!("values outside the area (must be null + FORBIDDEN + NO_DATA): {leaked:?}"),
        );
    }
    if !hidden.is_empty() {
        rep.fail(c, &path, format!("values in the area refused: {hidden:?}"));
    }
    if !wrong.is_empty() {
        rep.fail(
            c,
            &path,
            format!("values differ from the oracle: {wrong:?}"),
        );
    }
}

fn finish(what: &str, failures: Vec<String>) {
    if failures.is_empty() {
        return;
    }
    // A summary by path (ids and arguments left out), then every failure.
    let mut by_path: std::collections::BTreeMap<String, usize> = Default::default();
    for f in &failures {
        let path = f.split(" | ").nth(1).unwrap_or("?");
        let mut kind = String::new();
        let mut depth = 0;
        for ch in path.chars() {
            match ch {
                '(' | '{' => depth += 1,
                ')' | '}' => depth -= 1,
                _ if depth == 0 => kind.push(ch),
                _ => {}
            }
        }
        let kind = kind.split(" of ").next().unwrap_or("").trim().to_owned();
        *by_path.entry(kind).or_default() += 1;
    }
    let summary: Vec<String> = by_path.iter().map(|(k, n)| format!("{k}: {n}")).collect();
    let shown: Vec<&String> = failures.iter().take(400).collect();
    panic!(
        "{what}: {} checks disagree with the oracle ({}):\n{}",
        failures.len(),
        summary.join(", "),
        shown
            .iter()
            .map(|s| format!("  - {s}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// The fixture's hierarchy as the public catalogue gives it must be the oracle's table;
/// otherwise the failures below would be the oracle's fault.
async fn fixture_units_match(app: &TestApp) -> Vec<String> {
    let mut out = Vec::new();
    let q = "query($c: String!, $on: Date) { adminUnit(code: $c, on: $on) { code parentCode validFrom validTo } }";
    for v in TABLE.iter() {
        for day in [date("2024-05-01"), date("2025-08-01")] {
            if v.from <= day && day <= v.to {
                let r = app
                    .gql(&admin(), q, json!({ "c": v.code, "on": day.to_string() }))
                    .await;
                let got = &r.body["data"]["adminUnit"];
                if got["parentCode"].as_str() != v.parent {
                    out.push(format!("FIXTURE: unit {} on {day}: catalogue says parent {}, oracle table says {:?}", v.code, got["parentCode"], v.parent));
                }
            }
        }
    }
    out
}

#[tokio::test]
async fn every_read_path_answers_what_the_area_oracle_says() {
    let app = spawn_app().await;
    let fx = build(&app).await;
    let mut failures = fixture_units_match(&app).await;
    let callers = callers(&fx);
    let mut probes: Vec<(usize, Probe)> = Vec::new();
    for (ci, c) in callers.iter().enumerate() {
        probes.push((ci, Probe::Teams));
        probes.push((ci, Probe::TeamsNested));
        probes.push((ci, Probe::MemberCount));
        for a in [Some(true), Some(false), None] {
            probes.push((ci, Probe::Members(a)));
        }
        probes.push((ci, Probe::Activities));
        for t in 0..fx.teams.len() {
            probes.push((ci, Probe::ListsOfTeam(t)));
        }
        probes.push((ci, Probe::Audit));
        for t in 0..fx.teams.len() {
            probes.push((ci, Probe::TeamById(t)));
        }
        let ids = fx
            .teams
            .iter()
            .map(|t| t.id.clone())
            .chain(fx.members.iter().map(|m| m.id.clone()))
            .chain(fx.acts.iter().map(|a| a.id.clone()));
        for id in ids {
            probes.push((ci, Probe::Node(id)));
        }
        probes.push((ci, Probe::DataValues));
        probes.push((ci, Probe::PeriodLocks));
        probes.push((ci, Probe::Targets));
        for (a, act) in fx.acts.iter().enumerate() {
            // Every corrected activity, and two that never were.
            if !act.history.is_empty()
                || act.label.starts_with("A2(")
                || act.label.starts_with("R2(")
            {
                probes.push((ci, Probe::Versions(a)));
            }
        }
        let units: &[&'static str] =
            if matches!(c.role, Role::Admin | Role::UnitAdmin | Role::Viewer) {
                &AREAS
            } else {
                &AREAS[..1]
            };
        for unit in units {
            for g in ["YEAR", "MONTH"] {
                for b in ["SELF", "CHILDREN"] {
                    probes.push((ci, Probe::Indicators(unit, g, b)));
                }
            }
        }
    }
    let results: Vec<Vec<String>> = stream::iter(probes.iter())
        .map(|(ci, p)| probe(&app, &fx, &callers[*ci], p))
        .buffer_unordered(8)
        .collect()
        .await;
    failures.extend(results.into_iter().flatten());
    failures.sort();
    finish(
        &format!(
            "reads ({} requests, {} callers)",
            probes.len(),
            callers.len()
        ),
        failures,
    );
}

// ------------------------------------------------------------------------------------------
// Mutations: each mutation × dates before/after 2025-07-01 × units inside/outside × callers.

const H: &str = "05677-01";
const S: &str = "05692-01";
const O: &str = "05659-01";
const BEFORE: &str = "2024-05-01";
const AFTER: &str = "2025-08-01";

#[derive(Clone, Debug)]
enum Op {
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
enum Who {
    Admin,
    UnitAdmin(&'static str),
    Viewer(&'static str),
    Reporter(&'static str),
    /// The REPORTER (of this unit) that recorded the activity a correction changes.
    Submitter(&'static str),
    LeaderOfTheTeam,
    LeaderOfAnotherTeam,
}

fn ops() -> Vec<Op> {
    use Op::*;
    let mut ops = Vec::new();
    for unit in [H, S, O] {
        for on in [BEFORE, AFTER] {
            ops.push(CreateTeam { unit, on });
            ops.push(AddMember { unit, on });
            ops.push(Void { unit, on });
        }
    }
    ops.extend([
        CreateTeam {
            unit: "05677",
            on: BEFORE,
        },
        CreateTeam {
            unit: "05692",
            on: BEFORE,
        },
        CreateTeam {
            unit: "05692",
            on: AFTER,
        },
        RenameTeam {
            unit: H,
            founded: "2024-01-01",
            dissolved: None,
        },
        RenameTeam {
            unit: H,
            founded: "2022-05-01",
            dissolved: Some("2024-09-01"),
        },
        RenameTeam {
            unit: S,
            founded: AFTER,
            dissolved: None,
        },
        RenameTeam {
            unit: O,
            founded: "2022-05-01",
            dissolved: None,
        },
        MoveFounding {
            unit: H,
            from: "2024-01-01",
            to: AFTER,
        },
        MoveFounding {
            unit: H,
            from: AFTER,
            to: "2025-09-01",
        },
        MoveFounding {
            unit: H,
            from: "2024-01-01",
            to: "2023-01-01",
        },
        MoveFounding {
            unit: H,
            from: AFTER,
            to: "2024-01-01",
        },
        MoveFounding {
            unit: S,
            from: "2024-01-01",
            to: AFTER,
        },
        MoveFounding {
            unit: O,
            from: "2024-01-01",
            to: AFTER,
        },
        DissolveTeam {
            unit: H,
            founded: "2024-01-01",
            on: "2025-03-01",
        },
        DissolveTeam {
            unit: H,
            founded: "2024-01-01",
            on: AFTER,
        },
        DissolveTeam {
            unit: H,
            founded: AFTER,
            on: "2025-10-01",
        },
        DissolveTeam {
            unit: O,
            founded: "2024-01-01",
            on: AFTER,
        },
        UpdateMembership {
            unit: H,
            started: BEFORE,
        },
        UpdateMembership {
            unit: H,
            started: AFTER,
        },
        UpdateMembership {
            unit: S,
            started: BEFORE,
        },
        UpdateMembership {
            unit: O,
            started: AFTER,
        },
        EndMembership {
            unit: H,
            started: "2024-01-01",
            on: "2025-03-01",
        },
        EndMembership {
            unit: H,
            started: "2024-01-01",
            on: AFTER,
        },
        EndMembership {
            unit: H,
            started: AFTER,
            on: "2025-10-01",
        },
        EndMembership {
            unit: O,
            started: "2024-01-01",
            on: AFTER,
        },
    ]);
    for (unit, before, after) in [(H, "05677", "05692"), (O, "05659", "05710")] {
        for (on, commune) in [(BEFORE, before), (AFTER, after)] {
            ops.push(Submit { unit, on, at: None });
            ops.push(Submit {
                unit,
                on,
                at: Some(commune),
            });
            ops.push(SubmitBatch { unit, on, at: None });
            ops.push(SubmitBatch {
                unit,
                on,
                at: Some(commune),
            });
        }
    }
    for on in [BEFORE, AFTER] {
        ops.push(Submit {
            unit: S,
            on,
            at: None,
        });
        ops.push(SubmitBatch {
            unit: S,
            on,
            at: None,
        });
    }
    let correct = |unit, from, to| Correct { unit, from, to };
    ops.extend([
        // Moved across 2025-07-01 at the hamlet that moves, both ways.
        correct(H, (H, BEFORE), Some((H, AFTER))),
        correct(H, (H, AFTER), Some((H, BEFORE))),
        // From the old commune to the new one, and the unit raised or lowered on one day.
        correct(H, ("05677", BEFORE), Some(("05692", AFTER))),
        correct(H, (H, BEFORE), Some(("05677", BEFORE))),
        correct(H, ("05692", AFTER), Some((H, AFTER))),
        // Only the title: on either side, and recorded above the team.
        correct(H, (H, BEFORE), None),
        correct(H, (H, AFTER), None),
        correct(H, ("05677", BEFORE), None),
        // The hamlet that stays, and the outsider, moved across.
        correct(S, (S, BEFORE), Some((S, AFTER))),
        correct(O, (O, AFTER), Some((O, BEFORE))),
        correct(O, ("05659", BEFORE), Some(("05710", AFTER))),
    ]);
    for (unit, start, end) in [
        (H, "2024-05-01", "2024-05-31"),
        (H, "2025-08-01", "2025-08-31"),
        (H, "2025-04-01", "2025-06-30"),
        (H, "2025-07-01", "2025-09-30"),
        (H, "2024-01-01", "2024-12-31"),
        (H, "2025-01-01", "2025-12-31"),
        ("05677", "2025-04-01", "2025-06-30"),
        ("05677", "2024-01-01", "2024-12-31"),
        ("05692", "2024-01-01", "2024-12-31"),
        ("05692", "2025-01-01", "2025-12-31"),
        ("05692", "2025-07-01", "2025-07-31"),
        (S, "2025-01-01", "2025-12-31"),
        (S, "2024-10-01", "2024-12-31"),
        (O, "2025-01-01", "2025-12-31"),
        (O, "2025-10-01", "2025-10-31"),
        ("05710", "2025-07-01", "2025-09-30"),
        ("169", "2025-01-01", "2025-03-31"),
        ("19", "2025-01-01", "2025-12-31"),
    ] {
        assert!(
            exists_every_day(unit, date(start), date(end)),
            "{unit} {start}"
        );
        ops.push(SubmitValues { unit, start, end });
    }
    ops
}

fn whos(op: &Op) -> Vec<Who> {
    let mut out = vec![Who::Admin];
    out.extend(["169", "05677", "05692", "05677-01", "19", "05710", "164"].map(Who::UnitAdmin));
    out.push(Who::Viewer("19"));
    if matches!(
        op,
        Op::Submit { .. } | Op::SubmitBatch { .. } | Op::Correct { .. } | Op::SubmitValues { .. }
    ) {
        out.extend(["169", "05677", "05692", "05677-01", "19", "05710"].map(Who::Reporter));
    } else {
        out.push(Who::Reporter("19"));
    }
    if let Op::Correct {
        from: (place, on), ..
    } = op
    {
        // The reporters that could record the activity.
        for a in ["169", "05677", "05692", "05677-01", "19", "05710", "164"] {
            if under(place, &[a.to_owned()], date(on)) {
                out.push(Who::Submitter(a));
            }
        }
    }
    if !matches!(op, Op::SubmitValues { .. }) {
        out.push(Who::LeaderOfTheTeam);
    }
    out.push(Who::LeaderOfAnotherTeam);
    out
}

/// The oracle for writes.
fn may(who: &Who, op: &Op) -> bool {
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

fn who_label(who: &Who) -> String {
    match who {
        Who::Admin => "ADMIN".into(),
        Who::UnitAdmin(a) => format!("UNIT_ADMIN[{a}]"),
        Who::Viewer(a) => format!("VIEWER[{a}]"),
        Who::Reporter(a) => format!("REPORTER[{a}]"),
        Who::Submitter(a) => format!("REPORTER[{a}] (its submitter)"),
        Who::LeaderOfTheTeam => "TEAM_LEADER[the team]".into(),
        Who::LeaderOfAnotherTeam => "TEAM_LEADER[another team]".into(),
    }
}

fn alpha(mut n: usize) -> String {
    let mut s = String::from("Ca");
    loop {
        s.push((b'a' + (n % 26) as u8) as char);
        n /= 26;
        if n == 0 {
            return s;
        }
    }
}

fn submitter_token(a: &str) -> String {
    mint_token(
        Role::Reporter,
        &[a.to_string()],
        &[],
        &format!("s-{a}"),
        "test-app",
    )
}

async fn admin_ok(app: &TestApp, q: &str, input: Value, path: &str) -> String {
    let r = app.gql(&admin(), q, json!({ "i": input })).await;
    payload_id(&r, path)
}

async fn fresh_team(app: &TestApp, unit: &str, founded: &str, n: usize) -> String {
    admin_ok(
        app,
        CREATE,
        json!({ "unitCode": unit, "name": format!("Tổ ca {n}"), "foundedOn": founded, "code": format!("ORC-{n}") }),
        "createTeam.team.id",
    )
    .await
}

async fn fresh_member(app: &TestApp, team: &str, started: &str, n: usize) -> String {
    admin_ok(app, ADD, json!({ "teamId": team, "person": { "fullName": format!("Người {}", alpha(n)) }, "role": "MEMBER", "affiliation": "VOLUNTEER", "startedOn": started }), "addMember.membership.id").await
}

enum Outcome {
    Allowed,
    Refused,
    /// Refused, but with another code than FORBIDDEN or NOT_FOUND (e.g. VALIDATION).
    RefusedAs(Vec<String>),
    Other(String),
}

fn outcome(r: &Gql, field: &str, object: &str) -> Outcome {
    let refusal = |c: &String| c == "FORBIDDEN" || c == "NOT_FOUND";
    let top = r.error_codes();
    if !top.is_empty() {
        return if top.iter().all(refusal) && r.body["data"][field][object].is_null() {
            Outcome::Refused
        } else {
            Outcome::Other(r.body.to_string())
        };
    }
    let user = r.user_error_codes(field);
    if user.is_empty() && r.body["data"][field][object].is_object() {
        Outcome::Allowed
    } else if !user.is_empty()
        && user.iter().all(refusal)
        && r.body["data"][field][object].is_null()
    {
        Outcome::Refused
    } else if !user.is_empty() && r.body["data"][field][object].is_null() {
        Outcome::RefusedAs(user)
    } else {
        Outcome::Other(r.body.to_string())
    }
}

const Q_TEAM_STATE: &str = "query($id: ID!) { team(id: $id) { name foundedOn status dissolvedOn members(includeEnded: true) { person { fullName } } } }";

async fn run_case(
    app: &TestApp,
    shared: &[(&'static str, String)],
    other: &str,
    n: usize,
    who: &Who,
    op: &Op,
) -> Option<String> {
    let shared_team = |unit: &str| {
        shared
            .iter()
            .find(|(u, _)| *u == unit)
            .map(|(_, id)| id.clone())
            .unwrap()
    };
    // Set up what the case acts on, as ADMIN.
    let (team, member) = match op {
        Op::CreateTeam { .. } => (None, None),
        Op::RenameTeam {
            unit,
            founded,
            dissolved,
        } => {
            let t = fresh_team(app, unit, founded, n).await;
            if let Some(on) = dissolved {
                admin_ok(
                    app,
                    DISSOLVE,
                    json!({ "teamId": t, "dissolvedOn": on }),
                    "dissolveTeam.team.id",
                )
                .await;
            }
            (Some(t), None)
        }
        Op::MoveFounding { unit, from, .. } => (Some(fresh_team(app, unit, from, n).await), None),
        Op::DissolveTeam { unit, founded, .. } => {
            (Some(fresh_team(app, unit, founded, n).await), None)
        }
        Op::AddMember { unit, .. } | Op::Submit { unit, .. } | Op::SubmitBatch { unit, .. } => {
            (Some(shared_team(unit)), None)
        }
        // The activity stands where a membership would.
        Op::Void { unit, on } => {
            let t = shared_team(unit);
            let a = app.submit(&t, "TRAINING", on, json!({})).await;
            (Some(t), Some(a))
        }
        Op::UpdateMembership { unit, started } | Op::EndMembership { unit, started, .. } => {
            let t = shared_team(unit);
            let m = fresh_member(app, &t, started, n).await;
            (Some(t), Some(m))
        }
        // The activity stands where a membership would, recorded by its submitter.
        Op::Correct {
            unit,
            from: (place, on),
            ..
        } => {
            let t = shared_team(unit);
            let token = match who {
                Who::Submitter(a) => submitter_token(a),
                _ => admin(),
            };
            let mut i = json!({ "idempotencyKey": uuid::Uuid::new_v4().to_string(), "teamId": t, "kind": "TRAINING", "occurredOn": on, "title": format!("Ca gốc {n}") });
            if place != unit {
                i["unitCode"] = json!(place);
            }
            let r = app.gql(&token, SUBMIT, json!({ "i": i })).await;
            let a = payload_id(&r, "submitActivity.activity.id");
            (Some(t), Some(a))
        }
        Op::SubmitValues { .. } => (None, None),
    };
    let token = match who {
        Who::Admin => admin(),
        Who::UnitAdmin(a) => mint_token(
            Role::UnitAdmin,
            &[a.to_string()],
            &[],
            &format!("ua-{a}"),
            "test-app",
        ),
        Who::Viewer(a) => mint_token(
            Role::Viewer,
            &[a.to_string()],
            &[],
            &format!("v-{a}"),
            "test-app",
        ),
        Who::Reporter(a) => mint_token(
            Role::Reporter,
            &[a.to_string()],
            &[],
            &format!("r-{a}"),
            "test-app",
        ),
        Who::Submitter(a) => submitter_token(a),
        Who::LeaderOfTheTeam => mint_token(
            Role::TeamLeader,
            &[],
            &team.iter().cloned().collect::<Vec<_>>(),
            "tl",
            "test-app",
        ),
        Who::LeaderOfAnotherTeam => mint_token(
            Role::TeamLeader,
            &[],
            &[other.to_owned()],
            "tl-other",
            "test-app",
        ),
    };
    let before = match &team {
        Some(t) => app
            .gql(&admin(), Q_TEAM_STATE, json!({ "id": t }))
            .await
            .body["data"]["team"]
            .clone(),
        None => Value::Null,
    };
    let team_name = format!("Tổ ca {n} mới");
    let person = format!("Người {}", alpha(n + 100_000));
    let title = format!("Ca kiểm thử {n}");
    let (q, input, field, object) = match op {
        Op::CreateTeam { unit, on } => (
            CREATE,
            json!({ "unitCode": unit, "name": team_name, "foundedOn": on, "code": format!("ORC-{n}-NEW") }),
            "createTeam",
            "team",
        ),
        Op::RenameTeam { .. } => (
            UPDATE_TEAM,
            json!({ "teamId": team, "name": team_name }),
            "updateTeam",
            "team",
        ),
        Op::MoveFounding { to, .. } => (
            UPDATE_TEAM,
            json!({ "teamId": team, "foundedOn": to }),
            "updateTeam",
            "team",
        ),
        Op::DissolveTeam { on, .. } => (
            DISSOLVE,
            json!({ "teamId": team, "dissolvedOn": on }),
            "dissolveTeam",
            "team",
        ),
        Op::AddMember { on, .. } => (
            ADD,
            json!({ "teamId": team, "person": { "fullName": person }, "role": "MEMBER", "affiliation": "VOLUNTEER", "startedOn": on }),
            "addMember",
            "membership",
        ),
        Op::UpdateMembership { .. } => (
            UPDATE_MEMBER,
            json!({ "membershipId": member, "affiliation": "TEACHER" }),
            "updateMembership",
            "membership",
        ),
        Op::EndMembership { on, .. } => (
            END_MEMBER,
            json!({ "membershipId": member, "endedOn": on }),
            "endMembership",
            "membership",
        ),
        Op::Submit { on, at, .. } => {
            let mut i = json!({ "idempotencyKey": uuid::Uuid::new_v4().to_string(), "teamId": team, "kind": "TRAINING", "occurredOn": on, "title": title });
            if let Some(at) = at {
                i["unitCode"] = json!(at);
            }
            (SUBMIT, i, "submitActivity", "activity")
        }
        Op::SubmitBatch { on, at, .. } => {
            let mut i = json!({ "idempotencyKey": uuid::Uuid::new_v4().to_string(), "teamId": team, "kind": "TRAINING", "occurredOn": on, "title": title });
            if let Some(at) = at {
                i["unitCode"] = json!(at);
            }
            (
                SUBMIT_BATCH,
                json!({ "items": [i] }),
                "submitActivity",
                "activity",
            )
        }
        Op::Void { .. } => (
            VOID,
            json!({ "activityId": member, "reason": "ghi nhầm" }),
            "voidActivity",
            "activity",
        ),
        Op::Correct { to, .. } => {
            let mut i = json!({ "activityId": member, "reason": "ghi nhầm", "title": title });
            if let Some((place, on)) = to {
                i["unitCode"] = json!(place);
                i["occurredOn"] = json!(on);
            }
            (CORRECT, i, "correctActivity", "activity")
        }
        Op::SubmitValues { unit, start, end } => (
            SUBMIT_VALUES,
            json!({ "idempotencyKey": uuid::Uuid::new_v4().to_string(), "sourceSystem": format!("ORC-{n}"), "values": [{ "element": "POPULATION", "unitCode": unit, "periodStart": start, "periodEnd": end, "value": 7.0 }] }),
            "submitDataValues",
            "value",
        ),
    };
    let r = app.gql(&token, q, json!({ "i": input })).await;
    // A batch's one result is judged as a single submission's payload.
    let r = if matches!(op, Op::SubmitBatch { .. }) {
        Gql {
            status: r.status,
            body: json!({
                "data": { "submitActivity": r.body["data"]["submitActivities"]["results"][0] },
                "errors": r.body["errors"],
            }),
        }
    } else if matches!(op, Op::SubmitValues { .. }) {
        // The one figure stands for the payload's object.
        let p = &r.body["data"]["submitDataValues"];
        Gql {
            status: r.status,
            body: json!({
                "data": if p.is_null() { Value::Null } else { json!({ "submitDataValues": { "value": p["values"][0], "userErrors": p["userErrors"] } }) },
                "errors": r.body["errors"],
            }),
        }
    } else {
        r
    };
    let expected = may(who, op);
    let label = format!("{} | {op:?}", who_label(who));
    let got = outcome(&r, field, object);
    let verdict = match (&got, expected) {
        (Outcome::Allowed, true) | (Outcome::Refused, false) => None,
        (Outcome::Allowed, false) => Some(format!(
            "{label} | oracle: refused, service: ALLOWED (a write outside the area)"
        )),
        (Outcome::Refused, true) => Some(format!(
            "{label} | oracle: allowed, service: refused {:?} {:?}",
            r.error_codes(),
            r.user_error_codes(field)
        )),
        (Outcome::RefusedAs(codes), false) => Some(format!(
            "{label} | refused, but as {codes:?} instead of FORBIDDEN or NOT_FOUND: {}",
            r.body
        )),
        (Outcome::RefusedAs(codes), true) => Some(format!(
            "{label} | oracle: allowed, service: refused as {codes:?}: {}",
            r.body
        )),
        (Outcome::Other(body), _) => Some(format!(
            "{label} | oracle: {}, service answered neither: {body}",
            if expected { "allowed" } else { "refused" }
        )),
    };
    if verdict.is_some() || !matches!(got, Outcome::Refused) {
        return verdict;
    }
    // Refused: nothing changed.
    let unchanged = match op {
        Op::CreateTeam { .. } => {
            let r = app.gql(&admin(), "query($s: String) { teams(search: $s, first: 100) { edges { node { name } } } }", json!({ "s": team_name })).await;
            !r.body["data"]["teams"]["edges"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["node"]["name"] == team_name.as_str())
        }
        Op::Submit { .. } | Op::SubmitBatch { .. } => {
            let r = app.gql(&admin(), "query($t: ID, $s: String) { activities(teamId: $t, search: $s, first: 100) { edges { node { title } } } }", json!({ "t": team, "s": title })).await;
            !r.body["data"]["activities"]["edges"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["node"]["title"] == title.as_str())
        }
        Op::AddMember { .. } => {
            let after = app
                .gql(&admin(), Q_TEAM_STATE, json!({ "id": team }))
                .await
                .body["data"]["team"]
                .clone();
            after["members"]
                .as_array()
                .is_some_and(|a| !a.iter().any(|m| m["person"]["fullName"] == person.as_str()))
        }
        Op::Void { .. } => {
            let r = app
                .gql(
                    &admin(),
                    "query($id: ID!) { node(id: $id) { ... on Activity { status } } }",
                    json!({ "id": member }),
                )
                .await;
            r.body["data"]["node"]["status"] == "RECORDED"
        }
        Op::Correct {
            from: (place, on), ..
        } => {
            let r = app
                .gql(
                    &admin(),
                    "query($id: ID!) { node(id: $id) { ... on Activity { title occurredOn unitCode } } activityVersions(activityId: $id) { version } }",
                    json!({ "id": member }),
                )
                .await;
            let a = &r.body["data"]["node"];
            a["title"] == format!("Ca gốc {n}").as_str()
                && a["occurredOn"] == *on
                && a["unitCode"] == *place
                && r.body["data"]["activityVersions"]
                    .as_array()
                    .is_some_and(Vec::is_empty)
        }
        Op::SubmitValues { .. } => {
            let r = app
                .gql(
                    &admin(),
                    "query($s: String) { dataValues(sourceSystem: $s) { totalCount } }",
                    json!({ "s": format!("ORC-{n}") }),
                )
                .await;
            r.body["data"]["dataValues"]["totalCount"] == 0
        }
        Op::UpdateMembership { .. } | Op::EndMembership { .. } => {
            let r = app.gql(&admin(), "query($id: ID!) { node(id: $id) { ... on Membership { affiliation endedOn } } }", json!({ "id": member })).await;
            r.body["data"]["node"]["affiliation"] == "VOLUNTEER"
                && r.body["data"]["node"]["endedOn"].is_null()
        }
        _ => {
            let after = app
                .gql(&admin(), Q_TEAM_STATE, json!({ "id": team }))
                .await
                .body["data"]["team"]
                .clone();
            after == before
        }
    };
    (!unchanged).then(|| format!("{label} | refused, but the database changed"))
}

#[tokio::test]
async fn every_mutation_is_allowed_exactly_where_the_area_oracle_says() {
    let app = spawn_app().await;
    let mut shared = Vec::new();
    for unit in [H, S, O] {
        shared.push((
            unit,
            fresh_team(&app, unit, "2022-05-01", shared.len()).await,
        ));
    }
    let other = fresh_team(&app, S, "2022-05-01", 99).await;
    let mut cases = Vec::new();
    for op in ops() {
        for who in whos(&op) {
            cases.push((cases.len() + 1000, who, op.clone()));
        }
    }
    let failures: Vec<String> = stream::iter(cases.iter())
        .map(|(n, who, op)| run_case(&app, &shared, &other, *n, who, op))
        .buffer_unordered(8)
        .filter_map(|f| async move { f })
        .collect()
        .await;
    // Refusals answered with another code are one finding per mutation and code: group them.
    let (wrong_code, mut failures): (Vec<String>, Vec<String>) = failures
        .into_iter()
        .partition(|f| f.contains("refused, but as"));
    let mut groups: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for f in wrong_code {
        let op = f.split(" | ").nth(1).unwrap_or("?");
        let kind = op.split(' ').next().unwrap_or("?");
        let codes = f
            .split("refused, but as ")
            .nth(1)
            .and_then(|r| r.split(" instead").next())
            .unwrap_or("?");
        groups
            .entry(format!("{kind} refused as {codes}"))
            .or_default()
            .push(f);
    }
    for (what, mut cases) in groups {
        cases.sort();
        failures.push(format!(
            "{what} instead of FORBIDDEN or NOT_FOUND in {} cases (callers outside the area), e.g. {}",
            cases.len(),
            cases[0]
        ));
    }
    failures.sort();
    finish(&format!("mutations ({} cases)", cases.len()), failures);
}

// ------------------------------------------------------------------------------------------
// Locks: lockPeriod and unlockPeriod of a unit's month, on either side of 2025-07-01.

/// `lockPeriod` (or, with `unlock`, `unlockPeriod` of a lock ADMIN set) of `unit` in `month`.
#[derive(Clone, Debug)]
struct LockOp {
    unit: &'static str,
    month: &'static str,
    unlock: bool,
}

fn lock_ops() -> Vec<LockOp> {
    let mut out = Vec::new();
    for (unlock, before, after) in [(false, "2024-11", "2025-11"), (true, "2024-12", "2025-12")] {
        for (unit, month) in [
            (H, before),
            (H, after),
            ("05677", before),
            ("05692", before),
            ("05692", after),
            (S, before),
            (S, after),
            (O, before),
            (O, after),
            ("169", before),
            ("19", after),
        ] {
            out.push(LockOp {
                unit,
                month,
                unlock,
            });
        }
    }
    // The last month of a commune that ceases, the first of one that begins.
    out.extend([
        LockOp {
            unit: "05677",
            month: "2025-06",
            unlock: false,
        },
        LockOp {
            unit: "05710",
            month: "2025-07",
            unlock: false,
        },
        LockOp {
            unit: "164",
            month: "2025-05",
            unlock: true,
        },
        LockOp {
            unit: "05710",
            month: "2025-08",
            unlock: true,
        },
    ]);
    out
}

/// The oracle for locks: ADMIN, or UNIT_ADMIN whose area holds the unit on every day of the
/// month on which the unit exists.
fn may_lock(who: &Who, op: &LockOp) -> bool {
    let (start, end) = month_span(op.month);
    assert!(exists(op.unit, start), "{op:?}");
    match who {
        Who::Admin => true,
        Who::UnitAdmin(a) => under_every_existing_day(op.unit, &[a.to_string()], start, end),
        _ => false,
    }
}

const Q_LOCKED: &str = "query($u: String, $m: String) { periodLocks(under: $u, from: $m, to: $m) { edges { node { unitCode month } } } }";

/// Whether `unit` itself has a lock of `month`, as ADMIN reads it.
async fn locked(app: &TestApp, unit: &str, month: &str) -> bool {
    let r = app
        .gql(&admin(), Q_LOCKED, json!({ "u": unit, "m": month }))
        .await;
    r.body["data"]["periodLocks"]["edges"]
        .as_array()
        .unwrap_or_else(|| panic!("{}", r.body))
        .iter()
        .any(|e| e["node"]["unitCode"] == unit && e["node"]["month"] == month)
}

async fn admin_lock(app: &TestApp, op: &LockOp, unlock: bool) {
    let (q, field) = if unlock {
        (UNLOCK, "unlockPeriod")
    } else {
        (LOCK, "lockPeriod")
    };
    let r = app
        .gql(
            &admin(),
            q,
            json!({ "i": { "unitCode": op.unit, "month": op.month, "reason": "kiểm thử" } }),
        )
        .await;
    assert!(
        r.body["data"][field]["lock"].is_object(),
        "{op:?}: {}",
        r.body
    );
}

/// Every caller of one operation, in turn (the lock is set again, or removed, after each
/// caller allowed to change it).
async fn run_lock_op(app: &TestApp, other: &str, op: &LockOp) -> Vec<String> {
    let mut failures = Vec::new();
    if op.unlock {
        admin_lock(app, op, false).await;
    }
    let mut whos = vec![Who::Admin];
    whos.extend(["169", "05677", "05692", "05677-01", "19", "05710", "164"].map(Who::UnitAdmin));
    whos.extend([
        Who::Viewer("19"),
        Who::Reporter("19"),
        Who::LeaderOfAnotherTeam,
    ]);
    for who in &whos {
        let token = match who {
            Who::Admin => admin(),
            Who::UnitAdmin(a) => mint_token(
                Role::UnitAdmin,
                &[a.to_string()],
                &[],
                &format!("ua-{a}"),
                "test-app",
            ),
            Who::Viewer(a) => mint_token(
                Role::Viewer,
                &[a.to_string()],
                &[],
                &format!("v-{a}"),
                "test-app",
            ),
            Who::Reporter(a) => mint_token(
                Role::Reporter,
                &[a.to_string()],
                &[],
                &format!("r-{a}"),
                "test-app",
            ),
            _ => mint_token(
                Role::TeamLeader,
                &[],
                &[other.to_owned()],
                "tl-other",
                "test-app",
            ),
        };
        let (q, field) = if op.unlock {
            (UNLOCK, "unlockPeriod")
        } else {
            (LOCK, "lockPeriod")
        };
        let r = app
            .gql(
                &token,
                q,
                json!({ "i": { "unitCode": op.unit, "month": op.month, "reason": "kiểm thử" } }),
            )
            .await;
        let expected = may_lock(who, op);
        let label = format!("{} | {op:?}", who_label(who));
        match (outcome(&r, field, "lock"), expected) {
            (Outcome::Allowed, true) => {
                // Back as it was for the next caller.
                admin_lock(app, op, !op.unlock).await;
                continue;
            }
            (Outcome::Refused, false) => {}
            (Outcome::Allowed, false) => {
                failures.push(format!(
                    "{label} | oracle: refused, service: ALLOWED (a write outside the area)"
                ));
                admin_lock(app, op, !op.unlock).await;
                continue;
            }
            (Outcome::Refused, true) => failures.push(format!(
                "{label} | oracle: allowed, service: refused {:?} {:?}",
                r.error_codes(),
                r.user_error_codes(field)
            )),
            (Outcome::RefusedAs(codes), _) => failures.push(format!(
                "{label} | oracle: {}, service: refused as {codes:?}: {}",
                if expected { "allowed" } else { "refused" },
                r.body
            )),
            (Outcome::Other(body), _) => failures.push(format!(
                "{label} | oracle: {}, service answered neither: {body}",
                if expected { "allowed" } else { "refused" }
            )),
        }
        // Refused: the lock is as it was.
        if locked(app, op.unit, op.month).await != op.unlock {
            failures.push(format!("{label} | refused, but the database changed"));
        }
    }
    failures
}

#[tokio::test]
async fn every_lock_and_unlock_is_allowed_exactly_where_the_area_oracle_says() {
    let app = spawn_app().await;
    let other = fresh_team(&app, S, "2022-05-01", 99).await;
    let ops = lock_ops();
    let results: Vec<Vec<String>> = stream::iter(ops.iter())
        .map(|op| run_lock_op(&app, &other, op))
        .buffer_unordered(4)
        .collect()
        .await;
    let mut failures: Vec<String> = results.into_iter().flatten().collect();
    failures.sort();
    finish(&format!("locks ({} operations)", ops.len()), failures);
}

//! The fixture: the data set the tests share (teams, members, activities, figures, targets,
//! locks, audit entries), built through the API as ADMIN and recorded as the oracle knows it,
//! and the callers' tokens.
use super::model::{Caller, Role, month_span};
use chrono::NaiveDate;
use cnscd_api::auth::mint;
use cnscd_tests::*;
use serde_json::json;

// ------------------------------------------------------------------------------------------
// The fixture, as the oracle knows it.

pub(super) struct FTeam {
    pub(super) label: String,
    pub(super) id: String,
    pub(super) unit: &'static str,
    pub(super) founded: NaiveDate,
    pub(super) dissolved: Option<NaiveDate>,
}

pub(super) struct FMember {
    pub(super) label: String,
    pub(super) id: String,
    pub(super) team: usize,
    pub(super) started: NaiveDate,
    pub(super) ended: Option<NaiveDate>,
}

pub(super) struct FAct {
    pub(super) label: String,
    pub(super) id: String,
    pub(super) team: usize,
    pub(super) unit: &'static str,
    pub(super) on: NaiveDate,
    pub(super) kind: &'static str,
    pub(super) sub: String,
    pub(super) client: String,
    /// The versions kept by corrections, oldest first: the day and unit the activity had,
    /// and the subject that changed it.
    pub(super) history: Vec<(NaiveDate, &'static str, String)>,
}

pub(super) struct FAudit {
    pub(super) action: String,
    /// The kind of row changed, as the entry names it (`Team`, `DataValue`, ...).
    pub(super) kind: String,
    pub(super) entity: String,
    /// The changed row's unit when the change was made (none for an indicator definition).
    pub(super) unit: Option<&'static str>,
    pub(super) day: NaiveDate,
    /// The changed row's unit now: a correction that moves an activity to another unit moves
    /// it for the activity's earlier entries.
    pub(super) now_unit: Option<&'static str>,
    /// The days the changed row concerns now, where the fixture knows them (activities,
    /// figures, locks, targets): a correction that moves an activity moves them for its
    /// earlier entries.
    pub(super) concerns: Option<(NaiveDate, NaiveDate)>,
    /// For an activity's entry: the activity (fixture index) and the day and unit it had in
    /// the entry's `before` and `after` (each a version of it, read by the version rule).
    pub(super) states: Option<(usize, [Option<State>; 2])>,
}

/// The day and unit an activity had in a version of it.
pub(super) type State = (NaiveDate, &'static str);

/// A reported figure (`dataValues`), keyed as `element:unit:start:end:source`.
pub(super) struct FValue {
    pub(super) key: String,
    pub(super) label: String,
    pub(super) unit: &'static str,
    pub(super) start: NaiveDate,
    pub(super) end: NaiveDate,
    pub(super) sub: String,
    pub(super) client: String,
}

/// An indicator target (`indicatorTargets`), keyed as `indicator:unit:start:end`.
pub(super) struct FTarget {
    pub(super) key: String,
    pub(super) label: String,
    pub(super) unit: &'static str,
    pub(super) start: NaiveDate,
    pub(super) end: NaiveDate,
    /// Cleared since (its entries stay).
    pub(super) cleared: bool,
}

/// A period lock (`periodLocks`), keyed as `unit:YYYY-MM`.
pub(super) struct FLock {
    pub(super) key: String,
    pub(super) unit: &'static str,
    pub(super) start: NaiveDate,
    pub(super) end: NaiveDate,
}

#[derive(Default)]
pub(super) struct Fx {
    pub(super) teams: Vec<FTeam>,
    pub(super) members: Vec<FMember>,
    pub(super) acts: Vec<FAct>,
    pub(super) audits: Vec<FAudit>,
    pub(super) values: Vec<FValue>,
    pub(super) locks: Vec<FLock>,
    pub(super) targets: Vec<FTarget>,
    /// Codes of the indicator definitions the fixture saved.
    definitions: Vec<String>,
    last_audit: i64,
}

pub(super) const CREATE: &str = "mutation($i: CreateTeamInput!) { createTeam(input: $i) { team { id } userErrors { code message } } }";
pub(super) const UPDATE_TEAM: &str = "mutation($i: UpdateTeamInput!) { updateTeam(input: $i) { team { id } userErrors { code message } } }";
pub(super) const DISSOLVE: &str = "mutation($i: DissolveTeamInput!) { dissolveTeam(input: $i) { team { id } userErrors { code message } } }";
pub(super) const ADD: &str = "mutation($i: AddMemberInput!) { addMember(input: $i) { membership { id } userErrors { code message } } }";
pub(super) const UPDATE_MEMBER: &str = "mutation($i: UpdateMembershipInput!) { updateMembership(input: $i) { membership { id } userErrors { code message } } }";
pub(super) const END_MEMBER: &str = "mutation($i: EndMembershipInput!) { endMembership(input: $i) { membership { id } userErrors { code message } } }";
pub(super) const SUBMIT: &str = "mutation($i: SubmitActivityInput!) { submitActivity(input: $i) { activity { id } userErrors { code message } } }";
pub(super) const VOID: &str = "mutation($i: VoidActivityInput!) { voidActivity(input: $i) { activity { id } userErrors { code message } } }";
pub(super) const SUBMIT_BATCH: &str = "mutation($i: SubmitActivitiesInput!) { submitActivities(input: $i) { results { activity { id } userErrors { code message } } } }";
pub(super) const CORRECT: &str = "mutation($i: CorrectActivityInput!) { correctActivity(input: $i) { activity { id } userErrors { code message } } }";
pub(super) const SUBMIT_VALUES: &str = "mutation($i: SubmitDataValuesInput!) { submitDataValues(input: $i) { values { unitCode } userErrors { code message } } }";
pub(super) const LOCK: &str = "mutation($i: LockPeriodInput!) { lockPeriod(input: $i) { lock { unitCode month } userErrors { code message } } }";
pub(super) const UNLOCK: &str = "mutation($i: UnlockPeriodInput!) { unlockPeriod(input: $i) { lock { unitCode month } userErrors { code message } } }";
const SET_TARGET: &str = "mutation($i: SetIndicatorTargetInput!) { setIndicatorTarget(input: $i) { indicator { code } userErrors { code message } } }";
const SAVE_DEFINITION: &str = "mutation($i: SaveIndicatorDefinitionInput!) { saveIndicatorDefinition(input: $i) { indicator { code } userErrors { code message } } }";

pub(super) fn payload_id(r: &Gql, path: &str) -> String {
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

    pub(super) fn label(&self, id: &str) -> String {
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
}

/// Teams, memberships, activities and audit entries on both sides of 2025-07-01.
pub(super) async fn build(app: &TestApp) -> Fx {
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

// ------------------------------------------------------------------------------------------
// Callers.

pub(super) fn mint_token(
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
pub(super) const AREAS: [&str; 6] = ["169", "05677", "05692", "05677-01", "19", "05710"];

pub(super) fn callers(fx: &Fx) -> Vec<Caller> {
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

pub(super) fn alpha(mut n: usize) -> String {
    let mut s = String::from("Ca");
    loop {
        s.push((b'a' + (n % 26) as u8) as char);
        n /= 26;
        if n == 0 {
            return s;
        }
    }
}

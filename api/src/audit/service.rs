//! Writing and reading audit entries.
use crate::auth::{
    Action, Columns, Last, Principal, condition_every_existing_day, condition_throughout,
    covered_places, scope_condition,
};
use crate::db::Where;
use crate::error::{Error, Result};
use crate::paging::{PageArgs, Window};
use chrono::{DateTime, NaiveDate, Utc};
use cnscd_entity::audit_entry;
use sea_orm::{ActiveModelTrait, ConnectionTrait, EntityTrait, QuerySelect, Select, Set};
use std::collections::BTreeSet;

/// The request a change was made in.
#[derive(Clone, Debug, Default)]
pub struct RequestId(pub String);

/// What an audit entry records: the mutation that made the change (stored as its GraphQL
/// name) and so the kind of row it changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuditAction {
    CreateTeam,
    UpdateTeam,
    DissolveTeam,
    AddMember,
    UpdateMembership,
    EndMembership,
    SubmitActivity,
    CorrectActivity,
    VoidActivity,
    SubmitDataValues,
    SaveIndicatorDefinition,
    SetIndicatorTarget,
    LockPeriod,
    UnlockPeriod,
    CreateWebhook,
    DeleteWebhook,
    RedeliverWebhook,
    SaveRestEndpoint,
    DeleteRestEndpoint,
}

impl AuditAction {
    /// Every action, for the tests.
    pub const ALL: [AuditAction; 19] = [
        Self::CreateTeam,
        Self::UpdateTeam,
        Self::DissolveTeam,
        Self::AddMember,
        Self::UpdateMembership,
        Self::EndMembership,
        Self::SubmitActivity,
        Self::CorrectActivity,
        Self::VoidActivity,
        Self::SubmitDataValues,
        Self::SaveIndicatorDefinition,
        Self::SetIndicatorTarget,
        Self::LockPeriod,
        Self::UnlockPeriod,
        Self::CreateWebhook,
        Self::DeleteWebhook,
        Self::RedeliverWebhook,
        Self::SaveRestEndpoint,
        Self::DeleteRestEndpoint,
    ];

    /// The stored `action`: the mutation's name in the schema.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::CreateTeam => "createTeam",
            Self::UpdateTeam => "updateTeam",
            Self::DissolveTeam => "dissolveTeam",
            Self::AddMember => "addMember",
            Self::UpdateMembership => "updateMembership",
            Self::EndMembership => "endMembership",
            Self::SubmitActivity => "submitActivity",
            Self::CorrectActivity => "correctActivity",
            Self::VoidActivity => "voidActivity",
            Self::SubmitDataValues => "submitDataValues",
            Self::SaveIndicatorDefinition => "saveIndicatorDefinition",
            Self::SetIndicatorTarget => "setIndicatorTarget",
            Self::LockPeriod => "lockPeriod",
            Self::UnlockPeriod => "unlockPeriod",
            Self::CreateWebhook => "createWebhook",
            Self::DeleteWebhook => "deleteWebhook",
            Self::RedeliverWebhook => "redeliverWebhook",
            Self::SaveRestEndpoint => "saveRestEndpoint",
            Self::DeleteRestEndpoint => "deleteRestEndpoint",
        }
    }

    /// The stored `entity_type`: the GraphQL type of the changed row.
    pub const fn entity_type(self) -> &'static str {
        match self {
            Self::CreateTeam | Self::UpdateTeam | Self::DissolveTeam => "Team",
            Self::AddMember | Self::UpdateMembership | Self::EndMembership => "Membership",
            Self::SubmitActivity | Self::CorrectActivity | Self::VoidActivity => "Activity",
            Self::SubmitDataValues => "DataValue",
            Self::SaveIndicatorDefinition => "IndicatorDefinition",
            Self::SetIndicatorTarget => "IndicatorTarget",
            Self::LockPeriod | Self::UnlockPeriod => "PeriodLock",
            Self::CreateWebhook | Self::DeleteWebhook => "Webhook",
            Self::RedeliverWebhook => "WebhookDelivery",
            Self::SaveRestEndpoint | Self::DeleteRestEndpoint => "RestEndpoint",
        }
    }
}

/// One change to record.
pub struct Change {
    pub action: AuditAction,
    pub entity_id: String,
    /// The changed row's unit after the change, or before it for a removal; earlier entries of
    /// the row are brought to the same unit (`concerns_unit`) when the change has a `before`.
    pub unit_code: Option<String>,
    /// First and last day (null: still going) the changed row concerns after the change, or
    /// before it for a removal; earlier entries of the row are brought to the same days.
    pub concerns: Option<(NaiveDate, Option<NaiveDate>)>,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
}

impl Change {
    /// The audit entry of the change, made by `principal` at `at`: the one place an entry's
    /// columns are filled (intake writes the same entries in its own statement).
    pub fn entry(
        self,
        principal: &Principal,
        request_id: Option<&RequestId>,
        at: DateTime<Utc>,
    ) -> audit_entry::ActiveModel {
        audit_entry::ActiveModel {
            occurred_at: Set(at),
            subject: Set(principal.subject.clone()),
            client_id: Set(principal.client_id.clone()),
            roles: Set(principal.roles_label()),
            action: Set(self.action.as_str().to_owned()),
            entity_type: Set(self.action.entity_type().to_owned()),
            entity_id: Set(self.entity_id),
            concerns_unit: Set(self.unit_code.clone()),
            unit_code: Set(self.unit_code),
            concerns_from: Set(self.concerns.map(|c| c.0)),
            concerns_to: Set(self.concerns.and_then(|c| c.1)),
            before: Set(self.before),
            after: Set(self.after),
            request_id: Set(request_id.map(|r| r.0.clone())),
            ..Default::default()
        }
    }
}

/// The unit and day a state of an activity held (`unit_code`, `occurred_on` of a snapshot: a
/// kept version's data, a side of the activity's audit entries).
pub(crate) fn state_place(data: &serde_json::Value) -> Option<(String, chrono::NaiveDate)> {
    let unit = data.get("unit_code")?.as_str()?.to_owned();
    let day = data.get("occurred_on")?.as_str()?.parse().ok()?;
    Some((unit, day))
}

/// The row a change starts from, read again inside the change's transaction (locked for update
/// on PostgreSQL; on SQLite the write transaction already keeps other writers out). The audit
/// entry's `before` is then what the database held when the change was made, never a copy from
/// before the transaction; and a row that changed after the request checked it (`checked`) is
/// a CONFLICT to retry, not a silent overwrite of the other change.
pub async fn reread<E>(
    txn: &impl ConnectionTrait,
    select: Select<E>,
    checked: &E::Model,
    what: &str,
) -> Result<E::Model>
where
    E: EntityTrait,
    E::Model: PartialEq,
{
    match select.lock_exclusive().one(txn).await? {
        Some(row) if row == *checked => Ok(row),
        Some(_) => Err(Error::Conflict(format!(
            "the {what} was changed by another request while this one ran; read it again and \
             retry"
        ))),
        None => Err(Error::not_found(format!("the {what} no longer exists"))),
    }
}

/// Records a change, in the caller's transaction so that it commits with the change.
pub async fn record(
    db: &impl ConnectionTrait,
    principal: &Principal,
    request_id: Option<&RequestId>,
    change: Change,
) -> Result<()> {
    // The unit and days an entry concerns are the row's current ones: a change that moves the
    // row (to other days, or another unit) moves them for the row's earlier entries too (their
    // unit_code, before and after stay as written).
    if change.before.is_some() {
        let (sql, mut values) = match change.concerns {
            Some((from, to)) => (
                "UPDATE audit_entry SET concerns_unit = ?, concerns_from = ?, concerns_to = ? \
                 WHERE entity_type = ? AND entity_id = ?",
                vec![change.unit_code.clone().into(), from.into(), to.into()],
            ),
            None => (
                "UPDATE audit_entry SET concerns_unit = ? WHERE entity_type = ? AND entity_id = ?",
                vec![change.unit_code.clone().into()],
            ),
        };
        values.extend([
            change.action.entity_type().into(),
            change.entity_id.clone().into(),
        ]);
        db.execute_raw(crate::db::stmt(db.get_database_backend(), sql, values))
            .await?;
    }
    change
        .entry(principal, request_id, Utc::now())
        .insert(db)
        .await?;
    Ok(())
}

/// Records many changes at once (one statement per 100), in the caller's transaction, for
/// rows whose unit and days a change never moves (rows keyed by their unit and period, such as
/// reported figures): earlier entries of the same rows keep them, so nothing else is updated.
pub async fn record_many(
    db: &impl ConnectionTrait,
    principal: &Principal,
    request_id: Option<&RequestId>,
    at: DateTime<Utc>,
    changes: Vec<Change>,
) -> Result<()> {
    let rows: Vec<audit_entry::ActiveModel> = changes
        .into_iter()
        .map(|change| change.entry(principal, request_id, at))
        .collect();
    for chunk in rows.chunks(100) {
        audit_entry::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(db)
            .await?;
    }
    Ok(())
}

/// Filters of the audit log.
#[derive(Default, Debug)]
pub struct AuditFilter {
    pub entity_type: Option<String>,
    pub entity_id: Option<String>,
    pub subject: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
}

/// How the row an entry records is read (area.md, row by row): the action that reads such rows
/// (whose area applies), and on which of the days the row concerns now
/// (`concerns_from ..= concerns_to`) its unit must be under that area.
#[derive(Copy, Clone, Debug)]
enum Rule {
    /// On some day of them (teams, memberships, activities, period locks).
    SomeDay(Action),
    /// On every day of them (reported figures).
    EveryDay(Action),
    /// On every day of them on which the unit existed (targets, as indicator values).
    EveryDayItExisted(Action),
    /// The row has no unit (indicator definitions): only a caller whose area is everything.
    NoUnit,
}

/// Every kind of row the log records, with its rule. An entry of a kind not listed here is
/// read only by callers whose area is everything.
const KINDS: &[(&str, Rule)] = &[
    ("Team", Rule::SomeDay(Action::ReadTeams)),
    ("Membership", Rule::SomeDay(Action::ReadMembers)),
    (ACTIVITY, Rule::SomeDay(Action::ReadActivities)),
    ("DataValue", Rule::EveryDay(Action::ReadDataValues)),
    (
        "IndicatorTarget",
        Rule::EveryDayItExisted(Action::ReadIndicators),
    ),
    ("PeriodLock", Rule::SomeDay(Action::ReadPeriodLocks)),
    ("IndicatorDefinition", Rule::NoUnit),
    // Integration settings concern no unit's data: their entries are ADMIN's to read.
    ("Webhook", Rule::NoUnit),
    ("WebhookDelivery", Rule::NoUnit),
    ("RestEndpoint", Rule::NoUnit),
];

/// An entry of the log as the caller reads it.
#[derive(Clone, Debug)]
pub struct Listed {
    pub entry: audit_entry::Model,
    /// Its `before` holds a state of the row that the caller may not read.
    pub before_withheld: bool,
    /// Its `after` holds a state of the row that the caller may not read.
    pub after_withheld: bool,
}

/// Audit entries in the caller's area, newest first, with the sides each withholds
/// ([`withheld`]).
pub async fn list(
    db: &impl ConnectionTrait,
    principal: &Principal,
    filter: &AuditFilter,
    args: &PageArgs,
) -> Result<(Vec<Listed>, Window, u64)> {
    let mut w = Where::new();
    scope(&mut w, principal, db.get_database_backend());
    if let Some(t) = &filter.entity_type {
        w.and("e.entity_type = ?", [t.clone().into()]);
    }
    if let Some(id) = &filter.entity_id {
        w.and("e.entity_id = ?", [id.clone().into()]);
    }
    if let Some(s) = &filter.subject {
        w.and("e.subject = ?", [s.clone().into()]);
    }
    if let Some(t) = filter.since {
        w.and("e.occurred_at >= ?", [t.into()]);
    }
    if let Some(t) = filter.until {
        w.and("e.occurred_at <= ?", [t.into()]);
    }
    let (entries, window, total) =
        crate::db::page::<audit_entry::Entity>(db, "e", "audit_entry e", "e.id DESC", &w, args)
            .await?;
    Ok((withheld(db, principal, entries).await?, window, total))
}

/// The entries among `ids` the caller may read, oldest first, with the sides each withholds:
/// what [`list`] would show the caller of them (a webhook's payloads are its owner's view).
pub async fn visible(
    db: &impl ConnectionTrait,
    principal: &Principal,
    ids: &[i64],
) -> Result<Vec<Listed>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut w = Where::new();
    scope(&mut w, principal, db.get_database_backend());
    w.and(
        format!("e.id IN ({})", crate::db::placeholders(ids.len())),
        ids.iter().map(|i| sea_orm::Value::from(*i)),
    );
    let entries = audit_entry::Entity::find()
        .from_raw_sql(crate::db::stmt(
            db.get_database_backend(),
            &format!("SELECT e.* FROM audit_entry e{} ORDER BY e.id", w.sql()),
            w.values,
        ))
        .all(db)
        .await?;
    withheld(db, principal, entries).await
}

/// Which sides of each entry hold a state of its row that the caller may not read, decided for
/// a page in one statement at most.
///
/// An activity's entry carries the activity as it was before the change and as it was after
/// it: each side is a version of the activity, read by the rule of `activityVersions` (area.md:
/// the activity rule on that state's own day and unit, or the activity's team, or the caller's
/// own submission). The entry itself is read by the activity as it is now, so after a
/// correction that moved the activity into the caller's area the caller reads the entries but
/// not the sides that hold the activity where it lay outside its area (a correction's
/// `before`, the submission's `after`). A side that names no unit and day is withheld. The
/// other kinds' rows never move to another unit, and their sides are the row the entry is read
/// by.
async fn withheld(
    db: &impl ConnectionTrait,
    principal: &Principal,
    entries: Vec<audit_entry::Model>,
) -> Result<Vec<Listed>> {
    let scope = principal.scope(Action::ReadActivities);
    let side = |state: &Option<serde_json::Value>| -> Side {
        let Some(state) = state else {
            return Side::Readable;
        };
        let own = scope.all
            || state
                .get("team_id")
                .and_then(serde_json::Value::as_i64)
                .is_some_and(|t| scope.teams.contains(&t))
            || scope.submitter.as_deref().is_some_and(|own| {
                // The snapshot names who submitted (subject and client), not the identity.
                state
                    .get("submitted_by")
                    .and_then(serde_json::Value::as_str)
                    .is_some_and(|by| {
                        let client = state.get("client_id").and_then(serde_json::Value::as_str);
                        crate::auth::identity(by, client) == own
                    })
            });
        if own {
            Side::Readable
        } else {
            Side::At(state_place(state))
        }
    };
    let sides: Vec<[Side; 2]> = entries
        .iter()
        .map(|e| {
            if e.entity_type == ACTIVITY {
                [side(&e.before), side(&e.after)]
            } else {
                [Side::Readable, Side::Readable]
            }
        })
        .collect();
    let places: BTreeSet<(String, NaiveDate)> = sides
        .iter()
        .flatten()
        .filter_map(|s| match s {
            Side::At(place) => place.clone(),
            Side::Readable => None,
        })
        .collect();
    let covered = covered_places(db, &scope, &places).await?;
    let withheld = |side: &Side| match side {
        Side::Readable => false,
        Side::At(place) => !place.as_ref().is_some_and(|p| covered.contains(p)),
    };
    Ok(entries
        .into_iter()
        .zip(&sides)
        .map(|(entry, [before, after])| Listed {
            entry,
            before_withheld: withheld(before),
            after_withheld: withheld(after),
        })
        .collect())
}

/// A side of an entry, before the caller's area is consulted.
enum Side {
    /// Readable whatever its place: not a state of an activity, absent, or one of the caller's
    /// own (its area is everything, the activity's team is its, it submitted the activity).
    Readable,
    /// A state of an activity, readable where the area covers the unit and day it names (none
    /// named: withheld).
    At(Option<(String, NaiveDate)>),
}

/// The kind of row an activity's entries name (`entity_type`).
const ACTIVITY: &str = "Activity";

/// Limits a query over `audit_entry e` to what the caller may read: an entry says nothing of a
/// row the caller may not see. The changed row's unit when the change was made (`unit_code`) is
/// under the caller's area for the audit log on the day the change was made (Vietnam's day, as
/// everywhere in the service), and the row is visible to the caller as it is now, by its own
/// kind's rule on its current unit and days (`concerns_unit`, `concerns_from ..= concerns_to`)
/// and the caller's right to read that kind ([`KINDS`]): an activity's entry where the activity
/// is visible on its day, wherever a correction has moved it since; a figure's entry only
/// where `dataValues` shows the figure; a target's where the value it belongs to is readable.
fn scope(w: &mut Where, principal: &Principal, backend: sea_orm::DbBackend) {
    let day = match backend {
        sea_orm::DbBackend::Postgres => {
            "CAST((e.occurred_at AT TIME ZONE 'UTC') + INTERVAL '7 hours' AS DATE)"
        }
        _ => "date(e.occurred_at, '+7 hours')",
    };
    let on_the_day = Columns {
        unit: "e.unit_code",
        from: day,
        last: Last::SameDay,
        team: None,
        submitter: None,
    };
    let Some((sql, values)) = scope_condition(&principal.scope(Action::ReadAudit), &on_the_day)
    else {
        return;
    };
    w.and(sql, values);
    // The days the row concerns now: an entry without them (none is written so) concerns the
    // day of the change; figures and targets always end on a day.
    let concerns_from = format!("COALESCE(e.concerns_from, {day})");
    let concerns_to = format!("COALESCE(e.concerns_to, {concerns_from})");
    let mut kinds = Vec::new();
    let mut values = Vec::new();
    for (kind, rule) in KINDS {
        let every_day = Columns {
            unit: "e.concerns_unit",
            from: &concerns_from,
            last: Last::Through(&concerns_to),
            team: None,
            submitter: None,
        };
        let condition = match *rule {
            Rule::SomeDay(action) => scope_condition(
                &principal.scope(action),
                &Columns {
                    unit: "e.concerns_unit",
                    from: &concerns_from,
                    last: Last::Through("e.concerns_to"),
                    team: None,
                    submitter: None,
                },
            ),
            Rule::EveryDay(action) => {
                condition_throughout(&principal.scope(action), &every_day, backend)
            }
            Rule::EveryDayItExisted(action) => {
                condition_every_existing_day(&principal.scope(action), &every_day, backend)
            }
            // The caller's area for the audit log is not everything (above).
            Rule::NoUnit => continue,
        };
        match condition {
            Some((sql, v)) => {
                kinds.push(format!("(e.entity_type = ? AND {sql})"));
                values.push(sea_orm::Value::from(*kind));
                values.extend(v);
            }
            None => {
                kinds.push("e.entity_type = ?".to_owned());
                values.push(sea_orm::Value::from(*kind));
            }
        }
    }
    if kinds.is_empty() {
        w.and("1 = 0", []);
    } else {
        w.and(kinds.join(" OR "), values);
    }
}

//! Activity intake and reading: validation, area checks, period locks, idempotency, audit and
//! rollups, all in one transaction.
use super::rollup;
use crate::audit::service::{Change, RequestId, record};
use crate::auth::{Action, Columns, Last, Principal, scope_condition};
use crate::db::{Where, is_unique_violation};
use crate::error::{Error, ErrorCode, Problems, Result, UserError};
use crate::graphql::ids;
use crate::graphql::pagination::{PageArgs, Window};
use crate::teams::service as teams;
use crate::text;
use crate::units::service as units;
use chrono::{NaiveDate, Utc};
use cnscd_entity::codes::ActivityStatus;
use cnscd_entity::{
    activity, activity_kind, activity_outcome, digital_service, idempotency_record, team,
};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    Set,
};
use sha2::{Digest, Sha256};
use std::collections::HashSet;

/// Columns of `activity a` for area conditions: an activity concerns the day it happened.
pub const ACTIVITY_COLUMNS: Columns<'static> = Columns {
    unit: "a.unit_code",
    from: "a.occurred_on",
    last: Last::SameDay,
    team: Some("a.team_id"),
    submitter: Some("a.submitter"),
};

const MAX_COUNT: i32 = 100_000;
const MAX_OUTCOMES: usize = 20;

/// One activity as submitted.
#[derive(Debug, Clone, serde::Serialize)]
pub struct NewActivity {
    #[serde(skip)]
    pub idempotency_key: String,
    pub team_id: i64,
    pub kind: String,
    pub occurred_on: NaiveDate,
    pub unit_code: Option<String>,
    pub title: String,
    pub description: Option<String>,
    pub participants: Option<i32>,
    pub households_reached: Option<i32>,
    pub outcomes: Vec<NewOutcome>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct NewOutcome {
    pub service: String,
    pub people: i32,
    pub households: Option<i32>,
}

fn request_hash(input: &NewActivity) -> String {
    let canonical = serde_json::to_string(input).unwrap_or_default();
    let digest = Sha256::digest(canonical.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The answer already given to this key, if any: the activity (a replay), or a refusal when
/// the key was used for a different input.
async fn replay(
    db: &impl ConnectionTrait,
    scope: &str,
    key: &str,
    hash: &str,
) -> Result<Option<activity::Model>> {
    let Some(rec) = idempotency_record::Entity::find()
        .filter(idempotency_record::Column::Scope.eq(scope))
        .filter(idempotency_record::Column::IdempotencyKey.eq(key))
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    if rec.request_hash != hash || rec.operation != "submitActivity" {
        return Err(Error::IdempotencyKeyReused(format!(
            "idempotency key `{key}` was already used for a different submission; use a new key \
             for new input"
        )));
    }
    let id = rec.resource_id.unwrap_or_default();
    activity::Entity::find_by_id(id)
        .one(db)
        .await?
        .map(Some)
        .ok_or_else(|| {
            Error::Internal(format!(
                "idempotency record points to missing activity {id}"
            ))
        })
}

/// What validation established about a submission, for the insert to use.
pub(super) struct Checked {
    pub(super) team: team::Model,
    pub(super) unit_code: String,
    /// Since when the unit has had these units above it (its rollup row starts there).
    pub(super) since: NaiveDate,
    /// Codes of the services that count as cashless payment.
    pub(super) cashless: HashSet<String>,
}

/// Checks the input against the catalogues, the team, the dates and the caller's area (also
/// the new state of a correction, [`super::corrections`]).
pub(super) async fn validate(
    db: &impl ConnectionTrait,
    principal: &Principal,
    input: &NewActivity,
) -> Result<Checked> {
    let mut p = Problems::default();
    let key = &input.idempotency_key;
    if key.trim().is_empty() || key.chars().count() > 200 || key.chars().any(char::is_control) {
        p.add(
            "input.idempotencyKey",
            "idempotencyKey must be 1 to 200 printable characters",
        );
    }
    let title = text::clean(&input.title);
    if title.is_empty() {
        p.add("input.title", "title must not be empty");
    } else if title.chars().count() > 200 {
        p.add("input.title", "title must be at most 200 characters");
    }
    if input
        .description
        .as_ref()
        .is_some_and(|d| d.chars().count() > 5000)
    {
        p.add(
            "input.description",
            "description must be at most 5000 characters",
        );
    }
    for (field, v) in [
        ("input.participants", input.participants),
        ("input.householdsReached", input.households_reached),
    ] {
        if let Some(v) = v
            && !(0..=MAX_COUNT).contains(&v)
        {
            p.add(field, format!("must be between 0 and {MAX_COUNT}, not {v}"));
        }
    }
    let today = units::today();
    if input.occurred_on > today {
        p.add(
            "input.occurredOn",
            format!("occurredOn {} is in the future", input.occurred_on),
        );
    }
    let kind = activity_kind::Entity::find_by_id(input.kind.clone())
        .one(db)
        .await?;
    if !kind.is_some_and(|k| k.active) {
        p.add(
            "input.kind",
            format!(
                "`{}` is not an activity kind code (see activityKinds)",
                input.kind
            ),
        );
    }
    if input.outcomes.len() > MAX_OUTCOMES {
        p.add("input.outcomes", format!("at most {MAX_OUTCOMES} outcomes"));
    }
    let catalogue = digital_service::Entity::find()
        .filter(digital_service::Column::Active.eq(true))
        .all(db)
        .await?;
    let services: HashSet<String> = catalogue.iter().map(|s| s.code.clone()).collect();
    let cashless: HashSet<String> = catalogue
        .into_iter()
        .filter(|s| s.cashless)
        .map(|s| s.code)
        .collect();
    let mut seen = HashSet::new();
    for (i, o) in input.outcomes.iter().enumerate() {
        let base = format!("input.outcomes.{i}");
        if !services.contains(&o.service) {
            p.add(
                &format!("{base}.service"),
                format!(
                    "`{}` is not a digital service code (see digitalServices)",
                    o.service
                ),
            );
        } else if !seen.insert(o.service.clone()) {
            p.add(
                &format!("{base}.service"),
                format!("service {} appears twice", o.service),
            );
        }
        if !(0..=MAX_COUNT).contains(&o.people) {
            p.add(
                &format!("{base}.people"),
                format!("must be between 0 and {MAX_COUNT}, not {}", o.people),
            );
        }
        if let Some(h) = o.households
            && !(0..=MAX_COUNT).contains(&h)
        {
            p.add(
                &format!("{base}.households"),
                format!("must be between 0 and {MAX_COUNT}, not {h}"),
            );
        }
    }
    // The team must be visible to the caller (NOT_FOUND otherwise) before anything about it is
    // said.
    let t = teams::get(db, principal, Action::ReadTeams, input.team_id)
        .await
        .map_err(|e| match e {
            Error::NotFound(message) => Error::Invalid(vec![UserError::new(
                "input.teamId",
                message,
                ErrorCode::NotFound,
            )]),
            e => e,
        })?;
    if input.occurred_on < t.founded_on {
        p.add(
            "input.occurredOn",
            format!(
                "occurredOn {} is before the team was founded ({})",
                input.occurred_on, t.founded_on
            ),
        );
    }
    if let Some(d) = t.dissolved_on
        && input.occurred_on >= d
    {
        p.add("input.occurredOn", format!("the team was dissolved on {d}"));
    }
    let unit_code = input
        .unit_code
        .as_deref()
        .map(str::trim)
        .unwrap_or(&t.unit_code)
        .to_owned();
    // The team's unit and every unit above it on the day, nearest first. One statement tells
    // where the activity may be recorded (the team's unit or a unit containing it), whether the
    // caller's units cover it, and which rollups it feeds.
    let on = input.occurred_on;
    let above_team = rollup::ancestors_on(db, &t.unit_code, on).await?;
    let mut since = above_team.since;
    let ancestors: Vec<String> = match above_team.codes.iter().position(|a| *a == unit_code) {
        Some(0) => above_team.codes,
        Some(i) => {
            // Recorded at a unit above the team's: that unit's own place in the hierarchy.
            since = rollup::ancestors_on(db, &unit_code, on).await?.since;
            above_team.codes[i..].to_vec()
        }
        None => {
            if p.is_empty() {
                let message = if units::version_on(db, &unit_code, on).await?.is_none() {
                    format!("no administrative unit `{unit_code}` exists on {on}")
                } else {
                    format!(
                        "unit {unit_code} is neither the team's unit ({}) nor one containing it on {on}",
                        t.unit_code
                    )
                };
                p.add("input.unitCode", message);
            }
            Vec::new()
        }
    };
    p.finish()?;
    // The activity's own unit (the team's, or one above it) must lie in the caller's area on
    // the day: a token's team grants its own unit only, never the units above it.
    if !crate::auth::allows_in_chain(
        &principal.scope(Action::SubmitActivities),
        Some((t.id, &t.unit_code)),
        &unit_code,
        &ancestors,
    ) {
        return Err(Error::forbidden(format!(
            "the caller may not submit activities for team {} on {}",
            ids::encode(ids::TEAM, t.id).0,
            input.occurred_on
        )));
    }
    check_unlocked(db, &ancestors, input.occurred_on).await?;
    Ok(Checked {
        team: t,
        unit_code,
        since,
        cashless,
    })
}

/// Refuses a change to a day whose period is locked for a unit or a unit above it (`ancestors`
/// lists the unit and all above it on that day).
pub async fn check_unlocked(
    db: &impl ConnectionTrait,
    ancestors: &[String],
    on: NaiveDate,
) -> Result<()> {
    crate::locks::service::ensure_unlocked(db, ancestors, on, on).await
}

/// Stores an activity once per idempotency key; answers `(activity, replayed)`.
pub async fn submit(
    db: &DatabaseConnection,
    principal: &Principal,
    request: Option<&RequestId>,
    input: NewActivity,
) -> Result<(activity::Model, bool)> {
    // Keys belong to the caller identity, the same one "what I submitted" compares.
    let scope = principal.identity();
    let hash = request_hash(&input);
    let key = input.idempotency_key.trim().to_owned();
    if let Some(a) = replay(db, &scope, &key, &hash).await? {
        return Ok((a, true));
    }
    let checked = validate(db, principal, &input).await?;
    match insert(db, principal, request, &input, checked, &scope, &key, &hash).await {
        Ok(a) => Ok((a, false)),
        // A concurrent request with the same key won the race: answer as a retry.
        Err(Error::Db(e)) if is_unique_violation(&e) => {
            match replay(db, &scope, &key, &hash).await? {
                Some(a) => Ok((a, true)),
                None => Err(Error::Db(e)),
            }
        }
        Err(e) => Err(e),
    }
}

#[allow(clippy::too_many_arguments)]
async fn insert(
    db: &DatabaseConnection,
    principal: &Principal,
    request: Option<&RequestId>,
    input: &NewActivity,
    checked: Checked,
    scope: &str,
    key: &str,
    hash: &str,
) -> Result<activity::Model> {
    let txn = crate::db::begin_write(db).await?;
    let now = Utc::now();
    let a = activity::ActiveModel {
        team_id: Set(checked.team.id),
        unit_code: Set(checked.unit_code),
        kind_code: Set(input.kind.clone()),
        occurred_on: Set(input.occurred_on),
        title: Set(text::clean(&input.title)),
        description: Set(input
            .description
            .as_deref()
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .map(text::nfc)),
        participants: Set(input.participants),
        households_reached: Set(input.households_reached),
        status: Set(ActivityStatus::Recorded),
        submitted_by: Set(principal.subject.clone()),
        client_id: Set(principal.client_id.clone()),
        submitter: Set(principal.identity()),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    let outcomes: Vec<activity_outcome::Model> = input
        .outcomes
        .iter()
        .map(|o| activity_outcome::Model {
            id: 0,
            activity_id: a.id,
            service_code: o.service.clone(),
            people: o.people,
            households: o.households,
        })
        .collect();
    if !outcomes.is_empty() {
        activity_outcome::Entity::insert_many(outcomes.iter().map(|o| {
            activity_outcome::ActiveModel {
                activity_id: Set(o.activity_id),
                service_code: Set(o.service_code.clone()),
                people: Set(o.people),
                households: Set(o.households),
                ..Default::default()
            }
        }))
        .exec(&txn)
        .await?;
    }
    // The key is recorded with the activity: a concurrent request with the same key fails on
    // the unique index at this point, rolls back, and answers as a replay.
    idempotency_record::ActiveModel {
        scope: Set(scope.to_owned()),
        idempotency_key: Set(key.to_owned()),
        operation: Set("submitActivity".into()),
        request_hash: Set(hash.to_owned()),
        resource_id: Set(Some(a.id)),
        created_at: Set(now),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    let mut after = serde_json::to_value(&a).unwrap_or_default();
    after["outcomes"] = serde_json::to_value(&input.outcomes).unwrap_or_default();
    record(
        &txn,
        principal,
        request,
        Change {
            action: "submitActivity",
            entity_type: "Activity",
            entity_id: ids::encode(ids::ACTIVITY, a.id).0,
            unit_code: Some(a.unit_code.clone()),
            concerns: Some((a.occurred_on, Some(a.occurred_on))),
            before: None,
            after: Some(after),
        },
    )
    .await?;
    // The rollups last: their rows (of the activity's own unit) are held until commit.
    rollup::apply(&txn, &a, &outcomes, checked.since, &checked.cashless, 1.0).await?;
    txn.commit().await?;
    Ok(a)
}

/// Filters of the `activities` list.
#[derive(Default, Debug)]
pub struct ActivityFilter {
    pub team_id: Option<i64>,
    pub under: Option<String>,
    pub kind: Option<String>,
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    pub status: Option<ActivityStatus>,
    pub search: Option<String>,
}

/// Adds the caller's area for reading activities to a query over `activity a`.
pub fn scope(w: &mut Where, principal: &Principal) {
    if let Some((sql, values)) =
        scope_condition(&principal.scope(Action::ReadActivities), &ACTIVITY_COLUMNS)
    {
        w.and(sql, values);
    }
}

pub async fn list(
    db: &impl ConnectionTrait,
    principal: &Principal,
    filter: &ActivityFilter,
    args: &PageArgs,
) -> Result<(Vec<activity::Model>, Window, u64)> {
    let mut w = Where::new();
    scope(&mut w, principal);
    if let Some(t) = filter.team_id {
        w.and("a.team_id = ?", [t.into()]);
    }
    if let Some(u) = &filter.under {
        let (sql, values) = crate::auth::under(std::slice::from_ref(u), &ACTIVITY_COLUMNS);
        w.and(sql, values);
    }
    if let Some(k) = &filter.kind {
        w.and("a.kind_code = ?", [k.clone().into()]);
    }
    if let Some(d) = filter.from {
        w.and("a.occurred_on >= ?", [d.into()]);
    }
    if let Some(d) = filter.to {
        w.and("a.occurred_on <= ?", [d.into()]);
    }
    w.and(
        "a.status = ?",
        [filter
            .status
            .unwrap_or(ActivityStatus::Recorded)
            .as_str()
            .into()],
    );
    if let Some(s) = filter.search.as_deref().filter(|s| !s.trim().is_empty()) {
        w.and(
            "LOWER(a.title) LIKE ? ESCAPE '\\'",
            [format!(
                "%{}%",
                s.trim()
                    .to_lowercase()
                    .replace('\\', "\\\\")
                    .replace('%', "\\%")
                    .replace('_', "\\_")
            )
            .into()],
        );
    }
    crate::db::page::<activity::Entity>(
        db,
        "a",
        "activity a",
        "a.occurred_on DESC, a.id DESC",
        &w,
        args,
    )
    .await
}

/// The activity with this id, if the caller may read it.
pub async fn get(
    db: &impl ConnectionTrait,
    principal: &Principal,
    id: i64,
) -> Result<activity::Model> {
    let mut w = Where::new();
    w.and("a.id = ?", [id.into()]);
    scope(&mut w, principal);
    activity::Entity::find()
        .from_raw_sql(crate::db::stmt(
            db.get_database_backend(),
            &format!("SELECT a.* FROM activity a{}", w.sql()),
            w.values,
        ))
        .one(db)
        .await?
        .ok_or_else(|| {
            Error::not_found(format!(
                "no activity {} in the caller's area",
                ids::encode(ids::ACTIVITY, id).0
            ))
        })
}

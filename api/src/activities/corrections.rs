//! Corrections and voids of stored activities: who may make them, the version kept of what
//! changed, the rollups moved in the same transaction, and the audit entry.
//!
//! A correction replaces the fields it names (and the whole list of outcomes when it names
//! them); a void marks the activity VOIDED: it stays readable (`activities(status: VOIDED)`,
//! `node`) but leaves the default lists and every indicator. Either keeps the activity as it
//! was in `activity_version` (read back with `activityVersions`), and moves the rollups: the
//! old amounts out of the old month and unit, the new ones into the new (one
//! [`rollup::record`]), in the transaction that changes the row.
//!
//! The types and the resolver live here with the service, next to `submitActivity`'s, so that
//! intake and its corrections change apart.
use super::rollup::{self, Chain};
use super::service::{self, NewActivity, NewOutcome};
use super::types::{Activity, ActivityOutcomeInput};
use crate::audit::service::{AuditAction, Change, RequestId, record, reread, state_place};
use crate::auth::{Action, Principal};
use crate::db::query;
use crate::error::{Error, ErrorCode, Problems, Result, UserError, into_payload};
use crate::graphql::guard::Allowed;
use crate::graphql::{Date, ids, state};
use crate::locks::service::ensure_unlocked;
use crate::text;
use async_graphql::{Context, ID, InputObject, MaybeUndefined, Object, SimpleObject};
use chrono::Utc;
use cnscd_entity::codes::{ActivityChange, ActivityStatus};
use cnscd_entity::{activity, activity_outcome, activity_version};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction,
    EntityTrait, QueryFilter, QueryOrder, Set,
};
use std::collections::{BTreeMap, BTreeSet};

const MAX_REASON: usize = 500;
/// Versions an activity's `activityVersions` list is priced at (one per correction).
const VERSIONS_ESTIMATE: usize = 10;

// ---------------------------------------------------------------------------------------------
// GraphQL

/// Correcting an activity: the fields given replace the stored ones; fields left out keep
/// their value. The team cannot change.
#[derive(InputObject, Debug)]
pub struct CorrectActivityInput {
    /// The activity to correct.
    pub activity_id: ID,
    /// Why it is corrected (required), at most 500 characters; kept with the earlier version.
    pub reason: String,
    /// Activity kind code.
    pub kind: Option<String>,
    /// Day it happened (the rules of `submitActivity`); moves the activity to that day.
    pub occurred_on: Option<Date>,
    /// Where it happened: the team's unit or a unit containing it.
    pub unit_code: Option<String>,
    /// Short title, at most 200 characters.
    pub title: Option<String>,
    /// Longer account, at most 5000 characters; null clears it.
    pub description: MaybeUndefined<String>,
    /// People who attended, 0 to 100000; null clears it.
    pub participants: MaybeUndefined<i32>,
    /// Households reached, 0 to 100000; null clears it.
    pub households_reached: MaybeUndefined<i32>,
    /// Replaces every outcome (an empty list removes them all).
    pub outcomes: Option<Vec<ActivityOutcomeInput>>,
}

/// Voiding an activity: it stays readable with status VOIDED and counts nowhere.
#[derive(InputObject, Debug)]
pub struct VoidActivityInput {
    /// The activity to void.
    pub activity_id: ID,
    /// Why it is voided (required), at most 500 characters.
    pub reason: String,
}

/// Result of `correctActivity` and `voidActivity`.
#[derive(SimpleObject)]
pub struct ActivityPayload {
    /// The activity as it is now; null when there are user errors.
    pub activity: Option<Activity>,
    /// What was wrong with the input; empty on success.
    pub user_errors: Vec<UserError>,
}

/// The change that ended a version of an activity.
#[derive(async_graphql::Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "cnscd_entity::codes::ActivityChange")]
pub enum ActivityChangeKind {
    /// Corrected by `correctActivity`.
    Correct,
    /// Voided by `voidActivity`.
    Void,
}

/// An activity as it was before a correction or a void.
#[derive(SimpleObject)]
pub struct ActivityVersion {
    /// 1 for the activity as first submitted, then one more per change.
    pub version: i32,
    /// The change that ended this version.
    pub ended_by: ActivityChangeKind,
    /// Why it was changed.
    pub reason: String,
    /// Token subject that made the change.
    pub changed_by: String,
    /// When it was changed.
    pub changed_at: chrono::DateTime<Utc>,
    /// The activity as it was: its fields (snake_case, as in the audit log) and `outcomes`.
    pub activity: async_graphql::Json<serde_json::Value>,
}

impl From<activity_version::Model> for ActivityVersion {
    fn from(m: activity_version::Model) -> Self {
        Self {
            version: m.version,
            ended_by: m.action.into(),
            reason: m.reason,
            changed_by: m.changed_by,
            changed_at: m.changed_at,
            activity: async_graphql::Json(m.data),
        }
    }
}

#[derive(Default)]
pub struct CorrectionQuery;

#[Object]
impl CorrectionQuery {
    /// The earlier versions of an activity that the caller may read, oldest first (empty when
    /// it was never corrected or voided). Each version is read by the activity rule on its own
    /// day and unit: after a correction that moved the activity across areas, each side reads
    /// only the versions that lay in its area. NOT_FOUND when the caller may read neither the
    /// activity nor any of its versions.
    #[graphql(
        guard = "Allowed(Action::ReadActivities)",
        complexity = "crate::graphql::limits::list_complexity(VERSIONS_ESTIMATE, child_complexity)"
    )]
    async fn activity_versions(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The activity.")] activity_id: ID,
    ) -> async_graphql::Result<Vec<ActivityVersion>> {
        let (db, principal) = state(ctx)?;
        let id = ids::input_id(ids::ACTIVITY, "activityId", &activity_id)?;
        Ok(versions(db, principal, id)
            .await?
            .into_iter()
            .map(Into::into)
            .collect())
    }
}

#[derive(Default)]
pub struct CorrectionMutation;

#[Object]
impl CorrectionMutation {
    /// Corrects an activity (its submitter, the leader of its team, ADMIN, or UNIT_ADMIN of
    /// its area, before and after the change), keeping the earlier version; the indicators
    /// move with it at once. Refused (PERIOD_LOCKED) when the old or the new day is locked.
    /// Audited.
    #[graphql(guard = "Allowed(Action::CorrectActivities)")]
    async fn correct_activity(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The activity and the changes.")] input: CorrectActivityInput,
    ) -> async_graphql::Result<ActivityPayload> {
        let (db, principal) = state(ctx)?;
        let result = async {
            let id = activity_id(&input.activity_id)?;
            let changes = Changes {
                kind: input.kind.map(|k| k.trim().to_owned()),
                occurred_on: input.occurred_on.map(|d| d.0),
                unit_code: input.unit_code.map(|u| u.trim().to_owned()),
                title: input.title,
                description: clearable(input.description),
                participants: clearable(input.participants),
                households_reached: clearable(input.households_reached),
                outcomes: input.outcomes.map(|list| {
                    list.into_iter()
                        .map(|o| NewOutcome {
                            service: o.service.trim().to_owned(),
                            people: o.people,
                            households: o.households,
                        })
                        .collect()
                }),
            };
            correct(
                db,
                crate::graphql::store(ctx)?,
                principal,
                ctx.data_opt::<RequestId>(),
                id,
                &input.reason,
                changes,
            )
            .await
        }
        .await;
        let (changed, user_errors) = into_payload(result)?;
        // The figures of the activity's day and unit before the correction move too.
        if let (Some((a, was)), Ok(bus)) = (&changed, crate::events::bus(ctx)) {
            bus.figures_changed(&a.unit_code, a.occurred_on);
            if (&was.unit_code, was.occurred_on) != (&a.unit_code, a.occurred_on) {
                bus.figures_changed(&was.unit_code, was.occurred_on);
            }
        }
        Ok(ActivityPayload {
            activity: changed.map(|(a, _)| a.into()),
            user_errors,
        })
    }

    /// Voids an activity (the same callers as `correctActivity`): it stays readable with
    /// status VOIDED, leaves lists and indicators at once, and its earlier version is kept.
    /// Refused (PERIOD_LOCKED) when its day is locked. Audited.
    #[graphql(guard = "Allowed(Action::CorrectActivities)")]
    async fn void_activity(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The activity and the reason.")] input: VoidActivityInput,
    ) -> async_graphql::Result<ActivityPayload> {
        let (db, principal) = state(ctx)?;
        let result = async {
            let id = activity_id(&input.activity_id)?;
            void(
                db,
                principal,
                ctx.data_opt::<RequestId>(),
                id,
                &input.reason,
            )
            .await
        }
        .await;
        let (activity, user_errors) = into_payload(result)?;
        if let (Some(a), Ok(bus)) = (&activity, crate::events::bus(ctx)) {
            bus.figures_changed(&a.unit_code, a.occurred_on);
        }
        Ok(ActivityPayload {
            activity: activity.map(Into::into),
            user_errors,
        })
    }
}

fn activity_id(id: &ID) -> Result<i64> {
    ids::input_id(ids::ACTIVITY, "input.activityId", id)
}

/// A field left out (`None`), set to null (`Some(None)`) or to a value.
fn clearable<T>(v: MaybeUndefined<T>) -> Option<Option<T>> {
    match v {
        MaybeUndefined::Undefined => None,
        MaybeUndefined::Null => Some(None),
        MaybeUndefined::Value(v) => Some(Some(v)),
    }
}

// ---------------------------------------------------------------------------------------------
// Service

/// The fields a correction replaces; `None` keeps the stored value, and `Some(None)` clears an
/// optional one.
#[derive(Debug, Default)]
pub struct Changes {
    pub kind: Option<String>,
    pub occurred_on: Option<chrono::NaiveDate>,
    pub unit_code: Option<String>,
    pub title: Option<String>,
    pub description: Option<Option<String>>,
    pub participants: Option<Option<i32>>,
    pub households_reached: Option<Option<i32>>,
    pub outcomes: Option<Vec<NewOutcome>>,
}

/// The reason, cleaned, or a validation problem.
fn check_reason(reason: &str) -> Result<String> {
    let mut p = Problems::default();
    let reason = text::clean(reason);
    if reason.is_empty() {
        p.add("input.reason", "a reason is required");
    } else if reason.chars().count() > MAX_REASON {
        p.add(
            "input.reason",
            format!("reason must be at most {MAX_REASON} characters"),
        );
    }
    p.finish()?;
    Ok(reason)
}

/// The stored activity, if the caller may read it (NOT_FOUND otherwise, on the id field) and
/// change it (FORBIDDEN otherwise): its submitter, a leader of its team, or an admin of its
/// unit on its day. A voided activity cannot change any more (CONFLICT).
async fn changeable(
    db: &impl ConnectionTrait,
    principal: &Principal,
    id: i64,
) -> Result<(activity::Model, Chain)> {
    let a = service::get(db, principal, id).await.map_err(|e| match e {
        Error::NotFound(message) => Error::Invalid(vec![UserError::new(
            "input.activityId",
            message,
            ErrorCode::NotFound,
        )]),
        e => e,
    })?;
    let chain = rollup::ancestors_on(db, &a.unit_code, a.occurred_on).await?;
    let scope = principal.scope(Action::CorrectActivities);
    let allowed = scope.all
        || scope.submitter.as_deref() == Some(a.submitter.as_str())
        || scope.teams.contains(&a.team_id)
        || scope.units.iter().any(|u| chain.codes.contains(u));
    if !allowed {
        return Err(Error::forbidden(format!(
            "only the activity's submitter, a leader of its team or an admin of its area may \
             change activity {}",
            ids::encode(ids::ACTIVITY, a.id).0
        )));
    }
    if a.status == ActivityStatus::Voided {
        return Err(Error::Conflict(format!(
            "activity {} is voided; it cannot change any more",
            ids::encode(ids::ACTIVITY, a.id).0
        )));
    }
    Ok((a, chain))
}

async fn outcomes_of(db: &impl ConnectionTrait, id: i64) -> Result<Vec<activity_outcome::Model>> {
    Ok(activity_outcome::Entity::find()
        .filter(activity_outcome::Column::ActivityId.eq(id))
        .order_by_asc(activity_outcome::Column::Id)
        .all(db)
        .await?)
}

/// An activity and its outcomes, as an audit entry shows them.
type Shown<'a> = (&'a activity::Model, &'a [activity_outcome::Model]);

/// The audit entry of a correction or a void: the activity before and after, the reason and
/// the kept version it replaces; it concerns the activity's unit and day after the change.
fn revision(
    action: AuditAction,
    (old, old_outcomes): Shown<'_>,
    (updated, new_outcomes): Shown<'_>,
    reason: &str,
    version: i32,
) -> Change {
    let mut after = snapshot(updated, new_outcomes);
    after["reason"] = reason.into();
    after["replacesVersion"] = version.into();
    Change {
        action,
        entity_id: ids::encode(ids::ACTIVITY, updated.id).0,
        unit_code: Some(updated.unit_code.clone()),
        concerns: Some((updated.occurred_on, Some(updated.occurred_on))),
        before: Some(snapshot(old, old_outcomes)),
        after: Some(after),
    }
}

/// The row and its outcomes as one JSON document (versions and audit entries).
fn snapshot(a: &activity::Model, outcomes: &[activity_outcome::Model]) -> serde_json::Value {
    let mut v = serde_json::to_value(a).unwrap_or_default();
    v["outcomes"] = serde_json::Value::Array(
        outcomes
            .iter()
            .map(|o| {
                serde_json::json!({
                    "service": o.service_code, "people": o.people, "households": o.households
                })
            })
            .collect(),
    );
    v
}

/// Keeps the activity as it was, numbered after the versions already kept.
async fn keep_version(
    txn: &DatabaseTransaction,
    principal: &Principal,
    a: &activity::Model,
    outcomes: &[activity_outcome::Model],
    action: ActivityChange,
    reason: &str,
) -> Result<i32> {
    let rows = query(
        txn,
        "SELECT CAST(COALESCE(MAX(version), 0) AS BIGINT) AS n FROM activity_version \
         WHERE activity_id = ?",
        vec![a.id.into()],
    )
    .await?;
    let last: i64 = match rows.first() {
        Some(r) => r.try_get("", "n")?,
        None => 0,
    };
    let version = i32::try_from(last + 1).unwrap_or(i32::MAX);
    activity_version::ActiveModel {
        activity_id: Set(a.id),
        version: Set(version),
        action: Set(action),
        reason: Set(reason.to_owned()),
        data: Set(snapshot(a, outcomes)),
        changed_by: Set(principal.subject.clone()),
        client_id: Set(principal.client_id.clone()),
        changed_at: Set(Utc::now()),
        ..Default::default()
    }
    .insert(txn)
    .await?;
    Ok(version)
}

/// The kept versions of an activity that the caller may read, oldest first. At most one per
/// change, and changes stop at a void: a short list.
///
/// Each version is read by the activity rule (area.md) on its own day and unit, as the version
/// held them: a caller of the unit's area on that day, or the activity's team's leader, or the
/// REPORTER that submitted it (a correction changes neither the team nor the submitter, so
/// those are the activity's own). A correction that moved the activity across areas thus shows
/// each side only its own versions: a caller that no longer sees the activity (it was moved
/// out of the caller's area) still reads the versions that lay in its area, and nothing of the
/// activity as it is now; one that sees the activity only as it is now reads an empty list.
/// NOT_FOUND when the caller sees neither the activity now nor any of its versions.
pub async fn versions(
    db: &impl ConnectionTrait,
    principal: &Principal,
    id: i64,
) -> Result<Vec<activity_version::Model>> {
    let hidden = match service::get(db, principal, id).await {
        Ok(_) => None,
        Err(not_found @ Error::NotFound(_)) => Some(not_found),
        Err(e) => return Err(e),
    };
    let kept = activity_version::Entity::find()
        .filter(activity_version::Column::ActivityId.eq(id))
        .order_by_asc(activity_version::Column::Version)
        .all(db)
        .await?;
    let scope = principal.scope(Action::ReadActivities);
    let whole = match activity::Entity::find_by_id(id).one(db).await? {
        Some(a) => {
            scope.all
                || scope.teams.contains(&a.team_id)
                || scope.submitter.as_deref() == Some(a.submitter.as_str())
        }
        None => false,
    };
    // The places of the versions, decided in one statement.
    let places = if whole {
        BTreeSet::new()
    } else {
        kept.iter().filter_map(|v| state_place(&v.data)).collect()
    };
    let covered = crate::auth::covered_places(db, &scope, &places).await?;
    let shown: Vec<_> = kept
        .into_iter()
        .filter(|v| whole || state_place(&v.data).is_some_and(|p| covered.contains(&p)))
        .collect();
    match hidden {
        Some(not_found) if shown.is_empty() => Err(not_found),
        _ => Ok(shown),
    }
}

/// The corrected state of an activity: each change given, the old value otherwise.
fn corrected(
    old: &activity::Model,
    old_outcomes: &[activity_outcome::Model],
    changes: Changes,
) -> NewActivity {
    NewActivity {
        // Not an idempotent submission: the key only satisfies the shared checks.
        idempotency_key: "correction".into(),
        team_id: old.team_id,
        kind: changes.kind.unwrap_or_else(|| old.kind_code.clone()),
        occurred_on: changes.occurred_on.unwrap_or(old.occurred_on),
        unit_code: Some(changes.unit_code.unwrap_or_else(|| old.unit_code.clone())),
        title: changes.title.unwrap_or_else(|| old.title.clone()),
        description: changes
            .description
            .unwrap_or_else(|| old.description.clone()),
        participants: changes.participants.unwrap_or(old.participants),
        households_reached: changes.households_reached.unwrap_or(old.households_reached),
        outcomes: changes.outcomes.unwrap_or_else(|| {
            old_outcomes
                .iter()
                .map(|o| NewOutcome {
                    service: o.service_code.clone(),
                    people: o.people,
                    households: o.households,
                })
                .collect()
        }),
    }
}

/// Writes the corrected state `new` (recorded at `unit_code`) over the activity `old` and
/// replaces its outcomes; answers the row and outcomes as stored.
async fn rewrite(
    txn: &DatabaseTransaction,
    old: &activity::Model,
    new: &NewActivity,
    unit_code: &str,
) -> Result<(activity::Model, Vec<activity_outcome::Model>)> {
    let id = old.id;
    let mut row: activity::ActiveModel = old.clone().into();
    row.kind_code = Set(new.kind.clone());
    row.occurred_on = Set(new.occurred_on);
    row.unit_code = Set(unit_code.to_owned());
    row.title = Set(text::clean(&new.title));
    row.description = Set(new
        .description
        .as_deref()
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(text::nfc));
    row.participants = Set(new.participants);
    row.households_reached = Set(new.households_reached);
    row.updated_at = Set(Utc::now());
    let updated = row.update(txn).await?;
    activity_outcome::Entity::delete_many()
        .filter(activity_outcome::Column::ActivityId.eq(id))
        .exec(txn)
        .await?;
    if !new.outcomes.is_empty() {
        activity_outcome::Entity::insert_many(new.outcomes.iter().map(|o| {
            activity_outcome::ActiveModel {
                activity_id: Set(id),
                service_code: Set(o.service.clone()),
                people: Set(o.people),
                households: Set(o.households),
                ..Default::default()
            }
        }))
        .exec(txn)
        .await?;
    }
    let outcomes = outcomes_of(txn, id).await?;
    Ok((updated, outcomes))
}

/// Corrects an activity; answers it as it is now and as it was.
pub async fn correct(
    db: &DatabaseConnection,
    store: &crate::memory::Store,
    principal: &Principal,
    request: Option<&RequestId>,
    id: i64,
    reason: &str,
    changes: Changes,
) -> Result<(activity::Model, activity::Model)> {
    let reason = check_reason(reason)?;
    let (old, old_chain) = changeable(db, principal, id).await?;
    let old_outcomes = outcomes_of(db, id).await?;
    let new = corrected(&old, &old_outcomes, changes);
    // The new state passes every rule of a submission, the caller's area on the new day
    // included, and its day must not be locked.
    let snap = store.catalogues(db).await?;
    let (unit_code, since, _) = super::intake::check(
        &snap.view(),
        principal,
        &new,
        "input",
        crate::units::service::today(),
    )?;
    let cashless = rollup::cashless_services(db).await?;

    let txn = crate::db::begin_write(db).await?;
    crate::locks::service::take_turn(&txn).await?;
    let old = reread(&txn, activity::Entity::find_by_id(id), &old, "activity").await?;
    // Both days are checked (again) inside the transaction, in turn with lock changes.
    let new_chain = rollup::ancestors_on(&txn, &unit_code, new.occurred_on).await?;
    ensure_unlocked(&txn, &old_chain.codes, old.occurred_on, old.occurred_on).await?;
    ensure_unlocked(&txn, &new_chain.codes, new.occurred_on, new.occurred_on).await?;
    let version = keep_version(
        &txn,
        principal,
        &old,
        &old_outcomes,
        ActivityChange::Correct,
        &reason,
    )
    .await?;
    let (updated, new_outcomes) = rewrite(&txn, &old, &new, &unit_code).await?;
    let change = revision(
        AuditAction::CorrectActivity,
        (&old, &old_outcomes),
        (&updated, &new_outcomes),
        &reason,
        version,
    );
    record(&txn, principal, request, change).await?;
    // The rollups last (their rows are held until commit): the old amounts out, the new in,
    // one write.
    let mut cells = BTreeMap::new();
    rollup::add(
        &mut cells,
        &old,
        &old_outcomes,
        old_chain.since,
        &cashless,
        -1.0,
    );
    rollup::add(&mut cells, &updated, &new_outcomes, since, &cashless, 1.0);
    cells.retain(|_, v| *v != 0.0);
    rollup::record(&txn, &cells).await?;
    txn.commit().await?;
    Ok((updated, old))
}

/// Voids an activity; answers it as it is now.
pub async fn void(
    db: &DatabaseConnection,
    principal: &Principal,
    request: Option<&RequestId>,
    id: i64,
    reason: &str,
) -> Result<activity::Model> {
    let reason = check_reason(reason)?;
    let (old, chain) = changeable(db, principal, id).await?;
    let outcomes = outcomes_of(db, id).await?;
    let cashless = rollup::cashless_services(db).await?;

    let txn = crate::db::begin_write(db).await?;
    crate::locks::service::take_turn(&txn).await?;
    let old = reread(&txn, activity::Entity::find_by_id(id), &old, "activity").await?;
    ensure_unlocked(&txn, &chain.codes, old.occurred_on, old.occurred_on).await?;
    let version = keep_version(
        &txn,
        principal,
        &old,
        &outcomes,
        ActivityChange::Void,
        &reason,
    )
    .await?;
    let mut row: activity::ActiveModel = old.clone().into();
    row.status = Set(ActivityStatus::Voided);
    row.updated_at = Set(Utc::now());
    let updated = row.update(&txn).await?;
    let change = revision(
        AuditAction::VoidActivity,
        (&old, &outcomes),
        (&updated, &outcomes),
        &reason,
        version,
    );
    record(&txn, principal, request, change).await?;
    let mut cells = BTreeMap::new();
    rollup::add(&mut cells, &old, &outcomes, chain.since, &cashless, -1.0);
    rollup::record(&txn, &cells).await?;
    txn.commit().await?;
    Ok(updated)
}

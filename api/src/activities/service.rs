//! Activity intake and reading: validation, area checks, period locks, idempotency, audit and
//! rollups, all in one transaction.
use crate::audit::service::RequestId;
use crate::auth::{Action, Columns, Last, Principal, scope_condition};
use crate::db::Where;
use crate::error::{Error, Result};
use crate::ids;
use crate::paging::{PageArgs, Window};
use chrono::NaiveDate;
use cnscd_entity::activity;
use cnscd_entity::codes::ActivityStatus;
use sea_orm::{ConnectionTrait, DatabaseConnection, EntityTrait};

/// Columns of `activity a` for area conditions: an activity concerns the day it happened.
pub const ACTIVITY_COLUMNS: Columns<'static> = Columns {
    unit: "a.unit_code",
    from: "a.occurred_on",
    last: Last::SameDay,
    team: Some("a.team_id"),
    submitter: Some("a.submitter"),
};

pub use super::input::{NewActivity, NewOutcome};

/// Stores an activity once per idempotency key; answers `(activity, replayed)`.
pub async fn submit(
    db: &DatabaseConnection,
    store: &crate::memory::Store,
    pool: &super::intake::Pool,
    principal: &Principal,
    request: Option<&RequestId>,
    input: NewActivity,
) -> Result<(activity::Model, bool)> {
    super::intake::submit(
        db,
        (store, pool),
        principal,
        request,
        vec![Ok(input)],
        false,
        false,
    )
    .await?
    .pop()
    .unwrap_or_else(|| Err(Error::Internal("no answer for the submission".into())))
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
        let (sql, values) = crate::auth::under_indexed(std::slice::from_ref(u), &ACTIVITY_COLUMNS);
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
                ids::global(ids::ACTIVITY, id)
            ))
        })
}

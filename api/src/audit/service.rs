//! Writing and reading audit entries.
use crate::auth::{Action, Columns, Last, Principal, scope_condition};
use crate::db::Where;
use crate::error::{Error, Result};
use crate::graphql::pagination::{PageArgs, Window};
use chrono::{DateTime, NaiveDate, Utc};
use cnscd_entity::audit_entry;
use sea_orm::{ActiveModelTrait, ConnectionTrait, EntityTrait, QuerySelect, Select, Set};

/// The request a change was made in.
#[derive(Clone, Debug, Default)]
pub struct RequestId(pub String);

/// One change to record.
pub struct Change<'a> {
    pub action: &'a str,
    pub entity_type: &'a str,
    pub entity_id: String,
    pub unit_code: Option<String>,
    /// First and last day (null: still going) the changed row concerns after the change, or
    /// before it for a removal; earlier entries of the row are brought to the same days.
    pub concerns: Option<(NaiveDate, Option<NaiveDate>)>,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
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
    change: Change<'_>,
) -> Result<()> {
    // The days an entry concerns are the row's current days: a change that moves them moves
    // them for the row's earlier entries too (their before and after stay as written).
    if let (Some((from, to)), Some(_)) = (change.concerns, &change.before) {
        db.execute_raw(crate::db::stmt(
            db.get_database_backend(),
            "UPDATE audit_entry SET concerns_from = ?, concerns_to = ? \
             WHERE entity_type = ? AND entity_id = ?",
            vec![
                from.into(),
                to.into(),
                change.entity_type.into(),
                change.entity_id.clone().into(),
            ],
        ))
        .await?;
    }
    audit_entry::ActiveModel {
        occurred_at: Set(Utc::now()),
        subject: Set(principal.subject.clone()),
        client_id: Set(principal.client_id.clone()),
        roles: Set(principal.roles_label()),
        action: Set(change.action.to_owned()),
        entity_type: Set(change.entity_type.to_owned()),
        entity_id: Set(change.entity_id),
        unit_code: Set(change.unit_code),
        concerns_from: Set(change.concerns.map(|c| c.0)),
        concerns_to: Set(change.concerns.and_then(|c| c.1)),
        before: Set(change.before),
        after: Set(change.after),
        request_id: Set(request_id.map(|r| r.0.clone())),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok(())
}

/// Records many changes at once (one statement per 100), in the caller's transaction, for
/// rows whose days a change never moves (rows keyed by their period, such as reported
/// figures): earlier entries of the same rows keep their days, so nothing else is updated.
pub async fn record_many(
    db: &impl ConnectionTrait,
    principal: &Principal,
    request_id: Option<&RequestId>,
    changes: Vec<Change<'_>>,
) -> Result<()> {
    let now = Utc::now();
    let rows: Vec<audit_entry::ActiveModel> = changes
        .into_iter()
        .map(|change| audit_entry::ActiveModel {
            occurred_at: Set(now),
            subject: Set(principal.subject.clone()),
            client_id: Set(principal.client_id.clone()),
            roles: Set(principal.roles_label()),
            action: Set(change.action.to_owned()),
            entity_type: Set(change.entity_type.to_owned()),
            entity_id: Set(change.entity_id),
            unit_code: Set(change.unit_code),
            concerns_from: Set(change.concerns.map(|c| c.0)),
            concerns_to: Set(change.concerns.and_then(|c| c.1)),
            before: Set(change.before),
            after: Set(change.after),
            request_id: Set(request_id.map(|r| r.0.clone())),
            ..Default::default()
        })
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

/// Audit entries in the caller's area, newest first.
pub async fn list(
    db: &impl ConnectionTrait,
    principal: &Principal,
    filter: &AuditFilter,
    args: &PageArgs,
) -> Result<(Vec<audit_entry::Model>, Window, u64)> {
    let mut w = Where::new();
    // An entry is in the area when the changed row's unit is, on the day the change was made
    // (Vietnam's day, as everywhere in the service), and on some day the row concerns: an
    // entry says nothing about a row the caller may not see.
    let day = match db.get_database_backend() {
        sea_orm::DbBackend::Postgres => {
            "CAST((e.occurred_at AT TIME ZONE 'UTC') + INTERVAL '7 hours' AS DATE)"
        }
        _ => "date(e.occurred_at, '+7 hours')",
    };
    let concerns_from = format!("COALESCE(e.concerns_from, {day})");
    let scope = principal.scope(Action::ReadAudit);
    for cols in [
        Columns {
            unit: "e.unit_code",
            from: day,
            last: Last::SameDay,
            team: None,
            submitter: None,
        },
        Columns {
            unit: "e.unit_code",
            from: &concerns_from,
            last: Last::Through("e.concerns_to"),
            team: None,
            submitter: None,
        },
    ] {
        if let Some((sql, values)) = scope_condition(&scope, &cols) {
            w.and(sql, values);
        }
    }
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
    crate::db::page::<audit_entry::Entity>(db, "e", "audit_entry e", "e.id DESC", &w, args).await
}

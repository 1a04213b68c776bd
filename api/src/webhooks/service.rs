//! Webhooks as their owners manage them: create (the secret shown once), list, delete, their
//! deliveries, and a failed delivery sent again. ADMIN manages every webhook; UNIT_ADMIN the
//! ones it created, with `under` inside its area.
use super::model::{Event, Status};
use crate::audit::service::{AuditAction, Change, RequestId};
use crate::auth::{Action, Principal, Role};
use crate::error::{Error, Result};
use crate::paging::{PageArgs, Window};
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, FromQueryResult, Value};

/// A stored webhook.
#[derive(Clone, Debug, FromQueryResult)]
pub struct WebhookRow {
    pub id: i64,
    pub url: String,
    pub events: String,
    pub under: Option<String>,
    pub description: Option<String>,
    pub secret: String,
    pub owner_subject: String,
    pub owner_client_id: Option<String>,
    pub owner_roles: String,
    pub owner_units: String,
    pub owner_teams: String,
    pub created_at: DateTime<Utc>,
}

impl WebhookRow {
    /// The owner as it was when it created the webhook: its payloads are what it may read.
    pub fn owner(&self) -> Principal {
        let roles: Vec<Role> = self
            .owner_roles
            .split(',')
            .filter_map(Role::parse)
            .collect();
        let teams: Vec<i64> = self
            .owner_teams
            .split(',')
            .filter_map(|t| t.parse().ok())
            .collect();
        Principal {
            subject: self.owner_subject.clone(),
            role_names: roles.iter().map(|r| r.as_str().to_owned()).collect(),
            roles,
            units: split(&self.owner_units),
            team_ids: teams
                .iter()
                .map(|t| crate::ids::global(crate::ids::TEAM, t))
                .collect(),
            teams,
            client_id: self.owner_client_id.clone(),
        }
    }

    /// The area `under` stands for, as a unit administrator of that unit alone.
    pub fn under_principal(&self) -> Option<Principal> {
        let under = self.under.clone()?;
        Some(Principal {
            subject: self.owner_subject.clone(),
            roles: vec![Role::UnitAdmin],
            role_names: vec![Role::UnitAdmin.as_str().to_owned()],
            units: vec![under],
            teams: Vec::new(),
            team_ids: Vec::new(),
            client_id: self.owner_client_id.clone(),
        })
    }

    pub fn events(&self) -> Vec<Event> {
        Event::split(&self.events)
    }

    /// The webhook as its audit entries hold it: never its secret.
    fn audited(&self) -> serde_json::Value {
        serde_json::json!({
            "url": self.url,
            "events": self.events,
            "under": self.under,
            "description": self.description,
            "created_by": self.owner_subject,
        })
    }

    /// The audit entry of a change to it.
    fn change(&self, action: AuditAction, before: bool) -> Change {
        Change {
            action,
            entity_id: crate::ids::global(crate::ids::WEBHOOK, self.id),
            unit_code: self.under.clone(),
            concerns: None,
            before: before.then(|| self.audited()),
            after: (!before).then(|| self.audited()),
        }
    }
}

fn split(s: &str) -> Vec<String> {
    s.split(',')
        .filter(|x| !x.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A delivery of one event to one webhook.
#[derive(Clone, Debug, FromQueryResult)]
pub struct DeliveryRow {
    pub id: i64,
    pub webhook_id: i64,
    pub audit_id: i64,
    pub event: String,
    pub payload: String,
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// What `createWebhook` asks for.
#[derive(Debug, Clone)]
pub struct NewWebhook {
    pub url: String,
    pub events: Vec<Event>,
    pub under: Option<String>,
    pub description: Option<String>,
}

/// Creates a webhook for the caller; the row holds the secret, shown this once.
pub async fn create(
    db: &DatabaseConnection,
    principal: &Principal,
    request: Option<&RequestId>,
    new: NewWebhook,
    allow_private: bool,
) -> Result<WebhookRow> {
    let url = super::address::check_url(&new.url, allow_private).await?;
    let mut events = new.events;
    events.sort();
    events.dedup();
    if events.is_empty() {
        return Err(Error::invalid("input.events", "name at least one event"));
    }
    crate::text::at_most("input.description", new.description.as_deref(), 500)?;
    let scope = principal.scope(Action::ManageWebhooks);
    let under = new.under.map(|u| u.trim().to_owned());
    if let Some(unit) = &under {
        let known = crate::db::count(
            db,
            "SELECT COUNT(*) AS n FROM admin_unit_code WHERE code = ?",
            vec![unit.clone().into()],
        )
        .await?;
        if known == 0 {
            return Err(Error::invalid(
                "input.under",
                format!("{unit} is not a unit code"),
            ));
        }
        let today = crate::units::service::today();
        if !crate::auth::allows(db, &scope, None, unit, today).await? {
            return Err(Error::forbidden(format!(
                "{unit} is outside the caller's area"
            )));
        }
    } else if !scope.all && scope.units.is_empty() {
        return Err(Error::forbidden("the caller may not manage webhooks"));
    }
    let secret = super::model::new_secret()?;
    let now = Utc::now();
    let values: Vec<Value> = vec![
        url.to_string().into(),
        Event::join(&events).into(),
        under.clone().into(),
        new.description.clone().into(),
        secret.clone().into(),
        principal.subject.clone().into(),
        principal.client_id.clone().into(),
        principal.role_names.join(",").into(),
        principal.units.join(",").into(),
        principal
            .teams
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(",")
            .into(),
        now.into(),
    ];
    let txn = crate::db::begin_write(db).await?;
    let row = WebhookRow::find_by_statement(crate::db::stmt(
        db.get_database_backend(),
        "INSERT INTO webhook (url, events, under, description, secret, owner_subject, \
         owner_client_id, owner_roles, owner_units, owner_teams, created_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING *",
        values,
    ))
    .one(&txn)
    .await?
    .ok_or_else(|| Error::Internal("the webhook was not stored".into()))?;
    let change = row.change(AuditAction::CreateWebhook, false);
    crate::audit::service::record(&txn, principal, request, change).await?;
    txn.commit().await?;
    Ok(row)
}

/// The webhooks the caller manages: every one for ADMIN, its own for UNIT_ADMIN.
pub async fn list(db: &impl ConnectionTrait, principal: &Principal) -> Result<Vec<WebhookRow>> {
    let (condition, values) = managed(principal);
    Ok(WebhookRow::find_by_statement(crate::db::stmt(
        db.get_database_backend(),
        &format!("SELECT * FROM webhook WHERE {condition} ORDER BY id"),
        values,
    ))
    .all(db)
    .await?)
}

/// The webhooks a caller manages, as a condition on `webhook`.
fn managed(principal: &Principal) -> (&'static str, Vec<Value>) {
    let scope = principal.scope(Action::ManageWebhooks);
    if scope.all {
        ("1 = 1", Vec::new())
    } else if scope.units.is_empty() {
        ("1 = 0", Vec::new())
    } else {
        (
            "owner_subject = ? AND COALESCE(owner_client_id, '') = ?",
            vec![
                principal.subject.clone().into(),
                principal.client_id.clone().unwrap_or_default().into(),
            ],
        )
    }
}

/// The webhook with this id, if the caller manages it.
pub async fn get(db: &impl ConnectionTrait, principal: &Principal, id: i64) -> Result<WebhookRow> {
    let (condition, mut values) = managed(principal);
    values.insert(0, id.into());
    WebhookRow::find_by_statement(crate::db::stmt(
        db.get_database_backend(),
        &format!("SELECT * FROM webhook WHERE id = ? AND {condition}"),
        values,
    ))
    .one(db)
    .await?
    .ok_or_else(|| Error::not_found(format!("no webhook the caller manages has id {id}")))
}

/// Deletes a webhook and its deliveries: nothing more is sent to it.
pub async fn delete(
    db: &DatabaseConnection,
    principal: &Principal,
    request: Option<&RequestId>,
    id: i64,
) -> Result<WebhookRow> {
    let txn = crate::db::begin_write(db).await?;
    let row = get(&txn, principal, id).await?;
    txn.execute_raw(crate::db::stmt(
        db.get_database_backend(),
        "DELETE FROM webhook_delivery WHERE webhook_id = ?",
        vec![id.into()],
    ))
    .await?;
    txn.execute_raw(crate::db::stmt(
        db.get_database_backend(),
        "DELETE FROM webhook WHERE id = ?",
        vec![id.into()],
    ))
    .await?;
    let change = row.change(AuditAction::DeleteWebhook, true);
    crate::audit::service::record(&txn, principal, request, change).await?;
    txn.commit().await?;
    Ok(row)
}

/// A webhook's deliveries, newest first.
pub async fn deliveries(
    db: &impl ConnectionTrait,
    principal: &Principal,
    webhook_id: i64,
    status: Option<Status>,
    args: &PageArgs,
) -> Result<(Vec<DeliveryRow>, Window, u64)> {
    get(db, principal, webhook_id).await?;
    let mut w = crate::db::Where::new();
    w.and("d.webhook_id = ?", [webhook_id.into()]);
    if let Some(s) = status {
        w.and("d.status = ?", [s.as_str().into()]);
    }
    let total = crate::db::count(
        db,
        &format!("SELECT COUNT(*) AS n FROM webhook_delivery d{}", w.sql()),
        w.values.clone(),
    )
    .await?;
    let window = args.window(total)?;
    let mut values = w.values.clone();
    values.push((window.limit as i64).into());
    values.push((window.offset as i64).into());
    let rows = DeliveryRow::find_by_statement(crate::db::stmt(
        db.get_database_backend(),
        &format!(
            "SELECT d.* FROM webhook_delivery d{} ORDER BY d.id DESC LIMIT ? OFFSET ?",
            w.sql()
        ),
        values,
    ))
    .all(db)
    .await?;
    Ok((rows, window, total))
}

/// Sends a delivery again, at once and with a new retry window (a failed one, or one still
/// pending; a delivered one too, for a receiver that lost it).
pub async fn redeliver(
    db: &DatabaseConnection,
    principal: &Principal,
    request: Option<&RequestId>,
    delivery_id: i64,
) -> Result<DeliveryRow> {
    let missing = || Error::not_found(format!("no delivery has id {delivery_id}"));
    let found = DeliveryRow::find_by_statement(crate::db::stmt(
        db.get_database_backend(),
        "SELECT * FROM webhook_delivery WHERE id = ?",
        vec![delivery_id.into()],
    ))
    .one(db)
    .await?
    .ok_or_else(missing)?;
    // Not found, rather than forbidden, for a webhook the caller does not manage.
    let webhook = get(db, principal, found.webhook_id)
        .await
        .map_err(|_| missing())?;
    let now = Utc::now();
    let txn = crate::db::begin_write(db).await?;
    let again = DeliveryRow::find_by_statement(crate::db::stmt(
        db.get_database_backend(),
        "UPDATE webhook_delivery SET status = ?, next_attempt_at = ?, created_at = ?, \
         finished_at = NULL WHERE id = ? RETURNING *",
        vec![
            Status::Pending.as_str().into(),
            now.into(),
            now.into(),
            delivery_id.into(),
        ],
    ))
    .one(&txn)
    .await?
    .ok_or_else(missing)?;
    let change = Change {
        action: AuditAction::RedeliverWebhook,
        entity_id: crate::ids::global(crate::ids::WEBHOOK_DELIVERY, delivery_id),
        unit_code: webhook.under.clone(),
        concerns: None,
        before: Some(serde_json::json!({ "status": found.status, "attempts": found.attempts })),
        after: Some(serde_json::json!({ "status": again.status, "attempts": again.attempts })),
    };
    crate::audit::service::record(&txn, principal, request, change).await?;
    txn.commit().await?;
    Ok(again)
}

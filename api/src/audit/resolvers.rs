//! The `auditLog` query.
use super::service::{self, AuditFilter};
use crate::auth::Action;
use crate::graphql::guard::Allowed;
use crate::graphql::pagination::{Conn, PageArgs, connection};
use crate::graphql::{ids, state};
use async_graphql::{Context, ID, Json, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use cnscd_entity::audit_entry;

/// One recorded change.
#[derive(SimpleObject)]
pub struct AuditEntry {
    pub id: ID,
    pub occurred_at: DateTime<Utc>,
    /// Token subject of the caller that made the change.
    pub subject: String,
    pub client_id: Option<String>,
    /// Roles the caller held.
    pub roles: String,
    /// What was done, e.g. `createTeam`.
    pub action: String,
    pub entity_type: String,
    /// Global id of the changed object.
    pub entity_id: String,
    pub unit_code: Option<String>,
    /// State before the change (personal contact data is never recorded).
    pub before: Option<Json<serde_json::Value>>,
    pub after: Option<Json<serde_json::Value>>,
    pub request_id: Option<String>,
}

impl From<audit_entry::Model> for AuditEntry {
    fn from(m: audit_entry::Model) -> Self {
        Self {
            id: ids::encode(ids::AUDIT_ENTRY, m.id),
            occurred_at: m.occurred_at,
            subject: m.subject,
            client_id: m.client_id,
            roles: m.roles,
            action: m.action,
            entity_type: m.entity_type,
            entity_id: m.entity_id,
            unit_code: m.unit_code,
            before: m.before.map(Json),
            after: m.after.map(Json),
            request_id: m.request_id,
        }
    }
}

#[derive(Default)]
pub struct AuditQuery;

#[Object]
impl AuditQuery {
    /// Changes recorded in the caller's area, newest first (ADMIN, UNIT_ADMIN).
    #[graphql(
        guard = "Allowed(Action::ReadAudit)",
        complexity = "crate::graphql::pagination::page_complexity(first, last, child_complexity)"
    )]
    #[allow(clippy::too_many_arguments)]
    async fn audit_log(
        &self,
        ctx: &Context<'_>,
        entity_type: Option<String>,
        #[graphql(desc = "Global id of the changed object.")] entity_id: Option<ID>,
        subject: Option<String>,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<Conn<AuditEntry>> {
        let (db, principal) = state(ctx)?;
        let filter = AuditFilter {
            entity_type,
            entity_id: entity_id.map(|i| i.0),
            subject,
            since,
            until,
        };
        Ok(connection(
            service::list(
                db,
                principal,
                &filter,
                &PageArgs::new(first, after, last, before),
            )
            .await?,
        ))
    }
}

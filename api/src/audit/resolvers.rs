//! The `auditLog` query.
use super::service::{self, AuditFilter, Listed};
use crate::auth::Action;
use crate::error::Error;
use crate::graphql::guard::Allowed;
use crate::graphql::pagination::{Conn, PageArgs, connection, list_field};
use crate::graphql::{ids, state};
use async_graphql::{ComplexObject, Context, ID, Json, Result, SimpleObject};
use chrono::{DateTime, Utc};

/// One recorded change.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct AuditEntry {
    /// Id of the entry.
    pub id: ID,
    /// When the change was made.
    pub occurred_at: DateTime<Utc>,
    /// Token subject of the caller that made the change.
    pub subject: String,
    /// Client (app) of the caller's token, if any.
    pub client_id: Option<String>,
    /// Roles the caller held.
    pub roles: String,
    /// What was done, e.g. `createTeam`.
    pub action: String,
    /// Kind of object changed: Team, Membership, Activity, DataValue, IndicatorTarget,
    /// PeriodLock or IndicatorDefinition.
    pub entity_type: String,
    /// Global id of the changed object.
    pub entity_id: String,
    /// Unit of the changed object when the change was made (the team's unit, where the
    /// activity happened, the unit of the figure, target or lock; null for an indicator
    /// definition).
    pub unit_code: Option<String>,
    /// Unit of the changed object now (as its latest change left it): a correction that moved
    /// an activity to another unit moves it for all the activity's entries. Null for an
    /// indicator definition.
    pub current_unit_code: Option<String>,
    /// Id of the HTTP request that made the change (`x-request-id`).
    pub request_id: Option<String>,
    #[graphql(skip)]
    pub before: Side,
    #[graphql(skip)]
    pub after: Side,
}

/// One side (before or after) of an entry, as the caller may read it.
pub enum Side {
    Shown(Option<serde_json::Value>),
    /// A state of the row the caller may not read (an activity where it lay outside the
    /// caller's area).
    Withheld,
}

impl Side {
    fn of(state: Option<serde_json::Value>, withheld: bool) -> Self {
        if withheld {
            Self::Withheld
        } else {
            Self::Shown(state)
        }
    }

    fn read(&self) -> Result<Option<Json<serde_json::Value>>> {
        match self {
            Self::Shown(state) => Ok(state.clone().map(Json)),
            Self::Withheld => Err(crate::error::Error::forbidden(
                "the caller may not read the activity as it was here (a version is read on \
                 its own day and unit, as activityVersions reads it)",
            )
            .into()),
        }
    }
}

#[ComplexObject]
impl AuditEntry {
    /// State before the change; null for a creation. Personal contact data is never recorded.
    /// An activity's state is read by the rule of `activityVersions` (its own day and unit):
    /// null with a FORBIDDEN error where the caller may not read the activity as it was.
    async fn before(&self) -> Result<Option<Json<serde_json::Value>>> {
        self.before.read()
    }

    /// State after the change (personal contact data is never recorded). An activity's state is
    /// read by the rule of `activityVersions` (its own day and unit): null with a FORBIDDEN
    /// error where the caller may not read the activity as it was after this change.
    async fn after(&self) -> Result<Option<Json<serde_json::Value>>> {
        self.after.read()
    }
}

impl From<Listed> for AuditEntry {
    fn from(l: Listed) -> Self {
        let m = l.entry;
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
            current_unit_code: m.concerns_unit,
            request_id: m.request_id,
            before: Side::of(m.before, l.before_withheld),
            after: Side::of(m.after, l.after_withheld),
        }
    }
}

list_field! {
    /// Reading the audit log.
    AuditQuery,
    /// Changes recorded in the caller's area, newest first (ADMIN, UNIT_ADMIN): an entry is
    /// listed when the changed object's unit was in the area on the day of the change, and the
    /// object as it is now is one the caller may read by its own rule (a team or membership on
    /// some day of it, an activity on its day and at its unit, wherever a correction moved it,
    /// a figure on every day of its period, a target as the indicator value it belongs to, a
    /// lock during its month; an indicator definition's entries only to ADMIN). An activity's
    /// `before` and `after` are read as its versions are (`activityVersions`): null with a
    /// FORBIDDEN error on that path where the activity lay outside the caller's area.
    audit_log(
        #[graphql(
            desc = "Only changes to this kind of object: Team, Membership, Activity, IndicatorTarget, IndicatorDefinition, DataValue or PeriodLock."
        )]
        entity_type: Option<String>,
        #[graphql(desc = "Global id of the changed object.")] entity_id: Option<ID>,
        #[graphql(desc = "Only changes made by this token subject.")] subject: Option<String>,
        #[graphql(desc = "Only changes at or after this time.")] since: Option<DateTime<Utc>>,
        #[graphql(desc = "Only changes at or before this time.")] until: Option<DateTime<Utc>>,
    ) -> Conn<AuditEntry> = list_entries, guard = "Allowed(Action::ReadAudit)"
}

/// A time filter's day must be one the service can write (`since` or `until`).
fn supported_time(name: &str, t: Option<DateTime<Utc>>) -> Result<Option<DateTime<Utc>>> {
    use crate::graphql::scalars::{MAX_DATE, MIN_DATE};
    match t {
        Some(t) if !(MIN_DATE..=MAX_DATE).contains(&t.date_naive()) => Err(Error::invalid(
            name,
            format!("`{name}` {t} is outside the supported range {MIN_DATE} to {MAX_DATE}"),
        )
        .into()),
        _ => Ok(t),
    }
}

async fn list_entries(
    ctx: &Context<'_>,
    entity_type: Option<String>,
    entity_id: Option<ID>,
    subject: Option<String>,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
    page: PageArgs,
) -> Result<Conn<AuditEntry>> {
    let (db, principal) = state(ctx)?;
    let filter = AuditFilter {
        entity_type,
        entity_id: entity_id.map(|i| i.0),
        subject,
        since: supported_time("since", since)?,
        until: supported_time("until", until)?,
    };
    Ok(connection(
        service::list(db, principal, &filter, &page).await?,
    ))
}

//! GraphQL types of activities and their inputs.
use crate::error::UserError;
use crate::graphql::{Date, ids, loaders};
use crate::teams::types::Team;
use crate::units::types::AdminUnit;
use async_graphql::{ComplexObject, Context, Enum, ID, InputObject, Result, SimpleObject};
use chrono::{DateTime, Utc};
use cnscd_entity::{activity, activity_outcome};

/// Whether an activity counts.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "cnscd_entity::codes::ActivityStatus")]
pub enum ActivityStatus {
    /// Counted in lists and indicators; every activity has this status when submitted.
    Recorded,
    /// Voided through an audited change; kept, but counted nowhere.
    Voided,
}

/// What a team did on a day in a unit.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct Activity {
    /// Global id.
    pub id: ID,
    /// Activity kind code, e.g. COMMUNITY_MEETING.
    pub kind: String,
    /// Day it happened.
    pub occurred_on: Date,
    /// Where it happened.
    pub unit_code: String,
    /// Short title.
    pub title: String,
    /// Longer account, when given.
    pub description: Option<String>,
    /// People who attended.
    pub participants: Option<i32>,
    /// Households reached.
    pub households_reached: Option<i32>,
    /// Whether it counts.
    pub status: ActivityStatus,
    /// Token subject that submitted it.
    pub submitted_by: String,
    /// Client (app) that submitted it.
    pub client_id: Option<String>,
    /// When it was stored.
    pub created_at: DateTime<Utc>,
    #[graphql(skip)]
    pub model: activity::Model,
}

impl From<activity::Model> for Activity {
    fn from(m: activity::Model) -> Self {
        Self {
            id: ids::encode(ids::ACTIVITY, m.id),
            kind: m.kind_code.clone(),
            occurred_on: m.occurred_on.into(),
            unit_code: m.unit_code.clone(),
            title: m.title.clone(),
            description: m.description.clone(),
            participants: m.participants,
            households_reached: m.households_reached,
            status: m.status.into(),
            submitted_by: m.submitted_by.clone(),
            client_id: m.client_id.clone(),
            created_at: m.created_at,
            model: m,
        }
    }
}

/// How many people and households an activity helped with one digital service.
#[derive(SimpleObject)]
pub struct ActivityOutcome {
    /// Digital service code, e.g. VNEID.
    pub service: String,
    /// People helped with the service.
    pub people: i32,
    /// Households helped with the service, when counted.
    pub households: Option<i32>,
}

impl From<activity_outcome::Model> for ActivityOutcome {
    fn from(m: activity_outcome::Model) -> Self {
        Self {
            service: m.service_code,
            people: m.people,
            households: m.households,
        }
    }
}

#[ComplexObject]
impl Activity {
    /// The team that did it.
    async fn team(&self, ctx: &Context<'_>) -> Result<Option<Team>> {
        Ok(loaders::<crate::teams::loaders::TeamLoaders>(ctx)?
            .team
            .load_one(self.model.team_id)
            .await?
            .map(Into::into))
    }

    /// The unit where it happened, in its latest version.
    async fn unit(&self, ctx: &Context<'_>) -> Result<Option<AdminUnit>> {
        Ok(loaders::<crate::units::loaders::UnitLoaders>(ctx)?
            .unit
            .load_one(self.model.unit_code.clone())
            .await?
            .map(Into::into))
    }

    /// Results per digital service.
    #[graphql(
        complexity = "crate::graphql::limits::list_complexity(crate::graphql::limits::OUTCOMES_ESTIMATE, child_complexity)"
    )]
    async fn outcomes(&self, ctx: &Context<'_>) -> Result<Vec<ActivityOutcome>> {
        Ok(loaders::<crate::activities::loaders::ActivityLoaders>(ctx)?
            .outcomes
            .load_one(self.model.id)
            .await?
            .unwrap_or_default()
            .into_iter()
            .map(Into::into)
            .collect())
    }
}

/// Submitting one activity. A retry with the same key and input returns the original result.
#[derive(InputObject, Debug, Clone)]
pub struct SubmitActivityInput {
    /// Chosen by the client, unique per submission (a UUID is a good choice), at most 200
    /// characters; a retry with the same key and input returns the original activity.
    pub idempotency_key: String,
    /// The team that did it.
    pub team_id: ID,
    /// Activity kind code.
    pub kind: String,
    /// Day it happened: not in the future, not before the team was founded, and before the
    /// day it was dissolved.
    pub occurred_on: Date,
    /// Where it happened; defaults to the team's unit; may be the team's unit or a unit
    /// containing it.
    pub unit_code: Option<String>,
    /// Short title, at most 200 characters.
    pub title: String,
    /// Longer account, at most 5000 characters.
    pub description: Option<String>,
    /// People who attended, 0 to 100000.
    pub participants: Option<i32>,
    /// Households reached, 0 to 100000.
    pub households_reached: Option<i32>,
    /// Results per digital service: at most 20, each service at most once.
    pub outcomes: Option<Vec<ActivityOutcomeInput>>,
}

/// Result for one digital service.
#[derive(InputObject, Debug, Clone)]
pub struct ActivityOutcomeInput {
    /// Digital service code.
    pub service: String,
    /// People helped with the service, 0 to 100000.
    pub people: i32,
    /// Households helped with the service, 0 to 100000, when counted.
    pub households: Option<i32>,
}

/// Result of `submitActivity`.
#[derive(SimpleObject)]
pub struct SubmitActivityPayload {
    /// The activity stored (by this request or, on a retry, an earlier one); null when there
    /// are user errors.
    pub activity: Option<Activity>,
    /// True when this answers a retry: the activity was stored by an earlier request.
    pub replayed: bool,
    /// What was wrong with the input; empty on success.
    pub user_errors: Vec<UserError>,
}

/// Several activities at once (`submitActivities`), each with its own idempotency key.
#[derive(InputObject, Debug, Clone)]
pub struct SubmitActivitiesInput {
    /// 1 to 500 submissions; keys must differ within the batch.
    pub items: Vec<SubmitActivityInput>,
    /// True: store nothing unless every item passes. False (the default): store the items
    /// that pass, whatever the others.
    #[graphql(default = false)]
    pub atomic: bool,
}

/// Result of `submitActivities`.
#[derive(SimpleObject)]
pub struct SubmitActivitiesPayload {
    /// One result per item, in input order; an item's user errors name fields from
    /// `["items", "<index>", ...]`.
    pub results: Vec<SubmitActivityPayload>,
    /// What was wrong with the batch as a whole (its size); empty otherwise.
    pub user_errors: Vec<UserError>,
}

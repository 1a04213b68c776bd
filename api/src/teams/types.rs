//! GraphQL types of teams: the object, its inputs and payloads.
use crate::error::UserError;
use crate::graphql::{Date, ids};
use async_graphql::{Enum, ID, InputObject, SimpleObject};
use chrono::{DateTime, Utc};
use cnscd_entity::team;

/// Whether a team is working.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "cnscd_entity::codes::TeamStatus")]
pub enum TeamStatus {
    /// Working: not dissolved.
    Active,
    /// Dissolved (giải thể) on `dissolvedOn`; kept as history.
    Dissolved,
}

/// A community digital technology team (Tổ công nghệ số cộng đồng).
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct Team {
    /// Global id.
    pub id: ID,
    /// Team code, unique in the deployment.
    pub code: String,
    /// Team name.
    pub name: String,
    /// Code of the unit (usually a hamlet) the team belongs to.
    pub unit_code: String,
    /// Day the team was founded.
    pub founded_on: Date,
    /// Number of the founding decision (quyết định thành lập).
    pub decision_number: Option<String>,
    /// Date of the founding decision.
    pub decision_date: Option<Date>,
    /// Whether the team is working.
    pub status: TeamStatus,
    /// Day the team was dissolved; it is not active on that day or after. Null while it
    /// works.
    pub dissolved_on: Option<Date>,
    /// Why the team was dissolved, when given.
    pub dissolution_reason: Option<String>,
    /// When the team was recorded.
    pub created_at: DateTime<Utc>,
    /// When the team's record last changed.
    pub updated_at: DateTime<Utc>,
    #[graphql(skip)]
    pub model: team::Model,
}

impl From<team::Model> for Team {
    fn from(m: team::Model) -> Self {
        Self {
            id: ids::encode(ids::TEAM, m.id),
            code: m.code.clone(),
            name: m.name.clone(),
            unit_code: m.unit_code.clone(),
            founded_on: m.founded_on.into(),
            decision_number: m.decision_number.clone(),
            decision_date: m.decision_date.map(Into::into),
            status: m.status.into(),
            dissolved_on: m.dissolved_on.map(Into::into),
            dissolution_reason: m.dissolution_reason.clone(),
            created_at: m.created_at,
            updated_at: m.updated_at,
            model: m,
        }
    }
}

/// Founding a team.
#[derive(InputObject, Debug)]
pub struct CreateTeamInput {
    /// Unit the team belongs to (a hamlet or commune inside the caller's area).
    pub unit_code: String,
    /// Team name, 1 to 200 characters.
    pub name: String,
    /// Team code; generated from the unit code when omitted.
    pub code: Option<String>,
    /// Day the team was founded; not in the future.
    pub founded_on: Date,
    /// Number of the founding decision (quyết định thành lập).
    pub decision_number: Option<String>,
    /// Date of the founding decision; not in the future.
    pub decision_date: Option<Date>,
}

/// Changing a team's details; omitted fields keep their value.
#[derive(InputObject, Debug)]
pub struct UpdateTeamInput {
    /// The team to change.
    pub team_id: ID,
    /// New name, 1 to 200 characters.
    pub name: Option<String>,
    /// New team code: 1 to 40 letters, digits, '-', '_' or '.', unique in the deployment.
    pub code: Option<String>,
    /// New founding day; not in the future nor after the team was dissolved.
    pub founded_on: Option<Date>,
    /// New founding decision number; an empty string clears it.
    pub decision_number: Option<String>,
    /// New founding decision date; not in the future.
    pub decision_date: Option<Date>,
}

/// Dissolving a team: its open memberships end on the same day.
#[derive(InputObject, Debug)]
pub struct DissolveTeamInput {
    /// The team to dissolve.
    pub team_id: ID,
    /// Day the team is dissolved: the team is not active from that day, and its open
    /// memberships end on it. Not in the future nor before the team was founded.
    pub dissolved_on: Date,
    /// Why, at most 1000 characters.
    pub reason: Option<String>,
}

/// Result of a team mutation: the team, or what was wrong.
#[derive(SimpleObject)]
pub struct TeamPayload {
    /// The team after the change; null when there are user errors.
    pub team: Option<Team>,
    /// What was wrong with the input; empty on success.
    pub user_errors: Vec<UserError>,
}

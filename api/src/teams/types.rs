//! GraphQL types of teams: the object, its inputs and payloads.
use crate::activities::types::Activity;
use crate::auth::Action;
use crate::error::{Error, UserError};
use crate::graphql::pagination::Conn;
use crate::graphql::plain::{
    Columns, ConnectionPlan, PageAt, Plan, plan_connection, render_connection,
};
use crate::graphql::{Date, ids, loaders, state};
use crate::members::loaders::MemberRow;
use crate::members::types::{MemberList, MemberPlan, member_plan};
use crate::units::types::AdminUnit;
use async_graphql::parser::types::Field;
use async_graphql::{
    ComplexObject, Context, ContextSelectionSet, Enum, ID, InputObject, InputType, Positioned,
    Result, SimpleObject, Value,
};
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

#[ComplexObject]
impl Team {
    /// The unit the team belongs to.
    async fn unit(&self, ctx: &Context<'_>) -> Result<Option<AdminUnit>> {
        Ok(loaders(ctx)?
            .unit
            .load_one(self.model.unit_code.clone())
            .await?
            .map(Into::into))
    }

    /// Memberships of the team, current ones first; ended ones only with `includeEnded`. Null
    /// (FORBIDDEN) for callers that may not read members.
    #[graphql(
        complexity = "crate::graphql::limits::list_complexity(crate::graphql::limits::MEMBERS_ESTIMATE, child_complexity)"
    )]
    async fn members(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = false, desc = "Also list ended memberships.")] include_ended: bool,
    ) -> Result<Option<MemberList>> {
        let (_, principal) = state(ctx)?;
        if !principal.may(Action::ReadMembers) {
            return Err(Error::forbidden("the caller may not read teams' members").into());
        }
        let rows = loaders(ctx)?
            .memberships
            .load_one(self.model.id)
            .await?
            .unwrap_or_default();
        Ok(Some(MemberList {
            rows,
            include_ended,
        }))
    }

    /// Number of current members the caller may read; null (FORBIDDEN) for callers that may
    /// not read members.
    async fn member_count(&self, ctx: &Context<'_>) -> Result<Option<i32>> {
        let (_, principal) = state(ctx)?;
        if !principal.may(Action::ReadMembers) {
            return Err(Error::forbidden("the caller may not read teams' members").into());
        }
        let all = loaders(ctx)?
            .memberships
            .load_one(self.model.id)
            .await?
            .unwrap_or_default();
        Ok(Some(
            all.iter().filter(|(m, _)| m.ended_on.is_none()).count() as i32,
        ))
    }

    /// The most recent activity recorded for the team, if the caller may read it.
    async fn latest_activity(&self, ctx: &Context<'_>) -> Result<Option<Activity>> {
        let (_, principal) = state(ctx)?;
        if !principal.may(Action::ReadActivities) {
            return Ok(None);
        }
        Ok(loaders(ctx)?
            .latest_activity
            .load_one(self.model.id)
            .await?
            .map(Into::into))
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

/// A page of teams as `Query.teams` answers it (`TeamConnection!` in the schema).
///
/// Resolved in one step when the selection is plain (see [`crate::graphql::plain`]): the
/// connection's own fields, the team's columns ([`TEAM`]) and `members` with a plain selection
/// (see [`MemberList`]; its `includeEnded` is read from the field's own context, so variables
/// and the default apply). Any other selection (`unit`, `memberCount`, `latestActivity`,
/// directives, a caller that may not read members, ...) and any error of the member rows go
/// through the normal resolution, so the answers and errors are the same either way.
pub struct TeamPage {
    pub rows: Vec<team::Model>,
    pub window: crate::graphql::pagination::Window,
    pub total: u64,
}

/// A team's fields the one-step path answers from its row.
pub const TEAM: Columns<team::Model> = Columns {
    type_name: "Team",
    fields: &[
        ("id", |t| Value::String(ids::encode(ids::TEAM, t.id).0)),
        ("code", |t| Value::String(t.code.clone())),
        ("name", |t| Value::String(t.name.clone())),
        ("unitCode", |t| Value::String(t.unit_code.clone())),
        ("foundedOn", |t| Date(t.founded_on).to_value()),
        ("decisionNumber", |t| t.decision_number.clone().into()),
        ("decisionDate", |t| {
            t.decision_date.map_or(Value::Null, |d| Date(d).to_value())
        }),
        ("status", |t| TeamStatus::from(t.status).to_value()),
        ("dissolvedOn", |t| {
            t.dissolved_on.map_or(Value::Null, |d| Date(d).to_value())
        }),
        ("dissolutionReason", |t| t.dissolution_reason.clone().into()),
        ("createdAt", |t| t.created_at.to_value()),
        ("updatedAt", |t| t.updated_at.to_value()),
    ],
};

/// Team fields the one-step path plans itself (from more than the row).
pub const TEAM_NESTED: &[&str] = &["members"];
/// Team fields only the normal resolution answers: they read other rows or the caller.
pub const TEAM_NORMAL: &[&str] = &["unit", "memberCount", "latestActivity"];

/// `members` of a team in a one-step plan: its `includeEnded` and the plan of its selection.
struct MembersOf {
    include_ended: bool,
    plan: MemberPlan,
}

/// The plan of the one-step path for the selection `ctx` holds on `TeamConnection`, and
/// whether it lists members; `None` when the selection is not plain.
fn page_plan<'a>(ctx: &ContextSelectionSet<'a>) -> Option<(ConnectionPlan<TeamPlan>, bool)> {
    let members = std::cell::Cell::new(false);
    let nested = |f: &'a Positioned<Field>| {
        if f.node.name.node.as_str() != "members"
            || f.node
                .arguments
                .iter()
                .any(|(n, _)| n.node != "includeEnded")
        {
            return None;
        }
        // The field's own context: its arguments (variables, default) as the resolver reads
        // them; a value the resolver would reject sends the page the normal way.
        let field_ctx = ctx.with_field(f);
        let (_, include_ended) = field_ctx
            .param_value::<bool>("includeEnded", Some(|| false))
            .ok()?;
        let plan = member_plan(&field_ctx.with_selection_set(&f.node.selection_set))?;
        members.set(true);
        Some(MembersOf {
            include_ended,
            plan,
        })
    };
    let plan = plan_connection(ctx, "TeamConnection", "TeamEdge", |set| {
        TEAM.plan(ctx, set, nested)
    })?;
    Some((plan, members.get()))
}

/// The one-step plan of a team's selection.
type TeamPlan = Plan<team::Model, MembersOf>;

impl TeamPage {
    /// The connection async-graphql resolves field by field.
    fn connection(&self) -> Conn<Team> {
        crate::graphql::pagination::connection((self.rows.clone(), self.window, self.total))
    }

    /// The answer to a plain selection, built from the rows; `members` holds each team's
    /// member rows when the plan lists members.
    fn render(
        &self,
        plan: &ConnectionPlan<TeamPlan>,
        members: &std::collections::HashMap<i64, std::sync::Arc<Vec<MemberRow>>>,
    ) -> Value {
        let at = PageAt {
            offset: self.window.offset,
            len: self.rows.len(),
            total: self.total,
        };
        render_connection(plan, &self.rows, at, |t, team| {
            TEAM.render(t, team, |m| {
                MemberList {
                    rows: members.get(&t.id).cloned().unwrap_or_default(),
                    include_ended: m.include_ended,
                }
                .render(&m.plan)
            })
        })
    }
}

impl async_graphql::OutputType for TeamPage {
    fn type_name() -> std::borrow::Cow<'static, str> {
        <Conn<Team> as async_graphql::OutputType>::type_name()
    }

    fn qualified_type_name() -> String {
        <Conn<Team> as async_graphql::OutputType>::qualified_type_name()
    }

    fn create_type_info(registry: &mut async_graphql::registry::Registry) -> String {
        <Conn<Team> as async_graphql::OutputType>::create_type_info(registry)
    }

    async fn resolve(
        &self,
        ctx: &ContextSelectionSet<'_>,
        field: &Positioned<Field>,
    ) -> async_graphql::ServerResult<Value> {
        let plan = page_plan(ctx).and_then(|(plan, members)| {
            // A caller that may not read members gets the resolver's error, the normal way.
            let readable = !members
                || state(&ctx.with_field(field)).is_ok_and(|(_, p)| p.may(Action::ReadMembers));
            readable.then_some((plan, members))
        });
        if let Some((plan, members)) = plan {
            let rows = if members {
                let field_ctx = ctx.with_field(field);
                match loaders(&field_ctx) {
                    Ok(l) => l
                        .memberships
                        .load_many(self.rows.iter().map(|t| t.id))
                        .await
                        .ok(),
                    Err(_) => None,
                }
            } else {
                Some(Default::default())
            };
            // An error of the rows is left to the normal resolution (which reads them again).
            if let Some(rows) = rows {
                return Ok(self.render(&plan, &rows));
            }
        }
        async_graphql::OutputType::resolve(&self.connection(), ctx, field).await
    }
}

//! What a team answers beyond its row (its unit, members, latest activity), and a page of
//! teams answered in one step when its selection is plain: the fields that reach into other
//! features, apart from the team's own type so that those features' types can name `Team`.
use super::types::{Team, TeamStatus};
use crate::activities::types::Activity;
use crate::auth::Action;
use crate::error::Error;
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
    ComplexObject, Context, ContextSelectionSet, InputType, Positioned, Result, Value,
};
use cnscd_entity::team;

#[ComplexObject]
impl Team {
    /// The unit the team belongs to.
    async fn unit(&self, ctx: &Context<'_>) -> Result<Option<AdminUnit>> {
        Ok(loaders::<crate::units::loaders::UnitLoaders>(ctx)?
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
        let rows = loaders::<crate::members::loaders::MemberLoaders>(ctx)?
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
        let all = loaders::<crate::members::loaders::MemberLoaders>(ctx)?
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
        Ok(loaders::<crate::teams::loaders::TeamLoaders>(ctx)?
            .latest_activity
            .load_one(self.model.id)
            .await?
            .map(Into::into))
    }
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
                match loaders::<crate::members::loaders::MemberLoaders>(&field_ctx) {
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

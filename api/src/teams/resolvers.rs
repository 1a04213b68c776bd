//! Team queries and mutations: guard, convert, delegate.
use super::fields::TeamPage;
use super::service::{self, NewTeam, TeamChanges, TeamFilter};
use super::types::{
    CreateTeamInput, DissolveTeamInput, Team, TeamPayload, TeamStatus, UpdateTeamInput,
};
use crate::audit::service::RequestId;
use crate::auth::Action;
use crate::error::into_payload;
use crate::graphql::guard::Allowed;
use crate::graphql::pagination::{PageArgs, list_field};
use crate::graphql::{Date, ids, state};
use async_graphql::{Context, ID, Object, Result};

#[derive(Default)]
pub struct TeamQuery;

#[Object]
impl TeamQuery {
    /// The team with this id, if it is in the caller's area.
    #[graphql(guard = "Allowed(Action::ReadTeams)")]
    async fn team(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Global id of the team.")] id: ID,
    ) -> Result<Option<Team>> {
        let (db, principal) = state(ctx)?;
        let id = ids::decode_as(ids::TEAM, &id)?;
        Ok(Some(
            service::get(db, principal, Action::ReadTeams, id)
                .await?
                .into(),
        ))
    }
}

list_field! {
    /// The list of teams (a team by id is [`TeamQuery`]'s).
    TeamListQuery,
    /// Teams in the caller's area.
    teams(
        #[graphql(desc = "Only teams in this unit or under it.")] under: Option<String>,
        #[graphql(desc = "Only teams of exactly this unit.")] unit_code: Option<String>,
        #[graphql(desc = "Only teams with this status.")] status: Option<TeamStatus>,
        #[graphql(desc = "Only teams active on this day.")] active_on: Option<Date>,
        #[graphql(desc = "Part of the name, diacritics ignored, or an exact code.")]
        search: Option<String>,
    ) -> TeamPage = list_teams, guard = "Allowed(Action::ReadTeams)"
}

async fn list_teams(
    ctx: &Context<'_>,
    under: Option<String>,
    unit_code: Option<String>,
    status: Option<TeamStatus>,
    active_on: Option<Date>,
    search: Option<String>,
    page: PageArgs,
) -> Result<TeamPage> {
    let (db, principal) = state(ctx)?;
    let filter = TeamFilter {
        under,
        unit_code,
        status: status.map(Into::into),
        search,
        active_on: active_on.map(|d| d.0),
    };
    let with_total = ctx.look_ahead().field("totalCount").exists();
    let (rows, window, total) = service::list(db, principal, &filter, &page, with_total).await?;
    Ok(TeamPage {
        rows,
        window,
        total,
    })
}

#[derive(Default)]
pub struct TeamMutation;

#[Object]
impl TeamMutation {
    /// Founds a team in a unit of the caller's area (ADMIN, UNIT_ADMIN).
    #[graphql(guard = "Allowed(Action::ManageTeams)")]
    async fn create_team(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The team to found.")] input: CreateTeamInput,
    ) -> Result<TeamPayload> {
        let (db, principal) = state(ctx)?;
        let new = NewTeam {
            unit_code: input.unit_code.trim().to_owned(),
            name: input.name,
            code: input.code,
            founded_on: input.founded_on.0,
            decision_number: input.decision_number,
            decision_date: input.decision_date.map(|d| d.0),
        };
        let result = service::create(db, principal, ctx.data_opt::<RequestId>(), new).await;
        let (team, user_errors) = into_payload(result)?;
        Ok(TeamPayload {
            team: team.map(Into::into),
            user_errors,
        })
    }

    /// Changes a team's name, code, founding date or decision (ADMIN, UNIT_ADMIN).
    #[graphql(guard = "Allowed(Action::ManageTeams)")]
    async fn update_team(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The team and the changes.")] input: UpdateTeamInput,
    ) -> Result<TeamPayload> {
        let (db, principal) = state(ctx)?;
        let result = async {
            let id = ids::input_id(ids::TEAM, "input.teamId", &input.team_id)?;
            let changes = TeamChanges {
                name: input.name,
                code: input.code,
                founded_on: input.founded_on.map(|d| d.0),
                decision_number: input.decision_number,
                decision_date: input.decision_date.map(|d| d.0),
            };
            service::update(db, principal, ctx.data_opt::<RequestId>(), id, changes).await
        }
        .await;
        let (team, user_errors) = into_payload(result)?;
        Ok(TeamPayload {
            team: team.map(Into::into),
            user_errors,
        })
    }

    /// Dissolves a team; its open memberships end the same day (ADMIN, UNIT_ADMIN).
    #[graphql(guard = "Allowed(Action::ManageTeams)")]
    async fn dissolve_team(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The team, the day and the reason.")] input: DissolveTeamInput,
    ) -> Result<TeamPayload> {
        let (db, principal) = state(ctx)?;
        let result = async {
            let id = ids::input_id(ids::TEAM, "input.teamId", &input.team_id)?;
            service::dissolve(
                db,
                principal,
                ctx.data_opt::<RequestId>(),
                id,
                input.dissolved_on.0,
                input.reason,
            )
            .await
        }
        .await;
        let (team, user_errors) = into_payload(result)?;
        Ok(TeamPayload {
            team: team.map(Into::into),
            user_errors,
        })
    }
}

//! Member queries and mutations: guard, convert, delegate.
use super::service::{self, MemberFilter, MembershipChanges, NewMember, PersonFields};
use super::types::{
    AddMemberInput, EndMembershipInput, MemberRole, Membership, MembershipPayload, PersonInput,
    UpdateMembershipInput,
};
use crate::audit::service::RequestId;
use crate::auth::Action;
use crate::error::into_payload;
use crate::graphql::guard::Allowed;
use crate::graphql::pagination::{Conn, PageArgs, connection, list_field};
use crate::graphql::{ids, state};
use async_graphql::{Context, ID, Object, Result};

fn person_fields(p: PersonInput) -> PersonFields {
    PersonFields {
        full_name: p.full_name,
        gender: p.gender.map(Into::into),
        birth_year: p.birth_year,
        phone: p.phone,
        email: p.email,
    }
}

fn payload(
    result: crate::error::Result<cnscd_entity::membership::Model>,
) -> Result<MembershipPayload> {
    let (membership, user_errors) = into_payload(result)?;
    Ok(MembershipPayload {
        membership: membership.map(Into::into),
        user_errors,
    })
}

list_field! {
    /// Reading memberships.
    MemberQuery,
    /// Memberships of teams whose members the caller may read.
    members(
        #[graphql(desc = "Only memberships of this team.")] team_id: Option<ID>,
        #[graphql(desc = "Only members of teams in this unit or under it.")] under: Option<String>,
        #[graphql(desc = "Only memberships with this role.")] role: Option<MemberRole>,
        #[graphql(desc = "Only memberships with this affiliation code.")]
        affiliation: Option<String>,
        #[graphql(desc = "true: current memberships; false: ended ones; null: both.")]
        active: Option<bool>,
        #[graphql(desc = "Part of the member's name, diacritics ignored.")] search: Option<String>,
    ) -> Conn<Membership> = list_members, guard = "Allowed(Action::ReadMembers)"
}

#[allow(clippy::too_many_arguments)]
async fn list_members(
    ctx: &Context<'_>,
    team_id: Option<ID>,
    under: Option<String>,
    role: Option<MemberRole>,
    affiliation: Option<String>,
    active: Option<bool>,
    search: Option<String>,
    page: PageArgs,
) -> Result<Conn<Membership>> {
    let (db, principal) = state(ctx)?;
    let filter = MemberFilter {
        team_id: team_id
            .map(|id| ids::input_id(ids::TEAM, "teamId", &id))
            .transpose()?,
        under,
        role: role.map(Into::into),
        affiliation,
        active,
        search,
    };
    Ok(connection(
        service::list(db, principal, &filter, &page).await?,
    ))
}

#[derive(Default)]
pub struct MemberMutation;

#[Object]
impl MemberMutation {
    /// Adds a person to a team (ADMIN, UNIT_ADMIN of the area, TEAM_LEADER of the team).
    #[graphql(guard = "Allowed(Action::ManageMembers)")]
    async fn add_member(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The team, the person and the membership.")] input: AddMemberInput,
    ) -> Result<MembershipPayload> {
        let (db, principal) = state(ctx)?;
        let result = async {
            let team_id = ids::input_id(ids::TEAM, "input.teamId", &input.team_id)?;
            let new = NewMember {
                team_id,
                person: person_fields(input.person),
                role: input.role.into(),
                affiliation: input.affiliation.trim().to_owned(),
                started_on: input.started_on.0,
            };
            service::add(db, principal, ctx.data_opt::<RequestId>(), new).await
        }
        .await;
        payload(result)
    }

    /// Changes a current membership's role or affiliation, or corrects the member's details.
    #[graphql(guard = "Allowed(Action::ManageMembers)")]
    async fn update_membership(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The membership and the changes.")] input: UpdateMembershipInput,
    ) -> Result<MembershipPayload> {
        let (db, principal) = state(ctx)?;
        let result = async {
            let id = ids::input_id(ids::MEMBERSHIP, "input.membershipId", &input.membership_id)?;
            let changes = MembershipChanges {
                role: input.role.map(Into::into),
                affiliation: input.affiliation.map(|a| a.trim().to_owned()),
                person: input.person.map(person_fields),
            };
            service::update(db, principal, ctx.data_opt::<RequestId>(), id, changes).await
        }
        .await;
        payload(result)
    }

    /// Ends a membership; the row stays as history.
    #[graphql(guard = "Allowed(Action::ManageMembers)")]
    async fn end_membership(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The membership, its last day and the reason.")] input: EndMembershipInput,
    ) -> Result<MembershipPayload> {
        let (db, principal) = state(ctx)?;
        let result = async {
            let id = ids::input_id(ids::MEMBERSHIP, "input.membershipId", &input.membership_id)?;
            service::end(
                db,
                principal,
                ctx.data_opt::<RequestId>(),
                id,
                input.ended_on.0,
                input.reason,
            )
            .await
        }
        .await;
        payload(result)
    }
}

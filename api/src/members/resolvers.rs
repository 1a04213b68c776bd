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
use crate::graphql::pagination::{Conn, PageArgs, connection};
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

#[derive(Default)]
pub struct MemberQuery;

#[Object]
impl MemberQuery {
    /// Memberships of teams whose members the caller may read.
    #[graphql(
        guard = "Allowed(Action::ReadMembers)",
        complexity = "crate::graphql::pagination::page_complexity(first, last, child_complexity)"
    )]
    #[allow(clippy::too_many_arguments)]
    async fn members(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only memberships of this team.")] team_id: Option<ID>,
        #[graphql(desc = "Only members of teams in this unit or under it.")] under: Option<String>,
        #[graphql(desc = "Only memberships with this role.")] role: Option<MemberRole>,
        #[graphql(desc = "Only memberships with this affiliation code.")] affiliation: Option<
            String,
        >,
        #[graphql(desc = "true: current memberships; false: ended ones; null: both.")]
        active: Option<bool>,
        #[graphql(desc = "Part of the member's name, diacritics ignored.")] search: Option<String>,
        #[graphql(
            desc = "Number of items from the start of the list (after `after`), 0 to 100; 20 when neither `first` nor `last` is given."
        )]
        first: Option<i32>,
        #[graphql(desc = "Cursor of an edge: only items after it.")] after: Option<String>,
        #[graphql(
            desc = "Number of items from the end of the list (before `before`), 0 to 100; not with `first`."
        )]
        last: Option<i32>,
        #[graphql(desc = "Cursor of an edge: only items before it.")] before: Option<String>,
    ) -> Result<Conn<Membership>> {
        let (db, principal) = state(ctx)?;
        let team_id = match team_id {
            Some(id) => Some(ids::input_id(ids::TEAM, "teamId", &id)?),
            None => None,
        };
        let filter = MemberFilter {
            team_id,
            under,
            role: role.map(Into::into),
            affiliation,
            active,
            search,
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

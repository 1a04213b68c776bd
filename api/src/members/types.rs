//! GraphQL types of members: memberships, persons (with personal data guarded), inputs.
use crate::error::{Error, UserError};
use crate::graphql::plain::{Columns, Leaf, Plan, no_arguments};
use crate::graphql::{Date, ids, loaders};
use crate::members::loaders::MemberRow;
pub use crate::members::loaders::{ListedMembership, PersonData};
use crate::teams::types::Team;
use async_graphql::parser::types::Field;
use async_graphql::{
    ComplexObject, Context, ContextSelectionSet, Enum, ID, InputObject, InputType, Positioned,
    Result, SimpleObject, Value,
};
use cnscd_entity::membership;
use std::sync::Arc;

/// Role in a team.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "cnscd_entity::codes::MemberRole")]
pub enum MemberRole {
    /// Tổ trưởng; a team has at most one at a time.
    Leader,
    /// Tổ phó.
    Deputy,
    /// Thành viên.
    Member,
}

/// A person's gender, as the person gives it.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "cnscd_entity::codes::Gender")]
pub enum Gender {
    /// Nam.
    Male,
    /// Nữ.
    Female,
    /// Another gender.
    Other,
}

/// A person's membership of a team, from the day it started to the day it ended.
// Serial: a membership's fields are resolved one after the other, without a concurrent set of
// futures per object. Lists hold hundreds of memberships, and their fields are cheap (the
// person comes with the membership); the list itself still resolves its items together, so
// each loader still gets one batch for the whole list.
#[derive(SimpleObject)]
#[graphql(complex, serial)]
pub struct Membership {
    /// Global id.
    pub id: ID,
    /// Role in the team.
    pub role: MemberRole,
    /// Affiliation code (see the affiliations catalogue), e.g. YOUTH_UNION.
    pub affiliation: String,
    /// First day of the membership.
    pub started_on: Date,
    /// Last day of the membership; null while it lasts.
    pub ended_on: Option<Date>,
    /// Why the membership ended, when given ("team dissolved" when it ended with its team).
    pub end_reason: Option<String>,
    #[graphql(skip)]
    pub keys: MembershipKeys,
    /// The person, when it was read with the membership (lists); otherwise `person` loads it.
    #[graphql(skip)]
    pub person: Option<Arc<PersonData>>,
}

/// The keys of a membership its fields resolve with.
#[derive(Clone, Copy, Debug)]
pub struct MembershipKeys {
    pub id: i64,
    pub team_id: i64,
    pub person_id: i64,
}

impl Membership {
    /// A membership read together with its person (lists).
    pub fn with_person(m: &ListedMembership, person: Arc<PersonData>) -> Self {
        Self {
            person: Some(person),
            id: ids::encode(ids::MEMBERSHIP, m.id),
            role: m.role.into(),
            affiliation: m.affiliation.clone(),
            started_on: m.started_on.into(),
            ended_on: m.ended_on.map(Into::into),
            end_reason: m.end_reason.clone(),
            keys: MembershipKeys {
                id: m.id,
                team_id: m.team_id,
                person_id: m.person_id,
            },
        }
    }
}

impl From<membership::Model> for Membership {
    fn from(m: membership::Model) -> Self {
        Self {
            person: None,
            id: ids::encode(ids::MEMBERSHIP, m.id),
            role: m.role.into(),
            affiliation: m.affiliation,
            started_on: m.started_on.into(),
            ended_on: m.ended_on.map(Into::into),
            end_reason: m.end_reason,
            keys: MembershipKeys {
                id: m.id,
                team_id: m.team_id,
                person_id: m.person_id,
            },
        }
    }
}

#[ComplexObject]
impl Membership {
    /// Whether the membership is open: no end date has been recorded.
    async fn active(&self) -> bool {
        self.ended_on.is_none()
    }

    /// The team.
    async fn team(&self, ctx: &Context<'_>) -> Result<Option<Team>> {
        Ok(loaders::<crate::teams::loaders::TeamLoaders>(ctx)?
            .team
            .load_one(self.keys.team_id)
            .await?
            .map(Into::into))
    }

    /// The member. Contact details and birth year are personal data: only ADMIN, UNIT_ADMIN
    /// of the area and the team's TEAM_LEADER may read them.
    async fn person(&self, ctx: &Context<'_>) -> Result<Option<Person>> {
        if let Some(p) = &self.person {
            return Ok(Some(Person {
                model: p.clone(),
                membership_id: self.keys.id,
            }));
        }
        Ok(loaders::<crate::members::loaders::MemberLoaders>(ctx)?
            .person
            .load_one(self.keys.person_id)
            .await?
            .map(|p| Person {
                model: Arc::new(p.into()),
                membership_id: self.keys.id,
            }))
    }
}

/// A team member. Full name and gender are public; the rest is personal data.
pub struct Person {
    pub model: Arc<PersonData>,
    /// The membership through which the person was reached: it decides who reads personal
    /// data.
    pub membership_id: i64,
}

impl Person {
    async fn personal<T>(&self, ctx: &Context<'_>, value: T) -> Result<T> {
        let readable = loaders::<crate::members::loaders::MemberLoaders>(ctx)?
            .personal_data
            .load_one(self.membership_id)
            .await?
            .unwrap_or(false);
        if readable {
            Ok(value)
        } else {
            Err(Error::forbidden("the caller may not read members' personal data").into())
        }
    }
}

/// A team member. Full name and gender are public; birth year, phone and email are personal
/// data.
// Serial, like `Membership`: the personal-data loader caches per request, so the second
// personal field of a person costs no statement.
#[async_graphql::Object(serial)]
impl Person {
    /// Full name, in Unicode NFC.
    async fn full_name(&self) -> &str {
        &self.model.full_name
    }

    /// Gender, when given.
    async fn gender(&self) -> Option<Gender> {
        self.model.gender.map(Into::into)
    }

    /// Personal data.
    async fn birth_year(&self, ctx: &Context<'_>) -> Result<Option<i32>> {
        self.personal(ctx, self.model.birth_year).await
    }

    /// Personal data.
    async fn phone(&self, ctx: &Context<'_>) -> Result<Option<String>> {
        self.personal(ctx, self.model.phone.clone()).await
    }

    /// Personal data.
    async fn email(&self, ctx: &Context<'_>) -> Result<Option<String>> {
        self.personal(ctx, self.model.email.clone()).await
    }
}

/// A person joining a team. The service stores no citizen ID numbers.
#[derive(InputObject, Debug, Clone)]
pub struct PersonInput {
    /// Full name, 1 to 100 characters, without digits.
    pub full_name: String,
    /// Gender, when the person gives it.
    pub gender: Option<Gender>,
    /// Year of birth, from 1900 to ten years before the current year. Personal data.
    pub birth_year: Option<i32>,
    /// Phone number: 9 to 15 digits, optionally after a +; spaces are ignored. Personal data.
    pub phone: Option<String>,
    /// Email address, stored in lower case. Personal data.
    pub email: Option<String>,
}

/// Adding a member to a team.
#[derive(InputObject, Debug)]
pub struct AddMemberInput {
    /// The team to join; it must not be dissolved.
    pub team_id: ID,
    /// The new member.
    pub person: PersonInput,
    /// Role in the team; a team has at most one current LEADER (tổ trưởng).
    pub role: MemberRole,
    /// Affiliation code, e.g. YOUTH_UNION.
    pub affiliation: String,
    /// First day of the membership; not in the future nor before the team was founded.
    pub started_on: Date,
}

/// Changing a membership's role or affiliation, or correcting the member's details.
#[derive(InputObject, Debug)]
pub struct UpdateMembershipInput {
    /// The membership to change; it must not have ended.
    pub membership_id: ID,
    /// New role; a team has at most one current LEADER (tổ trưởng).
    pub role: Option<MemberRole>,
    /// New affiliation code.
    pub affiliation: Option<String>,
    /// Replaces the member's details when given.
    pub person: Option<PersonInput>,
}

/// Ending a membership (the row is kept as history).
#[derive(InputObject, Debug)]
pub struct EndMembershipInput {
    /// The membership to end; it must not have ended already.
    pub membership_id: ID,
    /// Last day of the membership; not in the future nor before it started.
    pub ended_on: Date,
    /// Why it ended, at most 1000 characters.
    pub reason: Option<String>,
}

/// Result of a membership mutation.
#[derive(SimpleObject)]
pub struct MembershipPayload {
    /// The membership after the change; null when there are user errors.
    pub membership: Option<Membership>,
    /// What was wrong with the input; empty on success.
    pub user_errors: Vec<UserError>,
}

/// A team's memberships as `Team.members` lists them (`[Membership!]` in the schema: null, with
/// FORBIDDEN, for a caller that may not read members), read with their persons.
///
/// Resolved in one step when the selection is plain: fields without arguments or directives
/// (possibly inside fragments on `Membership` or `Person` without directives), no field asked
/// twice under one name, and of the person only `fullName`, `gender` and `__typename` (the
/// public fields). The answer is then built straight from the rows, instead of a future and a
/// map entry per field of every membership and person (async-graphql's way, about a third of
/// the benchmarked list's CPU by profile). Any other selection (`team`, personal data, directives, ...) is
/// resolved the normal way, so the answers and errors are the same either way.
pub struct MemberList {
    pub rows: Arc<Vec<crate::members::loaders::MemberRow>>,
    pub include_ended: bool,
}

impl MemberList {
    fn listed(&self) -> impl Iterator<Item = &crate::members::loaders::MemberRow> {
        let include_ended = self.include_ended;
        self.rows
            .iter()
            .filter(move |(m, _)| include_ended || m.ended_on.is_none())
    }
}

/// A membership's fields the one-step path answers from its row.
pub const MEMBERSHIP: Columns<MemberRow> = Columns {
    type_name: "Membership",
    fields: &[
        ("id", |(m, _)| {
            Value::String(ids::encode(ids::MEMBERSHIP, m.id).0)
        }),
        ("role", |(m, _)| MemberRole::from(m.role).to_value()),
        ("affiliation", |(m, _)| Value::String(m.affiliation.clone())),
        ("startedOn", |(m, _)| Date(m.started_on).to_value()),
        ("endedOn", |(m, _)| {
            m.ended_on.map_or(Value::Null, |d| Date(d).to_value())
        }),
        ("endReason", |(m, _)| m.end_reason.clone().into()),
        ("active", |(m, _)| Value::Boolean(m.ended_on.is_none())),
    ],
};
/// Membership fields the one-step path plans itself.
pub const MEMBERSHIP_NESTED: &[&str] = &["person"];
/// Membership fields only the normal resolution answers.
pub const MEMBERSHIP_NORMAL: &[&str] = &["team"];

/// A person's public fields, which the one-step path answers.
pub const PERSON: Columns<PersonData> = Columns {
    type_name: "Person",
    fields: &[
        ("fullName", |p| Value::String(p.full_name.clone())),
        ("gender", |p| {
            p.gender.map_or(Value::Null, |g| Gender::from(g).to_value())
        }),
    ],
};
/// Person fields only the normal resolution answers: personal data, which depends on who asks.
pub const PERSON_NORMAL: &[&str] = &["birthYear", "phone", "email"];

/// The plan of the one-step path for a plain selection on `Membership` (see [`MemberList`]).
pub(crate) type MemberPlan = Plan<MemberRow, Plan<PersonData, Leaf>>;

/// The plan of the one-step path for the selection `ctx` holds on `Membership`, if it is plain.
pub(crate) fn member_plan(ctx: &ContextSelectionSet<'_>) -> Option<MemberPlan> {
    MEMBERSHIP.plan(ctx, &ctx.item.node, |f| {
        match (f.node.name.node.as_str(), no_arguments(f)) {
            ("person", Some(())) => PERSON.plan_leaves(ctx, &f.node.selection_set.node),
            _ => None,
        }
    })
}

impl async_graphql::OutputType for MemberList {
    fn type_name() -> std::borrow::Cow<'static, str> {
        <Vec<Membership> as async_graphql::OutputType>::type_name()
    }

    fn qualified_type_name() -> String {
        <Vec<Membership> as async_graphql::OutputType>::qualified_type_name()
    }

    fn create_type_info(registry: &mut async_graphql::registry::Registry) -> String {
        <Vec<Membership> as async_graphql::OutputType>::create_type_info(registry)
    }

    async fn resolve(
        &self,
        ctx: &ContextSelectionSet<'_>,
        field: &Positioned<Field>,
    ) -> async_graphql::ServerResult<Value> {
        let Some(plan) = member_plan(ctx) else {
            let list: Vec<Membership> = self
                .listed()
                .map(|(m, p)| Membership::with_person(m, p.clone()))
                .collect();
            return async_graphql::OutputType::resolve(&list, ctx, field).await;
        };
        Ok(self.render(&plan))
    }
}

impl MemberList {
    /// The answer to a plain selection (see [`member_plan`]), built from the rows.
    pub(crate) fn render(&self, plan: &MemberPlan) -> Value {
        Value::List(
            self.listed()
                .map(|row| {
                    MEMBERSHIP.render(row, plan, |person| PERSON.render_leaves(&row.1, person))
                })
                .collect(),
        )
    }
}

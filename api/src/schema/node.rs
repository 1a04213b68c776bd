//! Relay global object identification: `node(id:)` answers only what the caller may read.
use crate::activities::types::Activity;
use crate::auth::Action;
use crate::graphql::{ids, state};
use crate::locks::types::PeriodLock;
use crate::members::types::Membership;
use crate::teams::types::Team;
use crate::units::types::AdminUnit;
use async_graphql::{Context, ID, Interface, Object, Result};

/// An object with a global id.
#[derive(Interface)]
#[graphql(field(
    name = "id",
    ty = "&ID",
    desc = "Global id: opaque and stable; `node(id:)` finds the object again."
))]
pub enum Node {
    Team(Team),
    Membership(Membership),
    Activity(Activity),
    AdminUnit(AdminUnit),
    PeriodLock(PeriodLock),
}

#[derive(Default)]
pub struct NodeQuery;

#[Object]
impl NodeQuery {
    /// The object with this global id, if it exists in the caller's area.
    async fn node(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Global id of the object.")] id: ID,
    ) -> Result<Option<Node>> {
        let (db, principal) = state(ctx)?;
        let Some((kind, key)) = ids::decode(&id) else {
            return Err(
                crate::error::Error::not_found(format!("`{}` is not a global id", id.0)).into(),
            );
        };
        let number = || {
            key.parse::<i64>().map_err(|_| {
                crate::error::Error::not_found(format!("`{}` is not a global id", id.0))
            })
        };
        Ok(Some(match kind.as_str() {
            ids::TEAM if principal.may(Action::ReadTeams) => Node::Team(
                crate::teams::service::get(db, principal, Action::ReadTeams, number()?)
                    .await?
                    .into(),
            ),
            ids::MEMBERSHIP if principal.may(Action::ReadMembers) => Node::Membership(
                crate::members::service::get(db, principal, number()?)
                    .await?
                    .0
                    .into(),
            ),
            ids::ACTIVITY if principal.may(Action::ReadActivities) => Node::Activity(
                crate::activities::service::get(db, principal, number()?)
                    .await?
                    .into(),
            ),
            ids::PERIOD_LOCK if principal.may(Action::ReadPeriodLocks) => Node::PeriodLock(
                crate::locks::service::get(db, principal, number()?)
                    .await?
                    .into(),
            ),
            ids::ADMIN_UNIT => {
                let (code, from) = key.split_once('@').unwrap_or((key.as_str(), ""));
                let from = chrono::NaiveDate::parse_from_str(from, "%Y-%m-%d").map_err(|_| {
                    crate::error::Error::not_found(format!("`{}` is not a global id", id.0))
                })?;
                let unit = crate::units::service::version_on(db, code, from).await?;
                match unit {
                    Some(u) if u.valid_from == from => Node::AdminUnit(u.into()),
                    _ => {
                        return Err(crate::error::Error::not_found(format!(
                            "no object has id {}",
                            id.0
                        ))
                        .into());
                    }
                }
            }
            _ => {
                return Err(crate::error::Error::not_found(format!(
                    "no object has id {} in the caller's area",
                    id.0
                ))
                .into());
            }
        }))
    }
}

//! Per-request loaders of memberships and persons.
use async_graphql::dataloader::Loader;
use cnscd_entity::{membership, person};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder};
use std::collections::HashMap;

/// All memberships (current and ended) of each team, leaders first.
pub struct MembershipsByTeam(pub DatabaseConnection);

impl Loader<i64> for MembershipsByTeam {
    type Value = Vec<membership::Model>;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, Self::Value>, Self::Error> {
        let mut out: HashMap<i64, Self::Value> = HashMap::new();
        let rows = membership::Entity::find()
            .filter(membership::Column::TeamId.is_in(keys.to_vec()))
            .order_by_asc(membership::Column::Id)
            .all(&self.0)
            .await?;
        for m in rows {
            out.entry(m.team_id).or_default().push(m);
        }
        for list in out.values_mut() {
            list.sort_by_key(|m| (super::service::role_rank(&m.role), m.id));
        }
        Ok(out)
    }
}

/// Persons by id.
pub struct PersonById(pub DatabaseConnection);

impl Loader<i64> for PersonById {
    type Value = person::Model;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, Self::Value>, Self::Error> {
        Ok(person::Entity::find()
            .filter(person::Column::Id.is_in(keys.to_vec()))
            .all(&self.0)
            .await?
            .into_iter()
            .map(|p| (p.id, p))
            .collect())
    }
}

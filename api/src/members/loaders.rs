//! Per-request loaders of memberships and persons; each answers only what the caller's area
//! shows.
use crate::auth::{Scope, scope_condition};
use crate::db::{Where, placeholders, query};
use async_graphql::dataloader::Loader;
use cnscd_entity::{membership, person};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, Value};
use std::collections::HashMap;

/// `membership m JOIN team t` rows whose `column` is in `keys` and that `scope` covers.
fn scoped(scope: &Scope, column: &str, keys: &[i64]) -> Where {
    let mut w = Where::new();
    w.and(
        format!("{column} IN ({})", placeholders(keys.len())),
        keys.iter().map(|k| Value::from(*k)),
    );
    if let Some((sql, values)) = scope_condition(scope, &super::service::MEMBERSHIP_COLUMNS) {
        w.and(sql, values);
    }
    w
}

/// The memberships (current and ended) of each team that the caller may read
/// (`ReadMembers`), leaders first.
pub struct MembershipsByTeam {
    pub db: DatabaseConnection,
    pub scope: Scope,
}

impl Loader<i64> for MembershipsByTeam {
    type Value = Vec<membership::Model>;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, Self::Value>, Self::Error> {
        let mut out: HashMap<i64, Self::Value> = HashMap::new();
        let w = scoped(&self.scope, "m.team_id", keys);
        let rows = membership::Entity::find()
            .from_raw_sql(crate::db::stmt(
                self.db.get_database_backend(),
                &format!(
                    "SELECT m.* FROM membership m JOIN team t ON t.id = m.team_id{} ORDER BY m.id",
                    w.sql()
                ),
                w.values,
            ))
            .all(&self.db)
            .await?;
        for m in rows {
            out.entry(m.team_id).or_default().push(m);
        }
        for list in out.values_mut() {
            list.sort_by_key(|m| (super::service::role_rank(m.role), m.id));
        }
        Ok(out)
    }
}

/// Whether the caller's scope for one action (personal data) covers each membership.
pub struct MembershipInScope {
    pub db: DatabaseConnection,
    pub scope: Scope,
}

impl Loader<i64> for MembershipInScope {
    type Value = bool;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, bool>, Self::Error> {
        let mut out: HashMap<i64, bool> = keys.iter().map(|k| (*k, false)).collect();
        if self.scope.is_empty() {
            return Ok(out);
        }
        let w = scoped(&self.scope, "m.id", keys);
        for r in query(
            &self.db,
            &format!(
                "SELECT m.id AS id FROM membership m JOIN team t ON t.id = m.team_id{}",
                w.sql()
            ),
            w.values,
        )
        .await?
        {
            if let Ok(id) = r.try_get::<i64>("", "id") {
                out.insert(id, true);
            }
        }
        Ok(out)
    }
}

/// Persons by id (reached only through a membership the caller may read).
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

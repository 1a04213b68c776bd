//! Per-request loaders around teams.
use crate::db::{placeholders, query};
use async_graphql::dataloader::Loader;
use cnscd_entity::{activity, team};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, Value};
use std::collections::HashMap;

/// Teams by id.
pub struct TeamById(pub DatabaseConnection);

impl Loader<i64> for TeamById {
    type Value = team::Model;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, Self::Value>, Self::Error> {
        Ok(team::Entity::find()
            .filter(team::Column::Id.is_in(keys.to_vec()))
            .all(&self.0)
            .await?
            .into_iter()
            .map(|t| (t.id, t))
            .collect())
    }
}

/// Whether each team lies under the caller's units at some time in its life.
pub struct TeamInArea {
    pub db: DatabaseConnection,
    pub units: Vec<String>,
}

impl Loader<i64> for TeamInArea {
    type Value = bool;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, bool>, Self::Error> {
        let mut out: HashMap<i64, bool> = keys.iter().map(|k| (*k, false)).collect();
        if self.units.is_empty() {
            return Ok(out);
        }
        let c = &super::service::TEAM_COLUMNS;
        let (cond, mut values) = crate::auth::under_units(&self.units, c.unit, c.from, c.to);
        values.extend(keys.iter().map(|k| Value::from(*k)));
        let rows = query(
            &self.db,
            &format!(
                "SELECT t.id AS id FROM team t WHERE {cond} AND t.id IN ({})",
                placeholders(keys.len())
            ),
            values,
        )
        .await?;
        for r in rows {
            if let Ok(id) = r.try_get::<i64>("", "id") {
                out.insert(id, true);
            }
        }
        Ok(out)
    }
}

/// The latest recorded activity of each team.
pub struct LatestActivity(pub DatabaseConnection);

impl Loader<i64> for LatestActivity {
    type Value = activity::Model;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, Self::Value>, Self::Error> {
        let mut values: Vec<Value> = keys.iter().map(|k| Value::from(*k)).collect();
        values.extend(keys.iter().map(|k| Value::from(*k)));
        let p = placeholders(keys.len());
        // One statement for the page: each team's newest activity by date, then id.
        let rows = activity::Entity::find()
            .from_raw_sql(crate::db::stmt(
                sea_orm::ConnectionTrait::get_database_backend(&self.0),
                &format!(
                    "SELECT a.* FROM activity a JOIN (SELECT team_id, MAX(occurred_on) AS d \
                     FROM activity WHERE status = 'RECORDED' AND team_id IN ({p}) \
                     GROUP BY team_id) m ON m.team_id = a.team_id AND m.d = a.occurred_on \
                     WHERE a.status = 'RECORDED' AND a.team_id IN ({p}) ORDER BY a.id"
                ),
                values,
            ))
            .all(&self.0)
            .await?;
        let mut out = HashMap::new();
        for a in rows {
            out.insert(a.team_id, a);
        }
        Ok(out)
    }
}

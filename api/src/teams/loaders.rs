//! Per-request loaders around teams; each answers only what the caller's area shows.
use crate::auth::{Scope, scope_condition};
use crate::db::{Where, placeholders};
use async_graphql::dataloader::Loader;
use cnscd_entity::{activity, team};
use sea_orm::{DatabaseConnection, EntityTrait, Value};
use std::collections::HashMap;

/// Teams by id, those the caller may read (`ReadTeams`) only.
pub struct TeamById {
    pub db: DatabaseConnection,
    pub scope: Scope,
}

impl Loader<i64> for TeamById {
    type Value = team::Model;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, Self::Value>, Self::Error> {
        let mut w = Where::new();
        w.and(
            format!("t.id IN ({})", placeholders(keys.len())),
            keys.iter().map(|k| Value::from(*k)),
        );
        if let Some((sql, values)) = scope_condition(&self.scope, &super::service::TEAM_COLUMNS) {
            w.and(sql, values);
        }
        Ok(team::Entity::find()
            .from_raw_sql(crate::db::stmt(
                self.db.get_database_backend(),
                &format!("SELECT t.* FROM team t{}", w.sql()),
                w.values,
            ))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|t| (t.id, t))
            .collect())
    }
}

/// The latest recorded activity of each team among those the caller may read
/// (`ReadActivities`).
pub struct LatestActivity {
    pub db: DatabaseConnection,
    pub scope: Scope,
}

impl Loader<i64> for LatestActivity {
    type Value = activity::Model;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, Self::Value>, Self::Error> {
        let mut w = Where::new();
        w.and("a.status = 'RECORDED'", []);
        w.and(
            format!("a.team_id IN ({})", placeholders(keys.len())),
            keys.iter().map(|k| Value::from(*k)),
        );
        if let Some((sql, values)) =
            scope_condition(&self.scope, &crate::activities::service::ACTIVITY_COLUMNS)
        {
            w.and(sql, values);
        }
        // One statement for the page: the visible activities, newest first per team; the
        // first of each team wins.
        let rows = activity::Entity::find()
            .from_raw_sql(crate::db::stmt(
                self.db.get_database_backend(),
                &format!(
                    "SELECT a.* FROM activity a JOIN (SELECT a.team_id AS team_id, \
                     MAX(a.occurred_on) AS d FROM activity a{where_} GROUP BY a.team_id) m \
                     ON m.team_id = a.team_id AND m.d = a.occurred_on{where_} \
                     ORDER BY a.id DESC",
                    where_ = w.sql()
                ),
                [w.values.clone(), w.values].concat(),
            ))
            .all(&self.db)
            .await?;
        let mut out = HashMap::new();
        for a in rows {
            out.entry(a.team_id).or_insert(a);
        }
        Ok(out)
    }
}

/// The team loaders of one request, each with the caller's scope for its rows.
pub struct TeamLoaders {
    /// Teams the caller may read.
    pub team: async_graphql::dataloader::DataLoader<TeamById>,
    /// The latest activity of each team among those the caller may read.
    pub latest_activity: async_graphql::dataloader::DataLoader<LatestActivity>,
}

impl TeamLoaders {
    pub fn new(db: &DatabaseConnection, principal: &crate::auth::Principal) -> Self {
        use crate::auth::Action;
        use async_graphql::dataloader::DataLoader;
        let spawn = tokio::spawn;
        Self {
            team: DataLoader::new(
                TeamById {
                    db: db.clone(),
                    scope: principal.scope(Action::ReadTeams),
                },
                spawn,
            ),
            latest_activity: DataLoader::new(
                LatestActivity {
                    db: db.clone(),
                    scope: principal.scope(Action::ReadActivities),
                },
                spawn,
            ),
        }
    }
}

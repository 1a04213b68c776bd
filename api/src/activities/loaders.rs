//! Per-request loader of activity outcomes.
use async_graphql::dataloader::Loader;
use cnscd_entity::activity_outcome;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder};
use std::collections::HashMap;

/// Outcomes of each activity.
pub struct OutcomesByActivity(pub DatabaseConnection);

impl Loader<i64> for OutcomesByActivity {
    type Value = Vec<activity_outcome::Model>;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, Self::Value>, Self::Error> {
        let mut out: HashMap<i64, Self::Value> = HashMap::new();
        for o in activity_outcome::Entity::find()
            .filter(activity_outcome::Column::ActivityId.is_in(keys.to_vec()))
            .order_by_asc(activity_outcome::Column::Id)
            .all(&self.0)
            .await?
        {
            out.entry(o.activity_id).or_default().push(o);
        }
        Ok(out)
    }
}

/// The activity loaders of one request.
pub struct ActivityLoaders {
    pub outcomes: async_graphql::dataloader::DataLoader<OutcomesByActivity>,
}

impl ActivityLoaders {
    pub fn new(db: &DatabaseConnection) -> Self {
        Self {
            outcomes: async_graphql::dataloader::DataLoader::new(
                OutcomesByActivity(db.clone()),
                tokio::spawn,
            ),
        }
    }
}

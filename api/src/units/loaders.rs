//! Per-request loader of units by code (the latest version of each).
use async_graphql::dataloader::Loader;
use cnscd_entity::admin_unit;
use sea_orm::DatabaseConnection;
use std::collections::HashMap;

pub struct LatestUnit(pub DatabaseConnection);

impl Loader<String> for LatestUnit {
    type Value = admin_unit::Model;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[String]) -> Result<HashMap<String, Self::Value>, Self::Error> {
        Ok(super::service::latest_versions(&self.0, keys).await?)
    }
}

/// Per-request loader of the version of a unit valid on a day.
pub struct UnitOn(pub DatabaseConnection);

impl Loader<(String, chrono::NaiveDate)> for UnitOn {
    type Value = admin_unit::Model;
    type Error = async_graphql::Error;

    async fn load(
        &self,
        keys: &[(String, chrono::NaiveDate)],
    ) -> Result<HashMap<(String, chrono::NaiveDate), Self::Value>, Self::Error> {
        let mut codes: Vec<String> = keys.iter().map(|(c, _)| c.clone()).collect();
        codes.sort();
        codes.dedup();
        let versions = super::service::all_versions(&self.0, &codes).await?;
        Ok(keys
            .iter()
            .filter_map(|(code, on)| {
                versions
                    .get(code)?
                    .iter()
                    .find(|v| v.valid_from <= *on && *on <= v.valid_to)
                    .map(|v| ((code.clone(), *on), v.clone()))
            })
            .collect())
    }
}

/// Which side of a succession a loader looks up.
#[derive(Clone, Copy)]
pub enum Side {
    /// Successions whose old unit is the key (the key's successors).
    Old,
    /// Successions whose new unit is the key (the key's predecessors).
    New,
}

/// Per-request loader of successions by old or new unit code.
pub struct Successions(pub DatabaseConnection, pub Side);

impl Loader<String> for Successions {
    type Value = Vec<cnscd_entity::admin_unit_succession::Model>;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[String]) -> Result<HashMap<String, Self::Value>, Self::Error> {
        use cnscd_entity::admin_unit_succession::{Column, Entity};
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
        let (key, other) = match self.1 {
            Side::Old => (Column::OldCode, Column::NewCode),
            Side::New => (Column::NewCode, Column::OldCode),
        };
        let mut out: HashMap<String, Self::Value> = HashMap::new();
        for s in Entity::find()
            .filter(key.is_in(keys.to_vec()))
            .order_by_asc(other)
            .all(&self.0)
            .await?
        {
            let k = match self.1 {
                Side::Old => s.old_code.clone(),
                Side::New => s.new_code.clone(),
            };
            out.entry(k).or_default().push(s);
        }
        Ok(out)
    }
}

/// Per-request loader of the children of a unit on a day.
pub struct ChildrenOn(pub DatabaseConnection);

impl Loader<(String, chrono::NaiveDate)> for ChildrenOn {
    type Value = Vec<admin_unit::Model>;
    type Error = async_graphql::Error;

    async fn load(
        &self,
        keys: &[(String, chrono::NaiveDate)],
    ) -> Result<HashMap<(String, chrono::NaiveDate), Self::Value>, Self::Error> {
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
        let mut parents: Vec<String> = keys.iter().map(|(c, _)| c.clone()).collect();
        parents.sort();
        parents.dedup();
        let rows = admin_unit::Entity::find()
            .filter(admin_unit::Column::ParentCode.is_in(parents))
            .order_by_asc(admin_unit::Column::Code)
            .all(&self.0)
            .await?;
        Ok(keys
            .iter()
            .map(|(code, on)| {
                let children = rows
                    .iter()
                    .filter(|u| {
                        u.parent_code.as_deref() == Some(code.as_str())
                            && u.valid_from <= *on
                            && *on <= u.valid_to
                    })
                    .cloned()
                    .collect();
                ((code.clone(), *on), children)
            })
            .collect())
    }
}

/// The unit loaders of one request (never shared between requests or callers).
pub struct UnitLoaders {
    pub unit: async_graphql::dataloader::DataLoader<LatestUnit>,
    pub unit_on: async_graphql::dataloader::DataLoader<UnitOn>,
    pub children: async_graphql::dataloader::DataLoader<ChildrenOn>,
    pub successors: async_graphql::dataloader::DataLoader<Successions>,
    pub predecessors: async_graphql::dataloader::DataLoader<Successions>,
}

impl UnitLoaders {
    pub fn new(db: &DatabaseConnection) -> Self {
        use async_graphql::dataloader::DataLoader;
        let spawn = tokio::spawn;
        Self {
            unit: DataLoader::new(LatestUnit(db.clone()), spawn),
            unit_on: DataLoader::new(UnitOn(db.clone()), spawn),
            children: DataLoader::new(ChildrenOn(db.clone()), spawn),
            successors: DataLoader::new(Successions(db.clone(), Side::Old), spawn),
            predecessors: DataLoader::new(Successions(db.clone(), Side::New), spawn),
        }
    }
}

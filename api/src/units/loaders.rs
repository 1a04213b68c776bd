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

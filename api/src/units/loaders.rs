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

//! Catalogue of data elements indicators are computed from.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel, serde::Serialize)]
#[sea_orm(table_name = "data_element")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub code: String,
    pub name_vi: String,
    pub name_en: String,
    /// DERIVED (from activities and memberships) or REPORTED (by other systems).
    pub source: String,
    /// FLOW (sums over a period), STATE (at the period end) or REFERENCE (latest of the year).
    pub aggregation: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

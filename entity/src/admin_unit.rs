//! A version of an administrative unit: (code, validity period) with its parent.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel, serde::Serialize)]
#[sea_orm(table_name = "admin_unit")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub code: String,
    pub name: String,
    /// Lower-case name without diacritics, for search.
    pub name_search: String,
    pub unit_type: Option<String>,
    pub level: crate::codes::UnitLevel,
    pub parent_code: Option<String>,
    pub valid_from: Date,
    /// Last day of validity, inclusive; 9999-12-31 while the unit exists.
    pub valid_to: Date,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

//! Ancestor/descendant pairs of the unit hierarchy with the period over which they hold.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel, serde::Serialize)]
#[sea_orm(table_name = "admin_unit_closure")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub ancestor_code: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub descendant_code: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub valid_from: Date,
    pub valid_to: Date,
    pub depth: i32,
    pub descendant_level: crate::codes::UnitLevel,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

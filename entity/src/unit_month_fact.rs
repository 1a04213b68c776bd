//! Rolled-up monthly totals of derived data elements per unit (each ancestor as of the activity date).
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel, serde::Serialize)]
#[sea_orm(table_name = "unit_month_fact")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub unit_code: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub element_code: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub month_start: Date,
    pub value: f64,
    /// The rollup generation that last wrote the row (see the migration
    /// `m20261129_000004_data_generation`).
    pub seq: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

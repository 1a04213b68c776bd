//! A target set for an indicator, a unit and a calendar period.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel, serde::Serialize)]
#[sea_orm(table_name = "indicator_target")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub indicator_code: String,
    pub unit_code: String,
    pub period_start: Date,
    pub period_end: Date,
    pub target: f64,
    /// Caller identity (`["subject","client"]`) that set it last.
    pub set_by: String,
    pub set_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

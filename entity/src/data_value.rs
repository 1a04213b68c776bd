//! A figure reported by another system for a unit and period.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel, serde::Serialize)]
#[sea_orm(table_name = "data_value")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub unit_code: String,
    pub element_code: String,
    pub period_start: Date,
    pub period_end: Date,
    pub value: f64,
    pub source_system: String,
    pub submitted_by: String,
    pub client_id: Option<String>,
    pub submitted_at: DateTimeUtc,
    /// The caller identity that sent it: `["subject","client"]` as JSON (as on `activity`).
    #[serde(skip)]
    pub submitter: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

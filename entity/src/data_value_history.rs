//! A reported figure as it was before a newer one for the same unit, element, period and source
//! replaced it.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel, serde::Serialize)]
#[sea_orm(table_name = "data_value_history")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// The id the replaced row had in `data_value`.
    pub data_value_id: i64,
    pub unit_code: String,
    pub element_code: String,
    pub period_start: Date,
    pub period_end: Date,
    pub value: f64,
    pub source_system: String,
    pub submitted_by: String,
    pub client_id: Option<String>,
    pub submitted_at: DateTimeUtc,
    pub replaced_at: DateTimeUtc,
    /// Token subject of the submission that replaced it.
    pub replaced_by: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

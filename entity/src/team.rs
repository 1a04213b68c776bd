//! A community digital technology team (Tổ CNSCĐ).
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel, serde::Serialize)]
#[sea_orm(table_name = "team")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub code: String,
    pub name: String,
    pub name_search: String,
    pub unit_code: String,
    pub founded_on: Date,
    pub decision_number: Option<String>,
    pub decision_date: Option<Date>,
    pub status: crate::codes::TeamStatus,
    pub dissolved_on: Option<Date>,
    pub dissolution_reason: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

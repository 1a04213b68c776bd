//! A named, versioned indicator formula.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel, serde::Serialize)]
#[sea_orm(table_name = "indicator_definition")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub code: String,
    pub version: i32,
    pub name_vi: String,
    pub name_en: String,
    pub description: Option<String>,
    /// Sum of data element codes, e.g. `PEOPLE_VNEID` or `A + B - C`.
    pub numerator: String,
    pub denominator: Option<String>,
    pub factor: f64,
    pub active: bool,
    /// First day periods are computed with this version (until a later version's).
    pub valid_from: Date,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

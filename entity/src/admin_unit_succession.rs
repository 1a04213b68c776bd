//! Links an old unit to the unit that succeeded it.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel, serde::Serialize)]
#[sea_orm(table_name = "admin_unit_succession")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub old_code: String,
    pub new_code: String,
    pub kind: crate::codes::SuccessionKind,
    pub effective_on: Date,
    pub legal_basis: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

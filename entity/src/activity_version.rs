//! An activity as it was before a correction or a void: the row and its outcomes as JSON.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel, serde::Serialize)]
#[sea_orm(table_name = "activity_version")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub activity_id: i64,
    /// 1 for the activity as first submitted, then one more per change.
    pub version: i32,
    /// The change that ended this version.
    pub action: crate::codes::ActivityChange,
    pub reason: String,
    /// The activity row and its `outcomes`, as they were.
    pub data: Json,
    /// Token subject that made the change.
    pub changed_by: String,
    pub client_id: Option<String>,
    pub changed_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

//! Who changed what, when, with the state before and after.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel, serde::Serialize)]
#[sea_orm(table_name = "audit_entry")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub occurred_at: DateTimeUtc,
    pub subject: String,
    pub client_id: Option<String>,
    pub roles: String,
    pub action: String,
    pub entity_type: String,
    pub entity_id: String,
    /// The unit the change concerns, for area-scoped reading of the log.
    pub unit_code: Option<String>,
    /// First and last day the changed row concerns (its life, its dates, its day) after the
    /// change (before it, for a removal); the last is null while the row goes on.
    pub concerns_from: Option<Date>,
    pub concerns_to: Option<Date>,
    pub before: Option<Json>,
    pub after: Option<Json>,
    pub request_id: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

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
    /// The changed row's unit when the change was made (after the change; before it, for a
    /// removal).
    pub unit_code: Option<String>,
    /// First and last day the changed row concerns now (its life, its dates, its day): as the
    /// latest change left them (before it, for a removal); the last is null while the row goes
    /// on. A change that moves the row's days moves them on all its entries.
    pub concerns_from: Option<Date>,
    pub concerns_to: Option<Date>,
    /// The changed row's unit now, as the latest change left it: a change that moves the row to
    /// another unit (a correction of an activity) brings it forward on all its entries.
    pub concerns_unit: Option<String>,
    pub before: Option<Json>,
    pub after: Option<Json>,
    pub request_id: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

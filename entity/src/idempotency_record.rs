//! The outcome of an idempotent request, keyed by the caller and its key.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel, serde::Serialize)]
#[sea_orm(table_name = "idempotency_record")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// The caller identity the key belongs to: `["subject","client"]` as JSON.
    pub scope: String,
    pub idempotency_key: String,
    pub operation: String,
    /// SHA-256 of the canonical input.
    pub request_hash: String,
    pub resource_id: Option<i64>,
    pub created_at: DateTimeUtc,
    /// The answer given, for operations whose result is not one row (`resource_id`).
    pub response: Option<Json>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

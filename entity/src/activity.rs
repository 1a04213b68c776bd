//! What a team did on a day in a unit.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel, serde::Serialize)]
#[sea_orm(table_name = "activity")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub team_id: i64,
    pub unit_code: String,
    pub kind_code: String,
    pub occurred_on: Date,
    pub title: String,
    pub description: Option<String>,
    pub participants: Option<i32>,
    pub households_reached: Option<i32>,
    pub status: crate::codes::ActivityStatus,
    pub submitted_by: String,
    pub client_id: Option<String>,
    /// The caller identity that submitted it: `["subject","client"]` as JSON (see
    /// `cnscd_api::auth::identity`); "what I submitted" compares it.
    #[serde(skip)]
    pub submitter: String,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// The key the submitter chose (`idempotencyKey`), unique per submitter; none for
    /// activities that did not come through intake (the demo seed).
    #[serde(skip)]
    pub idempotency_key: Option<String>,
    /// A hash of the submission as received, to tell a retry from a reuse of the key.
    #[serde(skip)]
    pub request_hash: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

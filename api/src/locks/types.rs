//! GraphQL types of period locks and their inputs.
use crate::error::UserError;
use crate::graphql::{Date, ids, loaders};
use crate::units::types::AdminUnit;
use async_graphql::{ComplexObject, Context, ID, InputObject, Result, SimpleObject};
use chrono::{DateTime, Utc};
use cnscd_entity::period_lock;

/// A period closed to changes for a unit and everything under it: no activity submitted,
/// corrected or voided, and no reported figure accepted, for a day in it.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct PeriodLock {
    /// Global id: opaque and stable; `node(id:)` finds the lock again.
    pub id: ID,
    /// The unit locked, with everything under it.
    pub unit_code: String,
    /// The month locked, `2025-03`; for a lock of another length, its first and last day.
    pub month: String,
    /// First day locked.
    pub period_start: Date,
    /// Last day locked.
    pub period_end: Date,
    /// Token subject that locked it.
    pub locked_by: String,
    /// When it was locked.
    pub locked_at: DateTime<Utc>,
    /// Why, when given.
    pub reason: Option<String>,
}

impl From<period_lock::Model> for PeriodLock {
    fn from(m: period_lock::Model) -> Self {
        Self {
            id: ids::encode(ids::PERIOD_LOCK, m.id),
            month: super::service::label(m.period_start, m.period_end),
            unit_code: m.unit_code,
            period_start: m.period_start.into(),
            period_end: m.period_end.into(),
            locked_by: m.locked_by,
            locked_at: m.locked_at,
            reason: m.reason,
        }
    }
}

#[ComplexObject]
impl PeriodLock {
    /// The unit locked, in its latest version.
    async fn unit(&self, ctx: &Context<'_>) -> Result<Option<AdminUnit>> {
        Ok(loaders::<crate::units::loaders::UnitLoaders>(ctx)?
            .unit
            .load_one(self.unit_code.clone())
            .await?
            .map(Into::into))
    }
}

/// Locking a month for a unit and everything under it (ADMIN; UNIT_ADMIN in its area).
#[derive(InputObject, Debug)]
pub struct LockPeriodInput {
    /// Administrative unit code; the lock covers the units under it too.
    pub unit_code: String,
    /// The month, `YYYY-MM`, e.g. `2025-03`; one that has begun.
    pub month: String,
    /// Why, at most 500 characters.
    pub reason: Option<String>,
}

/// Unlocking a month locked for a unit (the unit the lock was set on).
#[derive(InputObject, Debug)]
pub struct UnlockPeriodInput {
    /// Administrative unit code the lock was set on.
    pub unit_code: String,
    /// The month, `YYYY-MM`.
    pub month: String,
    /// Why it is unlocked (required), at most 500 characters.
    pub reason: String,
}

/// Result of `lockPeriod` and `unlockPeriod`.
#[derive(SimpleObject)]
pub struct PeriodLockPayload {
    /// The lock set, or the lock removed; null when there are user errors.
    pub lock: Option<PeriodLock>,
    /// What was wrong with the input; empty on success.
    pub user_errors: Vec<UserError>,
}

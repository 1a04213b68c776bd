//! Period lock queries and mutations: guard, convert, delegate.
use super::service::{self, LockFilter, LockRequest, Month};
use super::types::{LockPeriodInput, PeriodLock, PeriodLockPayload, UnlockPeriodInput};
use crate::audit::service::RequestId;
use crate::auth::Action;
use crate::error::{Error, into_payload};
use crate::graphql::guard::Allowed;
use crate::graphql::pagination::{Conn, PageArgs, connection, list_field};
use crate::graphql::state;
use async_graphql::{Context, Object, Result};

fn month_arg(name: &str, value: Option<String>) -> Result<Option<Month>, Error> {
    value
        .map(|v| {
            Month::parse(&v).ok_or_else(|| {
                Error::invalid(
                    name,
                    format!("`{v}` is not a month: expected YYYY-MM, e.g. 2025-03"),
                )
            })
        })
        .transpose()
}

list_field! {
    /// Reading period locks.
    LockQuery,
    /// Period locks of units in the caller's area (during the locked period), latest month
    /// first.
    period_locks(
        #[graphql(desc = "Only locks of this unit or of units under it.")] under: Option<String>,
        #[graphql(desc = "Only locks of this month (`YYYY-MM`) or later.")] from: Option<String>,
        #[graphql(desc = "Only locks of this month (`YYYY-MM`) or earlier.")] to: Option<String>,
    ) -> Conn<PeriodLock> = list_locks, guard = "Allowed(Action::ReadPeriodLocks)"
}

async fn list_locks(
    ctx: &Context<'_>,
    under: Option<String>,
    from: Option<String>,
    to: Option<String>,
    page: PageArgs,
) -> Result<Conn<PeriodLock>> {
    let (db, principal) = state(ctx)?;
    let (from, to) = Error::in_order(month_arg("from", from)?, month_arg("to", to)?)?;
    let filter = LockFilter {
        under: under.map(|u| u.trim().to_owned()),
        from,
        to,
    };
    Ok(connection(
        service::list(db, principal, &filter, &page).await?,
    ))
}

#[derive(Default)]
pub struct LockMutation;

#[Object]
impl LockMutation {
    /// Locks a month for a unit and everything under it (ADMIN; UNIT_ADMIN in its area): from
    /// then on no activity is submitted, corrected or voided, and no reported figure accepted,
    /// for a day of it (PERIOD_LOCKED). Audited.
    #[graphql(guard = "Allowed(Action::LockPeriods)")]
    async fn lock_period(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The unit and month.")] input: LockPeriodInput,
    ) -> Result<PeriodLockPayload> {
        let (db, principal) = state(ctx)?;
        let request = LockRequest {
            unit_code: input.unit_code,
            month: input.month,
            reason: input.reason,
        };
        let (lock, user_errors) =
            into_payload(service::lock(db, principal, ctx.data_opt::<RequestId>(), request).await)?;
        Ok(PeriodLockPayload {
            lock: lock.map(Into::into),
            user_errors,
        })
    }

    /// Removes the lock of a month set on a unit (ADMIN; UNIT_ADMIN in its area), with a
    /// reason. Audited.
    #[graphql(guard = "Allowed(Action::LockPeriods)")]
    async fn unlock_period(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The unit and month.")] input: UnlockPeriodInput,
    ) -> Result<PeriodLockPayload> {
        let (db, principal) = state(ctx)?;
        let request = LockRequest {
            unit_code: input.unit_code,
            month: input.month,
            reason: Some(input.reason),
        };
        let (lock, user_errors) = into_payload(
            service::unlock(db, principal, ctx.data_opt::<RequestId>(), request).await,
        )?;
        Ok(PeriodLockPayload {
            lock: lock.map(Into::into),
            user_errors,
        })
    }
}

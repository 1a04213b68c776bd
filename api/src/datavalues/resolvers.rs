//! Reported figure queries and mutations: guard, convert, delegate.
use super::service::{self, NewValue, NewValues, ValueFilter};
use super::types::{DataValue, SubmitDataValuesInput, SubmitDataValuesPayload};
use crate::audit::service::RequestId;
use crate::auth::Action;
use crate::error::{Error, into_payload};
use crate::graphql::guard::Allowed;
use crate::graphql::pagination::{Conn, PageArgs, connection, list_field};
use crate::graphql::{Date, state};
use async_graphql::{Context, Object, Result};

list_field! {
    /// Reading reported figures.
    DataValueQuery,
    /// Reported figures the caller may read (its area on every day of their period; a
    /// REPORTER, what it sent), latest period first: for the systems that check what they sent.
    data_values(
        #[graphql(desc = "Data element code.")] element: Option<String>,
        #[graphql(desc = "Only figures of this unit or of units under it.")] under: Option<String>,
        #[graphql(desc = "Only figures whose period ends on or after this day.")]
        from: Option<Date>,
        #[graphql(desc = "Only figures whose period starts on or before this day.")]
        to: Option<Date>,
        #[graphql(desc = "Only figures from this source system.")] source_system: Option<String>,
    ) -> Conn<DataValue> = list_values, guard = "Allowed(Action::ReadDataValues)"
}

async fn list_values(
    ctx: &Context<'_>,
    element: Option<String>,
    under: Option<String>,
    from: Option<Date>,
    to: Option<Date>,
    source_system: Option<String>,
    page: PageArgs,
) -> Result<Conn<DataValue>> {
    let (db, principal) = state(ctx)?;
    let (from, to) = Error::in_order(from.map(|d| d.0), to.map(|d| d.0))?;
    let filter = ValueFilter {
        element: element.map(|e| e.trim().to_owned()),
        under: under.map(|u| u.trim().to_owned()),
        from,
        to,
        source_system: source_system.map(|s| s.trim().to_owned()),
    };
    Ok(connection(
        service::list(db, principal, &filter, &page).await?,
    ))
}

#[derive(Default)]
pub struct DataValueMutation;

#[Object]
impl DataValueMutation {
    /// Stores a batch of reported figures from one source system (ADMIN; UNIT_ADMIN and
    /// REPORTER in their area), whole or not at all; idempotent per caller and
    /// `idempotencyKey`. A figure for the same unit, element, period and source replaces the
    /// current one (which is kept in the history); indicators follow at once. Audited.
    #[graphql(guard = "Allowed(Action::SubmitDataValues)")]
    async fn submit_data_values(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The batch.")] input: SubmitDataValuesInput,
    ) -> Result<SubmitDataValuesPayload> {
        let (db, principal) = state(ctx)?;
        let new = NewValues {
            idempotency_key: input.idempotency_key,
            source_system: input.source_system.trim().to_owned(),
            values: input
                .values
                .into_iter()
                .map(|v| NewValue {
                    element: v.element.trim().to_owned(),
                    unit_code: v.unit_code.trim().to_owned(),
                    period_start: v.period_start.0,
                    period_end: v.period_end.0,
                    value: v.value,
                })
                .collect(),
        };
        let result = service::submit(db, principal, ctx.data_opt::<RequestId>(), new).await;
        let (done, user_errors) = into_payload(result)?;
        let replayed = done.as_ref().is_some_and(|(_, r)| *r);
        if let (Some((values, false)), Ok(bus)) = (&done, crate::events::bus(ctx)) {
            for v in values {
                bus.figures_changed(&v.unit_code, v.period_start);
            }
        }
        Ok(SubmitDataValuesPayload {
            values: done
                .map(|(v, _)| v.into_iter().map(Into::into).collect())
                .unwrap_or_default(),
            replayed,
            user_errors,
        })
    }
}

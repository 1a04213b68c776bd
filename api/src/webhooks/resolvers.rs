//! Webhook queries and mutations: guard, convert, delegate.
use super::service::{self, NewWebhook};
use super::types::{
    CreateWebhookInput, DeleteWebhookInput, RedeliverWebhookInput, Webhook, WebhookDelivery,
    WebhookDeliveryPayload, WebhookDeliveryStatus, WebhookPayload,
};
use crate::audit::service::RequestId;
use crate::auth::Action;
use crate::error::into_payload;
use crate::graphql::guard::Allowed;
use crate::graphql::pagination::{Conn, PageArgs, connection, list_field};
use crate::graphql::{ids, state};
use async_graphql::{Context, ID, Object, Result};

/// Whether webhooks may reach private addresses (`CNSCD_WEBHOOK_ALLOW_PRIVATE`), for the
/// schema's data.
#[derive(Clone, Copy, Debug, Default)]
pub struct AllowPrivate(pub bool);

fn request<'a>(ctx: &'a Context<'_>) -> Option<&'a RequestId> {
    ctx.data_opt::<RequestId>()
}

#[derive(Default)]
pub struct WebhookQuery;

#[Object]
impl WebhookQuery {
    /// The webhooks the caller manages (ADMIN: every one; UNIT_ADMIN: those it created).
    #[graphql(guard = "Allowed(Action::ManageWebhooks)")]
    async fn webhooks(&self, ctx: &Context<'_>) -> Result<Vec<Webhook>> {
        let (db, principal) = state(ctx)?;
        Ok(service::list(db, principal)
            .await?
            .into_iter()
            .map(Webhook::listed)
            .collect())
    }
}

list_field! {
    /// A webhook's deliveries.
    WebhookDeliveryQuery,
    /// The deliveries of a webhook the caller manages, newest first.
    webhook_deliveries(
        #[graphql(desc = "The webhook.")] webhook_id: ID,
        #[graphql(desc = "Only deliveries in this state.")] status: Option<WebhookDeliveryStatus>,
    ) -> Conn<WebhookDelivery> = list_deliveries, guard = "Allowed(Action::ManageWebhooks)"
}

async fn list_deliveries(
    ctx: &Context<'_>,
    webhook_id: ID,
    status: Option<WebhookDeliveryStatus>,
    page: PageArgs,
) -> Result<Conn<WebhookDelivery>> {
    let (db, principal) = state(ctx)?;
    let id = ids::input_id(ids::WEBHOOK, "webhookId", &webhook_id)?;
    Ok(connection(
        service::deliveries(db, principal, id, status.map(Into::into), &page).await?,
    ))
}

#[derive(Default)]
pub struct WebhookMutation;

#[Object]
impl WebhookMutation {
    /// Creates a webhook: its events are posted to `url`, signed with the secret this answer
    /// gives once (ADMIN for any area; UNIT_ADMIN with `under` inside its area).
    #[graphql(guard = "Allowed(Action::ManageWebhooks)")]
    async fn create_webhook(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The webhook.")] input: CreateWebhookInput,
    ) -> Result<WebhookPayload> {
        let (db, principal) = state(ctx)?;
        let allow_private = ctx.data_opt::<AllowPrivate>().copied().unwrap_or_default();
        let new = NewWebhook {
            url: input.url,
            events: input.events.into_iter().map(Into::into).collect(),
            under: input.under,
            description: input.description,
        };
        let (webhook, user_errors) =
            into_payload(service::create(db, principal, request(ctx), new, allow_private.0).await)?;
        Ok(WebhookPayload {
            webhook: webhook.map(Webhook::created),
            user_errors,
        })
    }

    /// Deletes a webhook the caller manages, with its deliveries.
    #[graphql(guard = "Allowed(Action::ManageWebhooks)")]
    async fn delete_webhook(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The webhook.")] input: DeleteWebhookInput,
    ) -> Result<WebhookPayload> {
        let (db, principal) = state(ctx)?;
        let result = match ids::input_id(ids::WEBHOOK, "input.webhookId", &input.webhook_id) {
            Ok(id) => service::delete(db, principal, request(ctx), id).await,
            Err(e) => Err(e),
        };
        let (webhook, user_errors) = into_payload(result)?;
        Ok(WebhookPayload {
            webhook: webhook.map(Webhook::listed),
            user_errors,
        })
    }

    /// Sends a delivery again, at once, with a new retry window.
    #[graphql(guard = "Allowed(Action::ManageWebhooks)")]
    async fn redeliver_webhook(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The delivery.")] input: RedeliverWebhookInput,
    ) -> Result<WebhookDeliveryPayload> {
        let (db, principal) = state(ctx)?;
        let result = match ids::input_id(
            ids::WEBHOOK_DELIVERY,
            "input.deliveryId",
            &input.delivery_id,
        ) {
            Ok(id) => service::redeliver(db, principal, request(ctx), id).await,
            Err(e) => Err(e),
        };
        let (delivery, user_errors) = into_payload(result)?;
        Ok(WebhookDeliveryPayload {
            delivery: delivery.map(Into::into),
            user_errors,
        })
    }
}

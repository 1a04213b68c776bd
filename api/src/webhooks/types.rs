//! GraphQL types of webhooks and their deliveries.
use super::model;
use super::service::{DeliveryRow, WebhookRow};
use crate::error::UserError;
use crate::graphql::ids;
use async_graphql::{Enum, ID, InputObject, Json, SimpleObject};
use chrono::{DateTime, Utc};

/// A kind of change a webhook is told of.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "model::Event")]
pub enum WebhookEvent {
    /// An activity stored (`submitActivity`, `submitActivities`).
    ActivitySubmitted,
    /// An activity corrected.
    ActivityCorrected,
    /// An activity voided.
    ActivityVoided,
    /// A reported figure stored (`submitDataValues`).
    DataValuesSubmitted,
    /// A team founded, changed or dissolved.
    TeamChanged,
    /// A member added, a membership changed or ended.
    MembershipChanged,
    /// A period locked.
    PeriodLocked,
    /// A period unlocked.
    PeriodUnlocked,
}

/// Where a delivery stands.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "model::Status")]
pub enum WebhookDeliveryStatus {
    /// Waiting for its next attempt.
    Pending,
    /// The receiver answered 2xx.
    Succeeded,
    /// Every attempt failed within the retry window; `redeliverWebhook` sends it again.
    Failed,
}

/// A system told of changes by an HTTP POST.
#[derive(SimpleObject)]
pub struct Webhook {
    /// Global id.
    pub id: ID,
    /// Where the events are posted.
    pub url: String,
    /// The kinds of change it is told of.
    pub events: Vec<WebhookEvent>,
    /// Only changes in this unit or under it (on the day of the change), within its owner's
    /// area.
    pub under: Option<String>,
    /// What it is for.
    pub description: Option<String>,
    /// The signing secret (`whsec_…`): given once, in `createWebhook`'s answer; null after.
    pub secret: Option<String>,
    /// Token subject that created it; its payloads show what that caller may read.
    pub created_by: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

impl Webhook {
    /// The webhook as listed: without its secret.
    pub fn listed(w: WebhookRow) -> Self {
        Self {
            id: ids::encode(ids::WEBHOOK, w.id),
            url: w.url.clone(),
            events: w.events().into_iter().map(Into::into).collect(),
            under: w.under,
            description: w.description,
            secret: None,
            created_by: w.owner_subject,
            created_at: w.created_at,
        }
    }

    /// The webhook as created: with its secret, this once.
    pub fn created(w: WebhookRow) -> Self {
        let secret = w.secret.clone();
        Self {
            secret: Some(secret),
            ..Self::listed(w)
        }
    }
}

/// One event sent (or to be sent) to one webhook.
#[derive(SimpleObject)]
pub struct WebhookDelivery {
    /// Global id; the `webhook-id` header of its attempts is `msg_` and its number.
    pub id: ID,
    /// The kind of change.
    pub event: WebhookEvent,
    /// Where it stands.
    pub status: WebhookDeliveryStatus,
    /// Attempts made so far.
    pub attempts: i32,
    /// When the next attempt is due (while PENDING).
    pub next_attempt_at: DateTime<Utc>,
    /// The HTTP status of the last answer, if there was one.
    pub last_status: Option<i32>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// The body sent.
    pub payload: Json<serde_json::Value>,
    /// When it was made (or last redelivered).
    pub created_at: DateTime<Utc>,
    /// When it succeeded or failed for good.
    pub finished_at: Option<DateTime<Utc>>,
}

impl From<DeliveryRow> for WebhookDelivery {
    fn from(d: DeliveryRow) -> Self {
        Self {
            id: ids::encode(ids::WEBHOOK_DELIVERY, d.id),
            event: model::Event::parse(&d.event)
                .unwrap_or(model::Event::ActivitySubmitted)
                .into(),
            status: model::Status::parse(&d.status)
                .unwrap_or(model::Status::Pending)
                .into(),
            attempts: d.attempts,
            next_attempt_at: d.next_attempt_at,
            last_status: d.last_status,
            last_error: d.last_error,
            payload: Json(serde_json::from_str(&d.payload).unwrap_or_default()),
            created_at: d.created_at,
            finished_at: d.finished_at,
        }
    }
}

/// A new webhook (ADMIN: any area; UNIT_ADMIN: `under` inside its area).
#[derive(InputObject, Debug)]
pub struct CreateWebhookInput {
    /// `https://…` (or `http://…`); a private address only where CNSCD_WEBHOOK_ALLOW_PRIVATE
    /// allows it.
    pub url: String,
    /// The kinds of change to post.
    pub events: Vec<WebhookEvent>,
    /// Only changes in this unit or under it.
    pub under: Option<String>,
    /// What it is for (at most 500 characters).
    pub description: Option<String>,
}

/// Deleting a webhook: nothing more is sent to it.
#[derive(InputObject, Debug)]
pub struct DeleteWebhookInput {
    pub webhook_id: ID,
}

/// Sending a delivery again, at once, with a new retry window.
#[derive(InputObject, Debug)]
pub struct RedeliverWebhookInput {
    pub delivery_id: ID,
}

#[derive(SimpleObject)]
pub struct WebhookPayload {
    pub webhook: Option<Webhook>,
    pub user_errors: Vec<UserError>,
}

#[derive(SimpleObject)]
pub struct WebhookDeliveryPayload {
    pub delivery: Option<WebhookDelivery>,
    pub user_errors: Vec<UserError>,
}

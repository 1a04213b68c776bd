//! REST endpoint queries and mutations (ADMIN): guard, convert, delegate.
use super::document::{self, CheckDocument};
use super::service::{self, NewEndpoint};
use super::types::{
    DeleteRestEndpointInput, RestEndpoint, RestEndpointPayload, SaveRestEndpointInput,
};
use crate::audit::service::RequestId;
use crate::auth::Action;
use crate::error::into_payload;
use crate::graphql::guard::Allowed;
use crate::graphql::state;
use async_graphql::{Context, Object, Result};
use std::sync::Arc;

#[derive(Default)]
pub struct RestQuery;

#[Object]
impl RestQuery {
    /// The saved REST endpoints (ADMIN); `/api/openapi.json` describes them.
    #[graphql(guard = "Allowed(Action::ManageIndicators)")]
    async fn rest_endpoints(&self, ctx: &Context<'_>) -> Result<Vec<RestEndpoint>> {
        let (db, _) = state(ctx)?;
        Ok(service::list(db)
            .await?
            .into_iter()
            .map(Into::into)
            .collect())
    }
}

#[derive(Default)]
pub struct RestMutation;

#[Object]
impl RestMutation {
    /// Saves a GraphQL query or mutation as `GET|POST /api/rest/{name}` (ADMIN); a name saved
    /// again is replaced.
    #[graphql(guard = "Allowed(Action::ManageIndicators)")]
    async fn save_rest_endpoint(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The endpoint.")] input: SaveRestEndpointInput,
    ) -> Result<RestEndpointPayload> {
        let (db, principal) = state(ctx)?;
        let checker = ctx.data::<Arc<dyn CheckDocument>>()?.clone();
        let new = NewEndpoint {
            name: input.name.trim().to_owned(),
            method: input.method.into(),
            document: input.document,
            description: input.description,
        };
        let result = async {
            document::check_name(&new.name, "input.name")?;
            crate::text::at_most("input.description", new.description.as_deref(), 500)?;
            document::check_document(&new, checker.as_ref()).await?;
            service::save(db, principal, ctx.data_opt::<RequestId>(), &new).await
        }
        .await;
        let (endpoint, user_errors) = into_payload(result)?;
        Ok(RestEndpointPayload {
            endpoint: endpoint.map(Into::into),
            user_errors,
        })
    }

    /// Deletes a saved REST endpoint (ADMIN).
    #[graphql(guard = "Allowed(Action::ManageIndicators)")]
    async fn delete_rest_endpoint(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The endpoint.")] input: DeleteRestEndpointInput,
    ) -> Result<RestEndpointPayload> {
        let (db, principal) = state(ctx)?;
        let (endpoint, user_errors) = into_payload(
            service::delete(
                db,
                principal,
                ctx.data_opt::<RequestId>(),
                input.name.trim(),
            )
            .await,
        )?;
        Ok(RestEndpointPayload {
            endpoint: endpoint.map(Into::into),
            user_errors,
        })
    }
}

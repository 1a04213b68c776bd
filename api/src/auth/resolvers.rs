//! The `me` query: who the caller is.
use crate::graphql::state;
use async_graphql::{Context, ID, Object, Result, SimpleObject};

/// The caller, as its token describes it.
#[derive(SimpleObject)]
pub struct Viewer {
    /// Token subject (`sub`).
    pub subject: String,
    /// Roles this service recognises in the token.
    pub roles: Vec<String>,
    /// Administrative units the caller's area starts from.
    pub units: Vec<String>,
    /// Teams a TEAM_LEADER leads.
    pub teams: Vec<ID>,
    /// Client (app) the token was issued to (`client_id`), if any.
    pub client_id: Option<String>,
}

#[derive(Default)]
pub struct MeQuery;

#[Object]
impl MeQuery {
    /// Who the caller is.
    async fn me(&self, ctx: &Context<'_>) -> Result<Viewer> {
        let (_, p) = state(ctx)?;
        Ok(Viewer {
            subject: p.subject.clone(),
            roles: p.role_names.clone(),
            units: p.units.clone(),
            teams: p.team_ids.iter().cloned().map(ID).collect(),
            client_id: p.client_id.clone(),
        })
    }
}

//! Saved operations, as stored (their documents are checked by [`super::document`] before).
use crate::auth::{Action, Principal};
use crate::error::{Error, Result};
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, FromQueryResult};

/// How an endpoint is called.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Method {
    /// Variables from the query string; queries only.
    Get,
    /// Variables as a JSON body.
    Post,
}

impl Method {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "GET" => Some(Self::Get),
            "POST" => Some(Self::Post),
            _ => None,
        }
    }
}

/// A saved endpoint.
#[derive(Clone, Debug, FromQueryResult)]
pub struct Endpoint {
    pub name: String,
    pub method: String,
    pub document: String,
    pub description: Option<String>,
    pub saved_by: String,
    pub saved_at: DateTime<Utc>,
}

impl Endpoint {
    pub fn method(&self) -> Method {
        Method::parse(&self.method).unwrap_or(Method::Post)
    }
}

/// Where an endpoint is served.
pub fn path(name: &str) -> String {
    format!("/api/rest/{name}")
}

/// What `saveRestEndpoint` asks for.
#[derive(Clone, Debug)]
pub struct NewEndpoint {
    pub name: String,
    pub method: Method,
    pub document: String,
    pub description: Option<String>,
}

/// Saves (or replaces) an endpoint.
pub async fn save(
    db: &impl ConnectionTrait,
    principal: &Principal,
    new: &NewEndpoint,
) -> Result<Endpoint> {
    admin_only(principal)?;
    let now = Utc::now();
    Endpoint::find_by_statement(crate::db::stmt(
        db.get_database_backend(),
        "INSERT INTO rest_endpoint (name, method, document, description, saved_by, saved_at) \
         VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET method = excluded.method, \
         document = excluded.document, description = excluded.description, \
         saved_by = excluded.saved_by, saved_at = excluded.saved_at RETURNING *",
        vec![
            new.name.clone().into(),
            new.method.as_str().into(),
            new.document.clone().into(),
            new.description.clone().into(),
            principal.subject.clone().into(),
            now.into(),
        ],
    ))
    .one(db)
    .await?
    .ok_or_else(|| Error::Internal("the endpoint was not saved".into()))
}

fn admin_only(principal: &Principal) -> Result<()> {
    if principal.scope(Action::ManageIndicators).all {
        Ok(())
    } else {
        Err(Error::forbidden("only an ADMIN manages REST endpoints"))
    }
}

/// Every saved endpoint, by name.
pub async fn list(db: &impl ConnectionTrait) -> Result<Vec<Endpoint>> {
    Ok(Endpoint::find_by_statement(crate::db::stmt(
        db.get_database_backend(),
        "SELECT * FROM rest_endpoint ORDER BY name",
        vec![],
    ))
    .all(db)
    .await?)
}

/// The endpoint of this name, if saved.
pub async fn get(db: &impl ConnectionTrait, name: &str) -> Result<Option<Endpoint>> {
    Ok(Endpoint::find_by_statement(crate::db::stmt(
        db.get_database_backend(),
        "SELECT * FROM rest_endpoint WHERE name = ?",
        vec![name.into()],
    ))
    .one(db)
    .await?)
}

/// Deletes an endpoint.
pub async fn delete(
    db: &impl ConnectionTrait,
    principal: &Principal,
    name: &str,
) -> Result<Endpoint> {
    admin_only(principal)?;
    let found = get(db, name)
        .await?
        .ok_or_else(|| Error::not_found(format!("no REST endpoint is named {name}")))?;
    db.execute_raw(crate::db::stmt(
        db.get_database_backend(),
        "DELETE FROM rest_endpoint WHERE name = ?",
        vec![name.into()],
    ))
    .await?;
    Ok(found)
}

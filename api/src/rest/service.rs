//! Saved operations, as stored (their documents are checked by [`super::document`] before).
use crate::audit::service::{AuditAction, Change, RequestId};
use crate::auth::{Action, Principal};
use crate::error::{Error, Result};
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, FromQueryResult};

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

/// The endpoint as its audit entries hold it.
fn audited(e: &Endpoint) -> serde_json::Value {
    serde_json::json!({ "name": e.name, "method": e.method, "document": e.document,
        "description": e.description })
}

/// The audit entry of a change to an endpoint.
fn change(action: AuditAction, before: Option<&Endpoint>, after: Option<&Endpoint>) -> Change {
    Change {
        action,
        entity_id: after.or(before).map(|e| e.name.clone()).unwrap_or_default(),
        unit_code: None,
        concerns: None,
        before: before.map(audited),
        after: after.map(audited),
    }
}

/// Saves (or replaces) an endpoint.
pub async fn save(
    db: &DatabaseConnection,
    principal: &Principal,
    request: Option<&RequestId>,
    new: &NewEndpoint,
) -> Result<Endpoint> {
    admin_only(principal)?;
    let now = Utc::now();
    let txn = crate::db::begin_write(db).await?;
    let before = get(&txn, &new.name).await?;
    let saved = Endpoint::find_by_statement(crate::db::stmt(
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
    .one(&txn)
    .await?
    .ok_or_else(|| Error::Internal("the endpoint was not saved".into()))?;
    let entry = change(AuditAction::SaveRestEndpoint, before.as_ref(), Some(&saved));
    crate::audit::service::record(&txn, principal, request, entry).await?;
    txn.commit().await?;
    Ok(saved)
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
    db: &DatabaseConnection,
    principal: &Principal,
    request: Option<&RequestId>,
    name: &str,
) -> Result<Endpoint> {
    admin_only(principal)?;
    let txn = crate::db::begin_write(db).await?;
    let found = get(&txn, name)
        .await?
        .ok_or_else(|| Error::not_found(format!("no REST endpoint is named {name}")))?;
    txn.execute_raw(crate::db::stmt(
        db.get_database_backend(),
        "DELETE FROM rest_endpoint WHERE name = ?",
        vec![name.into()],
    ))
    .await?;
    let entry = change(AuditAction::DeleteRestEndpoint, Some(&found), None);
    crate::audit::service::record(&txn, principal, request, entry).await?;
    txn.commit().await?;
    Ok(found)
}

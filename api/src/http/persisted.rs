//! Automatic persisted queries, Apollo's protocol: a client sends a query's SHA-256 in
//! `extensions.persistedQuery {version: 1, sha256Hash}` instead of its text; a server that does
//! not know the hash answers `PersistedQueryNotFound`, the client sends hash and text once, and
//! from then on the hash alone (over GET too, so a proxy can cache the answer).
//!
//! The texts live in the `persisted_query` table, so what one replica learned every replica
//! knows: at most [`MAX_STORED`] of them, the least recently used dropped first. Each replica
//! holds the [`HELD`] it used last in memory (a text never changes under its hash, so a held
//! one is never stale). A text whose hash is not the one sent is refused, so no hash can be
//! made to stand for another query.
use crate::error::{Error, Result};
use chrono::{DateTime, Duration, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, Value};
use sha2::{Digest, Sha256};
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

/// The most query texts the database keeps.
pub const MAX_STORED: i64 = 10_000;
/// The most query texts a replica holds in memory.
pub const HELD: usize = 1_000;
/// A stored text's last use is written again only once this much older (a busy query does not
/// write on every request; the order it is dropped in is kept to within this).
const TOUCH_EVERY: Duration = Duration::minutes(10);

/// The message and code of an unknown hash, which Apollo's clients look for.
pub const NOT_FOUND_MESSAGE: &str = "PersistedQueryNotFound";
pub const NOT_FOUND_CODE: &str = "PERSISTED_QUERY_NOT_FOUND";

/// The stored query texts, with the ones used last in memory.
#[derive(Clone)]
pub struct PersistedQueries {
    held: Arc<Mutex<lru::LruCache<String, Arc<str>>>>,
}

impl Default for PersistedQueries {
    fn default() -> Self {
        Self {
            held: Arc::new(Mutex::new(lru::LruCache::new(
                NonZeroUsize::new(HELD).unwrap_or(NonZeroUsize::MIN),
            ))),
        }
    }
}

/// What a request's `extensions.persistedQuery` asks.
#[derive(Debug, PartialEq)]
pub struct Asked {
    /// The SHA-256 of the query text, 64 lowercase hex digits.
    pub hash: String,
}

/// Reads `extensions.persistedQuery`, if the request has one.
pub fn asked(extensions: Option<&serde_json::Value>) -> Result<Option<Asked>> {
    let Some(value) = extensions else {
        return Ok(None);
    };
    const FIELD: &str = "extensions.persistedQuery";
    let version = value.get("version").and_then(serde_json::Value::as_i64);
    if version != Some(1) {
        return Err(Error::invalid(
            FIELD,
            "`persistedQuery.version` must be 1 (the only version of the protocol)",
        ));
    }
    let hash = value
        .get("sha256Hash")
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default();
    if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::invalid(
            FIELD,
            "`persistedQuery.sha256Hash` must be the query's SHA-256 as 64 hex digits",
        ));
    }
    Ok(Some(Asked {
        hash: hash.to_ascii_lowercase(),
    }))
}

/// The SHA-256 of a query text as 64 lowercase hex digits.
pub fn hash_of(text: &str) -> String {
    format!("{:x}", Sha256::digest(text.as_bytes()))
}

/// Whether `hash` is the SHA-256 of `text`, as a validation error when it is not.
pub fn check_hash(hash: &str, text: &str) -> Result<()> {
    if hash_of(text) == hash {
        Ok(())
    } else {
        Err(Error::invalid(
            "extensions.persistedQuery.sha256Hash",
            "provided sha does not match query: `sha256Hash` is not the SHA-256 of `query`",
        ))
    }
}

impl PersistedQueries {
    /// The text stored under `hash`, if any replica learned it (and it was not dropped since).
    pub async fn text_of(&self, db: &DatabaseConnection, hash: &str) -> Result<Option<Arc<str>>> {
        if let Some(text) = self.held().get(hash) {
            return Ok(Some(text.clone()));
        }
        let backend = db.get_database_backend();
        let row = db
            .query_one_raw(crate::db::stmt(
                backend,
                "SELECT query, last_used FROM persisted_query WHERE hash = ?",
                vec![hash.into()],
            ))
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let text: String = row.try_get("", "query")?;
        let last_used: DateTime<Utc> = row.try_get("", "last_used")?;
        let now = Utc::now();
        if now - last_used > TOUCH_EVERY {
            db.execute_raw(crate::db::stmt(
                backend,
                "UPDATE persisted_query SET last_used = ? WHERE hash = ?",
                vec![Value::from(now), hash.into()],
            ))
            .await?;
        }
        let text: Arc<str> = text.into();
        self.held().put(hash.to_owned(), text.clone());
        Ok(Some(text))
    }

    /// Stores `text` under `hash` once it is checked to be its SHA-256; a new text beyond
    /// [`MAX_STORED`] drops the least recently used.
    pub async fn remember(&self, db: &DatabaseConnection, hash: &str, text: &str) -> Result<()> {
        check_hash(hash, text)?;
        if self.held().get(hash).is_some() {
            return Ok(());
        }
        let backend = db.get_database_backend();
        let inserted = db
            .execute_raw(crate::db::stmt(
                backend,
                "INSERT INTO persisted_query (hash, query, last_used) VALUES (?, ?, ?) \
                 ON CONFLICT (hash) DO NOTHING",
                vec![hash.into(), text.into(), Value::from(Utc::now())],
            ))
            .await?
            .rows_affected();
        if inserted > 0 {
            // Older than the last one kept (ties stay: a few more than the bound at worst).
            db.execute_raw(crate::db::stmt(
                backend,
                "DELETE FROM persisted_query WHERE last_used < \
                 (SELECT last_used FROM persisted_query ORDER BY last_used DESC LIMIT 1 OFFSET ?)",
                vec![Value::from(MAX_STORED - 1)],
            ))
            .await?;
        }
        self.held().put(hash.to_owned(), text.into());
        Ok(())
    }

    fn held(&self) -> std::sync::MutexGuard<'_, lru::LruCache<String, Arc<str>>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_extension_is_read_and_checked() {
        let hash = hash_of("{ me { subject } }");
        assert_eq!(
            asked(Some(
                &json!({"version": 1, "sha256Hash": hash.to_uppercase()})
            ))
            .ok()
            .flatten(),
            Some(Asked { hash: hash.clone() })
        );
        assert!(asked(None).ok().flatten().is_none());
        for bad in [
            json!({"version": 2, "sha256Hash": hash}),
            json!({"sha256Hash": hash}),
            json!({"version": 1}),
            json!({"version": 1, "sha256Hash": "abc"}),
            json!({"version": 1, "sha256Hash": "z".repeat(64)}),
            json!("yes"),
        ] {
            assert!(asked(Some(&bad)).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn the_hash_is_sha256_in_lowercase_hex() {
        assert_eq!(
            hash_of(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}

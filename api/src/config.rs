//! Settings: every environment variable the service reads, documented, read once.
use clap::{Args, ValueEnum};
use std::fmt;

/// Development secret used by `--demo` when `CNSCD_JWT_SECRET` is not set.
pub const DEMO_SECRET: &str = "cnscd-demo-secret-do-not-use-in-production";

/// Log output format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    #[default]
    Pretty,
    Json,
}

/// Settings shared by every command that touches the database or verifies tokens.
#[derive(Clone, Args)]
pub struct Settings {
    /// Database URL: `sqlite://FILE?mode=rwc` or `postgres://USER@HOST/DB`.
    #[arg(
        long,
        env = "CNSCD_DATABASE_URL",
        default_value = "sqlite://cnscd.db?mode=rwc"
    )]
    pub database_url: String,
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, env = "CNSCD_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// HS256 shared secret for bearer tokens.
    #[arg(long, env = "CNSCD_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// File with PEM public keys or a JWKS document (not supported by this version).
    #[arg(long, env = "CNSCD_JWT_PUBLIC_KEYS")]
    pub jwt_public_keys: Option<String>,
    /// JWKS endpoint of the identity provider (not supported by this version).
    #[arg(long, env = "CNSCD_JWKS_URL")]
    pub jwks_url: Option<String>,
    /// Required `iss` claim, when set.
    #[arg(long, env = "CNSCD_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,
    /// Required `aud` claim, when set.
    #[arg(long, env = "CNSCD_JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,
    /// Longest a GraphQL request may run (e.g. `30s`); past it the request is stopped and
    /// answered 503.
    #[arg(long, env = "CNSCD_REQUEST_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub request_timeout: std::time::Duration,
    /// Longest a statement waits for a database connection (e.g. `5s`) before the request
    /// fails with "the database is unavailable"; also the timeout for opening one.
    #[arg(long, env = "CNSCD_DB_ACQUIRE_TIMEOUT", default_value = "5s", value_parser = humantime::parse_duration)]
    pub db_acquire_timeout: std::time::Duration,
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("database_url", &redact_url(&self.database_url))
            .field("listen", &self.listen)
            .field(
                "jwt_secret",
                &self.jwt_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("jwt_issuer", &self.jwt_issuer)
            .field("jwt_audience", &self.jwt_audience)
            .field("request_timeout", &self.request_timeout)
            .field("db_acquire_timeout", &self.db_acquire_timeout)
            .finish()
    }
}

/// Hides a password in a database URL.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

impl Settings {
    /// Settings for tests and tools: the given database, a free port, the given secret.
    pub fn for_tests(database_url: &str, secret: &str) -> Self {
        Self {
            database_url: database_url.to_owned(),
            listen: "127.0.0.1:0".to_owned(),
            jwt_secret: Some(secret.to_owned()),
            jwt_public_keys: None,
            jwks_url: None,
            jwt_issuer: None,
            jwt_audience: None,
            request_timeout: std::time::Duration::from_secs(30),
            db_acquire_timeout: crate::db::DEFAULT_ACQUIRE_TIMEOUT,
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn redact_url_hides_passwords() {
        assert_eq!(
            super::redact_url("postgres://u:secret@h/db"),
            "postgres://u:***@h/db"
        );
        assert_eq!(super::redact_url("sqlite://x.db"), "sqlite://x.db");
    }
}

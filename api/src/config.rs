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
    /// File with PEM public keys or a JWKS document: RS256, ES256 and EdDSA tokens signed by
    /// them are accepted.
    #[arg(long, env = "CNSCD_JWT_PUBLIC_KEYS")]
    pub jwt_public_keys: Option<String>,
    /// JWKS endpoint of the identity provider (e.g. Keycloak's
    /// `https://HOST/realms/REALM/protocol/openid-connect/certs`): fetched at start, cached per
    /// its Cache-Control max-age, refetched at most once a minute on an unknown `kid`.
    #[arg(long, env = "CNSCD_JWKS_URL")]
    pub jwks_url: Option<String>,
    /// Shortest time between JWKS refetches (not a setting: tests shorten it).
    #[arg(skip = crate::auth::jwks::DEFAULT_REFETCH_INTERVAL)]
    pub jwks_refetch_interval: std::time::Duration,
    /// Dotted path of the claim holding the caller's roles (Keycloak: `realm_access.roles`).
    #[arg(long, env = "CNSCD_JWT_ROLES_CLAIM", default_value = "roles")]
    pub jwt_roles_claim: String,
    /// Dotted path of the claim holding the caller's administrative-unit codes.
    #[arg(long, env = "CNSCD_JWT_UNITS_CLAIM", default_value = "units")]
    pub jwt_units_claim: String,
    /// Dotted path of the claim holding the caller's team ids.
    #[arg(long, env = "CNSCD_JWT_TEAMS_CLAIM", default_value = "teams")]
    pub jwt_teams_claim: String,
    /// Dotted path of the claim holding the client (application) id (Keycloak: `azp`).
    #[arg(long, env = "CNSCD_JWT_CLIENT_CLAIM", default_value = "client_id")]
    pub jwt_client_claim: String,
    /// Required `iss` claim, when set.
    #[arg(long, env = "CNSCD_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,
    /// Required `aud` claim, when set.
    #[arg(long, env = "CNSCD_JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,
    /// Cost points a client (token client id, else subject) may spend a minute: a token bucket
    /// holding a minute's worth, refilled continuously; each request costs its query cost (at
    /// least 1). `0` turns limiting off.
    #[arg(long, env = "CNSCD_RATE_LIMIT_PER_MINUTE", default_value_t = crate::http::ratelimit::DEFAULT_PER_MINUTE)]
    pub rate_limit_per_minute: u32,
    /// Per-role limits overriding CNSCD_RATE_LIMIT_PER_MINUTE, e.g. `VIEWER=120000,ADMIN=0`
    /// (`0`: unlimited); a caller with several roles gets the most generous.
    #[arg(long, env = "CNSCD_RATE_LIMIT_PER_ROLE", default_value = "")]
    pub rate_limit_per_role: crate::http::ratelimit::RoleLimits,
    /// Longest a GraphQL request may run (e.g. `30s`); past it the request is stopped and
    /// answered 503.
    #[arg(long, env = "CNSCD_REQUEST_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub request_timeout: std::time::Duration,
    /// Longest a statement waits for a database connection (e.g. `5s`) before the request
    /// fails with "the database is unavailable"; also the timeout for opening one.
    #[arg(long, env = "CNSCD_DB_ACQUIRE_TIMEOUT", default_value = "5s", value_parser = humantime::parse_duration)]
    pub db_acquire_timeout: std::time::Duration,
    /// Most database connections the server holds at once (1 to 1000; default 16 on
    /// PostgreSQL, 4 on SQLite). Replicas times this must stay under PostgreSQL's
    /// `max_connections` (100 by default), with room for the tools that connect beside them.
    #[arg(long, env = "CNSCD_DB_POOL_SIZE", value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub db_pool_size: Option<u32>,
    /// Longest a client may take to send a request's head (request line and headers), e.g.
    /// `10s`; past it the connection is closed.
    #[arg(long, env = "CNSCD_HEADER_READ_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub header_read_timeout: std::time::Duration,
    /// Subscription sockets that may wait for `connection_init` at once; more are answered 503.
    #[arg(long, env = "CNSCD_WS_MAX_UNAUTHENTICATED", default_value_t = crate::http::ws::DEFAULT_MAX_UNAUTHENTICATED)]
    pub ws_max_unauthenticated: usize,
    /// Subscription sockets one caller (token subject and client) may hold at once.
    #[arg(long, env = "CNSCD_WS_MAX_SOCKETS_PER_CALLER", default_value_t = crate::http::ws::DEFAULT_MAX_SOCKETS_PER_CALLER)]
    pub ws_max_sockets_per_caller: usize,
    /// Subscriptions one caller may run at once, over all its sockets.
    #[arg(long, env = "CNSCD_WS_MAX_SUBSCRIPTIONS_PER_CALLER", default_value_t = crate::http::ws::DEFAULT_MAX_SUBSCRIPTIONS_PER_CALLER)]
    pub ws_max_subscriptions_per_caller: usize,
    /// Let webhooks target loopback, link-local and private addresses (a province's internal
    /// network, tests).
    #[arg(long, env = "CNSCD_WEBHOOK_ALLOW_PRIVATE", default_value_t = false, action = clap::ArgAction::Set)]
    pub webhook_allow_private: bool,
    /// Longest one webhook delivery attempt may take, e.g. `10s`.
    #[arg(long, env = "CNSCD_WEBHOOK_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub webhook_timeout: std::time::Duration,
    /// How long after its event a failing delivery is still tried, e.g. `24h`; then it is
    /// FAILED (and `redeliverWebhook` tries again).
    #[arg(long, env = "CNSCD_WEBHOOK_RETRY_FOR", default_value = "24h", value_parser = humantime::parse_duration)]
    pub webhook_retry_for: std::time::Duration,
    /// The wait after a delivery's first failure, e.g. `1s`; the later waits are 5, 30, 120,
    /// 600 and 3,600 times it, then 3,600 times it again and again (with ±20% jitter).
    #[arg(long, env = "CNSCD_WEBHOOK_FIRST_RETRY", default_value = "1s", value_parser = humantime::parse_duration)]
    pub webhook_first_retry: std::time::Duration,
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
            .field("jwt_public_keys", &self.jwt_public_keys)
            .field("jwks_url", &self.jwks_url.as_deref().map(redact_url))
            .field("jwt_issuer", &self.jwt_issuer)
            .field("jwt_audience", &self.jwt_audience)
            .field("request_timeout", &self.request_timeout)
            .field("db_acquire_timeout", &self.db_acquire_timeout)
            .field("db_pool_size", &self.db_pool_size)
            .field("rate_limit_per_minute", &self.rate_limit_per_minute)
            .field("rate_limit_per_role", &self.rate_limit_per_role)
            .field("header_read_timeout", &self.header_read_timeout)
            .field("ws_max_unauthenticated", &self.ws_max_unauthenticated)
            .field("ws_max_sockets_per_caller", &self.ws_max_sockets_per_caller)
            .field(
                "ws_max_subscriptions_per_caller",
                &self.ws_max_subscriptions_per_caller,
            )
            .field("webhook_allow_private", &self.webhook_allow_private)
            .field("webhook_timeout", &self.webhook_timeout)
            .field("webhook_retry_for", &self.webhook_retry_for)
            .field("webhook_first_retry", &self.webhook_first_retry)
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
            jwks_refetch_interval: crate::auth::jwks::DEFAULT_REFETCH_INTERVAL,
            jwt_roles_claim: "roles".to_owned(),
            jwt_units_claim: "units".to_owned(),
            jwt_teams_claim: "teams".to_owned(),
            jwt_client_claim: "client_id".to_owned(),
            jwt_issuer: None,
            jwt_audience: None,
            request_timeout: std::time::Duration::from_secs(30),
            db_acquire_timeout: crate::db::DEFAULT_ACQUIRE_TIMEOUT,
            // Tests run side by side, each with a server or two, on one PostgreSQL server.
            db_pool_size: (!database_url.starts_with("sqlite:")).then_some(8),
            // Tests that are not about limits are not limited.
            rate_limit_per_minute: 0,
            rate_limit_per_role: crate::http::ratelimit::RoleLimits::default(),
            header_read_timeout: crate::http::serve::DEFAULT_HEADER_READ_TIMEOUT,
            ws_max_unauthenticated: crate::http::ws::DEFAULT_MAX_UNAUTHENTICATED,
            ws_max_sockets_per_caller: crate::http::ws::DEFAULT_MAX_SOCKETS_PER_CALLER,
            ws_max_subscriptions_per_caller: crate::http::ws::DEFAULT_MAX_SUBSCRIPTIONS_PER_CALLER,
            // Receivers in the tests listen on loopback, and fail fast.
            webhook_allow_private: true,
            webhook_timeout: std::time::Duration::from_secs(2),
            webhook_retry_for: std::time::Duration::from_secs(24 * 3600),
            webhook_first_retry: std::time::Duration::from_millis(50),
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

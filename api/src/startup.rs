//! Building the application (connect, migrate, schema, bind) and running it until stopped.
use crate::auth::{ClaimPaths, TokenVerifier};
use crate::config::{DEMO_SECRET, Settings};
use crate::http::{AppState, router};
use anyhow::Context;
use cnscd_migration::{Migrator, MigratorTrait};
use sea_orm::DatabaseConnection;
use std::net::SocketAddr;
use tokio::net::TcpListener;

pub struct Application {
    listener: TcpListener,
    /// How the webhook delivery loop sends.
    webhooks: crate::webhooks::delivery::Rules,
    /// The delivery loop's own connections (at most two; the same pool for an in-memory
    /// SQLite database, which another pool would not see).
    webhook_db: DatabaseConnection,
    /// Longest a client may take to send a request's head.
    header_read_timeout: std::time::Duration,
    address: SocketAddr,
    state: AppState,
}

/// The token verifier the settings describe (HS256 secret, public keys file, JWKS URL, any
/// together); refuses to go on without one.
pub async fn verifier(settings: &Settings, demo: bool) -> anyhow::Result<TokenVerifier> {
    let asymmetric = settings.jwt_public_keys.is_some() || settings.jwks_url.is_some();
    let secret = match (&settings.jwt_secret, demo) {
        (Some(s), _) => Some(s.clone()),
        (None, _) if asymmetric => None,
        (None, true) => {
            tracing::warn!(
                "CNSCD_JWT_SECRET is not set: --demo uses a development secret; never do this in production"
            );
            Some(DEMO_SECRET.to_owned())
        }
        (None, false) => anyhow::bail!(
            "no way to verify tokens: set CNSCD_JWT_SECRET (an HS256 shared secret), \
             CNSCD_JWT_PUBLIC_KEYS (a file of PEM public keys or a JWKS document) or \
             CNSCD_JWKS_URL (the identity provider's JWKS endpoint), or run with --demo for a \
             development secret"
        ),
    };
    let mut builder = TokenVerifier::builder()
        .issuer(settings.jwt_issuer.as_deref())
        .audience(settings.jwt_audience.as_deref())
        .jwks_refetch_interval(settings.jwks_refetch_interval)
        .claim_paths(ClaimPaths {
            roles: settings.jwt_roles_claim.clone(),
            units: settings.jwt_units_claim.clone(),
            teams: settings.jwt_teams_claim.clone(),
            client: settings.jwt_client_claim.clone(),
        });
    if let Some(secret) = &secret {
        builder = builder.hs256(secret)?;
    }
    if let Some(path) = &settings.jwt_public_keys {
        builder = builder.public_keys_file(path)?;
    }
    if let Some(url) = &settings.jwks_url {
        builder = builder.jwks_url(url);
    }
    builder.build().await
}

/// Connects, brings the schema up to date and seeds the standard catalogues.
pub async fn prepare_database(url: &str) -> anyhow::Result<DatabaseConnection> {
    prepare_database_with(url, None, crate::db::DEFAULT_ACQUIRE_TIMEOUT).await
}

/// Like [`prepare_database`], with at most `pool_size` connections (the default when `None`),
/// waiting at most `acquire_timeout` for one.
pub async fn prepare_database_with(
    url: &str,
    pool_size: Option<u32>,
    acquire_timeout: std::time::Duration,
) -> anyhow::Result<DatabaseConnection> {
    let db = crate::db::connect_with(url, pool_size, acquire_timeout)
        .await
        .with_context(|| format!("Failed to connect to {}", crate::config::redact_url(url)))?;
    Migrator::up(&db, None)
        .await
        .context("Failed to run migrations")?;
    crate::catalog::service::ensure_defaults(&db)
        .await
        .map_err(|e| anyhow::anyhow!("Failed to seed the standard catalogues: {}", e.message()))?;
    // Rollups are derived: none while activities exist means a migration changed their form.
    let any = |table: &str| format!("SELECT COUNT(*) AS n FROM (SELECT 1 FROM {table} LIMIT 1) t");
    if crate::db::count(&db, &any("unit_month_fact"), vec![]).await? == 0
        && crate::db::count(&db, &any("unit_month_delta"), vec![]).await? == 0
        && crate::db::count(&db, &any("activity"), vec![]).await? > 0
    {
        let read = crate::activities::rollup::rebuild(&db)
            .await
            .map_err(|e| anyhow::anyhow!("Failed to rebuild the rollups: {}", e.message()))?;
        tracing::info!(activities = read, "rollups rebuilt");
    }
    Ok(db)
}

impl Application {
    /// Connects, migrates, builds the schema and binds the listener (port 0 picks one).
    /// With `demo` and no `CNSCD_JWT_SECRET`, tokens are checked with the published
    /// development secret: that is refused on a non-loopback address and on a database that
    /// holds anything but the demo data set.
    pub async fn build(settings: &Settings, demo: bool) -> anyhow::Result<Self> {
        let verifier = verifier(settings, demo).await?;
        let development_secret = demo
            && settings.jwt_secret.is_none()
            && settings.jwt_public_keys.is_none()
            && settings.jwks_url.is_none();
        if development_secret && !is_loopback(&settings.listen) {
            anyhow::bail!(
                "refusing to serve on {} with the development secret: anyone who can reach it \
                 could sign an ADMIN token. Listen on a loopback address \
                 (CNSCD_LISTEN=127.0.0.1:8080) or set CNSCD_JWT_SECRET",
                settings.listen
            );
        }
        let db = prepare_database_with(
            &settings.database_url,
            settings.db_pool_size,
            settings.db_acquire_timeout,
        )
        .await?;
        if development_secret && !crate::demo::holds_only_demo_data(&db).await? {
            anyhow::bail!(
                "refusing to use the development secret on {}: the database holds data that is \
                 not the demo data set, and anyone could sign an ADMIN token for it. Use an \
                 empty database for the demo (e.g. CNSCD_DATABASE_URL=sqlite://demo.db?mode=rwc) \
                 or set CNSCD_JWT_SECRET",
                crate::config::redact_url(&settings.database_url)
            );
        }
        Self::with_database(settings, verifier, db).await
    }

    /// Like [`Application::build`] with a prepared database.
    pub async fn with_database(
        settings: &Settings,
        verifier: TokenVerifier,
        db: DatabaseConnection,
    ) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(&settings.listen)
            .await
            .with_context(|| format!("Failed to bind {}", settings.listen))?;
        let address = listener.local_addr()?;
        // The metrics recorder, before anything records (the first indicator load below).
        let _ = crate::http::metrics::handle();
        let store = crate::memory::Store::for_database(&db);
        // Indicators are answered from memory: load the copy now rather than on the first
        // request (a failure here is not fatal: the first request loads it, or says why not).
        let started = std::time::Instant::now();
        match store.snapshot(&db).await {
            Ok(_) => tracing::info!(
                elapsed_ms = started.elapsed().as_millis() as u64,
                "indicator data loaded"
            ),
            Err(e) => tracing::warn!(error = %e.message(), "indicator data not loaded yet"),
        }
        // The live feed; on PostgreSQL listening before the first request is served.
        let events = crate::events::Bus::start(&db, &store).await;
        let webhook_db = if settings.database_url.contains(":memory:")
            || settings.database_url.contains("mode=memory")
        {
            db.clone()
        } else {
            crate::db::connect_background(&settings.database_url, settings.db_acquire_timeout)
                .await
                .context("Failed to open the webhook delivery's connections")?
        };
        // One admission: requests are admitted by it, REST documents checked by it when saved.
        let admission = std::sync::Arc::new(crate::schema::admission::Admission::new());
        let schema = crate::schema::build_schema(
            db.clone(),
            store.clone(),
            events,
            crate::webhooks::resolvers::AllowPrivate(settings.webhook_allow_private),
            admission.clone(),
        );
        let limiter = crate::http::ratelimit::RateLimiter::new(
            crate::http::ratelimit::RateLimits {
                per_minute: settings.rate_limit_per_minute,
                per_role: settings.rate_limit_per_role.clone(),
            },
            &db,
        );
        Ok(Self {
            listener,
            webhook_db,
            webhooks: crate::webhooks::delivery::Rules {
                allow_private: settings.webhook_allow_private,
                timeout: settings.webhook_timeout,
                retry_for: settings.webhook_retry_for,
                first_retry: settings.webhook_first_retry,
            },
            header_read_timeout: settings.header_read_timeout,
            address,
            state: AppState {
                schema,
                admission,
                db,
                store,
                verifier,
                limiter,
                request_timeout: settings.request_timeout,
                closing: crate::http::ws::Closing::new(),
                sockets: crate::http::ws::Sockets::new(crate::http::ws::SocketLimits {
                    max_unauthenticated: settings.ws_max_unauthenticated,
                    max_sockets_per_caller: settings.ws_max_sockets_per_caller,
                    max_subscriptions_per_caller: settings.ws_max_subscriptions_per_caller,
                }),
                persisted: crate::http::persisted::PersistedQueries::default(),
                webhook_wake: std::sync::Arc::default(),
            },
        })
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The in-memory indicator data the application answers from.
    pub fn store(&self) -> &crate::memory::Store {
        &self.state.store
    }

    pub fn db(&self) -> &DatabaseConnection {
        &self.state.db
    }

    /// Serves until SIGINT or SIGTERM, then drains in-flight requests.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.run_until(shutdown_signal()).await
    }

    /// Serves until `stop` completes, then drains in-flight requests and closes subscription
    /// sockets (1001, so that clients reconnect, to another replica if need be).
    pub async fn run_until(
        self,
        stop: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        tracing::info!(address = %self.address, "listening; GraphiQL at http://{}/graphql", self.address);
        let closing = self.state.closing.clone();
        let signal = {
            let closing = closing.clone();
            async move {
                stop.await;
                closing.start();
            }
        };
        let header_read_timeout = self.header_read_timeout;
        let keeping_current = tokio::spawn(keep_current(
            self.state.store.clone(),
            self.state.db.clone(),
        ));
        // Webhooks: delivered until the server stops; what is in flight then is sent again by
        // whichever replica runs next (its lease ends).
        let (stop_delivering, delivering) = tokio::sync::watch::channel(false);
        let delivery = crate::webhooks::delivery::start(
            self.webhook_db.clone(),
            self.webhooks.clone(),
            self.state.webhook_wake.clone(),
            delivering,
        )?;
        crate::http::serve::serve(
            self.listener,
            router(self.state),
            header_read_timeout,
            signal,
        )
        .await;
        // Upgraded connections are not drained by the server: wait for the sockets to send
        // their close frames.
        closing.drained(std::time::Duration::from_secs(5)).await;
        keeping_current.abort();
        let _ = stop_delivering.send(true);
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), delivery).await;
        Ok(())
    }
}

/// Keeps the in-memory copy current while no request does: a copy that no request has
/// brought up to date for two minutes catches up (folded rollup deltas are kept for
/// [`crate::activities::rollup::KEEP_FOLDED`]; a copy that has not read them by then loads
/// anew).
async fn keep_current(store: crate::memory::Store, db: DatabaseConnection) {
    let every = std::time::Duration::from_secs(60);
    loop {
        tokio::time::sleep(every).await;
        let stale = store
            .held()
            .is_none_or(|s| chrono::Utc::now() - s.as_of() > chrono::Duration::seconds(120));
        if stale && let Err(e) = store.snapshot(&db).await {
            tracing::warn!(error = %e.message(), "indicator data not brought up to date");
        }
    }
}

/// Whether every address `listen` names is a loopback address (`127.0.0.1`, `[::1]`,
/// `localhost`); unresolvable addresses are not.
pub fn is_loopback(listen: &str) -> bool {
    use std::net::ToSocketAddrs;
    match listen.to_socket_addrs() {
        Ok(addrs) => {
            let addrs: Vec<SocketAddr> = addrs.collect();
            !addrs.is_empty() && addrs.iter().all(|a| a.ip().is_loopback())
        }
        Err(_) => false,
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: draining in-flight requests");
}

#[cfg(test)]
mod tests {
    #[test]
    fn loopback_addresses() {
        for a in ["127.0.0.1:8080", "[::1]:0", "localhost:8080", "127.0.0.2:1"] {
            assert!(super::is_loopback(a), "{a}");
        }
        for a in ["0.0.0.0:8080", "[::]:8080", "10.0.0.5:80", "not an address"] {
            assert!(!super::is_loopback(a), "{a}");
        }
    }
}

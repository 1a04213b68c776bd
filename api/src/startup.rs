//! Building the application (connect, migrate, schema, bind) and running it until stopped.
use crate::auth::TokenVerifier;
use crate::config::{DEMO_SECRET, Settings};
use crate::http::{AppState, router};
use anyhow::Context;
use cnscd_migration::{Migrator, MigratorTrait};
use sea_orm::DatabaseConnection;
use std::net::SocketAddr;
use tokio::net::TcpListener;

pub struct Application {
    listener: TcpListener,
    address: SocketAddr,
    state: AppState,
}

/// The token verifier the settings describe; refuses to go on without one.
pub fn verifier(settings: &Settings, demo: bool) -> anyhow::Result<TokenVerifier> {
    let secret = match (&settings.jwt_secret, demo) {
        (Some(s), _) => s.clone(),
        (None, true) => {
            tracing::warn!(
                "CNSCD_JWT_SECRET is not set: --demo uses a development secret; never do this in production"
            );
            DEMO_SECRET.to_owned()
        }
        (None, false) if settings.jwt_public_keys.is_some() || settings.jwks_url.is_some() => {
            anyhow::bail!(
                "CNSCD_JWT_PUBLIC_KEYS and CNSCD_JWKS_URL are not supported by this version yet: set CNSCD_JWT_SECRET (HS256)"
            )
        }
        (None, false) => anyhow::bail!(
            "no way to verify tokens: set CNSCD_JWT_SECRET (an HS256 shared secret), or run with --demo for a development secret"
        ),
    };
    TokenVerifier::hs256(
        &secret,
        settings.jwt_issuer.as_deref(),
        settings.jwt_audience.as_deref(),
    )
}

/// Connects, brings the schema up to date and seeds the standard catalogues.
pub async fn prepare_database(url: &str) -> anyhow::Result<DatabaseConnection> {
    let db = crate::db::connect(url)
        .await
        .with_context(|| format!("Failed to connect to {}", crate::config::redact_url(url)))?;
    Migrator::up(&db, None)
        .await
        .context("Failed to run migrations")?;
    crate::catalog::service::ensure_defaults(&db)
        .await
        .map_err(|e| anyhow::anyhow!("Failed to seed the standard catalogues: {}", e.message()))?;
    Ok(db)
}

impl Application {
    /// Connects, migrates, builds the schema and binds the listener (port 0 picks one).
    pub async fn build(settings: &Settings, demo: bool) -> anyhow::Result<Self> {
        let verifier = verifier(settings, demo)?;
        let db = prepare_database(&settings.database_url).await?;
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
        let schema = crate::graphql::build_schema(db.clone());
        Ok(Self {
            listener,
            address,
            state: AppState {
                schema,
                admission: crate::graphql::limits::Admission::new(),
                db,
                verifier,
                request_timeout: settings.request_timeout,
            },
        })
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    pub fn db(&self) -> &DatabaseConnection {
        &self.state.db
    }

    /// Serves until SIGINT or SIGTERM, then drains in-flight requests.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        tracing::info!(address = %self.address, "listening; GraphiQL at http://{}/graphql", self.address);
        axum::serve(self.listener, router(self.state))
            .with_graceful_shutdown(shutdown_signal())
            .await
            .context("server failed")
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

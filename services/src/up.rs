//! `leadroute up`: the whole service in one process on the embedded default. It prepares
//! PostgreSQL (created database, migrations) and NATS, seeds the demo when asked, runs until
//! a shutdown signal and then stops the servers it started.
//!
//! Later parts (API, projector, publisher, router, mailer) join here as tasks.

use crate::app::Commands;
use crate::cli::UpConfig;
use crate::db;
use crate::demo;
use crate::embedded::Infra;
use sqlx::PgPool;
use std::future::Future;

/// A prepared `up`: servers chosen or started, schema migrated.
pub struct Up {
    /// The servers in use, and those to stop at the end.
    infra: Infra,
    /// Pool on the event store database.
    pool: PgPool,
}

impl Up {
    /// Start or find PostgreSQL and NATS, create the default database if needed, migrate,
    /// and seed the demo when configured.
    pub async fn build(config: &UpConfig) -> anyhow::Result<Up> {
        let mut infra = Infra::ensure(config).await?;
        match Self::prepare(&infra, config).await {
            Ok(pool) => Ok(Up { infra, pool }),
            Err(e) => {
                infra.stop().await;
                Err(e)
            }
        }
    }

    async fn prepare(infra: &Infra, config: &UpConfig) -> anyhow::Result<PgPool> {
        if infra.database_is_default {
            db::ensure_database(&infra.database_url).await?;
        }
        let pool = db::connect_and_migrate(&infra.database_url, config.database.db_max_connections)
            .await?;
        if config.demo {
            let summary = demo::seed(&Commands::new(pool.clone())).await?;
            tracing::info!(org_id = %summary.org_id, newly_seeded = summary.newly_seeded, "demo org ready");
        }
        Ok(pool)
    }

    /// The pool on the event store (for tests and embedding).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Run until `shutdown` completes, then stop the servers `up` started.
    pub async fn run_until_stopped(
        mut self,
        shutdown: impl Future<Output = ()>,
    ) -> anyhow::Result<()> {
        tracing::info!(
            database = %db::redact_url(&self.infra.database_url),
            nats = %self.infra.nats_url,
            "leadroute is up; stop it with Ctrl-C or SIGTERM"
        );
        shutdown.await;
        tracing::info!("shutting down");
        self.pool.close().await;
        self.infra.stop().await;
        Ok(())
    }
}

/// Completes on Ctrl-C (SIGINT) or SIGTERM.
pub async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = terminate => {},
    }
}

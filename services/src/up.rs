//! `leadroute up`: the whole service in one process on the embedded default. It prepares
//! PostgreSQL (created database, migrations) and NATS, seeds the demo when asked, runs until
//! a shutdown signal and then stops the servers it started.
//!
//! The projectors, the NATS publisher and the intake run here as tasks; later parts (API,
//! router, mailer) join them.

use crate::app::Commands;
use crate::cli::UpConfig;
use crate::db;
use crate::demo;
use crate::embedded::Infra;
use crate::nats;
use crate::read_side::{self, ProjectorTasks};
use sqlx::PgPool;
use std::future::Future;
use tokio::signal::unix::{signal, Signal, SignalKind};

/// A prepared `up`: servers chosen or started, schema migrated.
pub struct Up {
    /// The servers in use, and those to stop at the end.
    infra: Infra,
    /// Pool on the event store database.
    pool: PgPool,
    /// The projectors keeping the read models up to date.
    projectors: ProjectorTasks,
    /// The publisher relaying events to NATS.
    publisher: ProjectorTasks,
    /// The intake receiving upstream lead events from NATS.
    intake: read_side::IntakeWorkers,
}

impl Up {
    /// Start or find PostgreSQL and NATS, create the default database if needed, migrate,
    /// and seed the demo when configured.
    pub async fn build(config: &UpConfig) -> anyhow::Result<Up> {
        let mut infra = Infra::ensure(config).await?;
        match Self::prepare(&infra, config).await {
            Ok(pool) => {
                let publisher = match read_side::publisher(
                    &infra.nats_url,
                    nats::Names::new(&config.nats_prefix, &config.nats_crm_prefix)?,
                )
                .await
                {
                    Ok(publisher) => {
                        ProjectorTasks::spawn_for(&pool, vec![publisher], Default::default())
                    }
                    Err(e) => {
                        infra.stop().await;
                        return Err(e);
                    }
                };
                let intake = match read_side::IntakeWorkers::spawn(
                    &pool,
                    &infra.nats_url,
                    nats::Names::new(&config.nats_prefix, &config.nats_crm_prefix)?,
                    1,
                )
                .await
                {
                    Ok(intake) => intake,
                    Err(e) => {
                        publisher.stop().await;
                        infra.stop().await;
                        return Err(e);
                    }
                };
                let projectors = ProjectorTasks::spawn(&pool, Default::default());
                Ok(Up {
                    infra,
                    pool,
                    projectors,
                    publisher,
                    intake,
                })
            }
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
        self.intake.stop().await;
        self.projectors.stop().await;
        self.publisher.stop().await;
        self.pool.close().await;
        self.infra.stop().await;
        Ok(())
    }
}

/// Ctrl-C (SIGINT) and SIGTERM, listened for from creation on: create it before start-up,
/// so a signal during start-up neither kills the process before it stops the servers it
/// started nor gets lost.
pub struct ShutdownSignal {
    interrupt: Signal,
    terminate: Signal,
}

impl ShutdownSignal {
    /// Start listening.
    pub fn listen() -> std::io::Result<ShutdownSignal> {
        Ok(ShutdownSignal {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    /// Completes at the first signal (at once if one came since [`ShutdownSignal::listen`]).
    pub async fn recv(mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {},
            _ = self.terminate.recv() => {},
        }
    }
}

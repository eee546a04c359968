//! `leadroute up`: the whole service in one process on the embedded default. It prepares
//! PostgreSQL (created database, migrations) and NATS, seeds the demo when asked, runs until
//! a shutdown signal and then stops the servers it started.
//!
//! The HTTP API, the projectors, the NATS publisher, the intake, the router, the scheduler
//! of offer timers and the mailer (the `log` transport unless SMTP is configured) run here
//! as tasks. With `--demo` it prints fresh demo API keys and the demo partner sign-in on
//! stdout (never in the log).

use crate::cli::UpConfig;
use crate::demo;
use crate::embedded::Infra;
use leadroute_api::Api;
use leadroute_app::access::Access;
use leadroute_app::Commands;
use leadroute_store::db;
use leadroute_workers::nats;
use leadroute_workers::tasks::{self, Tasks};
use sqlx::PgPool;
use std::future::Future;
use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::signal::unix::{signal, Signal, SignalKind};

/// Where the API's live streams follow the published events (the events stream is
/// created when missing).
pub async fn live_source(
    nats_url: &str,
    names: &nats::Names,
) -> anyhow::Result<leadroute_api::live::LiveSource> {
    let js = nats::connect(nats_url).await?;
    nats::ensure_events_stream(&js, names).await?;
    Ok(leadroute_api::live::LiveSource {
        js,
        stream: names.events_stream(),
        prefix: names.prefix().to_string(),
    })
}

/// A prepared `up`: servers chosen or started, schema migrated.
pub struct Up {
    /// The servers in use, and those to stop at the end.
    infra: Infra,
    /// Pool on the event store database.
    pool: PgPool,
    /// The publisher, projectors, intake and router.
    running: Running,
    /// The HTTP API, bound; served by `run_until_stopped`.
    api: Api,
    /// Demo credentials to print once the API listens (`--demo`).
    demo: Option<demo::DemoCredentials>,
}

impl Up {
    /// Start or find PostgreSQL and NATS, create the default database if needed, migrate,
    /// and seed the demo when configured.
    pub async fn build(config: &UpConfig) -> anyhow::Result<Up> {
        let mut infra = Infra::ensure(config).await?;
        let started = match Self::prepare(&infra, config).await {
            Ok((pool, demo)) => Self::start(&pool, &infra.nats_url, config)
                .await
                .map(|(running, api)| (pool, demo, running, api)),
            Err(e) => Err(e),
        };
        match started {
            Ok((pool, demo, running, api)) => Ok(Up {
                infra,
                pool,
                running,
                api,
                demo,
            }),
            Err(e) => {
                infra.stop().await;
                Err(e)
            }
        }
    }

    /// Start the publisher, the intake, router and mailer workers, the API (bound) and the
    /// projectors; on an error, stop what already started.
    async fn start(
        pool: &PgPool,
        nats_url: &str,
        config: &UpConfig,
    ) -> anyhow::Result<(Running, Api)> {
        let names = nats::Names::new(&config.nats_prefix, &config.nats_crm_prefix)?;
        let mut running = Running {
            tasks: Vec::new(),
            workers: Vec::new(),
        };
        // The consumers exist before the publisher runs, so the mailer (which starts with
        // new events only) sees everything published from the first start on.
        // One event store and cache for the whole process.
        let commands = Commands::new(pool.clone());
        let rest = async {
            let intake = Tasks::intake(&commands, nats_url, names.clone(), 1).await?;
            running.workers.push(intake);
            let router = Tasks::router(&commands, nats_url, names.clone(), 1).await?;
            running.workers.push(router);
            let scheduler = Tasks::scheduler(&commands, leadroute_workers::scheduler::TICK);
            running.workers.push(scheduler);
            let mailer = Tasks::mailer(&commands, nats_url, names.clone(), 1, &config.mail);
            running.workers.push(mailer.await?);
            let publisher = tasks::publisher(nats_url, names.clone()).await?;
            running.tasks.push(Tasks::projectors_of(
                pool,
                vec![publisher],
                Default::default(),
            ));
            let live = live_source(nats_url, &names).await?;
            Api::build_live(commands.clone(), &config.api, Some(live)).await
        }
        .await;
        match rest {
            Ok(api) => {
                running
                    .tasks
                    .push(Tasks::projectors(pool, Default::default()));
                Ok((running, api))
            }
            Err(e) => {
                running.stop().await;
                Err(e)
            }
        }
    }

    async fn prepare(
        infra: &Infra,
        config: &UpConfig,
    ) -> anyhow::Result<(PgPool, Option<demo::DemoCredentials>)> {
        if infra.database_is_default {
            db::ensure_database(&infra.database_url).await?;
        }
        let pool = db::connect_and_migrate(&infra.database_url, config.database.db_max_connections)
            .await?;
        if config.demo {
            let commands = Commands::new(pool.clone());
            let summary = demo::seed(&commands).await?;
            tracing::info!(org_id = %summary.org_id, newly_seeded = summary.newly_seeded, "demo org ready");
            let access = Access::new(pool.clone(), commands, Duration::ZERO);
            return Ok((pool, Some(demo::credentials(&access).await?)));
        }
        Ok((pool, None))
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
        let (stop_api, api_stopped) = tokio::sync::oneshot::channel::<()>();
        tracing::info!(address = %self.api.local_addr(), "API listening");
        if let Some(demo) = &self.demo {
            // A closed stdout must not stop the service.
            if let Err(e) = print_demo(demo, self.api.local_addr()) {
                tracing::warn!(error = %e, "cannot print the demo credentials");
            }
        }
        let api = tokio::spawn(self.api.run_until_stopped(async {
            let _ = api_stopped.await;
        }));
        shutdown.await;
        tracing::info!("shutting down");
        let _ = stop_api.send(());
        if let Ok(Err(e)) = api.await {
            tracing::warn!(error = %e, "API stopped with an error");
        }
        self.running.stop().await;
        self.pool.close().await;
        self.infra.stop().await;
        Ok(())
    }
}

/// The tasks `up` runs besides the API.
struct Running {
    /// Projectors and the publisher.
    tasks: Vec<Tasks>,
    /// Intake and router workers.
    workers: Vec<Tasks>,
}

impl Running {
    /// Stop the consumers first (they write), then the log readers.
    async fn stop(self) {
        for workers in self.workers {
            workers.stop().await;
        }
        for tasks in self.tasks {
            tasks.stop().await;
        }
    }
}

/// The demo's credentials and a first call to try, on stdout.
fn print_demo(demo: &demo::DemoCredentials, listen: SocketAddr) -> std::io::Result<()> {
    let base = format!("http://{listen}");
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "\nleadroute demo (fresh keys each start; earlier demo keys are revoked)"
    )?;
    writeln!(
        out,
        "  API:                 {base}   (OpenAPI: {base}/openapi.json)"
    )?;
    writeln!(out, "  org id:              {}", demo.org_id)?;
    writeln!(out, "  admin key:           {}", demo.admin_key)?;
    writeln!(
        out,
        "  channel manager key: {}   (owns Northwind Resellers)",
        demo.manager_key
    )?;
    writeln!(out, "  partner portal:      {base}{}/sign-in", demo.portal)?;
    writeln!(
        out,
        "  partner sign-in:     {} with password {}",
        demo::SIGNED_IN.join(" or "),
        demo::DEMO_PASSWORD
    )?;
    writeln!(
        out,
        "  try:                 curl -H 'Authorization: Bearer {}' '{base}/v1/partner-users?assignable=true'\n",
        demo.admin_key
    )?;
    out.flush()
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

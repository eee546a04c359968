//! The `leadroute` binary: parse the command line, start logging, run the command.

use clap::Parser;
use leadroute::cli::{
    ApiArgs, AuditCommand, BulkCommand, Cli, Command, DatabaseArgs, DlqCommand, NatsArgs,
    OrgCommand, ProjectionsCommand, PublisherArgs,
};
use leadroute::read_side;
use leadroute::{bulk, startup, telemetry, up};
use leadroute_api::Api;
use leadroute_app::access::{Access, NewOrg};
use leadroute_app::bulk_runner::BulkRunner;
use leadroute_app::{CommandMeta, Commands};
use leadroute_domain::ids::{Actor, OrgId};
use leadroute_store::db;
use leadroute_workers::nats::Names;
use leadroute_workers::tasks::{self, Tasks};
use std::io::Write;
use std::time::Duration;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = cli.runtime_threads() {
        runtime.worker_threads(threads);
    }
    runtime.enable_all().build()?.block_on(run(cli))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    telemetry::init(&cli.log)?;
    match cli.command {
        Command::Migrate(database) => {
            connect(&database).await?;
            tracing::info!("migrations applied");
        }
        Command::Projector(database) => {
            let shutdown = up::ShutdownSignal::listen()?;
            let pool = connect_waiting(&database).await?;
            let tasks = Tasks::projectors(&pool, Default::default());
            shutdown.recv().await;
            tasks.stop().await;
        }
        Command::Publisher(PublisherArgs {
            database,
            reset_to: Some(to),
            ..
        }) => {
            read_side::reset_publisher(&connect(&database).await?, &to).await?;
        }
        Command::Dlq(DlqCommand::List { limit, database }) => {
            read_side::print_dead_letters(&connect(&database).await?, limit).await?;
        }
        Command::Dlq(DlqCommand::Show { id, database }) => {
            read_side::print_dead_letter(&connect(&database).await?, id).await?;
        }
        Command::Dlq(DlqCommand::Replay { id, database, nats }) => {
            read_side::replay_dead_letter(&connect(&database).await?, &nats.nats_url, id).await?;
        }
        Command::Publisher(args) => {
            let shutdown = up::ShutdownSignal::listen()?;
            let pool = connect_waiting(&args.database).await?;
            let names = args.nats.names()?;
            let publisher = startup::retry("connecting to NATS", wait(&args.database), || {
                tasks::publisher(&args.nats.nats_url, names.clone())
            })
            .await?;
            let tasks = Tasks::projectors_of(&pool, vec![publisher], Default::default());
            shutdown.recv().await;
            tasks.stop().await;
        }
        Command::Router(args) => {
            let workers = args.workers;
            run_workers(&args.database, &args.nats, |pool, url, names| async move {
                Tasks::router(&Commands::new(pool), &url, names, workers).await
            })
            .await?;
        }
        Command::Scheduler(args) => {
            let shutdown = up::ShutdownSignal::listen()?;
            let pool = connect_waiting(&args.database).await?;
            let every = std::time::Duration::from_millis(args.tick_ms);
            let tasks = Tasks::scheduler(&Commands::new(pool), every);
            shutdown.recv().await;
            tasks.stop().await;
        }
        Command::Mailer(args) => {
            if args.mail.mail_transport == "log" {
                tracing::warn!("--mail-transport log: emails are recorded in the notifications table, not sent; use --mail-transport smtp to send them");
            }
            let (workers, mail) = (args.workers, &args.mail);
            run_workers(&args.database, &args.nats, |pool, url, names| async move {
                Tasks::mailer(&Commands::new(pool), &url, names, workers, mail).await
            })
            .await?;
        }
        Command::Intake(args) => {
            let workers = args.workers;
            run_workers(&args.database, &args.nats, |pool, url, names| async move {
                Tasks::intake(&Commands::new(pool), &url, names, workers).await
            })
            .await?;
        }
        Command::Projections(ProjectionsCommand::Status(database)) => {
            read_side::print_status(&connect(&database).await?).await?;
        }
        Command::Projections(ProjectionsCommand::Rebuild { name, database }) => {
            read_side::rebuild(&connect(&database).await?, &name).await?;
        }
        Command::Projections(ProjectionsCommand::Quarantine { all, database }) => {
            read_side::print_quarantine(&connect(&database).await?, all).await?;
        }
        Command::Projections(ProjectionsCommand::Retry {
            name,
            event_id,
            database,
            nats,
        }) => {
            read_side::retry_quarantined(&connect(&database).await?, &name, event_id, &nats)
                .await?;
        }
        Command::Projections(ProjectionsCommand::Skip {
            name,
            event_id,
            database,
        }) => {
            read_side::skip_quarantined(&connect(&database).await?, &name, event_id).await?;
        }
        Command::Audit(AuditCommand::Verify(database)) => {
            if !read_side::verify(&connect(&database).await?).await? {
                std::process::exit(1);
            }
        }
        Command::Api(ApiArgs {
            database,
            nats,
            no_live,
            api,
        }) => {
            let shutdown = up::ShutdownSignal::listen()?;
            let pool = connect_waiting(&database).await?;
            let live = match no_live {
                true => None,
                false => {
                    let names = Names::new(&nats.nats_prefix, &nats.nats_crm_prefix)?;
                    let follow = || up::live_source(&nats.nats_url, &names);
                    Some(startup::retry("connecting to NATS", wait(&database), follow).await?)
                }
            };
            let server = Api::build_live(Commands::new(pool), &api, live).await?;
            tracing::info!(address = %server.local_addr(), "API listening");
            server.run_until_stopped(shutdown.recv()).await?;
        }
        Command::Org(OrgCommand::Create {
            name,
            slug,
            database,
        }) => {
            let pool = connect(&database).await?;
            let access = Access::new(pool.clone(), Commands::new(pool), Duration::ZERO);
            let meta = CommandMeta::now(Actor::System("cli".into()));
            let NewOrg {
                org, key, secret, ..
            } = access.create_org(&meta, &name, slug.as_deref()).await?;
            let slug = access
                .commands()
                .state::<leadroute_domain::org::Org>(org, org)
                .await?
                .slug;
            let mut out = std::io::stdout();
            writeln!(out, "org_id:        {org}")?;
            if let Some(slug) = slug {
                writeln!(out, "slug:          {slug}  (partner portal: /p/{slug}/)")?;
            }
            writeln!(out, "admin key id:  {}", key.key_id)?;
            writeln!(out, "admin key:     {secret}")?;
            writeln!(
                out,
                "(the key is shown once; send it as `Authorization: Bearer <key>`)"
            )?;
        }
        Command::Org(OrgCommand::Rekey { org, database }) => {
            let pool = connect(&database).await?;
            let access = Access::new(pool.clone(), Commands::new(pool), Duration::ZERO);
            let (key, secret) = access.rekey(OrgId(org)).await?;
            let mut out = std::io::stdout();
            writeln!(out, "org_id:        {org}")?;
            writeln!(out, "admin key id:  {}", key.key_id)?;
            writeln!(out, "admin key:     {secret}")?;
            writeln!(
                out,
                "(the key is shown once; send it as `Authorization: Bearer <key>`)"
            )?;
        }
        Command::Bulk(BulkCommand::Start(args)) => {
            let pool = connect(&args.database).await?;
            bulk::start_from_cli(pool, &args).await?;
        }
        Command::Bulk(BulkCommand::Status { org, id, database }) => {
            bulk::print_status(connect(&database).await?, org, id).await?;
        }
        Command::Bulk(BulkCommand::Results {
            org,
            id,
            result,
            database,
        }) => {
            bulk::print_results(connect(&database).await?, org, id, result.as_deref()).await?;
        }
        Command::Bulk(BulkCommand::Cancel { org, id, database }) => {
            bulk::cancel_from_cli(connect(&database).await?, org, id).await?;
        }
        Command::Bulk(BulkCommand::Resume(database)) => {
            let ran = BulkRunner::new(connect(&database).await?)
                .resume_all()
                .await?;
            tracing::info!(
                operations = ran,
                "unfinished bulk operations run to their end"
            );
        }
        Command::Up(config) => {
            let shutdown = up::ShutdownSignal::listen()?;
            up::Up::build(&config)
                .await?
                .run_until_stopped(shutdown.recv())
                .await?;
        }
    }
    Ok(())
}

/// Start consumer workers on the configured database and run them until a shutdown signal;
/// while PostgreSQL or NATS is down at start-up, retry (see [`startup`]).
async fn run_workers<F, Fut>(
    database: &DatabaseArgs,
    nats: &NatsArgs,
    start: F,
) -> anyhow::Result<()>
where
    F: Fn(sqlx::PgPool, String, Names) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Tasks>>,
{
    let shutdown = up::ShutdownSignal::listen()?;
    let names = nats.names()?;
    let pool = connect_waiting(database).await?;
    let workers = startup::retry("connecting to NATS", wait(database), || {
        start(pool.clone(), nats.nats_url.clone(), names.clone())
    })
    .await?;
    shutdown.recv().await;
    workers.stop().await;
    Ok(())
}

/// How long a long-running process waits for its servers at start-up.
fn wait(database: &DatabaseArgs) -> Duration {
    Duration::from_secs(database.startup_wait_secs)
}

/// [`connect`], retried while the database is down (see [`startup`]).
async fn connect_waiting(database: &DatabaseArgs) -> anyhow::Result<sqlx::PgPool> {
    startup::retry("connecting to PostgreSQL", wait(database), || {
        connect(database)
    })
    .await
}

/// Connect to the configured database and bring its schema up to date.
async fn connect(database: &DatabaseArgs) -> anyhow::Result<sqlx::PgPool> {
    if database.database_url.is_none() {
        db::ensure_database(&database.url()).await?;
    }
    db::connect_and_migrate(&database.url(), database.db_max_connections).await
}

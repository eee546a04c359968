//! The `leadroute` command line: one clap struct per command, every option with its
//! environment variable. This is the configuration reference (`leadroute --help`).

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// leadroute: event-sourced lead routing for partner relationship management.
#[derive(Debug, Parser)]
#[command(name = "leadroute", version)]
pub struct Cli {
    /// Log filter, tracing EnvFilter syntax (e.g. `info` or `leadroute_app=debug,info`).
    #[arg(
        long,
        env = "LEADROUTE_LOG",
        default_value = "info,sqlx=warn",
        global = true
    )]
    pub log: String,

    /// Threads of the async runtime. By default 1 for `intake`, `router`, `publisher`,
    /// `projector` and `mailer`, whose work is a few sequential streams (one thread saves
    /// the wake-ups between threads, so more of the machine is left for PostgreSQL and
    /// NATS), and one per core for everything else.
    #[arg(
        long,
        env = "LEADROUTE_RUNTIME_THREADS",
        global = true,
        value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..)
    )]
    pub runtime_threads: Option<usize>,

    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// Threads of the async runtime: `--runtime-threads`, else the command's default (see
    /// there); `None` for one per core.
    pub fn runtime_threads(&self) -> Option<usize> {
        self.runtime_threads.or(match self.command {
            Command::Intake(_)
            | Command::Router(_)
            | Command::Publisher(_)
            | Command::Projector(_)
            | Command::Mailer(_)
            | Command::Scheduler(_) => Some(1),
            _ => None,
        })
    }
}

/// leadroute's commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Apply the database migrations (deploy/migrations) and exit.
    Migrate(DatabaseArgs),
    /// Run leadroute with everything it needs: uses the configured or already-running
    /// PostgreSQL and NATS, or starts local ones under --data-dir, and stops those on exit.
    Up(UpConfig),
    /// Route leads by the org's assignment rules from the published lead events until
    /// stopped (leads the intake already routed are skipped); any number of routers share
    /// one durable consumer. Also routes waiting leads (left all_at_capacity or
    /// no_assignable_member) oldest first when a place frees, and sweeps for them every 30 s.
    Router(RouterArgs),
    /// Fire the timers of pending offers until stopped: recall (and route again) each offer
    /// whose acceptance deadline passed, and remind its offeree when the org's reminder
    /// time comes. Timers are read from PostgreSQL (the workflow projection; no NATS
    /// needed); any number may run, one fires at a time, and each timer fires once.
    Scheduler(SchedulerArgs),
    /// Send access, assignment and offer-reminder emails for the published events until
    /// stopped.
    Mailer(MailerArgs),
    /// Serve the HTTP API (OpenAPI document at /openapi.json) until stopped.
    Api(ApiArgs),
    /// Manage orgs.
    #[command(subcommand)]
    Org(OrgCommand),
    /// Run the projectors (read models) until stopped; one instance per projection is
    /// active, others wait and take over.
    Projector(DatabaseArgs),
    /// Relay committed events, in commit order, to the JetStream events stream until
    /// stopped (one active instance; `Nats-Msg-Id` = event id).
    Publisher(PublisherArgs),
    /// Receive upstream lead events from JetStream until stopped (durable pull consumer;
    /// invalid messages are dead-lettered with their reason), routing each new lead by the
    /// org's rules in the transaction that receives it.
    Intake(IntakeArgs),
    /// Inspect and replay dead letters.
    #[command(subcommand)]
    Dlq(DlqCommand),
    /// Inspect or rebuild the read models.
    #[command(subcommand)]
    Projections(ProjectionsCommand),
    /// Audit the read side against the event log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Bulk reassignment as the operator (the HTTP API's `/v1/bulk-reassignments` is the
    /// way for admins and channel managers): start, follow, list results, cancel, resume.
    #[command(subcommand)]
    Bulk(BulkCommand),
}

/// `leadroute bulk ...`
#[derive(Debug, Subcommand)]
pub enum BulkCommand {
    /// Start a bulk reassignment, print its id, and run it here to its end, printing its
    /// progress. If this process stops first, `bulk resume` (or a running `api` / `up`)
    /// finishes it; no lead moves twice.
    Start(BulkStartArgs),
    /// Print an operation's progress (JSON).
    Status {
        /// The org.
        #[arg(long)]
        org: uuid::Uuid,
        /// The operation.
        id: uuid::Uuid,
        /// The database.
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Print an operation's per-lead results, one JSON object per line, in selection order.
    Results {
        /// The org.
        #[arg(long)]
        org: uuid::Uuid,
        /// The operation.
        id: uuid::Uuid,
        /// Only `moved`, `skipped` or `refused`.
        #[arg(long, value_parser = ["moved", "skipped", "refused"])]
        result: Option<String>,
        /// The database.
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Cancel a running operation (leads without an outcome stay where they are).
    Cancel {
        /// The org.
        #[arg(long)]
        org: uuid::Uuid,
        /// The operation.
        id: uuid::Uuid,
        /// The database.
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Run every unfinished operation to its end, then exit.
    Resume(DatabaseArgs),
}

/// `leadroute bulk start`
#[derive(Debug, Clone, Args)]
#[command(group(clap::ArgGroup::new("selection").required(true).args(["leads_file", "filter"])))]
pub struct BulkStartArgs {
    /// The org.
    #[arg(long)]
    pub org: uuid::Uuid,
    /// A file of lead ids, one per line (`-` reads standard input).
    #[arg(long, value_name = "FILE")]
    pub leads_file: Option<PathBuf>,
    /// A filter as JSON, as the HTTP API takes it, e.g. `{"owner": {"kind":
    /// "partner_user", "id": "..."}, "status": "to_accept"}`.
    #[arg(long, value_name = "JSON")]
    pub filter: Option<String>,
    /// Where the leads go: `partner_user:ID`, `queue:ID` or `pool:ID`.
    #[arg(long, value_name = "KIND:ID")]
    pub to: String,
    /// Send each new owner the assignment email.
    #[arg(long)]
    pub notify: bool,
    /// Why (recorded on the operation).
    #[arg(long)]
    pub reason: String,
    /// Idempotency key: starting again with the same key finds the same operation instead
    /// of starting another.
    #[arg(long)]
    pub key: Option<String>,
    /// Only start it: a running `api` / `up` (or `bulk resume`) moves the leads.
    #[arg(long)]
    pub no_wait: bool,
    /// The database.
    #[command(flatten)]
    pub database: DatabaseArgs,
}

/// Where NATS is.
#[derive(Debug, Clone, Args)]
pub struct NatsArgs {
    /// NATS URL (JetStream enabled).
    #[arg(long, env = "NATS_URL", default_value = "nats://127.0.0.1:4222")]
    pub nats_url: String,

    /// First token of leadroute's own subjects and of every stream name (`leadroute` gives
    /// subjects `leadroute.<org>.events.>` in stream `LEADROUTE_EVENTS`).
    #[arg(long, env = "LEADROUTE_NATS_PREFIX", default_value = "leadroute")]
    pub nats_prefix: String,

    /// First token of the subjects upstream CRMs publish lead events on
    /// (`<crm prefix>.<org id>.lead.created|updated`).
    #[arg(long, env = "LEADROUTE_NATS_CRM_PREFIX", default_value = "crm")]
    pub nats_crm_prefix: String,
}

impl NatsArgs {
    /// The subject and stream names these options give.
    pub fn names(
        &self,
    ) -> Result<leadroute_workers::nats::Names, leadroute_workers::nats::NatsError> {
        leadroute_workers::nats::Names::new(&self.nats_prefix, &self.nats_crm_prefix)
    }
}

/// Configuration of `leadroute publisher`.
#[derive(Debug, Clone, Args)]
pub struct PublisherArgs {
    /// The database.
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// NATS.
    #[command(flatten)]
    pub nats: NatsArgs,
    /// Instead of running: move the publisher's checkpoint back (never forward) to TX/POS
    /// (as printed by `projections status`; `0/0` for the start) and exit. Events after it
    /// are published again; JetStream drops those it still remembers (2-minute dedupe
    /// window).
    #[arg(long, value_name = "TX/POS")]
    pub reset_to: Option<String>,
}

/// Configuration of `leadroute intake`.
#[derive(Debug, Clone, Args)]
pub struct IntakeArgs {
    /// The database.
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// NATS.
    #[command(flatten)]
    pub nats: NatsArgs,
    /// Workers sharing the durable consumer. The batches of one process are received and
    /// routed one at a time, so more workers mostly hold messages longer; scale with more
    /// processes instead.
    #[arg(long, env = "LEADROUTE_INTAKE_WORKERS", default_value_t = 1)]
    pub workers: usize,
}

/// `leadroute dlq ...`
#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// List dead letters, newest first (id, time, source, reason, subject).
    List {
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: i64,
        /// The database.
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Print one dead letter with its headers and payload.
    Show {
        /// Its id.
        id: uuid::Uuid,
        /// The database.
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Publish a dead letter's payload again on its original subject (after fixing the
    /// cause, e.g. creating the org), and mark it replayed.
    Replay {
        /// Its id.
        id: uuid::Uuid,
        /// The database.
        #[command(flatten)]
        database: DatabaseArgs,
        /// NATS.
        #[command(flatten)]
        nats: NatsArgs,
    },
}

/// `leadroute projections ...`
#[derive(Debug, Subcommand)]
pub enum ProjectionsCommand {
    /// Print each projection's checkpoint, lag (events and seconds behind the log) and the
    /// events it has quarantined and not yet retried or skipped.
    Status(DatabaseArgs),
    /// Rebuild one projection from position zero into fresh tables, then swap them in
    /// (the service keeps running).
    Rebuild {
        /// Projection name: directory, leads or ownership_history.
        name: String,
        /// The database.
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// List the events a projection (or the publisher) set aside because it could not
    /// handle them, oldest first, with the reason; the projection goes on without them.
    Quarantine {
        /// Resolved ones (retried, skipped) too.
        #[arg(long)]
        all: bool,
        /// The database.
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Apply a quarantined event now (after fixing its cause), after the events that
    /// followed it; if it fails again it stays quarantined and the error says why.
    Retry {
        /// Projection name: directory, leads, ownership_history or publisher.
        name: String,
        /// The event's id (from `projections quarantine`).
        event_id: uuid::Uuid,
        /// The database.
        #[command(flatten)]
        database: DatabaseArgs,
        /// NATS (for the publisher).
        #[command(flatten)]
        nats: NatsArgs,
    },
    /// Skip a quarantined event for good: the projection never applies it.
    Skip {
        /// Projection name: directory, leads, ownership_history or publisher.
        name: String,
        /// The event's id (from `projections quarantine`).
        event_id: uuid::Uuid,
        /// The database.
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

/// `leadroute audit ...`
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Rebuild every projection in a scratch schema up to its live checkpoint and compare:
    /// for each differing table the number of rows only live / only rebuilt and up to 10 of
    /// them, any difference in the count of applied events, and every quarantined event not
    /// yet retried or skipped; exits 0 only when there is none.
    Verify(DatabaseArgs),
}

/// Where the database is.
#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// PostgreSQL URL. When unset, postgres://postgres@127.0.0.1:<pg-port>/leadroute is used
    /// (the database is created if missing).
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,

    /// Port of the local PostgreSQL used when DATABASE_URL is unset (`up` starts one there
    /// when nothing answers).
    #[arg(long, env = "LEADROUTE_PG_PORT", default_value_t = 5432)]
    pub pg_port: u16,

    /// Maximum connections in the pool. Each projector and the publisher hold two while
    /// they run (their batches and their LISTEN), so `up` and `projector` need more than
    /// twice the number of projections.
    #[arg(long, env = "LEADROUTE_DB_MAX_CONNECTIONS", default_value_t = 20)]
    pub db_max_connections: u32,

    /// How long a long-running process (api, projector, publisher, intake, router, mailer)
    /// started while PostgreSQL or NATS is down keeps retrying to connect, in seconds
    /// (0: give up at once).
    #[arg(long, env = "LEADROUTE_STARTUP_WAIT_SECS", default_value_t = 300)]
    pub startup_wait_secs: u64,
}

impl DatabaseArgs {
    /// The configured URL, or the local default for `pg_port`.
    pub fn url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| leadroute_store::db::default_database_url(self.pg_port))
    }
}

/// Configuration of `leadroute up`.
#[derive(Debug, Clone, Args)]
pub struct UpConfig {
    /// The database.
    #[command(flatten)]
    pub database: DatabaseArgs,

    /// NATS URL. When unset, nats://127.0.0.1:<nats-port> is used, and a local nats-server
    /// with JetStream is started there when nothing answers.
    #[arg(long, env = "NATS_URL")]
    pub nats_url: Option<String>,

    /// Port of the local NATS used when NATS_URL is unset.
    #[arg(long, env = "LEADROUTE_NATS_PORT", default_value_t = 4222)]
    pub nats_port: u16,

    /// First token of leadroute's own subjects and of every stream name.
    #[arg(long, env = "LEADROUTE_NATS_PREFIX", default_value = "leadroute")]
    pub nats_prefix: String,

    /// First token of the subjects upstream CRMs publish lead events on.
    #[arg(long, env = "LEADROUTE_NATS_CRM_PREFIX", default_value = "crm")]
    pub nats_crm_prefix: String,

    /// Where a locally started PostgreSQL (pg/) and NATS (nats/) keep their data; kept
    /// across restarts.
    #[arg(long, env = "LEADROUTE_DATA_DIR", default_value = ".leadroute")]
    pub data_dir: PathBuf,

    /// Seed a demo org with partner accounts, partner users, a queue and leads (once; a
    /// second run finds it and leaves it as it is), and print fresh demo API keys and the
    /// demo partner users' sign-in.
    #[arg(long, env = "LEADROUTE_DEMO")]
    pub demo: bool,

    /// The HTTP API.
    #[command(flatten)]
    pub api: leadroute_api::ApiConfig,

    /// Email delivery (the `log` transport unless configured).
    #[command(flatten)]
    pub mail: leadroute_workers::mailer::MailerConfig,
}

/// `leadroute router`.
#[derive(Debug, Clone, Args)]
pub struct RouterArgs {
    /// The database.
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// NATS.
    #[command(flatten)]
    pub nats: NatsArgs,
    /// Router workers in this process sharing the durable consumer.
    #[arg(long, env = "LEADROUTE_ROUTER_WORKERS", default_value_t = 1)]
    pub workers: usize,
}

/// `leadroute scheduler`.
#[derive(Debug, Clone, Args)]
pub struct SchedulerArgs {
    /// The database.
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// How often due timers are looked for, in milliseconds.
    #[arg(long, env = "LEADROUTE_SCHEDULER_TICK_MS", default_value_t = 1000,
        value_parser = clap::builder::RangedU64ValueParser::<u64>::new().range(10..=60_000))]
    pub tick_ms: u64,
}

/// `leadroute mailer`.
#[derive(Debug, Clone, Args)]
pub struct MailerArgs {
    /// The database.
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// NATS.
    #[command(flatten)]
    pub nats: NatsArgs,
    /// Delivery.
    #[command(flatten)]
    pub mail: leadroute_workers::mailer::MailerConfig,
    /// Mailer workers in this process sharing the durable consumer.
    #[arg(long, env = "LEADROUTE_MAILER_WORKERS", default_value_t = 1)]
    pub workers: usize,
}

/// `leadroute api`.
#[derive(Debug, Clone, Args)]
pub struct ApiArgs {
    /// The database.
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// The NATS server whose published events live streams (`GET /v1/stream`) follow.
    #[command(flatten)]
    pub nats: NatsArgs,
    /// Serve no live streams (they answer 503 `stream_unavailable`) and need no NATS.
    #[arg(long, env = "LEADROUTE_NO_LIVE")]
    pub no_live: bool,
    /// The HTTP API.
    #[command(flatten)]
    pub api: leadroute_api::ApiConfig,
}

/// `leadroute org ...`.
#[derive(Debug, Subcommand)]
pub enum OrgCommand {
    /// Create an org and print its id and first admin API key (shown once; only its hash
    /// is stored).
    Create {
        /// The org's display name.
        #[arg(long)]
        name: String,
        /// The org's address in partner links (`<public url>/p/<slug>/`): 2 to 63
        /// lower-case letters, digits and inner dashes. Default: suggested by the name.
        #[arg(long)]
        slug: Option<String>,
        /// The database.
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Mint a new admin API key for an existing org and print it (shown once): the way back
    /// for an operator when an org's admin keys are lost.
    Rekey {
        /// The org's id.
        #[arg(long)]
        org: uuid::Uuid,
        /// The database.
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

//! What every handler reaches (`ApiState`) and the API's configuration (`ApiConfig`).
//! One `Commands` serves every part of the state, so the process has one event store and
//! one cache of aggregate states.

use crate::server;
use leadroute_app::access::Access;
use leadroute_app::Commands;
use sqlx::PgPool;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// Configuration of the HTTP API (`leadroute api`, and part of `leadroute up`).
#[derive(Debug, Clone, clap::Args)]
pub struct ApiConfig {
    /// Address the API listens on (port 0 picks a free port).
    #[arg(long, env = "LEADROUTE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// How long a partner user's session token lasts, in minutes.
    #[arg(long, env = "LEADROUTE_SESSION_TTL_MINUTES", default_value_t = 720)]
    pub session_ttl_minutes: u64,
    /// How long a read with `min_position` waits for the read models, in milliseconds.
    #[arg(long, env = "LEADROUTE_READ_WAIT_MS", default_value_t = 3000)]
    pub read_wait_ms: u64,
    /// Platform operator token that may create orgs over HTTP (`POST /v1/orgs`); without
    /// it, orgs are created only by `leadroute org create`.
    #[arg(long, env = "LEADROUTE_OPERATOR_TOKEN", hide_env_values = true)]
    pub operator_token: Option<String>,
    /// Take the client address for sign-in throttling from the first `X-Forwarded-For`
    /// entry (set only behind a proxy that writes that header; otherwise clients choose it).
    #[arg(long, env = "LEADROUTE_TRUST_FORWARDED_FOR")]
    pub trust_forwarded_for: bool,
    /// Longest wait for a request's headers, and longest a keep-alive connection may sit
    /// idle, in seconds.
    #[arg(long, env = "LEADROUTE_HEADER_TIMEOUT_SECS", default_value_t = 10)]
    pub header_timeout_secs: u64,
    /// Longest wait for a request's body, in seconds (answered 408).
    #[arg(long, env = "LEADROUTE_BODY_TIMEOUT_SECS", default_value_t = 30)]
    pub body_timeout_secs: u64,
    /// Longest a request may take to answer, in seconds (answered 503).
    #[arg(long, env = "LEADROUTE_REQUEST_TIMEOUT_SECS", default_value_t = 60)]
    pub request_timeout_secs: u64,
    /// Most HTTP connections open at once (live streams included); further ones wait in
    /// the listen backlog.
    #[arg(long, env = "LEADROUTE_MAX_CONNECTIONS", default_value_t = 1024)]
    pub max_connections: usize,
    /// Mark the partner portal's cookies `Secure` (set it when the portal is served over
    /// HTTPS, directly or behind a TLS proxy).
    #[arg(long, env = "LEADROUTE_SECURE_COOKIES")]
    pub secure_cookies: bool,
}

impl ApiConfig {
    /// The server limits these options set.
    pub fn limits(&self) -> server::Limits {
        server::Limits {
            header_timeout: Duration::from_secs(self.header_timeout_secs.max(1)),
            body_timeout: Duration::from_secs(self.body_timeout_secs.max(1)),
            request_timeout: Duration::from_secs(self.request_timeout_secs.max(1)),
            max_connections: self.max_connections.max(1),
        }
    }
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            listen: ([127, 0, 0, 1], 8080).into(),
            session_ttl_minutes: 720,
            read_wait_ms: 3000,
            operator_token: None,
            trust_forwarded_for: false,
            header_timeout_secs: 10,
            body_timeout_secs: 30,
            request_timeout_secs: 60,
            max_connections: 1024,
            secure_cookies: false,
        }
    }
}

/// What every handler reaches.
#[derive(Clone)]
pub struct ApiState {
    /// The event store and read models.
    pub(crate) pool: PgPool,
    /// Executes commands.
    pub(crate) commands: Commands,
    /// Authenticates callers, manages credentials.
    pub(crate) access: Access,
    /// SHA-256 of the operator token, when one is configured.
    pub(crate) operator_token_sha256: Option<Arc<Vec<u8>>>,
    /// Longest wait of a read for `min_position`.
    pub(crate) read_wait: Duration,
    /// Evaluates rules for re-runs and dry runs.
    pub(crate) router: leadroute_app::router::Router,
    /// Runs bulk reassignments in the background.
    pub(crate) bulk: leadroute_app::bulk_runner::BulkRunner,
    /// Whether `X-Forwarded-For` names the client (see [`ApiConfig::trust_forwarded_for`]).
    pub(crate) trust_forwarded_for: bool,
    /// Whether the portal's cookies are `Secure`.
    pub(crate) secure_cookies: bool,
    /// The published lead events this process follows for live streams, if it does.
    pub(crate) live: Option<crate::live::feed::LiveFeed>,
}

impl ApiState {
    /// State over `pool` (migrated) with `config`.
    pub fn new(pool: PgPool, config: &ApiConfig) -> Self {
        Self::with_commands(Commands::new(pool), config)
    }

    /// State executing through `commands` (sharing its event store and cache) with
    /// `config`.
    pub fn with_commands(commands: Commands, config: &ApiConfig) -> Self {
        let pool = commands.store().pool().clone();
        let ttl = Duration::from_secs(config.session_ttl_minutes.max(1) * 60);
        Self {
            access: Access::new(pool.clone(), commands.clone(), ttl),
            operator_token_sha256: config.operator_token.as_deref().map(|t| {
                Arc::new(
                    ring::digest::digest(&ring::digest::SHA256, t.as_bytes())
                        .as_ref()
                        .to_vec(),
                )
            }),
            read_wait: Duration::from_millis(config.read_wait_ms),
            router: leadroute_app::router::Router::with_commands(commands.clone()),
            bulk: leadroute_app::bulk_runner::BulkRunner::with_commands(commands.clone()),
            trust_forwarded_for: config.trust_forwarded_for,
            secure_cookies: config.secure_cookies,
            live: None,
            pool,
            commands,
        }
    }
}

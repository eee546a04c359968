//! The HTTP API (axum): thin handlers over the application layer and the read-model
//! queries, bearer authentication, per-org and per-role scoping, `application/problem+json`
//! errors, idempotency keys, read-your-writes through `min_position`, and the OpenAPI
//! document generated from the handlers (utoipa), served at `/openapi.json`.
//!
//! Handlers hold no SQL and no rules: they extract, check scope, call, and map the result.

mod caller;
mod extract;
mod idempotency;
mod openapi;
mod problem;
mod reads;
mod routes;
pub mod server;

pub use idempotency::{IDEMPOTENCY_KEY, REPLAYED};
pub use problem::{ApiError, Problem};

use crate::access::Access;
use crate::app::Commands;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{middleware, Router};
use sqlx::PgPool;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::{RequestBodyTimeoutLayer, TimeoutLayer};
use tower_http::trace::TraceLayer;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

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
    /// Most HTTP connections open at once; further ones wait in the listen backlog.
    #[arg(long, env = "LEADROUTE_MAX_CONNECTIONS", default_value_t = 1024)]
    pub max_connections: usize,
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
    pub(crate) router: crate::routing::Router,
    /// Runs bulk reassignments in the background.
    pub(crate) bulk: crate::bulk::BulkRunner,
    /// Whether `X-Forwarded-For` names the client (see [`ApiConfig::trust_forwarded_for`]).
    pub(crate) trust_forwarded_for: bool,
}

impl ApiState {
    /// State over `pool` (migrated) with `config`.
    pub fn new(pool: PgPool, config: &ApiConfig) -> Self {
        let commands = Commands::new(pool.clone());
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
            router: crate::routing::Router::new(pool.clone()),
            bulk: crate::bulk::BulkRunner::new(pool.clone()),
            trust_forwarded_for: config.trust_forwarded_for,
            pool,
            commands,
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "leadroute",
        description = "Event-sourced lead routing for partner relationship management. \
            Authenticate with `Authorization: Bearer <API key or session token>`. Errors are \
            `application/problem+json` with a stable `code`. Commands accept an \
            `Idempotency-Key` header and return the log `position` they wrote; pass it as \
            `min_position` to a read to see your own write."
    ),
    modifiers(&BearerAuth),
    components(schemas(Problem)),
    security(("bearer" = []))
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The router and the OpenAPI document describing every route of it.
pub fn router(state: ApiState) -> (Router, utoipa::openapi::OpenApi) {
    router_with(state, &ApiConfig::default().limits())
}

/// Longest request target (path and query) accepted, in bytes (longer: 414).
pub const MAX_URI_BYTES: usize = 8 * 1024;

/// [`router`] with the body and request timeouts of `limits`.
pub fn router_with(state: ApiState, limits: &server::Limits) -> (Router, utoipa::openapi::OpenApi) {
    let authenticated = routes::authenticated()
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            idempotency::idempotent,
        ))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            caller::authenticate,
        ));
    let (router, openapi) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(routes::public())
        .merge(authenticated)
        .split_for_parts();
    let mut openapi = openapi;
    openapi::document_errors(&mut openapi);
    let mut document = serde_json::to_value(&openapi).expect("the OpenAPI document serialises");
    openapi::constrain_text(&mut document);
    let router = router
        .route(
            "/openapi.json",
            get(move || async move { axum::Json(document) }),
        )
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .fallback(|| async { ApiError::not_found("route_not_found", "route", "requested") })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(RequestBodyLimitLayer::new(1 << 20))
        .layer(RequestBodyTimeoutLayer::new(limits.body_timeout))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            limits.request_timeout,
        ))
        .layer(middleware::from_fn(bounded_uri))
        .layer(middleware::map_response(problem_everywhere))
        .layer(TraceLayer::new_for_http())
        .with_state(state);
    (router, openapi)
}

/// Refuse a request target longer than [`MAX_URI_BYTES`] before anything reads it.
async fn bounded_uri(request: axum::extract::Request, next: middleware::Next) -> Response {
    let length = request
        .uri()
        .path_and_query()
        .map_or(0, |target| target.as_str().len());
    if length > MAX_URI_BYTES {
        return ApiError::UriTooLong.into_response();
    }
    next.run(request).await
}

/// Give every error answer a problem+json body, also those that layers and extractors
/// outside the handlers write as plain text (413, 408, 503 on a timeout, ...).
async fn problem_everywhere(response: Response) -> Response {
    let status = response.status();
    let is_problem = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|kind| kind.as_bytes().starts_with(b"application/problem+json"));
    if !(status.is_client_error() || status.is_server_error()) || is_problem {
        return response;
    }
    ApiError::Status(status).into_response()
}

/// Longest `/readyz` waits for the database.
const READY_WAIT: Duration = Duration::from_secs(2);

/// Ready when the database answers within [`READY_WAIT`].
async fn ready(State(state): State<ApiState>) -> Response {
    let answered = tokio::time::timeout(READY_WAIT, sqlx::query("SELECT 1").execute(&state.pool));
    match answered.await {
        Ok(Ok(_)) => "ready".into_response(),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "not ready: database unavailable");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable").into_response()
        }
        Err(_) => {
            tracing::warn!("not ready: the database did not answer within {READY_WAIT:?}");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable").into_response()
        }
    }
}

/// A bound API server.
pub struct Api {
    /// The bound listener.
    listener: TcpListener,
    /// The routes.
    router: Router,
    /// Runs and resumes bulk reassignments.
    bulk: crate::bulk::BulkRunner,
    /// Timeouts and connection limits.
    limits: server::Limits,
}

impl Api {
    /// Bind `config.listen` (port 0 works) over `pool`, which must be migrated.
    pub async fn build(pool: PgPool, config: &ApiConfig) -> anyhow::Result<Api> {
        let listener = TcpListener::bind(config.listen).await.map_err(|e| {
            anyhow::anyhow!("cannot listen on {} (LEADROUTE_LISTEN): {e}", config.listen)
        })?;
        let state = ApiState::new(pool, config);
        let bulk = state.bulk.clone();
        let limits = config.limits();
        let (router, _) = router_with(state, &limits);
        Ok(Api {
            listener,
            router,
            bulk,
            limits,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Serve until `shutdown` completes, then finish the requests in flight. Meanwhile,
    /// bulk reassignments left unfinished (by a crash or a restart) are resumed.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let resume = tokio::spawn(self.bulk.run_until_stopped(std::future::pending()));
        let served = server::serve(self.listener, self.router, self.limits, shutdown).await;
        resume.abort();
        served
    }
}

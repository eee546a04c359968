//! The HTTP API (axum): thin handlers over the application layer and the read-model
//! queries, bearer authentication, per-org and per-role scoping, `application/problem+json`
//! errors, idempotency keys, read-your-writes through `min_position`, and the OpenAPI
//! document generated from the handlers (utoipa), served at `/openapi.json`.
//!
//! Handlers hold no SQL and no rules: they extract, check scope, call, and map the result.

mod caller;
mod extract;
mod idempotency;
mod problem;
mod reads;
mod routes;

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
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            listen: ([127, 0, 0, 1], 8080).into(),
            session_ttl_minutes: 720,
            read_wait_ms: 3000,
            operator_token: None,
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
    let document = openapi.clone();
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
        .layer(TraceLayer::new_for_http())
        .with_state(state);
    (router, openapi)
}

/// Ready when the database answers.
async fn ready(State(state): State<ApiState>) -> Response {
    match sqlx::query("SELECT 1").execute(&state.pool).await {
        Ok(_) => "ready".into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "not ready: database unavailable");
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
}

impl Api {
    /// Bind `config.listen` (port 0 works) over `pool`, which must be migrated.
    pub async fn build(pool: PgPool, config: &ApiConfig) -> anyhow::Result<Api> {
        let listener = TcpListener::bind(config.listen).await.map_err(|e| {
            anyhow::anyhow!("cannot listen on {} (LEADROUTE_LISTEN): {e}", config.listen)
        })?;
        let state = ApiState::new(pool, config);
        let bulk = state.bulk.clone();
        let (router, _) = router(state);
        Ok(Api {
            listener,
            router,
            bulk,
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
        let served = axum::serve(self.listener, self.router)
            .with_graceful_shutdown(shutdown)
            .await;
        resume.abort();
        served
    }
}

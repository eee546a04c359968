//! The HTTP API (axum): thin handlers over the application layer and the read-model
//! queries, bearer authentication, per-org and per-role scoping, `application/problem+json`
//! errors, idempotency keys, read-your-writes through `min_position`, and the OpenAPI
//! document generated from the handlers (utoipa), served at `/openapi.json`.
//!
//! Handlers hold no SQL and no rules: they extract, check scope, call, and map the result.
//! The API owns its response types.
//!
//! # Layout
//! - crate root: `ApiState`, the router with its layers, `serve`, `ApiConfig`.
//! - `server`: the accept loop (timeouts, connection limits).
//! - `caller`: authentication, roles and org scoping; `extract`: strict extractors;
//!   `problem`: problem+json errors; `idempotency`: idempotency keys; `reads`: answers of
//!   commands and read-your-writes; `openapi`: the document's shared parts.
//! - `views`: the response types of read-model rows.
//! - `routes`: handlers by area.
//! - `live`: `GET /v1/stream`, live inbox updates from the published events.
//! - `portal`: the partner portal's pages (`/p/<org>/...`) and assets.

mod caller;
mod extract;
mod idempotency;
pub mod live;
mod openapi;
mod portal;
mod problem;
mod reads;
pub(crate) mod routes;
pub mod server;
mod state;
mod views;

pub use idempotency::{IDEMPOTENCY_KEY, REPLAYED};
pub use problem::{ApiError, Problem};
pub use routes::bulk::Progress;
pub use state::{ApiConfig, ApiState};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{middleware, Router};
use leadroute_app::Commands;
use sqlx::PgPool;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpListener;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::{RequestBodyTimeoutLayer, TimeoutLayer};
use tower_http::trace::TraceLayer;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

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
        .merge(portal::router())
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
        .layer(middleware::map_response(portal::secure_headers))
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
    // Problems, and the portal's own error pages, stay as they are.
    let is_problem = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|kind| {
            kind.as_bytes().starts_with(b"application/problem+json")
                || kind.as_bytes().starts_with(b"text/html")
        });
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
    bulk: leadroute_app::bulk_runner::BulkRunner,
    /// Timeouts and connection limits.
    limits: server::Limits,
}

impl Api {
    /// Bind `config.listen` (port 0 works) over `pool`, which must be migrated.
    pub async fn build(pool: PgPool, config: &ApiConfig) -> anyhow::Result<Api> {
        Self::build_with(Commands::new(pool), config).await
    }

    /// Bind `config.listen` (port 0 works), executing through `commands` (sharing its
    /// event store and cache with the rest of the process). Live streams answer 503.
    pub async fn build_with(commands: Commands, config: &ApiConfig) -> anyhow::Result<Api> {
        Self::build_live(commands, config, None).await
    }

    /// [`Api::build_with`], serving live streams (`GET /v1/stream`) from the published
    /// events of `live` when given.
    pub async fn build_live(
        commands: Commands,
        config: &ApiConfig,
        live: Option<live::feed::LiveSource>,
    ) -> anyhow::Result<Api> {
        let listener = TcpListener::bind(config.listen).await.map_err(|e| {
            anyhow::anyhow!("cannot listen on {} (LEADROUTE_LISTEN): {e}", config.listen)
        })?;
        let mut state = ApiState::with_commands(commands, config);
        if let Some(source) = live {
            state.live = Some(live::feed::LiveFeed::start(source, state.commands.clone()).await?);
        }
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

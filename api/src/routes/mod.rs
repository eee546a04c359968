//! The routes, one module per resource. Each handler is documented for OpenAPI by its
//! `#[utoipa::path]`; `routes!` registers handler and document together, so a route cannot
//! exist without its entry in `/openapi.json`.

mod accounts;
mod auth;
pub(crate) mod bulk;
mod keys;
mod leads;
mod offers;
mod org;
mod queues;
mod routing;
mod templates;
mod users;

use crate::state::ApiState;
use utoipa_axum::router::OpenApiRouter;

/// Routes that need no bearer token (they check their own credentials).
pub(super) fn public() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .merge(auth::public())
        .merge(org::public())
        .routes(utoipa_axum::routes!(crate::live::stream::stream))
}

/// Routes behind bearer authentication.
pub(super) fn authenticated() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .merge(auth::authenticated())
        .merge(org::authenticated())
        .merge(keys::router())
        .merge(accounts::router())
        .merge(users::router())
        .merge(queues::router())
        .merge(leads::router())
        .merge(offers::router())
        .merge(bulk::router())
        .merge(routing::router())
        .merge(templates::router())
}

//! The partner portal: server-rendered pages at `/p/<org slug or id>/`, served by the API
//! process itself (templates and assets embedded, no front-end build). Reading works with
//! JavaScript off; a small script adds live inbox updates over `GET /v1/stream`.
//!
//! Pages: sign in / sign out, set password (the emailed one-time link), forgot password,
//! the inbox (offered, accepted, claimable; filters, paging, the count in the title), a
//! lead (fields as the partner may see them, accept, decline with a reason, claim, its
//! history without other partners' names), and availability and settings (pause, out of
//! office until a date, language, time zone). Every read and command goes through the
//! same application calls and scope checks as the JSON API, as the signed-in partner user.
//!
//! # Layout
//! - this file: the routes; `page`: the per-request context (`Portal`), answers, failure
//!   pages, form posts with their CSRF check, security headers, assets;
//! - the pages: `access` (sign in and out, passwords), `inbox`, `lead`, `settings`;
//! - `session`: cookies and CSRF; `i18n`: words and language choice; `render`: templates,
//!   filters and assets.

mod access;
mod i18n;
mod inbox;
mod lead;
mod page;
mod render;
mod session;
mod settings;

use crate::state::ApiState;
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::Router;

pub(crate) use page::secure_headers;

/// The portal's routes (merged into the API's router).
pub(crate) fn router() -> Router<ApiState> {
    Router::new()
        .route("/assets/{file}", get(page::asset))
        .route("/p/{org}", get(page::to_inbox))
        .route("/p/{org}/", get(inbox::inbox))
        .route("/p/{org}/inbox/items", get(inbox::inbox_items))
        .route(
            "/p/{org}/sign-in",
            get(access::sign_in_page).post(access::sign_in),
        )
        .route("/p/{org}/sign-out", post(access::sign_out))
        .route(
            "/p/{org}/set-password",
            get(access::set_password_page).post(access::set_password),
        )
        .route(
            "/p/{org}/forgot-password",
            get(access::forgot_page).post(access::forgot),
        )
        .route("/p/{org}/leads/{id}", get(lead::lead_page))
        .route("/p/{org}/leads/{id}/accept", post(lead::accept))
        .route("/p/{org}/leads/{id}/decline", post(lead::decline))
        .route("/p/{org}/leads/{id}/claim", post(lead::claim))
        .route("/p/{org}/settings", get(settings::settings_page))
        .route("/p/{org}/settings/pause", post(settings::pause))
        .route("/p/{org}/settings/resume", post(settings::resume))
        .route("/p/{org}/settings/preferences", post(settings::preferences))
}

/// The session token of the portal's cookie, if the request carries one (the live stream
/// accepts it).
pub(crate) fn session_cookie(headers: &HeaderMap) -> Option<String> {
    session::cookie(headers, session::SESSION_COOKIE)
}

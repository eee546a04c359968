//! The pages before sign-in and the way out: sign in, sign out, set a password from the
//! emailed link, ask for a new link (forgot password).

use super::page::{anonymous_post, failure, form, posted, CsrfOnly, Page, Portal};
use super::session;
use crate::extract::ClientIp;
use crate::state::ApiState;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use chrono::Utc;
use leadroute_app::access::{AccessError, SignedIn};
use leadroute_app::CommandMeta;
use leadroute_domain::ids::Actor;
use minijinja::context;
use serde::Deserialize;

#[derive(Deserialize, Default)]
pub(super) struct SignInQuery {
    next: Option<String>,
    done: Option<String>,
}

/// Where to go after signing in: `next` when it is a page of this org's portal.
fn next_page(portal: &Portal, next: Option<&str>) -> String {
    next.filter(|next| {
        next.starts_with(&format!("{}/", portal.base))
            && !next.contains("//")
            && !next.contains('\\')
            && next.len() < 512
    })
    .map_or_else(|| format!("{}/", portal.base), str::to_string)
}

pub(super) async fn sign_in_page(
    State(state): State<ApiState>,
    Path(org): Path<String>,
    Query(query): Query<SignInQuery>,
    headers: HeaderMap,
) -> Result<Page, Page> {
    let mut portal = Portal::open(&state, &org, &headers).await?;
    if portal.session.is_some() {
        let to = next_page(&portal, query.next.as_deref());
        return Ok(portal.redirect(to));
    }
    let (notice, _) = portal.outcome(query.done.as_deref(), None);
    let next = next_page(&portal, query.next.as_deref());
    let title = portal.t("sign_in.title");
    Ok(portal.render(
        StatusCode::OK,
        "sign_in.html",
        &title,
        context! { next => next, notice => notice, email => "" },
    ))
}

#[derive(Deserialize)]
pub(super) struct SignInForm {
    #[serde(rename = "_csrf", default)]
    csrf: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    next: Option<String>,
}

pub(super) async fn sign_in(
    State(state): State<ApiState>,
    Path(org): Path<String>,
    ClientIp(source): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Page, Page> {
    let (mut portal, form) = anonymous_post::<SignInForm>(&state, &org, &headers, &body).await?;
    let signed = state
        .access
        .sign_in(portal.org, &form.email, &form.password, source)
        .await;
    match signed {
        Ok(SignedIn {
            token, expires_at, ..
        }) => {
            let max_age = (expires_at - Utc::now()).num_seconds().max(0) as u64;
            portal.cookies.push(session::set_cookie(
                session::SESSION_COOKIE,
                &token,
                "Lax",
                max_age,
                portal.secure_cookies,
            ));
            let to = next_page(&portal, form.next.as_deref());
            Ok(portal.redirect(to))
        }
        Err(e) => {
            let (status, code) = match &e {
                AccessError::InvalidCredentials => {
                    (StatusCode::UNAUTHORIZED, "invalid_credentials")
                }
                AccessError::Throttled(_) => (StatusCode::TOO_MANY_REQUESTS, "too_many_attempts"),
                other => {
                    tracing::warn!(error = %other, "a portal sign-in failed");
                    (StatusCode::SERVICE_UNAVAILABLE, "store_unavailable")
                }
            };
            let error = portal.error_text(code);
            let next = next_page(&portal, form.next.as_deref());
            let title = portal.t("sign_in.title");
            let email: String = form.email.chars().take(320).collect();
            Ok(portal.render(
                status,
                "sign_in.html",
                &title,
                context! { next => next, error => error, email => email },
            ))
        }
    }
}

pub(super) async fn sign_out(
    State(state): State<ApiState>,
    Path(org): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Page, Page> {
    let mut portal = Portal::open(&state, &org, &headers).await?;
    let csrf = form::<CsrfOnly>(&body).map(|f| f.csrf).unwrap_or_default();
    if let Some(signed) = &portal.session {
        if !portal.csrf_ok(&headers, &csrf) {
            return Ok(portal.csrf_failed());
        }
        if let Err(e) = state.access.sign_out(&signed.token).await {
            tracing::warn!(error = %e, "ending a portal session failed");
            return Ok(failure(
                StatusCode::SERVICE_UNAVAILABLE,
                portal.lang,
                "unavailable",
            ));
        }
    }
    portal.cookies.push(session::set_cookie(
        session::SESSION_COOKIE,
        "",
        "Lax",
        0,
        portal.secure_cookies,
    ));
    let to = format!("{}/sign-in?done=signed_out", portal.base);
    Ok(portal.redirect(to))
}

#[derive(Deserialize, Default)]
pub(super) struct TokenQuery {
    #[serde(default)]
    token: String,
}

/// The page of a set-password link that no longer works.
fn link_problem(portal: &mut Portal, error: &AccessError) -> Page {
    let key = match error {
        AccessError::InvitationUsed => "link.used",
        AccessError::InvitationExpired => "link.expired",
        _ => "link.invalid",
    };
    let sign_in = format!("{}/sign-in", portal.base);
    portal.message(
        StatusCode::GONE,
        key,
        Some((&sign_in, "back_to_sign_in")),
        true,
    )
}

pub(super) async fn set_password_page(
    State(state): State<ApiState>,
    Path(org): Path<String>,
    Query(query): Query<TokenQuery>,
    headers: HeaderMap,
) -> Result<Page, Page> {
    let mut portal = Portal::open(&state, &org, &headers).await?;
    match state.access.check_invitation(&query.token).await {
        Ok(()) => {
            let title = portal.t("set_password.title");
            Ok(portal.render(
                StatusCode::OK,
                "set_password.html",
                &title,
                context! { token => query.token },
            ))
        }
        Err(AccessError::Store(e)) => {
            tracing::warn!(error = %e, "checking a set-password link failed");
            Ok(failure(
                StatusCode::SERVICE_UNAVAILABLE,
                portal.lang,
                "unavailable",
            ))
        }
        Err(e) => Ok(link_problem(&mut portal, &e)),
    }
}

#[derive(Deserialize)]
pub(super) struct SetPasswordForm {
    #[serde(rename = "_csrf", default)]
    csrf: String,
    #[serde(default)]
    token: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    confirm: String,
}

pub(super) async fn set_password(
    State(state): State<ApiState>,
    Path(org): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Page, Page> {
    let (mut portal, form) =
        anonymous_post::<SetPasswordForm>(&state, &org, &headers, &body).await?;
    let again = |portal: &mut Portal, code: &str| {
        let error = portal.error_text(code);
        let title = portal.t("set_password.title");
        portal.render(
            StatusCode::UNPROCESSABLE_ENTITY,
            "set_password.html",
            &title,
            context! { token => form.token.clone(), error => error },
        )
    };
    if form.password != form.confirm {
        return Ok(again(&mut portal, "password_mismatch"));
    }
    match state.access.set_password(&form.token, &form.password).await {
        Ok(()) => {
            let sign_in = format!("{}/sign-in", portal.base);
            Ok(portal.message(
                StatusCode::OK,
                "password_set",
                Some((&sign_in, "sign_in.title")),
                false,
            ))
        }
        Err(
            e @ (AccessError::PasswordTooShort
            | AccessError::PasswordTooLong
            | AccessError::EmailInUse),
        ) => Ok(again(&mut portal, e.code())),
        Err(
            e @ (AccessError::InvitationUsed
            | AccessError::InvitationExpired
            | AccessError::InvitationInvalid),
        ) => Ok(link_problem(&mut portal, &e)),
        Err(e) => {
            tracing::warn!(error = %e, "setting a password in the portal failed");
            Ok(failure(
                StatusCode::SERVICE_UNAVAILABLE,
                portal.lang,
                "unavailable",
            ))
        }
    }
}

pub(super) async fn forgot_page(
    State(state): State<ApiState>,
    Path(org): Path<String>,
    headers: HeaderMap,
) -> Result<Page, Page> {
    let mut portal = Portal::open(&state, &org, &headers).await?;
    let title = portal.t("forgot.title");
    Ok(portal.render(StatusCode::OK, "forgot.html", &title, context! {}))
}

#[derive(Deserialize)]
pub(super) struct ForgotForm {
    #[serde(rename = "_csrf", default)]
    csrf: String,
    #[serde(default)]
    email: String,
}

pub(super) async fn forgot(
    State(state): State<ApiState>,
    Path(org): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Page, Page> {
    let (mut portal, form) = anonymous_post::<ForgotForm>(&state, &org, &headers, &body).await?;
    let meta = CommandMeta::now(Actor::System("partner portal".into()));
    if let Err(e) = state
        .commands
        .request_password_reset(&meta, portal.org, &form.email)
        .await
    {
        tracing::warn!(error = %e, "a password reset request failed");
        return Ok(failure(
            StatusCode::SERVICE_UNAVAILABLE,
            portal.lang,
            "unavailable",
        ));
    }
    let sign_in = format!("{}/sign-in", portal.base);
    Ok(portal.message(
        StatusCode::OK,
        "forgot.sent",
        Some((&sign_in, "back_to_sign_in")),
        false,
    ))
}

posted!(SignInForm, SetPasswordForm, ForgotForm);

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
//! - this file: routes, the per-request [`Portal`] context, the pages;
//! - `session`: cookies and CSRF; `i18n`: words and language choice; `render`: templates,
//!   filters and assets.

mod i18n;
mod render;
mod session;

use crate::caller::Caller;
use crate::extract::ClientIp;
use crate::problem::ApiError;
use crate::state::ApiState;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};
use leadroute_app::access::{AccessError, Principal, SignedIn};
use leadroute_app::router::Decline;
use leadroute_app::{AppError, CommandMeta};
use leadroute_domain::ids::{
    Actor, LeadId, OrgId, Owner, PartnerAccountId, PartnerUserId, QueueId,
};
use leadroute_domain::lead::Lead;
use leadroute_domain::org::Org;
use leadroute_domain::partner_user::{Language, PartnerUser, Preferences};
use leadroute_domain::queue::Queue;
use leadroute_projections::projectors::leads::status;
use leadroute_projections::projectors::owner_from_columns;
use leadroute_projections::queries::{self, InboxQuery};
use minijinja::{context, Value};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value as Json;
use uuid::Uuid;

pub(crate) use session::SESSION_COOKIE;

/// Leads per inbox page.
const PAGE_SIZE: i64 = 25;

/// The portal's routes (merged into the API's router).
pub(crate) fn router() -> Router<ApiState> {
    Router::new()
        .route("/assets/{file}", get(asset))
        .route("/p/{org}", get(to_inbox))
        .route("/p/{org}/", get(inbox))
        .route("/p/{org}/inbox/items", get(inbox_items))
        .route("/p/{org}/sign-in", get(sign_in_page).post(sign_in))
        .route("/p/{org}/sign-out", post(sign_out))
        .route(
            "/p/{org}/set-password",
            get(set_password_page).post(set_password),
        )
        .route("/p/{org}/forgot-password", get(forgot_page).post(forgot))
        .route("/p/{org}/leads/{id}", get(lead_page))
        .route("/p/{org}/leads/{id}/accept", post(accept))
        .route("/p/{org}/leads/{id}/decline", post(decline))
        .route("/p/{org}/leads/{id}/claim", post(claim))
        .route("/p/{org}/settings", get(settings_page))
        .route("/p/{org}/settings/pause", post(pause))
        .route("/p/{org}/settings/resume", post(resume))
        .route("/p/{org}/settings/preferences", post(preferences))
}

/// The session token of the portal's cookie, if the request carries one (the live stream
/// accepts it).
pub(crate) fn session_cookie(headers: &HeaderMap) -> Option<String> {
    session::cookie(headers, SESSION_COOKIE)
}

/// Headers every answer carries: a strict content security policy (no inline script or
/// style, no framing), no MIME sniffing, no referrer to other sites (set-password links
/// carry tokens; `no-referrer` would also blank the `Origin` of form posts).
pub(crate) async fn secure_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; \
             object-src 'none'",
        ),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    response
}

/// An answer of the portal: a page, or a redirect (303 after a post), with cookies to set.
pub(crate) enum Page {
    /// An HTML page.
    Html {
        /// Status.
        status: StatusCode,
        /// The document.
        body: String,
        /// `Set-Cookie` values.
        cookies: Vec<HeaderValue>,
    },
    /// See other.
    Redirect {
        /// Where.
        to: String,
        /// `Set-Cookie` values.
        cookies: Vec<HeaderValue>,
    },
}

impl IntoResponse for Page {
    fn into_response(self) -> Response {
        let (mut response, cookies) = match self {
            Page::Html {
                status,
                body,
                cookies,
            } => (
                (
                    status,
                    [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                    body,
                )
                    .into_response(),
                cookies,
            ),
            Page::Redirect { to, cookies } => {
                let mut response = StatusCode::SEE_OTHER.into_response();
                if let Ok(location) = HeaderValue::from_str(&to) {
                    response.headers_mut().insert(header::LOCATION, location);
                }
                (response, cookies)
            }
        };
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        for cookie in cookies {
            headers.append(header::SET_COOKIE, cookie);
        }
        response
    }
}

/// The signed-in partner user of a request.
#[derive(Clone)]
struct Signed {
    user: PartnerUserId,
    account: PartnerAccountId,
    token: String,
    state: PartnerUser,
}

/// What every portal request knows: the org, the language and time zone, the session,
/// the CSRF token of its forms.
pub(crate) struct Portal {
    org: OrgId,
    org_state: Org,
    /// `/p/<slug or id>`.
    base: String,
    lang: Language,
    zone: chrono_tz::Tz,
    session: Option<Signed>,
    /// The token the page's forms carry.
    csrf: String,
    /// Cookies to set with the answer.
    cookies: Vec<HeaderValue>,
    secure_cookies: bool,
}

/// A page that could not be served for the reader: not found, unavailable.
fn failure(status: StatusCode, lang: Language, what: &str) -> Page {
    let title = i18n::text(lang, &format!("error.{what}.title")).to_string();
    let message = i18n::text(lang, &format!("error.{what}.message")).to_string();
    let body = render::environment()
        .get_template("message.html")
        .and_then(|t| {
            t.render(context! {
                lang => lang.tag(), title => title, message => message,
                org => context! { name => "leadroute", base => "" },
            })
        })
        .unwrap_or_else(|_| message.clone());
    Page::Html {
        status,
        body,
        cookies: Vec::new(),
    }
}

/// The failure page an application error calls for.
fn app_failure(lang: Language, error: &AppError) -> Page {
    match error {
        AppError::NotFound { .. } => failure(StatusCode::NOT_FOUND, lang, "not_found"),
        other => {
            tracing::warn!(error = %other, "a portal page failed");
            failure(StatusCode::SERVICE_UNAVAILABLE, lang, "unavailable")
        }
    }
}

/// The failure page of a read that failed: not found, or unavailable.
fn api_failure(lang: Language, error: &ApiError) -> Page {
    match error.status_and_code().0 {
        StatusCode::NOT_FOUND => failure(StatusCode::NOT_FOUND, lang, "not_found"),
        _ => {
            tracing::warn!(error = %error, "a portal page failed");
            failure(StatusCode::SERVICE_UNAVAILABLE, lang, "unavailable")
        }
    }
}

impl Portal {
    /// The context of a request to `/p/<segment>/...`.
    async fn open(state: &ApiState, segment: &str, headers: &HeaderMap) -> Result<Portal, Page> {
        let browser = i18n::browser_language(headers).unwrap_or_default();
        let org = match state.commands.org_at(segment).await {
            Ok(Some(org)) => org,
            Ok(None) => return Err(failure(StatusCode::NOT_FOUND, browser, "not_found")),
            Err(e) => return Err(app_failure(browser, &e)),
        };
        let org_state = state
            .commands
            .state::<Org>(org, org)
            .await
            .map_err(|e| app_failure(browser, &e))?;
        let base = format!(
            "/p/{}",
            org_state.slug.clone().unwrap_or_else(|| org.to_string())
        );
        let mut session = None;
        if let Some(token) = session::cookie(headers, SESSION_COOKIE) {
            if let Ok(Principal::Partner {
                org: of,
                user,
                account,
            }) = state.access.authenticate(&token).await
            {
                if of == org {
                    let user_state = state
                        .commands
                        .state::<PartnerUser>(org, user)
                        .await
                        .map_err(|e| app_failure(browser, &e))?;
                    session = Some(Signed {
                        user,
                        account,
                        token,
                        state: user_state,
                    });
                }
            }
        }
        let preferences = session.as_ref().map(|s| s.state.preferences.clone());
        let lang = preferences
            .as_ref()
            .and_then(|p| p.language)
            .unwrap_or(browser);
        let zone = preferences
            .and_then(|p| p.time_zone)
            .and_then(|zone| zone.parse().ok())
            .unwrap_or(chrono_tz::UTC);
        let mut cookies = Vec::new();
        let csrf = match &session {
            Some(signed) => session::session_csrf(&signed.token),
            None => session::cookie(headers, session::CSRF_COOKIE).unwrap_or_else(|| {
                let fresh = session::random_token();
                cookies.push(session::set_cookie(
                    session::CSRF_COOKIE,
                    &fresh,
                    "Strict",
                    86_400,
                    state.secure_cookies,
                ));
                fresh
            }),
        };
        Ok(Portal {
            org,
            org_state,
            base,
            lang,
            zone,
            session,
            csrf,
            cookies,
            secure_cookies: state.secure_cookies,
        })
    }

    /// The signed-in user, or the redirect to sign in (back to `here` afterwards).
    fn signed(&self, here: &str) -> Result<Signed, Page> {
        self.session.clone().ok_or_else(|| Page::Redirect {
            to: format!(
                "{}/sign-in?next={}",
                self.base,
                form_urlencoded::byte_serialize(here.as_bytes()).collect::<String>()
            ),
            cookies: Vec::new(),
        })
    }

    /// The caller as the JSON API sees it.
    fn caller(&self, signed: &Signed) -> Caller {
        Caller(Principal::Partner {
            org: self.org,
            user: signed.user,
            account: signed.account,
        })
    }

    fn t(&self, key: &str) -> String {
        i18n::text(self.lang, key).to_string()
    }

    /// The message of a refusal's code (a generic one naming the code when unknown).
    fn error_text(&self, code: &str) -> String {
        let key = format!("error.{code}");
        if i18n::known(&key) {
            self.t(&key)
        } else {
            self.t("error.generic").replace("{code}", code)
        }
    }

    /// The page `template` with `page` (its own context) and the common context.
    fn render(&mut self, status: StatusCode, template: &str, title: &str, page: Value) -> Page {
        let user = self
            .session
            .as_ref()
            .map(|s| context! { name => s.state.name.clone() });
        let common = context! {
            lang => self.lang.tag(),
            tz => self.zone.name(),
            org => context! { name => self.org_state.name.clone(), base => self.base.clone() },
            user => user,
            csrf => self.csrf.clone(),
            title => title,
        };
        let rendered = render::environment()
            .get_template(template)
            .and_then(|t| t.render(context! { ..page, ..common }));
        match rendered {
            Ok(body) => Page::Html {
                status,
                body,
                cookies: std::mem::take(&mut self.cookies),
            },
            Err(e) => {
                tracing::error!(error = %e, template, "a portal template failed to render");
                failure(StatusCode::INTERNAL_SERVER_ERROR, self.lang, "unavailable")
            }
        }
    }

    /// A page with a title, a message and an optional link (and the new-link form).
    fn message(
        &mut self,
        status: StatusCode,
        key: &str,
        link: Option<(&str, &str)>,
        ask_link: bool,
    ) -> Page {
        let title = self.t(&format!("{key}.title"));
        let message = self.t(&format!("{key}.message"));
        let link = link.map(|(href, label)| context! { href => href, label => self.t(label) });
        let page = context! { message => message, link => link, ask_link => ask_link };
        self.render(status, "message.html", &title, page)
    }

    /// 303 to `to` (inside the portal).
    fn redirect(&mut self, to: String) -> Page {
        Page::Redirect {
            to,
            cookies: std::mem::take(&mut self.cookies),
        }
    }

    /// The CSRF failure page.
    fn csrf_failed(&mut self) -> Page {
        let error = self.t("error.csrf");
        let title = self.t("error.unavailable.title");
        self.render(
            StatusCode::FORBIDDEN,
            "message.html",
            &title,
            context! { error => error },
        )
    }

    /// The notice or error a redirect asked for (`?done=accepted`, `?error=not_offered`).
    fn outcome(&self, done: Option<&str>, error: Option<&str>) -> (Option<String>, Option<String>) {
        let notice = done
            .map(|done| format!("notice.{done}"))
            .filter(|key| i18n::known(key))
            .map(|key| self.t(&key));
        let error = error
            .filter(|code| {
                code.len() <= 40 && code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
            })
            .map(|code| self.error_text(code));
        (notice, error)
    }
}

/// A form body, or `None` when it does not read as `T`.
fn form<T: DeserializeOwned>(body: &Bytes) -> Option<T> {
    serde_urlencoded::from_bytes(body).ok()
}

/// A form with only its CSRF token.
#[derive(Deserialize)]
struct CsrfOnly {
    #[serde(rename = "_csrf", default)]
    csrf: String,
}

/// The notice or error of the page a post redirected to.
#[derive(Deserialize, Default)]
struct Outcome {
    done: Option<String>,
    error: Option<String>,
}

/// `GET /assets/{file}`: an embedded asset by its hashed name, cached for a year.
async fn asset(Path(file): Path<String>) -> Response {
    let wanted = format!("/assets/{file}");
    match render::assets().iter().find(|a| a.path == wanted) {
        Some(asset) => (
            [
                (header::CONTENT_TYPE, asset.content_type),
                (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
            ],
            asset.body,
        )
            .into_response(),
        None => (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/plain")],
            "not found",
        )
            .into_response(),
    }
}

async fn to_inbox(
    State(state): State<ApiState>,
    Path(org): Path<String>,
    headers: HeaderMap,
) -> Page {
    match Portal::open(&state, &org, &headers).await {
        Ok(mut portal) => {
            let to = format!("{}/", portal.base);
            portal.redirect(to)
        }
        Err(page) => page,
    }
}

// ----- sign in, sign out, passwords -------------------------------------------------------

#[derive(Deserialize, Default)]
struct SignInQuery {
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

async fn sign_in_page(
    State(state): State<ApiState>,
    Path(org): Path<String>,
    Query(query): Query<SignInQuery>,
    headers: HeaderMap,
) -> Page {
    let mut portal = match Portal::open(&state, &org, &headers).await {
        Ok(portal) => portal,
        Err(page) => return page,
    };
    if portal.session.is_some() {
        let to = next_page(&portal, query.next.as_deref());
        return portal.redirect(to);
    }
    let (notice, _) = portal.outcome(query.done.as_deref(), None);
    let next = next_page(&portal, query.next.as_deref());
    let title = portal.t("sign_in.title");
    portal.render(
        StatusCode::OK,
        "sign_in.html",
        &title,
        context! { next => next, notice => notice, email => "" },
    )
}

#[derive(Deserialize)]
struct SignInForm {
    #[serde(rename = "_csrf", default)]
    csrf: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    next: Option<String>,
}

async fn sign_in(
    State(state): State<ApiState>,
    Path(org): Path<String>,
    ClientIp(source): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Page {
    let mut portal = match Portal::open(&state, &org, &headers).await {
        Ok(portal) => portal,
        Err(page) => return page,
    };
    let Some(form) = form::<SignInForm>(&body) else {
        return portal.csrf_failed();
    };
    if !portal.csrf_ok(&headers, &form.csrf) {
        return portal.csrf_failed();
    }
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
                SESSION_COOKIE,
                &token,
                "Lax",
                max_age,
                portal.secure_cookies,
            ));
            let to = next_page(&portal, form.next.as_deref());
            portal.redirect(to)
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
            portal.render(
                status,
                "sign_in.html",
                &title,
                context! { next => next, error => error, email => email },
            )
        }
    }
}

async fn sign_out(
    State(state): State<ApiState>,
    Path(org): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Page {
    let mut portal = match Portal::open(&state, &org, &headers).await {
        Ok(portal) => portal,
        Err(page) => return page,
    };
    let csrf = form::<CsrfOnly>(&body).map(|f| f.csrf).unwrap_or_default();
    if let Some(signed) = &portal.session {
        if !portal.csrf_ok(&headers, &csrf) {
            return portal.csrf_failed();
        }
        if let Err(e) = state.access.sign_out(&signed.token).await {
            tracing::warn!(error = %e, "ending a portal session failed");
            return failure(StatusCode::SERVICE_UNAVAILABLE, portal.lang, "unavailable");
        }
    }
    portal.cookies.push(session::set_cookie(
        SESSION_COOKIE,
        "",
        "Lax",
        0,
        portal.secure_cookies,
    ));
    let to = format!("{}/sign-in?done=signed_out", portal.base);
    portal.redirect(to)
}

#[derive(Deserialize, Default)]
struct TokenQuery {
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

async fn set_password_page(
    State(state): State<ApiState>,
    Path(org): Path<String>,
    Query(query): Query<TokenQuery>,
    headers: HeaderMap,
) -> Page {
    let mut portal = match Portal::open(&state, &org, &headers).await {
        Ok(portal) => portal,
        Err(page) => return page,
    };
    match state.access.check_invitation(&query.token).await {
        Ok(()) => {
            let title = portal.t("set_password.title");
            portal.render(
                StatusCode::OK,
                "set_password.html",
                &title,
                context! { token => query.token },
            )
        }
        Err(AccessError::Store(e)) => {
            tracing::warn!(error = %e, "checking a set-password link failed");
            failure(StatusCode::SERVICE_UNAVAILABLE, portal.lang, "unavailable")
        }
        Err(e) => link_problem(&mut portal, &e),
    }
}

#[derive(Deserialize)]
struct SetPasswordForm {
    #[serde(rename = "_csrf", default)]
    csrf: String,
    #[serde(default)]
    token: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    confirm: String,
}

async fn set_password(
    State(state): State<ApiState>,
    Path(org): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Page {
    let mut portal = match Portal::open(&state, &org, &headers).await {
        Ok(portal) => portal,
        Err(page) => return page,
    };
    let Some(form) = form::<SetPasswordForm>(&body) else {
        return portal.csrf_failed();
    };
    if !portal.csrf_ok(&headers, &form.csrf) {
        return portal.csrf_failed();
    }
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
        return again(&mut portal, "password_mismatch");
    }
    match state.access.set_password(&form.token, &form.password).await {
        Ok(()) => {
            let sign_in = format!("{}/sign-in", portal.base);
            portal.message(
                StatusCode::OK,
                "password_set",
                Some((&sign_in, "sign_in.title")),
                false,
            )
        }
        Err(
            e @ (AccessError::PasswordTooShort
            | AccessError::PasswordTooLong
            | AccessError::EmailInUse),
        ) => again(&mut portal, e.code()),
        Err(
            e @ (AccessError::InvitationUsed
            | AccessError::InvitationExpired
            | AccessError::InvitationInvalid),
        ) => link_problem(&mut portal, &e),
        Err(e) => {
            tracing::warn!(error = %e, "setting a password in the portal failed");
            failure(StatusCode::SERVICE_UNAVAILABLE, portal.lang, "unavailable")
        }
    }
}

async fn forgot_page(
    State(state): State<ApiState>,
    Path(org): Path<String>,
    headers: HeaderMap,
) -> Page {
    let mut portal = match Portal::open(&state, &org, &headers).await {
        Ok(portal) => portal,
        Err(page) => return page,
    };
    let title = portal.t("forgot.title");
    portal.render(StatusCode::OK, "forgot.html", &title, context! {})
}

#[derive(Deserialize)]
struct ForgotForm {
    #[serde(rename = "_csrf", default)]
    csrf: String,
    #[serde(default)]
    email: String,
}

async fn forgot(
    State(state): State<ApiState>,
    Path(org): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Page {
    let mut portal = match Portal::open(&state, &org, &headers).await {
        Ok(portal) => portal,
        Err(page) => return page,
    };
    let Some(form) = form::<ForgotForm>(&body) else {
        return portal.csrf_failed();
    };
    if !portal.csrf_ok(&headers, &form.csrf) {
        return portal.csrf_failed();
    }
    let meta = CommandMeta::now(Actor::System("partner portal".into()));
    if let Err(e) = state
        .commands
        .request_password_reset(&meta, portal.org, &form.email)
        .await
    {
        tracing::warn!(error = %e, "a password reset request failed");
        return failure(StatusCode::SERVICE_UNAVAILABLE, portal.lang, "unavailable");
    }
    let sign_in = format!("{}/sign-in", portal.base);
    portal.message(
        StatusCode::OK,
        "forgot.sent",
        Some((&sign_in, "back_to_sign_in")),
        false,
    )
}

// ----- inbox ----------------------------------------------------------------------------------

#[derive(Deserialize, Default)]
struct InboxParams {
    state: Option<String>,
    after_at: Option<DateTime<Utc>>,
    after_id: Option<Uuid>,
    done: Option<String>,
    error: Option<String>,
    /// Wait until the read models show this log position (a live update's).
    min_position: Option<String>,
}

/// Field names that make a lead's title, in order of preference.
const TITLE_FIELDS: [&str; 6] = [
    "company",
    "name",
    "full_name",
    "last_name",
    "email",
    "title",
];

/// A field value as text.
fn field_text(value: &Json) -> String {
    match value {
        Json::String(s) => s.clone(),
        Json::Null => String::new(),
        other => other.to_string(),
    }
}

/// A lead's title and a one-line summary of its other fields, from the fields shown.
fn title_and_summary(fields: &Json, lead: Uuid, lang: Language) -> (String, String) {
    let map = fields.as_object().cloned().unwrap_or_default();
    let title_field = TITLE_FIELDS.iter().find(|name| {
        map.get(**name)
            .is_some_and(|v| !field_text(v).trim().is_empty())
    });
    let title = title_field.map_or_else(
        || {
            format!(
                "{} {}",
                i18n::text(lang, "inbox.lead"),
                &lead.to_string()[..8]
            )
        },
        |name| field_text(&map[*name]),
    );
    let summary: Vec<String> = map
        .iter()
        .filter(|(name, value)| {
            Some(&name.as_str()) != title_field && !field_text(value).is_empty()
        })
        .take(3)
        .map(|(name, value)| format!("{name}: {}", field_text(value)))
        .collect();
    (title, summary.join(" · "))
}

/// The inbox's list (with filters and counts) as the page and the live refresh render it.
async fn inbox_context(
    state: &ApiState,
    portal: &Portal,
    signed: &Signed,
    params: &InboxParams,
) -> Result<(String, Value), ApiError> {
    let filter = params
        .state
        .as_deref()
        .filter(|s| [status::OFFERED, status::ACCEPTED, queries::CLAIMABLE].contains(s));
    let after = params.after_at.zip(params.after_id);
    let query = InboxQuery {
        state: filter.map(str::to_string),
        received_since: None,
        after,
        limit: PAGE_SIZE,
    };
    let items = queries::partner_inbox(&state.pool, portal.org, signed.user, &query).await?;
    let (offered, accepted, claimable) =
        queries::inbox_counts(&state.pool, portal.org, signed.user).await?;
    let fields = portal.caller(signed).visible_fields(state).await?;
    let filter_href = |s: Option<&str>| match s {
        Some(s) => format!("{}/?state={s}", portal.base),
        None => format!("{}/", portal.base),
    };
    let filters: Vec<Value> = [
        (None, "filter.all", offered + accepted + claimable),
        (Some(status::OFFERED), "filter.offered", offered),
        (Some(status::ACCEPTED), "filter.accepted", accepted),
        (Some(queries::CLAIMABLE), "filter.claimable", claimable),
    ]
    .into_iter()
    .map(|(s, label, count)| {
        context! { href => filter_href(s), label => portal.t(label), count => count, current => s == filter }
    })
    .collect();
    let next = (items.len() as i64 == PAGE_SIZE).then(|| {
        let last = items.last().expect("a full page has a last item");
        let mut href = format!(
            "{}/?after_at={}&after_id={}",
            portal.base,
            form_urlencoded::byte_serialize(last.received_at.to_rfc3339().as_bytes())
                .collect::<String>(),
            last.lead_id
        );
        if let Some(s) = filter {
            href.push_str(&format!("&state={s}"));
        }
        href
    });
    let items: Vec<Value> = items
        .into_iter()
        .map(|item| {
            let shown = fields.of(item.state == status::ACCEPTED).apply(item.fields);
            let (title, summary) = title_and_summary(&shown, item.lead_id, portal.lang);
            context! {
                id => item.lead_id.to_string(),
                title => title,
                summary => summary,
                state => item.state,
                deadline => item.deadline.map(|d| d.to_rfc3339()),
                seconds_left => item.seconds_left,
                received_at => item.received_at.to_rfc3339(),
            }
        })
        .collect();
    let waiting = offered + claimable;
    let inbox = portal.t("inbox.title");
    let title = if waiting > 0 {
        format!("({waiting}) {inbox}")
    } else {
        inbox
    };
    let mut items_url = format!("{}/inbox/items", portal.base);
    if let Some(s) = filter {
        items_url.push_str(&format!("?state={s}"));
    }
    Ok((
        title,
        context! {
            filters => filters, items => items, next => next, page => "inbox",
            items_url => items_url, caption => portal.t("inbox.caption"),
        },
    ))
}

async fn inbox(
    State(state): State<ApiState>,
    Path(org): Path<String>,
    Query(params): Query<InboxParams>,
    headers: HeaderMap,
) -> Page {
    let mut portal = match Portal::open(&state, &org, &headers).await {
        Ok(portal) => portal,
        Err(page) => return page,
    };
    let here = format!("{}/", portal.base);
    let signed = match portal.signed(&here) {
        Ok(signed) => signed,
        Err(page) => return page,
    };
    let (title, page) = match inbox_context(&state, &portal, &signed, &params).await {
        Ok(found) => found,
        Err(e) => return api_failure(portal.lang, &e),
    };
    let (notice, error) = portal.outcome(params.done.as_deref(), params.error.as_deref());
    portal.render(
        StatusCode::OK,
        "inbox.html",
        &title,
        context! { notice => notice, error => error, ..page },
    )
}

/// The inbox list alone (what the live refresh swaps in).
async fn inbox_items(
    State(state): State<ApiState>,
    Path(org): Path<String>,
    Query(params): Query<InboxParams>,
    headers: HeaderMap,
) -> Page {
    let mut portal = match Portal::open(&state, &org, &headers).await {
        Ok(portal) => portal,
        Err(page) => return page,
    };
    let here = format!("{}/", portal.base);
    let signed = match portal.signed(&here) {
        Ok(signed) => signed,
        Err(page) => return page,
    };
    // Shown once the read models have the change the live update announced (or after the
    // usual read wait: the next update catches up).
    let min = crate::reads::MinPosition {
        min_position: params.min_position.clone(),
    };
    let read_models = [
        leadroute_projections::projectors::DIRECTORY,
        leadroute_projections::projectors::LEADS,
    ];
    if let Err(e) = state.caught_up(&read_models, &min).await {
        tracing::debug!(error = %e, "the live inbox reads before its update is projected");
    }
    let (title, page) = match inbox_context(&state, &portal, &signed, &params).await {
        Ok(found) => found,
        Err(e) => return api_failure(portal.lang, &e),
    };
    portal.render(StatusCode::OK, "inbox_items.html", &title, page)
}

// ----- a lead ---------------------------------------------------------------------------------

/// How an owner reads to partner user `me`: themselves, a queue of theirs by name, or
/// nothing more than "another partner" / "a queue" / "the channel team".
fn owner_text(
    portal: &Portal,
    me: PartnerUserId,
    owner: Option<Owner>,
    my_queues: &[(Uuid, String)],
) -> String {
    match owner {
        None => portal.t("owner.nobody"),
        Some(Owner::PartnerUser(user)) if user == me => portal.t("owner.you"),
        Some(Owner::PartnerUser(_)) => portal.t("owner.other_partner"),
        Some(Owner::Queue(queue)) => match my_queues.iter().find(|(id, _)| *id == queue.0) {
            Some((_, name)) => portal.t("owner.queue").replace("{name}", name),
            None => portal.t("owner.a_queue"),
        },
        Some(Owner::InternalUser(_)) => portal.t("owner.team"),
    }
}

async fn lead_page(
    State(state): State<ApiState>,
    Path((org, id)): Path<(String, Uuid)>,
    Query(outcome): Query<Outcome>,
    headers: HeaderMap,
) -> Page {
    let mut portal = match Portal::open(&state, &org, &headers).await {
        Ok(portal) => portal,
        Err(page) => return page,
    };
    let here = format!("{}/leads/{id}", portal.base);
    let signed = match portal.signed(&here) {
        Ok(signed) => signed,
        Err(page) => return page,
    };
    let caller = portal.caller(&signed);
    let me = signed.user;
    let lead = match caller.readable_lead(&state, LeadId(id)).await {
        Ok(lead) => lead,
        Err(_) => return failure(StatusCode::NOT_FOUND, portal.lang, "not_found"),
    };
    let page = match lead_context(&state, &portal, &caller, me, id, lead).await {
        Ok(page) => page,
        Err(e) => return api_failure(portal.lang, &e),
    };
    let title = page
        .get_attr("title")
        .ok()
        .map(|t| t.to_string())
        .unwrap_or_default();
    let (notice, error) = portal.outcome(outcome.done.as_deref(), outcome.error.as_deref());
    portal.render(
        StatusCode::OK,
        "lead.html",
        &title,
        context! { lead => page, notice => notice, error => error },
    )
}

/// The lead page's context: state, fields as `me` may see them, offer, queue, history.
async fn lead_context(
    state: &ApiState,
    portal: &Portal,
    caller: &Caller,
    me: PartnerUserId,
    id: Uuid,
    lead: Lead,
) -> Result<Value, ApiError> {
    let my_queues = queries::member_queues(&state.pool, portal.org, me).await?;
    let (lead_state, queue) = match lead.owner {
        Some(Owner::PartnerUser(owner)) if owner == me && lead.accepted => (status::ACCEPTED, None),
        Some(Owner::PartnerUser(_)) => (status::OFFERED, None),
        Some(Owner::Queue(queue)) => {
            let name = state.commands.state::<Queue>(portal.org, queue).await?.name;
            (
                queries::CLAIMABLE,
                Some(context! { id => queue.0.to_string(), name => name }),
            )
        }
        _ => (status::OFFERED, None),
    };
    let fields = caller.visible_fields(state).await?;
    let shown = fields
        .of(lead_state == status::ACCEPTED)
        .apply(serde_json::to_value(&lead.fields).unwrap_or_default());
    let (title, _) = title_and_summary(&shown, id, portal.lang);
    let field_list: Vec<Value> = shown
        .as_object()
        .map(|map| {
            map.iter()
                .map(|(name, value)| context! { name => name, value => field_text(value) })
                .collect()
        })
        .unwrap_or_default();
    let deadline = lead.offer.as_ref().and_then(|offer| offer.deadline);
    let seconds_left = deadline.map(|d| (d - Utc::now()).num_milliseconds() as f64 / 1000.0);
    let reasons: Vec<Value> = portal
        .org_state
        .workflow
        .decline_reasons
        .iter()
        .map(|code| {
            let key = format!("reason.{code}");
            let label = if i18n::known(&key) {
                portal.t(&key)
            } else {
                code.replace('_', " ")
            };
            context! { code => code, label => label }
        })
        .collect();
    let history = queries::ownership_history(&state.pool, portal.org, LeadId(id))
        .await?
        .unwrap_or_default()
        .into_iter()
        .map(|row| {
            let from = row
                .from_kind
                .as_deref()
                .zip(row.from_id)
                .and_then(|(kind, id)| owner_from_columns(kind, id));
            let to = row
                .to_kind
                .as_deref()
                .zip(row.to_id)
                .and_then(|(kind, id)| owner_from_columns(kind, id));
            let cause_key = format!("cause.{}", row.cause);
            let cause = if i18n::known(&cause_key) {
                portal.t(&cause_key)
            } else {
                row.cause.clone()
            };
            let text = portal
                .t("history.line")
                .replace("{from}", &owner_text(portal, me, from, &my_queues))
                .replace("{to}", &owner_text(portal, me, to, &my_queues))
                .replace("{cause}", &cause);
            context! { at => row.changed_at.to_rfc3339(), text => text }
        })
        .collect::<Vec<_>>();
    Ok(context! {
        id => id.to_string(),
        title => title,
        state => lead_state,
        fields => field_list,
        deadline => deadline.map(|d| d.to_rfc3339()),
        seconds_left => seconds_left,
        queue => queue,
        reasons => reasons,
        history => history,
    })
}

/// A signed-in post: the portal, the user, the body read as `T` with its CSRF checked.
async fn signed_post<T: DeserializeOwned>(
    state: &ApiState,
    org: &str,
    here: impl FnOnce(&str) -> String,
    headers: &HeaderMap,
    body: &Bytes,
    csrf: impl FnOnce(&T) -> &str,
) -> Result<(Portal, T), Page> {
    let mut portal = Portal::open(state, org, headers).await?;
    let here = here(&portal.base);
    portal.signed(&here)?;
    let form: T = match form(body) {
        Some(form) => form,
        None => return Err(portal.csrf_failed()),
    };
    if !portal.csrf_ok(headers, csrf(&form)) {
        return Err(portal.csrf_failed());
    }
    Ok((portal, form))
}

/// After a command on a lead: back to `to` with the notice, or to the lead page with the
/// refusal's message (an unknown or hidden lead: the not-found page).
fn after_command(
    portal: &mut Portal,
    id: Uuid,
    done: Result<(), AppError>,
    to: String,
    notice: &str,
) -> Page {
    match done {
        Ok(()) => portal.redirect(format!("{to}?done={notice}")),
        Err(AppError::NotFound { .. }) => failure(StatusCode::NOT_FOUND, portal.lang, "not_found"),
        Err(e @ AppError::Refused { .. }) => {
            let code = match e.code() {
                "not_in_queue" => return failure(StatusCode::NOT_FOUND, portal.lang, "not_found"),
                code => code,
            };
            portal.redirect(format!("{}/leads/{id}?error={code}", portal.base))
        }
        Err(e) => app_failure(portal.lang, &e),
    }
}

async fn accept(
    State(state): State<ApiState>,
    Path((org, id)): Path<(String, Uuid)>,
    headers: HeaderMap,
    body: Bytes,
) -> Page {
    let (mut portal, _) = match signed_post::<CsrfOnly>(
        &state,
        &org,
        |b| format!("{b}/leads/{id}"),
        &headers,
        &body,
        |f| &f.csrf,
    )
    .await
    {
        Ok(found) => found,
        Err(page) => return page,
    };
    let signed = portal
        .session
        .clone()
        .expect("signed_post checked the session");
    let caller = portal.caller(&signed);
    if caller.readable_lead(&state, LeadId(id)).await.is_err() {
        return failure(StatusCode::NOT_FOUND, portal.lang, "not_found");
    }
    let done = state
        .commands
        .accept_lead(&caller.meta(), portal.org, LeadId(id), signed.user)
        .await
        .map(|_| ());
    let to = format!("{}/leads/{id}", portal.base);
    after_command(&mut portal, id, done, to, "accepted")
}

#[derive(Deserialize)]
struct DeclineForm {
    #[serde(rename = "_csrf", default)]
    csrf: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    note: String,
}

async fn decline(
    State(state): State<ApiState>,
    Path((org, id)): Path<(String, Uuid)>,
    headers: HeaderMap,
    body: Bytes,
) -> Page {
    let (mut portal, form) = match signed_post::<DeclineForm>(
        &state,
        &org,
        |b| format!("{b}/leads/{id}"),
        &headers,
        &body,
        |f| &f.csrf,
    )
    .await
    {
        Ok(found) => found,
        Err(page) => return page,
    };
    let signed = portal
        .session
        .clone()
        .expect("signed_post checked the session");
    let caller = portal.caller(&signed);
    if caller.readable_lead(&state, LeadId(id)).await.is_err() {
        return failure(StatusCode::NOT_FOUND, portal.lang, "not_found");
    }
    let decline = Decline {
        by: signed.user,
        reason: form.reason,
        note: Some(form.note).filter(|note| !note.trim().is_empty()),
    };
    let done = state
        .router
        .decline_lead(&caller.meta(), portal.org, LeadId(id), &decline)
        .await
        .map(|_| ());
    let to = format!("{}/", portal.base);
    after_command(&mut portal, id, done, to, "declined")
}

#[derive(Deserialize)]
struct ClaimForm {
    #[serde(rename = "_csrf", default)]
    csrf: String,
    queue_id: Uuid,
}

async fn claim(
    State(state): State<ApiState>,
    Path((org, id)): Path<(String, Uuid)>,
    headers: HeaderMap,
    body: Bytes,
) -> Page {
    let (mut portal, form) = match signed_post::<ClaimForm>(
        &state,
        &org,
        |b| format!("{b}/leads/{id}"),
        &headers,
        &body,
        |f| &f.csrf,
    )
    .await
    {
        Ok(found) => found,
        Err(page) => return page,
    };
    let signed = portal
        .session
        .clone()
        .expect("signed_post checked the session");
    let queue = QueueId(form.queue_id);
    let member = match state.commands.state::<Queue>(portal.org, queue).await {
        Ok(queue) => queue.has_member(signed.user, signed.account),
        Err(_) => false,
    };
    if !member {
        return failure(StatusCode::NOT_FOUND, portal.lang, "not_found");
    }
    let meta = portal.caller(&signed).meta();
    let done = state
        .commands
        .claim_lead(&meta, portal.org, LeadId(id), queue, signed.user)
        .await
        .map(|_| ());
    let to = format!("{}/leads/{id}", portal.base);
    after_command(&mut portal, id, done, to, "claimed")
}

// ----- availability and settings ----------------------------------------------------------

async fn settings_page(
    State(state): State<ApiState>,
    Path(org): Path<String>,
    Query(outcome): Query<Outcome>,
    headers: HeaderMap,
) -> Page {
    let mut portal = match Portal::open(&state, &org, &headers).await {
        Ok(portal) => portal,
        Err(page) => return page,
    };
    let here = format!("{}/settings", portal.base);
    let signed = match portal.signed(&here) {
        Ok(signed) => signed,
        Err(page) => return page,
    };
    let now = Utc::now();
    let user = signed.state.clone();
    let paused = user.paused_at(now);
    let availability = match (paused, user.paused_until) {
        (false, _) => portal.t("availability.available"),
        (true, None) => portal.t("availability.paused"),
        (true, Some(until)) => portal
            .t("availability.paused_until")
            .replace("{date}", &render::when(until, &portal.zone)),
    };
    let chosen_language = user.preferences.language.map(Language::tag);
    let zones: Vec<&str> = chrono_tz::TZ_VARIANTS.iter().map(|z| z.name()).collect();
    let today = now.with_timezone(&portal.zone).date_naive().to_string();
    let (notice, error) = portal.outcome(outcome.done.as_deref(), outcome.error.as_deref());
    let title = portal.t("settings.title");
    portal.render(
        StatusCode::OK,
        "settings.html",
        &title,
        context! {
            page => "settings", paused => paused, availability => availability,
            chosen_language => chosen_language, zones => zones, today => today,
            notice => notice, error => error,
        },
    )
}

/// After a settings command: back to the settings page with the notice or the error.
fn after_setting(portal: &mut Portal, done: Result<(), AppError>, notice: &str) -> Page {
    let base = format!("{}/settings", portal.base);
    match done {
        Ok(()) => portal.redirect(format!("{base}?done={notice}")),
        Err(e @ AppError::Refused { .. }) => portal.redirect(format!("{base}?error={}", e.code())),
        Err(e) => app_failure(portal.lang, &e),
    }
}

#[derive(Deserialize)]
struct PauseForm {
    #[serde(rename = "_csrf", default)]
    csrf: String,
    #[serde(default)]
    until: String,
}

async fn pause(
    State(state): State<ApiState>,
    Path(org): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Page {
    let (mut portal, form) = match signed_post::<PauseForm>(
        &state,
        &org,
        |b| format!("{b}/settings"),
        &headers,
        &body,
        |f| &f.csrf,
    )
    .await
    {
        Ok(found) => found,
        Err(page) => return page,
    };
    let signed = portal
        .session
        .clone()
        .expect("signed_post checked the session");
    // Back on that date: the pause ends at its first moment in the reader's zone.
    let until = match form.until.trim() {
        "" => None,
        date => match date
            .parse::<NaiveDate>()
            .ok()
            .filter(|d| d.year_ce().1 < 10_000)
            .and_then(|d| {
                portal
                    .zone
                    .from_local_datetime(&d.and_hms_opt(0, 0, 0)?)
                    .earliest()
            }) {
            Some(at) => Some(at.with_timezone(&Utc)),
            None => {
                let base = format!("{}/settings?error=invalid_date", portal.base);
                return portal.redirect(base);
            }
        },
    };
    let (org, user, meta) = (portal.org, signed.user, portal.caller(&signed).meta());
    let done = state
        .commands
        .pause_auto_assignment(&meta, org, user, until)
        .await
        .map(|_| ());
    after_setting(&mut portal, done, "paused")
}

async fn resume(
    State(state): State<ApiState>,
    Path(org): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Page {
    let (mut portal, _) = match signed_post::<CsrfOnly>(
        &state,
        &org,
        |b| format!("{b}/settings"),
        &headers,
        &body,
        |f| &f.csrf,
    )
    .await
    {
        Ok(found) => found,
        Err(page) => return page,
    };
    let signed = portal
        .session
        .clone()
        .expect("signed_post checked the session");
    let (org, user, meta) = (portal.org, signed.user, portal.caller(&signed).meta());
    let done = state
        .commands
        .resume_auto_assignment(&meta, org, user)
        .await
        .map(|_| ());
    after_setting(&mut portal, done, "resumed")
}

#[derive(Deserialize)]
struct PreferencesForm {
    #[serde(rename = "_csrf", default)]
    csrf: String,
    #[serde(default)]
    language: String,
    #[serde(default)]
    time_zone: String,
}

async fn preferences(
    State(state): State<ApiState>,
    Path(org): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Page {
    let (mut portal, form) = match signed_post::<PreferencesForm>(
        &state,
        &org,
        |b| format!("{b}/settings"),
        &headers,
        &body,
        |f| &f.csrf,
    )
    .await
    {
        Ok(found) => found,
        Err(page) => return page,
    };
    let signed = portal
        .session
        .clone()
        .expect("signed_post checked the session");
    let preferences = Preferences {
        language: Language::of_tag(&form.language),
        time_zone: Some(form.time_zone.trim().to_string())
            .filter(|zone| !zone.is_empty() && zone.len() <= 64),
    };
    let (org, user, meta) = (portal.org, signed.user, portal.caller(&signed).meta());
    let done = state
        .commands
        .set_preferences(&meta, org, user, preferences)
        .await
        .map(|_| ());
    after_setting(&mut portal, done, "saved")
}

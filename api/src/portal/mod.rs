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
//! - this file: routes, the per-request [`Portal`] context, answers and failure pages;
//! - the pages: `access` (sign in and out, passwords), `inbox`, `lead`, `settings`;
//! - `session`: cookies and CSRF; `i18n`: words and language choice; `render`: templates,
//!   filters and assets.

mod access;
mod i18n;
mod inbox;
mod lead;
mod render;
mod session;
mod settings;

use crate::caller::Caller;
use crate::problem::ApiError;
use crate::state::ApiState;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use leadroute_app::access::Principal;
use leadroute_app::AppError;
use leadroute_domain::ids::{OrgId, PartnerAccountId, PartnerUserId};
use leadroute_domain::org::Org;
use leadroute_domain::partner_user::{Language, PartnerUser};
use minijinja::{context, Value};
use serde::de::DeserializeOwned;
use serde::Deserialize;

pub(crate) use session::SESSION_COOKIE;

/// The portal's routes (merged into the API's router).
pub(crate) fn router() -> Router<ApiState> {
    Router::new()
        .route("/assets/{file}", get(asset))
        .route("/p/{org}", get(to_inbox))
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
        None => StatusCode::NOT_FOUND.into_response(),
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

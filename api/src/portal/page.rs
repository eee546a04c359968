//! What every page shares: the per-request [`Portal`] context (org, session, language,
//! time zone, CSRF token), the answers ([`Page`]: a document or a redirect, with cookies),
//! the failure pages, form reading with its CSRF check, the security headers, and the
//! embedded assets.

use super::{i18n, render, session};
use crate::caller::Caller;
use crate::problem::ApiError;
use crate::state::ApiState;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use leadroute_app::access::Principal;
use leadroute_app::AppError;
use leadroute_domain::ids::{OrgId, PartnerAccountId, PartnerUserId};
use leadroute_domain::org::Org;
use leadroute_domain::partner_user::{Language, PartnerUser};
use minijinja::{context, Value};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use session::SESSION_COOKIE;

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
pub(super) struct Signed {
    pub(super) user: PartnerUserId,
    pub(super) account: PartnerAccountId,
    pub(super) token: String,
    pub(super) state: PartnerUser,
}

/// What every portal request knows: the org, the language and time zone, the session,
/// the CSRF token of its forms.
pub(super) struct Portal {
    pub(super) org: OrgId,
    pub(super) org_state: Org,
    /// `/p/<slug or id>`.
    pub(super) base: String,
    pub(super) lang: Language,
    pub(super) zone: chrono_tz::Tz,
    pub(super) session: Option<Signed>,
    /// The token the page's forms carry.
    pub(super) csrf: String,
    /// Cookies to set with the answer.
    pub(super) cookies: Vec<HeaderValue>,
    pub(super) secure_cookies: bool,
}

/// A page that could not be served for the reader: not found, unavailable.
pub(super) fn failure(status: StatusCode, lang: Language, what: &str) -> Page {
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
pub(super) fn app_failure(lang: Language, error: &AppError) -> Page {
    match error {
        AppError::NotFound { .. } => failure(StatusCode::NOT_FOUND, lang, "not_found"),
        other => {
            tracing::warn!(error = %other, "a portal page failed");
            failure(StatusCode::SERVICE_UNAVAILABLE, lang, "unavailable")
        }
    }
}

/// The failure page of a read that failed: not found, or unavailable.
pub(super) fn api_failure(lang: Language, error: &ApiError) -> Page {
    match error.status_and_code().0 {
        StatusCode::NOT_FOUND => failure(StatusCode::NOT_FOUND, lang, "not_found"),
        _ => {
            tracing::warn!(error = %error, "a portal page failed");
            failure(StatusCode::SERVICE_UNAVAILABLE, lang, "unavailable")
        }
    }
}

impl Portal {
    /// Whether a form post passes the CSRF check (`session::csrf_ok`).
    pub(super) fn csrf_ok(&self, headers: &HeaderMap, given: &str) -> bool {
        session::csrf_ok(headers, given, &self.csrf)
    }

    /// The context of a request to `/p/<segment>/...`.
    pub(super) async fn open(
        state: &ApiState,
        segment: &str,
        headers: &HeaderMap,
    ) -> Result<Portal, Page> {
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
    pub(super) fn signed(&self, here: &str) -> Result<Signed, Page> {
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
    pub(super) fn caller(&self, signed: &Signed) -> Caller {
        Caller(Principal::Partner {
            org: self.org,
            user: signed.user,
            account: signed.account,
        })
    }

    pub(super) fn t(&self, key: &str) -> String {
        i18n::text(self.lang, key).to_string()
    }

    /// The message of a refusal's code (a generic one naming the code when unknown).
    pub(super) fn error_text(&self, code: &str) -> String {
        let key = format!("error.{code}");
        if i18n::known(&key) {
            self.t(&key)
        } else {
            self.t("error.generic").replace("{code}", code)
        }
    }

    /// The page `template` with `page` (its own context) and the common context.
    pub(super) fn render(
        &mut self,
        status: StatusCode,
        template: &str,
        title: &str,
        page: Value,
    ) -> Page {
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
    pub(super) fn message(
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
    pub(super) fn redirect(&mut self, to: String) -> Page {
        Page::Redirect {
            to,
            cookies: std::mem::take(&mut self.cookies),
        }
    }

    /// The CSRF failure page.
    pub(super) fn csrf_failed(&mut self) -> Page {
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
    pub(super) fn outcome(
        &self,
        done: Option<&str>,
        error: Option<&str>,
    ) -> (Option<String>, Option<String>) {
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
pub(super) fn form<T: DeserializeOwned>(body: &Bytes) -> Option<T> {
    serde_urlencoded::from_bytes(body).ok()
}

/// A form a signed-in page posts: it carries the page's CSRF token.
pub(super) trait Posted: DeserializeOwned {
    /// The token the form carried.
    fn csrf(&self) -> &str;
}

/// A post before sign-in (sign in, set password, forgot password): the portal and the body
/// read as `T` with its CSRF token checked.
pub(super) async fn anonymous_post<T: Posted>(
    state: &ApiState,
    org: &str,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<(Portal, T), Page> {
    let mut portal = Portal::open(state, org, headers).await?;
    let form: T = form(body).ok_or_else(|| portal.csrf_failed())?;
    if !portal.csrf_ok(headers, form.csrf()) {
        return Err(portal.csrf_failed());
    }
    Ok((portal, form))
}

/// Implement [`Posted`] for forms whose token is their `csrf` field.
macro_rules! posted {
    ($($form:ty),+) => {
        $(impl $crate::portal::page::Posted for $form {
            fn csrf(&self) -> &str {
                &self.csrf
            }
        })+
    };
}
pub(super) use posted;

/// A signed-in post to `<portal>{here}`: the portal, the user, and the body read as `T`
/// with its CSRF token checked (signed out: the sign-in page, back to `here` afterwards).
pub(super) async fn signed_post<T: Posted>(
    state: &ApiState,
    org: &str,
    here: &str,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<(Portal, Signed, T), Page> {
    let mut portal = Portal::open(state, org, headers).await?;
    let signed = portal.signed(&format!("{}{here}", portal.base))?;
    let form: T = form(body).ok_or_else(|| portal.csrf_failed())?;
    if !portal.csrf_ok(headers, form.csrf()) {
        return Err(portal.csrf_failed());
    }
    Ok((portal, signed, form))
}

/// A form with only its CSRF token.
#[derive(Deserialize)]
pub(super) struct CsrfOnly {
    #[serde(rename = "_csrf", default)]
    pub(super) csrf: String,
}

posted!(CsrfOnly);

/// The notice or error of the page a post redirected to.
#[derive(Deserialize, Default)]
pub(super) struct Outcome {
    pub(super) done: Option<String>,
    pub(super) error: Option<String>,
}

/// `GET /assets/{file}`: an embedded asset by its hashed name, cached for a year.
pub(super) async fn asset(Path(file): Path<String>) -> Response {
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

pub(super) async fn to_inbox(
    State(state): State<ApiState>,
    Path(org): Path<String>,
    headers: HeaderMap,
) -> Result<Page, Page> {
    match Portal::open(&state, &org, &headers).await {
        Ok(mut portal) => {
            let to = format!("{}/", portal.base);
            Ok(portal.redirect(to))
        }
        Err(page) => Ok(page),
    }
}

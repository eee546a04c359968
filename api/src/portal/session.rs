//! Browser sessions of the portal: the session token in an HttpOnly, SameSite=Lax cookie
//! (the same sessions as bearer tokens, so deactivating a user or their account ends them
//! at once), and CSRF protection on every form post: the request must come from this
//! origin (`Origin` / `Sec-Fetch-Site`), and carry the form's token, derived from the
//! session (signed in) or matching a SameSite=Strict cookie (sign-in, set-password and
//! forgot-password forms).

use axum::http::header::{COOKIE, HOST, ORIGIN};
use axum::http::{HeaderMap, HeaderValue};

/// The session cookie.
pub const SESSION_COOKIE: &str = "lr_session";
/// The CSRF cookie of forms shown before sign-in.
pub const CSRF_COOKIE: &str = "lr_csrf";

/// The value of cookie `name`, if the request carries it.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim().to_string())
        .filter(|value| !value.is_empty() && value.len() <= 256)
}

/// A `Set-Cookie` value: HttpOnly always; `Secure` when the service is served over TLS;
/// `max_age` 0 deletes it.
pub fn set_cookie(
    name: &str,
    value: &str,
    same_site: &str,
    max_age: u64,
    secure: bool,
) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; HttpOnly; SameSite={same_site}; Max-Age={max_age}{secure}"
    ))
    .expect("cookie values are tokens")
}

/// The CSRF token of a signed-in session's forms.
pub fn session_csrf(token: &str) -> String {
    let digest = ring::digest::digest(
        &ring::digest::SHA256,
        format!("leadroute-portal-csrf:{token}").as_bytes(),
    );
    hex(&digest.as_ref()[..16])
}

/// A fresh random token (for the pre-sign-in CSRF cookie).
pub fn random_token() -> String {
    let mut bytes = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .expect("the system has randomness");
    hex(&bytes)
}

/// Whether two tokens are equal, in time that does not depend on where they differ.
fn equal(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether a form post comes from a page of this origin: no cross-site fetch metadata, and
/// an `Origin` (when sent) naming this host.
pub fn same_origin(headers: &HeaderMap) -> bool {
    let site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    if matches!(site, Some("cross-site" | "same-site")) {
        return false;
    }
    let Some(origin) = headers.get(ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers.get(HOST).and_then(|v| v.to_str().ok());
    let origin_host = origin
        .split_once("://")
        .map(|(_, rest)| rest.trim_end_matches('/'));
    origin_host.is_some() && origin_host == host
}

/// Whether a form post passes the CSRF check (see the module docs): same origin, and
/// `given` equal to `expected`.
pub fn csrf_ok(headers: &HeaderMap, given: &str, expected: &str) -> bool {
    let origin = same_origin(headers);
    let token = !given.is_empty() && equal(given.as_bytes(), expected.as_bytes());
    if !(origin && token) {
        tracing::debug!(
            same_origin = origin,
            token_matches = token,
            "a portal form post failed its CSRF check"
        );
    }
    origin && token
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, HeaderValue::from_static(value));
        }
        headers
    }

    #[test]
    fn a_cookie_is_found_among_others() {
        let h = headers(&[("cookie", "a=1; lr_session=lrs_abc ; b=2")]);
        assert_eq!(cookie(&h, "lr_session").as_deref(), Some("lrs_abc"));
        assert_eq!(cookie(&h, "lr_csrf"), None);
        assert_eq!(
            cookie(&headers(&[("cookie", "lr_session=")]), "lr_session"),
            None
        );
    }

    #[test]
    fn a_post_from_another_site_is_not_same_origin() {
        assert!(same_origin(&headers(&[("host", "portal.example")])));
        assert!(same_origin(&headers(&[
            ("host", "portal.example"),
            ("origin", "https://portal.example"),
            ("sec-fetch-site", "same-origin"),
        ])));
        assert!(!same_origin(&headers(&[
            ("host", "portal.example"),
            ("origin", "https://evil.example"),
        ])));
        assert!(!same_origin(&headers(&[
            ("host", "portal.example"),
            ("sec-fetch-site", "cross-site"),
        ])));
        assert!(!same_origin(&headers(&[
            ("host", "portal.example"),
            ("origin", "null")
        ])));
    }

    #[test]
    fn the_session_csrf_token_depends_on_the_session() {
        assert_eq!(session_csrf("lrs_a"), session_csrf("lrs_a"));
        assert_ne!(session_csrf("lrs_a"), session_csrf("lrs_b"));
        assert_eq!(session_csrf("lrs_a").len(), 32);
    }
}

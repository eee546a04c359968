//! Extractors that report bad input as `validation_failed` naming the field (`body.to.id`,
//! `query.at`, `path`), instead of axum's plain-text rejections. Bodies are strict JSON
//! objects ([`leadroute_app::input`]): no NUL or control characters, no repeated keys, bounded depth.

use super::problem::ApiError;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

/// A JSON body (an empty body reads as `{}`).
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| match e.status() {
                axum::http::StatusCode::PAYLOAD_TOO_LARGE => ApiError::TooLarge,
                _ => ApiError::invalid("body", e.body_text()),
            })?;
        // An empty body is an empty object: commands whose fields are all optional may be
        // sent without one.
        let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            &bytes
        };
        let value =
            leadroute_app::input::parse(bytes).map_err(|fault| match fault.path.as_str() {
                "" => ApiError::invalid("body", fault.message),
                path => ApiError::invalid(format!("body.{path}"), fault.message),
            })?;
        // Every body is an object: serde would read an array positionally into a struct.
        if !value.is_object() {
            return Err(ApiError::invalid("body", "the body must be a JSON object"));
        }
        serde_path_to_error::deserialize(value)
            .map(Json)
            .map_err(|e| named("body", e.path().to_string(), e.into_inner().to_string()))
    }
}

/// The client's address, for throttling: the connection's peer, or the first
/// `X-Forwarded-For` address when the API is configured to trust its proxy
/// (`--trust-forwarded-for`). `None` when neither is known.
pub struct ClientIp(pub Option<std::net::IpAddr>);

impl FromRequestParts<crate::state::ApiState> for ClientIp {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &crate::state::ApiState,
    ) -> Result<Self, Self::Rejection> {
        let forwarded = state
            .trust_forwarded_for
            .then(|| parts.headers.get("x-forwarded-for")?.to_str().ok())
            .flatten()
            .and_then(|list| list.split(',').next()?.trim().parse().ok());
        let peer = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|info| info.0.ip());
        Ok(ClientIp(forwarded.or(peer)))
    }
}

/// Query-string parameters.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(de)
            .map(Query)
            .map_err(|e| named("query", e.path().to_string(), e.into_inner().to_string()))
    }
}

/// Path parameters.
pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(value)| Path(value))
            .map_err(|e| ApiError::invalid("path", e.body_text()))
    }
}

/// A validation error at `path` below `root`; a missing field names itself in the message.
fn named(root: &str, path: String, message: String) -> ApiError {
    let field = match path.as_str() {
        "." => match message
            .strip_prefix("missing field `")
            .and_then(|rest| rest.split('`').next())
        {
            Some(name) => format!("{root}.{name}"),
            None => root.to_string(),
        },
        path => format!("{root}.{path}"),
    };
    ApiError::invalid(field, explain_time(message))
}

/// The time parser's own words ("input contains invalid characters") say what is wrong,
/// not what is expected: a message of it gets the expected form added.
fn explain_time(message: String) -> String {
    const TIME_FAULTS: [&str; 5] = [
        "input contains invalid characters",
        "premature end of input",
        "trailing input",
        "input is out of range",
        "input is not enough for unique date and time",
    ];
    if TIME_FAULTS.iter().any(|fault| message.contains(fault)) {
        format!("{message}: expected an RFC 3339 time such as 2026-11-30T08:00:00Z")
    } else {
        message
    }
}

#[cfg(test)]
mod tests {
    use super::named;
    use crate::problem::ApiError;

    fn field(error: ApiError) -> Option<String> {
        match error {
            ApiError::Validation { field, .. } => field,
            _ => None,
        }
    }

    #[test]
    fn a_bad_time_says_which_form_is_expected() {
        let error = named(
            "query",
            "at".into(),
            "input contains invalid characters".into(),
        );
        match error {
            ApiError::Validation { field, message } => {
                assert_eq!(field.as_deref(), Some("query.at"));
                assert!(message.contains("RFC 3339"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn names_the_field_at_fault() {
        assert_eq!(
            field(named("body", "to.id".into(), "bad uuid".into())).as_deref(),
            Some("body.to.id")
        );
        assert_eq!(
            field(named("body", ".".into(), "missing field `name`".into())).as_deref(),
            Some("body.name")
        );
        assert_eq!(
            field(named("query", ".".into(), "trailing input".into())).as_deref(),
            Some("query")
        );
    }
}

//! The HTTP edge's one error type: every failure answers `application/problem+json`
//! (RFC 9457) with a stable machine `code`, a human `detail` and, for bad input, the
//! `field` at fault. Server-side failures are logged once, here, and never leak details.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use leadroute_app::access::AccessError;
use leadroute_app::AppError;
use leadroute_domain::RefusalKind;
use leadroute_store::schema::{sql_class, SqlClass};
use serde::Serialize;

/// The body of every error response.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// `urn:leadroute:problem:<code>`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short summary of the status.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// Stable machine code (`never_signed_in`, `validation_failed`, ...).
    pub code: String,
    /// What went wrong, for a human.
    pub detail: String,
    /// The request field at fault, for bad input.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// A failed request.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No, or an unknown, bearer token.
    #[error("{0}")]
    Unauthenticated(&'static str),
    /// The caller's role may not do this.
    #[error("{0}")]
    Forbidden(&'static str),
    /// The request body is larger than the API accepts.
    #[error("the request body is larger than 1 MiB")]
    TooLarge,
    /// The request target is longer than the API reads.
    #[error("the request target (path and query) is longer than 8 KiB")]
    UriTooLong,
    /// An answer a layer outside the handlers decided (body timeout, handler timeout, ...),
    /// given a problem body.
    #[error("{}", status_detail(*.0))]
    Status(StatusCode),
    /// The route exists, but not with this method.
    #[error("this route does not accept that method")]
    MethodNotAllowed,
    /// Not found, or not visible to the caller (the same answer, so nothing leaks).
    #[error("{what} {id} not found")]
    NotFound {
        /// Stable code (`lead_not_found`).
        code: &'static str,
        /// Kind of resource.
        what: &'static str,
        /// Id as given.
        id: String,
    },
    /// Bad input; names the field.
    #[error("{message}")]
    Validation {
        /// The field at fault (`body.to.id`, `query.at`), if known.
        field: Option<String>,
        /// What is wrong.
        message: String,
    },
    /// A projection has not reached the position the client asked for.
    #[error("the {projection} projection has not reached position {position} yet; retry shortly")]
    ProjectionBehind {
        /// The projection that is behind.
        projection: String,
        /// The position asked for.
        position: String,
    },
    /// Another request with the same idempotency key is running or was different.
    #[error("{message}")]
    Idempotency {
        /// `idempotency_key_in_flight` or `idempotency_key_reused`.
        code: &'static str,
        /// What happened.
        message: &'static str,
    },
    /// A part of the service this process does not run (answered 503 with `code`).
    #[error("{message}")]
    Unavailable {
        /// Stable code (`stream_unavailable`).
        code: &'static str,
        /// What is missing.
        message: &'static str,
    },
    /// A command or lookup failed.
    #[error(transparent)]
    App(#[from] AppError),
    /// Authentication or a credential change failed.
    #[error(transparent)]
    Access(#[from] AccessError),
    /// A read failed.
    #[error("read model error: {0}")]
    Read(#[from] sqlx::Error),
}

impl ApiError {
    /// A bad value in `field`.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::Validation {
            field: Some(field.into()),
            message: message.into(),
        }
    }

    /// The resource is missing or not the caller's to see.
    pub fn not_found(code: &'static str, what: &'static str, id: impl ToString) -> Self {
        ApiError::NotFound {
            code,
            what,
            id: id.to_string(),
        }
    }

    /// Status and stable code.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::Unauthenticated(_) => (StatusCode::UNAUTHORIZED, "unauthenticated"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::NotFound { code, .. } => (StatusCode::NOT_FOUND, code),
            ApiError::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            ApiError::UriTooLong => (StatusCode::URI_TOO_LONG, "uri_too_long"),
            ApiError::Status(status) => (*status, status_code_name(*status)),
            ApiError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            ApiError::Validation { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
            ApiError::ProjectionBehind { .. } => {
                (StatusCode::SERVICE_UNAVAILABLE, "projection_behind")
            }
            ApiError::Idempotency { code, .. } => (StatusCode::CONFLICT, code),
            ApiError::Unavailable { code, .. } => (StatusCode::SERVICE_UNAVAILABLE, code),
            ApiError::App(e) => (app_status(e), e.code()),
            ApiError::Access(AccessError::App(e)) => (app_status(e), e.code()),
            ApiError::Access(e @ AccessError::InvalidCredentials) => {
                (StatusCode::UNAUTHORIZED, e.code())
            }
            ApiError::Access(
                e @ (AccessError::PasswordTooShort | AccessError::PasswordTooLong),
            ) => (StatusCode::UNPROCESSABLE_ENTITY, e.code()),
            ApiError::Access(e @ (AccessError::EmailInUse | AccessError::LastAdminKey)) => {
                (StatusCode::CONFLICT, e.code())
            }
            ApiError::Access(e @ AccessError::InvitationInvalid) => {
                (StatusCode::NOT_FOUND, e.code())
            }
            ApiError::Access(e @ (AccessError::Store(_) | AccessError::Busy)) => {
                (StatusCode::SERVICE_UNAVAILABLE, e.code())
            }
            ApiError::Access(e @ AccessError::Throttled(_)) => {
                (StatusCode::TOO_MANY_REQUESTS, e.code())
            }
            ApiError::Access(e) => (StatusCode::GONE, e.code()),
            // A value the database cannot take (a date out of its range, ...): the input's
            // fault, not the store's.
            ApiError::Read(e) if sql_class(e) == SqlClass::Data => {
                (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed")
            }
            ApiError::Read(_) => (StatusCode::SERVICE_UNAVAILABLE, "store_unavailable"),
        }
    }

    fn field(&self) -> Option<String> {
        match self {
            ApiError::Validation { field, .. } => field.clone(),
            ApiError::Access(AccessError::PasswordTooShort | AccessError::PasswordTooLong) => {
                Some("body.password".into())
            }
            // Domain refusals of one request field: the field their command came from.
            ApiError::App(leadroute_app::AppError::Refused { code, .. }) => match *code {
                "invalid_cap" => Some("body.cap".into()),
                "invalid_weight" => Some("body.weight".into()),
                "pause_ends_in_past" => Some("body.until".into()),
                _ => None,
            },
            _ => None,
        }
    }
}

/// The stable code of an answer written outside the handlers.
fn status_code_name(status: StatusCode) -> &'static str {
    match status {
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::REQUEST_TIMEOUT => "request_timeout",
        StatusCode::SERVICE_UNAVAILABLE => "timeout",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::NOT_FOUND => "route_not_found",
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => "headers_too_large",
        s if s.is_server_error() => "server_error",
        _ => "bad_request",
    }
}

/// What an answer written outside the handlers means, for a human.
fn status_detail(status: StatusCode) -> &'static str {
    match status {
        StatusCode::PAYLOAD_TOO_LARGE => "the request body is larger than 1 MiB",
        StatusCode::REQUEST_TIMEOUT => "the request body did not arrive in time",
        StatusCode::SERVICE_UNAVAILABLE => "the request took too long to answer; retry later",
        _ => "the request could not be handled",
    }
}

/// A refusal answers by its kind; a missing resource 404, a lost race 409, a store failure
/// 503.
fn app_status(error: &AppError) -> StatusCode {
    match error {
        AppError::Refused { kind, .. } => match kind {
            RefusalKind::InvalidInput => StatusCode::UNPROCESSABLE_ENTITY,
            RefusalKind::NotFound => StatusCode::NOT_FOUND,
            RefusalKind::Conflict => StatusCode::CONFLICT,
            RefusalKind::Forbidden => StatusCode::FORBIDDEN,
        },
        AppError::NotFound { .. } => StatusCode::NOT_FOUND,
        AppError::Conflict { .. } => StatusCode::CONFLICT,
        AppError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let retry_after = match &self {
            ApiError::Access(AccessError::Throttled(wait)) => wait.as_secs().max(1),
            _ => 1,
        };
        let detail = match &self {
            // Expected under load and answered for the client to retry: not worth a warning.
            ApiError::ProjectionBehind { .. }
            | ApiError::Access(AccessError::Busy)
            | ApiError::Unavailable { .. } => {
                tracing::debug!(code, error = %self, "request answered for a retry");
                self.to_string()
            }
            _ if status.is_server_error() => {
                tracing::error!(code, error = %self, "request failed");
                "the service could not complete the request; retry later".to_string()
            }
            _ => self.to_string(),
        };
        let problem = Problem {
            kind: format!("urn:leadroute:problem:{code}"),
            title: status.canonical_reason().unwrap_or("Error").to_string(),
            status: status.as_u16(),
            code: code.to_string(),
            detail,
            field: self.field(),
        };
        let mut response = (status, axum::Json(problem)).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if status == StatusCode::SERVICE_UNAVAILABLE || status == StatusCode::TOO_MANY_REQUESTS {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
        }
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: &'static str, kind: RefusalKind) -> StatusCode {
        ApiError::App(AppError::refusal(code, kind, "refused"))
            .status_and_code()
            .0
    }

    #[test]
    fn a_refusal_answers_by_its_kind_whatever_its_code_says() {
        assert_eq!(
            status("looks_like_not_found", RefusalKind::InvalidInput),
            StatusCode::UNPROCESSABLE_ENTITY
        );
        assert_eq!(
            status("invalid_but_a_conflict", RefusalKind::Conflict),
            StatusCode::CONFLICT
        );
        assert_eq!(status("gone", RefusalKind::NotFound), StatusCode::NOT_FOUND);
        assert_eq!(
            status("never_allowed", RefusalKind::Forbidden),
            StatusCode::FORBIDDEN
        );
    }
}

//! The application layer's one error type: a domain refusal with its stable code, a missing
//! (or other-org) resource, an exhausted conflict retry, or a store failure.

use cqrs_es::AggregateError;
use leadroute_domain::{Refusal, RefusalKind};
use leadroute_store::schema::{sql_class, SqlClass};

/// Stable codes of the refusals the application layer makes itself (the domain's are
/// declared with their errors).
pub mod codes {
    /// The store refuses the value for good (a data exception or program limit).
    pub const UNSTORABLE_INPUT: &str = "unstorable_input";
    /// An event larger than any reader can carry.
    pub const EVENT_TOO_LARGE: &str = "event_too_large";
    /// Bad input found by the application layer.
    pub const VALIDATION_FAILED: &str = "validation_failed";
    /// An idempotency key names another request.
    pub const IDEMPOTENCY_KEY_REUSED: &str = "idempotency_key_reused";
    /// A claim lost to another member.
    pub const ALREADY_CLAIMED: &str = "already_claimed";
}

/// Why a command did not commit.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// A domain rule refused the command; `code` is stable (`never_signed_in`), `kind`
    /// says how an edge answers it.
    #[error("{message}")]
    Refused {
        /// Stable machine code of the rule.
        code: &'static str,
        /// What the refusal says about the command.
        kind: RefusalKind,
        /// Human message.
        message: String,
    },
    /// A referenced resource does not exist in the caller's org.
    #[error("{what} {id} not found")]
    NotFound {
        /// Stable code (`lead_not_found`), the same the domain uses for a missing aggregate.
        code: &'static str,
        /// Kind of resource (`lead`, `contact`, ...).
        what: &'static str,
        /// Its id as given.
        id: String,
    },
    /// Optimistic-concurrency conflicts persisted after every retry.
    #[error("the {aggregate} kept changing concurrently; gave up after {attempts} attempts")]
    Conflict {
        /// Aggregate type.
        aggregate: &'static str,
        /// Attempts made.
        attempts: u32,
    },
    /// The event store failed (connection, deserialisation, unexpected).
    #[error("event store error: {0}")]
    Store(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl AppError {
    /// The stable code of this error, as an API or dead letter would report it.
    pub fn code(&self) -> &'static str {
        match self {
            AppError::Refused { code, .. } => code,
            AppError::NotFound { code, .. } => code,
            AppError::Conflict { .. } => "concurrent_modification",
            AppError::Store(_) => "store_unavailable",
        }
    }

    pub(crate) fn not_found(code: &'static str, what: &'static str, id: impl ToString) -> Self {
        AppError::NotFound {
            code,
            what,
            id: id.to_string(),
        }
    }
}

impl<E: Refusal + Send + Sync + 'static> From<AggregateError<E>> for AppError {
    fn from(error: AggregateError<E>) -> Self {
        match error {
            AggregateError::UserError(refusal) => refused(refusal),
            // One lost race; `commit` names the aggregate and `retry` counts the attempts.
            AggregateError::AggregateConflict => AppError::Conflict {
                aggregate: "aggregate",
                attempts: 1,
            },
            AggregateError::DatabaseConnectionError(e) | AggregateError::UnexpectedError(e) => {
                AppError::store(e)
            }
            AggregateError::DeserializationError(e) => AppError::Store(e),
        }
    }
}

impl AppError {
    /// A refusal the application layer makes itself (`code` from [`codes`]).
    pub fn refusal(code: &'static str, kind: RefusalKind, message: impl Into<String>) -> Self {
        AppError::Refused {
            code,
            kind,
            message: message.into(),
        }
    }

    /// A store failure as an application error: one that the input itself causes and that
    /// no retry can cure (PostgreSQL's data exceptions, SQLSTATE class 22, such as a NUL in
    /// text or a date out of range, and its program limits, class 54, such as an index row
    /// too large) is refused as `unstorable_input`; every other failure is transient.
    pub fn store(error: Box<dyn std::error::Error + Send + Sync>) -> AppError {
        match error.downcast::<sqlx::Error>() {
            Ok(e) => AppError::from(*e),
            Err(other) => AppError::Store(other),
        }
    }
}

impl From<leadroute_store::StoreError> for AppError {
    fn from(error: leadroute_store::StoreError) -> Self {
        use leadroute_store::StoreError;
        match error {
            StoreError::Conflict => AppError::Conflict {
                aggregate: "aggregate",
                attempts: 1,
            },
            too_large @ StoreError::TooLarge { .. } => AppError::refusal(
                codes::EVENT_TOO_LARGE,
                RefusalKind::InvalidInput,
                too_large.to_string(),
            ),
            StoreError::Database(e) => AppError::from(e),
            StoreError::Codec(message) => AppError::Store(message.into()),
        }
    }
}

impl From<sqlx::Error> for AppError {
    fn from(error: sqlx::Error) -> Self {
        match sql_class(&error) {
            SqlClass::Data | SqlClass::Limit => AppError::refusal(
                codes::UNSTORABLE_INPUT,
                RefusalKind::InvalidInput,
                format!("the input cannot be stored: {error}"),
            ),
            _ => AppError::Store(Box::new(error)),
        }
    }
}

/// A domain refusal as an application error.
pub(crate) fn refused(refusal: impl Refusal) -> AppError {
    let (code, kind) = refusal.describe();
    AppError::refusal(code, kind, refusal.to_string())
}

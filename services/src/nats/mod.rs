//! NATS JetStream plumbing: the subject and stream names (defined here once, under a
//! configurable prefix so tests and tenants of one server stay apart), connecting, and
//! creating the streams from code at start-up.
//!
//! Only features of NATS 2.9 are used (DESIGN.md): JetStream here is a transport, never the
//! system of record; the events table can always refill it.

pub mod publisher;

use async_nats::jetstream::{self, stream};
use std::time::Duration;
use uuid::Uuid;

/// How long JetStream remembers a `Nats-Msg-Id` to drop a republished duplicate.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

/// Why a NATS operation failed.
#[derive(Debug, thiserror::Error)]
pub enum NatsError {
    /// The prefix is not a single subject token.
    #[error("invalid NATS prefix {0:?}: use letters, digits, '-' and '_' only")]
    InvalidPrefix(String),
    /// Connecting failed.
    #[error("cannot connect to NATS at {url}: {source}")]
    Connect {
        /// The URL.
        url: String,
        /// Why.
        source: async_nats::ConnectError,
    },
    /// Creating or reading a stream failed.
    #[error("JetStream stream {stream}: {source}")]
    Stream {
        /// The stream.
        stream: String,
        /// Why.
        source: jetstream::context::CreateStreamError,
    },
}

/// Subject and stream names under one prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    prefix: String,
}

impl Names {
    /// Names under `prefix` (one subject token, e.g. `leadroute`).
    pub fn new(prefix: &str) -> Result<Names, NatsError> {
        let valid = !prefix.is_empty()
            && prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        valid
            .then(|| Names {
                prefix: prefix.to_string(),
            })
            .ok_or_else(|| NatsError::InvalidPrefix(prefix.to_string()))
    }

    /// The stream of published domain events.
    pub fn events_stream(&self) -> String {
        format!("{}_EVENTS", self.prefix.to_uppercase().replace('-', "_"))
    }

    /// Every subject of that stream: `<prefix>.<org>.events.>`.
    pub fn events_subjects(&self) -> String {
        format!("{}.*.events.>", self.prefix)
    }

    /// The subject of one event: `<prefix>.<org>.events.<aggregate type>.<event type>`
    /// (`_` for an event stored without an org).
    pub fn event_subject(
        &self,
        org: Option<Uuid>,
        aggregate_type: &str,
        event_type: &str,
    ) -> String {
        let org = org.map_or_else(|| "_".to_string(), |org| org.to_string());
        format!("{}.{org}.events.{aggregate_type}.{event_type}", self.prefix)
    }
}

/// Connect to `url` and return the JetStream context.
pub async fn connect(url: &str) -> Result<jetstream::Context, NatsError> {
    let client = async_nats::connect(url)
        .await
        .map_err(|source| NatsError::Connect {
            url: url.to_string(),
            source,
        })?;
    Ok(jetstream::new(client))
}

/// Create the events stream unless it exists (file storage, message-id dedupe window).
pub async fn ensure_events_stream(js: &jetstream::Context, names: &Names) -> Result<(), NatsError> {
    let config = stream::Config {
        name: names.events_stream(),
        subjects: vec![names.events_subjects()],
        storage: stream::StorageType::File,
        duplicate_window: DUPLICATE_WINDOW,
        ..Default::default()
    };
    js.get_or_create_stream(config)
        .await
        .map(|_| ())
        .map_err(|source| NatsError::Stream {
            stream: names.events_stream(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::Names;
    use uuid::Uuid;

    #[test]
    fn names_are_derived_from_one_prefix() {
        let names = Names::new("lr-test_1").unwrap();
        assert_eq!(names.events_stream(), "LR_TEST_1_EVENTS");
        assert_eq!(names.events_subjects(), "lr-test_1.*.events.>");
        let org = Uuid::nil();
        assert_eq!(
            names.event_subject(Some(org), "Lead", "LeadReassigned"),
            format!("lr-test_1.{org}.events.Lead.LeadReassigned")
        );
        assert_eq!(
            names.event_subject(None, "Org", "OrgCreated"),
            "lr-test_1._.events.Org.OrgCreated"
        );
    }

    #[test]
    fn refuses_a_prefix_that_is_not_one_token() {
        for bad in ["", "a.b", "a*", "a >"] {
            assert!(Names::new(bad).is_err(), "{bad:?}");
        }
    }
}

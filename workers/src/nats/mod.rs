//! NATS JetStream plumbing: the subject and stream names (defined here once, under a
//! configurable prefix so tests and tenants of one server stay apart), connecting, and
//! creating the streams from code at start-up.
//!
//! Only features of NATS 2.9 are used (DESIGN.md): JetStream here is a transport, never the
//! system of record; the events table can always refill it.

pub mod worker;

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
    /// Creating or reading a consumer failed.
    #[error("JetStream consumer: {0}")]
    Consumer(String),
    /// Creating or reading a stream failed.
    #[error("JetStream stream {stream}: {source}")]
    Stream {
        /// The stream.
        stream: String,
        /// Why.
        source: jetstream::context::CreateStreamError,
    },
}

/// Subject and stream names: leadroute's own under `prefix`, upstream CRM events under
/// `crm_prefix` (disjoint, so their streams never overlap).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    prefix: String,
    crm_prefix: String,
}

fn check_token(token: &str) -> Result<String, NatsError> {
    let valid = !token.is_empty()
        && token
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    valid
        .then(|| token.to_string())
        .ok_or_else(|| NatsError::InvalidPrefix(token.to_string()))
}

impl Names {
    /// Names under `prefix` (e.g. `leadroute`) and `crm_prefix` (e.g. `crm`), each one
    /// subject token, and different.
    pub fn new(prefix: &str, crm_prefix: &str) -> Result<Names, NatsError> {
        let (prefix, crm_prefix) = (check_token(prefix)?, check_token(crm_prefix)?);
        if prefix == crm_prefix {
            return Err(NatsError::InvalidPrefix(format!(
                "{crm_prefix} (the CRM prefix must differ from {prefix})"
            )));
        }
        Ok(Names { prefix, crm_prefix })
    }

    /// The stream of published domain events.
    pub fn events_stream(&self) -> String {
        format!("{}_EVENTS", self.stream_prefix())
    }

    /// Every subject of that stream: `<prefix>.<org>.events.>`.
    pub fn events_subjects(&self) -> String {
        format!("{}.*.events.>", self.prefix)
    }

    /// The stream of upstream CRM lead events.
    pub fn crm_stream(&self) -> String {
        format!("{}_CRM", self.stream_prefix())
    }

    /// Every subject of that stream: `<crm prefix>.<org>.lead.<created|updated>`.
    pub fn crm_subjects(&self) -> String {
        format!("{}.*.lead.*", self.crm_prefix)
    }

    /// The subject of an upstream lead event of `org` (`created` or `updated`).
    pub fn crm_subject(&self, org: Uuid, change: &str) -> String {
        format!("{}.{org}.lead.{change}", self.crm_prefix)
    }

    /// The first token of upstream CRM subjects.
    pub fn crm_prefix(&self) -> &str {
        &self.crm_prefix
    }

    /// The lead events of every org: `<prefix>.*.events.Lead.>`.
    pub fn lead_events_subjects(&self) -> String {
        format!("{}.*.events.Lead.>", self.prefix)
    }

    /// The subjects of events of `event_type` (or `>`: every type) on `aggregate_type`, in
    /// every org.
    pub fn event_subjects(&self, aggregate_type: &str, event_type: &str) -> String {
        format!("{}.*.events.{aggregate_type}.{event_type}", self.prefix)
    }

    /// The durable consumer the mailer workers share.
    pub fn mailer_consumer(&self) -> String {
        format!("{}_MAILER", self.stream_prefix())
    }

    /// The durable consumer the router workers share.
    pub fn router_consumer(&self) -> String {
        format!("{}_ROUTER", self.stream_prefix())
    }

    /// The prefix of the durable consumers the wakers of waiting leads share.
    pub fn waker_consumer(&self) -> String {
        format!("{}_WAKER", self.stream_prefix())
    }

    /// The durable consumer the intake workers share.
    pub fn intake_consumer(&self) -> String {
        format!("{}_INTAKE", self.stream_prefix())
    }

    /// The stream of dead letters.
    pub fn dlq_stream(&self) -> String {
        format!("{}_DLQ", self.stream_prefix())
    }

    /// The dead-letter subject of a consumer (`intake`).
    pub fn dlq_subject(&self, source: &str) -> String {
        format!("{}.dlq.{source}", self.prefix)
    }

    /// The prefix as a stream-name part.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn stream_prefix(&self) -> String {
        self.prefix.to_uppercase().replace('-', "_")
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

/// Create the stream `name` over `subjects` unless it exists (file storage, message-id
/// dedupe window).
pub async fn ensure_stream(
    js: &jetstream::Context,
    name: String,
    subjects: String,
) -> Result<stream::Stream, NatsError> {
    let config = stream::Config {
        name: name.clone(),
        subjects: vec![subjects],
        storage: stream::StorageType::File,
        duplicate_window: DUPLICATE_WINDOW,
        ..Default::default()
    };
    js.get_or_create_stream(config)
        .await
        .map_err(|source| NatsError::Stream {
            stream: name,
            source,
        })
}

/// Create the events stream unless it exists.
pub async fn ensure_events_stream(js: &jetstream::Context, names: &Names) -> Result<(), NatsError> {
    ensure_stream(js, names.events_stream(), names.events_subjects())
        .await
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::Names;
    use uuid::Uuid;

    #[test]
    fn names_are_derived_from_one_prefix() {
        let names = Names::new("lr-test_1", "crm").unwrap();
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
            assert!(Names::new(bad, "crm").is_err(), "{bad:?}");
            assert!(Names::new("leadroute", bad).is_err(), "{bad:?}");
        }
        assert!(Names::new("same", "same").is_err());
    }
}

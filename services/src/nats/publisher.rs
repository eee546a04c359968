//! The publisher: relays every committed event, in commit-safe order, to JetStream with
//! `Nats-Msg-Id = event_id`. It runs as a projector with no tables: each batch publishes,
//! awaits every publish ack, and only then moves its checkpoint (in the batch's
//! transaction). A crash before the checkpoint moves republishes the batch, and JetStream's
//! dedupe window drops what it already has; the events table is the outbox.

use super::Names;
use async_nats::jetstream::{self, message::PublishMessage};
use async_trait::async_trait;
use leadroute_projections::log::{AnyEvent, LogEvent};
use leadroute_projections::runtime::{ProjectionError, Projector};
use serde_json::{json, Value};
use sqlx::PgConnection;

/// Checkpoint name of the publisher.
pub const PUBLISHER: &str = "publisher";

/// Publishes log events to the events stream.
pub struct Publisher {
    /// JetStream of the target server.
    js: jetstream::Context,
    /// Subject names.
    names: Names,
}

impl Publisher {
    /// A publisher to `js` under `names` (the stream must exist: see `ensure_events_stream`).
    pub fn new(js: jetstream::Context, names: Names) -> Publisher {
        Publisher { js, names }
    }
}

/// A published event as consumers read it back (the fields they use of [`envelope`]),
/// with its payload as `P`.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Envelope<P = Value> {
    /// The event's id (`Nats-Msg-Id`).
    pub event_id: uuid::Uuid,
    /// Its org, if the aggregate belongs to one.
    pub org_id: Option<uuid::Uuid>,
    /// `Lead`, `PartnerUser`, ...
    pub aggregate_type: String,
    /// The aggregate's id.
    pub aggregate_id: uuid::Uuid,
    /// The event.
    pub payload: P,
}

impl<P: serde::de::DeserializeOwned> Envelope<P> {
    /// Read a message body; an unreadable one is `invalid_envelope`, for a dead letter.
    pub fn parse(body: &[u8]) -> Result<Envelope<P>, super::lead_event::Invalid> {
        serde_json::from_slice(body).map_err(|e| super::lead_event::Invalid {
            reason: "invalid_envelope",
            detail: e.to_string(),
        })
    }
}

/// The message body of a published event.
pub fn envelope(event: &LogEvent) -> Value {
    let payload = match &event.event {
        AnyEvent::Org(e) => serde_json::to_value(e),
        AnyEvent::PartnerAccount(e) => serde_json::to_value(e),
        AnyEvent::PartnerUser(e) => serde_json::to_value(e),
        AnyEvent::Queue(e) => serde_json::to_value(e),
        AnyEvent::Lead(e) => serde_json::to_value(e),
        AnyEvent::Pool(e) => serde_json::to_value(e),
        AnyEvent::RuleSet(e) => serde_json::to_value(e),
        AnyEvent::Templates(e) => serde_json::to_value(e),
        AnyEvent::Bulk(e) => serde_json::to_value(e),
        // The publisher reads every payload; an unread one has nothing to publish.
        AnyEvent::Unread => Ok(Value::Null),
    };
    json!({
        "event_id": event.event_id,
        "org_id": event.org_id,
        "aggregate_type": event.aggregate_type,
        "aggregate_id": event.aggregate_id,
        "sequence": event.sequence,
        "event_type": event.event_type,
        "recorded_at": event.recorded_at,
        "position": {
            "transaction_id": event.position.transaction_id.to_string(),
            "global_position": event.position.global_position,
        },
        "payload": payload.unwrap_or(Value::Null),
    })
}

#[async_trait]
impl Projector for Publisher {
    fn name(&self) -> &'static str {
        PUBLISHER
    }

    fn tables(&self) -> &'static [&'static str] {
        &[]
    }

    async fn apply(
        &self,
        _conn: &mut PgConnection,
        events: &[LogEvent],
    ) -> Result<(), ProjectionError> {
        let sink =
            |e: &dyn std::fmt::Display| ProjectionError::Sink(format!("publishing to NATS: {e}"));
        let mut acks = Vec::with_capacity(events.len());
        for event in events {
            let subject =
                self.names
                    .event_subject(event.org_id, &event.aggregate_type, &event.event_type);
            let body = serde_json::to_vec(&envelope(event)).map_err(|e| sink(&e))?;
            let message = PublishMessage::build()
                .payload(body.into())
                .message_id(event.event_id.to_string());
            acks.push(
                self.js
                    .send_publish(subject, message)
                    .await
                    .map_err(|e| sink(&e))?,
            );
        }
        for ack in acks {
            ack.await.map_err(|e| sink(&e))?;
        }
        Ok(())
    }
}

//! The publisher: relays every committed event, in commit-safe order, to JetStream with
//! `Nats-Msg-Id = event_id`. It runs as a projector with no tables: each batch publishes,
//! awaits every publish ack, and only then moves its checkpoint (in the batch's
//! transaction). A crash before the checkpoint moves republishes the batch, and JetStream's
//! dedupe window drops what it already has; the events table is the outbox.

use crate::nats::Names;
use async_nats::jetstream::{self, message::PublishMessage};
use async_trait::async_trait;
use leadroute_projections::runtime::{ProjectionError, Projector};
use leadroute_store::log::{AnyEvent, LogEvent, Reading};
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
    pub fn parse(body: &[u8]) -> Result<Envelope<P>, leadroute_app::lead_event::Invalid> {
        serde_json::from_slice(body).map_err(|e| {
            leadroute_app::lead_event::Invalid::new(
                leadroute_app::lead_event::DeadReason::InvalidEnvelope,
                e.to_string(),
            )
        })
    }
}

/// The message body of a published event, as bytes: the stored payload text is spliced in
/// as it is when the event was read raw (no decode and re-encode).
pub fn envelope_bytes(event: &LogEvent) -> serde_json::Result<Vec<u8>> {
    let Some(raw) = &event.raw_payload else {
        return serde_json::to_vec(&envelope(event));
    };
    let mut body = serde_json::to_vec(&Value::Object(envelope_head(event)))?;
    // `body` ends with the object's closing brace: reopen it for the payload.
    body.pop();
    body.extend_from_slice(b",\"payload\":");
    body.extend_from_slice(raw.as_bytes());
    body.push(b'}');
    Ok(body)
}

/// The envelope's fields other than the payload.
fn envelope_head(event: &LogEvent) -> serde_json::Map<String, Value> {
    let Value::Object(head) = json!({
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
    }) else {
        unreachable!("json! of an object is an object")
    };
    head
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
        AnyEvent::Undecodable(_) | AnyEvent::Unread => event
            .raw_payload
            .as_deref()
            .map_or(Ok(Value::Null), serde_json::from_str),
    };
    let mut head = envelope_head(event);
    head.insert("payload".into(), payload.unwrap_or(Value::Null));
    Value::Object(head)
}

#[async_trait]
impl Projector for Publisher {
    fn name(&self) -> &'static str {
        PUBLISHER
    }

    fn tables(&self) -> &'static [&'static str] {
        &[]
    }

    /// Every event, its payload passed through as stored (no decode and re-encode).
    fn reading(&self) -> Reading {
        Reading {
            types: None,
            raw: true,
        }
    }

    async fn apply(
        &self,
        _conn: &mut PgConnection,
        events: &[LogEvent],
    ) -> Result<(), ProjectionError> {
        let sink =
            |e: &dyn std::fmt::Display| ProjectionError::Sink(format!("publishing to NATS: {e}"));
        // A message NATS will never take is this event's fault, not NATS's: the runtime
        // quarantines it and publishes the rest.
        let publish_error = |e: jetstream::context::PublishError| match e.kind() {
            jetstream::context::PublishErrorKind::MaxPayloadExceeded => {
                ProjectionError::Poison(format!("too large for NATS: {e}"))
            }
            _ => sink(&e),
        };
        let mut acks = Vec::with_capacity(events.len());
        for event in events {
            let subject =
                self.names
                    .event_subject(event.org_id, &event.aggregate_type, &event.event_type);
            let body = envelope_bytes(event).map_err(|e| sink(&e))?;
            let message = PublishMessage::build()
                .payload(body.into())
                .message_id(event.event_id.to_string());
            acks.push(
                self.js
                    .send_publish(subject, message)
                    .await
                    .map_err(publish_error)?,
            );
        }
        for ack in acks {
            ack.await.map_err(publish_error)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::{envelope, envelope_bytes};
    use leadroute_domain::ids::{Actor, LeadId, OrgId, UpstreamRef};
    use leadroute_domain::lead::LeadEvent;
    use leadroute_store::log::{AnyEvent, Checkpoint, LogEvent};
    use serde_json::Value;
    use uuid::Uuid;

    #[test]
    fn a_raw_payload_is_published_exactly_as_its_decoded_event_would_be() {
        let event = LeadEvent::LeadReceived {
            lead_id: LeadId(Uuid::from_u128(1)),
            org_id: OrgId(Uuid::from_u128(2)),
            upstream: UpstreamRef {
                system: "crm".into(),
                lead_id: "L1".into(),
            },
            upstream_event_id: "e1".into(),
            fields: [("country".to_string(), serde_json::json!("DE"))].into(),
            route: true,
            occurred_at: None,
            actor: Actor::System("intake".into()),
            at: chrono::DateTime::UNIX_EPOCH,
        };
        let decoded = LogEvent {
            position: Checkpoint {
                transaction_id: 7,
                global_position: 9,
            },
            aggregate_id: Uuid::from_u128(1),
            sequence: 1,
            event_type: "LeadReceived".into(),
            recorded_at: chrono::DateTime::UNIX_EPOCH,
            event_id: Uuid::from_u128(3),
            org_id: Some(Uuid::from_u128(2)),
            aggregate_type: "Lead".into(),
            event: AnyEvent::Lead(event.clone()),
            raw_payload: None,
        };
        let raw = LogEvent {
            event: AnyEvent::Unread,
            raw_payload: Some(serde_json::to_string(&event).unwrap()),
            ..decoded.clone()
        };
        let from_raw: Value = serde_json::from_slice(&envelope_bytes(&raw).unwrap()).unwrap();
        assert_eq!(from_raw, envelope(&decoded));
        assert_eq!(envelope(&raw), envelope(&decoded));
    }
}

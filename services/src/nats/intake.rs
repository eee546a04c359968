//! Intake: upstream lead events from JetStream into the event store.
//!
//! Workers share one durable pull consumer. A message is acknowledged only after its
//! `ReceiveLead` committed (a repeated upstream event id is a no-op, so redelivery is
//! harmless), or after it was dead-lettered: stored in `dead_letters` with its payload,
//! subject, headers and a specific reason, and republished on the DLQ subject. A transient
//! failure (database down, conflicts) is redelivered after 1 s, 5 s, 15 s, then every 30 s;
//! one that outlives [`MAX_DELIVER`] deliveries is dead-lettered too. Bad input never stops
//! a worker.

use super::lead_event::{self, Invalid};
use super::{ensure_stream, Names, NatsError};
use crate::app::{AppError, CommandMeta, Commands, NewLead};
use crate::dead_letters::{self, NewDeadLetter};
use async_nats::jetstream::{self, consumer::pull, message::PublishMessage, AckKind};
use futures::StreamExt;
use leadroute_domain::ids::Actor;
use serde_json::{Map, Value};
use sqlx::PgPool;
use std::future::Future;
use std::time::Duration;

/// Deliveries of one message before a transient failure is dead-lettered. The consumer
/// itself redelivers without limit, so a message whose dead letter cannot be written yet
/// (database down) is never dropped by the server.
pub const MAX_DELIVER: i64 = 8;

/// Wait before the redelivery that follows delivery `delivered` (1 s, 5 s, 15 s, then 30 s).
fn redelivery_delay(delivered: i64) -> Duration {
    const DELAYS: [u64; 4] = [1, 5, 15, 30];
    Duration::from_secs(DELAYS[(delivered.max(1) as usize - 1).min(DELAYS.len() - 1)])
}

/// Name of this consumer in dead letters.
pub const SOURCE: &str = "intake";

/// What became of one message.
enum Outcome {
    /// Committed (or a no-op duplicate): acknowledge.
    Done,
    /// Can never succeed: dead-letter, then acknowledge.
    Dead(Invalid),
    /// Failed for now: redeliver later.
    Retry(AppError),
}

/// The intake: its streams, consumer and what workers need.
#[derive(Clone)]
pub struct Intake {
    /// Executes ReceiveLead.
    commands: Commands,
    /// Where dead letters go.
    pool: PgPool,
    /// JetStream.
    js: jetstream::Context,
    /// Subject and stream names.
    names: Names,
    /// The durable consumer.
    consumer: jetstream::consumer::Consumer<pull::Config>,
}

impl Intake {
    /// Create (or find) the CRM and DLQ streams and the durable consumer.
    pub async fn new(
        pool: PgPool,
        js: jetstream::Context,
        names: Names,
    ) -> Result<Intake, NatsError> {
        let crm = ensure_stream(&js, names.crm_stream(), names.crm_subjects()).await?;
        ensure_stream(&js, names.dlq_stream(), format!("{}.dlq.*", names.prefix())).await?;
        let config = pull::Config {
            durable_name: Some(names.intake_consumer()),
            ack_policy: jetstream::consumer::AckPolicy::Explicit,
            ack_wait: Duration::from_secs(30),
            // Unlimited: the worker caps deliveries itself and dead-letters (see MAX_DELIVER).
            max_deliver: -1,
            max_ack_pending: 1000,
            ..Default::default()
        };
        let consumer = crm
            .get_or_create_consumer(&names.intake_consumer(), config)
            .await
            .map_err(|e| NatsError::Consumer(e.to_string()))?;
        Ok(Intake {
            commands: Commands::new(pool.clone()),
            pool,
            js,
            names,
            consumer,
        })
    }

    /// Run one worker until `shutdown` completes; errors of the subscription are retried.
    pub async fn run_worker(self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            let mut messages = match self.consumer.messages().await {
                Ok(messages) => messages,
                Err(e) => {
                    tracing::error!(error = %e, "intake cannot pull messages; retrying");
                    tokio::select! { _ = &mut shutdown => return, _ = tokio::time::sleep(Duration::from_secs(1)) => continue }
                }
            };
            loop {
                let next =
                    tokio::select! { _ = &mut shutdown => return, next = messages.next() => next };
                match next {
                    Some(Ok(message)) => self.handle(&message).await,
                    Some(Err(e)) => tracing::warn!(error = %e, "intake pull failed"),
                    None => break,
                }
            }
        }
    }

    async fn handle(&self, message: &jetstream::Message) {
        let (stream_sequence, delivered) = match message.info() {
            Ok(info) => (info.stream_sequence, info.delivered),
            Err(e) => {
                tracing::warn!(error = %e, "message without JetStream info; skipped");
                return;
            }
        };
        let outcome = match self.process(message).await {
            Outcome::Retry(e) if delivered >= MAX_DELIVER => Outcome::Dead(Invalid {
                reason: "redelivery_exhausted",
                detail: format!("failed {delivered} times; last: {e}"),
            }),
            outcome => outcome,
        };
        let ack = match outcome {
            Outcome::Done => AckKind::Ack,
            Outcome::Dead(invalid) => {
                match self.dead_letter(message, stream_sequence, &invalid).await {
                    Ok(()) => AckKind::Ack,
                    Err(e) => {
                        tracing::error!(error = %e, "cannot store a dead letter; redelivering");
                        AckKind::Nak(Some(redelivery_delay(delivered)))
                    }
                }
            }
            Outcome::Retry(e) => {
                tracing::warn!(error = %e, delivered, "intake failed for now; redelivering");
                AckKind::Nak(Some(redelivery_delay(delivered)))
            }
        };
        if let Err(e) = message.ack_with(ack).await {
            tracing::warn!(error = %e, "acknowledging failed; the message will be redelivered");
        }
    }

    async fn process(&self, message: &jetstream::Message) -> Outcome {
        let org = match lead_event::org_of_subject(self.names.crm_prefix(), &message.subject) {
            Ok(org) => org,
            Err(invalid) => return Outcome::Dead(invalid),
        };
        let event = match lead_event::parse(&message.payload) {
            Ok(event) => event,
            Err(invalid) => return Outcome::Dead(invalid),
        };
        let new = NewLead::from(event);
        let meta = CommandMeta::now(Actor::System(SOURCE.to_string()));
        match self.commands.receive_lead(&meta, org, &new).await {
            Ok(_) => Outcome::Done,
            Err(AppError::NotFound {
                code: "org_not_found",
                ..
            }) => Outcome::Dead(Invalid {
                reason: "unknown_org",
                detail: format!("no org {org}"),
            }),
            Err(AppError::Refused { code, message })
            | Err(AppError::NotFound {
                code,
                what: _,
                id: message,
            }) => Outcome::Dead(Invalid {
                reason: code,
                detail: message,
            }),
            Err(e @ (AppError::Conflict { .. } | AppError::Store(_))) => Outcome::Retry(e),
        }
    }

    async fn dead_letter(
        &self,
        message: &jetstream::Message,
        stream_sequence: u64,
        invalid: &Invalid,
    ) -> anyhow::Result<()> {
        let headers: Map<String, Value> = message
            .headers
            .iter()
            .flat_map(|headers| headers.iter())
            .map(|(name, values)| {
                (
                    name.to_string(),
                    Value::from(values.iter().map(|v| v.to_string()).collect::<Vec<_>>()),
                )
            })
            .collect();
        let letter = NewDeadLetter {
            source: SOURCE,
            stream: &self.names.crm_stream(),
            stream_sequence,
            subject: &message.subject,
            headers: Value::Object(headers),
            payload: &message.payload,
            reason: invalid.reason,
            detail: &invalid.detail,
        };
        // A redelivered message finds its row and republishes under the same message id,
        // so the DLQ subject gets it exactly once even if an earlier publish failed.
        let id = dead_letters::record(&self.pool, &letter).await?;
        tracing::warn!(%id, reason = invalid.reason, detail = %invalid.detail, subject = %message.subject, "dead-lettered");
        let body = serde_json::json!({
            "id": id, "source": SOURCE, "subject": message.subject.as_str(), "stream_sequence": stream_sequence,
            "reason": invalid.reason, "detail": invalid.detail,
            "payload": String::from_utf8_lossy(&message.payload),
        });
        let publish = PublishMessage::build()
            .payload(body.to_string().into())
            .message_id(id.to_string());
        self.js
            .send_publish(self.names.dlq_subject(SOURCE), publish)
            .await?
            .await?;
        Ok(())
    }
}

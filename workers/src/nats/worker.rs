//! A JetStream consumer worker, shared by the intake, the router and the mailer: it pulls
//! from a durable consumer, hands the messages already delivered (up to [`BATCH`]) to a
//! [`Handler`] together, and acknowledges each only once the handler's work committed, or once the message was dead-lettered: stored in
//! `dead_letters` with its payload, subject, headers and a specific reason, and
//! republished on the DLQ subject. A transient failure is redelivered after 1 s, 5 s,
//! 15 s, then every 30 s; one that outlives [`MAX_DELIVER`] deliveries is dead-lettered
//! too. A lost optimistic-concurrency race is not a failure: it is redelivered soon (after
//! [`CONFLICT_DELAY`] and a random part of it) and never counts toward that budget, so
//! sustained load on one pool slows routing but never dead-letters a lead. Bad input never
//! stops a worker.

use super::{ensure_stream, Names, NatsError};
use crate::dead_letters::{self, NewDeadLetter};
use async_nats::jetstream::{self, consumer::pull, message::PublishMessage, AckKind};
use futures::StreamExt;
use leadroute_app::lead_event::{DeadReason, Invalid};
use leadroute_app::AppError;
use leadroute_domain::limits;
use serde_json::{Map, Value};
use sqlx::PgPool;
use std::future::Future;
use std::time::Duration;

/// Deliveries of one message before a transient failure is dead-lettered. The consumer
/// itself redelivers without limit, so a message whose dead letter cannot be written yet
/// (database down) is never dropped by the server.
pub const MAX_DELIVER: i64 = 8;

/// Deliveries after which a message whose dead letter still cannot be written is
/// acknowledged anyway, with an error in the log naming it (subject, stream sequence,
/// reason), so that no message can hold a place in `max_ack_pending` for ever.
pub const MAX_DEAD_LETTER_DELIVER: i64 = MAX_DELIVER + 8;

/// Most characters of a dead letter's detail, subject and each header kept.
const MAX_LETTER_TEXT: usize = 2_000;
/// Most headers of a dead letter kept.
const MAX_LETTER_HEADERS: usize = 64;
/// Most bytes of the payload copied into the message republished on the DLQ subject (the
/// table keeps the whole payload).
const MAX_REPUBLISHED_PAYLOAD: usize = 32 * 1024;

/// Longest wait before a message that lost optimistic-concurrency races is tried again
/// (a random part of it, so racing workers spread out).
pub const CONFLICT_DELAY: Duration = Duration::from_millis(500);

/// A random wait below [`CONFLICT_DELAY`].
fn conflict_delay() -> Duration {
    use std::hash::{BuildHasher, Hasher};
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    Duration::from_millis(random % CONFLICT_DELAY.as_millis() as u64)
}

/// Wait before the redelivery that follows delivery `delivered` (1 s, 5 s, 15 s, then 30 s).
fn redelivery_delay(delivered: i64) -> Duration {
    const DELAYS: [u64; 4] = [1, 5, 15, 30];
    Duration::from_secs(DELAYS[(delivered.max(1) as usize - 1).min(DELAYS.len() - 1)])
}

/// What became of one message.
pub enum Outcome {
    /// Done (or a no-op repeat): acknowledge.
    Done,
    /// Can never succeed: dead-letter, then acknowledge.
    Dead(Invalid),
    /// Failed for now: redeliver later.
    Retry(AppError),
}

/// What a consumer does with one message.
pub trait Handler: Clone + Send + Sync + 'static {
    /// Name in dead letters and of the DLQ subject (`intake`, `router`).
    const SOURCE: &'static str;

    /// Process one message.
    fn process(&self, message: &jetstream::Message) -> impl Future<Output = Outcome> + Send;

    /// Process the messages that arrived together, returning one outcome per message in
    /// order (by default one by one; a handler may commit them in one transaction).
    fn process_batch<'a>(
        &'a self,
        messages: &'a [jetstream::Message],
    ) -> impl Future<Output = Vec<Outcome>> + Send + 'a {
        async move {
            let mut outcomes = Vec::with_capacity(messages.len());
            for message in messages {
                outcomes.push(self.process(message).await);
            }
            outcomes
        }
    }
}

/// Most messages handed to [`Handler::process_batch`] at once: those already delivered
/// when the worker is ready, never waiting for more.
pub const BATCH: usize = 256;

/// The durable consumer a worker pulls from.
#[derive(Debug, Clone)]
pub struct ConsumerSpec {
    /// Its durable name.
    pub durable: String,
    /// Only the subjects matching this filter, if any.
    pub filter: Option<String>,
    /// When first created, start with messages published from then on (not the stream's
    /// history).
    pub only_new: bool,
}

/// A durable pull consumer on `stream` and what its workers need.
#[derive(Clone)]
pub struct Worker<H> {
    /// Processes messages.
    handler: H,
    /// Where dead letters go.
    pool: PgPool,
    /// JetStream.
    js: jetstream::Context,
    /// Subject and stream names.
    names: Names,
    /// The consumed stream's name (dead letters record it).
    stream: String,
    /// The durable consumer.
    consumer: jetstream::consumer::Consumer<pull::Config>,
    /// Deliveries of messages in hand that ended in a lost race, by stream sequence: they
    /// do not count toward [`MAX_DELIVER`]. Kept in memory only (after a restart the
    /// count is lenient, never strict); bounded.
    races: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<u64, i64>>>,
}

/// Most messages whose lost races a worker remembers.
const MAX_RACES_KEPT: usize = 10_000;

impl<H: Handler> Worker<H> {
    /// Find the stream, create the DLQ stream and the durable consumer of `spec` unless
    /// they exist.
    pub async fn new(
        handler: H,
        pool: PgPool,
        js: jetstream::Context,
        names: Names,
        (stream, subjects): (String, String),
        spec: ConsumerSpec,
    ) -> Result<Worker<H>, NatsError> {
        let ConsumerSpec {
            durable,
            filter,
            only_new,
        } = spec;
        let source = ensure_stream(&js, stream.clone(), subjects).await?;
        ensure_stream(&js, names.dlq_stream(), format!("{}.dlq.*", names.prefix())).await?;
        let config = pull::Config {
            durable_name: Some(durable.clone()),
            filter_subject: filter.unwrap_or_default(),
            deliver_policy: if only_new {
                jetstream::consumer::DeliverPolicy::New
            } else {
                jetstream::consumer::DeliverPolicy::All
            },
            ack_policy: jetstream::consumer::AckPolicy::Explicit,
            ack_wait: Duration::from_secs(30),
            // Unlimited: the worker caps deliveries itself and dead-letters (see MAX_DELIVER).
            max_deliver: -1,
            max_ack_pending: 1000,
            ..Default::default()
        };
        let consumer = source
            .get_or_create_consumer(&durable, config)
            .await
            .map_err(|e| NatsError::Consumer(e.to_string()))?;
        Ok(Worker {
            handler,
            pool,
            js,
            names,
            stream,
            consumer,
            races: Default::default(),
        })
    }

    /// What processes its messages.
    pub fn handler(&self) -> &H {
        &self.handler
    }

    /// Run until `shutdown` completes; errors of the subscription are retried.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            let messages = match self.consumer.messages().await {
                Ok(messages) => messages,
                Err(e) => {
                    tracing::error!(error = %e, source = H::SOURCE, "cannot pull messages; retrying");
                    tokio::select! { _ = &mut shutdown => return, _ = tokio::time::sleep(Duration::from_secs(1)) => continue }
                }
            };
            let mut chunks = messages.ready_chunks(BATCH);
            loop {
                let next =
                    tokio::select! { _ = &mut shutdown => return, next = chunks.next() => next };
                let Some(chunk) = next else { break };
                let mut batch = Vec::with_capacity(chunk.len());
                for item in chunk {
                    match item {
                        Ok(message) => batch.push(message),
                        Err(e) => tracing::warn!(error = %e, source = H::SOURCE, "pull failed"),
                    }
                }
                self.handle(&batch).await;
            }
        }
    }

    /// Process messages that arrived together, then acknowledge (or redeliver) each.
    async fn handle(&self, messages: &[jetstream::Message]) {
        let messages: Vec<jetstream::Message> = messages
            .iter()
            .filter(|message| match message.info() {
                Ok(_) => true,
                Err(e) => {
                    tracing::warn!(error = %e, "message without JetStream info; skipped");
                    false
                }
            })
            .cloned()
            .collect();
        if messages.is_empty() {
            return;
        }
        let outcomes = self.handler.process_batch(&messages).await;
        for (message, outcome) in messages.iter().zip(outcomes) {
            self.settle(message, outcome).await;
        }
    }

    /// Acknowledge a message whose work committed or that was dead-lettered; redeliver it
    /// later otherwise.
    async fn settle(&self, message: &jetstream::Message, outcome: Outcome) {
        let Ok(info) = message.info() else { return };
        let (stream_sequence, delivered) = (info.stream_sequence, info.delivered);
        let outcome = match outcome {
            Outcome::Retry(e @ AppError::Conflict { .. }) => {
                // Contention, not failure: soon again, and not counted as a failed delivery.
                tracing::debug!(error = %e, delivered, source = H::SOURCE, "lost a race; redelivering soon");
                {
                    let mut races = self.races.lock().expect("races lock");
                    if races.len() >= MAX_RACES_KEPT {
                        races.clear();
                    }
                    *races.entry(stream_sequence).or_default() += 1;
                }
                if let Err(e) = message.ack_with(AckKind::Nak(Some(conflict_delay()))).await {
                    tracing::warn!(error = %e, "acknowledging failed; the message will be redelivered");
                }
                return;
            }
            outcome => outcome,
        };
        let races = match outcome {
            Outcome::Retry(_) => self
                .races
                .lock()
                .expect("races lock")
                .get(&stream_sequence)
                .copied()
                .unwrap_or(0),
            _ => self
                .races
                .lock()
                .expect("races lock")
                .remove(&stream_sequence)
                .unwrap_or(0),
        };
        let failed = delivered - races;
        let outcome = match outcome {
            Outcome::Retry(e) if failed >= MAX_DELIVER => Outcome::Dead(Invalid::new(
                DeadReason::RedeliveryExhausted,
                format!("failed {failed} times; last: {e}"),
            )),
            outcome => outcome,
        };
        let ack = match outcome {
            Outcome::Done => AckKind::Ack,
            Outcome::Dead(invalid) => {
                match self.dead_letter(message, stream_sequence, &invalid).await {
                    Ok(()) => AckKind::Ack,
                    Err(e) if delivered >= MAX_DEAD_LETTER_DELIVER => {
                        tracing::error!(
                            error = %e, source = H::SOURCE, subject = %limits::storable(&message.subject, MAX_LETTER_TEXT),
                            stream = %self.stream, stream_sequence, delivered, reason = invalid.reason.code(),
                            "cannot store a dead letter after every attempt; acknowledging the message to unblock the consumer (it stays in its stream at this sequence)"
                        );
                        AckKind::Ack
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "cannot store a dead letter; redelivering");
                        AckKind::Nak(Some(redelivery_delay(delivered)))
                    }
                }
            }
            Outcome::Retry(e) => {
                tracing::warn!(error = %e, delivered, source = H::SOURCE, "failed for now; redelivering");
                AckKind::Nak(Some(redelivery_delay(failed)))
            }
        };
        if let Err(e) = message.ack_with(ack).await {
            tracing::warn!(error = %e, "acknowledging failed; the message will be redelivered");
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
                    limits::storable(name.as_ref(), MAX_LETTER_TEXT),
                    Value::from(
                        values
                            .iter()
                            .take(MAX_LETTER_HEADERS)
                            .map(|v| limits::storable(v.as_ref(), MAX_LETTER_TEXT))
                            .collect::<Vec<_>>(),
                    ),
                )
            })
            .take(MAX_LETTER_HEADERS)
            .collect();
        let subject = limits::storable(&message.subject, MAX_LETTER_TEXT);
        let detail = limits::storable(&invalid.detail, MAX_LETTER_TEXT);
        let letter = NewDeadLetter {
            source: H::SOURCE,
            stream: &self.stream,
            stream_sequence,
            subject: &subject,
            headers: Value::Object(headers),
            payload: &message.payload,
            reason: invalid.reason.code(),
            detail: &detail,
        };
        // A redelivered message finds its row and republishes under the same message id,
        // so the DLQ subject gets it exactly once even if an earlier publish failed.
        let id = dead_letters::record(&self.pool, &letter).await?;
        tracing::warn!(%id, reason = invalid.reason.code(), %detail, %subject, "dead-lettered");
        // A bounded copy: escaping can make a payload several times larger than the original,
        // and the original is in the table (`leadroute dlq show`).
        let payload = &message.payload;
        let shown = &payload[..payload.len().min(MAX_REPUBLISHED_PAYLOAD)];
        let body = serde_json::json!({
            "id": id, "source": H::SOURCE, "subject": subject, "stream_sequence": stream_sequence,
            "reason": invalid.reason.code(), "detail": detail,
            "payload": limits::storable(&String::from_utf8_lossy(shown), MAX_REPUBLISHED_PAYLOAD),
            "payload_bytes": payload.len(),
            "payload_truncated": shown.len() < payload.len(),
        });
        let publish = PublishMessage::build()
            .payload(body.to_string().into())
            .message_id(id.to_string());
        self.js
            .send_publish(self.names.dlq_subject(H::SOURCE), publish)
            .await?
            .await?;
        Ok(())
    }
}

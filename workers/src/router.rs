//! The router on NATS: a durable pull consumer on the published lead events. On
//! `LeadReceived` (unless upstream opted out of routing) and on a `LeadUpdated` that
//! changed a watched field, it routes the lead under the org's active rule set, with the
//! event id as the trigger, and acknowledges after the decision committed. A redelivered
//! event finds its trigger decided and changes nothing. Shares the consumer worker (and its
//! redelivery and dead letters) with the intake. Each batch is then handed to the waker,
//! which routes waiting leads where a lead closed or left its owner.

use crate::nats::worker::{ConsumerSpec, Handler, Outcome, Worker};
use crate::nats::{Names, NatsError};
use crate::publisher::Envelope;
use crate::waker::Waker;
use async_nats::jetstream;
use leadroute_app::lead_event::{DeadReason, Invalid};
use leadroute_app::router::Router;
use leadroute_app::{codes, AppError};
use leadroute_domain::ids::{LeadId, OrgId};
use leadroute_domain::lead::LeadEvent;
use leadroute_domain::routing::Trigger;
use leadroute_store::named;
use sqlx::PgPool;
use std::collections::HashSet;
use uuid::Uuid;

/// Name of this consumer in dead letters.
pub const SOURCE: &str = "router";

/// Routes leads from the events stream.
#[derive(Clone)]
pub struct RouterConsumer {
    /// The engine.
    router: Router,
    /// Wakes waiting leads on the lead events that free a place.
    waker: Waker,
    /// The event store.
    pool: PgPool,
}

impl RouterConsumer {
    /// A worker for the events stream's durable router consumer (created unless it exists),
    /// routing through the waker's router (one rule-set cache for both).
    pub async fn worker(
        waker: Waker,
        js: jetstream::Context,
        names: Names,
    ) -> Result<Worker<RouterConsumer>, NatsError> {
        let router = waker.router().clone();
        let pool = router.commands().store().pool().clone();
        let consumer = RouterConsumer {
            router,
            waker,
            pool: pool.clone(),
        };
        let stream = (names.events_stream(), names.events_subjects());
        let filter = Some(names.lead_events_subjects());
        Worker::new(
            consumer,
            pool,
            js,
            names.clone(),
            stream,
            ConsumerSpec {
                durable: names.router_consumer(),
                filter,
                only_new: false,
            },
        )
        .await
    }

    /// Of the `(message, lead, trigger)` given, the triggers their leads already decided.
    async fn decided_triggers(
        &self,
        received: &[(usize, Uuid, Uuid)],
    ) -> Result<HashSet<Uuid>, sqlx::Error> {
        if received.is_empty() {
            return Ok(HashSet::new());
        }
        let leads: Vec<String> = received
            .iter()
            .map(|(_, lead, _)| lead.to_string())
            .collect();
        // A decision's causation id is its trigger.
        Ok(named::decided_triggers(&self.pool, &leads)
            .await?
            .into_iter()
            .filter_map(|t| t.parse().ok())
            .collect())
    }

    async fn trigger(&self, org: OrgId, event: &LeadEvent) -> Result<Option<Trigger>, AppError> {
        Ok(match event {
            LeadEvent::LeadReceived { route, .. } => route.then_some(Trigger::Received),
            LeadEvent::LeadUpdated { route: false, .. } => None,
            LeadEvent::LeadUpdated { changed, .. } => {
                let watched = self.router.rules(org).await?.is_some_and(|rules| {
                    changed
                        .keys()
                        .any(|field| rules.watched_fields.contains(field))
                });
                watched.then_some(Trigger::Updated)
            }
            _ => None,
        })
    }
}

impl Handler for RouterConsumer {
    const SOURCE: &'static str = SOURCE;

    /// Leads the intake already routed as it received them are found with one query for the
    /// batch and need nothing more; every other message is processed on its own.
    async fn process_batch(&self, messages: &[jetstream::Message]) -> Vec<Outcome> {
        let received: Vec<(usize, Uuid, Uuid)> = messages
            .iter()
            .enumerate()
            .filter_map(|(i, message)| {
                if !message.subject.ends_with(".LeadReceived") {
                    return None;
                }
                let envelope = Envelope::<LeadEvent>::parse(&message.payload).ok()?;
                matches!(
                    envelope.payload,
                    LeadEvent::LeadReceived { route: true, .. }
                )
                .then_some((i, envelope.aggregate_id, envelope.event_id))
            })
            .collect();
        let decided = match self.decided_triggers(&received).await {
            Ok(decided) => decided,
            Err(e) => {
                tracing::warn!(error = %e, "cannot look up decided triggers; deciding one by one");
                HashSet::new()
            }
        };
        let skip: HashSet<usize> = received
            .iter()
            .filter(|(_, _, trigger)| decided.contains(trigger))
            .map(|(i, _, _)| *i)
            .collect();
        let mut outcomes = Vec::with_capacity(messages.len());
        for (i, message) in messages.iter().enumerate() {
            outcomes.push(if skip.contains(&i) {
                Outcome::Done
            } else {
                self.process(message).await
            });
        }
        // Then the waiting leads of the orgs where a lead closed or left its owner. A waking
        // that lost its races brings its message back soon (routing it again is a no-op,
        // and lost races never count toward the dead-letter budget); any other failure is
        // left to the sweep, as the messages themselves were handled.
        let woken = self.waker.wake(messages).await;
        for (outcome, failed) in outcomes.iter_mut().zip(woken) {
            if let (Outcome::Done, Some(e @ AppError::Conflict { .. })) = (&outcome, failed) {
                *outcome = Outcome::Retry(e);
            }
        }
        outcomes
    }

    async fn process(&self, message: &jetstream::Message) -> Outcome {
        if !may_trigger(message) {
            return Outcome::Done;
        }
        let envelope = match Envelope::<LeadEvent>::parse(&message.payload) {
            Ok(envelope) => envelope,
            Err(invalid) => return Outcome::Dead(invalid),
        };
        let Some(org) = envelope.org_id.map(OrgId) else {
            return Outcome::Dead(Invalid::new(
                DeadReason::InvalidEnvelope,
                "the event has no org_id",
            ));
        };
        let lead = LeadId(envelope.aggregate_id);
        let kind = match self.trigger(org, &envelope.payload).await {
            Ok(Some(kind)) => kind,
            Ok(None) => return Outcome::Done,
            Err(e) => return Outcome::Retry(e),
        };
        match self.router.route(org, lead, envelope.event_id, kind).await {
            Ok(_) => Outcome::Done,
            // Routing is not set up in this org: nothing to do.
            Err(AppError::Refused { code, .. }) if code == leadroute_app::router::NO_RULE_SET => {
                Outcome::Done
            }
            Err(e @ (AppError::Conflict { .. } | AppError::Store(_))) => Outcome::Retry(e),
            // The store refuses the decision itself: no retry can cure that.
            Err(AppError::Refused {
                code: code @ (codes::UNSTORABLE_INPUT | codes::EVENT_TOO_LARGE),
                message,
                ..
            }) => Outcome::Dead(Invalid::new(DeadReason::Refused(code), message)),
            // A refusal may come from a race with a concurrent change (a user deactivated
            // between the pick and the commit): retry, then dead-letter with the reason.
            Err(e @ AppError::Refused { .. }) => Outcome::Retry(e),
            Err(AppError::NotFound { code, what, id }) => Outcome::Dead(Invalid::new(
                DeadReason::NotFound(code),
                format!("{what} {id} not found"),
            )),
        }
    }
}

/// Whether an event may trigger routing, by its subject's last token (the event type):
/// only `LeadReceived` and `LeadUpdated` do, so the others are not even decoded.
fn may_trigger(message: &jetstream::Message) -> bool {
    matches!(
        message.subject.rsplit('.').next(),
        Some("LeadReceived" | "LeadUpdated")
    )
}

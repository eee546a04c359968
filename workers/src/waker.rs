//! The waker: routes waiting leads when a place may have freed. A durable consumer on every
//! published event (`<PREFIX>_WAKER`, from the events published after it was first made)
//! looks at each event's subject, and decodes the few lead events that need it, to tell
//! whether the event may have freed a place in its org:
//! - a lead closed (an update of its `status`) or left its owner (reassigned, enqueued,
//!   claimed, routed away);
//! - a partner user, partner account, pool or queue changed (resumed, activated, signed
//!   in, joined a pool, a higher cap, a new queue member ...).
//!
//! For each such org in a batch it routes the org's waiting leads once
//! (`Router::route_waiting`: oldest first, only as many as have a place). A sweep every
//! [`SWEEP`] does the same for every org with waiting leads, for what publishes no event: a
//! pause that ran out, or a waking missed while no waker ran. Waking twice routes nothing
//! twice (a lead refuses a `freed` decision once it no longer waits), so any number of
//! processes may run it; it never dead-letters (an event it cannot read wakes nothing).

use crate::nats::worker::{ConsumerSpec, Handler, Outcome, Worker};
use crate::nats::{Names, NatsError};
use crate::publisher::Envelope;
use async_nats::jetstream;
use leadroute_app::router::Router;
use leadroute_app::Commands;
use leadroute_domain::ids::OrgId;
use leadroute_domain::lead::LeadEvent;
use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;
use uuid::Uuid;

/// Name of this consumer in logs and dead letters.
pub const SOURCE: &str = "waker";

/// How often every org's waiting leads are looked at, whatever was published.
pub const SWEEP: Duration = Duration::from_secs(30);

/// Wakes waiting leads.
#[derive(Clone)]
pub struct Waker {
    router: Router,
}

impl Waker {
    /// A worker for the events stream's durable waker consumer (created unless it exists).
    pub async fn worker(
        commands: Commands,
        js: jetstream::Context,
        names: Names,
    ) -> Result<Worker<Waker>, NatsError> {
        let pool = commands.store().pool().clone();
        let waker = Waker {
            router: Router::with_commands(commands),
        };
        let stream = (names.events_stream(), names.events_subjects());
        Worker::new(
            waker,
            pool,
            js,
            names.clone(),
            stream,
            ConsumerSpec {
                durable: names.waker_consumer(),
                filter: None,
                only_new: true,
            },
        )
        .await
    }

    /// Route the waiting leads of every org that has some, every `every`, until `shutdown`.
    pub async fn sweep(self, every: Duration, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => return,
                _ = tokio::time::sleep(every) => {}
            }
            let orgs = match self.router.commands().store().orgs_waiting().await {
                Ok(orgs) => orgs,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot list orgs with waiting leads");
                    continue;
                }
            };
            for org in orgs {
                if let Err(e) = self.router.route_waiting(OrgId(org), Uuid::new_v4()).await {
                    tracing::warn!(error = %e, org = %org, "cannot route waiting leads");
                }
            }
        }
    }
}

/// The org and event id of a published event that may have freed a place, by its subject
/// (`<prefix>.<org>.events.<aggregate type>.<event type>`) and, for a lead event that may or
/// may not have, by its payload.
fn wakes(message: &jetstream::Message) -> Option<(OrgId, Uuid)> {
    let mut tokens = message.subject.rsplit('.');
    let (event_type, aggregate_type) = (tokens.next()?, tokens.next()?);
    let org: Uuid = tokens.nth(1)?.parse().ok()?;
    let decode = match (aggregate_type, event_type) {
        ("PartnerUser" | "PartnerAccount" | "Pool" | "Queue", _) => false,
        ("Lead", "LeadReassigned" | "LeadEnqueued" | "LeadClaimed") => false,
        ("Lead", "LeadRouted" | "LeadUpdated" | "LeadUpdateStale") => true,
        _ => return None,
    };
    if !decode {
        let envelope = Envelope::<serde::de::IgnoredAny>::parse(&message.payload).ok()?;
        return Some((OrgId(org), envelope.event_id));
    }
    let envelope = Envelope::<LeadEvent>::parse(&message.payload).ok()?;
    let frees = match &envelope.payload {
        LeadEvent::LeadRouted { change, .. } => change.from.is_some(),
        LeadEvent::LeadUpdated { changed, .. } => changed.contains_key("status"),
        LeadEvent::LeadUpdateStale { filled, .. } => filled.contains_key("status"),
        _ => false,
    };
    frees.then_some((OrgId(org), envelope.event_id))
}

impl Handler for Waker {
    const SOURCE: &'static str = SOURCE;

    /// Each org woken by the batch is woken once, by its first waking event; when that
    /// fails, that event is redelivered (to wake the org again) and the others are done.
    async fn process_batch(&self, messages: &[jetstream::Message]) -> Vec<Outcome> {
        let mut orgs: BTreeMap<OrgId, (usize, Uuid)> = BTreeMap::new();
        for (i, (org, event)) in messages
            .iter()
            .enumerate()
            .filter_map(|(i, m)| Some((i, wakes(m)?)))
        {
            orgs.entry(org).or_insert((i, event));
        }
        let mut outcomes: Vec<Outcome> = messages.iter().map(|_| Outcome::Done).collect();
        for (org, (i, cause)) in orgs {
            if let Err(e) = self.router.route_waiting(org, cause).await {
                tracing::debug!(error = %e, org = %org.0, "cannot route waiting leads yet");
                outcomes[i] = Outcome::Retry(e);
            }
        }
        outcomes
    }

    async fn process(&self, message: &jetstream::Message) -> Outcome {
        let mut outcomes = self.process_batch(std::slice::from_ref(message)).await;
        outcomes.pop().unwrap_or(Outcome::Done)
    }
}

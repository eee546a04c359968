//! The waker: routes waiting leads when a place may have freed. It looks at published
//! events: lead events as the router consumer receives them (the router hands each batch to
//! [`Waker::wake`]), the others through its own durable consumers (`<PREFIX>_WAKER_*`, one
//! per filter, from the events published after they were first made). It tells by the
//! subject ([`WAKING`]), and for routings and updates by the few payload fields that say,
//! whether an event freed a place in its org:
//! - a lead closed (an update of its `status`) or left its owner (reassigned, enqueued,
//!   claimed, routed away, declined, recalled at its deadline);
//! - a partner user, partner account, pool or queue changed (resumed, activated, signed
//!   in, joined a pool, a higher cap, a new queue member ...).
//!
//! For each such org in a batch it routes the org's waiting leads once
//! (`Router::route_waiting`: oldest first, only as many as have a place). A sweep every
//! [`SWEEP`] does the same for every org with waiting leads, for what publishes no event: a
//! pause that ran out, or a waking missed while no waker ran; one process sweeps at a time
//! (an advisory lock), the others skip that round. Waking twice routes nothing
//! twice (a lead refuses a `freed` decision once it no longer waits), so any number of
//! processes may run it; it never dead-letters (an event it cannot read wakes nothing).

use crate::nats::worker::{ConsumerSpec, Handler, Outcome, Worker};
use crate::nats::{Names, NatsError};
use async_nats::jetstream;
use leadroute_app::router::Router;
use leadroute_app::{AppError, Commands};
use leadroute_domain::ids::OrgId;
use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;
use uuid::Uuid;

/// Name of this consumer in logs and dead letters.
pub const SOURCE: &str = "waker";

/// How often every org's waiting leads are looked at, whatever was published.
pub const SWEEP: Duration = Duration::from_secs(30);

/// The events that may free a place, as `(aggregate type, event type)`. Lead events reach
/// the waker through the router consumer, which receives them all anyway; `LeadRouted` and
/// updates wake only when they moved the lead away from an owner or changed its `status`
/// (read from the payload).
pub const WAKING: [(&str, &str); 15] = [
    ("Lead", "LeadReassigned"),
    ("Lead", "LeadDeclined"),
    ("Lead", "LeadOfferLapsed"),
    ("Lead", "LeadEnqueued"),
    ("Lead", "LeadClaimed"),
    ("Lead", "LeadRouted"),
    ("Lead", "LeadUpdated"),
    ("Lead", "LeadUpdateStale"),
    ("PartnerUser", "PartnerUserActivated"),
    ("PartnerUser", "PartnerUserSignedIn"),
    ("PartnerUser", "AutoAssignmentResumed"),
    ("PartnerAccount", "PartnerActivated"),
    ("Pool", "PoolMemberAdded"),
    ("Pool", "PoolMemberChanged"),
    ("Queue", "QueueMemberAdded"),
];

/// The waker's own consumers, as `(name suffix, aggregate type, event type or ">")`: one
/// per filter (the NATS server this runs on takes one filter per consumer). The pool's are
/// narrow because its picks are frequent; the others' events are rare.
const CONSUMERS: [(&str, &str, &str); 5] = [
    ("PARTNER_USER", "PartnerUser", ">"),
    ("PARTNER_ACCOUNT", "PartnerAccount", ">"),
    ("QUEUE", "Queue", ">"),
    ("POOL_MEMBER_ADDED", "Pool", "PoolMemberAdded"),
    ("POOL_MEMBER_CHANGED", "Pool", "PoolMemberChanged"),
];

/// Wakes waiting leads.
#[derive(Clone)]
pub struct Waker {
    router: Router,
}

impl Waker {
    /// A waker over `commands`.
    pub fn new(commands: Commands) -> Waker {
        Waker {
            router: Router::with_commands(commands),
        }
    }

    /// The router it routes waiting leads through.
    pub fn router(&self) -> &Router {
        &self.router
    }

    /// Workers for the waker's durable consumers on the events stream (created unless they
    /// exist): partner users, partner accounts, queues and pool members.
    pub async fn workers(
        &self,
        js: jetstream::Context,
        names: Names,
    ) -> Result<Vec<Worker<Waker>>, NatsError> {
        let pool = self.router.commands().store().pool().clone();
        let stream = (names.events_stream(), names.events_subjects());
        let mut workers = Vec::with_capacity(CONSUMERS.len());
        for (suffix, aggregate_type, event_type) in CONSUMERS {
            let spec = ConsumerSpec {
                durable: format!("{}_{suffix}", names.waker_consumer()),
                filter: Some(names.event_subjects(aggregate_type, event_type)),
                only_new: true,
            };
            let worker = Worker::new(
                self.clone(),
                pool.clone(),
                js.clone(),
                names.clone(),
                stream.clone(),
                spec,
            )
            .await?;
            workers.push(worker);
        }
        Ok(workers)
    }

    /// Route the waiting leads of each org that one of `messages` woke, once per org (by
    /// its first waking message); answers, per message, the error when its waking failed
    /// (logged; the sweep wakes the org again).
    pub async fn wake(&self, messages: &[jetstream::Message]) -> Vec<Option<AppError>> {
        let mut orgs: BTreeMap<OrgId, (usize, Uuid)> = BTreeMap::new();
        for (i, (org, event)) in messages
            .iter()
            .enumerate()
            .filter_map(|(i, m)| Some((i, wakes(m)?)))
        {
            orgs.entry(org).or_insert((i, event));
        }
        let mut failed: Vec<Option<AppError>> = messages.iter().map(|_| None).collect();
        for (org, (i, cause)) in orgs {
            if let Err(e) = self.router.route_waiting(org, cause).await {
                tracing::warn!(error = %e, org = %org.0, "cannot route waiting leads; the sweep will");
                failed[i] = Some(e);
            }
        }
        failed
    }

    /// Route the waiting leads of every org that has some, every `every`, until `shutdown`.
    pub async fn sweep(self, every: Duration, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => return,
                _ = tokio::time::sleep(every) => {}
            }
            // One sweeper at a time across processes: the others skip this round.
            let pool = self.router.commands().store().pool().clone();
            crate::round_lock::run_alone(&pool, SWEEP_LOCK, || self.sweep_once()).await;
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
    if !WAKING.contains(&(aggregate_type, event_type)) {
        return None;
    }
    let Ok(envelope) = serde_json::from_slice::<Waking>(&message.payload) else {
        return None;
    };
    let frees = match event_type {
        "LeadRouted" => envelope.payload.routed_away(),
        "LeadUpdated" | "LeadUpdateStale" => envelope.payload.status_changed(),
        _ => true,
    };
    frees.then_some((OrgId(org), envelope.event_id))
}

/// The advisory lock (by name) the sweeping process holds while it sweeps.
const SWEEP_LOCK: &str = "leadroute.waker.sweep";

impl Waker {
    /// Route the waiting leads of every org that has some.
    async fn sweep_once(&self) {
        let orgs = match self.router.commands().store().orgs_waiting().await {
            Ok(orgs) => orgs,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list orgs with waiting leads");
                return;
            }
        };
        for org in orgs {
            if let Err(e) = self.router.route_waiting(OrgId(org), Uuid::new_v4()).await {
                tracing::warn!(error = %e, org = %org, "cannot route waiting leads");
            }
        }
    }
}

/// The parts of a published event the waker reads (the rest is skipped, not decoded).
#[derive(serde::Deserialize)]
struct Waking {
    event_id: Uuid,
    #[serde(default)]
    payload: WakingPayload,
}

/// A lead event's payload as far as waking goes: `{"LeadRouted": {"change": {"from": ..}}}`,
/// `{"LeadUpdated": {"changed": {..}}}` or `{"LeadUpdateStale": {"filled": {..}}}`.
#[derive(serde::Deserialize, Default)]
struct WakingPayload {
    #[serde(rename = "LeadRouted")]
    routed: Option<RoutedPart>,
    #[serde(rename = "LeadUpdated")]
    updated: Option<FieldsPart>,
    #[serde(rename = "LeadUpdateStale")]
    stale: Option<FieldsPart>,
}

#[derive(serde::Deserialize)]
struct RoutedPart {
    change: ChangePart,
}

#[derive(serde::Deserialize)]
struct ChangePart {
    from: Option<serde::de::IgnoredAny>,
}

#[derive(serde::Deserialize)]
struct FieldsPart {
    #[serde(alias = "filled")]
    changed: BTreeMap<String, serde::de::IgnoredAny>,
}

impl WakingPayload {
    /// A routing that took the lead from an owner.
    fn routed_away(&self) -> bool {
        self.routed
            .as_ref()
            .is_some_and(|r| r.change.from.is_some())
    }

    /// An update that changed the lead's `status` (it may have closed).
    fn status_changed(&self) -> bool {
        [&self.updated, &self.stale]
            .into_iter()
            .flatten()
            .any(|part| part.changed.contains_key("status"))
    }
}

impl Handler for Waker {
    const SOURCE: &'static str = SOURCE;

    /// Each org woken by the batch is woken once, by its first waking event. When that
    /// fails on a lost race, that event comes back soon (lost races never count toward the
    /// dead-letter budget); any other failure is logged and left to the sweep, so the
    /// waker never dead-letters.
    async fn process_batch(&self, messages: &[jetstream::Message]) -> Vec<Outcome> {
        self.wake(messages)
            .await
            .into_iter()
            .map(|failed| match failed {
                Some(e @ AppError::Conflict { .. }) => Outcome::Retry(e),
                _ => Outcome::Done,
            })
            .collect()
    }

    async fn process(&self, message: &jetstream::Message) -> Outcome {
        let mut outcomes = self.process_batch(std::slice::from_ref(message)).await;
        outcomes.pop().unwrap_or(Outcome::Done)
    }
}

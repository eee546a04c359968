//! The core of the application layer: `Commands` over the event store, with loads scoped
//! to an org, the one commit path (a `Batch`, of one command or many), bounded retries of
//! lost optimistic-concurrency races, and the metadata every event carries.

use crate::error::{self, AppError};
use crate::in_org::InOrg;
use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use leadroute_domain::ids::{Actor, OrgId};
use leadroute_domain::Refusal;
use leadroute_store::log::Checkpoint;
use leadroute_store::{named, EventStore};
use sqlx::PgPool;
use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// How many times a command is tried when it keeps losing optimistic-concurrency races.
pub const MAX_ATTEMPTS: u32 = 10;

/// Who issues a command, when, and under which correlation id; stored as event metadata.
#[derive(Debug, Clone)]
pub struct CommandMeta {
    /// The actor recorded on events.
    pub actor: Actor,
    /// The command's time (the domain never reads a clock).
    pub at: DateTime<Utc>,
    /// Correlates every event of one request or message.
    pub correlation_id: Uuid,
    /// The event or message that caused this command, if any.
    pub causation_id: Option<Uuid>,
}

impl CommandMeta {
    /// Metadata for a command issued now, with a fresh correlation id.
    pub fn now(actor: Actor) -> Self {
        Self {
            actor,
            at: Utc::now(),
            correlation_id: Uuid::new_v4(),
            causation_id: None,
        }
    }

    /// The same command context, caused by `cause` (an event or message id).
    pub fn caused_by(mut self, cause: Uuid) -> Self {
        self.causation_id = Some(cause);
        self
    }

    fn to_event_metadata(&self) -> HashMap<String, String> {
        let mut metadata = HashMap::from([
            ("actor".to_string(), self.actor.to_string()),
            (
                "correlation_id".to_string(),
                self.correlation_id.to_string(),
            ),
        ]);
        if let Some(cause) = self.causation_id {
            metadata.insert("causation_id".to_string(), cause.to_string());
        }
        metadata
    }
}

/// What a command wrote: the aggregate and the sequence numbers of its new events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    /// The aggregate's type (`Lead`).
    pub aggregate_type: &'static str,
    /// The aggregate's id.
    pub aggregate_id: String,
    /// Number of events written (0 for a no-op such as a repeated upstream event).
    pub events: usize,
    /// The aggregate's sequence number after the command.
    pub sequence: usize,
    /// The log position of the last event written, as the commit answered it (`None` for
    /// a no-op).
    pub position: Option<Checkpoint>,
}

impl Committed {
    /// Nothing written (yet) to `loaded`, as it stands.
    pub(crate) fn none<A: Aggregate>(loaded: &Loaded<A>) -> Committed {
        Committed {
            aggregate_type: A::TYPE,
            aggregate_id: loaded.aggregate_id.clone(),
            events: 0,
            sequence: loaded.current_sequence,
            position: None,
        }
    }
}

pub(crate) type Loaded<A> = leadroute_store::Loaded<A>;

/// Executes commands against the event store.
#[derive(Clone)]
pub struct Commands {
    /// Pool of the database that holds the `events` table and the read models.
    pub(crate) pool: PgPool,
    /// The event store, with this process's cache of aggregate states.
    pub(crate) store: EventStore,
    /// Optimistic-concurrency races lost and retried so far (a metric, and the proof in
    /// tests that concurrent commands really raced).
    conflicts_retried: Arc<AtomicU64>,
}

impl Commands {
    /// Commands over the event store in `pool`'s database (migrations already applied).
    pub fn new(pool: PgPool) -> Self {
        Self::with_store(EventStore::new(pool))
    }

    /// Commands over `store` (shared with the other parts of the process, and its cache).
    pub fn with_store(store: EventStore) -> Self {
        Self {
            pool: store.pool().clone(),
            store,
            conflicts_retried: Arc::default(),
        }
    }

    /// The event store.
    pub fn store(&self) -> &EventStore {
        &self.store
    }

    /// How many lost optimistic-concurrency races were retried since creation.
    pub fn conflicts_retried(&self) -> u64 {
        self.conflicts_retried.load(Ordering::Relaxed)
    }

    /// Run `attempt` until it does not lose an optimistic-concurrency race (see [`retry`]).
    pub(crate) async fn retry<T, F, Fut>(&self, attempt: F) -> Result<T, AppError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, AppError>>,
    {
        retry(&self.conflicts_retried, attempt).await
    }

    /// Load an aggregate by replaying its events.
    pub(crate) async fn load<A>(&self, id: impl ToString) -> Result<Loaded<A>, AppError>
    where
        A: Aggregate,
    {
        Ok(self.store.load::<A>(&id.to_string()).await?)
    }

    /// Load an aggregate from this process's cached state, reading only the events after it.
    pub(crate) async fn load_cached<A>(&self, id: &str) -> Result<Loaded<A>, AppError>
    where
        A: InOrg,
        A::Error: Refusal + Send + Sync + 'static,
    {
        Ok(self.store.load_cached::<A>(id).await?)
    }

    /// Keep `(state, sequence, id)` of aggregates of type `A` as this process's cached
    /// states: states a batch just committed (the next cached load then reads none of the
    /// events this process wrote itself).
    pub(crate) fn remember<A>(&self, states: impl IntoIterator<Item = (A, usize, String)>)
    where
        A: InOrg,
        A::Error: Refusal + Send + Sync + 'static,
    {
        self.store.remember(states);
    }

    /// Decide `command` against the loaded aggregate and commit the events it produces, with
    /// the actor, correlation, causation and org ids as metadata: a batch of one command,
    /// through the store's one commit path.
    #[tracing::instrument(level = "debug", skip_all, fields(
        aggregate = A::TYPE,
        aggregate_id = %loaded.aggregate_id,
        correlation_id = %meta.correlation_id,
    ))]
    pub(crate) async fn commit<A>(
        &self,
        mut loaded: Loaded<A>,
        command: A::Command,
        meta: &CommandMeta,
    ) -> Result<Committed, AppError>
    where
        A: InOrg,
        A::Error: Refusal + Send + Sync + 'static,
    {
        let mut batch = Batch::default();
        let events = batch.decide(&mut loaded, command, meta).await?.len();
        let position =
            self.store
                .commit(batch.into_inner())
                .await
                .map_err(|e| match AppError::from(e) {
                    AppError::Conflict { attempts, .. } => AppError::Conflict {
                        aggregate: A::TYPE,
                        attempts,
                    },
                    other => other,
                })?;
        Ok(Committed {
            aggregate_type: A::TYPE,
            aggregate_id: loaded.aggregate_id,
            events,
            sequence: loaded.current_sequence,
            position,
        })
    }

    /// The log position of the last event a command wrote (or, for a no-op, of the
    /// aggregate's last event); `None` when the aggregate has no events. A reader whose
    /// projections reached it sees the command's effect.
    pub async fn position(&self, committed: &Committed) -> Result<Option<Checkpoint>, AppError> {
        if committed.position.is_some() || committed.sequence == 0 {
            return Ok(committed.position);
        }
        Ok(named::position_of(
            &self.pool,
            committed.aggregate_type,
            &committed.aggregate_id,
            committed.sequence as i64,
        )
        .await?)
    }
}

/// Events decided for several aggregates, not yet written (see `leadroute_store::Batch`).
#[derive(Default)]
pub(crate) struct Batch(leadroute_store::Batch);

impl Batch {
    /// Decide `command` against `loaded`, apply its events to it and queue them; returns the
    /// ids of the events the command produced (none for a no-op). A refusal queues nothing.
    pub(crate) async fn decide<A>(
        &mut self,
        loaded: &mut Loaded<A>,
        command: A::Command,
        meta: &CommandMeta,
    ) -> Result<Vec<Uuid>, AppError>
    where
        A: InOrg,
        A::Error: Refusal + Send + Sync + 'static,
    {
        let (held, waited) = (loaded.aggregate.holder(), loaded.aggregate.waiting());
        let events = decide(loaded, command).await?;
        let ids = self.record(
            &loaded.aggregate,
            &loaded.aggregate_id,
            &mut loaded.current_sequence,
            events,
            meta,
        )?;
        // Only once the events are queued: a refused event changes no count.
        self.keep(loaded, held, waited, meta);
        Ok(ids)
    }

    /// Keep the store's open-lead counts and waiting leads in step with what the command
    /// changed on `loaded` (which held `held` and waited for `waited` before it).
    fn keep<A: InOrg>(
        &mut self,
        loaded: &Loaded<A>,
        held: Option<Uuid>,
        waited: Option<(&'static str, Option<Uuid>)>,
        meta: &CommandMeta,
    ) where
        A::Error: Refusal + Send + Sync + 'static,
    {
        let Some(org) = loaded.aggregate.org() else {
            return;
        };
        let holds = loaded.aggregate.holder();
        if held != holds {
            if let Some(held) = held {
                self.0.hold(org.0, held, -1);
            }
            if let Some(holds) = holds {
                self.0.hold(org.0, holds, 1);
            }
        }
        let waits = loaded.aggregate.waiting();
        if waited != waits {
            let Ok(lead) = loaded.aggregate_id.parse::<Uuid>() else {
                return;
            };
            match waits {
                Some((reason, target)) => self.0.wait(leadroute_store::Waiting {
                    lead,
                    org: org.0,
                    target,
                    since: meta.at,
                    reason: reason.to_string(),
                }),
                None => self.0.unwait(lead),
            }
        }
    }

    /// Forget the entry of `lead` waiting `since`: the lead no longer waits, though no
    /// command here changed it (kept if a commit has replaced the entry meanwhile).
    pub(crate) fn forget_stale(&mut self, lead: Uuid, since: chrono::DateTime<chrono::Utc>) {
        self.0.forget_stale(lead, since);
    }

    /// Queue `events` already applied to `aggregate` (stored as `id`, at `sequence` before
    /// them, which advances); returns their ids. Refused as a whole when one is too large.
    pub(crate) fn record<A>(
        &mut self,
        aggregate: &A,
        id: &str,
        sequence: &mut usize,
        events: Vec<A::Event>,
        meta: &CommandMeta,
    ) -> Result<Vec<Uuid>, AppError>
    where
        A: InOrg,
        A::Error: Refusal + Send + Sync + 'static,
    {
        if events.is_empty() {
            return Ok(vec![]);
        }
        let metadata = event_metadata(meta, aggregate.org());
        let metadata =
            serde_json::to_string(&metadata).map_err(|e| AppError::Store(Box::new(e)))?;
        Ok(self.0.record::<A>(id, sequence, events, &metadata)?)
    }

    /// `owner` of `org` may hold at most `cap` open leads once the batch is committed; a
    /// commit that would take it past is a lost race (see `leadroute_store::Batch::cap`).
    pub(crate) fn cap(&mut self, org: OrgId, owner: uuid::Uuid, cap: u32) {
        self.0.cap(org.0, owner, cap);
    }

    /// `owner` of `org` must still hold at least `cap` open leads when the batch commits
    /// (see `leadroute_store::Batch::full`).
    pub(crate) fn full(&mut self, org: OrgId, owner: uuid::Uuid, cap: u32) {
        self.0.full(org.0, owner, cap);
    }

    /// The store's batch.
    pub(crate) fn into_inner(self) -> leadroute_store::Batch {
        self.0
    }
}

impl Commands {
    /// Load every aggregate in `ids` with one query; ids without events come back as new
    /// (default) aggregates. The org is not checked here: callers check it per aggregate.
    pub(crate) async fn load_many<A>(
        &self,
        ids: &[String],
    ) -> Result<HashMap<String, Loaded<A>>, AppError>
    where
        A: InOrg,
        A::Error: Refusal + Send + Sync + 'static,
    {
        Ok(self.store.load_many::<A>(ids).await?)
    }

    /// Load every aggregate in `ids` from this process's cached states, reading with one
    /// query only the events committed after each (see `EventStore::load_many_cached`).
    pub(crate) async fn load_many_cached<A>(
        &self,
        ids: &[String],
    ) -> Result<HashMap<String, Loaded<A>>, AppError>
    where
        A: InOrg,
        A::Error: Refusal + Send + Sync + 'static,
    {
        Ok(self.store.load_many_cached::<A>(ids).await?)
    }

    /// Write every event of `batch` in one transaction; returns how many were written and
    /// the log position of the last. A lost optimistic-concurrency race writes nothing and
    /// is a conflict the caller retries after loading again.
    pub(crate) async fn commit_batch(
        &self,
        batch: Batch,
    ) -> Result<(usize, Option<Checkpoint>), AppError> {
        let n = batch.0.len();
        let position = self
            .store
            .commit(batch.0)
            .await
            .map_err(|e| match AppError::from(e) {
                AppError::Conflict { attempts, .. } => AppError::Conflict {
                    aggregate: "batch",
                    attempts,
                },
                other => other,
            })?;
        Ok((n, position))
    }
}

impl Commands {
    /// Load an existing aggregate of `org`; a missing one, or one of another org, is not found.
    pub(crate) async fn load_in_org<A>(
        &self,
        org: OrgId,
        id: impl ToString,
    ) -> Result<Loaded<A>, AppError>
    where
        A: InOrg,
        A::Error: Refusal + Send + Sync + 'static,
    {
        let id = id.to_string();
        let loaded = if A::CACHED {
            self.load_cached::<A>(&id).await?
        } else {
            self.load::<A>(&id).await?
        };
        match loaded.aggregate.org() {
            Some(owner_org) if owner_org == org => Ok(loaded),
            _ => Err(AppError::not_found(A::NOT_FOUND, A::WHAT, id)),
        }
    }

    /// The current state of an existing aggregate of `org` (for authorization and for reads
    /// that must not lag, such as a lead's owner before a command on it).
    pub async fn state<A>(&self, org: OrgId, id: impl ToString) -> Result<A, AppError>
    where
        A: InOrg,
        A::Error: Refusal + Send + Sync + 'static,
    {
        Ok(self.load_in_org::<A>(org, id).await?.aggregate)
    }

    /// The current state of an existing aggregate of `org` and its sequence number, for a
    /// command that must apply only if nothing changed since (see `route_lead_at`).
    pub async fn state_at<A>(&self, org: OrgId, id: impl ToString) -> Result<(A, usize), AppError>
    where
        A: InOrg,
        A::Error: Refusal + Send + Sync + 'static,
    {
        let loaded = self.load_in_org::<A>(org, id).await?;
        Ok((loaded.aggregate, loaded.current_sequence))
    }

    /// Run `command` (rebuilt on every retry) against an existing aggregate of `org`.
    pub(crate) async fn on_existing<A>(
        &self,
        meta: &CommandMeta,
        org: OrgId,
        id: impl ToString,
        command: impl Fn() -> A::Command,
    ) -> Result<Committed, AppError>
    where
        A: InOrg,
        A::Error: Refusal + Send + Sync + 'static,
    {
        let id = id.to_string();
        self.retry(|| async {
            let loaded = self.load_in_org::<A>(org, &id).await?;
            self.commit(loaded, command(), meta).await
        })
        .await
    }
}

/// Decide `command` against `loaded`; its state advances by the events at once.
async fn decide<A>(loaded: &mut Loaded<A>, command: A::Command) -> Result<Vec<A::Event>, AppError>
where
    A: InOrg,
    A::Error: Refusal + Send + Sync + 'static,
{
    let sink = Default::default();
    loaded
        .aggregate
        .handle(command, &(), &sink)
        .await
        .map_err(error::refused)?;
    Ok(sink.collect().await)
}

/// The metadata events are stored with: actor, correlation, causation and the org id.
fn event_metadata(
    meta: &CommandMeta,
    org: Option<leadroute_domain::ids::OrgId>,
) -> HashMap<String, String> {
    let mut metadata = meta.to_event_metadata();
    if let Some(org) = org {
        // Lets log readers (publisher, exports) route an event by org without its payload.
        metadata.insert("org_id".to_string(), org.to_string());
    }
    metadata
}

/// Run `attempt` until it does not lose an optimistic-concurrency race, at most
/// [`MAX_ATTEMPTS`] times, with a short randomised backoff; counts retries in `retried`.
/// Each attempt must reload what it decides on.
async fn retry<T, F, Fut>(retried: &AtomicU64, mut attempt: F) -> Result<T, AppError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, AppError>>,
{
    let mut attempts = 1;
    loop {
        match attempt().await {
            Err(AppError::Conflict { aggregate, .. }) if attempts < MAX_ATTEMPTS => {
                tracing::debug!(
                    aggregate,
                    attempts,
                    "optimistic-concurrency conflict, retrying"
                );
                retried.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(backoff(attempts)).await;
                attempts += 1;
            }
            Err(AppError::Conflict { aggregate, .. }) => {
                return Err(AppError::Conflict {
                    aggregate,
                    attempts,
                });
            }
            other => return other,
        }
    }
}

/// A random wait below 1 ms · 2^attempt (at most 64 ms), so racing writers spread out.
fn backoff(attempt: u32) -> Duration {
    let ceiling_us = 1000u64 << attempt.min(6);
    let random = RandomState::new().build_hasher().finish();
    Duration::from_micros(random % ceiling_us)
}

#[cfg(test)]
mod tests {
    use super::{backoff, AppError, MAX_ATTEMPTS};
    use std::cell::Cell;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;

    async fn retry<T, F, Fut>(attempt: F) -> Result<T, AppError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, AppError>>,
    {
        let retried = AtomicU64::new(0);
        let result = super::retry(&retried, attempt).await;
        let expected = match &result {
            Err(AppError::Conflict { attempts, .. }) => u64::from(*attempts) - 1,
            _ => retried.load(Ordering::Relaxed),
        };
        assert_eq!(
            retried.load(Ordering::Relaxed),
            expected,
            "every retry is counted"
        );
        result
    }

    #[test]
    fn backoff_stays_under_its_ceiling() {
        for attempt in 1..=MAX_ATTEMPTS {
            assert!(backoff(attempt) < Duration::from_millis(64));
        }
        assert!(backoff(1) < Duration::from_millis(2));
    }

    fn lost_race() -> AppError {
        AppError::Conflict {
            aggregate: "Lead",
            attempts: 1,
        }
    }

    #[tokio::test]
    async fn retries_a_lost_race_and_returns_the_next_outcome() {
        let calls = Cell::new(0);
        let result = retry(|| {
            calls.set(calls.get() + 1);
            async {
                if calls.get() < 3 {
                    Err(lost_race())
                } else {
                    Ok(calls.get())
                }
            }
        })
        .await;
        assert_eq!(result.unwrap(), 3);
    }

    #[tokio::test]
    async fn gives_up_after_the_bounded_number_of_attempts() {
        let calls = Cell::new(0);
        let result: Result<(), _> = retry(|| {
            calls.set(calls.get() + 1);
            async { Err(lost_race()) }
        })
        .await;
        assert_eq!(calls.get(), MAX_ATTEMPTS);
        assert!(
            matches!(result, Err(AppError::Conflict { aggregate: "Lead", attempts }) if attempts == MAX_ATTEMPTS)
        );
    }

    #[tokio::test]
    async fn does_not_retry_a_refusal() {
        let calls = Cell::new(0);
        let result: Result<(), _> = retry(|| {
            calls.set(calls.get() + 1);
            async {
                Err(AppError::refusal(
                    crate::error::codes::ALREADY_CLAIMED,
                    leadroute_domain::RefusalKind::Conflict,
                    "taken",
                ))
            }
        })
        .await;
        assert_eq!(calls.get(), 1);
        assert_eq!(result.unwrap_err().code(), "already_claimed");
    }
}

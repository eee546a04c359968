//! The application layer: executes domain commands through postgres-es's event store (no
//! snapshots, no aggregate store, no query processors), after looking up from the event
//! store the facts each command needs. Optimistic-concurrency conflicts are retried a
//! bounded number of times.
//!
//! Every method is scoped to one org: an aggregate of another org is reported as not found.
//! Nothing here speaks HTTP or NATS.

mod batch;
mod bulk;
mod error;
mod facts;
mod leads;
mod lookups;
mod org;
mod partners;
mod queues;
mod routing;
mod templates;

pub(crate) use batch::Batch;
pub use bulk::{BulkRequest, BulkScope, BulkSelection, BATCH as BULK_BATCH};
pub(crate) use error::refused;
pub use error::{codes, AppError};
pub(crate) use facts::{missing, RoutingFacts};
pub use leads::NewLead;
pub use lookups::InOrg;
pub use partners::{NewContact, NewPartnerAccount};

use chrono::{DateTime, Utc};
use cqrs_es::persist::{PersistedEventRepository, PersistedEventStore, PersistenceError};
use cqrs_es::{Aggregate, AggregateError, EventEnvelope, EventStore};
use leadroute_domain::ids::Actor;
use leadroute_domain::Refusal;
use leadroute_projections::log::Checkpoint;
use leadroute_projections::schema::{EVENTS_TABLE, UNUSED_SNAPSHOTS_TABLE};
use postgres_es::PostgresEventRepository;
use sqlx::PgPool;
use std::any::Any;
use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
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
}

type Store<A> = PersistedEventStore<PostgresEventRepository, A>;
pub(crate) type Loaded<A> = cqrs_es::persist::EventStoreAggregateContext<A>;

/// Executes commands against the event store.
#[derive(Clone)]
pub struct Commands {
    /// Pool of the database that holds the `events` table.
    pool: PgPool,
    /// Optimistic-concurrency races lost and retried so far (a metric, and the proof in
    /// tests that concurrent commands really raced).
    conflicts_retried: Arc<AtomicU64>,
    /// States of `InOrg::CACHED` aggregates with their sequence, by type and id: the next
    /// load reads only the events after it.
    cache: Arc<Mutex<HashMap<(&'static str, String), CachedState>>>,
}

/// A cached aggregate state and the sequence it has applied.
type CachedState = Box<dyn Any + Send + Sync>;

impl Commands {
    /// Commands over the event store in `pool`'s database (migrations already applied).
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            conflicts_retried: Arc::default(),
            cache: Arc::default(),
        }
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

    fn store<A: Aggregate>(&self) -> Store<A> {
        let repo = PostgresEventRepository::new(self.pool.clone())
            .with_tables(EVENTS_TABLE, UNUSED_SNAPSHOTS_TABLE);
        PersistedEventStore::new_event_store(repo)
            .with_upcasters(leadroute_domain::upcasters::upcasters())
    }

    /// Load an aggregate by replaying its events.
    async fn load<A>(&self, id: impl ToString) -> Result<Loaded<A>, AppError>
    where
        A: Aggregate<Services = ()>,
        A::Error: Refusal + Send + Sync + 'static,
    {
        Ok(self.store::<A>().load_aggregate(&id.to_string()).await?)
    }

    /// Load an aggregate from its cached state, reading only the events after it (the
    /// result is exactly what a full replay gives: the same events applied in order). Falls
    /// back to a full load when upcasters are configured.
    async fn load_cached<A>(&self, id: &str) -> Result<Loaded<A>, AppError>
    where
        A: lookups::InOrg,
        A::Error: Refusal + Send + Sync + 'static,
    {
        if !leadroute_domain::upcasters::upcasters().is_empty() {
            return self.load::<A>(id).await;
        }
        let key = (A::TYPE, id.to_string());
        let cached = self
            .cache
            .lock()
            .expect("aggregate cache lock")
            .get(&key)
            .and_then(|state| state.downcast_ref::<(A, usize)>().cloned());
        let (mut aggregate, mut sequence) = cached.unwrap_or_default();
        let repo = PostgresEventRepository::new(self.pool.clone())
            .with_tables(EVENTS_TABLE, UNUSED_SNAPSHOTS_TABLE);
        let newer = repo
            .get_last_events::<A>(id, sequence)
            .await
            .map_err(|e| AppError::from(AggregateError::<A::Error>::from(e)))?;
        for serialized in newer {
            let envelope: EventEnvelope<A> =
                serialized.try_into().map_err(|e: PersistenceError| {
                    AppError::from(AggregateError::<A::Error>::from(e))
                })?;
            sequence = envelope.sequence;
            aggregate.apply(envelope.payload);
        }
        let loaded = Loaded {
            aggregate_id: id.to_string(),
            aggregate,
            current_sequence: sequence,
            current_snapshot: None,
        };
        self.remember([(loaded.aggregate.clone(), loaded.current_sequence, key.1)]);
        Ok(loaded)
    }

    /// Keep `(state, sequence, id)` of aggregates of type `A` as this process's cached
    /// states: states a load just read, or a batch just committed (the next cached load
    /// then reads none of the events this process wrote itself).
    pub(crate) fn remember<A>(&self, states: impl IntoIterator<Item = (A, usize, String)>)
    where
        A: lookups::InOrg,
        A::Error: Refusal + Send + Sync + 'static,
    {
        let mut cache = self.cache.lock().expect("aggregate cache lock");
        for (aggregate, sequence, id) in states {
            cache.insert((A::TYPE, id), Box::new((aggregate, sequence)));
        }
    }

    /// Decide `command` against the loaded aggregate and commit the events it produces, with
    /// the actor, correlation, causation and org ids as metadata.
    #[tracing::instrument(level = "debug", skip_all, fields(
        aggregate = A::TYPE,
        aggregate_id = %loaded.aggregate_id,
        correlation_id = %meta.correlation_id,
    ))]
    async fn commit<A>(
        &self,
        mut loaded: Loaded<A>,
        command: A::Command,
        meta: &CommandMeta,
    ) -> Result<Committed, AppError>
    where
        A: lookups::InOrg,
        A::Error: Refusal + Send + Sync + 'static,
    {
        let events = decide(&mut loaded, command).await?;
        let metadata = event_metadata(meta, loaded.aggregate.org());
        for event in &events {
            let mut size = ByteCount(0);
            serde_json::to_writer(&mut size, event).map_err(|e| AppError::Store(Box::new(e)))?;
            check_event_size(size.0)?;
        }
        let aggregate_id = loaded.aggregate_id.clone();
        let before = loaded.current_sequence;
        if events.is_empty() {
            return Ok(Committed {
                aggregate_type: A::TYPE,
                aggregate_id,
                events: 0,
                sequence: before,
            });
        }
        let written = self
            .store::<A>()
            .commit(events, loaded, metadata)
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
            aggregate_id,
            events: written.len(),
            sequence: before + written.len(),
        })
    }
}

impl Commands {
    /// The log position of the last event a command wrote (or, for a no-op, of the
    /// aggregate's last event); `None` when the aggregate has no events. A reader whose
    /// projections reached it sees the command's effect.
    pub async fn position(&self, committed: &Committed) -> Result<Option<Checkpoint>, AppError> {
        if committed.sequence == 0 {
            return Ok(None);
        }
        let row: Option<(String, i64)> = sqlx::query_as(&format!(
            "SELECT transaction_id::text, global_position FROM {EVENTS_TABLE}
              WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence = $3"
        ))
        .bind(committed.aggregate_type)
        .bind(&committed.aggregate_id)
        .bind(committed.sequence as i64)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| AppError::Store(Box::new(e)))?;
        row.map(|(tx, pos)| {
            format!("{tx}/{pos}")
                .parse()
                .map_err(|e: String| AppError::Store(e.into()))
        })
        .transpose()
    }
}

/// Decide `command` against `loaded`; its state advances by the events at once.
async fn decide<A>(loaded: &mut Loaded<A>, command: A::Command) -> Result<Vec<A::Event>, AppError>
where
    A: lookups::InOrg,
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

/// Counts the bytes written to it.
struct ByteCount(usize);

impl std::io::Write for ByteCount {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Refuse an event larger than any reader can carry ([`limits::MAX_EVENT_BYTES`] as JSON):
/// the edges bound every input well below it, so this is the last line, never reached by
/// valid input.
///
/// [`limits::MAX_EVENT_BYTES`]: leadroute_domain::limits::MAX_EVENT_BYTES
pub(crate) fn check_event_size(bytes: usize) -> Result<(), AppError> {
    let max = leadroute_domain::limits::MAX_EVENT_BYTES;
    if bytes > max {
        return Err(AppError::refusal(
            error::codes::EVENT_TOO_LARGE,
            leadroute_domain::RefusalKind::InvalidInput,
            format!("the event would take {bytes} bytes; at most {max} are stored"),
        ));
    }
    Ok(())
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
                    super::codes::ALREADY_CLAIMED,
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

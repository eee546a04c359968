//! Loading and committing aggregates: the one write path to the `events` table.
//!
//! - **Loading** reads an aggregate's events in sequence order and applies them through the
//!   upcasters: one aggregate, many with one query, or from this process's cached states
//!   reading only the events committed since (one query for many).
//! - **Committing** takes a [`Batch`] of events decided against loaded aggregates (one
//!   command's, or a whole intake or bulk batch's) and writes it in one multi-row INSERT,
//!   which returns the log position of the last event: no second query. The primary key
//!   `(aggregate_type, aggregate_id, sequence)` is the optimistic-concurrency check: if any
//!   aggregate changed since it was loaded, nothing is written and the caller gets
//!   [`StoreError::Conflict`] to load again and retry.

use crate::cache::Cache;
use crate::log::{parse_xid, Checkpoint};
use crate::schema::EVENTS_TABLE;
use cqrs_es::persist::{EventUpcaster, SerializedEvent};
use cqrs_es::{Aggregate, DomainEvent, EventEnvelope};
use serde_json::Value;
use sqlx::PgPool;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use uuid::Uuid;

/// An aggregate's state as loaded, with the sequence number of its last event (0 when it
/// has none) and its id as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded<A> {
    /// Its id as stored.
    pub aggregate_id: String,
    /// Its state after every event.
    pub aggregate: A,
    /// The sequence of its last event; the next event is stored at one more.
    pub current_sequence: usize,
}

/// Why the store did not load or commit.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// An aggregate changed since it was loaded (a lost optimistic-concurrency race).
    #[error("an aggregate changed since it was loaded")]
    Conflict,
    /// An event larger than any reader can carry.
    #[error("the event would take {bytes} bytes; at most {max} are stored")]
    TooLarge {
        /// Its size as JSON.
        bytes: usize,
        /// The most stored.
        max: usize,
    },
    /// PostgreSQL failed or refused.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// A stored event does not decode, or an event does not encode.
    #[error("event does not decode: {0}")]
    Codec(String),
}

/// The event store of one database, with this process's cache of aggregate states.
#[derive(Clone)]
pub struct EventStore {
    pool: PgPool,
    cache: Arc<Cache>,
}

impl EventStore {
    /// The store in `pool`'s database (migrations already applied), with an empty cache.
    pub fn new(pool: PgPool) -> EventStore {
        EventStore {
            pool,
            cache: Arc::default(),
        }
    }

    /// The database pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Load one aggregate by replaying its events (a new, default one when it has none).
    pub async fn load<A: Aggregate>(&self, id: &str) -> Result<Loaded<A>, StoreError> {
        let ids = [id.to_string()];
        let mut loaded = self.load_many::<A>(&ids).await?;
        Ok(loaded
            .remove(id)
            .expect("every requested aggregate is returned"))
    }

    /// Load every aggregate in `ids` with one query; ids without events come back as new
    /// (default) aggregates.
    pub async fn load_many<A: Aggregate>(
        &self,
        ids: &[String],
    ) -> Result<HashMap<String, Loaded<A>>, StoreError> {
        let rows: Vec<EventRow> = sqlx::query_as(&format!(
            "SELECT aggregate_id, sequence, event_type, event_version, payload, metadata
               FROM {EVENTS_TABLE}
              WHERE aggregate_type = $1 AND aggregate_id = ANY($2)
              ORDER BY aggregate_id, sequence"
        ))
        .bind(A::TYPE)
        .bind(ids)
        .fetch_all(&self.pool)
        .await?;
        let mut loaded: HashMap<String, Loaded<A>> =
            ids.iter().map(|id| (id.clone(), fresh(id))).collect();
        apply_rows(&mut loaded, rows, &leadroute_domain::upcasters::upcasters())?;
        Ok(loaded)
    }

    /// Load one aggregate from this process's cached state, reading only the events after
    /// it (see [`EventStore::load_many_cached`]).
    pub async fn load_cached<A>(&self, id: &str) -> Result<Loaded<A>, StoreError>
    where
        A: Aggregate + Clone + 'static,
    {
        let ids = [id.to_string()];
        let mut loaded = self.load_many_cached::<A>(&ids).await?;
        Ok(loaded
            .remove(id)
            .expect("every requested aggregate is returned"))
    }

    /// Load every aggregate in `ids` from this process's cached states, reading with one
    /// query only the events committed after each cached state (usually none): for
    /// aggregates loaded over and over, such as the pools, partner users and queues routing
    /// judges. The result is exactly what a full replay gives. Falls back to
    /// [`EventStore::load_many`] when upcasters exist.
    pub async fn load_many_cached<A>(
        &self,
        ids: &[String],
    ) -> Result<HashMap<String, Loaded<A>>, StoreError>
    where
        A: Aggregate + Clone + 'static,
    {
        if !leadroute_domain::upcasters::upcasters().is_empty() {
            return self.load_many::<A>(ids).await;
        }
        let mut loaded: HashMap<String, Loaded<A>> = ids
            .iter()
            .map(|id| {
                let entry = match self.cache.get::<A>(id) {
                    Some((aggregate, current_sequence)) => Loaded {
                        aggregate_id: id.clone(),
                        aggregate,
                        current_sequence,
                    },
                    None => fresh(id),
                };
                (id.clone(), entry)
            })
            .collect();
        let sequences: Vec<i64> = ids
            .iter()
            .map(|id| loaded[id].current_sequence as i64)
            .collect();
        let rows: Vec<EventRow> = sqlx::query_as(&format!(
            "SELECT e.aggregate_id, e.sequence, e.event_type, e.event_version, e.payload, e.metadata
               FROM {EVENTS_TABLE} e
               JOIN UNNEST($2::text[], $3::bigint[]) AS c(id, after)
                 ON e.aggregate_id = c.id AND e.sequence > c.after
              WHERE e.aggregate_type = $1
              ORDER BY e.aggregate_id, e.sequence"
        ))
        .bind(A::TYPE)
        .bind(ids)
        .bind(&sequences)
        .fetch_all(&self.pool)
        .await?;
        let changed = apply_rows(&mut loaded, rows, &[])?;
        self.remember(changed.into_iter().map(|id| {
            let entry = &loaded[&id];
            (entry.aggregate.clone(), entry.current_sequence, id)
        }));
        Ok(loaded)
    }

    /// Keep `(state, sequence, id)` of aggregates of type `A` as this process's cached
    /// states: states a load just read, or a batch just committed (the next cached load
    /// then reads none of the events this process wrote itself).
    pub fn remember<A>(&self, states: impl IntoIterator<Item = (A, usize, String)>)
    where
        A: Aggregate + Clone + 'static,
    {
        self.cache.put(states);
    }

    /// Write every event of `batch` in one statement (one transaction); returns the log
    /// position of its last event (`None` for an empty batch). A primary-key violation means
    /// some aggregate changed since it was loaded: nothing is written.
    pub async fn commit(&self, batch: Batch) -> Result<Option<Checkpoint>, StoreError> {
        if batch.payloads.is_empty() {
            return Ok(None);
        }
        let result: Result<(String, i64), sqlx::Error> = sqlx::query_as(&format!(
            "WITH written AS (
                 INSERT INTO {EVENTS_TABLE}
                        (aggregate_type, aggregate_id, sequence, event_type, event_version, payload,
                         metadata, event_id)
                 SELECT t, i, s, e, v, p::jsonb, m::jsonb, id
                   FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[],
                               $6::text[], $7::text[], $8::uuid[]) AS b(t, i, s, e, v, p, m, id)
                 RETURNING transaction_id, global_position)
             SELECT min(transaction_id::text), max(global_position) FROM written"
        ))
        .bind(batch.aggregate_types)
        .bind(batch.aggregate_ids)
        .bind(batch.sequences)
        .bind(batch.event_types)
        .bind(batch.event_versions)
        .bind(batch.payloads)
        .bind(batch.metadata)
        .bind(batch.event_ids)
        .fetch_one(&self.pool)
        .await;
        match result {
            Ok((tx, global_position)) => Ok(Some(Checkpoint {
                transaction_id: parse_xid(&tx).map_err(|e| StoreError::Codec(e.to_string()))?,
                global_position,
            })),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Err(StoreError::Conflict),
            Err(e) => Err(StoreError::Database(e)),
        }
    }
}

/// Events decided for one or more aggregates, not yet written, with the ids they will be
/// stored under (chosen here, so a command can name an event of the same batch, as routing
/// at intake names the `LeadReceived` that triggered it). Rows are kept column by column,
/// payloads and metadata already as JSON text.
#[derive(Default)]
pub struct Batch {
    aggregate_types: Vec<&'static str>,
    aggregate_ids: Vec<String>,
    sequences: Vec<i64>,
    event_types: Vec<String>,
    event_versions: Vec<String>,
    payloads: Vec<String>,
    metadata: Vec<String>,
    event_ids: Vec<Uuid>,
}

impl Batch {
    /// Queue `events` of aggregate `A` stored as `id`, after `sequence` (which advances),
    /// with `metadata` (a JSON object); returns their ids. Refused as a whole, queueing
    /// nothing, when one is larger than [`MAX_EVENT_BYTES`].
    ///
    /// [`MAX_EVENT_BYTES`]: leadroute_domain::limits::MAX_EVENT_BYTES
    pub fn record<A: Aggregate>(
        &mut self,
        id: &str,
        sequence: &mut usize,
        events: Vec<A::Event>,
        metadata: &str,
    ) -> Result<Vec<Uuid>, StoreError> {
        let payloads = events
            .iter()
            .map(|payload| {
                serde_json::to_string(payload).map_err(|e| StoreError::Codec(e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let max = leadroute_domain::limits::MAX_EVENT_BYTES;
        if let Some(bytes) = payloads.iter().map(String::len).find(|n| *n > max) {
            return Err(StoreError::TooLarge { bytes, max });
        }
        let mut ids = Vec::with_capacity(events.len());
        for (payload, text) in events.into_iter().zip(payloads) {
            *sequence += 1;
            self.aggregate_types.push(A::TYPE);
            self.aggregate_ids.push(id.to_string());
            self.sequences.push(*sequence as i64);
            self.event_types.push(payload.event_type());
            self.event_versions.push(payload.event_version());
            self.payloads.push(text);
            self.metadata.push(metadata.to_string());
            let id = Uuid::new_v4();
            self.event_ids.push(id);
            ids.push(id);
        }
        Ok(ids)
    }

    /// Events queued.
    pub fn len(&self) -> usize {
        self.payloads.len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.payloads.is_empty()
    }
}

/// A new aggregate stored as `id`: no events yet.
fn fresh<A: Aggregate>(id: &str) -> Loaded<A> {
    Loaded {
        aggregate_id: id.to_string(),
        aggregate: A::default(),
        current_sequence: 0,
    }
}

/// Stored events as loads select them.
type EventRow = (String, i64, String, String, Value, Value);

/// Apply `rows` (in sequence order per aggregate) to the loaded aggregates, through the
/// upcasters; returns the ids of the aggregates that changed.
fn apply_rows<A: Aggregate>(
    loaded: &mut HashMap<String, Loaded<A>>,
    rows: Vec<EventRow>,
    upcasters: &[Box<dyn EventUpcaster>],
) -> Result<HashSet<String>, StoreError> {
    let mut changed = HashSet::new();
    for (id, sequence, event_type, event_version, payload, metadata) in rows {
        let serialized = upcast(
            SerializedEvent::new(
                id.clone(),
                sequence as usize,
                A::TYPE.to_string(),
                event_type,
                event_version,
                payload,
                metadata,
            ),
            upcasters,
        );
        let envelope = EventEnvelope::<A>::try_from(serialized)
            .map_err(|e| StoreError::Codec(e.to_string()))?;
        if let Some(entry) = loaded.get_mut(&id) {
            entry.current_sequence = envelope.sequence;
            entry.aggregate.apply(envelope.payload);
            changed.insert(id);
        }
    }
    Ok(changed)
}

/// Apply the upcasters that apply to `event`, in order.
fn upcast(event: SerializedEvent, upcasters: &[Box<dyn EventUpcaster>]) -> SerializedEvent {
    upcasters.iter().fold(event, |event, upcaster| {
        if upcaster.can_upcast(&event.event_type, &event.event_version) {
            upcaster.upcast(event)
        } else {
            event
        }
    })
}

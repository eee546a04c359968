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
//! - **Open leads per owner** ([`OPEN_LEADS_TABLE`]) change in the same transaction as the
//!   events that change them ([`Batch::hold`]), and a batch may require an owner to hold at
//!   most a cap afterwards ([`Batch::cap`]): the updated row stays locked until the commit,
//!   so two concurrent commits cannot both take a member past its cap. A commit that would
//!   is refused as [`StoreError::Conflict`], like a lost race.
//! - **Waiting leads** ([`WAITING_LEADS_TABLE`]) are kept the same way ([`Batch::wait`],
//!   [`Batch::unwait`]), so the leads that wait for a target are known as soon as they are
//!   committed, oldest first ([`EventStore::waiting`]).

use crate::cache::Cache;
use crate::log::{parse_xid, Checkpoint};
use crate::schema::{EVENTS_TABLE, OPEN_LEADS_TABLE, WAITING_LEADS_TABLE};
use chrono::{DateTime, Utc};
use cqrs_es::persist::{EventUpcaster, SerializedEvent};
use cqrs_es::{Aggregate, DomainEvent, EventEnvelope};
use serde_json::Value;
use sqlx::PgPool;
use std::collections::{BTreeMap, HashMap, HashSet};
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

    /// Open leads each of `owners` of `org` holds, as committed (owners holding none are
    /// left out).
    pub async fn open_leads(
        &self,
        org: Uuid,
        owners: &[Uuid],
    ) -> Result<HashMap<Uuid, u32>, StoreError> {
        let rows: Vec<(Uuid, i32)> = sqlx::query_as(&format!(
            "SELECT owner_id, open FROM {OPEN_LEADS_TABLE} WHERE org_id = $1 AND owner_id = ANY($2)"
        ))
        .bind(org)
        .bind(owners)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(owner, open)| {
                if open < 0 {
                    // Only a count that drifted from the log can go below zero.
                    tracing::error!(%org, %owner, open, "an owner's open-lead count is negative");
                }
                (owner, u32::try_from(open).unwrap_or(0))
            })
            .collect())
    }

    /// Up to `limit` leads of `org` waiting for `target` (`None`: for a target not
    /// recorded), oldest first, after `after` (the `(since, lead)` of the last of a previous
    /// page).
    pub async fn waiting(
        &self,
        org: Uuid,
        target: Option<Uuid>,
        after: Option<(DateTime<Utc>, Uuid)>,
        limit: i64,
    ) -> Result<Vec<(DateTime<Utc>, Uuid)>, StoreError> {
        let (since, lead) = after.unzip();
        Ok(sqlx::query_as(&format!(
            "SELECT since, lead_id FROM {WAITING_LEADS_TABLE}
              WHERE org_id = $1 AND target IS NOT DISTINCT FROM $2
                AND ($3::timestamptz IS NULL OR (since, lead_id) > ($3, $4))
              ORDER BY since, lead_id LIMIT $5"
        ))
        .bind(org)
        .bind(target)
        .bind(since)
        .bind(lead)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    /// The targets the leads of `org` wait for, those waiting longest first (`None` for
    /// leads whose target was not recorded).
    pub async fn waiting_targets(&self, org: Uuid) -> Result<Vec<Option<Uuid>>, StoreError> {
        Ok(sqlx::query_scalar(&format!(
            "SELECT target FROM {WAITING_LEADS_TABLE} WHERE org_id = $1
              GROUP BY target ORDER BY min(since)"
        ))
        .bind(org)
        .fetch_all(&self.pool)
        .await?)
    }

    /// The orgs that have waiting leads.
    pub async fn orgs_waiting(&self) -> Result<Vec<Uuid>, StoreError> {
        Ok(sqlx::query_scalar(&format!(
            "SELECT DISTINCT org_id FROM {WAITING_LEADS_TABLE}"
        ))
        .fetch_all(&self.pool)
        .await?)
    }

    /// Write every event of `batch` in one statement (one transaction); returns the log
    /// position of its last event (`None` for an empty batch). A primary-key violation means
    /// some aggregate changed since it was loaded: nothing is written. A batch that changes
    /// open leads also updates [`OPEN_LEADS_TABLE`] and checks its caps in that transaction.
    pub async fn commit(&self, batch: Batch) -> Result<Option<Checkpoint>, StoreError> {
        if batch.payloads.is_empty() && batch.waits.is_empty() && batch.stale.is_empty() {
            return Ok(None);
        }
        // Events and open-lead counts are one statement; bounds and waiting leads need a
        // transaction around it.
        if batch.caps.is_empty()
            && batch.full.is_empty()
            && batch.waits.is_empty()
            && batch.stale.is_empty()
        {
            return conflict_or(insert(&batch, &self.pool).await);
        }
        let mut tx = self.pool.begin().await?;
        let written = match batch.payloads.is_empty() {
            true => None,
            false => conflict_or(insert(&batch, &mut *tx).await)?,
        };
        conflict_or(wait(&batch, &mut tx).await)?;
        let held = conflict_or(bounds(&batch, &mut tx).await)?;
        if !held {
            // Rolled back as the transaction drops.
            return Err(StoreError::Conflict);
        }
        conflict_or(tx.commit().await)?;
        Ok(written)
    }
}

/// The batch's events and its changes of open leads, in one statement answering the
/// position of the last event. The counts' rows are locked in key order, so concurrent
/// commits cannot deadlock on them.
async fn insert<'c>(
    batch: &Batch,
    db: impl sqlx::PgExecutor<'c>,
) -> Result<Option<Checkpoint>, sqlx::Error> {
    let changed = batch.open.iter().filter(|(_, delta)| **delta != 0);
    let (orgs, owners, deltas) = columns(changed.map(|((org, owner), d)| (*org, *owner, *d)));
    let (tx, global_position): (String, i64) = sqlx::query_as(&format!(
        "WITH written AS (
             INSERT INTO {EVENTS_TABLE}
                    (aggregate_type, aggregate_id, sequence, event_type, event_version, payload,
                     metadata, event_id)
             SELECT t, i, s, e, v, p::jsonb, m::jsonb, id
               FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[],
                           $6::text[], $7::text[], $8::uuid[]) AS b(t, i, s, e, v, p, m, id)
             RETURNING transaction_id, global_position),
         held AS (
             INSERT INTO {OPEN_LEADS_TABLE} AS l (org_id, owner_id, open)
             SELECT o, w, d FROM UNNEST($9::uuid[], $10::uuid[], $11::int[]) AS c(o, w, d)
              ORDER BY o, w
             ON CONFLICT (org_id, owner_id) DO UPDATE SET open = l.open + EXCLUDED.open)
         SELECT min(transaction_id::text), max(global_position) FROM written"
    ))
    .bind(&batch.aggregate_types)
    .bind(&batch.aggregate_ids)
    .bind(&batch.sequences)
    .bind(&batch.event_types)
    .bind(&batch.event_versions)
    .bind(&batch.payloads)
    .bind(&batch.metadata)
    .bind(&batch.event_ids)
    .bind(&orgs)
    .bind(&owners)
    .bind(&deltas)
    .fetch_one(db)
    .await?;
    let transaction_id = parse_xid(&tx).map_err(|e| sqlx::Error::Decode(e.into()))?;
    Ok(Some(Checkpoint {
        transaction_id,
        global_position,
    }))
}

/// Whether every owner the batch caps holds at most its cap, and every owner it needs full
/// still holds at least its cap (after the batch's own changes, applied with its events).
async fn bounds(
    batch: &Batch,
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
) -> Result<bool, sqlx::Error> {
    for (bounds, full) in [(&batch.caps, false), (&batch.full, true)] {
        if bounds.is_empty() {
            continue;
        }
        let (orgs, owners, caps) = columns(
            bounds
                .iter()
                .map(|((org, owner), cap)| (*org, *owner, i64::from(*cap))),
        );
        // Locked rows: a capped owner's was updated above; a full owner's is share-locked
        // so that no commit lowers it before this one ends.
        let rows: Vec<(i64, i64)> = sqlx::query_as(&format!(
            "SELECT l.open::bigint, c.cap
               FROM UNNEST($1::uuid[], $2::uuid[], $3::bigint[]) AS c(o, w, cap)
               JOIN {OPEN_LEADS_TABLE} l ON l.org_id = c.o AND l.owner_id = c.w
              ORDER BY c.o, c.w
                FOR SHARE OF l"
        ))
        .bind(&orgs)
        .bind(&owners)
        .bind(&caps)
        .fetch_all(&mut **tx)
        .await?;
        let holds = match full {
            false => rows.iter().all(|(open, cap)| open <= cap),
            // An owner without a row holds none: not full.
            true => rows.len() == bounds.len() && rows.iter().all(|(open, cap)| open >= cap),
        };
        if !holds {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Record the batch's waiting leads and forget those that wait no more.
async fn wait(
    batch: &Batch,
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
) -> Result<(), sqlx::Error> {
    if !batch.stale.is_empty() {
        let leads: Vec<Uuid> = batch.stale.keys().copied().collect();
        let since: Vec<DateTime<Utc>> = batch.stale.values().copied().collect();
        sqlx::query(&format!(
            "DELETE FROM {WAITING_LEADS_TABLE} w
              USING UNNEST($1::uuid[], $2::timestamptz[]) AS s(lead_id, since)
              WHERE w.lead_id = s.lead_id AND w.since = s.since"
        ))
        .bind(&leads)
        .bind(&since)
        .execute(&mut **tx)
        .await?;
    }
    if batch.waits.is_empty() {
        return Ok(());
    }
    let done: Vec<Uuid> = batch.waits.keys().copied().collect();
    sqlx::query(&format!(
        "DELETE FROM {WAITING_LEADS_TABLE} WHERE lead_id = ANY($1)"
    ))
    .bind(&done)
    .execute(&mut **tx)
    .await?;
    let waiting: Vec<&Waiting> = batch.waits.values().flatten().collect();
    if waiting.is_empty() {
        return Ok(());
    }
    let leads: Vec<Uuid> = waiting.iter().map(|w| w.lead).collect();
    let orgs: Vec<Uuid> = waiting.iter().map(|w| w.org).collect();
    let targets: Vec<Option<Uuid>> = waiting.iter().map(|w| w.target).collect();
    let since: Vec<DateTime<Utc>> = waiting.iter().map(|w| w.since).collect();
    let reasons: Vec<&str> = waiting.iter().map(|w| w.reason.as_str()).collect();
    sqlx::query(&format!(
        "INSERT INTO {WAITING_LEADS_TABLE} (lead_id, org_id, target, since, reason)
         SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::uuid[], $4::timestamptz[], $5::text[])"
    ))
    .bind(&leads)
    .bind(&orgs)
    .bind(&targets)
    .bind(&since)
    .bind(&reasons)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Rows of three as three columns (for `UNNEST`).
fn columns<A, B, C>(rows: impl Iterator<Item = (A, B, C)>) -> (Vec<A>, Vec<B>, Vec<C>) {
    let (mut a, mut b, mut c) = (Vec::new(), Vec::new(), Vec::new());
    for (x, y, z) in rows {
        a.push(x);
        b.push(y);
        c.push(z);
    }
    (a, b, c)
}

/// A lost race (a stored sequence taken, or a deadlock between commits) as
/// [`StoreError::Conflict`]; any other failure as it is.
fn conflict_or<T>(result: Result<T, sqlx::Error>) -> Result<T, StoreError> {
    match result {
        Ok(value) => Ok(value),
        Err(sqlx::Error::Database(e))
            if e.is_unique_violation() || e.code().as_deref() == Some("40P01") =>
        {
            Err(StoreError::Conflict)
        }
        Err(e) => Err(StoreError::Database(e)),
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
    /// Change of open leads per `(org, owner)`.
    open: BTreeMap<(Uuid, Uuid), i32>,
    /// The most open leads `(org, owner)` may hold after the batch.
    caps: BTreeMap<(Uuid, Uuid), u32>,
    /// The fewest open leads `(org, owner)` must still hold when the batch commits.
    full: BTreeMap<(Uuid, Uuid), u32>,
    /// Leads that wait from now on: `lead -> Some((org, since, reason))`, or wait no more:
    /// `lead -> None`.
    waits: BTreeMap<Uuid, Option<Waiting>>,
    /// Stale entries to forget: `lead -> since`, only if the entry is still that one.
    stale: BTreeMap<Uuid, DateTime<Utc>>,
}

/// A lead waiting for its target.
#[derive(Debug, Clone, PartialEq)]
pub struct Waiting {
    /// The lead.
    pub lead: Uuid,
    /// Its org.
    pub org: Uuid,
    /// The id of the target it waits for (a pool, queue or partner user); `None` when
    /// unknown (leads that waited before targets were recorded).
    pub target: Option<Uuid>,
    /// Since when it waits.
    pub since: DateTime<Utc>,
    /// Why (`all_at_capacity`, `no_assignable_member`).
    pub reason: String,
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

    /// `owner` of `org` holds `delta` more open leads once the batch is committed (a lead
    /// it took, negative for one it let go or that closed).
    pub fn hold(&mut self, org: Uuid, owner: Uuid, delta: i32) {
        *self.open.entry((org, owner)).or_default() += delta;
    }

    /// `owner` of `org` may hold at most `cap` open leads once the batch is committed, else
    /// nothing is (a [`StoreError::Conflict`]); the lowest of several caps holds.
    pub fn cap(&mut self, org: Uuid, owner: Uuid, cap: u32) {
        let held = self.caps.entry((org, owner)).or_insert(cap);
        *held = (*held).min(cap);
    }

    /// `owner` of `org` must still hold at least `cap` open leads when the batch commits,
    /// else nothing is (a [`StoreError::Conflict`]); its count cannot go down until then. A
    /// lead left waiting for full members is committed so: a member freeing a place at the
    /// same moment either sees the lead waiting (and wakes it) or is seen by it.
    pub fn full(&mut self, org: Uuid, owner: Uuid, cap: u32) {
        let held = self.full.entry((org, owner)).or_insert(cap);
        *held = (*held).max(cap);
    }

    /// `waiting.lead` waits for its target once the batch is committed.
    pub fn wait(&mut self, waiting: Waiting) {
        self.waits.insert(waiting.lead, Some(waiting));
    }

    /// Forget the entry of `lead` waiting `since`, found stale (the lead no longer waits),
    /// unless a commit has replaced it meanwhile (the lead waits again).
    pub fn forget_stale(&mut self, lead: Uuid, since: DateTime<Utc>) {
        self.stale.insert(lead, since);
    }

    /// `lead` waits no more once the batch is committed.
    pub fn unwait(&mut self, lead: Uuid) {
        self.waits.insert(lead, None);
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

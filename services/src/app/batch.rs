//! Many commands, on many aggregates, committed in one transaction: the write path for work
//! that moves many leads at once (bulk reassignment). Aggregates are loaded with one query
//! ([`Commands::load_many`]); each command is decided against its loaded aggregate, whose
//! state advances at once (so several commands on one aggregate see each other); then every
//! event goes into the events table in one multi-row INSERT. The primary key (aggregate
//! type, id, sequence) is the optimistic-concurrency check, exactly as postgres-es uses it:
//! if any aggregate changed since it was loaded, nothing of the batch is written and the
//! caller gets a conflict to retry.

use super::{lookups::InOrg, AppError, CommandMeta, Commands, Loaded};
use cqrs_es::persist::{EventUpcaster, SerializedEvent};
use cqrs_es::{DomainEvent, EventEnvelope};
use leadroute_domain::Refusal;
use leadroute_projections::schema::EVENTS_TABLE;
use serde_json::Value;
use std::collections::HashMap;
use uuid::Uuid;

/// Events decided for several aggregates, not yet written, with the ids they will be
/// stored under (chosen here, so a command can name an event of the same batch, as the
/// intake's routing names the `LeadReceived` that triggered it).
/// The rows are kept column by column, payloads and metadata already as JSON text (written
/// straight from the events, without an intermediate `serde_json::Value`).
#[derive(Default)]
pub(crate) struct Batch {
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
        let events = super::decide(loaded, command).await?;
        self.record(
            &loaded.aggregate,
            &loaded.aggregate_id,
            &mut loaded.current_sequence,
            events,
            meta,
        )
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
        let metadata = super::event_metadata(meta, aggregate.org());
        let metadata = serde_json::to_string(&metadata).map_err(store_error)?;
        let mut ids = Vec::with_capacity(events.len());
        let payloads = events
            .iter()
            .map(|payload| serde_json::to_string(payload).map_err(store_error))
            .collect::<Result<Vec<_>, _>>()?;
        for text in &payloads {
            super::check_event_size(text.len())?;
        }
        for (payload, text) in events.into_iter().zip(payloads) {
            *sequence += 1;
            self.aggregate_types.push(A::TYPE);
            self.aggregate_ids.push(id.to_string());
            self.sequences.push(*sequence as i64);
            self.event_types.push(payload.event_type());
            self.event_versions.push(payload.event_version());
            self.payloads.push(text);
            self.metadata.push(metadata.clone());
            let id = Uuid::new_v4();
            self.event_ids.push(id);
            ids.push(id);
        }
        Ok(ids)
    }
}

fn store_error(e: impl std::error::Error + Send + Sync + 'static) -> AppError {
    AppError::Store(Box::new(e))
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
        let rows: Vec<EventRow> = sqlx::query_as(&format!(
            "SELECT aggregate_id, sequence, event_type, event_version, payload, metadata
               FROM {EVENTS_TABLE}
              WHERE aggregate_type = $1 AND aggregate_id = ANY($2)
              ORDER BY aggregate_id, sequence"
        ))
        .bind(A::TYPE)
        .bind(ids)
        .fetch_all(&self.pool)
        .await
        .map_err(store_error)?;
        let upcasters = leadroute_domain::upcasters::upcasters();
        let mut loaded: HashMap<String, Loaded<A>> = ids
            .iter()
            .map(|id| {
                let fresh = Loaded::<A> {
                    aggregate_id: id.clone(),
                    aggregate: A::default(),
                    current_sequence: 0,
                    current_snapshot: None,
                };
                (id.clone(), fresh)
            })
            .collect();
        apply_rows(&mut loaded, rows, &upcasters)?;
        Ok(loaded)
    }

    /// Load every aggregate in `ids` from this process's cached states, reading with one
    /// query only the events committed after each cached state (usually none): for facts
    /// looked up over and over, such as the partner users, accounts, queues and pools every
    /// routing batch judges. The result is exactly what a full replay gives. Falls back to
    /// [`Commands::load_many`] when upcasters exist.
    pub(crate) async fn load_many_cached<A>(
        &self,
        ids: &[String],
    ) -> Result<HashMap<String, Loaded<A>>, AppError>
    where
        A: InOrg,
        A::Error: Refusal + Send + Sync + 'static,
    {
        if !leadroute_domain::upcasters::upcasters().is_empty() {
            return self.load_many::<A>(ids).await;
        }
        let mut loaded: HashMap<String, Loaded<A>> = {
            let cache = self.cache.lock().expect("aggregate cache lock");
            ids.iter()
                .map(|id| {
                    let (aggregate, sequence) = cache
                        .get(&(A::TYPE, id.clone()))
                        .and_then(|state| state.downcast_ref::<(A, usize)>().cloned())
                        .unwrap_or_default();
                    let entry = Loaded::<A> {
                        aggregate_id: id.clone(),
                        aggregate,
                        current_sequence: sequence,
                        current_snapshot: None,
                    };
                    (id.clone(), entry)
                })
                .collect()
        };
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
        .await
        .map_err(store_error)?;
        let changed = apply_rows(&mut loaded, rows, &[])?;
        self.remember(changed.into_iter().map(|id| {
            let entry = &loaded[&id];
            (entry.aggregate.clone(), entry.current_sequence, id)
        }));
        Ok(loaded)
    }

    /// Write every event of `batch` in one statement (one transaction). A primary-key
    /// violation means some aggregate changed since it was loaded: nothing is written and
    /// the result is a conflict the caller retries after loading again.
    pub(crate) async fn commit_batch(&self, batch: Batch) -> Result<usize, AppError> {
        let n = batch.payloads.len();
        if n == 0 {
            return Ok(0);
        }
        let result = sqlx::query(&format!(
            "INSERT INTO {EVENTS_TABLE}
                    (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata,
                     event_id)
             SELECT t, i, s, e, v, p::jsonb, m::jsonb, id
               FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[],
                           $6::text[], $7::text[], $8::uuid[]) AS b(t, i, s, e, v, p, m, id)"
        ))
        .bind(batch.aggregate_types)
        .bind(batch.aggregate_ids)
        .bind(batch.sequences)
        .bind(batch.event_types)
        .bind(batch.event_versions)
        .bind(batch.payloads)
        .bind(batch.metadata)
        .bind(batch.event_ids)
        .execute(&self.pool)
        .await;
        match result {
            Ok(_) => Ok(n),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Err(AppError::Conflict {
                aggregate: "batch",
                attempts: 1,
            }),
            Err(e) => Err(AppError::from(e)),
        }
    }
}

/// Stored events as [`Commands::load_many`] selects them.
type EventRow = (String, i64, String, String, Value, Value);

/// Apply `rows` (in sequence order per aggregate) to the loaded aggregates, through the
/// upcasters; returns the ids of the aggregates that changed.
fn apply_rows<A>(
    loaded: &mut HashMap<String, Loaded<A>>,
    rows: Vec<EventRow>,
    upcasters: &[Box<dyn EventUpcaster>],
) -> Result<std::collections::HashSet<String>, AppError>
where
    A: InOrg,
    A::Error: Refusal + Send + Sync + 'static,
{
    let mut changed = std::collections::HashSet::new();
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
        let envelope = EventEnvelope::<A>::try_from(serialized).map_err(store_error)?;
        if let Some(entry) = loaded.get_mut(&id) {
            entry.current_sequence = envelope.sequence;
            entry.aggregate.apply(envelope.payload);
            changed.insert(id);
        }
    }
    Ok(changed)
}

/// Apply the upcasters that apply to `event`, in order (as postgres-es's store does).
fn upcast(event: SerializedEvent, upcasters: &[Box<dyn EventUpcaster>]) -> SerializedEvent {
    upcasters.iter().fold(event, |event, upcaster| {
        if upcaster.can_upcast(&event.event_type, &event.event_version) {
            upcaster.upcast(event)
        } else {
            event
        }
    })
}

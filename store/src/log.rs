//! The event log read in commit-safe order.
//!
//! Rows are read strictly after a checkpoint `(transaction_id, global_position)`, only from
//! transactions below `pg_snapshot_xmin(pg_current_snapshot())` (so every transaction that
//! could still commit an earlier-positioned row has finished), ordered by that pair.
//! Reading by `global_position` alone would skip rows that commit out of order. Events are
//! decoded with the write side's types and upcasters.

use crate::schema::EVENTS_TABLE;
use chrono::{DateTime, Utc};
use cqrs_es::persist::{EventUpcaster, SerializedEvent};
use leadroute_domain::bulk::BulkEvent;
use leadroute_domain::lead::LeadEvent;
use leadroute_domain::org::OrgEvent;
use leadroute_domain::partner_account::PartnerAccountEvent;
use leadroute_domain::partner_user::PartnerUserEvent;
use leadroute_domain::pool::PoolEvent;
use leadroute_domain::queue::QueueEvent;
use leadroute_domain::rule_set::RuleSetEvent;
use leadroute_domain::templates::TemplatesEvent;
use serde_json::Value;
use sqlx::{PgConnection, Row};
use uuid::Uuid;

/// A position in commit order. `Checkpoint::ZERO` precedes every event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Checkpoint {
    /// The writing transaction (xid8).
    pub transaction_id: u64,
    /// The row's insertion position within the log.
    pub global_position: i64,
}

impl Checkpoint {
    /// Before the first event.
    pub const ZERO: Checkpoint = Checkpoint {
        transaction_id: 0,
        global_position: 0,
    };
}

impl std::fmt::Display for Checkpoint {
    /// `TX/POS`, the form the CLI and the HTTP API show and accept.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.transaction_id, self.global_position)
    }
}

impl std::str::FromStr for Checkpoint {
    type Err = String;

    /// Parses `TX/POS` (two non-negative integers).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || format!("{text:?} is not a log position TX/POS, e.g. 1234/56");
        let (tx, pos) = text.trim().split_once('/').ok_or_else(bad)?;
        let global_position: i64 = pos.parse().map_err(|_| bad())?;
        if global_position < 0 {
            return Err(bad());
        }
        Ok(Checkpoint {
            transaction_id: tx.parse().map_err(|_| bad())?,
            global_position,
        })
    }
}

/// A decoded domain event of any aggregate.
#[derive(Debug, Clone, PartialEq)]
pub enum AnyEvent {
    /// Of an org.
    Org(OrgEvent),
    /// Of a partner account.
    PartnerAccount(PartnerAccountEvent),
    /// Of a contact / partner user.
    PartnerUser(PartnerUserEvent),
    /// Of a queue.
    Queue(QueueEvent),
    /// Of a lead.
    Lead(LeadEvent),
    /// Of a round-robin pool.
    Pool(PoolEvent),
    /// Of an org's rule set.
    RuleSet(RuleSetEvent),
    /// Of an org's notification templates.
    Templates(TemplatesEvent),
    /// Of a bulk reassignment.
    Bulk(BulkEvent),
    /// Not decoded: of an aggregate type the reader did not ask for (its payload was not
    /// read), or read raw (see [`LogEvent::raw_payload`] and [`Reading`]).
    Unread,
    /// Its payload does not decode with the current types and upcasters (why): the
    /// projector runtime quarantines it for the reader instead of stopping.
    Undecodable(String),
}

/// One event as read from the log.
#[derive(Debug, Clone)]
pub struct LogEvent {
    /// Its position in commit order.
    pub position: Checkpoint,
    /// The aggregate's id (a UUID for every leadroute aggregate).
    pub aggregate_id: Uuid,
    /// The aggregate's sequence number of this event.
    pub sequence: i64,
    /// Stored event type.
    pub event_type: String,
    /// When the row was inserted.
    pub recorded_at: DateTime<Utc>,
    /// Unique id of the event.
    pub event_id: Uuid,
    /// The org the event belongs to (from its metadata; `None` for events stored without).
    pub org_id: Option<Uuid>,
    /// The aggregate type as stored (`Lead`).
    pub aggregate_type: String,
    /// The decoded event.
    pub event: AnyEvent,
    /// The stored payload text, when the reader asked for it raw (`event` is then
    /// `AnyEvent::Unread`).
    pub raw_payload: Option<String>,
}

/// Why a stored event could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The database failed.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Upper bound of a read, inclusive.
pub type Upto = Option<Checkpoint>;

/// Read at most `limit` events after `after` (and at most up to `upto`) in commit order.
pub async fn read_batch(
    conn: &mut PgConnection,
    after: Checkpoint,
    upto: Upto,
    limit: i64,
) -> Result<Vec<LogEvent>, LogError> {
    read_batch_of(conn, after, upto, limit, Reading::ALL).await
}

/// Which payloads a log reader needs, and how.
#[derive(Debug, Clone, Copy)]
pub struct Reading {
    /// Only the events of these aggregate types are read (all when `None`); the others
    /// come as [`AnyEvent::Unread`] with their position, so a reader still moves its
    /// checkpoint past them without fetching their payloads.
    pub types: Option<&'static [&'static str]>,
    /// Keep the stored payload text in [`LogEvent::raw_payload`] instead of decoding it
    /// (events an upcaster applies to are still decoded, upcast).
    pub raw: bool,
}

impl Reading {
    /// Every event, decoded.
    pub const ALL: Reading = Reading {
        types: None,
        raw: false,
    };
}

/// [`read_batch`], reading the payloads as `reading` says.
pub async fn read_batch_of(
    conn: &mut PgConnection,
    after: Checkpoint,
    upto: Upto,
    limit: i64,
    reading: Reading,
) -> Result<Vec<LogEvent>, LogError> {
    let upto = upto.unwrap_or(Checkpoint {
        transaction_id: i64::MAX as u64,
        global_position: i64::MAX,
    });
    let rows = sqlx::query(&format!(
        "SELECT aggregate_type, aggregate_id, sequence, event_type, event_version,
                CASE WHEN $6::text[] IS NULL OR aggregate_type = ANY($6) THEN payload::text END AS payload,
                metadata->>'org_id' AS org_id,
                transaction_id::text AS txid, global_position, recorded_at, event_id
           FROM {EVENTS_TABLE}
          WHERE (transaction_id, global_position) > ($1::text::xid8, $2)
            AND (transaction_id, global_position) <= ($3::text::xid8, $4)
            AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())
          ORDER BY {EVENTS_TABLE}.transaction_id, {EVENTS_TABLE}.global_position
          LIMIT $5"
    ))
    .bind(after.transaction_id.to_string())
    .bind(after.global_position)
    .bind(upto.transaction_id.to_string())
    .bind(upto.global_position)
    .bind(limit)
    .bind(reading.types)
    .fetch_all(conn)
    .await?;
    let upcasters = leadroute_domain::upcasters::upcasters();
    rows.iter()
        .map(|row| decode_row(row, &upcasters, reading.raw))
        .collect()
}

/// The event at `position`, read as `reading` says (for an operator's retry of a
/// quarantined event); `None` when no event is there.
pub async fn read_at(
    conn: &mut PgConnection,
    position: Checkpoint,
    reading: Reading,
) -> Result<Option<LogEvent>, LogError> {
    let row = sqlx::query(&format!(
        "SELECT aggregate_type, aggregate_id, sequence, event_type, event_version,
                CASE WHEN $2::text[] IS NULL OR aggregate_type = ANY($2) THEN payload::text END AS payload,
                metadata->>'org_id' AS org_id,
                transaction_id::text AS txid, global_position, recorded_at, event_id
           FROM {EVENTS_TABLE} WHERE (transaction_id, global_position) = ($1::text::xid8, $3)"
    ))
    .bind(position.transaction_id.to_string())
    .bind(reading.types)
    .bind(position.global_position)
    .fetch_optional(conn)
    .await?;
    let upcasters = leadroute_domain::upcasters::upcasters();
    row.map(|row| decode_row(&row, &upcasters, reading.raw))
        .transpose()
}

/// Parse an xid8 selected as text (it always is a decimal number).
pub fn parse_xid(text: &str) -> Result<u64, sqlx::Error> {
    text.parse().map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

fn decode_row(
    row: &sqlx::postgres::PgRow,
    upcasters: &[Box<dyn EventUpcaster>],
    raw: bool,
) -> Result<LogEvent, LogError> {
    let aggregate_type: String = row.try_get("aggregate_type")?;
    let aggregate_id: String = row.try_get("aggregate_id")?;
    let event_type: String = row.try_get("event_type")?;
    let event_version: String = row.try_get("event_version")?;
    let event_id: Uuid = row.try_get("event_id")?;
    let sequence: i64 = row.try_get("sequence")?;
    let payload: Option<&str> = row.try_get("payload")?;
    let keep_raw = raw
        && !upcasters
            .iter()
            .any(|u| u.can_upcast(&event_type, &event_version));
    let raw_payload = payload.filter(|_| keep_raw).map(str::to_string);
    let mut event = if keep_raw {
        AnyEvent::Unread
    } else if let Some(payload) = payload {
        decode_stored(
            payload,
            &aggregate_type,
            &aggregate_id,
            sequence,
            &event_type,
            &event_version,
            upcasters,
        )
        .unwrap_or_else(AnyEvent::Undecodable)
    } else {
        AnyEvent::Unread
    };
    let parsed_id = aggregate_id.parse().unwrap_or_else(|e| {
        event = AnyEvent::Undecodable(format!("aggregate id {aggregate_id:?}: {e}"));
        Uuid::nil()
    });
    Ok(LogEvent {
        position: Checkpoint {
            transaction_id: parse_xid(row.try_get::<&str, _>("txid")?)?,
            global_position: row.try_get("global_position")?,
        },
        aggregate_id: parsed_id,
        sequence,
        event_type,
        recorded_at: row.try_get("recorded_at")?,
        event_id,
        org_id: row
            .try_get::<Option<&str>, _>("org_id")?
            .and_then(|org| org.parse().ok()),
        aggregate_type,
        event,
        raw_payload,
    })
}

/// Decode a stored payload, through the upcasters that apply to it.
fn decode_stored(
    payload: &str,
    aggregate_type: &str,
    aggregate_id: &str,
    sequence: i64,
    event_type: &str,
    event_version: &str,
    upcasters: &[Box<dyn EventUpcaster>],
) -> Result<AnyEvent, String> {
    if !upcasters
        .iter()
        .any(|u| u.can_upcast(event_type, event_version))
    {
        // The common case: no upcaster applies, so decode straight from the stored text.
        return decode_payload(aggregate_type, payload);
    }
    let value: Value = serde_json::from_str(payload).map_err(|e| e.to_string())?;
    let serialized = SerializedEvent::new(
        aggregate_id.to_string(),
        sequence as usize,
        aggregate_type.to_string(),
        event_type.to_string(),
        event_version.to_string(),
        value,
        Value::Null,
    );
    let upcast = upcasters.iter().fold(serialized, |event, upcaster| {
        if upcaster.can_upcast(&event.event_type, &event.event_version) {
            upcaster.upcast(event)
        } else {
            event
        }
    });
    decode_payload(aggregate_type, &upcast.payload.to_string())
}

fn decode_payload(aggregate_type: &str, payload: &str) -> Result<AnyEvent, String> {
    use cqrs_es::Aggregate;
    use leadroute_domain::{
        bulk, lead, org, partner_account, partner_user, pool, queue, rule_set, templates,
    };
    let decoded = match aggregate_type {
        org::Org::TYPE => serde_json::from_str(payload).map(AnyEvent::Org),
        partner_account::PartnerAccount::TYPE => {
            serde_json::from_str(payload).map(AnyEvent::PartnerAccount)
        }
        partner_user::PartnerUser::TYPE => serde_json::from_str(payload).map(AnyEvent::PartnerUser),
        queue::Queue::TYPE => serde_json::from_str(payload).map(AnyEvent::Queue),
        lead::Lead::TYPE => serde_json::from_str(payload).map(AnyEvent::Lead),
        pool::Pool::TYPE => serde_json::from_str(payload).map(AnyEvent::Pool),
        rule_set::RuleSet::TYPE => serde_json::from_str(payload).map(AnyEvent::RuleSet),
        templates::Templates::TYPE => serde_json::from_str(payload).map(AnyEvent::Templates),
        bulk::BulkOperation::TYPE => serde_json::from_str(payload).map(AnyEvent::Bulk),
        other => return Err(format!("unknown aggregate type {other}")),
    };
    decoded.map_err(|e| e.to_string())
}

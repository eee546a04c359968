//! Dead letters: messages a consumer can never process, stored with their raw payload,
//! subject, headers and a specific reason, one row per JetStream message (a redelivered
//! message is not stored twice). Listing, showing and marking replayed.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{FromRow, PgPool};
use uuid::Uuid;

/// A message to dead-letter.
#[derive(Debug, Clone)]
pub struct NewDeadLetter<'a> {
    /// The consumer that gave up (`intake`).
    pub source: &'a str,
    /// JetStream stream of the message.
    pub stream: &'a str,
    /// Its sequence in that stream.
    pub stream_sequence: u64,
    /// Its subject.
    pub subject: &'a str,
    /// Its headers as a JSON object of lists.
    pub headers: Value,
    /// Its raw payload.
    pub payload: &'a [u8],
    /// Stable reason code.
    pub reason: &'a str,
    /// What exactly is wrong.
    pub detail: &'a str,
}

/// A stored dead letter.
#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct DeadLetter {
    /// Its id.
    pub id: Uuid,
    /// The consumer that gave up.
    pub source: String,
    /// JetStream stream of the message.
    pub stream: String,
    /// Its sequence there.
    pub stream_sequence: i64,
    /// Its subject.
    pub subject: String,
    /// Its headers.
    pub headers: Value,
    /// Its raw payload.
    pub payload: Vec<u8>,
    /// Stable reason code.
    pub reason: String,
    /// Details.
    pub detail: String,
    /// When it was dead-lettered.
    pub created_at: DateTime<Utc>,
    /// When it was last replayed.
    pub replayed_at: Option<DateTime<Utc>>,
}

/// Store a dead letter; returns its id (the existing one when this message was stored
/// before).
pub async fn record(pool: &PgPool, letter: &NewDeadLetter<'_>) -> Result<Uuid, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO dead_letters (source, stream, stream_sequence, subject, headers, payload, reason, detail)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (stream, stream_sequence) DO UPDATE SET id = dead_letters.id
         RETURNING id",
    )
    .bind(letter.source)
    .bind(letter.stream)
    .bind(letter.stream_sequence as i64)
    .bind(letter.subject)
    .bind(&letter.headers)
    .bind(letter.payload)
    .bind(letter.reason)
    .bind(letter.detail)
    .fetch_one(pool)
    .await
}

/// The newest dead letters first.
pub async fn list(pool: &PgPool, limit: i64) -> Result<Vec<DeadLetter>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM dead_letters ORDER BY created_at DESC, id LIMIT $1")
        .bind(limit)
        .fetch_all(pool)
        .await
}

/// One dead letter.
pub async fn show(pool: &PgPool, id: Uuid) -> Result<Option<DeadLetter>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM dead_letters WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await
}

/// Mark a dead letter replayed now.
pub async fn mark_replayed(pool: &PgPool, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE dead_letters SET replayed_at = clock_timestamp() WHERE id = $1")
        .bind(id)
        .execute(pool)
        .await
        .map(|_| ())
}

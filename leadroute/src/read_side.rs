//! The read side's commands: `dlq`, `projections status|rebuild|quarantine|retry|skip`
//! and `audit verify`, which print to stdout. The tasks themselves are
//! `leadroute_workers::tasks`.

use leadroute_projections::projectors;
use leadroute_projections::quarantine::{self, Resolved};
use leadroute_projections::rebuild::{self, TableDifference};
use leadroute_projections::status;
use leadroute_store::log::Checkpoint;
use leadroute_workers::dead_letters;
use leadroute_workers::nats;
use sqlx::PgPool;
use std::io::Write;
use uuid::Uuid;

/// `leadroute dlq list`.
pub async fn print_dead_letters(pool: &PgPool, limit: i64) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    for letter in dead_letters::list(pool, limit).await? {
        let replayed = letter
            .replayed_at
            .map_or(String::new(), |at| format!(" (replayed {at})"));
        writeln!(
            out,
            "{}  {}  {:<8} {:<28} {}{replayed}",
            letter.id, letter.created_at, letter.source, letter.reason, letter.subject
        )?;
    }
    Ok(())
}

/// `leadroute dlq show ID`.
pub async fn print_dead_letter(pool: &PgPool, id: Uuid) -> anyhow::Result<()> {
    let letter = dead_letters::show(pool, id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no dead letter {id}"))?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "id:       {}\nsource:   {}\nstream:   {} #{}\nsubject:  {}",
        letter.id, letter.source, letter.stream, letter.stream_sequence, letter.subject
    )?;
    writeln!(
        out,
        "reason:   {}\ndetail:   {}\ncreated:  {}\nreplayed: {:?}",
        letter.reason, letter.detail, letter.created_at, letter.replayed_at
    )?;
    writeln!(
        out,
        "headers:  {}\npayload:\n{}",
        letter.headers,
        String::from_utf8_lossy(&letter.payload)
    )?;
    Ok(())
}

/// `leadroute dlq replay ID`: publish the payload again on its subject.
pub async fn replay_dead_letter(pool: &PgPool, url: &str, id: Uuid) -> anyhow::Result<()> {
    let letter = dead_letters::show(pool, id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no dead letter {id}"))?;
    let js = nats::connect(url).await?;
    js.publish(letter.subject.clone(), letter.payload.clone().into())
        .await?
        .await?;
    dead_letters::mark_replayed(pool, id).await?;
    writeln!(std::io::stdout(), "replayed {id} on {}", letter.subject)?;
    Ok(())
}

/// `leadroute publisher --reset-to TX/POS`: only ever backwards.
pub async fn reset_publisher(pool: &PgPool, to: &str) -> anyhow::Result<()> {
    let to: Checkpoint = to.parse().map_err(|e| anyhow::anyhow!("--reset-to: {e}"))?;
    let (tx, pos) = (to.transaction_id, to.global_position);
    let moved = sqlx::query(
        "UPDATE projection_checkpoints SET transaction_id = $2::text::xid8, global_position = $3,
                updated_at = clock_timestamp()
          WHERE name = $1 AND (transaction_id, global_position) >= ($2::text::xid8, $3)",
    )
    .bind(leadroute_workers::publisher::PUBLISHER)
    .bind(tx.to_string())
    .bind(pos)
    .execute(pool)
    .await?
    .rows_affected();
    anyhow::ensure!(
        moved == 1,
        "the publisher has no checkpoint at or after {tx}/{pos}: a reset only moves it back"
    );
    writeln!(
        std::io::stdout(),
        "publisher checkpoint reset to {tx}/{pos}"
    )?;
    Ok(())
}

/// `leadroute projections status`.
pub async fn print_status(pool: &PgPool) -> anyhow::Result<()> {
    let mut names: Vec<&str> = projectors::all().iter().map(|p| p.name()).collect();
    names.push(leadroute_workers::publisher::PUBLISHER);
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{:<20} {:>22} {:>14} {:>14} {:>10} {:>12}",
        "projection", "checkpoint (tx/pos)", "applied", "behind", "lag (s)", "quarantined"
    )?;
    for s in status::status(pool, &names).await? {
        let checkpoint = format!(
            "{}/{}",
            s.checkpoint.transaction_id, s.checkpoint.global_position
        );
        let quarantined = quarantine::open_count(pool, &s.name).await?;
        writeln!(
            out,
            "{:<20} {:>22} {:>14} {:>14} {:>10.1} {:>12}",
            s.name, checkpoint, s.events_applied, s.events_behind, s.seconds_behind, quarantined
        )?;
    }
    Ok(())
}

/// `leadroute projections quarantine [--all]`.
pub async fn print_quarantine(pool: &PgPool, all: bool) -> anyhow::Result<()> {
    let rows = quarantine::list(pool, all).await?;
    let mut out = std::io::stdout().lock();
    for q in &rows {
        writeln!(
            out,
            "{} {} at {} ({}/{}, org {}) since {}{}\n  {}",
            q.projection,
            q.event_id,
            q.position,
            q.aggregate_type,
            q.event_type,
            q.org_id.map_or("-".to_string(), |org| org.to_string()),
            q.quarantined_at,
            q.resolution
                .as_deref()
                .map_or(String::new(), |r| format!(" [{r}]")),
            q.reason
        )?;
    }
    writeln!(out, "{} quarantined event(s)", rows.len())?;
    Ok(())
}

/// `leadroute projections retry NAME EVENT_ID`.
pub async fn retry_quarantined(
    pool: &PgPool,
    name: &str,
    event_id: Uuid,
    nats: &crate::cli::NatsArgs,
) -> anyhow::Result<()> {
    let resolved = if name == leadroute_workers::publisher::PUBLISHER {
        let js = nats::connect(&nats.nats_url).await?;
        let publisher = leadroute_workers::publisher::Publisher::new(js, nats.names()?);
        quarantine::retry(pool, &publisher, event_id).await?
    } else {
        quarantine::retry(pool, projectors::by_name(name)?, event_id).await?
    };
    anyhow::ensure!(
        resolved == Resolved::Done,
        "event {event_id} is not quarantined for {name}"
    );
    writeln!(std::io::stdout(), "retried {event_id} for {name}: applied")?;
    Ok(())
}

/// `leadroute projections skip NAME EVENT_ID`.
pub async fn skip_quarantined(pool: &PgPool, name: &str, event_id: Uuid) -> anyhow::Result<()> {
    let resolved = quarantine::skip(pool, name, event_id).await?;
    anyhow::ensure!(
        resolved == Resolved::Done,
        "event {event_id} is not quarantined for {name}"
    );
    writeln!(std::io::stdout(), "skipped {event_id} for {name}")?;
    Ok(())
}

/// `leadroute projections rebuild NAME`.
pub async fn rebuild(pool: &PgPool, name: &str) -> anyhow::Result<()> {
    let projector = projectors::by_name(name)?;
    let started = std::time::Instant::now();
    let report = rebuild::rebuild(pool, projector).await?;
    let seconds = started.elapsed().as_secs_f64();
    writeln!(
        std::io::stdout(),
        "rebuilt {name}: {} events in {seconds:.1} s ({:.0} events/s), now at {}/{}",
        report.events,
        report.events as f64 / seconds.max(1e-9),
        report.checkpoint.transaction_id,
        report.checkpoint.global_position
    )?;
    Ok(())
}

/// `leadroute audit verify`: returns whether the read side matches the log.
pub async fn verify(pool: &PgPool) -> anyhow::Result<bool> {
    let differences = rebuild::verify(pool, &projectors::all()).await?;
    let mut out = std::io::stdout().lock();
    for TableDifference {
        projection,
        table,
        only_live,
        only_rebuilt,
        samples,
    } in &differences
    {
        writeln!(out, "{projection}.{table}: {only_live} rows only live, {only_rebuilt} rows only in the rebuild")?;
        for (side, row) in samples {
            writeln!(out, "  {side}: {row}")?;
        }
    }
    let open = quarantine::list(pool, false).await?;
    for q in &open {
        writeln!(
            out,
            "{}: event {} at {} ({}/{}) is quarantined: {}",
            q.projection, q.event_id, q.position, q.aggregate_type, q.event_type, q.reason
        )?;
    }
    if differences.is_empty() && open.is_empty() {
        writeln!(
            out,
            "audit verify: every projection matches a rebuild from the log (0 differences)"
        )?;
    }
    Ok(differences.is_empty() && open.is_empty())
}

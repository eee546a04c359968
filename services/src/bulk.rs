//! The bulk-reassignment runner: runs operations in the background of the process that
//! serves the API (or of `leadroute bulk`), at most one runner per operation across every
//! process (a PostgreSQL session advisory lock, released by the server when the holder
//! dies), and resumes unfinished operations after a restart. The moves themselves are
//! `app::Commands::run_bulk`'s; this module decides who runs what, and when, and holds the
//! `leadroute bulk` commands.

use crate::app::{AppError, BulkRequest, BulkScope, BulkSelection, CommandMeta, Commands};
use crate::cli::BulkStartArgs;
use chrono::{DateTime, Utc};
use leadroute_domain::bulk::{BulkOperation, LeadFilter};
use leadroute_domain::ids::{
    Actor, BulkOperationId, LeadId, OrgId, PartnerUserId, PoolId, QueueId,
};
use leadroute_domain::routing::rules::Target;
use serde::Serialize;
use serde_json::Value;
use sqlx::PgPool;
use std::collections::HashSet;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use utoipa::ToSchema;
use uuid::Uuid;

/// How often unfinished operations are looked for.
pub const RESUME_EVERY: Duration = Duration::from_secs(5);

/// Runs bulk operations; cheap to clone.
#[derive(Clone)]
pub struct BulkRunner {
    commands: Commands,
    pool: PgPool,
    running: Arc<Mutex<HashSet<BulkOperationId>>>,
}

impl BulkRunner {
    /// A runner over the event store in `pool`'s database.
    pub fn new(pool: PgPool) -> Self {
        Self {
            commands: Commands::new(pool.clone()),
            pool,
            running: Arc::default(),
        }
    }

    /// Run `id` in the background (no-op while this process already runs it).
    pub fn spawn(&self, org: OrgId, id: BulkOperationId) {
        let runner = self.clone();
        tokio::spawn(async move {
            if let Err(e) = runner.run(org, id).await {
                tracing::warn!(operation = %id, error = %e, "bulk operation stopped; it resumes later");
            }
        });
    }

    /// Run `id` to its end here, unless another runner (here or in another process) holds
    /// it: then `None` at once.
    pub async fn run(
        &self,
        org: OrgId,
        id: BulkOperationId,
    ) -> Result<Option<BulkOperation>, AppError> {
        if !self.running.lock().expect("running set").insert(id) {
            return Ok(None);
        }
        let result = self.run_locked(org, id).await;
        self.running.lock().expect("running set").remove(&id);
        result
    }

    async fn run_locked(
        &self,
        org: OrgId,
        id: BulkOperationId,
    ) -> Result<Option<BulkOperation>, AppError> {
        let store = |e: sqlx::Error| AppError::Store(Box::new(e));
        let mut lock = self.pool.acquire().await.map_err(store)?;
        let key = format!("leadroute.bulk.{id}");
        let (held,): (bool,) =
            sqlx::query_as("SELECT pg_try_advisory_lock(hashtextextended($1, 0))")
                .bind(&key)
                .fetch_one(&mut *lock)
                .await
                .map_err(store)?;
        if !held {
            return Ok(None);
        }
        tracing::info!(operation = %id, "bulk operation running");
        let result = self.commands.run_bulk(org, id).await;
        let unlocked = sqlx::query("SELECT pg_advisory_unlock(hashtextextended($1, 0))")
            .bind(&key)
            .execute(&mut *lock)
            .await;
        if unlocked.is_err() {
            // Never hand a connection that may still hold the lock back to the pool.
            drop(lock.detach());
        }
        if let Ok(done) = &result {
            tracing::info!(operation = %id, status = done.status.as_str(), moved = done.moved,
                skipped = done.skipped, refused = done.refused, "bulk operation finished");
        }
        result.map(Some)
    }

    /// Run every unfinished operation of every org to its end, one after another; returns
    /// how many this call ran.
    pub async fn resume_all(&self) -> Result<usize, AppError> {
        let mut ran = 0;
        for (org, id) in self.commands.unfinished_bulk_operations().await? {
            if self.run(org, id).await?.is_some() {
                ran += 1;
            }
        }
        Ok(ran)
    }

    /// Resume unfinished operations in the background every [`RESUME_EVERY`] until
    /// `shutdown` resolves.
    pub async fn run_until_stopped(self, shutdown: impl std::future::Future<Output = ()>) {
        let resume = async {
            loop {
                match self.commands.unfinished_bulk_operations().await {
                    Ok(unfinished) => {
                        for (org, id) in unfinished {
                            self.spawn(org, id);
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot look for unfinished bulk operations")
                    }
                }
                tokio::time::sleep(RESUME_EVERY).await;
            }
        };
        tokio::select! {
            () = resume => {}
            () = shutdown => {}
        }
    }
}

/// Where a bulk reassignment stands.
#[derive(Debug, Serialize, ToSchema)]
pub struct Progress {
    /// The operation.
    id: Uuid,
    /// `running`, `completed` or `cancelled`.
    status: &'static str,
    /// Why it was started.
    reason: String,
    /// Where the leads go (`{"kind", "id"}`).
    to: Value,
    /// How the leads were chosen (`{"kind": "list"}` or the filter).
    selection: Value,
    /// Assignment emails requested.
    notify: bool,
    /// Who started it.
    started_by: Value,
    /// Leads selected.
    total: usize,
    /// Leads with an outcome.
    processed: usize,
    /// Leads moved.
    moved: usize,
    /// Leads skipped (already with the target).
    skipped: usize,
    /// Leads refused (see the results for the reasons).
    refused: usize,
    /// When it started.
    started_at: Option<DateTime<Utc>>,
    /// When the last outcomes were recorded.
    progressed_at: Option<DateTime<Utc>>,
    /// When it completed or was cancelled.
    finished_at: Option<DateTime<Utc>>,
    /// Leads processed per second so far.
    leads_per_second: Option<f64>,
    /// Estimated seconds until every lead has its outcome (while running).
    seconds_left: Option<f64>,
}

impl From<&BulkOperation> for Progress {
    fn from(op: &BulkOperation) -> Self {
        let processed = op.outcomes.len();
        let elapsed = op
            .started_at
            .zip(op.progressed_at)
            .map(|(start, last)| (last - start).num_milliseconds() as f64 / 1000.0)
            .filter(|secs| *secs > 0.0);
        let rate = elapsed.map(|secs| processed as f64 / secs);
        let seconds_left = rate
            .filter(|r| *r > 0.0 && op.is_running())
            .map(|r| (op.total - processed) as f64 / r);
        Progress {
            id: op.id.map(|id| id.0).unwrap_or_default(),
            status: op.status.as_str(),
            reason: op.reason.clone(),
            to: serde_json::to_value(op.target).unwrap_or_default(),
            selection: serde_json::to_value(&op.selection).unwrap_or_default(),
            notify: op.notify,
            started_by: serde_json::to_value(&op.actor).unwrap_or_default(),
            total: op.total,
            processed,
            moved: op.moved,
            skipped: op.skipped,
            refused: op.refused,
            started_at: op.started_at,
            progressed_at: op.progressed_at,
            finished_at: op.finished_at,
            leads_per_second: rate,
            seconds_left,
        }
    }
}

/// `leadroute bulk start`: start the operation as the operator (actor `system:cli`), print
/// its id, then run it here to its end, printing progress on stderr and the final
/// progress on stdout.
pub async fn start_from_cli(pool: PgPool, args: &BulkStartArgs) -> anyhow::Result<()> {
    let org = OrgId(args.org);
    let target = parse_target(&args.to)?;
    let selection = match (&args.leads_file, &args.filter) {
        (Some(path), _) => BulkSelection::Leads(read_lead_ids(path)?),
        (None, Some(json)) => {
            let filter: LeadFilter = serde_json::from_str(json)
                .map_err(|e| anyhow::anyhow!("--filter is not a valid filter: {e}"))?;
            if filter == LeadFilter::default() {
                anyhow::bail!("--filter: give at least one condition (an empty filter would select every lead)");
            }
            BulkSelection::Filter(filter)
        }
        (None, None) => anyhow::bail!("give --leads-file or --filter"),
    };
    let id = match &args.key {
        Some(key) => BulkOperationId::for_key(org, "cli", key),
        None => BulkOperationId::new_random(),
    };
    let request = BulkRequest {
        selection,
        target,
        notify: args.notify,
        reason: args.reason.clone(),
    };
    let commands = Commands::new(pool.clone());
    let meta = CommandMeta::now(Actor::System("cli".into()));
    let committed = commands
        .start_bulk(&meta, org, id, &BulkScope::Org, &request)
        .await?;
    let mut out = std::io::stdout();
    writeln!(out, "operation_id: {id}")?;
    if committed.events == 0 {
        writeln!(
            out,
            "(already started with this key; nothing new was started)"
        )?;
    }
    out.flush()?;
    if args.no_wait {
        return Ok(());
    }
    let watcher = {
        let commands = commands.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                if let Ok(op) = commands.state::<BulkOperation>(org, id).await {
                    eprintln!(
                        "{}/{} leads: {} moved, {} skipped, {} refused",
                        op.outcomes.len(),
                        op.total,
                        op.moved,
                        op.skipped,
                        op.refused
                    );
                }
            }
        })
    };
    let finished = BulkRunner::new(pool).run(org, id).await;
    watcher.abort();
    match finished? {
        Some(op) => writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&Progress::from(&op))?
        )?,
        None => writeln!(out, "another runner holds this operation; it finishes it")?,
    }
    Ok(())
}

/// `leadroute bulk status`: the progress as JSON.
pub async fn print_status(pool: PgPool, org: Uuid, id: Uuid) -> anyhow::Result<()> {
    let op = Commands::new(pool)
        .state::<BulkOperation>(OrgId(org), BulkOperationId(id))
        .await?;
    let progress = serde_json::to_string_pretty(&Progress::from(&op))?;
    writeln!(std::io::stdout(), "{progress}")?;
    Ok(())
}

/// `leadroute bulk results`: one JSON object per lead, in selection order.
pub async fn print_results(
    pool: PgPool,
    org: Uuid,
    id: Uuid,
    result: Option<&str>,
) -> anyhow::Result<()> {
    let op = Commands::new(pool)
        .state::<BulkOperation>(OrgId(org), BulkOperationId(id))
        .await?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for outcome in &op.outcomes {
        let line = serde_json::to_value(outcome)?;
        if result.is_none_or(|kind| line["result"] == kind) {
            writeln!(out, "{line}")?;
        }
    }
    out.flush()?;
    Ok(())
}

/// `leadroute bulk cancel`.
pub async fn cancel_from_cli(pool: PgPool, org: Uuid, id: Uuid) -> anyhow::Result<()> {
    let meta = CommandMeta::now(Actor::System("cli".into()));
    Commands::new(pool)
        .cancel_bulk(&meta, OrgId(org), BulkOperationId(id))
        .await?;
    writeln!(std::io::stdout(), "cancelled: {id}")?;
    Ok(())
}

/// `partner_user:ID`, `queue:ID` or `pool:ID`.
fn parse_target(text: &str) -> anyhow::Result<Target> {
    let (kind, id) = text
        .split_once(':')
        .ok_or_else(|| anyhow::anyhow!("--to: expected KIND:ID, e.g. partner_user:<uuid>"))?;
    let id: Uuid = id
        .parse()
        .map_err(|e| anyhow::anyhow!("--to: `{id}` is not a UUID: {e}"))?;
    Ok(match kind {
        "partner_user" => Target::PartnerUser(PartnerUserId(id)),
        "queue" => Target::Queue(QueueId(id)),
        "pool" => Target::Pool(PoolId(id)),
        other => anyhow::bail!("--to: unknown kind `{other}` (partner_user, queue or pool)"),
    })
}

/// Lead ids, one per line (blank lines ignored), from a file or `-` (standard input).
fn read_lead_ids(path: &std::path::Path) -> anyhow::Result<Vec<LeadId>> {
    let text = if path == std::path::Path::new("-") {
        std::io::read_to_string(std::io::stdin())?
    } else {
        std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("--leads-file {}: {e}", path.display()))?
    };
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(n, line)| {
            line.trim().parse().map(LeadId).map_err(|e| {
                anyhow::anyhow!(
                    "--leads-file line {}: `{}` is not a lead id: {e}",
                    n + 1,
                    line.trim()
                )
            })
        })
        .collect()
}

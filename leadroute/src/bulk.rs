//! The `leadroute bulk` commands: start an operation as the operator and run it here,
//! print its status and results, cancel it.

use crate::cli::BulkStartArgs;
use leadroute_api::Progress;
use leadroute_app::bulk_runner::BulkRunner;
use leadroute_app::{BulkRequest, BulkScope, BulkSelection, CommandMeta, Commands};
use leadroute_domain::bulk::{BulkOperation, LeadFilter};
use leadroute_domain::ids::{
    Actor, BulkOperationId, LeadId, OrgId, PartnerUserId, PoolId, QueueId,
};
use leadroute_domain::routing::rules::Target;
use sqlx::PgPool;
use std::io::Write;
use std::time::Duration;
use uuid::Uuid;

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

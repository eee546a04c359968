//! `leadroute-bench bulk`: throughput of a bulk reassignment (leads/s) of `--leads` leads
//! from one partner user to another, next to the single-row commit rate of the same
//! PostgreSQL (16 clients, synchronous commit) measured in the same run. The operation runs
//! through the application layer exactly as `leadroute bulk` and the API run it.

use crate::intake::single_row_commits;
use crate::report::say;
use leadroute_app::{BulkRequest, BulkScope, BulkSelection, NewLead, BULK_BATCH};
use leadroute_domain::ids::{BulkOperationId, OrgId, PartnerUserId, UpstreamRef};
use leadroute_domain::routing::rules::Target;
use leadroute_tests::TestApp;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

pub async fn run(leads: usize) -> anyhow::Result<()> {
    let app = TestApp::spawn().await;
    let commit_rate = single_row_commits(&app.db.pool, 16, Duration::from_secs(3)).await?;
    say(format!(
        "single-row INSERT commits, 16 clients: {commit_rate:.0} commits/s"
    ));
    let org = app.prm_org().await;
    let account = app.active_partner(org).await;
    let (ada, bob) = (
        app.assignable_user(org, account).await,
        app.assignable_user(org, account).await,
    );
    let all: Vec<NewLead> = (0..leads)
        .map(|i| NewLead {
            upstream: UpstreamRef {
                system: "bench".into(),
                lead_id: format!("B{i}"),
            },
            upstream_event_id: format!("e{i}"),
            fields: BTreeMap::from([("country".to_string(), serde_json::json!("DE"))]),
            route: true,
            occurred_at: None,
            owner: None,
        })
        .collect();
    let started = Instant::now();
    let mut ids = Vec::with_capacity(leads);
    for chunk in all.chunks(1000) {
        for (id, written) in app.commands.receive_leads(&app.meta(), org, chunk).await? {
            written?;
            ids.push(id);
        }
    }
    say(format!(
        "received {leads} leads (1,000 per transaction) in {:.2} s = {:.0} leads/s",
        started.elapsed().as_secs_f64(),
        leads as f64 / started.elapsed().as_secs_f64()
    ));
    for (label, to) in [("unassigned -> user A", ada), ("user A -> user B", bob)] {
        let rate = operation(&app, org, &ids, to).await?;
        say(format!(
            "bulk reassignment {label}, {leads} leads ({BULK_BATCH} per transaction): {rate:.0} leads/s = {:.2}x the single-row commit rate",
            rate / commit_rate
        ));
    }
    Ok(())
}

/// Leads per second of one bulk operation moving `ids` to `to`, start to last outcome.
async fn operation(
    app: &TestApp,
    org: OrgId,
    ids: &[leadroute_domain::ids::LeadId],
    to: PartnerUserId,
) -> anyhow::Result<f64> {
    let request = BulkRequest {
        selection: BulkSelection::Leads(ids.to_vec()),
        target: Target::PartnerUser(to),
        notify: false,
        reason: "bench".into(),
    };
    let id = BulkOperationId::new_random();
    let started = Instant::now();
    app.commands
        .start_bulk(&app.meta(), org, id, &BulkScope::Org, &request)
        .await?;
    let done = app.commands.run_bulk(org, id).await?;
    let seconds = started.elapsed().as_secs_f64();
    anyhow::ensure!(
        done.moved == ids.len(),
        "moved {} of {}",
        done.moved,
        ids.len()
    );
    Ok(ids.len() as f64 / seconds)
}

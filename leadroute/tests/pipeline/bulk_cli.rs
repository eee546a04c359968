//! `leadroute bulk` as an operator runs it: a 10,000-lead operation is killed (SIGKILL) in
//! the middle, `leadroute bulk resume` finishes it, and no lead moves twice; starting it again
//! with the same key starts nothing.

use leadroute_app::{BulkRequest, BulkScope, BulkSelection, NewLead};
use leadroute_domain::bulk::{BulkOperation, BulkStatus};
use leadroute_domain::ids::{BulkOperationId, LeadId, OrgId, Owner, UpstreamRef};
use leadroute_domain::lead::Lead;
use leadroute_domain::routing::rules::Target;
use leadroute_tests::{eventually, TestApp};
use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use uuid::Uuid;

const LEADS: usize = 10_000;

async fn leads(app: &TestApp, org: OrgId) -> Vec<LeadId> {
    let all: Vec<NewLead> = (0..LEADS)
        .map(|i| NewLead {
            upstream: UpstreamRef {
                system: "hubspot".into(),
                lead_id: format!("H{i}"),
            },
            upstream_event_id: format!("e{i}"),
            fields: BTreeMap::new(),
            route: true,
            occurred_at: None,
            owner: None,
        })
        .collect();
    let mut ids = Vec::new();
    for chunk in all.chunks(1000) {
        for (id, written) in app
            .commands
            .receive_leads(&app.meta(), org, chunk)
            .await
            .unwrap()
        {
            written.unwrap();
            ids.push(id);
        }
    }
    ids
}

async fn bulk(db_url: &str, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_leadroute"))
        .arg("bulk")
        .args(args)
        .args(["--database-url", db_url])
        .output()
        .await
        .expect("run leadroute bulk")
}

async fn scalar(app: &TestApp, sql: &str, op: BulkOperationId) -> i64 {
    sqlx::query_scalar(sql)
        .bind(op.to_string())
        .fetch_one(&app.db.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_killed_bulk_operation_resumes_and_moves_no_lead_twice() {
    let app = TestApp::spawn().await;
    let org = app.prm_org().await;
    let account = app.active_partner(org).await;
    let (ada, bob) = (
        app.assignable_user(org, account).await,
        app.assignable_user(org, account).await,
    );
    let ids = leads(&app, org).await;
    let seed = BulkRequest {
        selection: BulkSelection::Leads(ids.clone()),
        target: Target::PartnerUser(ada),
        notify: false,
        reason: "seed".into(),
    };
    let seeded = BulkOperationId::new_random();
    app.commands
        .start_bulk(&app.meta(), org, seeded, &BulkScope::Org, &seed)
        .await
        .unwrap();
    let done = app.commands.run_bulk(org, seeded).await.unwrap();
    assert_eq!(done.moved, LEADS);

    let file = std::env::temp_dir().join(format!("leadroute-bulk-{}.txt", Uuid::new_v4()));
    let list: String = ids.iter().map(|id| format!("{id}\n")).collect();
    std::fs::write(&file, list).unwrap();
    let (org_arg, file_arg, to) = (
        org.to_string(),
        file.display().to_string(),
        format!("partner_user:{bob}"),
    );
    let start_args = [
        "start",
        "--org",
        &org_arg,
        "--leads-file",
        &file_arg,
        "--to",
        &to,
        "--reason",
        "Ada leaves",
        "--key",
        "ada-leaves",
    ];
    let mut child = Command::new(env!("CARGO_BIN_EXE_leadroute"))
        .arg("bulk")
        .args(start_args)
        .args(["--database-url", &app.db.url])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("run leadroute bulk start");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next_line().await.unwrap().expect("the operation id");
    let op: BulkOperationId = first
        .strip_prefix("operation_id: ")
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("unexpected first line {first}"));

    // Kill it once its first batch has committed.
    let batches = "SELECT count(*) FROM events WHERE aggregate_id = $1
                      AND event_type = 'BulkLeadsProcessed'";
    let started = eventually(Duration::from_secs(60), || async {
        (scalar(&app, batches, op).await > 0).then_some(())
    })
    .await;
    assert!(started.is_some(), "the first batch commits");
    child.start_kill().unwrap();
    child.wait().await.unwrap();
    let state: BulkOperation = app.commands.state(org, op).await.unwrap();
    assert!(
        state.outcomes.len() < LEADS && state.status == BulkStatus::Running,
        "killed in the middle: {} of {LEADS} processed",
        state.outcomes.len()
    );

    let resumed = bulk(&app.db.url, &["resume"]).await;
    assert!(
        resumed.status.success(),
        "{}",
        String::from_utf8_lossy(&resumed.stderr)
    );
    let state: BulkOperation = app.commands.state(org, op).await.unwrap();
    assert_eq!(
        (state.status, state.moved, state.outcomes.len()),
        (BulkStatus::Completed, LEADS, LEADS)
    );
    let moves = "SELECT count(*) FROM events WHERE event_type = 'LeadReassigned'
                    AND payload->'LeadReassigned'->>'operation' = $1";
    let moved_leads = "SELECT count(DISTINCT aggregate_id) FROM events
                        WHERE event_type = 'LeadReassigned'
                          AND payload->'LeadReassigned'->>'operation' = $1";
    assert_eq!(
        (
            scalar(&app, moves, op).await,
            scalar(&app, moved_leads, op).await
        ),
        (LEADS as i64, LEADS as i64),
        "every lead moved exactly once"
    );
    for lead in [ids[0], ids[LEADS / 2], ids[LEADS - 1]] {
        let lead: Lead = app.commands.state(org, lead).await.unwrap();
        assert_eq!(lead.owner, Some(Owner::PartnerUser(bob)));
    }

    // Starting again with the same key finds the finished operation and starts nothing.
    let again = bulk(&app.db.url, &start_args).await;
    let printed = String::from_utf8_lossy(&again.stdout);
    assert!(
        again.status.success() && printed.contains(&op.to_string()),
        "{printed}"
    );
    assert!(printed.contains("already started"), "{printed}");
    assert_eq!(scalar(&app, moves, op).await, LEADS as i64);
    let status = bulk(&app.db.url, &["status", "--org", &org_arg, &op.to_string()]).await;
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(
        (status["status"].as_str(), status["moved"].as_u64()),
        (Some("completed"), Some(LEADS as u64))
    );
    let refused = bulk(
        &app.db.url,
        &[
            "results",
            "--org",
            &org_arg,
            &op.to_string(),
            "--result",
            "refused",
        ],
    )
    .await;
    assert!(refused.status.success() && refused.stdout.is_empty());
    std::fs::remove_file(file).ok();
}

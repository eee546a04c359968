//! `leadroute projector` killed with SIGKILL in the middle of its work and started again
//! applies every event exactly once: its checkpoint counts each event once and
//! `leadroute audit verify` finds no difference from a rebuild.

use leadroute_domain::ids::{OrgId, Owner, PartnerUserId, QueueId};
use leadroute_projections::status::{status, ProjectionStatus};
use leadroute_tests::{eventually, generate, TestDb};
use std::process::Stdio;
use std::time::Duration;
use tokio::process::{Child, Command};

fn leadroute(db: &TestDb, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_leadroute"));
    command
        .args(args)
        .args(["--database-url", &db.url])
        .env("LEADROUTE_LOG", "warn")
        .kill_on_drop(true);
    command
}

fn start_projector(db: &TestDb) -> Child {
    leadroute(db, &["projector"])
        .stdout(Stdio::null())
        .spawn()
        .expect("start leadroute projector")
}

async fn leads_status(db: &TestDb) -> ProjectionStatus {
    status(&db.pool, &["leads"]).await.unwrap().remove(0)
}

#[tokio::test]
async fn a_projector_killed_mid_work_and_restarted_applies_every_event_once() {
    let db = TestDb::new().await;
    let org = OrgId::new_random();
    let owners = [
        Owner::Queue(QueueId::new_random()),
        Owner::PartnerUser(PartnerUserId::new_random()),
    ];
    let mut written = 0;
    for chunk in 0..10 {
        written += generate::lead_events(&db.pool, org, &owners, chunk * 3000 + 1, 3000)
            .await
            .unwrap();
    }

    let mut projector = start_projector(&db);
    let midway = eventually(Duration::from_secs(60), || async {
        let s = leads_status(&db).await;
        (s.events_applied > 0 && s.events_behind > 0).then_some(s.events_applied)
    })
    .await;
    projector.kill().await.unwrap(); // SIGKILL
    let applied_when_killed = midway.expect("the projector made progress before it was killed");
    assert!(
        (applied_when_killed as u64) < written,
        "killed before it finished"
    );

    let mut restarted = start_projector(&db);
    let done = eventually(Duration::from_secs(120), || async {
        let s = leads_status(&db).await;
        (s.events_behind == 0).then_some(s)
    })
    .await
    .expect("the restarted projector catches up");
    assert_eq!(
        done.events_applied as u64, written,
        "every event applied exactly once"
    );
    restarted.kill().await.unwrap();

    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM rm_leads")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(rows as u64, written / 2);
    let verify = leadroute(&db, &["audit", "verify"]).output().await.unwrap();
    let report = String::from_utf8_lossy(&verify.stdout);
    assert!(
        verify.status.success(),
        "audit verify found differences:\n{report}"
    );
    assert!(report.contains("0 differences"), "{report}");
}

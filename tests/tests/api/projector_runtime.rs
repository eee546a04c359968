//! The projector runtime on the real PostgreSQL: rebuild and swap (also while events arrive
//! and the live projector runs), audit verify, and one active instance per projection.

use leadroute::demo::{self, demo_uuid};
use leadroute_domain::ids::{LeadId, QueueId, UpstreamRef};
use leadroute_projections::projectors::{self, LeadsProjector};
use leadroute_projections::queries::{self, InboxQuery};
use leadroute_projections::rebuild;
use leadroute_projections::runtime::RunOptions;
use leadroute_projections::status;
use leadroute_tests::{eventually, TestApp};
use leadroute_workers::tasks::Tasks;
use std::time::Duration;

fn lead(upstream_id: &str) -> LeadId {
    let upstream = UpstreamRef {
        system: "demo-crm".into(),
        lead_id: upstream_id.into(),
    };
    LeadId::for_upstream(demo::demo_org_id(), &upstream)
}

/// The leads projector as the runtime takes it.
fn leads() -> &'static dyn leadroute_projections::runtime::Projector {
    &LeadsProjector
}

/// The `pg_locks` rows of the leads projector's leadership lock (the session-level advisory
/// lock on `leadroute.projector.leads`), not of the per-batch checkpoint locks.
const LEADERSHIP_LOCK: &str = "locktype = 'advisory' AND granted
    AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
    AND (classid::int8 << 32 | objid::int8) = hashtextextended('leadroute.projector.leads', 0)";

/// Events the leads projection has applied, once it has none left behind (30 s at most).
async fn leads_caught_up(pool: &sqlx::PgPool) -> Option<i64> {
    eventually(Duration::from_secs(30), || async {
        let s = status::status(pool, &["leads"]).await.unwrap().remove(0);
        (s.events_behind == 0).then_some(s.events_applied)
    })
    .await
}

async fn seeded() -> TestApp {
    TestApp::with_demo().await
}

fn user(email: &str) -> leadroute_domain::ids::PartnerUserId {
    leadroute_domain::ids::PartnerUserId(demo_uuid(email))
}

#[tokio::test]
async fn a_rebuild_swaps_in_identical_tables_and_verify_finds_tampering() {
    let app = seeded().await;
    let pool = &app.db.pool;
    assert!(rebuild::verify(pool, &projectors::all())
        .await
        .unwrap()
        .is_empty());

    let report = rebuild::rebuild(pool, &LeadsProjector).await.unwrap();
    assert!(report.events > 0);
    let indexes: Vec<String> = sqlx::query_scalar(
        "SELECT indexname::text FROM pg_indexes WHERE schemaname = 'public' AND tablename = 'rm_leads' ORDER BY 1",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    assert_eq!(
        indexes,
        ["rm_leads_owner", "rm_leads_pkey"],
        "the swapped-in table keeps the migration's names"
    );
    app.project().await;
    let leads = status::status(pool, &["leads"]).await.unwrap().remove(0);
    assert_eq!(
        leads.events_applied as usize,
        app.event_count().await,
        "each event applied once"
    );
    assert!(rebuild::verify(pool, &projectors::all())
        .await
        .unwrap()
        .is_empty());
    let page = InboxQuery {
        limit: 50,
        ..Default::default()
    };
    let ada = queries::partner_inbox(
        pool,
        demo::demo_org_id(),
        user("ada@northwind.example"),
        &page,
    )
    .await
    .unwrap();
    assert_eq!(ada.len(), 4, "the swapped-in table serves reads");

    sqlx::query("UPDATE rm_leads SET status = 'accepted' WHERE lead_id = $1")
        .bind(lead("L-1003").0)
        .execute(pool)
        .await
        .unwrap();
    let differences = rebuild::verify(pool, &projectors::all()).await.unwrap();
    assert_eq!(differences.len(), 1);
    assert_eq!(
        (
            differences[0].table.as_str(),
            differences[0].only_live,
            differences[0].only_rebuilt
        ),
        ("rm_leads", 1, 1)
    );
}

#[tokio::test]
async fn two_instances_of_a_projector_apply_every_event_once() {
    let app = seeded().await;
    let pool = app.db.pool.clone();
    sqlx::query("DELETE FROM projection_checkpoints WHERE name = 'leads'")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("TRUNCATE rm_leads")
        .execute(&pool)
        .await
        .unwrap();
    let options = RunOptions {
        poll_interval: Duration::from_millis(50),
        standby_retry: Duration::from_millis(50),
    };
    let instances = Tasks::projectors_of(&pool, vec![leads(), leads()], options);

    let total = app.event_count().await as i64;
    let caught_up = eventually(Duration::from_secs(20), || async {
        let s = status::status(&pool, &["leads"]).await.unwrap().remove(0);
        (s.events_behind == 0 && s.events_applied == total).then_some(s)
    })
    .await;
    assert!(
        caught_up.is_some(),
        "the active instance caught up, applying each of {total} events once"
    );
    let holders: i64 = sqlx::query_scalar(&format!(
        "SELECT count(*) FROM pg_locks WHERE {LEADERSHIP_LOCK}"
    ))
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(holders, 1, "exactly one instance is active");
    instances.stop().await;
    assert!(rebuild::verify(&pool, &[&LeadsProjector])
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rebuild_while_events_arrive_and_the_projector_runs_loses_nothing() {
    let app = seeded().await;
    let pool = app.db.pool.clone();
    let options = RunOptions {
        poll_interval: Duration::from_millis(20),
        standby_retry: Duration::from_millis(50),
    };
    let live = Tasks::projectors_of(&pool, vec![leads()], options);
    let org = demo::demo_org_id();
    let owners = [leadroute_domain::ids::Owner::Queue(QueueId(demo_uuid(
        "queue emea",
    )))];
    let writer = tokio::spawn({
        let pool = pool.clone();
        async move {
            for chunk in 0..10 {
                leadroute_tests::generate::lead_events(&pool, org, &owners, chunk * 500 + 1, 500)
                    .await
                    .unwrap();
                tokio::time::sleep(Duration::from_millis(30)).await;
            }
        }
    });
    for _ in 0..3 {
        rebuild::rebuild(&pool, &LeadsProjector).await.unwrap();
    }
    writer.await.unwrap();

    let total = app.event_count().await as i64;
    let caught_up = leads_caught_up(&pool).await;
    assert_eq!(
        caught_up,
        Some(total),
        "each event applied once across the swaps"
    );
    live.stop().await;
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM rm_leads")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(rows, 6 + 5000);
    assert!(rebuild::verify(&pool, &[&LeadsProjector])
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn verify_reports_an_event_applied_twice_even_when_rows_look_the_same() {
    let app = seeded().await;
    sqlx::query("UPDATE projection_checkpoints SET events_applied = events_applied + 1 WHERE name = 'directory'")
        .execute(&app.db.pool)
        .await
        .unwrap();
    let differences = rebuild::verify(&app.db.pool, &projectors::all())
        .await
        .unwrap();
    assert_eq!(differences.len(), 1);
    let (projection, table) = (
        differences[0].projection.as_str(),
        differences[0].table.as_str(),
    );
    assert_eq!((projection, table), ("directory", "projection_checkpoints"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_standby_takes_over_when_the_active_instance_dies() {
    let app = seeded().await;
    let pool = app.db.pool.clone();
    let options = RunOptions {
        poll_interval: Duration::from_millis(20),
        standby_retry: Duration::from_millis(50),
    };
    let instances = Tasks::projectors_of(&pool, vec![leads(), leads()], options);
    let leader_pid = || async {
        sqlx::query_scalar::<_, i32>(&format!("SELECT pid FROM pg_locks WHERE {LEADERSHIP_LOCK}"))
            .fetch_optional(&pool)
            .await
            .unwrap()
    };
    let first = eventually(Duration::from_secs(10), leader_pid)
        .await
        .expect("an instance becomes active");
    // The active instance's session dies, as when its process or its connection is lost.
    sqlx::query("SELECT pg_terminate_backend($1)")
        .bind(first)
        .execute(&pool)
        .await
        .unwrap();
    let owners = [leadroute_domain::ids::Owner::Queue(QueueId(demo_uuid(
        "queue emea",
    )))];
    leadroute_tests::generate::lead_events(&pool, demo::demo_org_id(), &owners, 1, 1000)
        .await
        .unwrap();

    let second = eventually(Duration::from_secs(10), || async {
        leader_pid().await.filter(|pid| *pid != first)
    })
    .await;
    assert!(second.is_some(), "another instance took the lead");
    let total = app.event_count().await as i64;
    let caught_up = leads_caught_up(&pool).await;
    assert_eq!(
        caught_up,
        Some(total),
        "the new active instance carried on from the checkpoint"
    );
    instances.stop().await;
}

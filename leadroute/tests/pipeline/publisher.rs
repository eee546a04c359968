//! The publisher against real PostgreSQL and NATS (a unique prefix per test): every
//! committed event reaches the events stream exactly once (by message id), in commit order
//! per aggregate; a reset re-publishes safely; a publisher killed with SIGKILL mid-work and
//! restarted loses and duplicates nothing.

use leadroute_domain::ids::{OrgId, Owner, PartnerUserId, QueueId};
use leadroute_projections::runtime::catch_up;
use leadroute_projections::status::status;
use leadroute_tests::{eventually, generate, TestApp, TestDb, TestNats};
use leadroute_workers::nats::Names;
use leadroute_workers::publisher::PUBLISHER;
use leadroute_workers::tasks;
use std::collections::{HashMap, HashSet};
use std::process::Stdio;
use std::time::Duration;
use tokio::process::Command;
use uuid::Uuid;

fn names(nats: &TestNats) -> Names {
    Names::new(&nats.prefix, &nats.crm_prefix()).unwrap()
}

async fn event_ids(db: &TestDb) -> HashSet<String> {
    let ids: Vec<Uuid> = sqlx::query_scalar("SELECT event_id FROM events")
        .fetch_all(&db.pool)
        .await
        .unwrap();
    ids.into_iter().map(|id| id.to_string()).collect()
}

async fn publisher_behind(db: &TestDb) -> i64 {
    status(&db.pool, &[PUBLISHER])
        .await
        .unwrap()
        .remove(0)
        .events_behind
}

/// Every message is one event, each event once, and per aggregate in sequence order.
fn assert_published_once_in_order(
    messages: &[(String, String, serde_json::Value)],
    events: &HashSet<String>,
) {
    let ids: HashSet<String> = messages.iter().map(|(_, id, _)| id.clone()).collect();
    assert_eq!(ids.len(), messages.len(), "no event is on the stream twice");
    assert_eq!(&ids, events, "every committed event is on the stream");
    let mut last: HashMap<String, i64> = HashMap::new();
    for (_, _, body) in messages {
        let aggregate = format!("{}/{}", body["aggregate_type"], body["aggregate_id"]);
        let sequence = body["sequence"].as_i64().unwrap();
        let previous = last.insert(aggregate.clone(), sequence).unwrap_or(0);
        assert!(
            sequence > previous,
            "{aggregate}: {sequence} after {previous}"
        );
    }
}

async fn publish_all(app: &TestApp, nats: &TestNats) {
    let publisher = tasks::publisher(&nats.url, names(nats)).await.unwrap();
    let done = eventually(Duration::from_secs(30), || async {
        let mut conn = app.db.pool.acquire().await.unwrap();
        catch_up(&mut conn, &*publisher).await.unwrap();
        (publisher_behind(&app.db).await == 0).then_some(())
    })
    .await;
    assert!(done.is_some(), "the publisher caught up");
}

#[tokio::test]
async fn every_event_is_published_once_in_order_and_a_reset_republishes_safely() {
    let (app, nats) = (TestApp::with_demo().await, TestNats::new().await);
    let owners = [Owner::Queue(QueueId::new_random())];
    generate::lead_events(&app.db.pool, OrgId::new_random(), &owners, 1, 2000)
        .await
        .unwrap();
    publish_all(&app, &nats).await;

    let stream = names(&nats).events_stream();
    let messages = nats.messages(&stream).await;
    assert_published_once_in_order(&messages, &event_ids(&app.db).await);
    let org = leadroute::demo::demo_org_id();
    let claimed = messages
        .iter()
        .find(|(_, _, body)| body["event_type"] == "LeadClaimed")
        .unwrap();
    assert_eq!(
        claimed.0,
        format!("{}.{org}.events.Lead.LeadClaimed", nats.prefix)
    );
    assert_eq!(claimed.2["org_id"], org.to_string());
    assert_eq!(
        claimed.2["payload"]["LeadClaimed"]["change"]["cause"],
        "claim"
    );

    let reset = |to: &str| {
        Command::new(env!("CARGO_BIN_EXE_leadroute"))
            .args(["publisher", "--database-url", &app.db.url, "--reset-to", to])
            .env("LEADROUTE_LOG", "warn")
            .output()
    };
    let forward = reset("9223372036854775807/1").await.unwrap();
    assert!(
        !forward.status.success(),
        "a reset never moves the checkpoint forward"
    );
    let back = reset("0/0").await.unwrap();
    assert!(
        back.status.success(),
        "{}",
        String::from_utf8_lossy(&back.stderr)
    );
    assert!(
        publisher_behind(&app.db).await > 0,
        "after the reset every event is to be published again"
    );
    publish_all(&app, &nats).await;
    assert_eq!(
        nats.messages(&stream).await.len(),
        messages.len(),
        "re-published events are dropped as duplicates"
    );
}

#[tokio::test]
async fn a_publisher_killed_mid_work_and_restarted_publishes_every_event_once() {
    let (db, nats) = (TestDb::new().await, TestNats::new().await);
    let owners = [Owner::PartnerUser(PartnerUserId::new_random())];
    for chunk in 0..5 {
        generate::lead_events(
            &db.pool,
            OrgId::new_random(),
            &owners,
            chunk * 4000 + 1,
            4000,
        )
        .await
        .unwrap();
    }
    let start = || {
        Command::new(env!("CARGO_BIN_EXE_leadroute"))
            .args([
                "publisher",
                "--database-url",
                &db.url,
                "--nats-url",
                &nats.url,
                "--nats-prefix",
                &nats.prefix,
            ])
            .env("LEADROUTE_LOG", "warn")
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap()
    };
    let mut publisher = start();
    let midway = eventually(Duration::from_secs(60), || async {
        let s = status(&db.pool, &[PUBLISHER]).await.unwrap().remove(0);
        (s.events_applied > 0 && s.events_behind > 0).then_some(())
    })
    .await;
    publisher.kill().await.unwrap(); // SIGKILL
    assert!(
        midway.is_some(),
        "the publisher made progress before it was killed"
    );

    let mut restarted = start();
    let done = eventually(Duration::from_secs(120), || async {
        (publisher_behind(&db).await == 0).then_some(())
    })
    .await;
    restarted.kill().await.unwrap();
    assert!(done.is_some(), "the restarted publisher caught up");
    let messages = nats.messages(&names(&nats).events_stream()).await;
    assert_published_once_in_order(&messages, &event_ids(&db).await);
}

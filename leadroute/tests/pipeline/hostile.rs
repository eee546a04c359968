//! Hostile input over NATS, against real NATS and PostgreSQL: the corpus of
//! `leadroute_tests::hostile`, interleaved with valid leads of the same org in one burst,
//! ends with each hostile message dead-lettered with its reason and every valid lead
//! received; nothing stays unacknowledged. A lead the store itself refuses costs only that
//! lead, not the others of its batch. A poison event planted in the log is quarantined for
//! each reader that cannot handle it while the other orgs' events keep flowing.

use leadroute::read_side;
use leadroute_projections::quarantine;
use leadroute_projections::status;
use leadroute_tests::hostile::{corpus, valid};
use leadroute_tests::pipeline::Pipeline;
use leadroute_tests::{eventually, TestApp, TestNats};
use leadroute_workers::nats::Names;
use leadroute_workers::publisher::PUBLISHER;
use leadroute_workers::tasks::Tasks;
use std::collections::HashMap;
use std::time::Duration;

/// Publish `bodies` on `subject` before any intake worker runs (so they share batches),
/// then run one worker until every message is acknowledged.
async fn publish_then_drain(
    app: &TestApp,
    nats: &TestNats,
    names: &Names,
    subject: &str,
    bodies: Vec<Vec<u8>>,
) {
    Tasks::intake(&app.commands, &nats.url, names.clone(), 1)
        .await
        .unwrap()
        .stop()
        .await;
    for body in bodies {
        nats.js
            .publish(subject.to_string(), body.into())
            .await
            .unwrap()
            .await
            .unwrap();
    }
    let workers = Tasks::intake(&app.commands, &nats.url, names.clone(), 1)
        .await
        .unwrap();
    let settled = eventually(Duration::from_secs(60), || async {
        super::intake::settled(nats, names).await.then_some(())
    })
    .await;
    workers.stop().await;
    assert!(settled.is_some(), "every message was acknowledged");
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(&app.db.pool)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_hostile_message_is_dead_lettered_and_the_valid_ones_around_it_all_arrive() {
    let (app, nats) = (TestApp::spawn().await, TestNats::new().await);
    let org = app.org().await;
    let names = Names::new(&nats.prefix, &nats.crm_prefix()).unwrap();
    let subject = names.crm_subject(org.0, "created");
    let cases = corpus("nats");
    let mut bodies = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        for j in 0..3 {
            let body = valid(&format!("ok-{i}-{j}"), &format!("L-{i}-{j}"));
            bodies.push(body.to_string().into_bytes());
        }
        bodies.push(case.body.clone());
    }
    let valid_count = (bodies.len() - cases.len()) as i64;
    publish_then_drain(&app, &nats, &names, &subject, bodies).await;
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM events WHERE event_type = 'LeadReceived'"
        )
        .await,
        valid_count,
        "every valid lead interleaved with the hostile ones arrived"
    );
    let letters: Vec<(Vec<u8>, String, String)> =
        sqlx::query_as("SELECT payload, reason, detail FROM dead_letters")
            .fetch_all(&app.db.pool)
            .await
            .unwrap();
    let by_payload: HashMap<Vec<u8>, (String, String)> = letters
        .into_iter()
        .map(|(payload, reason, detail)| (payload, (reason, detail)))
        .collect();
    for case in &cases {
        let (reason, detail) = by_payload
            .get(&case.body)
            .unwrap_or_else(|| panic!("{} was dead-lettered with its payload intact", case.name));
        assert_eq!(reason, case.reason, "{}: {detail}", case.name);
        assert!(
            detail.chars().count() <= 2_001 && !detail.contains('\0'),
            "{}: the detail is bounded and storable",
            case.name
        );
    }
    assert_eq!(
        by_payload.len(),
        cases.len(),
        "nothing else was dead-lettered"
    );
    let dlq = nats.messages(&names.dlq_stream()).await;
    assert_eq!(
        dlq.len(),
        cases.len(),
        "each republished on the DLQ subject"
    );
    assert!(dlq
        .iter()
        .all(|(_, _, body)| body.to_string().len() < 512 * 1024));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lead_the_store_refuses_costs_only_that_lead_not_its_batch() {
    let (app, nats) = (TestApp::spawn().await, TestNats::new().await);
    let org = app.org().await;
    let names = Names::new(&nats.prefix, &nats.crm_prefix()).unwrap();
    // Stands for any input the store refuses for good (a data exception, SQLSTATE class
    // 22) that the edge checks did not foresee.
    sqlx::raw_sql(
        "CREATE FUNCTION refuse_marked() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
           IF NEW.payload::text LIKE '%store-refuses-this%' THEN
             RAISE EXCEPTION 'refused by the test' USING ERRCODE = '22023';
           END IF;
           RETURN NEW;
         END $$;
         CREATE TRIGGER refuse_marked BEFORE INSERT ON events
           FOR EACH ROW EXECUTE FUNCTION refuse_marked();",
    )
    .execute(&app.db.pool)
    .await
    .unwrap();
    let subject = names.crm_subject(org.0, "created");
    let mut poisoned = valid("bad", "L-bad");
    poisoned["fields"]["company"] = "store-refuses-this".into();
    let mut bodies: Vec<serde_json::Value> = (0..10)
        .map(|i| valid(&format!("a{i}"), &format!("A{i}")))
        .collect();
    bodies.push(poisoned);
    bodies.extend((0..10).map(|i| valid(&format!("b{i}"), &format!("B{i}"))));
    let bodies = bodies.iter().map(|b| b.to_string().into_bytes()).collect();
    publish_then_drain(&app, &nats, &names, &subject, bodies).await;
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM events WHERE event_type = 'LeadReceived'"
        )
        .await,
        20
    );
    let reasons: Vec<String> = sqlx::query_scalar("SELECT reason FROM dead_letters")
        .fetch_all(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(reasons, ["unstorable_input"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_event_in_the_log_is_quarantined_while_other_orgs_keep_flowing() {
    let (app, nats) = (TestApp::spawn().await, TestNats::new().await);
    let (victim, other) = (app.prm_org().await, app.prm_org().await);
    let account = app.active_partner(victim).await;
    app.contact(victim, account).await;
    // Planted straight into the log: an undecodable partner user event and a lead event
    // too large for NATS's 1 MiB messages.
    let planted: Vec<uuid::Uuid> = sqlx::query_scalar(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         VALUES ('PartnerUser', gen_random_uuid()::text, 1, 'ContactAdded', '1.0',
                 '{\"ContactAdded\": {\"garbage\": true}}', jsonb_build_object('org_id', $1::text)),
                ('Lead', gen_random_uuid()::text, 1, 'LeadNoted', '1.0',
                 jsonb_build_object('LeadNoted', jsonb_build_object('note', repeat('x', 1200000))),
                 jsonb_build_object('org_id', $1::text))
         RETURNING event_id",
    )
    .bind(victim.0.to_string())
    .fetch_all(&app.db.pool)
    .await
    .unwrap();
    let lead = app.lead(other).await;

    let pipeline = Pipeline::start_on(app, nats).await;
    let (app, nats, names) = (&pipeline.app, &pipeline.nats, &pipeline.names);
    let names_all = ["directory", "leads", "ownership_history", PUBLISHER];
    let caught_up = eventually(Duration::from_secs(60), || async {
        let all = status::status(&app.db.pool, &names_all).await.ok()?;
        all.iter().all(|s| s.events_behind == 0).then_some(())
    })
    .await;
    assert!(caught_up.is_some(), "every reader went past the poison");
    let projected: i64 = sqlx::query_scalar("SELECT count(*) FROM rm_leads WHERE lead_id = $1")
        .bind(lead.0)
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(
        projected, 1,
        "the other org's lead reached the inbox tables"
    );
    let published = nats.messages(&names.events_stream()).await;
    assert!(
        published
            .iter()
            .any(|(subject, _, _)| subject.contains(&other.0.to_string())),
        "the other org's events were published"
    );

    let open = quarantine::list(&app.db.pool, false).await.unwrap();
    let set_aside: Vec<(&str, uuid::Uuid)> = open
        .iter()
        .map(|q| (q.projection.as_str(), q.event_id))
        .collect();
    assert!(
        set_aside.contains(&("directory", planted[0])),
        "{set_aside:?}"
    );
    assert!(set_aside.contains(&("leads", planted[1])), "{set_aside:?}");
    assert!(
        set_aside.contains(&(PUBLISHER, planted[1])),
        "{set_aside:?}"
    );
    assert!(open.iter().all(|q| !q.reason.is_empty()));
    assert!(
        !read_side::verify(&app.db.pool).await.unwrap(),
        "audit verify reports open quarantined events"
    );
    for q in &open {
        let skipped = quarantine::skip(&app.db.pool, &q.projection, q.event_id)
            .await
            .unwrap();
        assert_eq!(skipped, quarantine::Resolved::Done);
    }
    assert!(quarantine::list(&app.db.pool, false)
        .await
        .unwrap()
        .is_empty());
    assert!(
        read_side::verify(&app.db.pool).await.unwrap(),
        "after skipping, a rebuild sets aside the same events and matches"
    );
    pipeline.stop().await;
}

#[tokio::test]
async fn scratch_schemas_left_by_killed_runs_are_dropped_and_live_ones_kept() {
    let app = TestApp::spawn().await;
    sqlx::raw_sql("CREATE SCHEMA lr_scratch_killed; CREATE TABLE lr_scratch_killed.t (x int);")
        .execute(&app.db.pool)
        .await
        .unwrap();
    // A run still going holds its schema's lock on its own session.
    let mut running = app.db.pool.acquire().await.unwrap();
    sqlx::raw_sql(
        "CREATE SCHEMA lr_scratch_running;
         SELECT pg_advisory_lock(hashtextextended('leadroute.scratch.' || 'lr_scratch_running', 0));",
    )
    .execute(&mut *running)
    .await
    .unwrap();
    assert!(read_side::verify(&app.db.pool).await.unwrap());
    let left: Vec<String> = sqlx::query_scalar(
        "SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 'lr\\_scratch\\_%' ORDER BY 1",
    )
    .fetch_all(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(left, ["lr_scratch_running"]);
}

#[tokio::test]
async fn a_worker_started_while_nats_is_down_waits_instead_of_exiting() {
    let app = TestApp::spawn().await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let mut intake = tokio::process::Command::new(env!("CARGO_BIN_EXE_leadroute"))
        .args(["intake", "--database-url", &app.db.url])
        .args(["--nats-url", &format!("nats://127.0.0.1:{port}")])
        .args(["--startup-wait-secs", "3"])
        .env("LEADROUTE_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        intake.try_wait().unwrap().is_none(),
        "still waiting for NATS after 1.5 s"
    );
    let out = intake.wait_with_output().await.unwrap();
    assert!(!out.status.success(), "gives up after --startup-wait-secs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("connecting to NATS"), "{stderr}");
}

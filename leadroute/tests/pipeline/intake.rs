//! Intake over real NATS and PostgreSQL (a unique prefix per test): valid lead events become
//! leads, repeats of an upstream event id are no-ops, and every malformed message is
//! acknowledged and dead-lettered with its specific reason; nothing is left unacked.

use leadroute_domain::ids::OrgId;
use leadroute_tests::{eventually, TestApp, TestNats};
use leadroute_workers::nats::Names;
use leadroute_workers::tasks::Tasks;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;

fn valid(i: usize) -> Value {
    json!({
        "schema_version": 1,
        "upstream_event_id": format!("evt-{i}"),
        "upstream_system": "salesforce",
        "upstream_lead_id": format!("00Q{i}"),
        "occurred_at": "2026-11-28T08:00:00Z",
        "fields": { "company": format!("Company {i}"), "country": "DE" }
    })
}

fn with(mut event: Value, key: &str, value: Value) -> Value {
    event[key] = value;
    event
}

fn without(mut event: Value, key: &str) -> Value {
    event.as_object_mut().unwrap().remove(key);
    event
}

/// Ten kinds of bad message: (subject, body, expected reason).
fn malformed(names: &Names, org: OrgId, i: usize) -> Vec<(String, Vec<u8>, &'static str)> {
    let subject = names.crm_subject(org.0, "created");
    let body = |v: Value| v.to_string().into_bytes();
    vec![
        (subject.clone(), b"{not json".to_vec(), "not_json"),
        (
            subject.clone(),
            body(with(valid(i), "schema_version", json!(2))),
            "unsupported_schema_version",
        ),
        (
            subject.clone(),
            body(without(valid(i), "upstream_lead_id")),
            "invalid_event",
        ),
        (
            subject.clone(),
            body(with(valid(i), "fields", json!("company"))),
            "invalid_event",
        ),
        (
            subject.clone(),
            body(with(valid(i), "occurred_at", json!("yesterday"))),
            "invalid_event",
        ),
        (
            subject.clone(),
            body(with(valid(i), "colour", json!("red"))),
            "invalid_event",
        ),
        (
            subject.clone(),
            body(with(valid(i), "do_not_route", json!("no"))),
            "invalid_event",
        ),
        (
            subject.clone(),
            body(with(valid(i), "upstream_event_id", json!(""))),
            "empty_field",
        ),
        (
            names.crm_subject(OrgId::new_random().0, "created"),
            body(valid(i)),
            "unknown_org",
        ),
        (
            format!("{}.not-an-org.lead.created", names.crm_prefix()),
            body(valid(i)),
            "bad_subject",
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn valid_duplicate_and_malformed_events_each_end_where_they_should() {
    let (app, nats) = (TestApp::spawn().await, TestNats::new().await);
    let org = app.org().await;
    let names = Names::new(&nats.prefix, &nats.crm_prefix()).unwrap();
    let workers = Tasks::intake(&app.commands, &nats.url, names.clone(), 2)
        .await
        .unwrap();

    let mut messages: Vec<(String, Vec<u8>)> = Vec::new();
    let subject = names.crm_subject(org.0, "created");
    messages.extend((0..850).map(|i| (subject.clone(), valid(i).to_string().into_bytes())));
    messages.extend((0..100).map(|i| {
        (
            names.crm_subject(org.0, "updated"),
            valid(i * 7).to_string().into_bytes(),
        )
    }));
    let mut expected_reasons: BTreeMap<&str, usize> = BTreeMap::new();
    for i in 0..5 {
        for (subject, body, reason) in malformed(&names, org, 2000 + i) {
            messages.push((subject, body));
            *expected_reasons.entry(reason).or_default() += 1;
        }
    }
    assert_eq!(messages.len(), 1000);
    for (subject, body) in messages {
        nats.js
            .publish(subject, body.into())
            .await
            .unwrap()
            .await
            .unwrap();
    }

    let consumer = names.intake_consumer();
    let settled = eventually(Duration::from_secs(60), || async {
        let stream = nats.js.get_stream(names.crm_stream()).await.unwrap();
        let info = stream.consumer_info(&consumer).await.unwrap();
        let last = stream.cached_info().state.last_sequence;
        // Everything acknowledged: nothing pending, and the ack floor at the last message.
        (info.num_pending == 0
            && info.num_ack_pending == 0
            && info.ack_floor.stream_sequence == last)
            .then_some(())
    })
    .await;
    assert!(settled.is_some(), "every message was acknowledged");
    workers.stop().await;

    let received: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'LeadReceived'")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(received, 850, "850 distinct leads");
    let updated: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'LeadUpdated'")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(updated, 0, "repeated upstream event ids wrote nothing");
    let reasons: Vec<(String, i64)> =
        sqlx::query_as("SELECT reason, count(*) FROM dead_letters GROUP BY reason ORDER BY reason")
            .fetch_all(&app.db.pool)
            .await
            .unwrap();
    let reasons: BTreeMap<&str, usize> = reasons
        .iter()
        .map(|(r, n)| (r.as_str(), *n as usize))
        .collect();
    assert_eq!(
        reasons, expected_reasons,
        "each malformed message dead-lettered with its own reason"
    );
    let details: Vec<String> =
        sqlx::query_scalar("SELECT detail FROM dead_letters WHERE reason = 'invalid_event'")
            .fetch_all(&app.db.pool)
            .await
            .unwrap();
    for field in [
        "upstream_lead_id",
        "fields",
        "occurred_at",
        "colour",
        "do_not_route",
    ] {
        let named = details
            .iter()
            .filter(|d| {
                d.starts_with(&format!("field `{field}`"))
                    || d.starts_with(&format!("missing field `{field}`"))
            })
            .count();
        assert_eq!(named, 5, "the detail names `{field}`: {details:?}");
    }
    let dlq = nats.messages(&names.dlq_stream()).await;
    assert_eq!(dlq.len(), 50, "and republished on the DLQ subject");
    assert!(dlq
        .iter()
        .all(|(subject, _, body)| subject == &names.dlq_subject("intake")
            && body["reason"].is_string()));
}

fn leadroute(app: &TestApp, nats: &TestNats, args: &[&str]) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_leadroute"));
    command
        .args(args)
        .args(["--database-url", &app.db.url])
        .env("LEADROUTE_LOG", "warn")
        .kill_on_drop(true);
    if args[0] != "dlq" || args[1] == "replay" {
        command.args([
            "--nats-url",
            &nats.url,
            "--nats-prefix",
            &nats.prefix,
            "--nats-crm-prefix",
            &nats.crm_prefix(),
        ]);
    }
    command
}

async fn leads_received(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'LeadReceived'")
        .fetch_one(&app.db.pool)
        .await
        .unwrap()
}

/// Whether the intake consumer has acknowledged every message of the CRM stream (false
/// while the stream or consumer does not exist yet).
pub(crate) async fn settled(nats: &TestNats, names: &Names) -> bool {
    let Ok(stream) = nats.js.get_stream(names.crm_stream()).await else {
        return false;
    };
    let Ok(info) = stream.consumer_info(names.intake_consumer()).await else {
        return false;
    };
    let last = stream.cached_info().state.last_sequence;
    info.num_pending == 0 && info.num_ack_pending == 0 && info.ack_floor.stream_sequence == last
}

#[tokio::test]
async fn an_intake_killed_mid_stream_and_restarted_loses_and_repeats_nothing() {
    let (app, nats) = (TestApp::spawn().await, TestNats::new().await);
    let org = app.org().await;
    let names = Names::new(&nats.prefix, &nats.crm_prefix()).unwrap();
    // Create the streams and the consumer, then publish before any worker runs.
    Tasks::intake(&app.commands, &nats.url, names.clone(), 1)
        .await
        .unwrap()
        .stop()
        .await;
    let published = 3000;
    for i in 0..published {
        let body = valid(i).to_string().into_bytes();
        nats.js
            .publish(names.crm_subject(org.0, "created"), body.into())
            .await
            .unwrap()
            .await
            .unwrap();
    }

    let mut intake = leadroute(&app, &nats, &["intake"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let midway = eventually(Duration::from_secs(60), || async {
        let n = leads_received(&app).await;
        (n > 0 && n < published as i64).then_some(n)
    })
    .await;
    intake.kill().await.unwrap(); // SIGKILL
    assert!(
        midway.is_some(),
        "the intake made progress before it was killed"
    );

    let mut restarted = leadroute(&app, &nats, &["intake"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let done = eventually(Duration::from_secs(120), || async {
        settled(&nats, &names).await.then_some(())
    })
    .await;
    restarted.kill().await.unwrap();
    assert!(
        done.is_some(),
        "every message acknowledged after the restart"
    );
    assert_eq!(
        leads_received(&app).await,
        published as i64,
        "no lead lost, none received twice"
    );
}

#[tokio::test]
async fn a_dead_letter_is_listed_shown_and_replayed_once_its_cause_is_fixed() {
    let (app, nats) = (TestApp::spawn().await, TestNats::new().await);
    let names = Names::new(&nats.prefix, &nats.crm_prefix()).unwrap();
    let workers = Tasks::intake(&app.commands, &nats.url, names.clone(), 1)
        .await
        .unwrap();
    let missing_org = OrgId::new_random();
    let body = valid(1).to_string().into_bytes();
    nats.js
        .publish(names.crm_subject(missing_org.0, "created"), body.into())
        .await
        .unwrap()
        .await
        .unwrap();
    let letter = eventually(Duration::from_secs(30), || async {
        sqlx::query_scalar::<_, uuid::Uuid>(
            "SELECT id FROM dead_letters WHERE reason = 'unknown_org'",
        )
        .fetch_optional(&app.db.pool)
        .await
        .unwrap()
    })
    .await
    .expect("dead-lettered as unknown_org");

    let list = leadroute(&app, &nats, &["dlq", "list"])
        .output()
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&list.stdout).contains(&letter.to_string()));
    let show = leadroute(&app, &nats, &["dlq", "show", &letter.to_string()])
        .output()
        .await
        .unwrap();
    let shown = String::from_utf8_lossy(&show.stdout);
    assert!(
        shown.contains("unknown_org") && shown.contains("evt-1"),
        "{shown}"
    );

    app.commands
        .create_org(&app.meta(), missing_org, "Late org")
        .await
        .unwrap();
    let replay = leadroute(&app, &nats, &["dlq", "replay", &letter.to_string()])
        .output()
        .await
        .unwrap();
    assert!(
        replay.status.success(),
        "{}",
        String::from_utf8_lossy(&replay.stderr)
    );
    let received = eventually(Duration::from_secs(30), || async {
        (leads_received(&app).await == 1).then_some(())
    })
    .await;
    assert!(received.is_some(), "the replayed message became a lead");
    workers.stop().await;
    let replayed: bool =
        sqlx::query_scalar("SELECT replayed_at IS NOT NULL FROM dead_letters WHERE id = $1")
            .bind(letter)
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert!(replayed);
}

/// Upstream event `event` of lead `lead` that happened at `hour`:00, with `country`.
fn at_hour(event: &str, lead: usize, hour: u32, country: &str) -> Vec<u8> {
    json!({
        "schema_version": 1,
        "upstream_event_id": event,
        "upstream_system": "salesforce",
        "upstream_lead_id": format!("00Q{lead}"),
        "occurred_at": format!("2026-11-28T{hour:02}:00:00Z"),
        "fields": { "company": format!("Company {lead}"), "country": country }
    })
    .to_string()
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_event_redelivered_after_an_intake_crash_changes_nothing_and_routes_nothing() {
    use leadroute_domain::routing::criteria::Criterion;
    use leadroute_domain::routing::rules::{Entry, RuleSetSpec, Target};
    use leadroute_tests::pipeline::Pipeline;

    let (app, nats) = (TestApp::spawn().await, TestNats::new().await);
    let org = app.prm_org().await;
    let (de, fr) = (app.staffed_queue(org).await, app.staffed_queue(org).await);
    let to = |country: &str, queue| Entry {
        acceptance_deadline: None,
        fallback: None,
        criteria: vec![Criterion::Equals {
            field: "country".into(),
            value: country.into(),
        }],
        target: Target::Queue(queue),
        keep_owner: false,
        notify: false,
    };
    let rules = RuleSetSpec {
        entries: vec![to("DE", de), to("FR", fr)],
        watched_fields: ["country".to_string()].into(),
        ..Default::default()
    };
    app.commands
        .publish_rule_set(&app.meta(), org, &rules)
        .await
        .unwrap();
    let pipeline = Pipeline::start_on(app, nats).await;
    let (app, nats, names) = (&pipeline.app, &pipeline.nats, &pipeline.names);
    let router = pipeline.router(1).await;
    pipeline.intake(1).await.stop().await;

    // Creates at 08:00 (DE); the intake is killed while it holds some of them ...
    let leads = 3000;
    let publish = |subject: String, body: Vec<u8>| {
        let js = nats.js.clone();
        async move {
            js.publish(subject, body.into())
                .await
                .unwrap()
                .await
                .unwrap()
        }
    };
    for i in 0..leads {
        let body = at_hour(&format!("c-{i}"), i, 8, "DE");
        publish(names.crm_subject(org.0, "created"), body).await;
    }
    let mut intake = leadroute(app, nats, &["intake"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let midway = eventually(Duration::from_secs(60), || async {
        let n = leads_received(app).await;
        (n > 0 && n < leads as i64).then_some(n)
    })
    .await;
    intake.kill().await.unwrap();
    assert!(midway.is_some(), "killed midway");
    // ... updates at 09:00 (FR) are published, and arrive before the held creates, which
    // come back only once their acknowledgement wait has passed.
    for i in 0..leads {
        let body = at_hour(&format!("u-{i}"), i, 9, "FR");
        publish(names.crm_subject(org.0, "updated"), body).await;
    }
    let mut restarted = leadroute(app, nats, &["intake"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let done = eventually(Duration::from_secs(180), || async {
        settled(nats, names).await.then_some(())
    })
    .await;
    restarted.kill().await.unwrap();
    assert!(
        done.is_some(),
        "every message acknowledged after the restart"
    );
    leadroute_tests::drained(
        &app.db.pool,
        nats,
        &names.events_stream(),
        &names.router_consumer(),
    )
    .await;
    router.stop().await;

    assert_eq!(leads_received(app).await, leads as i64);
    // Every lead has its newest fields, and is owned by the queue they route to.
    let newest = eventually(Duration::from_secs(60), || async {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM rm_leads WHERE fields->>'country' = 'FR' AND owner_id = $1",
        )
        .bind(fr.0)
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
        (n == leads as i64).then_some(())
    })
    .await;
    assert!(
        newest.is_some(),
        "every lead kept its newest fields and owner"
    );
    // One routing decision per real change: the arrival, and an update of a watched field.
    let mismatched: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT aggregate_id,
                count(*) FILTER (WHERE event_type IN ('LeadRouted', 'LeadOwnerKept', 'LeadNotRouted')),
                count(*) FILTER (WHERE event_type = 'LeadReceived'
                                    OR (event_type = 'LeadUpdated' AND payload->'LeadUpdated'->'changed' ? 'country'))
           FROM events WHERE aggregate_type = 'Lead'
          GROUP BY aggregate_id
         HAVING count(*) FILTER (WHERE event_type IN ('LeadRouted', 'LeadOwnerKept', 'LeadNotRouted'))
             <> count(*) FILTER (WHERE event_type = 'LeadReceived'
                                    OR (event_type = 'LeadUpdated' AND payload->'LeadUpdated'->'changed' ? 'country'))",
    )
    .fetch_all(&app.db.pool)
    .await
    .unwrap();
    assert!(
        mismatched.is_empty(),
        "{:?}",
        &mismatched[..mismatched.len().min(5)]
    );
    let stale: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'LeadUpdateStale'")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert!(stale > 0, "some creates came back after the newer updates");
    pipeline.stop().await;
}

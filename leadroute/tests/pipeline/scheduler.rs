//! `leadroute scheduler` against real PostgreSQL: 200 offers with a 2-second acceptance
//! deadline, the scheduler killed with SIGKILL twice while it recalls them. Every offer not
//! accepted lapses exactly once, after its deadline; each recalled lead is offered to
//! someone it was never offered to (or left `offerees_exhausted` once nobody is left); no
//! offer lapses after it was accepted; each reminder goes out at most once; and a rebuild
//! of the timers projection fires nothing again.

use leadroute_app::router::Router;
use leadroute_app::NewLead;
use leadroute_domain::deadline::Deadline;
use leadroute_domain::ids::{LeadId, OrgId, PartnerUserId, PoolId, UpstreamRef};
use leadroute_domain::org::PartnerWorkflow;
use leadroute_domain::routing::rotation::Member;
use leadroute_domain::routing::rules::{Entry, RuleSetSpec, Target};
use leadroute_projections::rebuild;
use leadroute_tests::{eventually, TestApp, TestDb};
use leadroute_workers::tasks::Tasks;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::process::Stdio;
use std::time::Duration;
use tokio::process::{Child, Command};

const LEADS: usize = 200;
const MEMBERS: usize = 3;

fn start_scheduler(db: &TestDb) -> Child {
    Command::new(env!("CARGO_BIN_EXE_leadroute"))
        .args(["scheduler", "--database-url", &db.url, "--tick-ms", "100"])
        .env("LEADROUTE_LOG", "warn")
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start leadroute scheduler")
}

async fn count(db: &TestDb, event_type: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE aggregate_type = 'Lead' AND event_type = $1",
    )
    .bind(event_type)
    .fetch_one(&db.pool)
    .await
    .unwrap()
}

/// Every lead event of the org, per lead in order: (type, payload).
async fn lead_logs(db: &TestDb) -> HashMap<String, Vec<(String, Value)>> {
    let rows: Vec<(String, String, Value)> = sqlx::query_as(
        "SELECT aggregate_id, event_type, payload FROM events
          WHERE aggregate_type = 'Lead' ORDER BY aggregate_id, sequence",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    let mut logs: HashMap<String, Vec<(String, Value)>> = HashMap::new();
    for (lead, kind, payload) in rows {
        let body = payload[&kind].clone();
        logs.entry(lead).or_default().push((kind, body));
    }
    logs
}

async fn setup(app: &TestApp) -> (OrgId, Vec<PartnerUserId>) {
    let org = app.prm_org().await;
    let account = app.active_partner(org).await;
    let mut users = Vec::new();
    for _ in 0..MEMBERS {
        users.push(app.assignable_user(org, account).await);
    }
    let meta = app.meta();
    let pool = PoolId::new_random();
    app.commands
        .create_pool(&meta, org, pool, "rr", None)
        .await
        .unwrap();
    for user in &users {
        app.commands
            .add_pool_member(&meta, org, pool, Member::PartnerUser(*user), None, None)
            .await
            .unwrap();
    }
    let spec = RuleSetSpec {
        entries: vec![Entry {
            criteria: vec![],
            target: Target::Pool(pool),
            keep_owner: false,
            notify: false,
            fallback: None,
            acceptance_deadline: Some(Deadline::Seconds(2)),
        }],
        default_owner: None,
        watched_fields: Default::default(),
    };
    app.commands
        .publish_rule_set(&meta, org, &spec)
        .await
        .unwrap();
    let workflow = PartnerWorkflow {
        reminder_percent: Some(50),
        ..PartnerWorkflow::default()
    };
    app.commands
        .set_partner_workflow(&meta, org, workflow)
        .await
        .unwrap();
    (org, users)
}

#[tokio::test]
async fn offers_lapse_once_each_through_two_scheduler_kills_and_a_rebuild_fires_nothing() {
    let app = TestApp::spawn().await;
    let projectors = Tasks::projectors(&app.db.pool, Default::default());
    let (org, _) = setup(&app).await;
    let router = Router::with_commands(app.commands.clone());
    let leads: Vec<NewLead> = (0..LEADS)
        .map(|n| NewLead {
            upstream: UpstreamRef {
                system: "crm".into(),
                lead_id: format!("L-{n}"),
            },
            upstream_event_id: format!("e-{n}"),
            fields: [("company".to_string(), json!(format!("Company {n}")))].into(),
            route: true,
            occurred_at: None,
            owner: None,
        })
        .collect();
    let received = router
        .receive_and_route(&app.meta(), org, &leads)
        .await
        .unwrap();
    let ids: Vec<LeadId> = received.iter().map(|(id, _)| *id).collect();
    // A tenth are accepted at once: they never lapse.
    let mut accepted = HashSet::new();
    for id in ids.iter().step_by(10) {
        let lead = app
            .commands
            .state::<leadroute_domain::lead::Lead>(org, id)
            .await
            .unwrap();
        let offer = lead.offer.expect("offered with a deadline");
        assert!(offer.deadline.is_some() && offer.remind_at.is_some());
        app.commands
            .accept_lead(&app.meta(), org, *id, offer.to)
            .await
            .unwrap();
        accepted.insert(id.to_string());
    }

    // Each of the other leads is offered to every member in turn, 2 s each, then left
    // offerees_exhausted: 180 × 3 lapses. Kill the scheduler twice on the way.
    let expected_lapses = ((LEADS - accepted.len()) * MEMBERS) as i64;
    let mut scheduler = start_scheduler(&app.db);
    for kill_at in [expected_lapses / 4, expected_lapses * 2 / 3] {
        let reached = eventually(Duration::from_secs(60), || async {
            (count(&app.db, "LeadOfferLapsed").await >= kill_at).then_some(())
        })
        .await;
        if reached.is_none() {
            // Say what the scheduler had before it: the timers, how many are due.
            let timers: i64 = sqlx::query_scalar("SELECT count(*) FROM rm_offer_timers")
                .fetch_one(&app.db.pool)
                .await
                .unwrap();
            let status = leadroute_projections::status::status(&app.db.pool, &["workflow"])
                .await
                .unwrap();
            let due: i64 =
                sqlx::query_scalar("SELECT count(*) FROM rm_offer_timers WHERE deadline <= now()")
                    .fetch_one(&app.db.pool)
                    .await
                    .unwrap();
            let lapsed = count(&app.db, "LeadOfferLapsed").await;
            panic!("no recalls: {timers} timers, {due} due, {lapsed} lapsed, {status:?}");
        }
        scheduler.kill().await.unwrap(); // SIGKILL
        assert!(
            count(&app.db, "LeadOfferLapsed").await < expected_lapses,
            "killed mid-way"
        );
        scheduler = start_scheduler(&app.db);
    }
    let done = eventually(Duration::from_secs(90), || async {
        let exhausted: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM events WHERE aggregate_type = 'Lead' AND event_type = 'LeadNotRouted'",
        )
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
        (exhausted == (LEADS - accepted.len()) as i64).then_some(())
    })
    .await;
    assert!(done.is_some(), "every unaccepted lead ran out of offerees");
    assert_eq!(count(&app.db, "LeadOfferLapsed").await, expected_lapses);

    let logs = lead_logs(&app.db).await;
    assert_eq!(logs.len(), LEADS);
    for (lead, log) in &logs {
        let mut offered: Vec<Value> = Vec::new();
        let mut lapsed: HashSet<Value> = HashSet::new();
        let mut reminded: HashSet<Value> = HashSet::new();
        let mut was_accepted = false;
        for (kind, body) in log {
            match kind.as_str() {
                "LeadRouted" => {
                    let to = body["change"]["to"]["id"].clone();
                    assert!(!offered.contains(&to), "{lead}: offered {to} twice");
                    offered.push(to);
                }
                "LeadAccepted" => was_accepted = true,
                "LeadOfferReminded" => {
                    assert!(
                        reminded.insert(body["deadline"].clone()),
                        "{lead}: reminded twice"
                    );
                }
                "LeadOfferLapsed" => {
                    assert!(!was_accepted, "{lead}: lapsed after acceptance");
                    let from = body["from"]["id"].clone();
                    let from = if from.is_null() {
                        body["from"].clone()
                    } else {
                        from
                    };
                    assert!(lapsed.insert(from.clone()), "{lead}: {from} lapsed twice");
                    let deadline: chrono::DateTime<chrono::Utc> =
                        serde_json::from_value(body["deadline"].clone()).unwrap();
                    let at: chrono::DateTime<chrono::Utc> =
                        serde_json::from_value(body["at"].clone()).unwrap();
                    assert!(at >= deadline, "{lead}: recalled before its deadline");
                }
                _ => {}
            }
        }
        if accepted.contains(lead) {
            assert!(was_accepted && lapsed.is_empty(), "{lead}: {log:?}");
        } else {
            assert_eq!(
                offered.len(),
                MEMBERS,
                "{lead}: offered to each member once"
            );
            assert_eq!(lapsed.len(), MEMBERS, "{lead}");
            let (last, body) = log.last().unwrap();
            assert_eq!(last, "LeadNotRouted", "{lead}");
            assert_eq!(body["reason"], "offerees_exhausted");
        }
    }

    // A rebuild of the timers restores only what is pending (nothing); the scheduler,
    // still running, fires nothing more.
    let before = app.event_count().await;
    rebuild::rebuild(
        &app.db.pool,
        &leadroute_projections::projectors::WorkflowProjector,
    )
    .await
    .unwrap();
    // The rebuild stops at the commit-safe head (other transactions on the server may hold
    // it back); the live projector takes it from there. Any past timer the rebuilt table
    // held meanwhile was fired at a lead that refused it.
    let emptied = eventually(Duration::from_secs(30), || async {
        let timers: i64 = sqlx::query_scalar("SELECT count(*) FROM rm_offer_timers")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
        (timers == 0).then_some(())
    })
    .await;
    assert!(emptied.is_some(), "no timer is pending after the rebuild");
    // A stale timer (an offer that lapsed long ago) put back by hand fires nothing either.
    let (lead, log) = logs
        .iter()
        .find(|(lead, _)| !accepted.contains(*lead))
        .unwrap();
    let (_, first_lapse) = log.iter().find(|(k, _)| k == "LeadOfferLapsed").unwrap();
    let deadline: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(first_lapse["deadline"].clone()).unwrap();
    sqlx::query(
        "INSERT INTO rm_offer_timers (lead_id, org_id, user_id, deadline, remind_at)
         VALUES ($1, $2, $3, $4, $4)",
    )
    .bind(lead.parse::<uuid::Uuid>().unwrap())
    .bind(org.0)
    .bind(uuid::Uuid::new_v4())
    .bind(deadline)
    .execute(&app.db.pool)
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(app.event_count().await, before, "nothing fired again");
    scheduler.kill().await.unwrap();
    projectors.stop().await;
}

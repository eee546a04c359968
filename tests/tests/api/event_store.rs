//! The event store itself on the real PostgreSQL: the columns postgres-es never names are
//! filled on every row, inserts notify log readers, repeated upstream events write nothing,
//! and concurrent claims resolve to exactly one winner through optimistic concurrency.

use futures::future::join_all;
use leadroute_app::{AppError, NewLead};
use leadroute_domain::ids::{OrgId, UpstreamRef};
use leadroute_domain::queue::QueueMember;
use leadroute_store::schema::{EVENTS_CHANNEL, EVENTS_TABLE, MIGRATOR};
use leadroute_tests::TestApp;
use serde_json::json;
use sqlx::postgres::PgListener;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Barrier;

fn new_lead(event_id: &str, company: &str) -> NewLead {
    NewLead {
        upstream: UpstreamRef {
            system: "salesforce".into(),
            lead_id: "00Q-1".into(),
        },
        upstream_event_id: event_id.into(),
        fields: [("company".to_string(), json!(company))].into(),
        route: true,
        occurred_at: None,
        owner: None,
    }
}

async fn receive(app: &TestApp, org: OrgId, event_id: &str, company: &str) -> usize {
    let (_, committed) = app
        .commands
        .receive_lead(&app.meta(), org, &new_lead(event_id, company))
        .await
        .unwrap();
    committed.events
}

#[tokio::test]
async fn a_repeated_upstream_event_id_writes_nothing() {
    let app = TestApp::spawn().await;
    let org = app.org().await;
    assert_eq!(receive(&app, org, "evt-1", "Globex").await, 1);
    let before: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {EVENTS_TABLE}"))
        .fetch_one(&app.db.pool)
        .await
        .unwrap();

    assert_eq!(receive(&app, org, "evt-1", "Globex").await, 0);
    assert_eq!(receive(&app, org, "evt-1", "Changed").await, 0);
    let after: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {EVENTS_TABLE}"))
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(after, before);

    assert_eq!(receive(&app, org, "evt-2", "Changed").await, 1);
    let lead = leadroute_domain::ids::LeadId::for_upstream(org, &new_lead("evt-1", "").upstream);
    assert_eq!(app.event_types(lead).await, ["LeadReceived", "LeadUpdated"]);
}

#[tokio::test]
async fn the_four_extra_columns_are_filled_on_every_event_row() {
    let app = TestApp::spawn().await;
    let org = app.prm_org().await;
    let account = app.active_partner(org).await;
    app.assignable_user(org, account).await;
    app.lead(org).await;

    let (rows, missing, positions, event_ids, recent): (i64, i64, i64, i64, i64) =
        sqlx::query_as(&format!(
            "SELECT count(*),
                count(*) FILTER (WHERE global_position IS NULL OR transaction_id IS NULL
                                    OR recorded_at IS NULL OR event_id IS NULL),
                count(DISTINCT global_position),
                count(DISTINCT event_id),
                count(*) FILTER (WHERE recorded_at > now() - interval '5 minutes')
           FROM {EVENTS_TABLE}",
        ))
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(
        rows, 8,
        "org, PRM, account, activation, contact, user activation, sign-in, lead"
    );
    assert_eq!(missing, 0);
    assert_eq!(positions, rows, "global positions are distinct");
    assert_eq!(event_ids, rows, "event ids are distinct");
    assert_eq!(recent, rows, "recorded_at is the insert time");

    let all_committed: bool = sqlx::query_scalar(&format!(
        "SELECT bool_and(pg_xact_status(transaction_id) = 'committed') FROM {EVENTS_TABLE}"
    ))
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert!(
        all_committed,
        "transaction_id holds the writing transaction, and it committed"
    );
}

#[tokio::test]
async fn committing_events_notifies_log_readers() {
    let app = TestApp::spawn().await;
    let mut listener = PgListener::connect_with(&app.db.pool).await.unwrap();
    listener.listen(EVENTS_CHANNEL).await.unwrap();
    app.org().await;
    let notification = tokio::time::timeout(Duration::from_secs(5), listener.recv()).await;
    assert!(
        matches!(notification, Ok(Ok(_))),
        "no notification on {EVENTS_CHANNEL}: {notification:?}"
    );
}

#[tokio::test]
async fn migrations_are_idempotent() {
    let app = TestApp::spawn().await;
    MIGRATOR.run(&app.db.pool).await.unwrap();
    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(applied as usize, MIGRATOR.iter().count());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_claims_give_exactly_one_winner() {
    let app = TestApp::spawn().await;
    let org = app.prm_org().await;
    let account = app.active_partner(org).await;
    let queue = app.queue(org).await;
    app.commands
        .add_queue_member(
            &app.meta(),
            org,
            queue,
            QueueMember::PartnerAccount(account),
        )
        .await
        .unwrap();
    let mut members = Vec::new();
    for _ in 0..20 {
        members.push(app.assignable_user(org, account).await);
    }
    let lead = app.lead(org).await;
    app.commands
        .enqueue_lead(&app.meta(), org, lead, queue)
        .await
        .unwrap();

    let start = Arc::new(Barrier::new(members.len()));
    let claims = members.iter().map(|&member| {
        let (commands, meta, start) = (app.commands.clone(), app.meta(), start.clone());
        tokio::spawn(async move {
            start.wait().await;
            commands.claim_lead(&meta, org, lead, queue, member).await
        })
    });
    let results: Vec<Result<_, AppError>> = join_all(claims)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();

    assert!(
        app.commands.conflicts_retried() > 0,
        "the claims raced on the lead's version"
    );
    let winners = results.iter().filter(|r| r.is_ok()).count();
    let already_claimed = results
        .iter()
        .filter(|r| matches!(r, Err(e) if e.code() == "already_claimed"))
        .count();
    assert_eq!(winners, 1, "{results:?}");
    assert_eq!(already_claimed, 19, "{results:?}");
    let claimed = app
        .event_types(lead)
        .await
        .iter()
        .filter(|t| *t == "LeadClaimed")
        .count();
    assert_eq!(claimed, 1);
}

#[tokio::test]
async fn a_non_member_cannot_claim() {
    let app = TestApp::spawn().await;
    let org = app.prm_org().await;
    let account = app.active_partner(org).await;
    let outsider = app.assignable_user(org, account).await;
    let queue = app.queue(org).await;
    let lead = app.lead(org).await;
    app.commands
        .enqueue_lead(&app.meta(), org, lead, queue)
        .await
        .unwrap();
    let claim = app
        .commands
        .claim_lead(&app.meta(), org, lead, queue, outsider)
        .await;
    assert_eq!(claim.unwrap_err().code(), "not_a_queue_member");
}

#[tokio::test]
async fn a_cached_pool_load_sees_every_event_written_by_any_process() {
    use leadroute_app::router::Router;
    use leadroute_app::Commands;
    use leadroute_domain::ids::PoolId;
    use leadroute_domain::lead::Lead;
    use leadroute_domain::pool::Pool;
    use leadroute_domain::routing::rotation::Member;
    use leadroute_domain::routing::rules::{Entry, RuleSetSpec, Target};
    use leadroute_domain::routing::Trigger;
    let app = TestApp::spawn().await;
    let org = app.prm_org().await;
    let account = app.active_partner(org).await;
    let pool = PoolId::new_random();
    let meta = app.meta();
    app.commands
        .create_pool(&meta, org, pool, "rr", None)
        .await
        .unwrap();
    let mut members = Vec::new();
    for _ in 0..3 {
        let member = Member::PartnerUser(app.assignable_user(org, account).await);
        app.commands
            .add_pool_member(&meta, org, pool, member, None, None)
            .await
            .unwrap();
        members.push(member);
    }
    let spec = RuleSetSpec {
        entries: vec![Entry {
            acceptance_deadline: None,
            fallback: None,
            criteria: vec![],
            target: Target::Pool(pool),
            keep_owner: false,
            notify: false,
        }],
        ..RuleSetSpec::default()
    };
    app.commands
        .publish_rule_set(&meta, org, &spec)
        .await
        .unwrap();
    // Two processes, each with its own cache, route in turn: each must see the other's picks.
    let routers = [
        Router::new(app.db.pool.clone()),
        Router::new(app.db.pool.clone()),
    ];
    let mut picked = Vec::new();
    for n in 0..6 {
        let lead = app.lead(org).await;
        routers[n % 2]
            .route(org, lead, uuid::Uuid::new_v4(), Trigger::Rerun)
            .await
            .unwrap();
        let owner = app.commands.state::<Lead>(org, lead).await.unwrap().owner;
        picked.push(match owner {
            Some(leadroute_domain::ids::Owner::PartnerUser(user)) => Member::PartnerUser(user),
            other => panic!("routed to a pool member, not {other:?}"),
        });
    }
    assert_eq!(
        picked,
        [members.clone(), members.clone()].concat(),
        "in turn, across both caches"
    );
    let cached = app.commands.state::<Pool>(org, pool).await.unwrap();
    let replayed = Commands::new(app.db.pool.clone())
        .state::<Pool>(org, pool)
        .await
        .unwrap();
    assert_eq!(cached, replayed, "a cached load equals a full replay");
}

/// postgres-es as an oracle: what leadroute-store commits, postgres-es loads to the same
/// state and sequence; what postgres-es commits, leadroute-store loads alike (plain and
/// cached); and the position a commit answers is the position of its last row.
#[tokio::test]
async fn the_store_agrees_with_postgres_es_both_ways() {
    use cqrs_es::persist::PersistedEventStore;
    use cqrs_es::EventStore as _;
    use leadroute_domain::ids::PartnerAccountId;
    use leadroute_domain::partner_account::{PartnerAccount, PartnerAccountCommand};
    use leadroute_store::schema::UNUSED_SNAPSHOTS_TABLE;
    use leadroute_store::{named, Batch, EventStore};
    use postgres_es::PostgresEventRepository;
    let app = TestApp::spawn().await;
    let org = app.prm_org().await;
    let account = app.active_partner(org).await;
    let oracle = || {
        let repo = PostgresEventRepository::new(app.db.pool.clone())
            .with_tables(EVENTS_TABLE, UNUSED_SNAPSHOTS_TABLE);
        PersistedEventStore::<_, PartnerAccount>::new_event_store(repo)
    };
    let ours = EventStore::new(app.db.pool.clone());
    let id = account.to_string();
    // Written by leadroute-store (through the application layer), read by both.
    let theirs = oracle().load_aggregate(&id).await.unwrap();
    let mine = ours.load::<PartnerAccount>(&id).await.unwrap();
    assert_eq!(mine.aggregate, theirs.aggregate);
    assert_eq!(mine.current_sequence, theirs.current_sequence);
    assert!(mine.current_sequence >= 2, "created and activated");
    // Written by postgres-es, read by leadroute-store, cached or not.
    let cached_before = ours.load_cached::<PartnerAccount>(&id).await.unwrap();
    let command = PartnerAccountCommand::DeactivatePartner {
        actor: app.meta().actor,
        at: chrono::Utc::now(),
    };
    let context = oracle().load_aggregate(&id).await.unwrap();
    let events = leadroute_domain::Decider::decide(&context.aggregate, command).unwrap();
    oracle()
        .commit(events, context, Default::default())
        .await
        .unwrap();
    let theirs = oracle().load_aggregate(&id).await.unwrap();
    let mine = ours.load::<PartnerAccount>(&id).await.unwrap();
    let cached = ours.load_cached::<PartnerAccount>(&id).await.unwrap();
    assert!(!theirs.aggregate.active);
    assert_eq!(mine.aggregate, theirs.aggregate);
    assert_eq!(cached.aggregate, theirs.aggregate);
    assert_eq!(cached.current_sequence, cached_before.current_sequence + 1);
    // A commit answers the position of its last row; a stale sequence is a conflict.
    let mut batch = Batch::default();
    let mut sequence = mine.current_sequence;
    let reactivate = PartnerAccountCommand::ActivatePartner {
        org_prm_enabled: true,
        actor: app.meta().actor,
        at: chrono::Utc::now(),
    };
    let events = leadroute_domain::Decider::decide(&mine.aggregate, reactivate).unwrap();
    batch
        .record::<PartnerAccount>(&id, &mut sequence, events.clone(), "{}")
        .unwrap();
    let position = ours.commit(batch).await.unwrap().expect("a position");
    let stored = named::position_of(&app.db.pool, "PartnerAccount", &id, sequence as i64)
        .await
        .unwrap();
    assert_eq!(Some(position), stored);
    let mut stale = Batch::default();
    let mut sequence = mine.current_sequence;
    stale
        .record::<PartnerAccount>(&id, &mut sequence, events, "{}")
        .unwrap();
    assert!(matches!(
        ours.commit(stale).await,
        Err(leadroute_store::StoreError::Conflict)
    ));
    let _: PartnerAccountId = account;
}

/// A batch of one new lead's `LeadReceived` (any event will do: the counts ride along).
fn lead_batch(org: uuid::Uuid) -> leadroute_store::Batch {
    use leadroute_domain::ids::{Actor, LeadId};
    use leadroute_domain::lead::{Lead, LeadEvent};
    let lead = LeadId(uuid::Uuid::new_v4());
    let event = LeadEvent::LeadReceived {
        lead_id: lead,
        org_id: OrgId(org),
        upstream: UpstreamRef {
            system: "crm".into(),
            lead_id: lead.to_string(),
        },
        upstream_event_id: "e".into(),
        fields: Default::default(),
        route: false,
        occurred_at: None,
        actor: Actor::System("test".into()),
        at: chrono::Utc::now(),
    };
    let mut batch = leadroute_store::Batch::default();
    batch
        .record::<Lead>(&lead.to_string(), &mut 0, vec![event], "{}")
        .unwrap();
    batch
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn open_leads_move_in_the_commit_and_a_cap_or_a_full_member_is_held_under_concurrency() {
    use leadroute_store::StoreError;
    let app = TestApp::spawn().await;
    let store = app.commands.store().clone();
    let (org, owner) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    let events = || async {
        sqlx::query_scalar::<_, i64>(&format!("SELECT count(*) FROM {EVENTS_TABLE}"))
            .fetch_one(&app.db.pool)
            .await
            .unwrap()
    };
    let open = || async {
        store
            .open_leads(org, &[owner])
            .await
            .unwrap()
            .get(&owner)
            .copied()
    };
    let take = |cap: u32| {
        let mut batch = lead_batch(org);
        batch.hold(org, owner, 1);
        batch.cap(org, owner, cap);
        batch
    };
    store.commit(take(2)).await.unwrap();
    store.commit(take(2)).await.unwrap();
    assert_eq!(open().await, Some(2));
    // A third would pass the cap: refused whole, like a lost race.
    let written = events().await;
    assert!(matches!(
        store.commit(take(2)).await,
        Err(StoreError::Conflict)
    ));
    assert_eq!((open().await, events().await), (Some(2), written));
    // Full at 2, not at 3; an owner with no row holds none.
    let full = |owner, cap| {
        let mut batch = lead_batch(org);
        batch.full(org, owner, cap);
        batch
    };
    store.commit(full(owner, 2)).await.unwrap();
    assert!(matches!(
        store.commit(full(owner, 3)).await,
        Err(StoreError::Conflict)
    ));
    let nobody = uuid::Uuid::new_v4();
    assert!(matches!(
        store.commit(full(nobody, 1)).await,
        Err(StoreError::Conflict)
    ));
    // Letting go moves the count down.
    let mut release = lead_batch(org);
    release.hold(org, owner, -1);
    store.commit(release).await.unwrap();
    assert_eq!(open().await, Some(1));

    // Twenty commits at once, each taking a place under a cap of 5: exactly four fit.
    let barrier = Arc::new(Barrier::new(20));
    let results = join_all((0..20).map(|_| {
        let (store, barrier, batch) = (store.clone(), barrier.clone(), take(5));
        tokio::spawn(async move {
            barrier.wait().await;
            store.commit(batch).await
        })
    }))
    .await;
    let won = results.iter().filter(|r| matches!(r, Ok(Ok(_)))).count();
    let lost = results
        .iter()
        .filter(|r| matches!(r, Ok(Err(StoreError::Conflict))))
        .count();
    assert_eq!((won, lost), (4, 16), "{results:?}");
    assert_eq!(open().await, Some(5));
}

#[tokio::test]
async fn waiting_leads_are_kept_by_the_commit_and_listed_oldest_first_page_by_page() {
    let app = TestApp::spawn().await;
    let store = app.commands.store().clone();
    let (org, pool) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    let t0 = chrono::Utc::now();
    let leads: Vec<uuid::Uuid> = (0..5).map(|_| uuid::Uuid::new_v4()).collect();
    let mut batch = lead_batch(org);
    for (i, lead) in leads.iter().enumerate().rev() {
        batch.wait(leadroute_store::Waiting {
            lead: *lead,
            org,
            target: Some(pool),
            since: t0 + chrono::Duration::seconds(i as i64),
            reason: "all_at_capacity".into(),
        });
    }
    store.commit(batch).await.unwrap();
    let page = store.waiting(org, Some(pool), None, 3).await.unwrap();
    let ids: Vec<uuid::Uuid> = page.iter().map(|(_, lead)| *lead).collect();
    assert_eq!(ids, leads[..3]);
    let rest = store
        .waiting(org, Some(pool), page.last().copied(), 3)
        .await
        .unwrap();
    let ids: Vec<uuid::Uuid> = rest.iter().map(|(_, lead)| *lead).collect();
    assert_eq!(ids, leads[3..]);
    assert_eq!(store.orgs_waiting().await.unwrap(), [org]);
    assert_eq!(store.waiting_targets(org).await.unwrap(), [Some(pool)]);
    assert!(store.waiting(org, None, None, 3).await.unwrap().is_empty());
    // Routed (or closed): gone, in the commit that says so.
    let mut batch = leadroute_store::Batch::default();
    batch.unwait(leads[0]);
    store.commit(batch).await.unwrap();
    let page = store.waiting(org, Some(pool), None, 10).await.unwrap();
    assert_eq!(page.len(), 4);
    assert_eq!(page[0].1, leads[1]);
    // A stale entry is forgotten only while it is the entry that was read.
    let (since, lead) = page[0];
    let mut batch = leadroute_store::Batch::default();
    batch.forget_stale(lead, since + chrono::Duration::seconds(1));
    store.commit(batch).await.unwrap();
    assert_eq!(
        store
            .waiting(org, Some(pool), None, 10)
            .await
            .unwrap()
            .len(),
        4
    );
    let mut batch = leadroute_store::Batch::default();
    batch.forget_stale(lead, since);
    store.commit(batch).await.unwrap();
    let page = store.waiting(org, Some(pool), None, 10).await.unwrap();
    assert_eq!(page.len(), 3);
    assert_eq!(page[0].1, leads[2]);
}

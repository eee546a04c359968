//! The read models after the foundation's seed flows (the demo org) on the real PostgreSQL:
//! partner inbox, queue view, ownership history and owner at T, directory, channel-manager
//! view.

use chrono::Utc;
use leadroute::demo::{self, demo_uuid};
use leadroute_domain::ids::{InternalUserId, LeadId, OrgId, PartnerUserId, QueueId, UpstreamRef};
use leadroute_projections::queries::{self, InboxQuery};
use leadroute_tests::TestApp;

fn lead(upstream_id: &str) -> LeadId {
    let upstream = UpstreamRef {
        system: "demo-crm".into(),
        lead_id: upstream_id.into(),
    };
    LeadId::for_upstream(demo::demo_org_id(), &upstream)
}

fn user(email: &str) -> PartnerUserId {
    PartnerUserId(demo_uuid(email))
}

async fn seeded() -> TestApp {
    TestApp::with_demo().await
}

fn states(items: &[queries::InboxItem]) -> Vec<(LeadId, &str)> {
    let mut out: Vec<_> = items
        .iter()
        .map(|i| (LeadId(i.lead_id), i.state.as_str()))
        .collect();
    out.sort();
    out
}

fn sorted(mut v: Vec<(LeadId, &'static str)>) -> Vec<(LeadId, &'static str)> {
    v.sort();
    v
}

#[tokio::test]
async fn inboxes_hold_owned_and_claimable_leads() {
    let app = seeded().await;
    let (pool, org) = (&app.db.pool, demo::demo_org_id());
    let page = InboxQuery {
        limit: 50,
        ..Default::default()
    };

    let ada = queries::partner_inbox(pool, org, user("ada@northwind.example"), &page)
        .await
        .unwrap();
    assert_eq!(
        states(&ada),
        sorted(vec![
            (lead("L-1001"), "claimable"),
            (lead("L-1002"), "claimable"),
            (lead("L-1003"), "offered"),
            (lead("L-1005"), "accepted"),
        ])
    );
    let claimable = ada.iter().find(|i| i.state == "claimable").unwrap();
    assert_eq!(claimable.queue_id, Some(demo_uuid("queue emea")));
    assert!(ada.iter().all(|i| i.age_seconds >= 0.0));
    assert!(ada
        .windows(2)
        .all(|w| (w[0].received_at, w[0].lead_id) >= (w[1].received_at, w[1].lead_id)));

    let ben = queries::partner_inbox(pool, org, user("ben@northwind.example"), &page)
        .await
        .unwrap();
    assert!(
        ben.is_empty(),
        "a member who never signed in cannot claim, so nothing is claimable for him"
    );
    let chloe = queries::partner_inbox(pool, org, user("chloe@contoso.example"), &page)
        .await
        .unwrap();
    assert_eq!(states(&chloe), vec![(lead("L-1004"), "offered")]);

    let other_org = queries::partner_inbox(
        pool,
        OrgId::new_random(),
        user("ada@northwind.example"),
        &page,
    )
    .await;
    assert!(
        other_org.unwrap().is_empty(),
        "an inbox is scoped to its org"
    );
}

#[tokio::test]
async fn the_inbox_pages_and_filters() {
    let app = seeded().await;
    let (pool, org, ada) = (
        &app.db.pool,
        demo::demo_org_id(),
        user("ada@northwind.example"),
    );
    let all = queries::partner_inbox(
        pool,
        org,
        ada,
        &InboxQuery {
            limit: 50,
            ..Default::default()
        },
    )
    .await
    .unwrap();

    let first = queries::partner_inbox(
        pool,
        org,
        ada,
        &InboxQuery {
            limit: 3,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let last = first.last().unwrap();
    let rest = InboxQuery {
        limit: 3,
        after: Some((last.received_at, last.lead_id)),
        ..Default::default()
    };
    let second = queries::partner_inbox(pool, org, ada, &rest).await.unwrap();
    let ids = |items: &[queries::InboxItem]| items.iter().map(|i| i.lead_id).collect::<Vec<_>>();
    assert_eq!(ids(&[first, second].concat()), ids(&all));

    for (state, expected) in [("claimable", 2), ("offered", 1), ("accepted", 1)] {
        let only = InboxQuery {
            limit: 50,
            state: Some(state.into()),
            ..Default::default()
        };
        let items = queries::partner_inbox(pool, org, ada, &only).await.unwrap();
        assert_eq!(items.len(), expected, "{state}");
        assert!(items.iter().all(|i| i.state == state));
    }
    let newest = all.iter().map(|i| i.received_at).max().unwrap();
    let since = InboxQuery {
        limit: 50,
        received_since: Some(newest),
        ..Default::default()
    };
    let recent = queries::partner_inbox(pool, org, ada, &since)
        .await
        .unwrap();
    assert!(
        !recent.is_empty() && recent.iter().all(|i| i.received_at >= newest),
        "received_since includes its bound"
    );
    let future = InboxQuery {
        limit: 50,
        received_since: Some(Utc::now() + chrono::Duration::hours(1)),
        ..Default::default()
    };
    assert!(queries::partner_inbox(pool, org, ada, &future)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn the_queue_view_lists_unclaimed_leads() {
    let app = seeded().await;
    let queue = QueueId(demo_uuid("queue emea"));
    let queued = queries::queue_view(&app.db.pool, demo::demo_org_id(), queue, 50)
        .await
        .unwrap();
    let mut ids: Vec<_> = queued.iter().map(|q| LeadId(q.lead_id)).collect();
    ids.sort();
    let mut expected = vec![lead("L-1001"), lead("L-1002")];
    expected.sort();
    assert_eq!(ids, expected, "L-1005 was claimed and left the queue");
}

#[tokio::test]
async fn history_records_every_owner_change_and_answers_owner_at_time_t() {
    let app = seeded().await;
    let (pool, org) = (&app.db.pool, demo::demo_org_id());
    let history = queries::ownership_history(pool, org, lead("L-1005"))
        .await
        .unwrap()
        .unwrap();
    let steps: Vec<_> = history
        .iter()
        .map(|h| {
            (
                h.cause.as_str(),
                h.to_kind.as_deref().unwrap_or("nobody"),
                h.from_kind.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        steps,
        vec![
            ("enqueue", "queue", None),
            ("claim", "partner_user", Some("queue"))
        ]
    );
    assert_eq!(history[1].to_id, Some(user("ada@northwind.example").0));
    assert_eq!(history[1].actor["kind"], "partner_user");

    let before = history[0].changed_at - chrono::Duration::microseconds(1);
    assert_eq!(
        queries::owner_at(pool, org, lead("L-1005"), before)
            .await
            .unwrap(),
        Some(None)
    );
    let queued = queries::owner_at(pool, org, lead("L-1005"), history[0].changed_at)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(
        (queued.kind.as_str(), queued.id),
        ("queue", Some(demo_uuid("queue emea")))
    );
    let now = queries::owner_at(pool, org, lead("L-1005"), Utc::now())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(now.id, Some(user("ada@northwind.example").0));
    assert_eq!(
        queries::ownership_history(pool, OrgId::new_random(), lead("L-1005"))
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn the_directory_flags_assignable_partner_users() {
    let app = seeded().await;
    let (pool, org) = (&app.db.pool, demo::demo_org_id());
    let accounts = queries::partner_accounts(pool, org).await.unwrap();
    assert_eq!(accounts.len(), 2);
    assert!(accounts.iter().all(|a| a.active));
    let users = queries::partner_users(pool, org, false).await.unwrap();
    let flags: Vec<_> = users
        .iter()
        .map(|u| (u.email.as_str(), u.assignable))
        .collect();
    assert_eq!(
        flags,
        vec![
            ("ada@northwind.example", true),
            ("ben@northwind.example", false),
            ("chloe@contoso.example", true),
            ("dan@contoso.example", false)
        ]
    );
    let assignable: Vec<_> = queries::partner_users(pool, org, true)
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.email)
        .collect();
    assert_eq!(
        assignable,
        ["ada@northwind.example", "chloe@contoso.example"]
    );
}

#[tokio::test]
async fn a_channel_manager_sees_the_leads_of_the_accounts_they_own() {
    let app = seeded().await;
    let (pool, org) = (&app.db.pool, demo::demo_org_id());
    let ids = |leads: Vec<queries::ManagedLead>| {
        let mut ids: Vec<_> = leads.into_iter().map(|l| LeadId(l.lead_id)).collect();
        ids.sort();
        ids
    };
    let emea =
        queries::channel_manager_leads(pool, org, InternalUserId(demo_uuid("manager-emea")), 100)
            .await
            .unwrap();
    let mut expected = vec![
        lead("L-1001"),
        lead("L-1002"),
        lead("L-1003"),
        lead("L-1005"),
    ];
    expected.sort();
    assert_eq!(ids(emea), expected);
    let na =
        queries::channel_manager_leads(pool, org, InternalUserId(demo_uuid("manager-na")), 100)
            .await
            .unwrap();
    assert_eq!(ids(na), vec![lead("L-1004")]);
}

#[tokio::test]
async fn paused_users_and_users_of_inactive_partners_are_not_assignable() {
    let app = TestApp::spawn().await;
    let org = app.prm_org().await;
    let (active_account, closing_account) =
        (app.active_partner(org).await, app.active_partner(org).await);
    let paused = app.assignable_user(org, active_account).await;
    let ready = app.assignable_user(org, active_account).await;
    let stranded = app.assignable_user(org, closing_account).await;
    app.commands
        .pause_auto_assignment(&app.meta(), org, paused, None)
        .await
        .unwrap();
    app.commands
        .deactivate_partner(&app.meta(), org, closing_account)
        .await
        .unwrap();
    app.project().await;

    let users = queries::partner_users(&app.db.pool, org, false)
        .await
        .unwrap();
    let flag = |id: PartnerUserId| {
        users
            .iter()
            .find(|u| u.user_id == id.0)
            .map(|u| (u.paused, u.account_active, u.assignable))
    };
    assert_eq!(flag(paused), Some((true, true, false)));
    assert_eq!(flag(stranded), Some((false, false, false)));
    assert_eq!(flag(ready), Some((false, true, true)));
    let assignable: Vec<_> = queries::partner_users(&app.db.pool, org, true)
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.user_id)
        .collect();
    assert_eq!(assignable, vec![ready.0]);
}

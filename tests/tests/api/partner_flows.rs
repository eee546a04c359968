//! The partner flows against the real PostgreSQL, one fresh database per test: PRM switch,
//! partner activation, assignability of partner users, org scoping.

use leadroute_app::AppError;
use leadroute_domain::ids::{Owner, QueueId};
use leadroute_tests::TestApp;

fn refusal_code<T: std::fmt::Debug>(result: Result<T, AppError>) -> &'static str {
    result.expect_err("the command must be refused").code()
}

#[tokio::test]
async fn prm_cannot_be_disabled_once_enabled() {
    let app = TestApp::spawn().await;
    let org = app.prm_org().await;

    for _ in 0..2 {
        assert_eq!(
            refusal_code(app.commands.disable_prm(&app.meta(), org).await),
            "prm_irreversible"
        );
    }
    assert_eq!(app.event_types(org).await, ["OrgCreated", "PrmEnabled"]);

    let enabled = app.last_payload(org).await;
    let ack = &enabled["PrmEnabled"]["acknowledgement"];
    assert_eq!(ack["reviewed_by"], app.admin.to_string());
    assert_eq!(ack["fields"]["lead"], serde_json::json!(["company"]));
    assert_eq!(ack["fields"]["account"], serde_json::json!(["name"]));
    assert!(
        enabled["PrmEnabled"]["at"].is_string(),
        "the acknowledgement records when"
    );
}

#[tokio::test]
async fn prm_needs_the_sharing_review_acknowledged() {
    let app = TestApp::spawn().await;
    let org = app.org().await;
    assert_eq!(
        refusal_code(app.commands.enable_prm(&app.meta(), org, None).await),
        "sharing_review_not_acknowledged"
    );
    assert_eq!(app.event_types(org).await, ["OrgCreated"]);
}

#[tokio::test]
async fn partners_are_activated_only_once_prm_is_enabled() {
    let app = TestApp::spawn().await;
    let org = app.org().await;
    let account = app.account(org).await;
    assert_eq!(
        refusal_code(
            app.commands
                .activate_partner(&app.meta(), org, account)
                .await
        ),
        "prm_not_enabled"
    );

    app.commands
        .enable_prm(&app.meta(), org, Some(app.sharing_review()))
        .await
        .unwrap();
    app.commands
        .activate_partner(&app.meta(), org, account)
        .await
        .unwrap();
    assert_eq!(
        app.event_types(account).await,
        ["PartnerAccountCreated", "PartnerActivated"]
    );
}

#[tokio::test]
async fn a_contact_of_a_non_partner_account_cannot_be_activated() {
    let app = TestApp::spawn().await;
    let org = app.prm_org().await;
    let account = app.account(org).await;
    let contact = app.contact(org, account).await;
    let expires = chrono::Utc::now() + chrono::Duration::days(1);
    let activation = app
        .commands
        .activate_partner_user(
            &app.meta(),
            org,
            contact,
            leadroute_domain::ids::InvitationId::new_random(),
            expires,
        )
        .await;
    assert_eq!(refusal_code(activation), "partner_account_not_active");
}

#[tokio::test]
async fn reassign_to_never_signed_in_user_is_refused_until_the_first_sign_in() {
    let app = TestApp::spawn().await;
    let org = app.prm_org().await;
    let account = app.active_partner(org).await;
    let user = app.activated_user(org, account).await;
    let lead = app.lead(org).await;

    let refused = app
        .commands
        .reassign_lead(&app.meta(), org, lead, Owner::PartnerUser(user), true)
        .await;
    assert_eq!(refusal_code(refused), "never_signed_in");
    assert_eq!(app.event_types(lead).await, ["LeadReceived"]);

    app.commands
        .record_sign_in(&app.meta(), org, user)
        .await
        .unwrap();
    app.commands
        .reassign_lead(&app.meta(), org, lead, Owner::PartnerUser(user), true)
        .await
        .unwrap();

    let reassigned = &app.last_payload(lead).await["LeadReassigned"];
    assert_eq!(reassigned["change"]["from"], serde_json::Value::Null);
    assert_eq!(
        reassigned["change"]["to"],
        serde_json::json!({"kind": "partner_user", "id": user.to_string()})
    );
    assert_eq!(
        reassigned["change"]["actor"],
        serde_json::json!({"kind": "internal_user", "id": app.admin.to_string()})
    );
    assert_eq!(reassigned["change"]["cause"], "manual");
    assert!(reassigned["change"]["at"].is_string());
    assert_eq!(reassigned["notify"], true);
}

#[tokio::test]
async fn inactive_users_and_users_of_inactive_partners_are_not_assignable() {
    let app = TestApp::spawn().await;
    let org = app.prm_org().await;
    let account = app.active_partner(org).await;
    let user = app.assignable_user(org, account).await;
    let lead = app.lead(org).await;

    app.commands
        .deactivate_partner(&app.meta(), org, account)
        .await
        .unwrap();
    let refused = app
        .commands
        .reassign_lead(&app.meta(), org, lead, Owner::PartnerUser(user), false)
        .await;
    assert_eq!(refusal_code(refused), "partner_account_not_active");

    app.commands
        .deactivate_partner_user(&app.meta(), org, user)
        .await
        .unwrap();
    let refused = app
        .commands
        .reassign_lead(&app.meta(), org, lead, Owner::PartnerUser(user), false)
        .await;
    assert_eq!(refusal_code(refused), "inactive");
}

#[tokio::test]
async fn a_paused_user_can_still_be_assigned_manually() {
    let app = TestApp::spawn().await;
    let org = app.prm_org().await;
    let account = app.active_partner(org).await;
    let user = app.assignable_user(org, account).await;
    app.commands
        .pause_auto_assignment(&app.meta(), org, user, None)
        .await
        .unwrap();
    let lead = app.lead(org).await;
    app.commands
        .reassign_lead(&app.meta(), org, lead, Owner::PartnerUser(user), false)
        .await
        .unwrap();
    assert_eq!(
        app.event_types(lead).await,
        ["LeadReceived", "LeadReassigned"]
    );
}

#[tokio::test]
async fn another_orgs_users_queues_and_leads_are_not_found() {
    let app = TestApp::spawn().await;
    let org = app.prm_org().await;
    let other = app.prm_org().await;
    let other_account = app.active_partner(other).await;
    let other_user = app.assignable_user(other, other_account).await;
    let other_queue = app.queue(other).await;
    let lead = app.lead(org).await;
    let other_lead = app.lead(other).await;

    let to_user = app
        .commands
        .reassign_lead(
            &app.meta(),
            org,
            lead,
            Owner::PartnerUser(other_user),
            false,
        )
        .await;
    assert_eq!(refusal_code(to_user), "contact_not_found");
    let to_queue = app
        .commands
        .enqueue_lead(&app.meta(), org, lead, other_queue)
        .await;
    assert_eq!(refusal_code(to_queue), "queue_not_found");
    let foreign_lead = app
        .commands
        .enqueue_lead(&app.meta(), org, other_lead, QueueId::new_random())
        .await;
    assert_eq!(refusal_code(foreign_lead), "lead_not_found");
    assert_eq!(app.event_types(lead).await, ["LeadReceived"]);
}

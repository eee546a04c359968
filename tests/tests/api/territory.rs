//! What a channel manager and a partner user see beyond their own: a channel manager lists
//! only the queues of their territory and sees past owners outside it as
//! `outside_territory`; a partner user sees a lead's upstream ids only when the org made
//! them partner-visible.

use leadroute_tests::api::TestApi;
use serde_json::json;

#[tokio::test]
async fn a_channel_manager_sees_only_their_territory_in_queues_and_history() {
    let api = TestApi::spawn().await;
    let org = api.prm_org().await;
    let (cm1, cm1_id) = api.key(&org.admin, "channel_manager").await;
    let (_, cm2_id) = api.key(&org.admin, "channel_manager").await;
    let mine = api.partner_account(&org.admin, cm1_id).await;
    let theirs = api.partner_account(&org.admin, cm2_id).await;
    let ada = api
        .activated_user(&org.admin, mine, "ada@mine.example")
        .await;
    let token = api.signed_in(org.id, ada, "ada@mine.example").await;
    let bob = api
        .activated_user(&org.admin, theirs, "bob@theirs.example")
        .await;
    api.signed_in(org.id, bob, "bob@theirs.example").await;
    let (mut queues, mut position) = (Vec::new(), String::new());
    for (name, member) in [("mine", ada), ("theirs", bob)] {
        let queue = api.create_queue(&org.admin, name).await;
        let added = api
            .add_queue_member(&org.admin, queue, "partner_user", member)
            .await
            .ok();
        position = added.body["position"].as_str().unwrap().to_string();
        queues.push(queue);
    }

    let listed = api
        .get(&format!("/v1/queues?min_position={position}"), &cm1)
        .await
        .ok();
    let ids: Vec<&str> = listed
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["queue_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [queues[0].to_string()], "only the territory's queue");
    let all = api.get("/v1/queues", &org.admin).await.ok();
    assert_eq!(all.body.as_array().unwrap().len(), 2);

    let (lead, _) = api.lead(&org.admin, json!({"company": "Globex"})).await;
    let mut moved = String::new();
    for to in [bob, ada] {
        let body = json!({"to": {"kind": "partner_user", "id": to}});
        moved = api
            .post(&format!("/v1/leads/{lead}/reassign"), &org.admin, body)
            .await
            .ok()
            .body["position"]
            .as_str()
            .unwrap()
            .to_string();
    }
    let history = api
        .get(
            &format!("/v1/leads/{lead}/history?min_position={moved}"),
            &cm1,
        )
        .await
        .ok();
    let rows = history.body.as_array().unwrap();
    assert_eq!(rows.len(), 2, "{history:?}");
    assert_eq!(rows[0]["to_kind"], "outside_territory");
    assert!(rows[0]["to_id"].is_null());
    assert_eq!(rows[1]["from_kind"], "outside_territory");
    assert!(rows[1]["from_id"].is_null());
    assert_eq!(rows[1]["to_id"], json!(ada));
    let full = api.history(&org.admin, lead).await.ok();
    assert_eq!(full.body[0]["to_id"], json!(bob), "admins see every owner");

    let seen = api.get_lead(&token, lead).await.ok();
    assert!(
        seen.body.get("upstream_lead_id").is_none() && seen.body.get("upstream_system").is_none(),
        "{seen:?}"
    );
    let internal = api.get_lead(&org.admin, lead).await.ok();
    assert!(internal.body["upstream_lead_id"].is_string());
}

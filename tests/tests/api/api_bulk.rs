//! Bulk reassignment over HTTP (F07): 10,000 leads moved by one operation, every owner change
//! carrying its id; ineligible leads reported with their reasons; re-submission; pools;
//! channel-manager scope; cancel; bad requests.

use leadroute_app::{CommandMeta, Commands, NewLead};
use leadroute_domain::ids::{Actor, OrgId, UpstreamRef};
use leadroute_tests::api::{Answer, TestApi, TestOrg};
use leadroute_tests::eventually;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;
use uuid::Uuid;

/// `n` leads received straight through the application layer (1,000 per transaction).
async fn leads(api: &TestApi, org: OrgId, n: usize) -> Vec<Uuid> {
    let commands = Commands::new(api.db.pool.clone());
    let meta = CommandMeta::now(Actor::System("test".into()));
    let mut ids = Vec::with_capacity(n);
    let all: Vec<NewLead> = (0..n)
        .map(|i| NewLead {
            upstream: UpstreamRef {
                system: "salesforce".into(),
                lead_id: format!("L{i:05}-{}", Uuid::new_v4()),
            },
            upstream_event_id: Uuid::new_v4().to_string(),
            fields: BTreeMap::from([(
                "country".to_string(),
                json!(if i % 2 == 0 { "DE" } else { "FR" }),
            )]),
            route: true,
            occurred_at: None,
            owner: None,
        })
        .collect();
    for chunk in all.chunks(1000) {
        for (id, written) in commands.receive_leads(&meta, org, chunk).await.unwrap() {
            assert_eq!(written.unwrap(), 1);
            ids.push(id.0);
        }
    }
    ids
}

/// An assignable partner user of a new account managed by a new channel manager: (cm key,
/// cm id, account, user).
async fn partner(api: &TestApi, org: &TestOrg, email: &str) -> (String, Uuid, Uuid, Uuid) {
    let (cm, cm_id) = api.key(&org.admin, "channel_manager").await;
    let account = api.partner_account(&org.admin, cm_id).await;
    let user = api.activated_user(&org.admin, account, email).await;
    api.signed_in(org.id, user, email).await;
    (cm, cm_id, account, user)
}

async fn start(api: &TestApi, token: &str, body: Value) -> Answer {
    api.post("/v1/bulk-reassignments", token, body).await
}

/// The operation's progress once it is no longer running.
async fn finished(api: &TestApi, token: &str, id: Uuid) -> Value {
    eventually(Duration::from_secs(120), || async {
        let progress = api
            .get(&format!("/v1/bulk-reassignments/{id}"), token)
            .await
            .ok()
            .body;
        (progress["status"] != "running").then_some(progress)
    })
    .await
    .expect("the operation finishes")
}

async fn results(api: &TestApi, token: &str, id: Uuid, query: &str) -> Vec<Value> {
    let mut all = Vec::new();
    let mut offset = 0;
    loop {
        let page = api
            .get(
                &format!("/v1/bulk-reassignments/{id}/results?limit=1000&offset={offset}{query}"),
                token,
            )
            .await
            .ok()
            .body;
        all.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next_offset"].as_u64() {
            Some(next) => offset = next as usize,
            None => return all,
        }
    }
}

async fn count(api: &TestApi, sql: &str, operation: Uuid) -> i64 {
    sqlx::query_scalar(sql)
        .bind(operation.to_string())
        .fetch_one(&api.db.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn ten_thousand_leads_move_with_one_operation_id_and_ineligible_ones_are_reported() {
    let api = TestApi::spawn().await;
    let org = api.prm_org().await;
    let (_, _, _, ada) = partner(&api, &org, "ada@bulk.example").await;
    let (_, _, _, bob) = partner(&api, &org, "bob@bulk.example").await;
    let ids = leads(&api, org.id, 10_001).await;

    // Give them all to Ada first: a filter, frozen when the operation starts.
    api.lead(&org.admin, json!({"country": "US"})).await;
    let seeded = eventually(Duration::from_secs(60), || async {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM rm_leads WHERE org_id = $1")
            .bind(org.id.0)
            .fetch_one(&api.db.pool)
            .await
            .ok()?;
        (n == 10_002).then_some(())
    })
    .await;
    assert!(seeded.is_some(), "the leads projection holds every lead");
    let to_ada = json!({"filter": {"status": "unassigned", "fields": [{"op": "in", "field": "country", "values": ["de", "fr"]}]},
        "to": {"kind": "partner_user", "id": ada}, "reason": "initial split"});
    let first = start(&api, &org.admin, to_ada).await;
    assert_eq!(first.status, StatusCode::ACCEPTED, "{first:?}");
    let progress = finished(&api, &org.admin, first.uuid("id")).await;
    assert_eq!(
        (
            progress["status"].as_str(),
            progress["total"].as_u64(),
            progress["moved"].as_u64()
        ),
        (Some("completed"), Some(10_001), Some(10_001)),
        "the US lead is not selected: {progress}"
    );

    // One lead goes to Bob by hand; an unknown id joins the list.
    let bobs = ids[10_000];
    api.post(
        &format!("/v1/leads/{bobs}/reassign"),
        &org.admin,
        json!({"to": {"kind": "partner_user", "id": bob}}),
    )
    .await
    .ok();
    let unknown = Uuid::new_v4();
    let mut list = ids.clone();
    list.push(unknown);
    let body = json!({"lead_ids": list, "to": {"kind": "partner_user", "id": bob},
        "notify": false, "reason": "Ada moves to another territory"});
    let headers = [("idempotency-key", "ada-to-bob")];
    let answer = api
        .call_with(
            Method::POST,
            "/v1/bulk-reassignments",
            Some(&org.admin),
            Some(body.clone()),
            &headers,
        )
        .await;
    assert_eq!(answer.status, StatusCode::ACCEPTED, "{answer:?}");
    let op = answer.uuid("id");
    let progress = finished(&api, &org.admin, op).await;
    assert_eq!(progress["status"], "completed", "{progress}");
    assert_eq!(
        (
            progress["total"].as_u64(),
            progress["moved"].as_u64(),
            progress["skipped"].as_u64(),
            progress["refused"].as_u64()
        ),
        (Some(10_002), Some(10_000), Some(1), Some(1)),
        "{progress}"
    );
    assert!(progress["leads_per_second"].as_f64().unwrap_or(0.0) > 0.0);

    // 10,000 owner changes, one per lead, each with cause bulk and the operation id.
    let changes = count(
        &api,
        "SELECT count(*) FROM events WHERE event_type = 'LeadReassigned'
            AND payload->'LeadReassigned'->>'operation' = $1
            AND payload->'LeadReassigned'->'change'->>'cause' = 'bulk'",
        op,
    )
    .await;
    let leads_moved = count(
        &api,
        "SELECT count(DISTINCT aggregate_id) FROM events WHERE event_type = 'LeadReassigned'
            AND payload->'LeadReassigned'->>'operation' = $1",
        op,
    )
    .await;
    assert_eq!((changes, leads_moved), (10_000, 10_000));

    // Per-lead results, paged, in selection order, with the reasons.
    let all = results(&api, &org.admin, op, "").await;
    assert_eq!(all.len(), 10_002);
    let ineligible = results(&api, &org.admin, op, "&result=refused").await;
    assert_eq!(
        ineligible,
        vec![
            json!({"lead_id": unknown, "result": "refused", "to": null, "code": "lead_not_found"})
        ]
    );
    let skipped = results(&api, &org.admin, op, "&result=skipped").await;
    assert_eq!(skipped[0]["lead_id"], json!(bobs));
    assert_eq!(skipped[0]["code"], "already_owner");

    // The history names the operation; the owner is Bob.
    let lead = ids[42];
    let history = eventually(Duration::from_secs(30), || async {
        let history = api.history(&org.admin, lead).await.ok().body;
        let last = history.as_array()?.last()?.clone();
        (last["cause"] == "bulk").then_some(last)
    })
    .await;
    let history = match history {
        Some(history) => history,
        None => panic!(
            "the history projection records the bulk move: {:?} {:?}",
            api.history(&org.admin, lead).await,
            leadroute_projections::status::status(&api.db.pool, &["ownership_history", "leads"])
                .await
        ),
    };
    assert_eq!(history["cause"], "bulk");
    assert_eq!(history["operation_id"], json!(op));
    assert_eq!(history["to_id"], json!(bob));

    // The same request with the same key: the same operation, nothing new.
    let again = api
        .call_with(
            Method::POST,
            "/v1/bulk-reassignments",
            Some(&org.admin),
            Some(body),
            &headers,
        )
        .await
        .ok();
    assert_eq!(again.uuid("id"), op);
    let after = count(
        &api,
        "SELECT count(*) FROM events WHERE payload->'LeadReassigned'->>'operation' = $1",
        op,
    )
    .await;
    assert_eq!(after, 10_000, "a re-submission moves nothing");
}

#[tokio::test]
async fn resubmitting_without_the_http_record_finds_the_same_operation() {
    let api = TestApi::spawn().await;
    let org = api.prm_org().await;
    let (_, _, _, ada) = partner(&api, &org, "ada@again.example").await;
    let ids = leads(&api, org.id, 3).await;
    let body = json!({"lead_ids": ids, "to": {"kind": "partner_user", "id": ada}, "reason": "r"});
    let headers = [("idempotency-key", "k1")];
    let first = api
        .call_with(
            Method::POST,
            "/v1/bulk-reassignments",
            Some(&org.admin),
            Some(body.clone()),
            &headers,
        )
        .await
        .ok();
    finished(&api, &org.admin, first.uuid("id")).await;
    // Forget the HTTP idempotency record: the key still names the same operation.
    sqlx::query("DELETE FROM idempotency_keys")
        .execute(&api.db.pool)
        .await
        .unwrap();
    let second = api
        .call_with(
            Method::POST,
            "/v1/bulk-reassignments",
            Some(&org.admin),
            Some(body),
            &headers,
        )
        .await;
    assert_eq!(second.status, StatusCode::OK, "{second:?}");
    assert_eq!(
        (second.uuid("id"), second.body["events"].as_u64()),
        (first.uuid("id"), Some(0))
    );
    // The same key with another request is refused.
    let other =
        json!({"lead_ids": ids[..1], "to": {"kind": "partner_user", "id": ada}, "reason": "r"});
    sqlx::query("DELETE FROM idempotency_keys")
        .execute(&api.db.pool)
        .await
        .unwrap();
    let reused = api
        .call_with(
            Method::POST,
            "/v1/bulk-reassignments",
            Some(&org.admin),
            Some(other),
            &headers,
        )
        .await;
    assert_eq!(reused.code(), "idempotency_key_reused", "{reused:?}");
}

#[tokio::test]
async fn a_pool_spreads_the_leads_and_an_unassignable_target_refuses_each_with_its_reason() {
    let api = TestApi::spawn().await;
    let org = api.prm_org().await;
    let (_, _, _, ada) = partner(&api, &org, "ada@pool.example").await;
    let (_, _, account, bob) = partner(&api, &org, "bob@pool.example").await;
    let pool = api.create_pool(&org.admin, "spread", None).await;
    for member in [ada, bob] {
        api.post(
            &format!("/v1/pools/{pool}/members"),
            &org.admin,
            json!({"kind": "partner_user", "id": member}),
        )
        .await
        .ok();
    }
    let ids = leads(&api, org.id, 10).await;
    let answer = start(
        &api,
        &org.admin,
        json!({"lead_ids": ids, "to": {"kind": "pool", "id": pool}, "reason": "spread"}),
    )
    .await;
    let op = answer.ok().uuid("id");
    let progress = finished(&api, &org.admin, op).await;
    assert_eq!(
        progress["moved"],
        10,
        "{progress} {:?}",
        results(&api, &org.admin, op, "").await
    );
    let moved = results(&api, &org.admin, op, "").await;
    let to_ada = moved.iter().filter(|r| r["to"]["id"] == json!(ada)).count();
    assert_eq!(to_ada, 5, "round-robin over two members: {moved:?}");
    let picks: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE aggregate_id = $1 AND event_type = 'PoolMemberPicked'",
    )
    .bind(pool.to_string())
    .fetch_one(&api.db.pool)
    .await
    .unwrap();
    assert_eq!(picks, 10);

    // Bob's account is switched off: every lead sent to Bob is refused with the reason.
    api.post(
        &format!("/v1/partner-accounts/{account}/deactivate"),
        &org.admin,
        json!({}),
    )
    .await
    .ok();
    let answer = start(
        &api,
        &org.admin,
        json!({"lead_ids": ids, "to": {"kind": "partner_user", "id": bob}, "reason": "to bob"}),
    )
    .await;
    let op = answer.ok().uuid("id");
    let progress = finished(&api, &org.admin, op).await;
    assert_eq!(
        (
            progress["moved"].as_u64(),
            progress["skipped"].as_u64(),
            progress["refused"].as_u64()
        ),
        (Some(0), Some(5), Some(5)),
        "{progress}"
    );
    let refused = results(&api, &org.admin, op, "&result=refused").await;
    assert!(
        refused
            .iter()
            .all(|r| r["code"] == "partner_account_not_active"),
        "{refused:?}"
    );
}

#[tokio::test]
async fn a_channel_manager_moves_only_leads_of_their_accounts_and_follows_only_their_operations() {
    let api = TestApi::spawn().await;
    let org = api.prm_org().await;
    let (cm1, _, _, p1) = partner(&api, &org, "p1@cm.example").await;
    let (cm2, _, _, p2) = partner(&api, &org, "p2@cm.example").await;
    let ids = leads(&api, org.id, 4).await;
    for (n, lead) in ids.iter().enumerate() {
        let owner = if n < 2 { p1 } else { p2 };
        api.post(
            &format!("/v1/leads/{lead}/reassign"),
            &org.admin,
            json!({"to": {"kind": "partner_user", "id": owner}}),
        )
        .await
        .ok();
    }
    let in_directory = eventually(Duration::from_secs(30), || async {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM rm_leads WHERE org_id = $1 AND owner_id IS NOT NULL",
        )
        .bind(org.id.0)
        .fetch_one(&api.db.pool)
        .await
        .ok()?;
        (n == 4).then_some(())
    })
    .await;
    assert!(in_directory.is_some());

    // cm1 may not target another manager's user, nor use a pool.
    let foreign = start(
        &api,
        &cm1,
        json!({"lead_ids": ids, "to": {"kind": "partner_user", "id": p2}, "reason": "x"}),
    )
    .await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND, "{foreign:?}");
    let pool = api.create_pool(&org.admin, "p", None).await;
    let pooled = start(
        &api,
        &cm1,
        json!({"lead_ids": ids, "to": {"kind": "pool", "id": pool}, "reason": "x"}),
    )
    .await;
    assert_eq!(pooled.status, StatusCode::FORBIDDEN, "{pooled:?}");

    // cm1 lists all four leads: p2's two are refused as not found, p1's are skipped.
    let op = start(
        &api,
        &cm1,
        json!({"lead_ids": ids, "to": {"kind": "partner_user", "id": p1}, "reason": "x"}),
    )
    .await
    .ok()
    .uuid("id");
    let progress = finished(&api, &cm1, op).await;
    assert_eq!(
        (progress["skipped"].as_u64(), progress["refused"].as_u64()),
        (Some(2), Some(2)),
        "{progress}"
    );
    let refused = results(&api, &cm1, op, "&result=refused").await;
    let refused_ids: Vec<Value> = refused.iter().map(|r| r["lead_id"].clone()).collect();
    assert_eq!(refused_ids, vec![json!(ids[2]), json!(ids[3])]);
    assert!(refused.iter().all(|r| r["code"] == "lead_not_found"));

    // cm2 does not see cm1's operation; the admin does.
    let hidden = api.get(&format!("/v1/bulk-reassignments/{op}"), &cm2).await;
    assert_eq!(hidden.status, StatusCode::NOT_FOUND);
    api.get(&format!("/v1/bulk-reassignments/{op}"), &org.admin)
        .await
        .ok();
    // A filter by a cm reaches their accounts' leads only.
    let by_filter = start(&api, &cm2, json!({"filter": {"status": "to_accept"}, "to": {"kind": "partner_user", "id": p2}, "reason": "x"}))
        .await
        .ok()
        .uuid("id");
    let progress = finished(&api, &cm2, by_filter).await;
    assert_eq!(
        (progress["total"].as_u64(), progress["skipped"].as_u64()),
        (Some(2), Some(2)),
        "{progress}"
    );
    // Finished operations cannot be cancelled.
    let cancel = api
        .post(
            &format!("/v1/bulk-reassignments/{op}/cancel"),
            &cm1,
            json!({}),
        )
        .await;
    assert_eq!(cancel.code(), "bulk_operation_finished", "{cancel:?}");
}

#[tokio::test]
async fn bad_requests_are_refused_naming_the_field() {
    let api = TestApi::spawn().await;
    let org = api.prm_org().await;
    let (_, _, _, ada) = partner(&api, &org, "ada@bad.example").await;
    let to = json!({"kind": "partner_user", "id": ada});
    for (body, field) in [
        (json!({"to": to, "reason": "r"}), "body"),
        (
            json!({"lead_ids": [], "filter": {"status": "queued"}, "to": to, "reason": "r"}),
            "body",
        ),
        (
            json!({"filter": {}, "to": to, "reason": "r"}),
            "body.filter",
        ),
        (
            json!({"filter": {"ownr": {"kind": "queue", "id": ada}}, "to": to, "reason": "r"}),
            "body.filter",
        ),
        (
            json!({"lead_ids": [], "to": to, "reason": "  "}),
            "body.reason",
        ),
        (
            json!({"lead_ids": ["nope"], "to": to, "reason": "r"}),
            "body.lead_ids",
        ),
    ] {
        let answer = start(&api, &org.admin, body.clone()).await;
        assert_eq!(
            (answer.status, answer.code()),
            (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
            "{body}: {answer:?}"
        );
        let named = answer.body["field"].as_str().unwrap_or("");
        assert!(
            named.starts_with(field),
            "{body}: field {named}, expected {field}"
        );
    }
    let missing = start(
        &api,
        &org.admin,
        json!({"lead_ids": [], "to": {"kind": "queue", "id": Uuid::new_v4()}, "reason": "r"}),
    )
    .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND, "{missing:?}");
    let unknown = api
        .get(
            &format!("/v1/bulk-reassignments/{}", Uuid::new_v4()),
            &org.admin,
        )
        .await;
    assert_eq!(unknown.code(), "bulk_operation_not_found");
    // An empty list is a finished operation with nothing to do.
    let empty = start(
        &api,
        &org.admin,
        json!({"lead_ids": [], "to": to, "reason": "nothing"}),
    )
    .await
    .ok();
    let progress = finished(&api, &org.admin, empty.uuid("id")).await;
    assert_eq!(
        (progress["status"].as_str(), progress["total"].as_u64()),
        (Some("completed"), Some(0))
    );
}

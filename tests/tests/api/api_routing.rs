//! Routing over HTTP (real PostgreSQL; re-runs route inline, no NATS needed): published
//! rule sets with their decision records, keep-owner, versions that change only later
//! decisions, dry runs that write nothing, caps and every non-assignment reason, and the
//! refusals of malformed rule sets and pools.

use leadroute_tests::api::{TestApi, TestOrg};
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

/// A PRM org with one active account and a channel manager.
async fn setup(api: &TestApi) -> (TestOrg, Uuid) {
    let org = api.prm_org().await;
    let (_, account) = api.managed_account(&org).await;
    (org, account)
}

async fn assignable(api: &TestApi, org: &TestOrg, account: Uuid) -> Uuid {
    let email = format!("{}@partner.example", Uuid::new_v4().simple());
    let user = api.activated_user(&org.admin, account, &email).await;
    api.signed_in(org.id, user, &email).await;
    user
}

async fn pool(api: &TestApi, org: &TestOrg, cap: Option<u32>, members: &[(Uuid, u32)]) -> Uuid {
    let pool = api.create_pool(&org.admin, "rr", cap).await;
    for (user, weight) in members {
        api.add_pool_member(&org.admin, pool, *user, *weight)
            .await
            .ok();
    }
    pool
}

async fn publish(api: &TestApi, org: &TestOrg, rules: Value) {
    api.publish_rules(&org.admin, rules).await.ok();
}

async fn rerun(api: &TestApi, org: &TestOrg, lead: Uuid) -> Value {
    let written = api.rerun(&org.admin, lead).await.ok();
    let decisions = api
        .get(&format!("/v1/leads/{lead}/decisions"), &org.admin)
        .await
        .ok()
        .body;
    let mut record = decisions.as_array().unwrap().last().unwrap().clone();
    record["position"] = written.body["position"].clone();
    record
}

fn to(kind: &str, id: Uuid) -> Value {
    json!({"kind": kind, "id": id})
}

#[tokio::test]
async fn a_rerun_routes_by_the_first_matching_entry_and_records_its_decision() {
    let api = TestApi::spawn().await;
    let (org, account) = setup(&api).await;
    let ready = assignable(&api, &org, account).await;
    let never = api
        .activated_user(&org.admin, account, "never@partner.example")
        .await;
    let pool = pool(&api, &org, None, &[(never, 1), (ready, 1)]).await;
    let queue = api.create_queue(&org.admin, "rest").await;
    publish(&api, &org, json!({
        "entries": [
            {"criteria": [{"op": "equals", "field": "country", "value": "FR"}], "target": to("queue", queue)},
            {"criteria": [{"op": "in", "field": "country", "values": ["de", "at"]}], "target": to("pool", pool), "notify": true},
            {"criteria": [{"op": "prefix", "field": "company", "prefix": "Glo"}], "target": to("queue", queue)}
        ],
        "default_owner": to("queue", queue)
    })).await;
    let (lead, _) = api
        .lead(&org.admin, json!({"country": " DE", "company": "Globex"}))
        .await;
    let record = rerun(&api, &org, lead).await;
    assert_eq!(record["event_type"], "LeadRouted");
    let event = &record["event"];
    assert_eq!(event["change"]["to"], to("partner_user", ready));
    assert_eq!(event["change"]["cause"], "rerun");
    assert_eq!(event["notify"], true);
    let decision = &event["decision"];
    assert_eq!(
        (
            decision["rule_set_version"].as_u64(),
            decision["matched_entry"].as_u64()
        ),
        (Some(1), Some(1))
    );
    let verdicts: Vec<_> = decision["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["member"]["id"].clone(), c["verdict"].clone()))
        .collect();
    assert_eq!(
        verdicts,
        [
            (json!(never), json!("never_signed_in")),
            (json!(ready), json!("assignable"))
        ]
    );
    assert!(decision["pool_before"].is_array() && decision["pool_after"].is_array());
    assert_ne!(
        decision["pool_before"], decision["pool_after"],
        "the rotation moved"
    );
    let position = record["position"].as_str().unwrap();
    let history = api
        .get(
            &format!("/v1/leads/{lead}/history?min_position={position}"),
            &org.admin,
        )
        .await
        .ok()
        .body;
    assert_eq!(
        history.as_array().unwrap().last().unwrap()["cause"],
        "rerun"
    );
}

/// A queue whose member is `account` (an active partner), so routing may send leads to it.
async fn staffed_queue(api: &TestApi, org: &TestOrg, account: Uuid, name: &str) -> Uuid {
    let queue = api.create_queue(&org.admin, name).await;
    api.add_queue_member(&org.admin, queue, "partner_account", account)
        .await
        .ok();
    queue
}

#[tokio::test]
async fn a_keep_owner_entry_keeps_an_assignable_owner() {
    let api = TestApi::spawn().await;
    let (org, account) = setup(&api).await;
    let owner = assignable(&api, &org, account).await;
    let queue = staffed_queue(&api, &org, account, "q").await;
    publish(
        &api,
        &org,
        json!({"entries": [{"target": to("queue", queue), "keep_owner": true}]}),
    )
    .await;
    let (lead, _) = api.lead(&org.admin, json!({})).await;
    api.post(
        &format!("/v1/leads/{lead}/reassign"),
        &org.admin,
        json!({"to": to("partner_user", owner)}),
    )
    .await
    .ok();
    let record = rerun(&api, &org, lead).await;
    assert_eq!(record["event_type"], "LeadOwnerKept", "{record}");
    assert_eq!(record["event"]["decision"]["matched_entry"], 0);
    api.post(
        &format!("/v1/partner-users/{owner}/deactivate"),
        &org.admin,
        json!({}),
    )
    .await
    .ok();
    let record = rerun(&api, &org, lead).await;
    assert_eq!(
        record["event"]["change"]["to"],
        to("queue", queue),
        "an owner no longer assignable is not kept"
    );
    assert_eq!(record["event"]["decision"]["owner_not_assignable"], true);
}

#[tokio::test]
async fn a_new_version_changes_only_leads_routed_after_it() {
    let api = TestApi::spawn().await;
    let (org, account) = setup(&api).await;
    let first = staffed_queue(&api, &org, account, "first").await;
    let second = staffed_queue(&api, &org, account, "second").await;
    publish(
        &api,
        &org,
        json!({"entries": [{"target": to("queue", first)}]}),
    )
    .await;
    let (early, _) = api.lead(&org.admin, json!({})).await;
    assert_eq!(
        rerun(&api, &org, early).await["event"]["decision"]["rule_set_version"],
        1
    );
    publish(
        &api,
        &org,
        json!({"entries": [{"target": to("queue", second)}]}),
    )
    .await;
    let current = api.get("/v1/rule-sets/current", &org.admin).await.ok().body;
    assert_eq!(current["version"], 2);
    let (late, _) = api.lead(&org.admin, json!({})).await;
    assert_eq!(
        rerun(&api, &org, late).await["event"]["change"]["to"],
        to("queue", second)
    );
    let lead = api.get_lead(&org.admin, early).await.ok().body;
    assert_eq!(
        lead["owner"],
        to("queue", first),
        "published versions do not touch routed leads"
    );
}

#[tokio::test]
async fn a_dry_run_returns_decisions_and_writes_nothing() {
    let api = TestApi::spawn().await;
    let (org, account) = setup(&api).await;
    let users = [
        assignable(&api, &org, account).await,
        assignable(&api, &org, account).await,
    ];
    let pool = pool(&api, &org, None, &[(users[0], 1), (users[1], 1)]).await;
    let (a, _) = api.lead(&org.admin, json!({"country": "DE"})).await;
    let (b, _) = api.lead(&org.admin, json!({"country": "DE"})).await;
    let (c, written) = api.lead(&org.admin, json!({"country": "US"})).await;
    // The window is read from the leads projection: let it catch up first.
    api.get(
        &format!("/v1/leads/{c}/history?min_position={written}"),
        &org.admin,
    )
    .await
    .ok();
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&api.db.pool)
        .await
        .unwrap();
    let draft = json!({"entries": [{"criteria": [{"op": "equals", "field": "country", "value": "de"}], "target": to("pool", pool)}]});
    let runs = api
        .post(
            "/v1/rule-sets/dry-run",
            &org.admin,
            json!({"rules": draft, "lead_ids": [a, b, c]}),
        )
        .await
        .ok()
        .body;
    let owners: Vec<_> = runs
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["owner"].clone())
        .collect();
    assert_eq!(
        owners,
        [
            to("partner_user", users[0]),
            to("partner_user", users[1]),
            Value::Null
        ],
        "the pool turns within the run"
    );
    assert_eq!(runs[2]["not_routed"], "no_rule_matched");
    let after: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&api.db.pool)
        .await
        .unwrap();
    assert_eq!(after, events, "a dry run writes nothing");
    let window = api
        .post(
            "/v1/rule-sets/dry-run",
            &org.admin,
            json!({"rules": draft, "received_from": "2000-01-01T00:00:00Z"}),
        )
        .await;
    let window = window.ok().body;
    assert!(
        window.as_array().unwrap().len() >= 3,
        "the leads received in the window: {window}"
    );
}

#[tokio::test]
async fn every_reason_a_lead_is_not_routed_is_recorded() {
    let api = TestApi::spawn().await;
    let (org, account) = setup(&api).await;
    let busy = assignable(&api, &org, account).await;
    let never = api
        .activated_user(&org.admin, account, "nobody@partner.example")
        .await;
    let capped = pool(&api, &org, Some(1), &[(busy, 1), (never, 1)]).await;
    let empty = pool(&api, &org, None, &[(never, 1)]).await;
    publish(&api, &org, json!({"entries": [
        {"criteria": [{"op": "equals", "field": "segment", "value": "capped"}], "target": to("pool", capped)},
        {"criteria": [{"op": "equals", "field": "segment", "value": "nobody"}], "target": to("pool", empty)},
        {"criteria": [{"op": "equals", "field": "segment", "value": "user"}], "target": to("partner_user", never)}
    ]})).await;
    let (held, _) = api.lead(&org.admin, json!({})).await;
    let moved = api
        .post(
            &format!("/v1/leads/{held}/reassign"),
            &org.admin,
            json!({"to": to("partner_user", busy)}),
        )
        .await
        .ok();
    let position = moved.body["position"].as_str().unwrap().to_string();
    api.get(
        &format!("/v1/partner-users/{busy}/inbox?min_position={position}"),
        &org.admin,
    )
    .await
    .ok();
    for (segment, reason) in [
        ("capped", "all_at_capacity"),
        ("nobody", "no_assignable_member"),
        ("user", "no_assignable_member"),
        ("other", "no_rule_matched"),
    ] {
        let (lead, _) = api.lead(&org.admin, json!({"segment": segment})).await;
        let record = rerun(&api, &org, lead).await;
        assert_eq!(
            (
                record["event_type"].as_str(),
                record["event"]["reason"].as_str()
            ),
            (Some("LeadNotRouted"), Some(reason)),
            "{segment}"
        );
    }
    let (closed, _) = api
        .lead(&org.admin, json!({"segment": "capped", "status": "Lost"}))
        .await;
    assert_eq!(
        rerun(&api, &org, closed).await["event"]["reason"],
        "lead_closed"
    );
}

#[tokio::test]
async fn malformed_rule_sets_and_pools_are_refused_with_their_place() {
    let api = TestApi::spawn().await;
    let (org, account) = setup(&api).await;
    let pool = pool(&api, &org, None, &[]).await;
    let user = assignable(&api, &org, account).await;
    let zero = api
        .post(
            &format!("/v1/pools/{pool}/members"),
            &org.admin,
            json!({"kind": "partner_user", "id": user, "weight": 0}),
        )
        .await;
    assert_eq!(
        (zero.status, zero.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_weight")
    );
    let empty_in = json!({"entries": [{"criteria": [{"op": "in", "field": "country", "values": []}], "target": to("pool", pool)}]});
    let refused = api.post("/v1/rule-sets", &org.admin, empty_in).await;
    assert_eq!(refused.code(), "invalid_rule_set");
    assert!(refused.body["detail"]
        .as_str()
        .unwrap()
        .contains("entries[0]"));
    let pool_default = api
        .post(
            "/v1/rule-sets",
            &org.admin,
            json!({"entries": [], "default_owner": to("pool", pool)}),
        )
        .await;
    assert_eq!(pool_default.code(), "invalid_rule_set");
    let unknown = api
        .post(
            "/v1/rule-sets",
            &org.admin,
            json!({"entries": [{"target": to("queue", Uuid::new_v4())}]}),
        )
        .await;
    assert_eq!(
        (unknown.status, unknown.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "unknown_target")
    );
    let bad_op = api.post("/v1/rule-sets", &org.admin, json!({"entries": [{"criteria": [{"op": "like", "field": "x"}], "target": to("pool", pool)}]})).await;
    assert_eq!(
        (bad_op.code(), bad_op.body["field"].as_str()),
        ("validation_failed", Some("body.entries[0].criteria[0].op"))
    );
    let (lead, _) = api.lead(&org.admin, json!({})).await;
    let none = api.rerun(&org.admin, lead).await;
    assert_eq!(
        (none.status, none.code()),
        (StatusCode::CONFLICT, "no_rule_set"),
        "every publish above was refused, so there is nothing to route by"
    );
}

#[tokio::test]
async fn out_of_range_numbers_times_and_values_get_specific_errors_naming_the_field() {
    let api = TestApi::spawn().await;
    let (org, account) = setup(&api).await;
    let user = assignable(&api, &org, account).await;
    let problem = |answer: leadroute_tests::api::Answer| {
        (
            answer.status.as_u16(),
            answer.code().to_string(),
            answer.body["field"].as_str().unwrap_or("").to_string(),
        )
    };
    for cap in [-1_i64, 0, 5_000_000_000] {
        let answer = api
            .post("/v1/pools", &org.admin, json!({"name": "p", "cap": cap}))
            .await;
        assert_eq!(
            problem(answer),
            (422, "invalid_cap".into(), "body.cap".into()),
            "cap {cap}"
        );
    }
    let pool = api.create_pool(&org.admin, "p", Some(2)).await;
    for weight in [-1, 0, 101] {
        let body = json!({"kind": "partner_user", "id": user, "weight": weight});
        let answer = api
            .post(&format!("/v1/pools/{pool}/members"), &org.admin, body)
            .await;
        assert_eq!(
            problem(answer),
            (422, "invalid_weight".into(), "body.weight".into()),
            "weight {weight}"
        );
    }
    let (lead, _) = api.lead(&org.admin, json!({"employees": 250})).await;
    let answer = api
        .get(
            &format!("/v1/leads/{lead}/owner-at?at=yesterday"),
            &org.admin,
        )
        .await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(answer.body["field"], "query.at");
    assert!(
        answer.body["detail"].as_str().unwrap().contains("RFC 3339"),
        "{answer:?}"
    );
    // A number is a fine criterion value: it compares as its text.
    let queue = staffed_queue(&api, &org, account, "big").await;
    let rules = json!({"entries": [{
        "criteria": [{"op": "equals", "field": "employees", "value": 250}],
        "target": {"kind": "queue", "id": queue},
    }]});
    api.publish_rules(&org.admin, rules).await.ok();
    let record = rerun(&api, &org, lead).await;
    assert_eq!(record["event"]["decision"]["matched_entry"], 0, "{record}");
    assert_eq!(record["event_type"], "LeadRouted", "{record}");
}

#[tokio::test]
async fn a_member_s_weight_and_own_cap_change_without_losing_its_place() {
    let api = TestApi::spawn().await;
    let (org, account) = setup(&api).await;
    let (a, b) = (
        assignable(&api, &org, account).await,
        assignable(&api, &org, account).await,
    );
    let pool = pool(&api, &org, None, &[(a, 1), (b, 1)]).await;
    let path = format!("/v1/pools/{pool}/members/partner_user/{a}");
    let patch = |body: Value| {
        let (api, path, admin) = (&api, path.clone(), org.admin.clone());
        async move {
            api.call_with(reqwest::Method::PATCH, &path, Some(&admin), Some(body), &[])
                .await
        }
    };
    patch(json!({"weight": 3, "cap": 2})).await.ok();
    let view = api
        .get(&format!("/v1/pools/{pool}"), &org.admin)
        .await
        .ok()
        .body;
    let slot = &view["rotation"]["slots"][0];
    assert_eq!(
        (slot["weight"].as_u64(), slot["cap"].as_u64()),
        (Some(3), Some(2))
    );
    patch(json!({"cap": null})).await.ok();
    let view = api
        .get(&format!("/v1/pools/{pool}"), &org.admin)
        .await
        .ok()
        .body;
    assert!(view["rotation"]["slots"][0]["cap"].is_null(), "{view}");
    assert_eq!(
        view["rotation"]["slots"][0]["weight"], 3,
        "the weight stays"
    );
    let again = patch(json!({"weight": 3})).await.ok();
    assert_eq!(again.body["events"], 0, "no change, no event");
    for (body, code, field) in [
        (json!({"weight": 0}), "invalid_weight", "body.weight"),
        (json!({"cap": -2}), "invalid_cap", "body.cap"),
    ] {
        let answer = patch(body).await;
        assert_eq!(
            (
                answer.status.as_u16(),
                answer.code(),
                answer.body["field"].as_str()
            ),
            (422, code, Some(field))
        );
    }
    // A member may join with its own cap.
    let c = assignable(&api, &org, account).await;
    let members = format!("/v1/pools/{pool}/members");
    let refused = api
        .post(
            &members,
            &org.admin,
            json!({"kind": "partner_user", "id": c, "cap": 0}),
        )
        .await;
    assert_eq!(
        (refused.status.as_u16(), refused.code()),
        (422, "invalid_cap")
    );
    api.post(
        &members,
        &org.admin,
        json!({"kind": "partner_user", "id": c, "cap": 1}),
    )
    .await
    .ok();
    let view = api
        .get(&format!("/v1/pools/{pool}"), &org.admin)
        .await
        .ok()
        .body;
    assert_eq!(view["rotation"]["slots"][2]["cap"], 1, "{view}");
    let stranger = Uuid::new_v4();
    let answer = api
        .call_with(
            reqwest::Method::PATCH,
            &format!("/v1/pools/{pool}/members/partner_user/{stranger}"),
            Some(&org.admin),
            Some(json!({"weight": 2})),
            &[],
        )
        .await;
    assert_eq!(
        (answer.status.as_u16(), answer.code()),
        (409, "not_a_member")
    );
}

#[tokio::test]
async fn a_paused_member_is_skipped_and_served_from_its_place_when_it_resumes() {
    let api = TestApi::spawn().await;
    let (org, account) = setup(&api).await;
    let mut users = Vec::new();
    for _ in 0..3 {
        users.push(assignable(&api, &org, account).await);
    }
    let (a, b, c) = (users[0], users[1], users[2]);
    let pool = pool(&api, &org, None, &[(a, 1), (b, 1), (c, 1)]).await;
    publish(
        &api,
        &org,
        json!({"entries": [{"target": to("pool", pool)}]}),
    )
    .await;
    let owner_after_rerun = |lead: Uuid| {
        let (api, org) = (&api, &org);
        async move {
            let record = rerun(api, org, lead).await;
            record["event"]["change"]["to"]["id"].clone()
        }
    };
    let mut leads = Vec::new();
    for n in 0..5 {
        leads.push(api.lead(&org.admin, json!({"n": n})).await.0);
    }
    api.post(
        &format!("/v1/partner-users/{b}/pause"),
        &org.admin,
        json!({}),
    )
    .await
    .ok();
    assert_eq!(owner_after_rerun(leads[0]).await, json!(a));
    assert_eq!(
        owner_after_rerun(leads[1]).await,
        json!(c),
        "b is paused: skipped"
    );
    api.post(
        &format!("/v1/partner-users/{b}/resume"),
        &org.admin,
        json!({}),
    )
    .await
    .ok();
    assert_eq!(
        owner_after_rerun(leads[2]).await,
        json!(b),
        "b kept its place: it waited longest"
    );
    assert_eq!(owner_after_rerun(leads[3]).await, json!(a));
    assert_eq!(owner_after_rerun(leads[4]).await, json!(c));
}

#[tokio::test]
async fn a_lead_that_arrives_owned_keeps_that_owner_by_import_and_moves_no_rotation() {
    let api = TestApi::spawn().await;
    let (org, account) = setup(&api).await;
    let (a, b) = (
        assignable(&api, &org, account).await,
        assignable(&api, &org, account).await,
    );
    let pool = pool(&api, &org, None, &[(a, 1), (b, 1)]).await;
    publish(
        &api,
        &org,
        json!({"entries": [{"target": to("pool", pool)}]}),
    )
    .await;
    let body = |owner: Value| {
        json!({
            "schema_version": 1, "upstream_event_id": Uuid::new_v4().to_string(),
            "upstream_system": "salesforce", "upstream_lead_id": Uuid::new_v4().to_string(),
            "occurred_at": "2026-11-28T08:00:00Z", "fields": {"company": "Initech"},
            "owner": owner,
        })
    };
    let created = api
        .post("/v1/leads", &org.admin, body(to("partner_user", b)))
        .await
        .ok();
    let (lead, position) = (
        created.uuid("id"),
        created.body["position"].as_str().unwrap().to_string(),
    );
    let seen = api.get_lead(&org.admin, lead).await.ok();
    assert_eq!(seen.body["owner"], to("partner_user", b));
    let history = api
        .get(
            &format!("/v1/leads/{lead}/history?min_position={position}"),
            &org.admin,
        )
        .await
        .ok();
    assert_eq!(history.body[0]["cause"], "import", "{history:?}");
    let decisions = api
        .get(&format!("/v1/leads/{lead}/decisions"), &org.admin)
        .await
        .ok();
    assert_eq!(decisions.body, json!([]), "not routed");
    // The pool's rotation did not move: the next lead routed goes to a, first in line.
    let (next, _) = api.lead(&org.admin, json!({"company": "Hooli"})).await;
    let record = rerun(&api, &org, next).await;
    assert_eq!(record["event"]["change"]["to"], to("partner_user", a));
    let unknown = api
        .post("/v1/leads", &org.admin, body(to("queue", Uuid::new_v4())))
        .await;
    assert_eq!(
        (unknown.status.as_u16(), unknown.code()),
        (422, "unknown_owner"),
        "{unknown:?}"
    );
}

//! Possible duplicates (real PostgreSQL, leads received and routed as the intake does):
//! 1,000 new leads of which 100 match, by email or company domain, an open lead another
//! partner owns are held as `possible_duplicate`, exactly those 100; free-mail domains
//! never match; and each resolution does what it says over HTTP (route anyway routes it,
//! merge makes its upstream updates land on the matching lead, reject keeps it unrouted),
//! by admins or the channel manager of the matching owner only.

use leadroute_app::router::Router;
use leadroute_app::{CommandMeta, NewLead};
use leadroute_domain::ids::{Actor, LeadId, OrgId, UpstreamRef};
use leadroute_tests::api::{TestApi, TestOrg};
use leadroute_tests::eventually;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;
use uuid::Uuid;

fn to(kind: &str, id: Uuid) -> Value {
    json!({"kind": kind, "id": id})
}

fn lead(upstream: &str, fields: Value) -> NewLead {
    NewLead {
        upstream: UpstreamRef {
            system: "crm".into(),
            lead_id: upstream.to_string(),
        },
        upstream_event_id: Uuid::new_v4().to_string(),
        fields: serde_json::from_value(fields).unwrap(),
        route: true,
        occurred_at: None,
        owner: None,
    }
}

/// Receive and route `leads` as the intake does, 100 per batch.
async fn intake(router: &Router, org: OrgId, leads: &[NewLead]) -> Vec<LeadId> {
    let meta = CommandMeta::now(Actor::System("intake".into()));
    let mut ids = Vec::new();
    for chunk in leads.chunks(100) {
        let answers = router.receive_and_route(&meta, org, chunk).await.unwrap();
        ids.extend(answers.into_iter().map(|(id, answer)| {
            answer.unwrap();
            id
        }));
    }
    ids
}

/// Wait until the read models have applied the whole log.
async fn projected(api: &TestApi) {
    let done = eventually(Duration::from_secs(60), || async {
        let all = leadroute_projections::status::status(
            &api.db.pool,
            &["leads", "workflow", "directory"],
        )
        .await
        .unwrap();
        all.iter().all(|s| s.events_behind == 0).then_some(())
    })
    .await;
    assert!(done.is_some(), "the projections catch up");
}

async fn partner(api: &TestApi, org: &TestOrg, account: Uuid) -> Uuid {
    let email = format!("{}@partner.example", Uuid::new_v4().simple());
    let user = api.activated_user(&org.admin, account, &email).await;
    api.signed_in(org.id, user, &email).await;
    user
}

async fn resolve(
    api: &TestApi,
    org: &TestOrg,
    lead: LeadId,
    how: &str,
) -> leadroute_tests::api::Answer {
    let body = json!({ "resolution": how });
    api.post(&format!("/v1/leads/{lead}/resolve-hold"), &org.admin, body)
        .await
}

async fn events_of(api: &TestApi, lead: LeadId) -> Vec<(String, Value)> {
    let rows: Vec<(String, Value)> = sqlx::query_as(
        "SELECT event_type, payload FROM events WHERE aggregate_type = 'Lead' AND aggregate_id = $1
          ORDER BY sequence",
    )
    .bind(lead.to_string())
    .fetch_all(&api.db.pool)
    .await
    .unwrap();
    rows.into_iter()
        .map(|(kind, payload)| {
            let body = payload[&kind].clone();
            (kind, body)
        })
        .collect()
}

#[tokio::test]
async fn a_hundred_duplicates_among_a_thousand_leads_are_held_and_each_resolution_does_what_it_says(
) {
    let api = TestApi::spawn().await;
    let org = api.prm_org().await;
    let (_, account) = api.managed_account(&org).await;
    let mut users = Vec::new();
    for _ in 0..3 {
        users.push(partner(&api, &org, account).await);
    }
    let pool = api.create_pool(&org.admin, "rr", None).await;
    for user in &users {
        api.add_pool_member(&org.admin, pool, *user, 1).await.ok();
    }
    api.publish_rules(
        &org.admin,
        json!({"entries": [{"target": to("pool", pool)}]}),
    )
    .await
    .ok();
    let router = Router::new(api.db.pool.clone());

    // 900 leads, each its own company; the first 20 write from free-mail addresses that
    // share a domain (never a company's).
    let originals: Vec<NewLead> = (0..900)
        .map(|n| {
            let email = match n < 20 {
                true => format!("person{n}@gmail.com"),
                false => format!("buyer{n}@company{n}.example"),
            };
            lead(
                &format!("O-{n}"),
                json!({"company": format!("Company {n}"), "email": email}),
            )
        })
        .collect();
    let original_ids = intake(&router, org.id, &originals).await;
    projected(&api).await;

    // 100 duplicates: 40 by the same email (other case and spaces), 30 by the company
    // domain of the website, 30 by another address at the company's domain.
    let duplicates: Vec<(usize, NewLead)> = (0..100)
        .map(|k| {
            let n = 100 + k * 7;
            let fields = match k % 10 {
                0..=3 => json!({"email": format!("  BUYER{n}@Company{n}.example ")}),
                4..=6 => json!({"website": format!("https://www.company{n}.example/contact")}),
                _ => json!({"email": format!("someone.else@company{n}.example")}),
            };
            (n, lead(&format!("D-{k}"), fields))
        })
        .collect();
    // ... and leads that must not be held: another gmail user, a new company.
    let mut batch: Vec<NewLead> = duplicates.iter().map(|(_, l)| l.clone()).collect();
    batch.push(lead("N-1", json!({"email": "person0@gmail.com.example"})));
    batch.push(lead("N-2", json!({"email": "stranger@gmail.com"})));
    let ids = intake(&router, org.id, &batch).await;

    let held: Vec<(String, Value)> = sqlx::query_as(
        "SELECT aggregate_id, payload->'LeadHeld' FROM events WHERE event_type = 'LeadHeld'",
    )
    .fetch_all(&api.db.pool)
    .await
    .unwrap();
    assert_eq!(held.len(), 100, "exactly the duplicates are held");
    for ((n, _), id) in duplicates.iter().zip(&ids) {
        let (_, body) = held
            .iter()
            .find(|(lead, _)| *lead == id.to_string())
            .unwrap_or_else(|| panic!("duplicate of {n} not held"));
        assert_eq!(body["of"], json!(original_ids[*n]));
        let owner = api.get_lead(&org.admin, original_ids[*n].0).await.ok().body["owner"].clone();
        assert_eq!(
            body["owner"]["id"], owner["id"],
            "names the matching lead's owner"
        );
        let events = events_of(&api, *id).await;
        assert!(!events.iter().any(|(k, _)| k == "LeadRouted"), "not routed");
    }
    for extra in &ids[100..] {
        let events = events_of(&api, *extra).await;
        assert!(events.iter().any(|(k, _)| k == "LeadRouted"), "{events:?}");
    }

    // The admin sees the 100; a channel manager of another territory sees none.
    projected(&api).await;
    let listed = api.get("/v1/held-leads", &org.admin).await.ok().body;
    assert_eq!(listed.as_array().unwrap().len(), 100);
    assert!(listed[0]["duplicate_of"].is_string() && listed[0]["owner_id"].is_string());
    let (cm_token, _) = api.key(&org.admin, "channel_manager").await;
    let theirs = api.get("/v1/held-leads", &cm_token).await.ok().body;
    assert_eq!(theirs, json!([]), "another channel manager sees none");
    let (route_anyway, merge, reject) = (ids[0], ids[1], ids[2]);
    let refused = api
        .post(
            &format!("/v1/leads/{route_anyway}/resolve-hold"),
            &cm_token,
            json!({"resolution": "reject"}),
        )
        .await;
    assert_eq!(
        refused.status,
        StatusCode::FORBIDDEN,
        "not their owner's lead"
    );

    // Route anyway: routed at once, by the rules.
    resolve(&api, &org, route_anyway, "route_anyway").await.ok();
    let events = events_of(&api, route_anyway).await;
    let (last, body) = events.last().unwrap();
    assert_eq!(last, "LeadRouted");
    assert_eq!(body["decision"]["trigger"], "released");
    // Merge: its next upstream update lands on the lead it matched.
    resolve(&api, &org, merge, "merge").await.ok();
    let n = duplicates[1].0;
    let update = lead("D-1", json!({"phone": "555-0101"}));
    intake(&router, org.id, &[update]).await;
    let original = api.get_lead(&org.admin, original_ids[n].0).await.ok().body;
    assert_eq!(original["fields"]["phone"], "555-0101", "{original}");
    let merged = api.get_lead(&org.admin, merge.0).await.ok().body;
    assert!(merged["fields"].get("phone").is_none());
    // Reject: never routed, not even by a re-run.
    resolve(&api, &org, reject, "reject").await.ok();
    let rerun = api.rerun(&org.admin, reject.0).await.ok();
    assert_eq!(rerun.body["events"], 0);
    assert_eq!(
        api.get_lead(&org.admin, reject.0).await.ok().body["owner"],
        Value::Null
    );
    // A resolved hold is resolved; a bad resolution names the field.
    let again = resolve(&api, &org, reject, "route_anyway").await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(again.code(), "not_held");
    let bad = resolve(&api, &org, ids[3], "ignore").await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    projected(&api).await;
    let listed = api.get("/v1/held-leads", &org.admin).await.ok().body;
    assert_eq!(listed.as_array().unwrap().len(), 97);
}

//! Offers over HTTP (real PostgreSQL; the decline routes inline, no NATS needed): a lead
//! given to a partner user is offered until accepted; a decline needs a reason of the org's
//! list and routes the lead again at once, never back to a decliner (their verdict
//! `declined_before` in the decision record), even after the rotation comes round; when
//! nobody is left the entry's fallback takes it, or it stays unrouted with
//! `offerees_exhausted`.

use leadroute_tests::api::{TestApi, TestOrg};
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

fn to(kind: &str, id: Uuid) -> Value {
    json!({"kind": kind, "id": id})
}

/// An assignable partner user of `account` and their session token.
async fn partner(api: &TestApi, org: &TestOrg, account: Uuid) -> (Uuid, String) {
    let email = format!("{}@partner.example", Uuid::new_v4().simple());
    let user = api.activated_user(&org.admin, account, &email).await;
    let token = api.signed_in(org.id, user, &email).await;
    (user, token)
}

/// Route `lead` under the current rules (an explicit re-run) and answer its owner.
async fn route(api: &TestApi, org: &TestOrg, lead: Uuid) -> Value {
    api.rerun(&org.admin, lead).await.ok();
    api.get_lead(&org.admin, lead).await.ok().body["owner"].clone()
}

/// The lead's last routing decision.
async fn last_decision(api: &TestApi, org: &TestOrg, lead: Uuid) -> Value {
    let decisions = api
        .get(&format!("/v1/leads/{lead}/decisions"), &org.admin)
        .await
        .ok()
        .body;
    decisions.as_array().unwrap().last().unwrap().clone()
}

fn verdict_of(decision: &Value, user: Uuid) -> Value {
    decision["event"]["decision"]["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["member"]["id"] == json!(user))
        .map(|c| c["verdict"].clone())
        .unwrap_or(Value::Null)
}

async fn decline(
    api: &TestApi,
    token: &str,
    lead: Uuid,
    body: Value,
) -> leadroute_tests::api::Answer {
    api.post(&format!("/v1/leads/{lead}/decline"), token, body)
        .await
}

/// The inbox states of `user`'s leads, read after `position`.
async fn inbox(api: &TestApi, token: &str, user: Uuid, position: &str) -> Vec<(Uuid, String)> {
    let items = api
        .get(
            &format!("/v1/partner-users/{user}/inbox?min_position={position}"),
            token,
        )
        .await
        .ok()
        .body;
    items
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["lead_id"].as_str().unwrap().parse().unwrap(),
                i["state"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_declined_lead_goes_to_the_next_member_and_never_back_to_a_decliner() {
    let api = TestApi::spawn().await;
    let org = api.prm_org().await;
    let (_, account) = api.managed_account(&org).await;
    let (a, a_token) = partner(&api, &org, account).await;
    let (b, b_token) = partner(&api, &org, account).await;
    let (c, c_token) = partner(&api, &org, account).await;
    let pool = api.create_pool(&org.admin, "rr", None).await;
    for user in [a, b, c] {
        api.add_pool_member(&org.admin, pool, user, 1).await.ok();
    }
    api.publish_rules(
        &org.admin,
        json!({"entries": [{"target": to("pool", pool)}]}),
    )
    .await
    .ok();
    let (lead, _) = api.lead(&org.admin, json!({"company": "Globex"})).await;
    assert_eq!(route(&api, &org, lead).await, to("partner_user", a));

    // a declines: the lead goes at once to the next in line, b.
    let declined = decline(
        &api,
        &a_token,
        lead,
        json!({"reason": "not_qualified", "note": "too small"}),
    )
    .await
    .ok();
    let position = declined.body["position"].as_str().unwrap().to_string();
    let owner = api.get_lead(&org.admin, lead).await.ok().body["owner"].clone();
    assert_eq!(owner, to("partner_user", b));
    let decision = last_decision(&api, &org, lead).await;
    assert_eq!(decision["event"]["decision"]["trigger"], "declined");
    assert_eq!(verdict_of(&decision, a), "declined_before");
    assert!(inbox(&api, &a_token, a, &position).await.is_empty());
    assert_eq!(
        inbox(&api, &b_token, b, &position).await,
        vec![(lead, "offered".to_string())]
    );

    // The rotation comes round to a again several times: other leads reach a, this one
    // never does.
    let mut owners = Vec::new();
    for _ in 0..4 {
        let (other, _) = api.lead(&org.admin, json!({"company": "Initech"})).await;
        owners.push(route(&api, &org, other).await);
    }
    assert!(owners.contains(&to("partner_user", a)), "{owners:?}");
    decline(&api, &b_token, lead, json!({"reason": "no_capacity"}))
        .await
        .ok();
    let owner = api.get_lead(&org.admin, lead).await.ok().body["owner"].clone();
    assert_eq!(owner, to("partner_user", c), "only c is left");
    let decision = last_decision(&api, &org, lead).await;
    assert_eq!(verdict_of(&decision, a), "declined_before");
    assert_eq!(verdict_of(&decision, b), "declined_before");

    // c declines too: nobody is left, so the lead stays unrouted and says why.
    let last = decline(
        &api,
        &c_token,
        lead,
        json!({"reason": "other", "note": "left the company"}),
    )
    .await
    .ok();
    let body = api.get_lead(&org.admin, lead).await.ok().body;
    assert_eq!(body["owner"], Value::Null);
    let decision = last_decision(&api, &org, lead).await;
    assert_eq!(decision["event_type"], "LeadNotRouted");
    assert_eq!(decision["event"]["reason"], "offerees_exhausted");
    // A re-run changes nothing for it.
    assert_eq!(route(&api, &org, lead).await, Value::Null);

    // The history tells each decline, each to nobody, by the decliner.
    let position = last.body["position"].as_str().unwrap();
    let history = api
        .get(
            &format!("/v1/leads/{lead}/history?min_position={position}"),
            &org.admin,
        )
        .await
        .ok()
        .body;
    let steps: Vec<(Value, Value, Value)> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["cause"].clone(),
                h["from_id"].clone(),
                h["to_kind"].clone(),
            )
        })
        .collect();
    assert_eq!(
        steps,
        vec![
            (json!("rerun"), Value::Null, json!("partner_user")),
            (json!("declined"), json!(a), Value::Null),
            (json!("rule"), Value::Null, json!("partner_user")),
            (json!("declined"), json!(b), Value::Null),
            (json!("rule"), Value::Null, json!("partner_user")),
            (json!("declined"), json!(c), Value::Null),
        ]
    );
    let now = chrono::Utc::now().to_rfc3339();
    let owner_now = api
        .get(
            &format!("/v1/leads/{lead}/owner-at?at={}", url_escape(&now)),
            &org.admin,
        )
        .await
        .ok()
        .body;
    assert_eq!(owner_now, Value::Null, "nobody owns it now");
}

fn url_escape(text: &str) -> String {
    text.replace('+', "%2B").replace(':', "%3A")
}

#[tokio::test]
async fn the_entry_fallback_takes_a_lead_everyone_declined() {
    let api = TestApi::spawn().await;
    let org = api.prm_org().await;
    let (_, account) = api.managed_account(&org).await;
    let (a, a_token) = partner(&api, &org, account).await;
    let queue = api.create_queue(&org.admin, "fallback").await;
    api.add_queue_member(&org.admin, queue, "partner_account", account)
        .await
        .ok();
    api.publish_rules(
        &org.admin,
        json!({"entries": [{"target": to("partner_user", a), "fallback": to("queue", queue)}]}),
    )
    .await
    .ok();
    let (lead, _) = api.lead(&org.admin, json!({"company": "Globex"})).await;
    assert_eq!(route(&api, &org, lead).await, to("partner_user", a));
    decline(&api, &a_token, lead, json!({"reason": "not_my_territory"}))
        .await
        .ok();
    let owner = api.get_lead(&org.admin, lead).await.ok().body["owner"].clone();
    assert_eq!(owner, to("queue", queue));
    let decision = last_decision(&api, &org, lead).await;
    assert_eq!(decision["event"]["decision"]["fallback"], true);
    assert_eq!(verdict_of(&decision, a), "declined_before");
    // A fallback that is a pool is refused when the rule set is published.
    let pool = api.create_pool(&org.admin, "p", None).await;
    let refused = api
        .publish_rules(
            &org.admin,
            json!({"entries": [{"target": to("queue", queue), "fallback": to("pool", pool)}]}),
        )
        .await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.body
    );
    assert!(refused.body.to_string().contains("entries[0].fallback"));
}

#[tokio::test]
async fn accept_and_decline_are_the_offeree_s_with_reasons_of_the_org_s_list() {
    let api = TestApi::spawn().await;
    let org = api.prm_org().await;
    let (_, account) = api.managed_account(&org).await;
    let (a, a_token) = partner(&api, &org, account).await;
    let (_, b_token) = partner(&api, &org, account).await;
    let (lead, _) = api.lead(&org.admin, json!({"company": "Globex"})).await;
    api.reassign(&org.admin, lead, json!({"to": to("partner_user", a)}))
        .await
        .ok();
    // Someone else: the lead is not theirs to see.
    let answer = decline(&api, &b_token, lead, json!({"reason": "duplicate"})).await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    let answer = api
        .post(&format!("/v1/leads/{lead}/accept"), &b_token, json!({}))
        .await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    // Bad reasons, each with its own code.
    for (body, code) in [
        (json!({"reason": "bored"}), "unknown_decline_reason"),
        (json!({"reason": ""}), "unknown_decline_reason"),
        (json!({"reason": "other"}), "decline_note_required"),
        // The strict JSON edge refuses a NUL before any command sees it.
        (
            json!({"reason": "other", "note": "x\u{0}y"}),
            "validation_failed",
        ),
        (
            json!({"reason": "other", "note": "x".repeat(2001)}),
            "invalid_note",
        ),
    ] {
        let answer = decline(&api, &a_token, lead, body.clone()).await;
        assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(answer.code(), code, "{body}");
    }
    let answer = decline(
        &api,
        &a_token,
        lead,
        json!({"reason": "duplicate", "extra": 1}),
    )
    .await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    // The org lists its own reasons; the defaults no longer hold.
    let reasons = api
        .get("/v1/org/partner-workflow", &a_token)
        .await
        .ok()
        .body;
    assert!(reasons["decline_reasons"]
        .as_array()
        .unwrap()
        .contains(&json!("not_my_territory")));
    for (bad, at) in [
        (json!({"decline_reasons": []}), "decline_reasons:"),
        (
            json!({"decline_reasons": ["ok", "Not OK"]}),
            "decline_reasons[1]",
        ),
        (json!({"decline_reasons": ["a", "a"]}), "decline_reasons[1]"),
    ] {
        let answer = api
            .put("/v1/org/partner-workflow", &org.admin, bad.clone())
            .await;
        assert_eq!(answer.code(), "invalid_workflow", "{bad}");
        assert!(
            answer.body["detail"].as_str().unwrap().contains(at),
            "{}",
            answer.body
        );
    }
    api.put(
        "/v1/org/partner-workflow",
        &org.admin,
        json!({"decline_reasons": ["wrong_region", "other"]}),
    )
    .await
    .ok();
    let answer = decline(&api, &a_token, lead, json!({"reason": "duplicate"})).await;
    assert_eq!(answer.code(), "unknown_decline_reason");
    // Accept: the inbox shows it accepted; accepting again writes nothing; a decline after
    // acceptance is refused.
    let accepted = api
        .post(&format!("/v1/leads/{lead}/accept"), &a_token, json!({}))
        .await
        .ok();
    assert_eq!(accepted.body["events"], 1);
    let position = accepted.body["position"].as_str().unwrap().to_string();
    assert_eq!(
        inbox(&api, &a_token, a, &position).await,
        vec![(lead, "accepted".to_string())]
    );
    let again = api
        .post(&format!("/v1/leads/{lead}/accept"), &a_token, json!({}))
        .await
        .ok();
    assert_eq!(again.body["events"], 0);
    let answer = decline(&api, &a_token, lead, json!({"reason": "wrong_region"})).await;
    assert_eq!(answer.status, StatusCode::CONFLICT);
    assert_eq!(answer.code(), "already_accepted");
    // The old name of the offered state still filters.
    let items = api
        .get(
            &format!("/v1/partner-users/{a}/inbox?state=to_accept"),
            &a_token,
        )
        .await
        .ok()
        .body;
    assert_eq!(items, json!([]));
    let answer = api
        .get(
            &format!("/v1/partner-users/{a}/inbox?state=nonsense"),
            &a_token,
        )
        .await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn an_offer_by_hand_carries_the_org_s_deadline_into_the_inbox() {
    let api = TestApi::spawn().await;
    let org = api.prm_org().await;
    let (_, account) = api.managed_account(&org).await;
    let (a, a_token) = partner(&api, &org, account).await;
    for (bad, at) in [
        (
            json!({"acceptance_deadline": {"seconds": 0}}),
            "acceptance_deadline.seconds",
        ),
        (
            json!({"acceptance_deadline": {"weeks": 1}}),
            "acceptance_deadline",
        ),
        (json!({"reminder_percent": 100}), "reminder_percent"),
        (
            json!({"business_hours": {"utc_offset_minutes": 0, "start_hour": 18, "end_hour": 9, "days": [1]}}),
            "business_hours",
        ),
    ] {
        let answer = api
            .put("/v1/org/partner-workflow", &org.admin, bad.clone())
            .await;
        assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        assert!(
            answer.body.to_string().contains(at),
            "{bad}: {}",
            answer.body
        );
    }
    api.put(
        "/v1/org/partner-workflow",
        &org.admin,
        json!({"acceptance_deadline": {"business_hours": 4}, "reminder_percent": 50,
               "business_hours": {"utc_offset_minutes": 60, "start_hour": 8, "end_hour": 18, "days": [1, 2, 3, 4, 5, 6, 7]}}),
    )
    .await
    .ok();
    let workflow = api
        .get("/v1/org/partner-workflow", &org.admin)
        .await
        .ok()
        .body;
    assert_eq!(
        workflow["acceptance_deadline"],
        json!({"business_hours": 4})
    );
    assert_eq!(workflow["business_hours"]["start_hour"], 8);
    assert!(
        workflow["decline_reasons"].as_array().unwrap().len() == 5,
        "defaults kept"
    );
    let (lead, _) = api.lead(&org.admin, json!({"company": "Globex"})).await;
    let written = api
        .reassign(&org.admin, lead, json!({"to": to("partner_user", a)}))
        .await
        .ok();
    let position = written.body["position"].as_str().unwrap();
    let items = api
        .get(
            &format!("/v1/partner-users/{a}/inbox?min_position={position}"),
            &a_token,
        )
        .await
        .ok()
        .body;
    let item = &items[0];
    assert_eq!(item["state"], "offered");
    let deadline: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(item["deadline"].clone()).unwrap();
    let left = item["seconds_left"].as_f64().unwrap();
    // Four business hours, every day 08:00-18:00 at UTC+1: at least 4 h away, at most a
    // night (14 h) more.
    assert!(
        (4.0 * 3600.0 - 60.0..=18.0 * 3600.0).contains(&left),
        "{left}"
    );
    assert!(deadline > chrono::Utc::now());
}

#[tokio::test]
async fn no_partner_route_shows_a_field_outside_the_pre_acceptance_set_until_accepted() {
    let api = TestApi::spawn().await;
    let org = api.prm_org().await;
    let (_, account) = api.managed_account(&org).await;
    let (a, a_token) = partner(&api, &org, account).await;
    api.put(
        "/v1/org/partner-visible-fields",
        &org.admin,
        json!({"lead_fields": ["company", "country", "email", "phone", "upstream_lead_id"]}),
    )
    .await
    .ok();
    let secret = json!({"company": "Globex", "country": "DE",
                        "email": "secret.contact@globex.example", "phone": "555-0199"});
    let (offered, _) = api.lead(&org.admin, secret.clone()).await;
    api.reassign(&org.admin, offered, json!({"to": to("partner_user", a)}))
        .await
        .ok();
    let queue = api.create_queue(&org.admin, "q").await;
    api.add_queue_member(&org.admin, queue, "partner_user", a)
        .await
        .ok();
    let (queued, _) = api.lead(&org.admin, secret).await;
    let last = api
        .post(
            &format!("/v1/leads/{queued}/enqueue"),
            &org.admin,
            json!({"queue_id": queue}),
        )
        .await
        .ok();
    let position = last.body["position"].as_str().unwrap().to_string();
    let hidden = ["secret.contact@globex.example", "555-0199"];

    // Every GET route of the API, with every id the partner knows in every place.
    let ids = [a, offered, queued, queue];
    let mut urls = Vec::new();
    for (method, path) in leadroute_tests::api::ROUTES {
        if *method != "GET" {
            continue;
        }
        for id in ids {
            let url = path
                .replace("{id}", &id.to_string())
                .replace("{kind}", "partner_user")
                .replace("{member_id}", &a.to_string())
                .replace("{key_id}", &id.to_string());
            urls.push(format!(
                "{url}?min_position={position}&at=2100-01-01T00:00:00Z"
            ));
        }
    }
    urls.dedup();
    let mut shown = 0;
    for url in &urls {
        let answer = api.get(url, &a_token).await;
        let text = answer.body.to_string();
        for value in hidden {
            assert!(
                !text.contains(value),
                "GET {url} shows {value} before acceptance: {text}"
            );
        }
        shown += usize::from(text.contains("Globex"));
    }
    assert!(
        shown >= 4,
        "the lead, the inbox and the queue show the lead's company"
    );
    // The offer and the queued lead as the partner sees them: company and country only.
    let lead = api.get_lead(&a_token, offered).await.ok().body;
    assert_eq!(
        lead["fields"],
        json!({"company": "Globex", "country": "DE"})
    );
    assert_eq!(lead["state"], "offered");
    assert!(
        lead.get("upstream_lead_id").is_none(),
        "not a pre-acceptance field"
    );

    // Accepted (and claimed), every partner-visible field shows.
    api.post(&format!("/v1/leads/{offered}/accept"), &a_token, json!({}))
        .await
        .ok();
    let claimed = api
        .post(
            &format!("/v1/leads/{queued}/claim"),
            &a_token,
            json!({"queue_id": queue}),
        )
        .await
        .ok();
    let position = claimed.body["position"].as_str().unwrap();
    for lead in [offered, queued] {
        let body = api.get_lead(&a_token, lead).await.ok().body;
        assert_eq!(body["state"], "accepted");
        assert_eq!(body["fields"]["email"], "secret.contact@globex.example");
        assert_eq!(body["fields"]["phone"], "555-0199");
        assert!(body["upstream_lead_id"].is_string());
    }
    let inbox = api
        .get(
            &format!("/v1/partner-users/{a}/inbox?min_position={position}"),
            &a_token,
        )
        .await
        .ok()
        .body;
    let items = inbox.as_array().unwrap();
    assert_eq!(items.len(), 2);
    for item in items {
        assert_eq!(item["state"], "accepted");
        assert_eq!(item["fields"]["email"], "secret.contact@globex.example");
    }
    // Internal users always see everything.
    let internal = api.get_lead(&org.admin, offered).await.ok().body;
    assert_eq!(internal["fields"]["phone"], "555-0199");
}

#[tokio::test]
async fn channel_managers_see_offers_about_to_lapse_and_acceptance_per_account() {
    let api = TestApi::spawn().await;
    let org = api.prm_org().await;
    let (cm_token, cm) = api.key(&org.admin, "channel_manager").await;
    let (other_token, _) = api.key(&org.admin, "channel_manager").await;
    let account = api.partner_account(&org.admin, cm).await;
    let (a, a_token) = partner(&api, &org, account).await;
    let (b, b_token) = partner(&api, &org, account).await;
    api.put(
        "/v1/org/partner-workflow",
        &org.admin,
        json!({"acceptance_deadline": {"seconds": 3600}}),
    )
    .await
    .ok();
    // Four offers: a accepts one, b declines one, two stay pending (one for a, one for b).
    let mut leads = Vec::new();
    for user in [a, b, a, b] {
        let (lead, _) = api.lead(&org.admin, json!({"company": "Globex"})).await;
        api.reassign(&org.admin, lead, json!({"to": to("partner_user", user)}))
            .await
            .ok();
        leads.push(lead);
    }
    api.post(
        &format!("/v1/leads/{}/accept", leads[0]),
        &a_token,
        json!({}),
    )
    .await
    .ok();
    let last = decline(&api, &b_token, leads[1], json!({"reason": "no_capacity"}))
        .await
        .ok();
    let position = last.body["position"].as_str().unwrap();

    let stats = api
        .get(
            &format!("/v1/offers/acceptance?min_position={position}"),
            &cm_token,
        )
        .await
        .ok()
        .body;
    let row = &stats[0];
    assert_eq!(row["partner_account_id"], json!(account));
    assert_eq!(
        (
            row["offers"].as_i64(),
            row["accepted"].as_i64(),
            row["declined"].as_i64(),
            row["pending"].as_i64()
        ),
        (Some(4), Some(1), Some(1), Some(2))
    );
    assert_eq!(row["acceptance_rate"], 0.5);
    assert!(row["median_seconds_to_accept"].as_f64().unwrap() >= 0.0);
    let none = api
        .get("/v1/offers/acceptance", &other_token)
        .await
        .ok()
        .body;
    assert_eq!(none, json!([]), "another channel manager's accounts only");

    let lapsing = api
        .get(
            &format!("/v1/offers/lapsing?within_seconds=7200&min_position={position}"),
            &cm_token,
        )
        .await
        .ok()
        .body;
    let soon: Vec<Value> = lapsing
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["lead_id"].clone())
        .collect();
    assert_eq!(soon, vec![json!(leads[2]), json!(leads[3])]);
    assert!(lapsing[0]["seconds_left"].as_f64().unwrap() <= 3600.0);
    let later = api
        .get("/v1/offers/lapsing?within_seconds=60", &cm_token)
        .await
        .ok()
        .body;
    assert_eq!(later, json!([]));
    let none = api
        .get("/v1/offers/lapsing?within_seconds=7200", &other_token)
        .await
        .ok()
        .body;
    assert_eq!(none, json!([]));
    let bad = api
        .get("/v1/offers/lapsing?within_seconds=0", &cm_token)
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    let partner_refused = api.get("/v1/offers/acceptance", &a_token).await;
    assert_eq!(partner_refused.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn an_offer_s_deadline_is_the_entry_s_else_the_pool_s_else_the_org_s() {
    let api = TestApi::spawn().await;
    let org = api.prm_org().await;
    let (_, account) = api.managed_account(&org).await;
    let (a, _) = partner(&api, &org, account).await;
    let pool = api.create_pool(&org.admin, "rr", None).await;
    api.add_pool_member(&org.admin, pool, a, 1).await.ok();
    api.put(
        "/v1/org/partner-workflow",
        &org.admin,
        json!({"acceptance_deadline": {"seconds": 3600}}),
    )
    .await
    .ok();
    let left = |lead: Value| -> i64 {
        let deadline: chrono::DateTime<chrono::Utc> =
            serde_json::from_value(lead["deadline"].clone()).unwrap();
        (deadline - chrono::Utc::now()).num_seconds()
    };
    let offered = |entry: Value| {
        let api = &api;
        let org = &org;
        async move {
            api.publish_rules(&org.admin, json!({ "entries": [entry] }))
                .await
                .ok();
            let (lead, _) = api.lead(&org.admin, json!({"company": "Globex"})).await;
            route(api, org, lead).await;
            api.get_lead(&org.admin, lead).await.ok().body
        }
    };
    // The org's default.
    let lead = offered(json!({"target": to("pool", pool)})).await;
    assert!((3500..=3600).contains(&left(lead)));
    // The pool's.
    let refused = api
        .put(
            &format!("/v1/pools/{pool}/acceptance-deadline"),
            &org.admin,
            json!({"acceptance_deadline": {"seconds": 0}}),
        )
        .await;
    assert_eq!(refused.code(), "invalid_deadline");
    api.put(
        &format!("/v1/pools/{pool}/acceptance-deadline"),
        &org.admin,
        json!({"acceptance_deadline": {"seconds": 600}}),
    )
    .await
    .ok();
    let shown = api
        .get(&format!("/v1/pools/{pool}"), &org.admin)
        .await
        .ok()
        .body;
    assert_eq!(shown["acceptance_deadline"], json!({"seconds": 600}));
    let lead = offered(json!({"target": to("pool", pool)})).await;
    assert!((500..=600).contains(&left(lead)));
    // The entry's.
    let lead =
        offered(json!({"target": to("pool", pool), "acceptance_deadline": {"seconds": 60}})).await;
    assert!((0..=60).contains(&left(lead)));
    let refused = api
        .publish_rules(
            &org.admin,
            json!({"entries": [{"target": to("pool", pool), "acceptance_deadline": {"business_hours": 0}}]}),
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused
        .body
        .to_string()
        .contains("entries[0].acceptance_deadline"));
}

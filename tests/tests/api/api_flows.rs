//! The partner flows end to end over HTTP (real PostgreSQL, projectors running): the seed
//! flow from org creation to a lead in a partner's inbox, the set-password link, a claim
//! race, idempotency keys, read-your-writes, and the refusal codes the API promises.

use leadroute_tests::api::{TestApi, PASSWORD};
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn a_lead_reaches_a_partner_inbox_through_the_whole_seed_flow() {
    let api = TestApi::spawn().await;
    let org = api.org().await;
    let admin = &org.admin;

    let early = api
        .post(
            "/v1/partner-accounts",
            admin,
            json!({"name": "Early", "channel_manager": uuid::Uuid::new_v4()}),
        )
        .await
        .ok();
    let refused = api
        .post(
            &format!("/v1/partner-accounts/{}/activate", early.uuid("id")),
            admin,
            json!({}),
        )
        .await;
    assert_eq!(
        (refused.status, refused.code()),
        (StatusCode::CONFLICT, "prm_not_enabled")
    );

    let no_review = api.post("/v1/org/prm/enable", admin, json!({})).await;
    assert_eq!(
        (no_review.status, no_review.code()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "sharing_review_not_acknowledged"
        )
    );
    let review = api.get("/v1/org/sharing-review", admin).await.ok();
    assert_eq!(review.body["prm_enabled"], false);
    api.post(
        "/v1/org/prm/enable",
        admin,
        json!({"sharing_review": {"lead_fields": ["company"]}}),
    )
    .await
    .ok();
    let disable = api.post("/v1/org/prm/disable", admin, json!({})).await;
    assert_eq!(
        (disable.status, disable.code()),
        (StatusCode::CONFLICT, "prm_irreversible")
    );
    assert_eq!(
        api.get("/v1/org", admin).await.ok().body["prm_enabled"],
        true
    );

    let (manager, manager_id) = api.key(admin, "channel_manager").await;
    let account = api.partner_account(&manager, manager_id).await;
    let user = api
        .activated_user(&manager, account, "Pat@Initech.example ")
        .await;
    let (integration, _) = api.key(admin, "integration").await;
    let (lead, _) = api
        .lead(
            &integration,
            json!({"company": "Globex", "phone": "555-0100"}),
        )
        .await;

    let too_early = api
        .post(
            &format!("/v1/leads/{lead}/reassign"),
            &manager,
            json!({"to": {"kind": "partner_user", "id": user}}),
        )
        .await;
    assert_eq!(
        (too_early.status, too_early.code()),
        (StatusCode::CONFLICT, "never_signed_in")
    );

    let session = api.signed_in(org.id, user, "pat@initech.example").await;
    let moved = api
        .post(
            &format!("/v1/leads/{lead}/reassign"),
            &manager,
            json!({"to": {"kind": "partner_user", "id": user}, "notify": true}),
        )
        .await
        .ok();
    let position = moved.body["position"].as_str().unwrap();

    let inbox = api
        .get(
            &format!("/v1/partner-users/{user}/inbox?min_position={position}"),
            &session,
        )
        .await
        .ok();
    let items = inbox.body.as_array().unwrap();
    assert_eq!(items.len(), 1, "{inbox:?}");
    assert_eq!(items[0]["lead_id"], lead.to_string());
    assert_eq!(items[0]["state"], "offered");
    assert_eq!(
        items[0]["fields"],
        json!({"company": "Globex"}),
        "partners see only partner-visible fields"
    );

    let seen = api.get_lead(&session, lead).await.ok();
    assert_eq!(
        seen.body["owner"],
        json!({"kind": "partner_user", "id": user})
    );
    assert_eq!(
        seen.body["fields"],
        json!({"company": "Globex"}),
        "no hidden field on a lead read"
    );
    let internal = api.get_lead(&manager, lead).await.ok();
    assert_eq!(
        internal.body["fields"]["phone"], "555-0100",
        "internal users see every field"
    );
    let history = api
        .get(
            &format!("/v1/leads/{lead}/history?min_position={position}"),
            &manager,
        )
        .await
        .ok();
    assert_eq!(history.body.as_array().unwrap().len(), 1);
    assert_eq!(history.body[0]["cause"], "manual");
}

#[tokio::test]
async fn the_set_password_link_works_once_and_not_after_it_expires() {
    let api = TestApi::spawn().await;
    let org = api.prm_org().await;
    let (_, account) = api.managed_account(&org).await;
    let user = api
        .activated_user(&org.admin, account, "a@partner.example")
        .await;
    let set = |token: String, password: &str| json!({"token": token, "password": password});

    let link = api.invitation_link(org.id, user).await;
    let short = api
        .call_with(
            Method::POST,
            "/v1/auth/set-password",
            None,
            Some(set(link.clone(), "short")),
            &[],
        )
        .await;
    assert_eq!(
        (short.status, short.code(), short.body["field"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "password_too_short",
            Some("body.password")
        )
    );
    let first = api
        .call_with(
            Method::POST,
            "/v1/auth/set-password",
            None,
            Some(set(link.clone(), PASSWORD)),
            &[],
        )
        .await;
    assert_eq!(first.status, StatusCode::NO_CONTENT);
    let again = api
        .call_with(
            Method::POST,
            "/v1/auth/set-password",
            None,
            Some(set(link, PASSWORD)),
            &[],
        )
        .await;
    assert_eq!(
        (again.status, again.code()),
        (StatusCode::GONE, "invitation_used")
    );
    let wrong = api
        .sign_in(org.id, "a@partner.example", "not the password")
        .await;
    assert_eq!(
        (wrong.status, wrong.code()),
        (StatusCode::UNAUTHORIZED, "invalid_credentials")
    );
    let unknown = api
        .sign_in(org.id, "nobody@partner.example", PASSWORD)
        .await;
    assert_eq!(unknown.code(), "invalid_credentials");

    let late = api
        .activated_user(&org.admin, account, "b@partner.example")
        .await;
    let link = api.invitation_link(org.id, late).await;
    sqlx::query(
        "UPDATE invitations SET expires_at = now() - interval '1 second' WHERE user_id = $1",
    )
    .bind(late)
    .execute(&api.db.pool)
    .await
    .unwrap();
    let expired = api
        .call_with(
            Method::POST,
            "/v1/auth/set-password",
            None,
            Some(set(link, PASSWORD)),
            &[],
        )
        .await;
    assert_eq!(
        (expired.status, expired.code()),
        (StatusCode::GONE, "invitation_expired")
    );
    let forged = api
        .call_with(
            Method::POST,
            "/v1/auth/set-password",
            None,
            Some(set("lri_forged".into(), PASSWORD)),
            &[],
        )
        .await;
    assert_eq!(forged.code(), "invitation_invalid");
}

#[tokio::test]
async fn of_two_members_claiming_one_queued_lead_exactly_one_wins() {
    let api = TestApi::spawn().await;
    let org = api.prm_org().await;
    let (_, account) = api.managed_account(&org).await;
    let mut sessions = Vec::new();
    let queue = api.create_queue(&org.admin, "EMEA inbound").await;
    for email in ["one@partner.example", "two@partner.example"] {
        let user = api.activated_user(&org.admin, account, email).await;
        sessions.push(api.signed_in(org.id, user, email).await);
        api.post(
            &format!("/v1/queues/{queue}/members"),
            &org.admin,
            json!({"kind": "partner_user", "id": user}),
        )
        .await
        .ok();
    }
    for _ in 0..5 {
        let (lead, _) = api
            .lead(
                &org.admin,
                json!({"company": "Globex", "email": "x@globex.example"}),
            )
            .await;
        let queued = api
            .post(
                &format!("/v1/leads/{lead}/enqueue"),
                &org.admin,
                json!({"queue_id": queue}),
            )
            .await
            .ok();
        let position = queued.body["position"].as_str().unwrap().to_string();
        let view = api
            .get(
                &format!("/v1/queues/{queue}/leads?min_position={position}"),
                &sessions[0],
            )
            .await
            .ok();
        assert!(view.body.as_array().unwrap().iter().any(
            |l| l["lead_id"] == lead.to_string() && l["fields"] == json!({"company": "Globex"})
        ));
        let path = format!("/v1/leads/{lead}/claim");
        let claims = sessions
            .iter()
            .map(|s| api.post(&path, s, json!({"queue_id": queue})));
        let answers = futures::future::join_all(claims).await;
        let won = answers
            .iter()
            .filter(|a| a.status == StatusCode::OK)
            .count();
        let lost: Vec<_> = answers
            .iter()
            .filter(|a| a.status != StatusCode::OK)
            .map(|a| (a.status, a.code()))
            .collect();
        assert_eq!(won, 1, "{answers:?}");
        assert_eq!(lost, vec![(StatusCode::CONFLICT, "already_claimed")]);
    }
}

#[tokio::test]
async fn a_repeated_idempotency_key_returns_the_first_answer_and_writes_nothing() {
    let api = TestApi::spawn().await;
    let org = api.prm_org().await;
    let create = json!({"name": "Q1"});
    let key = [("idempotency-key", "create-q1")];
    let first = api
        .call_with(
            Method::POST,
            "/v1/queues",
            Some(&org.admin),
            Some(create.clone()),
            &key,
        )
        .await
        .ok();
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&api.db.pool)
        .await
        .unwrap();
    let again = api
        .call_with(
            Method::POST,
            "/v1/queues",
            Some(&org.admin),
            Some(create),
            &key,
        )
        .await
        .ok();
    assert_eq!(again.body, first.body);
    assert_eq!(again.headers.get("idempotent-replayed").unwrap(), "true");
    let after: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&api.db.pool)
        .await
        .unwrap();
    assert_eq!(after, events, "a replay writes nothing");
    let other = api
        .call_with(
            Method::POST,
            "/v1/queues",
            Some(&org.admin),
            Some(json!({"name": "Q2"})),
            &key,
        )
        .await;
    assert_eq!(
        (other.status, other.code()),
        (StatusCode::CONFLICT, "idempotency_key_reused")
    );

    let refusal_key = [("idempotency-key", "disable")];
    let refused = api
        .call_with(
            Method::POST,
            "/v1/org/prm/disable",
            Some(&org.admin),
            Some(json!({})),
            &refusal_key,
        )
        .await;
    let repeat = api
        .call_with(
            Method::POST,
            "/v1/org/prm/disable",
            Some(&org.admin),
            Some(json!({})),
            &refusal_key,
        )
        .await;
    assert_eq!(
        (refused.code(), repeat.code()),
        ("prm_irreversible", "prm_irreversible")
    );
    assert_eq!(
        repeat.headers.get("content-type").unwrap(),
        "application/problem+json"
    );
}

#[tokio::test]
async fn a_read_waits_for_its_min_position_and_says_when_it_is_not_reached() {
    let api = TestApi::spawn().await;
    let org = api.prm_org().await;
    let (lead, position) = api.lead(&org.admin, json!({"company": "Globex"})).await;
    let history = api
        .get(
            &format!("/v1/leads/{lead}/history?min_position={position}"),
            &org.admin,
        )
        .await
        .ok();
    assert_eq!(history.body, json!([]));
    // A position no write answered is refused, not waited for.
    let future = api
        .get(
            "/v1/partner-accounts?min_position=99999999/99999999",
            &org.admin,
        )
        .await;
    assert_eq!(
        (future.status, future.body["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("query.min_position"))
    );
    // A real write the directory projector cannot reach yet (its checkpoint lock is held
    // here) answers 503 naming the projection.
    let mut holder = api.db.pool.begin().await.unwrap();
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('leadroute.checkpoint.public.directory', 0))")
        .execute(&mut *holder)
        .await
        .unwrap();
    let (_, manager) = api.key(&org.admin, "channel_manager").await;
    let account = api
        .post(
            "/v1/partner-accounts",
            &org.admin,
            json!({"name": "Held", "channel_manager": manager}),
        )
        .await
        .ok();
    let held = api
        .get(
            &format!(
                "/v1/partner-accounts?min_position={}",
                account.body["position"].as_str().unwrap()
            ),
            &org.admin,
        )
        .await;
    holder.rollback().await.unwrap();
    assert_eq!(
        (held.status, held.code()),
        (StatusCode::SERVICE_UNAVAILABLE, "projection_behind")
    );
    assert!(held.body["detail"].as_str().unwrap().contains("directory"));
    let bad = api
        .get("/v1/partner-accounts?min_position=soon", &org.admin)
        .await;
    assert_eq!(
        (bad.code(), bad.body["field"].as_str()),
        ("validation_failed", Some("query.min_position"))
    );
}

#[tokio::test]
async fn bad_input_names_the_field_and_missing_credentials_are_refused() {
    let api = TestApi::spawn().await;
    let org = api.prm_org().await;
    let bad_kind = api
        .post(
            "/v1/queues/00000000-0000-0000-0000-000000000000/members",
            &org.admin,
            json!({"kind": "robot", "id": uuid::Uuid::new_v4()}),
        )
        .await;
    assert_eq!(
        (
            bad_kind.status,
            bad_kind.code(),
            bad_kind.body["field"].as_str()
        ),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            Some("body.kind")
        )
    );
    let missing = api
        .post(
            "/v1/partner-accounts",
            &org.admin,
            json!({"channel_manager": uuid::Uuid::new_v4()}),
        )
        .await;
    assert_eq!(
        (missing.code(), missing.body["field"].as_str()),
        ("validation_failed", Some("body.name"))
    );
    let bad_lead = api.post("/v1/leads", &org.admin, json!({"schema_version": 1, "upstream_event_id": "e", "upstream_system": "sf", "upstream_lead_id": "L", "occurred_at": "yesterday", "fields": {}})).await;
    assert_eq!(
        (bad_lead.code(), bad_lead.body["field"].as_str()),
        ("validation_failed", Some("body.occurred_at"))
    );
    let bad_path = api.get("/v1/leads/not-a-uuid", &org.admin).await;
    assert_eq!(bad_path.code(), "validation_failed");
    assert_eq!(
        bad_path.headers.get("content-type").unwrap(),
        "application/problem+json"
    );

    let anonymous = api.call_with(Method::GET, "/v1/org", None, None, &[]).await;
    assert_eq!(
        (anonymous.status, anonymous.code()),
        (StatusCode::UNAUTHORIZED, "unauthenticated")
    );
    let forged = api.get("/v1/org", "lrk_0000").await;
    assert_eq!(forged.code(), "unauthenticated");
    let (key, _) = api.key(&org.admin, "integration").await;
    let key_id = api
        .get("/v1/api-keys", &org.admin)
        .await
        .ok()
        .body
        .as_array()
        .unwrap()
        .last()
        .unwrap()["key_id"]
        .as_str()
        .unwrap()
        .to_string();
    api.get("/v1/org", &key).await.ok();
    let revoked = api
        .call_with(
            Method::DELETE,
            &format!("/v1/api-keys/{key_id}"),
            Some(&org.admin),
            None,
            &[],
        )
        .await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT);
    assert_eq!(
        api.get("/v1/org", &key).await.status,
        StatusCode::UNAUTHORIZED
    );
    let operator = api
        .call_with(
            Method::POST,
            "/v1/orgs",
            Some("guess"),
            Some(json!({"name": "x"})),
            &[],
        )
        .await;
    assert_eq!(operator.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_deactivated_partner_user_is_refused_as_owner_and_signed_out() {
    let api = TestApi::spawn().await;
    let org = api.prm_org().await;
    let (me, account) = api.managed_account(&org).await;
    let user = api
        .activated_user(&org.admin, account, "gone@partner.example")
        .await;
    let session = api.signed_in(org.id, user, "gone@partner.example").await;
    api.me(&session).await.ok();
    api.post(
        &format!("/v1/partner-users/{user}/deactivate"),
        &org.admin,
        json!({}),
    )
    .await
    .ok();
    assert_eq!(api.me(&session).await.status, StatusCode::UNAUTHORIZED);
    let (lead, _) = api.lead(&org.admin, json!({})).await;
    let refused = api
        .post(
            &format!("/v1/leads/{lead}/reassign"),
            &org.admin,
            json!({"to": {"kind": "partner_user", "id": user}}),
        )
        .await;
    assert_eq!(
        (refused.status, refused.code()),
        (StatusCode::CONFLICT, "inactive")
    );
    // The right password of a deactivated user answers like a wrong one.
    let signin = api.sign_in(org.id, "gone@partner.example", PASSWORD).await;
    assert_eq!(
        (signin.status, signin.code()),
        (StatusCode::UNAUTHORIZED, "invalid_credentials")
    );

    let other = api
        .post(
            "/v1/partner-accounts",
            &org.admin,
            json!({"name": "Dormant", "channel_manager": me}),
        )
        .await
        .ok()
        .uuid("id");
    let contact = api
        .post(
            &format!("/v1/partner-accounts/{other}/contacts"),
            &org.admin,
            json!({"name": "D", "email": "d@dormant.example"}),
        )
        .await
        .ok()
        .uuid("id");
    let inactive = api
        .post(
            &format!("/v1/partner-users/{contact}/activate"),
            &org.admin,
            json!({}),
        )
        .await;
    assert_eq!(inactive.code(), "partner_account_not_active");
}

#[tokio::test]
async fn every_route_is_in_the_openapi_document_and_health_answers() {
    let api = TestApi::spawn().await;
    let doc = api
        .call_with(Method::GET, "/openapi.json", None, None, &[])
        .await
        .ok();
    let paths = doc.body["paths"].as_object().unwrap();
    for (method, path) in leadroute_tests::api::ROUTES {
        let documented = paths.get(*path).and_then(|p| p.get(method.to_lowercase()));
        assert!(
            documented.is_some(),
            "{method} {path} is not in /openapi.json"
        );
    }
    let documented: usize = paths.values().map(|p| p.as_object().unwrap().len()).sum();
    assert_eq!(
        documented,
        leadroute_tests::api::ROUTES.len(),
        "the document lists a route the tests do not know"
    );
    for probe in ["/healthz", "/readyz"] {
        assert_eq!(
            api.call_with(Method::GET, probe, None, None, &[])
                .await
                .status,
            StatusCode::OK
        );
    }
}

#[tokio::test]
async fn a_new_api_key_is_not_kept_for_replay() {
    let api = TestApi::spawn().await;
    let org = api.prm_org().await;
    let key = [("idempotency-key", "new-key")];
    let body = json!({"name": "crm sync", "role": "integration"});
    let first = api
        .call_with(
            Method::POST,
            "/v1/api-keys",
            Some(&org.admin),
            Some(body.clone()),
            &key,
        )
        .await
        .ok();
    let secret = first.body["secret"].as_str().unwrap().to_string();
    let again = api
        .call_with(
            Method::POST,
            "/v1/api-keys",
            Some(&org.admin),
            Some(body),
            &key,
        )
        .await;
    assert_eq!(
        (again.status, again.code()),
        (StatusCode::CONFLICT, "secret_shown_once")
    );
    let kept: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM idempotency_keys WHERE position(convert_to($1, 'UTF8') IN body) > 0",
    )
    .bind(&secret)
    .fetch_one(&api.db.pool)
    .await
    .unwrap();
    assert_eq!(kept, 0, "the secret is not stored");
    assert_eq!(
        api.get("/v1/api-keys", &org.admin)
            .await
            .ok()
            .body
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[tokio::test]
async fn deactivating_a_partner_account_ends_its_users_sessions() {
    let api = TestApi::spawn().await;
    let org = api.prm_org().await;
    let (_, account) = api.managed_account(&org).await;
    let user = api
        .activated_user(&org.admin, account, "s@partner.example")
        .await;
    let session = api.signed_in(org.id, user, "s@partner.example").await;
    api.me(&session).await.ok();
    api.post(
        &format!("/v1/partner-accounts/{account}/deactivate"),
        &org.admin,
        json!({}),
    )
    .await
    .ok();
    assert_eq!(api.me(&session).await.status, StatusCode::UNAUTHORIZED);
    let wrong_method = api
        .call_with(Method::DELETE, "/v1/me", Some(&org.admin), None, &[])
        .await;
    assert_eq!(
        (wrong_method.status, wrong_method.code()),
        (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed")
    );
}

#[tokio::test]
async fn a_pause_with_an_end_in_the_past_no_longer_holds_a_user_back() {
    let api = TestApi::spawn().await;
    let org = api.prm_org().await;
    let (_, account) = api.managed_account(&org).await;
    let user = api
        .activated_user(&org.admin, account, "ooo@partner.example")
        .await;
    api.signed_in(org.id, user, "ooo@partner.example").await;
    let assignable = |position: String| {
        let path = format!("/v1/partner-users?assignable=true&min_position={position}");
        let api = &api;
        let admin = org.admin.clone();
        async move {
            api.get(&path, &admin)
                .await
                .ok()
                .body
                .as_array()
                .unwrap()
                .len()
        }
    };
    let paused = api
        .post(
            &format!("/v1/partner-users/{user}/pause"),
            &org.admin,
            json!({}),
        )
        .await
        .ok();
    assert_eq!(
        assignable(paused.body["position"].as_str().unwrap().into()).await,
        0
    );
    api.post(
        &format!("/v1/partner-users/{user}/resume"),
        &org.admin,
        json!({}),
    )
    .await
    .ok();
    let past = api
        .post(
            &format!("/v1/partner-users/{user}/pause"),
            &org.admin,
            json!({"until": "2020-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(
        (past.status.as_u16(), past.code()),
        (422, "pause_ends_in_past"),
        "a pause that would already be over is refused: {past:?}"
    );
    let until = chrono::Utc::now() + chrono::Duration::seconds(4);
    let lapsing = api
        .post(
            &format!("/v1/partner-users/{user}/pause"),
            &org.admin,
            json!({ "until": until.to_rfc3339() }),
        )
        .await
        .ok();
    let position: String = lapsing.body["position"].as_str().unwrap().into();
    assert_eq!(assignable(position.clone()).await, 0, "paused until then");
    let left = (until - chrono::Utc::now()).to_std().unwrap_or_default();
    tokio::time::sleep(left + std::time::Duration::from_millis(100)).await;
    assert_eq!(
        assignable(position).await,
        1,
        "an out-of-office period that has ended holds nobody back"
    );
}

//! Hostile input over HTTP, against a real API and PostgreSQL: every case of the corpus
//! (`leadroute_tests::hostile`) sent to `POST /v1/leads` gets a 422 `validation_failed`
//! problem naming the field at fault, the valid leads sent between them are all created,
//! and names too long, NUL-laden or multi-line are refused before they reach the log, so
//! the directory keeps answering for every org.

use leadroute_tests::api::TestApi;
use leadroute_tests::hostile::{corpus, valid};
use serde_json::json;

#[tokio::test]
async fn each_hostile_lead_event_is_refused_naming_its_field_and_valid_ones_still_arrive() {
    let api = TestApi::spawn().await;
    let org = api.org().await;
    for (i, case) in corpus("http").into_iter().enumerate() {
        let answer = api
            .post_raw("/v1/leads", &org.admin, case.body.clone())
            .await;
        assert_eq!(answer.status, 422, "{}: {answer:?}", case.name);
        assert_eq!(answer.code(), "validation_failed", "{}", case.name);
        assert_eq!(
            answer.headers["content-type"], "application/problem+json",
            "{}",
            case.name
        );
        let field = answer.body["field"].as_str().unwrap_or_default();
        assert!(
            field.starts_with(case.field),
            "{}: field {field:?}, expected {:?}",
            case.name,
            case.field
        );
        let ok = valid(&format!("ok-{i}"), &format!("L-{i}"));
        let created = api
            .post_raw("/v1/leads", &org.admin, ok.to_string().into_bytes())
            .await;
        assert_eq!(created.status, 201, "valid lead after {}", case.name);
    }
}

#[tokio::test]
async fn names_that_no_read_model_could_index_are_refused_and_the_directory_keeps_answering() {
    let api = TestApi::spawn().await;
    let org = api.org().await;
    let (_, manager) = api.key(&org.admin, "channel_manager").await;
    let account = |name: serde_json::Value| json!({"name": name, "channel_manager": manager, "territory": "EMEA", "tier": "gold"});
    let refused = [
        (json!("x".repeat(900_000)), "validation_failed", "body.name"),
        (json!("Ini\u{0}tech"), "validation_failed", "body.name"),
        (json!("I".repeat(201)), "invalid_name", ""),
        (json!("Ini\ntech"), "invalid_name", ""),
        (json!("   "), "name_required", ""),
    ];
    for (name, code, field) in refused {
        let answer = api
            .post("/v1/partner-accounts", &org.admin, account(name))
            .await;
        assert_eq!((answer.status.as_u16(), answer.code()), (422, code));
        assert_eq!(answer.body["field"].as_str().unwrap_or(""), field);
    }
    let accepted = api
        .post(
            "/v1/partner-accounts",
            &org.admin,
            account(json!("I".repeat(200))),
        )
        .await
        .ok();
    let position = accepted.body["position"].as_str().unwrap().to_string();
    let contact = api
        .post(
            &format!("/v1/partner-accounts/{}/contacts", accepted.uuid("id")),
            &org.admin,
            json!({"name": "Pat\u{0}", "email": "pat@example.com"}),
        )
        .await;
    assert_eq!(contact.status, 422);
    let long_email = format!("{}@example.com", "p".repeat(250));
    let contact = api
        .post(
            &format!("/v1/partner-accounts/{}/contacts", accepted.uuid("id")),
            &org.admin,
            json!({"name": "Pat", "email": long_email}),
        )
        .await;
    assert_eq!(
        (contact.status.as_u16(), contact.code()),
        (422, "invalid_email")
    );
    let listed = api
        .get(
            &format!("/v1/partner-accounts?min_position={position}"),
            &org.admin,
        )
        .await;
    assert_eq!(listed.status, 200, "{listed:?}");
}

#[tokio::test]
async fn every_error_is_problem_json_and_a_forbidden_role_hears_so_before_its_body_is_read() {
    let api = TestApi::spawn().await;
    let org = api.org().await;
    let (integration, _) = api.key(&org.admin, "integration").await;
    let is_problem = |answer: &leadroute_tests::api::Answer| {
        answer.headers["content-type"] == "application/problem+json"
            && answer.body["code"].is_string()
    };
    // A bad body from a role that may never create queues: 403, not 422.
    let answer = api
        .post_raw("/v1/queues", &integration, b"{not json".to_vec())
        .await;
    assert_eq!((answer.status.as_u16(), answer.code()), (403, "forbidden"));
    // Too large (the body limit answers before any handler).
    let answer = api
        .post_raw("/v1/leads", &org.admin, vec![b' '; 2 << 20])
        .await;
    assert_eq!(answer.status, 413);
    assert!(is_problem(&answer), "{answer:?}");
    // A request target past 8 KiB.
    let answer = api
        .get(&format!("/v1/queues?x={}", "a".repeat(9_000)), &org.admin)
        .await;
    assert_eq!(
        (answer.status.as_u16(), answer.code()),
        (414, "uri_too_long")
    );
    assert!(is_problem(&answer));
    // A date PostgreSQL cannot hold is the input's fault: 422, never 503.
    let (lead, position) = api.lead(&org.admin, json!({"company": "Globex"})).await;
    let answer = api
        .get(
            &format!(
                "/v1/leads/{lead}/owner-at?at=+200000-01-01T00:00:00Z&min_position={position}"
            ),
            &org.admin,
        )
        .await;
    assert_eq!(answer.status, 422, "{answer:?}");
    assert!(is_problem(&answer));
}

#[tokio::test]
async fn the_last_admin_key_stays_and_org_creation_is_idempotent_by_key() {
    let api = TestApi::spawn().await;
    let org = api.org().await;
    let keys = api.get("/v1/api-keys", &org.admin).await.ok();
    let first = keys.body[0]["key_id"].as_str().unwrap().to_string();
    let refused = api
        .call_with(
            reqwest::Method::DELETE,
            &format!("/v1/api-keys/{first}"),
            Some(&org.admin),
            None,
            &[],
        )
        .await;
    assert_eq!(
        (refused.status.as_u16(), refused.code()),
        (409, "last_admin_key")
    );
    let (second, _) = api.key(&org.admin, "admin").await;
    let revoked = api
        .call_with(
            reqwest::Method::DELETE,
            &format!("/v1/api-keys/{first}"),
            Some(&second),
            None,
            &[],
        )
        .await;
    assert_eq!(revoked.status, 204);

    let create = |name: &str| {
        api.call_with(
            reqwest::Method::POST,
            "/v1/orgs",
            Some(leadroute_tests::api::OPERATOR_TOKEN),
            Some(json!({"name": name})),
            &[("Idempotency-Key", "create-acme-1")],
        )
    };
    let created = create("Acme").await;
    assert_eq!(created.status, 201, "{created:?}");
    assert!(created.body["admin_key"].is_string());
    let repeated = create("Acme").await;
    assert_eq!(repeated.status, 200, "{repeated:?}");
    assert_eq!(repeated.body["org_id"], created.body["org_id"]);
    assert_eq!(repeated.body["admin_key_id"], created.body["admin_key_id"]);
    assert!(
        repeated.body.get("admin_key").is_none(),
        "the key is shown once"
    );
    let reused = create("Other name").await;
    assert_eq!(
        (reused.status.as_u16(), reused.code()),
        (409, "idempotency_key_reused")
    );
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_disconnected() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let api = TestApi::spawn().await;
    let address = api.base.trim_start_matches("http://").to_string();
    let mut slow = tokio::net::TcpStream::connect(&address).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        slow.read_to_end(&mut rest),
    )
    .await;
    assert!(
        matches!(closed, Ok(Ok(_))),
        "the server closed the connection once the header timeout passed"
    );
}

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

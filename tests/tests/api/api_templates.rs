//! Notification templates over HTTP: the built-in defaults are version 0, a template that
//! does not parse or names an unknown variable is refused with its line and reason, each
//! save is the next version, and a preview renders sample data.

use leadroute_tests::api::TestApi;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn templates_are_versioned_validated_and_previewed() {
    let api = TestApi::spawn().await;
    let org = api.prm_org().await;
    let current = api.get("/v1/templates", &org.admin).await.ok().body;
    let versions: Vec<_> = current
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["kind"].clone(), t["version"].clone()))
        .collect();
    assert_eq!(
        versions,
        [
            (json!("access"), json!(0)),
            (json!("assignment"), json!(0)),
            (json!("reminder"), json!(0)),
            (json!("password_reset"), json!(0))
        ]
    );

    let unknown = api
        .put(
            "/v1/templates/access",
            &org.admin,
            json!({"subject": "Hi", "text": "Hello\n{{ usr.name }}"}),
        )
        .await;
    assert_eq!(
        (unknown.status, unknown.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_template")
    );
    assert!(
        unknown.body["detail"]
            .as_str()
            .unwrap()
            .contains("text, line 2: unknown variable `usr.name`"),
        "{:?}",
        unknown.body
    );
    let broken = api
        .put(
            "/v1/templates/assignment",
            &org.admin,
            json!({"subject": "{% if %}", "text": "x"}),
        )
        .await;
    assert_eq!(broken.code(), "invalid_template");
    assert!(
        broken.body["detail"]
            .as_str()
            .unwrap()
            .contains("subject, line 1"),
        "{:?}",
        broken.body
    );

    let good =
        json!({"subject": "Welcome to {{ org.name }}", "text": "{{ user.name }}: {{ link }}"});
    api.put("/v1/templates/access", &org.admin, good.clone())
        .await
        .ok();
    api.put("/v1/templates/access", &org.admin, good).await.ok();
    let current = api.get("/v1/templates", &org.admin).await.ok().body;
    assert_eq!(
        current[0]["version"], 1,
        "saving the same content again writes nothing"
    );
    let changed = json!({"subject": "Hello from {{ org.name }}", "text": "{{ link }}"});
    api.put("/v1/templates/access", &org.admin, changed)
        .await
        .ok();
    let current = api.get("/v1/templates", &org.admin).await.ok().body;
    assert_eq!(current[0]["version"], 2, "a change is the next version");

    let preview = api
        .post(
            "/v1/templates/assignment/preview",
            &org.admin,
            json!({"subject": "{{ lead.fields.company }}", "text": "{{ recipient.name }}"}),
        )
        .await
        .ok()
        .body;
    assert_eq!(
        (preview["subject"].as_str(), preview["text"].as_str()),
        (Some("Globex"), Some("Ada Lovelace"))
    );
    let saved = api
        .post("/v1/templates/access/preview", &org.admin, json!({}))
        .await
        .ok()
        .body;
    assert_eq!(
        saved["subject"], "Hello from Acme",
        "without a draft the current template is previewed"
    );
    let half = api
        .post(
            "/v1/templates/access/preview",
            &org.admin,
            json!({"subject": "x"}),
        )
        .await;
    assert_eq!(
        (half.status, half.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed")
    );
}

//! The HTTP API on port 0 over a fresh database, with the projectors running, and one
//! method per call so tests read as requirements (after zero-to-production's `TestApi`).
//! Every call goes over real HTTP.

use crate::TestDb;
use leadroute_api::{Api, ApiConfig};
use leadroute_app::access::Access;
use leadroute_app::Commands;
use leadroute_domain::ids::{OrgId, PartnerUserId};
use leadroute_workers::tasks::Tasks;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;
use uuid::Uuid;

/// The operator token every test server accepts for `POST /v1/orgs`.
pub const OPERATOR_TOKEN: &str = "test-operator-token";
/// The password test partner users set.
pub const PASSWORD: &str = "correct horse battery";

/// A running API.
pub struct TestApi {
    /// Base URL, `http://127.0.0.1:<port>`.
    pub base: String,
    /// HTTP client.
    pub client: reqwest::Client,
    /// The credential store (the mailer's side of invitations).
    pub access: Access,
    /// The database (dropped last).
    pub db: TestDb,
    /// The NATS names of a live API ([`TestApi::spawn_live`]).
    pub names: Option<leadroute_workers::nats::Names>,
    projectors: Vec<Tasks>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

/// An answer: status and JSON body (`Null` when empty).
#[derive(Debug, Clone)]
pub struct Answer {
    /// HTTP status.
    pub status: StatusCode,
    /// Body.
    pub body: Value,
    /// Response headers.
    pub headers: reqwest::header::HeaderMap,
}

impl Answer {
    /// The problem `code` of an error answer.
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }

    /// A field of the body as a UUID.
    pub fn uuid(&self, field: &str) -> Uuid {
        self.body[field]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no uuid {field} in {:?}", self))
    }

    /// Assert a success status and return self.
    #[track_caller]
    pub fn ok(self) -> Self {
        assert!(self.status.is_success(), "expected success, got {self:?}");
        self
    }
}

/// A new org as the operator created it.
#[derive(Debug, Clone)]
pub struct TestOrg {
    /// The org.
    pub id: OrgId,
    /// Its admin key.
    pub admin: String,
}

impl TestApi {
    /// Serve the API on a free port over a fresh database, with the projectors running.
    pub async fn spawn() -> TestApi {
        Self::spawn_on(None).await
    }

    /// [`TestApi::spawn`] with live streams on `nats`: the publisher relays the log to the
    /// test's prefix, and the API follows it for `GET /v1/stream`.
    pub async fn spawn_live(nats: &crate::TestNats) -> TestApi {
        Self::spawn_on(Some(nats)).await
    }

    async fn spawn_on(nats: Option<&crate::TestNats>) -> TestApi {
        let db = TestDb::new().await;
        let mut projectors = vec![Tasks::projectors(&db.pool, Default::default())];
        let mut live = None;
        let mut names = None;
        if let Some(nats) = nats {
            let named = leadroute_workers::nats::Names::new(&nats.prefix, &nats.crm_prefix())
                .expect("valid test prefixes");
            let publisher = leadroute_workers::tasks::publisher(&nats.url, named.clone())
                .await
                .expect("the publisher starts");
            projectors.push(Tasks::projectors_of(
                &db.pool,
                vec![publisher],
                Default::default(),
            ));
            live = Some(
                leadroute::up::live_source(&nats.url, &named)
                    .await
                    .expect("the live source connects"),
            );
            names = Some(named);
        }
        let config = ApiConfig {
            listen: ([127, 0, 0, 1], 0).into(),
            operator_token: Some(OPERATOR_TOKEN.to_string()),
            read_wait_ms: 1000,
            header_timeout_secs: 2,
            ..ApiConfig::default()
        };
        let api = Api::build_live(Commands::new(db.pool.clone()), &config, live)
            .await
            .expect("bind api");
        let base = format!("http://{}", api.local_addr());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(api.run_until_stopped(async {
            let _ = stopped.await;
        }));
        let commands = Commands::new(db.pool.clone());
        TestApi {
            base,
            client: reqwest::Client::new(),
            access: Access::new(db.pool.clone(), commands, Duration::from_secs(3600)),
            db,
            names,
            projectors,
            stop: Some(stop),
        }
    }

    /// Call `method path` with `token` and an optional JSON body and extra headers.
    pub async fn call_with(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.expect("request reaches the api");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("response body");
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Answer {
            status,
            body,
            headers,
        }
    }

    /// `POST path` with `body` as it is, labelled JSON.
    pub async fn post_raw(&self, path: &str, token: &str, body: Vec<u8>) -> Answer {
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("request reaches the api");
        let (status, headers) = (response.status(), response.headers().clone());
        let bytes = response.bytes().await.expect("response body");
        Answer {
            status,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            headers,
        }
    }

    /// `GET path`.
    pub async fn get(&self, path: &str, token: &str) -> Answer {
        self.call_with(Method::GET, path, Some(token), None, &[])
            .await
    }

    /// `POST path` with a JSON body.
    pub async fn post(&self, path: &str, token: &str, body: Value) -> Answer {
        self.call_with(Method::POST, path, Some(token), Some(body), &[])
            .await
    }

    /// `PUT path` with a JSON body.
    pub async fn put(&self, path: &str, token: &str, body: Value) -> Answer {
        self.call_with(Method::PUT, path, Some(token), Some(body), &[])
            .await
    }

    /// A new org; PRM not enabled.
    pub async fn org(&self) -> TestOrg {
        let answer = self
            .call_with(
                Method::POST,
                "/v1/orgs",
                Some(OPERATOR_TOKEN),
                Some(json!({"name": "Acme"})),
                &[],
            )
            .await
            .ok();
        TestOrg {
            id: OrgId(answer.uuid("org_id")),
            admin: answer.body["admin_key"].as_str().unwrap().to_string(),
        }
    }

    /// A new org with PRM enabled; partners may see `company` and `country` of leads.
    pub async fn prm_org(&self) -> TestOrg {
        let org = self.org().await;
        let review = json!({"sharing_review": {"lead_fields": ["company", "country"]}});
        self.post("/v1/org/prm/enable", &org.admin, review)
            .await
            .ok();
        org
    }

    /// A new API key of `role`; returns its secret and internal user id.
    pub async fn key(&self, admin: &str, role: &str) -> (String, Uuid) {
        let answer = self
            .post(
                "/v1/api-keys",
                admin,
                json!({"name": format!("{role} key"), "role": role}),
            )
            .await
            .ok();
        let secret = answer.body["secret"].as_str().unwrap().to_string();
        let user = answer.body["key"]["internal_user_id"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        (secret, user)
    }

    /// An active partner account owned by `manager`, created by `token`.
    pub async fn partner_account(&self, token: &str, manager: Uuid) -> Uuid {
        let body = json!({"name": "Initech", "channel_manager": manager, "territory": "EMEA", "tier": "gold"});
        let account = self
            .post("/v1/partner-accounts", token, body)
            .await
            .ok()
            .uuid("id");
        self.post(
            &format!("/v1/partner-accounts/{account}/activate"),
            token,
            json!({}),
        )
        .await
        .ok();
        account
    }

    /// An active partner account of `org`, owned by a new channel manager; returns the
    /// manager's internal user id and the account.
    pub async fn managed_account(&self, org: &TestOrg) -> (Uuid, Uuid) {
        let (_, manager) = self.key(&org.admin, "channel_manager").await;
        (manager, self.partner_account(&org.admin, manager).await)
    }

    /// A contact of `account`, activated as a partner user (not yet signed in).
    pub async fn activated_user(&self, token: &str, account: Uuid, email: &str) -> Uuid {
        let body = json!({"name": "Pat Partner", "email": email});
        let user = self
            .post(
                &format!("/v1/partner-accounts/{account}/contacts"),
                token,
                body,
            )
            .await
            .ok()
            .uuid("id");
        self.post(
            &format!("/v1/partner-users/{user}/activate"),
            token,
            json!({}),
        )
        .await
        .ok();
        user
    }

    /// The set-password link token of a user's invitation, as the mailer issues it.
    pub async fn invitation_link(&self, org: OrgId, user: Uuid) -> String {
        self.access
            .issue_invitation_link(org, PartnerUserId(user))
            .await
            .expect("issue invitation link")
    }

    /// Set the password through the link and sign in; returns the session token.
    pub async fn signed_in(&self, org: OrgId, user: Uuid, email: &str) -> String {
        let link = self.invitation_link(org, user).await;
        let set = json!({"token": link, "password": PASSWORD});
        let answer = self
            .call_with(Method::POST, "/v1/auth/set-password", None, Some(set), &[])
            .await;
        assert_eq!(answer.status, StatusCode::NO_CONTENT, "{answer:?}");
        self.sign_in(org, email, PASSWORD).await.ok().body["token"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// `POST /v1/auth/sign-in`.
    pub async fn sign_in(&self, org: OrgId, email: &str, password: &str) -> Answer {
        let body = json!({"org_id": org.0, "email": email, "password": password});
        self.call_with(Method::POST, "/v1/auth/sign-in", None, Some(body), &[])
            .await
    }

    /// A lead received over HTTP with `fields`; returns its id and the write's position.
    pub async fn lead(&self, token: &str, fields: Value) -> (Uuid, String) {
        let body = json!({
            "schema_version": 1, "upstream_event_id": Uuid::new_v4().to_string(),
            "upstream_system": "salesforce", "upstream_lead_id": Uuid::new_v4().to_string(),
            "occurred_at": "2026-11-28T08:00:00Z", "fields": fields,
        });
        let answer = self.post("/v1/leads", token, body).await.ok();
        (
            answer.uuid("id"),
            answer.body["position"].as_str().unwrap().to_string(),
        )
    }
    /// `POST /v1/queues`: a new queue named `name`; returns its id.
    pub async fn create_queue(&self, token: &str, name: &str) -> Uuid {
        self.post("/v1/queues", token, json!({ "name": name }))
            .await
            .ok()
            .uuid("id")
    }

    /// `POST /v1/queues/{queue}/members`: add a partner user or account (`kind`).
    pub async fn add_queue_member(&self, token: &str, queue: Uuid, kind: &str, id: Uuid) -> Answer {
        let body = json!({ "kind": kind, "id": id });
        self.post(&format!("/v1/queues/{queue}/members"), token, body)
            .await
    }

    /// `POST /v1/pools`: a new round-robin pool named `name`, with an optional cap of open
    /// leads per member; returns its id.
    pub async fn create_pool(&self, token: &str, name: &str, cap: Option<u32>) -> Uuid {
        let body = match cap {
            Some(cap) => json!({ "name": name, "cap": cap }),
            None => json!({ "name": name }),
        };
        self.post("/v1/pools", token, body).await.ok().uuid("id")
    }

    /// `POST /v1/pools/{pool}/members`: add a partner user with `weight`.
    pub async fn add_pool_member(
        &self,
        token: &str,
        pool: Uuid,
        user: Uuid,
        weight: u32,
    ) -> Answer {
        let body = json!({ "kind": "partner_user", "id": user, "weight": weight });
        self.post(&format!("/v1/pools/{pool}/members"), token, body)
            .await
    }

    /// `POST /v1/rule-sets`: publish `spec` as the org's next rule-set version.
    pub async fn publish_rules(&self, token: &str, spec: Value) -> Answer {
        self.post("/v1/rule-sets", token, spec).await
    }

    /// `GET /v1/me`: who the caller is.
    pub async fn me(&self, token: &str) -> Answer {
        self.get("/v1/me", token).await
    }

    /// `GET /v1/leads/{lead}`.
    pub async fn get_lead(&self, token: &str, lead: Uuid) -> Answer {
        self.get(&format!("/v1/leads/{lead}"), token).await
    }

    /// `GET /v1/leads/{lead}/history`: the ownership history.
    pub async fn history(&self, token: &str, lead: Uuid) -> Answer {
        self.get(&format!("/v1/leads/{lead}/history"), token).await
    }

    /// `POST /v1/leads/{lead}/reassign` with `body` (`to`, `notify`).
    pub async fn reassign(&self, token: &str, lead: Uuid, body: Value) -> Answer {
        self.post(&format!("/v1/leads/{lead}/reassign"), token, body)
            .await
    }

    /// `POST /v1/leads/{lead}/rerun`: route the lead again under the current rules.
    pub async fn rerun(&self, token: &str, lead: Uuid) -> Answer {
        self.post(&format!("/v1/leads/{lead}/rerun"), token, json!({}))
            .await
    }
}

impl Drop for TestApi {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.projectors.clear();
    }
}

/// Every route of the API, as the authorization matrix calls them (`{id}` placeholders as
/// in the OpenAPI document).
pub const ROUTES: &[(&str, &str)] = &[
    ("POST", "/v1/orgs"),
    ("GET", "/v1/org"),
    ("POST", "/v1/org/prm/enable"),
    ("POST", "/v1/org/prm/disable"),
    ("PUT", "/v1/org/partner-visible-fields"),
    ("GET", "/v1/org/sharing-review"),
    ("GET", "/v1/org/partner-workflow"),
    ("PUT", "/v1/org/partner-workflow"),
    ("POST", "/v1/api-keys"),
    ("GET", "/v1/api-keys"),
    ("DELETE", "/v1/api-keys/{key_id}"),
    ("POST", "/v1/auth/set-password"),
    ("POST", "/v1/auth/sign-in"),
    ("GET", "/v1/me"),
    ("GET", "/v1/stream"),
    ("POST", "/v1/partner-accounts"),
    ("GET", "/v1/partner-accounts"),
    ("POST", "/v1/partner-accounts/{id}/activate"),
    ("POST", "/v1/partner-accounts/{id}/deactivate"),
    ("PUT", "/v1/partner-accounts/{id}/channel-manager"),
    ("POST", "/v1/partner-accounts/{id}/contacts"),
    ("GET", "/v1/partner-users"),
    ("POST", "/v1/partner-users/{id}/activate"),
    ("POST", "/v1/partner-users/{id}/deactivate"),
    ("POST", "/v1/partner-users/{id}/pause"),
    ("POST", "/v1/partner-users/{id}/resume"),
    ("GET", "/v1/partner-users/{id}/inbox"),
    ("POST", "/v1/queues"),
    ("GET", "/v1/queues"),
    ("POST", "/v1/queues/{id}/members"),
    ("DELETE", "/v1/queues/{id}/members/{kind}/{member_id}"),
    ("GET", "/v1/queues/{id}/leads"),
    ("POST", "/v1/leads"),
    ("GET", "/v1/leads/{id}"),
    ("POST", "/v1/leads/{id}/reassign"),
    ("POST", "/v1/leads/{id}/enqueue"),
    ("POST", "/v1/leads/{id}/claim"),
    ("POST", "/v1/leads/{id}/accept"),
    ("POST", "/v1/leads/{id}/decline"),
    ("POST", "/v1/leads/{id}/resolve-hold"),
    ("GET", "/v1/held-leads"),
    ("GET", "/v1/offers/lapsing"),
    ("GET", "/v1/offers/acceptance"),
    ("GET", "/v1/leads/{id}/history"),
    ("GET", "/v1/leads/{id}/owner-at"),
    ("GET", "/v1/managed-leads"),
    ("POST", "/v1/rule-sets"),
    ("GET", "/v1/rule-sets/current"),
    ("POST", "/v1/rule-sets/dry-run"),
    ("POST", "/v1/pools"),
    ("GET", "/v1/pools/{id}"),
    ("PUT", "/v1/pools/{id}/acceptance-deadline"),
    ("POST", "/v1/pools/{id}/members"),
    ("DELETE", "/v1/pools/{id}/members/{kind}/{member_id}"),
    ("PATCH", "/v1/pools/{id}/members/{kind}/{member_id}"),
    ("POST", "/v1/leads/{id}/rerun"),
    ("GET", "/v1/leads/{id}/decisions"),
    ("GET", "/v1/templates"),
    ("PUT", "/v1/templates/{kind}"),
    ("POST", "/v1/templates/{kind}/preview"),
    ("GET", "/v1/notifications"),
    ("POST", "/v1/bulk-reassignments"),
    ("GET", "/v1/bulk-reassignments/{id}"),
    ("GET", "/v1/bulk-reassignments/{id}/results"),
    ("POST", "/v1/bulk-reassignments/{id}/cancel"),
];

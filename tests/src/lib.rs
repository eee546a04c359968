//! Test support for leadroute's end-to-end tests: a fresh database per test on the real
//! PostgreSQL (dropped afterwards), and fixtures that walk the partner flows through the
//! application layer so tests read as requirements.
//!
//! The server comes from `LEADROUTE_TEST_DATABASE_URL` (an admin connection; default
//! `postgres://postgres@127.0.0.1:5432/postgres`); nothing here mocks PostgreSQL.
//!
//! # Layout
//! - `api`: the API on port 0 over a fresh database, one typed method per call.
//! - `hostile`: the corpus of hostile lead events, one for every edge.
//! - `generate`: generated lead events for tests and benchmarks.
//! - `smtp`: a recording SMTP server for the mailer's tests.
//! - `browser`: headless Chromium over WebDriver for the portal's browser tests.
//! - `sse`: a server-sent events client for the live-stream tests.

pub mod api;
pub mod browser;
pub mod generate;
pub mod hostile;
pub mod pipeline;
pub mod smtp;
pub mod sse;

use chrono::{Duration, Utc};
use leadroute_app::{CommandMeta, Commands, NewContact, NewLead, NewPartnerAccount};
use leadroute_domain::ids::{
    Actor, InternalUserId, InvitationId, LeadId, OrgId, PartnerAccountId, PartnerUserId, QueueId,
    UpstreamRef,
};
use leadroute_domain::org::{SharingReviewAck, VisibleFields};
use leadroute_store::schema::EVENTS_TABLE;
use sqlx::{Connection, PgConnection, PgPool};
use std::time::Duration as StdDuration;

/// Admin URL of the PostgreSQL server tests create their databases on.
pub fn admin_url() -> String {
    std::env::var("LEADROUTE_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

fn url_for(admin: &str, database: &str) -> String {
    let (base, _) = admin
        .rsplit_once('/')
        .expect("admin URL ends in /<database>");
    let query = admin
        .split_once('?')
        .map(|(_, q)| format!("?{q}"))
        .unwrap_or_default();
    format!("{base}/{database}{query}")
}

/// A database created for one test, migrated, and dropped when the value is dropped.
pub struct TestDb {
    /// Pool on the test's database.
    pub pool: PgPool,
    /// URL of the test's database.
    pub url: String,
    name: String,
}

/// With `TEST_LOG` set (`TEST_LOG=1`, or a filter such as `TEST_LOG=leadroute_app=debug`),
/// the code under test logs to the test's output (shown for failing tests, or for all with
/// `--nocapture`); `1` means `info`. Without it, tests log nothing. Called by every fixture.
pub fn test_log() {
    static INIT: std::sync::Once = std::sync::Once::new();
    INIT.call_once(|| {
        let Ok(filter) = std::env::var("TEST_LOG") else {
            return;
        };
        let filter = if filter == "1" {
            "info".to_string()
        } else {
            filter
        };
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_test_writer()
            .try_init();
    });
}

impl TestDb {
    /// Create and migrate a fresh database.
    pub async fn new() -> TestDb {
        test_log();
        let admin = admin_url();
        let name = format!("lrt_{}", uuid::Uuid::new_v4().simple());
        let mut conn = PgConnection::connect(&admin).await.unwrap_or_else(|e| {
            panic!("tests need PostgreSQL at {admin} (LEADROUTE_TEST_DATABASE_URL): {e}")
        });
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .expect("create test database");
        let url = url_for(&admin, &name);
        let pool = leadroute_store::db::connect_and_migrate(&url, 30)
            .await
            .expect("migrate test database");
        TestDb { pool, url, name }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop from a thread of its own: the test's runtime may be shutting down.
        let dropper = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let mut conn = PgConnection::connect(&admin_url()).await.ok()?;
                sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut conn)
                    .await
                    .ok()
            })
        });
        let _ = dropper.join();
    }
}

/// URL of the NATS server (JetStream enabled) tests use: `LEADROUTE_TEST_NATS_URL`, default
/// `nats://127.0.0.1:4222`.
pub fn nats_url() -> String {
    std::env::var("LEADROUTE_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_string())
}

/// A NATS subject/stream prefix of one test, whose streams are deleted afterwards.
pub struct TestNats {
    /// Server URL.
    pub url: String,
    /// The test's prefix (a single subject token).
    pub prefix: String,
    /// JetStream on the server.
    pub js: async_nats::jetstream::Context,
}

impl TestNats {
    /// A fresh prefix on the test server.
    pub async fn new() -> TestNats {
        test_log();
        let url = nats_url();
        let client = async_nats::connect(&url).await.unwrap_or_else(|e| {
            panic!("tests need NATS with JetStream at {url} (LEADROUTE_TEST_NATS_URL): {e}")
        });
        let prefix = format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        TestNats {
            url,
            prefix,
            js: async_nats::jetstream::new(client),
        }
    }

    /// The test's CRM subject prefix.
    pub fn crm_prefix(&self) -> String {
        format!("{}-crm", self.prefix)
    }

    /// Every message of stream `name`, in stream order: (subject, Nats-Msg-Id, body).
    pub async fn messages(&self, name: &str) -> Vec<(String, String, serde_json::Value)> {
        let mut stream = self.js.get_stream(name).await.expect("stream exists");
        let state = stream.info().await.expect("stream info").state.clone();
        let mut out = Vec::new();
        for sequence in state.first_sequence..=state.last_sequence {
            if state.messages == 0 {
                break;
            }
            let message = stream.get_raw_message(sequence).await.expect("message");
            let id = message
                .headers
                .get("Nats-Msg-Id")
                .map(|v| v.to_string())
                .unwrap_or_default();
            let body = serde_json::from_slice(&message.payload).expect("JSON body");
            out.push((message.subject.to_string(), id, body));
        }
        out
    }
}

impl Drop for TestNats {
    fn drop(&mut self) {
        let (url, prefix) = (self.url.clone(), self.prefix.to_uppercase());
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let js = async_nats::jetstream::new(async_nats::connect(&url).await.ok()?);
                let mut names = js.stream_names();
                let mut ours = Vec::new();
                while let Some(Ok(name)) = futures::StreamExt::next(&mut names).await {
                    if name.starts_with(&format!("{prefix}_")) {
                        ours.push(name);
                    }
                }
                for name in ours {
                    let _ = js.delete_stream(&name).await;
                }
                Some(())
            })
        });
        let _ = cleanup.join();
    }
}

/// Poll `check` until it returns `Some`, for at most `timeout`; the one way tests await
/// eventual consistency.
pub async fn eventually<T, F, Fut>(timeout: StdDuration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return Some(value);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(StdDuration::from_millis(20)).await;
    }
}

/// Wait until every event committed to `pool`'s log is published to NATS and the durable
/// `consumer` of `stream` has nothing pending or unacknowledged.
pub async fn drained(pool: &PgPool, nats: &TestNats, stream: &str, consumer: &str) {
    let published = eventually(StdDuration::from_secs(60), || async {
        let publisher = leadroute_workers::publisher::PUBLISHER;
        let status = leadroute_projections::status::status(pool, &[publisher])
            .await
            .ok()?;
        (status[0].events_behind == 0).then_some(())
    })
    .await;
    assert!(published.is_some(), "the publisher catches up");
    let drained = eventually(StdDuration::from_secs(60), || async {
        let stream = nats.js.get_stream(stream).await.ok()?;
        let info = stream.consumer_info(consumer).await.ok()?;
        (info.num_pending == 0 && info.num_ack_pending == 0).then_some(())
    })
    .await;
    assert!(drained.is_some(), "the consumer {consumer} drains");
}

/// A fresh database with the application layer on it, plus one method per flow step.
pub struct TestApp {
    /// The database (dropped with the app).
    pub db: TestDb,
    /// The application layer.
    pub commands: Commands,
    /// The admin every fixture acts as.
    pub admin: InternalUserId,
}

impl TestApp {
    /// A fresh database and application layer.
    pub async fn spawn() -> TestApp {
        let db = TestDb::new().await;
        let commands = Commands::new(db.pool.clone());
        TestApp {
            db,
            commands,
            admin: InternalUserId::new_random(),
        }
    }

    /// A fresh database with the demo org seeded (the foundation's flows) and every
    /// projection caught up.
    pub async fn with_demo() -> TestApp {
        let app = TestApp::spawn().await;
        leadroute::demo::seed(&app.commands)
            .await
            .expect("demo seed");
        app.project().await;
        app
    }

    /// Metadata of a command by the admin, now.
    pub fn meta(&self) -> CommandMeta {
        CommandMeta::now(Actor::InternalUser(self.admin))
    }

    /// A new org (PRM not enabled).
    pub async fn org(&self) -> OrgId {
        let org = OrgId::new_random();
        self.commands
            .create_org(&self.meta(), org, "Acme")
            .await
            .expect("create org");
        org
    }

    /// The sharing review of a small field set, acknowledged by the admin.
    pub fn sharing_review(&self) -> SharingReviewAck {
        SharingReviewAck {
            reviewed_by: self.admin,
            fields: VisibleFields {
                lead: ["company".to_string()].into(),
                account: ["name".to_string()].into(),
            },
        }
    }

    /// A new org with PRM enabled.
    pub async fn prm_org(&self) -> OrgId {
        let org = self.org().await;
        self.commands
            .enable_prm(&self.meta(), org, Some(self.sharing_review()))
            .await
            .expect("enable PRM");
        org
    }

    /// A partner account (not activated).
    pub async fn account(&self, org: OrgId) -> PartnerAccountId {
        let new = NewPartnerAccount {
            account_id: PartnerAccountId::new_random(),
            name: "Northwind".into(),
            channel_manager: InternalUserId::new_random(),
            territory: "EMEA".into(),
            tier: "gold".into(),
        };
        self.commands
            .create_partner_account(&self.meta(), org, &new)
            .await
            .expect("create account");
        new.account_id
    }

    /// An account activated as a partner.
    pub async fn active_partner(&self, org: OrgId) -> PartnerAccountId {
        let account = self.account(org).await;
        self.commands
            .activate_partner(&self.meta(), org, account)
            .await
            .expect("activate partner");
        account
    }

    /// A contact of `account` (not activated).
    pub async fn contact(&self, org: OrgId, account: PartnerAccountId) -> PartnerUserId {
        let user = PartnerUserId::new_random();
        let new = NewContact {
            user_id: user,
            account_id: account,
            name: "Ada".into(),
            email: format!("{user}@partner.example"),
        };
        self.commands
            .add_contact(&self.meta(), org, &new)
            .await
            .expect("add contact");
        user
    }

    /// A contact activated as a partner user who has never signed in.
    pub async fn activated_user(&self, org: OrgId, account: PartnerAccountId) -> PartnerUserId {
        let user = self.contact(org, account).await;
        let expires = Utc::now() + Duration::days(7);
        self.commands
            .activate_partner_user(&self.meta(), org, user, InvitationId::new_random(), expires)
            .await
            .expect("activate partner user");
        user
    }

    /// An assignable partner user: activated and signed in once.
    pub async fn assignable_user(&self, org: OrgId, account: PartnerAccountId) -> PartnerUserId {
        let user = self.activated_user(org, account).await;
        self.commands
            .record_sign_in(&self.meta(), org, user)
            .await
            .expect("sign in");
        user
    }

    /// A queue.
    pub async fn queue(&self, org: OrgId) -> QueueId {
        let queue = QueueId::new_random();
        self.commands
            .create_queue(&self.meta(), org, queue, "Inbound")
            .await
            .expect("create queue");
        queue
    }

    /// A queue someone may claim from (its member: a new active partner account), so
    /// routing may send leads to it.
    pub async fn staffed_queue(&self, org: OrgId) -> QueueId {
        let queue = self.queue(org).await;
        let account = self.active_partner(org).await;
        let member = leadroute_domain::queue::QueueMember::PartnerAccount(account);
        self.commands
            .add_queue_member(&self.meta(), org, queue, member)
            .await
            .expect("add queue member");
        queue
    }

    /// A lead received from upstream.
    pub async fn lead(&self, org: OrgId) -> LeadId {
        let new = NewLead {
            upstream: UpstreamRef {
                system: "test-crm".into(),
                lead_id: uuid::Uuid::new_v4().to_string(),
            },
            upstream_event_id: uuid::Uuid::new_v4().to_string(),
            fields: [("company".to_string(), serde_json::json!("Globex"))].into(),
            route: true,
            occurred_at: None,
            owner: None,
        };
        self.commands
            .receive_lead(&self.meta(), org, &new)
            .await
            .expect("receive lead")
            .0
    }

    /// Number of events in the log.
    pub async fn event_count(&self) -> usize {
        let count: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {EVENTS_TABLE}"))
            .fetch_one(&self.db.pool)
            .await
            .expect("count events");
        count as usize
    }

    /// Bring every projection up to date with every committed event. (A transaction open
    /// anywhere on the server, e.g. in a concurrent test, holds the commit-safe readers back
    /// for a moment, so this waits rather than stopping at the first empty read.)
    pub async fn project(&self) {
        for projector in leadroute_projections::projectors::all() {
            let caught_up = eventually(StdDuration::from_secs(30), || async {
                let mut conn = self.db.pool.acquire().await.expect("connection");
                leadroute_projections::runtime::catch_up(&mut conn, projector)
                    .await
                    .expect("projection catches up");
                let status =
                    leadroute_projections::status::status(&self.db.pool, &[projector.name()])
                        .await
                        .expect("projection status");
                (status[0].events_behind == 0).then_some(())
            })
            .await;
            assert!(
                caught_up.is_some(),
                "projection {} did not catch up",
                projector.name()
            );
        }
    }

    /// Event types of an aggregate in sequence order, read straight from the events table.
    pub async fn event_types(&self, aggregate_id: impl ToString) -> Vec<String> {
        sqlx::query_scalar(&format!(
            "SELECT event_type FROM {EVENTS_TABLE} WHERE aggregate_id = $1 ORDER BY sequence"
        ))
        .bind(aggregate_id.to_string())
        .fetch_all(&self.db.pool)
        .await
        .expect("read events")
    }

    /// The payload of the latest event of an aggregate.
    pub async fn last_payload(&self, aggregate_id: impl ToString) -> serde_json::Value {
        sqlx::query_scalar(&format!(
            "SELECT payload FROM {EVENTS_TABLE} WHERE aggregate_id = $1 ORDER BY sequence DESC LIMIT 1"
        ))
        .bind(aggregate_id.to_string())
        .fetch_one(&self.db.pool)
        .await
        .expect("read payload")
    }
}

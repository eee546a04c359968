//! The partner portal in a real headless Chromium: the partner's journey from the access
//! email to accepting and declining leads with live updates, a claim race across two
//! browsers, and every page checked by axe-core in English and Spanish.
//!
//! Each test runs the API with live streams, the publisher and the projectors over a fresh
//! database and NATS prefix, and the router and the mailer (to a recording SMTP server)
//! as the test needs them. Screenshots go to `target/screenshots/`; with
//! `LEADROUTE_UPDATE_SCREENSHOTS=1` the README's are rewritten in `docs/screenshots/`.
//! The times live updates took are printed (`--nocapture`): a figure, not an assertion.

#![allow(clippy::print_stdout)]

use leadroute_app::Commands;
use leadroute_tests::api::{TestApi, TestOrg, PASSWORD};
use leadroute_tests::browser::{workspace_root, Browser, Driver, WAIT};
use leadroute_tests::smtp::{Received, SmtpSink};
use leadroute_tests::{eventually, TestNats};
use leadroute_workers::mailer::MailerConfig;
use leadroute_workers::tasks::Tasks;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// A portal test's world: the live API, its org, the browser driver.
struct World {
    api: TestApi,
    nats: TestNats,
    org: TestOrg,
    /// `http://127.0.0.1:<port>/p/<slug>`.
    portal: String,
    driver: Driver,
    workers: Vec<Tasks>,
}

impl World {
    /// An org with PRM on (partners see company, country and, once accepted, email), a
    /// managed partner account, and the router running.
    async fn start() -> World {
        let nats = TestNats::new().await;
        let api = TestApi::spawn_live(&nats).await;
        let org = api.prm_org().await;
        api.put(
            "/v1/org/partner-visible-fields",
            &org.admin,
            json!({"lead_fields": ["company", "country", "email"]}),
        )
        .await
        .ok();
        // Offers stand two days.
        api.put(
            "/v1/org/partner-workflow",
            &org.admin,
            json!({"acceptance_deadline": {"seconds": 172_800}}),
        )
        .await
        .ok();
        let slug = api.get("/v1/org", &org.admin).await.ok().body["slug"]
            .as_str()
            .expect("the org has a slug")
            .to_string();
        let commands = Commands::new(api.db.pool.clone());
        let names = api.names.clone().expect("a live API has names");
        let router = Tasks::router(&commands, &nats.url, names, 1)
            .await
            .expect("the router starts");
        let driver = Driver::start().await;
        World {
            portal: format!("{}/p/{slug}", api.base),
            api,
            nats,
            org,
            driver,
            workers: vec![router],
        }
    }

    /// Start a mailer sending to `sink`, with links to this API.
    async fn mailer(&mut self, sink: &SmtpSink) {
        let config = MailerConfig {
            mail_transport: "smtp".into(),
            smtp_port: sink.addr.port(),
            smtp_attempts: 2,
            smtp_backoff_ms: 50,
            public_url: self.api.base.clone(),
            ..MailerConfig::default()
        };
        let commands = Commands::new(self.api.db.pool.clone());
        let names = self.api.names.clone().expect("a live API has names");
        let mailer = Tasks::mailer(&commands, &self.nats.url, names, 1, &config)
            .await
            .expect("the mailer starts");
        self.workers.push(mailer);
    }

    /// A partner user of a new managed account, activated (its access email goes out).
    async fn partner(&self, email: &str) -> (Uuid, Uuid) {
        let (_, account) = self.api.managed_account(&self.org).await;
        let user = self
            .api
            .activated_user(&self.org.admin, account, email)
            .await;
        (account, user)
    }

    /// A lead received over HTTP with `fields`.
    async fn lead(&self, fields: Value) -> Uuid {
        self.api.lead(&self.org.admin, fields).await.0
    }

    /// Route every new lead to `user`.
    async fn route_to(&self, user: Uuid) {
        let target = json!({"kind": "partner_user", "id": user});
        self.api
            .publish_rules(&self.org.admin, json!({"entries": [{"target": target}]}))
            .await
            .ok();
    }

    /// Set `user`'s password (through their link, as the API takes it) and sign them in
    /// in `browser`.
    async fn signed_in_browser(&self, user: Uuid, email: &str, language: &str) -> Browser {
        let link = self.api.invitation_link(self.org.id, user).await;
        self.api
            .call_with(
                reqwest::Method::POST,
                "/v1/auth/set-password",
                None,
                Some(json!({"token": link, "password": PASSWORD})),
                &[],
            )
            .await
            .ok();
        let browser = self.driver.browser(language).await;
        sign_in(&browser, &self.portal, email).await;
        browser
    }

    async fn stop(self) {
        for workers in self.workers {
            workers.stop().await;
        }
    }
}

/// Sign in through the portal's form and land in the inbox.
async fn sign_in(browser: &Browser, portal: &str, email: &str) {
    browser.goto(&format!("{portal}/sign-in")).await;
    browser.type_into("#email", email).await;
    browser.type_into("#password", PASSWORD).await;
    browser.click("form.card button[type=submit]").await;
    browser.wait_for("#inbox", WAIT).await;
}

/// The set-password link of the email `message`.
fn link_in(message: &Received) -> String {
    let body = message
        .data
        .replace("=\r\n", "")
        .replace("=\n", "")
        .replace("=3D", "=");
    let at = body.find("http://").expect("a link in the email");
    body[at..]
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != '"' && *c != '<')
        .collect()
}

/// Where a screenshot goes: `target/screenshots/`, and `docs/screenshots/` too when asked.
fn screenshots(name: &str) -> Vec<PathBuf> {
    let mut paths = vec![workspace_root().join("target/screenshots").join(name)];
    if std::env::var_os("LEADROUTE_UPDATE_SCREENSHOTS").is_some() {
        paths.push(workspace_root().join("docs/screenshots").join(name));
    }
    paths
}

async fn screenshot(browser: &Browser, name: &str) {
    for path in screenshots(name) {
        browser.screenshot(&path).await;
    }
}

/// The CSS selector of a lead's row in the inbox.
fn row(lead: Uuid) -> String {
    format!("#inbox-items tr[data-lead=\"{lead}\"]")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partner_goes_from_the_access_email_to_accepting_and_declining_leads() {
    let mut world = World::start().await;
    let sink = SmtpSink::start().await;
    world.mailer(&sink).await;
    let email = "ada@northwind.example";
    let (_, ada) = world.partner(email).await;

    // The access email's link opens the set-password page of the org's portal.
    let access = eventually(Duration::from_secs(30), || async {
        sink.messages()
            .into_iter()
            .find(|m| m.to == [email.to_string()])
    })
    .await
    .expect("the access email arrives");
    let link = link_in(&access);
    assert!(
        link.starts_with(&format!("{}/set-password?token=lri_", world.portal)),
        "{link}"
    );
    let browser = world.driver.browser("en").await;
    browser.goto(&link).await;
    browser.type_into("#password", PASSWORD).await;
    browser.type_into("#confirm", PASSWORD).await;
    browser.click("form.card button[type=submit]").await;
    assert_eq!(browser.text("h1").await, "Your password is set");
    // The link works once.
    browser.goto(&link).await;
    assert_eq!(browser.text("h1").await, "This link was used already");
    assert!(
        browser.find("#forgot-email").await.is_some(),
        "a new link can be asked for"
    );

    // Sign in; the rules offer leads to Ada from now on.
    sign_in(&browser, &world.portal, email).await;
    world.route_to(ada).await;
    let first = world
        .lead(json!({"company": "Globex", "country": "DE", "email": "hank@globex.example"}))
        .await;
    // The offered lead is in the inbox, with only its pre-acceptance fields.
    browser.wait_for(&row(first), WAIT).await;
    let shown = browser.text(&row(first)).await;
    assert!(shown.contains("Globex"), "{shown:?}");
    assert!(!browser
        .text("#inbox-items")
        .await
        .contains("hank@globex.example"));

    // A second lead routed meanwhile appears without a reload.
    browser
        .script("window.notReloaded = true; return true;", json!([]))
        .await;
    let sent = Instant::now();
    let second = world
        .lead(json!({"company": "Initech", "country": "FR", "email": "bill@initech.example"}))
        .await;
    browser.wait_for(&row(second), WAIT).await;
    let shown_after = sent.elapsed();
    assert_eq!(
        browser
            .script("return window.notReloaded === true;", json!([]))
            .await,
        json!(true),
        "the page was not reloaded"
    );
    assert!(
        browser.title().await.starts_with("(2) Inbox"),
        "{}",
        browser.title().await
    );
    println!("a routed lead appeared in the open inbox {shown_after:?} after it was posted");
    screenshot(&browser, "inbox.png").await;

    // Accept the first: its full fields show.
    browser.click(&format!("{} a", row(first))).await;
    assert!(!browser
        .text(".fields")
        .await
        .contains("hank@globex.example"));
    browser.click("form[action$=\"/accept\"] button").await;
    browser.wait_for(".notice", WAIT).await;
    assert!(browser
        .text(".fields")
        .await
        .contains("hank@globex.example"));
    assert_eq!(browser.text(".lead-state .state").await, "Accepted");
    assert!(browser.text(".history").await.contains("you"));
    screenshot(&browser, "lead.png").await;

    // Decline the second with a reason: it leaves the inbox.
    browser
        .goto(&format!("{}/leads/{second}", world.portal))
        .await;
    browser.select("#reason", "no_capacity").await;
    browser.click("form[action$=\"/decline\"] button").await;
    browser.wait_for("#inbox", WAIT).await;
    assert!(browser.text(".notice").await.contains("declined"));
    assert!(browser.find(&row(second)).await.is_none());
    assert!(browser.find(&row(first)).await.is_some());
    let declined = world.api.get_lead(&world.org.admin, second).await.ok();
    assert_eq!(declined.body["state"], "unassigned", "{}", declined.body);

    // Out of office until a date, then back; then Spanish and Madrid time.
    browser.goto(&format!("{}/settings", world.portal)).await;
    browser
        .script(
            "document.getElementById('until').value = '2031-01-15'; return true;",
            json!([]),
        )
        .await;
    browser
        .click("form[action$=\"/settings/pause\"] button")
        .await;
    browser.wait_for(".notice", WAIT).await;
    let availability = browser.text("#availability + p").await;
    assert!(
        availability.contains("paused until 2031-01-15 00:00 UTC"),
        "{availability}"
    );
    browser
        .click("form[action$=\"/settings/resume\"] button")
        .await;
    browser.wait_for(".notice", WAIT).await;
    assert_eq!(
        browser.text("#availability + p").await,
        "You receive new leads."
    );
    browser.select("#language", "es").await;
    browser.select("#time_zone", "Europe/Madrid").await;
    browser
        .click("form[action$=\"/settings/preferences\"] button")
        .await;
    browser.wait_for(".notice", WAIT).await;
    assert_eq!(browser.text("h1").await, "Disponibilidad y ajustes");
    browser.goto(&format!("{}/", world.portal)).await;
    assert_eq!(browser.text("h1").await, "Bandeja de entrada");
    assert!(browser.text(&row(first)).await.contains(" CET"));

    // Sign out: the inbox asks for sign-in again.
    browser.click(".sign-out button").await;
    browser.wait_for("#password", WAIT).await;
    assert!(browser.text(".notice").await.contains("signed out"));
    browser.goto(&format!("{}/", world.portal)).await;
    assert!(browser.url().await.contains("/sign-in?next="));
    browser.close().await;
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lead_claimed_by_one_member_disappears_from_the_other_members_page() {
    let world = World::start().await;
    let (account, ada) = world.partner("ada@northwind.example").await;
    let bob = world
        .api
        .activated_user(&world.org.admin, account, "bob@northwind.example")
        .await;
    let queue = world.api.create_queue(&world.org.admin, "EMEA").await;
    world
        .api
        .add_queue_member(&world.org.admin, queue, "partner_account", account)
        .await
        .ok();
    let ada_browser = world
        .signed_in_browser(ada, "ada@northwind.example", "en")
        .await;
    let bob_browser = world
        .signed_in_browser(bob, "bob@northwind.example", "en")
        .await;
    let lead = world
        .lead(json!({"company": "Umbrella", "country": "GB"}))
        .await;
    world
        .api
        .post(
            &format!("/v1/leads/{lead}/enqueue"),
            &world.org.admin,
            json!({"queue_id": queue}),
        )
        .await
        .ok();
    // Both see it claimable, live.
    ada_browser.wait_for(&row(lead), WAIT).await;
    bob_browser.wait_for(&row(lead), WAIT).await;
    // Ada claims it; it leaves Bob's open page without a reload.
    ada_browser.click(&format!("{} a", row(lead))).await;
    ada_browser.click("form[action$=\"/claim\"] button").await;
    ada_browser.wait_for(".notice", WAIT).await;
    let claimed = Instant::now();
    bob_browser.wait_gone(&row(lead), WAIT).await;
    println!(
        "the claimed lead left the other member's page {:?} after the claim",
        claimed.elapsed()
    );
    // A claim of a lead that is gone answers with the reason on Bob's side.
    bob_browser
        .goto(&format!("{}/leads/{lead}", world.portal))
        .await;
    assert_eq!(bob_browser.text("h1").await, "Not found");
    ada_browser.close().await;
    bob_browser.close().await;
    world.stop().await;
}

/// The language the page says it is in.
async fn language_of(browser: &Browser) -> Value {
    browser
        .script("return document.documentElement.lang;", json!([]))
        .await
}

/// Every page, in `language`, passes axe-core with no serious or critical violation.
async fn pages_pass_the_accessibility_check(language: &str) {
    let world = World::start().await;
    let (_, ada) = world.partner("ada@northwind.example").await;
    let (_, other) = world.partner("chloe@contoso.example").await;
    let mut checked = Vec::new();
    let anonymous = world.driver.browser(language).await;
    // Pages before sign-in: sign in, forgot password, set password, a used link.
    let link = world.api.invitation_link(world.org.id, other).await;
    for (name, path) in [
        ("sign-in", "/sign-in".to_string()),
        ("forgot-password", "/forgot-password".to_string()),
        ("set-password", format!("/set-password?token={link}")),
        (
            "unknown link",
            "/set-password?token=lri_unknown".to_string(),
        ),
    ] {
        anonymous.goto(&format!("{}{path}", world.portal)).await;
        checked.push((
            name,
            anonymous.accessibility_violations().await,
            language_of(&anonymous).await,
        ));
    }
    anonymous.close().await;

    world.route_to(ada).await;
    let browser = world
        .signed_in_browser(ada, "ada@northwind.example", language)
        .await;
    let lead = world
        .lead(json!({"company": "Globex", "country": "DE", "email": "hank@globex.example"}))
        .await;
    browser.wait_for(&row(lead), WAIT).await;
    for (name, path) in [
        ("inbox", "/".to_string()),
        ("lead", format!("/leads/{lead}")),
        ("settings", "/settings".to_string()),
    ] {
        browser.goto(&format!("{}{path}", world.portal)).await;
        checked.push((
            name,
            browser.accessibility_violations().await,
            language_of(&browser).await,
        ));
    }
    if language == "es" {
        browser.goto(&format!("{}/", world.portal)).await;
        assert_eq!(browser.text("h1").await, "Bandeja de entrada");
        screenshot(&browser, "inbox-es.png").await;
    }
    for (name, violations, lang) in &checked {
        assert!(violations.is_empty(), "{name} ({language}): {violations:?}");
        assert_eq!(lang, &json!(language), "{name} is in {language}");
    }
    browser.close().await;
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_passes_the_accessibility_check_in_english() {
    pages_pass_the_accessibility_check("en").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_passes_the_accessibility_check_in_spanish() {
    pages_pass_the_accessibility_check("es").await;
}

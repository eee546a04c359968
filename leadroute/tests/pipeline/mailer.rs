//! The mailer against real NATS, PostgreSQL and an SMTP server on loopback: one access
//! email per activation whose link sets the password once (and not after it expires), an
//! assignment email only with notify on, rendered from the current template version,
//! no second email after a crash between sending and acknowledging, and an SMTP outage
//! dead-lettered with its reason, then delivered by replaying the dead letter.

use leadroute::read_side;
use leadroute_app::access::{Access, AccessError};
use leadroute_domain::ids::{OrgId, Owner, PartnerAccountId, PartnerUserId};
use leadroute_domain::templates::{Template, TemplateKind};
use leadroute_tests::pipeline::Pipeline;
use leadroute_tests::smtp::{Received, SmtpSink};
use leadroute_tests::{eventually, TestApp};
use leadroute_workers::mailer::MailerConfig;
use leadroute_workers::tasks::Tasks;
use std::time::Duration;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn smtp(port: u16) -> MailerConfig {
    MailerConfig {
        mail_transport: "smtp".into(),
        smtp_port: port,
        smtp_attempts: 2,
        smtp_backoff_ms: 50,
        ..MailerConfig::default()
    }
}

/// An org with an active partner account on the shared pipeline fixture; mailers start
/// on demand.
struct World {
    pipeline: Pipeline,
    org: OrgId,
    account: PartnerAccountId,
}

impl std::ops::Deref for World {
    type Target = Pipeline;
    fn deref(&self) -> &Pipeline {
        &self.pipeline
    }
}

impl World {
    async fn start() -> World {
        let pipeline = Pipeline::start().await;
        let org = pipeline.app.prm_org().await;
        let account = pipeline.app.active_partner(org).await;
        World {
            pipeline,
            org,
            account,
        }
    }

    async fn mailer(&self, config: &MailerConfig) -> Tasks {
        self.pipeline.mailer(config).await
    }

    fn access(&self) -> Access {
        Access::new(
            self.app.db.pool.clone(),
            self.app.commands.clone(),
            Duration::from_secs(60),
        )
    }

    /// Wait until every committed event is published and the mailer consumer has nothing
    /// pending or unacknowledged.
    async fn drained(&self) {
        self.pipeline.drained(&self.names.mailer_consumer()).await;
    }

    async fn stop(self) {
        self.pipeline.stop().await;
    }
}

/// The messages `sink` got for `email`, once there are `n`.
async fn mail_to(sink: &SmtpSink, email: &str, n: usize) -> Vec<Received> {
    eventually(Duration::from_secs(30), || async {
        let got: Vec<Received> = sink
            .messages()
            .into_iter()
            .filter(|m| m.to == [email])
            .collect();
        (got.len() >= n).then_some(got)
    })
    .await
    .unwrap_or_else(|| {
        panic!(
            "{n} email(s) to {email} did not arrive: {:?}",
            sink.messages()
        )
    })
}

/// Wait until `sink` satisfies `done`.
async fn arrived(sink: &SmtpSink, done: impl Fn(&SmtpSink) -> bool) {
    let ok = eventually(Duration::from_secs(30), || async {
        done(sink).then_some(())
    })
    .await;
    assert!(
        ok.is_some(),
        "the expected emails did not arrive: {:?}",
        sink.messages()
    );
}

/// The set-password token in an access email.
fn token(message: &Received) -> String {
    let body = message.data.replace("=\n", "").replace("=3D", "=");
    let at = body.find("token=lri_").expect("a set-password link");
    body[at + 6..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect()
}

async fn email_of(app: &TestApp, org: OrgId, user: PartnerUserId) -> String {
    app.commands
        .state::<leadroute_domain::partner_user::PartnerUser>(org, user)
        .await
        .unwrap()
        .email
}

#[tokio::test]
async fn an_activation_sends_one_access_email_whose_link_works_once() {
    let world = World::start().await;
    let sink = SmtpSink::start().await;
    let mailer = world.mailer(&smtp(sink.addr.port())).await;
    let user = world.app.activated_user(world.org, world.account).await;
    let email = email_of(&world.app, world.org, user).await;
    let received = mail_to(&sink, &email, 1).await;
    let access = world.access();
    let link = token(&received[0]);
    access
        .set_password(&link, "correct horse battery")
        .await
        .unwrap();
    let again = access.set_password(&link, "correct horse battery").await;
    assert!(
        matches!(again, Err(AccessError::InvitationUsed)),
        "{again:?}"
    );

    let late = world.app.activated_user(world.org, world.account).await;
    let late_email = email_of(&world.app, world.org, late).await;
    let late_link = token(&mail_to(&sink, &late_email, 1).await[0]);
    sqlx::query(
        "UPDATE invitations SET expires_at = now() - interval '1 second' WHERE user_id = $1",
    )
    .bind(late.0)
    .execute(&world.app.db.pool)
    .await
    .unwrap();
    let expired = access
        .set_password(&late_link, "correct horse battery")
        .await;
    assert!(
        matches!(expired, Err(AccessError::InvitationExpired)),
        "{expired:?}"
    );

    world.drained().await;
    assert_eq!(
        mail_to(&sink, &email, 1).await.len(),
        1,
        "exactly one access email"
    );
    mailer.stop().await;
    world.stop().await;
}

#[tokio::test]
async fn an_assignment_email_goes_out_only_with_notify_and_from_the_current_template() {
    let world = World::start().await;
    let sink = SmtpSink::start().await;
    let mailer = world.mailer(&smtp(sink.addr.port())).await;
    let user = world.app.assignable_user(world.org, world.account).await;
    let email = email_of(&world.app, world.org, user).await;
    let set = |version: &str| Template {
        subject: format!("Lead {{{{ lead.fields.company }}}} {version}"),
        text: "{{ recipient.name }}: {{ inbox_link }}".into(),
        html: None,
    };
    let meta = world.app.meta();
    world
        .app
        .commands
        .set_template(&meta, world.org, TemplateKind::Assignment, &set("v1"))
        .await
        .unwrap();
    let quiet = world.app.lead(world.org).await;
    world
        .app
        .commands
        .reassign_lead(&meta, world.org, quiet, Owner::PartnerUser(user), false)
        .await
        .unwrap();
    let loud = world.app.lead(world.org).await;
    world
        .app
        .commands
        .reassign_lead(&meta, world.org, loud, Owner::PartnerUser(user), true)
        .await
        .unwrap();
    let assignments = |sink: &SmtpSink| -> Vec<Received> {
        sink.messages()
            .into_iter()
            .filter(|m| m.to == [email.clone()] && m.data.contains("Subject: Lead"))
            .collect()
    };
    // The loud reassignment comes after the quiet one: once its email is here and the
    // consumer drained, the quiet one was handled too.
    arrived(&sink, |s| !assignments(s).is_empty()).await;
    world.drained().await;
    let first = assignments(&sink);
    assert_eq!(
        first.len(),
        1,
        "notify off sends nothing, notify on exactly one: {first:?}"
    );
    assert!(
        first[0].data.contains("Subject: Lead Globex v1"),
        "{}",
        first[0].data
    );

    world
        .app
        .commands
        .set_template(&meta, world.org, TemplateKind::Assignment, &set("v2"))
        .await
        .unwrap();
    let next = world.app.lead(world.org).await;
    world
        .app
        .commands
        .reassign_lead(&meta, world.org, next, Owner::PartnerUser(user), true)
        .await
        .unwrap();
    arrived(&sink, |s| assignments(s).len() >= 2).await;
    world.drained().await;
    let both = assignments(&sink);
    assert_eq!(both.len(), 2);
    assert!(
        both[1].data.contains("Subject: Lead Globex v2"),
        "an edit changes the next email only"
    );
    let versions: Vec<i32> = sqlx::query_scalar(
        "SELECT template_version FROM notifications WHERE kind = 'assignment' ORDER BY created_at",
    )
    .fetch_all(&world.app.db.pool)
    .await
    .unwrap();
    assert_eq!(versions, [1, 2], "each email records its template version");
    mailer.stop().await;
    world.stop().await;
}

#[tokio::test]
async fn a_mailer_killed_after_sending_and_before_acking_sends_nothing_twice() {
    let world = World::start().await;
    let sink = SmtpSink::start().await;
    let run = |crash: bool| {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_leadroute"));
        command
            .args([
                "mailer",
                "--database-url",
                &world.app.db.url,
                "--nats-url",
                &world.nats.url,
            ])
            .args([
                "--nats-prefix",
                &world.nats.prefix,
                "--nats-crm-prefix",
                &world.nats.crm_prefix(),
            ])
            .args([
                "--mail-transport",
                "smtp",
                "--smtp-port",
                &sink.addr.port().to_string(),
            ])
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true);
        if crash {
            command.arg("--crash-after-send");
        }
        command.spawn().expect("start leadroute mailer")
    };
    let mut crashing = run(true);
    // The mailer's consumer starts with new events: activate once it exists.
    let ready = eventually(Duration::from_secs(30), || async {
        let stream = world
            .nats
            .js
            .get_stream(world.names.events_stream())
            .await
            .ok()?;
        stream
            .consumer_info(world.names.mailer_consumer())
            .await
            .ok()
            .map(|_| ())
    })
    .await;
    assert!(ready.is_some(), "the mailer created its consumer");
    let user = world.app.activated_user(world.org, world.account).await;
    let email = email_of(&world.app, world.org, user).await;
    mail_to(&sink, &email, 1).await;
    let status = tokio::time::timeout(Duration::from_secs(30), crashing.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(
        !status.success(),
        "the mailer aborted after sending, before acknowledging"
    );

    // The unacknowledged event is redelivered to the restarted mailer once its ack wait ends.
    let _restarted = run(false);
    world.drained().await;
    assert_eq!(mail_to(&sink, &email, 1).await.len(), 1, "no second email");
    world.stop().await;
}

#[tokio::test]
async fn an_smtp_outage_is_dead_lettered_and_a_replay_delivers_the_email() {
    let world = World::start().await;
    let port = free_port();
    let mailer = world.mailer(&smtp(port)).await;
    let user = world.app.activated_user(world.org, world.account).await;
    let email = email_of(&world.app, world.org, user).await;
    let letter: (uuid::Uuid, String, String) = eventually(Duration::from_secs(30), || async {
        sqlx::query_as("SELECT id, reason, detail FROM dead_letters WHERE source = 'mailer'")
            .fetch_optional(&world.app.db.pool)
            .await
            .unwrap()
    })
    .await
    .expect("the email is dead-lettered after its retries");
    assert_eq!(letter.1, "smtp_unavailable");
    assert!(letter.2.contains("2 times"), "{}", letter.2);

    let sink = SmtpSink::start_on(port).await;
    read_side::replay_dead_letter(&world.app.db.pool, &world.nats.url, letter.0)
        .await
        .unwrap();
    let received = mail_to(&sink, &email, 1).await;
    world
        .access()
        .set_password(&token(&received[0]), "correct horse battery")
        .await
        .unwrap();
    world.drained().await;
    assert_eq!(mail_to(&sink, &email, 1).await.len(), 1);
    let sent: String = sqlx::query_scalar("SELECT status FROM notifications WHERE recipient = $1")
        .bind(&email)
        .fetch_one(&world.app.db.pool)
        .await
        .unwrap();
    assert_eq!(sent, "sent");
    mailer.stop().await;
    world.stop().await;
}

#[tokio::test]
async fn a_queue_email_goes_to_members_who_may_receive_leads_and_no_link_is_stored() {
    let world = World::start().await;
    let sink = SmtpSink::start().await;
    let mailer = world.mailer(&smtp(sink.addr.port())).await;
    let ready = world.app.assignable_user(world.org, world.account).await;
    let never = world.app.activated_user(world.org, world.account).await;
    let (ready_email, never_email) = (
        email_of(&world.app, world.org, ready).await,
        email_of(&world.app, world.org, never).await,
    );
    let queue = world.app.queue(world.org).await;
    let meta = world.app.meta();
    for user in [ready, never] {
        let member = leadroute_domain::queue::QueueMember::PartnerUser(user);
        world
            .app
            .commands
            .add_queue_member(&meta, world.org, queue, member)
            .await
            .unwrap();
    }
    let lead = world.app.lead(world.org).await;
    world
        .app
        .commands
        .reassign_lead(&meta, world.org, lead, Owner::Queue(queue), true)
        .await
        .unwrap();
    let assignment = |email: &str| {
        sink.messages()
            .into_iter()
            .filter(|m| m.to == [email.to_string()] && m.data.contains("gave you a lead"))
            .count()
    };
    arrived(&sink, |_| assignment(&ready_email) >= 1).await;
    world.drained().await;
    assert_eq!(
        (assignment(&ready_email), assignment(&never_email)),
        (1, 0),
        "only members who may receive leads"
    );
    let live_links: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM notifications WHERE text_body ~ 'lri_[0-9a-f]{64}' OR coalesce(html_body, '') ~ 'lri_[0-9a-f]{64}'",
    )
    .fetch_one(&world.app.db.pool)
    .await
    .unwrap();
    let redacted: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM notifications WHERE text_body LIKE '%lri_[redacted]%'",
    )
    .fetch_one(&world.app.db.pool)
    .await
    .unwrap();
    assert_eq!(
        (live_links, redacted),
        (0, 2),
        "both access emails are stored without their live link"
    );
    mailer.stop().await;
    world.stop().await;
}

#[tokio::test]
async fn a_pending_offer_s_reminder_is_emailed_once_with_its_deadline_and_an_accepted_one_gets_none(
) {
    let world = World::start().await;
    let sink = SmtpSink::start().await;
    let mailer = world.mailer(&smtp(sink.addr.port())).await;
    let scheduler = Tasks::scheduler(&world.app.commands, Duration::from_millis(100));
    let user = world.app.assignable_user(world.org, world.account).await;
    let email = email_of(&world.app, world.org, user).await;
    let meta = world.app.meta();
    let workflow = leadroute_domain::org::PartnerWorkflow {
        acceptance_deadline: Some(leadroute_domain::deadline::Deadline::Seconds(4)),
        reminder_percent: Some(25),
        ..Default::default()
    };
    world
        .app
        .commands
        .set_partner_workflow(&meta, world.org, workflow)
        .await
        .unwrap();
    let accepted = world.app.lead(world.org).await;
    let pending = world.app.lead(world.org).await;
    for lead in [accepted, pending] {
        world
            .app
            .commands
            .reassign_lead(&meta, world.org, lead, Owner::PartnerUser(user), false)
            .await
            .unwrap();
    }
    world
        .app
        .commands
        .accept_lead(&meta, world.org, accepted, user)
        .await
        .unwrap();
    let state = world
        .app
        .commands
        .state::<leadroute_domain::lead::Lead>(world.org, pending)
        .await
        .unwrap();
    let deadline = state.offer.unwrap().deadline.unwrap();
    let reminders = |sink: &SmtpSink| -> Vec<Received> {
        sink.messages()
            .into_iter()
            .filter(|m| m.to == [email.clone()] && m.data.contains("Subject: Reminder"))
            .collect()
    };
    arrived(&sink, |s| !reminders(s).is_empty()).await;
    // Past the deadline the lead is recalled; still one reminder, for the pending offer.
    let recalled = eventually(Duration::from_secs(30), || async {
        let types = world.app.event_types(pending).await;
        types
            .contains(&"LeadOfferLapsed".to_string())
            .then_some(types)
    })
    .await;
    assert!(recalled.is_some(), "the pending offer lapsed");
    world.drained().await;
    let got = reminders(&sink);
    assert_eq!(got.len(), 1, "{got:?}");
    let body = got[0].data.replace("=\n", "");
    assert!(body.contains(&deadline.to_rfc3339()), "{body}");
    assert!(body.contains("Accept or decline it before"), "{body}");
    let accepted_types = world.app.event_types(accepted).await;
    assert!(
        !accepted_types.iter().any(|t| t.starts_with("LeadOffer")),
        "{accepted_types:?}"
    );
    scheduler.stop().await;
    mailer.stop().await;
    world.stop().await;
}

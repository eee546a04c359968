//! The mailer (`leadroute mailer`, and part of `up`): a durable consumer on the published
//! events that sends the access email when a partner user is activated (with the one-time
//! set-password link), the assignment email when a lead gets a new owner with notify
//! on (to the partner user, or to every active member of the queue), the reminder of a
//! pending offer (`LeadOfferReminded`, to the offeree), and the password-reset email
//! (`PasswordResetRequested`, a new one-time link), rendered from the org's current
//! template version. Links point into the org's partner portal (`<public url>/p/<slug>`).
//!
//! Exactly one email per triggering event and recipient: a `notifications` row keyed by
//! event id and recipient is claimed before sending and marked sent after, before the ack;
//! a redelivered event finds it sent and sends nothing. (A crash between the SMTP server
//! accepting a message and the row being marked sent would send it again, with the same
//! Message-ID.) SMTP failures are retried with backoff, then dead-lettered with the reason;
//! replaying the dead letter sends it.

mod transport;

use crate::nats::worker::{ConsumerSpec, Handler, Outcome, Worker};
use crate::nats::{Names, NatsError};
use crate::publisher::Envelope;
use async_nats::jetstream;
use leadroute_app::access::{Access, AccessError};
use leadroute_app::lead_event::{DeadReason, Invalid};
use leadroute_app::{AppError, Commands};
use leadroute_domain::ids::{InvitationId, LeadId, OrgId, Owner, PartnerUserId};
use leadroute_domain::lead::{Lead, LeadEvent};
use leadroute_domain::org::Org;
use leadroute_domain::partner_account::PartnerAccount;
use leadroute_domain::partner_user::{PartnerUser, PartnerUserEvent};
use leadroute_domain::queue::{Queue, QueueMember};
use leadroute_domain::templates::{Template, TemplateKind, Templates};
use leadroute_projections::queries;
use lettre::message::Mailbox;
use minijinja::{context, Value};
use sqlx::PgPool;
use std::time::Duration;
pub use transport::Transport;
use uuid::Uuid;

/// Name of this consumer in dead letters.
pub const SOURCE: &str = "mailer";

/// Configuration of the mailer (`leadroute mailer`, and part of `leadroute up`).
#[derive(Debug, Clone, clap::Args)]
pub struct MailerConfig {
    /// `log` records emails in the notifications table and the log only (no SMTP server
    /// needed); `smtp` sends them.
    #[arg(long, env = "LEADROUTE_MAIL_TRANSPORT", default_value = "log", value_parser = ["log", "smtp"])]
    pub mail_transport: String,
    /// SMTP server host.
    #[arg(long, env = "LEADROUTE_SMTP_HOST", default_value = "127.0.0.1")]
    pub smtp_host: String,
    /// SMTP server port.
    #[arg(long, env = "LEADROUTE_SMTP_PORT", default_value_t = 25)]
    pub smtp_port: u16,
    /// `none`, `starttls` or `tls` (implicit TLS).
    #[arg(long, env = "LEADROUTE_SMTP_TLS", default_value = "none", value_parser = ["none", "starttls", "tls"])]
    pub smtp_tls: String,
    /// SMTP user name, if the server wants credentials.
    #[arg(long, env = "LEADROUTE_SMTP_USERNAME")]
    pub smtp_username: Option<String>,
    /// SMTP password (never logged).
    #[arg(long, env = "LEADROUTE_SMTP_PASSWORD", hide_env_values = true)]
    pub smtp_password: Option<String>,
    /// Attempts per email before it is dead-lettered.
    #[arg(long, env = "LEADROUTE_SMTP_ATTEMPTS", default_value_t = 4)]
    pub smtp_attempts: u32,
    /// Wait after the first failed attempt, in milliseconds (doubles each time).
    #[arg(long, env = "LEADROUTE_SMTP_BACKOFF_MS", default_value_t = 500)]
    pub smtp_backoff_ms: u64,
    /// Sender of every email.
    #[arg(
        long,
        env = "LEADROUTE_MAIL_FROM",
        default_value = "leadroute <noreply@leadroute.invalid>"
    )]
    pub mail_from: String,
    /// Base URL of links in emails: the partner portal is `<public url>/p/<org slug>/` (the
    /// set-password page, the lead pages).
    #[arg(
        long,
        env = "LEADROUTE_PUBLIC_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    pub public_url: String,
    /// Fault injection for the crash test: abort right after an email is marked sent,
    /// before the message is acknowledged.
    #[arg(long, hide = true)]
    pub crash_after_send: bool,
}

impl Default for MailerConfig {
    fn default() -> Self {
        MailerConfig {
            mail_transport: "log".into(),
            smtp_host: "127.0.0.1".into(),
            smtp_port: 25,
            smtp_tls: "none".into(),
            smtp_username: None,
            smtp_password: None,
            smtp_attempts: 4,
            smtp_backoff_ms: 500,
            mail_from: "leadroute <noreply@leadroute.invalid>".into(),
            public_url: "http://127.0.0.1:8080".into(),
            crash_after_send: false,
        }
    }
}

/// Sends the emails events call for.
#[derive(Clone)]
pub struct Mailer {
    /// Loads aggregates.
    commands: Commands,
    /// Mints set-password links.
    access: Access,
    /// The notifications table and read models.
    pool: PgPool,
    /// Where emails go.
    transport: Transport,
    /// Sender.
    from: Mailbox,
    /// Base URL of links.
    public_url: String,
    /// Abort after marking an email sent (crash test only).
    crash_after_send: bool,
}

/// Why an email was not sent.
enum Failure {
    /// Nothing to send after all (the invitation was used meanwhile).
    Skip,
    /// Transient (database): redeliver.
    Retry(AppError),
    /// Never (or not without an operator): dead-letter.
    Dead(Invalid),
}

impl From<AppError> for Failure {
    fn from(e: AppError) -> Self {
        match e {
            AppError::NotFound { code, what, id } => Failure::Dead(Invalid::new(
                DeadReason::NotFound(code),
                format!("{what} {id} not found"),
            )),
            other => Failure::Retry(other),
        }
    }
}

impl From<sqlx::Error> for Failure {
    fn from(e: sqlx::Error) -> Self {
        Failure::Retry(AppError::Store(Box::new(e)))
    }
}

/// How long a worker may hold an unsent notification before another may take it over
/// (longer than every SMTP attempt with its backoff).
const LEASE: Duration = Duration::from_secs(90);

/// Who may send a notification now.
enum Claim {
    /// This worker.
    Ours,
    /// Nobody: it was sent.
    Sent,
    /// Another worker, still within its lease.
    Held,
}

/// `text` with every set-password token replaced: what is stored never holds a live link.
fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(leadroute_app::access::INVITATION_PREFIX) {
        let start = at + leadroute_app::access::INVITATION_PREFIX.len();
        let end = rest[start..]
            .find(|c: char| !c.is_ascii_hexdigit())
            .map_or(rest.len(), |n| start + n);
        out.push_str(&rest[..start]);
        out.push_str("[redacted]");
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// An email about a lead: the event it is for, its template, the offer's deadline.
struct LeadEmail {
    event: Uuid,
    kind: TemplateKind,
    deadline: Option<chrono::DateTime<chrono::Utc>>,
}

/// An email with a one-time set-password link: the event it is for, its template, the
/// invitation the link stands for.
struct LinkEmail {
    event: Uuid,
    kind: TemplateKind,
    invitation: InvitationId,
}

/// One recipient of an email.
struct Recipient {
    user: PartnerUserId,
    name: String,
    email: String,
}

impl Mailer {
    /// A worker for the events stream's durable mailer consumer (created unless it exists).
    pub async fn worker(
        commands: Commands,
        js: jetstream::Context,
        names: Names,
        config: &MailerConfig,
    ) -> anyhow::Result<Worker<Mailer>> {
        let pool = commands.store().pool().clone();
        let mailer = Mailer {
            access: Access::new(pool.clone(), commands.clone(), Duration::ZERO),
            commands,
            pool: pool.clone(),
            transport: Transport::from_config(config)?,
            from: config
                .mail_from
                .parse()
                .map_err(|e| anyhow::anyhow!("--mail-from {:?}: {e}", config.mail_from))?,
            public_url: config.public_url.trim_end_matches('/').to_string(),
            crash_after_send: config.crash_after_send,
        };
        let stream = (names.events_stream(), names.events_subjects());
        let worker: Result<_, NatsError> = Worker::new(
            mailer,
            pool,
            js,
            names.clone(),
            stream,
            ConsumerSpec {
                durable: names.mailer_consumer(),
                filter: None,
                only_new: true,
            },
        )
        .await;
        Ok(worker?)
    }

    async fn handle(&self, envelope: Envelope) -> Result<(), Failure> {
        let Some(org) = envelope.org_id.map(OrgId) else {
            return Ok(());
        };
        let kind = envelope.aggregate_type.as_str();
        match kind {
            _ if kind == <PartnerUser as cqrs_es::Aggregate>::TYPE => {
                let (invitation, kind) = match serde_json::from_value(envelope.payload) {
                    Ok(PartnerUserEvent::PartnerUserActivated { invitation_id, .. }) => {
                        (invitation_id, TemplateKind::Access)
                    }
                    Ok(PartnerUserEvent::PasswordResetRequested { invitation_id, .. }) => {
                        (invitation_id, TemplateKind::PasswordReset)
                    }
                    _ => return Ok(()),
                };
                let user = PartnerUserId(envelope.aggregate_id);
                let link = LinkEmail {
                    event: envelope.event_id,
                    kind,
                    invitation,
                };
                self.link_email(link, org, user).await?;
            }
            _ if kind == <Lead as cqrs_es::Aggregate>::TYPE => {
                let event: Option<LeadEvent> = serde_json::from_value(envelope.payload).ok();
                let (to, kind, deadline) = match event {
                    Some(LeadEvent::LeadReassigned {
                        change,
                        notify: true,
                        deadline,
                        ..
                    })
                    | Some(LeadEvent::LeadRouted {
                        change,
                        notify: true,
                        deadline,
                        ..
                    }) => (change.to, TemplateKind::Assignment, deadline),
                    Some(LeadEvent::LeadOfferReminded { to, deadline, .. }) => (
                        Owner::PartnerUser(to),
                        TemplateKind::Reminder,
                        Some(deadline),
                    ),
                    _ => return Ok(()),
                };
                let lead = LeadId(envelope.aggregate_id);
                let email = LeadEmail {
                    event: envelope.event_id,
                    kind,
                    deadline,
                };
                self.lead_emails(email, org, lead, to).await?;
            }
            _ => {}
        }
        Ok(())
    }

    /// The access or password-reset email: a one-time set-password link.
    async fn link_email(
        &self,
        email: LinkEmail,
        org: OrgId,
        user: PartnerUserId,
    ) -> Result<(), Failure> {
        let LinkEmail {
            event,
            kind,
            invitation,
        } = email;
        let state = self.commands.state::<PartnerUser>(org, user).await?;
        // Only the user's current, unexpired invitation is sent: an older activation (a
        // late redelivery or replay) or an expired one sends nothing.
        let current = state.invitation.filter(|(id, expires_at)| {
            state.active && *id == invitation && *expires_at > chrono::Utc::now()
        });
        let Some((_, expires_at)) = current else {
            return Ok(());
        };
        let org_state = self.commands.state::<Org>(org, org).await?;
        let (org_name, portal) = (org_state.name.clone(), self.portal(org, &org_state));
        let account = match state.account_id {
            Some(id) => self.commands.state::<PartnerAccount>(org, id).await?.name,
            None => String::new(),
        };
        let recipient = Recipient {
            user,
            name: state.name.clone(),
            email: state.email.clone(),
        };
        let context = |link: String| {
            context! {
                org => context! { name => org_name.clone() },
                user => context! { name => recipient.name.clone(), email => recipient.email.clone() },
                account => context! { name => account.clone() },
                link => link,
                expires_at => expires_at.to_rfc3339(),
            }
        };
        self.deliver(event, org, kind, &recipient, || async {
            let token =
                self.access
                    .issue_invitation_link(org, user)
                    .await
                    .map_err(|e| match e {
                        AccessError::App(e) => Failure::from(e),
                        AccessError::Store(e) => Failure::from(e),
                        // The password was set already (an earlier link): nothing to send.
                        AccessError::InvitationUsed => Failure::Skip,
                        other => Failure::Dead(Invalid::new(
                            DeadReason::Refused(other.code()),
                            other.to_string(),
                        )),
                    })?;
            Ok(context(format!("{portal}/set-password?token={token}")))
        })
        .await
    }

    /// The org's partner portal address (`<public url>/p/<slug or id>`), which the
    /// emails' links point into.
    fn portal(&self, org: OrgId, state: &Org) -> String {
        let at = state.slug.clone().unwrap_or_else(|| org.to_string());
        format!("{}/p/{at}", self.public_url)
    }

    /// The emails of `email` about `lead` to `to` (a partner user, or a queue's members).
    async fn lead_emails(
        &self,
        email: LeadEmail,
        org: OrgId,
        lead: LeadId,
        to: Owner,
    ) -> Result<(), Failure> {
        let LeadEmail {
            event,
            kind,
            deadline,
        } = email;
        let recipients = self.recipients(org, to).await?;
        if recipients.is_empty() {
            return Ok(());
        }
        let org_state = self.commands.state::<Org>(org, org).await?;
        let portal = self.portal(org, &org_state);
        // Every lead email goes to people who have not accepted the lead (an offeree, a
        // queue's members): only its pre-acceptance fields.
        let shown = org_state.partner_fields(false);
        let fields: serde_json::Map<String, serde_json::Value> = self
            .commands
            .state::<Lead>(org, lead)
            .await?
            .fields
            .into_iter()
            .filter(|(name, _)| shown.contains(name))
            .collect();
        // Every recipient is tried; the first failure is reported once all were.
        let mut failure = None;
        for recipient in &recipients {
            let context = context! {
                org => context! { name => org_state.name.clone() },
                recipient => context! { name => recipient.name.clone(), email => recipient.email.clone() },
                lead => context! { id => lead.to_string(), fields => Value::from_serialize(&fields) },
                inbox_link => format!("{portal}/leads/{lead}"),
                deadline => deadline.map(|d| d.to_rfc3339()),
            };
            let sent = self
                .deliver(event, org, kind, recipient, || async move { Ok(context) })
                .await;
            if let Err(e) = sent {
                failure.get_or_insert(e);
            }
        }
        failure.map_or(Ok(()), Err)
    }

    /// The partner users behind an owner who may receive leads: the user, or the queue's
    /// members (users, and the users of member accounts).
    async fn recipients(&self, org: OrgId, owner: Owner) -> Result<Vec<Recipient>, Failure> {
        let users: Vec<PartnerUserId> = match owner {
            Owner::PartnerUser(user) => vec![user],
            Owner::Queue(queue) => {
                let mut users = Vec::new();
                for member in self.commands.state::<Queue>(org, queue).await?.members {
                    match member {
                        QueueMember::PartnerUser(user) => users.push(user),
                        QueueMember::PartnerAccount(account) => users.extend(
                            queries::account_users(&self.pool, org, account)
                                .await?
                                .into_iter()
                                .map(PartnerUserId),
                        ),
                    }
                }
                users.sort();
                users.dedup();
                users
            }
            Owner::InternalUser(_) => Vec::new(),
        };
        let mut out = Vec::new();
        for user in users {
            let (state, assignable) = self.commands.partner_user_assignability(org, user).await?;
            // Lead data goes only to users who may receive leads (active, signed in once,
            // account an active partner).
            if assignable.is_ok() {
                out.push(Recipient {
                    user,
                    name: state.name,
                    email: state.email,
                });
            }
        }
        Ok(out)
    }

    /// Send one email for `event` to `recipient` unless it was sent already: claim the
    /// notification row (a lease: another worker holding it makes this one retry later),
    /// build the context (`context` may mint a link: only once the row is claimed and
    /// unsent), render the current template, send, mark sent.
    async fn deliver<F, Fut>(
        &self,
        event: Uuid,
        org: OrgId,
        kind: TemplateKind,
        recipient: &Recipient,
        context: F,
    ) -> Result<(), Failure>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Value, Failure>>,
    {
        let key = (event, recipient.email.as_str());
        match self.claim(key, org, kind).await? {
            Claim::Ours => {}
            Claim::Sent => return Ok(()),
            Claim::Held => {
                return Err(Failure::Retry(AppError::Conflict {
                    aggregate: "notification",
                    attempts: 1,
                }))
            }
        }
        let (version, template) = self.template(org, kind).await?;
        let context = match context().await {
            Err(Failure::Skip) => {
                self.update(key, "DELETE FROM notifications WHERE event_id = $1 AND recipient = $2 AND status = 'sending'")
                    .await?;
                return Ok(());
            }
            other => other?,
        };
        let rendered = leadroute_app::mail::render(&template, &context)
            .map_err(|e| Failure::Dead(Invalid::new(DeadReason::TemplateFailed, e.to_string())))?;
        sqlx::query(
            "UPDATE notifications SET template_version = $3, subject = $4, text_body = $5,
                    html_body = $6, attempts = attempts + 1
              WHERE event_id = $1 AND recipient = $2",
        )
        .bind(event)
        .bind(&recipient.email)
        .bind(version as i32)
        .bind(redact(&rendered.subject))
        .bind(redact(&rendered.text))
        .bind(rendered.html.as_deref().map(redact))
        .execute(&self.pool)
        .await?;
        let outgoing = transport::Outgoing {
            from: &self.from,
            to: &recipient.email,
            message_id: format!("<{event}.{}@leadroute>", recipient.user),
            rendered: &rendered,
        };
        if let Err(failed) = self.transport.send(&outgoing).await {
            let (reason, error) = match failed {
                transport::Failed::Recipient(e) => (DeadReason::InvalidRecipient, e),
                transport::Failed::Smtp(e) => (DeadReason::SmtpUnavailable, e),
            };
            sqlx::query("UPDATE notifications SET last_error = $3, lease_until = NULL WHERE event_id = $1 AND recipient = $2")
                .bind(event)
                .bind(&recipient.email)
                .bind(&error)
                .execute(&self.pool)
                .await?;
            return Err(Failure::Dead(Invalid::new(
                reason,
                format!("{}: {error}", recipient.email),
            )));
        }
        self.update(
            key,
            "UPDATE notifications SET status = 'sent', sent_at = clock_timestamp(), last_error = NULL,
                    lease_until = NULL
              WHERE event_id = $1 AND recipient = $2 AND status = 'sending'",
        )
        .await?;
        tracing::info!(%event, kind = kind.as_str(), template_version = version, "email sent");
        if self.crash_after_send {
            tracing::error!("--crash-after-send: aborting before the acknowledgement");
            std::process::abort();
        }
        Ok(())
    }

    /// Take the notification row of `key`: a new one, or one left `sending` whose lease ran
    /// out (its worker died or gave up).
    async fn claim(
        &self,
        (event, recipient): (Uuid, &str),
        org: OrgId,
        kind: TemplateKind,
    ) -> Result<Claim, Failure> {
        let ours: Option<String> = sqlx::query_scalar(
            "INSERT INTO notifications (event_id, recipient, org_id, kind, template_version,
                                        subject, text_body, transport, status, lease_until)
             VALUES ($1, $2, $3, $4, 0, '', '', $5, 'sending', clock_timestamp() + $6 * interval '1 second')
             ON CONFLICT (event_id, recipient) DO UPDATE
                SET lease_until = excluded.lease_until, transport = excluded.transport
              WHERE notifications.status = 'sending'
                AND (notifications.lease_until IS NULL OR notifications.lease_until < clock_timestamp())
             RETURNING status",
        )
        .bind(event)
        .bind(recipient)
        .bind(org.0)
        .bind(kind.as_str())
        .bind(self.transport.name())
        .bind(LEASE.as_secs_f64())
        .fetch_optional(&self.pool)
        .await?;
        if ours.is_some() {
            return Ok(Claim::Ours);
        }
        let status: Option<String> = sqlx::query_scalar(
            "SELECT status FROM notifications WHERE event_id = $1 AND recipient = $2",
        )
        .bind(event)
        .bind(recipient)
        .fetch_optional(&self.pool)
        .await?;
        Ok(match status.as_deref() {
            Some("sent") => Claim::Sent,
            _ => Claim::Held,
        })
    }

    async fn update(&self, (event, recipient): (Uuid, &str), sql: &str) -> Result<(), Failure> {
        sqlx::query(sql)
            .bind(event)
            .bind(recipient)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The org's current template of `kind`, or the built-in default (version 0).
    async fn template(&self, org: OrgId, kind: TemplateKind) -> Result<(u32, Template), Failure> {
        match self.commands.state::<Templates>(org, org).await {
            Ok(templates) => Ok(templates
                .get(kind)
                .cloned()
                .unwrap_or((0, leadroute_app::mail::default_template(kind)))),
            Err(AppError::NotFound { .. }) => Ok((0, leadroute_app::mail::default_template(kind))),
            Err(e) => Err(e.into()),
        }
    }
}

impl Handler for Mailer {
    const SOURCE: &'static str = SOURCE;

    async fn process(&self, message: &jetstream::Message) -> Outcome {
        let envelope = match Envelope::parse(&message.payload) {
            Ok(envelope) => envelope,
            Err(invalid) => return Outcome::Dead(invalid),
        };
        match self.handle(envelope).await {
            Ok(()) | Err(Failure::Skip) => Outcome::Done,
            Err(Failure::Retry(e)) => Outcome::Retry(e),
            Err(Failure::Dead(invalid)) => Outcome::Dead(invalid),
        }
    }
}

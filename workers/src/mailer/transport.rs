//! How emails leave: over SMTP (lettre; plain, STARTTLS or TLS, optional credentials), or
//! the `log` transport that only records them (the default of `up`, so the demo needs no
//! SMTP server). SMTP failures are retried with a doubling backoff.

use super::MailerConfig;
use leadroute_app::mail::Rendered;
use lettre::message::{header::ContentType, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::time::Duration;

/// Where emails go.
#[derive(Clone)]
pub enum Transport {
    /// Recorded in the `notifications` table and the log only.
    Log,
    /// Sent over SMTP.
    Smtp {
        /// The client (boxed: it is large, and `Log` is empty).
        smtp: Box<AsyncSmtpTransport<Tokio1Executor>>,
        /// Attempts per email.
        attempts: u32,
        /// Wait after the first failed attempt (doubles each time).
        backoff: Duration,
    },
}

/// Why an email did not go out.
#[derive(Debug)]
pub enum Failed {
    /// The message cannot be built (a recipient address that is not one).
    Recipient(String),
    /// Every SMTP attempt failed; the last error.
    Smtp(String),
}

/// An email to send.
#[derive(Debug, Clone)]
pub struct Outgoing<'a> {
    /// Sender.
    pub from: &'a Mailbox,
    /// Recipient address.
    pub to: &'a str,
    /// A Message-ID that is the same for every attempt of this email.
    pub message_id: String,
    /// Content.
    pub rendered: &'a Rendered,
}

impl Transport {
    /// The transport `config` asks for.
    pub fn from_config(config: &MailerConfig) -> anyhow::Result<Transport> {
        if config.mail_transport == "log" {
            return Ok(Transport::Log);
        }
        let host = config.smtp_host.as_str();
        let builder = match config.smtp_tls.as_str() {
            "none" => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host),
            "starttls" => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host)?,
            "tls" => AsyncSmtpTransport::<Tokio1Executor>::relay(host)?,
            other => anyhow::bail!("--smtp-tls must be none, starttls or tls, not {other:?}"),
        };
        let mut builder = builder
            .port(config.smtp_port)
            .timeout(Some(Duration::from_secs(10)));
        if let (Some(user), Some(password)) = (&config.smtp_username, &config.smtp_password) {
            builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
        }
        Ok(Transport::Smtp {
            smtp: Box::new(builder.build()),
            attempts: config.smtp_attempts.max(1),
            backoff: Duration::from_millis(config.smtp_backoff_ms),
        })
    }

    /// Stored name.
    pub fn name(&self) -> &'static str {
        match self {
            Transport::Log => "log",
            Transport::Smtp { .. } => "smtp",
        }
    }

    /// Send (or, for `log`, record in the log); the last error once every attempt failed.
    pub async fn send(&self, email: &Outgoing<'_>) -> Result<(), Failed> {
        let Transport::Smtp {
            smtp,
            attempts,
            backoff,
        } = self
        else {
            tracing::info!(subject = %email.rendered.subject, "email recorded (log transport)");
            return Ok(());
        };
        let message = build(email).map_err(Failed::Recipient)?;
        let mut wait = *backoff;
        let mut last = String::new();
        for attempt in 1..=*attempts {
            match smtp.send(message.clone()).await {
                Ok(_) => return Ok(()),
                Err(e) => {
                    last = e.to_string();
                    tracing::warn!(attempt, error = %last, "SMTP send failed");
                }
            }
            if attempt < *attempts {
                tokio::time::sleep(wait).await;
                wait *= 2;
            }
        }
        Err(Failed::Smtp(format!(
            "SMTP failed {attempts} times; last: {last}"
        )))
    }
}

fn build(email: &Outgoing<'_>) -> Result<Message, String> {
    let to: Mailbox = email
        .to
        .parse()
        .map_err(|e| format!("recipient {}: {e}", email.to))?;
    let builder = Message::builder()
        .from(email.from.clone())
        .to(to)
        .subject(email.rendered.subject.clone())
        .message_id(Some(email.message_id.clone()));
    let text = SinglePart::builder()
        .header(ContentType::TEXT_PLAIN)
        .body(email.rendered.text.clone());
    let built = match &email.rendered.html {
        Some(html) => builder.multipart(
            MultiPart::alternative().singlepart(text).singlepart(
                SinglePart::builder()
                    .header(ContentType::TEXT_HTML)
                    .body(html.clone()),
            ),
        ),
        None => builder.singlepart(text),
    };
    built.map_err(|e| format!("building the message: {e}"))
}

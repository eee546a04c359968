//! Intake: upstream lead events from JetStream into the event store.
//!
//! Workers share one durable pull consumer (see [`super::worker`] for acknowledgement,
//! redelivery and dead letters). A message is acknowledged once its `ReceiveLead`
//! committed; a repeated upstream event id is a no-op, so redelivery is harmless. Invalid
//! messages are dead-lettered with a specific reason.

use super::lead_event::{self, Invalid};
use super::worker::{ConsumerSpec, Handler, Outcome, Worker};
use super::{Names, NatsError};
use crate::app::{AppError, CommandMeta, Commands, NewLead};
use async_nats::jetstream;
use leadroute_domain::ids::Actor;
use sqlx::PgPool;

/// Name of this consumer in dead letters.
pub const SOURCE: &str = "intake";

/// Receives upstream lead events.
#[derive(Clone)]
pub struct Intake {
    /// Executes ReceiveLead.
    commands: Commands,
    /// Subject names (the CRM prefix).
    names: Names,
}

impl Intake {
    /// A worker for the CRM stream's durable intake consumer (streams and consumer
    /// created unless they exist).
    pub async fn worker(
        pool: PgPool,
        js: jetstream::Context,
        names: Names,
    ) -> Result<Worker<Intake>, NatsError> {
        let intake = Intake {
            commands: Commands::new(pool.clone()),
            names: names.clone(),
        };
        let stream = (names.crm_stream(), names.crm_subjects());
        Worker::new(
            intake,
            pool,
            js,
            names.clone(),
            stream,
            ConsumerSpec {
                durable: names.intake_consumer(),
                filter: None,
                only_new: false,
            },
        )
        .await
    }
}

impl Handler for Intake {
    const SOURCE: &'static str = SOURCE;

    async fn process(&self, message: &jetstream::Message) -> Outcome {
        let org = match lead_event::org_of_subject(self.names.crm_prefix(), &message.subject) {
            Ok(org) => org,
            Err(invalid) => return Outcome::Dead(invalid),
        };
        let event = match lead_event::parse(&message.payload) {
            Ok(event) => event,
            Err(invalid) => return Outcome::Dead(invalid),
        };
        let new = NewLead::from(event);
        let meta = CommandMeta::now(Actor::System(SOURCE.to_string()));
        match self.commands.receive_lead(&meta, org, &new).await {
            Ok(_) => Outcome::Done,
            Err(AppError::NotFound {
                code: "org_not_found",
                ..
            }) => Outcome::Dead(Invalid {
                reason: "unknown_org",
                detail: format!("no org {org}"),
            }),
            Err(AppError::Refused { code, message })
            | Err(AppError::NotFound {
                code,
                what: _,
                id: message,
            }) => Outcome::Dead(Invalid {
                reason: code,
                detail: message,
            }),
            Err(e @ (AppError::Conflict { .. } | AppError::Store(_))) => Outcome::Retry(e),
        }
    }
}

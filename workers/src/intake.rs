//! Intake: upstream lead events from JetStream into the event store.
//!
//! Workers share one durable pull consumer (see [`crate::nats::worker`] for acknowledgement,
//! redelivery and dead letters). The lead events of one org that arrived together are
//! received in one transaction, and the new leads are routed in that same transaction
//! (`leadroute_app::router::Router::receive_and_route`); a message is acknowledged once it
//! committed. A repeated upstream event id is a no-op, so redelivery is harmless. Invalid
//! messages are dead-lettered with a specific reason.

use crate::nats::worker::{ConsumerSpec, Handler, Outcome, Worker};
use crate::nats::{Names, NatsError};
use async_nats::jetstream;
use leadroute_app::lead_event::{self, DeadReason, Invalid};
use leadroute_app::router::Router;
use leadroute_app::Commands;
use leadroute_app::{AppError, CommandMeta, NewLead};
use leadroute_domain::ids::{Actor, OrgId};
use std::collections::BTreeMap;

/// Name of this consumer in dead letters.
pub const SOURCE: &str = "intake";

/// Receives upstream lead events.
#[derive(Clone)]
pub struct Intake {
    /// Receives the leads and routes the new ones in the same transaction.
    router: Router,
    /// Subject names (the CRM prefix).
    names: Names,
}

impl Intake {
    /// A worker for the CRM stream's durable intake consumer (streams and consumer
    /// created unless they exist).
    pub async fn worker(
        commands: Commands,
        js: jetstream::Context,
        names: Names,
    ) -> Result<Worker<Intake>, NatsError> {
        let pool = commands.store().pool().clone();
        let intake = Intake {
            router: Router::with_commands(commands),
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

impl Intake {
    /// The org and lead event a message carries, or why it never will.
    fn parse(&self, message: &jetstream::Message) -> Result<(OrgId, NewLead), Invalid> {
        let org = lead_event::org_of_subject(self.names.crm_prefix(), &message.subject)?;
        let event = lead_event::parse(&message.payload)?;
        Ok((org, NewLead::from(event)))
    }
}

/// What a failed receive means for its message.
fn outcome_of(org: OrgId, error: AppError) -> Outcome {
    match error {
        AppError::NotFound {
            code: "org_not_found",
            ..
        } => Outcome::Dead(Invalid::new(
            DeadReason::UnknownOrg,
            format!("no org {org}"),
        )),
        AppError::Refused { code, message, .. }
        | AppError::NotFound {
            code,
            what: _,
            id: message,
        } => Outcome::Dead(Invalid::new(DeadReason::Refused(code), message)),
        e @ (AppError::Conflict { .. } | AppError::Store(_)) => Outcome::Retry(e),
    }
}

impl Handler for Intake {
    const SOURCE: &'static str = SOURCE;

    async fn process(&self, message: &jetstream::Message) -> Outcome {
        let mut outcomes = self.process_batch(std::slice::from_ref(message)).await;
        outcomes.pop().unwrap_or(Outcome::Done)
    }

    /// Every valid lead event of one org is received in one transaction; invalid ones are
    /// dead-lettered. A failure of the transaction redelivers that org's messages.
    async fn process_batch(&self, messages: &[jetstream::Message]) -> Vec<Outcome> {
        let mut outcomes: Vec<Option<Outcome>> = messages.iter().map(|_| None).collect();
        let mut by_org: BTreeMap<OrgId, (Vec<usize>, Vec<NewLead>)> = BTreeMap::new();
        for (i, message) in messages.iter().enumerate() {
            match self.parse(message) {
                Ok((org, new)) => {
                    let (indexes, leads) = by_org.entry(org).or_default();
                    indexes.push(i);
                    leads.push(new);
                }
                Err(invalid) => outcomes[i] = Some(Outcome::Dead(invalid)),
            }
        }
        let meta = CommandMeta::now(Actor::System(SOURCE.to_string()));
        for (org, (indexes, leads)) in by_org {
            let answers = self.receive(&meta, org, &leads).await;
            for (i, outcome) in indexes.into_iter().zip(answers) {
                outcomes[i] = Some(outcome);
            }
        }
        outcomes
            .into_iter()
            .map(|o| o.unwrap_or(Outcome::Done))
            .collect()
    }
}

impl Intake {
    /// Receive (and route) the lead events of one org in one transaction; one outcome per
    /// event. When the transaction is refused (input the store refuses), each event is
    /// received alone, so only the bad one is dead-lettered and the others of its batch
    /// still arrive. A missing org dead-letters them all; a transient failure redelivers
    /// them all.
    async fn receive(&self, meta: &CommandMeta, org: OrgId, leads: &[NewLead]) -> Vec<Outcome> {
        match self.router.receive_and_route(meta, org, leads).await {
            Ok(answers) => answers
                .into_iter()
                .map(|(_, answer)| match answer {
                    Ok(_) => Outcome::Done,
                    Err(e) => outcome_of(org, e),
                })
                .collect(),
            // A refusal of the batch as a whole lies in one of its leads (a value the store
            // refuses): find it. A missing org concerns them all, a transient failure too.
            Err(e @ AppError::Refused { .. }) if leads.len() > 1 => {
                tracing::warn!(%org, error = %e, leads = leads.len(), "a batch failed for good; receiving its leads one by one");
                let mut outcomes = Vec::with_capacity(leads.len());
                for lead in leads {
                    let mut one =
                        Box::pin(self.receive(meta, org, std::slice::from_ref(lead))).await;
                    outcomes.push(one.pop().unwrap_or(Outcome::Done));
                }
                outcomes
            }
            Err(e) => leads
                .iter()
                .map(|_| outcome_of(org, copy_error(&e)))
                .collect(),
        }
    }
}

/// A copy of `error` for each message it concerns (a store error keeps its text only).
fn copy_error(error: &AppError) -> AppError {
    match error {
        AppError::Refused {
            code,
            kind,
            message,
        } => AppError::refusal(code, *kind, message.clone()),
        AppError::NotFound { code, what, id } => AppError::NotFound {
            code,
            what,
            id: id.clone(),
        },
        AppError::Conflict {
            aggregate,
            attempts,
        } => AppError::Conflict {
            aggregate,
            attempts: *attempts,
        },
        AppError::Store(e) => AppError::Store(e.to_string().into()),
    }
}

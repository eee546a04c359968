//! leadroute's workers: the NATS transport and the consumers that carry business flows.
//! Intake receives upstream lead events (routing new leads in the same transaction), the
//! router consumer routes published lead events, the mailer sends access and assignment
//! emails, and the publisher puts the event log on JetStream. Every consumer shares one
//! worker (batches, redelivery, dead letters), and every long-running part runs in one
//! task group with one shutdown switch (`tasks`).
//!
//! # Layout
//! - `nats`: subjects and streams, connecting; `nats::worker` the consumer worker;
//!   `nats::intake` the intake consumer; `nats::publisher` the log publisher.
//! - `router`: the router consumer (the routing itself is `leadroute_app::router`).
//! - `mailer`: the mailer consumer, its outbox and transports.
//! - `dead_letters`: the dead-letter table.
//! - `tasks`: the task group (projectors, publisher, consumers) and its shutdown.

pub mod dead_letters;
pub mod mailer;
pub mod nats;
pub mod router;
pub mod tasks;

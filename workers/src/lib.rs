//! leadroute's workers: the NATS transport and the consumers that carry business flows.
//! Intake receives upstream lead events (routing new leads in the same transaction), the
//! router consumer routes published lead events, the waker routes waiting leads when a
//! place frees, the scheduler reminds and recalls pending offers at their times, the mailer
//! sends access, assignment and reminder emails, and the publisher puts the event log on
//! JetStream. Every consumer shares one
//! worker (batches, redelivery, dead letters), and every long-running part runs in one
//! task group with one shutdown switch (`tasks`).
//!
//! # Layout
//! - `nats`: the transport: subjects and streams, connecting; `nats::worker` the consumer
//!   worker every consumer shares (batches, redelivery, dead letters).
//! - `intake`: the intake consumer (upstream lead events in, routed in one transaction).
//! - `publisher`: the log publisher (the event log onto JetStream).
//! - `router`: the router consumer (the routing itself is `leadroute_app::router`).
//! - `waker`: the waker consumer and sweep (waiting leads routed when a place frees).
//! - `scheduler`: offer timers (reminders, recalls at the acceptance deadline).
//! - `mailer`: the mailer consumer, its outbox and transports.
//! - `dead_letters`: the dead-letter table.
//! - `round_lock`: one process at a time for a periodic round (sweep, scheduler tick).
//! - `tasks`: the task group (projectors, publisher, consumers) and its shutdown.

pub mod dead_letters;
pub mod intake;
pub mod mailer;
pub mod nats;
pub mod publisher;
pub mod round_lock;
pub mod router;
pub mod scheduler;
pub mod tasks;
pub mod waker;

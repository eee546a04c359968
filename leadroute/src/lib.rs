//! The `leadroute` binary's parts: the command line (`cli`), `up` with the embedded local
//! PostgreSQL and NATS and the demo seed, start-up that waits for its servers (`startup`),
//! logging (`telemetry`), and the commands that print (bulk, dead letters, projections,
//! audit).
//!
//! Domain rules live in `leadroute-domain`, the event store in `leadroute-store`, read
//! models in `leadroute-projections`, commands in `leadroute-app`, the HTTP API in
//! `leadroute-api`, the NATS workers in `leadroute-workers`.
//!
//! # Layout
//! - `cli`: the commands and their arguments.
//! - `up`: the whole service in one process, with demo data; `embedded`: the local
//!   PostgreSQL and NATS it starts when none is configured; `demo`: the demo seed.
//! - `bulk`: the `leadroute bulk` commands; `read_side`: the `dlq`, `projections` and
//!   `audit` commands.
//! - `startup`: waiting for PostgreSQL and NATS; `telemetry`: logging.

pub mod bulk;
pub mod cli;
pub mod demo;
pub mod embedded;
pub mod read_side;
pub mod startup;
pub mod telemetry;
pub mod up;

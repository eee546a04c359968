//! leadroute's runnable parts: the application layer that executes commands through the
//! event store, strict parsing of outside input (`input`), database plumbing, start-up that
//! waits for its servers (`startup`), the embedded local PostgreSQL and NATS of `up`, the
//! demo seed, and the `leadroute` command line.
//!
//! Domain rules live in `leadroute-domain`; schema and read models in `leadroute-projections`.
//!
//! # Layout
//! - `app`: commands through the event store, facts looked up first, batches, conflicts.
//! - `access`: API keys, partner passwords and sessions, sign-in throttling.
//! - `input`: strict JSON for every edge.
//! - `api`: the HTTP server loop, routes, scoping, problem+json, idempotency, OpenAPI.
//! - `nats`: subjects and streams, the consumer worker, intake, the publisher.
//! - `routing`: the router's engine, routing at intake, the router consumer, dry runs.
//! - `mailer`: access and assignment emails, templates, transports.
//! - `bulk`: the bulk-reassignment runner and its CLI printers.
//! - `dead_letters`: the dead-letter table.
//! - `read_side`: projector and worker tasks, the read-side commands.
//! - `db`, `startup`, `embedded`, `up`, `demo`, `telemetry`, `cli`: running the binary.

pub mod access;
pub mod api;
pub mod app;
pub mod bulk;
pub mod cli;
pub mod db;
pub mod dead_letters;
pub mod demo;
pub mod embedded;
pub mod input;
pub mod mailer;
pub mod nats;
pub mod read_side;
pub mod routing;
pub mod startup;
pub mod telemetry;
pub mod up;

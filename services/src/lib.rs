//! leadroute's runnable parts: the application layer that executes commands through the
//! event store, strict parsing of outside input (`input`), database plumbing, start-up that
//! waits for its servers (`startup`), the embedded local PostgreSQL and NATS of `up`, the
//! demo seed, and the `leadroute` command line.
//!
//! Domain rules live in `leadroute-domain`; schema and read models in `leadroute-projections`.

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

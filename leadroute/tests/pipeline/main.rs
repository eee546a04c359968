//! The integration tests of the leadroute binary and its workers, as one program: the NATS workers, the
//! `leadroute` binary and its commands against real PostgreSQL and NATS (one module per
//! area). `cargo test -p leadroute --test pipeline <module>::` runs one area.

mod bulk_cli;
mod hostile;
mod intake;
mod mailer;
mod org_create;
mod parser_fuzz;
mod projector_kill;
mod publisher;
mod router;
mod scheduler;
mod up_embedded;

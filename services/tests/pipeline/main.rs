//! The integration tests of leadroute-services, as one program: the NATS workers, the
//! `leadroute` binary and its commands against real PostgreSQL and NATS (one module per
//! area). `cargo test -p leadroute-services --test pipeline <module>::` runs one area.

mod bulk_cli;
mod hostile;
mod intake;
mod mailer;
mod org_create;
mod parser_fuzz;
mod projector_kill;
mod publisher;
mod router;
mod up_embedded;

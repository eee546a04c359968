//! The end-to-end tests over the HTTP API and the read side, as one program, against real
//! PostgreSQL and NATS (one module per area). `cargo test -p leadroute-tests --test api
//! <module>::` runs one area.

mod api_authorization;
mod api_bulk;
mod api_flows;
mod api_routing;
mod api_templates;
mod duplicates;
mod event_store;
mod hostile_http;
mod live;
mod log_reader;
mod offers;
mod partner_flows;
mod portal;
mod projector_runtime;
mod read_models;
mod sign_in_abuse;
mod territory;

//! The router: applies the routing engine (`leadroute_domain::engine::resolve`) to leads and
//! commits each decision (`RouteLead`) in one transaction with its pool pick. Used by the
//! NATS router on lead received and watched-field updates, by the API's explicit re-run,
//! by routing at intake (a batch of new leads, `inline`), by the waking of waiting leads
//! (`waiting`), by declined and lapsed offers (`offers`) and, writing nothing, by the dry
//! run. Every path gathers its facts the same
//! way (`Commands::routing_facts`: the event store, and the open-lead counts it keeps) and
//! decides nothing itself.
//!
//! # Layout
//! - `route`: the `Router`, its rule-set cache, routing one lead.
//! - `inline`: routing at intake, a batch of new leads with their `LeadReceived` events.
//! - `waiting`: routing the leads that wait for their target, oldest first, once a member
//!   frees capacity or becomes eligible.
//! - `offers`: a declined or lapsed offer, with the lead routed again in its transaction.
//! - `dry_run`: a draft rule set against leads, writing nothing.

mod dry_run;
mod inline;
mod offers;
mod route;
mod waiting;

pub use dry_run::DryRun;
pub use leadroute_domain::routing::rules::ActiveRules;
pub use offers::Decline;
pub use route::{Router, NO_RULE_SET, ROUTER};

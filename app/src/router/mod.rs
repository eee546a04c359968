//! The router: applies the routing engine (`leadroute_domain::engine::resolve`) to leads and
//! commits each decision (`RouteLead`) in one transaction with its pool pick. Used by the
//! NATS router on lead received and watched-field updates, by the API's explicit re-run,
//! by routing at intake (a batch of new leads, `inline`) and, writing nothing, by the dry
//! run. Every path gathers its facts the same way (`Commands::routing_facts`: the event
//! store, and open-lead counts of capped pools from the leads read model) and decides
//! nothing itself.
//!
//! # Layout
//! - `route`: the `Router`, its rule-set cache, routing one lead.
//! - `inline`: routing at intake, a batch of new leads with their `LeadReceived` events.
//! - `dry_run`: a draft rule set against leads, writing nothing.

mod dry_run;
mod inline;
mod route;

pub use dry_run::DryRun;
pub use leadroute_domain::routing::rules::ActiveRules;
pub use route::{Router, NO_RULE_SET, ROUTER};

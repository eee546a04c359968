//! leadroute's pure domain: typed ids, commands, events and aggregates for orgs, partner
//! accounts, partner users, queues, leads, round-robin pools, rule sets, notification
//! templates and bulk reassignments.
//!
//! Nothing here does I/O or reads a clock: time, ids and looked-up facts (is the target
//! assignable, is the claimant a queue member) arrive inside the commands. Each aggregate is
//! a pure [`decider::Decider`] with a thin `cqrs_es::Aggregate` adapter.
//!
//! # Layout
//! - `deadline`: acceptance deadlines (a duration or business hours) and reminders.
//! - `duplicates`: the keys a new lead is matched by against the org's open leads.
//! - `decider`: the decide/evolve shape, the cqrs-es adapter, typed refusals (code and kind).
//! - `engine`: the routing engine, one pure `resolve` from facts to a decision, and the
//!   one pool pick.
//! - `fields`: the lead fields type.
//! - `ids`: typed ids, owners and actors.
//! - `limits`: the bounds of every input and the checks of text and lead fields.
//! - `org`, `partner_account`, `partner_user`, `queue`, `lead`, `pool`, `rule_set`,
//!   `templates`, `bulk`: one aggregate each (commands, events, state, refusals).
//! - `routing`: criteria, compiled rule sets, weighted round-robin, decision records.
//! - `upcasters`: upcasters of stored event versions (none today).

pub mod bulk;
pub mod deadline;
pub mod decider;
pub mod duplicates;
pub mod engine;
pub mod fields;
pub mod ids;
pub mod lead;
pub mod limits;
pub mod org;
pub mod partner_account;
pub mod partner_user;
pub mod pool;
pub mod queue;
pub mod routing;
pub mod rule_set;
pub mod templates;
pub mod upcasters;

#[cfg(test)]
mod test_support;

pub use decider::{Decider, Refusal, RefusalKind};

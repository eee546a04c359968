//! Who is calling: API keys of internal users and integrations, partner users' passwords
//! (set once through the invitation link, argon2id) and their session tokens.
//!
//! Secrets are random 256-bit tokens shown once; only their SHA-256 is stored (tables of
//! migration `..._access.sql`), and none of them is ever logged or written to the event log.
//! This module authenticates; what a caller may do is decided at the HTTP edge.
//!
//! # Layout
//! - `keys`: the `Access` service, roles and principals, API keys, orgs with their first key.
//! - `passwords`: partner passwords, invitations and sessions.
//! - `secrets`: random tokens and hashing.
//! - `throttle`: sign-in throttling.

mod keys;
mod passwords;
mod secrets;
pub mod throttle;

pub use keys::*;
pub use passwords::SignedIn;

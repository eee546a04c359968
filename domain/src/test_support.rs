//! Shared fixtures for the aggregate tests: a fixed actor and a fixed time.

use crate::ids::{Actor, InternalUserId};
use chrono::{DateTime, TimeZone, Utc};

/// An admin acting in tests.
pub fn admin() -> Actor {
    Actor::InternalUser(InternalUserId(uuid::Uuid::from_u128(0xad)))
}

/// A fixed instant; aggregates never read the clock.
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap()
}

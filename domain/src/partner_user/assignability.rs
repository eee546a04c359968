//! The assignability rule (F04): a partner user may receive a lead, manually, by claim or
//! automatically, only while active, signed in at least once, and in an active partner
//! account; automatic routing also skips a paused user until the pause ends. Pure: the
//! caller supplies the account's state and the time. The facts live in one [`Standing`],
//! which the aggregate and the directory read model both give; `routing::judge` turns it
//! into a routing verdict.

use super::PartnerUser;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What decides whether a partner user may receive leads: the user's own state and its
/// account's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Standing {
    /// Active as a partner user.
    pub active: bool,
    /// Signed in at least once.
    pub signed_in_once: bool,
    /// Its partner account is an active partner.
    pub account_active: bool,
    /// Automatic routing is paused.
    pub paused: bool,
    /// End of the pause, if it has one.
    pub paused_until: Option<DateTime<Utc>>,
}

impl Standing {
    /// Whether the user may receive a lead (manually, by claim or automatically). Pausing
    /// does not matter here: it only stops automatic routing.
    pub fn assignability(&self) -> Result<(), NotAssignable> {
        if !self.active {
            Err(NotAssignable::Inactive)
        } else if !self.signed_in_once {
            Err(NotAssignable::NeverSignedIn)
        } else if !self.account_active {
            Err(NotAssignable::PartnerAccountNotActive)
        } else {
            Ok(())
        }
    }

    /// Whether automatic routing skips the user at `now` (a pause with an end applies
    /// until then).
    pub fn paused_at(&self, now: DateTime<Utc>) -> bool {
        self.paused && self.paused_until.is_none_or(|until| until > now)
    }
}

/// Why a partner user may not receive a lead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, thiserror::Error)]
#[serde(rename_all = "snake_case")]
pub enum NotAssignable {
    /// Not (or no longer) an active partner user.
    #[error("the partner user is not active")]
    Inactive,
    /// Active, but has never signed in.
    #[error("the partner user has never signed in")]
    NeverSignedIn,
    /// The user's partner account is not an active partner.
    #[error("the partner user's account is not an active partner")]
    PartnerAccountNotActive,
}

impl NotAssignable {
    /// Stable reason code (`never_signed_in`).
    pub fn code(self) -> &'static str {
        match self {
            NotAssignable::Inactive => "inactive",
            NotAssignable::NeverSignedIn => "never_signed_in",
            NotAssignable::PartnerAccountNotActive => "partner_account_not_active",
        }
    }
}

impl PartnerUser {
    /// This user's standing, given whether their account is active.
    pub fn standing(&self, account_active: bool) -> Standing {
        Standing {
            active: self.active,
            signed_in_once: self.signed_in_once,
            account_active,
            paused: self.paused,
            paused_until: self.paused_until,
        }
    }

    /// Whether this user may receive a lead now, given whether their account is active.
    /// Pausing does not matter here: it only stops automatic routing.
    pub fn assignability(&self, account_active: bool) -> Result<(), NotAssignable> {
        self.standing(account_active).assignability()
    }

    /// Whether automatic routing skips this user at `now` (a pause with an end applies
    /// until then).
    pub fn paused_at(&self, now: DateTime<Utc>) -> bool {
        self.standing(true).paused_at(now)
    }
}

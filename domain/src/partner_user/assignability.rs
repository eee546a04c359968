//! The assignability rule (F04): a partner user may receive a lead, manually, by claim or
//! automatically, only while active, signed in at least once, and in an active partner
//! account. Pure: the caller supplies the account's state.

use super::PartnerUser;
use serde::{Deserialize, Serialize};

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
    /// Whether this user may receive a lead now, given whether their account is active.
    /// Pausing does not matter here: it only stops automatic routing.
    pub fn assignability(&self, account_active: bool) -> Result<(), NotAssignable> {
        if !self.active {
            Err(NotAssignable::Inactive)
        } else if !self.signed_in_once {
            Err(NotAssignable::NeverSignedIn)
        } else if !account_active {
            Err(NotAssignable::PartnerAccountNotActive)
        } else {
            Ok(())
        }
    }
}

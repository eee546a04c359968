//! The PartnerAccount aggregate: a reseller or distributor owned by one channel manager,
//! activated as a partner only while its org has PRM enabled. Pure: no I/O, no clock.

use crate::decider::{ensure, required_name, Decider, Refusal, RefusalKind};
use crate::ids::{Actor, InternalUserId, OrgId, PartnerAccountId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[cfg(test)]
mod tests;

/// Commands on a partner account.
#[derive(Debug, Clone, PartialEq)]
pub enum PartnerAccountCommand {
    /// Create the account (not yet a partner).
    CreatePartnerAccount {
        /// The new account's id.
        account_id: PartnerAccountId,
        /// The org it belongs to.
        org_id: OrgId,
        /// Display name.
        name: String,
        /// The owning channel manager.
        channel_manager: InternalUserId,
        /// Sales territory, free text.
        territory: String,
        /// Partner tier, free text (`gold`, `silver`).
        tier: String,
        /// Who creates it.
        actor: Actor,
        /// When.
        at: DateTime<Utc>,
    },
    /// Activate the account as a partner.
    ActivatePartner {
        /// Looked up before the command: whether the org has PRM enabled.
        org_prm_enabled: bool,
        /// Who activates it.
        actor: Actor,
        /// When.
        at: DateTime<Utc>,
    },
    /// Deactivate the partner; its users and queues get no more leads.
    DeactivatePartner {
        /// Who deactivates it.
        actor: Actor,
        /// When.
        at: DateTime<Utc>,
    },
    /// Hand the account to another channel manager.
    ChangeChannelManager {
        /// The new channel manager.
        channel_manager: InternalUserId,
        /// Who changes it.
        actor: Actor,
        /// When.
        at: DateTime<Utc>,
    },
}

/// Events of a partner account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum PartnerAccountEvent {
    /// The account exists.
    PartnerAccountCreated {
        /// Its id.
        account_id: PartnerAccountId,
        /// Its org.
        org_id: OrgId,
        /// Display name.
        name: String,
        /// Owning channel manager.
        channel_manager: InternalUserId,
        /// Territory.
        territory: String,
        /// Tier.
        tier: String,
        /// Who created it.
        actor: Actor,
        /// When.
        at: DateTime<Utc>,
    },
    /// The account is an active partner.
    PartnerActivated {
        /// Who activated it.
        actor: Actor,
        /// When.
        at: DateTime<Utc>,
    },
    /// The account is no longer an active partner.
    PartnerDeactivated {
        /// Who deactivated it.
        actor: Actor,
        /// When.
        at: DateTime<Utc>,
    },
    /// The owning channel manager changed.
    ChannelManagerChanged {
        /// Previous channel manager.
        from: InternalUserId,
        /// New channel manager.
        to: InternalUserId,
        /// Who changed it.
        actor: Actor,
        /// When.
        at: DateTime<Utc>,
    },
}

crate::domain_event!(PartnerAccountEvent, version "1.0", {
    PartnerAccountCreated => "PartnerAccountCreated",
    PartnerActivated => "PartnerActivated",
    PartnerDeactivated => "PartnerDeactivated",
    ChannelManagerChanged => "ChannelManagerChanged",
});

/// Why a partner-account command is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PartnerAccountError {
    /// The account already exists.
    #[error("the partner account already exists")]
    AccountAlreadyExists,
    /// The account does not exist.
    #[error("the partner account does not exist")]
    AccountNotFound,
    /// A name is required.
    #[error("the partner account name must not be empty")]
    NameRequired,
    /// The name breaks the limits of a name (`limits::line`).
    #[error("{0}")]
    InvalidName(crate::limits::TextFault),
    /// Partners can only be activated once the org has enabled PRM.
    #[error("the org has not enabled PRM, so no account can be activated as a partner")]
    PrmNotEnabled,
    /// The account is already an active partner.
    #[error("the partner account is already active")]
    AlreadyActive,
    /// The account is not an active partner.
    #[error("the partner account is not active")]
    NotActive,
    /// The account already has that channel manager.
    #[error("the partner account already has that channel manager")]
    UnchangedChannelManager,
}

impl Refusal for PartnerAccountError {
    fn describe(&self) -> (&'static str, RefusalKind) {
        use RefusalKind::*;
        match self {
            PartnerAccountError::AccountAlreadyExists => {
                ("partner_account_already_exists", Conflict)
            }
            PartnerAccountError::AccountNotFound => ("partner_account_not_found", NotFound),
            PartnerAccountError::NameRequired => ("name_required", InvalidInput),
            PartnerAccountError::InvalidName(_) => ("invalid_name", InvalidInput),
            PartnerAccountError::PrmNotEnabled => ("prm_not_enabled", Conflict),
            PartnerAccountError::AlreadyActive => ("partner_account_already_active", Conflict),
            PartnerAccountError::NotActive => ("partner_account_not_active", Conflict),
            PartnerAccountError::UnchangedChannelManager => ("unchanged_channel_manager", Conflict),
        }
    }
}

/// State of a partner account.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PartnerAccount {
    /// Set once created.
    pub id: Option<PartnerAccountId>,
    /// The org it belongs to.
    pub org_id: Option<OrgId>,
    /// Display name.
    pub name: String,
    /// Owning channel manager.
    pub channel_manager: Option<InternalUserId>,
    /// Territory.
    pub territory: String,
    /// Tier.
    pub tier: String,
    /// Whether it is an active partner now.
    pub active: bool,
}

impl Decider for PartnerAccount {
    type Command = PartnerAccountCommand;
    type Event = PartnerAccountEvent;
    type Error = PartnerAccountError;

    fn decide(
        &self,
        command: PartnerAccountCommand,
    ) -> Result<Vec<PartnerAccountEvent>, PartnerAccountError> {
        use PartnerAccountCommand as C;
        use PartnerAccountError as E;
        use PartnerAccountEvent as V;
        ensure(
            self.id.is_some() || matches!(command, C::CreatePartnerAccount { .. }),
            E::AccountNotFound,
        )?;
        match command {
            C::CreatePartnerAccount {
                account_id,
                org_id,
                name,
                channel_manager,
                territory,
                tier,
                actor,
                at,
            } => {
                ensure(self.id.is_none(), E::AccountAlreadyExists)?;
                let name = required_name(&name, E::NameRequired, E::InvalidName)?;
                Ok(vec![V::PartnerAccountCreated {
                    account_id,
                    org_id,
                    name,
                    channel_manager,
                    territory,
                    tier,
                    actor,
                    at,
                }])
            }
            C::ActivatePartner {
                org_prm_enabled,
                actor,
                at,
            } => {
                ensure(org_prm_enabled, E::PrmNotEnabled)?;
                ensure(!self.active, E::AlreadyActive)?;
                Ok(vec![V::PartnerActivated { actor, at }])
            }
            C::DeactivatePartner { actor, at } => {
                ensure(self.active, E::NotActive)?;
                Ok(vec![V::PartnerDeactivated { actor, at }])
            }
            C::ChangeChannelManager {
                channel_manager,
                actor,
                at,
            } => {
                let from = self.channel_manager.ok_or(E::AccountNotFound)?;
                ensure(from != channel_manager, E::UnchangedChannelManager)?;
                Ok(vec![V::ChannelManagerChanged {
                    from,
                    to: channel_manager,
                    actor,
                    at,
                }])
            }
        }
    }

    fn evolve(&mut self, event: &PartnerAccountEvent) {
        match event {
            PartnerAccountEvent::PartnerAccountCreated {
                account_id,
                org_id,
                name,
                channel_manager,
                territory,
                tier,
                ..
            } => {
                self.id = Some(*account_id);
                self.org_id = Some(*org_id);
                self.name = name.clone();
                self.channel_manager = Some(*channel_manager);
                self.territory = territory.clone();
                self.tier = tier.clone();
            }
            PartnerAccountEvent::PartnerActivated { .. } => self.active = true,
            PartnerAccountEvent::PartnerDeactivated { .. } => self.active = false,
            PartnerAccountEvent::ChannelManagerChanged { to, .. } => {
                self.channel_manager = Some(*to);
            }
        }
    }
}

crate::cqrs_aggregate!(PartnerAccount, "PartnerAccount");

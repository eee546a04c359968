//! Partner account and partner user commands, with the facts they need looked up first
//! (PRM enabled for the org, the contact's account active).

use crate::commands::{CommandMeta, Commands, Committed};
use crate::error::AppError;
use chrono::{DateTime, Utc};
use leadroute_domain::ids::{InternalUserId, InvitationId, OrgId, PartnerAccountId, PartnerUserId};
use leadroute_domain::org::Org;
use leadroute_domain::partner_account::{PartnerAccount, PartnerAccountCommand};
use leadroute_domain::partner_user::{PartnerUser, PartnerUserCommand, Preferences};

/// A partner account to create.
#[derive(Debug, Clone)]
pub struct NewPartnerAccount {
    /// Its id.
    pub account_id: PartnerAccountId,
    /// Display name.
    pub name: String,
    /// Owning channel manager.
    pub channel_manager: InternalUserId,
    /// Territory.
    pub territory: String,
    /// Tier.
    pub tier: String,
}

/// A contact to add to a partner account.
#[derive(Debug, Clone)]
pub struct NewContact {
    /// Its id (kept as the partner user id).
    pub user_id: PartnerUserId,
    /// The account it belongs to.
    pub account_id: PartnerAccountId,
    /// Full name.
    pub name: String,
    /// Email.
    pub email: String,
}

impl Commands {
    /// Create a partner account in `org` (which must exist).
    pub async fn create_partner_account(
        &self,
        meta: &CommandMeta,
        org: OrgId,
        new: &NewPartnerAccount,
    ) -> Result<Committed, AppError> {
        self.retry(|| async {
            self.load_in_org::<Org>(org, org).await?;
            let loaded = self.load::<PartnerAccount>(new.account_id).await?;
            let command = PartnerAccountCommand::CreatePartnerAccount {
                account_id: new.account_id,
                org_id: org,
                name: new.name.clone(),
                channel_manager: new.channel_manager,
                territory: new.territory.clone(),
                tier: new.tier.clone(),
                actor: meta.actor.clone(),
                at: meta.at,
            };
            self.commit(loaded, command, meta).await
        })
        .await
    }

    /// Activate an account as a partner; refused unless the org has PRM enabled.
    pub async fn activate_partner(
        &self,
        meta: &CommandMeta,
        org: OrgId,
        account: PartnerAccountId,
    ) -> Result<Committed, AppError> {
        self.retry(|| async {
            let org_prm_enabled = self.prm_enabled(org).await?;
            let command = PartnerAccountCommand::ActivatePartner {
                org_prm_enabled,
                actor: meta.actor.clone(),
                at: meta.at,
            };
            self.commit(
                self.load_in_org::<PartnerAccount>(org, account).await?,
                command,
                meta,
            )
            .await
        })
        .await
    }

    /// Deactivate a partner account.
    pub async fn deactivate_partner(
        &self,
        meta: &CommandMeta,
        org: OrgId,
        account: PartnerAccountId,
    ) -> Result<Committed, AppError> {
        self.on_existing::<PartnerAccount>(meta, org, account, || {
            PartnerAccountCommand::DeactivatePartner {
                actor: meta.actor.clone(),
                at: meta.at,
            }
        })
        .await
    }

    /// Hand a partner account to another channel manager.
    pub async fn change_channel_manager(
        &self,
        meta: &CommandMeta,
        org: OrgId,
        account: PartnerAccountId,
        channel_manager: InternalUserId,
    ) -> Result<Committed, AppError> {
        self.on_existing::<PartnerAccount>(meta, org, account, || {
            PartnerAccountCommand::ChangeChannelManager {
                channel_manager,
                actor: meta.actor.clone(),
                at: meta.at,
            }
        })
        .await
    }

    /// Add a contact to a partner account of `org`.
    pub async fn add_contact(
        &self,
        meta: &CommandMeta,
        org: OrgId,
        new: &NewContact,
    ) -> Result<Committed, AppError> {
        self.retry(|| async {
            self.load_in_org::<PartnerAccount>(org, new.account_id)
                .await?;
            let loaded = self.load::<PartnerUser>(new.user_id).await?;
            let command = PartnerUserCommand::AddContact {
                user_id: new.user_id,
                org_id: org,
                account_id: new.account_id,
                name: new.name.clone(),
                email: new.email.clone(),
                actor: meta.actor.clone(),
                at: meta.at,
            };
            self.commit(loaded, command, meta).await
        })
        .await
    }

    /// Activate a contact as a partner user with a one-time invitation expiring at
    /// `invitation_expires_at`; refused unless the contact's account is an active partner.
    pub async fn activate_partner_user(
        &self,
        meta: &CommandMeta,
        org: OrgId,
        user: PartnerUserId,
        invitation_id: InvitationId,
        invitation_expires_at: DateTime<Utc>,
    ) -> Result<Committed, AppError> {
        self.retry(|| async {
            let loaded = self.load_in_org::<PartnerUser>(org, user).await?;
            let account_id = loaded.aggregate.account_id.ok_or_else(|| {
                AppError::not_found("partner_account_not_found", "partner_account", user)
            })?;
            let account = self.load_in_org::<PartnerAccount>(org, account_id).await?;
            let command = PartnerUserCommand::ActivatePartnerUser {
                invitation_id,
                invitation_expires_at,
                account_active: account.aggregate.active,
                actor: meta.actor.clone(),
                at: meta.at,
            };
            self.commit(loaded, command, meta).await
        })
        .await
    }

    /// Record a sign-in of a partner user (the first one makes the user assignable).
    pub async fn record_sign_in(
        &self,
        meta: &CommandMeta,
        org: OrgId,
        user: PartnerUserId,
    ) -> Result<Committed, AppError> {
        self.on_existing::<PartnerUser>(meta, org, user, || PartnerUserCommand::RecordSignIn {
            at: meta.at,
        })
        .await
    }

    /// Deactivate a partner user.
    pub async fn deactivate_partner_user(
        &self,
        meta: &CommandMeta,
        org: OrgId,
        user: PartnerUserId,
    ) -> Result<Committed, AppError> {
        self.on_existing::<PartnerUser>(meta, org, user, || {
            PartnerUserCommand::DeactivatePartnerUser {
                actor: meta.actor.clone(),
                at: meta.at,
            }
        })
        .await
    }

    /// Pause automatic routing to a partner user, optionally until a time.
    pub async fn pause_auto_assignment(
        &self,
        meta: &CommandMeta,
        org: OrgId,
        user: PartnerUserId,
        until: Option<DateTime<Utc>>,
    ) -> Result<Committed, AppError> {
        self.on_existing::<PartnerUser>(meta, org, user, || {
            PartnerUserCommand::PauseAutoAssignment {
                until,
                actor: meta.actor.clone(),
                at: meta.at,
            }
        })
        .await
    }

    /// Resume automatic routing to a partner user.
    pub async fn resume_auto_assignment(
        &self,
        meta: &CommandMeta,
        org: OrgId,
        user: PartnerUserId,
    ) -> Result<Committed, AppError> {
        self.on_existing::<PartnerUser>(meta, org, user, || {
            PartnerUserCommand::ResumeAutoAssignment {
                actor: meta.actor.clone(),
                at: meta.at,
            }
        })
        .await
    }

    /// Set a partner user's language and time zone (`invalid_time_zone`).
    pub async fn set_preferences(
        &self,
        meta: &CommandMeta,
        org: OrgId,
        user: PartnerUserId,
        preferences: Preferences,
    ) -> Result<Committed, AppError> {
        self.on_existing::<PartnerUser>(meta, org, user, || PartnerUserCommand::SetPreferences {
            preferences: preferences.clone(),
            actor: meta.actor.clone(),
            at: meta.at,
        })
        .await
    }

    /// A forgotten password: when `email` is an active partner user's of `org`, a new
    /// one-time set-password link replaces theirs (the mailer sends it), valid for
    /// [`RESET_LINK_TTL`]. Answers the same whether or not the address exists, and also
    /// when a reset was asked for moments ago (`reset_too_soon` is not told): the caller
    /// learns nothing about who has an account.
    pub async fn request_password_reset(
        &self,
        meta: &CommandMeta,
        org: OrgId,
        email: &str,
    ) -> Result<(), AppError> {
        let email = email.trim().to_lowercase();
        if email.is_empty() || email.len() > 4 * leadroute_domain::limits::MAX_EMAIL_CHARS {
            return Ok(());
        }
        let user: Option<uuid::Uuid> = sqlx::query_scalar(
            "SELECT user_id FROM rm_partner_users WHERE org_id = $1 AND email = $2 AND active",
        )
        .bind(org.0)
        .bind(&email)
        .fetch_optional(&self.pool)
        .await?;
        let Some(user) = user.map(PartnerUserId) else {
            return Ok(());
        };
        let asked = self
            .on_existing::<PartnerUser>(meta, org, user, || {
                PartnerUserCommand::RequestPasswordReset {
                    invitation_id: InvitationId::new_random(),
                    invitation_expires_at: meta.at + RESET_LINK_TTL,
                    at: meta.at,
                }
            })
            .await;
        match asked {
            Ok(_) | Err(AppError::Refused { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// How long a password-reset link works.
pub const RESET_LINK_TTL: chrono::Duration = chrono::Duration::hours(2);

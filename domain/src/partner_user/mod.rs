//! The PartnerUser aggregate: a contact of a partner account, activated as a partner user
//! with a one-time invitation, and the assignability rule every owner change obeys.
//! Pure: no I/O, no clock.

use crate::decider::{ensure, required_name, Decider, Refusal, RefusalKind};
use crate::ids::{Actor, InvitationId, OrgId, PartnerAccountId, PartnerUserId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

mod assignability;
#[cfg(test)]
mod tests;

pub use assignability::{NotAssignable, Standing};

/// Commands on a contact / partner user.
#[derive(Debug, Clone, PartialEq)]
pub enum PartnerUserCommand {
    /// Add a contact to a partner account.
    AddContact {
        /// The contact's id (kept when activated as a partner user).
        user_id: PartnerUserId,
        /// The org of the account.
        org_id: OrgId,
        /// The partner account the contact belongs to.
        account_id: PartnerAccountId,
        /// Full name.
        name: String,
        /// Email address; also the sign-in name.
        email: String,
        /// Who adds it.
        actor: Actor,
        /// When.
        at: DateTime<Utc>,
    },
    /// Activate the contact as a partner user, sending a one-time invitation.
    ActivatePartnerUser {
        /// The invitation (set-password link) id.
        invitation_id: InvitationId,
        /// When the invitation link expires.
        invitation_expires_at: DateTime<Utc>,
        /// Looked up before the command: whether the contact's account is an active partner.
        account_active: bool,
        /// Who activates it.
        actor: Actor,
        /// When.
        at: DateTime<Utc>,
    },
    /// The partner user signed in.
    RecordSignIn {
        /// When.
        at: DateTime<Utc>,
    },
    /// Deactivate the partner user.
    DeactivatePartnerUser {
        /// Who deactivates it.
        actor: Actor,
        /// When.
        at: DateTime<Utc>,
    },
    /// Stop automatic routing to this user (manual assignment still works).
    PauseAutoAssignment {
        /// Optional end of the pause (out of office).
        until: Option<DateTime<Utc>>,
        /// Who pauses.
        actor: Actor,
        /// When.
        at: DateTime<Utc>,
    },
    /// Resume automatic routing.
    ResumeAutoAssignment {
        /// Who resumes.
        actor: Actor,
        /// When.
        at: DateTime<Utc>,
    },
    /// The user forgot their password: a new one-time set-password link (an invitation)
    /// replaces the current one, and the mailer sends it.
    RequestPasswordReset {
        /// The new link's id.
        invitation_id: InvitationId,
        /// When it expires.
        invitation_expires_at: DateTime<Utc>,
        /// When.
        at: DateTime<Utc>,
    },
    /// The user's language and time zone for pages and dates.
    SetPreferences {
        /// The new preferences.
        preferences: Preferences,
        /// Who sets them.
        actor: Actor,
        /// When.
        at: DateTime<Utc>,
    },
}

/// Shortest time between two password resets of one user.
pub const RESET_INTERVAL_SECONDS: i64 = 60;

/// The languages the partner portal speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Language {
    /// English.
    #[default]
    En,
    /// Spanish.
    Es,
}

impl Language {
    /// Every language, in the order pages list them.
    pub const ALL: [Language; 2] = [Language::En, Language::Es];

    /// The language tag (`en`, `es`).
    pub fn tag(self) -> &'static str {
        match self {
            Language::En => "en",
            Language::Es => "es",
        }
    }

    /// The language of a tag (`es`, `es-MX`, `EN`), if spoken.
    pub fn of_tag(tag: &str) -> Option<Language> {
        let primary = tag.split(['-', '_']).next()?.trim();
        Language::ALL
            .into_iter()
            .find(|l| l.tag().eq_ignore_ascii_case(primary))
    }
}

/// A partner user's own settings for pages and dates.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Preferences {
    /// Language; `None` follows the browser.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<Language>,
    /// IANA time zone (`Europe/Madrid`); `None` is UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
}

/// Events of a contact / partner user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum PartnerUserEvent {
    /// A contact was added to a partner account.
    ContactAdded {
        /// Its id.
        user_id: PartnerUserId,
        /// Its org.
        org_id: OrgId,
        /// Its partner account.
        account_id: PartnerAccountId,
        /// Full name.
        name: String,
        /// Normalised (trimmed, lower-case) email.
        email: String,
        /// Who added it.
        actor: Actor,
        /// When.
        at: DateTime<Utc>,
    },
    /// The contact is an active partner user; an invitation was issued.
    PartnerUserActivated {
        /// The invitation (set-password link) id.
        invitation_id: InvitationId,
        /// When the link expires.
        invitation_expires_at: DateTime<Utc>,
        /// Who activated it.
        actor: Actor,
        /// When.
        at: DateTime<Utc>,
    },
    /// The partner user signed in.
    PartnerUserSignedIn {
        /// True for the first sign-in ever (it makes the user assignable).
        first_sign_in: bool,
        /// When.
        at: DateTime<Utc>,
    },
    /// The partner user is no longer active.
    PartnerUserDeactivated {
        /// Who deactivated it.
        actor: Actor,
        /// When.
        at: DateTime<Utc>,
    },
    /// Automatic routing to this user is paused.
    AutoAssignmentPaused {
        /// Optional end of the pause.
        until: Option<DateTime<Utc>>,
        /// Who paused.
        actor: Actor,
        /// When.
        at: DateTime<Utc>,
    },
    /// Automatic routing to this user resumed.
    AutoAssignmentResumed {
        /// Who resumed.
        actor: Actor,
        /// When.
        at: DateTime<Utc>,
    },
    /// A password reset was asked for: this link replaces the current one.
    PasswordResetRequested {
        /// The new link's id.
        invitation_id: InvitationId,
        /// When it expires.
        invitation_expires_at: DateTime<Utc>,
        /// When.
        at: DateTime<Utc>,
    },
    /// The user's preferences changed.
    PreferencesSet {
        /// The new preferences.
        preferences: Preferences,
        /// Who set them.
        actor: Actor,
        /// When.
        at: DateTime<Utc>,
    },
}

// 1.1: `PasswordResetRequested`, `PreferencesSet`.
crate::domain_event!(PartnerUserEvent, version "1.1", {
    ContactAdded => "ContactAdded",
    PartnerUserActivated => "PartnerUserActivated",
    PartnerUserSignedIn => "PartnerUserSignedIn",
    PartnerUserDeactivated => "PartnerUserDeactivated",
    AutoAssignmentPaused => "AutoAssignmentPaused",
    AutoAssignmentResumed => "AutoAssignmentResumed",
    PasswordResetRequested => "PasswordResetRequested",
    PreferencesSet => "PreferencesSet",
});

/// Why a contact / partner-user command is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PartnerUserError {
    /// The contact already exists.
    #[error("the contact already exists")]
    ContactAlreadyExists,
    /// The contact does not exist.
    #[error("the contact does not exist")]
    ContactNotFound,
    /// A name is required.
    #[error("the contact name must not be empty")]
    NameRequired,
    /// The name breaks the limits of a name (`limits::line`).
    #[error("{0}")]
    InvalidName(crate::limits::TextFault),
    /// The email is not an address.
    #[error("the email address is not valid")]
    InvalidEmail,
    /// Only contacts of an active partner account can become partner users.
    #[error("the contact's account is not an active partner")]
    PartnerAccountNotActive,
    /// The invitation would already be expired.
    #[error("the invitation must expire after it is issued")]
    InvitationExpiryInPast,
    /// The user is already an active partner user.
    #[error("the partner user is already active")]
    AlreadyActive,
    /// The user is not an active partner user.
    #[error("the partner user is not active")]
    NotActive,
    /// Auto-assignment is already paused.
    #[error("auto-assignment is already paused for this partner user")]
    AlreadyPaused,
    /// A pause must end after it starts.
    #[error("the pause must end in the future (`until`)")]
    PauseEndsInPast,
    /// Auto-assignment is not paused.
    #[error("auto-assignment is not paused for this partner user")]
    NotPaused,
    /// A password reset was asked for moments ago.
    #[error("a password reset was requested less than a minute ago")]
    ResetTooSoon,
    /// The time zone is not an IANA time zone name.
    #[error("the time zone is not an IANA time zone name (such as Europe/Madrid)")]
    InvalidTimeZone,
}

impl Refusal for PartnerUserError {
    fn describe(&self) -> (&'static str, RefusalKind) {
        use RefusalKind::*;
        match self {
            PartnerUserError::ContactAlreadyExists => ("contact_already_exists", Conflict),
            PartnerUserError::ContactNotFound => ("contact_not_found", NotFound),
            PartnerUserError::NameRequired => ("name_required", InvalidInput),
            PartnerUserError::InvalidName(_) => ("invalid_name", InvalidInput),
            PartnerUserError::InvalidEmail => ("invalid_email", InvalidInput),
            PartnerUserError::PartnerAccountNotActive => ("partner_account_not_active", Conflict),
            PartnerUserError::InvitationExpiryInPast => ("invitation_expiry_in_past", InvalidInput),
            PartnerUserError::AlreadyActive => ("partner_user_already_active", Conflict),
            PartnerUserError::NotActive => ("partner_user_not_active", Conflict),
            PartnerUserError::AlreadyPaused => ("already_paused", Conflict),
            PartnerUserError::PauseEndsInPast => ("pause_ends_in_past", InvalidInput),
            PartnerUserError::NotPaused => ("not_paused", Conflict),
            PartnerUserError::ResetTooSoon => ("reset_too_soon", Conflict),
            PartnerUserError::InvalidTimeZone => ("invalid_time_zone", InvalidInput),
        }
    }
}

/// State of a contact / partner user.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PartnerUser {
    /// Set once the contact exists.
    pub id: Option<PartnerUserId>,
    /// Its org.
    pub org_id: Option<OrgId>,
    /// Its partner account.
    pub account_id: Option<PartnerAccountId>,
    /// Full name.
    pub name: String,
    /// Normalised email.
    pub email: String,
    /// Active as a partner user now.
    pub active: bool,
    /// Signed in at least once.
    pub signed_in_once: bool,
    /// Auto-assignment paused.
    pub paused: bool,
    /// End of the pause (out of office), if it has one; past it the user is available
    /// again to automatic routing.
    #[serde(default)]
    pub paused_until: Option<DateTime<Utc>>,
    /// The latest invitation and its expiry.
    pub invitation: Option<(InvitationId, DateTime<Utc>)>,
    /// When the latest password reset was asked for.
    #[serde(default)]
    pub reset_requested_at: Option<DateTime<Utc>>,
    /// Language and time zone.
    #[serde(default)]
    pub preferences: Preferences,
}

fn normalise_email(email: &str) -> Option<String> {
    let email = email.trim().to_lowercase();
    let (local, domain) = email.split_once('@')?;
    let valid = !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
        && !email.chars().any(char::is_whitespace)
        && crate::limits::text("email", &email, crate::limits::MAX_EMAIL_CHARS).is_ok();
    valid.then_some(email)
}

impl Decider for PartnerUser {
    type Command = PartnerUserCommand;
    type Event = PartnerUserEvent;
    type Error = PartnerUserError;

    fn decide(
        &self,
        command: PartnerUserCommand,
    ) -> Result<Vec<PartnerUserEvent>, PartnerUserError> {
        use PartnerUserCommand as C;
        use PartnerUserError as E;
        use PartnerUserEvent as V;
        ensure(
            self.id.is_some() || matches!(command, C::AddContact { .. }),
            E::ContactNotFound,
        )?;
        match command {
            C::AddContact {
                user_id,
                org_id,
                account_id,
                name,
                email,
                actor,
                at,
            } => {
                ensure(self.id.is_none(), E::ContactAlreadyExists)?;
                let name = required_name(&name, E::NameRequired, E::InvalidName)?;
                let email = normalise_email(&email).ok_or(E::InvalidEmail)?;
                Ok(vec![V::ContactAdded {
                    user_id,
                    org_id,
                    account_id,
                    name,
                    email,
                    actor,
                    at,
                }])
            }
            C::ActivatePartnerUser {
                invitation_id,
                invitation_expires_at,
                account_active,
                actor,
                at,
            } => {
                ensure(!self.active, E::AlreadyActive)?;
                ensure(account_active, E::PartnerAccountNotActive)?;
                ensure(invitation_expires_at > at, E::InvitationExpiryInPast)?;
                Ok(vec![V::PartnerUserActivated {
                    invitation_id,
                    invitation_expires_at,
                    actor,
                    at,
                }])
            }
            C::RecordSignIn { at } => {
                ensure(self.active, E::NotActive)?;
                Ok(vec![V::PartnerUserSignedIn {
                    first_sign_in: !self.signed_in_once,
                    at,
                }])
            }
            C::DeactivatePartnerUser { actor, at } => {
                ensure(self.active, E::NotActive)?;
                Ok(vec![V::PartnerUserDeactivated { actor, at }])
            }
            C::PauseAutoAssignment { until, actor, at } => {
                ensure(until.is_none_or(|until| until > at), E::PauseEndsInPast)?;
                ensure(!self.paused_at(at), E::AlreadyPaused)?;
                Ok(vec![V::AutoAssignmentPaused { until, actor, at }])
            }
            C::ResumeAutoAssignment { actor, at } => {
                ensure(self.paused, E::NotPaused)?;
                Ok(vec![V::AutoAssignmentResumed { actor, at }])
            }
            C::RequestPasswordReset {
                invitation_id,
                invitation_expires_at,
                at,
            } => {
                ensure(self.active, E::NotActive)?;
                ensure(invitation_expires_at > at, E::InvitationExpiryInPast)?;
                let recent = self.reset_requested_at.is_some_and(|last| {
                    at < last + chrono::Duration::seconds(RESET_INTERVAL_SECONDS)
                });
                ensure(!recent, E::ResetTooSoon)?;
                Ok(vec![V::PasswordResetRequested {
                    invitation_id,
                    invitation_expires_at,
                    at,
                }])
            }
            C::SetPreferences {
                preferences,
                actor,
                at,
            } => {
                ensure(self.active, E::NotActive)?;
                let zone_known = preferences
                    .time_zone
                    .as_deref()
                    .is_none_or(|zone| zone.parse::<chrono_tz::Tz>().is_ok());
                ensure(zone_known, E::InvalidTimeZone)?;
                Ok(vec![V::PreferencesSet {
                    preferences,
                    actor,
                    at,
                }])
            }
        }
    }

    fn evolve(&mut self, event: &PartnerUserEvent) {
        match event {
            PartnerUserEvent::ContactAdded {
                user_id,
                org_id,
                account_id,
                name,
                email,
                ..
            } => {
                self.id = Some(*user_id);
                self.org_id = Some(*org_id);
                self.account_id = Some(*account_id);
                self.name = name.clone();
                self.email = email.clone();
            }
            PartnerUserEvent::PartnerUserActivated {
                invitation_id,
                invitation_expires_at,
                ..
            } => {
                self.active = true;
                self.invitation = Some((*invitation_id, *invitation_expires_at));
            }
            PartnerUserEvent::PartnerUserSignedIn { .. } => self.signed_in_once = true,
            PartnerUserEvent::PartnerUserDeactivated { .. } => self.active = false,
            PartnerUserEvent::AutoAssignmentPaused { until, .. } => {
                self.paused = true;
                self.paused_until = *until;
            }
            PartnerUserEvent::AutoAssignmentResumed { .. } => {
                self.paused = false;
                self.paused_until = None;
            }
            PartnerUserEvent::PasswordResetRequested {
                invitation_id,
                invitation_expires_at,
                at,
            } => {
                self.invitation = Some((*invitation_id, *invitation_expires_at));
                self.reset_requested_at = Some(*at);
            }
            PartnerUserEvent::PreferencesSet { preferences, .. } => {
                self.preferences = preferences.clone();
            }
        }
    }
}

crate::cqrs_aggregate!(PartnerUser, "PartnerUser");

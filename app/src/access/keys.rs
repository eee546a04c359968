//! API keys and the `Access` service: roles, principals, orgs created with their first key,
//! key rotation and revocation, and the errors of every credential check.

use super::{secrets, throttle};
use crate::commands::{CommandMeta, Commands, Committed};
use crate::error::AppError;
use chrono::{DateTime, Utc};
use leadroute_domain::ids::{InternalUserId, OrgId, PartnerAccountId, PartnerUserId};
use leadroute_domain::partner_account::PartnerAccount;
use leadroute_domain::partner_user::PartnerUser;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use uuid::Uuid;

/// Prefix of API keys (`lrk_…`).
pub const API_KEY_PREFIX: &str = "lrk_";
/// Prefix of partner session tokens (`lrs_…`).
pub const SESSION_PREFIX: &str = "lrs_";
/// Prefix of set-password link tokens (`lri_…`).
pub const INVITATION_PREFIX: &str = "lri_";
/// Shortest password accepted.
pub const MIN_PASSWORD_LEN: usize = 12;
/// Longest password accepted, in bytes (argon2 input is bounded).
pub const MAX_PASSWORD_LEN: usize = 1024;

/// The role of an API key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything in the org.
    Admin,
    /// The partner accounts they own, and the leads of those accounts.
    ChannelManager,
    /// Upstream systems: create leads, read leads.
    Integration,
}

impl Role {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::ChannelManager => "channel_manager",
            Role::Integration => "integration",
        }
    }

    fn parse(text: &str) -> Option<Role> {
        [Role::Admin, Role::ChannelManager, Role::Integration]
            .into_iter()
            .find(|r| r.as_str() == text)
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// An internal user or integration, by API key.
    Internal {
        /// The key's org.
        org: OrgId,
        /// The key's role.
        role: Role,
        /// The internal user recorded as actor.
        user: InternalUserId,
        /// The key.
        key_id: Uuid,
    },
    /// A signed-in partner user, by session token.
    Partner {
        /// The user's org.
        org: OrgId,
        /// The user.
        user: PartnerUserId,
        /// The user's partner account.
        account: PartnerAccountId,
    },
}

/// An API key as listed (never with its secret).
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct ApiKeyInfo {
    /// The key's id.
    pub key_id: Uuid,
    /// A label.
    pub name: String,
    /// `admin`, `channel_manager` or `integration`.
    pub role: String,
    /// The internal user recorded as actor of its commands (a channel manager's id owns
    /// partner accounts).
    pub internal_user_id: Uuid,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it was revoked.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A created org and its first admin key.
#[derive(Debug)]
pub struct NewOrg {
    /// The org.
    pub org: OrgId,
    /// The `OrgCreated` write.
    pub committed: Committed,
    /// The admin key, listed.
    pub key: ApiKeyInfo,
    /// The admin key's secret, shown once.
    pub secret: String,
}

/// Why authentication or a credential change failed.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    /// Unknown email, wrong password, or an unknown, revoked or expired token.
    #[error("the credentials are not valid")]
    InvalidCredentials,
    /// The set-password link is unknown or was replaced by a newer invitation.
    #[error("the set-password link is not valid")]
    InvitationInvalid,
    /// The set-password link was already used.
    #[error("the set-password link was already used")]
    InvitationUsed,
    /// The set-password link expired.
    #[error("the set-password link has expired")]
    InvitationExpired,
    /// The password is too short.
    #[error("the password must have at least {MIN_PASSWORD_LEN} characters")]
    PasswordTooShort,
    /// The password is too long.
    #[error("the password must have at most {MAX_PASSWORD_LEN} bytes")]
    PasswordTooLong,
    /// Another partner user of the org signs in with this email.
    #[error("another partner user of this org already signs in with this email")]
    EmailInUse,
    /// A command (RecordSignIn) or lookup of the application layer failed.
    #[error(transparent)]
    App(#[from] AppError),
    /// The org's last live admin key may not be revoked.
    #[error("this is the org's last admin key; create another admin key before revoking it")]
    LastAdminKey,
    /// Too many failed sign-ins for this account or from this address; retry after the
    /// duration.
    #[error("too many failed sign-in attempts; retry in {} s", .0.as_secs().max(1))]
    Throttled(Duration),
    /// Every password hasher stayed busy for the longest queue wait.
    #[error("sign-in is busy; retry shortly")]
    Busy,
    /// The credential tables failed.
    #[error("credential store error: {0}")]
    Store(#[from] sqlx::Error),
}

impl AccessError {
    /// Stable code.
    pub fn code(&self) -> &'static str {
        match self {
            AccessError::InvalidCredentials => "invalid_credentials",
            AccessError::InvitationInvalid => "invitation_invalid",
            AccessError::InvitationUsed => "invitation_used",
            AccessError::InvitationExpired => "invitation_expired",
            AccessError::PasswordTooShort => "password_too_short",
            AccessError::PasswordTooLong => "password_too_long",
            AccessError::EmailInUse => "email_in_use",
            AccessError::App(e) => e.code(),
            AccessError::Throttled(_) => "too_many_attempts",
            AccessError::LastAdminKey => "last_admin_key",
            AccessError::Busy => "sign_in_busy",
            AccessError::Store(_) => "store_unavailable",
        }
    }
}

/// The credential store.
#[derive(Clone)]
pub struct Access {
    /// Database with the credential tables.
    pub(super) pool: PgPool,
    /// Loads partner users and records sign-ins.
    pub(super) commands: Commands,
    /// How long a partner session lasts.
    pub(super) session_ttl: Duration,
    /// Bounds concurrent argon2 hashing (memory- and CPU-hard by design): one per core;
    /// a caller waits at most [`HASHING_QUEUE_WAIT`] for one.
    pub(super) hashing: Arc<Semaphore>,
    /// Failed sign-ins per account and source, checked before hashing.
    pub(super) throttle: Arc<throttle::Throttle>,
}

/// Longest wait for a password hasher before the answer is `sign_in_busy` (503).
pub const HASHING_QUEUE_WAIT: Duration = Duration::from_secs(2);

impl Access {
    /// The commands it executes through (sharing their event store and cache).
    pub fn commands(&self) -> &Commands {
        &self.commands
    }

    /// Credentials in `pool`'s database; sessions last `session_ttl`.
    pub fn new(pool: PgPool, commands: Commands, session_ttl: Duration) -> Self {
        Self {
            pool,
            commands,
            session_ttl,
            hashing: Arc::new(Semaphore::new(
                std::thread::available_parallelism().map_or(2, |n| n.get()),
            )),
            throttle: Arc::default(),
        }
    }

    /// Create an API key; returns it listed and its secret (shown once, stored hashed).
    pub async fn create_api_key(
        &self,
        org: OrgId,
        name: &str,
        role: Role,
        user: InternalUserId,
    ) -> Result<(ApiKeyInfo, String), AccessError> {
        let (secret, hash) = secrets::new_token(API_KEY_PREFIX);
        let info = sqlx::query_as(
            "INSERT INTO api_keys (key_id, org_id, name, role, internal_user_id, secret_sha256)
             VALUES ($1, $2, $3, $4, $5, $6)
             RETURNING key_id, name, role, internal_user_id, created_at, revoked_at",
        )
        .bind(Uuid::new_v4())
        .bind(org.0)
        .bind(name)
        .bind(role.as_str())
        .bind(user.0)
        .bind(hash.as_slice())
        .fetch_one(&self.pool)
        .await?;
        Ok((info, secret))
    }

    /// The API keys of `org`, oldest first.
    pub async fn api_keys(&self, org: OrgId) -> Result<Vec<ApiKeyInfo>, AccessError> {
        Ok(sqlx::query_as(
            "SELECT key_id, name, role, internal_user_id, created_at, revoked_at
               FROM api_keys WHERE org_id = $1 ORDER BY created_at, key_id",
        )
        .bind(org.0)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Revoke a key of `org`; false when there is no such key. The org's last live admin
    /// key is never revoked (`last_admin_key`): mint another first (or, as an operator,
    /// `leadroute org rekey`).
    pub async fn revoke_api_key(&self, org: OrgId, key_id: Uuid) -> Result<bool, AccessError> {
        let mut tx = self.pool.begin().await?;
        // One revocation per org at a time, so two admins cannot revoke each other's last key.
        sqlx::query(
            "SELECT pg_advisory_xact_lock(hashtextextended('leadroute.api_keys.' || $1::text, 0))",
        )
        .bind(org.0)
        .execute(&mut *tx)
        .await?;
        let live_admins_left: Option<i64> = sqlx::query_scalar(
            "SELECT count(*) FILTER (WHERE role = 'admin' AND revoked_at IS NULL AND key_id <> $2)
               FROM api_keys WHERE org_id = $1
             HAVING bool_or(key_id = $2 AND role = 'admin' AND revoked_at IS NULL)",
        )
        .bind(org.0)
        .bind(key_id)
        .fetch_optional(&mut *tx)
        .await?;
        if live_admins_left == Some(0) {
            return Err(AccessError::LastAdminKey);
        }
        let done = sqlx::query(
            "UPDATE api_keys SET revoked_at = coalesce(revoked_at, clock_timestamp())
              WHERE org_id = $1 AND key_id = $2",
        )
        .bind(org.0)
        .bind(key_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    /// The first admin key of `org`, listed (what an idempotent repeat of its creation
    /// names).
    pub async fn first_admin_key(&self, org: OrgId) -> Result<Option<ApiKeyInfo>, AccessError> {
        Ok(sqlx::query_as(
            "SELECT key_id, name, role, internal_user_id, created_at, revoked_at
               FROM api_keys WHERE org_id = $1 AND role = 'admin'
              ORDER BY created_at, key_id LIMIT 1",
        )
        .bind(org.0)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Revoke every live key of `org` called `name`; returns how many.
    pub async fn revoke_api_keys_named(&self, org: OrgId, name: &str) -> Result<u64, AccessError> {
        let done = sqlx::query(
            "UPDATE api_keys SET revoked_at = clock_timestamp()
              WHERE org_id = $1 AND name = $2 AND revoked_at IS NULL",
        )
        .bind(org.0)
        .bind(name)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// The caller a bearer token stands for: a live API key or an unexpired session.
    pub async fn authenticate(&self, token: &str) -> Result<Principal, AccessError> {
        let hash = secrets::sha256(token);
        if token.starts_with(API_KEY_PREFIX) {
            let row: Option<(Uuid, String, Uuid, Uuid)> = sqlx::query_as(
                "SELECT org_id, role, internal_user_id, key_id FROM api_keys
                  WHERE secret_sha256 = $1 AND revoked_at IS NULL",
            )
            .bind(hash.as_slice())
            .fetch_optional(&self.pool)
            .await?;
            if let Some((org, role, user, key_id)) = row {
                let role = Role::parse(&role).ok_or(AccessError::InvalidCredentials)?;
                return Ok(Principal::Internal {
                    org: OrgId(org),
                    role,
                    user: InternalUserId(user),
                    key_id,
                });
            }
        } else if token.starts_with(SESSION_PREFIX) {
            let row: Option<(Uuid, Uuid, Uuid)> = sqlx::query_as(
                "SELECT org_id, user_id, account_id FROM sessions
                  WHERE token_sha256 = $1 AND expires_at > clock_timestamp()",
            )
            .bind(hash.as_slice())
            .fetch_optional(&self.pool)
            .await?;
            if let Some((org, user, account)) = row {
                let (org, user, account) =
                    (OrgId(org), PartnerUserId(user), PartnerAccountId(account));
                // Deactivating the user or their account ends the session at once, whatever
                // raced with it.
                let still_active = self.commands.state::<PartnerUser>(org, user).await?.active
                    && self
                        .commands
                        .state::<PartnerAccount>(org, account)
                        .await?
                        .active;
                if still_active {
                    return Ok(Principal::Partner { org, user, account });
                }
            }
        }
        Err(AccessError::InvalidCredentials)
    }

    /// Create an org and its first admin API key (printed once by `leadroute org create`,
    /// returned once by `POST /v1/orgs`).
    pub async fn create_org(
        &self,
        meta: &CommandMeta,
        name: &str,
        slug: Option<&str>,
    ) -> Result<NewOrg, AccessError> {
        self.create_org_with_id(meta, OrgId::new_random(), name, slug)
            .await
    }

    /// [`Access::create_org`] under a given id (an idempotent creation derives it from its
    /// key): refused with `org_already_exists` when it exists. `slug` addresses the org in
    /// partner links (`None`: the one its name suggests).
    pub async fn create_org_with_id(
        &self,
        meta: &CommandMeta,
        org: OrgId,
        name: &str,
        slug: Option<&str>,
    ) -> Result<NewOrg, AccessError> {
        let committed = self
            .commands
            .create_org_with_slug(meta, org, name, slug)
            .await?;
        let admin = InternalUserId::new_random();
        let (key, secret) = self
            .create_api_key(org, "first admin key", Role::Admin, admin)
            .await?;
        Ok(NewOrg {
            org,
            committed,
            key,
            secret,
        })
    }

    /// A new admin key for an existing org (`leadroute org rekey`, for operators).
    pub async fn rekey(&self, org: OrgId) -> Result<(ApiKeyInfo, String), AccessError> {
        self.commands
            .state::<leadroute_domain::org::Org>(org, org)
            .await?;
        self.create_api_key(
            org,
            "operator rekey",
            Role::Admin,
            InternalUserId::new_random(),
        )
        .await
    }

    /// End every session of the users of a partner account (on its deactivation, so that
    /// a reactivation never revives them).
    pub async fn end_account_sessions(
        &self,
        account: PartnerAccountId,
    ) -> Result<u64, AccessError> {
        let done = sqlx::query("DELETE FROM sessions WHERE account_id = $1")
            .bind(account.0)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    /// Forget a partner user's password and end their sessions (on reactivation: the user
    /// sets a new password through the new invitation's link).
    pub async fn forget_password(&self, user: PartnerUserId) -> Result<(), AccessError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM partner_credentials WHERE user_id = $1")
            .bind(user.0)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM sessions WHERE user_id = $1")
            .bind(user.0)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// End every session of a partner user (on deactivation).
    pub async fn end_sessions(&self, user: PartnerUserId) -> Result<u64, AccessError> {
        let done = sqlx::query("DELETE FROM sessions WHERE user_id = $1")
            .bind(user.0)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}

//! Partner users' passwords: the one-time set-password link of an invitation, argon2id
//! hashes, and sign-in, which records `RecordSignIn` and opens an expiring session.
//! Password hashing runs on the blocking pool, never on the async workers.

use super::keys::{
    Access, AccessError, INVITATION_PREFIX, MAX_PASSWORD_LEN, MIN_PASSWORD_LEN, SESSION_PREFIX,
};
use super::secrets::{new_token, random_bytes, sha256};
use crate::commands::CommandMeta;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use chrono::{DateTime, Utc};
use leadroute_domain::ids::{Actor, OrgId, PartnerAccountId, PartnerUserId};
use leadroute_domain::limits;
use leadroute_domain::partner_user::PartnerUser;
use std::sync::OnceLock;
use uuid::Uuid;

/// An invitation as stored: id, org, user, expiry, use.
type InvitationRow = (Uuid, Uuid, Uuid, DateTime<Utc>, Option<DateTime<Utc>>);

/// A successful sign-in.
#[derive(Debug, Clone)]
pub struct SignedIn {
    /// The bearer token (shown once, stored hashed).
    pub token: String,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
    /// Who signed in.
    pub user: PartnerUserId,
    /// Their partner account.
    pub account: PartnerAccountId,
}

impl Access {
    /// Issue the set-password link token of a partner user's current invitation (the
    /// mailer does this when it sends the access email). A second issue replaces the first
    /// link; a used invitation issues nothing.
    pub async fn issue_invitation_link(
        &self,
        org: OrgId,
        user: PartnerUserId,
    ) -> Result<String, AccessError> {
        let state = self.commands.state::<PartnerUser>(org, user).await?;
        let (invitation, expires_at) = match state.invitation {
            Some(invitation) if state.active => invitation,
            _ => return Err(AccessError::InvitationInvalid),
        };
        let (token, hash) = new_token(INVITATION_PREFIX);
        let issued = sqlx::query(
            "INSERT INTO invitations (invitation_id, org_id, user_id, token_sha256, expires_at)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (invitation_id) DO UPDATE
                SET token_sha256 = excluded.token_sha256, issued_at = clock_timestamp()
              WHERE invitations.used_at IS NULL",
        )
        .bind(invitation.0)
        .bind(org.0)
        .bind(user.0)
        .bind(hash.as_slice())
        .bind(expires_at)
        .execute(&self.pool)
        .await?;
        match issued.rows_affected() {
            1 => Ok(token),
            _ => Err(AccessError::InvitationUsed),
        }
    }

    /// Set a partner user's password through a set-password link: once, before it expires,
    /// while it is the user's current invitation and the user is active.
    pub async fn set_password(&self, token: &str, password: &str) -> Result<(), AccessError> {
        check_length(password)?;
        // Judge the link before spending a hash on it; the locked re-read below decides.
        self.invitation(&mut *self.pool.acquire().await?, token, false)
            .await?;
        let password_hash = self.hash_password(password).await?;
        let mut tx = self.pool.begin().await?;
        let (invitation, org, user) = self.invitation(&mut tx, token, true).await?;
        let state = self.commands.state::<PartnerUser>(org, user).await?;
        let (Some((current, _)), Some(account)) = (state.invitation, state.account_id) else {
            return Err(AccessError::InvitationInvalid);
        };
        if current.0 != invitation || !state.active {
            return Err(AccessError::InvitationInvalid);
        }
        sqlx::query(
            "INSERT INTO partner_credentials (user_id, org_id, account_id, email, password_hash)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (user_id) DO UPDATE
                SET email = excluded.email, password_hash = excluded.password_hash,
                    set_at = clock_timestamp()",
        )
        .bind(user.0)
        .bind(org.0)
        .bind(account.0)
        .bind(&state.email)
        .bind(&password_hash)
        .execute(&mut *tx)
        .await
        .map_err(|e| match e.as_database_error().and_then(|d| d.code()) {
            Some(code) if code == "23505" => AccessError::EmailInUse,
            _ => e.into(),
        })?;
        sqlx::query("UPDATE invitations SET used_at = clock_timestamp() WHERE invitation_id = $1")
            .bind(invitation)
            .execute(&mut *tx)
            .await?;
        // A new password (a reset) ends every session opened with the old one.
        sqlx::query("DELETE FROM sessions WHERE user_id = $1")
            .bind(user.0)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Whether a set-password link still works: `Ok` when it does, else why not
    /// (`invitation_used`, `invitation_expired`, `invitation_invalid`).
    pub async fn check_invitation(&self, token: &str) -> Result<(), AccessError> {
        self.invitation(&mut *self.pool.acquire().await?, token, false)
            .await
            .map(|_| ())
    }

    /// End the session of `token` (signing out); an unknown token ends nothing.
    pub async fn sign_out(&self, token: &str) -> Result<(), AccessError> {
        sqlx::query("DELETE FROM sessions WHERE token_sha256 = $1")
            .bind(sha256(token).as_slice())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The unused, unexpired invitation a link token stands for (row-locked when `lock`).
    async fn invitation(
        &self,
        conn: &mut sqlx::PgConnection,
        token: &str,
        lock: bool,
    ) -> Result<(Uuid, OrgId, PartnerUserId), AccessError> {
        let lock = if lock { "FOR UPDATE" } else { "" };
        let row: Option<InvitationRow> = sqlx::query_as(&format!(
            "SELECT invitation_id, org_id, user_id, expires_at, used_at FROM invitations
              WHERE token_sha256 = $1 {lock}"
        ))
        .bind(sha256(token).as_slice())
        .fetch_optional(conn)
        .await?;
        let (invitation, org, user, expires_at, used_at) =
            row.ok_or(AccessError::InvitationInvalid)?;
        if used_at.is_some() {
            return Err(AccessError::InvitationUsed);
        }
        if expires_at <= Utc::now() {
            return Err(AccessError::InvitationExpired);
        }
        Ok((invitation, OrgId(org), PartnerUserId(user)))
    }

    /// Sign a partner user in with email and password from `source` (the client address,
    /// for throttling): records `RecordSignIn` and opens a session. Throttled before any
    /// hashing (`too_many_attempts`); an unknown email, a wrong password, an inactive user
    /// and an inactive account all answer `invalid_credentials` alike.
    pub async fn sign_in(
        &self,
        org: OrgId,
        email: &str,
        password: &str,
        source: Option<std::net::IpAddr>,
    ) -> Result<SignedIn, AccessError> {
        let email = email.trim().to_lowercase();
        let key = (
            org.0,
            email.chars().take(limits::MAX_EMAIL_CHARS + 1).collect(),
        );
        self.throttle
            .check(&key, source)
            .map_err(AccessError::Throttled)?;
        let row: Option<(Uuid, Uuid, String)> =
            if email.chars().count() > limits::MAX_EMAIL_CHARS || email.contains('\0') {
                None
            } else {
                sqlx::query_as(
                    "SELECT user_id, account_id, password_hash FROM partner_credentials
                  WHERE org_id = $1 AND email = $2",
                )
                .bind(org.0)
                .bind(&email)
                .fetch_optional(&self.pool)
                .await?
            };
        // An unknown email costs one verification too, so timing tells nothing.
        let stored = row
            .as_ref()
            .map_or(dummy_hash(), |(_, _, hash)| hash.clone());
        let matches = self.verify_password(password, stored).await?;
        let active = match row.filter(|_| matches) {
            Some((user, account, _)) => {
                let (user, account) = (PartnerUserId(user), PartnerAccountId(account));
                self.may_sign_in(org, user, account)
                    .await?
                    .then_some((user, account))
            }
            None => None,
        };
        let Some((user, account)) = active else {
            self.throttle.failed(&key, source);
            return Err(AccessError::InvalidCredentials);
        };
        self.throttle.succeeded(&key);
        let meta = CommandMeta::now(Actor::PartnerUser(user));
        match self.commands.record_sign_in(&meta, org, user).await {
            // Deactivated in between: the same answer as any refused sign-in.
            Err(crate::AppError::Refused { .. }) => return Err(AccessError::InvalidCredentials),
            other => other?,
        };
        let (token, hash) = new_token(SESSION_PREFIX);
        let expires_at = meta.at + self.session_ttl;
        sqlx::query(
            "INSERT INTO sessions (token_sha256, org_id, user_id, account_id, expires_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(hash.as_slice())
        .bind(org.0)
        .bind(user.0)
        .bind(account.0)
        .bind(expires_at)
        .execute(&self.pool)
        .await?;
        Ok(SignedIn {
            token,
            expires_at,
            user,
            account,
        })
    }
}

impl Access {
    /// Whether the user and their account are both active (and the user still belongs to
    /// that account).
    async fn may_sign_in(
        &self,
        org: OrgId,
        user: PartnerUserId,
        account: PartnerAccountId,
    ) -> Result<bool, AccessError> {
        let user_state = self.commands.state::<PartnerUser>(org, user).await?;
        let account_state = self
            .commands
            .state::<leadroute_domain::partner_account::PartnerAccount>(org, account)
            .await?;
        Ok(user_state.active && user_state.account_id == Some(account) && account_state.active)
    }

    /// A password hasher, waiting at most [`super::keys::HASHING_QUEUE_WAIT`].
    async fn hasher(&self) -> Result<tokio::sync::SemaphorePermit<'_>, AccessError> {
        tokio::time::timeout(super::keys::HASHING_QUEUE_WAIT, self.hashing.acquire())
            .await
            .map_err(|_| AccessError::Busy)
            .map(|permit| permit.expect("the semaphore is never closed"))
    }
}

fn check_length(password: &str) -> Result<(), AccessError> {
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(AccessError::PasswordTooShort);
    }
    if password.len() > MAX_PASSWORD_LEN {
        return Err(AccessError::PasswordTooLong);
    }
    Ok(())
}

impl Access {
    async fn hash_password(&self, password: &str) -> Result<String, AccessError> {
        let _permit = self.hasher().await?;
        let password = password.to_string();
        tokio::task::spawn_blocking(move || {
            let salt =
                SaltString::encode_b64(&random_bytes::<16>()).expect("16 bytes is a valid salt");
            Argon2::default()
                .hash_password(password.as_bytes(), &salt)
                .map(|hash| hash.to_string())
                .expect("argon2 with default parameters hashes any bounded input")
        })
        .await
        .map_err(|e| AccessError::App(crate::AppError::Store(Box::new(e))))
    }

    async fn verify_password(&self, password: &str, stored: String) -> Result<bool, AccessError> {
        if password.len() > MAX_PASSWORD_LEN {
            return Ok(false);
        }
        let _permit = self.hasher().await?;
        let password = password.to_string();
        Ok(tokio::task::spawn_blocking(move || {
            PasswordHash::new(&stored).is_ok_and(|parsed| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            })
        })
        .await
        .unwrap_or(false))
    }
}

/// A hash of a random password, verified against when the email is unknown.
fn dummy_hash() -> String {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY
        .get_or_init(|| {
            let salt = SaltString::encode_b64(&random_bytes::<16>()).expect("valid salt");
            Argon2::default()
                .hash_password(&random_bytes::<16>(), &salt)
                .map(|hash| hash.to_string())
                .expect("argon2 hashes 16 bytes")
        })
        .clone()
}

//! Partner sign-in: set the password through the one-time link, sign in for an expiring
//! bearer token (each sign-in records `RecordSignIn`), and `GET /v1/me`.

use crate::caller::Caller;
use crate::extract::{ClientIp, Json};
use crate::problem::ApiError;
use crate::state::ApiState;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use leadroute_app::access::{Principal, SignedIn};
use leadroute_domain::ids::OrgId;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

pub(super) fn public() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(set_password))
        .routes(routes!(sign_in))
}

pub(super) fn authenticated() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new().routes(routes!(me))
}

/// A password set through the invitation link.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SetPassword {
    /// The token of the set-password link.
    token: String,
    /// The new password (at least 12 characters, at most 1024 bytes).
    #[schema(min_length = 12, max_length = 1024)]
    password: String,
}

/// Set a partner user's password with the one-time link of their invitation. A used,
/// expired or replaced link is refused (`invitation_used`, `invitation_expired`,
/// `invitation_invalid`).
#[utoipa::path(post, path = "/v1/auth/set-password", tag = "auth", request_body = SetPassword,
    security(()),
    responses((status = 204), (status = 404, body = crate::Problem),
        (status = 409, body = crate::Problem), (status = 410, body = crate::Problem),
        (status = 422, body = crate::Problem)))]
async fn set_password(
    State(state): State<ApiState>,
    Json(body): Json<SetPassword>,
) -> Result<StatusCode, ApiError> {
    state
        .access
        .set_password(&body.token, &body.password)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Partner-user credentials.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SignIn {
    /// The partner user's org.
    org_id: Uuid,
    /// Email address.
    email: String,
    /// Password.
    password: String,
}

/// A partner session.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Session {
    /// Bearer token: `Authorization: Bearer <token>`.
    token: String,
    /// When it expires.
    expires_at: DateTime<Utc>,
    /// The signed-in partner user.
    partner_user_id: Uuid,
    /// Their partner account.
    partner_account_id: Uuid,
}

/// Sign a partner user in; the first sign-in makes the user assignable. An unknown email,
/// a wrong password and an inactive user or account all answer `invalid_credentials`.
/// After 5 failures for one account in 5 minutes, or 20 from one address in a minute, the
/// answer is 429 `too_many_attempts` with `Retry-After` (no password is checked then).
#[utoipa::path(post, path = "/v1/auth/sign-in", tag = "auth", request_body = SignIn,
    security(()),
    responses((status = 200, body = Session), (status = 401, body = crate::Problem),
        (status = 422, body = crate::Problem), (status = 429, body = crate::Problem),
        (status = 503, body = crate::Problem)))]
async fn sign_in(
    State(state): State<ApiState>,
    ClientIp(source): ClientIp,
    Json(body): Json<SignIn>,
) -> Result<axum::Json<Session>, ApiError> {
    let SignedIn {
        token,
        expires_at,
        user,
        account,
    } = state
        .access
        .sign_in(OrgId(body.org_id), &body.email, &body.password, source)
        .await?;
    Ok(axum::Json(Session {
        token,
        expires_at,
        partner_user_id: user.0,
        partner_account_id: account.0,
    }))
}

/// The caller.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Me {
    /// The caller's org.
    org_id: Uuid,
    /// `admin`, `channel_manager`, `integration` or `partner_user`.
    role: String,
    /// Internal user id (API keys) or partner user id.
    user_id: Uuid,
    /// The partner account (partner users only).
    partner_account_id: Option<Uuid>,
}

/// Who the bearer token stands for.
#[utoipa::path(get, path = "/v1/me", tag = "auth", responses((status = 200, body = Me)))]
async fn me(caller: Caller) -> axum::Json<Me> {
    axum::Json(match caller.0 {
        Principal::Internal {
            org, role, user, ..
        } => Me {
            org_id: org.0,
            role: role.as_str().to_string(),
            user_id: user.0,
            partner_account_id: None,
        },
        Principal::Partner { org, user, account } => Me {
            org_id: org.0,
            role: "partner_user".to_string(),
            user_id: user.0,
            partner_account_id: Some(account.0),
        },
    })
}

//! API keys of the caller's org (admin only): create (the secret is shown once), list,
//! revoke.

use crate::caller::{AdminRole, Allowed, Caller};
use crate::extract::{Json, Path};
use crate::idempotency::ShownOnce;
use crate::problem::ApiError;
use crate::state::ApiState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use leadroute_app::access::{ApiKeyInfo, Role};
use leadroute_domain::ids::InternalUserId;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

pub(super) fn router() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(create_key, list_keys))
        .routes(routes!(revoke_key))
}

/// A key to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateKey {
    /// A label.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$"
    )]
    name: String,
    /// Its role.
    role: Role,
    /// The internal user it acts as (a channel manager's id is the one partner accounts
    /// name as their manager); a new id when omitted.
    internal_user_id: Option<Uuid>,
}

/// A created key.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CreatedKey {
    /// The key, listed.
    key: ApiKeyInfo,
    /// `Authorization: Bearer <secret>`. Shown once; only its hash is stored.
    secret: String,
}

/// Create an API key (admin).
#[utoipa::path(post, path = "/v1/api-keys", tag = "api keys", request_body = CreateKey,
    responses((status = 201, body = CreatedKey)))]
async fn create_key(
    State(state): State<ApiState>,
    caller: Caller,
    _: Allowed<AdminRole>,
    Json(body): Json<CreateKey>,
) -> Result<Response, ApiError> {
    caller.internal(&[Role::Admin])?;
    let name = leadroute_domain::limits::line(
        "name",
        &body.name,
        leadroute_domain::limits::MAX_NAME_CHARS,
    )
    .map_err(|fault| ApiError::invalid("body.name", fault.to_string()))?;
    let user = body
        .internal_user_id
        .map_or_else(InternalUserId::new_random, InternalUserId);
    let (key, secret) = state
        .access
        .create_api_key(caller.org(), &name, body.role, user)
        .await?;
    let mut response =
        (StatusCode::CREATED, axum::Json(CreatedKey { key, secret })).into_response();
    response.extensions_mut().insert(ShownOnce);
    Ok(response)
}

/// The org's API keys, without secrets (admin).
#[utoipa::path(get, path = "/v1/api-keys", tag = "api keys",
    responses((status = 200, body = Vec<ApiKeyInfo>)))]
async fn list_keys(
    State(state): State<ApiState>,
    caller: Caller,
) -> Result<axum::Json<Vec<ApiKeyInfo>>, ApiError> {
    caller.internal(&[Role::Admin])?;
    Ok(axum::Json(state.access.api_keys(caller.org()).await?))
}

/// Revoke an API key (admin); it stops working at once.
#[utoipa::path(delete, path = "/v1/api-keys/{key_id}", tag = "api keys",
    params(("key_id" = Uuid, Path, description = "The key")),
    responses((status = 204), (status = 404, body = crate::Problem)))]
async fn revoke_key(
    State(state): State<ApiState>,
    caller: Caller,
    Path(key_id): Path<Uuid>,
) -> Result<StatusCode, ApiError> {
    caller.internal(&[Role::Admin])?;
    match state.access.revoke_api_key(caller.org(), key_id).await? {
        true => Ok(StatusCode::NO_CONTENT),
        false => Err(ApiError::not_found("api_key_not_found", "api_key", key_id)),
    }
}

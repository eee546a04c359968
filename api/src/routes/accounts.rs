//! Partner accounts: create, activate as partner, deactivate, hand to another channel
//! manager, add contacts, and the directory of accounts. Admins act on every account of
//! the org, channel managers on the accounts they own.

use crate::caller::{Allowed, Caller, StaffRole};
use crate::extract::{Json, Path, Query};
use crate::problem::ApiError;
use crate::reads::{MinPosition, Written};
use crate::state::ApiState;
use crate::views::{self, DirectoryAccount};
use axum::extract::State;
use axum::http::StatusCode;
use leadroute_app::access::Role;
use leadroute_app::{NewContact, NewPartnerAccount};
use leadroute_domain::ids::{InternalUserId, PartnerAccountId, PartnerUserId};
use leadroute_projections::projectors::DIRECTORY;
use leadroute_projections::queries;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

pub(super) fn router() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(create_account, list_accounts))
        .routes(routes!(activate_account))
        .routes(routes!(deactivate_account))
        .routes(routes!(change_manager))
        .routes(routes!(add_contact))
}

/// A partner account to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateAccount {
    /// Display name.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$"
    )]
    name: String,
    /// Owning channel manager (internal user id). Admins must name one; a channel manager
    /// may only name themself, the default.
    channel_manager: Option<Uuid>,
    /// Territory.
    #[serde(default)]
    territory: String,
    /// Tier.
    #[serde(default)]
    tier: String,
}

/// Create a partner account (admin, channel manager).
#[utoipa::path(post, path = "/v1/partner-accounts", tag = "partner accounts",
    request_body = CreateAccount, responses((status = 201, body = Written)))]
async fn create_account(
    State(state): State<ApiState>,
    caller: Caller,
    _: Allowed<StaffRole>,
    Json(body): Json<CreateAccount>,
) -> Result<(StatusCode, axum::Json<Written>), ApiError> {
    let (role, me) = caller.internal(&[Role::Admin, Role::ChannelManager])?;
    let channel_manager = match (role, body.channel_manager) {
        (Role::ChannelManager, Some(other)) if other != me.0 => {
            return Err(ApiError::invalid(
                "body.channel_manager",
                "a channel manager creates accounts for themself",
            ))
        }
        (_, Some(id)) => InternalUserId(id),
        (Role::ChannelManager, None) => me,
        (_, None) => return Err(ApiError::invalid("body.channel_manager", "required")),
    };
    let new = NewPartnerAccount {
        account_id: PartnerAccountId::new_random(),
        name: body.name,
        channel_manager,
        territory: body.territory,
        tier: body.tier,
    };
    let committed = state
        .commands
        .create_partner_account(&caller.meta(), caller.org(), &new)
        .await?;
    let written = state.written(new.account_id.0, committed).await?;
    Ok((StatusCode::CREATED, axum::Json(written)))
}

/// The partner accounts the caller manages (admin: all of the org).
#[utoipa::path(get, path = "/v1/partner-accounts", tag = "partner accounts",
    params(MinPosition), responses((status = 200, body = Vec<DirectoryAccount>)))]
async fn list_accounts(
    State(state): State<ApiState>,
    caller: Caller,
    Query(min): Query<MinPosition>,
) -> Result<axum::Json<Vec<DirectoryAccount>>, ApiError> {
    let (role, me) = caller.internal(&[Role::Admin, Role::ChannelManager])?;
    state.caught_up(&[DIRECTORY], &min).await?;
    let accounts = queries::partner_accounts(&state.pool, caller.org()).await?;
    Ok(axum::Json(views::all(
        accounts
            .into_iter()
            .filter(|a| role == Role::Admin || a.channel_manager == me.0)
            .collect(),
    )))
}

/// Activate an account as a partner (`ActivatePartner`); refused with `prm_not_enabled`
/// until the org enabled PRM.
#[utoipa::path(post, path = "/v1/partner-accounts/{id}/activate", tag = "partner accounts",
    params(("id" = Uuid, Path)), responses((status = 200, body = Written)))]
async fn activate_account(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<Written>, ApiError> {
    let id = PartnerAccountId(id);
    caller.managed_account(&state, id).await?;
    let committed = state
        .commands
        .activate_partner(&caller.meta(), caller.org(), id)
        .await?;
    Ok(axum::Json(state.written(id.0, committed).await?))
}

/// Deactivate a partner account: its users stop being assignable.
#[utoipa::path(post, path = "/v1/partner-accounts/{id}/deactivate", tag = "partner accounts",
    params(("id" = Uuid, Path)), responses((status = 200, body = Written)))]
async fn deactivate_account(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<Written>, ApiError> {
    let id = PartnerAccountId(id);
    caller.managed_account(&state, id).await?;
    let committed = state
        .commands
        .deactivate_partner(&caller.meta(), caller.org(), id)
        .await?;
    // Sessions of an inactive account no longer authenticate; ending them means a later
    // reactivation does not revive them.
    state.access.end_account_sessions(id).await?;
    Ok(axum::Json(state.written(id.0, committed).await?))
}

/// A new owning channel manager.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ChangeManager {
    /// The internal user id of the channel manager.
    channel_manager: Uuid,
}

/// Hand a partner account to another channel manager.
#[utoipa::path(put, path = "/v1/partner-accounts/{id}/channel-manager", tag = "partner accounts",
    params(("id" = Uuid, Path)), request_body = ChangeManager,
    responses((status = 200, body = Written)))]
async fn change_manager(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    _: Allowed<StaffRole>,
    Json(body): Json<ChangeManager>,
) -> Result<axum::Json<Written>, ApiError> {
    let id = PartnerAccountId(id);
    caller.managed_account(&state, id).await?;
    let committed = state
        .commands
        .change_channel_manager(
            &caller.meta(),
            caller.org(),
            id,
            InternalUserId(body.channel_manager),
        )
        .await?;
    Ok(axum::Json(state.written(id.0, committed).await?))
}

/// A contact to add.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AddContact {
    /// Full name.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$"
    )]
    name: String,
    /// Email address (the partner user's sign-in name).
    email: String,
}

/// Add a contact to a partner account; `id` of the answer is the contact's (and later the
/// partner user's) id.
#[utoipa::path(post, path = "/v1/partner-accounts/{id}/contacts", tag = "partner accounts",
    params(("id" = Uuid, Path)), request_body = AddContact,
    responses((status = 201, body = Written)))]
async fn add_contact(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    _: Allowed<StaffRole>,
    Json(body): Json<AddContact>,
) -> Result<(StatusCode, axum::Json<Written>), ApiError> {
    let account_id = PartnerAccountId(id);
    caller.managed_account(&state, account_id).await?;
    let new = NewContact {
        user_id: PartnerUserId::new_random(),
        account_id,
        name: body.name,
        email: body.email,
    };
    let committed = state
        .commands
        .add_contact(&caller.meta(), caller.org(), &new)
        .await?;
    let written = state.written(new.user_id.0, committed).await?;
    Ok((StatusCode::CREATED, axum::Json(written)))
}

//! Partner users: the directory (with the `assignable=true` filter used to pick an owner),
//! activation with a one-time invitation, deactivation, pause and resume of automatic
//! routing, and a partner user's inbox.

use crate::caller::{Allowed, Caller, StaffRole};
use crate::extract::{Json, Path, Query};
use crate::problem::ApiError;
use crate::reads::{MinPosition, Written};
use crate::state::ApiState;
use crate::views::{self, DirectoryUser, InboxItem};
use axum::extract::State;
use chrono::Datelike;
use chrono::{DateTime, Utc};
use leadroute_app::access::Role;
use leadroute_domain::ids::{InvitationId, PartnerUserId};
use leadroute_projections::projectors::leads::status;
use leadroute_projections::projectors::{DIRECTORY, LEADS};
use leadroute_projections::queries::{self, InboxQuery};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

pub(super) fn router() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(list_users))
        .routes(routes!(activate_user))
        .routes(routes!(deactivate_user))
        .routes(routes!(pause_user))
        .routes(routes!(resume_user))
        .routes(routes!(inbox))
}

/// Directory filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct UserFilter {
    /// Only users who may receive a lead now (active, signed in once, account active, not
    /// paused).
    #[serde(default)]
    assignable: bool,
}

/// The partner users the caller manages (admin: all of the org).
#[utoipa::path(get, path = "/v1/partner-users", tag = "partner users",
    params(UserFilter, MinPosition), responses((status = 200, body = Vec<DirectoryUser>)))]
async fn list_users(
    State(state): State<ApiState>,
    caller: Caller,
    Query(filter): Query<UserFilter>,
    Query(min): Query<MinPosition>,
) -> Result<axum::Json<Vec<DirectoryUser>>, ApiError> {
    let (role, me) = caller.internal(&[Role::Admin, Role::ChannelManager])?;
    state.caught_up(&[DIRECTORY], &min).await?;
    let users = queries::partner_users(&state.pool, caller.org(), filter.assignable).await?;
    let users = match role {
        Role::ChannelManager => {
            let mine: Vec<Uuid> = queries::partner_accounts(&state.pool, caller.org())
                .await?
                .into_iter()
                .filter(|a| a.channel_manager == me.0)
                .map(|a| a.account_id)
                .collect();
            users
                .into_iter()
                .filter(|u| mine.contains(&u.account_id))
                .collect()
        }
        _ => users,
    };
    Ok(axum::Json(views::all(users)))
}

/// Activation options.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Activate {
    /// Hours the set-password link stays valid (1 to 720, default 72).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 720)]
    invitation_valid_hours: Option<i64>,
}

/// Activate a contact as a partner user; the access email with a one-time set-password
/// link follows. Refused with `partner_account_not_active` unless its account is an
/// active partner.
#[utoipa::path(post, path = "/v1/partner-users/{id}/activate", tag = "partner users",
    params(("id" = Uuid, Path)), request_body = Activate,
    responses((status = 200, body = Written)))]
async fn activate_user(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    _: Allowed<StaffRole>,
    Json(body): Json<Activate>,
) -> Result<axum::Json<Written>, ApiError> {
    let id = PartnerUserId(id);
    caller.managed_user(&state, id).await?;
    let hours = body.invitation_valid_hours.unwrap_or(72);
    if !(1..=720).contains(&hours) {
        return Err(ApiError::invalid(
            "body.invitation_valid_hours",
            "must be 1 to 720",
        ));
    }
    let meta = caller.meta();
    let expires = meta.at + chrono::Duration::hours(hours);
    let committed = state
        .commands
        .activate_partner_user(&meta, caller.org(), id, InvitationId::new_random(), expires)
        .await?;
    // A reactivated user sets a new password through the new invitation's link (a first
    // activation has none to forget).
    state.access.forget_password(id).await?;
    Ok(axum::Json(state.written(id.0, committed).await?))
}

/// Deactivate a partner user: no longer assignable, and signed out everywhere.
#[utoipa::path(post, path = "/v1/partner-users/{id}/deactivate", tag = "partner users",
    params(("id" = Uuid, Path)), responses((status = 200, body = Written)))]
async fn deactivate_user(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<Written>, ApiError> {
    let id = PartnerUserId(id);
    caller.managed_user(&state, id).await?;
    // Sessions of an inactive user no longer authenticate; ending them first only tidies.
    state.access.end_sessions(id).await?;
    let committed = state
        .commands
        .deactivate_partner_user(&caller.meta(), caller.org(), id)
        .await?;
    Ok(axum::Json(state.written(id.0, committed).await?))
}

/// A pause of automatic routing.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Pause {
    /// End of the pause (out of office); open-ended when omitted.
    #[serde(default)]
    until: Option<DateTime<Utc>>,
}

/// Pause automatic routing to a partner user (manual assignment still works).
#[utoipa::path(post, path = "/v1/partner-users/{id}/pause", tag = "partner users",
    params(("id" = Uuid, Path)), request_body = Pause, responses((status = 200, body = Written)))]
async fn pause_user(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    _: Allowed<StaffRole>,
    Json(body): Json<Pause>,
) -> Result<axum::Json<Written>, ApiError> {
    let id = PartnerUserId(id);
    caller.managed_user(&state, id).await?;
    // Read models store the end as a timestamp: keep it within what one can hold.
    if body.until.is_some_and(|until| until.year() > 9999) {
        return Err(ApiError::invalid(
            "body.until",
            "must lie before the year 10000",
        ));
    }
    let committed = state
        .commands
        .pause_auto_assignment(&caller.meta(), caller.org(), id, body.until)
        .await?;
    Ok(axum::Json(state.written(id.0, committed).await?))
}

/// Resume automatic routing to a partner user.
#[utoipa::path(post, path = "/v1/partner-users/{id}/resume", tag = "partner users",
    params(("id" = Uuid, Path)), responses((status = 200, body = Written)))]
async fn resume_user(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<Written>, ApiError> {
    let id = PartnerUserId(id);
    caller.managed_user(&state, id).await?;
    let committed = state
        .commands
        .resume_auto_assignment(&caller.meta(), caller.org(), id)
        .await?;
    Ok(axum::Json(state.written(id.0, committed).await?))
}

/// Inbox filters and paging.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct InboxParams {
    /// Only `offered`, `accepted` or `claimable` (`to_accept`, the earlier name of
    /// `offered`, is read as `offered`).
    state: Option<String>,
    /// Only leads received at or after this time.
    received_since: Option<DateTime<Utc>>,
    /// Next page: `received_at` of the last item seen (with `after_lead_id`).
    after_received_at: Option<DateTime<Utc>>,
    /// Next page: `lead_id` of the last item seen.
    after_lead_id: Option<Uuid>,
    /// Page size, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
}

/// A partner user's inbox, newest first: leads they own and leads claimable from their
/// queues. Partner users read their own (fields limited to the partner-visible ones);
/// admins and the account's channel manager read anyone's they manage.
#[utoipa::path(get, path = "/v1/partner-users/{id}/inbox", tag = "partner users",
    params(("id" = Uuid, Path), InboxParams, MinPosition),
    responses((status = 200, body = Vec<InboxItem>)))]
async fn inbox(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    Query(params): Query<InboxParams>,
    Query(min): Query<MinPosition>,
) -> Result<axum::Json<Vec<InboxItem>>, ApiError> {
    let id = PartnerUserId(id);
    match caller.partner() {
        Ok((me, _)) if me == id => {}
        Ok(_) => return Err(ApiError::not_found("contact_not_found", "contact", id)),
        Err(_) => {
            caller.managed_user(&state, id).await?;
        }
    }
    if let Some(s) = &params.state {
        let known = [queries::CLAIMABLE, status::OFFERED, status::ACCEPTED];
        if !known.contains(&status::stored(s)) {
            return Err(ApiError::invalid(
                "query.state",
                "one of offered, accepted, claimable",
            ));
        }
    }
    let after = match (params.after_received_at, params.after_lead_id) {
        (Some(at), Some(lead)) => Some((at, lead)),
        (None, None) => None,
        _ => {
            return Err(ApiError::invalid(
                "query.after_lead_id",
                "give both after_received_at and after_lead_id",
            ))
        }
    };
    state.caught_up(&[DIRECTORY, LEADS], &min).await?;
    let query = InboxQuery {
        state: params.state,
        received_since: params.received_since,
        after,
        limit: crate::reads::page_limit(params.limit, 50, 500)?,
    };
    let fields = caller.visible_fields(&state).await?;
    let items = queries::partner_inbox(&state.pool, caller.org(), id, &query).await?;
    Ok(axum::Json(views::all(
        items
            .into_iter()
            .map(|mut item| {
                let filter = fields.of(item.state == status::ACCEPTED);
                item.fields = filter.apply(std::mem::take(&mut item.fields));
                item
            })
            .collect(),
    )))
}

//! Offers as channel managers watch them: the offers about to lapse, and how each partner
//! account answers its offers (acceptance rate, median time to accept). Admins see every
//! account (or one channel manager's with `?channel_manager=`); a channel manager sees the
//! accounts they own.

use crate::caller::Caller;
use crate::extract::Query;
use crate::problem::ApiError;
use crate::reads::MinPosition;
use crate::state::ApiState;
use axum::extract::State;
use chrono::{DateTime, Utc};
use leadroute_app::access::Role;
use leadroute_domain::ids::InternalUserId;
use leadroute_projections::projectors::{DIRECTORY, WORKFLOW};
use leadroute_projections::queries;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

pub(super) fn router() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(lapsing))
        .routes(routes!(acceptance))
}

/// Whose accounts, and which offers.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct Lapsing {
    /// Offers lapsing within this many seconds, 1 to 2592000 (default 3600).
    #[param(minimum = 1, maximum = 2592000)]
    within_seconds: Option<i64>,
    /// Only the accounts of this channel manager (admins; a channel manager always gets
    /// their own).
    channel_manager: Option<Uuid>,
    /// At most this many, 1 to 5000 (default 500).
    #[param(minimum = 1, maximum = 5000)]
    limit: Option<i64>,
}

/// A pending offer about to lapse.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct LapsingOffer {
    /// The lead.
    lead_id: Uuid,
    /// The partner user it is offered to.
    partner_user_id: Uuid,
    /// Their partner account.
    partner_account_id: Option<Uuid>,
    /// When it lapses.
    deadline: DateTime<Utc>,
    /// Seconds left.
    seconds_left: f64,
}

/// The channel manager whose accounts a caller reads: their own for a channel manager,
/// the one asked for (or all) for an admin.
fn whose(caller: &Caller, asked: Option<Uuid>) -> Result<Option<InternalUserId>, ApiError> {
    let (role, me) = caller.internal(&[Role::Admin, Role::ChannelManager])?;
    Ok(match role {
        Role::ChannelManager => Some(me),
        _ => asked.map(InternalUserId),
    })
}

/// Pending offers about to lapse, soonest first (admin, channel manager).
#[utoipa::path(get, path = "/v1/offers/lapsing", tag = "offers", params(Lapsing, MinPosition),
    responses((status = 200, body = Vec<LapsingOffer>)))]
async fn lapsing(
    State(state): State<ApiState>,
    caller: Caller,
    Query(params): Query<Lapsing>,
    Query(min): Query<MinPosition>,
) -> Result<axum::Json<Vec<LapsingOffer>>, ApiError> {
    let manager = whose(&caller, params.channel_manager)?;
    let within = params.within_seconds.unwrap_or(3600);
    if !(1..=2_592_000).contains(&within) {
        return Err(ApiError::invalid(
            "query.within_seconds",
            "must be 1 to 2592000",
        ));
    }
    let limit = crate::reads::page_limit(params.limit, 500, 5000)?;
    state.caught_up(&[DIRECTORY, WORKFLOW], &min).await?;
    let rows = queries::lapsing_offers(&state.pool, caller.org(), manager, within, limit).await?;
    Ok(axum::Json(
        rows.into_iter()
            .map(|row| LapsingOffer {
                lead_id: row.lead_id,
                partner_user_id: row.user_id,
                partner_account_id: row.account_id,
                deadline: row.deadline,
                seconds_left: row.seconds_left,
            })
            .collect(),
    ))
}

/// Whose accounts, over which offers.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct Window {
    /// Only offers made at or after this time.
    since: Option<DateTime<Utc>>,
    /// Only the accounts of this channel manager (admins; a channel manager always gets
    /// their own).
    channel_manager: Option<Uuid>,
}

/// How a partner account answers its offers.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Acceptance {
    /// The partner account.
    partner_account_id: Uuid,
    /// Its name.
    name: String,
    /// Offers made to its users.
    offers: i64,
    /// Accepted.
    accepted: i64,
    /// Declined.
    declined: i64,
    /// Recalled at their deadline.
    lapsed: i64,
    /// Not answered yet.
    pending: i64,
    /// Accepted of the answered offers (0 to 1); none before any answer.
    acceptance_rate: Option<f64>,
    /// Median seconds from offer to acceptance; none before any acceptance.
    median_seconds_to_accept: Option<f64>,
}

/// Acceptance per partner account: offers, how they ended, the acceptance rate and the
/// median time to accept (admin, channel manager). Offers that moved elsewhere before an
/// answer count as offers only.
#[utoipa::path(get, path = "/v1/offers/acceptance", tag = "offers", params(Window, MinPosition),
    responses((status = 200, body = Vec<Acceptance>)))]
async fn acceptance(
    State(state): State<ApiState>,
    caller: Caller,
    Query(params): Query<Window>,
    Query(min): Query<MinPosition>,
) -> Result<axum::Json<Vec<Acceptance>>, ApiError> {
    let manager = whose(&caller, params.channel_manager)?;
    state.caught_up(&[DIRECTORY, WORKFLOW], &min).await?;
    let rows = queries::acceptance(&state.pool, caller.org(), manager, params.since).await?;
    Ok(axum::Json(
        rows.into_iter()
            .map(|row| Acceptance {
                partner_account_id: row.account_id,
                name: row.name,
                offers: row.offers,
                accepted: row.accepted,
                declined: row.declined,
                lapsed: row.lapsed,
                pending: row.pending,
                acceptance_rate: row.acceptance_rate,
                median_seconds_to_accept: row.median_seconds_to_accept,
            })
            .collect(),
    ))
}

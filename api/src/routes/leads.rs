//! Leads: HTTP intake (the NATS lead-event schema, a second intake channel), one lead,
//! manual reassignment with the notify flag, enqueue, claim, accepting and declining an
//! offer, ownership history, owner at time T, and a channel manager's leads.

use crate::caller::{Allowed, Caller, PartnerRole, StaffRole};
use crate::extract::{Json, Path, Query};
use crate::problem::ApiError;
use crate::reads::{MinPosition, Written};
use crate::state::ApiState;
use crate::views::{self, HeldLead, ManagedLead, OwnerChangeRow, OwnerRef};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use leadroute_app::access::Role;
use leadroute_app::lead_event::{self, LeadEventV1};
use leadroute_app::router::Decline;
use leadroute_app::NewLead;
use leadroute_domain::ids::{InternalUserId, LeadId, Owner, PartnerUserId, QueueId};
use leadroute_domain::lead::HoldResolution;
use leadroute_domain::queue::Queue;
use leadroute_projections::projectors::{owner_from_columns, DIRECTORY, LEADS, OWNERSHIP_HISTORY};
use leadroute_projections::queries;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

pub(super) fn router() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(receive_lead))
        .routes(routes!(get_lead))
        .routes(routes!(reassign))
        .routes(routes!(enqueue))
        .routes(routes!(claim))
        .routes(routes!(accept))
        .routes(routes!(decline))
        .routes(routes!(resolve_hold))
        .routes(routes!(held_leads))
        .routes(routes!(history))
        .routes(routes!(owner_at))
        .routes(routes!(managed_leads))
}

/// Receive a lead event from an upstream CRM (admin, integration); the body follows
/// `deploy/schemas/lead-event.v1.json`, as on NATS. A repeated `upstream_event_id` writes
/// nothing (`events: 0`).
#[utoipa::path(post, path = "/v1/leads", tag = "leads", request_body = LeadEventV1,
    responses((status = 201, body = Written), (status = 200, body = Written),
        (status = 422, body = crate::Problem)))]
async fn receive_lead(
    State(state): State<ApiState>,
    caller: Caller,
    body: Bytes,
) -> Result<(StatusCode, axum::Json<Written>), ApiError> {
    caller.internal(&[Role::Admin, Role::Integration])?;
    let event = lead_event::parse(&body).map_err(|invalid| {
        let field = invalid
            .field
            .as_ref()
            .map_or("body".to_string(), |name| format!("body.{name}"));
        ApiError::invalid(field, format!("{}: {}", invalid.reason, invalid.detail))
    })?;
    let (lead, committed) = state
        .commands
        .receive_lead(&caller.meta(), caller.org(), &NewLead::from(event))
        .await?;
    let created = committed.events > 0 && committed.sequence == committed.events;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, axum::Json(state.written(lead.0, committed).await?)))
}

/// Kind of lead owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum OwnerKind {
    /// A partner user.
    PartnerUser,
    /// A partner queue.
    Queue,
    /// An internal user.
    InternalUser,
}

/// A lead owner.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct OwnerTarget {
    /// Its kind.
    kind: OwnerKind,
    /// Its id.
    id: Uuid,
}

impl From<OwnerTarget> for Owner {
    fn from(target: OwnerTarget) -> Self {
        match target.kind {
            OwnerKind::PartnerUser => Owner::PartnerUser(PartnerUserId(target.id)),
            OwnerKind::Queue => Owner::Queue(QueueId(target.id)),
            OwnerKind::InternalUser => Owner::InternalUser(InternalUserId(target.id)),
        }
    }
}

impl From<Owner> for OwnerTarget {
    fn from(owner: Owner) -> Self {
        let (kind, id) = match owner {
            Owner::PartnerUser(id) => (OwnerKind::PartnerUser, id.0),
            Owner::Queue(id) => (OwnerKind::Queue, id.0),
            Owner::InternalUser(id) => (OwnerKind::InternalUser, id.0),
        };
        OwnerTarget { kind, id }
    }
}

/// A lead, as of its last event.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct LeadView {
    /// The lead.
    lead_id: Uuid,
    /// Upstream CRM (shown to partner users only when the org made `upstream_system` a
    /// partner-visible field).
    #[serde(skip_serializing_if = "Option::is_none")]
    upstream_system: Option<String>,
    /// Upstream id (shown to partner users only when the org made `upstream_lead_id` a
    /// partner-visible field).
    #[serde(skip_serializing_if = "Option::is_none")]
    upstream_lead_id: Option<String>,
    /// Fields (partner users see the org's partner-visible fields of a lead they accepted,
    /// and only the pre-acceptance ones among them before).
    fields: Value,
    /// `offered`, `accepted`, `queued`, `unassigned`, `internal`, or for a possible
    /// duplicate `held`, `merged` or `rejected`.
    state: &'static str,
    /// When the pending offer lapses unless accepted.
    #[serde(skip_serializing_if = "Option::is_none")]
    deadline: Option<DateTime<Utc>>,
    /// Current owner; none while unassigned.
    owner: Option<OwnerTarget>,
    /// When the current owner got it.
    owner_since: Option<DateTime<Utc>>,
}

/// One lead the caller may see (read from the event log, so it is never stale).
#[utoipa::path(get, path = "/v1/leads/{id}", tag = "leads", params(("id" = Uuid, Path)),
    responses((status = 200, body = LeadView), (status = 404, body = crate::Problem)))]
async fn get_lead(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<LeadView>, ApiError> {
    let lead = caller.readable_lead(&state, LeadId(id)).await?;
    let accepted = match (caller.partner(), lead.owner) {
        (Ok((me, _)), Some(Owner::PartnerUser(owner))) => lead.accepted && owner == me,
        _ => false,
    };
    let fields = caller.visible_fields(&state).await?;
    let filter = fields.of(accepted);
    let (upstream_system, upstream_lead_id) = lead
        .upstream
        .map(|u| (u.system, u.lead_id))
        .unwrap_or_default();
    Ok(axum::Json(LeadView {
        lead_id: id,
        upstream_system: filter.shows("upstream_system").then_some(upstream_system),
        upstream_lead_id: filter.shows("upstream_lead_id").then_some(upstream_lead_id),
        fields: filter.apply(serde_json::to_value(lead.fields).unwrap_or_default()),
        state: match lead.owner {
            None if lead.held.is_some() => "held",
            None if lead.merged_into.is_some() => "merged",
            None if lead.rejected => "rejected",
            None => "unassigned",
            Some(Owner::Queue(_)) => "queued",
            Some(Owner::InternalUser(_)) => "internal",
            Some(Owner::PartnerUser(_)) if lead.accepted => "accepted",
            Some(Owner::PartnerUser(_)) => "offered",
        },
        deadline: lead.offer.and_then(|offer| offer.deadline),
        owner: lead.owner.map(Into::into),
        owner_since: lead.last_change.map(|change| change.at),
    }))
}

/// A manual owner change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Reassign {
    /// The new owner: a partner user (assignable: active and signed in once) or a queue;
    /// internal users for admins only.
    to: OwnerTarget,
    /// Send the assignment email to the new owner.
    #[serde(default)]
    notify: bool,
}

/// Reassign a lead by hand (admin; a channel manager for unassigned leads and leads of
/// their territory, to their own partner users or to queues of their territory). Refused with `inactive`,
/// `never_signed_in`, `partner_account_not_active` or `already_owner`.
#[utoipa::path(post, path = "/v1/leads/{id}/reassign", tag = "leads",
    params(("id" = Uuid, Path)), request_body = Reassign,
    responses((status = 200, body = Written), (status = 409, body = crate::Problem)))]
async fn reassign(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    _: Allowed<StaffRole>,
    Json(body): Json<Reassign>,
) -> Result<axum::Json<Written>, ApiError> {
    let lead = LeadId(id);
    let (role, _) = caller.internal(&[Role::Admin, Role::ChannelManager])?;
    caller.readable_lead(&state, lead).await?;
    let to = Owner::from(body.to);
    match (role, to) {
        (Role::ChannelManager, Owner::PartnerUser(user)) => {
            caller.managed_user(&state, user).await?;
        }
        (Role::ChannelManager, Owner::Queue(queue)) => {
            caller.territory_queue(&state, queue).await?;
        }
        (Role::ChannelManager, Owner::InternalUser(_)) => {
            return Err(ApiError::Forbidden(
                "only admins assign leads to internal users",
            ))
        }
        _ => {}
    }
    let committed = state
        .commands
        .reassign_lead(&caller.meta(), caller.org(), lead, to, body.notify)
        .await?;
    Ok(axum::Json(state.written(id, committed).await?))
}

/// A queue to put a lead into.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Enqueue {
    /// The queue.
    queue_id: Uuid,
}

/// Put a lead into a partner queue, where its members may claim it (admin; a channel
/// manager for leads they may reassign, into queues of their territory).
#[utoipa::path(post, path = "/v1/leads/{id}/enqueue", tag = "leads",
    params(("id" = Uuid, Path)), request_body = Enqueue, responses((status = 200, body = Written)))]
async fn enqueue(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    _: Allowed<StaffRole>,
    Json(body): Json<Enqueue>,
) -> Result<axum::Json<Written>, ApiError> {
    let (role, _) = caller.internal(&[Role::Admin, Role::ChannelManager])?;
    caller.readable_lead(&state, LeadId(id)).await?;
    if role == Role::ChannelManager {
        caller
            .territory_queue(&state, QueueId(body.queue_id))
            .await?;
    }
    let committed = state
        .commands
        .enqueue_lead(
            &caller.meta(),
            caller.org(),
            LeadId(id),
            QueueId(body.queue_id),
        )
        .await?;
    Ok(axum::Json(state.written(id, committed).await?))
}

/// A claim from a queue.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Claim {
    /// The queue the lead waits in.
    queue_id: Uuid,
}

/// Claim a lead from one of the caller's queues (partner users). Of concurrent claims
/// exactly one wins; the others get `already_claimed`. A queue the caller is not a member
/// of, or a lead that is not in it, answers 404.
#[utoipa::path(post, path = "/v1/leads/{id}/claim", tag = "leads",
    params(("id" = Uuid, Path)), request_body = Claim,
    responses((status = 200, body = Written), (status = 409, body = crate::Problem)))]
async fn claim(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    _: Allowed<PartnerRole>,
    Json(body): Json<Claim>,
) -> Result<axum::Json<Written>, ApiError> {
    let (user, account) = caller.partner()?;
    let queue = QueueId(body.queue_id);
    let members = state.commands.state::<Queue>(caller.org(), queue).await?;
    if !members.has_member(user, account) {
        return Err(ApiError::not_found("queue_not_found", "queue", queue));
    }
    // `already_claimed` tells a member they lost the race for a lead of their queue; a
    // lead that was never in it stays invisible.
    let claimed = state
        .commands
        .claim_lead(&caller.meta(), caller.org(), LeadId(id), queue, user)
        .await
        .map_err(|e| match e.code() {
            "not_in_queue" => ApiError::not_found("lead_not_found", "lead", id),
            _ => e.into(),
        })?;
    Ok(axum::Json(state.written(id, claimed).await?))
}

/// Accept the lead offered to the caller (partner users). Accepting again changes
/// nothing (`events: 0`). A lead the caller cannot see answers 404; one offered to them no
/// longer, 409 `not_offered`.
#[utoipa::path(post, path = "/v1/leads/{id}/accept", tag = "leads",
    params(("id" = Uuid, Path)),
    responses((status = 200, body = Written), (status = 404, body = crate::Problem),
        (status = 409, body = crate::Problem)))]
async fn accept(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    _: Allowed<PartnerRole>,
) -> Result<axum::Json<Written>, ApiError> {
    let (user, _) = caller.partner()?;
    caller.readable_lead(&state, LeadId(id)).await?;
    let committed = state
        .commands
        .accept_lead(&caller.meta(), caller.org(), LeadId(id), user)
        .await?;
    Ok(axum::Json(state.written(id, committed).await?))
}

/// A decline of an offered lead.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DeclineBody {
    /// One of the org's decline reason codes (`GET /v1/org/partner-workflow`; by default
    /// `not_my_territory`, `no_capacity`, `not_qualified`, `duplicate`, `other`).
    reason: String,
    /// Free text, at most 2,000 characters; required with `other`.
    #[serde(default)]
    note: Option<String>,
}

/// Decline the lead offered to the caller (partner users), with a reason. The lead is
/// routed again at once under the current rules, never to the caller again (its decision
/// record names them `declined_before`). Refused with `already_accepted`,
/// `unknown_decline_reason`, `decline_note_required` or `invalid_note`.
#[utoipa::path(post, path = "/v1/leads/{id}/decline", tag = "leads",
    params(("id" = Uuid, Path)), request_body = DeclineBody,
    responses((status = 200, body = Written), (status = 404, body = crate::Problem),
        (status = 409, body = crate::Problem), (status = 422, body = crate::Problem)))]
async fn decline(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    _: Allowed<PartnerRole>,
    Json(body): Json<DeclineBody>,
) -> Result<axum::Json<Written>, ApiError> {
    let (user, _) = caller.partner()?;
    caller.readable_lead(&state, LeadId(id)).await?;
    let decline = Decline {
        by: user,
        reason: body.reason,
        note: body.note,
    };
    let committed = state
        .router
        .decline_lead(&caller.meta(), caller.org(), LeadId(id), &decline)
        .await?;
    Ok(axum::Json(state.written(id, committed).await?))
}

/// How to resolve a hold.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Resolution {
    /// Route it by the rules after all (at once, not matched against open leads again).
    RouteAnyway,
    /// It is the lead it matched: its upstream events update that lead from now on.
    Merge,
    /// Drop it: it is never routed.
    Reject,
}

/// A hold's resolution.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ResolveHold {
    /// How.
    resolution: Resolution,
}

/// Resolve a lead held as a possible duplicate (admin; the channel manager whose territory
/// holds the matching lead's owner). Refused with `not_held` when it is not held.
#[utoipa::path(post, path = "/v1/leads/{id}/resolve-hold", tag = "leads",
    params(("id" = Uuid, Path)), request_body = ResolveHold,
    responses((status = 200, body = Written), (status = 404, body = crate::Problem),
        (status = 409, body = crate::Problem)))]
async fn resolve_hold(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    _: Allowed<StaffRole>,
    Json(body): Json<ResolveHold>,
) -> Result<axum::Json<Written>, ApiError> {
    let (role, me) = caller.internal(&[Role::Admin, Role::ChannelManager])?;
    let lead = caller.readable_lead(&state, LeadId(id)).await?;
    if let (Role::ChannelManager, Some((_, owner))) = (role, lead.held) {
        if !queries::in_manager_territory(&state.pool, caller.org(), me, &owner).await? {
            return Err(ApiError::Forbidden(
                "only admins and the channel manager of the matching lead's owner resolve a hold",
            ));
        }
    }
    let resolution = match body.resolution {
        Resolution::RouteAnyway => HoldResolution::RouteAnyway,
        Resolution::Merge => HoldResolution::Merge,
        Resolution::Reject => HoldResolution::Reject,
    };
    let committed = state
        .router
        .resolve_hold(&caller.meta(), caller.org(), LeadId(id), resolution)
        .await?;
    Ok(axum::Json(state.written(id, committed).await?))
}

/// Paging of held leads.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct HeldParams {
    /// At most this many, 1 to 5000 (default 500).
    #[param(minimum = 1, maximum = 5000)]
    limit: Option<i64>,
}

/// Leads held as possible duplicates, oldest first, each with the open lead it matches and
/// that lead's owner (admin: all; a channel manager: those whose matching owner is in
/// their territory).
#[utoipa::path(get, path = "/v1/held-leads", tag = "leads", params(HeldParams, MinPosition),
    responses((status = 200, body = Vec<HeldLead>)))]
async fn held_leads(
    State(state): State<ApiState>,
    caller: Caller,
    Query(params): Query<HeldParams>,
    Query(min): Query<MinPosition>,
) -> Result<axum::Json<Vec<HeldLead>>, ApiError> {
    let (role, me) = caller.internal(&[Role::Admin, Role::ChannelManager])?;
    state.caught_up(&[DIRECTORY, LEADS], &min).await?;
    let limit = crate::reads::page_limit(params.limit, 500, 5000)?;
    let manager = (role == Role::ChannelManager).then_some(me);
    let rows = queries::held_leads(&state.pool, caller.org(), manager, limit).await?;
    Ok(axum::Json(views::all(rows)))
}

/// Every owner change of a lead, oldest first (internal users who may see the lead).
#[utoipa::path(get, path = "/v1/leads/{id}/history", tag = "leads",
    params(("id" = Uuid, Path), MinPosition),
    responses((status = 200, body = Vec<OwnerChangeRow>)))]
async fn history(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    Query(min): Query<MinPosition>,
) -> Result<axum::Json<Vec<OwnerChangeRow>>, ApiError> {
    let (role, me) = caller.internal(&[Role::Admin, Role::ChannelManager, Role::Integration])?;
    caller.readable_lead(&state, LeadId(id)).await?;
    state.caught_up(&[LEADS, OWNERSHIP_HISTORY], &min).await?;
    let mut rows = queries::ownership_history(&state.pool, caller.org(), LeadId(id))
        .await?
        .ok_or_else(|| not_projected_yet(id))?;
    if role == Role::ChannelManager {
        for row in &mut rows {
            if let Some(kind) = &mut row.to_kind {
                hide_outside(&state, caller.org(), me, kind, &mut row.to_id).await?;
            }
            if let Some(kind) = &mut row.from_kind {
                hide_outside(&state, caller.org(), me, kind, &mut row.from_id).await?;
            }
        }
    }
    Ok(axum::Json(views::all(rows)))
}

/// Replace an owner outside channel manager `me`'s territory by `outside_territory` with
/// no id (internal users stay visible: they are the org's own people).
async fn hide_outside(
    state: &ApiState,
    org: leadroute_domain::ids::OrgId,
    me: InternalUserId,
    kind: &mut String,
    id: &mut Option<Uuid>,
) -> Result<(), ApiError> {
    let owner = match id.and_then(|id| owner_from_columns(kind, id)) {
        Some(owner @ (Owner::PartnerUser(_) | Owner::Queue(_))) => owner,
        _ => return Ok(()),
    };
    if !queries::in_manager_territory(&state.pool, org, me, &owner).await? {
        *kind = queries::OUTSIDE_TERRITORY.to_string();
        *id = None;
    }
    Ok(())
}

/// The time to ask about.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct At {
    /// A time (RFC 3339).
    at: DateTime<Utc>,
}

/// Who owned a lead at time `at` (`null`: nobody).
#[utoipa::path(get, path = "/v1/leads/{id}/owner-at", tag = "leads",
    params(("id" = Uuid, Path), At, MinPosition),
    responses((status = 200, body = Option<OwnerRef>)))]
async fn owner_at(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    Query(at): Query<At>,
    Query(min): Query<MinPosition>,
) -> Result<axum::Json<Option<OwnerRef>>, ApiError> {
    let (role, me) = caller.internal(&[Role::Admin, Role::ChannelManager, Role::Integration])?;
    caller.readable_lead(&state, LeadId(id)).await?;
    state.caught_up(&[LEADS, OWNERSHIP_HISTORY], &min).await?;
    let mut owner = queries::owner_at(&state.pool, caller.org(), LeadId(id), at.at)
        .await?
        .ok_or_else(|| not_projected_yet(id))?;
    if let (Role::ChannelManager, Some(owner)) = (role, &mut owner) {
        hide_outside(&state, caller.org(), me, &mut owner.kind, &mut owner.id).await?;
    }
    Ok(axum::Json(owner.map(Into::into)))
}

/// The lead exists in the log but the read models have not caught up with it.
fn not_projected_yet(id: Uuid) -> ApiError {
    ApiError::ProjectionBehind {
        projection: LEADS.to_string(),
        position: format!("of lead {id}"),
    }
}

/// Whose territory to list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct Territory {
    /// The channel manager (admins only; a channel manager always gets their own).
    channel_manager: Option<Uuid>,
    /// At most this many, 1 to 5000 (default 500).
    #[param(minimum = 1, maximum = 5000)]
    limit: Option<i64>,
}

/// The channel-manager view: leads owned by the users and queues of the partner accounts
/// the channel manager owns, newest first.
#[utoipa::path(get, path = "/v1/managed-leads", tag = "leads", params(Territory, MinPosition),
    responses((status = 200, body = Vec<ManagedLead>)))]
async fn managed_leads(
    State(state): State<ApiState>,
    caller: Caller,
    Query(params): Query<Territory>,
    Query(min): Query<MinPosition>,
) -> Result<axum::Json<Vec<ManagedLead>>, ApiError> {
    let (role, me) = caller.internal(&[Role::Admin, Role::ChannelManager])?;
    let manager = match (role, params.channel_manager) {
        (Role::Admin, Some(id)) => InternalUserId(id),
        (Role::Admin, None) => {
            return Err(ApiError::invalid(
                "query.channel_manager",
                "required for admins",
            ))
        }
        _ => me,
    };
    state.caught_up(&[DIRECTORY, LEADS], &min).await?;
    let limit = crate::reads::page_limit(params.limit, 500, 5000)?;
    Ok(axum::Json(views::all(
        queries::channel_manager_leads(&state.pool, caller.org(), manager, limit).await?,
    )))
}

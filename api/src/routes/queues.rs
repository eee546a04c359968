//! Partner queues: create and manage members (admin), list (partner users see the queues
//! they are members of), and the queue view of unclaimed leads.

use crate::caller::{AdminRole, Allowed, Caller};
use crate::extract::{Json, Path, Query};
use crate::problem::ApiError;
use crate::reads::{MinPosition, Written};
use crate::state::ApiState;
use crate::views::{self, QueueRow, QueuedLead};
use axum::extract::State;
use axum::http::StatusCode;
use leadroute_app::access::Role;
use leadroute_domain::ids::{PartnerAccountId, PartnerUserId, QueueId};
use leadroute_domain::queue::{Queue, QueueMember};
use leadroute_projections::projectors::{DIRECTORY, LEADS};
use leadroute_projections::queries::{self, QueueScope};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

pub(super) fn router() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(create_queue, list_queues))
        .routes(routes!(add_member))
        .routes(routes!(remove_member))
        .routes(routes!(queue_leads))
}

/// A queue to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateQueue {
    /// Display name.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$"
    )]
    name: String,
}

/// Create a queue (admin).
#[utoipa::path(post, path = "/v1/queues", tag = "queues", request_body = CreateQueue,
    responses((status = 201, body = Written)))]
async fn create_queue(
    State(state): State<ApiState>,
    caller: Caller,
    _: Allowed<AdminRole>,
    Json(body): Json<CreateQueue>,
) -> Result<(StatusCode, axum::Json<Written>), ApiError> {
    caller.internal(&[Role::Admin])?;
    let id = QueueId::new_random();
    let committed = state
        .commands
        .create_queue(&caller.meta(), caller.org(), id, &body.name)
        .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(state.written(id.0, committed).await?),
    ))
}

/// The org's queues (admins); a channel manager's territory's queues (those with a user
/// or account of an account they own as a member); for a partner user, the queues they are
/// a member of. Member lists are shown to admins only.
#[utoipa::path(get, path = "/v1/queues", tag = "queues", params(MinPosition),
    responses((status = 200, body = Vec<QueueRow>)))]
async fn list_queues(
    State(state): State<ApiState>,
    caller: Caller,
    Query(min): Query<MinPosition>,
) -> Result<axum::Json<Vec<QueueRow>>, ApiError> {
    let (scope, admin) = match caller.partner() {
        Ok((user, account)) => (QueueScope::Member(user, account), false),
        Err(_) => match caller.internal(&[Role::Admin, Role::ChannelManager])? {
            (Role::Admin, _) => (QueueScope::Org, true),
            (_, manager) => (QueueScope::Territory(manager), false),
        },
    };
    state.caught_up(&[DIRECTORY], &min).await?;
    let mut queues = queries::queues(&state.pool, caller.org(), scope).await?;
    if !admin {
        // Members may belong to other partners or territories: only admins see them.
        for queue in &mut queues {
            queue.partner_users.clear();
            queue.partner_accounts.clear();
        }
    }
    Ok(axum::Json(views::all(queues)))
}

/// Kind of queue member.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum MemberKind {
    /// One partner user.
    PartnerUser,
    /// Every user of a partner account.
    PartnerAccount,
}

/// A queue member.
#[derive(Debug, Deserialize, ToSchema, IntoParams)]
#[into_params(parameter_in = Path)]
#[serde(deny_unknown_fields)]
pub(crate) struct Member {
    /// `partner_user` or `partner_account`.
    kind: MemberKind,
    /// Its id.
    id: Uuid,
}

impl From<&Member> for QueueMember {
    fn from(member: &Member) -> Self {
        match member.kind {
            MemberKind::PartnerUser => QueueMember::PartnerUser(PartnerUserId(member.id)),
            MemberKind::PartnerAccount => QueueMember::PartnerAccount(PartnerAccountId(member.id)),
        }
    }
}

/// Add a member to a queue (admin).
#[utoipa::path(post, path = "/v1/queues/{id}/members", tag = "queues",
    params(("id" = Uuid, Path)), request_body = Member, responses((status = 200, body = Written)))]
async fn add_member(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    _: Allowed<AdminRole>,
    Json(member): Json<Member>,
) -> Result<axum::Json<Written>, ApiError> {
    caller.internal(&[Role::Admin])?;
    let committed = state
        .commands
        .add_queue_member(&caller.meta(), caller.org(), QueueId(id), (&member).into())
        .await?;
    Ok(axum::Json(state.written(id, committed).await?))
}

/// Path of one member of one queue.
#[derive(Debug, Deserialize)]
struct MemberPath {
    id: Uuid,
    kind: MemberKind,
    member_id: Uuid,
}

/// Remove a member from a queue (admin).
#[utoipa::path(delete, path = "/v1/queues/{id}/members/{kind}/{member_id}", tag = "queues",
    params(("id" = Uuid, Path), ("kind" = MemberKind, Path), ("member_id" = Uuid, Path)),
    responses((status = 200, body = Written)))]
async fn remove_member(
    State(state): State<ApiState>,
    caller: Caller,
    Path(path): Path<MemberPath>,
) -> Result<axum::Json<Written>, ApiError> {
    caller.internal(&[Role::Admin])?;
    let member = Member {
        kind: path.kind,
        id: path.member_id,
    };
    let committed = state
        .commands
        .remove_queue_member(
            &caller.meta(),
            caller.org(),
            QueueId(path.id),
            (&member).into(),
        )
        .await?;
    Ok(axum::Json(state.written(path.id, committed).await?))
}

/// Queue-view paging.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct QueueParams {
    /// At most this many leads, 1 to 500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
}

/// Unclaimed leads of a queue, longest waiting first (admins; channel managers for queues
/// with members from their accounts; the queue's members, who see the partner-visible
/// fields only).
#[utoipa::path(get, path = "/v1/queues/{id}/leads", tag = "queues",
    params(("id" = Uuid, Path), QueueParams, MinPosition),
    responses((status = 200, body = Vec<QueuedLead>)))]
async fn queue_leads(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    Query(params): Query<QueueParams>,
    Query(min): Query<MinPosition>,
) -> Result<axum::Json<Vec<QueuedLead>>, ApiError> {
    let id = QueueId(id);
    let queue = state.commands.state::<Queue>(caller.org(), id).await?;
    match caller.partner() {
        Ok((user, account)) if !queue.has_member(user, account) => {
            return Err(ApiError::not_found("queue_not_found", "queue", id))
        }
        Ok(_) => {}
        Err(_) => caller.territory_queue(&state, id).await?,
    }
    state.caught_up(&[LEADS], &min).await?;
    // Queued leads are nobody's yet: claimable, not accepted.
    let fields = caller.visible_fields(&state).await?;
    let filter = fields.of(false);
    let leads = queries::queue_view(
        &state.pool,
        caller.org(),
        id,
        crate::reads::page_limit(params.limit, 100, 500)?,
    )
    .await?;
    Ok(axum::Json(views::all(
        leads
            .into_iter()
            .map(|mut lead| {
                lead.fields = filter.apply(std::mem::take(&mut lead.fields));
                lead
            })
            .collect(),
    )))
}

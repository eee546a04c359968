//! Bulk reassignment over HTTP: start an operation (admins; channel managers for leads of
//! the partner accounts they own), follow its progress, page through its per-lead results,
//! cancel it. The operation runs in the background of the API process and resumes after a
//! restart (`crate::bulk`).

use crate::caller::{Allowed, Caller, StaffRole};
use crate::extract::{Json, Path, Query};
use crate::idempotency::IDEMPOTENCY_KEY;
use crate::problem::ApiError;
use crate::reads::Written;
use crate::state::ApiState;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, Utc};
use leadroute_app::access::Role;
use leadroute_app::{BulkRequest, BulkScope, BulkSelection};
use leadroute_domain::bulk::{BulkOperation, LeadFilter, LeadOutcome, OutcomeKind, MAX_REASON};
use leadroute_domain::ids::{Actor, BulkOperationId, LeadId, Owner, PartnerAccountId};
use leadroute_domain::routing::rules::Target;
use leadroute_projections::queries;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

/// Most lead ids one request may list (the body stays under the 1 MiB limit); a filter
/// selects any number.
pub const MAX_LISTED: usize = 20_000;

pub(super) fn router() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(start))
        .routes(routes!(progress))
        .routes(routes!(results))
        .routes(routes!(cancel))
}

/// A bulk reassignment to start.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StartBody {
    /// These leads (at most 20,000), or
    #[serde(default)]
    lead_ids: Option<Vec<Uuid>>,
    /// the leads this filter selects now.
    #[serde(default)]
    filter: Option<LeadFilter>,
    /// Where the leads go: `{"kind": "partner_user" | "queue" | "pool", "id": ...}`.
    to: Target,
    /// Send each new owner the assignment email.
    #[serde(default)]
    notify: bool,
    /// Why (required).
    reason: String,
}

/// Start a bulk reassignment (admin; a channel manager for leads owned by users of the
/// partner accounts they own, to their own users or queues of their territory). Body:
/// `{"lead_ids": [...]}` or `{"filter": {"owner": {"kind", "id"}, "partner_account_id",
/// "status", "received_after", "received_before", "fields": [criteria as in rule sets]}}`,
/// plus `"to": {"kind": "partner_user" | "queue" | "pool", "id"}`, `"notify"` and
/// `"reason"`. The selection is frozen now; the leads move in the background (cause
/// `bulk`, the operation id on every owner change). With an `Idempotency-Key`, the
/// operation id is derived from it: a re-submission answers with the same operation and
/// changes nothing. 202 when started, 200 when it already existed.
#[utoipa::path(post, path = "/v1/bulk-reassignments", tag = "bulk",
    request_body(content = Object, description = "The operation"),
    responses((status = 202, body = Written), (status = 200, body = Written),
        (status = 422, body = crate::Problem)))]
async fn start(
    State(state): State<ApiState>,
    caller: Caller,
    headers: HeaderMap,
    _: Allowed<StaffRole>,
    Json(body): Json<StartBody>,
) -> Result<(StatusCode, axum::Json<Written>), ApiError> {
    let (role, user) = caller.internal(&[Role::Admin, Role::ChannelManager])?;
    let reason = body.reason.trim();
    if reason.is_empty() || reason.chars().count() > MAX_REASON {
        return Err(ApiError::invalid(
            "body.reason",
            format!("must be 1 to {MAX_REASON} characters"),
        ));
    }
    let selection = match (body.lead_ids, body.filter) {
        (Some(ids), None) if ids.len() > MAX_LISTED => {
            return Err(ApiError::invalid(
                "body.lead_ids",
                format!("at most {MAX_LISTED} lead ids per request; use a filter for more"),
            ))
        }
        (Some(ids), None) => BulkSelection::Leads(ids.into_iter().map(LeadId).collect()),
        (None, Some(filter)) if filter == LeadFilter::default() => {
            return Err(ApiError::invalid(
                "body.filter",
                "give at least one condition (an empty filter would select every lead)",
            ))
        }
        (None, Some(filter)) => BulkSelection::Filter(filter),
        _ => {
            return Err(ApiError::invalid(
                "body",
                "give either `lead_ids` or `filter`",
            ))
        }
    };
    let scope = match role {
        Role::ChannelManager => {
            match body.to {
                Target::PartnerUser(to) => {
                    caller.managed_user(&state, to).await?;
                }
                Target::Queue(to) => caller.territory_queue(&state, to).await?,
                Target::Pool(_) => {
                    return Err(ApiError::Forbidden("only admins spread leads over pools"))
                }
            }
            let accounts = queries::partner_accounts(&state.pool, caller.org())
                .await?
                .into_iter()
                .filter(|a| a.channel_manager == user.0)
                .map(|a| PartnerAccountId(a.account_id))
                .collect();
            BulkScope::Accounts(accounts)
        }
        _ => BulkScope::Org,
    };
    let id = match headers.get(&IDEMPOTENCY_KEY).and_then(|k| k.to_str().ok()) {
        Some(key) => {
            BulkOperationId::for_key(caller.org(), &caller.principal_id().to_string(), key)
        }
        None => BulkOperationId::new_random(),
    };
    let request = BulkRequest {
        selection,
        target: body.to,
        notify: body.notify,
        reason: reason.to_string(),
    };
    let committed = state
        .commands
        .start_bulk(&caller.meta(), caller.org(), id, &scope, &request)
        .await?;
    let status = if committed.events > 0 {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    state.bulk.spawn(caller.org(), id);
    Ok((status, axum::Json(state.written(id.0, committed).await?)))
}

/// A bulk operation the caller may see: any of the org for admins, their own for a
/// channel manager.
async fn visible(state: &ApiState, caller: &Caller, id: Uuid) -> Result<BulkOperation, ApiError> {
    let (role, user) = caller.internal(&[Role::Admin, Role::ChannelManager])?;
    let op = state
        .commands
        .state::<BulkOperation>(caller.org(), BulkOperationId(id))
        .await?;
    if role == Role::ChannelManager && op.actor != Some(Actor::InternalUser(user)) {
        return Err(ApiError::not_found(
            "bulk_operation_not_found",
            "bulk_operation",
            id,
        ));
    }
    Ok(op)
}

/// Progress of a bulk reassignment: counts, rate and estimated time left.
#[utoipa::path(get, path = "/v1/bulk-reassignments/{id}", tag = "bulk",
    params(("id" = Uuid, Path)),
    responses((status = 200, body = Progress), (status = 404, body = crate::Problem)))]
async fn progress(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<Progress>, ApiError> {
    let op = visible(&state, &caller, id).await?;
    Ok(axum::Json(Progress::from(&op)))
}

/// Paging and filtering of per-lead results.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ResultsParams {
    /// Skip this many results (of the chosen kind), in selection order.
    offset: Option<usize>,
    /// At most this many, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
    /// Only `moved`, `skipped` or `refused`.
    #[param(value_type = Option<String>)]
    result: Option<OutcomeKind>,
}

/// One lead's outcome.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ResultItem {
    /// The lead.
    lead_id: Uuid,
    /// `moved`, `skipped` or `refused`.
    #[schema(value_type = String)]
    result: OutcomeKind,
    /// The new owner (moved).
    to: Option<Value>,
    /// Why it was skipped or refused.
    code: Option<String>,
}

impl From<&LeadOutcome> for ResultItem {
    fn from(outcome: &LeadOutcome) -> Self {
        ResultItem {
            lead_id: outcome.lead_id.0,
            result: outcome.result,
            to: outcome
                .to
                .map(|owner: Owner| serde_json::to_value(owner).unwrap_or_default()),
            code: outcome.code.clone(),
        }
    }
}

/// A page of results.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ResultsPage {
    /// Outcomes in selection order.
    items: Vec<ResultItem>,
    /// Pass as `offset` for the next page; none on the last one (so far).
    next_offset: Option<usize>,
}

/// Per-lead results of a bulk reassignment, in selection order, paged.
#[utoipa::path(get, path = "/v1/bulk-reassignments/{id}/results", tag = "bulk",
    params(("id" = Uuid, Path), ResultsParams),
    responses((status = 200, body = ResultsPage), (status = 404, body = crate::Problem)))]
async fn results(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    Query(params): Query<ResultsParams>,
) -> Result<axum::Json<ResultsPage>, ApiError> {
    let limit = params.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid("query.limit", "must be 1 to 1000"));
    }
    let offset = params.offset.unwrap_or(0);
    let op = visible(&state, &caller, id).await?;
    let mut chosen = op
        .outcomes
        .iter()
        .filter(|o| params.result.is_none_or(|kind| o.result == kind))
        .skip(offset);
    let items: Vec<ResultItem> = chosen.by_ref().take(limit).map(Into::into).collect();
    let next_offset = chosen.next().map(|_| offset + items.len());
    Ok(axum::Json(ResultsPage { items, next_offset }))
}

/// Cancel a running bulk reassignment: leads without an outcome stay where they are.
/// Refused with `bulk_operation_finished` once it completed or was cancelled.
#[utoipa::path(post, path = "/v1/bulk-reassignments/{id}/cancel", tag = "bulk",
    params(("id" = Uuid, Path)),
    responses((status = 200, body = Written), (status = 409, body = crate::Problem)))]
async fn cancel(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<Written>, ApiError> {
    visible(&state, &caller, id).await?;
    let committed = state
        .commands
        .cancel_bulk(&caller.meta(), caller.org(), BulkOperationId(id))
        .await?;
    Ok(axum::Json(state.written(id, committed).await?))
}

/// Where a bulk reassignment stands.
#[derive(Debug, Serialize, ToSchema)]
pub struct Progress {
    /// The operation.
    id: Uuid,
    /// `running`, `completed` or `cancelled`.
    status: &'static str,
    /// Why it was started.
    reason: String,
    /// Where the leads go (`{"kind", "id"}`).
    to: Value,
    /// How the leads were chosen (`{"kind": "list"}` or the filter).
    selection: Value,
    /// Assignment emails requested.
    notify: bool,
    /// Who started it.
    started_by: Value,
    /// Leads selected.
    total: usize,
    /// Leads with an outcome.
    processed: usize,
    /// Leads moved.
    moved: usize,
    /// Leads skipped (already with the target).
    skipped: usize,
    /// Leads refused (see the results for the reasons).
    refused: usize,
    /// When it started.
    started_at: Option<DateTime<Utc>>,
    /// When the last outcomes were recorded.
    progressed_at: Option<DateTime<Utc>>,
    /// When it completed or was cancelled.
    finished_at: Option<DateTime<Utc>>,
    /// Leads processed per second so far.
    leads_per_second: Option<f64>,
    /// Estimated seconds until every lead has its outcome (while running).
    seconds_left: Option<f64>,
}

impl From<&BulkOperation> for Progress {
    fn from(op: &BulkOperation) -> Self {
        let processed = op.outcomes.len();
        let elapsed = op
            .started_at
            .zip(op.progressed_at)
            .map(|(start, last)| (last - start).num_milliseconds() as f64 / 1000.0)
            .filter(|secs| *secs > 0.0);
        let rate = elapsed.map(|secs| processed as f64 / secs);
        let seconds_left = rate
            .filter(|r| *r > 0.0 && op.is_running())
            .map(|r| (op.total - processed) as f64 / r);
        Progress {
            id: op.id.map(|id| id.0).unwrap_or_default(),
            status: op.status.as_str(),
            reason: op.reason.clone(),
            to: serde_json::to_value(op.target).unwrap_or_default(),
            selection: serde_json::to_value(&op.selection).unwrap_or_default(),
            notify: op.notify,
            started_by: serde_json::to_value(&op.actor).unwrap_or_default(),
            total: op.total,
            processed,
            moved: op.moved,
            skipped: op.skipped,
            refused: op.refused,
            started_at: op.started_at,
            progressed_at: op.progressed_at,
            finished_at: op.finished_at,
            leads_per_second: rate,
            seconds_left,
        }
    }
}

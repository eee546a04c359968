//! Routing over HTTP: publish and read the org's rule set, dry-run a draft, manage
//! round-robin pools, re-run the rules for a lead, and read a lead's decision records.
//! Rule sets, pools, dry runs and re-runs are for admins.

use super::org::DeadlineView;
use crate::caller::{AdminRole, Allowed, Caller};
use crate::extract::{Json, Path};
use crate::problem::ApiError;
use crate::reads::Written;
use crate::state::ApiState;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use leadroute_app::access::Role;
use leadroute_app::router::DryRun;
use leadroute_domain::ids::{LeadId, PartnerUserId, PoolId, QueueId};
use leadroute_domain::pool::Pool;
use leadroute_domain::routing::rotation::Member;
use leadroute_domain::routing::rules::RuleSetSpec;
use leadroute_domain::routing::Trigger;
use leadroute_domain::rule_set::RuleSet;
use leadroute_projections::queries;
use leadroute_store::named;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

/// Most leads one dry run evaluates.
const DRY_RUN_LIMIT: i64 = 1000;

pub(super) fn router() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(publish_rule_set))
        .routes(routes!(current_rule_set))
        .routes(routes!(dry_run))
        .routes(routes!(create_pool))
        .routes(routes!(get_pool))
        .routes(routes!(set_pool_deadline))
        .routes(routes!(add_pool_member))
        .routes(routes!(remove_pool_member, change_pool_member))
        .routes(routes!(rerun))
        .routes(routes!(decisions))
}

/// Publish a new version of the org's rule set (admin). Body: `{"entries": [{"criteria":
/// [{"op": "equals", "field": "country", "value": "DE"}, ...], "target": {"kind":
/// "partner_user" | "queue" | "pool", "id": ...}, "keep_owner": false, "notify": true,
/// "fallback": {"kind": "partner_user" | "queue", "id"} (takes a lead everyone the target
/// could offer it to declined or let lapse), "acceptance_deadline": {"seconds": N} |
/// {"business_hours": N} (of offers this entry makes; else the org's)}],
/// "default_owner": {"kind", "id"} | null, "watched_fields": ["country"]}`. Operators:
/// `equals`, `not_equals`, `in` (`values`), `prefix`, `contains` (`text`), `range` (`min`,
/// `max`), `is_empty`. Refused with `invalid_rule_set` or `unknown_target`.
#[utoipa::path(post, path = "/v1/rule-sets", tag = "routing",
    request_body(content = Object, description = "The rule set"),
    responses((status = 201, body = Written), (status = 422, body = crate::Problem)))]
async fn publish_rule_set(
    State(state): State<ApiState>,
    caller: Caller,
    _: Allowed<AdminRole>,
    Json(spec): Json<RuleSetSpec>,
) -> Result<(StatusCode, axum::Json<Written>), ApiError> {
    caller.internal(&[Role::Admin])?;
    let committed = state
        .commands
        .publish_rule_set(&caller.meta(), caller.org(), &spec)
        .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(state.written(caller.org().0, committed).await?),
    ))
}

/// A published rule set.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PublishedRuleSet {
    /// Its version.
    version: u32,
    /// Who published it (the actor as stored).
    published_by: Value,
    /// When.
    published_at: DateTime<Utc>,
    /// The rules.
    #[schema(value_type = Object)]
    rules: RuleSetSpec,
}

/// The org's active rule set (admin).
#[utoipa::path(get, path = "/v1/rule-sets/current", tag = "routing",
    responses((status = 200, body = PublishedRuleSet), (status = 404, body = crate::Problem)))]
async fn current_rule_set(
    State(state): State<ApiState>,
    caller: Caller,
) -> Result<axum::Json<PublishedRuleSet>, ApiError> {
    caller.internal(&[Role::Admin])?;
    let rule_set = state
        .commands
        .state::<RuleSet>(caller.org(), caller.org())
        .await?;
    let (actor, at) = rule_set
        .published
        .ok_or_else(|| ApiError::not_found("rule_set_not_found", "rule_set", caller.org()))?;
    Ok(axum::Json(PublishedRuleSet {
        version: rule_set.version,
        published_by: serde_json::to_value(actor).unwrap_or_default(),
        published_at: at,
        rules: rule_set.spec,
    }))
}

/// A dry run: a draft against one lead, a list, or the leads received in a window.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DryRunRequest {
    /// The draft rule set (same shape as `POST /v1/rule-sets`).
    #[schema(value_type = Object)]
    rules: RuleSetSpec,
    /// These leads.
    #[serde(default)]
    lead_ids: Vec<Uuid>,
    /// Or the leads received at or after this time …
    received_from: Option<DateTime<Utc>>,
    /// … and before this time (now when omitted).
    received_to: Option<DateTime<Utc>>,
}

/// What the draft would do with one lead.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DryRunDecision {
    /// The lead.
    lead_id: Uuid,
    /// The owner it would get (`{kind, id}`), if it would move.
    #[schema(value_type = Option<Object>)]
    owner: Option<Value>,
    /// It would keep its owner.
    kept_existing_owner: bool,
    /// Why it would not be routed (`no_rule_matched`, ...).
    not_routed: Option<String>,
    /// The decision record it would carry.
    #[schema(value_type = Object)]
    decision: Value,
}

/// Evaluate a draft rule set, writing nothing (admin); at most 1,000 leads.
#[utoipa::path(post, path = "/v1/rule-sets/dry-run", tag = "routing", request_body = DryRunRequest,
    responses((status = 200, body = Vec<DryRunDecision>), (status = 422, body = crate::Problem)))]
async fn dry_run(
    State(state): State<ApiState>,
    caller: Caller,
    _: Allowed<AdminRole>,
    Json(body): Json<DryRunRequest>,
) -> Result<axum::Json<Vec<DryRunDecision>>, ApiError> {
    caller.internal(&[Role::Admin])?;
    if let Some(problem) = body.rules.problem() {
        return Err(ApiError::invalid("body.rules", problem));
    }
    let mut leads: Vec<LeadId> = body.lead_ids.iter().copied().map(LeadId).collect();
    if let Some(from) = body.received_from {
        let to = body.received_to.unwrap_or_else(Utc::now);
        let limit = DRY_RUN_LIMIT + 1;
        let window =
            queries::leads_received_between(&state.pool, caller.org(), from, to, limit).await?;
        if window.len() > DRY_RUN_LIMIT as usize {
            return Err(ApiError::invalid(
                "body.received_from",
                "the window holds more than 1,000 leads; narrow it",
            ));
        }
        leads.extend(window.into_iter().map(LeadId));
    }
    if leads.is_empty() || leads.len() > DRY_RUN_LIMIT as usize {
        return Err(ApiError::invalid(
            "body.lead_ids",
            "give 1 to 1,000 leads, by id or by received_from / received_to",
        ));
    }
    let runs = state
        .router
        .dry_run(caller.org(), &body.rules, &leads)
        .await?;
    Ok(axum::Json(runs.into_iter().map(dry_run_view).collect()))
}

fn dry_run_view(run: DryRun) -> DryRunDecision {
    DryRunDecision {
        lead_id: run.lead_id.0,
        owner: run
            .owner
            .map(|o| serde_json::to_value(o).unwrap_or_default()),
        kept_existing_owner: run.kept_existing_owner,
        not_routed: run.not_routed.map(|r| r.code().to_string()),
        decision: serde_json::to_value(run.decision).unwrap_or_default(),
    }
}

/// A pool to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreatePool {
    /// Display name.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$"
    )]
    name: String,
    /// Most open leads a member may hold for new automatic assignments (at least 1; 0,
    /// negative or too large is refused with `invalid_cap`).
    #[schema(minimum = 1)]
    cap: Option<i64>,
}

/// Create a round-robin pool (admin).
#[utoipa::path(post, path = "/v1/pools", tag = "routing", request_body = CreatePool,
    responses((status = 201, body = Written)))]
async fn create_pool(
    State(state): State<ApiState>,
    caller: Caller,
    _: Allowed<AdminRole>,
    Json(body): Json<CreatePool>,
) -> Result<(StatusCode, axum::Json<Written>), ApiError> {
    caller.internal(&[Role::Admin])?;
    let id = PoolId::new_random();
    let committed = state
        .commands
        .create_pool(
            &caller.meta(),
            caller.org(),
            id,
            &body.name,
            body.cap.map(out_of_range_as_zero),
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(state.written(id.0, committed).await?),
    ))
}

/// A pool and its rotation.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PoolView {
    /// The pool.
    pool_id: Uuid,
    /// Display name.
    name: String,
    /// Cap of open leads per member.
    cap: Option<u32>,
    /// How long its offers stand (none: the org's default), unless the rule entry says.
    acceptance_deadline: Option<DeadlineView>,
    /// Members in join order with weight and place in the rotation.
    #[schema(value_type = Object)]
    rotation: Value,
}

/// A pool with its members and rotation (admin).
#[utoipa::path(get, path = "/v1/pools/{id}", tag = "routing", params(("id" = Uuid, Path)),
    responses((status = 200, body = PoolView)))]
async fn get_pool(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<PoolView>, ApiError> {
    caller.internal(&[Role::Admin])?;
    let pool = state
        .commands
        .state::<Pool>(caller.org(), PoolId(id))
        .await?;
    Ok(axum::Json(PoolView {
        pool_id: id,
        name: pool.name,
        cap: pool.cap,
        acceptance_deadline: pool.acceptance_deadline.map(Into::into),
        rotation: serde_json::to_value(pool.rotation).unwrap_or_default(),
    }))
}

/// A pool's acceptance deadline.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PoolDeadline {
    /// `{"seconds": 1 to 2592000}` or `{"business_hours": 1 to 1000}`; null: the org's
    /// default.
    acceptance_deadline: Option<DeadlineView>,
}

/// Set how long the pool's offers stand before they lapse (admin); a rule entry's own
/// deadline comes first, the org's default after. Refused with `invalid_deadline`.
#[utoipa::path(put, path = "/v1/pools/{id}/acceptance-deadline", tag = "routing",
    params(("id" = Uuid, Path)), request_body = PoolDeadline,
    responses((status = 200, body = Written), (status = 422, body = crate::Problem)))]
async fn set_pool_deadline(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    _: Allowed<AdminRole>,
    Json(body): Json<PoolDeadline>,
) -> Result<axum::Json<Written>, ApiError> {
    caller.internal(&[Role::Admin])?;
    let committed = state
        .commands
        .set_pool_acceptance_deadline(
            &caller.meta(),
            caller.org(),
            PoolId(id),
            body.acceptance_deadline.map(Into::into),
        )
        .await?;
    Ok(axum::Json(state.written(id, committed).await?))
}

/// Kind of pool member.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum PoolMemberKind {
    /// A partner user.
    PartnerUser,
    /// A partner queue.
    Queue,
}

fn member(kind: PoolMemberKind, id: Uuid) -> Member {
    match kind {
        PoolMemberKind::PartnerUser => Member::PartnerUser(PartnerUserId(id)),
        PoolMemberKind::Queue => Member::Queue(QueueId(id)),
    }
}

/// A member to add.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AddPoolMember {
    /// `partner_user` or `queue`.
    kind: PoolMemberKind,
    /// Its id.
    id: Uuid,
    /// Integer weight from 1 to 100 (1 when omitted; anything else is refused with
    /// `invalid_weight`).
    #[schema(minimum = 1, maximum = 100)]
    weight: Option<i64>,
    /// Its own cap of open leads, at least 1 (else `invalid_cap`); the pool's cap when
    /// omitted.
    #[schema(minimum = 1)]
    cap: Option<i64>,
}

/// Add a member to a pool (admin); it takes its turn in join order.
#[utoipa::path(post, path = "/v1/pools/{id}/members", tag = "routing",
    params(("id" = Uuid, Path)), request_body = AddPoolMember, responses((status = 200, body = Written)))]
async fn add_pool_member(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    _: Allowed<AdminRole>,
    Json(body): Json<AddPoolMember>,
) -> Result<axum::Json<Written>, ApiError> {
    caller.internal(&[Role::Admin])?;
    let committed = state
        .commands
        .add_pool_member(
            &caller.meta(),
            caller.org(),
            PoolId(id),
            member(body.kind, body.id),
            body.weight.map(out_of_range_as_zero),
            body.cap.map(out_of_range_as_zero),
        )
        .await?;
    Ok(axum::Json(state.written(id, committed).await?))
}

/// Path of one member of one pool.
#[derive(Debug, Deserialize)]
struct PoolMemberPath {
    id: Uuid,
    kind: PoolMemberKind,
    member_id: Uuid,
}

/// Remove a member from a pool (admin); the others keep their places.
#[utoipa::path(delete, path = "/v1/pools/{id}/members/{kind}/{member_id}", tag = "routing",
    params(("id" = Uuid, Path), ("kind" = PoolMemberKind, Path), ("member_id" = Uuid, Path)),
    responses((status = 200, body = Written)))]
async fn remove_pool_member(
    State(state): State<ApiState>,
    caller: Caller,
    Path(path): Path<PoolMemberPath>,
) -> Result<axum::Json<Written>, ApiError> {
    caller.internal(&[Role::Admin])?;
    let committed = state
        .commands
        .remove_pool_member(
            &caller.meta(),
            caller.org(),
            PoolId(path.id),
            member(path.kind, path.member_id),
        )
        .await?;
    Ok(axum::Json(state.written(path.id, committed).await?))
}

/// A change to one pool member: what is omitted stays as it is.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ChangePoolMember {
    /// Integer weight from 1 to 100 (anything else is refused with `invalid_weight`).
    #[schema(minimum = 1, maximum = 100)]
    weight: Option<i64>,
    /// The member's own cap of open leads, at least 1 (else `invalid_cap`); `null` gives it
    /// the pool's cap again.
    #[serde(default, deserialize_with = "present")]
    #[schema(minimum = 1, nullable)]
    cap: Option<Option<i64>>,
}

/// A field that may be given as `null`: `Some(None)` then, `None` when omitted.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<i64>>, D::Error> {
    Option::<i64>::deserialize(d).map(Some)
}

/// Change a pool member's weight or own cap (admin); it keeps its place in line.
#[utoipa::path(patch, path = "/v1/pools/{id}/members/{kind}/{member_id}", tag = "routing",
    params(("id" = Uuid, Path), ("kind" = PoolMemberKind, Path), ("member_id" = Uuid, Path)),
    request_body = ChangePoolMember, responses((status = 200, body = Written)))]
async fn change_pool_member(
    State(state): State<ApiState>,
    caller: Caller,
    Path(path): Path<PoolMemberPath>,
    _: Allowed<AdminRole>,
    Json(body): Json<ChangePoolMember>,
) -> Result<axum::Json<Written>, ApiError> {
    caller.internal(&[Role::Admin])?;
    let committed = state
        .commands
        .change_pool_member(
            &caller.meta(),
            caller.org(),
            PoolId(path.id),
            member(path.kind, path.member_id),
            body.weight.map(out_of_range_as_zero),
            body.cap.map(|cap| cap.map(out_of_range_as_zero)),
        )
        .await?;
    Ok(axum::Json(state.written(path.id, committed).await?))
}

/// Re-route a lead under the current rules (admin); an owner change gets cause `rerun`.
#[utoipa::path(post, path = "/v1/leads/{id}/rerun", tag = "routing",
    params(("id" = Uuid, Path)), responses((status = 200, body = Written)))]
async fn rerun(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<Written>, ApiError> {
    caller.internal(&[Role::Admin])?;
    let committed = state
        .router
        .route(caller.org(), LeadId(id), Uuid::new_v4(), Trigger::Rerun)
        .await?;
    Ok(axum::Json(state.written(id, committed).await?))
}

/// Every automatic routing decision of a lead, from the event log: rule-set version,
/// matched entry, each candidate with its verdict, the pool before and after (admin: the
/// candidates span partner accounts and territories).
#[utoipa::path(get, path = "/v1/leads/{id}/decisions", tag = "routing",
    params(("id" = Uuid, Path)), responses((status = 200, body = Vec<DecisionRow>)))]
async fn decisions(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<Vec<DecisionRow>>, ApiError> {
    caller.internal(&[Role::Admin])?;
    caller.readable_lead(&state, LeadId(id)).await?;
    let stored = named::routing_decisions(&state.pool, &LeadId(id).to_string()).await?;
    Ok(axum::Json(
        stored
            .into_iter()
            .map(|row| DecisionRow {
                sequence: row.sequence,
                event_type: row.event_type,
                event: row.event,
                recorded_at: row.recorded_at,
            })
            .collect(),
    ))
}

/// One routing decision of a lead, straight from the event log.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct DecisionRow {
    /// The lead's event sequence number.
    pub sequence: i64,
    /// `LeadRouted`, `LeadOwnerKept` or `LeadNotRouted`.
    pub event_type: String,
    /// The event: owner change, reason and the decision record.
    pub event: serde_json::Value,
    /// When it was recorded.
    pub recorded_at: chrono::DateTime<chrono::Utc>,
}

/// An integer the domain's `u32` cannot hold, as 0: refused there with the field's own code
/// (`invalid_weight`, `invalid_cap`) instead of a parser's wording about types.
fn out_of_range_as_zero(n: i64) -> u32 {
    u32::try_from(n).unwrap_or(0)
}

//! The org: creation by the platform operator, PRM (one-way, with the sharing review),
//! the partner-visible fields, the sharing-review report and the partner workflow (how
//! offers to partner users work).

use crate::caller::{AdminRole, Allowed, Caller};
use crate::extract::Json;
use crate::problem::ApiError;
use crate::reads::{MinPosition, Written};
use crate::state::ApiState;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use leadroute_app::access::{AccessError, NewOrg, Role};
use leadroute_app::AppError;
use leadroute_domain::deadline::{BusinessHours, Deadline};
use leadroute_domain::duplicates::{DuplicateKey, KeyKind};
use leadroute_domain::ids::{Actor, OrgId};
use leadroute_domain::org::{Org, PartnerWorkflow, SharingReviewAck, VisibleFields};
use leadroute_projections::projectors::LEADS;
use leadroute_projections::queries;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

pub(super) fn public() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new().routes(routes!(create_org))
}

pub(super) fn authenticated() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(get_org))
        .routes(routes!(enable_prm))
        .routes(routes!(disable_prm))
        .routes(routes!(set_visible_fields))
        .routes(routes!(sharing_review))
        .routes(routes!(get_workflow, set_workflow))
}

/// A new org.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateOrg {
    /// Display name.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$"
    )]
    name: String,
    /// The org's address in partner links (`/p/<slug>/`); default: suggested by the name.
    #[schema(
        min_length = 2,
        max_length = 63,
        pattern = r"^[a-z0-9][a-z0-9-]*[a-z0-9]$"
    )]
    slug: Option<String>,
}

/// A created org with its first admin key (shown once).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CreatedOrg {
    /// The org.
    org_id: Uuid,
    /// The admin key's id.
    admin_key_id: Uuid,
    /// The admin key: `Authorization: Bearer <admin_key>`. Shown once: absent from the
    /// answer to a repeat with the same `Idempotency-Key` (an operator who lost it mints
    /// another with `leadroute org rekey`).
    #[serde(skip_serializing_if = "Option::is_none")]
    admin_key: Option<String>,
    /// Log position of `OrgCreated`.
    position: Option<String>,
}

/// Namespace of the org ids derived from operators' idempotency keys.
const ORG_KEY_NAMESPACE: Uuid = Uuid::from_u128(0x6c6f_7267_2d69_6465_6d70_6f74_656e_7401);

/// Create an org (platform operator token only) and its first admin API key. With an
/// `Idempotency-Key` header the org id derives from the key: a repeat with the same key and
/// name answers 200 with the same org and key id, without the key itself (shown once); the
/// same key with another name is `idempotency_key_reused`.
#[utoipa::path(post, path = "/v1/orgs", tag = "org", request_body = CreateOrg, security(()),
    params(("Idempotency-Key" = Option<String>, Header, description = "1 to 255 characters")),
    responses((status = 201, body = CreatedOrg), (status = 200, body = CreatedOrg),
        (status = 401, body = crate::Problem), (status = 403, body = crate::Problem),
        (status = 409, body = crate::Problem), (status = 422, body = crate::Problem)))]
async fn create_org(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Json(body): Json<CreateOrg>,
) -> Result<(StatusCode, axum::Json<CreatedOrg>), ApiError> {
    let token = crate::caller::bearer(&headers);
    let expected = state
        .operator_token_sha256
        .as_deref()
        .ok_or(ApiError::Forbidden(
            "org creation over HTTP is off: no operator token is configured",
        ))?;
    let given = token.map(|t| ring::digest::digest(&ring::digest::SHA256, t.as_bytes()));
    if given.as_ref().map(|d| d.as_ref()) != Some(expected.as_slice()) {
        return Err(ApiError::Unauthenticated(
            "the operator token is missing or wrong",
        ));
    }
    let key = headers
        .get(crate::idempotency::IDEMPOTENCY_KEY)
        .map(crate::idempotency::key_text)
        .transpose()?;
    let org = key.as_ref().map_or_else(OrgId::new_random, |key| {
        OrgId(Uuid::new_v5(&ORG_KEY_NAMESPACE, key.as_bytes()))
    });
    let meta = leadroute_app::CommandMeta::now(Actor::System("operator".into()));
    match state
        .access
        .create_org_with_id(&meta, org, &body.name, body.slug.as_deref())
        .await
    {
        Ok(NewOrg {
            org,
            committed,
            key,
            secret,
        }) => {
            let written = state.written(org.0, committed).await?;
            Ok((
                StatusCode::CREATED,
                axum::Json(CreatedOrg {
                    org_id: org.0,
                    admin_key_id: key.key_id,
                    admin_key: Some(secret),
                    position: written.position,
                }),
            ))
        }
        Err(AccessError::App(AppError::Refused {
            code: "org_already_exists",
            ..
        })) if key.is_some() => replay_create_org(&state, org, &body.name).await,
        Err(e) => Err(e.into()),
    }
}

/// The answer to a repeated idempotent org creation.
async fn replay_create_org(
    state: &ApiState,
    org: OrgId,
    name: &str,
) -> Result<(StatusCode, axum::Json<CreatedOrg>), ApiError> {
    let existing = state.commands.state::<Org>(org, org).await?;
    let first_key = state.access.first_admin_key(org).await?;
    match first_key {
        // The first request is still between creating the org and its key.
        None => Err(ApiError::Idempotency {
            code: "idempotency_key_in_flight",
            message: "a request with this idempotency key is still running; retry shortly",
        }),
        Some(first) if existing.name == name.trim() => Ok((
            StatusCode::OK,
            axum::Json(CreatedOrg {
                org_id: org.0,
                admin_key_id: first.key_id,
                admin_key: None,
                position: None,
            }),
        )),
        Some(_) => Err(ApiError::Idempotency {
            code: "idempotency_key_reused",
            message: "this idempotency key created an org with another name",
        }),
    }
}

/// Field names partner users may see.
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct FieldSet {
    /// Lead fields (upstream names).
    #[serde(default)]
    lead_fields: BTreeSet<String>,
    /// Partner-account fields.
    #[serde(default)]
    account_fields: BTreeSet<String>,
}

impl From<FieldSet> for VisibleFields {
    fn from(set: FieldSet) -> Self {
        VisibleFields {
            lead: set.lead_fields,
            account: set.account_fields,
        }
    }
}

impl From<VisibleFields> for FieldSet {
    fn from(fields: VisibleFields) -> Self {
        FieldSet {
            lead_fields: fields.lead,
            account_fields: fields.account,
        }
    }
}

/// The caller's org.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct OrgView {
    /// The org.
    org_id: Uuid,
    /// Display name.
    name: String,
    /// Its address in partner links: the partner portal is at `/p/<slug>/` (orgs created
    /// before slugs have none and are addressed by id: `/p/<org_id>/`).
    slug: Option<String>,
    /// PRM is on (for good).
    prm_enabled: bool,
    /// What partner users may see.
    partner_visible_fields: FieldSet,
}

/// The caller's org.
#[utoipa::path(get, path = "/v1/org", tag = "org", responses((status = 200, body = OrgView)))]
async fn get_org(
    State(state): State<ApiState>,
    caller: Caller,
) -> Result<axum::Json<OrgView>, ApiError> {
    caller.internal(&[Role::Admin, Role::ChannelManager, Role::Integration])?;
    let org = state
        .commands
        .state::<Org>(caller.org(), caller.org())
        .await?;
    Ok(axum::Json(OrgView {
        org_id: caller.org().0,
        name: org.name,
        slug: org.slug,
        prm_enabled: org.prm_enabled,
        partner_visible_fields: org.visible_fields.into(),
    }))
}

/// Enabling PRM: the acknowledged sharing review.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct EnablePrm {
    /// The field set the admin reviewed (from `GET /v1/org/sharing-review`); it becomes
    /// the partner-visible fields. Required: without it the command is refused.
    sharing_review: Option<FieldSet>,
}

/// Enable PRM, for good (admin). Refused with `sharing_review_not_acknowledged` without the
/// reviewed field set.
#[utoipa::path(post, path = "/v1/org/prm/enable", tag = "org", request_body = EnablePrm,
    responses((status = 200, body = Written), (status = 409, body = crate::Problem)))]
async fn enable_prm(
    State(state): State<ApiState>,
    caller: Caller,
    _: Allowed<AdminRole>,
    Json(body): Json<EnablePrm>,
) -> Result<axum::Json<Written>, ApiError> {
    let (_, admin) = caller.internal(&[Role::Admin])?;
    let ack = body.sharing_review.map(|fields| SharingReviewAck {
        reviewed_by: admin,
        fields: fields.into(),
    });
    let committed = state
        .commands
        .enable_prm(&caller.meta(), caller.org(), ack)
        .await?;
    Ok(axum::Json(state.written(caller.org().0, committed).await?))
}

/// Disable PRM: always refused (`prm_irreversible` once enabled).
#[utoipa::path(post, path = "/v1/org/prm/disable", tag = "org",
    responses((status = 409, body = crate::Problem)))]
async fn disable_prm(
    State(state): State<ApiState>,
    caller: Caller,
) -> Result<axum::Json<Written>, ApiError> {
    caller.internal(&[Role::Admin])?;
    let committed = state
        .commands
        .disable_prm(&caller.meta(), caller.org())
        .await?;
    Ok(axum::Json(state.written(caller.org().0, committed).await?))
}

/// Replace the fields partner users may see (admin).
#[utoipa::path(put, path = "/v1/org/partner-visible-fields", tag = "org", request_body = FieldSet,
    responses((status = 200, body = Written)))]
async fn set_visible_fields(
    State(state): State<ApiState>,
    caller: Caller,
    _: Allowed<AdminRole>,
    Json(body): Json<FieldSet>,
) -> Result<axum::Json<Written>, ApiError> {
    caller.internal(&[Role::Admin])?;
    let committed = state
        .commands
        .set_partner_visible_fields(&caller.meta(), caller.org(), body.into())
        .await?;
    Ok(axum::Json(state.written(caller.org().0, committed).await?))
}

/// The sharing review: exactly what partner users will see, and what stays internal.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SharingReview {
    /// PRM is already on.
    prm_enabled: bool,
    /// Fields partner users will see (acknowledge this set to enable PRM).
    visible: FieldSet,
    /// Lead fields present in this org's leads that partner users will not see.
    hidden_lead_fields: Vec<String>,
}

/// The sharing-review report (admin): what partner users will be able to see.
#[utoipa::path(get, path = "/v1/org/sharing-review", tag = "org", params(MinPosition),
    responses((status = 200, body = SharingReview)))]
async fn sharing_review(
    State(state): State<ApiState>,
    caller: Caller,
    crate::extract::Query(min): crate::extract::Query<MinPosition>,
) -> Result<axum::Json<SharingReview>, ApiError> {
    caller.internal(&[Role::Admin])?;
    state.caught_up(&[LEADS], &min).await?;
    let org = state
        .commands
        .state::<Org>(caller.org(), caller.org())
        .await?;
    let hidden = queries::lead_field_names(&state.pool, caller.org())
        .await?
        .into_iter()
        .filter(|name| !org.visible_fields.lead.contains(name))
        .collect();
    Ok(axum::Json(SharingReview {
        prm_enabled: org.prm_enabled,
        visible: org.visible_fields.into(),
        hidden_lead_fields: hidden,
    }))
}

/// How offers to partner users work in the org. Every setting may be left out: it then
/// takes its default (a `PUT` replaces the whole set).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Workflow {
    /// Reason codes a partner user may decline an offer with: 1 to 50 distinct codes of
    /// `a-z`, `0-9` and `_` (at most 64 characters); `other` asks for a note.
    #[serde(default = "default_reasons")]
    #[schema(example = json!(["not_my_territory", "no_capacity", "not_qualified", "duplicate", "other"]))]
    decline_reasons: Vec<String>,
    /// How long an offer stands when the rule entry that made it names none (and for
    /// offers by hand or in bulk): `{"seconds": 1 to 2592000}` or `{"business_hours": 1 to
    /// 1000}`; none: offers stand until answered.
    #[serde(default)]
    acceptance_deadline: Option<DeadlineView>,
    /// When the offeree is reminded, in percent (1 to 99) of the time to the deadline;
    /// none: no reminder.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 99)]
    reminder_percent: Option<u8>,
    /// The working week business-hour deadlines count (default Monday to Friday, 09 to 17,
    /// UTC).
    #[serde(default)]
    business_hours: BusinessHoursView,
    /// The lead fields a partner user sees of a lead offered to them (or claimable from
    /// their queue) until they accept it, within the partner-visible fields (default
    /// `company`, `country`, `industry`, `size`).
    #[serde(default = "default_pre_acceptance")]
    pre_acceptance_fields: BTreeSet<String>,
    /// The keys a new lead is matched by against the org's open leads that partners own
    /// (a match is held as `possible_duplicate`): `{"kind": "email" | "domain", "field"}`,
    /// at most 20; empty: no matching. Default: the `email`, and the company domain of the
    /// `email` or the `website`.
    #[serde(default = "default_keys")]
    duplicate_keys: Vec<KeyView>,
}

fn default_keys() -> Vec<KeyView> {
    leadroute_domain::duplicates::default_keys()
        .into_iter()
        .map(Into::into)
        .collect()
}

/// A duplicate key: a kind of value read from a lead field.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct KeyView {
    /// `email` (the address, lowercased) or `domain` (a company's internet domain, from an
    /// email or web address; free-mail domains never match).
    #[schema(value_type = String, example = "domain")]
    kind: KeyKind,
    /// The lead field.
    field: String,
}

impl From<DuplicateKey> for KeyView {
    fn from(key: DuplicateKey) -> Self {
        KeyView {
            kind: key.kind,
            field: key.field,
        }
    }
}

fn default_pre_acceptance() -> BTreeSet<String> {
    PartnerWorkflow::default().pre_acceptance_fields
}

fn default_reasons() -> Vec<String> {
    PartnerWorkflow::default().decline_reasons
}

/// An acceptance deadline: a duration or business hours.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub(crate) enum DeadlineView {
    /// Seconds after the offer.
    Seconds(u32),
    /// Hours of the org's business hours after the offer.
    BusinessHours(u32),
}

/// The org's working week.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct BusinessHoursView {
    /// Offset of the org's local time from UTC, in minutes (-840 to 840).
    utc_offset_minutes: i32,
    /// First working hour of a day (0 to 23).
    start_hour: u32,
    /// End of the working day (1 to 24, after `start_hour`).
    end_hour: u32,
    /// Working days, 1 (Monday) to 7 (Sunday).
    days: BTreeSet<u32>,
}

impl Default for BusinessHoursView {
    fn default() -> Self {
        BusinessHours::default().into()
    }
}

impl From<BusinessHours> for BusinessHoursView {
    fn from(week: BusinessHours) -> Self {
        BusinessHoursView {
            utc_offset_minutes: week.utc_offset_minutes,
            start_hour: week.start_hour,
            end_hour: week.end_hour,
            days: week.days,
        }
    }
}

impl From<DeadlineView> for Deadline {
    fn from(view: DeadlineView) -> Self {
        match view {
            DeadlineView::Seconds(s) => Deadline::Seconds(s),
            DeadlineView::BusinessHours(h) => Deadline::BusinessHours(h),
        }
    }
}

impl From<Deadline> for DeadlineView {
    fn from(deadline: Deadline) -> Self {
        match deadline {
            Deadline::Seconds(s) => DeadlineView::Seconds(s),
            Deadline::BusinessHours(h) => DeadlineView::BusinessHours(h),
        }
    }
}

impl From<PartnerWorkflow> for Workflow {
    fn from(workflow: PartnerWorkflow) -> Self {
        Workflow {
            decline_reasons: workflow.decline_reasons,
            acceptance_deadline: workflow.acceptance_deadline.map(Into::into),
            reminder_percent: workflow.reminder_percent,
            business_hours: workflow.business_hours.into(),
            pre_acceptance_fields: workflow.pre_acceptance_fields,
            duplicate_keys: workflow
                .duplicate_keys
                .into_iter()
                .map(Into::into)
                .collect(),
        }
    }
}

impl From<Workflow> for PartnerWorkflow {
    fn from(workflow: Workflow) -> Self {
        let week = workflow.business_hours;
        PartnerWorkflow {
            decline_reasons: workflow.decline_reasons,
            acceptance_deadline: workflow.acceptance_deadline.map(Into::into),
            reminder_percent: workflow.reminder_percent,
            business_hours: BusinessHours {
                utc_offset_minutes: week.utc_offset_minutes,
                start_hour: week.start_hour,
                end_hour: week.end_hour,
                days: week.days,
            },
            pre_acceptance_fields: workflow.pre_acceptance_fields,
            duplicate_keys: workflow
                .duplicate_keys
                .into_iter()
                .map(|key| DuplicateKey {
                    kind: key.kind,
                    field: key.field,
                })
                .collect(),
        }
    }
}

/// The org's partner workflow (anyone of the org: partner users read the decline reasons
/// they may give).
#[utoipa::path(get, path = "/v1/org/partner-workflow", tag = "org",
    responses((status = 200, body = Workflow)))]
async fn get_workflow(
    State(state): State<ApiState>,
    caller: Caller,
) -> Result<axum::Json<Workflow>, ApiError> {
    let org = state
        .commands
        .state::<Org>(caller.org(), caller.org())
        .await?;
    Ok(axum::Json(org.workflow.into()))
}

/// Replace the org's partner workflow (admin). Refused with `invalid_workflow` naming the
/// setting at fault.
#[utoipa::path(put, path = "/v1/org/partner-workflow", tag = "org", request_body = Workflow,
    responses((status = 200, body = Written), (status = 422, body = crate::Problem)))]
async fn set_workflow(
    State(state): State<ApiState>,
    caller: Caller,
    _: Allowed<AdminRole>,
    Json(body): Json<Workflow>,
) -> Result<axum::Json<Written>, ApiError> {
    caller.internal(&[Role::Admin])?;
    let committed = state
        .commands
        .set_partner_workflow(&caller.meta(), caller.org(), body.into())
        .await?;
    Ok(axum::Json(state.written(caller.org().0, committed).await?))
}

//! A lead: its fields as the partner may see them, accept, decline with a reason, claim
//! from a queue, and its history as the partner may see it.

use super::i18n;
use super::inbox::{field_text, title_and_summary};
use super::page::{
    api_failure, app_failure, failure, posted, signed_post, CsrfOnly, Outcome, Page, Portal,
};
use crate::caller::Caller;
use crate::problem::ApiError;
use crate::state::ApiState;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use chrono::Utc;
use leadroute_app::router::Decline;
use leadroute_app::AppError;
use leadroute_domain::ids::{LeadId, Owner, PartnerUserId, QueueId};
use leadroute_domain::lead::Lead;
use leadroute_domain::queue::Queue;
use leadroute_projections::projectors::leads::status;
use leadroute_projections::projectors::owner_from_columns;
use leadroute_projections::queries;
use minijinja::{context, Value};
use serde::Deserialize;
use uuid::Uuid;

/// How an owner reads to partner user `me`: themselves, a queue of theirs by name, or
/// nothing more than "another partner" / "a queue" / "the channel team".
fn owner_text(
    portal: &Portal,
    me: PartnerUserId,
    owner: Option<Owner>,
    my_queues: &[(Uuid, String)],
) -> String {
    match owner {
        None => portal.t("owner.nobody"),
        Some(Owner::PartnerUser(user)) if user == me => portal.t("owner.you"),
        Some(Owner::PartnerUser(_)) => portal.t("owner.other_partner"),
        Some(Owner::Queue(queue)) => match my_queues.iter().find(|(id, _)| *id == queue.0) {
            Some((_, name)) => portal.t("owner.queue").replace("{name}", name),
            None => portal.t("owner.a_queue"),
        },
        Some(Owner::InternalUser(_)) => portal.t("owner.team"),
    }
}

pub(super) async fn lead_page(
    State(state): State<ApiState>,
    Path((org, id)): Path<(String, Uuid)>,
    Query(outcome): Query<Outcome>,
    headers: HeaderMap,
) -> Result<Page, Page> {
    let mut portal = Portal::open(&state, &org, &headers).await?;
    let here = format!("{}/leads/{id}", portal.base);
    let signed = portal.signed(&here)?;
    let caller = portal.caller(&signed);
    let me = signed.user;
    let lead = readable(&state, &portal, &caller, id).await?;
    let page = match lead_context(&state, &portal, &caller, me, id, lead).await {
        Ok(page) => page,
        Err(e) => return Ok(api_failure(portal.lang, &e)),
    };
    let title = page
        .get_attr("title")
        .ok()
        .map(|t| t.to_string())
        .unwrap_or_default();
    let (notice, error) = portal.outcome(outcome.done.as_deref(), outcome.error.as_deref());
    Ok(portal.render(
        StatusCode::OK,
        "lead.html",
        &title,
        context! { lead => page, notice => notice, error => error },
    ))
}

/// The lead page's context: state, fields as `me` may see them, offer, queue, history.
pub(super) async fn lead_context(
    state: &ApiState,
    portal: &Portal,
    caller: &Caller,
    me: PartnerUserId,
    id: Uuid,
    lead: Lead,
) -> Result<Value, ApiError> {
    let my_queues = queries::member_queues(&state.pool, portal.org, me).await?;
    let (lead_state, queue) = match lead.owner {
        Some(Owner::PartnerUser(owner)) if owner == me && lead.accepted => (status::ACCEPTED, None),
        Some(Owner::PartnerUser(_)) => (status::OFFERED, None),
        Some(Owner::Queue(queue)) => {
            let name = state.commands.state::<Queue>(portal.org, queue).await?.name;
            (
                queries::CLAIMABLE,
                Some(context! { id => queue.0.to_string(), name => name }),
            )
        }
        _ => (status::OFFERED, None),
    };
    let fields = caller.visible_fields(state).await?;
    let shown = fields
        .of(lead_state == status::ACCEPTED)
        .apply(serde_json::to_value(&lead.fields).unwrap_or_default());
    let (title, _) = title_and_summary(&shown, id, portal.lang);
    let field_list: Vec<Value> = shown
        .as_object()
        .map(|map| {
            map.iter()
                .map(|(name, value)| context! { name => name, value => field_text(value) })
                .collect()
        })
        .unwrap_or_default();
    let deadline = lead.offer.as_ref().and_then(|offer| offer.deadline);
    let seconds_left = deadline.map(|d| (d - Utc::now()).num_milliseconds() as f64 / 1000.0);
    let reasons: Vec<Value> = portal
        .org_state
        .workflow
        .decline_reasons
        .iter()
        .map(|code| {
            let key = format!("reason.{code}");
            let label = if i18n::known(&key) {
                portal.t(&key)
            } else {
                code.replace('_', " ")
            };
            context! { code => code, label => label }
        })
        .collect();
    let history = queries::ownership_history(&state.pool, portal.org, LeadId(id))
        .await?
        .unwrap_or_default()
        .into_iter()
        .map(|row| {
            let from = row
                .from_kind
                .as_deref()
                .zip(row.from_id)
                .and_then(|(kind, id)| owner_from_columns(kind, id));
            let to = row
                .to_kind
                .as_deref()
                .zip(row.to_id)
                .and_then(|(kind, id)| owner_from_columns(kind, id));
            let cause_key = format!("cause.{}", row.cause);
            let cause = if i18n::known(&cause_key) {
                portal.t(&cause_key)
            } else {
                row.cause.clone()
            };
            let text = portal
                .t("history.line")
                .replace("{from}", &owner_text(portal, me, from, &my_queues))
                .replace("{to}", &owner_text(portal, me, to, &my_queues))
                .replace("{cause}", &cause);
            context! { at => row.changed_at.to_rfc3339(), text => text }
        })
        .collect::<Vec<_>>();
    Ok(context! {
        id => id.to_string(),
        title => title,
        state => lead_state,
        fields => field_list,
        deadline => deadline.map(|d| d.to_rfc3339()),
        seconds_left => seconds_left,
        queue => queue,
        reasons => reasons,
        history => history,
    })
}

/// After a command on a lead: back to `to` with the notice, or to the lead page with the
/// refusal's message (an unknown or hidden lead: the not-found page).
fn after_command(
    portal: &mut Portal,
    id: Uuid,
    done: Result<(), AppError>,
    to: String,
    notice: &str,
) -> Page {
    match done {
        Ok(()) => portal.redirect(format!("{to}?done={notice}")),
        Err(AppError::NotFound { .. }) => failure(StatusCode::NOT_FOUND, portal.lang, "not_found"),
        Err(e @ AppError::Refused { .. }) => {
            let code = match e.code() {
                "not_in_queue" => return failure(StatusCode::NOT_FOUND, portal.lang, "not_found"),
                code => code,
            };
            portal.redirect(format!("{}/leads/{id}?error={code}", portal.base))
        }
        Err(e) => app_failure(portal.lang, &e),
    }
}

/// Lead `id` if `caller` may see it; else the not-found page (a lead of someone else reads
/// exactly like one that does not exist).
async fn readable(
    state: &ApiState,
    portal: &Portal,
    caller: &Caller,
    id: Uuid,
) -> Result<Lead, Page> {
    caller
        .readable_lead(state, LeadId(id))
        .await
        .map_err(|_| failure(StatusCode::NOT_FOUND, portal.lang, "not_found"))
}

pub(super) async fn accept(
    State(state): State<ApiState>,
    Path((org, id)): Path<(String, Uuid)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Page, Page> {
    let (mut portal, signed, _) =
        signed_post::<CsrfOnly>(&state, &org, &format!("/leads/{id}"), &headers, &body).await?;
    let caller = portal.caller(&signed);
    readable(&state, &portal, &caller, id).await?;
    let done = state
        .commands
        .accept_lead(&caller.meta(), portal.org, LeadId(id), signed.user)
        .await
        .map(|_| ());
    let to = format!("{}/leads/{id}", portal.base);
    Ok(after_command(&mut portal, id, done, to, "accepted"))
}

#[derive(Deserialize)]
pub(super) struct DeclineForm {
    #[serde(rename = "_csrf", default)]
    csrf: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    note: String,
}

pub(super) async fn decline(
    State(state): State<ApiState>,
    Path((org, id)): Path<(String, Uuid)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Page, Page> {
    let (mut portal, signed, form) =
        signed_post::<DeclineForm>(&state, &org, &format!("/leads/{id}"), &headers, &body).await?;
    let caller = portal.caller(&signed);
    readable(&state, &portal, &caller, id).await?;
    let decline = Decline {
        by: signed.user,
        reason: form.reason,
        note: Some(form.note).filter(|note| !note.trim().is_empty()),
    };
    let done = state
        .router
        .decline_lead(&caller.meta(), portal.org, LeadId(id), &decline)
        .await
        .map(|_| ());
    let to = format!("{}/", portal.base);
    Ok(after_command(&mut portal, id, done, to, "declined"))
}

#[derive(Deserialize)]
pub(super) struct ClaimForm {
    #[serde(rename = "_csrf", default)]
    csrf: String,
    queue_id: Uuid,
}

pub(super) async fn claim(
    State(state): State<ApiState>,
    Path((org, id)): Path<(String, Uuid)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Page, Page> {
    let (mut portal, signed, form) =
        signed_post::<ClaimForm>(&state, &org, &format!("/leads/{id}"), &headers, &body).await?;
    let queue = QueueId(form.queue_id);
    let member = match state.commands.state::<Queue>(portal.org, queue).await {
        Ok(queue) => queue.has_member(signed.user, signed.account),
        Err(_) => false,
    };
    if !member {
        return Ok(failure(StatusCode::NOT_FOUND, portal.lang, "not_found"));
    }
    let meta = portal.caller(&signed).meta();
    let done = state
        .commands
        .claim_lead(&meta, portal.org, LeadId(id), queue, signed.user)
        .await
        .map(|_| ());
    let to = format!("{}/leads/{id}", portal.base);
    Ok(after_command(&mut portal, id, done, to, "claimed"))
}

posted!(DeclineForm, ClaimForm);

//! The inbox: offered, accepted and claimable leads with filters, paging and counts, and
//! the list alone for the live refresh.

use super::i18n;
use super::page::{api_failure, Page, Portal, Signed};
use crate::problem::ApiError;
use crate::state::ApiState;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, Utc};
use leadroute_domain::partner_user::Language;
use leadroute_projections::projectors::leads::status;
use leadroute_projections::queries::{self, InboxQuery};
use minijinja::{context, Value};
use serde::Deserialize;
use serde_json::Value as Json;
use uuid::Uuid;

/// Leads per inbox page.
const PAGE_SIZE: i64 = 25;

#[derive(Deserialize, Default)]
pub(super) struct InboxParams {
    state: Option<String>,
    after_at: Option<DateTime<Utc>>,
    after_id: Option<Uuid>,
    done: Option<String>,
    error: Option<String>,
    /// Wait until the read models show this log position (a live update's).
    min_position: Option<String>,
}

/// Field names that make a lead's title, in order of preference.
const TITLE_FIELDS: [&str; 6] = [
    "company",
    "name",
    "full_name",
    "last_name",
    "email",
    "title",
];

/// A field value as text.
pub(super) fn field_text(value: &Json) -> String {
    match value {
        Json::String(s) => s.clone(),
        Json::Null => String::new(),
        other => other.to_string(),
    }
}

/// A lead's title and a one-line summary of its other fields, from the fields shown.
pub(super) fn title_and_summary(fields: &Json, lead: Uuid, lang: Language) -> (String, String) {
    let map = fields.as_object().cloned().unwrap_or_default();
    let title_field = TITLE_FIELDS.iter().find(|name| {
        map.get(**name)
            .is_some_and(|v| !field_text(v).trim().is_empty())
    });
    let title = title_field.map_or_else(
        || {
            format!(
                "{} {}",
                i18n::text(lang, "inbox.lead"),
                &lead.to_string()[..8]
            )
        },
        |name| field_text(&map[*name]),
    );
    let summary: Vec<String> = map
        .iter()
        .filter(|(name, value)| {
            Some(&name.as_str()) != title_field && !field_text(value).is_empty()
        })
        .take(3)
        .map(|(name, value)| format!("{name}: {}", field_text(value)))
        .collect();
    (title, summary.join(" · "))
}

/// The inbox's list (with filters and counts) as the page and the live refresh render it.
pub(super) async fn inbox_context(
    state: &ApiState,
    portal: &Portal,
    signed: &Signed,
    params: &InboxParams,
) -> Result<(String, Value), ApiError> {
    let filter = params
        .state
        .as_deref()
        .filter(|s| [status::OFFERED, status::ACCEPTED, queries::CLAIMABLE].contains(s));
    let after = params.after_at.zip(params.after_id);
    let query = InboxQuery {
        state: filter.map(str::to_string),
        received_since: None,
        after,
        limit: PAGE_SIZE,
    };
    let items = queries::partner_inbox(&state.pool, portal.org, signed.user, &query).await?;
    let (offered, accepted, claimable) =
        queries::inbox_counts(&state.pool, portal.org, signed.user).await?;
    let fields = portal.caller(signed).visible_fields(state).await?;
    let filter_href = |s: Option<&str>| match s {
        Some(s) => format!("{}/?state={s}", portal.base),
        None => format!("{}/", portal.base),
    };
    let filters: Vec<Value> = [
        (None, "filter.all", offered + accepted + claimable),
        (Some(status::OFFERED), "filter.offered", offered),
        (Some(status::ACCEPTED), "filter.accepted", accepted),
        (Some(queries::CLAIMABLE), "filter.claimable", claimable),
    ]
    .into_iter()
    .map(|(s, label, count)| {
        context! { href => filter_href(s), label => portal.t(label), count => count, current => s == filter }
    })
    .collect();
    let next = (items.len() as i64 == PAGE_SIZE).then(|| {
        let last = items.last().expect("a full page has a last item");
        let mut href = format!(
            "{}/?after_at={}&after_id={}",
            portal.base,
            form_urlencoded::byte_serialize(last.received_at.to_rfc3339().as_bytes())
                .collect::<String>(),
            last.lead_id
        );
        if let Some(s) = filter {
            href.push_str(&format!("&state={s}"));
        }
        href
    });
    let items: Vec<Value> = items
        .into_iter()
        .map(|item| {
            let shown = fields.of(item.state == status::ACCEPTED).apply(item.fields);
            let (title, summary) = title_and_summary(&shown, item.lead_id, portal.lang);
            context! {
                id => item.lead_id.to_string(),
                title => title,
                summary => summary,
                state => item.state,
                deadline => item.deadline.map(|d| d.to_rfc3339()),
                seconds_left => item.seconds_left,
                received_at => item.received_at.to_rfc3339(),
            }
        })
        .collect();
    let waiting = offered + claimable;
    let inbox = portal.t("inbox.title");
    let title = if waiting > 0 {
        format!("({waiting}) {inbox}")
    } else {
        inbox
    };
    let mut items_url = format!("{}/inbox/items", portal.base);
    if let Some(s) = filter {
        items_url.push_str(&format!("?state={s}"));
    }
    Ok((
        title,
        context! {
            filters => filters, items => items, next => next, page => "inbox",
            items_url => items_url, caption => portal.t("inbox.caption"),
        },
    ))
}

/// `GET /p/<org>/`: the inbox page.
pub(super) async fn inbox(
    State(state): State<ApiState>,
    Path(org): Path<String>,
    Query(params): Query<InboxParams>,
    headers: HeaderMap,
) -> Result<Page, Page> {
    inbox_page(&state, &org, &params, &headers, "inbox.html").await
}

/// `GET /p/<org>/inbox/items`: the inbox list alone (what the live refresh swaps in).
pub(super) async fn inbox_items(
    State(state): State<ApiState>,
    Path(org): Path<String>,
    Query(params): Query<InboxParams>,
    headers: HeaderMap,
) -> Result<Page, Page> {
    inbox_page(&state, &org, &params, &headers, "inbox_items.html").await
}

/// The inbox rendered with `template`. With `min_position` (a live update's), it is read
/// once the read models have that change (or after the usual read wait: the next update
/// catches up).
async fn inbox_page(
    state: &ApiState,
    org: &str,
    params: &InboxParams,
    headers: &HeaderMap,
    template: &str,
) -> Result<Page, Page> {
    let mut portal = Portal::open(state, org, headers).await?;
    let signed = portal.signed(&format!("{}/", portal.base))?;
    let min = crate::reads::MinPosition {
        min_position: params.min_position.clone(),
    };
    let read_models = [
        leadroute_projections::projectors::DIRECTORY,
        leadroute_projections::projectors::LEADS,
    ];
    if let Err(e) = state.caught_up(&read_models, &min).await {
        tracing::debug!(error = %e, "the live inbox reads before its update is projected");
    }
    let (title, page) = inbox_context(state, &portal, &signed, params)
        .await
        .map_err(|e| api_failure(portal.lang, &e))?;
    let (notice, error) = portal.outcome(params.done.as_deref(), params.error.as_deref());
    Ok(portal.render(
        StatusCode::OK,
        template,
        &title,
        context! { notice => notice, error => error, ..page },
    ))
}

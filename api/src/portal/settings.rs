//! Availability and settings: pause new leads or be out of office until a date, resume,
//! language and time zone.

use super::page::{app_failure, posted, signed_post, CsrfOnly, Outcome, Page, Portal};
use super::render;
use crate::state::ApiState;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use chrono::{Datelike, NaiveDate, TimeZone, Utc};
use leadroute_app::AppError;
use leadroute_domain::partner_user::{Language, Preferences};
use minijinja::context;
use serde::Deserialize;

pub(super) async fn settings_page(
    State(state): State<ApiState>,
    Path(org): Path<String>,
    Query(outcome): Query<Outcome>,
    headers: HeaderMap,
) -> Result<Page, Page> {
    let mut portal = Portal::open(&state, &org, &headers).await?;
    let here = format!("{}/settings", portal.base);
    let signed = portal.signed(&here)?;
    let now = Utc::now();
    let user = signed.state.clone();
    let paused = user.paused_at(now);
    let availability = match (paused, user.paused_until) {
        (false, _) => portal.t("availability.available"),
        (true, None) => portal.t("availability.paused"),
        (true, Some(until)) => portal
            .t("availability.paused_until")
            .replace("{date}", &render::when(until, &portal.zone)),
    };
    let chosen_language = user.preferences.language.map(Language::tag);
    let zones: Vec<&str> = chrono_tz::TZ_VARIANTS.iter().map(|z| z.name()).collect();
    let today = now.with_timezone(&portal.zone).date_naive().to_string();
    let (notice, error) = portal.outcome(outcome.done.as_deref(), outcome.error.as_deref());
    let title = portal.t("settings.title");
    Ok(portal.render(
        StatusCode::OK,
        "settings.html",
        &title,
        context! {
            page => "settings", paused => paused, availability => availability,
            chosen_language => chosen_language, zones => zones, today => today,
            notice => notice, error => error,
        },
    ))
}

/// After a settings command: back to the settings page with the notice or the error.
fn after_setting(portal: &mut Portal, done: Result<(), AppError>, notice: &str) -> Page {
    let base = format!("{}/settings", portal.base);
    match done {
        Ok(()) => portal.redirect(format!("{base}?done={notice}")),
        Err(e @ AppError::Refused { .. }) => portal.redirect(format!("{base}?error={}", e.code())),
        Err(e) => app_failure(portal.lang, &e),
    }
}

#[derive(Deserialize)]
pub(super) struct PauseForm {
    #[serde(rename = "_csrf", default)]
    csrf: String,
    #[serde(default)]
    until: String,
}

pub(super) async fn pause(
    State(state): State<ApiState>,
    Path(org): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Page, Page> {
    let (mut portal, signed, form) =
        signed_post::<PauseForm>(&state, &org, "/settings", &headers, &body).await?;
    // Back on that date: the pause ends at its first moment in the reader's zone.
    let until = match form.until.trim() {
        "" => None,
        date => match date
            .parse::<NaiveDate>()
            .ok()
            .filter(|d| d.year_ce().1 < 10_000)
            .and_then(|d| {
                portal
                    .zone
                    .from_local_datetime(&d.and_hms_opt(0, 0, 0)?)
                    .earliest()
            }) {
            Some(at) => Some(at.with_timezone(&Utc)),
            None => {
                let base = format!("{}/settings?error=invalid_date", portal.base);
                return Ok(portal.redirect(base));
            }
        },
    };
    let (org, user, meta) = (portal.org, signed.user, portal.caller(&signed).meta());
    let done = state
        .commands
        .pause_auto_assignment(&meta, org, user, until)
        .await
        .map(|_| ());
    Ok(after_setting(&mut portal, done, "paused"))
}

pub(super) async fn resume(
    State(state): State<ApiState>,
    Path(org): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Page, Page> {
    let (mut portal, signed, _) =
        signed_post::<CsrfOnly>(&state, &org, "/settings", &headers, &body).await?;
    let (org, user, meta) = (portal.org, signed.user, portal.caller(&signed).meta());
    let done = state
        .commands
        .resume_auto_assignment(&meta, org, user)
        .await
        .map(|_| ());
    Ok(after_setting(&mut portal, done, "resumed"))
}

#[derive(Deserialize)]
pub(super) struct PreferencesForm {
    #[serde(rename = "_csrf", default)]
    csrf: String,
    #[serde(default)]
    language: String,
    #[serde(default)]
    time_zone: String,
}

pub(super) async fn preferences(
    State(state): State<ApiState>,
    Path(org): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Page, Page> {
    let (mut portal, signed, form) =
        signed_post::<PreferencesForm>(&state, &org, "/settings", &headers, &body).await?;
    let preferences = Preferences {
        language: Language::of_tag(&form.language),
        time_zone: Some(form.time_zone.trim().to_string())
            .filter(|zone| !zone.is_empty() && zone.len() <= 64),
    };
    let (org, user, meta) = (portal.org, signed.user, portal.caller(&signed).meta());
    let done = state
        .commands
        .set_preferences(&meta, org, user, preferences)
        .await
        .map(|_| ());
    Ok(after_setting(&mut portal, done, "saved"))
}

posted!(PauseForm, PreferencesForm);

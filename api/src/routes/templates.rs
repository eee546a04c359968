//! Notification templates and sent emails over HTTP (admin): the current templates (the
//! built-in default is version 0), saving a new version (refused with the line and reason
//! when it does not parse or names an unknown variable), a preview with sample data, and
//! the emails recorded by the mailer.

use crate::caller::{AdminRole, Allowed, Caller};
use crate::extract::{Json, Path, Query};
use crate::problem::ApiError;
use crate::reads::Written;
use crate::state::ApiState;
use crate::views::{self, NotificationRow};
use axum::extract::State;
use leadroute_app::access::Role;
use leadroute_app::mail;
use leadroute_app::AppError;
use leadroute_domain::templates::{Template, TemplateKind, Templates};
use leadroute_projections::queries;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

pub(super) fn router() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(list_templates))
        .routes(routes!(set_template))
        .routes(routes!(preview))
        .routes(routes!(notifications))
}

/// `access`, `assignment`, `reminder` or `password_reset`.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Kind {
    /// The access email with the set-password link.
    Access,
    /// The lead assignment email.
    Assignment,
    /// The reminder of an offer before its acceptance deadline.
    Reminder,
    /// The new set-password link of a forgotten password.
    PasswordReset,
}

impl From<Kind> for TemplateKind {
    fn from(kind: Kind) -> Self {
        match kind {
            Kind::Access => TemplateKind::Access,
            Kind::Assignment => TemplateKind::Assignment,
            Kind::Reminder => TemplateKind::Reminder,
            Kind::PasswordReset => TemplateKind::PasswordReset,
        }
    }
}

/// A template's content.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Body {
    /// Subject line (minijinja).
    subject: String,
    /// Plain-text body (minijinja).
    text: String,
    /// HTML body (minijinja), optional.
    html: Option<String>,
}

impl From<Body> for Template {
    fn from(body: Body) -> Self {
        Template {
            subject: body.subject,
            text: body.text,
            html: body.html,
        }
    }
}

/// One current template.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CurrentTemplate {
    /// Which.
    kind: Kind,
    /// Its version (0: the built-in default).
    version: u32,
    /// Its content.
    template: Body,
}

async fn current(state: &ApiState, caller: &Caller) -> Result<Templates, ApiError> {
    match state
        .commands
        .state::<Templates>(caller.org(), caller.org())
        .await
    {
        Ok(templates) => Ok(templates),
        Err(AppError::NotFound { .. }) => Ok(Templates::default()),
        Err(e) => Err(e.into()),
    }
}

/// The org's current templates (admin).
#[utoipa::path(get, path = "/v1/templates", tag = "notifications",
    responses((status = 200, body = Vec<CurrentTemplate>)))]
async fn list_templates(
    State(state): State<ApiState>,
    caller: Caller,
) -> Result<axum::Json<Vec<CurrentTemplate>>, ApiError> {
    caller.internal(&[Role::Admin])?;
    let templates = current(&state, &caller).await?;
    let out = [
        Kind::Access,
        Kind::Assignment,
        Kind::Reminder,
        Kind::PasswordReset,
    ]
    .map(|kind| {
        let (version, template) = templates
            .get(kind.into())
            .cloned()
            .unwrap_or_else(|| (0, mail::default_template(kind.into())));
        CurrentTemplate {
            kind,
            version,
            template: Body {
                subject: template.subject,
                text: template.text,
                html: template.html,
            },
        }
    });
    Ok(axum::Json(out.into()))
}

/// Save a new version of a template (admin); saving the current content again changes
/// nothing. Variables: see the README ("Notifications").
#[utoipa::path(put, path = "/v1/templates/{kind}", tag = "notifications",
    params(("kind" = Kind, Path)), request_body = Body,
    responses((status = 200, body = Written), (status = 422, body = crate::Problem)))]
async fn set_template(
    State(state): State<ApiState>,
    caller: Caller,
    Path(kind): Path<Kind>,
    _: Allowed<AdminRole>,
    Json(body): Json<Body>,
) -> Result<axum::Json<Written>, ApiError> {
    caller.internal(&[Role::Admin])?;
    let committed = state
        .commands
        .set_template(&caller.meta(), caller.org(), kind.into(), &body.into())
        .await?;
    Ok(axum::Json(state.written(caller.org().0, committed).await?))
}

/// A rendered preview.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Preview {
    /// Subject.
    subject: String,
    /// Plain-text body.
    text: String,
    /// HTML body.
    html: Option<String>,
}

/// A draft to preview; without `subject` and `text`, the current template is previewed.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Draft {
    /// Subject line.
    subject: Option<String>,
    /// Plain-text body.
    text: Option<String>,
    /// HTML body.
    html: Option<String>,
}

/// Render a template with sample data (admin): the draft sent, or the current template.
#[utoipa::path(post, path = "/v1/templates/{kind}/preview", tag = "notifications",
    params(("kind" = Kind, Path)), request_body = Draft,
    responses((status = 200, body = Preview), (status = 422, body = crate::Problem)))]
async fn preview(
    State(state): State<ApiState>,
    caller: Caller,
    Path(kind): Path<Kind>,
    _: Allowed<AdminRole>,
    Json(draft): Json<Draft>,
) -> Result<axum::Json<Preview>, ApiError> {
    caller.internal(&[Role::Admin])?;
    let template: Template = match (draft.subject, draft.text) {
        (Some(subject), Some(text)) => Template {
            subject,
            text,
            html: draft.html,
        },
        (Some(_), None) | (None, Some(_)) => return Err(ApiError::invalid(
            "body",
            "a draft needs both subject and text (send neither to preview the current template)",
        )),
        (None, None) => current(&state, &caller)
            .await?
            .get(kind.into())
            .map(|(_, t)| t.clone())
            .unwrap_or_else(|| mail::default_template(kind.into())),
    };
    if let Some(problem) = mail::problem(kind.into(), &template) {
        return Err(ApiError::invalid("body", problem));
    }
    let rendered = mail::render(&template, &mail::sample(kind.into()))
        .map_err(|e| ApiError::invalid("body", e.to_string()))?;
    Ok(axum::Json(Preview {
        subject: rendered.subject,
        text: rendered.text,
        html: rendered.html,
    }))
}

/// Paging of the recorded emails.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct Limit {
    /// At most this many, 1 to 500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
}

/// The emails the mailer recorded (sent or being sent), newest first (admin).
#[utoipa::path(get, path = "/v1/notifications", tag = "notifications", params(Limit),
    responses((status = 200, body = Vec<NotificationRow>)))]
async fn notifications(
    State(state): State<ApiState>,
    caller: Caller,
    Query(limit): Query<Limit>,
) -> Result<axum::Json<Vec<NotificationRow>>, ApiError> {
    caller.internal(&[Role::Admin])?;
    let rows = queries::notifications(
        &state.pool,
        caller.org(),
        crate::reads::page_limit(limit.limit, 100, 500)?,
    )
    .await?;
    Ok(axum::Json(views::all(rows)))
}

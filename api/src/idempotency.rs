//! `Idempotency-Key` on commands: the first request with a key runs and its final answer
//! (2xx or 4xx) is stored; a repeat with the same key and the same request returns that
//! answer and writes nothing; the same key with a different request, or while the first is
//! still running, is refused. Keys are per caller. A 5xx answer or a lost
//! optimistic-concurrency race is not stored, so the client may retry with the same key;
//! a key whose first run was abandoned for a minute can be taken over. An answer carrying
//! a secret (a new API key) is not stored: its repeat says `secret_shown_once`.

use super::caller::Caller;
use super::problem::ApiError;
use crate::state::ApiState;
use axum::body::{to_bytes, Body};
use axum::extract::{FromRequestParts, Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ring::digest::{Context, SHA256};

/// The request header.
pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
/// Set on a replayed answer.
pub const REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");
/// Largest body read for hashing or stored.
const MAX_BODY: usize = 1 << 20;

/// An `Idempotency-Key` header's value: 1 to 255 visible ASCII characters.
pub(crate) fn key_text(value: &HeaderValue) -> Result<String, ApiError> {
    value
        .to_str()
        .ok()
        .filter(|k| (1..=255).contains(&k.len()))
        .map(str::to_string)
        .ok_or_else(|| {
            ApiError::invalid(
                "header.idempotency-key",
                "must be 1 to 255 visible ASCII characters",
            )
        })
}

/// Middleware on the authenticated routes (after `authenticate`).
pub async fn idempotent(
    State(state): State<ApiState>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let Some(key) = request.headers().get(&IDEMPOTENCY_KEY).cloned() else {
        return Ok(next.run(request).await);
    };
    if matches!(*request.method(), Method::GET | Method::HEAD) {
        return Ok(next.run(request).await);
    }
    let key = key_text(&key)?;
    let (mut parts, body) = request.into_parts();
    let caller = Caller::from_request_parts(&mut parts, &state).await?;
    let body = to_bytes(body, MAX_BODY)
        .await
        .map_err(|_| ApiError::TooLarge)?;
    let mut hash = Context::new(&SHA256);
    for part in [
        parts.method.as_str().as_bytes(),
        b" ",
        parts.uri.to_string().as_bytes(),
        b"\n",
        &body,
    ] {
        hash.update(part);
    }
    let hash = hash.finish();
    let scope = (caller.org().0, caller.principal_id(), key);
    // A first use claims the key; so does a repeat whose first run was abandoned (its
    // process died) more than a minute ago.
    let claimed = sqlx::query(
        "INSERT INTO idempotency_keys (org_id, principal, key, request_sha256)
         VALUES ($1, $2, $3, $4)
         ON CONFLICT (org_id, principal, key) DO UPDATE SET created_at = clock_timestamp()
          WHERE idempotency_keys.status IS NULL
            AND idempotency_keys.request_sha256 = excluded.request_sha256
            AND idempotency_keys.created_at < clock_timestamp() - interval '60 seconds'",
    )
    .bind(scope.0)
    .bind(scope.1)
    .bind(&scope.2)
    .bind(hash.as_ref())
    .execute(&state.pool)
    .await?
    .rows_affected()
        == 1;
    if !claimed {
        return replay(&state, &scope, hash.as_ref()).await;
    }
    // Run and record on a task of its own: a client that disconnects does not cancel the
    // command half-way or leave the key claimed.
    let request = Request::from_parts(parts, Body::from(body));
    let task = tokio::spawn(async move {
        let response = next.run(request).await;
        record(&state, &scope, response).await
    });
    task.await
        .map_err(|e| ApiError::App(leadroute_app::AppError::Store(Box::new(e))))?
}

/// Marks a response that carries a secret shown once (a new API key): its repeat answers
/// `secret_shown_once` instead of the stored body, so no secret is kept.
#[derive(Debug, Clone, Copy)]
pub struct ShownOnce;

/// Store the final answer of a claimed key, or release the key when the answer is not
/// final (5xx, or a conflict that a retry may win).
async fn record(
    state: &ApiState,
    (org, principal, key): &(uuid::Uuid, uuid::Uuid, String),
    response: Response,
) -> Result<Response, ApiError> {
    let shown_once = response.extensions().get::<ShownOnce>().is_some();
    let (parts, body) = response.into_parts();
    let body = to_bytes(body, MAX_BODY).await.unwrap_or_default();
    let retryable = parts.status.is_server_error()
        || serde_json::from_slice::<serde_json::Value>(&body)
            .is_ok_and(|v| v["code"] == "concurrent_modification");
    let (status, stored) = if shown_once {
        let problem = ApiError::Idempotency {
            code: "secret_shown_once",
            message: "the first request created a secret that is shown only once",
        }
        .into_response();
        let status = problem.status();
        let bytes = to_bytes(problem.into_body(), MAX_BODY)
            .await
            .unwrap_or_default();
        (status, bytes)
    } else {
        (parts.status, body.clone())
    };
    let store = if retryable {
        sqlx::query(
            "DELETE FROM idempotency_keys WHERE org_id = $1 AND principal = $2 AND key = $3",
        )
    } else {
        sqlx::query(
            "UPDATE idempotency_keys SET status = $4, body = $5
              WHERE org_id = $1 AND principal = $2 AND key = $3",
        )
    };
    store
        .bind(org)
        .bind(principal)
        .bind(key)
        .bind(i16::try_from(status.as_u16()).unwrap_or(500))
        .bind(stored.as_ref())
        .execute(&state.pool)
        .await?;
    Ok(Response::from_parts(parts, Body::from(body)))
}

async fn replay(
    state: &ApiState,
    (org, principal, key): &(uuid::Uuid, uuid::Uuid, String),
    hash: &[u8],
) -> Result<Response, ApiError> {
    let (stored_hash, status, body): (Vec<u8>, Option<i16>, Option<Vec<u8>>) = sqlx::query_as(
        "SELECT request_sha256, status, body FROM idempotency_keys
          WHERE org_id = $1 AND principal = $2 AND key = $3",
    )
    .bind(org)
    .bind(principal)
    .bind(key)
    .fetch_one(&state.pool)
    .await?;
    if stored_hash != hash {
        return Err(ApiError::Idempotency {
            code: "idempotency_key_reused",
            message: "this idempotency key was used for a different request",
        });
    }
    let (Some(status), Some(body)) = (status, body) else {
        return Err(ApiError::Idempotency {
            code: "idempotency_key_in_flight",
            message: "the first request with this idempotency key is still running",
        });
    };
    let status = StatusCode::from_u16(status as u16).unwrap_or(StatusCode::OK);
    let content_type = if status.is_success() {
        "application/json"
    } else {
        "application/problem+json"
    };
    let empty = body.is_empty();
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    if empty {
        headers.remove(axum::http::header::CONTENT_TYPE);
    } else {
        headers.insert(
            axum::http::header::CONTENT_TYPE,
            HeaderValue::from_static(content_type),
        );
    }
    headers.insert(REPLAYED, HeaderValue::from_static("true"));
    Ok(response)
}

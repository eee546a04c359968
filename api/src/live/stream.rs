//! `GET /v1/stream`: one partner user's server-sent events, from the process's feed.

use super::feed::{LiveFeed, Notice};
use crate::caller::Caller;
use crate::problem::ApiError;
use crate::state::ApiState;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::{Stream, StreamExt};
use leadroute_app::access::Principal;
use leadroute_domain::ids::{OrgId, PartnerAccountId, PartnerUserId};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::broadcast;

/// How often a stream sends a heartbeat comment and re-checks its session.
pub const HEARTBEAT: Duration = Duration::from_secs(15);
/// Milliseconds a browser waits before reconnecting (the SSE `retry` field).
const RETRY_MS: u64 = 2000;

/// The partner user a stream serves.
struct Listener {
    org: OrgId,
    user: PartnerUserId,
    account: PartnerAccountId,
    token: String,
    checked: Instant,
}

impl Listener {
    /// Whether the session still holds (re-checked every [`HEARTBEAT`]).
    async fn still_signed_in(&mut self, state: &ApiState) -> bool {
        if self.checked.elapsed() < HEARTBEAT {
            return true;
        }
        self.checked = Instant::now();
        matches!(
            state.access.authenticate(&self.token).await,
            Ok(Principal::Partner { user, .. }) if user == self.user
        )
    }

    fn event(&self, notice: &Notice) -> Option<Event> {
        let change = notice.change_for(self.user, self.account)?;
        let data = serde_json::json!({
            "lead_id": notice.lead.0, "change": change, "position": notice.position,
        });
        Some(
            Event::default()
                .id(notice.seq.to_string())
                .event("lead")
                .data(data.to_string()),
        )
    }
}

/// The session token a stream request carries: the bearer token, else the portal's
/// session cookie (an `EventSource` cannot set headers). Reads only: the cookie opens no
/// command, so it needs no CSRF token here.
fn token_of(headers: &HeaderMap) -> Option<String> {
    crate::caller::bearer(headers)
        .map(str::to_string)
        .or_else(|| crate::portal::session_cookie(headers))
}

/// Server-sent events of the caller's inbox and queue changes (partner users; the session
/// token as `Authorization: Bearer`, or the portal's session cookie). Each event is `event:
/// lead`, `id:` its position in the published stream, `data: {"lead_id", "change",
/// "position"}` (`position`: the log position to read with as `min_position`), with
/// `change` one of `offered`, `claimable`, `claimed`, `taken` (claimed by another member or
/// moved out of the caller's queue), `accepted`, `declined`, `recalled`, `removed`,
/// `reminded`, `updated`. The stream opens with `event: ready` and the position it starts
/// from; a reconnect with `Last-Event-ID` receives every event after that position first.
/// `event: reload` means the missed events are too many or too old to replay (read the
/// inbox again); `event: signed_out` ends a stream whose session ended. A comment every 15
/// s keeps the connection open. 503 `stream_unavailable` when this API process does not
/// follow the published events.
#[utoipa::path(get, path = "/v1/stream", tag = "auth",
    params(("Last-Event-ID" = Option<String>, Header, description = "resume after this event")),
    responses((status = 200, content_type = "text/event-stream", body = String),
        (status = 401, body = crate::Problem), (status = 403, body = crate::Problem),
        (status = 503, body = crate::Problem)))]
pub(crate) async fn stream(
    State(state): State<ApiState>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, std::convert::Infallible>>>, ApiError> {
    let token = token_of(&headers).ok_or(ApiError::Unauthenticated(
        "send the session token as `Authorization: Bearer <token>` or sign in to the portal",
    ))?;
    let principal = crate::caller::principal_of(&state, &token).await?;
    let (user, account) = Caller(principal.clone()).partner()?;
    let org = Caller(principal).org();
    let feed = state.live.clone().ok_or(ApiError::Unavailable {
        code: "stream_unavailable",
        message: "this API process does not follow the published events (no NATS configured)",
    })?;
    let resume_after = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let (start, receiver) = feed.subscribe();
    let listener = Listener {
        org,
        user,
        account,
        token,
        checked: Instant::now(),
    };
    let events = async_stream(feed, state, listener, receiver, start, resume_after);
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(HEARTBEAT)))
}

/// What a stream does between events.
enum Step {
    /// Replay from JetStream after this sequence, then go on live.
    CatchUp(u64),
    /// Wait for the next live notice.
    Live,
    /// Stop.
    Done,
}

/// The events of one stream (see [`stream`]).
fn async_stream(
    feed: LiveFeed,
    state: ApiState,
    listener: Listener,
    receiver: broadcast::Receiver<Arc<Notice>>,
    start: u64,
    resume_after: Option<u64>,
) -> impl Stream<Item = Result<Event, std::convert::Infallible>> {
    let first = Event::default()
        .id(resume_after.unwrap_or(start).to_string())
        .event("ready")
        .retry(Duration::from_millis(RETRY_MS))
        .data("{}");
    let step = match resume_after {
        Some(after) if after < start => Step::CatchUp(after),
        _ => Step::Live,
    };
    // `sent`: the last sequence told; nothing at or before it is sent again.
    let sent = resume_after.unwrap_or(start);
    let context = (feed, state, listener, receiver, step, sent, start);
    let rest = futures::stream::unfold(context, |mut context| async move {
        let (feed, state, listener, receiver, step, sent, live_from) = &mut context;
        loop {
            match std::mem::replace(step, Step::Live) {
                Step::Done => return None,
                Step::CatchUp(after) => {
                    match feed
                        .missed(listener.org, after, *live_from, &state.commands)
                        .await
                    {
                        Ok(Some(notices)) => {
                            let events: Vec<Event> = notices
                                .iter()
                                .filter(|n| n.seq > *sent)
                                .filter_map(|n| listener.event(n))
                                .collect();
                            *sent = (*sent)
                                .max(*live_from)
                                .max(notices.last().map_or(0, |n| n.seq));
                            if !events.is_empty() {
                                return Some((events, context));
                            }
                        }
                        Ok(None) | Err(_) => {
                            *sent = (*sent).max(*live_from);
                            let reload = Event::default()
                                .id(sent.to_string())
                                .event("reload")
                                .data("{}");
                            return Some((vec![reload], context));
                        }
                    }
                }
                Step::Live => {
                    let next = tokio::time::timeout(HEARTBEAT, receiver.recv()).await;
                    if !listener.still_signed_in(state).await {
                        *step = Step::Done;
                        let out = Event::default().event("signed_out").data("{}");
                        return Some((vec![out], context));
                    }
                    match next {
                        Err(_) => continue,
                        Ok(Ok(notice)) => {
                            if notice.org != listener.org || notice.seq <= *sent {
                                continue;
                            }
                            *sent = notice.seq;
                            if let Some(event) = listener.event(&notice) {
                                return Some((vec![event], context));
                            }
                        }
                        Ok(Err(broadcast::error::RecvError::Lagged(_))) => {
                            // Fell behind: replay from JetStream up to where the feed is.
                            let (now, fresh) = feed.subscribe();
                            *receiver = fresh;
                            *live_from = now;
                            *step = Step::CatchUp(*sent);
                        }
                        Ok(Err(broadcast::error::RecvError::Closed)) => return None,
                    }
                }
            }
        }
    });
    futures::stream::once(async move { first })
        .chain(rest.flat_map(futures::stream::iter))
        .map(Ok)
}

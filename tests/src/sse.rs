//! A server-sent events client for the live-stream tests and benchmark: one streaming
//! HTTP response read into `(id, event, data)` records as the SSE format defines them.

use std::time::Duration;

/// One event of a stream.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseEvent {
    /// Its `id`, if it had one.
    pub id: Option<String>,
    /// Its `event` type (`message` when unnamed).
    pub event: String,
    /// Its `data` lines, joined by newlines.
    pub data: String,
}

impl SseEvent {
    /// The data as JSON (`Null` when it is not).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.data).unwrap_or_default()
    }
}

/// An open stream.
pub struct SseStream {
    response: reqwest::Response,
    buffer: String,
}

impl SseStream {
    /// `GET url` with `token` as bearer, resuming after `last_event_id` when given; `Err`
    /// with the status and body when the answer is not a stream.
    pub async fn open(
        client: &reqwest::Client,
        url: &str,
        token: &str,
        last_event_id: Option<&str>,
    ) -> Result<SseStream, (reqwest::StatusCode, String)> {
        let mut request = client
            .get(url)
            .bearer_auth(token)
            .header("accept", "text/event-stream");
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id);
        }
        let response = request
            .send()
            .await
            .expect("the stream request is answered");
        let status = response.status();
        if !status.is_success() {
            return Err((status, response.text().await.unwrap_or_default()));
        }
        Ok(SseStream {
            response,
            buffer: String::new(),
        })
    }

    /// The next event, or `None` when none arrives within `wait` (or the stream ended).
    /// Comments (heartbeats) are skipped.
    pub async fn next(&mut self, wait: Duration) -> Option<SseEvent> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(event) = self.take_event() {
                return Some(event);
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk())
                .await
                .ok()?
                .ok()??;
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    /// Every event that arrives until none has for `quiet`.
    pub async fn until_quiet(&mut self, quiet: Duration) -> Vec<SseEvent> {
        let mut events = Vec::new();
        while let Some(event) = self.next(quiet).await {
            events.push(event);
        }
        events
    }

    /// The first complete event in the buffer, if any (comment-only blocks are dropped).
    fn take_event(&mut self) -> Option<SseEvent> {
        loop {
            let end = self.buffer.find("\n\n")?;
            let block: String = self.buffer.drain(..end + 2).collect();
            let mut event = SseEvent {
                event: "message".into(),
                ..SseEvent::default()
            };
            let mut data = Vec::new();
            let mut any = false;
            for line in block.lines() {
                let (field, value) = line.split_once(':').unwrap_or((line, ""));
                let value = value.strip_prefix(' ').unwrap_or(value);
                match field {
                    "id" => event.id = Some(value.to_string()),
                    "event" => event.event = value.to_string(),
                    "data" => data.push(value.to_string()),
                    _ => continue,
                }
                any = true;
            }
            if any {
                event.data = data.join("\n");
                return Some(event);
            }
        }
    }
}

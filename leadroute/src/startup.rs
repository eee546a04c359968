//! Start-up that waits for its servers: a process started while PostgreSQL or NATS is down
//! (or still starting) retries its first connection with a growing pause (0.5 s doubling
//! to 10 s), logging each failure, for at most `--startup-wait-secs` before it gives up.

use std::future::Future;
use std::time::{Duration, Instant};

/// Longest pause between two attempts.
const MAX_PAUSE: Duration = Duration::from_secs(10);

/// Run `attempt` until it succeeds or `wait` has passed since the first try; the last error
/// is returned then. `what` names the step in the log.
pub async fn retry<T, F, Fut>(what: &str, wait: Duration, mut attempt: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<T>>,
{
    let started = Instant::now();
    let mut pause = Duration::from_millis(500);
    loop {
        match attempt().await {
            Ok(value) => return Ok(value),
            Err(e) if started.elapsed() + pause <= wait => {
                tracing::warn!(error = %format!("{e:#}"), retry_in = ?pause, "{what} failed; retrying");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(MAX_PAUSE);
            }
            Err(e) => {
                return Err(e.context(format!(
                    "{what}: still failing after {:?}",
                    started.elapsed()
                )))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test(start_paused = true)]
    async fn retries_until_the_attempt_succeeds() {
        let tries = AtomicU32::new(0);
        let value = retry("connecting", Duration::from_secs(60), || async {
            match tries.fetch_add(1, Ordering::SeqCst) {
                0..=2 => anyhow::bail!("down"),
                n => Ok(n),
            }
        })
        .await
        .unwrap();
        assert_eq!(value, 3);
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_with_the_last_error_after_the_wait() {
        let error = retry("connecting", Duration::from_secs(5), || async {
            anyhow::bail!("still down") as anyhow::Result<()>
        })
        .await
        .unwrap_err();
        assert!(format!("{error:#}").contains("still down"), "{error:#}");
    }
}

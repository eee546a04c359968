//! One process at a time for a periodic round (the waker's sweep, the scheduler's tick):
//! the round runs only in the process that takes the session advisory lock by name; the
//! others skip that round. The lock lives with its session, so a process that dies mid
//! round frees it.

use sqlx::PgPool;
use std::future::Future;

/// Run `round` if this process takes the advisory lock `name` now, then release it;
/// answers whether it ran.
pub async fn run_alone<F, Fut>(pool: &PgPool, name: &str, round: F) -> bool
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = ()>,
{
    let Ok(mut lock) = pool.acquire().await else {
        return false;
    };
    let held: Result<bool, _> =
        sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtextextended($1, 0))")
            .bind(name)
            .fetch_one(&mut *lock)
            .await;
    if !matches!(held, Ok(true)) {
        return false;
    }
    round().await;
    let unlocked = sqlx::query("SELECT pg_advisory_unlock(hashtextextended($1, 0))")
        .bind(name)
        .execute(&mut *lock)
        .await;
    if unlocked.is_err() {
        // Its session ends the lock: drop the connection rather than reuse it.
        lock.detach();
    }
    true
}

//! Sign-in throttling, checked before any password is hashed: failed sign-ins are counted
//! per account (org and email) and per source address in sliding windows; past the limit
//! the answer is 429 with `Retry-After` until the oldest counted failure leaves its window.
//! A success clears its account's count. State is in memory, per process, and bounded: with
//! several API instances each counts alone (a guesser gets at most that many times the
//! limit).

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Failed sign-ins of one account allowed per [`ACCOUNT_WINDOW`].
pub const ACCOUNT_FAILURES: usize = 5;
/// The window of [`ACCOUNT_FAILURES`].
pub const ACCOUNT_WINDOW: Duration = Duration::from_secs(300);
/// Failed sign-ins from one source address allowed per [`SOURCE_WINDOW`].
pub const SOURCE_FAILURES: usize = 20;
/// The window of [`SOURCE_FAILURES`].
pub const SOURCE_WINDOW: Duration = Duration::from_secs(60);
/// Most keys tracked per kind; past it, keys whose failures all left their window go first.
const MAX_KEYS: usize = 100_000;

/// Failures in a sliding window, by key.
#[derive(Debug)]
struct Windows<K> {
    limit: usize,
    window: Duration,
    failures: HashMap<K, VecDeque<Instant>>,
}

impl<K: Eq + Hash + Clone> Windows<K> {
    fn new(limit: usize, window: Duration) -> Self {
        Self {
            limit,
            window,
            failures: HashMap::new(),
        }
    }

    /// How long `key` must wait, if it is at its limit.
    fn wait(&mut self, key: &K, now: Instant) -> Option<Duration> {
        let failures = self.failures.get_mut(key)?;
        while failures
            .front()
            .is_some_and(|at| now.duration_since(*at) >= self.window)
        {
            failures.pop_front();
        }
        if failures.len() < self.limit {
            return None;
        }
        let oldest = *failures.front()?;
        Some(self.window - now.duration_since(oldest))
    }

    fn fail(&mut self, key: &K, now: Instant) {
        if self.failures.len() >= MAX_KEYS && !self.failures.contains_key(key) {
            let window = self.window;
            self.failures
                .retain(|_, f| f.back().is_some_and(|at| now.duration_since(*at) < window));
            if self.failures.len() >= MAX_KEYS {
                return;
            }
        }
        let failures = self.failures.entry(key.clone()).or_default();
        failures.push_back(now);
        while failures.len() > self.limit {
            failures.pop_front();
        }
    }

    fn clear(&mut self, key: &K) {
        self.failures.remove(key);
    }
}

/// An account as sign-in names it: org and normalised email.
pub type AccountKey = (Uuid, String);

/// The sign-in throttle of one process.
#[derive(Debug)]
pub struct Throttle {
    accounts: Mutex<Windows<AccountKey>>,
    sources: Mutex<Windows<IpAddr>>,
}

impl Default for Throttle {
    fn default() -> Self {
        Self {
            accounts: Mutex::new(Windows::new(ACCOUNT_FAILURES, ACCOUNT_WINDOW)),
            sources: Mutex::new(Windows::new(SOURCE_FAILURES, SOURCE_WINDOW)),
        }
    }
}

impl Throttle {
    /// `Err(wait)` when the account or the source is at its limit.
    pub fn check(&self, account: &AccountKey, source: Option<IpAddr>) -> Result<(), Duration> {
        let now = Instant::now();
        let account_wait = self.accounts.lock().expect("throttle").wait(account, now);
        let source_wait =
            source.and_then(|ip| self.sources.lock().expect("throttle").wait(&ip, now));
        match account_wait.max(source_wait) {
            Some(wait) => Err(wait.max(Duration::from_secs(1))),
            None => Ok(()),
        }
    }

    /// Count a failed sign-in.
    pub fn failed(&self, account: &AccountKey, source: Option<IpAddr>) {
        let now = Instant::now();
        self.accounts.lock().expect("throttle").fail(account, now);
        if let Some(ip) = source {
            self.sources.lock().expect("throttle").fail(&ip, now);
        }
    }

    /// A successful sign-in clears its account's failures.
    pub fn succeeded(&self, account: &AccountKey) {
        self.accounts.lock().expect("throttle").clear(account);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_is_held_after_its_failures_until_the_oldest_leaves_the_window() {
        let mut windows = Windows::new(3, Duration::from_secs(10));
        let t0 = Instant::now();
        for i in 0..3 {
            assert_eq!(windows.wait(&"a", t0 + Duration::from_secs(i)), None);
            windows.fail(&"a", t0 + Duration::from_secs(i));
        }
        assert_eq!(
            windows.wait(&"a", t0 + Duration::from_secs(4)),
            Some(Duration::from_secs(6))
        );
        assert_eq!(windows.wait(&"b", t0 + Duration::from_secs(4)), None);
        assert_eq!(windows.wait(&"a", t0 + Duration::from_secs(10)), None);
        windows.clear(&"a");
        assert!(!windows.failures.contains_key("a"));
    }

    #[test]
    fn the_source_limit_holds_every_account_of_a_source() {
        let throttle = Throttle::default();
        let source = Some(IpAddr::from([127, 0, 0, 1]));
        for i in 0..SOURCE_FAILURES {
            let account = (Uuid::nil(), format!("guess{i}@example.com"));
            assert!(throttle.check(&account, source).is_ok());
            throttle.failed(&account, source);
        }
        let fresh = (Uuid::nil(), "someone@example.com".to_string());
        assert!(throttle.check(&fresh, source).is_err());
        assert!(throttle
            .check(&fresh, Some(IpAddr::from([127, 0, 0, 2])))
            .is_ok());
    }
}

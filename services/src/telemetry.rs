//! Structured logging through `tracing`, to stderr so command output on stdout stays clean.

use tracing_subscriber::EnvFilter;

/// Install the global subscriber with `filter` (EnvFilter syntax, e.g. `info,sqlx=warn`).
pub fn init(filter: &str) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    // A second init (tests) keeps the first subscriber.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

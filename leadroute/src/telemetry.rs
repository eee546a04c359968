//! Structured logging through `tracing`, to stderr so command output on stdout stays clean.

use tracing_subscriber::EnvFilter;

/// Install the global subscriber with `filter` (EnvFilter syntax, e.g. `info,sqlx=warn`).
pub fn init(filter: &str) -> anyhow::Result<()> {
    let filter = EnvFilter::try_new(filter).map_err(|e| {
        anyhow::anyhow!("invalid log filter {filter:?} (--log / LEADROUTE_LOG): {e}")
    })?;
    // A second init (tests) keeps the first subscriber.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours only for a person at a terminal, not in files and pipes.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
    Ok(())
}

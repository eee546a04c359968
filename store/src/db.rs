//! PostgreSQL plumbing: connection pools with leadroute's session settings, creating the
//! default database when it is missing, applying migrations, and redacting URLs for logs.
//!
//! No schema here: tables come only from `deploy/migrations`.

use anyhow::Context;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, PgPool};
use std::str::FromStr;

/// Sessions idle inside a transaction longer than this are ended by the server, so no
/// forgotten transaction holds back the log readers' xmin horizon (DESIGN.md).
pub const IDLE_IN_TRANSACTION_TIMEOUT: &str = "60s";

/// Database URL used when none is configured: the local server on `port`.
pub fn default_database_url(port: u16) -> String {
    format!("postgres://postgres@127.0.0.1:{port}/leadroute")
}

fn options(url: &str) -> anyhow::Result<PgConnectOptions> {
    let options = PgConnectOptions::from_str(url)
        .with_context(|| format!("invalid database URL {}", redact_url(url)))?
        .application_name("leadroute")
        .options([(
            "idle_in_transaction_session_timeout",
            IDLE_IN_TRANSACTION_TIMEOUT,
        )]);
    Ok(options)
}

/// Connect a pool to `url` with at most `max_connections` connections.
pub async fn connect(url: &str, max_connections: u32) -> anyhow::Result<PgPool> {
    PgPoolOptions::new()
        .max_connections(max_connections)
        // A request waits this long for a connection while the database is away, then
        // fails (answered 503 with Retry-After), instead of sqlx's 30 s.
        .acquire_timeout(std::time::Duration::from_secs(5))
        .connect_with(options(url)?)
        .await
        .with_context(|| format!("cannot connect to PostgreSQL at {}", redact_url(url)))
}

/// Create the database named in `url` if it does not exist (connecting to `postgres`).
pub async fn ensure_database(url: &str) -> anyhow::Result<()> {
    let target = options(url)?;
    let name = target.get_database().unwrap_or("postgres").to_string();
    let mut admin = target
        .database("postgres")
        .connect()
        .await
        .with_context(|| {
            format!(
                "cannot connect to PostgreSQL at {} to create database {name} (set DATABASE_URL \
                 to a server and role leadroute may use)",
                redact_url(url)
            )
        })?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(&name)
            .fetch_one(&mut admin)
            .await?;
    if !exists {
        let quoted = format!("\"{}\"", name.replace('"', "\"\""));
        match sqlx::query(&format!("CREATE DATABASE {quoted}"))
            .execute(&mut admin)
            .await
        {
            Ok(_) => tracing::info!(database = %name, "created database"),
            // Someone else created it meanwhile.
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P04") => {}
            Err(e) => return Err(e).with_context(|| format!("cannot create database {name}")),
        }
    }
    Ok(())
}

/// Oldest PostgreSQL the schema runs on (`xid8`, `pg_current_xact_id`, `gen_random_uuid`).
pub const MIN_SERVER_VERSION_NUM: i32 = 130000;

/// Connect to `url`, check the server version and apply every pending migration.
pub async fn connect_and_migrate(url: &str, max_connections: u32) -> anyhow::Result<PgPool> {
    let pool = connect(url, max_connections).await?;
    let version: String = sqlx::query_scalar("SHOW server_version_num")
        .fetch_one(&pool)
        .await?;
    if version.parse::<i32>().unwrap_or(0) < MIN_SERVER_VERSION_NUM {
        anyhow::bail!(
            "PostgreSQL 13 or newer is required; {} runs version number {version}",
            redact_url(url)
        );
    }
    crate::schema::migrate(&pool)
        .await
        .context("applying migrations failed")?;
    Ok(pool)
}

/// `url` with any password replaced by `***`, for logs and errors.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let Some((userinfo, host)) = rest.rsplit_once('@') else {
        return url.to_string();
    };
    match userinfo.split_once(':') {
        Some((user, _password)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn redacts_passwords_only() {
        assert_eq!(
            redact_url("postgres://u:s3cret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact_url("postgres://h/db"), "postgres://h/db");
        assert_eq!(redact_url("not a url"), "not a url");
    }
}

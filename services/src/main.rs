//! The `leadroute` binary: parse the command line, start logging, run the command.

use clap::Parser;
use leadroute_services::cli::{Cli, Command};
use leadroute_services::{db, telemetry, up};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    telemetry::init(&cli.log)?;
    match cli.command {
        Command::Migrate(database) => {
            if database.database_url.is_none() {
                db::ensure_database(&database.url()).await?;
            }
            db::connect_and_migrate(&database.url(), database.db_max_connections).await?;
            tracing::info!("migrations applied");
        }
        Command::Up(config) => {
            let shutdown = up::ShutdownSignal::listen()?;
            up::Up::build(&config)
                .await?
                .run_until_stopped(shutdown.recv())
                .await?;
        }
    }
    Ok(())
}

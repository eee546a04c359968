//! The embedded default of `leadroute up`: use the configured or already-running PostgreSQL
//! and NATS, or start local ones (initdb + pg_ctl; nats-server with JetStream) with their
//! data under the data directory, and stop exactly those on shutdown.
//!
//! PostgreSQL refuses to run as root, so as root its programs run as the `postgres` system
//! user through `runuser`, with the data directory owned by that user.

use crate::cli::UpConfig;
use anyhow::{bail, Context};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use uuid::Uuid;

/// System user that runs a locally started PostgreSQL when leadroute runs as root.
const POSTGRES_SYSTEM_USER: &str = "postgres";

/// Where a cluster goes when the system user cannot reach the configured data directory.
const UNREACHABLE_DATA_ROOT: &str = "/var/lib/leadroute";

/// The servers `up` runs against, and the ones it started itself.
pub struct Infra {
    /// PostgreSQL URL to connect to.
    pub database_url: String,
    /// True when the URL is leadroute's default (its database may be created).
    pub database_is_default: bool,
    /// NATS URL.
    pub nats_url: String,
    /// Servers started by `up`, stopped in reverse order by [`Infra::stop`].
    started: Vec<Started>,
}

enum Started {
    Postgres {
        pg_ctl: PathBuf,
        data_dir: PathBuf,
        run_as: Option<&'static str>,
    },
    Nats {
        child: Child,
    },
}

/// Whether something accepts TCP connections on 127.0.0.1:`port`.
pub async fn port_answers(port: u16) -> bool {
    matches!(
        tokio::time::timeout(
            Duration::from_secs(1),
            TcpStream::connect(("127.0.0.1", port))
        )
        .await,
        Ok(Ok(_))
    )
}

impl Infra {
    /// Decide which servers to use and start the local ones that are needed.
    pub async fn ensure(config: &UpConfig) -> anyhow::Result<Infra> {
        let mut infra = Infra {
            database_url: config.database.url(),
            database_is_default: config.database.database_url.is_none(),
            nats_url: config
                .nats_url
                .clone()
                .unwrap_or_else(|| format!("nats://127.0.0.1:{}", config.nats_port)),
            started: Vec::new(),
        };
        if let Err(e) = infra.start_missing(config).await {
            infra.stop().await;
            return Err(e);
        }
        Ok(infra)
    }

    async fn start_missing(&mut self, config: &UpConfig) -> anyhow::Result<()> {
        std::fs::create_dir_all(&config.data_dir).with_context(|| {
            format!("cannot create data directory {}", config.data_dir.display())
        })?;
        let data_dir = std::path::absolute(&config.data_dir)?;
        if config.database.database_url.is_none() && !port_answers(config.database.pg_port).await {
            self.started
                .push(start_postgres(&data_dir.join("pg"), config.database.pg_port).await?);
        }
        if config.nats_url.is_none() && !port_answers(config.nats_port).await {
            self.started
                .push(start_nats(&data_dir, config.nats_port).await?);
        }
        Ok(())
    }

    /// Stop every server `up` started (and nothing else).
    pub async fn stop(&mut self) {
        while let Some(started) = self.started.pop() {
            match started {
                Started::Postgres {
                    pg_ctl,
                    data_dir,
                    run_as,
                } => {
                    let mut stop = as_user(run_as, &pg_ctl);
                    stop.arg("-D")
                        .arg(&data_dir)
                        .args(["-m", "fast", "-w", "stop"]);
                    match run(stop).await {
                        Ok(()) => tracing::info!("stopped local PostgreSQL"),
                        Err(e) => tracing::error!(error = %e, "stopping local PostgreSQL failed"),
                    }
                }
                Started::Nats { child } => stop_child(child, "nats-server").await,
            }
        }
    }
}

/// A command for `program`, run as `user` through runuser when given.
fn as_user(user: Option<&str>, program: &Path) -> Command {
    match user {
        Some(user) => {
            let mut command = Command::new("runuser");
            command.args(["-u", user, "--"]).arg(program);
            command
        }
        None => Command::new(program),
    }
}

/// Run to completion; a failure reports the command's stderr.
async fn run(mut command: Command) -> anyhow::Result<()> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .await
        .with_context(|| format!("cannot run {command:?}"))?;
    if !output.status.success() {
        bail!(
            "{command:?} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

async fn running_as_root() -> bool {
    match Command::new("id").arg("-u").output().await {
        Ok(out) => String::from_utf8_lossy(&out.stdout).trim() == "0",
        Err(_) => false,
    }
}

/// The installed PostgreSQL's program directory: the newest /usr/lib/postgresql/N/bin, or
/// the directory of `initdb` on PATH.
fn postgres_bin_dir() -> anyhow::Result<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Ok(bin);
    }
    find_on_path("initdb")
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .context("PostgreSQL is not installed (no initdb found); install it (Debian: apt-get install postgresql) or set DATABASE_URL")
}

fn find_on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin", "/usr/local/bin", "/usr/bin"].map(PathBuf::from))
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

async fn start_postgres(requested_dir: &Path, port: u16) -> anyhow::Result<Started> {
    let bin = postgres_bin_dir()?;
    let run_as = running_as_root().await.then_some(POSTGRES_SYSTEM_USER);
    let data_dir = match run_as {
        Some(user) => data_dir_for_user(requested_dir, user).await?,
        None => {
            std::fs::create_dir_all(requested_dir)?;
            requested_dir.to_path_buf()
        }
    };
    if !data_dir.join("PG_VERSION").exists() {
        tracing::info!(dir = %data_dir.display(), "initialising a local PostgreSQL cluster");
        let mut initdb = as_user(run_as, &bin.join("initdb"));
        initdb.arg("-D").arg(&data_dir);
        initdb.args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C"]);
        run(initdb).await?;
    }
    tracing::info!(port, dir = %data_dir.display(), "starting local PostgreSQL");
    let pg_ctl = bin.join("pg_ctl");
    let log = data_dir.join("server.log");
    let mut start = as_user(run_as, &pg_ctl);
    start
        .arg("-D")
        .arg(&data_dir)
        .arg("-l")
        .arg(&log)
        .args(["-w", "-t", "60", "-o"]);
    start.arg(format!(
        "-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=''"
    ));
    start.arg("start");
    run(start)
        .await
        .with_context(|| format!("see {}", log.display()))?;
    Ok(Started::Postgres {
        pg_ctl,
        data_dir,
        run_as,
    })
}

/// The data directory for a cluster run by `user` (as root): `requested`, owned by `user`,
/// or, when `user` cannot reach it (a checkout under /root, mode 0700), a directory under
/// [`UNREACHABLE_DATA_ROOT`] that `requested` becomes a link to. Later runs follow the link.
async fn data_dir_for_user(requested: &Path, user: &str) -> anyhow::Result<PathBuf> {
    let linked = std::fs::read_link(requested).ok();
    let dir = linked.clone().unwrap_or_else(|| requested.to_path_buf());
    if owned_and_writable_by(&dir, user).await? {
        return Ok(dir);
    }
    if linked.is_some() {
        bail!("the {user} system user cannot write {}", dir.display());
    }
    let name = Uuid::new_v5(
        &Uuid::NAMESPACE_URL,
        requested.as_os_str().as_encoded_bytes(),
    );
    let outside = Path::new(UNREACHABLE_DATA_ROOT).join(name.simple().to_string());
    if !owned_and_writable_by(&outside, user).await? {
        bail!(
            "the {user} system user can write neither {} nor {}",
            requested.display(),
            outside.display()
        );
    }
    std::fs::remove_dir(requested).with_context(|| {
        format!(
            "{} is not empty but {user} cannot reach it",
            requested.display()
        )
    })?;
    std::os::unix::fs::symlink(&outside, requested)?;
    tracing::info!(link = %requested.display(), dir = %outside.display(), "{user} cannot reach the data directory; keeping the cluster outside it");
    Ok(outside)
}

/// Create `dir`, give it to `user`, and tell whether `user` can write it.
async fn owned_and_writable_by(dir: &Path, user: &str) -> anyhow::Result<bool> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut chown = Command::new("chown");
    chown.arg("-R").arg(format!("{user}:{user}")).arg(dir);
    run(chown).await?;
    let mut writable = as_user(Some(user), Path::new("test"));
    writable.arg("-w").arg(dir);
    Ok(run(writable).await.is_ok())
}

async fn start_nats(data_root: &Path, port: u16) -> anyhow::Result<Started> {
    let program = find_on_path("nats-server")
        .context("nats-server is not installed; install it (Debian: apt-get install nats-server) or set NATS_URL")?;
    let store = data_root.join("nats");
    std::fs::create_dir_all(&store)?;
    let log = data_root.join("nats.log");
    tracing::info!(port, dir = %store.display(), "starting local nats-server with JetStream");
    let mut child = Command::new(program)
        .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
        .arg(&store)
        .arg("-l")
        .arg(&log)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        // Its own process group: a Ctrl-C in the terminal reaches `up`, which stops it in order.
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .context("cannot start nats-server")?;
    for _ in 0..100 {
        if port_answers(port).await {
            return Ok(Started::Nats { child });
        }
        if let Some(status) = child.try_wait()? {
            bail!("nats-server exited ({status}); see {}", log.display());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop_child(child, "nats-server").await;
    bail!(
        "nats-server did not answer on port {port} within 20 s; see {}",
        log.display()
    )
}

/// SIGTERM, then SIGKILL if the process has not exited within 10 s.
async fn stop_child(mut child: Child, name: &str) {
    if let Some(pid) = child.id() {
        let mut term = Command::new("kill");
        term.args(["-TERM", &pid.to_string()]);
        if let Err(e) = run(term).await {
            tracing::warn!(error = %e, "{name}: SIGTERM failed; killing it");
            let _ = child.kill().await;
            return;
        }
    }
    match tokio::time::timeout(Duration::from_secs(10), child.wait()).await {
        Ok(_) => tracing::info!("stopped local {name}"),
        Err(_) => {
            tracing::warn!("{name} ignored SIGTERM; killing it");
            let _ = child.kill().await;
        }
    }
}

//! `leadroute up` on the embedded default, as a user runs it: with no DATABASE_URL / NATS_URL
//! and nothing on the chosen ports it starts its own PostgreSQL and nats-server, migrates,
//! seeds the demo, keeps the data across restarts, and stops both servers on SIGTERM.
//!
//! Needs the PostgreSQL and nats-server programs installed (the test script installs them).

use leadroute::embedded::port_answers;
use leadroute_store::schema::EVENTS_TABLE;
use sqlx::{Connection, PgConnection};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A port for the embedded PostgreSQL and NATS (they do not say which port they took, so
/// they are given one; the API listens on port 0 and `up` prints its address).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn up_command(data_dir: &Path, pg_port: u16, nats_port: u16, demo: bool) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_leadroute"));
    command
        .args([
            "up",
            "--pg-port",
            &pg_port.to_string(),
            "--nats-port",
            &nats_port.to_string(),
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(data_dir)
        .env_remove("DATABASE_URL")
        .env_remove("NATS_URL")
        .env("LEADROUTE_LOG", "info")
        .stderr(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true);
    if demo {
        command.arg("--demo");
    }
    command
}

/// Start `leadroute up` and wait until it says it is up.
async fn start_up(data_dir: &Path, pg_port: u16, nats_port: u16, demo: bool) -> Child {
    let mut child = up_command(data_dir, pg_port, nats_port, demo)
        .spawn()
        .expect("spawn leadroute up");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    let ready = tokio::time::timeout(Duration::from_secs(120), async {
        while let Ok(Some(line)) = lines.next_line().await {
            let up = line.contains("leadroute is up");
            seen.push(line);
            if up {
                return true;
            }
        }
        false
    })
    .await;
    assert!(
        matches!(ready, Ok(true)),
        "leadroute up did not come up; it said:\n{}",
        seen.join("\n")
    );
    // Keep draining its log so it never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    child
}

/// The API address and admin key `up --demo` printed.
async fn demo_credentials(child: &mut Child) -> (String, String) {
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut base, mut key) = (None, None);
    while let Ok(Some(line)) = lines.next_line().await {
        let value = || line.split_whitespace().nth(2).map(str::to_string);
        if line.trim_start().starts_with("API:") {
            base = line.split_whitespace().nth(1).map(str::to_string);
        } else if line.trim_start().starts_with("admin key:") {
            key = value();
        }
        if base.is_some() && key.is_some() {
            break;
        }
    }
    // Keep reading, so `up` never writes to a closed pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (
        base.expect("up --demo prints the API"),
        key.expect("up --demo prints an admin key"),
    )
}

async fn stop(mut child: Child) {
    sigterm(&child).await;
    let exit = tokio::time::timeout(Duration::from_secs(60), child.wait())
        .await
        .expect("up stops on SIGTERM");
    assert!(exit.unwrap().success(), "up exits cleanly on SIGTERM");
}

async fn sigterm(child: &Child) {
    let pid = child.id().unwrap().to_string();
    let status = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    assert!(status.success());
}

async fn event_count(pg_port: u16) -> i64 {
    let url = format!("postgres://postgres@127.0.0.1:{pg_port}/leadroute");
    let mut conn = PgConnection::connect(&url)
        .await
        .expect("connect to the embedded PostgreSQL");
    sqlx::query_scalar(&format!("SELECT count(*) FROM {EVENTS_TABLE}"))
        .fetch_one(&mut conn)
        .await
        .unwrap()
}

/// A tmp directory the postgres system user (used when running as root) can reach.
fn reachable_tempdir() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    tmp
}

/// Kills whatever still runs from the test's data directory when the test ends, so a failed
/// test leaves no server behind.
struct Cleanup(std::path::PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::process::Command::new("pkill")
            .arg("-f")
            .arg(&self.0)
            .status();
    }
}

#[tokio::test]
async fn up_starts_local_servers_keeps_their_data_and_stops_them() {
    let tmp = reachable_tempdir();
    let data_dir = tmp.path().join("data");
    let _cleanup = Cleanup(data_dir.clone());
    let (pg_port, nats_port) = (free_port(), free_port());

    let mut up = start_up(&data_dir, pg_port, nats_port, true).await;
    assert!(port_answers(nats_port).await, "nats-server answers");
    let (base, admin_key) = demo_credentials(&mut up).await;
    let client = reqwest::Client::new();
    // The directory projection catches up with the seed shortly after start-up.
    let users = leadroute_tests::eventually(Duration::from_secs(30), || async {
        let users: serde_json::Value = client
            .get(format!("{base}/v1/partner-users?assignable=true"))
            .bearer_auth(&admin_key)
            .send()
            .await
            .expect("the API answers")
            .json()
            .await
            .unwrap();
        (users.as_array().unwrap().len() == 2).then_some(users)
    })
    .await
    .expect("the demo's two assignable partner users are listed");
    let emails: Vec<_> = users
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["email"].as_str().unwrap())
        .collect();
    let org: serde_json::Value = client
        .get(format!("{base}/v1/org"))
        .bearer_auth(&admin_key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let sign_in = serde_json::json!({"org_id": org["org_id"], "email": emails[0], "password": leadroute::demo::DEMO_PASSWORD});
    let session = client
        .post(format!("{base}/v1/auth/sign-in"))
        .json(&sign_in)
        .send()
        .await
        .unwrap();
    assert_eq!(
        session.status(),
        200,
        "a demo partner user signs in with the printed password"
    );
    // The mailer (log transport, the default of `up`) records the demo's access emails.
    let recorded = leadroute_tests::eventually(Duration::from_secs(30), || async {
        let emails: serde_json::Value = client
            .get(format!("{base}/v1/notifications"))
            .bearer_auth(&admin_key)
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        let access = emails
            .as_array()?
            .iter()
            .filter(|e| e["kind"] == "access" && e["transport"] == "log" && e["status"] == "sent")
            .count();
        (access >= 1).then_some(access)
    })
    .await;
    assert!(
        recorded.is_some(),
        "access emails recorded by the log transport"
    );
    let seeded = event_count(pg_port).await;
    assert!(seeded > 20, "the demo seeded {seeded} events");
    stop(up).await;
    assert!(
        !port_answers(pg_port).await,
        "the local PostgreSQL was stopped"
    );
    assert!(
        !port_answers(nats_port).await,
        "the local nats-server was stopped"
    );
    assert!(data_dir.join("pg/PG_VERSION").exists() && data_dir.join("nats").is_dir());

    let again = start_up(&data_dir, pg_port, nats_port, true).await;
    assert_eq!(
        event_count(pg_port).await,
        seeded,
        "data kept across restarts; a second demo seed adds nothing"
    );
    stop(again).await;
    assert!(!port_answers(pg_port).await);
}

#[tokio::test]
async fn a_signal_during_start_up_still_stops_what_up_started() {
    let tmp = reachable_tempdir();
    let data_dir = tmp.path().join("data");
    let _cleanup = Cleanup(data_dir.clone());
    let (pg_port, nats_port) = (free_port(), free_port());

    let mut up = up_command(&data_dir, pg_port, nats_port, true)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let starting = async {
        while !data_dir.join("pg").exists() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(30), starting)
        .await
        .expect("up starts its PostgreSQL");
    sigterm(&up).await;
    let exit = tokio::time::timeout(Duration::from_secs(120), up.wait())
        .await
        .expect("up exits");
    assert!(
        exit.unwrap().success(),
        "a signal during start-up is a clean shutdown"
    );
    assert!(!port_answers(pg_port).await, "no PostgreSQL left running");
    assert!(
        !port_answers(nats_port).await,
        "no nats-server left running"
    );
}

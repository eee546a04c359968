//! `sse`: what live streams cost. A `leadroute api` process (the release binary, with a
//! `publisher` and a `projector` beside it) serves `--clients` idle `GET /v1/stream`
//! connections of one partner user; the bench reads the API process's resident memory
//! (VmRSS) before and after they connect, and reports the memory per idle connection. Then
//! it offers `--offers` leads to that user one at a time and times each event's fan-out:
//! from the commit of the offer to the moment the last of the streams has it.

use crate::e2e::leadroute_binary;
use crate::report::{percentile, say};
use leadroute_app::access::Access;
use leadroute_domain::ids::Owner;
use leadroute_domain::partner_user::PartnerUser;
use leadroute_tests::sse::SseStream;
use leadroute_tests::{TestApp, TestNats};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

/// Resident memory of process `pid`, in KiB.
fn rss_kib(pid: u32) -> anyhow::Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no VmRSS for process {pid}"))
}

pub async fn run(clients: usize, offers: usize) -> anyhow::Result<()> {
    let binary = leadroute_binary()?;
    let app = TestApp::spawn().await;
    let nats = TestNats::new().await;
    let org = app.prm_org().await;
    let account = app.active_partner(org).await;
    let user = app.assignable_user(org, account).await;
    let access = Access::new(
        app.db.pool.clone(),
        app.commands.clone(),
        Duration::from_secs(3600),
    );
    let email = app.commands.state::<PartnerUser>(org, user).await?.email;
    let link = access.issue_invitation_link(org, user).await?;
    access.set_password(&link, "bench password 1").await?;
    let token = access
        .sign_in(org, &email, "bench password 1", None)
        .await?
        .token;

    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0")?;
        probe.local_addr()?.port()
    };
    let env = [
        ("DATABASE_URL", app.db.url.clone()),
        ("NATS_URL", nats.url.clone()),
        ("LEADROUTE_NATS_PREFIX", nats.prefix.clone()),
        ("LEADROUTE_NATS_CRM_PREFIX", nats.crm_prefix()),
        ("LEADROUTE_LISTEN", format!("127.0.0.1:{port}")),
        ("LEADROUTE_MAX_CONNECTIONS", (clients + 64).to_string()),
        ("LEADROUTE_LOG", "warn".to_string()),
    ];
    let spawn = |role: &str| -> anyhow::Result<Child> {
        Ok(Command::new(&binary)
            .arg(role)
            .envs(env.iter().cloned())
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()?)
    };
    let _projector = spawn("projector")?;
    let _publisher = spawn("publisher")?;
    let api = spawn("api")?;
    let pid = api.id().ok_or_else(|| anyhow::anyhow!("the api exited"))?;
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let url = format!("{base}/v1/stream");
    let started = Instant::now();
    loop {
        let ready = client.get(format!("{base}/healthz")).send().await;
        if ready.is_ok_and(|answer| answer.status().is_success()) {
            break;
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(60),
            "the api did not start"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut first = SseStream::open(&client, &url, &token, None)
        .await
        .map_err(|e| anyhow::anyhow!("the api does not serve streams: {e:?}"))?;
    first.next(Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = rss_kib(pid)?;

    let mut streams = Vec::with_capacity(clients);
    for _ in 0..clients {
        let mut stream = SseStream::open(&client, &url, &token, None)
            .await
            .map_err(|e| anyhow::anyhow!("stream refused: {e:?}"))?;
        stream
            .next(Duration::from_secs(10))
            .await
            .ok_or_else(|| anyhow::anyhow!("a stream never got ready"))?;
        streams.push(stream);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = rss_kib(pid)?;
    say(format!(
        "{clients} idle streams: api RSS {:.1} MiB -> {:.1} MiB, {:.1} KiB per idle stream",
        before / 1024.0,
        after / 1024.0,
        (after - before) / clients as f64
    ));

    let mut fan_out = Vec::with_capacity(offers);
    for i in 0..offers {
        let lead = app.lead(org).await;
        let committed = Instant::now();
        app.commands
            .reassign_lead(&app.meta(), org, lead, Owner::PartnerUser(user), false)
            .await?;
        let waits = streams.iter_mut().map(|stream| async move {
            loop {
                match stream.next(Duration::from_secs(30)).await {
                    Some(event) if event.event == "lead" => return Some(Instant::now()),
                    Some(_) => continue,
                    None => return None,
                }
            }
        });
        let arrived = futures::future::join_all(waits).await;
        let last = arrived
            .into_iter()
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| anyhow::anyhow!("offer {i}: a stream missed its event"))?
            .into_iter()
            .max()
            .expect("streams");
        fan_out.push((last - committed).as_secs_f64() * 1000.0);
    }
    fan_out.sort_by(f64::total_cmp);
    say(format!(
        "fan-out of one offer to all {clients} streams, {offers} offers: p50 {:.0} ms, p95 {:.0} ms, max {:.0} ms (commit -> last stream, through the publisher and NATS)",
        percentile(&fan_out, 0.5),
        percentile(&fan_out, 0.95),
        fan_out.last().copied().unwrap_or_default()
    ));
    say(format!(
        "api RSS with the streams after the offers: {:.1} MiB",
        rss_kib(pid)? / 1024.0
    ));
    Ok(())
}

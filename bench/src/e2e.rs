//! `leadroute-bench e2e`: the whole pipeline, end to end, against this machine's limit.
//!
//! One run: a fresh database and NATS prefix; an org with partner accounts, a few hundred
//! assignable partner users in weighted pools and queues, and a rule set of about 500
//! entries; the single-row commit rate of the same PostgreSQL (16 clients, synchronous
//! commit); then `leadroute intake`, `router`, `publisher` and `projector` as separate
//! processes (the release binary), and CRM lead events published on NATS, first as fast as
//! possible, then at half the rate reached. For each lead it records the time from its
//! publish until its row shows an owner in the leads projection (what the partner inbox
//! reads), by polling the oldest unrouted leads every `POLL` interval.
//!
//! Prints and writes (`target/e2e/report.json`, `target/e2e/latency.svg`): routed leads/s at
//! the maximum rate, latency percentiles at half that rate, commits per routed lead, the
//! peak RSS of each process, and the ratio routed leads/s ÷ commit rate.

use crate::intake::single_row_commits;
use crate::report::say;
use leadroute_domain::ids::{LeadId, OrgId, PartnerUserId, PoolId, QueueId, UpstreamRef};
use leadroute_domain::queue::QueueMember;
use leadroute_domain::routing::criteria::Criterion;
use leadroute_domain::routing::rotation::Member;
use leadroute_domain::routing::rules::{Entry, RuleSetSpec, Target};
use leadroute_tests::{TestApp, TestNats};
use serde_json::json;
use sqlx::PgPool;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};
use uuid::Uuid;

/// How often the oldest unrouted leads are looked up.
const POLL: Duration = Duration::from_millis(2);
/// Countries × industries in the rule set (one entry each) = 500 entries.
const COUNTRIES: usize = 50;
const INDUSTRIES: usize = 10;

/// Options of the run.
pub struct Options {
    /// Leads published at the maximum rate.
    pub leads: usize,
    /// Seconds of publishing at half that rate.
    pub half_rate_seconds: u64,
    /// Intake workers in the intake process.
    pub intake_workers: usize,
    /// Router workers in the router process.
    pub router_workers: usize,
}

/// One process of the pipeline.
struct Process {
    name: &'static str,
    child: Child,
}

impl Process {
    /// CPU time (user + system) used so far, in seconds.
    fn cpu_seconds(&self) -> Option<f64> {
        let pid = self.child.id()?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // Fields after the command name (which may hold spaces) start after ") ".
        let fields: Vec<&str> = stat.rsplit_once(") ")?.1.split_whitespace().collect();
        let ticks: f64 =
            fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
        Some(ticks / 100.0)
    }

    /// Peak resident set size (VmHWM) in MiB.
    fn peak_rss_mib(&self) -> Option<f64> {
        let pid = self.child.id()?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let kib: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()?;
        Some(kib / 1024.0)
    }
}

/// Publish times and visibility times of the leads of one phase, in publish order.
#[derive(Default)]
struct Tracker {
    leads: Vec<(Uuid, Instant)>,
    seen: Vec<Option<Instant>>,
}

pub async fn run(options: Options) -> anyhow::Result<()> {
    let binary = leadroute_binary()?;
    let app = TestApp::spawn().await;
    let nats = TestNats::new().await;
    let commit_rate = single_row_commits(&app.db.pool, 16, Duration::from_secs(5)).await?;
    say(format!(
        "single-row INSERT commits, 16 clients: {commit_rate:.0} commits/s"
    ));
    let started = Instant::now();
    let org = setup(&app).await?;
    say(format!(
        "setup: 10 partner accounts, 300 assignable partner users, 20 weighted pools of 15, 10 queues, {} rule entries ({:.1} s)",
        COUNTRIES * INDUSTRIES,
        started.elapsed().as_secs_f64()
    ));

    let env = [
        ("DATABASE_URL", app.db.url.clone()),
        ("NATS_URL", nats.url.clone()),
        ("LEADROUTE_NATS_PREFIX", nats.prefix.clone()),
        ("LEADROUTE_NATS_CRM_PREFIX", nats.crm_prefix()),
        ("LEADROUTE_LOG", "warn".to_string()),
        ("RUST_BACKTRACE", "0".to_string()),
    ];
    let spawn = |name: &'static str, args: Vec<String>| -> anyhow::Result<Process> {
        let child = Command::new(&binary)
            .arg(name)
            .args(args)
            .envs(env.iter().cloned())
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        Ok(Process { name, child })
    };
    let mut processes = vec![
        spawn("projector", vec![])?,
        spawn("publisher", vec![])?,
        spawn(
            "router",
            vec!["--workers".into(), options.router_workers.to_string()],
        )?,
        spawn(
            "intake",
            vec!["--workers".into(), options.intake_workers.to_string()],
        )?,
    ];
    let names = leadroute_workers::nats::Names::new(&nats.prefix, &nats.crm_prefix())?;
    let subject = names.crm_subject(org.0, "created");
    leadroute_workers::nats::ensure_stream(&nats.js, names.crm_stream(), names.crm_subjects())
        .await?;

    // Warm up (connections, caches), unmeasured.
    let warm = publish_phase(&app.db.pool, &nats, &subject, org, "warm", 500, None).await?;
    anyhow::ensure!(
        warm.seen.iter().all(Option::is_some),
        "warm-up leads not routed"
    );

    let before = commits(&app.db.pool).await?;
    let cpu_before = cpu_by_program();
    let phase_start = chrono::Utc::now();
    let max = publish_phase(
        &app.db.pool,
        &nats,
        &subject,
        org,
        "max",
        options.leads,
        None,
    )
    .await?;
    let cpu_after = cpu_by_program();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let after = commits(&app.db.pool).await?;
    let (write_transactions, sizes) =
        leadroute_store::named::written_since(&app.db.pool, phase_start).await?;
    say(format!(
        "events written in the max-rate phase (type: count, mean payload bytes stored / as JSON text): {}",
        sizes
            .iter()
            .map(|(t, n, b, text)| format!("{t}: {n}, {b:.0} / {text:.0}"))
            .collect::<Vec<_>>()
            .join("; ")
    ));
    let first_publish = max.leads[0].1;
    let last_seen = max
        .seen
        .iter()
        .flatten()
        .max()
        .copied()
        .unwrap_or(first_publish);
    let routed = max.seen.iter().flatten().count();
    let max_seconds = (last_seen - first_publish).as_secs_f64();
    let routed_per_second = routed as f64 / max_seconds;
    say(format!(
        "max rate: {routed} of {} leads routed into inboxes in {max_seconds:.2} s = {routed_per_second:.0} leads/s",
        options.leads
    ));
    let commits_per_lead = (after - before) as f64 / routed as f64;
    let writes_per_lead = write_transactions as f64 / routed as f64;
    say(format!(
        "commits per routed lead: {commits_per_lead:.2} (every transaction of the database, read-only ones and projector checkpoints included); event-store write transactions per lead: {writes_per_lead:.2}"
    ));
    let mut cpu_phase: Vec<(String, f64)> = cpu_after
        .iter()
        .map(|(name, after)| {
            (
                name.clone(),
                after - cpu_before.get(name).copied().unwrap_or(0.0),
            )
        })
        .filter(|(_, used)| *used > 0.05)
        .collect();
    cpu_phase.sort_by(|a, b| b.1.total_cmp(&a.1));
    say(format!(
        "CPU seconds during the max-rate phase ({max_seconds:.1} s on {} cores), by program: {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        cpu_phase
            .iter()
            .map(|(name, used)| format!("{name} {used:.1}"))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    let max_latencies = latencies(&max);
    say(format!(
        "latency at the maximum rate (queueing included): {}",
        summary(&max_latencies)
    ));

    let offered = routed_per_second / 2.0;
    let half = publish_phase(
        &app.db.pool,
        &nats,
        &subject,
        org,
        "half",
        (offered * options.half_rate_seconds as f64) as usize,
        Some(offered),
    )
    .await?;
    let half_latencies = latencies(&half);
    say(format!(
        "half rate ({offered:.0} leads/s offered for {} s, {} leads): latency publish -> inbox {}",
        options.half_rate_seconds,
        half.leads.len(),
        summary(&half_latencies)
    ));
    let ratio = routed_per_second / commit_rate;
    say(format!(
        "ratio routed leads/s / single-row commit rate: {ratio:.3} (target >= 0.5)"
    ));
    let mut rss = serde_json::Map::new();
    let mut cpu = serde_json::Map::new();
    for process in &processes {
        let mib = process.peak_rss_mib();
        let seconds = process.cpu_seconds();
        say(format!(
            "`leadroute {}`: peak RSS {}, CPU {} s over the whole run",
            process.name,
            mib.map_or("unknown".into(), |m| format!("{m:.1} MiB")),
            seconds.map_or("unknown".into(), |s| format!("{s:.1}"))
        ));
        rss.insert(process.name.into(), json!(mib));
        cpu.insert(process.name.into(), json!(seconds));
    }
    for process in &mut processes {
        process.child.start_kill().ok();
    }

    let dir = target_dir().join("e2e");
    std::fs::create_dir_all(&dir)?;
    let report = json!({
        "single_row_commits_per_second_16_clients": commit_rate,
        "max_rate": {"leads": options.leads, "routed": routed, "seconds": max_seconds,
            "routed_leads_per_second": routed_per_second, "latency_ms": percentiles(&max_latencies)},
        "half_rate": {"offered_leads_per_second": offered, "seconds": options.half_rate_seconds,
            "leads": half.leads.len(), "latency_ms": percentiles(&half_latencies)},
        "commits_per_routed_lead": commits_per_lead,
        "event_store_write_transactions_per_routed_lead": writes_per_lead,
        "ratio_routed_per_second_to_commit_rate": ratio,
        "peak_rss_mib": rss,
        "cpu_seconds": cpu,
        "events_max_rate_phase": sizes.iter().map(|(t, n, b, text)| (t.clone(), json!({"count": n, "mean_payload_bytes": b, "mean_json_text_bytes": text}))).collect::<serde_json::Map<_, _>>(),
        "cpu_seconds_max_rate_phase_by_program": cpu_phase.iter().cloned().collect::<std::collections::BTreeMap<_, _>>(),
        "setup": {"partner_accounts": 10, "partner_users": 300, "pools": 20, "pool_members": 15,
            "queues": 10, "rule_entries": COUNTRIES * INDUSTRIES},
        "workers": {"intake": options.intake_workers, "router": options.router_workers},
        "poll_interval_ms": POLL.as_secs_f64() * 1000.0,
    });
    std::fs::write(
        dir.join("report.json"),
        serde_json::to_string_pretty(&report)?,
    )?;
    std::fs::write(dir.join("latency.svg"), svg(&max, &half))?;
    say(format!(
        "wrote {} and {}",
        dir.join("report.json").display(),
        dir.join("latency.svg").display()
    ));
    Ok(())
}

/// The org: 10 active partner accounts of 30 assignable users, 20 pools of 15 users with
/// weights 1 to 3, 10 queues (one account each), and 500 rule entries (country × industry)
/// sending leads to pools, queues and users, with a queue as the default owner.
async fn setup(app: &TestApp) -> anyhow::Result<OrgId> {
    let org = app.prm_org().await;
    let meta = app.meta();
    let mut users: Vec<PartnerUserId> = Vec::new();
    let mut accounts = Vec::new();
    for _ in 0..10 {
        let account = app.active_partner(org).await;
        accounts.push(account);
        for _ in 0..30 {
            users.push(app.assignable_user(org, account).await);
        }
    }
    let mut pools = Vec::new();
    for p in 0..20 {
        let pool = PoolId::new_random();
        app.commands
            .create_pool(&meta, org, pool, &format!("pool {p}"), None)
            .await?;
        for m in 0..15 {
            let user = users[(p * 15 + m) % users.len()];
            let weight = 1 + (m % 3) as u32;
            app.commands
                .add_pool_member(
                    &meta,
                    org,
                    pool,
                    Member::PartnerUser(user),
                    Some(weight),
                    None,
                )
                .await?;
        }
        pools.push(pool);
    }
    let mut queues = Vec::new();
    for (q, account) in accounts.iter().enumerate() {
        let queue = QueueId::new_random();
        app.commands
            .create_queue(&meta, org, queue, &format!("queue {q}"))
            .await?;
        app.commands
            .add_queue_member(&meta, org, queue, QueueMember::PartnerAccount(*account))
            .await?;
        queues.push(queue);
    }
    let mut entries = Vec::new();
    for c in 0..COUNTRIES {
        for i in 0..INDUSTRIES {
            let n = c * INDUSTRIES + i;
            let target = if n % 11 == 0 {
                Target::PartnerUser(users[n % users.len()])
            } else if n % 7 == 0 {
                Target::Queue(queues[n % queues.len()])
            } else {
                Target::Pool(pools[n % pools.len()])
            };
            let mut criteria = vec![
                Criterion::Equals {
                    field: "country".into(),
                    value: format!("C{c:02}"),
                },
                Criterion::Equals {
                    field: "industry".into(),
                    value: format!("I{i}"),
                },
            ];
            if n % 5 == 0 {
                criteria.push(Criterion::Range {
                    field: "employees".into(),
                    min: Some(0.0),
                    max: None,
                });
            }
            entries.push(Entry {
                acceptance_deadline: None,
                fallback: None,
                criteria,
                target,
                keep_owner: false,
                notify: false,
            });
        }
    }
    let spec = RuleSetSpec {
        entries,
        default_owner: Some(Target::Queue(queues[0])),
        watched_fields: ["country".to_string()].into(),
    };
    app.commands.publish_rule_set(&meta, org, &spec).await?;
    Ok(org)
}

/// Publish `n` lead events (as fast as possible, or at `rate` per second) and wait until
/// each lead's row has an owner in the leads projection.
async fn publish_phase(
    pool: &PgPool,
    nats: &TestNats,
    subject: &str,
    org: OrgId,
    phase: &str,
    n: usize,
    rate: Option<f64>,
) -> anyhow::Result<Tracker> {
    let tracker = Arc::new(Mutex::new(Tracker::default()));
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = tokio::spawn(watch(pool.clone(), tracker.clone(), n, done.clone()));
    let started = Instant::now();
    let mut acks = Vec::with_capacity(512);
    for i in 0..n {
        if let Some(rate) = rate {
            let due = started + Duration::from_secs_f64(i as f64 / rate);
            let now = Instant::now();
            if due > now {
                tokio::time::sleep(due - now).await;
            }
        }
        let upstream_id = format!("{phase}-{i}");
        let lead = LeadId::for_upstream(
            org,
            &UpstreamRef {
                system: "bench".into(),
                lead_id: upstream_id.clone(),
            },
        );
        let k = i.wrapping_mul(2_654_435_761);
        let body = json!({
            "schema_version": 1, "upstream_event_id": format!("{upstream_id}-created"),
            "upstream_system": "bench", "upstream_lead_id": upstream_id,
            "occurred_at": "2026-11-28T08:00:00Z",
            "fields": {"company": format!("Company {i}"), "country": format!("C{:02}", k % COUNTRIES),
                "industry": format!("I{}", (k / COUNTRIES) % INDUSTRIES), "employees": k % 5000,
                // Each lead its own company's domain (per phase): leads sharing one would be
                // held as possible duplicates of the first one routed.
                "email": format!("lead{i}@{phase}{i}.example")}
        });
        {
            let mut t = tracker.lock().expect("tracker");
            t.leads.push((lead.0, Instant::now()));
            t.seen.push(None);
        }
        acks.push(
            nats.js
                .publish(subject.to_string(), body.to_string().into())
                .await?,
        );
        if acks.len() >= 512 {
            for ack in acks.drain(..) {
                ack.await?;
            }
        }
    }
    for ack in acks.drain(..) {
        ack.await?;
    }
    let finished = tokio::time::timeout(Duration::from_secs(300), async {
        while !done.load(std::sync::atomic::Ordering::Relaxed) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    watcher.abort();
    if finished.is_err() {
        say(format!("{phase}: not every lead was routed within 300 s"));
    }
    let tracker = std::mem::take(&mut *tracker.lock().expect("tracker"));
    Ok(tracker)
}

/// Look up, every [`POLL`], which of the oldest unrouted leads now have an owner. Leads
/// are routed nearly in publish order, so the oldest one is asked first and the window of
/// the next 512 only once it shows (or once it has waited a second): the watcher's own
/// queries stay a small part of the database's work.
async fn watch(
    pool: PgPool,
    tracker: Arc<Mutex<Tracker>>,
    n: usize,
    done: Arc<std::sync::atomic::AtomicBool>,
) {
    let mut first = 0;
    loop {
        let window: Vec<(usize, Uuid)> = {
            let t = tracker.lock().expect("tracker");
            while first < t.seen.len() && t.seen[first].is_some() {
                first += 1;
            }
            if first == n {
                done.store(true, std::sync::atomic::Ordering::Relaxed);
                return;
            }
            (first..t.leads.len().min(first + 512))
                .filter(|i| t.seen[*i].is_none())
                .map(|i| (i, t.leads[i].0))
                .collect()
        };
        let head_waited = window
            .first()
            .map(|(i, _)| tracker.lock().expect("tracker").leads[*i].1.elapsed());
        if let (Some((_, head)), Some(waited)) = (window.first(), head_waited) {
            if waited < Duration::from_secs(1) {
                let shown: Result<Option<i32>, _> = sqlx::query_scalar(
                    "SELECT 1 FROM rm_leads WHERE lead_id = $1 AND owner_id IS NOT NULL",
                )
                .bind(head)
                .fetch_optional(&pool)
                .await;
                if !matches!(shown, Ok(Some(_))) {
                    tokio::time::sleep(POLL).await;
                    continue;
                }
            }
        }
        if !window.is_empty() {
            let ids: Vec<Uuid> = window.iter().map(|(_, id)| *id).collect();
            let routed: Result<Vec<Uuid>, _> = sqlx::query_scalar(
                "SELECT lead_id FROM rm_leads WHERE lead_id = ANY($1) AND owner_id IS NOT NULL",
            )
            .bind(&ids)
            .fetch_all(&pool)
            .await;
            let now = Instant::now();
            if let Ok(routed) = routed {
                let routed: std::collections::HashSet<Uuid> = routed.into_iter().collect();
                let mut t = tracker.lock().expect("tracker");
                for (i, id) in window {
                    if routed.contains(&id) {
                        t.seen[i] = Some(now);
                    }
                }
            }
        }
        tokio::time::sleep(POLL).await;
    }
}

/// CPU seconds used so far by every process of this machine, by program name (a snapshot
/// of /proc; the difference of two shows where a phase's CPU went).
fn cpu_by_program() -> std::collections::BTreeMap<String, f64> {
    let mut totals = std::collections::BTreeMap::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return totals;
    };
    for entry in entries.flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let (Some((_, rest)), Some(start)) = (stat.rsplit_once(") "), stat.find('(')) else {
            continue;
        };
        let name = stat[start + 1..]
            .rsplit_once(") ")
            .map_or("", |(n, _)| n)
            .to_string();
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        *totals.entry(name).or_default() += (ticks(11) + ticks(12)) / 100.0;
    }
    totals
}

/// Every transaction committed in the database so far.
async fn commits(pool: &PgPool) -> anyhow::Result<i64> {
    Ok(sqlx::query_scalar(
        "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()",
    )
    .fetch_one(pool)
    .await?)
}

/// Latencies in ms, sorted.
fn latencies(tracker: &Tracker) -> Vec<f64> {
    let mut all: Vec<f64> = tracker
        .leads
        .iter()
        .zip(&tracker.seen)
        .filter_map(|((_, published), seen)| {
            seen.map(|seen| (seen - *published).as_secs_f64() * 1000.0)
        })
        .collect();
    all.sort_by(f64::total_cmp);
    all
}

fn percentiles(sorted: &[f64]) -> serde_json::Value {
    if sorted.is_empty() {
        return json!(null);
    }
    let p = |q: f64| crate::report::percentile(sorted, q);
    json!({"p50": p(0.5), "p95": p(0.95), "p99": p(0.99), "max": p(1.0)})
}

fn summary(sorted: &[f64]) -> String {
    if sorted.is_empty() {
        return "no lead routed".into();
    }
    let p = |q: f64| crate::report::percentile(sorted, q);
    format!(
        "p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        p(0.5),
        p(0.95),
        p(0.99),
        p(1.0)
    )
}

/// Latency (ms, log scale) of each lead over its publish time (s), both phases side by side.
fn svg(max: &Tracker, half: &Tracker) -> String {
    let (width, height, margin) = (1000.0, 420.0, 50.0);
    let points = |t: &Tracker| -> Vec<(f64, f64)> {
        let Some(start) = t.leads.first().map(|l| l.1) else {
            return vec![];
        };
        t.leads
            .iter()
            .zip(&t.seen)
            .filter_map(|((_, p), s)| {
                s.map(|s| ((*p - start).as_secs_f64(), (s - *p).as_secs_f64() * 1000.0))
            })
            .collect()
    };
    let panels = [("maximum rate", points(max)), ("half rate", points(half))];
    let panel_width = (width - 3.0 * margin) / 2.0;
    let (lo, hi) = (1.0f64.log10(), 10_000.0f64.log10());
    let y = |ms: f64| {
        height - margin - (ms.max(1.0).log10() - lo) / (hi - lo) * (height - 2.0 * margin)
    };
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    );
    for (n, (title, pts)) in panels.iter().enumerate() {
        let x0 = margin + n as f64 * (panel_width + margin);
        let span = pts.iter().map(|p| p.0).fold(0.0, f64::max).max(1e-3);
        out.push_str(&format!(
            "<text x=\"{x0}\" y=\"20\">{title}: latency publish → inbox (ms, log) over publish time (s, 0–{span:.1})</text>\n"
        ));
        out.push_str(&format!(
            "<rect x=\"{x0}\" y=\"{margin}\" width=\"{panel_width}\" height=\"{}\" fill=\"none\" stroke=\"#999\"/>\n",
            height - 2.0 * margin
        ));
        for ms in [1.0, 10.0, 100.0, 1000.0, 10000.0] {
            let yy = y(ms);
            out.push_str(&format!(
                "<line x1=\"{x0}\" x2=\"{}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\" stroke=\"#eee\"/><text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{ms}</text>\n",
                x0 + panel_width,
                x0 - 4.0,
                yy + 4.0
            ));
        }
        let step = (pts.len() / 5000).max(1);
        for (t, ms) in pts.iter().step_by(step) {
            out.push_str(&format!(
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"1\" fill=\"#1f77b4\"/>\n",
                x0 + t / span * panel_width,
                y(*ms)
            ));
        }
    }
    out.push_str("</svg>\n");
    out
}

/// The release `leadroute` binary next to this bench, built first when missing.
pub(crate) fn leadroute_binary() -> anyhow::Result<PathBuf> {
    let dir = std::env::current_exe()?
        .parent()
        .map(PathBuf::from)
        .ok_or_else(|| anyhow::anyhow!("no directory of the bench binary"))?;
    let binary = dir.join("leadroute");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let profile = if dir.ends_with("release") {
        "--release"
    } else {
        "--profile=dev"
    };
    // Built together with this bench, so dependencies keep the features `cargo run -p
    // leadroute-bench` gave them, and without the variables `cargo run` set for this
    // process (build scripts such as ring's watch CARGO_MANIFEST_DIR): neither build then
    // undoes the other's.
    say("building the leadroute binary (cargo build -p leadroute-bench -p leadroute --bins)");
    let mut command = std::process::Command::new(cargo);
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if [
            "CARGO_MANIFEST_",
            "CARGO_PKG_",
            "CARGO_CRATE_",
            "CARGO_BIN_",
            "CARGO_PRIMARY_",
        ]
        .iter()
        .any(|prefix| name.starts_with(prefix))
        {
            command.env_remove(name.as_ref());
        }
    }
    let status = command
        .args([
            "build",
            profile,
            "-p",
            "leadroute-bench",
            "-p",
            "leadroute",
            "--bins",
        ])
        .status()?;
    anyhow::ensure!(status.success(), "building the leadroute binary failed");
    anyhow::ensure!(binary.exists(), "{} was not built", binary.display());
    Ok(binary)
}

fn target_dir() -> PathBuf {
    std::env::var("CARGO_TARGET_DIR").map_or_else(|_| PathBuf::from("target"), PathBuf::from)
}

//! `leadroute-bench`: benchmarks against the real PostgreSQL that print their figures.
//!
//! `projections`: projection rebuild throughput (events/s) over generated lead events, next
//! to the multi-row INSERT rate of the same server measured in the same run, and the
//! partner-inbox query (first page) latency over many leads and partner users. It works in
//! a fresh database (dropped at the end) on the server of LEADROUTE_TEST_DATABASE_URL.
//!
//! `intake`: see `intake.rs`; `bulk`: see `bulk.rs`; `e2e`: see `e2e.rs`; `parse`: see
//! `parse.rs`; `duplicates`: see `duplicates.rs`; `sse`: see `sse.rs`.

use clap::{Parser, Subcommand};
use leadroute_domain::ids::{OrgId, Owner, PartnerUserId, QueueId};
use leadroute_projections::projectors;
use leadroute_projections::queries::{partner_inbox, InboxQuery};
use leadroute_projections::rebuild::rebuild;
use leadroute_tests::{generate, TestDb};
use sqlx::PgPool;
use std::time::Instant;
use uuid::Uuid;

/// leadroute benchmarks (run with --release).
#[derive(Debug, Parser)]
#[command(name = "leadroute-bench")]
struct Cli {
    #[command(subcommand)]
    command: Bench,
}

#[derive(Debug, Subcommand)]
enum Bench {
    /// Projection rebuild throughput and partner-inbox query latency.
    Projections {
        /// Leads to generate (two events each).
        #[arg(long, default_value_t = 1_000_000)]
        leads: i64,
        /// Partner users (in accounts of 100 users).
        #[arg(long, default_value_t = 10_000)]
        users: i64,
        /// Partner queues (each account is a member of two).
        #[arg(long, default_value_t = 200)]
        queues: i64,
        /// Inbox queries to time.
        #[arg(long, default_value_t = 2_000)]
        queries: usize,
        /// Keep the benchmark database (its name is printed) instead of dropping it.
        #[arg(long)]
        keep: bool,
        /// Stop after generating the events.
        #[arg(long)]
        generate_only: bool,
    },
    /// Intake throughput (lead events/s from JetStream into the event store) with 1 and 4
    /// workers, next to the single-row commit rate of the same PostgreSQL.
    Intake {
        /// Lead events per run.
        #[arg(long, default_value_t = 20_000)]
        events: usize,
    },
    /// Bulk reassignment throughput (leads/s) next to the single-row commit rate of the
    /// same PostgreSQL.
    Bulk {
        /// Leads moved by each operation.
        #[arg(long, default_value_t = 10_000)]
        leads: usize,
    },
    /// The whole pipeline end to end: routed leads/s at the maximum rate, publish-to-inbox
    /// latency at half that rate, commits per lead, peak RSS per process, and the ratio to
    /// the single-row commit rate (JSON and SVG under target/e2e/).
    E2e {
        /// Leads published at the maximum rate.
        #[arg(long, default_value_t = 20_000)]
        leads: usize,
        /// Seconds of publishing at half the rate reached.
        #[arg(long, default_value_t = 20)]
        half_rate_seconds: u64,
        /// Intake workers (one intake process runs its batches one at a time, so more
        /// workers only hold messages longer).
        #[arg(long, default_value_t = 1)]
        intake_workers: usize,
        /// Router workers.
        #[arg(long, default_value_t = 1)]
        router_workers: usize,
    },
    /// The possible-duplicate lookup of a batch of new leads over many open leads.
    Duplicates {
        /// Open leads owned by partners (two keys each).
        #[arg(long, default_value_t = 1_000_000)]
        leads: i64,
        /// Batches of 100 new leads to time.
        #[arg(long, default_value_t = 200)]
        batches: usize,
    },
    /// Live streams: API memory per idle `GET /v1/stream` connection, and the time one
    /// event takes to reach every stream.
    Sse {
        /// Idle streams to open.
        #[arg(long, default_value_t = 1000)]
        clients: usize,
        /// Offers to time the fan-out of.
        #[arg(long, default_value_t = 20)]
        offers: usize,
    },
    /// What the strict edge (strict JSON, schema, limits) costs per lead event, next to a
    /// plain serde_json parse of the same events (no servers needed).
    Parse {
        /// Parses of each kind.
        #[arg(long, default_value_t = 200_000)]
        events: usize,
    },
}

mod bulk;
mod duplicates;
mod e2e;
mod intake;
mod parse;
mod report;
mod sse;

use report::{percentile, say};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let (leads, users, queues, queries, keep, generate_only) = match Cli::parse().command {
        Bench::Projections {
            leads,
            users,
            queues,
            queries,
            keep,
            generate_only,
        } => (leads, users, queues, queries, keep, generate_only),
        Bench::Intake { events } => return intake::run(events).await,
        Bench::Bulk { leads } => return bulk::run(leads).await,
        Bench::Parse { events } => return parse::run(events),
        Bench::Duplicates { leads, batches } => return duplicates::run(leads, batches).await,
        Bench::Sse { clients, offers } => return sse::run(clients, offers).await,
        Bench::E2e {
            leads,
            half_rate_seconds,
            intake_workers,
            router_workers,
        } => {
            let options = e2e::Options {
                leads,
                half_rate_seconds,
                intake_workers,
                router_workers,
            };
            return e2e::run(options).await;
        }
    };
    let db = TestDb::new().await;
    let pool = &db.pool.clone();
    say(format!("database: {}", db.url));
    if keep {
        std::mem::forget(db);
    }

    let insert_rate = multi_row_insert_rate(pool, 200_000).await?;
    say(format!(
        "multi-row INSERT (1,000 rows per statement): {insert_rate:.0} rows/s"
    ));

    let org = OrgId::new_random();
    let (user_ids, queue_ids) = directory(pool, org, users, queues).await?;
    let owners: Vec<Owner> = user_ids
        .iter()
        .map(|u| Owner::PartnerUser(PartnerUserId(*u)))
        .chain(queue_ids.iter().map(|q| Owner::Queue(QueueId(*q))))
        .collect();
    let started = Instant::now();
    let mut events = 0;
    for first in (1..=leads).step_by(50_000) {
        events +=
            generate::lead_events(pool, org, &owners, first, 50_000.min(leads - first + 1)).await?;
    }
    say(format!(
        "generated {events} events ({leads} leads) in {:.1} s",
        started.elapsed().as_secs_f64()
    ));
    if generate_only {
        return Ok(());
    }

    let started = Instant::now();
    let mut conn = pool.acquire().await?;
    let (mut after, mut read) = (leadroute_store::log::Checkpoint::ZERO, 0usize);
    loop {
        let batch = leadroute_store::log::read_batch(&mut conn, after, None, 5000).await?;
        let Some(last) = batch.last() else { break };
        after = last.position;
        read += batch.len();
    }
    drop(conn);
    let seconds = started.elapsed().as_secs_f64();
    say(format!(
        "log read and decode: {read} events in {seconds:.1} s = {:.0} events/s",
        read as f64 / seconds
    ));

    for name in ["leads", "ownership_history"] {
        let started = Instant::now();
        let report = rebuild(pool, projectors::by_name(name)?).await?;
        let seconds = started.elapsed().as_secs_f64();
        say(format!(
            "rebuild {name}: {} events in {seconds:.1} s = {:.0} events/s ({:.2}x the multi-row INSERT rate)",
            report.events,
            report.events as f64 / seconds,
            report.events as f64 / seconds / insert_rate
        ));
    }

    sqlx::query("VACUUM ANALYZE").execute(pool).await?;
    let latencies = inbox_latencies(pool, org, &user_ids, queries).await?;
    say(format!(
        "partner inbox, first page of 50 ({leads} leads, {users} users, warm cache, {queries} queries): \
         p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.95),
        percentile(&latencies, 0.99),
        percentile(&latencies, 1.0)
    ));
    Ok(())
}

/// Rows per second of INSERT statements carrying 1,000 rows each, each its own transaction.
async fn multi_row_insert_rate(pool: &PgPool, rows: i64) -> anyhow::Result<f64> {
    sqlx::query("CREATE TABLE bench_insert (id bigint, name text, doc jsonb)")
        .execute(pool)
        .await?;
    let started = Instant::now();
    for first in (0..rows).step_by(1000) {
        let ids: Vec<i64> = (first..first + 1000).collect();
        let names: Vec<String> = ids.iter().map(|i| format!("row {i}")).collect();
        let docs: Vec<serde_json::Value> =
            ids.iter().map(|i| serde_json::json!({ "i": i })).collect();
        sqlx::query(
            "INSERT INTO bench_insert SELECT * FROM unnest($1::int8[], $2::text[], $3::jsonb[])",
        )
        .bind(&ids)
        .bind(&names)
        .bind(&docs)
        .execute(pool)
        .await?;
    }
    let rate = rows as f64 / started.elapsed().as_secs_f64();
    sqlx::query("DROP TABLE bench_insert").execute(pool).await?;
    Ok(rate)
}

/// Directory rows for the inbox query, written straight into the read model: accounts of
/// 100 users, each account a member of two queues.
async fn directory(
    pool: &PgPool,
    org: OrgId,
    users: i64,
    queues: i64,
) -> anyhow::Result<(Vec<Uuid>, Vec<Uuid>)> {
    let accounts = (users + 99) / 100;
    sqlx::query(
        "INSERT INTO rm_partner_accounts (account_id, org_id, name, channel_manager, territory, tier, active, created_at)
         SELECT md5('account' || a)::uuid, $1, 'Account ' || a, md5('manager' || (a % 20))::uuid, 'EMEA', 'gold', true, now()
           FROM generate_series(1, $2::int8) a",
    )
    .bind(org.0)
    .bind(accounts)
    .execute(pool)
    .await?;
    let user_ids: Vec<Uuid> = sqlx::query_scalar(
        "INSERT INTO rm_partner_users (user_id, org_id, account_id, name, email, active, signed_in_once, paused, created_at)
         SELECT md5('user' || u)::uuid, $1, md5('account' || ((u % $3) + 1))::uuid, 'User ' || u, 'u' || u || '@p.example',
                true, true, false, now()
           FROM generate_series(1, $2::int8) u
         RETURNING user_id",
    )
    .bind(org.0)
    .bind(users)
    .bind(accounts)
    .fetch_all(pool)
    .await?;
    let queue_ids: Vec<Uuid> = sqlx::query_scalar(
        "INSERT INTO rm_queues (queue_id, org_id, name, created_at)
         SELECT md5('queue' || q)::uuid, $1, 'Queue ' || q, now() FROM generate_series(1, $2::int8) q
         RETURNING queue_id",
    )
    .bind(org.0)
    .bind(queues)
    .fetch_all(pool)
    .await?;
    sqlx::query(
        "INSERT INTO rm_queue_members (queue_id, member_kind, member_id)
         SELECT DISTINCT md5('queue' || (((a * k) % $2) + 1))::uuid, 'partner_account', md5('account' || a)::uuid
           FROM generate_series(1, $1::int8) a, (VALUES (1), (7)) AS m(k)",
    )
    .bind(accounts)
    .bind(queues)
    .execute(pool)
    .await?;
    Ok((user_ids, queue_ids))
}

/// Latencies (ms) of the first inbox page for users picked across the directory.
async fn inbox_latencies(
    pool: &PgPool,
    org: OrgId,
    users: &[Uuid],
    queries: usize,
) -> anyhow::Result<Vec<f64>> {
    let page = InboxQuery {
        limit: 50,
        ..Default::default()
    };
    // Warm pass over exactly the users the timed pass asks for.
    for i in 0..queries {
        partner_inbox(
            pool,
            org,
            PartnerUserId(users[(i * 7919) % users.len()]),
            &page,
        )
        .await?;
    }
    let mut latencies = Vec::with_capacity(queries);
    for i in 0..queries {
        let user = PartnerUserId(users[(i * 7919) % users.len()]);
        let started = Instant::now();
        let items = partner_inbox(pool, org, user, &page).await?;
        latencies.push(started.elapsed().as_secs_f64() * 1000.0);
        anyhow::ensure!(!items.is_empty(), "the inbox of {user} is empty");
    }
    latencies.sort_by(f64::total_cmp);
    Ok(latencies)
}

//! `leadroute-bench intake`: how many upstream lead events per second the intake turns into
//! committed leads (1 and 4 workers sharing the durable consumer), next to the single-row
//! commit rate of the same PostgreSQL (1 and 16 clients), all measured in one run.

use crate::report::say;
use leadroute_app::{CommandMeta, Commands};
use leadroute_domain::ids::{Actor, OrgId};
use leadroute_tests::{TestDb, TestNats};
use leadroute_workers::nats::Names;
use leadroute_workers::tasks::Tasks;
use sqlx::PgPool;
use std::time::{Duration, Instant};

pub async fn run(events: usize) -> anyhow::Result<()> {
    let db = TestDb::new().await;
    for clients in [1, 16] {
        let rate = single_row_commits(&db.pool, clients, Duration::from_secs(3)).await?;
        say(format!(
            "single-row INSERT commits, {clients} client(s): {rate:.0} commits/s"
        ));
    }
    let org = OrgId::new_random();
    Commands::new(db.pool.clone())
        .create_org(
            &CommandMeta::now(Actor::System("bench".into())),
            org,
            "Bench",
        )
        .await?;
    for workers in [1, 4] {
        let nats = TestNats::new().await;
        let names = Names::new(&nats.prefix, &nats.crm_prefix())?;
        // Streams and consumer first, then a backlog, then the timed drain.
        Tasks::intake(
            &leadroute_app::Commands::new(db.pool.clone()),
            &nats.url,
            names.clone(),
            1,
        )
        .await?
        .stop()
        .await;
        for i in 0..events {
            let body = serde_json::json!({
                "schema_version": 1, "upstream_event_id": format!("w{workers}-e{i}"), "upstream_system": "bench",
                "upstream_lead_id": format!("w{workers}-L{i}"), "occurred_at": "2026-11-28T08:00:00Z",
                "fields": { "company": format!("Company {i}"), "country": "DE" }
            });
            nats.js
                .publish(names.crm_subject(org.0, "created"), body.to_string().into())
                .await?;
        }
        nats.js
            .publish(names.crm_subject(org.0, "created"), "{}".into())
            .await?
            .await?;
        let started = Instant::now();
        let running = Tasks::intake(
            &leadroute_app::Commands::new(db.pool.clone()),
            &nats.url,
            names.clone(),
            workers,
        )
        .await?;
        let stream = nats.js.get_stream(names.crm_stream()).await?;
        loop {
            let info = stream.consumer_info(names.intake_consumer()).await?;
            if info.num_pending == 0 && info.num_ack_pending == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let seconds = started.elapsed().as_secs_f64();
        running.stop().await;
        say(format!(
            "intake, {workers} worker(s): {} events in {seconds:.1} s = {:.0} events/s",
            events + 1,
            (events + 1) as f64 / seconds
        ));
    }
    Ok(())
}

/// Transactions per second of one-row INSERTs with synchronous commit from `clients`.
pub async fn single_row_commits(
    pool: &PgPool,
    clients: usize,
    time: Duration,
) -> anyhow::Result<f64> {
    sqlx::query("CREATE TABLE IF NOT EXISTS bench_commits (id bigserial PRIMARY KEY, note text)")
        .execute(pool)
        .await?;
    let deadline = Instant::now() + time;
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move {
                let mut conn = pool.acquire().await?;
                let mut commits = 0u64;
                while Instant::now() < deadline {
                    sqlx::query("INSERT INTO bench_commits (note) VALUES ('x')")
                        .execute(&mut *conn)
                        .await?;
                    commits += 1;
                }
                Ok::<_, sqlx::Error>(commits)
            })
        })
        .collect();
    let mut total = 0;
    for task in tasks {
        total += task.await??;
    }
    Ok(total as f64 / time.as_secs_f64())
}

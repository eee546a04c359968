//! `leadroute-bench duplicates`: the possible-duplicate lookup routing makes for each batch
//! of new leads (`queries::duplicates`, through the `rm_lead_keys` index joined with
//! `rm_leads`) over an org of `--leads` open leads owned by partners, each with an email and
//! its company domain indexed. Prints the latency of a batch of 100 new leads (half of them
//! duplicates) at the median and p99, and per lead.

use crate::report::{percentile, say};
use leadroute_domain::duplicates::{default_keys, lookups};
use leadroute_domain::ids::OrgId;
use leadroute_projections::queries;
use leadroute_tests::TestDb;
use std::time::Instant;
use uuid::Uuid;

pub async fn run(leads: i64, batches: usize) -> anyhow::Result<()> {
    let db = TestDb::new().await;
    let pool = &db.pool;
    let org = OrgId(Uuid::new_v4());
    let started = Instant::now();
    // Open leads owned by 1,000 partner users, with their keys as the projector writes
    // them.
    sqlx::query(
        "INSERT INTO rm_leads (lead_id, org_id, upstream_system, upstream_lead_id, fields, owner_kind,
                               owner_id, status, received_at, owner_since, updated_at)
         SELECT md5('lead' || i)::uuid, $1, 'bench', 'L' || i,
                jsonb_build_object('email', 'buyer' || i || '@company' || i || '.example'),
                'partner_user', md5('user' || (i % 1000))::uuid, 'accepted', now(), now(), now()
           FROM generate_series(1, $2) AS i",
    )
    .bind(org.0)
    .bind(leads)
    .execute(pool)
    .await?;
    sqlx::query(
        "INSERT INTO rm_lead_keys (org_id, kind, value, field, lead_id)
         SELECT $1, 'email', 'buyer' || i || '@company' || i || '.example', 'email', md5('lead' || i)::uuid
           FROM generate_series(1, $2) AS i
         UNION ALL
         SELECT $1, 'domain', 'company' || i || '.example', 'email', md5('lead' || i)::uuid
           FROM generate_series(1, $2) AS i",
    )
    .bind(org.0)
    .bind(leads)
    .execute(pool)
    .await?;
    sqlx::query("ANALYZE rm_leads").execute(pool).await?;
    sqlx::query("ANALYZE rm_lead_keys").execute(pool).await?;
    say(format!(
        "{leads} open leads with {} keys indexed in {:.1} s",
        leads * 2,
        started.elapsed().as_secs_f64()
    ));

    let keys = default_keys();
    let fields: Vec<(&str, &str)> = keys
        .iter()
        .map(|k| (k.kind.as_str(), k.field.as_str()))
        .collect();
    let mut millis = Vec::with_capacity(batches);
    let mut found = 0;
    for b in 0..batches {
        // 100 new leads: even ones write from a known company (other address), odd ones
        // from a new company.
        let batch: Vec<(Uuid, Vec<(&str, String)>)> = (0..100)
            .map(|n| {
                let i = (b as i64 * 7919 + n * 104_729) % leads + 1;
                let email = match n % 2 {
                    0 => format!("someone@company{i}.example"),
                    _ => format!("someone@newco{b}x{n}.example"),
                };
                let lead_fields = [("email".to_string(), serde_json::json!(email))].into();
                let found = lookups(&keys, &lead_fields)
                    .into_iter()
                    .map(|(kind, value)| (kind.as_str(), value))
                    .collect();
                (Uuid::new_v4(), found)
            })
            .collect();
        let t = Instant::now();
        let matches = queries::duplicates(pool, org, &fields, &batch).await?;
        millis.push(t.elapsed().as_secs_f64() * 1000.0);
        found += matches.len();
    }
    millis.sort_by(|a, b| a.total_cmp(b));
    let (p50, p99) = (percentile(&millis, 0.5), percentile(&millis, 0.99));
    say(format!(
        "duplicate lookup, batches of 100 new leads over {leads} open leads: p50 {p50:.2} ms, p99 {p99:.2} ms per batch ({:.3} ms per lead at p50); {found} of {} new leads matched",
        p50 / 100.0,
        batches * 100
    ));
    Ok(())
}

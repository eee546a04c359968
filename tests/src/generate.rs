//! Generated lead events for load tests and benchmarks, inserted straight into the event
//! log with set-based SQL: per lead a `LeadReceived` and an owner change (`LeadEnqueued` to
//! a queue or `LeadReassigned` to a partner user), in the exact stored shape the domain
//! types decode.

use leadroute_domain::ids::{OrgId, Owner};
use leadroute_projections::projectors::owner_columns;
use leadroute_store::schema::EVENTS_TABLE;
use sqlx::PgPool;
use uuid::Uuid;

/// Insert leads `first..first+count` of `org` (two events each, one transaction), owned
/// round-robin by `owners` (partner users or queues). Returns the events written.
pub async fn lead_events(
    pool: &PgPool,
    org: OrgId,
    owners: &[Owner],
    first: i64,
    count: i64,
) -> sqlx::Result<u64> {
    let (kinds, ids): (Vec<&str>, Vec<Uuid>) = owners.iter().map(owner_columns).unzip();
    let result = sqlx::query(&format!(
        "WITH leads AS (
             SELECT i, uuid_generate_v5_like AS lead_id,
                    ($4::text[])[((i - 1) % cardinality($4::text[])) + 1] AS owner_kind,
                    ($5::uuid[])[((i - 1) % cardinality($5::uuid[])) + 1] AS owner_id,
                    to_jsonb(clock_timestamp()) AS at
               FROM generate_series($2::int8, $2::int8 + $3::int8 - 1) AS i,
                    LATERAL (SELECT md5($1::text || ':' || i)::uuid AS uuid_generate_v5_like) u),
         actor AS (SELECT '{{\"kind\": \"system\", \"id\": \"generator\"}}'::jsonb AS actor),
         rows AS (
             SELECT 0 AS step, i, lead_id, 'LeadReceived' AS event_type,
                    jsonb_build_object('LeadReceived', jsonb_build_object(
                        'lead_id', lead_id, 'org_id', $1::uuid,
                        'upstream', jsonb_build_object('system', 'generator', 'lead_id', i::text),
                        'upstream_event_id', 'gen-' || i,
                        'fields', jsonb_build_object('company', 'Company ' || i, 'country',
                                  (ARRAY['DE','FR','GB','US','NL'])[(i % 5) + 1], 'employees', i % 5000),
                        'route', true, 'actor', actor, 'at', at)) AS payload
               FROM leads, actor
             UNION ALL
             SELECT 1, i, lead_id,
                    CASE owner_kind WHEN 'queue' THEN 'LeadEnqueued' ELSE 'LeadReassigned' END,
                    CASE owner_kind
                        WHEN 'queue' THEN jsonb_build_object('LeadEnqueued', jsonb_build_object('change',
                            jsonb_build_object('from', NULL, 'to', jsonb_build_object('kind', owner_kind, 'id', owner_id),
                                               'actor', actor, 'cause', 'enqueue', 'at', at)))
                        ELSE jsonb_build_object('LeadReassigned', jsonb_build_object('notify', false, 'change',
                            jsonb_build_object('from', NULL, 'to', jsonb_build_object('kind', owner_kind, 'id', owner_id),
                                               'actor', actor, 'cause', 'manual', 'at', at)))
                    END
               FROM leads, actor)
         INSERT INTO {EVENTS_TABLE} (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         SELECT 'Lead', lead_id::text, step + 1, event_type, '1.0', payload, '{{}}'::jsonb
           FROM rows ORDER BY step, i"
    ))
    .bind(org.0)
    .bind(first)
    .bind(count)
    .bind(&kinds)
    .bind(&ids)
    .execute(pool)
    .await?;
    Ok(result.rows_affected())
}

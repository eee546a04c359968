//! Rebuilding a projection from position zero while the service runs, and verifying every
//! live projection against a fresh rebuild in a scratch schema (`leadroute audit verify`).
//!
//! Scratch copies are made with `CREATE TABLE ... (LIKE live)` plus the live constraint and
//! index names, so table definitions still come only from the migrations. Projectors write
//! the copies through search_path; the live projector keeps running until the swap, which
//! holds its checkpoint lock.

use crate::projector::{lock_checkpoint, use_schema, ProjectionError, Projector};
use crate::runtime::{catch_up_copy, step_in, Mode, BATCH_SIZE};
use leadroute_store::log::Checkpoint;
use serde_json::Value;
use sqlx::{Connection, PgConnection, PgPool};

/// What a rebuild did.
#[derive(Debug, Clone)]
pub struct RebuildReport {
    /// Events applied to the fresh copy.
    pub events: usize,
    /// Where the swapped-in copy stands.
    pub checkpoint: Checkpoint,
}

/// Rows that differ between a live table and its rebuild.
#[derive(Debug, Clone)]
pub struct TableDifference {
    /// Projection name.
    pub projection: String,
    /// Table name.
    pub table: String,
    /// Rows only in the live table.
    pub only_live: i64,
    /// Rows only in the rebuild.
    pub only_rebuilt: i64,
    /// Up to 10 differing rows as JSON, with the side they are on.
    pub samples: Vec<(String, Value)>,
}

struct Scratch {
    schema: String,
}

impl Scratch {
    /// A scratch schema with empty copies of the projector's tables and of the checkpoint
    /// table, with the live tables' columns, defaults and constraints (not yet their other
    /// indexes).
    async fn create(
        conn: &mut PgConnection,
        projector: &dyn Projector,
    ) -> Result<Scratch, sqlx::Error> {
        drop_abandoned(conn).await?;
        let schema = format!("{SCRATCH_PREFIX}{}", uuid::Uuid::new_v4().simple());
        // Held by this session for the scratch schema's life: a run killed before it drops
        // its schema releases it, which tells the next run the schema is abandoned.
        sqlx::query(&format!("SELECT pg_advisory_lock({SCRATCH_LOCK})"))
            .bind(&schema)
            .execute(&mut *conn)
            .await?;
        let mut tx = conn.begin().await?;
        sqlx::query(&format!("CREATE SCHEMA {schema}"))
            .execute(&mut *tx)
            .await?;
        for table in projector.tables().iter().chain(&["projection_checkpoints"]) {
            copy_table(&mut tx, &schema, table).await?;
        }
        tx.commit().await?;
        Ok(Scratch { schema })
    }

    async fn drop(self, conn: &mut PgConnection) -> Result<(), sqlx::Error> {
        sqlx::query(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema))
            .execute(&mut *conn)
            .await?;
        self.release(conn).await
    }

    /// Release the schema's lock (after the schema was dropped or swapped away).
    async fn release(&self, conn: &mut PgConnection) -> Result<(), sqlx::Error> {
        sqlx::query(&format!("SELECT pg_advisory_unlock({SCRATCH_LOCK})"))
            .bind(&self.schema)
            .execute(conn)
            .await
            .map(|_| ())
    }
}

/// Names of scratch schemas start with this.
pub const SCRATCH_PREFIX: &str = "lr_scratch_";

/// The advisory-lock key of the scratch schema named by `$1`.
const SCRATCH_LOCK: &str = "hashtextextended('leadroute.scratch.' || $1, 0)";

/// Drop the scratch schemas of earlier runs that were killed before they cleaned up (those
/// whose lock nobody holds); returns how many.
pub async fn drop_abandoned(conn: &mut PgConnection) -> Result<usize, sqlx::Error> {
    let schemas: Vec<String> = sqlx::query_scalar(
        "SELECT nspname::text FROM pg_namespace WHERE starts_with(nspname::text, $1)",
    )
    .bind(SCRATCH_PREFIX)
    .fetch_all(&mut *conn)
    .await?;
    let mut dropped = 0;
    for schema in schemas {
        let free: bool =
            sqlx::query_scalar(&format!("SELECT pg_try_advisory_lock({SCRATCH_LOCK})"))
                .bind(&schema)
                .fetch_one(&mut *conn)
                .await?;
        if free {
            let scratch = Scratch { schema };
            tracing::info!(schema = %scratch.schema, "dropping the scratch schema of an earlier run that did not finish");
            scratch.drop(conn).await?;
            dropped += 1;
        }
    }
    Ok(dropped)
}

/// `CREATE TABLE schema.table (LIKE public.table)` with the live constraints under their
/// live names (see [`copy_indexes`] for the other indexes), so a copy swapped in is
/// indistinguishable from what the migrations made.
async fn copy_table(conn: &mut PgConnection, schema: &str, table: &str) -> Result<(), sqlx::Error> {
    sqlx::query(&format!(
        "CREATE TABLE {schema}.{table} (LIKE public.{table} INCLUDING ALL EXCLUDING INDEXES)"
    ))
    .execute(&mut *conn)
    .await?;
    let constraints: Vec<(String, String)> = sqlx::query_as(
        "SELECT conname::text, pg_get_constraintdef(oid) FROM pg_constraint
          WHERE conrelid = ('public.' || $1)::regclass AND contype IN ('p', 'u') ORDER BY conname",
    )
    .bind(table)
    .fetch_all(&mut *conn)
    .await?;
    for (name, definition) in constraints {
        sqlx::query(&format!(
            "ALTER TABLE {schema}.{table} ADD CONSTRAINT {name} {definition}"
        ))
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Create on the copy of `table` in `schema` the live table's other indexes, with their live
/// names. A rebuild adds them after the bulk load, which is much cheaper than maintaining
/// them row by row; a verify never needs them.
async fn copy_indexes(
    conn: &mut PgConnection,
    schema: &str,
    table: &str,
) -> Result<(), sqlx::Error> {
    let indexes: Vec<String> = sqlx::query_scalar(
        "SELECT indexdef FROM pg_indexes i
          WHERE schemaname = 'public' AND tablename = $1
            AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = ('public.' || i.indexname)::regclass)
          ORDER BY indexname",
    )
    .bind(table)
    .fetch_all(&mut *conn)
    .await?;
    for definition in indexes {
        let definition = definition.replace(
            &format!(" ON public.{table} "),
            &format!(" ON {schema}.{table} "),
        );
        sqlx::query(&definition).execute(&mut *conn).await?;
    }
    Ok(())
}

/// Rebuild `projector` from position zero into fresh tables and swap them in.
pub async fn rebuild(
    pool: &PgPool,
    projector: &dyn Projector,
) -> Result<RebuildReport, ProjectionError> {
    let mut conn = pool.acquire().await?;
    let scratch = Scratch::create(&mut conn, projector).await?;
    let result = rebuild_into(pool, &mut conn, projector, &scratch).await;
    if result.is_err() {
        let _ = scratch.drop(&mut conn).await;
    } else {
        scratch.release(&mut conn).await?;
    }
    result
}

async fn rebuild_into(
    pool: &PgPool,
    conn: &mut PgConnection,
    projector: &dyn Projector,
    scratch: &Scratch,
) -> Result<RebuildReport, ProjectionError> {
    let schema = &scratch.schema;
    let mut events = catch_up_copy(pool, projector, schema, None).await?;
    for table in projector.tables() {
        copy_indexes(conn, schema, table).await?;
        sqlx::query(&format!("ANALYZE {schema}.{table}"))
            .execute(&mut *conn)
            .await?;
    }
    let mut tx = conn.begin().await?;
    // Holds the live projector between batches until the swap commits.
    lock_checkpoint(&mut tx, projector.name()).await?;
    use_schema(&mut tx, schema).await?;
    loop {
        match step_in(&mut tx, projector, None, BATCH_SIZE, Mode::Careful).await? {
            0 => break,
            n => events += n,
        }
    }
    sqlx::query("SET LOCAL search_path TO public")
        .execute(&mut *tx)
        .await?;
    for table in projector.tables() {
        sqlx::query(&format!("DROP TABLE public.{table}"))
            .execute(&mut *tx)
            .await?;
        sqlx::query(&format!("ALTER TABLE {schema}.{table} SET SCHEMA public"))
            .execute(&mut *tx)
            .await?;
    }
    let (txid, position): (String, i64) = sqlx::query_as(&format!(
        "UPDATE public.projection_checkpoints AS live
            SET transaction_id = s.transaction_id, global_position = s.global_position,
                events_applied = s.events_applied, updated_at = clock_timestamp()
           FROM {schema}.projection_checkpoints AS s
          WHERE live.name = $1 AND s.name = $1
      RETURNING live.transaction_id::text, live.global_position"
    ))
    .bind(projector.name())
    .fetch_optional(&mut *tx)
    .await?
    .unwrap_or_else(|| ("0".to_string(), 0));
    sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    let checkpoint = Checkpoint {
        transaction_id: leadroute_store::log::parse_xid(&txid)?,
        global_position: position,
    };
    Ok(RebuildReport { events, checkpoint })
}

/// Rebuild every projector into a scratch schema up to its live checkpoint and list every
/// difference from the live tables (none expected). Nothing live is changed.
pub async fn verify(
    pool: &PgPool,
    projectors: &[&dyn Projector],
) -> Result<Vec<TableDifference>, ProjectionError> {
    let mut differences = Vec::new();
    let mut conn = pool.acquire().await?;
    for &projector in projectors {
        let scratch = Scratch::create(&mut conn, projector).await?;
        let result = verify_one(pool, &mut conn, projector, &scratch).await;
        scratch.drop(&mut conn).await?;
        differences.extend(result?);
    }
    Ok(differences)
}

async fn verify_one(
    pool: &PgPool,
    conn: &mut PgConnection,
    projector: &dyn Projector,
    scratch: &Scratch,
) -> Result<Vec<TableDifference>, ProjectionError> {
    let schema = &scratch.schema;
    // Most of the way without holding the live projector (it only moves forward) ...
    let mut tx = conn.begin().await?;
    let start = lock_checkpoint(&mut tx, projector.name()).await?;
    tx.rollback().await?;
    catch_up_copy(pool, projector, schema, Some(start)).await?;
    // ... then the rest with the live checkpoint locked, and compare at the same position.
    let mut tx = conn.begin().await?;
    let live = lock_checkpoint(&mut tx, projector.name()).await?;
    use_schema(&mut tx, schema).await?;
    while step_in(&mut tx, projector, Some(live), BATCH_SIZE, Mode::Careful).await? > 0 {}
    let mut differences = Vec::new();
    for table in projector.tables() {
        if let Some(difference) = compare(&mut tx, projector.name(), table, schema).await? {
            differences.push(difference);
        }
    }
    // Rows alone cannot show an event applied twice when applying it is idempotent; the
    // count of applied events can.
    let (live_applied, rebuilt_applied): (i64, i64) = sqlx::query_as(&format!(
        "SELECT (SELECT events_applied FROM public.projection_checkpoints WHERE name = $1),
                (SELECT events_applied FROM {schema}.projection_checkpoints WHERE name = $1)"
    ))
    .bind(projector.name())
    .fetch_one(&mut *tx)
    .await?;
    if live_applied != rebuilt_applied {
        differences.push(TableDifference {
            projection: projector.name().to_string(),
            table: "projection_checkpoints".to_string(),
            only_live: 1,
            only_rebuilt: 1,
            samples: vec![
                (
                    "live".to_string(),
                    serde_json::json!({ "events_applied": live_applied }),
                ),
                (
                    "rebuilt".to_string(),
                    serde_json::json!({ "events_applied": rebuilt_applied }),
                ),
            ],
        });
    }
    tx.rollback().await?;
    Ok(differences)
}

async fn compare(
    conn: &mut PgConnection,
    projection: &str,
    table: &str,
    schema: &str,
) -> Result<Option<TableDifference>, sqlx::Error> {
    let (live, rebuilt) = (format!("public.{table}"), format!("{schema}.{table}"));
    let diff = format!(
        "(SELECT 'live' AS side, to_jsonb(t) AS row FROM (SELECT * FROM {live} EXCEPT ALL SELECT * FROM {rebuilt}) t)
         UNION ALL
         (SELECT 'rebuilt', to_jsonb(t) FROM (SELECT * FROM {rebuilt} EXCEPT ALL SELECT * FROM {live}) t)"
    );
    let (only_live, only_rebuilt): (i64, i64) = sqlx::query_as(&format!(
        "SELECT count(*) FILTER (WHERE side = 'live'), count(*) FILTER (WHERE side = 'rebuilt') FROM ({diff}) d"
    ))
    .fetch_one(&mut *conn)
    .await?;
    if only_live == 0 && only_rebuilt == 0 {
        return Ok(None);
    }
    let samples = sqlx::query_as(&format!("SELECT side, row FROM ({diff}) d LIMIT 10"))
        .fetch_all(&mut *conn)
        .await?;
    Ok(Some(TableDifference {
        projection: projection.to_string(),
        table: table.to_string(),
        only_live,
        only_rebuilt,
        samples,
    }))
}

//! The commit-safe log reader on the real PostgreSQL: transactions that commit out of order
//! (one holds its transaction open while later ones commit) are never skipped nor repeated.

use chrono::Utc;
use leadroute_domain::ids::{Actor, OrgId};
use leadroute_domain::org::OrgEvent;
use leadroute_store::log::{read_batch, Checkpoint};
use leadroute_store::schema::EVENTS_TABLE;
use leadroute_tests::{eventually, TestDb};
use sqlx::PgConnection;
use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// Insert one event the way postgres-es does (the extra columns take their defaults).
async fn insert_event(conn: &mut PgConnection) -> Uuid {
    let org = OrgId::new_random();
    let event = OrgEvent::OrgCreated {
        org_id: org,
        name: "Org".into(),
        slug: None,
        actor: Actor::System("test".into()),
        at: Utc::now(),
    };
    sqlx::query_scalar(&format!(
        "INSERT INTO {EVENTS_TABLE} (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         VALUES ('Org', $1, 1, 'OrgCreated', '1.0', $2, '{{}}') RETURNING event_id"
    ))
    .bind(org.to_string())
    .bind(serde_json::to_value(&event).unwrap())
    .fetch_one(conn)
    .await
    .unwrap()
}

fn jitter(max_ms: u128) -> Duration {
    Duration::from_millis((Uuid::new_v4().as_u128() % max_ms) as u64)
}

#[tokio::test]
async fn an_open_transaction_holds_back_later_commits_until_it_ends() {
    let db = TestDb::new().await;
    let mut slow = db.pool.begin().await.unwrap();
    let first = insert_event(&mut slow).await;
    let mut fast = db.pool.acquire().await.unwrap();
    let second = insert_event(&mut fast).await;

    let mut reader = db.pool.acquire().await.unwrap();
    let positions: Vec<(i64,)> =
        sqlx::query_as(&format!("SELECT global_position FROM {EVENTS_TABLE}"))
            .fetch_all(&mut *reader)
            .await
            .unwrap();
    assert_eq!(
        positions.len(),
        1,
        "only the fast transaction's event is committed"
    );
    assert!(
        read_batch(&mut reader, Checkpoint::ZERO, None, 100)
            .await
            .unwrap()
            .is_empty(),
        "the committed later event waits while an earlier transaction is open"
    );

    slow.commit().await.unwrap();
    // Transactions of other tests on the same cluster may hold the horizon a moment longer.
    let reader = std::sync::Arc::new(tokio::sync::Mutex::new(reader));
    let read = eventually(Duration::from_secs(10), || async {
        let mut conn = reader.lock().await;
        let batch = read_batch(&mut conn, Checkpoint::ZERO, None, 100)
            .await
            .unwrap();
        (batch.len() == 2).then(|| batch.into_iter().map(|e| e.event_id).collect::<Vec<_>>())
    })
    .await;
    assert_eq!(
        read,
        Some(vec![first, second]),
        "commit order: the earlier transaction first"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_committing_out_of_order_are_read_exactly_once() {
    let db = TestDb::new().await;
    // Set once the writers are done: how many events the reader must end up with. (An open
    // transaction of another test on the server may hold the reader back for a while.)
    let expected = Arc::new(AtomicUsize::new(usize::MAX));
    let writers: Vec<_> = (0..8)
        .map(|_| {
            let pool = db.pool.clone();
            tokio::spawn(async move {
                let mut written = Vec::new();
                for _ in 0..25 {
                    let mut tx = pool.begin().await.unwrap();
                    for _ in 0..(1 + Uuid::new_v4().as_u128() % 3) {
                        written.push(insert_event(&mut tx).await);
                        tokio::time::sleep(jitter(8)).await;
                    }
                    tx.commit().await.unwrap();
                }
                written
            })
        })
        .collect();

    let reader = {
        let (pool, expected) = (db.pool.clone(), expected.clone());
        tokio::spawn(async move {
            let mut conn = pool.acquire().await.unwrap();
            let (mut checkpoint, mut read) = (Checkpoint::ZERO, Vec::new());
            let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
            loop {
                let batch = read_batch(&mut conn, checkpoint, None, 7).await.unwrap();
                if let Some(last) = batch.last() {
                    assert!(last.position > checkpoint, "the reader only moves forward");
                    checkpoint = last.position;
                }
                read.extend(batch.into_iter().map(|e| e.event_id));
                if read.len() >= expected.load(Ordering::SeqCst)
                    || tokio::time::Instant::now() > deadline
                {
                    // One more read must find nothing new.
                    read.extend(
                        read_batch(&mut conn, checkpoint, None, 7)
                            .await
                            .unwrap()
                            .into_iter()
                            .map(|e| e.event_id),
                    );
                    return read;
                }
                tokio::time::sleep(jitter(3)).await;
            }
        })
    };

    let mut written = Vec::new();
    for writer in writers {
        written.extend(writer.await.unwrap());
    }
    expected.store(written.len(), Ordering::SeqCst);
    let read = reader.await.unwrap();

    let unique: HashSet<_> = read.iter().collect();
    assert_eq!(unique.len(), read.len(), "no event is read twice");
    assert_eq!(
        unique,
        written.iter().collect::<HashSet<_>>(),
        "every committed event is read"
    );
}

#[tokio::test]
async fn events_are_ordered_by_transaction_id_as_a_number() {
    let db = TestDb::new().await;
    let mut conn = db.pool.acquire().await.unwrap();
    let mut ids = Vec::new();
    for xid in ["10", "9"] {
        let id = insert_event(&mut conn).await;
        sqlx::query(&format!(
            "UPDATE {EVENTS_TABLE} SET transaction_id = $1::text::xid8 WHERE event_id = $2"
        ))
        .bind(xid)
        .bind(id)
        .execute(&mut *conn)
        .await
        .unwrap();
        ids.push(id);
    }
    let read: Vec<Uuid> = read_batch(&mut conn, Checkpoint::ZERO, None, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.event_id)
        .collect();
    assert_eq!(
        read,
        vec![ids[1], ids[0]],
        "9 before 10, whatever their text sorts like"
    );
}

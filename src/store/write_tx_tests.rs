//! The write transaction's guard: what it commits stays, what it rolls back or drops unfinished
//! does not, and its connection never goes back to the pool inside a transaction (one
//! connection in the pool, so the next transaction gets the same one).

use std::time::Duration;

use sqlx::{Connection, SqliteConnection};

use super::*;
use crate::store::testing::OneConnection;
use crate::store::Store;

async fn one_connection() -> OneConnection {
    OneConnection::new(Duration::from_millis(200)).await
}

async fn insert(tx: &mut WriteTx, x: i64) {
    sqlx::query("INSERT INTO probe (x) VALUES ($1)")
        .bind(x)
        .execute(&mut **tx)
        .await
        .unwrap();
}

async fn stored(store: &Store) -> Vec<i64> {
    sqlx::query_scalar("SELECT x FROM probe ORDER BY x")
        .fetch_all(store.pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn committed_rows_stay_and_rolled_back_ones_do_not() {
    let db = one_connection().await;
    for x in 1..=3 {
        let mut tx = WriteTx::begin(db.store.pool()).await.unwrap();
        insert(&mut tx, x).await;
        tx.commit().await.unwrap();
    }
    let mut tx = WriteTx::begin(db.store.pool()).await.unwrap();
    insert(&mut tx, 10).await;
    tx.rollback().await.unwrap();
    assert_eq!(stored(&db.store).await, [1, 2, 3]);
}

#[tokio::test]
async fn a_transaction_dropped_unfinished_is_rolled_back() {
    let db = one_connection().await;
    let mut tx = WriteTx::begin(db.store.pool()).await.unwrap();
    insert(&mut tx, 1).await;
    drop(tx);
    // The same (only) connection, once the rollback has run: a BEGIN inside a transaction
    // would fail, and the row would still be there.
    let mut tx = WriteTx::begin(db.store.pool()).await.unwrap();
    insert(&mut tx, 2).await;
    tx.commit().await.unwrap();
    assert_eq!(stored(&db.store).await, [2]);
    // And the write lock was given up: another connection can write.
    let mut other = SqliteConnection::connect(&db.url).await.unwrap();
    sqlx::query("INSERT INTO probe (x) VALUES (3)")
        .execute(&mut other)
        .await
        .unwrap();
    assert_eq!(stored(&db.store).await, [2, 3]);
}

#[tokio::test]
async fn a_refused_begin_leaves_no_transaction() {
    let db = one_connection().await;
    let mut locker = SqliteConnection::connect(&db.url).await.unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut locker)
        .await
        .unwrap();
    // busy_timeout, then SQLITE_BUSY.
    assert!(WriteTx::begin(db.store.pool()).await.is_err());
    sqlx::query("ROLLBACK").execute(&mut locker).await.unwrap();
    let mut tx = WriteTx::begin(db.store.pool()).await.unwrap();
    insert(&mut tx, 1).await;
    tx.commit().await.unwrap();
    assert_eq!(stored(&db.store).await, [1]);
}

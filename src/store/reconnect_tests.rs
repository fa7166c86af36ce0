//! A connection that refuses writes as read-only is not reused after the refusal. As root a file
//! mode does not stop SQLite, so the read-only connection is made with `PRAGMA query_only`,
//! which fails writes with the same `SQLITE_READONLY` and, like a connection opened on a
//! read-only file, for the connection's whole life.

use std::time::Duration;

use sqlx::{Connection, SqliteConnection};

use super::*;
use crate::store::testing::OneConnection;
use crate::store::{Op, StoreOptions};

/// A file database whose pool has one connection, so every statement reuses it.
async fn one_connection() -> (OneConnection, Store) {
    let db = OneConnection::new(Duration::from_millis(100)).await;
    let store = db.store.clone();
    (db, store)
}

/// Make the pool's idle connection refuse writes as read-only, for good.
async fn make_read_only(store: &Store) {
    let mut conn = store.pool().acquire().await.unwrap();
    sqlx::query("PRAGMA query_only = ON")
        .execute(&mut *conn)
        .await
        .unwrap();
}

async fn write(store: &Store) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO probe (x) VALUES (1)")
        .execute(store.pool())
        .await
        .map(|_| ())
        .op("insert probe")
}

#[tokio::test]
async fn a_read_only_refusal_reopens_the_connection() {
    let (_db, store) = one_connection().await;
    make_read_only(&store).await;

    let first = write(&store).await.unwrap_err();
    assert!(is_read_only_class(&first), "{first}");
    // Without a reconnect the pool hands the same connection out again: it still refuses.
    let again = write(&store).await.unwrap_err();
    assert!(is_read_only_class(&again), "{again}");

    assert!(store.reconnect_after(&again).await);
    write(&store).await.unwrap();
    write(&store).await.unwrap();
    assert_eq!(store.read_only_refusals(), 1);
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM probe")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(rows, 2);
}

#[tokio::test]
async fn a_locked_database_is_not_a_read_only_refusal() {
    let (db, store) = one_connection().await;
    let mut locker = SqliteConnection::connect(&db.url).await.unwrap();
    sqlx::query("BEGIN EXCLUSIVE")
        .execute(&mut locker)
        .await
        .unwrap();
    let busy = write(&store).await.unwrap_err();
    assert!(!is_read_only_class(&busy), "{busy}");
    assert!(!store.reconnect_after(&busy).await);
    assert_eq!(store.read_only_refusals(), 0);
    sqlx::query("ROLLBACK").execute(&mut locker).await.unwrap();
    write(&store).await.unwrap();
}

#[tokio::test]
async fn other_errors_are_not_read_only_refusals() {
    let (_db, store) = one_connection().await;
    let syntax = sqlx::query("INSERT INTO no_such_table VALUES (1)")
        .execute(store.pool())
        .await
        .op("insert into a missing table")
        .unwrap_err();
    assert!(!is_read_only_class(&syntax), "{syntax}");
    assert!(!is_read_only_class(&StoreError::UnknownCdr {
        id: "x".into()
    }));
    assert!(!store.reconnect_after(&syntax).await);
}

#[tokio::test]
async fn an_in_memory_database_keeps_its_only_connection() {
    let store = Store::connect("sqlite::memory:").await.unwrap();
    sqlx::query("CREATE TABLE probe (x INTEGER)")
        .execute(store.pool())
        .await
        .unwrap();
    make_read_only(&store).await;
    let refused = write(&store).await.unwrap_err();
    assert!(is_read_only_class(&refused), "{refused}");
    // Closing it would drop the database.
    assert!(!store.reconnect_after(&refused).await);
    sqlx::query("PRAGMA query_only = OFF")
        .execute(store.pool())
        .await
        .unwrap();
    write(&store).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_connection_is_closed_also_those_in_use() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/tg.db", dir.path().display());
    let opts = StoreOptions {
        busy_timeout: Duration::from_millis(100),
        max_connections: 4,
    };
    let store = Store::connect_with(&url, opts).await.unwrap();
    sqlx::query("CREATE TABLE probe (x INTEGER)")
        .execute(store.pool())
        .await
        .unwrap();
    // Three connections open; one of them refuses writes, one is busy elsewhere for a while.
    let a = store.pool().acquire().await.unwrap();
    let mut b = store.pool().acquire().await.unwrap();
    let in_use = store.pool().acquire().await.unwrap();
    sqlx::query("PRAGMA query_only = ON")
        .execute(&mut *b)
        .await
        .unwrap();
    let refused = sqlx::query("INSERT INTO probe (x) VALUES (1)")
        .execute(&mut *b)
        .await
        .op("insert probe")
        .unwrap_err();
    drop((a, b));
    let holder = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        drop(in_use);
    });

    assert!(store.reconnect_after(&refused).await);
    holder.await.unwrap();
    assert_eq!(store.pool().size(), 0, "no connection left open");
    for _ in 0..4 {
        write(&store).await.unwrap();
    }
}

// PostgreSQL: the read-only class is SQLSTATE 25006, what a standby answers to a write. A
// session made read-only (`default_transaction_read_only`) answers the same, for the session's
// whole life, as a connection to a server that became a standby does.

fn pg_pool(store: &Store) -> &sqlx::PgPool {
    match &store.pools {
        super::Pools::Postgres(pool) => pool,
        super::Pools::Sqlite(_) => panic!("a PostgreSQL test was given a SQLite store"),
    }
}

/// A PostgreSQL store whose pool has one connection, with a `probe` table.
async fn pg_one_connection(db: &crate::store::testing::PgTestDb) -> Store {
    let opts = StoreOptions {
        busy_timeout: Duration::from_millis(200),
        max_connections: 1,
    };
    let store = Store::connect_with(&db.url(), opts).await.unwrap();
    sqlx::query("CREATE TABLE probe (x bigint)")
        .execute(pg_pool(&store))
        .await
        .unwrap();
    store
}

async fn pg_write(store: &Store) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO probe (x) VALUES (1)")
        .execute(pg_pool(store))
        .await
        .map(|_| ())
        .op("insert probe")
}

#[tokio::test]
async fn a_read_only_postgres_refusal_reopens_the_connection() {
    let Some(db) = crate::store::testing::PgTestDb::create().await else {
        return;
    };
    let store = pg_one_connection(&db).await;
    sqlx::query("SET default_transaction_read_only = on")
        .execute(pg_pool(&store))
        .await
        .unwrap();

    let first = pg_write(&store).await.unwrap_err();
    assert!(is_read_only_class(&first), "{first}");
    assert_eq!(
        first.database().and_then(|d| d.code()).as_deref(),
        Some("25006")
    );
    let again = pg_write(&store).await.unwrap_err();
    assert!(is_read_only_class(&again), "{again}");

    assert!(store.reconnect_after(&again).await);
    pg_write(&store).await.unwrap();
    pg_write(&store).await.unwrap();
    assert_eq!(store.read_only_refusals(), 1);
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM probe")
        .fetch_one(pg_pool(&store))
        .await
        .unwrap();
    assert_eq!(rows, 2);
    store.close().await;
}

#[tokio::test]
async fn a_postgres_writer_waits_for_the_lock_only_its_busy_timeout() {
    let Some(db) = crate::store::testing::PgTestDb::create().await else {
        return;
    };
    let store = pg_one_connection(&db).await;
    // Another process in a write transaction: it holds the store's write lock.
    let other = db.store().await;
    let tx = match &other.pools {
        super::Pools::Postgres(pool) => super::super::backend::postgres::Dialect::begin_write(pool)
            .await
            .unwrap(),
        super::Pools::Sqlite(_) => unreachable!(),
    };
    let started = std::time::Instant::now();
    let busy = store
        .insert_cdrs(&[crate::model::sample_cdr("waits")])
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        busy.database().and_then(|d| d.code()).as_deref(),
        Some("55P03"),
        "lock_timeout: {busy}"
    );
    assert!(!is_read_only_class(&busy), "{busy}");
    assert!(!store.reconnect_after(&busy).await);
    tx.rollback().await.unwrap();
    assert_eq!(
        store
            .insert_cdrs(&[crate::model::sample_cdr("waits")])
            .await
            .unwrap(),
        1
    );
    other.close().await;
    store.close().await;
}

#[tokio::test]
async fn other_postgres_errors_are_not_read_only_refusals() {
    let Some(db) = crate::store::testing::PgTestDb::create().await else {
        return;
    };
    let store = pg_one_connection(&db).await;
    let missing = sqlx::query("INSERT INTO no_such_table VALUES (1)")
        .execute(pg_pool(&store))
        .await
        .op("insert into a missing table")
        .unwrap_err();
    assert!(!is_read_only_class(&missing), "{missing}");
    assert!(!store.reconnect_after(&missing).await);
    store.close().await;
}

//! SQLite's write transaction: `BEGIN IMMEDIATE` and `COMMIT` as statements prepared once per
//! connection (sqlx's statement cache), not text.
//!
//! sqlx's `Transaction` runs its `BEGIN`, `COMMIT` and `ROLLBACK` through `sqlite3_exec`, which
//! parses and compiles the text anew each time and throws the program away (about 1,700
//! instructions each, 10,000 a call at 8 calls/s; bench/README.md, "Session 14: the CDR writer's
//! transaction"). Here they are `sqlx::query(..).persistent(true)`: prepared on a connection's
//! first transaction, then only reset and stepped. The price is that sqlx does not know of the
//! transaction, so this guard does what `Transaction` did: roll back when dropped unfinished (a
//! `?` on an error, a cancelled future).

use std::ops::{Deref, DerefMut};

use sqlx::pool::PoolConnection;
use sqlx::{Sqlite, SqliteConnection, SqlitePool};

const BEGIN_IMMEDIATE: &str = "BEGIN IMMEDIATE";
const COMMIT: &str = "COMMIT";
const ROLLBACK: &str = "ROLLBACK";

/// A write transaction on one pooled connection; derefs to the connection, as sqlx's
/// `Transaction` does. Dropped without [`commit`](Self::commit) or
/// [`rollback`](Self::rollback), it rolls back before the connection goes back to the pool.
pub(crate) struct WriteTx {
    /// `None` only once `Drop` has handed the connection to the rollback task.
    conn: Option<PoolConnection<Sqlite>>,
    /// Whether a transaction may be open on the connection: from just before `BEGIN` is sent
    /// (a future cancelled while the worker runs it leaves one open) until it has ended.
    open: bool,
}

impl WriteTx {
    /// IMMEDIATE takes the write lock up front, so a busy database is waited for
    /// (busy_timeout) instead of failing when a deferred transaction tries to upgrade.
    pub(crate) async fn begin(pool: &SqlitePool) -> Result<WriteTx, sqlx::Error> {
        let conn = pool.acquire().await?;
        let mut tx = WriteTx {
            conn: Some(conn),
            open: true,
        };
        match run(&mut tx, BEGIN_IMMEDIATE).await {
            Ok(()) => Ok(tx),
            Err(error) => {
                // A refused BEGIN (busy, read-only) opens nothing.
                tx.open = false;
                Err(error)
            }
        }
    }

    pub(crate) async fn commit(mut self) -> Result<(), sqlx::Error> {
        // A failed COMMIT leaves the transaction open: dropped, it is rolled back.
        run(&mut self, COMMIT).await?;
        self.open = false;
        Ok(())
    }

    pub(crate) async fn rollback(mut self) -> Result<(), sqlx::Error> {
        run(&mut self, ROLLBACK).await?;
        self.open = false;
        Ok(())
    }
}

async fn run(conn: &mut SqliteConnection, statement: &'static str) -> Result<(), sqlx::Error> {
    // Persistent (sqlx's default, said here because it is the point): prepared once per
    // connection, kept in its statement cache.
    sqlx::query(statement)
        .persistent(true)
        .execute(conn)
        .await
        .map(drop)
}

impl Deref for WriteTx {
    type Target = SqliteConnection;

    fn deref(&self) -> &SqliteConnection {
        match &self.conn {
            Some(conn) => conn,
            // Taken only in `drop`.
            None => unreachable!("a write transaction's connection is taken only by drop"),
        }
    }
}

impl DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        match &mut self.conn {
            Some(conn) => conn,
            None => unreachable!("a write transaction's connection is taken only by drop"),
        }
    }
}

impl Drop for WriteTx {
    fn drop(&mut self) {
        if !self.open {
            return;
        }
        let Some(mut conn) = self.conn.take() else {
            return;
        };
        // The connection must not go back to the pool inside a transaction (it would hold the
        // write lock): roll back first, on the runtime, then release it. Without a runtime, or
        // if the rollback fails (say the transaction had already ended, a COMMIT that went
        // through while its future was cancelled), the connection is closed instead, which
        // ends whatever transaction it had.
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    if let Err(error) = run(&mut conn, ROLLBACK).await {
                        tracing::warn!(%error,
                            "rolling back an unfinished write transaction failed; closing its connection");
                        conn.close_on_drop();
                    }
                });
            }
            Err(_) => conn.close_on_drop(),
        }
    }
}

#[cfg(test)]
#[path = "write_tx_tests.rs"]
mod tests;

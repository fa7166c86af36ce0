//! After the database refused a write as read-only, every connection is closed, all at once.
//!
//! SQLite opens a file read-only, without an error, when it cannot open it for writing (the file
//! made read-only or given to another owner, a read-only mount), and a connection keeps that
//! mode for its whole life: every write on it fails with `SQLITE_READONLY`, even once the file is
//! writable again. Worse, a process's connections to one file share its WAL index (`-shm`), and
//! one opened read-only stays so while any connection has it open: a new connection opened next
//! to an old one refuses writes too. The pool would keep such connections until their
//! `max_lifetime` (30 min), and the CDR spool would not be replayed for that long. (Changing a
//! file's mode does not affect descriptors already open: connections opened earlier keep
//! writing meanwhile, and which write fails depends on which connection it gets.)
//!
//! So after a read-only-class error (`SQLITE_READONLY`, `SQLITE_IOERR`, `SQLITE_CANTOPEN`, any
//! extended code of them) the store takes every connection the pool may hold, waiting for those
//! in use, and closes them together; the next statement opens the files afresh and sees them as
//! they are then. Busy and locked errors do not count: the file is fine, another process holds
//! the lock.
//!
//! On PostgreSQL the read-only class is SQLSTATE 25006 (`read_only_sql_transaction`): the server
//! the pool's connections reach is a standby (a failover moved the primary elsewhere) or was set
//! read-only. The same reconnect closes those connections, so the next statement connects
//! afresh, to wherever the URL's host leads now. Lost connections need nothing of this: the pool
//! drops a broken connection by itself.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use super::backend::Pools;
use super::{Store, StoreError};

/// SQLite's primary result codes (the low byte of an extended code).
const SQLITE_IOERR: i32 = 10;
const SQLITE_READONLY: i32 = 8;
const SQLITE_CANTOPEN: i32 = 14;

/// PostgreSQL's SQLSTATE for a write in a read-only transaction (a standby, or
/// `default_transaction_read_only`).
const PG_READ_ONLY_SQL_TRANSACTION: &str = "25006";

/// How long a reconnect waits for the connections in use; after that it gives up until the next
/// refusal (a query holding one for longer must not stall the CDR writer).
const TAKE_ALL_LIMIT: Duration = Duration::from_secs(10);

/// One reconnect at a time, and how many there were. Shared by a `Store`'s clones.
#[derive(Debug, Default)]
pub(crate) struct Reconnect {
    running: tokio::sync::Mutex<()>,
    refusals: AtomicU64,
    max_connections: u32,
}

impl Reconnect {
    pub(crate) fn new(max_connections: u32) -> Arc<Reconnect> {
        Arc::new(Reconnect {
            max_connections,
            ..Reconnect::default()
        })
    }
}

/// Whether the database refused a write because of where it is rather than a lock: SQLite's
/// read-only, I/O and cannot-open codes (the file); PostgreSQL's read-only transaction (a
/// standby).
pub fn is_read_only_class(error: &StoreError) -> bool {
    let Some(db) = error.database() else {
        return false;
    };
    if db
        .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
        .is_some()
    {
        return db.code().as_deref() == Some(PG_READ_ONLY_SQL_TRANSACTION);
    }
    if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_none() {
        return false;
    }
    db.code()
        .and_then(|code| code.parse::<i32>().ok())
        .is_some_and(|code| {
            matches!(
                code & 0xff,
                SQLITE_READONLY | SQLITE_IOERR | SQLITE_CANTOPEN
            )
        })
}

impl Store {
    /// Call after a failed write: when `error` is of the read-only class, every connection of
    /// the pool is closed (waiting at most 10 s for those in use), so that the next statement
    /// opens the file again and sees whether it is writable (on PostgreSQL: connects again).
    /// Returns whether it did. A no-op for an in-memory database (its only connection is the
    /// database).
    pub async fn reconnect_after(&self, error: &StoreError) -> bool {
        let Some(reconnect) = &self.reconnect else {
            return false;
        };
        if !is_read_only_class(error) {
            return false;
        }
        let refusals = reconnect.refusals.fetch_add(1, Relaxed) + 1;
        // Another task is already at it: this refusal is covered by it.
        let Ok(_running) = reconnect.running.try_lock() else {
            return true;
        };
        let (outcome, took) = match &self.pools {
            Pools::Sqlite(pool) => close_all(pool, reconnect.max_connections).await,
            Pools::Postgres(pool) => close_all(pool, reconnect.max_connections).await,
        };
        match outcome {
            Ok(Ok(())) => {
                tracing::warn!(%error, refusals, closed = took,
                    "database refused a write as read-only; its connections were closed and are reopened");
                true
            }
            Ok(Err(e)) => {
                tracing::warn!(%error, refusals, cause = %e,
                    "database refused a write as read-only; cannot take its connections to reopen them");
                false
            }
            Err(_) => {
                tracing::warn!(%error, refusals, took, limit_ms = TAKE_ALL_LIMIT.as_millis(),
                    "database refused a write as read-only; connections still in use, reopening them at the next refusal");
                false
            }
        }
    }

    /// Read-only-class errors seen by `reconnect_after` since start.
    pub fn read_only_refusals(&self) -> u64 {
        self.reconnect
            .as_ref()
            .map_or(0, |r| r.refusals.load(Relaxed))
    }
}

/// Takes every connection the pool may hold (all permits, so that no connection is in use or
/// opened meanwhile: on SQLite one left open would keep the read-only WAL index alive for the
/// new ones) and closes them together. Returns the outcome and how many were taken.
async fn close_all<DB: sqlx::Database>(
    pool: &sqlx::Pool<DB>,
    max_connections: u32,
) -> (
    Result<Result<(), sqlx::Error>, tokio::time::error::Elapsed>,
    usize,
) {
    let mut taken = Vec::with_capacity(max_connections as usize);
    let take_all = async {
        while taken.len() < max_connections as usize {
            taken.push(pool.acquire().await?);
        }
        Ok::<(), sqlx::Error>(())
    };
    let outcome = tokio::time::timeout(TAKE_ALL_LIMIT, take_all).await;
    let took = taken.len();
    if matches!(outcome, Ok(Ok(()))) {
        for conn in taken {
            // Closing cannot leave anything behind that matters: it is being discarded.
            let _ = conn.close().await;
        }
    }
    (outcome, took)
}

/// Log at error level, once at start, when this process cannot write the database or its WAL
/// files: the gateway runs (CDRs go to the spool), but the cause has to be fixed by hand.
/// Opening for writing without creating or truncating changes nothing — but call it only while
/// SQLite has none of these files open in this process: closing our descriptor would drop
/// SQLite's POSIX locks on the file (its WAL-index locks included).
pub(crate) async fn report_read_only(db: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        let path = PathBuf::from(name);
        match tokio::fs::OpenOptions::new().write(true).open(&path).await {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::error!(path = %path.display(), error = %e,
                "database file is read-only for this process: CDRs and call journals go to the \
                 spool until it is writable, other database writes fail meanwhile"),
        }
    }
}

#[cfg(test)]
#[path = "reconnect_tests.rs"]
mod tests;

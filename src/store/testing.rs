//! Test support (not part of the gateway): a fresh PostgreSQL database per test, and one test
//! body run against both backends. Public (hidden) because the integration tests under `tests/`
//! use it too.
//!
//! PostgreSQL is found at `TRUNKGUARD_TEST_PG` (a server URL without a database; default
//! `postgres://postgres@127.0.0.1:5432`). Each test gets its own database `tg_<unix
//! time>_<pid>_<n>`, created on the server and dropped when the guard is dropped — also while a
//! failed test unwinds — from a thread of its own, since the test's runtime may be the one
//! unwinding. That thread waits for the database's other sessions to end (a test may still hold
//! a store of it, a pool closes its connections as its runtime gets to it) and forces them out
//! after 30 s; the process waits for it at exit. Databases left behind by a killed run are swept at the
//! first creation of each process once they are a day old (the name carries the time). When no
//! server answers, a test fails under `CI=true` and otherwise skips its PostgreSQL part with a
//! printed reason.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::{Connection, PgConnection};

use super::{Backend, Op, Store, StoreError};

/// The server the tests use.
pub const PG_ENV: &str = "TRUNKGUARD_TEST_PG";
const PG_DEFAULT: &str = "postgres://postgres@127.0.0.1:5432";
/// How old a left-over test database must be before a run drops it (another run may be using a
/// younger one).
const STALE_AFTER: Duration = Duration::from_secs(24 * 3600);

static SWEPT: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
static NEXT: AtomicU64 = AtomicU64::new(0);

/// The server's URL (no database).
pub fn server_url() -> String {
    std::env::var(PG_ENV)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| PG_DEFAULT.to_string())
        .trim_end_matches('/')
        .to_string()
}

/// Whether a missing PostgreSQL fails the test (CI) rather than skipping it.
pub fn required() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// A database created for one test, dropped when this guard is.
#[derive(Debug)]
pub struct PgTestDb {
    name: String,
    server: String,
}

impl PgTestDb {
    /// A fresh, empty database. `None` (after printing why) when no server answers and CI is
    /// not set; under `CI=true` that is a panic, so the test fails.
    pub async fn create() -> Option<PgTestDb> {
        let server = server_url();
        let mut admin = match PgConnection::connect(&format!("{server}/postgres")).await {
            Ok(conn) => conn,
            Err(e) => {
                let why = format!(
                    "no PostgreSQL at {} ({PG_ENV}): {e}",
                    super::redact(&server)
                );
                if required() {
                    panic!("{why}; CI=true needs it");
                }
                eprintln!("skipping the PostgreSQL run: {why}");
                return None;
            }
        };
        SWEPT
            .get_or_init(|| async { sweep(&mut admin).await })
            .await;
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let name = format!(
            "tg_{secs}_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        // A name of digits and underscores made here: safe to put in the statement (DDL takes
        // no parameters).
        if let Err(e) = sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut admin)
            .await
        {
            panic!("cannot create the test database {name}: {e}");
        }
        let _ = admin.close().await;
        Some(PgTestDb { name, server })
    }

    /// The database's URL.
    pub fn url(&self) -> String {
        format!("{}/{}", self.server, self.name)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// A migrated store on it.
    pub async fn store(&self) -> Store {
        match Store::connect(&self.url()).await {
            Ok(store) => store,
            Err(e) => panic!("cannot open the test database {}: {e}", self.name),
        }
    }
}

impl Drop for PgTestDb {
    fn drop(&mut self) {
        let admin = format!("{}/postgres", self.server);
        let name = std::mem::take(&mut self.name);
        // A thread of its own, with its own runtime: this may run inside the test's runtime
        // (which cannot block on a future, and whose tasks must go on closing the test's
        // connections meanwhile) or while a failed test unwinds. The process waits for it at
        // exit.
        let reaper = std::thread::spawn(move || {
            if let Err(e) = reap(&admin, &name) {
                eprintln!("cannot drop the test database {name}: {e} (swept after a day)");
            }
        });
        wait_at_exit(reaper);
    }
}

/// How long the background waits for the database's last connections before forcing them out.
const REAP_LIMIT: Duration = Duration::from_secs(30);

static REAPERS: std::sync::Mutex<Vec<std::thread::JoinHandle<()>>> =
    std::sync::Mutex::new(Vec::new());
static AT_EXIT: std::sync::Once = std::sync::Once::new();

/// Keeps `reaper` to be joined when the process exits (test binaries return from main).
fn wait_at_exit(reaper: std::thread::JoinHandle<()>) {
    if let Ok(mut reapers) = REAPERS.lock() {
        reapers.push(reaper);
    }
    AT_EXIT.call_once(|| {
        // SAFETY: registers a plain function; it only joins threads this module started.
        unsafe {
            libc::atexit(join_reapers);
        }
    });
}

extern "C" fn join_reapers() {
    let reapers = match REAPERS.lock() {
        Ok(mut reapers) => std::mem::take(&mut *reapers),
        Err(_) => return,
    };
    for reaper in reapers {
        let _ = reaper.join();
    }
}

/// Drops `name` once no session uses it (at most `REAP_LIMIT`, then forcing them out).
fn reap(admin: &str, name: &str) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let mut conn = PgConnection::connect(admin)
            .await
            .map_err(|e| e.to_string())?;
        let deadline = tokio::time::Instant::now() + REAP_LIMIT;
        while tokio::time::Instant::now() < deadline {
            let sessions: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM pg_stat_activity WHERE datname = $1")
                    .bind(name)
                    .fetch_one(&mut conn)
                    .await
                    .map_err(|e| e.to_string())?;
            if sessions == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        drop_database(&mut conn, name).await?;
        let _ = conn.close().await;
        Ok(())
    })
}

async fn drop_database(conn: &mut PgConnection, name: &str) -> Result<(), String> {
    if !is_test_database(name) {
        return Err(format!("`{name}` is not a test database's name"));
    }
    // FORCE: a connection the test left open (a pool dropped mid-panic) must not keep it.
    sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .execute(conn)
        .await
        .map(|_| ())
        .map_err(|e| format!("drop {name}: {e}"))
}

/// `tg_<secs>_<pid>_<n>`: the only names these helpers create or drop.
fn is_test_database(name: &str) -> bool {
    let Some(rest) = name.strip_prefix("tg_") else {
        return false;
    };
    let parts: Vec<&str> = rest.split('_').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// The creation time of a test database, from its name.
fn created_secs(name: &str) -> Option<u64> {
    if !is_test_database(name) {
        return None;
    }
    name.strip_prefix("tg_")?.split('_').next()?.parse().ok()
}

/// Drops test databases older than a day (a run that was killed before its guards ran).
async fn sweep(admin: &mut PgConnection) {
    let names: Vec<String> = match sqlx::query_scalar(
        "SELECT datname::text FROM pg_database WHERE datname LIKE 'tg\\_%'",
    )
    .fetch_all(&mut *admin)
    .await
    {
        Ok(names) => names,
        Err(e) => {
            eprintln!("cannot list old test databases: {e}");
            return;
        }
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    for name in names {
        let Some(created) = created_secs(&name) else {
            continue;
        };
        if now.saturating_sub(created) < STALE_AFTER.as_secs() {
            continue;
        }
        match drop_database(admin, &name).await {
            Ok(()) => eprintln!("dropped the stale test database {name}"),
            Err(e) => eprintln!("cannot drop the stale test database {name}: {e}"),
        }
    }
}

/// Runs `body` on a fresh in-memory SQLite store, then on a fresh PostgreSQL database (see the
/// module documentation for when that part is skipped). Each run is announced on stderr, so a
/// failure shows which backend it was.
pub async fn on_each_backend<F, Fut>(body: F)
where
    F: Fn(Store) -> Fut,
    Fut: Future<Output = ()>,
{
    let sqlite = match Store::connect("sqlite::memory:").await {
        Ok(store) => store,
        Err(e) => panic!("cannot open an in-memory SQLite store: {e}"),
    };
    eprintln!("-- on sqlite");
    body(sqlite).await;
    if let Some(db) = PgTestDb::create().await {
        let store = db.store().await;
        eprintln!("-- on postgres ({})", db.name());
        body(store.clone()).await;
        store.close().await;
    }
}

/// A statement of a test, with text parameters, on either backend (tests that edit rows by
/// hand). Returns the rows affected.
pub async fn execute(store: &Store, sql: &str, args: &[&str]) -> Result<u64, StoreError> {
    dispatch!(store, execute(sql, args))
}

/// The first column of every row, as a count or number (`SELECT COUNT(*) …`, a `bigint`).
pub async fn fetch_i64(store: &Store, sql: &str, args: &[&str]) -> Result<Vec<i64>, StoreError> {
    dispatch!(store, fetch_i64(sql, args))
}

/// The first column of every row, as text (NULL as `None`).
pub async fn fetch_text(
    store: &Store,
    sql: &str,
    args: &[&str],
) -> Result<Vec<Option<String>>, StoreError> {
    dispatch!(store, fetch_text(sql, args))
}

per_backend! {
    pub(super) async fn execute(pool: &DbPool, sql: &str, args: &[&str]) -> Result<u64, StoreError> {
        let mut q = sqlx::query(sql);
        for a in args {
            q = q.bind(*a);
        }
        q.execute(pool)
            .await
            .map(|d| d.rows_affected())
            .op("test statement")
    }

    pub(super) async fn fetch_i64(
        pool: &DbPool,
        sql: &str,
        args: &[&str],
    ) -> Result<Vec<i64>, StoreError> {
        let mut q = sqlx::query_scalar(sql);
        for a in args {
            q = q.bind(*a);
        }
        q.fetch_all(pool).await.op("test query")
    }

    pub(super) async fn fetch_text(
        pool: &DbPool,
        sql: &str,
        args: &[&str],
    ) -> Result<Vec<Option<String>>, StoreError> {
        let mut q = sqlx::query_scalar(sql);
        for a in args {
            q = q.bind(*a);
        }
        q.fetch_all(pool).await.op("test query")
    }
}

/// Parameter `$n` in a test's hand-written SQL where a time goes: text on SQLite (as stored),
/// cast from text on PostgreSQL.
pub fn time_param(store: &Store, n: usize) -> String {
    match store.backend() {
        Backend::Sqlite => format!("${n}"),
        Backend::Postgres => format!("CAST(${n} AS timestamptz)"),
    }
}

/// Which backend a store is on (for assertions that differ by backend).
pub fn backend(store: &Store) -> Backend {
    store.backend()
}

/// A SQLite file database whose pool holds one connection (so every statement reuses it), with
/// a table `probe (x INTEGER)`; the folder lives as long as the value.
#[cfg(test)]
pub(crate) struct OneConnection {
    _dir: tempfile::TempDir,
    /// The database's URL, for connections of its own beside the pool's.
    pub url: String,
    pub store: Store,
}

#[cfg(test)]
impl OneConnection {
    /// `busy_timeout`: how long the pool's connection waits for another's lock.
    pub(crate) async fn new(busy_timeout: Duration) -> OneConnection {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}/tg.db", dir.path().display());
        let opts = super::StoreOptions {
            busy_timeout,
            max_connections: 1,
        };
        let store = Store::connect_with(&url, opts).await.expect("connect");
        sqlx::query("CREATE TABLE probe (x INTEGER)")
            .execute(store.pool())
            .await
            .expect("create probe");
        OneConnection {
            _dir: dir,
            url,
            store,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_names_of_the_right_shape_are_test_databases() {
        assert!(is_test_database("tg_1700000000_42_0"));
        assert_eq!(created_secs("tg_1700000000_42_0"), Some(1_700_000_000));
        for name in [
            "tg_",
            "tg_1_2",
            "tg_1_2_x",
            "trunkguard",
            "tg_1_2_3_4",
            "tg_1__3",
        ] {
            assert!(!is_test_database(name), "{name}");
            assert_eq!(created_secs(name), None, "{name}");
        }
    }

    #[tokio::test]
    async fn a_test_database_is_fresh_and_gone_after_its_guard() {
        let Some(db) = PgTestDb::create().await else {
            return;
        };
        let name = db.name().to_string();
        let store = db.store().await;
        assert_eq!(store.backend(), Backend::Postgres);
        assert_eq!(store.count_cdrs().await.unwrap(), 0);
        store.close().await;
        drop(store);
        drop(db);
        wait_dropped(&name).await;
    }

    /// Polls (bounded) until the database `name` is gone.
    async fn wait_dropped(name: &str) {
        let mut admin = PgConnection::connect(&format!("{}/postgres", server_url()))
            .await
            .unwrap();
        for _ in 0..200 {
            let left: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM pg_database WHERE datname = $1")
                    .bind(name)
                    .fetch_one(&mut admin)
                    .await
                    .unwrap();
            if left == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{name} was not dropped within 10 s");
    }

    #[tokio::test]
    async fn a_failing_test_still_drops_its_database() {
        let Some(db) = PgTestDb::create().await else {
            return;
        };
        let name = db.name().to_string();
        let store = db.store().await;
        // The guard is dropped while the panic unwinds, with the store's connections still open.
        let outcome = tokio::spawn(async move {
            let _db = db;
            let _store = store;
            panic!("a failing test");
        })
        .await;
        assert!(outcome.is_err());
        wait_dropped(&name).await;
    }
}

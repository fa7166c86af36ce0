//! Storage: the sqlx pool, migrations and queries. No business rules here.
//!
//! Two backends (`backend.rs`): SQLite, embedded, the default; PostgreSQL for `postgres://`
//! URLs. SQL is written once with `$1` placeholders and compiled once per backend; only runtime
//! `sqlx::query` with bound parameters, no compile-time macros.

/// The order and size of the "newest CDRs" page. The CDR query and the child-table queries that
/// complete it must select the same rows, so both take it from here.
macro_rules! newest_cdrs_page {
    () => {
        "ORDER BY invite_at DESC, id DESC LIMIT $1"
    };
}

#[macro_use]
mod backend;
mod api_queries;
mod call_media_queries;
mod cdr_queries;
mod cdr_search_queries;
pub mod chain;
mod cluster_queries;
mod complaint_queries;
mod copy;
mod copy_tables;
mod dialogs;
mod enforcement_queries;
mod enforcement_request_queries;
mod error;
mod hold_queries;
mod journal_claims;
mod journal_queries;
mod kpi_queries;
mod manifest_queries;
mod multi_row;
mod reconnect;
mod retention_queries;
pub mod sip_trace;
#[doc(hidden)]
pub mod testing;
mod trunk_queries;
mod write_tx;

pub use api_queries::{ApiTokenRow, AuditFilter, AuditRow, NewApiToken, NewAudit};
pub use backend::Backend;
pub use copy::{copy_sqlite_to_postgres, differences, table_digests, CopyError, TableDigest};

pub use cdr_search_queries::{CdrQuery, CdrSearchKey, NumberMatch, NumberPart};
pub use complaint_queries::{NewComplaint, StoredComplaint};
pub use dialogs::{Dialogs, DialogsJson};
pub use enforcement_queries::{AnomalyRow, EnforcementEntry, NewEnforcement, SubjectKey};
pub use enforcement_request_queries::{EnforcementRequest, NewRequest};
pub use error::StoreError;
pub(crate) use error::{Columns, Op};
pub use hold_queries::{LegalHold, PlaceHold};
pub use journal_claims::{Claimed, JournalClaim};
pub(crate) use journal_queries::decode_cdr_value;
pub use journal_queries::{AppliedWrites, CdrWrite, JournaledCall};
pub use kpi_queries::{BucketCounters, BucketKey, Rollup};
pub use manifest_queries::{DayRecording, HoldEvent, NewManifest, StoredManifest};
pub use reconnect::is_read_only_class;
pub use retention_queries::{
    ExpiredCdr, ExpiredRecording, PurgedRecording, RetentionCursor, RetentionEntry,
};
pub use trunk_queries::TrunkDefinition;

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::ConnectOptions;

use backend::Pools;

/// Prepared statements a connection keeps (sqlx's default is 100): the CDR writer's multi-row
/// statements alone come in up to 7 sizes each (`multi_row`), 11 of them, beside the store's
/// hundred or so other queries, so that the writer's do not push each other out.
const STATEMENT_CACHE: usize = 256;

/// One migrator per backend, the same versions in both folders (one file for each).
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static PG_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Connection settings beyond the URL. `Default` is what production uses.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// How long a statement waits for another connection's write lock before failing (SQLite's
    /// busy_timeout; PostgreSQL's lock_timeout, and how long it waits for a connection).
    pub busy_timeout: Duration,
    /// Pool size for file and PostgreSQL databases (an in-memory database always uses one
    /// connection).
    pub max_connections: u32,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            busy_timeout: Duration::from_secs(5),
            max_connections: 8,
        }
    }
}

/// The database. Cheap to clone (the pool is shared).
#[derive(Debug, Clone)]
pub struct Store {
    pools: Pools,
    /// File and PostgreSQL databases: closes the pool's connections after a read-only refusal
    /// (`reconnect.rs`).
    reconnect: Option<std::sync::Arc<reconnect::Reconnect>>,
}

impl Store {
    /// Open (creating it and its directory if missing) and migrate the database.
    ///
    /// Accepts `sqlite://data/trunkguard.db` (relative to the working directory),
    /// `sqlite:///abs/path.db`, `sqlite::memory:`, and `postgres://user@host:port/database`
    /// (or `postgresql://`; the database must exist, the migrations create the tables).
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        Store::connect_with(url, StoreOptions::default()).await
    }

    pub async fn connect_with(url: &str, opts: StoreOptions) -> Result<Store, StoreError> {
        match Backend::of_url(url) {
            Backend::Postgres => connect_postgres(url, opts).await,
            Backend::Sqlite => connect_sqlite(url, opts).await,
        }
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.pools.backend()
    }

    /// The SQLite pool, for tests that work on the file itself (locks, PRAGMAs).
    #[cfg(test)]
    pub(crate) fn pool(&self) -> &sqlx::SqlitePool {
        match &self.pools {
            Pools::Sqlite(pool) => pool,
            Pools::Postgres(_) => panic!("a SQLite-only test was given a PostgreSQL store"),
        }
    }

    /// Close all connections (waits for checked-out ones to come back).
    pub async fn close(&self) {
        self.pools.close().await;
    }
}

async fn connect_postgres(url: &str, opts: StoreOptions) -> Result<Store, StoreError> {
    let invalid = |source| StoreError::InvalidUrl {
        url: redact(url),
        source,
    };
    let options = PgConnectOptions::from_str(url)
        .map_err(invalid)?
        .application_name("trunkguard")
        // Waiting for a lock (the store's write lock, a row another process holds) fails after
        // the busy timeout, as SQLite's busy_timeout: the CDR writer then retries or spools.
        .options([(
            "lock_timeout",
            format!("{}ms", opts.busy_timeout.as_millis().max(1)),
        )])
        // Statements carry numbers and token hashes: never in the log, even at debug.
        .disable_statement_logging()
        .statement_cache_capacity(STATEMENT_CACHE);
    let pool = PgPoolOptions::new()
        .max_connections(opts.max_connections.max(1))
        .acquire_timeout(opts.busy_timeout.max(Duration::from_secs(1)))
        .connect_with(options)
        .await
        .map_err(|source| StoreError::Connect {
            url: redact(url),
            source,
        })?;
    PG_MIGRATOR.run(&pool).await?;
    tracing::info!(url = %redact(url), "database ready (PostgreSQL)");
    Ok(Store {
        pools: Pools::Postgres(pool),
        reconnect: Some(reconnect::Reconnect::new(opts.max_connections.max(1))),
    })
}

/// A URL for errors and the log: a password in it is replaced by `***`.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, tail) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((user_info, host)) => match user_info.split_once(':') {
            Some((user, _password)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

async fn connect_sqlite(url: &str, opts: StoreOptions) -> Result<Store, StoreError> {
    let options = SqliteConnectOptions::from_str(url)
        .map_err(|source| StoreError::InvalidUrl {
            url: url.to_string(),
            source,
        })?
        .create_if_missing(true)
        // WAL: readers (API, CLI) never block the CDR writer and vice versa.
        .journal_mode(SqliteJournalMode::Wal)
        // FULL, not NORMAL: a committed CDR must survive a power cut, not only a crash.
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(opts.busy_timeout)
        .foreign_keys(true)
        // A statement's own journal (kept so that a failed statement can be undone inside its
        // transaction: the multi-row inserts, the journal upsert) in memory, not in a temporary
        // file written and closed with every CDR batch. Durability is the WAL's alone.
        .pragma("temp_store", "memory")
        // Statements carry numbers and token hashes: never in the log, even at debug.
        .disable_statement_logging()
        .statement_cache_capacity(STATEMENT_CACHE);

    let in_memory = is_memory_url(url);
    let file = options.get_filename().to_path_buf();
    // Narrowed before the pool opens when the file exists: SQLite opens a file it cannot
    // write read-only, and such a connection stays read-only after the mode is fixed.
    let existed = !in_memory && tokio::fs::try_exists(&file).await.unwrap_or(false);
    if !in_memory {
        create_parent_dir(options.get_filename()).await?;
    }
    if existed {
        restrict_to_owner(&file).await;
        // Before the pool opens: closing a descriptor of a file releases every POSIX lock
        // the process holds on it (SQLite's included), so once SQLite has the files open
        // nothing else here may open them.
        reconnect::report_read_only(&file).await;
    }

    let max_connections = if in_memory {
        1
    } else {
        opts.max_connections.max(1)
    };
    let reconnect = (!in_memory).then(|| reconnect::Reconnect::new(max_connections));
    let pool_options = if in_memory {
        // An in-memory database lives as long as one connection does, and shared-cache
        // connections fail with SQLITE_LOCKED instead of waiting: keep exactly one, forever.
        SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
    } else {
        SqlitePoolOptions::new().max_connections(max_connections)
    }
    // No ping before each acquire (sqlx's default): an SQLite connection is a file and a
    // worker thread of this process, not a link that can drop unseen, and each ping was a
    // round trip to that thread and back, waking both (bench/README.md, session 14). A
    // connection that broke is still dropped: sqlx pings it when it goes back to the pool.
    .test_before_acquire(false);
    let pool = pool_options
        .connect_with(options)
        .await
        .map_err(|source| StoreError::Connect {
            url: url.to_string(),
            source,
        })?;

    MIGRATOR.run(&pool).await?;
    if !in_memory && !existed {
        restrict_to_owner(&file).await;
    }
    tracing::info!(url, "database ready");
    Ok(Store {
        pools: Pools::Sqlite(pool),
        reconnect,
    })
}

fn is_memory_url(url: &str) -> bool {
    let rest = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    rest.starts_with(":memory:") || rest.contains("mode=memory")
}

/// The database and its WAL files: readable by the service user only (CDRs are personal data).
/// Files that do not exist yet are skipped; a failure is logged, not fatal (a read-only mount).
async fn restrict_to_owner(db: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    for suffix in ["", "-wal", "-shm"] {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        let path = std::path::PathBuf::from(name);
        match tokio::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot restrict the database file to its owner")
            }
        }
    }
}

async fn create_parent_dir(file: &std::path::Path) -> Result<(), StoreError> {
    match file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => {
            tokio::fs::create_dir_all(dir)
                .await
                .map_err(|source| StoreError::CreateDir {
                    path: dir.to_path_buf(),
                    source,
                })
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_database_migrates() {
        let store = Store::connect("sqlite::memory:").await.unwrap();
        assert_eq!(store.count_cdrs().await.unwrap(), 0);
    }

    #[tokio::test]
    async fn creates_directory_and_file_and_reconnects() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/deeper/trunkguard.db");
        let url = format!("sqlite://{}", path.display());
        assert!(url.starts_with("sqlite:///"), "absolute form: {url}");

        let store = Store::connect(&url).await.unwrap();
        assert!(path.exists());
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_eq!(mode, "wal");
        let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_eq!(fk, 1);
        store.close().await;

        // Migrations are idempotent: reconnecting to the same file applies nothing twice.
        for _ in 0..2 {
            let store = Store::connect(&url).await.unwrap();
            let applied: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations")
                .fetch_one(store.pool())
                .await
                .unwrap();
            assert_eq!(applied, MIGRATOR.iter().count() as i64);
            assert_eq!(store.count_cdrs().await.unwrap(), 0);
            store.close().await;
        }
    }

    #[test]
    fn both_migrators_have_the_same_versions() {
        let versions = |m: &sqlx::migrate::Migrator| {
            m.iter()
                .map(|m| (m.version, m.description.to_string()))
                .collect::<Vec<_>>()
        };
        assert_eq!(versions(&MIGRATOR), versions(&PG_MIGRATOR));
        assert!(MIGRATOR.iter().count() >= 8);
    }

    #[test]
    fn the_url_selects_the_backend_and_a_password_is_not_shown() {
        assert_eq!(Backend::of_url("postgres://u@h/db"), Backend::Postgres);
        assert_eq!(Backend::of_url("postgresql://u@h/db"), Backend::Postgres);
        assert_eq!(Backend::of_url("sqlite://data/tg.db"), Backend::Sqlite);
        assert_eq!(Backend::of_url("sqlite::memory:"), Backend::Sqlite);
        assert_eq!(
            redact("postgres://tg:s3cret@db.example:5432/trunkguard"),
            "postgres://tg:***@db.example:5432/trunkguard"
        );
        assert_eq!(redact("postgres://tg@db/x"), "postgres://tg@db/x");
        assert_eq!(redact("sqlite://data/tg.db"), "sqlite://data/tg.db");
    }

    #[tokio::test]
    async fn postgres_migrates_once_and_reconnects() {
        let Some(db) = testing::PgTestDb::create().await else {
            return;
        };
        for _ in 0..2 {
            let store = Store::connect(&db.url()).await.unwrap();
            assert_eq!(store.backend(), Backend::Postgres);
            let applied = testing::fetch_i64(&store, "SELECT COUNT(*) FROM _sqlx_migrations", &[])
                .await
                .unwrap();
            assert_eq!(applied, [PG_MIGRATOR.iter().count() as i64]);
            assert_eq!(store.count_cdrs().await.unwrap(), 0);
            store.ping().await.unwrap();
            store.close().await;
        }
    }

    #[tokio::test]
    async fn a_postgres_server_that_does_not_answer_is_a_clear_error() {
        // Port 9 (discard) on loopback: nothing listens there.
        let err = Store::connect_with(
            "postgres://tg:s3cret@127.0.0.1:9/none",
            StoreOptions {
                busy_timeout: Duration::from_secs(1),
                max_connections: 1,
            },
        )
        .await
        .unwrap_err();
        assert!(matches!(err, StoreError::Connect { .. }), "{err}");
        assert!(!err.to_string().contains("s3cret"), "{err}");
    }

    #[tokio::test]
    async fn relative_url_is_relative_to_the_working_directory() {
        let options = SqliteConnectOptions::from_str("sqlite://data/trunkguard.db").unwrap();
        assert_eq!(
            options.get_filename(),
            std::path::Path::new("data/trunkguard.db")
        );
        assert!(is_memory_url("sqlite::memory:"));
        assert!(!is_memory_url("sqlite://data/trunkguard.db"));
    }

    #[tokio::test]
    async fn bad_directory_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        tokio::fs::write(&blocker, b"x").await.unwrap();
        let url = format!("sqlite://{}/sub/db.sqlite", blocker.display());
        let err = Store::connect(&url).await.unwrap_err();
        assert!(matches!(err, StoreError::CreateDir { .. }), "{err}");
    }
}

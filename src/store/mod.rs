//! Storage: the sqlx pool, migrations and queries. No business rules here.
//!
//! SQL is written once with `$1` placeholders (SQLite accepts them) so that it can be shared with
//! PostgreSQL later; only runtime `sqlx::query` with bound parameters, no compile-time macros.

/// The order and size of the "newest CDRs" page. The CDR query and the child-table queries that
/// complete it must select the same rows, so both take it from here.
macro_rules! newest_cdrs_page {
    () => {
        "ORDER BY invite_at DESC, id DESC LIMIT $1"
    };
}

mod api_queries;
mod call_media_queries;
mod cdr_queries;
mod cdr_search_queries;
mod cluster_queries;
mod complaint_queries;
mod enforcement_queries;
mod error;
mod hold_queries;
mod journal_queries;
mod kpi_queries;
mod reconnect;
mod retention_queries;
mod trunk_queries;

pub use api_queries::{ApiTokenRow, AuditFilter, AuditRow, NewApiToken, NewAudit};
pub use cdr_search_queries::{CdrQuery, CdrSearchKey};
pub use complaint_queries::{NewComplaint, StoredComplaint};
pub use enforcement_queries::{
    AnomalyRow, EnforcementEntry, EnforcementRequest, NewEnforcement, NewRequest, SubjectKey,
};
pub use error::StoreError;
pub(crate) use error::{Columns, Op};
pub use hold_queries::{LegalHold, PlaceHold};
pub(crate) use journal_queries::decode_cdr_value;
pub use journal_queries::{AppliedWrites, CdrWrite, JournaledCall};
pub use kpi_queries::{BucketCounters, BucketKey, Rollup};
pub use reconnect::is_read_only_class;
pub use retention_queries::{
    ExpiredCdr, ExpiredRecording, PurgedRecording, RetentionCursor, RetentionEntry,
};
pub use trunk_queries::TrunkDefinition;

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{ConnectOptions, SqlitePool};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// Connection settings beyond the URL. `Default` is what production uses.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// How long a statement waits for another connection's write lock before failing.
    pub busy_timeout: Duration,
    /// Pool size for file databases (an in-memory database always uses one connection).
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
    pool: SqlitePool,
    /// File databases only: closes the pool's connections after a read-only refusal
    /// (`reconnect.rs`).
    reconnect: Option<std::sync::Arc<reconnect::Reconnect>>,
}

impl Store {
    /// Open (creating it and its directory if missing) and migrate the database.
    ///
    /// Accepts `sqlite://data/trunkguard.db` (relative to the working directory),
    /// `sqlite:///abs/path.db` and `sqlite::memory:`.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        Store::connect_with(url, StoreOptions::default()).await
    }

    pub async fn connect_with(url: &str, opts: StoreOptions) -> Result<Store, StoreError> {
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
            // Statements carry numbers and token hashes: never in the log, even at debug.
            .disable_statement_logging();

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
        };
        let pool =
            pool_options
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
        Ok(Store { pool, reconnect })
    }

    /// The pool, for queries that live in other store modules.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Close all connections (waits for checked-out ones to come back).
    pub async fn close(&self) {
        self.pool.close().await;
    }
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

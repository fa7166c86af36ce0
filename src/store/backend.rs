//! The two backends: SQLite (the embedded default) and PostgreSQL, each a concrete sqlx pool.
//!
//! The SQL is written once (`$n` placeholders, `ON CONFLICT`, `RETURNING`, row-value
//! comparisons: what both accept). What differs is the *dialect*, one unit struct per backend
//! with the same associated items: how a time is bound (UTC text on SQLite, `timestamptz` on
//! PostgreSQL), how a write transaction starts (`BEGIN IMMEDIATE` on SQLite; on PostgreSQL
//! `BEGIN` and a transaction-scoped advisory lock, so that writers are serialized as SQLite's
//! are: the read-merge-write of a KPI bucket or a hold relies on it), how a read transaction
//! starts (PostgreSQL needs `REPEATABLE READ` for the several statements of one read to see one
//! snapshot, as a SQLite read transaction does), and the odd statement one of them lacks.
//!
//! Query code that touches a pool, a connection or a row is compiled once per backend by
//! [`per_backend!`]: the items are expanded twice, into `mod sqlite` and `mod postgres`, each
//! seeing its backend's `Db`, `DbPool`, `Conn`, `Row` and `Dialect`. No generic bounds on
//! sqlx's traits (which would spell out every bound type for both databases), no query text
//! written twice; [`dispatch!`] calls the copy that matches the store's pool. `sqlx::Any` is no
//! option: it cannot decode `timestamptz`.

use chrono::{DateTime, Utc};
use sqlx::postgres::{PgPool, PgRow};
use sqlx::sqlite::{SqlitePool, SqliteRow};
use sqlx::Row as _;

use super::cdr_queries::parse_time;

/// Which database a store is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }

    /// The backend a database URL selects: `postgres://` and `postgresql://` select PostgreSQL,
    /// anything else is SQLite's to accept or refuse (as before there were two).
    pub fn of_url(url: &str) -> Backend {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            Backend::Sqlite
        }
    }
}

/// A store's pool.
#[derive(Debug, Clone)]
pub(crate) enum Pools {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl Pools {
    pub(crate) fn backend(&self) -> Backend {
        match self {
            Pools::Sqlite(_) => Backend::Sqlite,
            Pools::Postgres(_) => Backend::Postgres,
        }
    }

    pub(crate) async fn close(&self) {
        match self {
            Pools::Sqlite(pool) => pool.close().await,
            Pools::Postgres(pool) => pool.close().await,
        }
    }
}

/// Compiles the items once per backend, as `mod sqlite` and `mod postgres` next to the
/// invocation. Each copy sees the file's items (`use super::*`), its backend's types and
/// `Dialect`, and, for each module named in `uses(...)`, that module's copy for the same
/// backend under the module's name (`cdr_queries::insert_cdr` is the SQLite one in `sqlite`).
macro_rules! per_backend {
    (uses($($m:ident),*); $($item:item)*) => {
        #[allow(unused_imports)]
        pub(in crate::store) mod sqlite {
            use super::*;
            use $crate::store::backend::sqlite::*;
            $(use $crate::store::$m::sqlite as $m;)*
            $($item)*
        }
        #[allow(unused_imports)]
        pub(in crate::store) mod postgres {
            use super::*;
            use $crate::store::backend::postgres::*;
            $(use $crate::store::$m::postgres as $m;)*
            $($item)*
        }
    };
    ($($item:item)*) => {
        per_backend!(uses(); $($item)*);
    };
}

/// `dispatch!(store, f(a, b))`: `sqlite::f(pool, a, b).await` or `postgres::f(pool, a, b).await`,
/// whichever backend the store is on (the copies [`per_backend!`] made in the calling file).
macro_rules! dispatch {
    ($store:expr, $f:ident($($arg:expr),* $(,)?)) => {
        match &$store.pools {
            $crate::store::backend::Pools::Sqlite(pool) => sqlite::$f(pool, $($arg),*).await,
            $crate::store::backend::Pools::Postgres(pool) => postgres::$f(pool, $($arg),*).await,
        }
    };
}

/// How a row reads a time column.
pub(crate) trait TimeRow {
    /// `None` for NULL; `Some(Err(text))` for text that is not a time (a hand-edited SQLite row:
    /// PostgreSQL's `timestamptz` cannot hold one).
    fn time_at(&self, column: &str) -> Result<Option<Result<DateTime<Utc>, String>>, sqlx::Error>;
}

impl TimeRow for SqliteRow {
    fn time_at(&self, column: &str) -> Result<Option<Result<DateTime<Utc>, String>>, sqlx::Error> {
        let text: Option<String> = self.try_get(column)?;
        Ok(text.map(|text| parse_time(&text).ok_or(text)))
    }
}

impl TimeRow for PgRow {
    fn time_at(&self, column: &str) -> Result<Option<Result<DateTime<Utc>, String>>, sqlx::Error> {
        let time: Option<DateTime<Utc>> = self.try_get(column)?;
        Ok(time.map(Ok))
    }
}

pub(crate) mod sqlite {
    use std::borrow::Cow;

    use chrono::{DateTime, Utc};

    use crate::store::cdr_queries::format_time;

    pub(crate) type Db = sqlx::Sqlite;
    pub(crate) type DbPool = sqlx::SqlitePool;
    pub(crate) type Conn = sqlx::SqliteConnection;
    pub(crate) type Row = sqlx::sqlite::SqliteRow;
    pub(crate) type Args<'q> = sqlx::sqlite::SqliteArguments<'q>;
    pub(crate) type Tx = sqlx::Transaction<'static, Db>;
    /// Not sqlx's `Transaction`: its BEGIN and COMMIT are parsed anew each time (`write_tx`).
    pub(crate) type WriteTx = crate::store::write_tx::WriteTx;

    /// SQLite's way.
    pub(crate) struct Dialect;

    impl Dialect {
        /// Placeholders of generated statements (`multi_row`): anonymous `?`. SQLite resolves a
        /// numbered `$N` by name, and sqlx looks each one up again when it binds
        /// (`sqlite3_bind_parameter_name`): quadratic in a statement's parameters, a quarter of
        /// the store's CPU with thousands of them (bench/README.md, session 11).
        pub(crate) const PLACEHOLDERS: super::super::multi_row::Placeholders =
            super::super::multi_row::Placeholders::Anonymous;

        /// `multi_row::written_ids` counts a single-row INSERT's changes rather than have it
        /// RETURN its id: SQLite's RETURNING fills an ephemeral table for each statement.
        pub(crate) const SINGLE_ROW_BY_CHANGES: bool = true;

        /// `BEGIN IMMEDIATE`: takes the write lock up front, so a busy database is waited for
        /// (busy_timeout) instead of failing when a deferred transaction tries to upgrade.
        pub(crate) async fn begin_write(pool: &DbPool) -> Result<WriteTx, sqlx::Error> {
            WriteTx::begin(pool).await
        }

        /// A deferred transaction: its reads share one snapshot from the first on.
        pub(crate) async fn begin_read(pool: &DbPool) -> Result<Tx, sqlx::Error> {
            pool.begin().await
        }

        /// Times are UTC text with milliseconds: they sort as text and read as-is in sqlite3.
        pub(crate) fn time(t: DateTime<Utc>) -> String {
            format_time(t)
        }

        /// Text of the CDR writer's rows, as it is.
        pub(crate) fn text(s: &str) -> Cow<'_, str> {
            Cow::Borrowed(s)
        }

        pub(crate) fn opt_text(s: &Option<String>) -> Option<Cow<'_, str>> {
            s.as_deref().map(Dialect::text)
        }

        /// A CAST of text that is no number gives 0.
        pub(crate) const LAST_ANOMALY_ID: &'static str =
            "SELECT MAX(CAST(id AS BIGINT)) FROM anomalies";
    }
}

pub(crate) mod postgres {
    use std::borrow::Cow;

    use chrono::{DateTime, NaiveDate, Utc};

    use crate::model::ms_precision;

    pub(crate) type Db = sqlx::Postgres;
    pub(crate) type DbPool = sqlx::PgPool;
    pub(crate) type Conn = sqlx::PgConnection;
    pub(crate) type Row = sqlx::postgres::PgRow;
    pub(crate) type Args<'q> = sqlx::postgres::PgArguments;
    pub(crate) type Tx = sqlx::Transaction<'static, Db>;
    pub(crate) type WriteTx = Tx;

    /// The advisory lock every write transaction takes (an arbitrary constant: "tg" in ASCII).
    const WRITE_LOCK: i64 = 0x7467;

    /// PostgreSQL's way.
    pub(crate) struct Dialect;

    impl Dialect {
        /// Placeholders of generated statements (`multi_row`): PostgreSQL knows only `$N`.
        pub(crate) const PLACEHOLDERS: super::super::multi_row::Placeholders =
            super::super::multi_row::Placeholders::Numbered;

        /// RETURNING for every chunk, one row or more (`multi_row::written_ids`).
        pub(crate) const SINGLE_ROW_BY_CHANGES: bool = false;

        /// `BEGIN` and the store's advisory lock, held until commit or rollback: write
        /// transactions run one at a time, as under SQLite's `BEGIN IMMEDIATE` (a KPI bucket's
        /// read-merge-write and "no active hold yet, so insert one" rely on it). The wait is
        /// bounded by `lock_timeout` (the store's busy timeout), as SQLite's by busy_timeout.
        pub(crate) async fn begin_write(pool: &DbPool) -> Result<WriteTx, sqlx::Error> {
            let mut tx = pool.begin().await?;
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(WRITE_LOCK)
                .execute(&mut *tx)
                .await?;
            Ok(tx)
        }

        /// REPEATABLE READ: every statement of the transaction sees the snapshot of its first,
        /// as in SQLite (READ COMMITTED would take a new snapshot per statement, and a page's
        /// child rows could come from CDRs committed in between).
        pub(crate) async fn begin_read(pool: &DbPool) -> Result<Tx, sqlx::Error> {
            pool.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                .await
        }

        /// `timestamptz` keeps microseconds; the store keeps milliseconds on both backends. A
        /// time beyond the years 1–9999 (none a call has) is clamped rather than refused: the
        /// CDR writer retries a refused batch forever, and `timestamptz` ends at 294276.
        pub(crate) fn time(t: DateTime<Utc>) -> DateTime<Utc> {
            let first = NaiveDate::from_ymd_opt(1, 1, 1)
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|t| t.and_utc());
            let last = NaiveDate::from_ymd_opt(9999, 12, 31)
                .and_then(|d| d.and_hms_milli_opt(23, 59, 59, 999))
                .map(|t| t.and_utc());
            match (first, last) {
                (Some(first), _) if t < first => first,
                (_, Some(last)) if t > last => last,
                _ => ms_precision(t),
            }
        }

        /// Text of the CDR writer's rows: PostgreSQL's text cannot hold NUL, so a NUL (say in a
        /// peer's reason phrase) is stored as U+FFFD rather than have the batch refused forever.
        pub(crate) fn text(s: &str) -> Cow<'_, str> {
            if s.contains('\0') {
                Cow::Owned(s.replace('\0', "\u{FFFD}"))
            } else {
                Cow::Borrowed(s)
            }
        }

        pub(crate) fn opt_text(s: &Option<String>) -> Option<Cow<'_, str>> {
            s.as_deref().map(Dialect::text)
        }

        /// A CAST of text that is no number fails: such ids are left out.
        pub(crate) const LAST_ANOMALY_ID: &'static str =
            "SELECT MAX(CAST(id AS BIGINT)) FROM anomalies WHERE id ~ '^[0-9]{1,18}$'";
    }
}

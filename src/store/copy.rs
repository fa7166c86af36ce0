//! Copying a SQLite database into an empty PostgreSQL one (`trunkguard migrate-sqlite`), and
//! the digests that check a copy.
//!
//! Every table is copied whole, rows and ids as they are, in one PostgreSQL transaction: the
//! source is read in one SQLite read transaction (one snapshot, even with a gateway writing),
//! table by table in an order that satisfies the foreign keys, and inserted in batches; then
//! each identity sequence is set past the largest id copied (and past SQLite's own sequence, so
//! that no id is ever handed out twice). Before the commit the target's rows are read back and
//! compared with the source's by count and digest; a difference rolls everything back.
//!
//! A table's digest is SHA-256 over its rows in primary-key order, each value encoded by its
//! kind (see [`encode`]): times at millisecond precision (as the store keeps them), so that the
//! same rows give the same digest on both backends whatever the column's type. Text is taken
//! as PostgreSQL can hold it: a NUL (which it cannot) counts and is copied as U+FFFD, as the
//! store writes it there.
//!
//! The table list is the schema's: a source table or column this version does not know stops
//! the copy before anything is written, rather than leave it behind.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use sha2::{Digest, Sha256};

use super::backend::{Pools, TimeRow};
use super::{Columns, Op, Store, StoreError};

use super::copy_tables::{Kind, Table, TABLES};
use Kind::{Bool, Bytes, Int, Real, Text, Time};

/// PostgreSQL takes at most 65,535 parameters per statement; a batch stays well below.
const BATCH_PARAMS: usize = 30_000;

/// One table's rows: how many, and their digest (lowercase hex SHA-256).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableDigest {
    pub table: &'static str,
    pub rows: u64,
    pub sha256: String,
}

#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("the source must be a SQLite database (it is {source_backend}) and the target a PostgreSQL one (it is {target_backend})")]
    Backends {
        source_backend: &'static str,
        target_backend: &'static str,
    },
    #[error("the target database is not empty: table {table} has {rows} rows (nothing copied; copy into a freshly created database)")]
    TargetNotEmpty { table: &'static str, rows: i64 },
    #[error("the source has table `{table}`, which this version cannot copy (nothing copied)")]
    UnknownTable { table: String },
    #[error("table {table} of the source has columns {found:?}, this version copies {expected:?} (nothing copied)")]
    Columns {
        table: &'static str,
        found: Vec<String>,
        expected: Vec<String>,
    },
    #[error("table {table}, row {row}: column {column} holds `{value}`, which is no time (nothing copied)")]
    BadTime {
        table: &'static str,
        row: u64,
        column: &'static str,
        value: String,
    },
    #[error("the copy differs from the source, nothing was committed: {}", .0.join("; "))]
    Mismatch(Vec<String>),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A value of a row, by its column's kind.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Time(DateTime<Utc>),
    Bool(bool),
    Bytes(Vec<u8>),
}

/// The canonical encoding of a value for a digest: a tag, then a fixed-width or length-prefixed
/// payload, so that no two different rows encode alike.
fn encode(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Null => out.push(b'N'),
        Value::Int(n) => {
            out.push(b'I');
            out.extend_from_slice(&n.to_be_bytes());
        }
        Value::Real(r) => {
            out.push(b'R');
            out.extend_from_slice(&r.to_bits().to_be_bytes());
        }
        Value::Text(t) => {
            out.push(b'T');
            out.extend_from_slice(&(t.len() as u64).to_be_bytes());
            out.extend_from_slice(t.as_bytes());
        }
        Value::Time(t) => {
            out.push(b'D');
            out.extend_from_slice(&t.timestamp_millis().to_be_bytes());
        }
        Value::Bool(b) => {
            out.push(b'B');
            out.push(u8::from(*b));
        }
        Value::Bytes(b) => {
            out.push(b'X');
            out.extend_from_slice(&(b.len() as u64).to_be_bytes());
            out.extend_from_slice(b);
        }
    }
}

/// A table's digest as its rows go by.
struct Digester {
    table: &'static str,
    rows: u64,
    hash: Sha256,
    buf: Vec<u8>,
}

impl Digester {
    fn new(table: &'static str) -> Digester {
        let mut hash = Sha256::new();
        hash.update(table.as_bytes());
        Digester {
            table,
            rows: 0,
            hash,
            buf: Vec::new(),
        }
    }

    fn row(&mut self, values: &[Value]) {
        self.buf.clear();
        for v in values {
            encode(v, &mut self.buf);
        }
        self.hash.update(&self.buf);
        self.rows += 1;
    }

    fn finish(self) -> TableDigest {
        let sha256 = self
            .hash
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        TableDigest {
            table: self.table,
            rows: self.rows,
            sha256,
        }
    }
}

fn select(table: &Table) -> String {
    let columns: Vec<&str> = table.columns.iter().map(|(c, _)| *c).collect();
    format!(
        "SELECT {} FROM {} ORDER BY {}",
        columns.join(", "),
        table.name,
        table.key
    )
}

/// The digest of every table of a store (either backend), in one read transaction.
pub async fn table_digests(store: &Store) -> Result<Vec<TableDigest>, CopyError> {
    dispatch!(store, table_digests())
}

/// Copy `source` (SQLite) into `target` (PostgreSQL, migrated and empty) as the module says.
/// `progress` is told each table when it is copied, with its row count. Returns each table's
/// digest, the same on both sides (a difference is an error and nothing is committed).
pub async fn copy_sqlite_to_postgres(
    source: &Store,
    target: &Store,
    mut progress: impl FnMut(&TableDigest),
) -> Result<Vec<TableDigest>, CopyError> {
    let (Pools::Sqlite(from), Pools::Postgres(to)) = (&source.pools, &target.pools) else {
        return Err(CopyError::Backends {
            source_backend: source.backend().name(),
            target_backend: target.backend().name(),
        });
    };
    check_source_schema(from).await?;
    let sequences = sqlite_sequences(from).await?;

    let mut read = from.begin().await.op("begin reading the source")?;
    let mut write = to.begin().await.op("begin writing the target")?;
    for table in TABLES {
        let rows: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {}", table.name))
            .fetch_one(&mut *write)
            .await
            .op_on("count target rows", table.name)?;
        if rows > 0 {
            return Err(CopyError::TargetNotEmpty {
                table: table.name,
                rows,
            });
        }
    }

    let mut copied = Vec::with_capacity(TABLES.len());
    for table in TABLES {
        if table.name == "cdr_feed" {
            // Filled by the trigger while `cdrs` was copied, in the copy's order and
            // numbering: the source's positions replace them.
            sqlx::query("DELETE FROM cdr_feed")
                .execute(&mut *write)
                .await
                .op("clear the target's cdr feed")?;
        }
        let mut digest = Digester::new(table.name);
        let batch_rows = (BATCH_PARAMS / table.columns.len()).max(1);
        let mut batch: Vec<Vec<Value>> = Vec::with_capacity(batch_rows);
        let sql = select(table);
        let mut rows = sqlx::query(&sql).fetch(&mut *read);
        while let Some(row) = rows
            .try_next()
            .await
            .op_on("read source rows", table.name)?
        {
            let values = sqlite::values(&row, table, digest.rows)?;
            digest.row(&values);
            batch.push(values);
            if batch.len() == batch_rows {
                insert_batch(&mut write, table, &batch).await?;
                batch.clear();
            }
        }
        drop(rows);
        if !batch.is_empty() {
            insert_batch(&mut write, table, &batch).await?;
        }
        if table.identity {
            advance_identity(&mut write, table, sequences.get(table.name).copied()).await?;
        }
        let digest = digest.finish();
        progress(&digest);
        copied.push(digest);
    }
    read.rollback().await.op("end reading the source")?;

    let mut differences = Vec::new();
    for (table, want) in TABLES.iter().zip(&copied) {
        let got = postgres::digest(&mut write, table).await?;
        if got != *want {
            differences.push(format!(
                "{}: source {} rows {}, copy {} rows {}",
                table.name, want.rows, want.sha256, got.rows, got.sha256
            ));
        }
    }
    if !differences.is_empty() {
        write.rollback().await.op("roll back the copy")?;
        return Err(CopyError::Mismatch(differences));
    }
    write.commit().await.op("commit the copy")?;
    Ok(copied)
}

/// Compare two stores' digests: the differences, one line each (none: the same rows).
pub fn differences(a: &[TableDigest], b: &[TableDigest]) -> Vec<String> {
    let b: BTreeMap<&str, &TableDigest> = b.iter().map(|d| (d.table, d)).collect();
    a.iter()
        .filter_map(|want| match b.get(want.table) {
            Some(got) if *got == want => None,
            Some(got) => Some(format!(
                "{}: {} rows {} against {} rows {}",
                want.table, want.rows, want.sha256, got.rows, got.sha256
            )),
            None => Some(format!("{}: missing", want.table)),
        })
        .collect()
}

/// Every table of the source is one this version copies, with exactly its columns.
async fn check_source_schema(pool: &sqlx::SqlitePool) -> Result<(), CopyError> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' \
         AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name <> '_sqlx_migrations'",
    )
    .fetch_all(pool)
    .await
    .op("list source tables")?;
    for name in &tables {
        if !TABLES.iter().any(|t| t.name == name) {
            return Err(CopyError::UnknownTable {
                table: name.clone(),
            });
        }
    }
    for table in TABLES {
        let found: BTreeSet<String> = sqlx::query_scalar("SELECT name FROM pragma_table_info($1)")
            .bind(table.name)
            .fetch_all(pool)
            .await
            .op_on("list source columns", table.name)?
            .into_iter()
            .collect();
        let expected: BTreeSet<String> = table.columns.iter().map(|(c, _)| c.to_string()).collect();
        if found != expected {
            return Err(CopyError::Columns {
                table: table.name,
                found: found.into_iter().collect(),
                expected: expected.into_iter().collect(),
            });
        }
    }
    Ok(())
}

/// SQLite's AUTOINCREMENT high-water marks (ids once given, even of rows gone since).
async fn sqlite_sequences(pool: &sqlx::SqlitePool) -> Result<BTreeMap<String, i64>, CopyError> {
    let rows: Vec<(String, i64)> = sqlx::query_as("SELECT name, seq FROM sqlite_sequence")
        .fetch_all(pool)
        .await
        .op("read source sequences")?;
    Ok(rows.into_iter().collect())
}

async fn insert_batch(
    conn: &mut sqlx::PgConnection,
    table: &Table,
    rows: &[Vec<Value>],
) -> Result<(), CopyError> {
    let columns: Vec<&str> = table.columns.iter().map(|(c, _)| *c).collect();
    let width = columns.len();
    let tuples: Vec<String> = (0..rows.len())
        .map(|r| {
            let marks: Vec<String> = (1..=width).map(|c| format!("${}", r * width + c)).collect();
            format!("({})", marks.join(", "))
        })
        .collect();
    let sql = format!(
        "INSERT INTO {} ({}) VALUES {}",
        table.name,
        columns.join(", "),
        tuples.join(", ")
    );
    let mut query = sqlx::query(&sql);
    for row in rows {
        for (value, (_, kind)) in row.iter().zip(table.columns) {
            query = match (value, kind) {
                (Value::Null, Text) => query.bind(None::<String>),
                (Value::Null, Int) => query.bind(None::<i64>),
                (Value::Null, Real) => query.bind(None::<f64>),
                (Value::Null, Time) => query.bind(None::<DateTime<Utc>>),
                (Value::Null, Bool) => query.bind(None::<bool>),
                (Value::Null, Bytes) => query.bind(None::<Vec<u8>>),
                (Value::Int(n), _) => query.bind(*n),
                (Value::Real(r), _) => query.bind(*r),
                (Value::Text(t), _) => query.bind(t.as_str()),
                (Value::Time(t), _) => query.bind(*t),
                (Value::Bool(b), _) => query.bind(*b),
                (Value::Bytes(b), _) => query.bind(b.as_slice()),
            };
        }
    }
    query
        .execute(&mut *conn)
        .await
        .op_on("insert copied rows", table.name)?;
    Ok(())
}

/// The identity's next value: past the largest id copied and past SQLite's sequence.
async fn advance_identity(
    conn: &mut sqlx::PgConnection,
    table: &Table,
    sqlite_seq: Option<i64>,
) -> Result<(), CopyError> {
    let sql = format!(
        "SELECT setval(pg_get_serial_sequence('{name}', '{key}'), \
         GREATEST(COALESCE((SELECT MAX({key}) FROM {name}), 0), $1) + 1, false)",
        name = table.name,
        key = table.key
    );
    sqlx::query(&sql)
        .bind(sqlite_seq.unwrap_or(0))
        .execute(&mut *conn)
        .await
        .op_on("advance identity", table.name)?;
    Ok(())
}

per_backend! {
    pub(super) async fn table_digests(pool: &DbPool) -> Result<Vec<TableDigest>, CopyError> {
        let mut tx = Dialect::begin_read(pool).await.op("begin reading digests")?;
        let mut out = Vec::with_capacity(TABLES.len());
        for table in TABLES {
            out.push(digest(&mut tx, table).await?);
        }
        tx.rollback().await.op("end reading digests")?;
        Ok(out)
    }

    pub(super) async fn digest(conn: &mut Conn, table: &Table) -> Result<TableDigest, CopyError> {
        let mut digest = Digester::new(table.name);
        let sql = select(table);
        let mut rows = sqlx::query(&sql).fetch(&mut *conn);
        while let Some(row) = rows.try_next().await.op_on("read rows", table.name)? {
            let values = values(&row, table, digest.rows)?;
            digest.row(&values);
        }
        Ok(digest.finish())
    }

    /// A row's values by its table's kinds. `n` is the row's position, for errors.
    pub(super) fn values(row: &Row, table: &Table, n: u64) -> Result<Vec<Value>, CopyError> {
        let cols = Columns::new(row, "read copied row");
        let mut out = Vec::with_capacity(table.columns.len());
        for (i, (column, kind)) in table.columns.iter().enumerate() {
            let value = match kind {
                Text => cols
                    .try_get::<Option<String>, _>(i)?
                    .map_or(Value::Null, |t| {
                        // As PostgreSQL can hold it (and the store writes it there).
                        Value::Text(if t.contains('\0') { t.replace('\0', "\u{FFFD}") } else { t })
                    }),
                Int => cols.try_get::<Option<i64>, _>(i)?.map_or(Value::Null, Value::Int),
                Real => cols.try_get::<Option<f64>, _>(i)?.map_or(Value::Null, Value::Real),
                Bool => cols.try_get::<Option<bool>, _>(i)?.map_or(Value::Null, Value::Bool),
                Bytes => cols.try_get::<Option<Vec<u8>>, _>(i)?.map_or(Value::Null, Value::Bytes),
                Time => match row.time_at(column).op_on("read copied row", table.name)? {
                    None => Value::Null,
                    Some(Ok(t)) => Value::Time(crate::model::ms_precision(t)),
                    Some(Err(value)) => {
                        return Err(CopyError::BadTime {
                            table: table.name,
                            row: n,
                            column,
                            value,
                        })
                    }
                },
            };
            out.push(value);
        }
        Ok(out)
    }
}

#[cfg(test)]
#[path = "copy_tests.rs"]
mod tests;

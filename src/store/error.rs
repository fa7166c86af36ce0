//! What can go wrong in the store. A failed statement says what the store was doing and, when
//! there is one, which row it was about (`Query`), as `ConfigError` names the key at fault: a
//! log line "database error" alone does not tell which of a hundred queries failed. There is
//! no `From<sqlx::Error>`, so a new query cannot forget to name itself: every sqlx call goes
//! through [`Op::op`] / [`Op::op_on`], and row decoders through [`Columns`].

use std::fmt;
use std::path::PathBuf;

use chrono::{DateTime, Utc};

use super::backend::TimeRow;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database url `{url}` is not valid: {source}")]
    InvalidUrl { url: String, source: sqlx::Error },
    #[error("cannot create database directory {}: {source}", path.display())]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open database `{url}`: {source}")]
    Connect { url: String, source: sqlx::Error },
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A statement failed. `op` names it ("insert cdr", "read cdr row"); `key` is the row it was
    /// about when there is one (a CDR id, a token name, a trunk).
    #[error("database error in {op}{}: {source}", Key(.key))]
    Query {
        op: &'static str,
        key: Option<String>,
        source: sqlx::Error,
    },
    /// A write that needs a stored CDR (e.g. a recording update) named one that does not exist.
    #[error("no cdr with id `{id}`")]
    UnknownCdr { id: String },
    /// A stored row that does not decode: it was edited by hand or written by something else.
    /// `id` names the row (a CDR id, or e.g. `complaint 7` for other tables).
    #[error("row `{id}`: column {column} holds an invalid value `{value}`")]
    Corrupt {
        id: String,
        column: &'static str,
        value: String,
    },
}

impl StoreError {
    /// The database's own error when a statement failed there (a constraint, a read-only file):
    /// for the callers that decide by its code.
    pub fn database(&self) -> Option<&(dyn sqlx::error::DatabaseError + 'static)> {
        match self {
            StoreError::Query {
                source: sqlx::Error::Database(db),
                ..
            } => Some(db.as_ref()),
            _ => None,
        }
    }
}

/// Shows a `Query` key as `` `key` `` after the operation, nothing without one.
struct Key<'a>(&'a Option<String>);

impl fmt::Display for Key<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(key) => write!(f, " `{key}`"),
            None => Ok(()),
        }
    }
}

/// Names the operation of a sqlx call: `query.execute(pool).await.op("insert cdr")?`.
pub(crate) trait Op<T> {
    fn op(self, op: &'static str) -> Result<T, StoreError>;
    /// With the row it was about; `key` is only formatted when the call failed.
    fn op_on(self, op: &'static str, key: impl fmt::Display) -> Result<T, StoreError>;
}

impl<T> Op<T> for Result<T, sqlx::Error> {
    fn op(self, op: &'static str) -> Result<T, StoreError> {
        self.map_err(|source| StoreError::Query {
            op,
            key: None,
            source,
        })
    }

    fn op_on(self, op: &'static str, key: impl fmt::Display) -> Result<T, StoreError> {
        self.map_err(|source| StoreError::Query {
            op,
            key: Some(key.to_string()),
            source,
        })
    }
}

/// A row whose column reads name the operation they belong to: a decoder starts with
/// `let row = Columns::new(row, "read cdr row");` (or `Columns::of(row, op, id)` when the row's
/// id is known) and reads `row.try_get("id")?` as before. `R` is either backend's row.
pub(crate) struct Columns<'r, 'k, R> {
    row: &'r R,
    op: &'static str,
    key: Option<&'k str>,
}

impl<'r, 'k, R: sqlx::Row> Columns<'r, 'k, R> {
    pub(crate) fn new(row: &'r R, op: &'static str) -> Columns<'r, 'k, R> {
        Columns { row, op, key: None }
    }

    /// For the row of `key` (a CDR id, a token name).
    pub(crate) fn of(row: &'r R, op: &'static str, key: &'k str) -> Columns<'r, 'k, R> {
        Columns {
            row,
            op,
            key: Some(key),
        }
    }

    pub(crate) fn try_get<T, I>(&self, index: I) -> Result<T, StoreError>
    where
        I: sqlx::ColumnIndex<R>,
        T: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    {
        self.named(self.row.try_get(index))
    }

    fn named<T>(&self, value: Result<T, sqlx::Error>) -> Result<T, StoreError> {
        match self.key {
            Some(key) => value.op_on(self.op, key),
            None => value.op(self.op),
        }
    }
}

impl<R: sqlx::Row + TimeRow> Columns<'_, '_, R> {
    /// A nullable time column (UTC text on SQLite, `timestamptz` on PostgreSQL). `label` names
    /// it in a [`StoreError::Corrupt`] (`table.column` is read as `column`), `id` the row.
    pub(crate) fn opt_time(
        &self,
        label: &'static str,
        id: &str,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let column = label.rsplit_once('.').map_or(label, |(_, column)| column);
        match self.named(self.row.time_at(column))? {
            None => Ok(None),
            Some(Ok(t)) => Ok(Some(t)),
            Some(Err(value)) => Err(StoreError::Corrupt {
                id: id.to_string(),
                column: label,
                value,
            }),
        }
    }

    /// A time column that must hold one.
    pub(crate) fn time(&self, label: &'static str, id: &str) -> Result<DateTime<Utc>, StoreError> {
        self.opt_time(label, id)?
            .ok_or_else(|| StoreError::Corrupt {
                id: id.to_string(),
                column: label,
                value: "NULL".to_string(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::{self, on_each_backend};

    #[tokio::test]
    async fn a_failing_query_names_its_operation_and_row() {
        on_each_backend(|store| async move {
            let err = testing::fetch_i64(
                &store,
                "SELECT * FROM no_such_table WHERE id = $1",
                &["c-1"],
            )
            .await
            .unwrap_err();
            let StoreError::Query { source, .. } = err else {
                panic!("{err}");
            };
            let err = Err::<(), _>(source)
                .op_on("read the missing table", "c-1")
                .unwrap_err();
            let text = err.to_string();
            assert!(
                text.starts_with("database error in read the missing table `c-1`: "),
                "{text}"
            );
            assert!(text.contains("no_such_table"), "{text}");
            assert!(
                err.database().is_some(),
                "the database's own error is kept: {err:?}"
            );
        })
        .await;
    }

    #[tokio::test]
    async fn a_store_method_names_its_operation() {
        on_each_backend(|store| async move {
            testing::execute(&store, "DROP TABLE audit_log", &[])
                .await
                .unwrap();
            let err = store.count_audit().await.unwrap_err();
            assert!(
                matches!(&err, StoreError::Query { op, .. } if *op == "count audit rows"),
                "{err}"
            );
            assert!(
                err.to_string()
                    .starts_with("database error in count audit rows: "),
                "{err}"
            );
        })
        .await;
    }
}

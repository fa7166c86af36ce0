//! What can go wrong in the store.

use std::path::PathBuf;

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
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
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

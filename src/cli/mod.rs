//! The subcommands that work on the database beside (or without) the running gateway: KPI
//! reports, operators' enforcement orders, complaint imports. `main.rs` parses the command line
//! and calls these; each writes its output to the given writer.

pub mod complaints;
pub mod enforce;
pub mod report;
pub mod token;

use chrono::{DateTime, Utc};

use crate::monitor::complaint_csv::{parse_time, ComplaintCsvError};
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Complaints(#[from] ComplaintCsvError),
    #[error("{0}")]
    Usage(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
}

impl CliError {
    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> CliError {
        CliError::Io {
            what: what.into(),
            source,
        }
    }
}

/// A command-line time: RFC 3339, `YYYY-MM-DD HH:MM[:SS]` (UTC) or `YYYY-MM-DD` (UTC midnight).
pub fn time_arg(name: &str, value: &str) -> Result<DateTime<Utc>, CliError> {
    parse_time(value).ok_or_else(|| {
        CliError::Usage(format!(
            "--{name} `{value}` is not RFC 3339 (2026-11-27T09:00:00Z) or YYYY-MM-DD"
        ))
    })
}

/// A number as given on the command line, normalized like the numbers of calls.
pub fn number_arg(name: &str, value: &str) -> Result<String, CliError> {
    crate::policy::normalize_number(value)
        .ok_or_else(|| CliError::Usage(format!("--{name} `{value}` is not a phone number")))
}

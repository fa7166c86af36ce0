//! `trunkguard migrate-sqlite --to postgres://… [--from sqlite://…] [--check]`: copy a SQLite
//! database into an empty PostgreSQL one (`store::copy_sqlite_to_postgres`: every table, ids
//! kept, one transaction, checked by row counts and digests before it commits), then print each
//! table's row count and digest. `--check` copies nothing: it compares the two databases.
//!
//! Stop the gateway first: CDRs it stores during the copy would stay behind in SQLite (the copy
//! reads one snapshot).

use std::io::Write;
use std::process::ExitCode;

use clap::Args;

use super::CliError;
use crate::store::{
    copy_sqlite_to_postgres, differences, redact, table_digests, Backend, Store, TableDigest,
};

#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// The SQLite database to copy (default: the config's `[database] url`).
    #[arg(long, value_parser = sqlite_url_value)]
    pub from: Option<String>,
    /// The PostgreSQL database to copy into: an existing, empty database (its tables are
    /// created). Then set it as `[database] url`.
    #[arg(long, value_parser = postgres_url_value)]
    pub to: String,
    /// Copy nothing: compare the two databases' row counts and digests (exit status 1 when
    /// they differ).
    #[arg(long)]
    pub check: bool,
}

/// A `sqlite:` URL.
pub fn sqlite_url_value(value: &str) -> Result<String, String> {
    if value.starts_with("sqlite:") {
        Ok(value.to_string())
    } else {
        Err("not a sqlite: URL (sqlite://data/trunkguard.db)".to_string())
    }
}

/// A `postgres://` (or `postgresql://`) URL.
pub fn postgres_url_value(value: &str) -> Result<String, String> {
    if Backend::of_url(value) == Backend::Postgres {
        Ok(value.to_string())
    } else {
        Err("not a postgres:// URL (postgres://user@host:5432/trunkguard)".to_string())
    }
}

/// The file a SQLite URL names, unless it is an in-memory database.
fn sqlite_file(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let file = rest.split('?').next().unwrap_or_default();
    (!file.is_empty() && !file.starts_with(":memory:")).then_some(file)
}

pub async fn run(
    args: &MigrateArgs,
    config_url: &str,
    out: &mut impl Write,
) -> Result<ExitCode, CliError> {
    let from = args.from.as_deref().unwrap_or(config_url);
    sqlite_url_value(from).map_err(|e| {
        CliError::Usage(format!(
            "the source `{}` (the config's [database] url; --from names another): {e}",
            redact(from)
        ))
    })?;
    // Opening a SQLite URL creates a missing file: a typo must not "copy" an empty database.
    if let Some(file) = sqlite_file(from) {
        if !tokio::fs::try_exists(file).await.unwrap_or(false) {
            return Err(CliError::Usage(format!("no SQLite database at {file}")));
        }
    }
    let source = Store::connect(from).await?;
    let target = Store::connect(&args.to).await?;
    let write = |out: &mut dyn Write, text: String| {
        out.write_all(text.as_bytes())
            .map_err(|e| CliError::io("writing the output", e))
    };

    if args.check {
        let want = table_digests(&source).await?;
        let got = table_digests(&target).await?;
        write(out, table(&want, Some(&got)))?;
        let found = differences(&want, &got);
        source.close().await;
        target.close().await;
        if found.is_empty() {
            write(
                out,
                format!(
                    "{} and {} hold the same rows\n",
                    redact(from),
                    redact(&args.to)
                ),
            )?;
            return Ok(ExitCode::SUCCESS);
        }
        write(out, format!("they differ: {}\n", found.join("; ")))?;
        return Ok(ExitCode::FAILURE);
    }

    let copied = copy_sqlite_to_postgres(&source, &target, |d| {
        tracing::info!(table = d.table, rows = d.rows, "table copied");
    })
    .await?;
    source.close().await;
    target.close().await;
    let rows: u64 = copied.iter().map(|d| d.rows).sum();
    write(out, table(&copied, None))?;
    write(
        out,
        format!(
            "copied {rows} rows in {} tables from {} to {}; the copy's row counts and digests \
             match the source's\n",
            copied.len(),
            redact(from),
            redact(&args.to)
        ),
    )?;
    Ok(ExitCode::SUCCESS)
}

/// One line per table: rows and digest (and the other side's when they differ).
fn table(digests: &[TableDigest], other: Option<&[TableDigest]>) -> String {
    let mut text = format!("{:<22} {:>10}  {}\n", "table", "rows", "sha256");
    for d in digests {
        text += &format!("{:<22} {:>10}  {}", d.table, d.rows, d.sha256);
        let theirs = other.and_then(|o| o.iter().find(|t| t.table == d.table));
        match (other, theirs) {
            (Some(_), Some(t)) if t == d => text += "  same",
            (Some(_), Some(t)) => text += &format!("  differs: {} rows {}", t.rows, t.sha256),
            (Some(_), None) => text += "  missing",
            (None, _) => {}
        }
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::sample_cdr;
    use crate::store::testing::{self, PgTestDb};

    #[test]
    fn urls_are_checked_by_kind() {
        assert!(sqlite_url_value("sqlite://data/tg.db").is_ok());
        assert!(sqlite_url_value("postgres://x/y").is_err());
        assert!(postgres_url_value("postgresql://x/y").is_ok());
        assert!(postgres_url_value("sqlite://data/tg.db").is_err());
        assert_eq!(
            sqlite_file("sqlite://data/tg.db?mode=rwc"),
            Some("data/tg.db")
        );
        assert_eq!(sqlite_file("sqlite::memory:"), None);
    }

    #[tokio::test]
    async fn migrates_then_checks_and_finds_a_tampered_copy() {
        let Some(db) = PgTestDb::create().await else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let from = format!("sqlite://{}/tg.db", dir.path().display());
        let source = Store::connect(&from).await.unwrap();
        let cdrs: Vec<_> = (0..3).map(|i| sample_cdr(&format!("c{i}"))).collect();
        source.insert_cdrs(&cdrs).await.unwrap();
        source.close().await;

        let args = |check: bool| MigrateArgs {
            from: None,
            to: db.url(),
            check,
        };
        let mut out = Vec::new();
        let code = run(&args(false), &from, &mut out).await.unwrap();
        assert_eq!(code, ExitCode::SUCCESS);
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("copied 30 rows in 22 tables"), "{text}");
        assert!(
            text.lines()
                .any(|l| l.starts_with("cdrs ") && l.contains(" 3  ")),
            "{text}"
        );

        let mut out = Vec::new();
        assert_eq!(
            run(&args(true), &from, &mut out).await.unwrap(),
            ExitCode::SUCCESS
        );
        assert!(String::from_utf8(out)
            .unwrap()
            .contains("hold the same rows"));

        // Again into the same database: refused, nothing changed.
        let err = run(&args(false), &from, &mut Vec::new()).await.unwrap_err();
        assert!(err.to_string().contains("not empty"), "{err}");

        let target = db.store().await;
        testing::execute(&target, "DELETE FROM cdrs WHERE id = $1", &["c2"])
            .await
            .unwrap();
        target.close().await;
        let mut out = Vec::new();
        assert_eq!(
            run(&args(true), &from, &mut out).await.unwrap(),
            ExitCode::FAILURE
        );
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("they differ: cdrs: 3 rows"), "{text}");
        assert!(
            text.lines()
                .any(|l| l.starts_with("cdr_media_legs") && l.contains("differs: 4 rows")),
            "the legs went with their CDR: {text}"
        );
    }

    #[tokio::test]
    async fn a_missing_source_file_is_not_created() {
        let dir = tempfile::tempdir().unwrap();
        let from = format!("sqlite://{}/nothing.db", dir.path().display());
        let args = MigrateArgs {
            from: Some(from.clone()),
            to: "postgres://postgres@127.0.0.1:9/none".into(),
            check: false,
        };
        let err = run(&args, "sqlite://unused.db", &mut Vec::new())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("no SQLite database"), "{err}");
        assert!(!dir.path().join("nothing.db").exists());
    }
}

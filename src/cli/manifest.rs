//! `trunkguard manifest seal --day D` and `manifest verify` (`evidence::seal`,
//! `evidence::manifest_verify`, `evidence::proof`). Reports are JSON lines; `verify` exits with
//! status 1 when anything differs from the seal (or the day is not sealed).
//!
//! `manifest verify --file M.json --public-key P.pem [--package X.zip]` needs no database and no
//! configuration: it checks the manifest file's signatures, hash, Merkle root and counts, and
//! each call of the package against its inclusion proof (and against the manifest, when given).

use std::io::Write;
use std::path::PathBuf;

use chrono::NaiveDate;
use clap::{Args, Subcommand};
use serde::Serialize;

use super::CliError;
use crate::config::Config;
use crate::evidence::keys;
use crate::evidence::manifest::{self, ManifestFinding};
use crate::evidence::manifest_verify::{context_of, verify_day, verify_range};
use crate::evidence::proof::verify_package;
use crate::evidence::seal::{seal_day, ManifestError, SealContext};
use crate::store::Store;

fn day_value(value: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(value, "%Y-%m-%d").map_err(|e| format!("not a YYYY-MM-DD day: {e}"))
}

#[derive(Debug, Subcommand)]
pub enum ManifestCommand {
    /// Seal a UTC day: sign the manifest of its CDRs, recordings, retention deletions and hold
    /// changes, store it and write it under [evidence] dir. A day that has ended is sealed
    /// once; today is sealed so far (superseded by its final seal).
    Seal {
        /// The day, YYYY-MM-DD (UTC).
        #[arg(long, value_parser = day_value)]
        day: NaiveDate,
    },
    /// Recompute a sealed day from the database and the files and name every difference; or,
    /// with --file and/or --package and --public-key, check a manifest file and an evidence
    /// package without any database.
    Verify(ManifestVerifyArgs),
}

#[derive(Debug, Clone, Args)]
pub struct ManifestVerifyArgs {
    /// One day, YYYY-MM-DD.
    #[arg(long, value_parser = day_value, conflicts_with_all = ["from", "to", "file", "package"])]
    pub day: Option<NaiveDate>,
    /// The first day of a range (with --to).
    #[arg(long, value_parser = day_value, requires = "to", conflicts_with_all = ["file", "package"])]
    pub from: Option<NaiveDate>,
    /// The last day of a range, included (with --from).
    #[arg(long, value_parser = day_value, requires = "from")]
    pub to: Option<NaiveDate>,
    /// A manifest file (no database: with --public-key).
    #[arg(long, requires = "public_key")]
    pub file: Option<PathBuf>,
    /// An evidence package: each call's inclusion proof (with --public-key).
    #[arg(long, requires = "public_key")]
    pub package: Option<PathBuf>,
    /// The deployment's public key (PEM, `trunkguard keys public`).
    #[arg(long)]
    pub public_key: Option<PathBuf>,
}

impl ManifestVerifyArgs {
    /// Whether this is the check of files alone (no database, no configuration).
    pub fn offline(&self) -> bool {
        self.file.is_some() || self.package.is_some()
    }
}

fn line(out: &mut impl Write, value: &impl Serialize) -> Result<(), CliError> {
    serde_json::to_writer(&mut *out, value)
        .map_err(std::io::Error::from)
        .and_then(|()| out.write_all(b"\n"))
        .map_err(|e| CliError::io("writing the report", e))
}

fn evidence_error(e: ManifestError) -> CliError {
    match e {
        ManifestError::Store(e) => CliError::Store(e),
        other => CliError::Evidence(other.to_string()),
    }
}

/// `manifest seal --day D`.
pub async fn seal(
    store: &Store,
    config: &Config,
    day: NaiveDate,
    out: &mut impl Write,
) -> Result<(), CliError> {
    let path = super::keys::key_path(None, config)?;
    let key = tokio::task::spawn_blocking(move || keys::load(&path))
        .await
        .map_err(|e| CliError::io("reading the signing key", std::io::Error::other(e)))?
        .map_err(|e| CliError::Evidence(e.to_string()))?;
    let ctx = SealContext {
        key,
        evidence_dir: config.evidence.dir.clone(),
        recordings_dir: super::recording::recordings_dir(config),
    };
    let sealed = seal_day(store, &ctx, day, chrono::Utc::now())
        .await
        .map_err(evidence_error)?;
    let b = &sealed.manifest.body;
    line(
        out,
        &serde_json::json!({
            "day": b.day,
            "final": b.is_final,
            "sealed_at": b.sealed_at,
            "covers_to": b.covers_to,
            "in_progress": b.in_progress,
            "manifest_sha256": sealed.manifest.manifest_sha256,
            "prev_manifest_sha256": b.prev_manifest_sha256,
            "merkle_root": b.merkle_root,
            "counts": b.counts,
            "problems": b.problems,
            "file": sealed.file.display().to_string(),
        }),
    )
}

/// `manifest verify --day D | --from D --to D` against the database; true when intact.
pub async fn verify(
    store: &Store,
    config: &Config,
    args: &ManifestVerifyArgs,
    out: &mut impl Write,
) -> Result<bool, CliError> {
    let evidence = config.evidence.clone();
    let dir = super::recording::recordings_dir(config);
    let mut ctx = tokio::task::spawn_blocking(move || context_of(&evidence, &dir))
        .await
        .map_err(|e| CliError::io("reading the signing key", std::io::Error::other(e)))?
        .map_err(evidence_error)?;
    if let Some(path) = &args.public_key {
        ctx.public_key =
            Some(keys::load_public(path).map_err(|e| CliError::Evidence(e.to_string()))?);
    }
    match (args.day, args.from, args.to) {
        (Some(day), None, None) => {
            let report = verify_day(store, &ctx, day).await.map_err(evidence_error)?;
            line(out, &report)?;
            Ok(report.ok)
        }
        (None, Some(from), Some(to)) if from <= to => {
            let reports = verify_range(store, &ctx, from, to)
                .await
                .map_err(evidence_error)?;
            let mut intact = true;
            for r in &reports {
                intact &= !r.sealed || r.ok;
                line(out, r)?;
            }
            Ok(intact)
        }
        (None, Some(_), Some(_)) => Err(CliError::Usage("--from is after --to".into())),
        _ => Err(CliError::Usage(
            "name a day (--day), a range (--from and --to), or a file (--file, --package) with \
             --public-key"
                .into(),
        )),
    }
}

/// What the check of a manifest file found.
#[derive(Serialize)]
struct FileReport {
    file: String,
    day: String,
    #[serde(rename = "final")]
    is_final: bool,
    manifest_sha256: String,
    leaves: u64,
    ok: bool,
    findings: Vec<ManifestFinding>,
}

/// `manifest verify --file M.json --public-key P.pem [--package X.zip]`: no database (blocking
/// file reads; the files are small but for the package, read whole).
pub fn verify_offline(args: &ManifestVerifyArgs, out: &mut impl Write) -> Result<bool, CliError> {
    let Some(key_path) = &args.public_key else {
        return Err(CliError::Usage(
            "--public-key is required to check files".into(),
        ));
    };
    let key = keys::load_public(key_path).map_err(|e| CliError::Evidence(e.to_string()))?;
    let mut intact = true;
    let mut manifest = None;
    if let Some(file) = &args.file {
        let text = std::fs::read_to_string(file)
            .map_err(|e| CliError::io(format!("reading {}", file.display()), e))?;
        let m = manifest::parse(&text)
            .map_err(|e| CliError::Evidence(format!("{}: not a manifest: {e}", file.display())))?;
        let findings = manifest::check(&m, &key);
        intact &= findings.is_empty();
        line(
            out,
            &FileReport {
                file: file.display().to_string(),
                day: m.body.day.clone(),
                is_final: m.body.is_final,
                manifest_sha256: m.manifest_sha256.clone(),
                leaves: m.body.entries.len() as u64,
                ok: findings.is_empty(),
                findings,
            },
        )?;
        manifest = Some(m);
    }
    if let Some(package) = &args.package {
        let bytes = std::fs::read(package)
            .map_err(|e| CliError::io(format!("reading {}", package.display()), e))?;
        let reports = verify_package(&bytes, &key, manifest.as_ref())
            .map_err(|e| CliError::Evidence(format!("{}: {e}", package.display())))?;
        if reports.is_empty() {
            return Err(CliError::Evidence(format!(
                "{}: no call in the package",
                package.display()
            )));
        }
        for r in &reports {
            intact &= r.ok;
            line(out, r)?;
        }
    }
    Ok(intact)
}

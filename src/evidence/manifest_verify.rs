//! `trunkguard manifest verify --day D` (and `--from/--to`, and the API): a sealed day
//! recomputed from the database and the recording files and compared with its manifest. Every
//! difference is named: which CDR was altered, deleted or added after the seal, which recording
//! was replaced, deleted or had its row edited, which retention or hold row changed, whether
//! the audit chains still hold the sealed heads, whether the manifest itself (row, file,
//! signature) is intact and follows the previous one.
//!
//! A partial seal (today so far) covers the CDRs stored by its cut-off (`covers_to`). A CDR of
//! the window that it does not hold is reported under `after_seal`, not as added, when its call
//! was in progress at the seal (the manifest names those, `in_progress`) or ended at or after
//! the cut-off; one that ended before it and was not in progress is `cdr_added` (a CDR inserted
//! afterwards, dated before the seal). Such a call's recording row is after the seal too.
//!
//! A CDR or recording deleted after the seal by the retention purge is not tampering: the purge
//! logs each deletion (`retention_log`), and such a deletion is listed under `retention`. (The
//! log is append-only for the gateway; a deletion "excused" by a row someone added to it by
//! hand would still show in the manifest of the day that row claims to be written on.)
//!
//! This file holds the entry points and the order of the checks; `manifest_verify/report.rs`
//! the report and its findings, `manifest_verify/manifest_checks.rs` the checks of the manifest
//! itself (its row, its file copy, its chain, the audit chains' heads) and
//! `manifest_verify/content.rs` the day's content against it (CDRs, recordings, retention and
//! hold rows).

use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use ed25519_dalek::VerifyingKey;

use super::manifest::{check, key_of_fingerprint, ManifestFinding};
use super::seal::{current_manifest, day_text, signed_of_row, ManifestError};
use crate::store::{Store, StoredManifest};

mod content;
mod manifest_checks;
mod report;

use content::check_content;
use manifest_checks::{check_chain, check_file, check_heads, row_matches_body};
pub use report::{AfterSeal, DayReport, Finding, RetentionNote};

/// What verification needs beside the store.
#[derive(Debug, Clone)]
pub struct VerifyContext {
    /// `[recording] dir`.
    pub recordings_dir: PathBuf,
    /// `[evidence] dir`.
    pub evidence_dir: PathBuf,
    /// The deployment's public key; `None`: the key the manifest names is used (its signature
    /// then proves only that the manifest is whole, not whose it is).
    pub public_key: Option<VerifyingKey>,
}

/// Verifies `day`'s current manifest (final, else the latest partial).
pub async fn verify_day(
    store: &Store,
    ctx: &VerifyContext,
    day: NaiveDate,
) -> Result<DayReport, ManifestError> {
    let text = day_text(day);
    let Some(row) = current_manifest(store, &text).await? else {
        return Ok(DayReport::unsealed(&text));
    };
    verify_row(store, ctx, &row).await
}

/// Verifies every day of `from..=to` that has a manifest; a day without one is reported
/// unsealed (a deleted manifest shows as the next one's broken chain).
pub async fn verify_range(
    store: &Store,
    ctx: &VerifyContext,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<DayReport>, ManifestError> {
    let mut reports = Vec::new();
    let mut day = from;
    while day <= to {
        reports.push(verify_day(store, ctx, day).await?);
        let Some(next) = day.succ_opt() else { break };
        day = next;
    }
    Ok(reports)
}

async fn verify_row(
    store: &Store,
    ctx: &VerifyContext,
    row: &StoredManifest,
) -> Result<DayReport, ManifestError> {
    let m = &row.manifest;
    let mut report = DayReport::unsealed(&m.day);
    report.sealed = true;
    report.is_final = m.is_final;
    report.manifest_sha256 = Some(m.manifest_sha256.clone());
    let signed = match signed_of_row(m) {
        Ok(s) => s,
        Err(e) => {
            report.findings.push(Finding::Manifest {
                finding: ManifestFinding::Unreadable {
                    reason: e.to_string(),
                },
            });
            return Ok(report);
        }
    };
    report.sealed_at = Some(signed.body.sealed_at.clone());
    let (key, whose) = match (
        ctx.public_key,
        key_of_fingerprint(&signed.body.key_fingerprint),
    ) {
        (Some(k), _) => (Some(k), "configured"),
        (None, k) => (k, "manifest"),
    };
    report.key = whose.to_string();
    match key {
        Some(key) => report.findings.extend(
            check(&signed, &key)
                .into_iter()
                .map(|finding| Finding::Manifest { finding }),
        ),
        None => report.findings.push(Finding::Manifest {
            finding: ManifestFinding::BadSignature,
        }),
    }
    row_matches_body(m, &signed, &mut report.findings);
    check_file(ctx, m, &signed, &mut report.findings).await;
    if m.is_final {
        check_chain(store, &signed, &mut report.findings).await?;
    }
    check_heads(store, &signed, &mut report.findings).await?;
    check_content(store, ctx, &signed, &mut report).await?;
    report.ok = report.findings.is_empty();
    Ok(report)
}

/// The verification context from the configuration: the public half of `[evidence]
/// signing_key` when one is set (blocking: reads the key file).
pub fn context_of(
    evidence: &crate::config::EvidenceConfig,
    recordings_dir: &Path,
) -> Result<VerifyContext, ManifestError> {
    let public_key = match &evidence.signing_key {
        Some(path) => Some(super::keys::load(path)?.verifying_key()),
        None => None,
    };
    Ok(VerifyContext {
        recordings_dir: recordings_dir.to_path_buf(),
        evidence_dir: evidence.dir.clone(),
        public_key,
    })
}

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

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use ed25519_dalek::VerifyingKey;
use serde::Serialize;
use utoipa::ToSchema;

use super::canonical::time;
use super::manifest::{check, key_of_fingerprint, Entry, ManifestFinding, SignedManifest};
use super::seal::{
    collect, current_manifest, day_text, file_state, hold_entry, retention_entry, signed_of_row,
    FileState, ManifestError,
};
use crate::store::chain::{ChainedLog, GENESIS};
use crate::store::{DayRecording, Store, StoreError, StoredManifest};

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

/// One difference between a sealed day and what the database and the files hold now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Finding {
    /// The manifest itself (see `ManifestFinding`).
    Manifest { finding: ManifestFinding },
    /// The manifest's row says otherwise than its signed body (day, final, links).
    ManifestRowEdited { column: String },
    /// The file copy under `[evidence] dir` is missing.
    ManifestFileMissing { path: String },
    /// The file copy differs from the database's.
    ManifestFileDiffers { path: String },
    /// The manifest does not follow the final manifest of the previous sealed day.
    ChainBroken {
        previous_day: Option<String>,
        expected: String,
        found: String,
    },
    /// A sealed chain head is no longer a link of its log: rows were deleted or rewritten.
    ChainHeadMissing { log: String, head_id: i64 },
    /// The CDR's content is not what was sealed.
    CdrAltered {
        id: String,
        sealed_sha256: String,
        found_sha256: String,
    },
    /// A sealed CDR is gone and no retention purge logged its deletion.
    CdrDeleted { id: String },
    /// A CDR of the day that was not sealed.
    CdrAdded { id: String, invite_at: String },
    /// The recording file's bytes are not the sealed digest's.
    RecordingReplaced {
        call_id: String,
        file: String,
        sealed_sha256: String,
        found_sha256: String,
    },
    /// The recording file is gone and its row does not say it was purged.
    RecordingFileDeleted { call_id: String, file: String },
    /// The recording file cannot be read.
    RecordingFileUnreadable {
        call_id: String,
        file: String,
        reason: String,
    },
    /// The recording's row differs from the seal (its digest, status or purge time).
    RecordingRowEdited {
        call_id: String,
        column: String,
        sealed: Option<String>,
        found: Option<String>,
    },
    /// The recording's row is gone and no retention purge logged it.
    RecordingRowDeleted { call_id: String },
    /// The row says purged, but the retention log does not.
    RecordingPurgedUnlogged { call_id: String },
    /// A recording row of the day that was not sealed.
    RecordingAdded { call_id: String },
    /// A retention log row of the day was deleted, edited or added.
    RetentionLogChanged { id: i64, change: String },
    /// A legal-hold change of the day was deleted, edited or added.
    HoldChanged {
        hold_id: i64,
        event: String,
        change: String,
    },
}

/// A deletion after the seal that the retention purge logged: not tampering.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct RetentionNote {
    pub call_id: String,
    /// `cdr` or `recording`.
    pub deleted: String,
    pub at: String,
}

/// A CDR stored after a partial seal: its call was in progress at the seal, or ended after it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct AfterSeal {
    pub id: String,
    pub invite_at: String,
    pub end_at: String,
    /// The manifest named the call as in progress at the seal.
    pub in_progress: bool,
}

/// One day's verification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct DayReport {
    pub day: String,
    /// Whether the day has a manifest; the rest is empty when not.
    pub sealed: bool,
    /// The manifest checked is a final seal (else the day's latest partial seal).
    #[serde(rename = "final")]
    pub is_final: bool,
    pub sealed_at: Option<String>,
    pub manifest_sha256: Option<String>,
    /// `configured` (the deployment's key) or `manifest` (the key the manifest names).
    pub key: String,
    pub cdrs: u64,
    pub recordings: u64,
    /// No finding.
    pub ok: bool,
    pub findings: Vec<Finding>,
    pub retention: Vec<RetentionNote>,
    /// A partial seal's calls whose CDRs came after it (not tampering).
    pub after_seal: Vec<AfterSeal>,
}

impl DayReport {
    fn unsealed(day: &str) -> DayReport {
        DayReport {
            day: day.to_string(),
            sealed: false,
            is_final: false,
            sealed_at: None,
            manifest_sha256: None,
            key: String::new(),
            cdrs: 0,
            recordings: 0,
            ok: false,
            findings: Vec::new(),
            retention: Vec::new(),
            after_seal: Vec::new(),
        }
    }
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

fn row_matches_body(
    m: &crate::store::NewManifest,
    s: &SignedManifest,
    findings: &mut Vec<Finding>,
) {
    let b = &s.body;
    for (column, same) in [
        ("day", m.day == b.day),
        ("is_final", m.is_final == b.is_final),
        ("prev_sha256", m.prev_sha256 == b.prev_manifest_sha256),
        ("merkle_root", m.merkle_root == b.merkle_root),
        ("key_fingerprint", m.key_fingerprint == b.key_fingerprint),
        ("sealed_at", time(m.sealed_at) == b.sealed_at),
    ] {
        if !same {
            findings.push(Finding::ManifestRowEdited {
                column: column.to_string(),
            });
        }
    }
}

async fn check_file(
    ctx: &VerifyContext,
    m: &crate::store::NewManifest,
    s: &SignedManifest,
    findings: &mut Vec<Finding>,
) {
    let Some(relative) = &m.file else {
        return;
    };
    let path = ctx.evidence_dir.join(relative);
    match tokio::fs::read_to_string(&path).await {
        Err(_) => findings.push(Finding::ManifestFileMissing {
            path: relative.clone(),
        }),
        Ok(text) => {
            let same = super::manifest::parse(&text).is_ok_and(|f| {
                f.body.canonical() == s.body.canonical()
                    && f.signature == s.signature
                    && f.manifest_sha256 == s.manifest_sha256
            });
            if !same {
                findings.push(Finding::ManifestFileDiffers {
                    path: relative.clone(),
                });
            }
        }
    }
}

async fn check_chain(
    store: &Store,
    s: &SignedManifest,
    findings: &mut Vec<Finding>,
) -> Result<(), StoreError> {
    let prev = store.final_manifest_before(Some(&s.body.day)).await?;
    let expected = prev.as_ref().map_or_else(
        || GENESIS.to_string(),
        |p| p.manifest.manifest_sha256.clone(),
    );
    // The previous row's hash as stored must also be its body's (else the row was rewritten).
    let prev_recomputed = prev
        .as_ref()
        .and_then(|p| signed_of_row(&p.manifest).ok())
        .map(|p| p.body.sha256());
    let broken = s.body.prev_manifest_sha256 != expected
        || prev_recomputed.is_some_and(|r| r != expected)
        || s.body.prev_day != prev.as_ref().map(|p| p.manifest.day.clone());
    if broken {
        findings.push(Finding::ChainBroken {
            previous_day: prev.map(|p| p.manifest.day),
            expected,
            found: s.body.prev_manifest_sha256.clone(),
        });
    }
    Ok(())
}

async fn check_heads(
    store: &Store,
    s: &SignedManifest,
    findings: &mut Vec<Finding>,
) -> Result<(), StoreError> {
    for head in &s.body.chains {
        let Some(id) = head.head_id else { continue };
        let log = match head.log.as_str() {
            "audit_log" => ChainedLog::Audit,
            "enforcement_log" => ChainedLog::Enforcement,
            _ => continue,
        };
        if !store.chain_has_link(log, id, &head.head_sha256).await? {
            findings.push(Finding::ChainHeadMissing {
                log: head.log.clone(),
                head_id: id,
            });
        }
    }
    Ok(())
}

/// The retention purge's deletion of a call's `what` (`cdr` or `recording`), if logged.
async fn purged(
    store: &Store,
    call_id: &str,
    what: &str,
) -> Result<Option<RetentionNote>, StoreError> {
    Ok(store
        .retention_entries(Some(call_id), 100)
        .await?
        .into_iter()
        .find(|e| e.kind == what)
        .map(|e| RetentionNote {
            call_id: call_id.to_string(),
            deleted: what.to_string(),
            at: time(e.at),
        }))
}

async fn check_content(
    store: &Store,
    ctx: &VerifyContext,
    s: &SignedManifest,
    report: &mut DayReport,
) -> Result<(), ManifestError> {
    let b = &s.body;
    let parse = |t: &str| {
        chrono::DateTime::parse_from_rfc3339(t)
            .map(|t| t.with_timezone(&chrono::Utc))
            .map_err(|e| ManifestError::Unreadable {
                day: b.day.clone(),
                reason: format!("time {t:?}: {e}"),
            })
    };
    let now = collect(store, parse(&b.covers_from)?, parse(&b.covers_to)?).await?;
    report.cdrs = now.cdrs.len() as u64;
    report.recordings = now.recordings.len() as u64;
    let findings = &mut report.findings;

    // CDRs.
    let found: BTreeMap<&str, &super::seal::CdrFact> =
        now.cdrs.iter().map(|c| (c.id.as_str(), c)).collect();
    let mut sealed_ids = BTreeSet::new();
    let mut cdrs_purged = BTreeSet::new();
    for e in &b.entries {
        let Entry::Cdr { id, sha256, .. } = e else {
            continue;
        };
        sealed_ids.insert(id.as_str());
        match found.get(id.as_str()) {
            Some(c) if c.sha256 == *sha256 => {}
            Some(c) => findings.push(Finding::CdrAltered {
                id: id.clone(),
                sealed_sha256: sha256.clone(),
                found_sha256: c.sha256.clone(),
            }),
            None => match purged(store, id, "cdr").await? {
                Some(note) => {
                    cdrs_purged.insert(id.clone());
                    report.retention.push(note);
                }
                None => findings.push(Finding::CdrDeleted { id: id.clone() }),
            },
        }
    }
    let cut_off = parse(&b.covers_to)?;
    let mut later = BTreeSet::new();
    for c in &now.cdrs {
        if sealed_ids.contains(c.id.as_str()) {
            continue;
        }
        let in_progress = b.in_progress.contains(&c.id);
        if !b.is_final && (in_progress || c.end_at >= cut_off) {
            later.insert(c.id.as_str());
            report.after_seal.push(AfterSeal {
                id: c.id.clone(),
                invite_at: time(c.invite_at),
                end_at: time(c.end_at),
                in_progress,
            });
        } else {
            findings.push(Finding::CdrAdded {
                id: c.id.clone(),
                invite_at: time(c.invite_at),
            });
        }
    }

    // Recordings.
    let rows: BTreeMap<&str, &DayRecording> = now
        .recordings
        .iter()
        .map(|r| (r.call_id.as_str(), r))
        .collect();
    let known: BTreeSet<(&str, &str)> = b
        .problems
        .iter()
        .map(|p| (p.call_id.as_str(), p.file.as_str()))
        .collect();
    let mut sealed_recordings = BTreeSet::new();
    let mut to_hash: Vec<(String, &'static str, String, String)> = Vec::new();
    for e in &b.entries {
        let Entry::Recording {
            call_id,
            status,
            wav_sha256,
            pcap_sha256,
            purged_at,
            pauses,
        } = e
        else {
            continue;
        };
        sealed_recordings.insert(call_id.as_str());
        let Some(r) = rows.get(call_id.as_str()) else {
            if !cdrs_purged.contains(call_id) {
                findings.push(Finding::RecordingRowDeleted {
                    call_id: call_id.clone(),
                });
            }
            continue;
        };
        let mut edited = |column: &str, sealed: &Option<String>, found: &Option<String>| {
            if sealed != found {
                findings.push(Finding::RecordingRowEdited {
                    call_id: call_id.clone(),
                    column: column.to_string(),
                    sealed: sealed.clone(),
                    found: found.clone(),
                });
            }
        };
        edited("sha256", wav_sha256, &r.sha256);
        edited("pcap_sha256", pcap_sha256, &r.pcap_sha256);
        edited("status", &Some(status.clone()), &Some(r.status.clone()));
        if *pauses != r.pauses {
            let show = |p: &[crate::model::RecordingPause]| serde_json::to_string(p).ok();
            findings.push(Finding::RecordingRowEdited {
                call_id: call_id.clone(),
                column: "pauses".into(),
                sealed: show(pauses),
                found: show(&r.pauses),
            });
        }
        match (purged_at, r.purged_at) {
            (None, Some(_)) => match purged(store, call_id, "recording").await? {
                Some(note) => report.retention.push(note),
                None => findings.push(Finding::RecordingPurgedUnlogged {
                    call_id: call_id.clone(),
                }),
            },
            (Some(_), None) => findings.push(Finding::RecordingRowEdited {
                call_id: call_id.clone(),
                column: "purged_at".into(),
                sealed: purged_at.clone(),
                found: None,
            }),
            (Some(_), Some(_)) => {}
            (None, None) => {
                for (file, path, sha) in [
                    ("wav", &r.path, wav_sha256),
                    ("pcap", &r.pcap_path, pcap_sha256),
                ] {
                    if let (Some(path), Some(sha)) = (path, sha) {
                        if !known.contains(&(call_id.as_str(), file)) {
                            to_hash.push((call_id.clone(), file, path.clone(), sha.clone()));
                        }
                    }
                }
            }
        }
    }
    for r in &now.recordings {
        if !sealed_recordings.contains(r.call_id.as_str()) && !later.contains(r.call_id.as_str()) {
            findings.push(Finding::RecordingAdded {
                call_id: r.call_id.clone(),
            });
        }
    }
    let root = ctx.recordings_dir.clone();
    let states = tokio::task::spawn_blocking(move || {
        to_hash
            .into_iter()
            .map(|(call_id, file, path, sha)| {
                let state = file_state(&root, &path);
                (call_id, file, sha, state)
            })
            .collect::<Vec<_>>()
    })
    .await
    .map_err(|e| ManifestError::Join(e.to_string()))?;
    for (call_id, file, sealed, state) in states {
        let file = file.to_string();
        match state {
            FileState::Sha256(found) if found.eq_ignore_ascii_case(&sealed) => {}
            FileState::Sha256(found) => findings.push(Finding::RecordingReplaced {
                call_id,
                file,
                sealed_sha256: sealed,
                found_sha256: found,
            }),
            FileState::Missing => findings.push(Finding::RecordingFileDeleted { call_id, file }),
            FileState::Unreadable(reason) => findings.push(Finding::RecordingFileUnreadable {
                call_id,
                file,
                reason,
            }),
        }
    }

    // The retention log and the hold changes of the window.
    let sealed: BTreeMap<i64, &Entry> = b
        .entries
        .iter()
        .filter_map(|e| match e {
            Entry::Retention { id, .. } => Some((*id, e)),
            _ => None,
        })
        .collect();
    let current: BTreeMap<i64, Entry> = now
        .retention
        .iter()
        .map(|r| (r.id, retention_entry(r)))
        .collect();
    for (id, change) in changes(&sealed, &current) {
        findings.push(Finding::RetentionLogChanged { id, change });
    }
    let sealed: BTreeMap<(i64, String), &Entry> = b
        .entries
        .iter()
        .filter_map(|e| match e {
            Entry::Hold { hold_id, event, .. } => Some(((*hold_id, event.clone()), e)),
            _ => None,
        })
        .collect();
    let current: BTreeMap<(i64, String), Entry> = now
        .holds
        .iter()
        .map(|h| ((h.hold_id, h.event.to_string()), hold_entry(h)))
        .collect();
    for ((hold_id, event), change) in changes(&sealed, &current) {
        findings.push(Finding::HoldChanged {
            hold_id,
            event,
            change,
        });
    }
    Ok(())
}

/// Keys deleted, edited or added between the sealed entries and the current ones.
fn changes<K: Ord + Clone>(
    sealed: &BTreeMap<K, &Entry>,
    current: &BTreeMap<K, Entry>,
) -> Vec<(K, String)> {
    let mut out = Vec::new();
    for (k, e) in sealed {
        match current.get(k) {
            None => out.push((k.clone(), "deleted".to_string())),
            Some(c) if c != *e => out.push((k.clone(), "edited".to_string())),
            Some(_) => {}
        }
    }
    for k in current.keys() {
        if !sealed.contains_key(k) {
            out.push((k.clone(), "added".to_string()));
        }
    }
    out
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

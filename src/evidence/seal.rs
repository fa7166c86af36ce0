//! Sealing a UTC day (issue 17): read what the day holds (`collect`), sign it
//! (`manifest::sign`), store the manifest in the database and write it as a file under
//! `[evidence] dir` (`manifests/<day>.json`; a partial seal of today
//! `manifests/<day>.partial-<time>.json`).
//!
//! Rules: a day that has ended is sealed once (final); a seal of today so far is partial and
//! superseded by the final one; the chain of manifests follows final seals in day order, so a
//! day older than the newest final seal cannot be sealed any more; a final seal waits until
//! none of the day's calls is still in progress (their CDRs would otherwise arrive after it).
//! A day is the CDRs whose INVITE falls in it (as searches and the retention purge count
//! them), and the retention log and hold changes written in it. A partial seal covers up to its
//! cut-off (`covers_to`, the seal's time) and names the calls then still in progress
//! (`in_progress`): their CDRs, stored later, are reported by `manifest verify` as after the
//! seal, not as added.

use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, Utc};
use ed25519_dalek::SigningKey;

use super::canonical::{self, time};
use super::manifest::{sign, ChainHead, Counts, Entry, ManifestBody, SealProblem, SignedManifest};
use crate::recording::digest::sha256_file;
use crate::recording::paths;
use crate::store::chain::{ChainedLog, GENESIS};
use crate::store::{DayRecording, HoldEvent, NewManifest, RetentionEntry, Store, StoreError};

/// Rows read per page.
const PAGE: u32 = 1_000;
/// The folder under `[evidence] dir` that holds the manifests.
pub const MANIFESTS: &str = "manifests";

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{day} is sealed already (a final seal is never replaced)")]
    AlreadySealed { day: NaiveDate },
    #[error("{day} has not ended and cannot be sealed before it starts")]
    Future { day: NaiveDate },
    #[error(
        "{day} cannot be sealed: {newest} is sealed already and the chain of manifests only \
         grows forward"
    )]
    OutOfOrder { day: NaiveDate, newest: String },
    #[error("{day}: {calls} of its calls are still in progress; seal it once they have ended")]
    InProgress { day: NaiveDate, calls: usize },
    #[error("{day} is not sealed")]
    NotSealed { day: String },
    #[error("manifest of {day}: {reason}")]
    Unreadable { day: String, reason: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Key(#[from] super::keys::KeyError),
    #[error("a blocking task failed: {0}")]
    Join(String),
}

/// What sealing needs beside the store.
#[derive(Clone)]
pub struct SealContext {
    pub key: SigningKey,
    /// `[evidence] dir`.
    pub evidence_dir: PathBuf,
    /// `[recording] dir`: stored recording paths are relative to it.
    pub recordings_dir: PathBuf,
}

/// A day's bounds in UTC: `[00:00, next day 00:00)`.
pub fn day_bounds(day: NaiveDate) -> (DateTime<Utc>, DateTime<Utc>) {
    let start = day.and_time(chrono::NaiveTime::MIN).and_utc();
    (start, start + chrono::Duration::days(1))
}

/// A CDR as sealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CdrFact {
    pub id: String,
    pub invite_at: DateTime<Utc>,
    /// When the call ended (not sealed: tells a call that ended after a partial seal).
    pub end_at: DateTime<Utc>,
    pub sha256: String,
}

/// What the database holds of a window of a day.
#[derive(Debug, Clone, Default)]
pub(crate) struct DayContent {
    pub cdrs: Vec<CdrFact>,
    pub recordings: Vec<DayRecording>,
    pub retention: Vec<RetentionEntry>,
    pub holds: Vec<HoldEvent>,
}

/// Reads the CDRs (INVITE in `[from, to)`), their recordings, the retention log and the hold
/// changes of `[from, to)`.
pub(crate) async fn collect(
    store: &Store,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<DayContent, StoreError> {
    let mut content = DayContent::default();
    let mut after: Option<(DateTime<Utc>, String)> = None;
    loop {
        let page = store.cdrs_between(from, to, after.as_ref(), PAGE).await?;
        for c in &page {
            content.cdrs.push(CdrFact {
                id: c.attempt.id.clone(),
                invite_at: c.attempt.invite_at,
                end_at: c.outcome.end_at,
                sha256: canonical::cdr_sha256(&c.attempt, &c.outcome),
            });
        }
        match page.last() {
            Some(last) if page.len() == PAGE as usize => {
                after = Some((last.attempt.invite_at, last.attempt.id.clone()))
            }
            _ => break,
        }
    }
    let mut after: Option<(DateTime<Utc>, String)> = None;
    loop {
        let page = store
            .recordings_between(from, to, after.as_ref(), PAGE)
            .await?;
        let full = page.len() == PAGE as usize;
        after = page.last().map(|r| (r.invite_at, r.call_id.clone()));
        content.recordings.extend(page);
        if !full {
            break;
        }
    }
    content.retention = store.retention_between(from, to).await?;
    content.holds = store.hold_events_between(from, to).await?;
    Ok(content)
}

/// A recording row as sealed.
pub(crate) fn recording_entry(r: &DayRecording) -> Entry {
    Entry::Recording {
        call_id: r.call_id.clone(),
        status: r.status.clone(),
        wav_sha256: r.sha256.clone(),
        pcap_sha256: r.pcap_sha256.clone(),
        purged_at: r.purged_at.map(time),
        pauses: r.pauses.clone(),
    }
}

pub(crate) fn retention_entry(r: &RetentionEntry) -> Entry {
    Entry::Retention {
        id: r.id,
        at: time(r.at),
        deleted: r.kind.clone(),
        call_id: r.call_id.clone(),
        file: r.file.clone(),
        note: r.note.clone(),
    }
}

pub(crate) fn hold_entry(h: &HoldEvent) -> Entry {
    Entry::Hold {
        hold_id: h.hold_id,
        call_id: h.call_id.clone(),
        event: h.event.to_string(),
        at: time(h.at),
        by: h.by.clone(),
        reason: h.reason.clone(),
    }
}

impl DayContent {
    /// The leaves, in the tree's order.
    pub(crate) fn entries(&self) -> Vec<Entry> {
        let mut entries: Vec<Entry> = self
            .cdrs
            .iter()
            .map(|c| Entry::Cdr {
                id: c.id.clone(),
                invite_at: time(c.invite_at),
                sha256: c.sha256.clone(),
            })
            .collect();
        entries.extend(self.recordings.iter().map(recording_entry));
        entries.extend(self.retention.iter().map(retention_entry));
        entries.extend(self.holds.iter().map(hold_entry));
        entries
    }
}

/// The state of one recording file now: its SHA-256, or why there is none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FileState {
    Sha256(String),
    Missing,
    Unreadable(String),
}

/// Hashes a stored recording file (blocking).
pub(crate) fn file_state(root: &Path, stored: &str) -> FileState {
    let path = paths::resolve(root, Path::new(stored));
    match sha256_file(&path) {
        Ok(sha) => FileState::Sha256(sha),
        Err(_) if !path.exists() => FileState::Missing,
        Err(e) => FileState::Unreadable(e.to_string()),
    }
}

/// The recording files not purged that do not match their stored digests (blocking: reads
/// every file).
fn seal_problems(root: &Path, recordings: &[DayRecording]) -> Vec<SealProblem> {
    let mut problems = Vec::new();
    for r in recordings.iter().filter(|r| r.purged_at.is_none()) {
        for (file, path, sha) in [
            ("wav", &r.path, &r.sha256),
            ("pcap", &r.pcap_path, &r.pcap_sha256),
        ] {
            let Some(path) = path else { continue };
            let problem = match (file_state(root, path), sha) {
                (FileState::Sha256(found), Some(stored)) if found.eq_ignore_ascii_case(stored) => {
                    continue
                }
                (FileState::Sha256(_), _) => "differs",
                (FileState::Missing, _) => "missing",
                (FileState::Unreadable(_), _) => "unreadable",
            };
            problems.push(SealProblem {
                call_id: r.call_id.clone(),
                file: file.to_string(),
                problem: problem.to_string(),
            });
        }
    }
    problems
}

/// The ids of the calls of `[from, to)` still in progress (journaled, no CDR yet), sorted.
async fn in_progress(
    store: &Store,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<String>, StoreError> {
    let mut ids: Vec<String> = store
        .journaled_calls()
        .await?
        .into_iter()
        .filter_map(Result::ok)
        .filter(|c| c.cdr.attempt.invite_at >= from && c.cdr.attempt.invite_at < to)
        .map(|c| c.cdr.attempt.id)
        .collect();
    ids.sort();
    Ok(ids)
}

/// What a seal did.
#[derive(Debug, Clone)]
pub struct Sealed {
    pub id: i64,
    pub manifest: SignedManifest,
    /// The file written, under `[evidence] dir`.
    pub file: PathBuf,
}

/// The day as `YYYY-MM-DD`.
pub fn day_text(day: NaiveDate) -> String {
    day.format("%Y-%m-%d").to_string()
}

/// Seals `day` at `now`: final when the day has ended, else partial (today so far).
pub async fn seal_day(
    store: &Store,
    ctx: &SealContext,
    day: NaiveDate,
    now: DateTime<Utc>,
) -> Result<Sealed, ManifestError> {
    let (from, end) = day_bounds(day);
    if now < from {
        return Err(ManifestError::Future { day });
    }
    let is_final = now >= end;
    let text = day_text(day);
    let prev = store.final_manifest_before(Some(&text)).await?;
    if is_final {
        if store
            .manifests_of_day(&text)
            .await?
            .iter()
            .any(|m| m.manifest.is_final)
        {
            return Err(ManifestError::AlreadySealed { day });
        }
        if let Some(newest) = store.final_manifest_before(None).await? {
            if newest.manifest.day > text {
                return Err(ManifestError::OutOfOrder {
                    day,
                    newest: newest.manifest.day,
                });
            }
        }
        let calls = in_progress(store, from, end).await?.len();
        if calls > 0 {
            return Err(ManifestError::InProgress { day, calls });
        }
    }
    let now = crate::model::ms_precision(now);
    let to = if is_final { end } else { now };
    // Today so far: what is under way at the cut-off is named, its CDR comes later. (Read
    // before the CDRs: a call that ends in between is both listed and sealed, never neither.)
    let in_progress = if is_final {
        Vec::new()
    } else {
        in_progress(store, from, to).await?
    };
    let content = collect(store, from, to).await?;
    let mut chains = Vec::new();
    for log in ChainedLog::ALL {
        let (head_id, head_sha256) = store.chain_head(log).await?;
        chains.push(ChainHead {
            log: log.table().to_string(),
            head_id,
            head_sha256,
        });
    }
    let root = ctx.recordings_dir.clone();
    let recordings = content.recordings.clone();
    let problems = tokio::task::spawn_blocking(move || seal_problems(&root, &recordings))
        .await
        .map_err(|e| ManifestError::Join(e.to_string()))?;
    for p in &problems {
        tracing::warn!(day = %text, call_id = %p.call_id, file = %p.file, problem = %p.problem, "manifest: recording file does not match its stored digest at the seal");
    }
    let body = ManifestBody {
        format: String::new(),
        day: text.clone(),
        is_final,
        covers_from: time(from),
        covers_to: time(to),
        sealed_at: time(now),
        gateway_version: env!("CARGO_PKG_VERSION").to_string(),
        prev_manifest_sha256: prev.as_ref().map_or_else(
            || GENESIS.to_string(),
            |p| p.manifest.manifest_sha256.clone(),
        ),
        prev_day: prev.as_ref().map(|p| p.manifest.day.clone()),
        chains,
        counts: Counts::default(),
        problems,
        in_progress,
        entries: content.entries(),
        merkle_root: String::new(),
        key_fingerprint: String::new(),
        root_signature: String::new(),
    };
    let signed = sign(body, &ctx.key);
    let relative = if is_final {
        format!("{MANIFESTS}/{text}.json")
    } else {
        format!(
            "{MANIFESTS}/{text}.partial-{}.json",
            now.format("%H%M%S%3f")
        )
    };
    let row = NewManifest {
        day: text.clone(),
        is_final,
        sealed_at: now,
        manifest_sha256: signed.manifest_sha256.clone(),
        prev_sha256: signed.body.prev_manifest_sha256.clone(),
        merkle_root: signed.body.merkle_root.clone(),
        key_fingerprint: signed.body.key_fingerprint.clone(),
        signature: signed.signature.clone(),
        body: signed.body.canonical(),
        file: Some(relative.clone()),
    };
    // The row first: the database's unique final seal decides between two nodes racing.
    let Some(id) = store.insert_manifest(&row).await? else {
        return Err(ManifestError::AlreadySealed { day });
    };
    let file = ctx.evidence_dir.join(&relative);
    write_file(&file, &signed).await?;
    tracing::info!(day = %text, is_final, cdrs = signed.body.counts.cdrs, recordings = signed.body.counts.recordings, leaves = signed.body.counts.leaves, root = %signed.body.merkle_root, file = %file.display(), "manifest sealed");
    Ok(Sealed {
        id,
        manifest: signed,
        file,
    })
}

/// Writes a manifest file (pretty JSON) whole or not at all: a temporary file renamed.
pub async fn write_file(path: &Path, m: &SignedManifest) -> Result<(), ManifestError> {
    let mut text = serde_json::to_string_pretty(m).map_err(|e| ManifestError::Io {
        path: path.to_path_buf(),
        source: std::io::Error::other(e),
    })?;
    text.push('\n');
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || -> Result<(), ManifestError> {
        let io = |source| ManifestError::Io {
            path: path.clone(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let tmp = path.with_extension("json.tmp");
        {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp).map_err(io)?;
            f.write_all(text.as_bytes()).map_err(io)?;
            f.sync_all().map_err(io)?;
        }
        std::fs::rename(&tmp, &path).map_err(io)
    })
    .await
    .map_err(|e| ManifestError::Join(e.to_string()))?
}

/// The manifest that stands for `day` in the database: its final seal, else its latest
/// partial one.
pub async fn current_manifest(
    store: &Store,
    day: &str,
) -> Result<Option<crate::store::StoredManifest>, StoreError> {
    let all = store.manifests_of_day(day).await?;
    let final_seal = all.iter().position(|m| m.manifest.is_final);
    Ok(match final_seal {
        Some(i) => all.into_iter().nth(i),
        None => all.into_iter().last(),
    })
}

/// A stored row as the signed manifest it holds.
pub fn signed_of_row(row: &NewManifest) -> Result<SignedManifest, ManifestError> {
    let body: ManifestBody =
        serde_json::from_str(&row.body).map_err(|e| ManifestError::Unreadable {
            day: row.day.clone(),
            reason: e.to_string(),
        })?;
    Ok(SignedManifest {
        body,
        manifest_sha256: row.manifest_sha256.clone(),
        signature: row.signature.clone(),
    })
}

#[cfg(test)]
#[path = "seal_tests.rs"]
mod tests;

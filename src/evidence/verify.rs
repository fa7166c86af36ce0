//! `trunkguard verify PATH|CALL_ID`: is this file the recording that was made? The digest is
//! recomputed and compared with the one stored with the call's CDR when it was closed.

use std::path::{Path, PathBuf};

use crate::model::RecordingInfo;
use crate::store::{Store, StoreError};

use crate::recording::digest::{sha256_file, sha256_of};
use crate::recording::locate::OpenedRecording;
use crate::recording::paths;
use crate::recording::RecordingError;

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("no call {0} and no such file")]
    NotFound(String),
    #[error("call {0} has no recording file")]
    NoRecording(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Recording(#[from] RecordingError),
}

/// What a check found.
#[derive(Debug, Clone)]
pub struct Verdict {
    pub path: PathBuf,
    /// The call the file belongs to, when the store knows it.
    pub call_id: Option<String>,
    pub recorded_sha256: Option<String>,
    pub actual_sha256: String,
    pub recording: Option<RecordingInfo>,
    /// Checked by call id: the call's pcap too, when it has one (the evidence of a codec that
    /// could not be decoded).
    pub pcap: Option<PcapCheck>,
}

/// The check of a call's pcap.
#[derive(Debug, Clone)]
pub struct PcapCheck {
    pub path: PathBuf,
    pub recorded_sha256: Option<String>,
    /// None when the file cannot be read (missing: it does not match).
    pub actual_sha256: Option<String>,
}

impl PcapCheck {
    pub fn matches(&self) -> bool {
        same(
            self.recorded_sha256.as_deref(),
            self.actual_sha256.as_deref(),
        )
    }
}

fn same(recorded: Option<&str>, actual: Option<&str>) -> bool {
    matches!((recorded, actual), (Some(r), Some(a)) if r.eq_ignore_ascii_case(a))
}

impl Verdict {
    /// The file is the one recorded: its digest equals the stored one (and so does the pcap's,
    /// when one was checked).
    pub fn matches(&self) -> bool {
        same(self.recorded_sha256.as_deref(), Some(&self.actual_sha256))
            && self.pcap.as_ref().is_none_or(PcapCheck::matches)
    }
}

/// Check a recording named by its file path or by its call id. `root` is the recordings folder
/// (`[recording] dir`): stored paths are relative to it (rows stored before are absolute).
pub async fn verify(store: &Store, root: &Path, target: &str) -> Result<Verdict, VerifyError> {
    let as_path = Path::new(target);
    let mut by_call_id = false;
    let (path, call) = if tokio::fs::metadata(as_path).await.is_ok() {
        let absolute = std::path::absolute(as_path).unwrap_or_else(|_| as_path.to_path_buf());
        // As stored now (relative to the folder, the folder's own path resolved too), as
        // stored before (absolute), or as typed.
        let canonical_root = tokio::fs::canonicalize(root)
            .await
            .unwrap_or_else(|_| root.to_path_buf());
        let canonical = tokio::fs::canonicalize(&absolute)
            .await
            .unwrap_or_else(|_| absolute.clone());
        let candidates = [
            paths::to_stored(root, &absolute),
            paths::to_stored(&canonical_root, &canonical),
            absolute.display().to_string(),
            target.to_string(),
        ];
        let mut found = None;
        for candidate in candidates {
            if let Some(hit) = store.find_recording_by_path(&candidate).await? {
                found = Some(hit);
                break;
            }
        }
        (absolute, found)
    } else {
        by_call_id = true;
        let info = store
            .recording(target)
            .await?
            .ok_or_else(|| VerifyError::NotFound(target.to_string()))?;
        let path = info
            .path
            .clone()
            .ok_or_else(|| VerifyError::NoRecording(target.to_string()))?;
        (
            paths::resolve(root, Path::new(&path)),
            Some((target.to_string(), info)),
        )
    };
    let hash_path = path.clone();
    let actual = tokio::task::spawn_blocking(move || sha256_file(&hash_path))
        .await
        .map_err(|e| RecordingError::io(&path, std::io::Error::other(e)))??;
    let (call_id, recording) = match call {
        Some((id, info)) => (Some(id), Some(info)),
        None => (None, None),
    };
    // A path may name the call's pcap: its digest is the one to compare.
    let is_pcap = recording
        .as_ref()
        .and_then(|r| r.pcap_path.as_deref())
        .is_some_and(|p| paths::resolve(root, Path::new(p)) == path || p == target);
    let recorded_sha256 = recording.as_ref().and_then(|r| {
        if is_pcap {
            r.pcap_sha256.clone()
        } else {
            r.sha256.clone()
        }
    });
    let pcap = match recording.as_ref().and_then(|r| r.pcap_path.clone()) {
        Some(p) if by_call_id => {
            let pcap_path = paths::resolve(root, Path::new(&p));
            let hash_path = pcap_path.clone();
            let actual = tokio::task::spawn_blocking(move || sha256_file(&hash_path).ok())
                .await
                .ok()
                .flatten();
            Some(PcapCheck {
                path: pcap_path,
                recorded_sha256: recording.as_ref().and_then(|r| r.pcap_sha256.clone()),
                actual_sha256: actual,
            })
        }
        _ => None,
    };
    Ok(Verdict {
        recorded_sha256,
        path,
        call_id,
        actual_sha256: actual,
        recording,
        pcap,
    })
}

/// A call's recording checked from files its caller opened (the API opens them inside the
/// recordings folder only: `locate::open_contained`), against the digests stored with the CDR.
/// `pcap` is the call's pcap when it has one: opened, or None when it could not be (then it
/// does not match). Blocking: run it off the async runtime.
pub fn verify_opened(
    call_id: &str,
    recording: RecordingInfo,
    mut wav: OpenedRecording,
    pcap: Option<(PathBuf, Option<OpenedRecording>)>,
) -> Result<Verdict, RecordingError> {
    let actual = sha256_of(&mut wav.file, &wav.real_path)?;
    let pcap = pcap.map(|(path, opened)| {
        let actual_sha256 = opened.and_then(|mut o| sha256_of(&mut o.file, &o.real_path).ok());
        PcapCheck {
            path,
            recorded_sha256: recording.pcap_sha256.clone(),
            actual_sha256,
        }
    });
    Ok(Verdict {
        path: wav.real_path,
        call_id: Some(call_id.to_string()),
        recorded_sha256: recording.sha256.clone(),
        actual_sha256: actual,
        recording: Some(recording),
        pcap,
    })
}

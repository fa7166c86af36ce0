//! `trunkguard verify PATH|CALL_ID`: is this file the recording that was made? The digest is
//! recomputed and compared with the one stored with the call's CDR when it was closed.

use std::path::{Path, PathBuf};

use crate::monitor::call_media::RecordingInfo;
use crate::store::{Store, StoreError};

use super::digest::sha256_file;
use super::RecordingError;

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
}

impl Verdict {
    /// The file is the one recorded: its digest equals the stored one.
    pub fn matches(&self) -> bool {
        self.recorded_sha256
            .as_deref()
            .is_some_and(|d| d.eq_ignore_ascii_case(&self.actual_sha256))
    }
}

/// Check a recording named by its file path or by its call id.
pub async fn verify(store: &Store, target: &str) -> Result<Verdict, VerifyError> {
    let as_path = Path::new(target);
    let (path, call) = if tokio::fs::metadata(as_path).await.is_ok() {
        let absolute = std::path::absolute(as_path).unwrap_or_else(|_| as_path.to_path_buf());
        let found = match store
            .find_recording_by_path(&absolute.display().to_string())
            .await?
        {
            Some(hit) => Some(hit),
            None => store.find_recording_by_path(target).await?,
        };
        (absolute, found)
    } else {
        let info = store
            .recording(target)
            .await?
            .ok_or_else(|| VerifyError::NotFound(target.to_string()))?;
        let path = info
            .path
            .clone()
            .ok_or_else(|| VerifyError::NoRecording(target.to_string()))?;
        (PathBuf::from(path), Some((target.to_string(), info)))
    };
    let hash_path = path.clone();
    let actual = tokio::task::spawn_blocking(move || sha256_file(&hash_path))
        .await
        .map_err(|e| RecordingError::io(&path, std::io::Error::other(e)))??;
    let (call_id, recording) = match call {
        Some((id, info)) => (Some(id), Some(info)),
        None => (None, None),
    };
    Ok(Verdict {
        recorded_sha256: recording.as_ref().and_then(|r| r.sha256.clone()),
        path,
        call_id,
        actual_sha256: actual,
        recording,
    })
}

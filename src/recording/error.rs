//! Errors of the recording part, classified so the caller can apply `[recording] required`.

use std::io;
use std::path::{Path, PathBuf};

use crate::model::RefusalReason;

#[derive(Debug, thiserror::Error)]
pub enum RecordingError {
    /// The recording directory cannot be created or written (permissions, read-only file
    /// system, a file in the way).
    #[error("recording directory not writable: {path}: {source}")]
    NotWritable { path: PathBuf, source: io::Error },
    /// No space left (or quota exceeded) where the recording goes.
    #[error("disk full writing {path}: {source}")]
    DiskFull { path: PathBuf, source: io::Error },
    /// A recording for this call id already exists (never overwrite evidence).
    #[error("recording already exists: {path}")]
    AlreadyExists { path: PathBuf },
    /// The call id cannot be used as a file name.
    #[error("call id not usable as a file name: {0:?}")]
    InvalidCallId(String),
    #[error("I/O error on {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("WAV error on {path}: {source}")]
    Wav { path: PathBuf, source: hound::Error },
    /// The file is not a WAV file that repair understands.
    #[error("not a repairable WAV file: {path}: {reason}")]
    Unrepairable { path: PathBuf, reason: String },
    /// The recording pool has shut down (or its worker died).
    #[error("recording worker is gone")]
    WorkerGone,
    /// The folder's health watcher finds it unusable (its last verdict, read at admission).
    #[error("{0}")]
    DiskUnusable(super::disk::DiskProblem),
}

impl RecordingError {
    /// Classifies an I/O error on `path`: what the failure policy needs to tell apart.
    pub fn io(path: &Path, source: io::Error) -> Self {
        let path = path.to_path_buf();
        match source.kind() {
            io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => {
                RecordingError::DiskFull { path, source }
            }
            io::ErrorKind::PermissionDenied
            | io::ErrorKind::ReadOnlyFilesystem
            | io::ErrorKind::NotADirectory => RecordingError::NotWritable { path, source },
            io::ErrorKind::AlreadyExists => RecordingError::AlreadyExists { path },
            _ => RecordingError::Io { path, source },
        }
    }

    /// Same, for hound's errors (which wrap I/O errors).
    pub fn wav(path: &Path, source: hound::Error) -> Self {
        match source {
            hound::Error::IoError(e) => RecordingError::io(path, e),
            other => RecordingError::Wav {
                path: path.to_path_buf(),
                source: other,
            },
        }
    }

    /// A short, stable reason for CDRs and logs (`recording_not_writable`, …): the refusal
    /// reason when `[recording] required` refuses the call.
    pub fn reason(&self) -> RefusalReason {
        match self {
            RecordingError::NotWritable { .. } => RefusalReason::RecordingNotWritable,
            RecordingError::DiskFull { .. } => RefusalReason::RecordingDiskFull,
            RecordingError::AlreadyExists { .. } => RefusalReason::RecordingExists,
            RecordingError::InvalidCallId(_) => RefusalReason::RecordingBadCallId,
            RecordingError::Io { .. } | RecordingError::Wav { .. } => {
                RefusalReason::RecordingIoError
            }
            RecordingError::Unrepairable { .. } => RefusalReason::RecordingUnrepairable,
            RecordingError::WorkerGone => RefusalReason::RecordingUnavailable,
            RecordingError::DiskUnusable(p) => p.reason,
        }
    }
}

/// What the gateway does with a call whose recording could not be started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnRecordingFailure {
    /// Refuse the call (503) and store the reason.
    Refuse,
    /// Go on unrecorded; the CDR says why.
    ContinueUnrecorded,
}

impl OnRecordingFailure {
    /// `[recording] required` decides; every failure to start is treated the same way.
    pub fn from_config(cfg: &crate::config::RecordingConfig) -> Self {
        if cfg.required {
            OnRecordingFailure::Refuse
        } else {
            OnRecordingFailure::ContinueUnrecorded
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_errno() {
        let p = Path::new("/x");
        let enospc = io::Error::from_raw_os_error(28);
        assert!(matches!(
            RecordingError::io(p, enospc),
            RecordingError::DiskFull { .. }
        ));
        let edquot = io::Error::from_raw_os_error(122);
        assert!(matches!(
            RecordingError::io(p, edquot),
            RecordingError::DiskFull { .. }
        ));
        for errno in [13, 30, 20] {
            // EACCES, EROFS, ENOTDIR
            let e = io::Error::from_raw_os_error(errno);
            assert!(matches!(
                RecordingError::io(p, e),
                RecordingError::NotWritable { .. }
            ));
        }
        let full = hound::Error::IoError(io::Error::from_raw_os_error(28));
        let e = RecordingError::wav(p, full);
        assert_eq!(e.reason().as_str(), "recording_disk_full");
    }

    #[test]
    fn policy_follows_required() {
        let mut cfg = crate::config::RecordingConfig::default();
        assert_eq!(
            OnRecordingFailure::from_config(&cfg),
            OnRecordingFailure::Refuse
        );
        cfg.required = false;
        assert_eq!(
            OnRecordingFailure::from_config(&cfg),
            OnRecordingFailure::ContinueUnrecorded
        );
    }
}

//! The report of one day's verification and the differences it names.

use serde::Serialize;
use utoipa::ToSchema;

use crate::evidence::manifest::ManifestFinding;

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
    pub(super) fn unsealed(day: &str) -> DayReport {
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

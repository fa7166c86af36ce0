//! What a call's media left for its CDR: per-leg quality, the recording's evidence, and the
//! DTMF digits keyed during the call.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One leg's media figures. `inside` faces the PBX (the agent), `outside` the carrier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LegQuality {
    /// "inside" or "outside".
    pub leg: String,
    /// RTP received from this leg's peer.
    pub packets_in: u64,
    pub bytes_in: u64,
    /// RTP relayed to this leg's peer.
    pub packets_out: u64,
    pub bytes_out: u64,
    /// Packets the peer sent that never arrived (from sequence numbers).
    pub lost: u64,
    /// RFC 3550 interarrival jitter at the end, and the worst seen, in ms.
    pub jitter_ms: f64,
    pub max_jitter_ms: f64,
    /// Longest silence between two packets from the peer, in ms.
    pub longest_gap_ms: u64,
    /// Packets from sources other than the peer, dropped.
    pub stray: u64,
    /// Estimated MOS of what the peer sent (simplified E-model); None without RTP.
    pub mos: Option<f64>,
    /// This leg's peer went silent while the other talked.
    pub one_way: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RecordingStatus {
    /// Closed normally with audio from both legs: the file is whole.
    Complete,
    /// Closed normally, but packets came from one leg only: the other side is silence.
    OneWay,
    /// Closed normally, but no packet came from either leg: the file holds no samples (nothing
    /// is written before a first packet, so a call without media is not a file of silence).
    NoMedia,
    /// Cut short (a crash repaired on restart, a full queue, a late or failed write).
    Incomplete,
    /// Could not be started or written; `note` says why.
    Failed,
}

impl RecordingStatus {
    pub const ALL: [RecordingStatus; 5] = [
        RecordingStatus::Complete,
        RecordingStatus::OneWay,
        RecordingStatus::NoMedia,
        RecordingStatus::Incomplete,
        RecordingStatus::Failed,
    ];

    /// A whole file closed normally, from the packets per leg `[inside, outside]` it holds:
    /// `complete` only with audio from both legs.
    pub fn of_closed(packets: [u64; 2]) -> RecordingStatus {
        match packets {
            [0, 0] => RecordingStatus::NoMedia,
            [0, _] | [_, 0] => RecordingStatus::OneWay,
            _ => RecordingStatus::Complete,
        }
    }

    /// What a reader is told the file holds, when it is not a complete recording.
    pub fn caveat(self) -> Option<&'static str> {
        match self {
            RecordingStatus::Complete => None,
            RecordingStatus::OneWay => Some("audio from one side only: the other is silence"),
            RecordingStatus::NoMedia => Some("no audio at all: no packet came from either side"),
            RecordingStatus::Incomplete => Some("cut short: part of the call's audio is missing"),
            RecordingStatus::Failed => Some("the recording failed"),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RecordingStatus::Complete => "complete",
            RecordingStatus::OneWay => "one_way",
            RecordingStatus::NoMedia => "no_media",
            RecordingStatus::Incomplete => "incomplete",
            RecordingStatus::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<RecordingStatus> {
        match s {
            "complete" => Some(RecordingStatus::Complete),
            "one_way" => Some(RecordingStatus::OneWay),
            "no_media" => Some(RecordingStatus::NoMedia),
            "incomplete" => Some(RecordingStatus::Incomplete),
            "failed" => Some(RecordingStatus::Failed),
            _ => None,
        }
    }
}

/// The recording of a call, as evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordingInfo {
    pub status: RecordingStatus,
    /// The WAV file (absent when the recording failed).
    pub path: Option<String>,
    /// Raw RTP of both legs, kept when the codec could not be decoded.
    pub pcap_path: Option<String>,
    /// SHA-256 of the WAV file, hex.
    pub sha256: Option<String>,
    /// SHA-256 of the pcap, hex: the evidence when the codec could not be decoded.
    #[serde(default)]
    pub pcap_sha256: Option<String>,
    pub duration_ms: i64,
    pub size_bytes: i64,
    pub codec: Option<String>,
    /// Packets the recorder could not take in time (its queue was full).
    pub overflowed_packets: u64,
    /// Why the recording failed or is partial, when it is.
    pub note: Option<String>,
}

impl RecordingInfo {
    /// No recording: it could not be made, and `note` says why.
    pub fn failed(note: impl Into<String>) -> RecordingInfo {
        RecordingInfo {
            status: RecordingStatus::Failed,
            path: None,
            pcap_path: None,
            sha256: None,
            pcap_sha256: None,
            duration_ms: 0,
            size_bytes: 0,
            codec: None,
            overflowed_packets: 0,
            note: Some(note.into()),
        }
    }
}

/// One DTMF digit (RFC 4733) keyed during the call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DtmfEvent {
    /// The leg whose peer keyed it: "inside" or "outside".
    pub leg: String,
    pub digit: String,
    pub at: DateTime<Utc>,
    pub duration_ms: u32,
}

/// How a recording pause ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PauseEnd {
    /// Resumed by the API or the resume DTMF command (`resumed_by` says who).
    Resumed,
    /// Resumed by itself after `[recording] max_pause_secs`.
    MaxPause,
    /// The call (or its recording) ended while paused.
    CallEnded,
}

text_enum!(PauseEnd, "pause_end", {
    Resumed => "resumed",
    MaxPause => "max_pause",
    CallEnded => "call_ended",
});

/// Who pauses or resumes by DTMF (an API caller is named by its token's name).
pub const PAUSED_BY_DTMF: &str = "dtmf";

/// One interval during which the recording was paused (PCI: a card number being spoken): the
/// file holds silence on both channels there, the timeline kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RecordingPause {
    /// Where the pause starts and ends in the recording, in ms from its first sample.
    pub start_ms: i64,
    pub end_ms: i64,
    /// The API token's name, or `dtmf`.
    pub paused_by: String,
    /// Who resumed it (the token's name, or `dtmf`); none when it ended otherwise.
    pub resumed_by: Option<String>,
    pub ended: PauseEnd,
}

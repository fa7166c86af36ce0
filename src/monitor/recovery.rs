//! After a crash: every call the journal still holds was cut off mid-way. Its CDR is closed
//! with end reason `gateway_restart`, and its recording (repaired by `recording::repair`) is
//! put on it, marked incomplete.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};

use super::cdr_writer::CdrSink;
use crate::model::{ms_precision, Cdr, Disposition, EndReason, HangupSide};
use crate::model::{RecordingInfo, RecordingStatus};
use crate::recording::{RepairReport, RepairedRecording};
use crate::store::{JournaledCall, Store};

/// A call closed by [`close_interrupted_calls`]: the peers may still hold its dialogs.
#[derive(Debug, Clone, PartialEq)]
pub struct Interrupted {
    pub cdr_id: String,
    pub trunk: Option<String>,
    /// Its dialog state as last journaled (see `b2bua::restart`).
    pub dialogs: Option<String>,
}

/// Close the CDR of every call interrupted by a crash; returns those calls.
pub async fn close_interrupted_calls(
    store: &Store,
    sink: &CdrSink,
    repaired: &RepairReport,
) -> Vec<Interrupted> {
    let rows = match store.journaled_calls().await {
        Ok(rows) => rows,
        Err(e) => {
            tracing::error!(error = %e, "cannot read the call journal: interrupted calls stay open");
            return Vec::new();
        }
    };
    let recordings: HashMap<&str, &RepairedRecording> = repaired
        .repaired
        .iter()
        .map(|r| (r.call_id.as_str(), r))
        .collect();
    let mut closed = Vec::new();
    for row in rows {
        match row {
            Ok(mut call) => {
                let rec = recordings.get(call.cdr.attempt.id.as_str()).copied();
                let dialogs = call.dialogs.take();
                let cdr = close(call, rec);
                tracing::warn!(call_id = %cdr.attempt.id, answered = cdr.attempt.answer_at.is_some(), "call interrupted by a restart: CDR closed");
                closed.push(Interrupted {
                    cdr_id: cdr.attempt.id.clone(),
                    trunk: cdr.attempt.trunk.clone(),
                    dialogs,
                });
                sink.submit(cdr);
            }
            Err(e) => tracing::error!(error = %e, "unreadable call journal entry"),
        }
    }
    closed
}

/// The final CDR of an interrupted call.
pub fn close(call: JournaledCall, rec: Option<&RepairedRecording>) -> Cdr {
    let mut cdr = call.cdr;
    // The last sign of life: the journal's time, or the end of the recorded audio if later
    // (the recording starts at the answer).
    let recorded_end: Option<DateTime<Utc>> = match (cdr.attempt.answer_at, rec) {
        (Some(answer), Some(r)) => {
            Some(answer + Duration::milliseconds(i64::try_from(r.duration_ms).unwrap_or(0)))
        }
        _ => None,
    };
    let end_at = ms_precision(recorded_end.map_or(call.updated_at, |e| e.max(call.updated_at)));
    cdr.outcome.end_at = end_at;
    cdr.outcome.talk_ms = Cdr::talk_ms_between(cdr.attempt.answer_at, end_at);
    cdr.outcome.end_reason = EndReason::GatewayRestart;
    cdr.outcome.hangup_side = Some(HangupSide::Gateway);
    if cdr.attempt.answer_at.is_some() {
        cdr.outcome.disposition = Disposition::Answered;
        cdr.outcome.final_status = 200;
        cdr.outcome.final_reason = "OK".to_string();
        cdr.outcome.q850_cause = Some(16);
    } else {
        cdr.outcome.disposition = Disposition::Failed;
        cdr.outcome.final_status = 500;
        cdr.outcome.final_reason = "Gateway Restart".to_string();
        cdr.outcome.q850_cause = Some(41);
    }
    cdr.recording = match (rec, call.recording_part) {
        (Some(r), _) => Some(RecordingInfo {
            status: RecordingStatus::Incomplete,
            path: Some(r.path.display().to_string()),
            pcap_path: r.pcap_path.as_ref().map(|p| p.display().to_string()),
            sha256: Some(r.sha256_hex.clone()),
            pcap_sha256: r.pcap_sha256_hex.clone(),
            duration_ms: i64::try_from(r.duration_ms).unwrap_or(i64::MAX),
            size_bytes: i64::try_from(r.size_bytes).unwrap_or(i64::MAX),
            codec: None,
            overflowed_packets: 0,
            note: Some("gateway restarted mid-call: recording repaired up to the crash".into()),
        }),
        (None, Some(part)) => Some(RecordingInfo::failed(format!(
            "gateway restarted mid-call: recording {part} not found or not repairable"
        ))),
        (None, None) => None,
    };
    cdr
}

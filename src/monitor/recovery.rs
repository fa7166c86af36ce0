//! Calls the journal holds that no node carries any more: after a crash, the restarted node's
//! own (end reason `gateway_restart`); in a cluster, a lost node's, closed by a survivor
//! (`node_lost`, see [`lost`]). Each such call's CDR is closed from its provisional CDR, and its
//! recording (repaired by `recording::repair`) is put on it, marked incomplete; the PCI pauses
//! journaled with it stay on it, one still open closed at the crash.
//!
//! With several nodes on one database a node closes only the calls journaled under its own
//! `[cluster] node_id` (`None` on a single node), after claiming them
//! (`Store::claim_journaled_calls`): a node restarting while a survivor closes its calls, or two
//! survivors, never close one call twice (one CDR, one BYE).

pub mod lost;

use std::collections::{HashMap, HashSet};
use std::path::Path;

use chrono::{DateTime, Duration, Utc};

use super::cdr_writer::CdrSink;
use crate::model::{ms_precision, Cdr, Disposition, EndReason, HangupSide, PauseEnd};
use crate::model::{RecordingInfo, RecordingStatus, StatusLine};
use crate::recording::paths;
use crate::recording::{RepairReport, RepairedRecording};
use crate::store::{JournalClaim, JournaledCall, Store, StoreError};

/// A claim on journaled calls older than this is taken over by another closer: its node died
/// before storing their CDRs (which delete the rows). Far longer than closing takes (the CDRs
/// are submitted at once), so a live closer is never overtaken.
pub const CLAIM_STALE: Duration = Duration::minutes(10);

/// A call closed here: the peers may still hold its dialogs.
#[derive(Debug, Clone, PartialEq)]
pub struct Interrupted {
    pub cdr_id: String,
    pub trunk: Option<String>,
    /// Its dialog state as last journaled (see `b2bua::restart`).
    pub dialogs: Option<String>,
    /// Why it was closed (`gateway_restart` or `node_lost`): the peers are told.
    pub end_reason: EndReason,
}

/// A node's own journaled calls, claimed at its start.
#[derive(Debug, Default)]
pub struct OwnCalls {
    pub calls: Vec<JournaledCall>,
    /// Its calls another node is closing (it found this node lost): their recordings are that
    /// node's to repair.
    pub held_elsewhere: HashSet<String>,
}

/// At start, before the recordings are repaired: claim this node's journaled calls (`node`:
/// `[cluster] node_id`, `None` on a single node). A database that cannot be read leaves them
/// journaled (closed at the next start, or by a survivor's sweep in a cluster).
pub async fn claim_own_calls(store: &Store, node: Option<&str>) -> OwnCalls {
    let now = Utc::now();
    let claim = JournalClaim {
        node,
        closer: node.unwrap_or(""),
        journaled_before: now,
        now,
        stale_before: now - CLAIM_STALE,
    };
    match store.claim_journaled_calls(claim).await {
        Ok(claimed) => {
            if !claimed.held_elsewhere.is_empty() {
                tracing::warn!(
                    calls = claimed.held_elsewhere.len(),
                    "calls of this node left by its last run are being closed by another node"
                );
            }
            OwnCalls {
                calls: readable(claimed.calls),
                held_elsewhere: claimed.held_elsewhere,
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot read the call journal: interrupted calls stay open");
            OwnCalls::default()
        }
    }
}

/// The rows that decode; the others are logged (they stay journaled until a CDR is stored).
pub(super) fn readable(rows: Vec<Result<JournaledCall, StoreError>>) -> Vec<JournaledCall> {
    rows.into_iter()
        .filter_map(|row| {
            row.map_err(|e| tracing::error!(error = %e, "unreadable call journal entry"))
                .ok()
        })
        .collect()
}

/// Close the CDR of every call of this node interrupted by a crash (`own`, claimed before the
/// repair), with the recordings `repaired` found; returns those calls.
pub fn close_interrupted_calls(
    sink: &CdrSink,
    own: OwnCalls,
    repaired: &RepairReport,
    root: &Path,
) -> Vec<Interrupted> {
    let recordings: HashMap<&str, &RepairedRecording> = repaired
        .repaired
        .iter()
        .map(|r| (r.call_id.as_str(), r))
        .collect();
    own.calls
        .into_iter()
        .map(|call| {
            let rec = recordings.get(call.cdr.attempt.id.as_str()).copied();
            close_and_submit(sink, call, rec, EndReason::GatewayRestart, root)
        })
        .collect()
}

/// Close one call, submit its CDR, and say what its peers may still hold.
pub(super) fn close_and_submit(
    sink: &CdrSink,
    mut call: JournaledCall,
    rec: Option<&RepairedRecording>,
    reason: EndReason,
    root: &Path,
) -> Interrupted {
    let dialogs = call.dialogs.take();
    let cdr = close(call, rec, reason, root);
    tracing::warn!(call_id = %cdr.attempt.id, node = cdr.attempt.node.as_deref().unwrap_or(""),
        end_reason = %reason, answered = cdr.attempt.answer_at.is_some(),
        "call cut off mid-way: CDR closed");
    let closed = Interrupted {
        cdr_id: cdr.attempt.id.clone(),
        trunk: cdr.attempt.trunk.clone(),
        dialogs,
        end_reason: reason,
    };
    sink.submit(cdr);
    closed
}

/// The final response to an INVITE a call cut off left unanswered (sent to its peer by
/// `b2bua::restart`, and the CDR's final status).
pub fn final_status(reason: EndReason) -> StatusLine {
    match reason {
        EndReason::NodeLost => StatusLine::NODE_LOST,
        _ => StatusLine::GATEWAY_RESTART,
    }
}

/// The final CDR of a call cut off mid-way (`reason`: `gateway_restart` or `node_lost`), with
/// its recording as repaired (stored relative to `root`, the recordings folder).
pub fn close(
    call: JournaledCall,
    rec: Option<&RepairedRecording>,
    reason: EndReason,
    root: &Path,
) -> Cdr {
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
    cdr.outcome.end_reason = reason;
    cdr.outcome.hangup_side = Some(HangupSide::Gateway);
    cdr.outcome.refusal_reason = None;
    if cdr.attempt.answer_at.is_some() {
        cdr.outcome.disposition = Disposition::Answered;
        cdr.outcome.final_status = 200;
        cdr.outcome.final_reason = "OK".to_string();
        cdr.outcome.q850_cause = Some(16);
    } else {
        let line = final_status(reason);
        cdr.outcome.disposition = Disposition::Failed;
        cdr.outcome.final_status = line.code;
        cdr.outcome.final_reason = line.phrase.to_string();
        cdr.outcome.q850_cause = Some(41);
    }
    // A PCI pause open at the crash was journaled as ending then (`call_ended`): it lasted
    // until the crash, which the repaired recording's end marks (the file is silence from the
    // pause on), or without one the call's last sign of life.
    let crash_ms = match rec {
        Some(r) => i64::try_from(r.duration_ms).unwrap_or(i64::MAX),
        None => cdr.outcome.talk_ms,
    };
    for p in cdr
        .recording_pauses
        .iter_mut()
        .filter(|p| p.ended == PauseEnd::CallEnded)
    {
        p.end_ms = crash_ms.max(p.start_ms);
    }
    let node = cdr.attempt.node.clone();
    cdr.recording = match (rec, call.recording_part) {
        (Some(r), _) => Some(RecordingInfo {
            status: RecordingStatus::Incomplete,
            path: Some(paths::to_stored(root, &r.path)),
            pcap_path: r.pcap_path.as_ref().map(|p| paths::to_stored(root, p)),
            sha256: Some(r.sha256_hex.clone()),
            pcap_sha256: r.pcap_sha256_hex.clone(),
            duration_ms: i64::try_from(r.duration_ms).unwrap_or(i64::MAX),
            size_bytes: i64::try_from(r.size_bytes).unwrap_or(i64::MAX),
            codec: None,
            overflowed_packets: 0,
            note: Some(match reason {
                EndReason::NodeLost => format!(
                    "node {} lost mid-call: recording repaired up to its loss",
                    node.as_deref().unwrap_or("?")
                ),
                _ => "gateway restarted mid-call: recording repaired up to the crash".into(),
            }),
        }),
        (None, Some(part)) if reason == EndReason::NodeLost => {
            Some(unreachable_part(&part, node.as_deref().unwrap_or("?")))
        }
        (None, Some(part)) => Some(RecordingInfo::failed(format!(
            "gateway restarted mid-call: recording {part} not found or not repairable"
        ))),
        (None, None) => None,
    };
    cdr
}

/// A lost node's recording this node cannot see (the recordings folder is not shared, or the
/// file is gone): its name is kept, for the node to repair it under when it starts again.
fn unreachable_part(part: &str, node: &str) -> RecordingInfo {
    let wav = part.strip_suffix(".part").unwrap_or(part);
    RecordingInfo {
        status: RecordingStatus::Incomplete,
        path: Some(wav.to_string()),
        note: Some(format!(
            "node {node} lost mid-call: its recording was not reachable from the node that \
             closed the call (a recordings folder that is not shared); {node} repairs it when \
             it starts again"
        )),
        ..RecordingInfo::failed("")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::RecordingPause;

    fn pause(start_ms: i64, end_ms: i64, ended: PauseEnd) -> RecordingPause {
        RecordingPause {
            start_ms,
            end_ms,
            paused_by: "dtmf".into(),
            resumed_by: (ended == PauseEnd::Resumed).then(|| "dtmf".into()),
            ended,
        }
    }

    #[test]
    fn journaled_pauses_stay_on_the_closed_cdr_an_open_one_closed_at_the_crash() {
        let mut cdr = crate::model::cdr::sample_cdr("c1");
        let answer = cdr.attempt.answer_at.expect("answered");
        cdr.recording_pauses = vec![
            pause(1000, 2000, PauseEnd::Resumed),
            // Open when last journaled, at 3.1 s.
            pause(3000, 3100, PauseEnd::CallEnded),
        ];
        let call = |cdr: &Cdr| JournaledCall {
            cdr: cdr.clone(),
            recording_part: None,
            dialogs: None,
            updated_at: answer + Duration::milliseconds(3100),
        };
        let root = Path::new("/rec");
        let rec = RepairedRecording {
            call_id: "c1".into(),
            path: root.join("c1.wav"),
            pcap_path: None,
            pcap_sha256_hex: None,
            sample_rate: 8000,
            duration_ms: 4500,
            size_bytes: 72_044,
            sha256_hex: "00".repeat(32),
        };
        let closed = close(call(&cdr), Some(&rec), EndReason::GatewayRestart, root);
        assert_eq!(
            closed.recording_pauses,
            [
                pause(1000, 2000, PauseEnd::Resumed),
                pause(3000, 4500, PauseEnd::CallEnded)
            ],
            "the open pause lasts to the end of the repaired recording"
        );
        // No recording to repair: up to the last sign of life.
        let closed = close(call(&cdr), None, EndReason::GatewayRestart, root);
        assert_eq!(closed.recording_pauses[1].end_ms, 3100);
        assert_eq!(closed.recording_pauses[0].end_ms, 2000);
    }
}

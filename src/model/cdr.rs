//! The call detail record: one per call attempt, admitted or refused, answered or not — the one
//! definition the b2bua builds, the store keeps, the monitor counts and the API shows.
//!
//! A call builds it in two steps: the [`Attempt`] from its INVITE on (filled in while the call
//! runs: ringing, answer, the other leg's Call-ID), then [`Attempt::close`] with the call's
//! [`Ending`] gives the [`Cdr`] with its [`Outcome`]. The call's media, recording and DTMF are
//! added last. Serialized flat (serde `flatten`): the JSON and the columns are one level.

use chrono::{DateTime, Timelike, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[cfg(test)]
use super::media::RecordingStatus;
use super::media::{DtmfEvent, LegQuality, RecordingInfo, RecordingPause};
use super::outcome::{Disposition, EndReason, Ending, HangupSide, RefusalReason};
use super::q850;
use super::side::Direction;
use super::status::StatusLine;

/// What is known of an attempt from its INVITE on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Attempt {
    /// Our call id.
    pub id: String,
    pub inside_call_id: Option<String>,
    pub outside_call_id: Option<String>,
    /// None when the source matched no trunk.
    pub trunk: Option<String>,
    /// `outbound` (PBX → carrier) or `inbound`.
    pub direction: Direction,
    /// ip:port of the sender of the INVITE.
    pub source: String,
    /// Normalized digits.
    pub caller: Option<String>,
    /// Normalized digits.
    pub callee: Option<String>,
    /// Raw user part of the From URI.
    pub presented_from: Option<String>,
    /// The presented P-Asserted-Identity, raw.
    pub pai: Option<String>,
    pub invite_at: DateTime<Utc>,
    pub ringing_at: Option<DateTime<Utc>>,
    pub answer_at: Option<DateTime<Utc>>,
    /// Calls in progress on the trunk right after this one was admitted (itself counted).
    #[serde(default)]
    pub trunk_active: Option<u32>,
    /// Calls in progress presenting this caller ID right after this one was admitted.
    #[serde(default)]
    pub caller_active: Option<u32>,
    /// The cluster node that carried the call (`[cluster] node_id`); `None` on a single node.
    /// A node closes only its own journaled calls at start, and a survivor a lost node's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

/// How the attempt ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Outcome {
    pub end_at: DateTime<Utc>,
    /// Answer to end in milliseconds; 0 if not answered.
    pub talk_ms: i64,
    /// The final SIP status the PBX/carrier saw; 200 for answered calls.
    pub final_status: u16,
    pub final_reason: String,
    pub q850_cause: Option<u8>,
    /// Who hung up: `inside`, `outside` or `gateway`.
    pub hangup_side: Option<HangupSide>,
    pub disposition: Disposition,
    pub end_reason: EndReason,
    /// Why the gateway refused the call (`refused` only).
    pub refusal_reason: Option<RefusalReason>,
    /// Streams the gateway declined with port 0 (it anchors one audio stream): `video`,
    /// `image/t38`, `audio` for an extra audio stream, in the order first offered. Absent
    /// when none. Not part of the sealed `cdr/1` form (`evidence::canonical`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub declined_media: Vec<String>,
}

/// One call attempt as a carrier or a compliance officer sees it.
///
/// Times are stored with millisecond precision; build them with [`ms_precision`] (or compute
/// `talk_ms` with [`Cdr::talk_ms_between`]) so that what is written reads back identically.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cdr {
    #[serde(flatten)]
    pub attempt: Attempt,
    #[serde(flatten)]
    pub outcome: Outcome,
    /// Per-leg media figures; empty when the call never had media.
    #[serde(default)]
    pub media: Vec<LegQuality>,
    /// The recording, when the call was answered (or had early media recorded).
    #[serde(default)]
    pub recording: Option<RecordingInfo>,
    #[serde(default)]
    pub dtmf: Vec<DtmfEvent>,
    /// When the recording was paused (PCI), in its order; absent from the JSON when none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recording_pauses: Vec<RecordingPause>,
}

impl Attempt {
    /// The CDR of this attempt ended at `end_at` as `ending` says; no media yet.
    pub fn close(&self, ending: Ending, end_at: DateTime<Utc>) -> Cdr {
        let answered = ending.disposition == Disposition::Answered;
        let q850_cause = ending.q850.or_else(|| {
            if answered {
                Some(16)
            } else {
                q850::cause_for_sip(ending.status)
            }
        });
        let (final_status, final_reason) = if answered {
            (StatusLine::OK.code, StatusLine::OK.phrase.to_string())
        } else {
            (ending.status, ending.phrase)
        };
        Cdr {
            attempt: self.clone(),
            outcome: Outcome {
                end_at,
                talk_ms: Cdr::talk_ms_between(self.answer_at, end_at),
                final_status,
                final_reason,
                q850_cause,
                hangup_side: ending.hangup,
                disposition: ending.disposition,
                end_reason: ending.reason,
                refusal_reason: ending.refusal,
                declined_media: Vec::new(),
            },
            media: Vec::new(),
            recording: None,
            dtmf: Vec::new(),
            recording_pauses: Vec::new(),
        }
    }

    /// The CDR of a call still in progress, for the journal: a crash leaves this behind and
    /// the next start closes it with end reason `gateway_restart`.
    pub fn provisional(&self, now: DateTime<Utc>) -> Cdr {
        self.close(Ending::in_progress(self.answer_at.is_some()), now)
    }
}

impl Cdr {
    /// Talk time from answer to end in ms, never negative, 0 when not answered.
    pub fn talk_ms_between(answer_at: Option<DateTime<Utc>>, end_at: DateTime<Utc>) -> i64 {
        answer_at
            .map(|a| (end_at - a).num_milliseconds().max(0))
            .unwrap_or(0)
    }
}

/// Truncate to whole milliseconds, the precision the store keeps.
pub fn ms_precision(t: DateTime<Utc>) -> DateTime<Utc> {
    let nanos = t.nanosecond() / 1_000_000 * 1_000_000;
    // Cannot fail: truncation keeps the value in the range chrono accepted before.
    t.with_nanosecond(nanos).unwrap_or(t)
}

/// A fully populated answered call (two media legs, a recording, three DTMF digits), for tests
/// across the crate.
#[cfg(test)]
pub(crate) fn sample_cdr(id: &str) -> Cdr {
    let invite_at = DateTime::parse_from_rfc3339("2026-11-27T09:15:30.250Z")
        .map(|t| t.with_timezone(&Utc))
        .unwrap();
    let ringing_at = invite_at + chrono::Duration::milliseconds(1_830);
    let answer_at = invite_at + chrono::Duration::milliseconds(7_004);
    let end_at = answer_at + chrono::Duration::milliseconds(95_999);
    Cdr {
        attempt: Attempt {
            id: id.to_string(),
            inside_call_id: Some(format!("{id}-in@10.0.0.5")),
            outside_call_id: Some(format!("{id}-out")),
            trunk: Some("demo".to_string()),
            direction: Direction::Outbound,
            source: "10.0.0.5:5060".to_string(),
            caller: Some("33123456789".to_string()),
            callee: Some("33987654321".to_string()),
            presented_from: Some("+33 1 23 45 67 89".to_string()),
            pai: Some("<sip:+33123456789@pbx.example;user=phone>".to_string()),
            invite_at,
            ringing_at: Some(ringing_at),
            answer_at: Some(answer_at),
            trunk_active: None,
            caller_active: None,
            node: None,
        },
        outcome: Outcome {
            end_at,
            talk_ms: Cdr::talk_ms_between(Some(answer_at), end_at),
            final_status: 200,
            final_reason: "OK".to_string(),
            q850_cause: Some(16),
            hangup_side: Some(HangupSide::Outside),
            disposition: Disposition::Answered,
            end_reason: EndReason::NormalClearing,
            refusal_reason: None,
            declined_media: Vec::new(),
        },
        media: vec![
            LegQuality {
                leg: "inside".to_string(),
                packets_in: 4_800,
                bytes_in: 825_600,
                packets_out: 4_790,
                bytes_out: 823_880,
                lost: 3,
                jitter_ms: 1.875,
                max_jitter_ms: 0.1 + 0.2,
                longest_gap_ms: 140,
                stray: 0,
                mos: Some(4.31),
                one_way: false,
            },
            LegQuality {
                leg: "outside".to_string(),
                packets_in: 4_790,
                bytes_in: 823_880,
                packets_out: 4_800,
                bytes_out: 825_600,
                lost: 0,
                jitter_ms: 12.625,
                max_jitter_ms: 47.0 / 3.0,
                longest_gap_ms: 2_020,
                stray: 17,
                mos: None,
                one_way: true,
            },
        ],
        recording: Some(RecordingInfo {
            status: RecordingStatus::Complete,
            path: Some(format!("recordings/2026/11/27/{id}.wav")),
            pcap_path: None,
            sha256: Some(format!("{:064x}", 0xfeed_beef_u64)),
            pcap_sha256: None,
            duration_ms: 95_999,
            size_bytes: 3_072_044,
            codec: Some("PCMA".to_string()),
            overflowed_packets: 2,
            note: None,
        }),
        dtmf: ["1", "#", "*"]
            .iter()
            .enumerate()
            .map(|(i, digit)| DtmfEvent {
                leg: if i == 2 { "outside" } else { "inside" }.to_string(),
                digit: digit.to_string(),
                at: answer_at + chrono::Duration::milliseconds(3_000 + 750 * i as i64),
                duration_ms: 120 + 40 * i as u32,
            })
            .collect(),
        recording_pauses: vec![
            RecordingPause {
                start_ms: 12_340,
                end_ms: 31_020,
                paused_by: "desk-7".to_string(),
                resumed_by: Some("dtmf".to_string()),
                ended: super::media::PauseEnd::Resumed,
            },
            RecordingPause {
                start_ms: 60_000,
                end_ms: 95_999,
                paused_by: "dtmf".to_string(),
                resumed_by: None,
                ended: super::media::PauseEnd::CallEnded,
            },
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn talk_time_and_precision() {
        let a = DateTime::parse_from_rfc3339("2026-11-27T10:00:00.123456789Z")
            .unwrap()
            .with_timezone(&Utc);
        let e = a + chrono::Duration::milliseconds(61_500);
        assert_eq!(Cdr::talk_ms_between(Some(a), e), 61_500);
        assert_eq!(Cdr::talk_ms_between(None, e), 0);
        assert_eq!(Cdr::talk_ms_between(Some(e), a), 0);
        assert_eq!(ms_precision(a).nanosecond(), 123_000_000);
    }

    #[test]
    fn closing_an_attempt_fills_its_outcome() {
        let attempt = sample_cdr("c1").attempt;
        let end = attempt.answer_at.unwrap() + chrono::Duration::milliseconds(1_500);
        let cdr = attempt.close(
            Ending::answered(EndReason::NormalClearing, HangupSide::Inside),
            end,
        );
        assert_eq!(cdr.outcome.talk_ms, 1_500);
        assert_eq!(
            (cdr.outcome.final_status, cdr.outcome.final_reason.as_str()),
            (200, "OK")
        );
        assert_eq!(cdr.outcome.q850_cause, Some(16));
        assert_eq!(cdr.attempt, attempt);

        let mut unanswered = attempt.clone();
        unanswered.answer_at = None;
        let busy = Ending::with_phrase(486, "Busy Here", Disposition::Busy, EndReason::Busy);
        let cdr = unanswered.close(busy.clone(), end);
        assert_eq!((cdr.outcome.talk_ms, cdr.outcome.q850_cause), (0, Some(17)));
        // The far end's own cause wins over the table.
        let cdr = unanswered.close(busy.with_q850(Some(34)), end);
        assert_eq!(cdr.outcome.q850_cause, Some(34));

        let refused = unanswered.close(Ending::refused(RefusalReason::NumberBlocked), end);
        assert_eq!(refused.outcome.final_reason, "Number Blocked");
        assert_eq!(
            refused.outcome.refusal_reason,
            Some(RefusalReason::NumberBlocked)
        );
        let p = unanswered.provisional(end);
        assert_eq!(p.outcome.end_reason, EndReason::InProgress);
        assert_eq!(p.outcome.final_status, StatusLine::IN_PROGRESS.code);
    }

    #[test]
    fn json_is_flat() {
        let cdr = sample_cdr("c2");
        let v = serde_json::to_value(&cdr).unwrap();
        assert_eq!(v["id"], "c2");
        assert_eq!(v["end_reason"], "normal_clearing");
        assert_eq!(v["disposition"], "answered");
        assert_eq!(v["direction"], "outbound");
        assert!(v.get("attempt").is_none() && v.get("outcome").is_none());
        let back: Cdr = serde_json::from_value(v).unwrap();
        assert_eq!(back, cdr);
    }
}

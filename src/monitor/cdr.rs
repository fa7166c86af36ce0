//! The call detail record: one per call attempt, admitted or refused, answered or not.

use chrono::{DateTime, Timelike, Utc};
use serde::{Deserialize, Serialize};

pub use super::call_media::{DtmfEvent, LegQuality, RecordingInfo, RecordingStatus};

/// One call attempt as a carrier or a compliance officer sees it.
///
/// Times are stored with millisecond precision; build them with [`ms_precision`] (or compute
/// `talk_ms` with [`Cdr::talk_ms_between`]) so that what is written reads back identically.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cdr {
    /// Our call id.
    pub id: String,
    pub inside_call_id: Option<String>,
    pub outside_call_id: Option<String>,
    /// None when the source matched no trunk.
    pub trunk: Option<String>,
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
    pub end_at: DateTime<Utc>,
    /// Answer to end in milliseconds; 0 if not answered.
    pub talk_ms: i64,
    /// The final SIP status the PBX/carrier saw; 200 for answered calls.
    pub final_status: u16,
    pub final_reason: String,
    pub q850_cause: Option<u8>,
    pub hangup_side: Option<HangupSide>,
    pub disposition: Disposition,
    /// Machine code: normal_clearing, cancelled, refused, carrier_timeout, max_duration,
    /// shutdown, bye_inside, bye_outside, …
    pub end_reason: String,
    /// Policy code when refused, e.g. caller_id_not_authorized.
    pub refusal_reason: Option<String>,
    /// Calls in progress on the trunk right after this one was admitted (itself counted).
    #[serde(default)]
    pub trunk_active: Option<u32>,
    /// Calls in progress presenting this caller ID right after this one was admitted.
    #[serde(default)]
    pub caller_active: Option<u32>,
    /// Per-leg media figures; empty when the call never had media.
    #[serde(default)]
    pub media: Vec<LegQuality>,
    /// The recording, when the call was answered (or had early media recorded).
    #[serde(default)]
    pub recording: Option<RecordingInfo>,
    #[serde(default)]
    pub dtmf: Vec<DtmfEvent>,
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

/// Raised when a stored code is not one of ours.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} code `{value}`")]
pub struct UnknownCode {
    pub kind: &'static str,
    pub value: String,
}

macro_rules! text_enum {
    ($name:ident, $kind:literal, { $($variant:ident => $text:literal),+ $(,)? }) => {
        impl $name {
            /// The code stored in the database and used in JSON.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }
        impl std::str::FromStr for $name {
            type Err = UnknownCode;
            fn from_str(s: &str) -> Result<Self, UnknownCode> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(UnknownCode { kind: $kind, value: s.to_string() }),
                }
            }
        }
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// PBX → carrier.
    Outbound,
    /// Carrier → PBX.
    Inbound,
}
text_enum!(Direction, "direction", { Outbound => "outbound", Inbound => "inbound" });

/// Who ended the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HangupSide {
    Inside,
    Outside,
    Gateway,
}
text_enum!(HangupSide, "hangup_side", {
    Inside => "inside", Outside => "outside", Gateway => "gateway",
});

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Disposition {
    Answered,
    Busy,
    NoAnswer,
    /// The caller gave up (CANCEL) before answer.
    Cancelled,
    /// Refused by the far end: other 4xx–6xx.
    Rejected,
    /// Timeout, network, 5xx, or no final response at all.
    Failed,
    /// Refused by our policy. Never derived from a status: the caller sets it, because a
    /// policy 403 and a carrier 403 look the same on the wire.
    Refused,
}
text_enum!(Disposition, "disposition", {
    Answered => "answered", Busy => "busy", NoAnswer => "no_answer", Cancelled => "cancelled",
    Rejected => "rejected", Failed => "failed", Refused => "refused",
});

impl Disposition {
    /// Classify a call that was not refused by policy, without knowing whether it rang.
    /// A 408 then counts as Failed (carrier timeout); see [`Disposition::from_final_with_ringing`].
    pub fn from_final(status: u16, answered: bool, cancelled: bool) -> Disposition {
        Disposition::from_final_with_ringing(status, answered, cancelled, false)
    }

    /// As [`Disposition::from_final`], but a 408 after ringing is a no-answer: the design counts
    /// only a 408 *before* any ringing as a network error.
    pub fn from_final_with_ringing(
        status: u16,
        answered: bool,
        cancelled: bool,
        rang: bool,
    ) -> Disposition {
        // A 2xx means the far end picked up, even if a CANCEL crossed it.
        if answered || (200..300).contains(&status) {
            return Disposition::Answered;
        }
        if cancelled {
            return Disposition::Cancelled;
        }
        match status {
            486 | 600 => Disposition::Busy,
            // 487 without our caller cancelling: a ring timer ended it somewhere.
            480 | 487 => Disposition::NoAnswer,
            408 if rang => Disposition::NoAnswer,
            408 | 500..=599 => Disposition::Failed,
            400..=699 => Disposition::Rejected,
            // No final response, or a 3xx: we do not follow redirects, so it is a routing failure.
            _ => Disposition::Failed,
        }
    }
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
        end_at,
        talk_ms: Cdr::talk_ms_between(Some(answer_at), end_at),
        final_status: 200,
        final_reason: "OK".to_string(),
        q850_cause: Some(16),
        hangup_side: Some(HangupSide::Outside),
        disposition: Disposition::Answered,
        end_reason: "bye_outside".to_string(),
        refusal_reason: None,
        trunk_active: None,
        caller_active: None,
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for d in [
            Disposition::Answered,
            Disposition::Busy,
            Disposition::NoAnswer,
            Disposition::Cancelled,
            Disposition::Rejected,
            Disposition::Failed,
            Disposition::Refused,
        ] {
            assert_eq!(d.as_str().parse::<Disposition>(), Ok(d));
        }
        assert_eq!("inbound".parse::<Direction>(), Ok(Direction::Inbound));
        assert_eq!("gateway".parse::<HangupSide>(), Ok(HangupSide::Gateway));
        assert!("Outbound".parse::<Direction>().is_err());
    }

    #[test]
    fn serde_uses_the_stored_codes() {
        // serde_json is not a dependency; toml renders a unit variant the same way.
        #[derive(Serialize)]
        struct W {
            d: Disposition,
            h: HangupSide,
        }
        let s = toml::to_string(&W {
            d: Disposition::NoAnswer,
            h: HangupSide::Gateway,
        })
        .unwrap();
        assert_eq!(s, "d = \"no_answer\"\nh = \"gateway\"\n");
    }

    #[test]
    fn disposition_from_final() {
        use Disposition::*;
        let cases = [
            (200, true, false, Answered),
            (200, false, true, Answered),
            (487, false, true, Cancelled),
            (487, false, false, NoAnswer),
            (486, false, false, Busy),
            (600, false, false, Busy),
            (480, false, false, NoAnswer),
            (408, false, false, Failed),
            (503, false, false, Failed),
            (500, false, false, Failed),
            (404, false, false, Rejected),
            (403, false, false, Rejected),
            (603, false, false, Rejected),
            (488, false, false, Rejected),
            (302, false, false, Failed),
            (0, false, false, Failed),
        ];
        for (status, answered, cancelled, want) in cases {
            assert_eq!(
                Disposition::from_final(status, answered, cancelled),
                want,
                "status {status} answered {answered} cancelled {cancelled}"
            );
        }
        assert_eq!(
            Disposition::from_final_with_ringing(408, false, false, true),
            NoAnswer
        );
    }

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
}

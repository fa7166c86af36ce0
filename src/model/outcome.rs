//! How an attempt ended, as typed codes: its disposition, who hung up, the gateway's end reason,
//! and — when the gateway refused it — the refusal reason (`refusal.rs`, re-exported here).
//!
//! Each code is written once, in its enum (`text_enum!`); every reason's SIP status line and
//! Retry-After are decided by one exhaustive `match`, so a new reason cannot be added without
//! them. The KPI counters and rules match on the variants, never on the text.

use serde::{Deserialize, Serialize};

pub use super::refusal::{RefusalReason, RetryAfter};
use super::status::StatusLine;

/// What became of the attempt, as the carrier counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
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

/// Who ended the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HangupSide {
    Inside,
    Outside,
    Gateway,
}
text_enum!(HangupSide, "hangup_side", {
    Inside => "inside", Outside => "outside", Gateway => "gateway",
});

impl From<super::Side> for HangupSide {
    fn from(side: super::Side) -> HangupSide {
        match side {
            super::Side::Inside => HangupSide::Inside,
            super::Side::Outside => HangupSide::Outside,
        }
    }
}

/// Why the attempt ended, in the gateway's words (the CDR's `end_reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// An answered call ended by a BYE from either side (`hangup_side` says which).
    NormalClearing,
    /// The caller abandoned before the answer (CANCEL, or BYE on the early dialog).
    Cancelled,
    /// The called side sent BYE on an early dialog (before answering).
    EarlyByeOutside,
    EarlyByeInside,
    /// No ACK came for the 2xx within 64·T1 (RFC 3261 §13.3.1.4).
    AckTimeout,
    /// Unanswered for `ring_timeout_secs`.
    RingTimeout,
    /// Answered longer than `max_call_secs`.
    MaxDuration,
    /// The called side answered 486 or 600.
    Busy,
    /// The called side answered 480 or 408.
    NoAnswer,
    /// The called side answered 404, 410, 484 or 604.
    InvalidNumber,
    /// The called side answered 5xx.
    FarEndFailure,
    /// Another final failure from the called side.
    Rejected,
    /// The carrier never answered the INVITE (timer B, after every carrier address).
    CarrierTimeout,
    /// The PBX never answered an inbound INVITE (timer B).
    PbxTimeout,
    /// No TLS connection to the carrier (its certificate failed verification, the handshake
    /// failed or it could not be reached), at every carrier address: 503 to the caller.
    CarrierTlsFailed,
    /// The gateway refused the attempt (`refusal_reason` says why).
    Refused,
    /// The provisional CDR of a call still running (journaled; never a final CDR).
    InProgress,
    /// The gateway stopped (crash, SIGKILL) with the call up; closed by the next start.
    GatewayRestart,
    /// The cluster node carrying the call died (its heartbeat stopped past `node_timeout_secs`)
    /// with the call up; closed by a surviving node.
    NodeLost,
    /// Ended by the gateway's orderly shutdown after the drain time.
    Shutdown,
    /// No RTP for `[media] timeout_secs` on an answered call.
    MediaTimeout,
    /// An operator hung it up (API).
    OperatorHangup,
    /// Its trunk was suspended while it was up (`hangup_on_suspend`).
    TrunkSuspended,
    /// Its caller ID was suspended while it was up (`hangup_on_suspend`).
    CallerIdSuspended,
    /// Its recording failed after recorded media started and `[recording] on_failure =
    /// "hangup"`: the gateway ended it rather than carry it unrecorded.
    RecordingFailed,
    /// The carrier challenged the call (401/407) and did not take the gateway's credentials
    /// (a second challenge, none configured, or a realm not ours to answer): the PBX got 403.
    CarrierAuthFailed,
    /// The carrier's SDP (the answer in its 2xx, or its offer there when the PBX sent none)
    /// could not be anchored — unparseable, or not an answer to the offer: the gateway ACKed
    /// and BYEd the carrier and gave the PBX 502; nothing of that SDP crossed.
    CarrierBadSdp,
    /// The same from the PBX (inbound calls: its 2xx; late offer: the answer in its ACK).
    PbxBadSdp,
    /// A re-offer's answer carried SRTP the gateway could not take (a plain answer on a
    /// `required` leg, a key it did not offer): the gateway ended the call rather than carry
    /// media it cannot decrypt.
    SrtpFailed,
}
text_enum!(EndReason, "end_reason", {
    NormalClearing => "normal_clearing", Cancelled => "cancelled",
    EarlyByeOutside => "early_bye_outside", EarlyByeInside => "early_bye_inside",
    AckTimeout => "ack_timeout", RingTimeout => "ring_timeout", MaxDuration => "max_duration",
    Busy => "busy", NoAnswer => "no_answer", InvalidNumber => "invalid_number",
    FarEndFailure => "far_end_failure", Rejected => "rejected",
    CarrierTimeout => "carrier_timeout", PbxTimeout => "pbx_timeout", Refused => "refused",
    InProgress => "in_progress", GatewayRestart => "gateway_restart", Shutdown => "shutdown",
    MediaTimeout => "media_timeout", OperatorHangup => "operator_hangup",
    TrunkSuspended => "trunk_suspended", CallerIdSuspended => "caller_id_suspended",
    RecordingFailed => "recording_failed", NodeLost => "node_lost",
    CarrierAuthFailed => "carrier_auth_failed", SrtpFailed => "srtp_failed",
    CarrierTlsFailed => "carrier_tls_failed",
    CarrierBadSdp => "carrier_bad_sdp", PbxBadSdp => "pbx_bad_sdp",
});

impl EndReason {
    /// The end reason of a call that ended on a final failure response from the far end.
    pub fn for_failure_status(code: u16) -> EndReason {
        match code {
            486 | 600 => EndReason::Busy,
            480 | 408 => EndReason::NoAnswer,
            404 | 410 | 484 | 604 => EndReason::InvalidNumber,
            487 => EndReason::Cancelled,
            500..=599 => EndReason::FarEndFailure,
            _ => EndReason::Rejected,
        }
    }

    /// The called side ended its early dialog with a BYE.
    pub fn early_bye_from(side: super::Side) -> EndReason {
        match side {
            super::Side::Outside => EndReason::EarlyByeOutside,
            super::Side::Inside => EndReason::EarlyByeInside,
        }
    }

    /// The peer on `side` sent SDP the gateway could not anchor.
    pub fn bad_sdp_from(side: super::Side) -> EndReason {
        match side {
            super::Side::Outside => EndReason::CarrierBadSdp,
            super::Side::Inside => EndReason::PbxBadSdp,
        }
    }
}

/// How a call ended: what was answered, how it counts, why, and who hung up. Given once to
/// [`super::Attempt::close`], which makes the CDR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ending {
    /// The final status the caller saw (200 for an answered call).
    pub status: u16,
    pub phrase: String,
    pub disposition: Disposition,
    pub reason: EndReason,
    /// Set when the gateway refused the attempt (then `reason` is `Refused`).
    pub refusal: Option<RefusalReason>,
    pub hangup: Option<HangupSide>,
    /// A cause the far end gave in `Reason: Q.850;cause=N`; wins over the status mapping.
    pub q850: Option<u8>,
}

impl Ending {
    pub fn new(line: StatusLine, disposition: Disposition, reason: EndReason) -> Ending {
        Ending::with_phrase(line.code, line.phrase, disposition, reason)
    }

    /// A status whose phrase came from elsewhere (the far end's response).
    pub fn with_phrase(
        status: u16,
        phrase: &str,
        disposition: Disposition,
        reason: EndReason,
    ) -> Ending {
        Ending {
            status,
            phrase: phrase.to_string(),
            disposition,
            reason,
            refusal: None,
            hangup: None,
            q850: None,
        }
    }

    /// An answered call that ended (200 OK on the CDR).
    pub fn answered(reason: EndReason, hangup: HangupSide) -> Ending {
        Ending::new(StatusLine::OK, Disposition::Answered, reason).by(hangup)
    }

    /// Refused by the gateway with the reason's own status line.
    pub fn refused(reason: RefusalReason) -> Ending {
        Ending::refused_as(reason, reason.status_line())
    }

    /// Refused by the gateway with another status than the reason's usual one (the
    /// validator's, the front end's, 484 for a number that cannot be carried).
    pub fn refused_as(reason: RefusalReason, line: StatusLine) -> Ending {
        Ending::refused_with_phrase(reason, line.code, line.phrase)
    }

    pub fn refused_with_phrase(reason: RefusalReason, status: u16, phrase: &str) -> Ending {
        Ending {
            refusal: Some(reason),
            ..Ending::with_phrase(status, phrase, Disposition::Refused, EndReason::Refused)
        }
    }

    /// The provisional ending of a call still running, for its journal entry.
    pub fn in_progress(answered: bool) -> Ending {
        let disposition = if answered {
            Disposition::Answered
        } else {
            Disposition::Failed
        };
        Ending::new(StatusLine::IN_PROGRESS, disposition, EndReason::InProgress)
    }

    /// Who hung up.
    pub fn by(mut self, side: HangupSide) -> Ending {
        self.hangup = Some(side);
        self
    }

    /// The far end's explicit Q.850 cause.
    pub fn with_q850(mut self, cause: Option<u8>) -> Ending {
        self.q850 = cause;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for d in Disposition::ALL {
            assert_eq!(d.as_str().parse::<Disposition>(), Ok(*d));
        }
        for r in EndReason::ALL {
            assert_eq!(r.as_str().parse::<EndReason>(), Ok(*r));
        }
        for r in RefusalReason::ALL {
            assert_eq!(r.as_str().parse::<RefusalReason>(), Ok(*r));
            assert_eq!(r.to_string(), r.as_str());
        }
        assert_eq!("gateway".parse::<HangupSide>(), Ok(HangupSide::Gateway));
        assert!("Refused".parse::<Disposition>().is_err());
        let err = "bye_sideways".parse::<EndReason>().unwrap_err();
        assert_eq!(err.to_string(), "unknown end_reason code `bye_sideways`");
    }

    #[test]
    fn codes_are_unique_snake_case() {
        let refusals: Vec<&str> = RefusalReason::ALL.iter().map(|r| r.as_str()).collect();
        let endings: Vec<&str> = EndReason::ALL.iter().map(|r| r.as_str()).collect();
        for codes in [&refusals, &endings] {
            let mut sorted = codes.clone();
            sorted.sort();
            sorted.dedup();
            assert_eq!(sorted.len(), codes.len(), "a code twice in {codes:?}");
            for c in codes.iter() {
                assert!(
                    c.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                    "{c}"
                );
            }
        }
    }

    #[test]
    fn serde_uses_the_stored_codes() {
        let json = serde_json::to_string(&(
            Disposition::NoAnswer,
            HangupSide::Gateway,
            EndReason::GatewayRestart,
            RefusalReason::CallerIdNotAuthorized,
        ))
        .unwrap();
        assert_eq!(
            json,
            r#"["no_answer","gateway","gateway_restart","caller_id_not_authorized"]"#
        );
    }

    #[test]
    fn refusals_carry_their_answer() {
        let r = RefusalReason::CallerIdNotAuthorized;
        assert_eq!(
            r.status_line(),
            StatusLine::new(403, "Caller ID Not Authorized")
        );
        assert_eq!(RefusalReason::RateLimited.retry_after_secs(7), Some(1));
        assert_eq!(RefusalReason::TrunkConcurrency.retry_after_secs(7), Some(7));
        assert_eq!(RefusalReason::NumberBlocked.retry_after_secs(7), None);
        assert_eq!(RefusalReason::DuplicateCallId.status_line().code, 482);
        let e = Ending::refused(RefusalReason::ShuttingDown);
        assert_eq!((e.status, e.phrase.as_str()), (503, "Service Unavailable"));
        assert_eq!(e.disposition, Disposition::Refused);
        assert_eq!(e.reason, EndReason::Refused);
        assert_eq!(e.refusal, Some(RefusalReason::ShuttingDown));
        let e = Ending::refused_as(RefusalReason::InvalidNumber, StatusLine::ADDRESS_INCOMPLETE);
        assert_eq!(e.status, 484);
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
    fn end_reason_of_a_failure_response() {
        assert_eq!(EndReason::for_failure_status(486), EndReason::Busy);
        assert_eq!(EndReason::for_failure_status(484), EndReason::InvalidNumber);
        assert_eq!(EndReason::for_failure_status(503), EndReason::FarEndFailure);
        assert_eq!(EndReason::for_failure_status(403), EndReason::Rejected);
    }
}

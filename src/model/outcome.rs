//! How an attempt ended, as typed codes: its disposition, who hung up, the gateway's end reason,
//! and — when the gateway refused it — the refusal reason with the SIP answer that goes with it.
//!
//! Each code is written once, in its enum (`text_enum!`); every reason's SIP status line and
//! Retry-After are decided by one exhaustive `match`, so a new reason cannot be added without
//! them. The KPI counters and rules match on the variants, never on the text.

use serde::{Deserialize, Serialize};

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
    CarrierTlsFailed => "carrier_tls_failed",
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
}

/// Why the gateway refused an attempt (the CDR's `refusal_reason`): the policy's reasons and
/// the gateway's own (no resource, a bad request, shutting down).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RefusalReason {
    // --- the admission policy ---
    /// The request names no configured trunk (e.g. removed by a live edit).
    UnknownTrunk,
    /// Outbound From or P-Asserted-Identity is not one of the trunk's numbers.
    CallerIdNotAuthorized,
    /// Outbound caller hides its identity and the trunk does not allow it.
    AnonymousNotAllowed,
    /// Caller or callee is on the trunk's block list.
    NumberBlocked,
    /// Outbound call outside the trunk's calling hours (in its time zone).
    OutsideCallingHours,
    /// The trunk's call-rate (CPS) bucket is empty.
    RateLimited,
    /// The trunk carries `max_concurrent` calls already.
    TrunkConcurrency,
    /// The line's number carries `max_concurrent_per_caller_id` calls already.
    CallerIdConcurrency,
    /// Inbound callee is a number, but not one of this trunk's.
    UnknownNumber,
    /// The callee is not a phone number at all (policy: 404), or the called user cannot be
    /// carried to the other side (484).
    InvalidNumber,
    /// The trunk is suspended (enforcement ladder or operator).
    TrunkSuspended,
    /// The presented caller ID is suspended.
    CallerIdSuspended,
    /// The trunk is throttled and carries its cut concurrency cap already.
    TrunkThrottled,
    /// The caller ID is throttled and carries its cut concurrency cap already.
    CallerIdThrottled,
    /// The trunk called this number as often as its callee limits allow.
    CalleeFrequencyLimit,
    /// A cluster node cannot reach the admission state shared by the nodes (Redis) and its
    /// `on_shared_state_down` is `refuse`: no cap can be checked against the others' calls.
    SharedStateUnavailable,
    // --- the gateway ---
    /// The INVITE came from no configured peer (`unknown_sources = "reject"`, or a trunk
    /// removed while the INVITE was on its way).
    UnknownSource,
    /// The INVITE parsed but failed validation (the validator's status is sent).
    InvalidRequest,
    /// The INVITE could not be parsed (the front end's status is sent).
    MalformedRequest,
    /// The gateway is stopping.
    ShuttingDown,
    /// The trunk names no carrier address.
    NoCarrier,
    /// No media port pair is free.
    MediaUnavailable,
    /// The Call-ID is live already on this side under another branch: a loop or a broken peer.
    DuplicateCallId,
    /// The INVITE's SDP offer cannot be parsed (not UTF-8, no `v=` first, a malformed line):
    /// 400, never carried on without its body.
    SdpMalformed,
    /// The offer is over the SDP parser's limits (size, 64 media lines): 488.
    SdpTooLarge,
    /// The offer asks for SRTP (`RTP/SAVP`, `a=crypto`), which the gateway does not terminate:
    /// 488, rather than relay and record encrypted audio as if it were clear.
    SrtpUnsupported,
    /// `[recording] required` and the recording could not start: the folder is not writable,
    RecordingNotWritable,
    /// … the disk is full,
    RecordingDiskFull,
    /// … the file exists already,
    RecordingExists,
    /// … the call id is no usable file name,
    RecordingBadCallId,
    /// … an I/O or WAV error,
    RecordingIoError,
    /// … an unfinished file could not be repaired,
    RecordingUnrepairable,
    /// … or the recorder is gone.
    RecordingUnavailable,
    /// The gateway carries as many calls as its file-descriptor budget allows (`RLIMIT_NOFILE`
    /// less a reserve, over the descriptors a call holds): refused before any port, lease or
    /// file is taken.
    DescriptorLimit,
    /// The SIP queue is late (a new INVITE waited in the socket's queue longer than
    /// `[sip] max_queue_delay_ms`): refused at once, before anything is taken (`b2bua::overload`).
    Overload,
}
text_enum!(RefusalReason, "refusal_reason", {
    UnknownTrunk => "unknown_trunk", CallerIdNotAuthorized => "caller_id_not_authorized",
    AnonymousNotAllowed => "anonymous_not_allowed", NumberBlocked => "number_blocked",
    OutsideCallingHours => "outside_calling_hours", RateLimited => "rate_limited",
    TrunkConcurrency => "trunk_concurrency", CallerIdConcurrency => "caller_id_concurrency",
    UnknownNumber => "unknown_number", InvalidNumber => "invalid_number",
    TrunkSuspended => "trunk_suspended", CallerIdSuspended => "caller_id_suspended",
    TrunkThrottled => "trunk_throttled", CallerIdThrottled => "caller_id_throttled",
    CalleeFrequencyLimit => "callee_frequency_limit",
    SharedStateUnavailable => "shared_state_unavailable",
    UnknownSource => "unknown_source", InvalidRequest => "invalid_request",
    MalformedRequest => "malformed_request", ShuttingDown => "shutting_down",
    NoCarrier => "no_carrier", MediaUnavailable => "media_unavailable",
    DuplicateCallId => "duplicate_call_id",
    SdpMalformed => "sdp_malformed", SdpTooLarge => "sdp_too_large",
    SrtpUnsupported => "srtp_unsupported",
    RecordingNotWritable => "recording_not_writable", RecordingDiskFull => "recording_disk_full",
    RecordingExists => "recording_exists", RecordingBadCallId => "recording_bad_call_id",
    RecordingIoError => "recording_io_error", RecordingUnrepairable => "recording_unrepairable",
    RecordingUnavailable => "recording_unavailable",
    DescriptorLimit => "descriptor_limit",
    Overload => "overload",
});

/// Whether a refusal carries `Retry-After`, and how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryAfter {
    None,
    /// One second: the call-rate bucket refills within it.
    OneSecond,
    /// The configured `retry_after_secs`: a slot, a port or the gateway may be free by then.
    Configured,
}

impl RefusalReason {
    /// The SIP answer this refusal gets. `InvalidRequest` and `MalformedRequest` are sent with
    /// the validator's or front end's own status (see [`Ending::refused_as`]); this is their
    /// usual one.
    pub fn status_line(self) -> StatusLine {
        use RefusalReason::*;
        let s = StatusLine::new;
        match self {
            UnknownTrunk => s(403, "Unknown Trunk"),
            CallerIdNotAuthorized => s(403, "Caller ID Not Authorized"),
            AnonymousNotAllowed => s(403, "Anonymous Caller ID Not Allowed"),
            NumberBlocked => s(403, "Number Blocked"),
            OutsideCallingHours => s(403, "Outside Calling Hours"),
            RateLimited => s(503, "Call Rate Exceeded"),
            TrunkConcurrency => s(503, "Trunk Concurrency Limit"),
            CallerIdConcurrency => s(503, "Caller ID Concurrency Limit"),
            UnknownNumber | InvalidNumber => StatusLine::NOT_FOUND,
            TrunkSuspended => s(403, "Trunk Suspended"),
            CallerIdSuspended => s(403, "Caller ID Suspended"),
            TrunkThrottled => s(503, "Trunk Throttled"),
            CallerIdThrottled => s(503, "Caller ID Throttled"),
            CalleeFrequencyLimit => s(480, "Callee Frequency Limit"),
            SharedStateUnavailable => s(503, "Shared State Unavailable"),
            UnknownSource => StatusLine::FORBIDDEN,
            InvalidRequest | MalformedRequest => StatusLine::BAD_REQUEST,
            ShuttingDown | NoCarrier | MediaUnavailable | DescriptorLimit => {
                StatusLine::SERVICE_UNAVAILABLE
            }
            Overload => s(503, "Overloaded"),
            DuplicateCallId => StatusLine::LOOP_DETECTED,
            SdpMalformed => s(400, "Malformed SDP"),
            SdpTooLarge => s(488, "SDP Too Large"),
            SrtpUnsupported => s(488, "SRTP Not Supported"),
            RecordingNotWritable
            | RecordingDiskFull
            | RecordingExists
            | RecordingBadCallId
            | RecordingIoError
            | RecordingUnrepairable
            | RecordingUnavailable => StatusLine::SERVICE_UNAVAILABLE,
        }
    }

    /// Whether the refusal tells the caller when to try again.
    pub fn retry_after(self) -> RetryAfter {
        use RefusalReason::*;
        match self {
            RateLimited => RetryAfter::OneSecond,
            TrunkConcurrency
            | CallerIdConcurrency
            | TrunkThrottled
            | CallerIdThrottled
            | ShuttingDown
            | MediaUnavailable
            | DescriptorLimit
            | Overload
            | SharedStateUnavailable => RetryAfter::Configured,
            RecordingNotWritable
            | RecordingDiskFull
            | RecordingExists
            | RecordingBadCallId
            | RecordingIoError
            | RecordingUnrepairable
            | RecordingUnavailable => RetryAfter::Configured,
            UnknownTrunk
            | CallerIdNotAuthorized
            | AnonymousNotAllowed
            | NumberBlocked
            | OutsideCallingHours
            | UnknownNumber
            | InvalidNumber
            | TrunkSuspended
            | CallerIdSuspended
            | CalleeFrequencyLimit
            | UnknownSource
            | InvalidRequest
            | MalformedRequest
            | NoCarrier
            | DuplicateCallId
            | SdpMalformed
            | SdpTooLarge
            | SrtpUnsupported => RetryAfter::None,
        }
    }

    /// The `Retry-After` seconds to send, given the configured value.
    pub fn retry_after_secs(self, configured: u32) -> Option<u32> {
        match self.retry_after() {
            RetryAfter::None => None,
            RetryAfter::OneSecond => Some(1),
            RetryAfter::Configured => Some(configured),
        }
    }

    /// The caller presented a number that is not the call center's: it is no subject of the
    /// KPIs (counting it would let a spoofing PBX create subjects at will).
    pub fn caller_is_foreign(self) -> bool {
        matches!(
            self,
            RefusalReason::CallerIdNotAuthorized
                | RefusalReason::AnonymousNotAllowed
                | RefusalReason::UnknownTrunk
        )
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

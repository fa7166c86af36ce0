//! Why the gateway refused an attempt — the CDR's `refusal_reason` — with the SIP answer and
//! the Retry-After that go with each reason. Every reason's status line and Retry-After are
//! decided by one exhaustive `match`, so a new reason cannot be added without them; the KPI
//! counters and rules match on the variants, never on the text.

use serde::{Deserialize, Serialize};

use super::status::StatusLine;

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
    /// The offer asks for SRTP the gateway cannot terminate — no `a=crypto` line it can use (an
    /// unknown suite, MKI, a short key lifetime, KDR ≠ 0, a bad key) — or an answer names a
    /// key it did not offer: 488, rather than relay and record encrypted audio as if clear.
    SrtpUnsupported,
    /// The offer asks for DTLS-SRTP (`UDP/TLS/RTP/SAVP`, `a=fingerprint`): the gateway keys SRTP
    /// by SDES only. 488.
    DtlsSrtpUnsupported,
    /// SRTP (`RTP/SAVP` + `a=crypto`) offered on a leg whose `media_encryption` is `none`: 488.
    SrtpNotAllowed,
    /// Plain RTP offered or answered on a leg whose `media_encryption` is `required`: 488.
    SrtpRequired,
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
    /// The trunk must be registered with its carrier (`register = true`) and is not (yet, or
    /// any more): outbound calls are refused `503 Trunk Not Registered`.
    TrunkNotRegistered,
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
    DtlsSrtpUnsupported => "dtls_srtp_unsupported", SrtpNotAllowed => "srtp_not_allowed",
    SrtpRequired => "srtp_required",
    RecordingNotWritable => "recording_not_writable", RecordingDiskFull => "recording_disk_full",
    RecordingExists => "recording_exists", RecordingBadCallId => "recording_bad_call_id",
    RecordingIoError => "recording_io_error", RecordingUnrepairable => "recording_unrepairable",
    RecordingUnavailable => "recording_unavailable",
    DescriptorLimit => "descriptor_limit",
    Overload => "overload",
    TrunkNotRegistered => "trunk_not_registered",
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
            TrunkNotRegistered => s(503, "Trunk Not Registered"),
            UnknownSource => StatusLine::FORBIDDEN,
            InvalidRequest | MalformedRequest => StatusLine::BAD_REQUEST,
            ShuttingDown | NoCarrier | MediaUnavailable | DescriptorLimit => {
                StatusLine::SERVICE_UNAVAILABLE
            }
            Overload => s(503, "Overloaded"),
            DuplicateCallId => StatusLine::LOOP_DETECTED,
            SdpMalformed => s(400, "Malformed SDP"),
            SdpTooLarge => s(488, "SDP Too Large"),
            SrtpUnsupported => s(488, "SRTP Crypto Not Supported"),
            DtlsSrtpUnsupported => s(488, "DTLS-SRTP Not Supported"),
            SrtpNotAllowed => s(488, "SRTP Not Allowed"),
            SrtpRequired => s(488, "SRTP Required"),
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
            | SharedStateUnavailable
            | TrunkNotRegistered => RetryAfter::Configured,
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
            | SrtpUnsupported
            | DtlsSrtpUnsupported
            | SrtpNotAllowed
            | SrtpRequired => RetryAfter::None,
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

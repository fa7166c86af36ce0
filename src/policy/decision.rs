//! What `Policy::admit` is asked and what it answers: an admission holding its lease, or a
//! refusal carrying the SIP response and the machine reason stored in CDRs.

use std::fmt;

use super::lease::Lease;

/// Which way a call crosses the trunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// PBX → carrier: the caller ID must be one of the trunk's numbers.
    Outbound,
    /// Carrier → PBX: the called number must be one of the trunk's numbers.
    Inbound,
}

impl Direction {
    pub fn as_str(&self) -> &'static str {
        match self {
            Direction::Outbound => "outbound",
            Direction::Inbound => "inbound",
        }
    }
}

/// One INVITE to judge. URIs are passed raw, as found in the message (`sip:`, `sips:`, `tel:`,
/// with or without `<>` and a display name); the policy does its own normalization.
#[derive(Debug, Clone, Copy)]
pub struct AdmissionRequest<'a> {
    /// Trunk name, as classified by `pbx_trunk` / `carrier_trunk` / `inbound_trunk`.
    pub trunk: &'a str,
    pub direction: Direction,
    /// From URI, e.g. `sip:+861012345678@10.0.0.1`.
    pub from_uri: &'a str,
    /// P-Asserted-Identity URI, when the header is present.
    pub pai_uri: Option<&'a str>,
    /// Raw Privacy header value (RFC 3323 / RFC 3325), when present.
    pub privacy: Option<&'a str>,
    /// Request-URI (or To URI) of the called party.
    pub callee_uri: &'a str,
}

/// The answer to an admission request.
#[derive(Debug)]
pub enum Decision {
    Admit(Admission),
    Refuse(Refusal),
}

impl Decision {
    pub fn is_admit(&self) -> bool {
        matches!(self, Decision::Admit(_))
    }

    pub fn refusal(&self) -> Option<&Refusal> {
        match self {
            Decision::Refuse(r) => Some(r),
            Decision::Admit(_) => None,
        }
    }

    pub fn admission(self) -> Option<Admission> {
        match self {
            Decision::Admit(a) => Some(a),
            Decision::Refuse(_) => None,
        }
    }
}

/// An admitted call. The lease must live exactly as long as the call: dropping it frees the slot.
#[derive(Debug)]
pub struct Admission {
    pub lease: Lease,
    /// Normalized caller: the From number, or the P-Asserted-Identity number when From is
    /// anonymous. `None` only for an inbound caller that presented no number.
    pub caller: Option<String>,
    /// Normalized called number.
    pub callee: Option<String>,
}

/// A refused call: what to answer (status, phrase, Retry-After) and what to record (reason and
/// whatever numbers could be normalized).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    /// SIP reason phrase for the status line.
    pub phrase: String,
    pub reason: RefusalReason,
    /// Retry-After seconds (503 refusals only).
    pub retry_after: Option<u32>,
    pub caller: Option<String>,
    pub callee: Option<String>,
}

impl Refusal {
    /// The refusal with this reason's status, phrase and Retry-After. `retry_after_secs` is used
    /// by the concurrency reasons; a rate refusal always says 1 s (the bucket refills within it).
    pub(super) fn new(
        reason: RefusalReason,
        retry_after_secs: u32,
        caller: Option<String>,
        callee: Option<String>,
    ) -> Refusal {
        use RefusalReason::*;
        let (status, phrase, retry_after) = match reason {
            UnknownTrunk => (403, "Unknown Trunk", None),
            CallerIdNotAuthorized => (403, "Caller ID Not Authorized", None),
            AnonymousNotAllowed => (403, "Anonymous Caller ID Not Allowed", None),
            NumberBlocked => (403, "Number Blocked", None),
            OutsideCallingHours => (403, "Outside Calling Hours", None),
            RateLimited => (503, "Call Rate Exceeded", Some(1)),
            TrunkConcurrency => (503, "Trunk Concurrency Limit", Some(retry_after_secs)),
            CallerIdConcurrency => (503, "Caller ID Concurrency Limit", Some(retry_after_secs)),
            UnknownNumber | InvalidNumber => (404, "Not Found", None),
            TrunkSuspended => (403, "Trunk Suspended", None),
            CallerIdSuspended => (403, "Caller ID Suspended", None),
            TrunkThrottled => (503, "Trunk Throttled", Some(retry_after_secs)),
            CallerIdThrottled => (503, "Caller ID Throttled", Some(retry_after_secs)),
            CalleeFrequencyLimit => (480, "Callee Frequency Limit", None),
        };
        Refusal {
            status,
            phrase: phrase.to_string(),
            reason,
            retry_after,
            caller,
            callee,
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} ({})",
            self.status,
            self.phrase,
            self.reason.code()
        )
    }
}

/// Why a call was refused; `code()` is the stable machine code stored in CDRs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RefusalReason {
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
    /// The callee is not a phone number at all.
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
}

impl RefusalReason {
    pub const ALL: [RefusalReason; 15] = [
        RefusalReason::UnknownTrunk,
        RefusalReason::CallerIdNotAuthorized,
        RefusalReason::AnonymousNotAllowed,
        RefusalReason::NumberBlocked,
        RefusalReason::OutsideCallingHours,
        RefusalReason::RateLimited,
        RefusalReason::TrunkConcurrency,
        RefusalReason::CallerIdConcurrency,
        RefusalReason::UnknownNumber,
        RefusalReason::InvalidNumber,
        RefusalReason::TrunkSuspended,
        RefusalReason::CallerIdSuspended,
        RefusalReason::TrunkThrottled,
        RefusalReason::CallerIdThrottled,
        RefusalReason::CalleeFrequencyLimit,
    ];

    pub fn code(&self) -> &'static str {
        match self {
            RefusalReason::UnknownTrunk => "unknown_trunk",
            RefusalReason::CallerIdNotAuthorized => "caller_id_not_authorized",
            RefusalReason::AnonymousNotAllowed => "anonymous_not_allowed",
            RefusalReason::NumberBlocked => "number_blocked",
            RefusalReason::OutsideCallingHours => "outside_calling_hours",
            RefusalReason::RateLimited => "rate_limited",
            RefusalReason::TrunkConcurrency => "trunk_concurrency",
            RefusalReason::CallerIdConcurrency => "caller_id_concurrency",
            RefusalReason::UnknownNumber => "unknown_number",
            RefusalReason::InvalidNumber => "invalid_number",
            RefusalReason::TrunkSuspended => "trunk_suspended",
            RefusalReason::CallerIdSuspended => "caller_id_suspended",
            RefusalReason::TrunkThrottled => "trunk_throttled",
            RefusalReason::CallerIdThrottled => "caller_id_throttled",
            RefusalReason::CalleeFrequencyLimit => "callee_frequency_limit",
        }
    }

    /// The reason for a stored code (reading CDRs back).
    pub fn from_code(code: &str) -> Option<RefusalReason> {
        RefusalReason::ALL.into_iter().find(|r| r.code() == code)
    }
}

impl fmt::Display for RefusalReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

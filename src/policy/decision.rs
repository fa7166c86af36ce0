//! What `Policy::admit` is asked and what it answers: an admission holding its lease, or a
//! refusal carrying the SIP response and the machine reason stored in CDRs.

use std::fmt;

use super::lease::Lease;
use crate::cluster::SharedLease;
use crate::model::{Direction, RefusalReason};

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

/// An admitted call's slots: on this node always (its own load), and for a cluster node in the
/// shared state too (the slot the caps count). Dropping it frees both, each exactly once.
#[derive(Debug)]
#[must_use = "dropping the lease immediately frees the slot"]
pub struct AdmissionLease {
    local: Lease,
    /// `None` on a single node, and on a cluster node admitted by the local fallback before
    /// the shared state adopted the call.
    shared: Option<SharedLease>,
}

impl AdmissionLease {
    pub(super) fn local(local: Lease) -> AdmissionLease {
        AdmissionLease {
            local,
            shared: None,
        }
    }

    pub(super) fn shared(local: Lease, shared: SharedLease) -> AdmissionLease {
        AdmissionLease {
            local,
            shared: Some(shared),
        }
    }

    /// Calls on the trunk right after the grant, this one counted: across the cluster when the
    /// shared state granted it. The CDR keeps it for the peak-concurrency KPI.
    pub fn trunk_active_at_grant(&self) -> u32 {
        match &self.shared {
            Some(s) if s.trunk_active_at_grant() > 0 => s.trunk_active_at_grant(),
            _ => self.local.trunk_active_at_grant(),
        }
    }

    /// Calls on the lease's line right after the grant, this one counted (cluster-wide when
    /// the shared state granted it).
    pub fn number_active_at_grant(&self) -> u32 {
        match &self.shared {
            Some(s) if s.number_active_at_grant() > 0 => s.number_active_at_grant(),
            _ => self.local.number_active_at_grant(),
        }
    }

    pub fn trunk(&self) -> &str {
        self.local.trunk()
    }

    pub fn number(&self) -> &str {
        self.local.number()
    }

    /// Give a call admitted by the local fallback its slot in the shared state.
    pub(super) fn adopt(&mut self, shared: SharedLease) {
        self.shared = Some(shared);
    }

    /// Whether the shared state holds this call's slot (a cluster node's call).
    pub fn is_shared(&self) -> bool {
        self.shared.is_some()
    }

    /// Free the slots now; the same as dropping the lease.
    pub fn release(self) {}
}

/// An admitted call. The lease must live exactly as long as the call: dropping it frees the slot.
#[derive(Debug)]
pub struct Admission {
    pub lease: AdmissionLease,
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
    /// The refusal with this reason's status, phrase and Retry-After (`retry_after_secs` is
    /// what the reasons that take the configured value say).
    pub(super) fn new(
        reason: RefusalReason,
        retry_after_secs: u32,
        caller: Option<String>,
        callee: Option<String>,
    ) -> Refusal {
        let line = reason.status_line();
        Refusal {
            status: line.code,
            phrase: line.phrase.to_string(),
            reason,
            retry_after: reason.retry_after_secs(retry_after_secs),
            caller,
            callee,
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} ({})", self.status, self.phrase, self.reason)
    }
}

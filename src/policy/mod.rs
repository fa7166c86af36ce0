//! Admission decisions: trunk peer, caller-ID authorization, concurrency leases, rate limits,
//! calling hours, blocks. A refusal is a value carrying its reason and SIP response.

mod number;

pub use number::normalize_number;

//! Retention (`[retention]`): recordings and CDRs are kept for a number of days after their
//! call, then deleted by a purge ([`purge::purge`], a function of `now`), unless the call is on
//! legal hold. The gateway runs it daily ([`task::spawn`]: first run a minute after the start,
//! stopped by the shutdown); `trunkguard retention run` runs it once from the command line.
//!
//! What goes, what stays, and why:
//! - a recording's files (WAV, pcap) are deleted; its `recordings` row stays, marked
//!   `purged_at` (status, digests, size: the record that it existed and what it was);
//! - a CDR is deleted with its media legs, DTMF and recording row (ON DELETE CASCADE) and its
//!   complaint links (`complaint_cdrs`): the complaint itself stays (the complainant's record,
//!   not the call's). A CDR is only deleted once its recording has no file left, so no file is
//!   ever orphaned;
//! - anomalies and their example call ids (`anomaly_calls`), the enforcement log and the audit
//!   log stay: they are the gateway's own decisions and accesses (append-only), evidence of
//!   what was done and why, and hold call ids only, not the call's content;
//! - KPI buckets stay (per-hour aggregates);
//! - every deletion is a row in `retention_log` (kind, call id, file, when) and each run logs
//!   its counts.

pub mod purge;
pub mod task;

pub use purge::{purge, purge_on, PurgeReport};

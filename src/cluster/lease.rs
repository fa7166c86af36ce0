//! `SharedLease`: one call's slot in the shared state, released exactly once when dropped.
//!
//! `Drop` cannot wait for Redis, so it takes the lease out of the node's registry at once (from
//! then on no reconciliation puts it back) and hands its id to the node's worker, which runs
//! the release script, retrying while Redis is unreachable. The script itself is idempotent:
//! a lease released twice is counted once.

use std::fmt;
use std::sync::Arc;

use tokio::sync::mpsc::UnboundedSender;

use super::status::ClusterCounters;
use super::Core;

/// A lease as the node's registry keeps it: what the node reports as its live calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Held {
    pub trunk: String,
    pub line: String,
}

/// One concurrency slot on a trunk and on a line, across the cluster, held by a live call.
/// Not `Clone`; released by `Drop` only, whatever ends the call.
#[must_use = "dropping the lease immediately frees the slot"]
pub struct SharedLease {
    id: String,
    trunk: String,
    line: String,
    trunk_active: u32,
    line_active: u32,
    core: Arc<Core>,
    releases: UnboundedSender<String>,
}

impl SharedLease {
    pub(super) fn new(
        core: &Arc<Core>,
        releases: &UnboundedSender<String>,
        id: String,
        held: Held,
        (trunk_active, line_active): (u32, u32),
    ) -> SharedLease {
        SharedLease {
            id,
            trunk: held.trunk,
            line: held.line,
            trunk_active,
            line_active,
            core: Arc::clone(core),
            releases: releases.clone(),
        }
    }

    /// The lease's id in Redis (unique per node incarnation).
    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn trunk(&self) -> &str {
        &self.trunk
    }

    /// The line number (outbound caller ID, inbound called number) the slot counts on.
    pub fn line(&self) -> &str {
        &self.line
    }

    /// Calls on the trunk across the cluster right after the grant (this one counted).
    pub fn trunk_active_at_grant(&self) -> u32 {
        self.trunk_active
    }

    /// Calls on the line across the cluster right after the grant (this one counted).
    pub fn number_active_at_grant(&self) -> u32 {
        self.line_active
    }

    /// Free the slot now; the same as dropping the lease.
    pub fn release(self) {}
}

impl Drop for SharedLease {
    fn drop(&mut self) {
        self.core.forget(&self.id);
        if self.releases.send(self.id.clone()).is_err() {
            // The worker is gone (the node is stopping): its keys expire or are reclaimed.
            ClusterCounters::add(&self.core.counters.releases_dropped, 1);
        }
    }
}

impl fmt::Debug for SharedLease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedLease")
            .field("id", &self.id)
            .field("trunk", &self.trunk)
            .field("line", &self.line)
            .finish()
    }
}

//! What a previous run left behind, settled before the first new call: its CDR spool stored,
//! its journaled calls claimed, its open recordings repaired, its interrupted calls closed.

use std::path::Path;
use std::time::Duration;

use crate::config::Config;
use crate::monitor::cdr_writer::CdrSink;
use crate::monitor::recovery::{Interrupted, OwnCalls};
use crate::recording::repair::{repair_all_except, RepairReport};
use crate::store::Store;

/// How long a start waits for a previous run's CDR spool to reach the database before it closes
/// interrupted calls anyway (a database still refusing writes must not keep the gateway down).
const SPOOL_REPLAY_WAIT: Duration = Duration::from_secs(30);

/// A previous run's spool may hold final CDRs of calls the journal still lists: they are stored
/// first (a final CDR deletes its journal row), so that recovery does not close those calls as
/// interrupted. Bounded by `SPOOL_REPLAY_WAIT`.
pub(super) async fn replay_spool(cdrs: &CdrSink) {
    cdrs.spool_replayed(SPOOL_REPLAY_WAIT).await;
}

/// This node's journaled calls, claimed before its recordings are repaired: with several
/// nodes on one database a node closes only its own (`[cluster] node_id`), and none that a
/// survivor is closing already (it found this node lost while it was down).
pub(super) async fn claim_own_calls(store: &Store, node: Option<&str>) -> OwnCalls {
    crate::monitor::recovery::claim_own_calls(store, node).await
}

/// Repairs every recording a crash left open (`.part`) in this node's own folder (`[recording]
/// dir`, or its `node_id` folder in a cluster: the folder may be shared), but those of calls a
/// survivor is closing, before the interrupted calls are closed (their CDRs name the repaired
/// file, marked incomplete) and before the recorders start writing in the same folder.
pub(super) async fn repair_recordings(
    root: &Path,
    node: Option<&str>,
    own: &OwnCalls,
) -> RepairReport {
    let dir = crate::recording::paths::node_dir(root, node);
    let repaired = repair_all_except(dir, own.held_elsewhere.clone()).await;
    for r in &repaired.repaired {
        tracing::warn!(call_id = %r.call_id, path = %r.path.display(), duration_ms = r.duration_ms, "recording left open by a crash repaired");
    }
    for (path, why) in &repaired.failed {
        tracing::error!(path = %path.display(), error = %why, "recording left open by a crash could not be repaired");
    }
    repaired
}

/// Closes the CDR of every call of this node still journaled (claimed at the start: `own`;
/// end reason `gateway_restart`). After the spool replay and the repair (see them), and after
/// the monitor has refilled its windows: these CDRs reach it through the writer's feed alone,
/// never also through the refill (counted once). Returns the calls whose peers may still hold
/// dialogs.
pub(super) fn close_interrupted_calls(
    cdrs: &CdrSink,
    own: OwnCalls,
    repaired: &RepairReport,
    config: &Config,
) -> Vec<Interrupted> {
    crate::monitor::recovery::close_interrupted_calls(cdrs, own, repaired, &config.recording.dir)
}

//! A lost cluster node's calls (issue 13, item 5): its heartbeat stopped past
//! `node_timeout_secs`, so the calls it carried are gone with it (their media went through it).
//! A survivor closes them like a restart closes its own: the journal rows of that node are
//! claimed (one closer per call), each recording the survivor can reach in the shared
//! recordings folder is repaired (`recording::repair::repair_part`), and the CDRs are closed
//! with end reason `node_lost`, recordings marked incomplete. The caller then ends the peers'
//! dialogs (`b2bua::restart`).

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use super::{close_and_submit, readable, Interrupted, CLAIM_STALE};
use crate::model::EndReason;
use crate::monitor::cdr_writer::CdrSink;
use crate::recording::paths;
use crate::recording::repair::repair_part;
use crate::recording::RepairedRecording;
use crate::store::{JournalClaim, Store};

/// Whose calls, closed by whom.
#[derive(Debug, Clone, Copy)]
pub struct LostNode<'a> {
    /// The lost node's id (`None`: rows of a single node, or from before the journal named
    /// nodes, found by the sweep).
    pub node: Option<&'a str>,
    /// This node's id.
    pub closer: &'a str,
    /// Only calls journaled at or before this moment: when the node was found lost (a node
    /// restarted under the same id journals its new calls later).
    pub journaled_before: DateTime<Utc>,
}

/// Close the calls `lost.node` left in the journal (see the module documentation), `root` being
/// this node's `[recording] dir`. Returns the calls closed here: none if another node closes
/// them (or has), or the database cannot be read (logged; a later sweep tries again).
pub async fn close_lost_node_calls(
    store: &Store,
    sink: &CdrSink,
    root: &Path,
    lost: LostNode<'_>,
) -> Vec<Interrupted> {
    let now = Utc::now();
    let node = lost.node.unwrap_or("");
    let claim = JournalClaim {
        node: lost.node,
        closer: lost.closer,
        journaled_before: lost.journaled_before,
        now,
        stale_before: now - CLAIM_STALE,
    };
    let claimed = match store.claim_journaled_calls(claim).await {
        Ok(claimed) => claimed,
        Err(e) => {
            tracing::error!(node, error = %e, "cannot claim a lost node's journaled calls: left for a later sweep");
            return Vec::new();
        }
    };
    let calls = readable(claimed.calls);
    if calls.is_empty() {
        return Vec::new();
    }
    let parts: Vec<Option<PathBuf>> = calls
        .iter()
        .map(|c| {
            c.recording_part
                .as_deref()
                .map(|p| paths::resolve(root, Path::new(p)))
        })
        .collect();
    let repaired = tokio::task::spawn_blocking(move || {
        parts
            .into_iter()
            .map(|part| part.and_then(|part| repaired(&part)))
            .collect::<Vec<_>>()
    })
    .await
    .unwrap_or_default();
    let closed: Vec<Interrupted> = calls
        .into_iter()
        .enumerate()
        .map(|(i, call)| {
            let rec = repaired.get(i).and_then(Option::as_ref);
            close_and_submit(sink, call, rec, EndReason::NodeLost, root)
        })
        .collect();
    tracing::warn!(
        node,
        calls = closed.len(),
        recordings_repaired = repaired.iter().flatten().count(),
        "a lost node's calls closed (node_lost)"
    );
    closed
}

/// A lost node's `.wav.part`, repaired when this node can reach it.
fn repaired(part: &Path) -> Option<RepairedRecording> {
    match repair_part(part) {
        Ok(Some(r)) => {
            tracing::warn!(call_id = %r.call_id, path = %r.path.display(), duration_ms = r.duration_ms,
                "a lost node's recording repaired");
            Some(r)
        }
        Ok(None) => {
            tracing::warn!(path = %part.display(),
                "a lost node's recording is not reachable from this node (recordings folder not shared?)");
            None
        }
        Err(e) => {
            tracing::error!(path = %part.display(), error = %e, "cannot repair a lost node's recording");
            None
        }
    }
}

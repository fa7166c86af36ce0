//! Who closes a journaled call. With several nodes on one database, the journal holds every
//! node's calls in progress (`call_journal.node`, `[cluster] node_id`; NULL on a single node).
//! A call is closed without its node when the node crashed: by the node itself at its next
//! start, or by a survivor once the node is lost (issue 13). Both may look at the same rows at
//! the same moment (a node restarting while a survivor closes its calls, two survivors' safety
//! sweeps), so a closer first *claims* the rows: one UPDATE sets `closing_by`/`closing_at` on
//! the rows nobody else holds, and returns exactly those. Each row has one closer, so one CDR
//! is written and one BYE sent per call.
//!
//! A claim older than `stale_before` is taken over (its closer died before the call's CDR was
//! stored, which deletes the row). Rows journaled after `journaled_before` are left alone: a
//! node restarted under the same id journals its new calls with a later time.

use std::collections::HashSet;

use chrono::{DateTime, Utc};

use super::journal_queries::JournaledCall;
use super::{Op, Store, StoreError};

const CLAIM: &str = "UPDATE call_journal SET closing_by = $2, closing_at = $3 \
     WHERE node IS NOT DISTINCT FROM $1 AND updated_at <= $4 \
     AND (closing_by IS NULL OR closing_by = $2 OR closing_at < $5) \
     RETURNING id, cdr_json, recording_part, dialogs_json, updated_at";

const HELD_ELSEWHERE: &str = "SELECT id FROM call_journal \
     WHERE node IS NOT DISTINCT FROM $1 AND closing_by IS NOT NULL AND closing_by <> $2 \
     AND closing_at >= $3";

const NODES: &str = "SELECT DISTINCT node FROM call_journal";

/// A claim on a node's journaled calls.
#[derive(Debug, Clone, Copy)]
pub struct JournalClaim<'a> {
    /// Whose calls: a node id, or `None` for a single node's (and rows from before the journal
    /// named nodes).
    pub node: Option<&'a str>,
    /// Who closes them: this node's id (`""` on a single node).
    pub closer: &'a str,
    /// Only rows last journaled at or before this moment.
    pub journaled_before: DateTime<Utc>,
    /// The claim's time.
    pub now: DateTime<Utc>,
    /// A claim by another closer older than this is taken over.
    pub stale_before: DateTime<Utc>,
}

/// What a claim got.
#[derive(Debug, Default)]
pub struct Claimed {
    /// The calls this closer now holds, oldest entry first; a row that does not decode is an
    /// `Err` (it stays, claimed, until a CDR with its id is stored).
    pub calls: Vec<Result<JournaledCall, StoreError>>,
    /// The node's journaled calls another closer holds: theirs to close, recordings included.
    pub held_elsewhere: HashSet<String>,
}

impl Store {
    /// Claim `claim.node`'s journaled calls for `claim.closer` (see the module documentation),
    /// in one write transaction.
    pub async fn claim_journaled_calls(
        &self,
        claim: JournalClaim<'_>,
    ) -> Result<Claimed, StoreError> {
        dispatch!(self, claim_journaled_calls(claim))
    }

    /// The nodes that have calls in the journal (`None`: a single node's rows).
    pub async fn journaled_nodes(&self) -> Result<Vec<Option<String>>, StoreError> {
        dispatch!(self, journaled_nodes())
    }
}

per_backend! {
    uses(journal_queries);

    pub(super) async fn claim_journaled_calls(
        pool: &DbPool,
        claim: JournalClaim<'_>,
    ) -> Result<Claimed, StoreError> {
        let key = claim.node.unwrap_or("");
        let mut tx = Dialect::begin_write(pool).await.op_on("begin journal claim", key)?;
        let rows = sqlx::query(CLAIM)
            .bind(claim.node)
            .bind(claim.closer)
            .bind(Dialect::time(claim.now))
            .bind(Dialect::time(claim.journaled_before))
            .bind(Dialect::time(claim.stale_before))
            .fetch_all(&mut *tx)
            .await
            .op_on("claim journaled calls of node", key)?;
        let held: Vec<String> = sqlx::query_scalar(HELD_ELSEWHERE)
            .bind(claim.node)
            .bind(claim.closer)
            .bind(Dialect::time(claim.stale_before))
            .fetch_all(&mut *tx)
            .await
            .op_on("read journaled calls claimed elsewhere of node", key)?;
        tx.commit().await.op_on("commit journal claim", key)?;
        let mut calls: Vec<_> = rows.iter().map(journal_queries::journaled_from_row).collect();
        // RETURNING has no order: oldest entry first, as `journaled_calls` reads them.
        calls.sort_by(|a, b| match (a, b) {
            (Ok(a), Ok(b)) => (a.updated_at, &a.cdr.attempt.id).cmp(&(b.updated_at, &b.cdr.attempt.id)),
            (Ok(_), Err(_)) => std::cmp::Ordering::Less,
            (Err(_), Ok(_)) => std::cmp::Ordering::Greater,
            (Err(_), Err(_)) => std::cmp::Ordering::Equal,
        });
        Ok(Claimed {
            calls,
            held_elsewhere: held.into_iter().collect(),
        })
    }

    pub(super) async fn journaled_nodes(pool: &DbPool) -> Result<Vec<Option<String>>, StoreError> {
        sqlx::query_scalar(NODES)
            .fetch_all(pool)
            .await
            .op("read the nodes of the call journal")
    }
}

#[cfg(test)]
#[path = "journal_claims_tests.rs"]
mod tests;

//! `trunkguard audit verify`: walk the audit and enforcement logs' hash chains (see
//! `store::chain`) and name every row that was edited, deleted or inserted outside the gateway.
//!
//! What the walk can and cannot see: an edited row no longer matches its own link; a deleted
//! row leaves its successor pointing at a link no row has (the ids on both sides of the gap are
//! named); a row inserted outside the gateway has no link or one that does not follow. The rows
//! deleted at the *end* of a log leave no successor to notice: that is what the head sealed in
//! the daily manifest is for (`expected_head`).

use serde::Serialize;

use crate::store::chain::{ChainLink, ChainedLog, ChainedRow, GENESIS, PAGE};
use crate::store::{Store, StoreError};

/// What is wrong with one place in a chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ChainFinding {
    /// The row's content does not hash to its stored link: it was changed after it was written.
    Edited { id: i64 },
    /// The row does not follow the one before it: rows between `after_id` and `id` were deleted
    /// (or this row was put in from elsewhere). `after_id` is `None` at the chain's start.
    Broken {
        id: i64,
        after_id: Option<i64>,
        missing_ids: bool,
    },
    /// A row without a link after the chain began: not written by the gateway.
    Unlinked { id: i64 },
    /// The chain's newest link is not the head sealed earlier: rows at the end were deleted,
    /// or the chain was rewritten.
    HeadMismatch { expected: String, found: String },
}

/// One log's verification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainReport {
    pub log: &'static str,
    /// Rows read.
    pub rows: u64,
    /// Rows with a link (the chain).
    pub chained: u64,
    /// Rows written before the chain began (no link, before the first linked row): not covered.
    pub before_chain: u64,
    /// The newest linked row and its link: what a manifest seals.
    pub head_id: Option<i64>,
    pub head_sha256: String,
    pub findings: Vec<ChainFinding>,
}

impl ChainReport {
    pub fn ok(&self) -> bool {
        self.findings.is_empty()
    }
}

/// Walks `log` from its first row. `expected_head`, a link sealed earlier (a manifest's), must
/// still be one of the chain's links: if not, rows after it were deleted or the chain rewritten.
pub async fn verify_chain(
    store: &Store,
    log: ChainedLog,
    expected_head: Option<&str>,
) -> Result<ChainReport, StoreError> {
    let mut walk = Walk::new(log);
    let mut after = 0;
    loop {
        let page = store.chained_rows(log, after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.id;
        for row in &page {
            walk.row(row, expected_head);
        }
        if page.len() < PAGE as usize {
            break;
        }
    }
    Ok(walk.finish(expected_head))
}

/// The walk's state between rows.
struct Walk {
    report: ChainReport,
    /// The previous linked row: its id and link.
    prev: Option<(i64, String)>,
    /// The id of the row read just before (linked or not).
    last_id: Option<i64>,
    expected_seen: bool,
}

impl Walk {
    fn new(log: ChainedLog) -> Walk {
        Walk {
            report: ChainReport {
                log: log.table(),
                rows: 0,
                chained: 0,
                before_chain: 0,
                head_id: None,
                head_sha256: GENESIS.to_string(),
                findings: Vec::new(),
            },
            prev: None,
            last_id: None,
            expected_seen: false,
        }
    }

    fn row(&mut self, row: &ChainedRow, expected_head: Option<&str>) {
        let r = &mut self.report;
        r.rows += 1;
        let last_id = self.last_id.replace(row.id);
        let Some(link) = &row.link else {
            if self.prev.is_none() {
                r.before_chain += 1;
            } else {
                r.findings.push(ChainFinding::Unlinked { id: row.id });
            }
            return;
        };
        r.chained += 1;
        if ChainLink::after(&link.prev_sha256, &row.content).row_sha256 != link.row_sha256 {
            r.findings.push(ChainFinding::Edited { id: row.id });
        }
        let (after_id, follows) = match &self.prev {
            Some((id, hash)) => (Some(*id), *hash == link.prev_sha256),
            None => (None, link.prev_sha256 == GENESIS),
        };
        if !follows {
            // Ids are given in order: a gap before this row means rows were taken out.
            let missing_ids = last_id.is_some_and(|l| row.id > l + 1)
                || (last_id.is_none() && link.prev_sha256 != GENESIS);
            r.findings.push(ChainFinding::Broken {
                id: row.id,
                after_id,
                missing_ids,
            });
        }
        if expected_head == Some(link.row_sha256.as_str()) {
            self.expected_seen = true;
        }
        self.prev = Some((row.id, link.row_sha256.clone()));
    }

    fn finish(mut self, expected_head: Option<&str>) -> ChainReport {
        if let Some((id, hash)) = &self.prev {
            self.report.head_id = Some(*id);
            self.report.head_sha256 = hash.clone();
        }
        if let Some(expected) = expected_head {
            if !self.expected_seen && expected != GENESIS {
                self.report.findings.push(ChainFinding::HeadMismatch {
                    expected: expected.to_string(),
                    found: self.report.head_sha256.clone(),
                });
            }
        }
        self.report
    }
}

#[cfg(test)]
#[path = "chain_tests.rs"]
mod tests;

//! What one batch is made of: the submissions taken from the channel and the overflow list
//! (in submission order), less the journal entries the batch itself supersedes.

use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TryRecvError;

use super::{Shared, BATCH_MAX};
use crate::store::CdrWrite;

/// Drop the journal entries the batch itself supersedes: an entry followed in the batch by
/// another entry or by the final CDR of the same call would be overwritten (an upsert) or
/// deleted (storing a CDR removes its journal row) in the same transaction anyway. A call's
/// start, answer and recording entries, and often its CDR, arrive within one batch: this saves
/// their statements (each a round trip to the database's worker thread). Order is otherwise
/// kept; an entry after its call's CDR stays (the store ignores it, and says so). Returns how
/// many were dropped: they count as applied.
pub(super) fn drop_superseded(batch: &mut Vec<CdrWrite>) -> u64 {
    if batch.len() < 2 {
        return 0;
    }
    let keep: Vec<bool> = {
        let mut later: std::collections::HashSet<&str> =
            std::collections::HashSet::with_capacity(batch.len());
        let mut keep: Vec<bool> = batch
            .iter()
            .rev()
            .map(|write| match write {
                CdrWrite::Cdr(cdr) => {
                    later.insert(cdr.attempt.id.as_str());
                    true
                }
                CdrWrite::Journal { cdr, .. } => later.insert(cdr.attempt.id.as_str()),
            })
            .collect();
        keep.reverse();
        keep
    };
    let before = batch.len();
    let mut flags = keep.into_iter();
    batch.retain(|_| flags.next().unwrap_or(true));
    (before - batch.len()) as u64
}

/// Fill `batch` from the channel, then from the overflow list; returns the new `rx_done`.
pub(super) fn gather(
    shared: &Shared,
    rx: &mut mpsc::Receiver<CdrWrite>,
    batch: &mut Vec<CdrWrite>,
    mut rx_done: bool,
) -> bool {
    // Under the overflow lock, so that no submission lands in between: the channel holds older
    // submissions than the overflow list, so it is drained first.
    let mut overflow = shared.overflow();
    while !rx_done && batch.len() < BATCH_MAX {
        match rx.try_recv() {
            Ok(item) => batch.push(item),
            Err(TryRecvError::Empty) => break,
            Err(TryRecvError::Disconnected) => rx_done = true,
        }
    }
    if batch.len() < BATCH_MAX {
        let take = overflow.len().min(BATCH_MAX - batch.len());
        batch.extend(overflow.drain(..take));
    }
    rx_done
}

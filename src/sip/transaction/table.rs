//! A transaction table: entries spread over `SHARDS` shards by branch, each shard behind its own
//! lock with its entries and a min-heap of their expiries.
//!
//! Why this shape: every SIP message looks up its transaction, so one lock for all of them
//! serializes all signalling, and a sweep that visits every live transaction each tick costs
//! in proportion to the load even when nothing is due. Here a message locks one shard of sixteen,
//! and a sweep pops from each shard's heap only the expiries that are due.
//!
//! The heap uses lazy deletion: moving an entry's expiry pushes a new record and leaves the old
//! one; removing an entry leaves its records. A popped record counts only if its entry still
//! exists and is due by its *current* expiry, so a stale record is skipped. Stale records are
//! dropped when they come due, or all at once when they outnumber the live entries (so the heap
//! stays within about twice the entries: an INVITE's hour-long proceeding limit, replaced by 32 s
//! when answered, would otherwise sit in the heap for an hour).
//!
//! The shard is chosen by what a request shares with the transaction it may refer to (side and
//! branch; a CANCEL shares its INVITE's), so such a lookup stays within one lock.

use std::cmp::Ordering;
use std::collections::hash_map::Entry;
use std::collections::{BinaryHeap, HashMap};
use std::hash::Hash;

use parking_lot::{Mutex, MutexGuard};
use tokio::time::Instant;

/// Shards per table (a power of two). Sixteen locks is plenty for the few threads that handle
/// signalling, and an idle sweep visits sixteen heads.
const SHARDS: usize = 16;

/// Stale heap records tolerated beyond the live entries before the heap is compacted.
const COMPACT_SLACK: usize = 64;

/// An entry that may have a time after which it is removed.
pub(super) trait Expiring {
    fn expires(&self) -> Option<Instant>;
    fn set_expires(&mut self, at: Instant);
}

/// A table key and the part of it that chooses the shard.
pub(super) trait ShardKey: Hash + Eq + Clone {
    /// A hash of the branch (`spread`), the same for every key a lookup under this one's lock
    /// must find.
    fn shard_hash(&self) -> u64;
}

/// A cheap multiplicative hash (FxHash's step, 8 bytes at a time) for choosing a shard: every
/// message pays it on top of the map's own SipHash, which costs about ten times as much. Not
/// keyed, so a peer could choose branches that all land in one shard: that only brings back
/// the single lock of before, and the map inside keeps its keyed hash against flooding.
pub(super) fn spread(seed: u64, bytes: &[u8]) -> u64 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let mix = |h: u64, word: u64| (h.rotate_left(5) ^ word).wrapping_mul(K);
    let mut chunks = bytes.chunks_exact(8);
    let mut h = mix(0, seed);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        h = mix(h, u64::from_le_bytes(word));
    }
    for &b in chunks.remainder() {
        h = mix(h, u64::from(b));
    }
    h
}

/// The top bits: a multiplicative hash mixes into them best.
fn shard_of(hash: u64) -> usize {
    (hash >> (u64::BITS - SHARDS.trailing_zeros())) as usize
}

pub(super) struct Table<K, E> {
    shards: Box<[Mutex<Shard<K, E>>]>,
}

pub(super) struct Shard<K, E> {
    entries: HashMap<K, E>,
    due: BinaryHeap<Due<K>>,
    /// Ties between equal instants are broken by insertion order, so keys need no `Ord`.
    seq: u64,
}

/// One scheduled expiry. Ordered earliest first (reversed for `BinaryHeap`, a max-heap).
struct Due<K> {
    at: Instant,
    seq: u64,
    key: K,
}

impl<K> PartialEq for Due<K> {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl<K> Eq for Due<K> {}

impl<K> PartialOrd for Due<K> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<K> Ord for Due<K> {
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

impl<K: ShardKey, E: Expiring> Table<K, E> {
    pub(super) fn new() -> Table<K, E> {
        Table {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::new())).collect(),
        }
    }

    /// The locked shard that holds `key` (and any entry sharing its branch).
    pub(super) fn shard(&self, key: &K) -> MutexGuard<'_, Shard<K, E>> {
        self.shards[shard_of(key.shard_hash())].lock()
    }

    /// Live entries, counted shard by shard (not one instant: for tests and metrics).
    pub(super) fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().entries.len()).sum()
    }

    /// Remove the entries `pick` selects, shard by shard (a rare event's scan: a connection
    /// that failed).
    pub(super) fn remove_where(&self, pick: impl Fn(&K, &E) -> bool) -> Vec<(K, E)> {
        let mut out = Vec::new();
        for shard in self.shards.iter() {
            let mut shard = shard.lock();
            let keys: Vec<K> = shard
                .entries
                .iter()
                .filter(|(k, e)| pick(k, e))
                .map(|(k, _)| k.clone())
                .collect();
            for k in keys {
                if let Some(e) = shard.remove(&k) {
                    out.push((k, e));
                }
            }
        }
        out
    }

    /// Remove the entries due at `now`; returns how many.
    pub(super) fn expire(&self, now: Instant) -> usize {
        self.shards.iter().map(|s| s.lock().expire(now)).sum()
    }
}

impl<K: ShardKey, E: Expiring> Shard<K, E> {
    fn new() -> Shard<K, E> {
        Shard {
            entries: HashMap::new(),
            due: BinaryHeap::new(),
            seq: 0,
        }
    }

    pub(super) fn get(&self, key: &K) -> Option<&E> {
        self.entries.get(key)
    }

    /// For changes other than the expiry, which goes through `expire_at`.
    pub(super) fn get_mut(&mut self, key: &K) -> Option<&mut E> {
        self.entries.get_mut(key)
    }

    /// Insert or replace, scheduling the entry's expiry if it has one.
    pub(super) fn insert(&mut self, key: K, entry: E) {
        if let Some(at) = entry.expires() {
            self.schedule(key.clone(), at);
        }
        self.entries.insert(key, entry);
    }

    pub(super) fn remove(&mut self, key: &K) -> Option<E> {
        self.entries.remove(key)
    }

    /// Move the expiry of `key`'s entry (if it exists) to `at`.
    pub(super) fn expire_at(&mut self, key: &K, at: Instant) {
        if let Some(entry) = self.entries.get_mut(key) {
            entry.set_expires(at);
            self.schedule(key.clone(), at);
        }
    }

    fn schedule(&mut self, key: K, at: Instant) {
        self.seq += 1;
        self.due.push(Due {
            at,
            seq: self.seq,
            key,
        });
    }

    fn expire(&mut self, now: Instant) -> usize {
        let mut removed = 0;
        while self.due.peek().is_some_and(|d| d.at <= now) {
            let Some(d) = self.due.pop() else { break };
            // One lookup: the record owns a copy of the key.
            if let Entry::Occupied(e) = self.entries.entry(d.key) {
                if e.get().expires().is_some_and(|at| at <= now) {
                    e.remove();
                    removed += 1;
                }
            }
        }
        if self.due.len() > 2 * self.entries.len() + COMPACT_SLACK {
            self.compact();
        }
        removed
    }

    /// Drop every stale record: one whose entry is gone or has moved its expiry since.
    fn compact(&mut self) {
        let entries = &self.entries;
        self.due
            .retain(|d| entries.get(&d.key).and_then(Expiring::expires) == Some(d.at));
    }
}

#[cfg(test)]
#[path = "table_tests.rs"]
mod tests;

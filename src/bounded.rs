//! A map with a hard cap on its size: hostile input (millions of distinct numbers) must not grow
//! memory without bound. When full, inserting evicts the least recently touched entry; evictions
//! are counted so that they can be reported.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;

#[derive(Debug, Clone)]
pub struct LruMap<K, V> {
    map: HashMap<K, (V, u64)>,
    /// Touch stamp → key, oldest first.
    order: BTreeMap<u64, K>,
    next: u64,
    cap: usize,
    evicted: u64,
}

impl<K: Eq + Hash + Clone, V> LruMap<K, V> {
    /// A map holding at most `cap` entries (at least one).
    pub fn new(cap: usize) -> LruMap<K, V> {
        LruMap {
            map: HashMap::new(),
            order: BTreeMap::new(),
            next: 0,
            cap: cap.max(1),
            evicted: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn capacity(&self) -> usize {
        self.cap
    }

    /// Entries pushed out because the map was full (idle removals are not counted).
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    /// Read without touching.
    pub fn peek(&self, k: &K) -> Option<&V> {
        self.map.get(k).map(|(v, _)| v)
    }

    /// The entry for `k`, marked as most recently used.
    pub fn get_mut(&mut self, k: &K) -> Option<&mut V> {
        let stamp = self.stamp();
        let (v, old) = self.map.get_mut(k)?;
        self.order.remove(old);
        *old = stamp;
        self.order.insert(stamp, k.clone());
        Some(v)
    }

    /// The entry for `k`, created with `make` (evicting the least recently used entry when the
    /// map is full), marked as most recently used.
    pub fn get_or_insert_with(&mut self, k: &K, make: impl FnOnce() -> V) -> &mut V {
        let stamp = self.stamp();
        if self.map.len() >= self.cap && !self.map.contains_key(k) {
            if let Some((_, oldest)) = self.order.pop_first() {
                self.map.remove(&oldest);
                self.evicted += 1;
            }
        }
        // One lookup through the entry: no second search that could (in theory) miss.
        match self.map.entry(k.clone()) {
            Entry::Occupied(e) => {
                let (v, old) = e.into_mut();
                // Reuse the key the order held rather than cloning `k` once more.
                let key = self.order.remove(old).unwrap_or_else(|| k.clone());
                *old = stamp;
                self.order.insert(stamp, key);
                v
            }
            Entry::Vacant(e) => {
                self.order.insert(stamp, k.clone());
                &mut e.insert((make(), stamp)).0
            }
        }
    }

    pub fn remove(&mut self, k: &K) -> Option<V> {
        let (v, stamp) = self.map.remove(k)?;
        self.order.remove(&stamp);
        Some(v)
    }

    /// Remove the least recently used entries for which `idle` holds, stopping at the first
    /// that is not idle: recency follows time, so what comes after is fresher. Returns how many.
    pub fn remove_idle(&mut self, mut idle: impl FnMut(&V) -> bool) -> usize {
        let mut n = 0;
        while let Some((&stamp, k)) = self.order.first_key_value() {
            match self.map.get(k) {
                Some((v, _)) if idle(v) => {}
                _ => break,
            }
            if let Some(k) = self.order.remove(&stamp) {
                self.map.remove(&k);
                n += 1;
            }
        }
        n
    }

    /// Keep only the entries for which `keep` holds (a full scan; for periodic sweeps).
    pub fn retain(&mut self, mut keep: impl FnMut(&K, &mut V) -> bool) {
        let order = &mut self.order;
        self.map.retain(|k, (v, stamp)| {
            let kept = keep(k, v);
            if !kept {
                order.remove(stamp);
            }
            kept
        });
    }

    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.map.iter().map(|(k, (v, _))| (k, v))
    }

    fn stamp(&mut self) -> u64 {
        self.next += 1;
        self.next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_least_recently_used_and_counts() {
        let mut m = LruMap::new(2);
        *m.get_or_insert_with(&"a", || 0) += 1;
        *m.get_or_insert_with(&"b", || 0) += 1;
        // Touch a: b becomes the oldest.
        *m.get_or_insert_with(&"a", || 0) += 1;
        m.get_or_insert_with(&"c", || 7);
        assert_eq!(m.len(), 2);
        assert_eq!(m.evicted(), 1);
        assert_eq!(m.peek(&"a"), Some(&2));
        assert_eq!(m.peek(&"b"), None);
        assert_eq!(m.peek(&"c"), Some(&7));
    }

    #[test]
    fn idle_entries_go_oldest_first() {
        let mut m = LruMap::new(10);
        for (k, t) in [("a", 1), ("b", 2), ("c", 9)] {
            m.get_or_insert_with(&k, || t);
        }
        assert_eq!(m.remove_idle(|&t| t < 5), 2);
        assert_eq!(m.len(), 1);
        assert_eq!(m.evicted(), 0);
        m.retain(|_, v| *v != 9);
        assert!(m.is_empty());
        assert!(m.order.is_empty());
    }

    #[test]
    fn many_keys_stay_within_the_cap() {
        let mut m = LruMap::new(1000);
        for i in 0..100_000u32 {
            m.get_or_insert_with(&i, || i);
        }
        assert_eq!(m.len(), 1000);
        assert_eq!(m.order.len(), 1000);
        assert_eq!(m.evicted(), 99_000);
    }
}

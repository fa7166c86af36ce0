use std::time::Duration;

use super::*;

/// A key whose shard is chosen by `branch` only, like a transaction key's.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    branch: u32,
    method: &'static str,
}

impl ShardKey for Key {
    fn shard_hash(&self) -> u64 {
        spread(0, &self.branch.to_le_bytes())
    }
}

struct Entry(Option<Instant>);

impl Expiring for Entry {
    fn expires(&self) -> Option<Instant> {
        self.0
    }

    fn set_expires(&mut self, at: Instant) {
        self.0 = Some(at);
    }
}

fn key(branch: u32) -> Key {
    Key {
        branch,
        method: "INVITE",
    }
}

fn secs(t0: Instant, s: u64) -> Instant {
    t0 + Duration::from_secs(s)
}

#[test]
fn expires_what_is_due_and_nothing_else() {
    let t0 = Instant::now();
    let table = Table::new();
    for b in 0..100 {
        table
            .shard(&key(b))
            .insert(key(b), Entry(Some(secs(t0, u64::from(b)))));
    }
    table.shard(&key(1000)).insert(key(1000), Entry(None));
    assert_eq!(table.expire(t0), 1, "the one due at t0 itself");
    assert_eq!(table.expire(secs(t0, 49)), 49);
    assert_eq!(table.len(), 51);
    assert!(table.shard(&key(49)).get(&key(49)).is_none());
    assert!(table.shard(&key(50)).get(&key(50)).is_some());
    // An entry without an expiry stays, however late.
    assert_eq!(table.expire(secs(t0, 1_000_000)), 50);
    assert_eq!(table.len(), 1);
    assert!(table.shard(&key(1000)).get(&key(1000)).is_some());
}

#[test]
fn a_moved_expiry_counts_not_the_first() {
    let t0 = Instant::now();
    let table = Table::new();
    table
        .shard(&key(1))
        .insert(key(1), Entry(Some(secs(t0, 3600))));
    table
        .shard(&key(2))
        .insert(key(2), Entry(Some(secs(t0, 10))));
    table.shard(&key(3)).insert(key(3), Entry(None));
    // Earlier (an answered INVITE), later (a ringing one kept), first set (a CANCEL).
    table.shard(&key(1)).expire_at(&key(1), secs(t0, 32));
    table.shard(&key(2)).expire_at(&key(2), secs(t0, 64));
    table.shard(&key(3)).expire_at(&key(3), secs(t0, 20));
    assert_eq!(
        table.expire(secs(t0, 19)),
        0,
        "key 2's first expiry no longer counts"
    );
    assert_eq!(table.expire(secs(t0, 20)), 1);
    assert_eq!(table.expire(secs(t0, 32)), 1);
    assert_eq!(table.len(), 1);
    assert_eq!(table.expire(secs(t0, 64)), 1);
    assert_eq!(
        table.expire(secs(t0, 4000)),
        0,
        "stale records expire nothing"
    );
}

#[test]
fn a_removed_then_reinserted_key_lives_by_its_new_expiry() {
    let t0 = Instant::now();
    let table = Table::new();
    table
        .shard(&key(1))
        .insert(key(1), Entry(Some(secs(t0, 5))));
    assert!(table.shard(&key(1)).remove(&key(1)).is_some());
    table
        .shard(&key(1))
        .insert(key(1), Entry(Some(secs(t0, 50))));
    assert_eq!(table.expire(secs(t0, 5)), 0);
    assert_eq!(table.len(), 1);
    assert_eq!(table.expire(secs(t0, 50)), 1);
}

#[test]
fn stale_records_do_not_accumulate() {
    let t0 = Instant::now();
    let table = Table::new();
    // Every entry's expiry is moved (as when INVITEs are answered): one stale record each.
    for round in 0..20u64 {
        for b in 0..1000 {
            let k = key(b);
            let mut shard = table.shard(&k);
            if shard.get(&k).is_none() {
                shard.insert(k.clone(), Entry(Some(secs(t0, 3600))));
            }
            shard.expire_at(&k, secs(t0, 100 + round));
        }
        table.expire(t0);
    }
    let records: usize = table.shards.iter().map(|s| s.lock().due.len()).sum();
    assert!(
        records <= 2 * 1000 + SHARDS * (COMPACT_SLACK + 1),
        "{records} heap records for 1000 entries"
    );
    assert_eq!(table.expire(secs(t0, 200)), 1000);
}

#[test]
fn a_key_differing_only_by_method_shares_the_shard() {
    let table: Table<Key, Entry> = Table::new();
    let cancel = Key {
        branch: 7,
        method: "CANCEL",
    };
    table.shard(&key(7)).insert(key(7), Entry(None));
    // Held together with the INVITE's entry: a second lock of the same shard would deadlock,
    // so look it up through the CANCEL's guard.
    let shard = table.shard(&cancel);
    assert!(shard.get(&key(7)).is_some());
}

#[test]
fn branches_spread_over_the_shards() {
    // Branches as a PBX makes them (a counter) and as we do (random tokens).
    for make in [
        |i: usize| format!("z9hG4bK-{i}|10.0.0.1:5060"),
        |_: usize| crate::sip::message::new_branch(),
    ] {
        let mut per_shard = [0usize; SHARDS];
        for i in 0..16_000 {
            per_shard[shard_of(spread(0, make(i).as_bytes()))] += 1;
        }
        assert!(
            per_shard.iter().all(|n| (700..=1300).contains(n)),
            "{per_shard:?}"
        );
    }
}

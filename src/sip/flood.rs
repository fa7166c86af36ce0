//! The flood guard (like Kamailio's pike): each source address may send so many requests in a
//! window; a source over its budget is banned — everything it sends is dropped unparsed — for
//! the ban time. Configured peers get a budget sized to their trunk's call rate, so one
//! misbehaving PBX is cut off without starving the others, and a scanner is cut off at once.
//!
//! Rates are estimated over a sliding window from two fixed windows (the previous one weighted
//! by how much of it still overlaps), which needs two counters per source instead of a
//! timestamp per request. Sources are keyed by IP (a scanner changes ports, not addresses).
//! Both maps are bounded: a spoofed-source flood evicts the least recent trackers but cannot
//! evict a ban, which lives in its own map.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::bounded::LruMap;
use crate::config::FloodConfig;

/// Sources whose rate is being tracked at once.
const MAX_TRACKED: usize = 65_536;
/// Sources banned at once (beyond it the oldest ban is forgotten first).
const MAX_BANNED: usize = 16_384;

/// What to do with one message from a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    /// Over budget just now: this message is the first dropped.
    Banned,
    /// Banned earlier and still banned.
    Dropped,
}

#[derive(Debug)]
struct Rate {
    window_start: Instant,
    current: u32,
    previous: u32,
}

/// Counted since start, for `/metrics`.
#[derive(Debug, Default)]
pub struct FloodCounters {
    pub bans: AtomicU64,
    pub dropped: AtomicU64,
}

/// A ban as shown to operators.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ban {
    pub source: IpAddr,
    pub remaining: Duration,
}

#[derive(Debug)]
pub struct FloodGuard {
    config: FloodConfig,
    window: Duration,
    ban: Duration,
    rates: Mutex<LruMap<IpAddr, Rate>>,
    banned: Mutex<LruMap<IpAddr, Instant>>,
    pub counters: FloodCounters,
}

impl Default for FloodGuard {
    /// The default budget and ban (`[sip.flood]` left out).
    fn default() -> Self {
        FloodGuard::new(FloodConfig::default())
    }
}

impl FloodGuard {
    pub fn new(config: FloodConfig) -> FloodGuard {
        FloodGuard {
            window: Duration::from_millis(config.window_ms.max(1)),
            ban: Duration::from_secs(config.ban_secs),
            config,
            rates: Mutex::new(LruMap::new(MAX_TRACKED)),
            banned: Mutex::new(LruMap::new(MAX_BANNED)),
            counters: FloodCounters::default(),
        }
    }

    /// The budget (requests per window) of a source: `requests` for an unknown one; for a peer
    /// of a trunk allowing `max_cps` new calls a second, enough for those calls' requests
    /// (`peer_requests_per_call` each) or `requests`, whichever is more.
    pub fn budget(&self, peer_max_cps: Option<f64>) -> u32 {
        match peer_max_cps {
            None => self.config.requests,
            Some(cps) => {
                let per_window = cps.max(0.0)
                    * self.window.as_secs_f64()
                    * f64::from(self.config.peer_requests_per_call);
                (per_window.ceil() as u32).max(self.config.requests)
            }
        }
    }

    /// Is the source banned now? (no counting: for connection attempts and responses)
    pub fn is_banned(&self, source: IpAddr, now: Instant) -> bool {
        if !self.config.enabled {
            return false;
        }
        let mut banned = self.banned.lock();
        match banned.peek(&source) {
            Some(until) if *until > now => true,
            Some(_) => {
                banned.remove(&source);
                tracing::info!(%source, "flood ban expired");
                false
            }
            None => false,
        }
    }

    /// Counts one request from `source` against `budget`.
    pub fn check(&self, source: IpAddr, budget: u32, now: Instant) -> Verdict {
        if !self.config.enabled {
            return Verdict::Pass;
        }
        if self.is_banned(source, now) {
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            return Verdict::Dropped;
        }
        let estimate = {
            let mut rates = self.rates.lock();
            let rate = rates.get_or_insert_with(&source, || Rate {
                window_start: now,
                current: 0,
                previous: 0,
            });
            let since = now.saturating_duration_since(rate.window_start);
            if since >= self.window * 2 {
                rate.window_start = now;
                rate.previous = 0;
                rate.current = 0;
            } else if since >= self.window {
                rate.window_start += self.window;
                rate.previous = rate.current;
                rate.current = 0;
            }
            rate.current = rate.current.saturating_add(1);
            let into = now
                .saturating_duration_since(rate.window_start)
                .as_secs_f64()
                / self.window.as_secs_f64();
            f64::from(rate.previous) * (1.0 - into.min(1.0)) + f64::from(rate.current)
        };
        if estimate <= f64::from(budget) {
            return Verdict::Pass;
        }
        self.rates.lock().remove(&source);
        self.banned
            .lock()
            .get_or_insert_with(&source, || now + self.ban);
        self.counters.bans.fetch_add(1, Ordering::Relaxed);
        self.counters.dropped.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(
            %source,
            budget,
            window_ms = self.window.as_millis() as u64,
            ban_secs = self.ban.as_secs(),
            "flood: source over its request budget, banned"
        );
        Verdict::Banned
    }

    /// The bans in force (for `/metrics` and operators).
    pub fn bans(&self, now: Instant) -> Vec<Ban> {
        self.banned
            .lock()
            .iter()
            .filter(|(_, until)| **until > now)
            .map(|(ip, until)| Ban {
                source: *ip,
                remaining: until.saturating_duration_since(now),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(requests: u32) -> FloodGuard {
        FloodGuard::new(FloodConfig {
            requests,
            ..FloodConfig::default()
        })
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_source_over_budget_is_banned_for_the_ban_time_and_others_pass() {
        let g = guard(30);
        let t0 = Instant::now();
        let scanner = ip("192.0.2.1");
        for i in 0..30 {
            let now = t0 + Duration::from_millis(i * 10);
            assert_eq!(g.check(scanner, 30, now), Verdict::Pass, "request {i}");
        }
        let t = t0 + Duration::from_millis(400);
        assert_eq!(g.check(scanner, 30, t), Verdict::Banned);
        assert_eq!(g.check(scanner, 30, t), Verdict::Dropped);
        assert!(g.is_banned(scanner, t + Duration::from_secs(299)));
        assert_eq!(g.check(ip("192.0.2.2"), 30, t), Verdict::Pass);
        assert_eq!(g.bans(t).len(), 1);
        assert_eq!(g.counters.bans.load(Ordering::Relaxed), 1);
        assert_eq!(g.counters.dropped.load(Ordering::Relaxed), 2);
        // The ban ends after 5 minutes; the source starts afresh.
        let later = t + Duration::from_secs(300);
        assert!(!g.is_banned(scanner, later));
        assert_eq!(g.check(scanner, 30, later), Verdict::Pass);
        assert!(g.bans(later).is_empty());
    }

    #[test]
    fn a_steady_rate_within_budget_is_never_banned_across_window_edges() {
        let g = guard(30);
        let t0 = Instant::now();
        let pbx = ip("10.0.0.1");
        // 14 requests a second for a minute: 28 per 2 s window, under 30 wherever the window
        // falls.
        for i in 0..(14 * 60) {
            let now = t0 + Duration::from_millis(i * 1000 / 14);
            assert_eq!(g.check(pbx, 30, now), Verdict::Pass, "request {i}");
        }
    }

    #[test]
    fn a_burst_straddling_a_window_edge_is_caught() {
        let g = guard(30);
        let t0 = Instant::now();
        let src = ip("192.0.2.9");
        // 20 at the end of one window and 20 at the start of the next: 40 within 0.2 s.
        let mut verdicts = Vec::new();
        for i in 0..20 {
            verdicts.push(g.check(src, 30, t0 + Duration::from_millis(1_900 + i * 5)));
        }
        for i in 0..20 {
            verdicts.push(g.check(src, 30, t0 + Duration::from_millis(2_000 + i * 5)));
        }
        assert!(verdicts.contains(&Verdict::Banned), "{verdicts:?}");
    }

    #[test]
    fn a_peer_budget_follows_its_trunks_call_rate() {
        let g = guard(30);
        assert_eq!(g.budget(None), 30);
        // 10 calls/s × 2 s × 4 requests a call.
        assert_eq!(g.budget(Some(10.0)), 80);
        assert_eq!(g.budget(Some(1.0)), 30);
        assert_eq!(g.budget(Some(-5.0)), 30);
    }

    #[test]
    fn disabled_guard_passes_everything() {
        let g = FloodGuard::new(FloodConfig {
            enabled: false,
            ..FloodConfig::default()
        });
        let t0 = Instant::now();
        for _ in 0..1000 {
            assert_eq!(g.check(ip("192.0.2.1"), 1, t0), Verdict::Pass);
        }
    }

    #[test]
    fn spoofed_sources_cannot_evict_a_ban() {
        let g = guard(1);
        let t0 = Instant::now();
        let attacker = ip("198.51.100.7");
        g.check(attacker, 1, t0);
        assert_eq!(g.check(attacker, 1, t0), Verdict::Banned);
        for i in 0..(MAX_TRACKED as u32 + 10) {
            let spoofed = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            g.check(spoofed, 1000, t0);
        }
        assert!(g.is_banned(attacker, t0 + Duration::from_secs(1)));
    }
}

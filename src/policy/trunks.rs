//! The trunk table: compiled trunk configs (normalized number sets), lookups that classify a
//! peer or a called number, and the rebuild that keeps live counters across `replace_trunks`.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::ops::Deref;
use std::sync::{Arc, Weak};

use crate::config::TrunkConfig;

use super::callee::CalleeLimits;
use super::caller_id::addr_spec;
use super::lease::TrunkState;
use super::Policy;
use crate::model::normalize_number;

/// A cheap, clonable snapshot of one trunk's configuration. It stays valid (and unchanged) for
/// as long as it is held, even if the trunk is edited or removed meanwhile.
#[derive(Debug, Clone)]
pub struct TrunkRef(Arc<TrunkConfig>);

impl TrunkRef {
    pub fn name(&self) -> &str {
        &self.0.name
    }

    pub fn config(&self) -> &TrunkConfig {
        &self.0
    }

    /// Whether two refs are the same snapshot (not merely equal names).
    pub fn ptr_eq(a: &TrunkRef, b: &TrunkRef) -> bool {
        Arc::ptr_eq(&a.0, &b.0)
    }
}

impl Deref for TrunkRef {
    type Target = TrunkConfig;
    fn deref(&self) -> &TrunkConfig {
        &self.0
    }
}

/// A trunk ready for admission checks.
#[derive(Debug)]
pub(super) struct Trunk {
    pub config: TrunkRef,
    pub numbers: HashSet<String>,
    pub blocked: HashSet<String>,
    pub state: Arc<TrunkState>,
    /// From the `over_frequent_callee` rule, resolved once per edit.
    pub callee_limits: CalleeLimits,
}

/// An immutable trunk table; replaced whole by `replace_trunks`.
#[derive(Debug, Default)]
pub(super) struct Snapshot {
    /// In configuration order, which breaks ties between overlapping peers.
    trunks: Vec<Arc<Trunk>>,
    by_name: HashMap<String, usize>,
    by_number: HashMap<String, usize>,
    /// Counters of removed trunks that still have live leases, so a trunk re-added under the
    /// same name resumes counting them instead of starting from zero.
    retired: HashMap<String, Weak<TrunkState>>,
}

impl Snapshot {
    /// Build a table from configs, reusing `prev`'s counters for every trunk name that stays.
    /// Configs are expected to be validated (`Config::validate`); should a name or number
    /// still appear twice, the first trunk in order keeps it.
    pub(super) fn build(configs: &[TrunkConfig], prev: &Snapshot) -> Snapshot {
        let mut next = Snapshot::default();
        for cfg in configs {
            if next.by_name.contains_key(&cfg.name) {
                continue;
            }
            let state = match prev.state_of(&cfg.name) {
                Some(state) => {
                    state.set_rate(cfg.max_cps);
                    state
                }
                None => Arc::new(TrunkState::new(&cfg.name, cfg.max_cps)),
            };
            let idx = next.trunks.len();
            let numbers: HashSet<String> = cfg
                .numbers
                .iter()
                .filter_map(|n| normalize_number(n))
                .collect();
            for n in &numbers {
                next.by_number.entry(n.clone()).or_insert(idx);
            }
            next.by_name.insert(cfg.name.clone(), idx);
            next.trunks.push(Arc::new(Trunk {
                config: TrunkRef(Arc::new(cfg.clone())),
                numbers,
                blocked: cfg
                    .blocked_numbers
                    .iter()
                    .filter_map(|n| normalize_number(n))
                    .collect(),
                state,
                callee_limits: CalleeLimits::of(cfg),
            }));
        }
        let gone = prev
            .trunks
            .iter()
            .map(|t| (t.config.name.clone(), Arc::downgrade(&t.state)))
            .chain(prev.retired.iter().map(|(k, w)| (k.clone(), w.clone())));
        for (name, weak) in gone {
            // Only counters someone still holds a lease on are worth remembering.
            if !next.by_name.contains_key(&name) && weak.strong_count() > 0 {
                next.retired.insert(name, weak);
            }
        }
        next
    }

    fn state_of(&self, name: &str) -> Option<Arc<TrunkState>> {
        match self.get(name) {
            Some(t) => Some(Arc::clone(&t.state)),
            None => self.retired.get(name).and_then(Weak::upgrade),
        }
    }

    pub(super) fn get(&self, name: &str) -> Option<&Arc<Trunk>> {
        self.by_name.get(name).and_then(|&i| self.trunks.get(i))
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = &Arc<Trunk>> {
        self.trunks.iter()
    }

    fn by_number(&self, digits: &str) -> Option<&Arc<Trunk>> {
        self.by_number.get(digits).and_then(|&i| self.trunks.get(i))
    }
}

/// IPv4 peers reach a dual-stack socket as `::ffff:a.b.c.d`; compare them as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    ip.to_canonical()
}

impl Trunk {
    fn accepts_carrier(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.config.carrier.iter().any(|c| canonical(c.ip()) == ip)
    }
}

impl Policy {
    /// The trunk whose `pbx` CIDRs contain `src` (a peer on the inside interface). When CIDRs of
    /// several trunks overlap, the most specific prefix wins, then configuration order.
    pub fn pbx_trunk(&self, src: IpAddr) -> Option<TrunkRef> {
        let snap = self.snapshot();
        let ips = [src, canonical(src)];
        let mut best: Option<(u8, &Arc<Trunk>)> = None;
        for t in snap.iter() {
            for net in &t.config.pbx {
                if ips.iter().any(|ip| net.contains(ip))
                    && best.is_none_or(|(len, _)| net.prefix_len() > len)
                {
                    best = Some((net.prefix_len(), t));
                }
            }
        }
        best.map(|(_, t)| t.config.clone())
    }

    /// The first trunk (configuration order) one of whose `carrier` addresses has `src`'s IP; the
    /// port is ignored, carriers often send from other ports than they listen on. When trunks
    /// share a carrier, prefer `inbound_trunk`, which also looks at the called number.
    pub fn carrier_trunk(&self, src: SocketAddr) -> Option<TrunkRef> {
        let snap = self.snapshot();
        let found = snap.iter().find(|t| t.accepts_carrier(src.ip()));
        found.map(|t| t.config.clone())
    }

    /// Whether `src` is the registrar of a trunk that registers (its answers to our REGISTERs
    /// are let in even when it is none of the carrier addresses).
    pub fn is_registrar(&self, src: SocketAddr) -> bool {
        let ip = canonical(src.ip());
        self.snapshot().iter().any(|t| {
            t.config
                .registration()
                .is_some_and(|r| canonical(r.registrar.ip()) == ip)
        })
    }

    /// The trunk that reaches a carrier at exactly `addr` over TLS (its certificate is checked
    /// with that trunk's `tls_*` keys).
    pub fn tls_carrier_trunk(&self, addr: SocketAddr) -> Option<TrunkRef> {
        let snap = self.snapshot();
        let found = snap.iter().find(|t| {
            t.config.carrier_transport == crate::config::TransportKind::Tls
                && t.config.carrier.contains(&addr)
        });
        found.map(|t| t.config.clone())
    }

    /// The trunk owning a called number (digits or any URI form `normalize_number` accepts).
    pub fn trunk_for_number(&self, callee_digits: &str) -> Option<TrunkRef> {
        let digits = normalize_number(callee_digits)?;
        self.snapshot().by_number(&digits).map(|t| t.config.clone())
    }

    /// Classify an inbound INVITE from a carrier: the trunk owning the called number if `src` is
    /// one of that trunk's carriers, else the first trunk accepting `src` (whose admission will
    /// then refuse the unknown number with 404). `None`: `src` is no configured carrier.
    pub fn inbound_trunk(&self, src: SocketAddr, callee_uri: &str) -> Option<TrunkRef> {
        let snap = self.snapshot();
        let owner = normalize_number(addr_spec(callee_uri))
            .and_then(|d| snap.by_number(&d))
            .filter(|t| t.accepts_carrier(src.ip()));
        owner
            .or_else(|| snap.iter().find(|t| t.accepts_carrier(src.ip())))
            .map(|t| t.config.clone())
    }

    /// The trunk whose numbers include `number` (normalized digits), by name.
    pub fn number_owner(&self, number: &str) -> Option<String> {
        self.snapshot()
            .by_number(number)
            .map(|t| t.config.name.clone())
    }

    /// The current config of a trunk by name.
    pub fn trunk(&self, name: &str) -> Option<TrunkRef> {
        self.snapshot().get(name).map(|t| t.config.clone())
    }

    /// All current trunks, in configuration order.
    pub fn trunks(&self) -> Vec<TrunkRef> {
        self.snapshot().iter().map(|t| t.config.clone()).collect()
    }
}

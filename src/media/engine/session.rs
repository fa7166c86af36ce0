//! A session as a relay thread holds it, whichever engine runs the thread: its sockets, its four
//! pumps and what the engine needs around them (control changes, receive errors, counting). The
//! engines differ only in how a datagram comes in and how it leaves (`Outlet`).

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;

use tokio::sync::watch;

use super::super::counters::{Fate, MediaCounters};
use super::super::egress::Egress;
use super::super::pump::{Kind, State};
use super::super::pump_report::PumpReport;
use super::super::relay::{Control, LegSockets};
use super::super::Leg;

/// Receive errors in a row after which the socket is taken as broken.
const MAX_RECV_ERRORS: u32 = 100;
/// Datagrams read at most from each socket when its session closes: more than a default
/// receive buffer (212,992 bytes) holds of RTP, so the drain ends by finding the queue empty.
const DRAIN_MAX: usize = 1024;

/// What a closed session hands back (or a snapshot gives): each pump's figures.
pub(crate) type Reports = Vec<(Leg, Kind, PumpReport)>;

/// Where pump (leg, kind) sits in a session's array, and in the low bits of its token.
pub(super) fn pump_index(leg: Leg, kind: Kind) -> usize {
    kind.index() * 2 + leg.index()
}

/// How an engine lets a pump's datagrams out of a socket (`Egress`), made per packet: the
/// epoll engine hands the socket itself, the io_uring engine a queue of the round's sends.
pub(super) trait Outlet {
    type Egress<'a>: Egress
    where
        Self: 'a;

    /// The egress through `socket`, for what pump `index` of session `id` sends.
    fn toward<'a>(&'a mut self, socket: &'a UdpSocket, id: u64, index: usize) -> Self::Egress<'a>;
}

/// Sends go out at once, on the socket itself (the epoll engine's way, and every engine's for
/// what a closing session drains).
pub(super) struct Direct;

impl Outlet for Direct {
    type Egress<'a> = &'a UdpSocket;

    fn toward<'a>(&'a mut self, socket: &'a UdpSocket, _: u64, _: usize) -> &'a UdpSocket {
        socket
    }
}

/// A session as its relay thread holds it.
pub(crate) struct Relayed {
    /// Inside, outside.
    sockets: [LegSockets; 2],
    control: watch::Receiver<Control>,
    /// By `pump_index`.
    pumps: [State; 4],
    errors: [u32; 4],
    /// The gateway's media counters (none in tests of the relay alone).
    counters: Option<Arc<MediaCounters>>,
}

impl Relayed {
    pub(crate) fn new(
        sockets: [LegSockets; 2],
        control: watch::Receiver<Control>,
        pumps: [State; 4],
        counters: Option<Arc<MediaCounters>>,
    ) -> Relayed {
        debug_assert!(pumps
            .iter()
            .enumerate()
            .all(|(i, p)| pump_index(p.leg(), p.kind()) == i));
        Relayed {
            sockets,
            control,
            pumps,
            errors: [0; 4],
            counters,
        }
    }

    pub(super) fn apply_control(&mut self) {
        let control = self.control.borrow_and_update();
        for pump in &mut self.pumps {
            pump.apply(&control);
        }
    }

    /// Pump `index`'s own socket (what it receives on).
    pub(super) fn socket(&self, index: usize) -> &UdpSocket {
        let pump = &self.pumps[index];
        self.sockets[pump.leg().index()].socket(pump.kind())
    }

    /// The four sockets, by `pump_index`.
    pub(super) fn sockets(&self) -> impl Iterator<Item = &UdpSocket> {
        (0..4).map(|index| self.socket(index))
    }

    /// One datagram from `source` on pump `index`'s socket: handled by the pump (after the
    /// owner's latest control, so that an `update_remote` is applied before the packets after
    /// it) and sent on through `outlet`. Returns its fate, for `count`.
    pub(super) fn on_received(
        &mut self,
        id: u64,
        index: usize,
        data: &[u8],
        source: SocketAddr,
        outlet: &mut impl Outlet,
    ) -> Fate {
        self.errors[index] = 0;
        if self.control.has_changed().unwrap_or(false) {
            self.apply_control();
        }
        let kind = self.pumps[index].kind();
        let other = self.pumps[index].leg().other();
        let peer = self.sockets[other.index()].socket(kind);
        self.pumps[index].on_datagram(data, source, &mut outlet.toward(peer, id, index))
    }

    /// Counts a datagram pump `index` received, in relay thread `thread`'s shard.
    pub(super) fn count(&self, thread: usize, index: usize, fate: Fate) {
        if let Some(counters) = &self.counters {
            let pump = &self.pumps[index];
            counters.count(thread, pump.kind(), pump.leg(), fate);
        }
    }

    /// A send of pump `index` failed once submitted (io_uring): the pump counts it dropped.
    pub(super) fn send_failed_late(&mut self, index: usize, bytes: usize) {
        self.pumps[index].send_failed_late(bytes);
    }

    /// Pump `index`'s socket failed to receive: logged; false once it failed
    /// `MAX_RECV_ERRORS` times in a row, when the engine stops reading it.
    pub(super) fn recv_error(&mut self, index: usize, error: &io::Error) -> bool {
        self.errors[index] += 1;
        let pump = &self.pumps[index];
        let (leg, kind, span) = (pump.leg().as_str(), pump.kind().as_str(), pump.span());
        tracing::debug!(parent: span, leg, kind, error = %error, "media receive error");
        if self.errors[index] >= MAX_RECV_ERRORS {
            tracing::error!(parent: span, leg, kind, error = %error, "media socket broken; relay stopped");
            return false;
        }
        true
    }

    /// Whether the inside RTP pump holds back a possible DTMF command (the thread then wakes
    /// to release it on time).
    pub(super) fn holding(&self) -> bool {
        self.pumps[pump_index(Leg::Inside, Kind::Rtp)].holding()
    }

    /// Releases held-back DTMF packets whose time is up.
    pub(super) fn poll_held(&mut self, id: u64, now: std::time::Instant, outlet: &mut impl Outlet) {
        let index = pump_index(Leg::Inside, Kind::Rtp);
        let peer = self.sockets[Leg::Outside.index()].socket(Kind::Rtp);
        self.pumps[index].poll(now, &mut outlet.toward(peer, id, index));
    }

    /// The figures so far; relaying goes on.
    pub(super) fn snapshot(&self) -> Reports {
        self.pumps
            .iter()
            .map(|p| (p.leg(), p.kind(), p.snapshot()))
            .collect()
    }

    /// What the sockets still hold as the session closes, read and handled as any datagram
    /// (recorded, counted, relayed at once) in relay thread `thread`'s shard: packets that came
    /// during the call while the thread was behind. Closed unread they would be missing from
    /// the recording and from every count (a stream's lost tail leaves no sequence gap).
    /// Returns how many were read.
    pub(super) fn drain(&mut self, id: u64, thread: usize) -> u64 {
        let mut buf = [0u8; super::super::pump::MAX_DATAGRAM];
        let mut drained = 0;
        for index in 0..4 {
            for _ in 0..DRAIN_MAX {
                // The sockets are non-blocking: an empty queue (or any error) ends the drain.
                let Ok((len, source)) = self.socket(index).recv_from(&mut buf) else {
                    break;
                };
                let fate = self.on_received(id, index, &buf[..len], source, &mut Direct);
                self.count(thread, index, fate);
                drained += 1;
            }
        }
        drained
    }

    /// The session's end: the sockets are closed (the ports back in the pool before the owner
    /// hears of it) and its loss counted.
    pub(super) fn finish(self, thread: usize) -> Reports {
        let Relayed {
            sockets,
            pumps,
            counters,
            ..
        } = self;
        let reports: Reports = pumps
            .into_iter()
            .map(|p| (p.leg(), p.kind(), p.finish()))
            .collect();
        drop(sockets);
        if let Some(counters) = counters {
            // Loss is known for good only at the end (a late packet may still fill a gap).
            for (leg, kind, report) in &reports {
                if *kind == Kind::Rtp {
                    counters.count_lost(thread, *leg, report.lost());
                }
            }
        }
        reports
    }
}

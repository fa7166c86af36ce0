//! The relay's per-packet work must not allocate: count heap allocations made by this thread
//! while `State::on_datagram` handles packets (latch, stats, DTMF, tap, sendto).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc;

use super::*;
use crate::media::peer_dest::PeerDest;
use crate::media::ports::PortAllocator;
use crate::media::relay::{Activity, Control, LegSockets, RemoteMedia};
use crate::media::rtp::tests::packet;
use crate::media::sdp::Direction;

/// System allocator that counts, per thread, the allocations made while counting is on.
struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static COUNT: Cell<u64> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            COUNT.with(|c| c.set(c.get() + 1));
        }
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            COUNT.with(|c| c.set(c.get() + 1));
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn count_allocations(f: impl FnOnce()) -> u64 {
    COUNT.with(|c| c.set(0));
    COUNTING.with(|c| c.set(true));
    f();
    COUNTING.with(|c| c.set(false));
    COUNT.with(Cell::get)
}

#[test]
fn on_datagram_does_not_allocate() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _guard = rt.enter();
    let ports = PortAllocator::new([31100, 31119]).unwrap();
    let local = Ipv4Addr::LOCALHOST.into();
    let sockets = [
        ports.allocate(local).unwrap(),
        ports.allocate(local).unwrap(),
    ]
    .map(|pair| {
        let (rtp, rtcp, lease) = pair.into_parts();
        Arc::new(LegSockets::new(rtp, rtcp, lease).unwrap())
    });
    let pbx = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let carrier = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    carrier.set_nonblocking(true).unwrap();
    let pbx_addr = pbx.local_addr().unwrap();
    let carrier_addr = carrier.local_addr().unwrap();

    let (tap_tx, mut tap_rx) = mpsc::channel(64);
    let mut pbx_media = RemoteMedia::new(pbx_addr, Direction::SendRecv);
    pbx_media.telephone_event = Some(101);
    let control = Control {
        remote: [
            Some(pbx_media),
            Some(RemoteMedia::new(carrier_addr, Direction::SendRecv)),
        ],
        tap: Some(tap_tx.into()),
        timeout: None,
        dtmf_commands: Default::default(),
        recording_paused: false,
        keys: Default::default(),
    };
    let publish = Arc::new(PeerDest::new(None));
    let peer_dest = Arc::new(PeerDest::new(Some(carrier_addr)));
    let (events, mut events_rx) = mpsc::channel(64);
    let activity = Arc::new(Activity {
        epoch: Instant::now(),
        last_rtp: [AtomicU64::new(0), AtomicU64::new(0)],
    });
    let wiring = Wiring {
        publish,
        peer_dest,
        activity,
        events,
        span: tracing::Span::none(),
    };
    let mut state = State::new(Leg::Inside, Kind::Rtp, wiring);
    state.apply(&control);
    let mut out = sockets[1].socket(Kind::Rtp);
    let stray: SocketAddr = (Ipv4Addr::LOCALHOST, 9).into();

    let mut buf = [0u8; 2048];
    let packets: Vec<Vec<u8>> = (0..20_000u32)
        .map(|i| {
            let seq = (i as u16).wrapping_mul(if i % 97 == 0 { 3 } else { 1 });
            match i % 50 {
                // A digit now and then: three end packets.
                40..=42 => packet(101, seq, 1000 * i, 7, &[5, 0x8a, 3, 0x20]),
                _ => packet(0, seq, 160 * i, 7, &[0xff; 160]),
            }
        })
        .collect();
    let mut run = |range: std::ops::Range<usize>| {
        for (i, p) in packets[range].iter().enumerate() {
            let source = if i % 50 == 49 { stray } else { pbx_addr };
            let _ = state.on_datagram(p, source, &mut out);
            // The consumers keep up: the recorder drains the tap, the call its events, and the
            // carrier its socket.
            while tap_rx.try_recv().is_ok() {}
            while events_rx.try_recv().is_ok() {}
            while carrier.recv_from(&mut buf).is_ok() {}
        }
    };
    run(0..2000); // warm-up: first latch, first tap chunk, channel blocks
    let allocations = count_allocations(|| run(2000..20_000));
    assert_eq!(
        allocations, 0,
        "heap allocations while relaying 18,000 packets"
    );
    let report = state.finish();
    assert!(report.counts.dtmf_digits >= 30 && report.counts.stray > 300);
    assert!(
        report.counts.sent.packets > 17_000,
        "{:?}",
        report.counts.sent
    );
}

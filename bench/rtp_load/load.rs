//! The load generator: RTP sockets with large buffers, one sender thread (a 1 ms tick serving a
//! twentieth of the calls, `sendmmsg` batches per socket) and a receiver thread per socket
//! (`recvmmsg`) that counts loss and one-way latency from the timestamp each payload carries.

use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::proc_stats::{cpu_secs, socket_drops};
use crate::{CARRIER_IP, PBX_IP};

/// RTP header (12) + 160 bytes of PCMU (20 ms at 8 kHz).
const PKT: usize = 172;
/// Marks our packets in the payload.
const MAGIC: u32 = 0x7274_7062; // "rtpb"
/// Calls are spread over the 20 ms packet interval in 1 ms ticks.
const TICKS_PER_PTIME: usize = 20;
const BATCH: usize = 64;
/// Latency histogram: 1 µs buckets up to 200 ms, then overflow.
const HIST_US: usize = 200_000;

pub fn set_rcvbuf(sock: &UdpSocket, bytes: i32) -> i32 {
    let fd = sock.as_raw_fd();
    let size = std::mem::size_of::<i32>() as libc::socklen_t;
    // SAFETY: fd is a live socket, the option value is an i32 of the given size.
    unsafe {
        let p = &bytes as *const i32 as *const libc::c_void;
        if libc::setsockopt(fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, p, size) != 0 {
            libc::setsockopt(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, p, size);
        }
        let mut got: i32 = 0;
        let mut len = size;
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            &mut got as *mut i32 as *mut libc::c_void,
            &mut len,
        );
        got
    }
}

fn sockaddr(a: SocketAddrV4) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: a.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(*a.ip()).to_be(),
        },
        sin_zero: [0; 8],
    }
}

/// `sendmmsg` of `pkts[i]` to `dests[i]`; returns how many the kernel took.
fn send_batch(sock: &UdpSocket, pkts: &[[u8; PKT]], dests: &[libc::sockaddr_in]) -> usize {
    let n = pkts.len().min(dests.len());
    let mut iov: Vec<libc::iovec> = (0..n)
        .map(|i| libc::iovec {
            iov_base: pkts[i].as_ptr() as *mut libc::c_void,
            iov_len: PKT,
        })
        .collect();
    // SAFETY: zeroed mmsghdr is valid (null pointers, zero lengths) and filled in below.
    let mut msgs: Vec<libc::mmsghdr> = (0..n).map(|_| unsafe { std::mem::zeroed() }).collect();
    for i in 0..n {
        msgs[i].msg_hdr.msg_name = &dests[i] as *const libc::sockaddr_in as *mut libc::c_void;
        msgs[i].msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_in>() as u32;
        msgs[i].msg_hdr.msg_iov = &mut iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
    }
    let mut done = 0;
    let mut tries = 0;
    while done < n && tries < 100 {
        tries += 1;
        // SAFETY: msgs[done..n] point at live buffers and addresses for the call's duration.
        let r = unsafe {
            libc::sendmmsg(
                sock.as_raw_fd(),
                msgs[done..].as_mut_ptr(),
                (n - done) as u32,
                0,
            )
        };
        if r > 0 {
            done += r as usize;
        } else if r < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() != ErrorKind::Interrupted && e.kind() != ErrorKind::WouldBlock {
                // A refused destination (ICMP) fails one message: skip it.
                done += 1;
            }
        }
    }
    done
}

/// What a receiver thread saw.
pub struct RxStats {
    pub received: u64,
    pub foreign: u64,
    hist: Vec<u32>,
    over: u64,
    pub max_us: u64,
}

impl RxStats {
    pub fn new() -> RxStats {
        RxStats {
            received: 0,
            foreign: 0,
            hist: vec![0; HIST_US],
            over: 0,
            max_us: 0,
        }
    }
    pub fn merge(&mut self, o: &RxStats) {
        self.received += o.received;
        self.foreign += o.foreign;
        self.over += o.over;
        self.max_us = self.max_us.max(o.max_us);
        for (a, b) in self.hist.iter_mut().zip(&o.hist) {
            *a += b;
        }
    }
    pub fn quantile_us(&self, q: f64) -> f64 {
        let total = self.received - self.foreign;
        if total == 0 {
            return f64::NAN;
        }
        let target = ((total as f64) * q).ceil().max(1.0) as u64;
        let mut acc = 0u64;
        for (i, &c) in self.hist.iter().enumerate() {
            acc += u64::from(c);
            if acc >= target {
                return i as f64;
            }
        }
        HIST_US as f64
    }
}

/// Receive on `sock` until `stop`, with `recvmmsg` batches; `dir` is the direction expected.
fn receiver(
    sock: Arc<UdpSocket>,
    dir: u8,
    epoch: Instant,
    stop: Arc<AtomicBool>,
    last_rx: Arc<AtomicU64>,
) -> RxStats {
    let mut st = RxStats::new();
    let mut bufs = vec![[0u8; 256]; BATCH];
    let mut iov: Vec<libc::iovec> = bufs
        .iter_mut()
        .map(|b| libc::iovec {
            iov_base: b.as_mut_ptr() as *mut libc::c_void,
            iov_len: 256,
        })
        .collect();
    // SAFETY: zeroed mmsghdr is valid and filled in below.
    let mut msgs: Vec<libc::mmsghdr> = (0..BATCH).map(|_| unsafe { std::mem::zeroed() }).collect();
    for (m, v) in msgs.iter_mut().zip(iov.iter_mut()) {
        m.msg_hdr.msg_iov = v;
        m.msg_hdr.msg_iovlen = 1;
    }
    let mut rounds: u64 = 0;
    // Bounded: the 100 ms receive timeout checks `stop`; a hard cap on rounds besides.
    while !stop.load(Ordering::Relaxed) && rounds < 100_000_000 {
        rounds += 1;
        // SAFETY: msgs point at `bufs` through `iov`, both alive for the call.
        let r = unsafe {
            libc::recvmmsg(
                sock.as_raw_fd(),
                msgs.as_mut_ptr(),
                BATCH as u32,
                libc::MSG_WAITFORONE,
                std::ptr::null_mut(),
            )
        };
        if r <= 0 {
            continue; // timeout (SO_RCVTIMEO) or EINTR
        }
        let now_ns = epoch.elapsed().as_nanos() as u64;
        last_rx.fetch_max(now_ns, Ordering::Relaxed);
        for (i, m) in msgs.iter().enumerate().take(r as usize) {
            st.received += 1;
            let b = &bufs[i];
            let len = m.msg_len as usize;
            if len != PKT
                || u32::from_be_bytes([b[12], b[13], b[14], b[15]]) != MAGIC
                || b[16] != dir
            {
                st.foreign += 1;
                continue;
            }
            let mut ts = [0u8; 8];
            ts.copy_from_slice(&b[20..28]);
            let us = now_ns.saturating_sub(u64::from_be_bytes(ts)) / 1000;
            st.max_us = st.max_us.max(us);
            match st.hist.get_mut(us as usize) {
                Some(c) => *c += 1,
                None => st.over += 1,
            }
        }
    }
    st
}

/// One direction of traffic: from `socks[k]` to `dests` of calls on socket k.
struct Flow {
    dir: u8,
    /// Per sending socket, per tick group: (call, destination).
    plan: Vec<Vec<Vec<(u32, libc::sockaddr_in)>>>,
    socks: Vec<Arc<UdpSocket>>,
    sent: u64,
}

fn make_packet(buf: &mut [u8; PKT], call: u32, dir: u8, seq: u32, now_ns: u64) {
    buf[0] = 0x80;
    buf[1] = 0x00; // PCMU
    buf[2..4].copy_from_slice(&(seq as u16).to_be_bytes());
    buf[4..8].copy_from_slice(&(seq.wrapping_mul(160)).to_be_bytes());
    buf[8..12].copy_from_slice(&(call | (u32::from(dir) << 24)).to_be_bytes());
    buf[12..16].copy_from_slice(&MAGIC.to_be_bytes());
    buf[16] = dir;
    buf[17..20].copy_from_slice(&call.to_be_bytes()[1..]);
    buf[20..28].copy_from_slice(&now_ns.to_be_bytes());
    buf[28..32].copy_from_slice(&seq.to_be_bytes());
    buf[32..].fill(0xff); // µ-law silence
}

pub struct TxReport {
    sent: [u64; 2],
    /// Wall time the sender needed for `secs` worth of packets (behind when > secs).
    pub send_s: f64,
    pub late_ticks: u64,
    max_late_us: u64,
}

/// Send for `secs`: every 1 ms tick, a twentieth of the calls, both directions, in batches.
fn sender(flows: &mut [Flow; 2], secs: u64, epoch: Instant) -> TxReport {
    let ticks = secs * 1000;
    let start = Instant::now();
    let mut bufs = vec![[0u8; PKT]; BATCH];
    let mut dests: Vec<libc::sockaddr_in> = Vec::with_capacity(BATCH);
    let mut rep = TxReport {
        sent: [0, 0],
        send_s: 0.0,
        late_ticks: 0,
        max_late_us: 0,
    };
    for t in 0..ticks {
        let due = start + Duration::from_millis(t);
        let now = Instant::now();
        if now < due {
            thread::sleep(due - now);
        } else {
            let late = (now - due).as_micros() as u64;
            if late > 1000 {
                rep.late_ticks += 1;
            }
            rep.max_late_us = rep.max_late_us.max(late);
        }
        let group = (t as usize) % TICKS_PER_PTIME;
        let seq = (t / TICKS_PER_PTIME as u64) as u32;
        for flow in flows.iter_mut() {
            for (k, sock) in flow.socks.iter().enumerate() {
                for chunk in flow.plan[k][group].chunks(BATCH) {
                    let now_ns = epoch.elapsed().as_nanos() as u64;
                    dests.clear();
                    for (i, (call, dest)) in chunk.iter().enumerate() {
                        make_packet(&mut bufs[i], *call, flow.dir, seq, now_ns);
                        dests.push(*dest);
                    }
                    flow.sent += send_batch(sock, &bufs[..chunk.len()], &dests) as u64;
                }
            }
        }
    }
    rep.sent = [flows[0].sent, flows[1].sent];
    rep.send_s = start.elapsed().as_secs_f64();
    rep
}

/// RTP sockets of one side: `k` sockets on `ip`, large receive buffers, 100 ms receive timeout.
pub fn rtp_sockets(ip: Ipv4Addr, k: usize) -> (Vec<Arc<UdpSocket>>, i32) {
    let mut rcvbuf = 0;
    let socks = (0..k)
        .map(|_| {
            let s = UdpSocket::bind((ip, 0)).expect("bind an RTP socket on loopback");
            rcvbuf = set_rcvbuf(&s, 8 << 20);
            s.set_read_timeout(Some(Duration::from_millis(100)))
                .expect("timeout");
            Arc::new(s)
        })
        .collect();
    (socks, rcvbuf)
}

fn v4(a: SocketAddr) -> SocketAddrV4 {
    match a {
        SocketAddr::V4(a) => a,
        SocketAddr::V6(_) => panic!("IPv4 only"),
    }
}

/// Traffic result of one media phase.
pub struct Media {
    pub sent: [u64; 2],
    pub rx: [RxStats; 2],
    pub tx: TxReport,
    pub gen_cpu_s: f64,
    pub wall_s: f64,
    pub gen_sock_drops: u64,
    pub drain_s: f64,
}

/// Run the media phase. `targets[i] = (pbx_to, carrier_to)` of call i: where the PBX side and
/// the carrier side send. Direction 0 = PBX → carrier (agent → customer), 1 = carrier → PBX.
pub fn run_media(
    pbx: &[Arc<UdpSocket>],
    car: &[Arc<UdpSocket>],
    targets: &[(u32, SocketAddr, SocketAddr)],
    secs: u64,
    mut during: impl FnMut(f64),
) -> Media {
    let k = pbx.len();
    let epoch = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let last_rx = Arc::new(AtomicU64::new(0));
    let mut rx_threads = Vec::new();
    for (dir, socks) in [(1u8, pbx), (0u8, car)] {
        for s in socks {
            let (s, stop, last) = (s.clone(), stop.clone(), last_rx.clone());
            rx_threads.push((
                dir,
                thread::spawn(move || receiver(s, dir, epoch, stop, last)),
            ));
        }
    }
    let plan = |pick: &dyn Fn(&(u32, SocketAddr, SocketAddr)) -> SocketAddr| {
        let mut p = vec![vec![Vec::new(); TICKS_PER_PTIME]; k];
        for t in targets {
            let call = t.0 as usize;
            p[call % k][call % TICKS_PER_PTIME].push((t.0, sockaddr(v4(pick(t)))));
        }
        p
    };
    let mut flows = [
        Flow {
            dir: 0,
            plan: plan(&|t| t.1),
            socks: pbx.to_vec(),
            sent: 0,
        },
        Flow {
            dir: 1,
            plan: plan(&|t| t.2),
            socks: car.to_vec(),
            sent: 0,
        },
    ];
    let me = std::process::id().to_string();
    let cpu0 = cpu_secs(&me);
    let t0 = Instant::now();
    // The sender runs on its own thread so that this one can sample the gateway meanwhile.
    let tx_thread = thread::spawn(move || {
        let r = sender(&mut flows, secs, epoch);
        (r, flows)
    });
    let mut slept = 0;
    while !tx_thread.is_finished() && slept < (secs + 30) * 10 {
        thread::sleep(Duration::from_millis(100));
        slept += 1;
        if slept % 10 == 5 {
            during(t0.elapsed().as_secs_f64());
        }
    }
    let (tx, _flows) = tx_thread.join().expect("sender thread");
    let ours: Vec<u16> = pbx
        .iter()
        .chain(car)
        .filter_map(|s| s.local_addr().ok().map(|a| a.port()))
        .collect();
    // Let the last packets arrive (a backlog in some queue arrives late, not lost): wait until
    // nothing came for 300 ms, at most 10 s; then stop the receivers.
    let drain0 = Instant::now();
    while drain0.elapsed() < Duration::from_secs(10) {
        thread::sleep(Duration::from_millis(50));
        let idle_ns = epoch
            .elapsed()
            .as_nanos()
            .saturating_sub(u128::from(last_rx.load(Ordering::Relaxed)));
        if idle_ns > 300_000_000 {
            break;
        }
    }
    let drain_s = drain0.elapsed().as_secs_f64();
    let wall_s = t0.elapsed().as_secs_f64();
    let gen_cpu_s = cpu_secs(&me) - cpu0;
    let gen_sock_drops =
        socket_drops(|ip, port| (ip == PBX_IP || ip == CARRIER_IP) && ours.contains(&port));
    stop.store(true, Ordering::Relaxed);
    let mut rx = [RxStats::new(), RxStats::new()];
    for (dir, h) in rx_threads {
        rx[dir as usize].merge(&h.join().expect("receiver thread"));
    }
    Media {
        sent: tx.sent,
        rx,
        tx,
        gen_cpu_s,
        wall_s,
        gen_sock_drops,
        drain_s,
    }
}

//! RTP load benchmark (not a test): concurrent recorded G.711 calls through the real gateway.
//!
//! `cargo bench --bench rtp_load -- [--steps 100,250,500] [--secs 20] [--cps 200] …`
//! (`--help` lists the knobs; bench/README.md explains the method and the results).
//!
//! Per step (N calls) it starts the release gateway binary as a separate process (config in a
//! fresh tempdir, loopback only), places N calls with a minimal SIP UA of its own over UDP (the
//! PBX on 127.0.0.10 calls through the gateway's inside 127.0.0.20, the carrier on 127.0.0.11
//! answers 200 with SDP on the outside 127.0.0.21), ramped at `--cps`. Then for `--secs` it
//! sends a 20 ms PCMU packet both ways on every call: one sender thread, a 1 ms tick serving a
//! twentieth of the calls, `sendmmsg` batches per socket; a receiver thread per socket
//! (`recvmmsg`). Each payload carries a send timestamp, a sequence number and the call, so the
//! receiver counts loss and one-way latency through the gateway. Then BYE on every call, SIGTERM,
//! and the recordings are counted and a few opened with hound. A direct-loopback baseline
//! (same generator, no gateway) gives the latency the generator itself adds.
//!
//! Every loop is bounded: fixed call counts and durations, deadlines on setup and teardown.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs;
use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

const PBX_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 10);
const CARRIER_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 11);
const INSIDE_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 20);
const OUTSIDE_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 21);
const CALLER: &str = "+861012345678";
/// Gateway media ports (4 per call: an RTP/RTCP pair per leg): room for 2,500 calls.
const PORT_RANGE: [u16; 2] = [40000, 49999];

/// RTP header (12) + 160 bytes of PCMU (20 ms at 8 kHz).
const PKT: usize = 172;
/// Marks our packets in the payload.
const MAGIC: u32 = 0x7274_7062; // "rtpb"
/// Calls are spread over the 20 ms packet interval in 1 ms ticks.
const TICKS_PER_PTIME: usize = 20;
const BATCH: usize = 64;
/// Latency histogram: 1 µs buckets up to 200 ms, then overflow.
const HIST_US: usize = 200_000;

#[derive(Debug, Clone)]
struct Args {
    steps: Vec<usize>,
    secs: u64,
    cps: u64,
    sockets: usize,
    baseline_secs: u64,
    dir: Option<PathBuf>,
    bin: PathBuf,
    gw_log: String,
    stop_after_fails: usize,
    /// `taskset -c` list for the gateway, and CPUs for the generator (e.g. 0 and 1).
    gw_cpus: Option<String>,
    gen_cpus: Option<Vec<usize>>,
}

fn usage() -> ! {
    eprintln!(
        "usage: cargo bench --bench rtp_load -- [--steps 100,250,500,750,1000,1250] [--secs 20]\n\
         \x20  [--cps 200] [--sockets 2] [--baseline-secs 5 (0: none)] [--dir DIR] [--bin PATH]\n\
         \x20  [--gw-log info] [--stop-after-fails 2] [--gw-cpus 0 (taskset -c)] [--gen-cpus 1]"
    );
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut a = Args {
        steps: vec![100, 250, 500, 750, 1000, 1250],
        secs: 20,
        cps: 200,
        sockets: 2,
        baseline_secs: 5,
        dir: None,
        bin: PathBuf::from(env!("CARGO_BIN_EXE_trunkguard")),
        gw_log: "info".into(),
        stop_after_fails: 2,
        gw_cpus: None,
        gen_cpus: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        if k == "--bench" {
            continue; // added by `cargo bench`
        }
        if k == "--help" || k == "-h" {
            usage();
        }
        let v = it.next().unwrap_or_else(|| usage());
        let num = |v: &str| v.parse::<u64>().unwrap_or_else(|_| usage());
        match k.as_str() {
            "--steps" => {
                a.steps = v.split(',').map(|s| num(s.trim()) as usize).collect();
            }
            "--secs" => a.secs = num(&v).clamp(1, 600),
            "--cps" => a.cps = num(&v).clamp(1, 2000),
            "--sockets" => a.sockets = (num(&v) as usize).clamp(1, 16),
            "--baseline-secs" => a.baseline_secs = num(&v).min(600),
            "--dir" => a.dir = Some(PathBuf::from(v)),
            "--bin" => a.bin = PathBuf::from(v),
            "--gw-log" => a.gw_log = v,
            "--stop-after-fails" => a.stop_after_fails = num(&v) as usize,
            "--gw-cpus" => a.gw_cpus = Some(v),
            "--gen-cpus" => {
                a.gen_cpus = Some(v.split(',').map(|c| num(c.trim()) as usize).collect());
            }
            _ => usage(),
        }
    }
    a.steps.retain(|&n| (1..=2500).contains(&n));
    a
}

// ---------------------------------------------------------------------------------------------
// /proc

fn clk_tck() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// utime + stime of a process, in seconds.
fn cpu_secs(pid: &str) -> f64 {
    let Ok(s) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    let Some(rest) = s.rsplit_once(')').map(|(_, r)| r) else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / clk_tck()
}

/// VmRSS in KiB.
fn rss_kib(pid: &str) -> u64 {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

/// Busy and total CPU seconds of the whole machine (all cores).
fn machine_cpu() -> (f64, f64) {
    let s = fs::read_to_string("/proc/stat").unwrap_or_default();
    let v: Vec<f64> = s
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: f64 = v.iter().take(8).sum();
    let idle = v.get(3).copied().unwrap_or(0.0) + v.get(4).copied().unwrap_or(0.0);
    ((total - idle) / clk_tck(), total / clk_tck())
}

/// Machine-wide UDP `RcvbufErrors + SndbufErrors` (/proc/net/snmp).
fn udp_buf_errors() -> u64 {
    let s = fs::read_to_string("/proc/net/snmp").unwrap_or_default();
    let rows: Vec<&str> = s.lines().filter(|l| l.starts_with("Udp:")).collect();
    if rows.len() < 2 {
        return 0;
    }
    let names: Vec<&str> = rows[0].split_whitespace().collect();
    let vals: Vec<&str> = rows[1].split_whitespace().collect();
    names
        .iter()
        .zip(&vals)
        .filter(|(n, _)| **n == "RcvbufErrors" || **n == "SndbufErrors")
        .filter_map(|(_, v)| v.parse::<u64>().ok())
        .sum()
}

/// Receive-buffer drops (last column of /proc/net/udp) summed over the live sockets that
/// `keep(ip, port)` selects.
fn socket_drops(keep: impl Fn(Ipv4Addr, u16) -> bool) -> u64 {
    let s = fs::read_to_string("/proc/net/udp").unwrap_or_default();
    s.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (ip, port) = f.get(1)?.split_once(':')?;
            let ip = Ipv4Addr::from(u32::from_str_radix(ip, 16).ok()?.swap_bytes());
            let port = u16::from_str_radix(port, 16).ok()?;
            keep(ip, port).then(|| f.last()?.parse::<u64>().ok())?
        })
        .sum()
}

// ---------------------------------------------------------------------------------------------
// Sockets

fn set_rcvbuf(sock: &UdpSocket, bytes: i32) -> i32 {
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

// ---------------------------------------------------------------------------------------------
// RTP traffic

/// What a receiver thread saw.
struct RxStats {
    received: u64,
    foreign: u64,
    hist: Vec<u32>,
    over: u64,
    max_us: u64,
}

impl RxStats {
    fn new() -> RxStats {
        RxStats {
            received: 0,
            foreign: 0,
            hist: vec![0; HIST_US],
            over: 0,
            max_us: 0,
        }
    }
    fn merge(&mut self, o: &RxStats) {
        self.received += o.received;
        self.foreign += o.foreign;
        self.over += o.over;
        self.max_us = self.max_us.max(o.max_us);
        for (a, b) in self.hist.iter_mut().zip(&o.hist) {
            *a += b;
        }
    }
    fn quantile_us(&self, q: f64) -> f64 {
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

struct TxReport {
    sent: [u64; 2],
    /// Wall time the sender needed for `secs` worth of packets (behind when > secs).
    send_s: f64,
    late_ticks: u64,
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
fn rtp_sockets(ip: Ipv4Addr, k: usize) -> (Vec<Arc<UdpSocket>>, i32) {
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
struct Media {
    sent: [u64; 2],
    rx: [RxStats; 2],
    tx: TxReport,
    gen_cpu_s: f64,
    wall_s: f64,
    gen_sock_drops: u64,
    drain_s: f64,
}

/// Run the media phase. `targets[i] = (pbx_to, carrier_to)` of call i: where the PBX side and
/// the carrier side send. Direction 0 = PBX → carrier (agent → customer), 1 = carrier → PBX.
fn run_media(
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

// ---------------------------------------------------------------------------------------------
// SIP

struct Msg {
    start: String,
    headers: Vec<(String, String)>,
    body: String,
    src: SocketAddr,
}

fn long_name(n: &str) -> String {
    let l = n.trim().to_ascii_lowercase();
    match l.as_str() {
        "v" => "via".into(),
        "f" => "from".into(),
        "t" => "to".into(),
        "i" => "call-id".into(),
        "m" => "contact".into(),
        "l" => "content-length".into(),
        "c" => "content-type".into(),
        _ => l,
    }
}

impl Msg {
    fn parse(buf: &[u8], src: SocketAddr) -> Option<Msg> {
        let text = std::str::from_utf8(buf).ok()?;
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((text, ""));
        let mut lines = head.split("\r\n");
        let start = lines.next()?.to_string();
        let headers = lines
            .filter_map(|l| {
                let (n, v) = l.split_once(':')?;
                Some((long_name(n), v.trim().to_string()))
            })
            .collect();
        Some(Msg {
            start,
            headers,
            body: body.to_string(),
            src,
        })
    }
    fn h(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }
    fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
    fn status(&self) -> Option<u16> {
        self.start.strip_prefix("SIP/2.0 ")?.get(..3)?.parse().ok()
    }
    fn method(&self) -> &str {
        self.start.split(' ').next().unwrap_or("")
    }
    fn cseq_method(&self) -> &str {
        self.h("cseq").split_whitespace().nth(1).unwrap_or("")
    }
    fn contact_uri(&self) -> Option<String> {
        let c = self.h("contact");
        let s = c.find('<')?;
        let e = c[s..].find('>')?;
        Some(c[s + 1..s + e].to_string())
    }
    /// Where this message's SDP says to send RTP.
    fn sdp_target(&self) -> Option<SocketAddr> {
        let ip = self
            .body
            .lines()
            .find_map(|l| l.strip_prefix("c=IN IP4 "))?;
        let port = self
            .body
            .lines()
            .find_map(|l| l.strip_prefix("m=audio "))?
            .split(' ')
            .next()?;
        format!("{}:{}", ip.trim(), port).parse().ok()
    }
}

fn sdp_at(a: SocketAddr) -> String {
    format!(
        "v=0\r\no=bench 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=ptime:20\r\na=sendrecv\r\n",
        ip = a.ip(),
        port = a.port()
    )
}

/// A response to `req` (Via, From, To [+tag], Call-ID, CSeq copied).
fn response(
    req: &Msg,
    code: u16,
    tag: Option<&str>,
    contact: SocketAddr,
    sdp: Option<&str>,
) -> String {
    let reason = if code == 200 { "OK" } else { "Whatever" };
    let mut t = format!("SIP/2.0 {code} {reason}\r\n");
    for v in req.all("via") {
        let _ = write!(t, "Via: {v}\r\n");
    }
    let to = req.h("to");
    let _ = write!(t, "From: {}\r\n", req.h("from"));
    match tag {
        Some(tag) if !to.contains("tag=") => {
            let _ = write!(t, "To: {to};tag={tag}\r\n");
        }
        _ => {
            let _ = write!(t, "To: {to}\r\n");
        }
    }
    let _ = write!(
        t,
        "Call-ID: {}\r\nCSeq: {}\r\n",
        req.h("call-id"),
        req.h("cseq")
    );
    if tag.is_some() {
        let _ = write!(t, "Contact: <sip:{contact}>\r\n");
    }
    let body = sdp.unwrap_or("");
    if sdp.is_some() {
        t.push_str("Content-Type: application/sdp\r\n");
    }
    let _ = write!(t, "Content-Length: {}\r\n\r\n{body}", body.len());
    t
}

/// The PBX's view of call i.
#[derive(Default, Clone)]
struct PbxCall {
    invited: bool,
    /// To header of the 200 (with the gateway's tag).
    to: Option<String>,
    target: Option<String>,
    /// Where the gateway wants our RTP (its inside port for this call).
    rtp_to: Option<SocketAddr>,
    bye_sent: bool,
    bye_ok: bool,
}

/// The carrier's view of call i.
#[derive(Default, Clone)]
struct CarrierCall {
    rtp_to: Option<SocketAddr>,
    acked: bool,
    bye_got: bool,
}

struct Sip {
    pbx: UdpSocket,
    car: UdpSocket,
    inside: SocketAddr,
    pid: u32,
    n: usize,
    pbx_calls: Vec<PbxCall>,
    car_calls: Vec<CarrierCall>,
    /// Carrier B-leg Call-ID → call index.
    b_legs: HashMap<String, usize>,
    pbx_rtp: Vec<SocketAddr>,
    car_rtp: Vec<SocketAddr>,
    other_requests: u64,
    failures: u64,
}

fn callee(i: usize) -> String {
    format!("+1555{i:07}")
}

impl Sip {
    fn call_id(&self, i: usize) -> String {
        format!("rtpb{i}x{}@{PBX_IP}", self.pid)
    }
    fn index_of(&self, call_id: &str) -> Option<usize> {
        let rest = call_id.strip_prefix("rtpb")?;
        let (i, _) = rest.split_once('x')?;
        i.parse().ok().filter(|&i| i < self.n)
    }
    fn pbx_addr(&self) -> SocketAddr {
        self.pbx.local_addr().expect("addr")
    }
    fn send_pbx(&self, text: &str, to: SocketAddr) {
        let _ = self.pbx.send_to(text.as_bytes(), to);
    }

    fn invite(&mut self, i: usize) {
        let me = self.pbx_addr();
        let sdp = sdp_at(self.pbx_rtp[i % self.pbx_rtp.len()]);
        let t = format!(
            "INVITE sip:{to}@{gw} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKrtpb{i}i;rport\r\n\
             Max-Forwards: 70\r\nFrom: <sip:{CALLER}@{pip}>;tag=pf{i}\r\nTo: <sip:{to}@{gip}>\r\n\
             Call-ID: {cid}\r\nCSeq: 1 INVITE\r\nContact: <sip:{me}>\r\n\
             Content-Type: application/sdp\r\nContent-Length: {len}\r\n\r\n{sdp}",
            to = callee(i),
            gw = self.inside,
            pip = PBX_IP,
            gip = self.inside.ip(),
            cid = self.call_id(i),
            len = sdp.len(),
        );
        self.send_pbx(&t, self.inside);
        self.pbx_calls[i].invited = true;
    }

    fn in_dialog(&self, i: usize, method: &str, cseq: u32) -> Option<String> {
        let c = &self.pbx_calls[i];
        let me = self.pbx_addr();
        Some(format!(
            "{method} {target} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKrtpb{i}{m}{cseq};rport\r\n\
             Max-Forwards: 70\r\nFrom: <sip:{CALLER}@{pip}>;tag=pf{i}\r\nTo: {to}\r\n\
             Call-ID: {cid}\r\nCSeq: {cseq} {method}\r\nContent-Length: 0\r\n\r\n",
            target = c.target.as_deref()?,
            to = c.to.as_deref()?,
            pip = PBX_IP,
            cid = self.call_id(i),
            m = &method[..1],
        ))
    }

    fn bye(&mut self, i: usize) {
        if let Some(t) = self.in_dialog(i, "BYE", 2) {
            self.send_pbx(&t, self.inside);
            self.pbx_calls[i].bye_sent = true;
        }
    }

    /// Handle every datagram waiting on either socket; returns how many.
    fn poll(&mut self) -> usize {
        let mut buf = vec![0u8; 65536];
        let mut handled = 0;
        for _ in 0..10_000 {
            let mut any = false;
            if let Ok((n, src)) = self.pbx.recv_from(&mut buf) {
                any = true;
                if let Some(m) = Msg::parse(&buf[..n], src) {
                    self.on_pbx(m);
                }
            }
            if let Ok((n, src)) = self.car.recv_from(&mut buf) {
                any = true;
                if let Some(m) = Msg::parse(&buf[..n], src) {
                    self.on_carrier(m);
                }
            }
            if !any {
                break;
            }
            handled += 1;
        }
        handled
    }

    fn on_pbx(&mut self, m: Msg) {
        let Some(code) = m.status() else {
            // A request from the gateway (e.g. BYE after a media timeout): accept it.
            self.other_requests += 1;
            if m.method() != "ACK" {
                let t = response(&m, 200, None, self.pbx_addr(), None);
                self.send_pbx(&t, m.src);
            }
            return;
        };
        let Some(i) = self.index_of(m.h("call-id")) else {
            return;
        };
        match (code, m.cseq_method()) {
            (200, "INVITE") => {
                let c = &mut self.pbx_calls[i];
                if c.to.is_none() {
                    c.to = Some(m.h("to").to_string());
                    c.target = m.contact_uri();
                    c.rtp_to = m.sdp_target();
                }
                // ACK every 2xx, retransmissions too.
                if let Some(t) = self.in_dialog(i, "ACK", 1) {
                    self.send_pbx(&t, m.src);
                }
            }
            (200, "BYE") => self.pbx_calls[i].bye_ok = true,
            (c, _) if c >= 300 => self.failures += 1,
            _ => {}
        }
    }

    fn on_carrier(&mut self, m: Msg) {
        if m.status().is_some() {
            return;
        }
        let me = self.car.local_addr().expect("addr");
        match m.method() {
            "INVITE" => {
                let to = m.h("to");
                let i = to
                    .find("+1555")
                    .and_then(|p| to.get(p + 5..p + 12))
                    .and_then(|d| d.parse::<usize>().ok())
                    .filter(|&i| i < self.n);
                let Some(i) = i else {
                    let t = response(&m, 404, Some("x"), me, None);
                    let _ = self.car.send_to(t.as_bytes(), m.src);
                    return;
                };
                self.b_legs.insert(m.h("call-id").to_string(), i);
                if self.car_calls[i].rtp_to.is_none() {
                    self.car_calls[i].rtp_to = m.sdp_target();
                }
                let sdp = sdp_at(self.car_rtp[i % self.car_rtp.len()]);
                let t = response(&m, 200, Some(&format!("ct{i}")), me, Some(&sdp));
                let _ = self.car.send_to(t.as_bytes(), m.src);
            }
            "ACK" => {
                if let Some(&i) = self.b_legs.get(m.h("call-id")) {
                    self.car_calls[i].acked = true;
                }
            }
            other => {
                if other == "BYE" {
                    if let Some(&i) = self.b_legs.get(m.h("call-id")) {
                        self.car_calls[i].bye_got = true;
                    }
                } else {
                    self.other_requests += 1;
                }
                let t = response(&m, 200, None, me, None);
                let _ = self.car.send_to(t.as_bytes(), m.src);
            }
        }
    }

    fn established(&self, i: usize) -> bool {
        self.pbx_calls[i].rtp_to.is_some()
            && self.car_calls[i].acked
            && self.car_calls[i].rtp_to.is_some()
    }

    /// INVITE call i at `start + i / cps`, until all are set up or the deadline passes.
    fn setup(&mut self, cps: u64) -> (usize, f64) {
        let start = Instant::now();
        let deadline = start + Duration::from_secs(self.n as u64 / cps + 20);
        let mut next = 0;
        loop {
            while next < self.n
                && start.elapsed() >= Duration::from_micros(next as u64 * 1_000_000 / cps)
            {
                self.invite(next);
                next += 1;
            }
            if self.poll() == 0 {
                thread::sleep(Duration::from_micros(500));
            }
            let up = (0..self.n).filter(|&i| self.established(i)).count();
            if (next == self.n && up == self.n) || Instant::now() > deadline {
                return (up, start.elapsed().as_secs_f64());
            }
        }
    }

    /// BYE every established call at `cps`, then wait (bounded) for the 200s and the BYEs.
    fn teardown(&mut self, cps: u64) -> (usize, usize) {
        let calls: Vec<usize> = (0..self.n).filter(|&i| self.established(i)).collect();
        let start = Instant::now();
        let deadline = start + Duration::from_secs(calls.len() as u64 / cps + 15);
        let mut next = 0;
        loop {
            while next < calls.len()
                && start.elapsed() >= Duration::from_micros(next as u64 * 1_000_000 / cps)
            {
                self.bye(calls[next]);
                next += 1;
            }
            if self.poll() == 0 {
                thread::sleep(Duration::from_micros(500));
            }
            let ok = calls.iter().filter(|&&i| self.pbx_calls[i].bye_ok).count();
            let got = calls.iter().filter(|&&i| self.car_calls[i].bye_got).count();
            if (next == calls.len() && ok == calls.len() && got == calls.len())
                || Instant::now() > deadline
            {
                return (ok, got);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The gateway process

fn free_port(ip: Ipv4Addr) -> u16 {
    for _ in 0..100 {
        let u = UdpSocket::bind((ip, 0)).expect("bind");
        let p = u.local_addr().expect("addr").port();
        if std::net::TcpListener::bind((ip, p)).is_ok() {
            return p;
        }
    }
    panic!("no free port on {ip}")
}

struct Gateway {
    child: Child,
    pid: String,
}

impl Gateway {
    fn start(args: &Args, dir: &Path, inside: SocketAddr, carrier: SocketAddr) -> Gateway {
        let outside = SocketAddr::new(OUTSIDE_IP.into(), free_port(OUTSIDE_IP));
        let config = format!(
            r#"# rtp_load bench config: loopback, limits out of the way.
[sip]
inside = "{inside}"
outside = "{outside}"
unknown_sources = "drop"
t1_ms = 500
ring_timeout_secs = 30
drain_timeout_secs = 5

[database]
url = "sqlite://{dir}/bench.db"
cdr_queue = 100000

[media]
inside_address = "{INSIDE_IP}"
outside_address = "{OUTSIDE_IP}"
port_range = [{p0}, {p1}]
timeout_secs = 300

[recording]
dir = "{dir}/recordings"
required = true

[http]
enabled = false

[[trunks]]
name = "bench"
pbx = ["{PBX_IP}/32"]
carrier = "{carrier}"
inbound_to = "{PBX_IP}:9"
numbers = ["{CALLER}"]
max_concurrent = 100000
max_concurrent_per_caller_id = 100000
max_cps = 100000.0
allow_anonymous = false
calling_hours = "00:00-24:00"
timezone = "UTC"
max_call_secs = 3600
blocked_numbers = []

[trunks.rules.over_frequent_callee]
enabled = false
"#,
            dir = dir.display(),
            p0 = PORT_RANGE[0],
            p1 = PORT_RANGE[1],
        );
        let cfg = dir.join("bench.toml");
        fs::write(&cfg, config).expect("write config");
        let log = dir.join("gateway.log");
        let log_file = fs::File::create(&log).expect("log");
        let mut cmd = match &args.gw_cpus {
            Some(cpus) => {
                let mut c = Command::new("taskset");
                c.args(["-c", cpus]).arg(&args.bin);
                c
            }
            None => Command::new(&args.bin),
        };
        let child = cmd
            .arg("--config")
            .arg(&cfg)
            .arg("run")
            .current_dir(dir)
            .env("RUST_LOG", &args.gw_log)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("log"))
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", args.bin.display()));
        let pid = child.id().to_string();
        let mut gw = Gateway { child, pid };
        // Ready when the inside UDP port answers: probe with OPTIONS until a response comes.
        let probe = UdpSocket::bind((PBX_IP, 0)).expect("bind");
        probe
            .set_read_timeout(Some(Duration::from_millis(100)))
            .expect("timeout");
        let me = probe.local_addr().expect("addr");
        for n in 0..150 {
            if let Ok(Some(st)) = gw.child.try_wait() {
                panic!("the gateway exited ({st}); see {}", log.display());
            }
            let opt = format!(
                "OPTIONS sip:{inside} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKprobe{n}\r\n\
                 Max-Forwards: 70\r\nFrom: <sip:probe@{PBX_IP}>;tag=p{n}\r\nTo: <sip:{inside}>\r\n\
                 Call-ID: probe{n}@{PBX_IP}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
            );
            let _ = probe.send_to(opt.as_bytes(), inside);
            let mut b = [0u8; 2048];
            if probe.recv_from(&mut b).is_ok() {
                return gw;
            }
        }
        let _ = gw.child.kill();
        panic!(
            "the gateway did not answer OPTIONS within 15 s; see {}",
            log.display()
        );
    }

    /// SIGTERM and a bounded wait; true on a clean exit.
    fn stop(mut self) -> bool {
        let _ = Command::new("kill").args(["-TERM", &self.pid]).status();
        for _ in 0..600 {
            if let Ok(Some(st)) = self.child.try_wait() {
                return st.success();
            }
            thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        false
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Files under `dir` (bounded depth) ending in `ext`.
fn files_with(dir: &Path, ext: &str, depth: usize, out: &mut Vec<PathBuf>) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() && depth > 0 {
            files_with(&p, ext, depth - 1, out);
        } else if p.to_string_lossy().ends_with(ext) {
            out.push(p);
        }
    }
}

/// Open up to `k` WAVs with hound: stereo 16-bit 8 kHz; returns (ok, checked, min s, max s).
fn check_wavs(wavs: &[PathBuf], k: usize) -> (usize, usize, f64, f64) {
    let (mut ok, mut checked, mut lo, mut hi) = (0, 0, f64::MAX, 0.0f64);
    let step = (wavs.len() / k.max(1)).max(1);
    for p in wavs.iter().step_by(step).take(k) {
        checked += 1;
        if let Ok(r) = hound::WavReader::open(p) {
            let s = r.spec();
            if s.channels == 2 && s.bits_per_sample == 16 && s.sample_rate == 8000 {
                ok += 1;
                let d = f64::from(r.duration()) / f64::from(s.sample_rate);
                lo = lo.min(d);
                hi = hi.max(d);
            }
        }
    }
    if ok == 0 {
        lo = 0.0;
    }
    (ok, checked, lo, hi)
}

// ---------------------------------------------------------------------------------------------
// Steps

fn loss_pct(sent: u64, got: u64) -> f64 {
    if sent == 0 {
        return 100.0;
    }
    100.0 * (sent.saturating_sub(got)) as f64 / sent as f64
}

/// One row of the table.
#[derive(Default)]
struct Row {
    calls: usize,
    up: usize,
    setup_s: f64,
    sent: [u64; 2],
    got: [u64; 2],
    loss: [f64; 2],
    p50: [f64; 2],
    p99: [f64; 2],
    max_ms: f64,
    base_p50: f64,
    base_p99: f64,
    gw_cpu_pct: f64,
    gw_us_per_pkt: f64,
    gen_cpu_pct: f64,
    other_cpu_pct: f64,
    rss_idle_mib: f64,
    rss_mib: f64,
    kib_per_call: f64,
    gw_drops: u64,
    gen_drops: u64,
    udp_buf_err: u64,
    late_ticks: u64,
    send_s: f64,
    drain_s: f64,
    byes: (usize, usize),
    wavs: usize,
    parts: usize,
    wav_ok: String,
    clean_exit: bool,
    pass: bool,
    /// p99 one-way latency through the gateway under 150 ms (ITU-T G.114's whole mouth-to-ear
    /// budget: a relay should add a small fraction of it).
    voice_ok: bool,
}

fn baseline(args: &Args, n: usize, row: &mut Row) {
    if args.baseline_secs == 0 {
        return;
    }
    // Same generator, each side sending straight to the other's socket: no gateway.
    let (pbx, _) = rtp_sockets(PBX_IP, args.sockets);
    let (car, _) = rtp_sockets(CARRIER_IP, args.sockets);
    let k = args.sockets;
    let targets: Vec<(u32, SocketAddr, SocketAddr)> = (0..n)
        .map(|i| {
            let a = pbx[i % k].local_addr().expect("addr");
            let b = car[i % k].local_addr().expect("addr");
            (i as u32, b, a)
        })
        .collect();
    let m = run_media(&pbx, &car, &targets, args.baseline_secs, |_| {});
    let mut all = RxStats::new();
    all.merge(&m.rx[0]);
    all.merge(&m.rx[1]);
    row.base_p50 = all.quantile_us(0.5);
    row.base_p99 = all.quantile_us(0.99);
}

fn step(args: &Args, root: &Path, n: usize) -> Row {
    let mut row = Row {
        calls: n,
        ..Default::default()
    };
    baseline(args, n, &mut row);

    let dir = root.join(format!("step-{n}"));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("step dir");
    let pbx_sip = UdpSocket::bind((PBX_IP, 0)).expect("bind");
    let car_sip = UdpSocket::bind((CARRIER_IP, 0)).expect("bind");
    pbx_sip.set_nonblocking(true).expect("nonblocking");
    car_sip.set_nonblocking(true).expect("nonblocking");
    set_rcvbuf(&pbx_sip, 8 << 20);
    set_rcvbuf(&car_sip, 8 << 20);
    let inside = SocketAddr::new(INSIDE_IP.into(), free_port(INSIDE_IP));
    let gw = Gateway::start(args, &dir, inside, car_sip.local_addr().expect("addr"));
    let gw_pid = gw.pid.clone();
    thread::sleep(Duration::from_millis(300));
    row.rss_idle_mib = rss_kib(&gw_pid) as f64 / 1024.0;

    let (pbx_rtp, _) = rtp_sockets(PBX_IP, args.sockets);
    let (car_rtp, _) = rtp_sockets(CARRIER_IP, args.sockets);
    let mut sip = Sip {
        pbx: pbx_sip,
        car: car_sip,
        inside,
        pid: std::process::id(),
        n,
        pbx_calls: vec![PbxCall::default(); n],
        car_calls: vec![CarrierCall::default(); n],
        b_legs: HashMap::new(),
        pbx_rtp: pbx_rtp.iter().map(|s| s.local_addr().expect("a")).collect(),
        car_rtp: car_rtp.iter().map(|s| s.local_addr().expect("a")).collect(),
        other_requests: 0,
        failures: 0,
    };
    let (up, setup_s) = sip.setup(args.cps);
    row.up = up;
    row.setup_s = setup_s;
    eprintln!(
        "  step {n}: {up}/{n} calls set up in {setup_s:.1} s ({} failures); media for {} s",
        sip.failures, args.secs
    );
    let targets: Vec<(u32, SocketAddr, SocketAddr)> = (0..n)
        .filter(|&i| sip.established(i))
        .filter_map(|i| Some((i as u32, sip.pbx_calls[i].rtp_to?, sip.car_calls[i].rtp_to?)))
        .collect();

    let gw_cpu0 = cpu_secs(&gw_pid);
    let (busy0, _) = machine_cpu();
    let udp0 = udp_buf_errors();
    let gw_drops0 = socket_drops(|ip, port| {
        (ip == INSIDE_IP || ip == OUTSIDE_IP) && (PORT_RANGE[0]..=PORT_RANGE[1]).contains(&port)
    });
    let mut rss_max = 0u64;
    let m = run_media(&pbx_rtp, &car_rtp, &targets, args.secs, |_| {
        rss_max = rss_max.max(rss_kib(&gw_pid));
    });
    let gw_cpu = cpu_secs(&gw_pid) - gw_cpu0;
    let (busy1, _) = machine_cpu();
    row.udp_buf_err = udp_buf_errors().saturating_sub(udp0);
    row.gw_drops = socket_drops(|ip, port| {
        (ip == INSIDE_IP || ip == OUTSIDE_IP) && (PORT_RANGE[0]..=PORT_RANGE[1]).contains(&port)
    })
    .saturating_sub(gw_drops0);
    row.gen_drops = m.gen_sock_drops;
    rss_max = rss_max.max(rss_kib(&gw_pid));
    row.rss_mib = rss_max as f64 / 1024.0;
    row.kib_per_call = if up > 0 {
        (rss_max as f64 - row.rss_idle_mib * 1024.0) / up as f64
    } else {
        0.0
    };
    row.sent = m.sent;
    for d in 0..2 {
        row.got[d] = m.rx[d].received - m.rx[d].foreign;
        row.loss[d] = loss_pct(m.sent[d], row.got[d]);
        row.p50[d] = m.rx[d].quantile_us(0.5);
        row.p99[d] = m.rx[d].quantile_us(0.99);
    }
    row.max_ms = m.rx[0].max_us.max(m.rx[1].max_us) as f64 / 1000.0;
    row.gw_cpu_pct = 100.0 * gw_cpu / m.wall_s;
    let pkts = (row.got[0] + row.got[1]).max(1);
    row.gw_us_per_pkt = gw_cpu * 1e6 / pkts as f64;
    row.gen_cpu_pct = 100.0 * m.gen_cpu_s / m.wall_s;
    row.other_cpu_pct = (100.0 * ((busy1 - busy0) - gw_cpu - m.gen_cpu_s) / m.wall_s).max(0.0);
    row.late_ticks = m.tx.late_ticks;
    row.send_s = m.tx.send_s;
    row.drain_s = m.drain_s;

    row.byes = sip.teardown(args.cps.max(500));
    drop(sip);
    row.clean_exit = gw.stop();
    let mut wavs = Vec::new();
    files_with(&dir.join("recordings"), ".wav", 4, &mut wavs);
    let mut parts = Vec::new();
    files_with(&dir.join("recordings"), ".part", 4, &mut parts);
    row.wavs = wavs.len();
    row.parts = parts.len();
    let (ok, checked, lo, hi) = check_wavs(&wavs, 5);
    row.wav_ok = format!("{ok}/{checked} {lo:.0}-{hi:.0}s");
    // The generator must have kept the 20 ms pace (within 2 %): otherwise N calls were not
    // offered at 50 packets/s each and the step says nothing about N.
    row.pass = up == n
        && row.send_s <= args.secs as f64 * 1.02
        && row.loss[0] < 0.1
        && row.loss[1] < 0.1
        && row.wavs == up
        && ok == checked
        && row.clean_exit;
    row.voice_ok = row.p99[0].max(row.p99[1]) < 150_000.0;
    row
}

const HEADER: &str =
    "calls,up,setup_s,sent_a2c,got_a2c,loss_a2c_pct,sent_c2a,got_c2a,loss_c2a_pct,\
p50_us,p99_us,max_ms,base_p50_us,base_p99_us,gw_cpu_pct,gw_us_per_pkt,gw_cpu_pct_per_call,\
rss_idle_mib,rss_mib,rss_kib_per_call,gen_cpu_pct,other_cpu_pct,gw_sock_drops,gen_sock_drops,\
udp_buf_errors,late_ticks,send_s,drain_s,bye_ok,bye_got,wavs,parts,wav_check,clean_exit,pass,p99_under_150ms";

fn csv(r: &Row) -> String {
    let p50 = r.p50[0].max(r.p50[1]);
    let p99 = r.p99[0].max(r.p99[1]);
    format!(
        "{},{},{:.1},{},{},{:.3},{},{},{:.3},{:.0},{:.0},{:.1},{:.0},{:.0},{:.0},{:.2},{:.3},{:.1},{:.1},{:.0},{:.0},{:.0},{},{},{},{},{:.2},{:.2},{},{},{},{},{},{},{},{}",
        r.calls,
        r.up,
        r.setup_s,
        r.sent[0],
        r.got[0],
        r.loss[0],
        r.sent[1],
        r.got[1],
        r.loss[1],
        p50,
        p99,
        r.max_ms,
        r.base_p50,
        r.base_p99,
        r.gw_cpu_pct,
        r.gw_us_per_pkt,
        if r.up > 0 { r.gw_cpu_pct / r.up as f64 } else { 0.0 },
        r.rss_idle_mib,
        r.rss_mib,
        r.kib_per_call,
        r.gen_cpu_pct,
        r.other_cpu_pct,
        r.gw_drops,
        r.gen_drops,
        r.udp_buf_err,
        r.late_ticks,
        r.send_s,
        r.drain_s,
        r.byes.0,
        r.byes.1,
        r.wavs,
        r.parts,
        r.wav_ok,
        if r.clean_exit { "yes" } else { "no" },
        if r.pass { "yes" } else { "no" },
        if r.voice_ok { "yes" } else { "no" },
    )
}

/// Pin this process (and the threads it starts later) to `cpus`.
fn pin_self(cpus: &[usize]) {
    // SAFETY: a zeroed cpu_set_t is an empty set; CPU_SET and sched_setaffinity get valid pointers.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for &c in cpus {
            libc::CPU_SET(c, &mut set);
        }
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            eprintln!("sched_setaffinity: {}", std::io::Error::last_os_error());
        }
    }
}

fn main() {
    let args = parse_args();
    if let Some(cpus) = &args.gen_cpus {
        pin_self(cpus);
    }
    if !args.bin.exists() {
        eprintln!("no gateway binary at {}", args.bin.display());
        std::process::exit(1);
    }
    let tmp;
    let root = match &args.dir {
        Some(d) => d.clone(),
        None => {
            tmp = tempfile::tempdir().expect("tempdir");
            tmp.path().to_path_buf()
        }
    };
    fs::create_dir_all(&root).expect("bench dir");
    eprintln!(
        "rtp_load: steps {:?}, {} s of media per step, setup at {} calls/s, {} RTP sockets per side, \
         baseline {} s; gateway CPUs {:?}, generator CPUs {:?}; files in {}",
        args.steps,
        args.secs,
        args.cps,
        args.sockets,
        args.baseline_secs,
        args.gw_cpus,
        args.gen_cpus,
        root.display()
    );
    let results = root.join("results.csv");
    let mut out = format!("{HEADER}\n");
    let mut fails = 0;
    let mut best = 0;
    for &n in &args.steps {
        let r = step(&args, &root, n);
        let line = csv(&r);
        eprintln!("{HEADER}\n{line}");
        out.push_str(&line);
        out.push('\n');
        let _ = fs::write(&results, &out);
        if r.pass {
            best = best.max(n);
            fails = 0;
        } else {
            fails += 1;
            if fails >= args.stop_after_fails {
                eprintln!("  {fails} failing steps in a row: stop");
                break;
            }
        }
    }
    println!("{out}");
    println!("highest passing step (< 0.1 % loss each way, all calls recorded): {best} calls");
    println!("results: {}", results.display());
}

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
//!
//! The parts: `load` (the RTP generator and receivers), `sip` (the UA), `gateway` (the process
//! under load and its recordings), `proc_stats` (/proc), `step` (one step) and `report` (its
//! row and CSV line).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod gateway;
mod load;
mod proc_stats;
mod report;
mod sip;
mod step;

use std::fs;
use std::net::Ipv4Addr;
use std::path::PathBuf;

use report::{csv, HEADER};
use step::step;

const PBX_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 10);
const CARRIER_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 11);
const INSIDE_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 20);
const OUTSIDE_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 21);
const CALLER: &str = "+861012345678";
/// Gateway media ports (4 per call: an RTP/RTCP pair per leg): room for 2,500 calls.
const PORT_RANGE: [u16; 2] = [40000, 49999];

#[derive(Debug, Clone)]
pub struct Args {
    pub steps: Vec<usize>,
    pub secs: u64,
    pub cps: u64,
    pub sockets: usize,
    pub baseline_secs: u64,
    pub dir: Option<PathBuf>,
    pub bin: PathBuf,
    pub gw_log: String,
    pub stop_after_fails: usize,
    /// `taskset -c` list for the gateway, and CPUs for the generator (e.g. 0 and 1).
    pub gw_cpus: Option<String>,
    pub gen_cpus: Option<Vec<usize>>,
    /// `[media] engine` of the gateway (`epoll`, `io_uring`); none: the gateway's default.
    pub engine: Option<String>,
}

pub fn usage() -> ! {
    eprintln!(
        "usage: cargo bench --bench rtp_load -- [--steps 100,250,500,750,1000,1250] [--secs 20]\n\
         \x20  [--cps 200] [--sockets 2] [--baseline-secs 5 (0: none)] [--dir DIR] [--bin PATH]\n\
         \x20  [--gw-log info] [--stop-after-fails 2] [--gw-cpus 0 (taskset -c)] [--gen-cpus 1]\n\
         \x20  [--engine epoll|io_uring ([media] engine; default: the gateway's)]"
    );
    std::process::exit(2)
}

pub fn parse_args() -> Args {
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
        engine: None,
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
            "--engine" if v == "epoll" || v == "io_uring" => a.engine = Some(v),
            "--gen-cpus" => {
                a.gen_cpus = Some(v.split(',').map(|c| num(c.trim()) as usize).collect());
            }
            _ => usage(),
        }
    }
    a.steps.retain(|&n| (1..=2500).contains(&n));
    a
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
         baseline {} s; gateway CPUs {:?}, generator CPUs {:?}, media engine {:?}; files in {}",
        args.steps,
        args.secs,
        args.cps,
        args.sockets,
        args.baseline_secs,
        args.gw_cpus,
        args.gen_cpus,
        args.engine,
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

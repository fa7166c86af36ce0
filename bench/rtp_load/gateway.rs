//! The gateway under load: the release binary started as a separate process with its config in
//! the step's folder (loopback only, limits out of the way), stopped with SIGTERM, and its
//! recordings counted and a few opened with hound.

use std::fs;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::Duration;

use crate::{Args, CALLER, INSIDE_IP, OUTSIDE_IP, PBX_IP, PORT_RANGE};

pub fn free_port(ip: Ipv4Addr) -> u16 {
    for _ in 0..100 {
        let u = UdpSocket::bind((ip, 0)).expect("bind");
        let p = u.local_addr().expect("addr").port();
        if std::net::TcpListener::bind((ip, p)).is_ok() {
            return p;
        }
    }
    panic!("no free port on {ip}")
}

pub struct Gateway {
    child: Child,
    pub pid: String,
}

impl Gateway {
    pub fn start(args: &Args, dir: &Path, inside: SocketAddr, carrier: SocketAddr) -> Gateway {
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
{engine}

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
# One caller ID places every call: the frequency rule would throttle the bench by chance.
[trunks.rules.over_frequent_number]
enabled = false
"#,
            dir = dir.display(),
            p0 = PORT_RANGE[0],
            p1 = PORT_RANGE[1],
            engine = args
                .engine
                .as_ref()
                .map(|e| format!("engine = \"{e}\""))
                .unwrap_or_default(),
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
    pub fn stop(mut self) -> bool {
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
pub fn files_with(dir: &Path, ext: &str, depth: usize, out: &mut Vec<PathBuf>) {
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
pub fn check_wavs(wavs: &[PathBuf], k: usize) -> (usize, usize, f64, f64) {
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

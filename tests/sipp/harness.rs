//! Test harness for the SIPp interop tests: the real `trunkguard` binary and SIPp processes on
//! loopback, each test with its own tempdir and ports, every process bounded in time and killed
//! when the harness is dropped (also on panic).
//!
//! Roles and addresses (ports are picked free per test, so tests run in parallel):
//! - SIPp as the PBX on 127.0.0.10, SIPp as the carrier on 127.0.0.11;
//! - the gateway's inside interface on 127.0.0.20, its outside interface on 127.0.0.21.
//!
//! Several test binaries include this file and each uses a part of it.
#![allow(dead_code)]

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::fs;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Mutex, OnceLock};
use std::thread::sleep;
use std::time::{Duration, Instant};

use trunkguard::model::Cdr;

pub const PBX_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 10);
pub const CARRIER_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 11);
pub const INSIDE_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 20);
pub const OUTSIDE_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 21);

/// The trunk's numbers: the only caller IDs allowed out, the only numbers reachable in.
pub const TRUNK_NUMBER: &str = "+861012345678";
pub const OTHER_TRUNK_NUMBER: &str = "+861012345679";

const SCENARIOS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sipp");

/// Ports handed out in this process: the kernel may give a just-released port to the next
/// `bind(0)`, and two tests must never share one.
fn handed_out() -> &'static Mutex<HashSet<(IpAddr, u16)>> {
    static PORTS: OnceLock<Mutex<HashSet<(IpAddr, u16)>>> = OnceLock::new();
    PORTS.get_or_init(|| Mutex::new(HashSet::new()))
}

/// A UDP address free on `ip`, for a SIPp instance's `-i`/`-p`.
pub fn local(ip: Ipv4Addr) -> SocketAddr {
    SocketAddr::new(ip.into(), free_port(ip, false))
}

/// A UDP address free on the PBX's host.
pub fn pbx_local() -> SocketAddr {
    local(PBX_IP)
}

/// A port free on `ip` for UDP (and TCP too when `tcp`), never handed out before in this process.
pub fn free_port(ip: Ipv4Addr, tcp: bool) -> u16 {
    for _ in 0..200 {
        let udp = UdpSocket::bind((ip, 0)).expect("bind a UDP socket on loopback");
        let port = udp.local_addr().expect("local addr").port();
        if tcp && TcpListener::bind((ip, port)).is_err() {
            continue;
        }
        let mut used = handed_out().lock().unwrap_or_else(|e| e.into_inner());
        if used.insert((IpAddr::V4(ip), port)) {
            return port;
        }
    }
    panic!("no free port on {ip} after 200 tries");
}

/// The ports of one test.
#[derive(Debug, Clone, Copy)]
pub struct Addrs {
    /// Gateway inside interface (UDP+TCP), where the PBX sends.
    pub inside: SocketAddr,
    /// Gateway outside interface (UDP+TCP), where the carrier sends.
    pub outside: SocketAddr,
    /// The carrier (SIPp UAS for outbound calls): the trunk's `carrier`.
    pub carrier: SocketAddr,
    /// The PBX (SIPp UAS for inbound calls): the trunk's `inbound_to`.
    pub pbx_uas: SocketAddr,
}

impl Addrs {
    pub fn pick() -> Addrs {
        Addrs {
            inside: SocketAddr::new(INSIDE_IP.into(), free_port(INSIDE_IP, true)),
            outside: SocketAddr::new(OUTSIDE_IP.into(), free_port(OUTSIDE_IP, true)),
            carrier: SocketAddr::new(CARRIER_IP.into(), free_port(CARRIER_IP, false)),
            pbx_uas: SocketAddr::new(PBX_IP.into(), free_port(PBX_IP, false)),
        }
    }
}

/// What a test varies in the trunk.
#[derive(Debug, Clone, Copy)]
pub struct TrunkLimits {
    pub max_concurrent: u32,
    pub max_concurrent_per_caller_id: u32,
    pub max_cps: f64,
    /// Admission's per-callee frequency limit (SIPp scenarios call one number repeatedly).
    pub callee_limit: bool,
}

impl Default for TrunkLimits {
    fn default() -> Self {
        TrunkLimits {
            max_concurrent: 30,
            max_concurrent_per_caller_id: 30,
            max_cps: 50.0,
            callee_limit: false,
        }
    }
}

/// Below Linux's ephemeral ports, apart from the in-process tests' range.
const MEDIA_SECTION: &str = "[media]\nport_range = [25000, 28999]\n";

pub fn config_toml(addrs: &Addrs, db: &Path, limits: TrunkLimits) -> String {
    format!(
        r#"[sip]
inside = "{inside}"
outside = "{outside}"
unknown_sources = "drop"
t1_ms = 500
ring_timeout_secs = 30
drain_timeout_secs = 5
retry_after_secs = 5

[database]
url = "sqlite://{db}"

{media}
[http]
listen = "127.0.0.1:0"

[[trunks]]
name = "interop"
pbx = ["{pbx_ip}/32"]
carrier = "{carrier}"
inbound_to = "{pbx_uas}"
numbers = ["{n1}", "{n2}"]
max_concurrent = {mc}
max_concurrent_per_caller_id = {mcc}
max_cps = {cps:.1}
allow_anonymous = false
calling_hours = "00:00-24:00"
timezone = "UTC"
max_call_secs = 600
blocked_numbers = []

[trunks.rules.over_frequent_callee]
enabled = {callee_limit}
"#,
        media = MEDIA_SECTION,
        inside = addrs.inside,
        outside = addrs.outside,
        db = db.display(),
        pbx_ip = PBX_IP,
        carrier = addrs.carrier,
        pbx_uas = addrs.pbx_uas,
        n1 = TRUNK_NUMBER,
        n2 = OTHER_TRUNK_NUMBER,
        mc = limits.max_concurrent,
        mcc = limits.max_concurrent_per_caller_id,
        cps = limits.max_cps,
        callee_limit = limits.callee_limit,
    )
}

/// Last `lines` lines of a file, or a note that it cannot be read.
pub fn tail(path: &Path, lines: usize) -> String {
    match fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(e) => format!("<cannot read {}: {e}>", path.display()),
    }
}

/// Poll `child` until it exits or `limit` passes; then kill it. `Ok` carries the exit status,
/// `Err` says the limit was hit.
fn wait_bounded(child: &mut Child, limit: Duration) -> Result<ExitStatus, String> {
    let deadline = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Ok(status),
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("still running after {limit:?}: killed"));
            }
            Ok(None) => sleep(Duration::from_millis(50)),
            Err(e) => return Err(format!("cannot wait: {e}")),
        }
    }
}

fn signal(pid: u32, sig: &str) -> bool {
    Command::new("kill")
        .args([format!("-{sig}"), pid.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// The gateway process. Dropping it kills the process if it still runs.
pub struct Gateway {
    child: Option<Child>,
    config: PathBuf,
    log: PathBuf,
}

impl Gateway {
    /// Write `config_text` to `dir/trunkguard.toml`, start the binary and wait until it listens.
    pub fn start(dir: &Path, config_text: &str) -> Gateway {
        Gateway::start_logging(dir, config_text, "info")
    }

    /// Like [`Gateway::start`] with `RUST_LOG` set to `filter`.
    pub fn start_logging(dir: &Path, config_text: &str, filter: &str) -> Gateway {
        let command = Command::new(env!("CARGO_BIN_EXE_trunkguard"));
        Gateway::launch(dir, config_text, filter, command)
    }

    /// Like [`Gateway::start`], `binary` run as user and group `id` without supplementary
    /// groups (`setpriv`; the caller must be root), so that file modes apply to it.
    pub fn start_as(dir: &Path, config_text: &str, binary: &Path, id: u32) -> Gateway {
        let mut command = Command::new("setpriv");
        command
            .arg(format!("--reuid={id}"))
            .arg(format!("--regid={id}"))
            .arg("--clear-groups")
            .arg(binary);
        Gateway::launch(dir, config_text, "info", command)
    }

    fn launch(dir: &Path, config_text: &str, filter: &str, mut command: Command) -> Gateway {
        let config = dir.join("trunkguard.toml");
        let log = dir.join("gateway.log");
        fs::write(&config, config_text).expect("write the gateway config");
        let log_file = fs::File::create(&log).expect("create the gateway log");
        let child = command
            .arg("--config")
            .arg(&config)
            .arg("run")
            .current_dir(dir)
            .env("RUST_LOG", filter)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("clone log handle"))
            .stderr(log_file)
            .spawn()
            .expect("start the trunkguard binary");
        let mut gw = Gateway {
            child: Some(child),
            config,
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if fs::read_to_string(&gw.log)
                .map(|t| t.contains("trunkguard listening"))
                .unwrap_or(false)
            {
                return gw;
            }
            if let Some(status) = gw.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                panic!(
                    "the gateway exited during start ({status}); its log:\n{}",
                    gw.log_tail(40)
                );
            }
            if Instant::now() >= deadline {
                panic!(
                    "the gateway did not report `trunkguard listening` within 30 s; its log:\n{}",
                    gw.log_tail(40)
                );
            }
            sleep(Duration::from_millis(50));
        }
    }

    /// The whole log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn config_path(&self) -> &Path {
        &self.config
    }

    pub fn log_tail(&self, lines: usize) -> String {
        tail(&self.log, lines)
    }

    /// Open file descriptors of the running gateway other than its database's (the SQLite pool
    /// opens connections as it needs them): sockets, recording files, pipes.
    pub fn open_fds(&self) -> Option<usize> {
        let pid = self.child.as_ref()?.id();
        let dir = fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
        Some(
            dir.filter_map(Result::ok)
                .filter(|e| {
                    fs::read_link(e.path())
                        .map(|t| !t.to_string_lossy().contains(".db"))
                        .unwrap_or(false)
                })
                .count(),
        )
    }

    /// Stop the gateway (SIGSTOP) for `pause`, then let it go on (SIGCONT): a stall, during
    /// which what its peers send queues in its sockets.
    pub fn suspend_for(&self, pause: Duration) -> Result<(), String> {
        let child = self.child.as_ref().ok_or("the gateway is not running")?;
        if !signal(child.id(), "STOP") {
            return Err("`kill -STOP` on the gateway failed".to_string());
        }
        sleep(pause);
        if !signal(child.id(), "CONT") {
            return Err("`kill -CONT` on the gateway failed".to_string());
        }
        Ok(())
    }

    /// SIGKILL: the process gets no chance to clean up (a crash, a power cut of the process).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill(); // std's kill is SIGKILL on Unix
            let _ = child.wait();
        }
    }

    /// SIGTERM (drain, flush CDRs) and wait for a clean exit. `Err` describes what went wrong.
    pub fn stop(&mut self) -> Result<(), String> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        if !signal(child.id(), "TERM") {
            let _ = child.kill();
            let _ = child.wait();
            return Err("`kill -TERM` failed; the gateway was killed".to_string());
        }
        // drain_timeout_secs is 5 in the test config; allow for BYEs and the CDR flush.
        match wait_bounded(&mut child, Duration::from_secs(30)) {
            Ok(status) if status.success() => Ok(()),
            Ok(status) => Err(format!("the gateway exited with {status} after SIGTERM")),
            Err(e) => Err(format!("the gateway did not stop after SIGTERM: {e}")),
        }
    }

    /// All CDRs, newest first, via `trunkguard --config X cdrs --limit N`.
    pub fn cdrs(&self) -> Result<Vec<Cdr>, String> {
        let out = Command::new(env!("CARGO_BIN_EXE_trunkguard"))
            .arg("--config")
            .arg(&self.config)
            .args(["cdrs", "--limit", "100000"])
            .current_dir(self.config.parent().unwrap_or(Path::new(".")))
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run `trunkguard cdrs`: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "`trunkguard cdrs` failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).map_err(|e| format!("bad CDR line {l:?}: {e}")))
            .collect()
    }

    /// `trunkguard --config X verify TARGET` (a recording path or a call id): its exit code
    /// (None when killed by a signal) and what it printed.
    pub fn verify(&self, target: &str) -> Result<(Option<i32>, String), String> {
        let out = Command::new(env!("CARGO_BIN_EXE_trunkguard"))
            .arg("--config")
            .arg(&self.config)
            .args(["verify", target])
            .current_dir(self.config.parent().unwrap_or(Path::new(".")))
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run `trunkguard verify`: {e}"))?;
        Ok((
            out.status.code(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        ))
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Every CDR has its own id, and the CDRs name exactly the calls in `inside_call_ids` (the
/// PBX's Call-IDs): one CDR per call, none lost, none twice.
pub fn assert_one_cdr_per_call(cdrs: &[Cdr], inside_call_ids: &HashSet<String>) {
    let ids: HashSet<&str> = cdrs.iter().map(|c| c.attempt.id.as_str()).collect();
    assert_eq!(ids.len(), cdrs.len(), "one CDR per id: {cdrs:#?}");
    let inside: HashSet<String> = cdrs
        .iter()
        .filter_map(|c| c.attempt.inside_call_id.clone())
        .collect();
    assert_eq!(&inside, inside_call_ids, "one CDR per call");
}

/// One SIPp process, run in its own directory (its trace files land there). Dropping it kills
/// the process if it still runs.
pub struct Sipp {
    pub name: String,
    child: Option<Child>,
    dir: PathBuf,
    /// Seconds given to `-timeout`; the Rust side waits a little longer, then kills.
    timeout_secs: u64,
    status: Option<ExitStatus>,
}

/// SIPp's arguments as owned strings, for [`SippSpec::args`].
pub fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// How to run one SIPp instance.
pub struct SippSpec<'a> {
    /// Label for messages and the directory name.
    pub name: &'a str,
    /// `-sf FILE` (a file under tests/sipp) or `-sn NAME` (built-in, e.g. "uas").
    pub scenario: Scenario<'a>,
    /// Local address (`-i`, `-p`).
    pub local: SocketAddr,
    /// Where a UAC sends; None for a UAS.
    pub remote: Option<SocketAddr>,
    /// Further arguments (`-m`, `-r`, `-l`, `-d`, `-s`, `-key` …).
    pub args: Vec<String>,
    /// Global `-timeout` in seconds (with `-timeout_error`).
    pub timeout_secs: u64,
}

pub enum Scenario<'a> {
    File(&'a str),
    Builtin(&'a str),
}

/// The working directory of the SIPp instance `name` under `base`, created if missing. Files a
/// scenario reads by a relative name (e.g. an `rtp_stream` audio file, cached when the scenario
/// loads) are put there before [`Sipp::spawn`].
pub fn sipp_dir(base: &Path, name: &str) -> PathBuf {
    let dir = base.join(format!("sipp-{name}"));
    fs::create_dir_all(&dir).expect("create the SIPp directory");
    dir
}

impl Sipp {
    pub fn spawn(base: &Path, spec: SippSpec<'_>) -> Sipp {
        let dir = sipp_dir(base, spec.name);
        let screen = fs::File::create(dir.join("screen.txt")).expect("create the SIPp screen file");
        let mut cmd = Command::new("sipp");
        match spec.scenario {
            Scenario::File(f) => cmd.arg("-sf").arg(Path::new(SCENARIOS).join(f)),
            Scenario::Builtin(n) => cmd.args(["-sn", n]),
        };
        cmd.args(["-i", &spec.local.ip().to_string()])
            .args(["-p", &spec.local.port().to_string()])
            .args(["-t", "u1", "-nostdin"])
            .args([
                "-timeout",
                &format!("{}s", spec.timeout_secs),
                "-timeout_error",
            ])
            // Statistics as CSV, dumped every second and once more at the end.
            .args(["-trace_stat", "-stf", "stat.csv", "-fd", "1"])
            // Per-message counts (which branch each call took) and errors.
            .args(["-trace_counts", "-trace_err"])
            .args(&spec.args);
        if let Some(remote) = spec.remote {
            cmd.arg(remote.to_string());
        }
        let child = cmd
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(screen.try_clone().expect("clone screen handle"))
            .stderr(screen)
            .spawn()
            .expect("start sipp (Debian package sip-tester)");
        Sipp {
            name: spec.name.to_string(),
            child: Some(child),
            dir,
            timeout_secs: spec.timeout_secs,
            status: None,
        }
    }

    /// Wait for SIPp to end by itself (bounded by its `-timeout` plus a margin, then killed).
    pub fn wait(&mut self) -> Result<ExitStatus, String> {
        if let Some(status) = self.status {
            return Ok(status);
        }
        let Some(mut child) = self.child.take() else {
            return Err(format!("sipp {} was not running", self.name));
        };
        let r = wait_bounded(&mut child, Duration::from_secs(self.timeout_secs + 15))
            .map_err(|e| format!("sipp {}: {e}", self.name));
        if let Ok(s) = r {
            self.status = Some(s);
        }
        r
    }

    /// Ask SIPp to finish (SIGUSR1: stop placing calls, let current ones end, write final
    /// statistics), then wait, bounded.
    pub fn finish(&mut self) -> Result<ExitStatus, String> {
        if let Some(child) = &self.child {
            if self.status.is_none() && !signal(child.id(), "USR1") {
                return Err(format!("sipp {}: `kill -USR1` failed", self.name));
            }
        }
        self.wait()
    }

    /// The screen (stdout and stderr) SIPp wrote.
    pub fn screen_tail(&self, lines: usize) -> String {
        tail(&self.dir.join("screen.txt"), lines)
    }

    fn trace_file(&self, suffix: &str) -> Option<PathBuf> {
        fs::read_dir(&self.dir)
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.ends_with(suffix))
            })
    }

    /// The last row of a SIPp `;`-separated trace file, by column name.
    fn last_row(path: &Path) -> Result<HashMap<String, String>, String> {
        let text =
            fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let mut lines = text.lines().filter(|l| !l.trim().is_empty());
        let header = lines
            .next()
            .ok_or_else(|| format!("{} is empty", path.display()))?;
        let last = lines
            .next_back()
            .ok_or_else(|| format!("{} has no data row", path.display()))?;
        Ok(header
            .split(';')
            .zip(last.split(';'))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect())
    }

    /// Final statistics (`-trace_stat`), cumulative counters by name, e.g. "SuccessfulCall".
    pub fn stats(&self) -> Result<Stats, String> {
        let row = Self::last_row(&self.dir.join("stat.csv"))?;
        Ok(Stats { row })
    }

    /// Final message counts (`-trace_counts`): e.g. "503_Recv" → how many calls got a 503 at
    /// the first element expecting one.
    pub fn counts(&self) -> Result<Counts, String> {
        let path = self
            .trace_file("_counts.csv")
            .ok_or_else(|| format!("sipp {}: no _counts.csv", self.name))?;
        Ok(Counts {
            row: Self::last_row(&path)?,
        })
    }

    /// The SIP messages SIPp received, in order, from its `-trace_msg` log (the test must
    /// pass `-trace_msg`).
    pub fn received_messages(&self) -> Result<Vec<String>, String> {
        let path = self.trace_file("_messages.log").ok_or_else(|| {
            format!(
                "sipp {}: no _messages.log (was -trace_msg given?)",
                self.name
            )
        })?;
        // Lossy: a test may send bytes that are not UTF-8 (a Latin-1 display name).
        let bytes = fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let text = String::from_utf8_lossy(&bytes);
        // Each entry: a dashed line with the time, "UDP message received [N] bytes :" or
        // "UDP message sent (N bytes):", a blank line, then the message.
        Ok(text
            .split("\n----------------------------------------------- ")
            .filter_map(|entry| {
                let (head, body) = entry.split_once("\n\n")?;
                head.contains("message received").then(|| body.to_string())
            })
            .collect())
    }

    /// Stop the SIPp process (SIGSTOP) for `pause`, then let it go on (SIGCONT).
    pub fn suspend_for(&self, pause: Duration) -> Result<(), String> {
        let child = self
            .child
            .as_ref()
            .ok_or_else(|| format!("sipp {} is not running", self.name))?;
        if !signal(child.id(), "STOP") {
            return Err(format!("sipp {}: `kill -STOP` failed", self.name));
        }
        sleep(pause);
        if !signal(child.id(), "CONT") {
            return Err(format!("sipp {}: `kill -CONT` failed", self.name));
        }
        Ok(())
    }

    /// SIPp's error trace, if any.
    pub fn errors_tail(&self, lines: usize) -> String {
        match self.trace_file("_errors.log") {
            Some(p) => tail(&p, lines),
            None => "<no errors log>".to_string(),
        }
    }
}

impl Drop for Sipp {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// SIPp's cumulative statistics.
pub struct Stats {
    row: HashMap<String, String>,
}

impl Stats {
    /// A cumulative counter, e.g. `get("SuccessfulCall")` reads "SuccessfulCall(C)".
    pub fn get(&self, name: &str) -> Result<u64, String> {
        let key = format!("{name}(C)");
        let v = self
            .row
            .get(&key)
            .ok_or_else(|| format!("no column {key} in the SIPp statistics"))?;
        v.trim()
            .parse()
            .map_err(|e| format!("column {key} = {v:?}: {e}"))
    }
}

/// SIPp's per-message counts.
pub struct Counts {
    row: HashMap<String, String>,
}

impl Counts {
    /// The count of the first (lowest index) scenario element named `<index>_<what>`, e.g.
    /// `first("503_Recv")`.
    pub fn first(&self, what: &str) -> Result<u64, String> {
        let suffix = format!("_{what}");
        let mut found: Vec<(u32, &String)> = self
            .row
            .iter()
            .filter_map(|(k, v)| {
                let idx = k.strip_suffix(&suffix)?;
                Some((idx.parse().ok()?, v))
            })
            .collect();
        found.sort_by_key(|(i, _)| *i);
        let (_, v) = found
            .first()
            .ok_or_else(|| format!("no column *{suffix} in the SIPp counts"))?;
        v.trim()
            .parse()
            .map_err(|e| format!("count {what} = {v:?}: {e}"))
    }
}

/// One test's world: a tempdir, the gateway and the SIPp instances. Failures go through
/// [`Scene::fail`] so that the message carries the gateway log and the SIPp screens. Dropping
/// it kills whatever still runs; on panic the tempdir is kept and its path printed.
pub struct Scene {
    // Field order is drop order: processes first, then the directory.
    pub sipps: Vec<Sipp>,
    pub gateway: Gateway,
    pub addrs: Addrs,
    dir: Option<tempfile::TempDir>,
}

impl Scene {
    pub fn start(limits: TrunkLimits) -> Scene {
        Scene::start_with(limits, |_| String::new())
    }

    /// Like [`Scene::start`], with more TOML appended to the gateway's config (further tables
    /// such as `[media]` or `[recording]`); `extra` gets the test's directory.
    pub fn start_with(limits: TrunkLimits, extra: impl FnOnce(&Path) -> String) -> Scene {
        Scene::start_edited(limits, |dir, mut config| {
            let extra = extra(dir);
            if extra.contains("[media]\n") {
                // One [media] table: the test's keys join the port range.
                config = config.replace(MEDIA_SECTION, "");
                config.push_str(&extra.replacen("[media]\n", MEDIA_SECTION, 1));
            } else {
                config.push_str(&extra);
            }
            config
        })
    }

    /// Like [`Scene::start`], the config text passed through `edit` (with the test's directory)
    /// before the gateway starts.
    pub fn start_edited(limits: TrunkLimits, edit: impl FnOnce(&Path, String) -> String) -> Scene {
        let dir = tempfile::Builder::new()
            .prefix("trunkguard-sipp-")
            .tempdir()
            .expect("create a tempdir");
        let addrs = Addrs::pick();
        let db = dir.path().join("cdrs.db");
        let config = edit(dir.path(), config_toml(&addrs, &db, limits));
        let gateway = Gateway::start(dir.path(), &config);
        Scene {
            sipps: Vec::new(),
            gateway,
            addrs,
            dir: Some(dir),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.as_ref().expect("tempdir").path()
    }

    /// Start a SIPp instance; returns its index in `sipps`.
    pub fn sipp(&mut self, spec: SippSpec<'_>) -> usize {
        let sipp = Sipp::spawn(self.path(), spec);
        self.sipps.push(sipp);
        self.sipps.len() - 1
    }

    /// Everything a reader needs to see why a test failed.
    pub fn diagnostics(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "--- gateway log (last 40 lines) ---\n{}",
            self.gateway.log_tail(40)
        );
        for sipp in &self.sipps {
            let _ = writeln!(
                s,
                "--- sipp {} screen (last 30 lines) ---\n{}\n--- sipp {} errors (last 20 lines) ---\n{}",
                sipp.name,
                sipp.screen_tail(30),
                sipp.name,
                sipp.errors_tail(20)
            );
        }
        s
    }

    pub fn fail(&self, what: impl std::fmt::Display) -> ! {
        panic!("{what}\n{}", self.diagnostics());
    }

    pub fn ensure(&self, ok: bool, what: impl FnOnce() -> String) {
        if !ok {
            self.fail(what());
        }
    }

    /// Unwrap a harness result or fail with diagnostics.
    pub fn ok<T>(&self, r: Result<T, String>) -> T {
        r.unwrap_or_else(|e| self.fail(e))
    }

    /// The first INVITE SIPp `i` received (it must run with `-trace_msg`); fails the test when
    /// there is none.
    pub fn received_invite(&self, i: usize) -> String {
        let received = self.ok(self.sipps[i].received_messages());
        received
            .into_iter()
            .find(|m| m.starts_with("INVITE "))
            .unwrap_or_else(|| self.fail(format!("sipp {} received no INVITE", self.sipps[i].name)))
    }

    /// Wait for SIPp `i` to end by itself and require exit code 0.
    pub fn expect_exit_ok(&mut self, i: usize) {
        let r = self.sipps[i].wait();
        match r {
            Ok(s) if s.success() => {}
            Ok(s) => {
                let name = self.sipps[i].name.clone();
                self.fail(format!("sipp {name} exited with {s}, expected 0"))
            }
            Err(e) => self.fail(e),
        }
    }

    /// SIGTERM the gateway, wait for it, then read every CDR.
    pub fn stop_and_read_cdrs(&mut self) -> Vec<Cdr> {
        let r = self.gateway.stop();
        self.ok(r);
        let r = self.gateway.cdrs();
        self.ok(r)
    }
}

impl Drop for Scene {
    fn drop(&mut self) {
        // Kill processes before the directory goes.
        self.sipps.clear();
        if std::thread::panicking() {
            if let Some(dir) = self.dir.take() {
                let kept = dir.keep();
                eprintln!("kept the test directory for inspection: {}", kept.display());
            }
        }
    }
}

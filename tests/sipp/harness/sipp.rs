//! One SIPp process: how to run it, its screen and traces, its statistics and per-message
//! counts; killed when dropped.

use std::collections::HashMap;
use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::sleep;
use std::time::Duration;

use super::{signal, tail, wait_bounded, SCENARIOS};

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

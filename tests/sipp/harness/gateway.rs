//! The `trunkguard` binary as a process: started with a config, stopped (SIGTERM) or killed,
//! its log, descriptors and CDRs read; killed when dropped.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use trunkguard::model::Cdr;

use super::{signal, tail, wait_bounded};

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

//! What the bench measures from /proc: a process's CPU time and memory, the machine's CPU, and
//! UDP buffer errors and per-socket drops.

use std::fs;
use std::net::Ipv4Addr;

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
pub fn cpu_secs(pid: &str) -> f64 {
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
pub fn rss_kib(pid: &str) -> u64 {
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
pub fn machine_cpu() -> (f64, f64) {
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
pub fn udp_buf_errors() -> u64 {
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
pub fn socket_drops(keep: impl Fn(Ipv4Addr, u16) -> bool) -> u64 {
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

//! One step's row of results and its CSV line.

pub fn loss_pct(sent: u64, got: u64) -> f64 {
    if sent == 0 {
        return 100.0;
    }
    100.0 * (sent.saturating_sub(got)) as f64 / sent as f64
}

/// One row of the table.
#[derive(Default)]
pub struct Row {
    pub calls: usize,
    pub up: usize,
    pub setup_s: f64,
    pub sent: [u64; 2],
    pub got: [u64; 2],
    pub loss: [f64; 2],
    pub p50: [f64; 2],
    pub p99: [f64; 2],
    pub max_ms: f64,
    pub base_p50: f64,
    pub base_p99: f64,
    pub gw_cpu_pct: f64,
    pub gw_us_per_pkt: f64,
    pub gen_cpu_pct: f64,
    pub other_cpu_pct: f64,
    pub rss_idle_mib: f64,
    pub rss_mib: f64,
    pub kib_per_call: f64,
    pub gw_drops: u64,
    pub gen_drops: u64,
    pub udp_buf_err: u64,
    pub late_ticks: u64,
    pub send_s: f64,
    pub drain_s: f64,
    pub byes: (usize, usize),
    pub wavs: usize,
    pub parts: usize,
    pub wav_ok: String,
    pub clean_exit: bool,
    pub pass: bool,
    /// p99 one-way latency through the gateway under 150 ms (ITU-T G.114's whole mouth-to-ear
    /// budget: a relay should add a small fraction of it).
    pub voice_ok: bool,
}

pub const HEADER: &str =
    "calls,up,setup_s,sent_a2c,got_a2c,loss_a2c_pct,sent_c2a,got_c2a,loss_c2a_pct,\
p50_us,p99_us,max_ms,base_p50_us,base_p99_us,gw_cpu_pct,gw_us_per_pkt,gw_cpu_pct_per_call,\
rss_idle_mib,rss_mib,rss_kib_per_call,gen_cpu_pct,other_cpu_pct,gw_sock_drops,gen_sock_drops,\
udp_buf_errors,late_ticks,send_s,drain_s,bye_ok,bye_got,wavs,parts,wav_check,clean_exit,pass,p99_under_150ms";

pub fn csv(r: &Row) -> String {
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

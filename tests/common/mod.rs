//! Test harness: the real gateway in-process on loopback, a PBX UA and a carrier UA of our own.
//!
//! Addresses: gateway inside 127.0.0.1:0, outside 127.0.0.2:0; PBX UA 127.0.0.10:0, carrier UA
//! 127.0.0.11:0. The trunk trusts 127.0.0.10/32 as its PBX and sends to the carrier UA's port.

// Each test binary uses a part of the harness only.
#![allow(dead_code, unused_imports)]

pub mod api;
pub mod binary;
pub mod cluster;
pub mod evidence;
pub mod msg;
pub mod recording;
pub mod rtp;
pub mod tcp;
pub mod ua;

use std::net::SocketAddr;
use std::time::Duration;

use tokio::time::Instant;
use trunkguard::app::Gateway;
use trunkguard::config::Config;
use trunkguard::model::Cdr;
use trunkguard::store::testing::PgTestDb;

pub use msg::Msg;
pub use ua::{answer_and_ack, reason_for, sdp, token, Dialog, InviteSpec, Sent, Ua, WAIT};

pub const TRUNK: &str = "test";
/// The trunk's numbers: the only caller IDs allowed out, the only numbers reachable in.
pub const CALLER: &str = "+861012345678";
pub const CALLER2: &str = "+861012345679";
/// A customer number (outbound callee, inbound caller).
pub const CALLEE: &str = "+8613900000001";
pub const CALLEE2: &str = "+8613900000002";

pub const PBX_IP: &str = "127.0.0.10";
pub const CARRIER_IP: &str = "127.0.0.11";

pub struct Harness {
    pub gw: Gateway,
    pub pbx: Ua,
    pub carrier: Ua,
    /// T1 the gateway runs with.
    pub t1: Duration,
    pub dir: tempfile::TempDir,
    /// The configuration the gateway was started with (trunks for the CLI functions).
    pub config: Config,
    /// The PostgreSQL database the gateway runs on, when it does (dropped with the harness).
    pub pg: Option<PgTestDb>,
}

/// Whether the in-process gateway runs on PostgreSQL: `TRUNKGUARD_TEST_BACKEND=postgres` runs a
/// whole suite so, each gateway on a fresh database (`trunkguard::store::testing`).
pub fn postgres_from_env() -> bool {
    std::env::var("TRUNKGUARD_TEST_BACKEND").is_ok_and(|b| b == "postgres")
}

/// `start_gateway` on a fresh PostgreSQL database; `None` (after printing why) when no server
/// answers and CI is not set.
pub async fn start_gateway_on_postgres(tweaks: &[&str]) -> Option<Harness> {
    let db = PgTestDb::create().await?;
    Some(start_gateway_with(tweaks, Some(db)).await)
}

/// `TRUNKGUARD_TEST_MEDIA_ENGINE=io_uring` (or `epoll`) runs a suite's in-process gateways on
/// that relay engine (`[media] engine`). A process relays on one engine: the first gateway's
/// choice stays (`media::start_relay`), so a whole test binary is run once per engine.
pub fn media_engine_from_env() -> Option<String> {
    std::env::var("TRUNKGUARD_TEST_MEDIA_ENGINE")
        .ok()
        .filter(|e| !e.is_empty())
}

fn init_tracing() {
    // RUST_LOG=trunkguard=debug shows the gateway's log for a failing test.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// One `section.key = value` setting; `tweaks` replace the defaults below or add keys.
fn settings(defaults: &[(&str, String)], tweaks: &[&str]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = defaults
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    for t in tweaks {
        let (k, v) = t
            .split_once('=')
            .unwrap_or_else(|| panic!("tweak {t:?} is not `section.key = value`"));
        let (k, v) = (k.trim().to_string(), v.trim().to_string());
        match out.iter_mut().find(|(ok, _)| *ok == k) {
            Some(slot) => slot.1 = v,
            None => out.push((k, v)),
        }
    }
    out
}

fn section(all: &[(String, String)], name: &str) -> String {
    let prefix = format!("{name}.");
    all.iter()
        .filter_map(|(k, v)| k.strip_prefix(&prefix).map(|k| format!("{k} = {v}\n")))
        .collect()
}

/// Start a gateway with both UAs. `tweaks` are TOML settings such as `"sip.t1_ms = 50"` or
/// `"trunk.max_call_secs = 1"` (sections `sip`, `database`, `media`, `recording`, `http`, `evidence`,
/// `trunk`). `database.url` points the gateway at a database file that outlives the harness
/// (restarts on the same database); the default is a file in the harness's own tempdir, or a
/// fresh PostgreSQL database with `TRUNKGUARD_TEST_BACKEND=postgres`.
pub async fn start_gateway(tweaks: &[&str]) -> Harness {
    let own_url = tweaks
        .iter()
        .any(|t| t.trim_start().starts_with("database.url"));
    let pg = if postgres_from_env() && !own_url {
        PgTestDb::create().await
    } else {
        None
    };
    start_gateway_with(tweaks, pg).await
}

async fn start_gateway_with(tweaks: &[&str], pg: Option<PgTestDb>) -> Harness {
    init_tracing();
    if let Some(db) = &pg {
        eprintln!("-- gateway on PostgreSQL ({})", db.name());
    }
    let pbx = Ua::bind("pbx", PBX_IP).await;
    let carrier = Ua::bind("carrier", CARRIER_IP).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let defaults = [
        ("sip.inside", "\"127.0.0.1:0\"".to_string()),
        ("sip.outside", "\"127.0.0.2:0\"".to_string()),
        ("sip.unknown_sources", "\"drop\"".to_string()),
        // RFC default T1: no retransmission happens while a UA answers within milliseconds,
        // so the flows are exact. Tests of timers set it lower.
        ("sip.t1_ms", "500".to_string()),
        ("sip.drain_timeout_secs", "5".to_string()),
        (
            "database.url",
            match &pg {
                Some(db) => format!("\"{}\"", db.url()),
                None => format!("\"sqlite://{}/tg.db\"", dir.path().display()),
            },
        ),
        // Below Linux's ephemeral ports (where the UAs' own sockets land), and apart from the
        // range the tests that run the binary use.
        ("media.port_range", "[21000, 24999]".to_string()),
        (
            "recording.dir",
            format!("\"{}/recordings\"", dir.path().display()),
        ),
        // Some suites record onto a tmpfs of a few hundred KiB: no floor but a full disk.
        ("recording.min_free_mb", "0".to_string()),
        // The HTTP API on any free port (`Gateway::http_addr`).
        ("http.listen", "\"127.0.0.1:0\"".to_string()),
        ("trunk.name", format!("\"{TRUNK}\"")),
        ("trunk.pbx", format!("[\"{PBX_IP}/32\"]")),
        ("trunk.carrier", format!("\"{}\"", carrier.addr())),
        ("trunk.inbound_to", format!("\"{}\"", pbx.addr())),
        ("trunk.numbers", format!("[\"{CALLER}\", \"{CALLER2}\"]")),
        ("trunk.max_concurrent", "30".to_string()),
        ("trunk.max_concurrent_per_caller_id", "10".to_string()),
        ("trunk.max_cps", "100.0".to_string()),
        ("trunk.timezone", "\"UTC\"".to_string()),
        // The suites call the same numbers again and again; tests of the limit turn it on.
        (
            "trunk.rules",
            "{ over_frequent_callee = { enabled = false } }".to_string(),
        ),
    ];
    let mut defaults = defaults.to_vec();
    if let Some(engine) = media_engine_from_env() {
        defaults.push(("media.engine", format!("\"{engine}\"")));
    }
    let all = settings(&defaults, tweaks);
    let toml = format!(
        "[sip]\n{}\n[database]\n{}\n[media]\n{}\n[recording]\n{}\n[http]\n{}\n[evidence]\n{}\n\
         [[trunks]]\n{}",
        section(&all, "sip"),
        section(&all, "database"),
        section(&all, "media"),
        section(&all, "recording"),
        section(&all, "http"),
        section(&all, "evidence"),
        section(&all, "trunk")
    );
    let config = Config::from_toml(&toml).unwrap_or_else(|e| panic!("config: {e}\n{toml}"));
    let t1 = Duration::from_millis(config.sip.t1_ms);
    let gw = Gateway::start(config.clone())
        .await
        .expect("gateway starts");
    Harness {
        gw,
        pbx,
        carrier,
        t1,
        dir,
        config,
        pg,
    }
}

impl Harness {
    pub fn inside(&self) -> SocketAddr {
        self.gw.inside_addr()
    }

    pub fn outside(&self) -> SocketAddr {
        self.gw.outside_addr()
    }

    /// 64·T1: timers B, F, H and the wait for an ACK.
    pub fn timeout(&self) -> Duration {
        self.t1 * 64
    }

    /// Wait (bounded) until no call is live and no concurrency slot is held, then assert it.
    /// Slots are released when a call ends and the registry entry when its task finishes, both
    /// right after the last message, so a short poll is enough.
    pub async fn assert_idle(&self) {
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            let total = self.gw.policy().total_active();
            let load = self.gw.policy().live(TRUNK).expect("trunk exists");
            let live = self.gw.registry().len();
            let ports = self.gw.media_ports_in_use();
            if total == 0
                && load.active == 0
                && load.per_number.is_empty()
                && live == 0
                && ports == 0
            {
                return;
            }
            if Instant::now() >= deadline {
                panic!(
                    "not idle: total_active={total} trunk active={} per_number={:?} live calls={live} \
                     media port pairs={ports}",
                    load.active, load.per_number
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Wait (bounded) until the recordings folder's health watcher finds it `usable` (or not):
    /// admission and `/healthz` read its verdict, which follows the disk within a round.
    pub async fn wait_for_disk(&self, usable: bool) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.gw.recording_disk().verdict().is_ok() != usable {
            assert!(
                Instant::now() < deadline,
                "the disk watcher never found the folder usable = {usable}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Assert idle, stop the gateway (which flushes CDRs) and return every CDR, oldest first.
    pub async fn finish(self) -> Vec<Cdr> {
        self.assert_idle().await;
        self.shutdown().await
    }

    /// Stop the gateway and return every CDR, oldest first (no idle check). Recording paths
    /// are stored relative to the recordings folder; here they are resolved under it, as files
    /// the tests open (`Store::recording` gives them as stored).
    pub async fn shutdown(self) -> Vec<Cdr> {
        let store = self.gw.store().clone();
        let root = self.config.recording.dir.clone();
        self.gw.shutdown().await;
        let mut cdrs = store.recent_cdrs(10_000).await.expect("read CDRs");
        cdrs.reverse();
        for rec in cdrs.iter_mut().filter_map(|c| c.recording.as_mut()) {
            for path in [&mut rec.path, &mut rec.pcap_path].into_iter().flatten() {
                let file = trunkguard::recording::paths::resolve(&root, std::path::Path::new(path));
                *path = file.display().to_string();
            }
        }
        cdrs
    }

    /// An outbound INVITE from the PBX with the default parties and SDP.
    pub async fn pbx_invite(&self) -> Sent {
        self.pbx
            .invite(self.inside(), &InviteSpec::new(CALLER, CALLEE))
            .await
    }

    /// The carrier receives the INVITE and answers 100 Trying (which stops the gateway's
    /// INVITE retransmissions).
    pub async fn carrier_gets_invite(&mut self) -> Msg {
        let inv = self.carrier.expect_request("INVITE").await;
        self.carrier.reply(&inv, 100, None).await;
        inv
    }

    /// A complete outbound call setup: INVITE, 100, 180, 200 with SDP, ACK on both legs.
    pub async fn establish(&mut self) -> Call {
        let invite = self.pbx_invite().await;
        self.pbx.expect_response(100).await;
        let c_invite = self.carrier_gets_invite().await;
        let c_tag = token("ct");
        self.carrier.reply(&c_invite, 180, Some(&c_tag)).await;
        self.pbx.expect_response(180).await;
        self.carrier
            .reply_with(&c_invite, 200, Some(&c_tag), &[], Some(&sdp("sendrecv")))
            .await;
        let ok = self.pbx.expect_response(200).await;
        assert_eq!(ok.cseq(), (1, "INVITE".to_string()));
        let pbx = Dialog::uac(&invite, &ok);
        self.pbx.ack(&pbx, invite.cseq).await;
        let c_ack = self.carrier.expect_request("ACK").await;
        assert_eq!(c_ack.call_id(), c_invite.call_id());
        let carrier = Dialog::uas(&c_invite, &c_tag);
        Call {
            invite,
            c_invite,
            pbx,
            carrier,
        }
    }

    /// The PBX ends its dialog `pbx`: the BYE reaches the carrier, which answers 200, and the
    /// PBX gets its 200. Returns the BYE as the carrier got it.
    pub async fn hang_up_from_pbx(&mut self, pbx: &mut Dialog) -> Msg {
        self.pbx.bye(pbx).await;
        let bye = self.carrier.expect_request("BYE").await;
        self.carrier.reply(&bye, 200, None).await;
        self.pbx.expect_response_to("BYE", 200).await;
        bye
    }
}

/// An established outbound call: both legs' dialogs as the UAs see them.
pub struct Call {
    pub invite: Sent,
    pub c_invite: Msg,
    pub pbx: Dialog,
    pub carrier: Dialog,
}

/// The one CDR of a test that placed one call.
pub fn only(cdrs: &[Cdr]) -> &Cdr {
    assert_eq!(cdrs.len(), 1, "expected exactly one CDR, got {cdrs:#?}");
    &cdrs[0]
}

/// A calling-hours window that excludes the current UTC time by at least an hour on each side.
pub fn hours_excluding_now() -> String {
    use chrono::Timelike;
    let now = chrono::Utc::now().hour();
    let start = (now + 2) % 24;
    let end = (now + 4) % 24;
    format!("\"{start:02}:00-{end:02}:00\"")
}

/// The gateway's RTP address in these tests (`[media]` defaults).
pub const MEDIA_IP: &str = "127.0.0.1";

/// SDP that crossed the gateway: the same session (codecs, direction) with the gateway's own
/// media address and port in place of the sender's (media anchoring, topology hiding).
pub fn assert_anchored(got: &str, sent: &str) {
    let line = |sdp: &str, prefix: &str| -> Option<String> {
        sdp.lines()
            .find(|l| l.starts_with(prefix))
            .map(str::to_string)
    };
    let sent_m = line(sent, "m=audio ").expect("sent SDP has m=audio");
    let got_m = line(got, "m=audio ").unwrap_or_else(|| panic!("no m=audio in {got:?}"));
    let fields = |m: &str| m.split(' ').map(str::to_string).collect::<Vec<_>>();
    let (sent_f, got_f) = (fields(&sent_m), fields(&got_m));
    assert_eq!(got_f[2..], sent_f[2..], "codecs kept: {got:?}");
    assert_ne!(got_f[1], sent_f[1], "port anchored: {got:?}");
    assert_ne!(got_f[1], "0", "stream not declined: {got:?}");
    let sent_c = line(sent, "c=").expect("sent SDP has c=");
    let sent_ip = sent_c.rsplit(' ').next().unwrap_or_default();
    assert!(
        !got.contains(sent_ip),
        "sender's address {sent_ip} hidden: {got:?}"
    );
    assert!(
        got.contains(&format!("c=IN IP4 {MEDIA_IP}")),
        "gateway media address: {got:?}"
    );
    for dir in ["a=sendrecv", "a=sendonly", "a=recvonly", "a=inactive"] {
        assert_eq!(got.contains(dir), sent.contains(dir), "{dir} kept: {got:?}");
    }
}

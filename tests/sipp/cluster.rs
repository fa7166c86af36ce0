//! Several gateway nodes for the cluster tests: real `trunkguard` processes, each with its own
//! interfaces (node i on 127.0.0.(20+2i) inside and 127.0.0.(21+2i) outside) and media port
//! range, sharing one PostgreSQL database (a fresh one per scene, dropped after) and one Redis
//! under the test's own key prefix (deleted when the scene is dropped). One carrier (SIPp) and one PBX address serve every node, as a
//! carrier's allow-list and a PBX's list of trunk destinations do.
#![allow(dead_code)]

use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use super::harness::{
    config_toml, free_port, Addrs, Gateway, Scenario, Sipp, SippSpec, TrunkLimits, CARRIER_IP,
    PBX_IP,
};
use trunkguard::model::Cdr;

pub const REDIS: &str = "redis://127.0.0.1:6379/0";

/// Whether Redis answers; under CI=true a Redis that cannot be reached fails the test.
pub fn redis_here(test: &str) -> bool {
    let up = redis::Client::open(REDIS)
        .and_then(|c| c.get_connection_with_timeout(Duration::from_secs(3)))
        .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c))
        .is_ok();
    if !up {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{test}: no Redis at 127.0.0.1:6379 under CI=true (scripts/test.sh starts one)"
        );
        eprintln!("{test}: skipped: no Redis at 127.0.0.1:6379 (scripts/test.sh starts one)");
    }
    up
}

/// What a test sets in `[cluster]`.
#[derive(Debug, Clone)]
pub struct ClusterSettings {
    /// The Redis URL the nodes use (a `RedisProxy`'s to cut it); `None`: the test Redis.
    pub redis_url: Option<String>,
    pub heartbeat_secs: u64,
    pub node_timeout_secs: u64,
    pub on_shared_state_down: &'static str,
}

impl Default for ClusterSettings {
    fn default() -> Self {
        ClusterSettings {
            redis_url: None,
            heartbeat_secs: 1,
            node_timeout_secs: 3,
            on_shared_state_down: "refuse",
        }
    }
}

/// One PBX SIPp run (`ClusterScene::pbx_batch`).
pub struct PbxBatch<'a> {
    pub node: usize,
    pub name: &'a str,
    pub calls: u32,
    pub caller: &'a str,
    pub callee: &'a str,
    /// Calls per second.
    pub rate: u32,
    pub hold_ms: u32,
}

pub struct Node {
    pub name: String,
    pub gateway: Gateway,
    pub addrs: Addrs,
}

pub struct ClusterScene {
    // Field order is drop order: processes first, then the database, the directory and the keys.
    pub sipps: Vec<Sipp>,
    pub nodes: Vec<Node>,
    /// The database every node shares.
    pub db: Option<trunkguard::store::testing::PgTestDb>,
    /// Where the carrier (SIPp UAS) listens: every node's trunk `carrier`.
    pub carrier: SocketAddr,
    pub prefix: String,
    dir: Option<tempfile::TempDir>,
}

impl ClusterScene {
    /// `n` nodes with the same trunk limits, every one started and listening.
    pub fn start(n: usize, limits: TrunkLimits, cluster: ClusterSettings) -> ClusterScene {
        ClusterScene::start_each(n, limits, |_| cluster.clone())
    }

    /// Like `start`, node i with `cluster(i)`'s settings.
    pub fn start_each(
        n: usize,
        limits: TrunkLimits,
        cluster: impl Fn(usize) -> ClusterSettings,
    ) -> ClusterScene {
        let dir = tempfile::Builder::new()
            .prefix("trunkguard-cluster-")
            .tempdir()
            .expect("create a tempdir");
        let prefix = format!("tgcluster-{:016x}", rand::random::<u64>());
        let carrier = SocketAddr::new(CARRIER_IP.into(), free_port(CARRIER_IP, false));
        let pbx_uas = SocketAddr::new(PBX_IP.into(), free_port(PBX_IP, false));
        let db = postgres_here();
        let url = db.as_ref().map(|db| db.url());
        let mut scene = ClusterScene {
            sipps: Vec::new(),
            nodes: Vec::new(),
            db,
            carrier,
            prefix,
            dir: Some(dir),
        };
        for i in 0..n {
            let name = format!("gw-{}", (b'a' + i as u8) as char);
            let inside_ip = Ipv4Addr::new(127, 0, 0, 20 + 2 * i as u8);
            let outside_ip = Ipv4Addr::new(127, 0, 0, 21 + 2 * i as u8);
            let addrs = Addrs {
                inside: SocketAddr::new(inside_ip.into(), free_port(inside_ip, true)),
                outside: SocketAddr::new(outside_ip.into(), free_port(outside_ip, true)),
                carrier,
                pbx_uas,
            };
            let node_dir = scene.path().join(&name);
            std::fs::create_dir_all(&node_dir).expect("create the node's directory");
            let settings = cluster(i);
            let mut config =
                node_config(&node_dir, &addrs, limits, &name, i, &scene.prefix, settings);
            if let Some(url) = &url {
                config = on_database(&config, url);
            }
            let gateway = Gateway::start(&node_dir, &config);
            scene.nodes.push(Node {
                name,
                gateway,
                addrs,
            });
        }
        scene
    }

    pub fn path(&self) -> &Path {
        self.dir.as_ref().expect("tempdir").path()
    }

    /// Like `start_each`, node i's config text passed through `edit(i, text)` (a shared
    /// `[recording] dir`, say) before it starts.
    pub fn start_edited(
        n: usize,
        limits: TrunkLimits,
        cluster: impl Fn(usize) -> ClusterSettings,
        edit: impl Fn(usize, String) -> String,
    ) -> ClusterScene {
        let mut scene = ClusterScene::empty();
        for i in 0..n {
            scene.add_node(limits, cluster(i), |config| edit(i, config));
        }
        scene
    }

    /// A scene with no node yet (its database, key prefix and carrier address chosen).
    pub fn empty() -> ClusterScene {
        let dir = tempfile::Builder::new()
            .prefix("trunkguard-cluster-")
            .tempdir()
            .expect("create a tempdir");
        ClusterScene {
            sipps: Vec::new(),
            nodes: Vec::new(),
            db: postgres_here(),
            carrier: SocketAddr::new(CARRIER_IP.into(), free_port(CARRIER_IP, false)),
            prefix: format!("tgcluster-{:016x}", rand::random::<u64>()),
            dir: Some(dir),
        }
    }

    /// Starts one more node (the next one: `gw-c` after `gw-a` and `gw-b`), its config text
    /// passed through `edit`, and waits until it listens: a node started while the others
    /// carry calls. Returns its index.
    pub fn add_node(
        &mut self,
        limits: TrunkLimits,
        settings: ClusterSettings,
        edit: impl FnOnce(String) -> String,
    ) -> usize {
        let i = self.nodes.len();
        let name = format!("gw-{}", (b'a' + i as u8) as char);
        let inside_ip = Ipv4Addr::new(127, 0, 0, 20 + 2 * i as u8);
        let outside_ip = Ipv4Addr::new(127, 0, 0, 21 + 2 * i as u8);
        let addrs = Addrs {
            inside: SocketAddr::new(inside_ip.into(), free_port(inside_ip, true)),
            outside: SocketAddr::new(outside_ip.into(), free_port(outside_ip, true)),
            carrier: self.carrier,
            pbx_uas: SocketAddr::new(PBX_IP.into(), free_port(PBX_IP, false)),
        };
        let node_dir = self.path().join(&name);
        std::fs::create_dir_all(&node_dir).expect("create the node's directory");
        let mut config = node_config(&node_dir, &addrs, limits, &name, i, &self.prefix, settings);
        if let Some(db) = &self.db {
            config = on_database(&config, &db.url());
        }
        let gateway = Gateway::start(&node_dir, &edit(config));
        self.nodes.push(Node {
            name,
            gateway,
            addrs,
        });
        i
    }

    /// Starts node `i` again after it was killed: same id, directory and config (the last
    /// run's log kept as `gateway.log.1`).
    pub fn restart_node(&mut self, i: usize) {
        let node_dir = self.path().join(&self.nodes[i].name);
        let _ = std::fs::rename(node_dir.join("gateway.log"), node_dir.join("gateway.log.1"));
        let config = std::fs::read_to_string(self.nodes[i].gateway.config_path())
            .expect("the node's config");
        self.nodes[i].gateway = Gateway::start(&node_dir, &config);
    }

    pub fn sipp(&mut self, spec: SippSpec<'_>) -> usize {
        let sipp = Sipp::spawn(self.path(), spec);
        self.sipps.push(sipp);
        self.sipps.len() - 1
    }

    pub fn diagnostics(&self) -> String {
        let mut s = String::new();
        for node in &self.nodes {
            let _ = writeln!(
                s,
                "--- {} log (last 30 lines) ---\n{}",
                node.name,
                node.gateway.log_tail(30)
            );
        }
        for sipp in &self.sipps {
            let _ = writeln!(
                s,
                "--- sipp {} screen (last 20 lines) ---\n{}\n--- sipp {} errors ---\n{}",
                sipp.name,
                sipp.screen_tail(20),
                sipp.name,
                sipp.errors_tail(10)
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

    pub fn ok<T>(&self, r: Result<T, String>) -> T {
        r.unwrap_or_else(|e| self.fail(e))
    }

    pub fn expect_exit_ok(&mut self, i: usize) {
        match self.sipps[i].wait() {
            Ok(s) if s.success() => {}
            Ok(s) => {
                let name = self.sipps[i].name.clone();
                self.fail(format!("sipp {name} exited with {s}, expected 0"))
            }
            Err(e) => self.fail(e),
        }
    }

    /// SIGTERM every node still running, then the cluster's CDRs (read once from the shared
    /// database; from each node's own file without PostgreSQL).
    pub fn stop_and_read_cdrs(&mut self) -> Vec<Cdr> {
        for i in 0..self.nodes.len() {
            let r = self.nodes[i].gateway.stop();
            self.ok(r);
        }
        let readers = if self.db.is_some() {
            1
        } else {
            self.nodes.len()
        };
        let mut all = Vec::new();
        for i in 0..readers {
            let r = self.nodes[i].gateway.cdrs();
            all.extend(self.ok(r));
        }
        all
    }

    /// SIPp as the carrier: the built-in UAS (180, 200, waits for BYE) where every node's trunk
    /// sends; with `calls` > 0 it ends by itself after that many calls.
    pub fn carrier_uas(&mut self, calls: u32, timeout_secs: u64) -> usize {
        let local = self.carrier;
        let args = if calls > 0 {
            vec!["-m".to_string(), calls.to_string()]
        } else {
            Vec::new()
        };
        self.sipp(SippSpec {
            name: "carrier-uas",
            scenario: Scenario::Builtin("uas"),
            local,
            remote: None,
            args,
            timeout_secs,
        })
    }

    /// SIPp as the PBX: `calls` calls at `rate` a second (all up at once) to node `node`'s
    /// inside interface from `caller`; an answered call talks `hold_ms`, then hangs up. Answered
    /// and refused (503) calls both end well (`pbx_uac_capacity.xml`).
    pub fn pbx_batch(&mut self, batch: PbxBatch<'_>) -> usize {
        let local = SocketAddr::new(PBX_IP.into(), free_port(PBX_IP, false));
        let inside = self.nodes[batch.node].addrs.inside;
        let n = batch.calls.to_string();
        let args = [
            "-key",
            "caller",
            batch.caller,
            "-s",
            batch.callee,
            "-m",
            &n,
            "-l",
            &n,
            "-r",
            &batch.rate.to_string(),
            "-d",
            &batch.hold_ms.to_string(),
        ]
        .iter()
        .map(|a| a.to_string())
        .collect();
        self.sipp(SippSpec {
            name: batch.name,
            scenario: Scenario::File("pbx_uac_capacity.xml"),
            local,
            remote: Some(inside),
            args,
            timeout_secs: 60,
        })
    }

    /// A plain Redis connection, for looking at the shared state.
    pub fn redis(&self) -> redis::Connection {
        redis::Client::open(REDIS)
            .and_then(|c| c.get_connection_with_timeout(Duration::from_secs(3)))
            .expect("connect to Redis")
    }
}

impl Drop for ClusterScene {
    fn drop(&mut self) {
        self.sipps.clear();
        self.nodes.clear();
        if let Ok(mut conn) = redis::Client::open(REDIS)
            .and_then(|c| c.get_connection_with_timeout(Duration::from_secs(2)))
        {
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg(format!("{{{}}}*", self.prefix))
                .query(&mut conn)
                .unwrap_or_default();
            if !keys.is_empty() {
                let _: redis::RedisResult<i64> = redis::cmd("DEL").arg(&keys).query(&mut conn);
            }
        }
        if std::thread::panicking() {
            if let Some(dir) = self.dir.take() {
                let kept = dir.keep();
                eprintln!("kept the test directory for inspection: {}", kept.display());
            }
        }
    }
}

/// A fresh PostgreSQL database for the scene. Without a server the nodes keep a SQLite file
/// each (printed); under CI=true a missing server fails the test (`PgTestDb::create`).
fn postgres_here() -> Option<trunkguard::store::testing::PgTestDb> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime to create the test database");
    let db = rt.block_on(trunkguard::store::testing::PgTestDb::create());
    if db.is_none() {
        eprintln!("cluster scene: no PostgreSQL, each node keeps its own SQLite file");
    }
    db
}

/// The config with its `[database] url` pointing at `url`.
fn on_database(config: &str, url: &str) -> String {
    let mut out = String::with_capacity(config.len());
    let mut replaced = false;
    for line in config.lines() {
        if !replaced && line.starts_with("url = \"sqlite://") {
            out.push_str(&format!("url = \"{url}\""));
            replaced = true;
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    assert!(replaced, "the harness's [database] url line changed");
    out
}

/// One node's config: the single-node test config with the node's own media ports and its
/// `[cluster]` table.
fn node_config(
    dir: &Path,
    addrs: &Addrs,
    limits: TrunkLimits,
    name: &str,
    index: usize,
    prefix: &str,
    c: ClusterSettings,
) -> String {
    let base = config_toml(addrs, &dir.join("cdrs.db"), limits);
    let low = 25_000 + 1_000 * index;
    let ports = format!("port_range = [{low}, {}]", low + 999);
    let config = base.replacen("port_range = [25000, 28999]", &ports, 1);
    assert!(
        config.contains(&ports),
        "the harness's media section changed"
    );
    let redis_url = c.redis_url.as_deref().unwrap_or(REDIS);
    format!(
        "{config}\n[cluster]\nnode_id = \"{name}\"\nredis_url = \"{redis_url}\"\n\
         heartbeat_secs = {}\nnode_timeout_secs = {}\non_shared_state_down = \"{}\"\n\
         key_prefix = \"{prefix}\"\n",
        c.heartbeat_secs, c.node_timeout_secs, c.on_shared_state_down
    )
}

/// A TCP proxy in front of the test Redis that a test can cut: the nodes configured through
/// it see Redis stop (connections shut, new ones closed at once) and come back.
pub struct RedisProxy {
    pub url: String,
    state: std::sync::Arc<ProxyState>,
}

#[derive(Default)]
struct ProxyState {
    up: std::sync::atomic::AtomicBool,
    conns: std::sync::Mutex<Vec<std::net::TcpStream>>,
}

impl RedisProxy {
    pub fn start() -> RedisProxy {
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let url = format!("redis://{}/0", listener.local_addr().unwrap());
        let state = std::sync::Arc::new(ProxyState::default());
        state.up.store(true, Ordering::SeqCst);
        let shared = state.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if !shared.up.load(Ordering::SeqCst) {
                    let _ = client.shutdown(std::net::Shutdown::Both);
                    continue;
                }
                let Ok(server) = std::net::TcpStream::connect("127.0.0.1:6379") else {
                    continue;
                };
                for s in [&client, &server] {
                    if let Ok(c) = s.try_clone() {
                        shared.conns.lock().unwrap().push(c);
                    }
                }
                pipe(&client, &server);
                pipe(&server, &client);
            }
        });
        RedisProxy { url, state }
    }

    /// Redis "stops" for the nodes behind the proxy.
    pub fn cut(&self) {
        self.state
            .up
            .store(false, std::sync::atomic::Ordering::SeqCst);
        for c in self.state.conns.lock().unwrap().drain(..) {
            let _ = c.shutdown(std::net::Shutdown::Both);
        }
    }

    /// Redis "is back".
    pub fn restore(&self) {
        self.state
            .up
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Drop for RedisProxy {
    fn drop(&mut self) {
        self.cut();
    }
}

/// Copy `from` → `to` on a thread until either side closes.
fn pipe(from: &std::net::TcpStream, to: &std::net::TcpStream) {
    let (Ok(mut from), Ok(mut to)) = (from.try_clone(), to.try_clone()) else {
        return;
    };
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut from, &mut to);
        let _ = to.shutdown(std::net::Shutdown::Both);
    });
}

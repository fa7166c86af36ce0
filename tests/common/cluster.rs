//! Several gateway nodes of one cluster in process: one shared database (a fresh PostgreSQL
//! database when a server answers, dropped after; else one SQLite file), one Redis key prefix
//! of their own, each node with its own PBX UA, recordings, spool and HTTP API; one carrier UA
//! (the trunk, seeded by the first node into the shared database, sends every node's calls to
//! it). Redis must answer at 127.0.0.1:6379: without it a test skips with a message, under
//! CI=true it fails.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use tokio::time::Instant;
use trunkguard::api::{create_token, Role};
use trunkguard::app::Gateway;
use trunkguard::config::Config;

use super::api::Api;
use super::{section, settings, InviteSpec, Ua, CARRIER_IP, PBX_IP, TRUNK};

pub const REDIS: &str = "redis://127.0.0.1:6379/0";

/// Whether Redis answers; under CI=true a missing Redis fails the test.
pub async fn redis_here(test: &str) -> bool {
    let ping = async {
        let client = redis::Client::open(REDIS).ok()?;
        let mut conn = client.get_multiplexed_async_connection().await.ok()?;
        let pong: String = redis::cmd("PING").query_async(&mut conn).await.ok()?;
        Some(pong == "PONG")
    };
    let up = tokio::time::timeout(Duration::from_secs(3), ping).await == Ok(Some(true));
    if !up {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{test}: no Redis at 127.0.0.1:6379 under CI=true (scripts/test.sh starts one)"
        );
        eprintln!("{test}: skipped: no Redis at 127.0.0.1:6379 (scripts/test.sh starts one)");
    }
    up
}

/// A test's own key prefix; its keys are deleted when it is dropped.
pub struct Prefix(pub String);

impl Prefix {
    fn new() -> Prefix {
        Prefix(format!("tgtest-{:016x}", rand::random::<u64>()))
    }
}

impl Drop for Prefix {
    fn drop(&mut self) {
        let Ok(client) = redis::Client::open(REDIS) else {
            return;
        };
        let Ok(mut conn) = client.get_connection_with_timeout(Duration::from_secs(2)) else {
            return;
        };
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{{{}}}*", self.0))
            .query(&mut conn)
            .unwrap_or_default();
        if !keys.is_empty() {
            let _: redis::RedisResult<i64> = redis::cmd("DEL").arg(&keys).query(&mut conn);
        }
    }
}

/// One node: its gateway (None once it was dropped: a crash), its PBX, its API.
pub struct Node {
    pub id: String,
    pub gw: Option<Gateway>,
    pub pbx: Ua,
    pub api: Api,
}

impl Node {
    pub fn gw(&self) -> &Gateway {
        self.gw.as_ref().expect("the node runs")
    }

    /// Whether this node's monitor judges (it holds the lease and has taken over).
    pub fn leads(&self) -> bool {
        self.gw
            .as_ref()
            .is_some_and(|g| g.monitor().figures().leading)
    }

    /// A call the gateway refuses: returns the status and reason phrase.
    pub async fn refused_call(&mut self, from: &str, to: &str) -> (u16, String) {
        let inside = self.gw().inside_addr();
        let invite = self.pbx.invite(inside, &InviteSpec::new(from, to)).await;
        self.pbx.expect_response(100).await;
        let resp = self
            .pbx
            .recv_matching(Duration::from_secs(5), |m| {
                m.status().is_some_and(|s| s >= 200) && m.cseq().1 == "INVITE"
            })
            .await
            .expect("a final response");
        self.pbx.ack_non2xx(&invite, &resp).await;
        (resp.status().unwrap_or(0), resp.reason().to_string())
    }

    /// A call the carrier answers with `code` (a failure, 404 for an invalid number).
    pub async fn failed_call(&mut self, carrier: &mut Ua, from: &str, to: &str, code: u16) {
        let inside = self.gw().inside_addr();
        let invite = self.pbx.invite(inside, &InviteSpec::new(from, to)).await;
        self.pbx.expect_response(100).await;
        let c_invite = carrier.expect_request("INVITE").await;
        carrier.reply(&c_invite, 100, None).await;
        carrier.reply(&c_invite, code, Some("fl")).await;
        carrier.expect_request("ACK").await;
        let resp = self.pbx.expect_response_to("INVITE", code).await;
        self.pbx.ack_non2xx(&invite, &resp).await;
    }
}

pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub prefix: Prefix,
    pub carrier: Ua,
    pub nodes: Vec<Node>,
    /// An admin token (tokens live in the shared database: every node knows it).
    pub admin: String,
    /// The shared PostgreSQL database (last: dropped after the nodes); `None`: a shared SQLite
    /// file.
    pub db: Option<trunkguard::store::testing::PgTestDb>,
}

impl Cluster {
    /// `n` nodes started one after the other (the first seeds the trunk). `tweaks` as for
    /// `start_gateway` (`trunk.…`, `sip.…`, `cluster.…`) apply to every node.
    pub async fn start(n: usize, tweaks: &[&str]) -> Cluster {
        Cluster::start_each(n, tweaks, |_| Vec::new()).await
    }

    /// As `start`, with `per_node(i)`'s tweaks added for node `i`.
    pub async fn start_each(
        n: usize,
        tweaks: &[&str],
        per_node: impl Fn(usize) -> Vec<String>,
    ) -> Cluster {
        super::init_tracing();
        let dir = tempfile::tempdir().expect("tempdir");
        let prefix = Prefix::new();
        let carrier = Ua::bind("carrier", CARRIER_IP).await;
        let db = trunkguard::store::testing::PgTestDb::create().await;
        let url = match &db {
            Some(db) => db.url(),
            None => format!("sqlite://{}/tg.db", dir.path().display()),
        };
        let shared_db = format!("database.url = \"{url}\"");
        let mut nodes = Vec::new();
        for i in 0..n {
            let own = per_node(i);
            // The shared database first: a test's own `database.url` overrides it.
            let all: Vec<&str> = std::iter::once(shared_db.as_str())
                .chain(tweaks.iter().copied())
                .chain(own.iter().map(String::as_str))
                .collect();
            nodes.push(start_node(&dir, &prefix, &carrier, i, &all).await);
        }
        let admin = {
            let store = nodes[0].gw().store();
            let known = vec![TRUNK.to_string()];
            let (token, _) = create_token(store, "admin", Role::Admin, &[], &known, now())
                .await
                .expect("token");
            token
        };
        Cluster {
            dir,
            prefix,
            carrier,
            nodes,
            admin,
            db,
        }
    }

    /// The node id holding the monitor lease in Redis.
    pub async fn lease_holder(&self) -> Option<String> {
        let client = redis::Client::open(REDIS).expect("url");
        let mut conn = client
            .get_multiplexed_async_connection()
            .await
            .expect("redis");
        let v: Option<String> = redis::cmd("GET")
            .arg(format!("{{{}}}:monitor:leader", self.prefix.0))
            .query_async(&mut conn)
            .await
            .expect("GET");
        v.map(|v| v.split(' ').next().unwrap_or("").to_string())
    }

    /// Waits (bounded) until exactly one running node judges and holds the lease; its index.
    pub async fn leader(&self, within: Duration) -> usize {
        let deadline = Instant::now() + within;
        loop {
            let leading: Vec<usize> = (0..self.nodes.len())
                .filter(|i| self.nodes[*i].leads())
                .collect();
            assert!(leading.len() <= 1, "two nodes judge at once: {leading:?}");
            if let [i] = leading[..] {
                if self.lease_holder().await.as_deref() == Some(self.nodes[i].id.as_str()) {
                    return i;
                }
            }
            assert!(
                Instant::now() < deadline,
                "no leader within {within:?} (lease: {:?})",
                self.lease_holder().await
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// POST an order to node `i`'s API as admin.
    pub async fn order(&self, i: usize, path: &str, body: serde_json::Value) -> super::api::Reply {
        self.nodes[i].api.post(path, &self.admin, body).await
    }

    /// Suspends `number` through node `i`'s API; returns the step's id.
    pub async fn suspend(&self, i: usize, number: &str) -> String {
        let reply = self
            .order(
                i,
                "/api/v1/enforcement",
                json!({ "trunk": TRUNK, "number": number, "step": "suspend_number",
                        "reason": "cluster test" }),
            )
            .await
            .ok(StatusCode::CREATED);
        let actions = reply.json()["actions"].clone();
        assert_eq!(actions.as_array().map(Vec::len), Some(1), "{}", reply.text);
        assert_eq!(actions[0]["action"], "impose", "{}", reply.text);
        actions[0]["id"].to_string()
    }

    /// Stops every node still running.
    pub async fn shutdown(mut self) {
        for node in &mut self.nodes {
            if let Some(gw) = node.gw.take() {
                gw.shutdown().await;
            }
        }
    }
}

pub fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}

async fn start_node(
    dir: &tempfile::TempDir,
    prefix: &Prefix,
    carrier: &Ua,
    i: usize,
    tweaks: &[&str],
) -> Node {
    let pbx = Ua::bind("pbx", PBX_IP).await;
    let id = format!("gw-{}", (b'a' + i as u8) as char);
    let root = dir.path();
    let defaults = [
        ("sip.inside", "\"127.0.0.1:0\"".to_string()),
        ("sip.outside", "\"127.0.0.2:0\"".to_string()),
        ("sip.t1_ms", "500".to_string()),
        ("sip.drain_timeout_secs", "2".to_string()),
        (
            "database.url",
            format!("\"sqlite://{}/tg.db\"", root.display()),
        ),
        (
            "database.spool_dir",
            format!("\"{}/spool-{id}\"", root.display()),
        ),
        ("media.port_range", "[21000, 24999]".to_string()),
        (
            "recording.dir",
            format!("\"{}/recordings-{id}\"", root.display()),
        ),
        ("recording.min_free_mb", "0".to_string()),
        ("http.listen", "\"127.0.0.1:0\"".to_string()),
        ("cluster.node_id", format!("\"{id}\"")),
        ("cluster.redis_url", format!("\"{REDIS}\"")),
        ("cluster.key_prefix", format!("\"{}\"", prefix.0)),
        ("cluster.heartbeat_secs", "1".to_string()),
        ("cluster.node_timeout_secs", "3".to_string()),
        ("trunk.name", format!("\"{TRUNK}\"")),
        ("trunk.pbx", format!("[\"{PBX_IP}/32\"]")),
        ("trunk.carrier", format!("\"{}\"", carrier.addr())),
        ("trunk.inbound_to", format!("\"{}\"", pbx.addr())),
        (
            "trunk.numbers",
            format!("[\"{}\", \"{}\"]", super::CALLER, super::CALLER2),
        ),
        ("trunk.max_concurrent", "30".to_string()),
        ("trunk.max_concurrent_per_caller_id", "10".to_string()),
        ("trunk.max_cps", "100.0".to_string()),
        ("trunk.timezone", "\"UTC\"".to_string()),
        (
            "trunk.rules",
            "{ over_frequent_callee = { enabled = false } }".to_string(),
        ),
    ];
    let all = settings(&defaults, tweaks);
    let toml = format!(
        "[sip]\n{}\n[database]\n{}\n[media]\n{}\n[recording]\n{}\n[http]\n{}\n[cluster]\n{}\n\
         [[trunks]]\n{}",
        section(&all, "sip"),
        section(&all, "database"),
        section(&all, "media"),
        section(&all, "recording"),
        section(&all, "http"),
        section(&all, "cluster"),
        section(&all, "trunk")
    );
    let config = Config::from_toml(&toml).unwrap_or_else(|e| panic!("config: {e}\n{toml}"));
    let gw = Gateway::start(config).await.expect("gateway starts");
    let api = Api {
        base: format!("http://{}", gw.http_addr().expect("API enabled")),
        client: reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("client"),
        audited: Default::default(),
    };
    Node {
        id,
        gw: Some(gw),
        pbx,
        api,
    }
}

//! `[cluster]`: membership of a cluster of gateway nodes sharing their admission state in Redis
//! (`crate::cluster`). Absent: a single node, admission state in memory.

use serde::Deserialize;

use super::ConfigError;

/// The longest node id: it is part of Redis keys and of every log line about the node.
const MAX_NODE_ID: usize = 64;
/// Beyond an hour a silent node's calls would hold their slots for too long to be a timeout.
const MAX_NODE_TIMEOUT_SECS: u64 = 3_600;

/// What admission does while the shared state (Redis) cannot be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnSharedStateDown {
    /// Refuse every call that needs the shared state (503): the caps are never exceeded.
    Refuse,
    /// Admit against this node's share of each cap (cap ÷ live nodes), in memory.
    Local,
}

impl OnSharedStateDown {
    pub fn as_str(self) -> &'static str {
        match self {
            OnSharedStateDown::Refuse => "refuse",
            OnSharedStateDown::Local => "local",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// Unique per node: leases are owned by it.
    pub node_id: String,
    /// `redis://host:port/db` (Redis 7 or Valkey), or `unix:///path/to/socket`.
    pub redis_url: String,
    #[serde(default = "default_heartbeat_secs")]
    pub heartbeat_secs: u64,
    /// A node silent this long is dead: its leases stop counting and survivors reclaim them.
    #[serde(default = "default_node_timeout_secs")]
    pub node_timeout_secs: u64,
    #[serde(default = "default_on_shared_state_down")]
    pub on_shared_state_down: OnSharedStateDown,
    /// Prefix of every key, so that several clusters (or tests) can share one Redis.
    #[serde(default = "default_key_prefix")]
    pub key_prefix: String,
}

impl ClusterConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        // Also a folder name (`[recording] dir/<node_id>/`): never `.` or `..`.
        let id_ok = |s: &str| {
            s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
                && !s.chars().all(|c| c == '.')
        };
        if self.node_id.is_empty() || self.node_id.len() > MAX_NODE_ID || !id_ok(&self.node_id) {
            return Err(ConfigError::invalid(
                "cluster.node_id",
                format!(
                    "must be 1..={MAX_NODE_ID} letters, digits, '-', '_' or '.' (not dots only)"
                ),
            ));
        }
        if redis::Client::open(self.redis_url.as_str()).is_err() {
            return Err(ConfigError::invalid(
                "cluster.redis_url",
                "must be a Redis URL: redis://host:port/db or unix:///path",
            ));
        }
        if self.heartbeat_secs == 0 {
            return Err(ConfigError::invalid(
                "cluster.heartbeat_secs",
                "must be > 0",
            ));
        }
        // Two beats may be lost (a busy moment) before a live node is taken for dead.
        if self.node_timeout_secs < 2 * self.heartbeat_secs + 1
            || self.node_timeout_secs > MAX_NODE_TIMEOUT_SECS
        {
            return Err(ConfigError::invalid(
                "cluster.node_timeout_secs",
                format!("must be 2 × heartbeat_secs + 1 ..= {MAX_NODE_TIMEOUT_SECS}"),
            ));
        }
        if self.key_prefix.is_empty()
            || self.key_prefix.len() > MAX_NODE_ID
            || !id_ok(&self.key_prefix)
        {
            return Err(ConfigError::invalid(
                "cluster.key_prefix",
                format!("must be 1..={MAX_NODE_ID} letters, digits, '-', '_' or '.'"),
            ));
        }
        Ok(())
    }
}

fn default_heartbeat_secs() -> u64 {
    1
}
fn default_node_timeout_secs() -> u64 {
    5
}
fn default_on_shared_state_down() -> OnSharedStateDown {
    OnSharedStateDown::Refuse
}
fn default_key_prefix() -> String {
    "trunkguard".to_string()
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    const BASE: &str = r#"
[sip]
inside = "127.0.0.1:5060"
outside = "127.0.0.1:5070"
"#;

    fn with(cluster: &str) -> Result<Config, crate::config::ConfigError> {
        Config::from_toml(&format!("{BASE}\n[cluster]\n{cluster}"))
    }

    #[test]
    fn absent_section_is_a_single_node() {
        assert!(Config::from_toml(BASE).unwrap().cluster.is_none());
    }

    #[test]
    fn defaults() {
        let c = with("node_id = \"gw-a\"\nredis_url = \"redis://127.0.0.1:6379/0\"\n").unwrap();
        let c = c.cluster.unwrap();
        assert_eq!(c.heartbeat_secs, 1);
        assert_eq!(c.node_timeout_secs, 5);
        assert_eq!(c.on_shared_state_down, super::OnSharedStateDown::Refuse);
        assert_eq!(c.key_prefix, "trunkguard");
    }

    #[test]
    fn errors_name_the_key() {
        let url = "redis_url = \"redis://127.0.0.1:6379/0\"\n";
        for (text, key) in [
            (format!("node_id = \"\"\n{url}"), "cluster.node_id"),
            (format!("node_id = \"a b\"\n{url}"), "cluster.node_id"),
            (format!("node_id = \"..\"\n{url}"), "cluster.node_id"),
            (
                "node_id = \"a\"\nredis_url = \"http://x\"\n".to_string(),
                "cluster.redis_url",
            ),
            (
                format!("node_id = \"a\"\n{url}heartbeat_secs = 0\n"),
                "cluster.heartbeat_secs",
            ),
            (
                format!("node_id = \"a\"\n{url}heartbeat_secs = 2\nnode_timeout_secs = 4\n"),
                "cluster.node_timeout_secs",
            ),
            (
                format!("node_id = \"a\"\n{url}key_prefix = \"{{x}}\"\n"),
                "cluster.key_prefix",
            ),
            (
                format!("node_id = \"a\"\n{url}on_shared_state_down = \"maybe\"\n"),
                "on_shared_state_down",
            ),
            ("node_id = \"a\"\n".to_string(), "redis_url"),
        ] {
            let e = with(&text).unwrap_err().to_string();
            assert!(e.contains(key), "{text}: {e}");
        }
        let c = with(&format!(
            "node_id = \"a\"\n{url}on_shared_state_down = \"local\"\n"
        ))
        .unwrap();
        let down = c.cluster.unwrap().on_shared_state_down;
        assert_eq!(down, super::OnSharedStateDown::Local);
        let unix = with("node_id = \"a\"\nredis_url = \"unix:///run/redis/redis.sock\"\n");
        assert!(unix.is_ok(), "{unix:?}");
    }
}

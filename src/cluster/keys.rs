//! The Redis keys of one cluster. Every key starts with `{prefix}`: the braces are a hash tag,
//! so all of a cluster's keys live in one slot and the scripts may build the keys of other
//! nodes from the base (a script touches only keys of its own cluster).

/// Key names for one cluster (`key_prefix`) and one node.
#[derive(Debug, Clone)]
pub(super) struct Keys {
    /// `{prefix}`: passed to the scripts that read other nodes' keys.
    pub base: String,
    /// ZSET node id → last beat (ms, Redis time).
    pub nodes: String,
    /// HASH lease id → `trunk\nline`, this node's leases.
    pub leases: String,
    /// HASH `trunk` → calls, `trunk\nline` → calls: this node's load, kept with its leases.
    pub load: String,
}

impl Keys {
    pub(super) fn new(prefix: &str, node: &str) -> Keys {
        let base = format!("{{{prefix}}}");
        Keys {
            nodes: format!("{base}:nodes"),
            leases: format!("{base}:node:{node}:leases"),
            load: format!("{base}:node:{node}:load"),
            base,
        }
    }

    /// HASH `tokens`, `ts` (µs, Redis time): the trunk's call-rate bucket, shared by the nodes.
    pub(super) fn rate(&self, trunk: &str) -> String {
        format!("{}:rate:{trunk}", self.base)
    }

    /// LIST of admission times (ms, newest first) of calls from a trunk to one number.
    pub(super) fn callee(&self, trunk: &str, number: &str) -> String {
        format!("{}:callee:{trunk}:{number}", self.base)
    }
}

#[cfg(test)]
mod tests {
    use super::Keys;

    #[test]
    fn every_key_carries_the_hash_tag() {
        let k = Keys::new("tg", "gw-a");
        assert_eq!(k.base, "{tg}");
        for key in [
            k.rate("t"),
            k.callee("t", "8610"),
            k.nodes,
            k.leases,
            k.load,
        ] {
            assert!(key.starts_with("{tg}:"), "{key}");
        }
    }
}

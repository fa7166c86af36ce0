//! What can go wrong talking to the shared state. None of it is a refusal: admission turns it
//! into the `on_shared_state_down` answer (`Fallback`).

use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("redis_url: {0}")]
    Url(#[source] redis::RedisError),
    #[error("Redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("connecting to Redis at {addr}: {source}")]
    Connect {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("Redis did not answer within {0:?}")]
    Timeout(Duration),
    /// The node's heartbeat lapsed: its leases stopped counting; it must rejoin before it admits.
    #[error("node {0} is not live in the cluster (heartbeat lapsed): rejoining")]
    NotLive(String),
    /// A lease id already held (never expected: ids are unique per process and incarnation).
    #[error("lease id {0} is already held")]
    LeaseIdTaken(String),
    #[error("unexpected answer from a script: {0}")]
    Answer(String),
}

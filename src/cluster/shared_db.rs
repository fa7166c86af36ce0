//! Which database a cluster's nodes share. Sharing trunks, the enforcement log and every node's
//! CDRs (the change bus, the monitor lease) only makes sense when the nodes share one database;
//! a node whose database is another one (each node on its own SQLite file) must keep its own
//! monitor, or its CDRs would never be judged. A database has an id (in itself, see
//! `Store::database_id`); the first node to start names the cluster's in `{p}:database`.

use std::time::Duration;

use super::{ClusterError, ClusterOptions};

/// The key naming the cluster's database (no expiry: delete it when the cluster moves to a new
/// database).
pub fn database_key(prefix: &str) -> String {
    format!("{{{prefix}}}:database")
}

/// Names `db_id` the cluster's database unless another is named already; returns the cluster's
/// (`db_id` when this node is the first). Bounded by `op_timeout`.
pub async fn cluster_database(opts: &ClusterOptions, db_id: i64) -> Result<i64, ClusterError> {
    let client = redis::Client::open(opts.redis_url.as_str()).map_err(ClusterError::Url)?;
    let key = database_key(&opts.key_prefix);
    let timeout = opts.op_timeout.max(Duration::from_secs(1));
    let ask = async {
        let mut conn = client.get_multiplexed_async_connection().await?;
        let _: Option<String> = redis::cmd("SET")
            .arg(&key)
            .arg(db_id)
            .arg("NX")
            .query_async(&mut conn)
            .await?;
        redis::cmd("GET")
            .arg(&key)
            .query_async::<Option<i64>>(&mut conn)
            .await
    };
    match tokio::time::timeout(timeout, ask).await {
        Ok(Ok(Some(id))) => Ok(id),
        Ok(Ok(None)) => Err(ClusterError::Answer(format!("{key} vanished"))),
        Ok(Err(e)) => Err(ClusterError::Redis(e)),
        Err(_) => Err(ClusterError::Timeout(timeout)),
    }
}

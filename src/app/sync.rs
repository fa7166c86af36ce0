//! In a cluster (`[cluster]`): the node's change bus and its candidacy for the monitor lease,
//! wired to the trunk book and the monitor (docs/architecture.md, "Cluster: one truth").
//!
//! Only for nodes that share the cluster's database (`cluster::shared_db`): a node on a database
//! of its own keeps its own monitor and trunks, as a single node.
//!
//! `ClusterSync::new` comes first (the monitor starts with its `link`), `start` once the trunk
//! book exists: the consumers subscribe to the bus before its subscriber task runs, so the first
//! `Resync` reaches them all. `join` after the stop; dropping it without `join` (a gateway
//! dropped, as by a crash) aborts the tasks and leaves the lease to expire.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use super::AppError;
use crate::cluster::bus::ChangeBus;
use crate::cluster::leader::{LeaderOptions, Leadership};
use crate::cluster::shared_db::{cluster_database, database_key};
use crate::cluster::ClusterOptions;
use crate::config::Config;
use crate::monitor::service::ClusterLink;
use crate::shutdown::Shutdown;
use crate::store::Store;
use crate::trunks::TrunkBook;

/// How long a stop waits for the lease to be handed over and the bus to close.
const JOIN_LIMIT: Duration = Duration::from_secs(5);

pub(super) struct ClusterSync {
    bus: ChangeBus,
    link: ClusterLink,
    leadership: Option<Leadership>,
    tasks: Vec<JoinHandle<()>>,
}

impl ClusterSync {
    /// `None` outside a cluster, and for a node whose database is not the cluster's (it keeps
    /// its own monitor, as a single node). Nothing runs yet.
    pub(super) async fn new(
        config: &Config,
        store: &Store,
    ) -> Result<Option<ClusterSync>, AppError> {
        let Some(cluster) = &config.cluster else {
            return Ok(None);
        };
        let opts = ClusterOptions::from_config(cluster);
        if !shares_the_database(&opts, store).await {
            return Ok(None);
        }
        let bus = ChangeBus::new(&opts)?;
        let leadership = Leadership::new(&opts, LeaderOptions::from_cluster(&opts))?;
        let link = ClusterLink {
            bus: bus.clone(),
            role: leadership.watch(),
        };
        Ok(Some(ClusterSync {
            bus,
            link,
            leadership: Some(leadership),
            tasks: Vec::new(),
        }))
    }

    /// What the monitor follows.
    pub(super) fn link(&self) -> ClusterLink {
        self.link.clone()
    }

    /// Trunk changes announced and applied across the nodes, the bus subscribed, the lease
    /// contended for.
    pub(super) fn start(&mut self, trunks: &Arc<TrunkBook>, shutdown: &Shutdown) {
        trunks.attach_bus(self.bus.clone());
        self.tasks.push(crate::trunks::sync::spawn(
            &self.bus,
            trunks.clone(),
            shutdown.clone(),
        ));
        self.tasks.push(self.bus.spawn(shutdown.clone()));
        if let Some(l) = self.leadership.take() {
            self.tasks.push(l.spawn(shutdown.clone()));
        }
    }

    /// After shutdown: the lease handed over, the tasks ended (bounded).
    pub(super) async fn join(mut self) {
        for task in std::mem::take(&mut self.tasks) {
            if tokio::time::timeout(JOIN_LIMIT, task).await.is_err() {
                tracing::error!("a cluster task did not stop in time");
            }
        }
    }
}

/// Whether this node's database is the one the cluster's nodes share (`cluster::shared_db`).
/// When it cannot be told now (Redis or the database not answering) it is assumed: a cluster is
/// meant to share one database.
async fn shares_the_database(opts: &ClusterOptions, store: &Store) -> bool {
    let node = &opts.node_id;
    let id = match store.database_id().await {
        Ok(id) => id,
        Err(e) => {
            tracing::warn!(node = %node, error = %e, "cannot read the database's id; assuming it is the cluster's");
            return true;
        }
    };
    match cluster_database(opts, id).await {
        Ok(shared) if shared == id => true,
        Ok(shared) => {
            tracing::error!(
                node = %node,
                database_id = id,
                cluster_database_id = shared,
                key = %database_key(&opts.key_prefix),
                "this node's database is not the one the cluster's nodes share: it runs its own \
                 monitor, and its trunk and enforcement changes are not applied on the other nodes \
                 (delete the key if the whole cluster moved to this database)"
            );
            false
        }
        Err(e) => {
            tracing::warn!(node = %node, error = %e, "cannot tell whether this node's database is the cluster's; assuming it is");
            true
        }
    }
}

impl Drop for ClusterSync {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

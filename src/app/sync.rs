//! In a cluster (`[cluster]`): the node's change bus and its candidacy for the monitor lease,
//! wired to the trunk book and the monitor (docs/architecture.md, "Cluster: one truth").
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
use crate::cluster::ClusterOptions;
use crate::config::Config;
use crate::monitor::service::ClusterLink;
use crate::shutdown::Shutdown;
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
    /// `None` outside a cluster. No I/O yet.
    pub(super) fn new(config: &Config) -> Result<Option<ClusterSync>, AppError> {
        let Some(cluster) = &config.cluster else {
            return Ok(None);
        };
        let opts = ClusterOptions::from_config(cluster);
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

impl Drop for ClusterSync {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

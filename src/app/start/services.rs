//! The steps that need the gateway itself, once its parts exist: the HTTP API served, the
//! retention purge and the daily seal started, the SIP interfaces read, the dialogs a crash cut
//! ended, the calls of lost cluster nodes closed.

use std::sync::Arc;

use tokio::net::TcpListener;

use crate::api::{ApiCounters, ApiDeps, ApiState, HttpListener, HttpServer};
use crate::app::Gateway;
use crate::config::Config;
use crate::monitor::recovery::Interrupted;
use crate::shutdown::Shutdown;
use crate::sip::transport::Handler;

impl Gateway {
    /// Serves the HTTP API on the listener bound earlier, once every part it reads exists and
    /// before the SIP interfaces are read (health and metrics answer from the first call on).
    pub(super) fn serve_api(
        &self,
        listener: HttpListener,
        config: &Config,
        shutdown: &Shutdown,
    ) -> HttpServer {
        let deps = ApiDeps {
            store: self.store.clone(),
            registry: self.b2bua.registry().clone(),
            monitor: self.monitor.clone(),
            cdrs: self.cdrs.clone(),
            recordings: self.recordings.clone(),
            policy: self.policy.clone(),
            counters: ApiCounters {
                attempts: self.b2bua.attempts().clone(),
                sip: self.sip_stats.clone(),
                media: self.media_counters.clone(),
                flood: self.flood.clone(),
                capacity: Some(self.b2bua.capacity()),
                admission_times: self.b2bua.admission_times().clone(),
                overload: self.b2bua.overload().clone(),
            },
            trunks: self.trunks.clone(),
            cluster: self.cluster.as_ref().map(|c| c.shared.clone()),
            evidence: config.evidence.clone(),
        };
        HttpServer::start(listener, ApiState::new(deps), shutdown.clone())
    }

    /// The daily retention purge (its first run a minute after the start). It asks the registry
    /// which calls are live, so it starts once the B2BUA exists; it never races the recovery,
    /// which is over by now.
    pub(super) fn start_retention(
        &self,
        config: &Config,
        shutdown: &Shutdown,
    ) -> tokio::task::JoinHandle<()> {
        crate::retention::task::spawn(
            self.store.clone(),
            config.recording.dir.clone(),
            config.cluster.as_ref().map(|c| c.node_id.clone()),
            config.retention.clone(),
            self.b2bua.registry().clone(),
            shutdown.clone(),
        )
    }

    /// The daily seal of signed manifests (`evidence::seal_task`), when a signing key is
    /// configured and readable (else it says why and the gateway runs without). In a cluster
    /// sharing one database only the monitor's leader seals.
    pub(super) fn start_manifests(
        &self,
        config: &Config,
        shutdown: &Shutdown,
    ) -> Option<tokio::task::JoinHandle<()>> {
        let path = config.evidence.signing_key.as_ref()?;
        // Read once at the start: a small file.
        let key = match crate::evidence::keys::load(path) {
            Ok(key) => key,
            Err(e) => {
                tracing::error!(error = %e, "evidence: the signing key cannot be read; no day will be sealed");
                return None;
            }
        };
        let ctx = crate::evidence::seal::SealContext {
            key,
            evidence_dir: config.evidence.dir.clone(),
            recordings_dir: config.recording.dir.clone(),
        };
        let leading = self
            .cluster_sync
            .as_ref()
            .map(|c| c.link().role.role.clone());
        Some(crate::evidence::seal_task::spawn(
            self.store.clone(),
            ctx,
            leading,
            shutdown.clone(),
        ))
    }

    /// Reads the SIP interfaces: from here on calls are admitted. Last but one, so that no call
    /// meets a half-recovered gateway (steps in force restored, interrupted calls closed).
    pub(super) fn listen(
        &self,
        (inside, outside): (TcpListener, TcpListener),
        shutdown: &Shutdown,
    ) {
        let handler: Arc<dyn Handler> = Arc::new(self.b2bua.clone());
        self.ifaces
            .inside
            .start(inside, handler.clone(), shutdown.clone());
        self.ifaces
            .outside
            .start(outside, handler, shutdown.clone());
    }

    /// The peers may still hold dialogs of calls the crash cut: BYE, CANCEL or 500 each of
    /// them. After `listen`, because their answers come back on the interfaces.
    pub(super) fn end_interrupted_dialogs(
        &self,
        interrupted: Vec<Interrupted>,
        shutdown: Shutdown,
    ) {
        if !interrupted.is_empty() {
            self.b2bua.end_interrupted_dialogs(interrupted, shutdown);
        }
    }

    /// In a cluster: the calls of nodes lost from now on (and the sweep for any left behind)
    /// are closed here and their peers told (`node_loss.rs`). After `listen`, like the
    /// restart's own: the peers' answers come back on the interfaces.
    pub(super) fn close_lost_nodes_calls(&self, config: &Config, shutdown: Shutdown) {
        let Some(cluster) = &self.cluster else {
            return;
        };
        let task = crate::app::node_loss::NodeLoss {
            shared: cluster.shared.clone(),
            store: self.store.clone(),
            cdrs: self.cdrs.clone(),
            b2bua: self.b2bua.clone(),
            recordings: config.recording.dir.clone(),
        };
        // Runs until the shutdown; nothing to wait for at the stop.
        let _ = task.spawn(shutdown);
    }
}

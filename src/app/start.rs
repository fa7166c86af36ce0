//! `Gateway::start`: the start-up steps, in the order they run.
//!
//! The order is the crash recovery (docs/architecture.md, "After a crash" and "Start-up"):
//! everything a previous run left behind — CDRs in the spool, recordings left open, calls
//! still journaled — is settled, and the monitor has restored the steps in force, before the
//! SIP interfaces are read and the first new call can be admitted. Each step says why it
//! stands where it does; a step takes what it needs by reference and clones only what it
//! hands on to a task or a part that keeps it.
//!
//! The steps themselves stand in `start/`, by what they do: `config.rs` (what is read before
//! anything opens), `cdr_feed.rs` (the CDR writer and its feed to the monitor), `recovery.rs`
//! (what a previous run left behind), `sockets.rs` (the API's and the SIP interfaces' sockets,
//! bound but not yet read), `parts.rs` (media, cluster, SIP trace, monitor, the B2BUA's
//! settings), `services.rs` (the steps that need the gateway itself: the API served, the purge,
//! the seal, the interfaces read, the crash's dialogs ended).

use std::sync::Arc;
use std::time::Duration;

use crate::app::{AppError, Gateway};
use crate::b2bua::{B2bua, Registry};
use crate::config::Config;
use crate::policy::Policy;
use crate::shutdown;
use crate::sip::flood::FloodGuard;
use crate::store::Store;
use crate::trunks::TrunkBook;

mod cdr_feed;
mod config;
mod parts;
mod recovery;
mod services;
mod sockets;

use cdr_feed::start_cdr_writer;
use config::{descriptor_budget, trunks_from_store, with_absolute_recording_dir};
use parts::{
    b2bua_settings, join_cluster, open_media, start_cluster_sync, start_monitor, start_sip_traces,
};
use recovery::{claim_own_calls, close_interrupted_calls, repair_recordings, replay_spool};
use sockets::{bind_http, bind_sip};

impl Gateway {
    /// Starts the gateway: recovers what a previous run left, then listens. Returns once the
    /// interfaces are read (the log says `trunkguard listening`).
    pub async fn start(config: Config) -> Result<Gateway, AppError> {
        let config = with_absolute_recording_dir(config);
        let capacity = descriptor_budget();
        let store = Store::connect(&config.database.url).await?;
        let config = trunks_from_store(&store, config).await?;
        let feed = start_cdr_writer(&store, &config).await?;
        replay_spool(&feed.cdrs).await;
        let node = config.cluster.as_ref().map(|c| c.node_id.as_str());
        let own = claim_own_calls(&store, node).await;
        let repaired = repair_recordings(&config.recording.dir, node, &own).await;
        let media = open_media(&config)?;
        let policy = Arc::new(Policy::new(&config.trunks));
        policy.set_retry_after_secs(config.sip.retry_after_secs);
        let http_listener = bind_http(&config.http).await?;
        let (trigger, shutdown) = shutdown::channel();
        let cluster = join_cluster(&config, &shutdown).await?;
        let sip = bind_sip(&config, &shutdown).await?;
        let sip_traces = start_sip_traces(&config, &store, &sip.ifaces, &shutdown);
        let registry = Arc::new(Registry::default());
        let mut cluster_sync = crate::app::sync::ClusterSync::new(&config, &store).await?;
        let (monitor, monitor_task) = start_monitor(
            &store,
            &policy,
            &registry,
            &config.trunks,
            feed.stored,
            cluster_sync.as_ref().map(|c| c.link()),
            &shutdown,
        )
        .await?;
        let interrupted = close_interrupted_calls(&feed.cdrs, own, &repaired, &config);
        let trunks = Arc::new(TrunkBook::new(
            config.clone(),
            store.clone(),
            policy.clone(),
            monitor.clone(),
            feed.over_long,
        ));
        start_cluster_sync(cluster_sync.as_mut(), &trunks, &shutdown);
        let flood = Arc::new(FloodGuard::new(config.sip.flood.clone()));
        let b2bua = B2bua::new(
            b2bua_settings(
                &config,
                &sip.ifaces,
                &media,
                &flood,
                capacity,
                &cluster,
                sip_traces.as_ref().map(|t| t.traces.clone()),
            ),
            sip.layer.clone(),
            policy.clone(),
            registry,
            feed.cdrs.clone(),
        );
        let mut gateway = Gateway {
            b2bua,
            ports: media.ports,
            recordings: media.recordings,
            policy,
            store,
            cdrs: feed.cdrs,
            writer: feed.writer,
            layer: sip.layer,
            ifaces: sip.ifaces,
            trigger,
            drain_timeout: Duration::from_secs(config.sip.drain_timeout_secs),
            monitor,
            monitor_task,
            trunks,
            http: None,
            retention: None,
            manifests: None,
            media_counters: media.counters,
            sip_stats: sip.stats,
            sip_traces,
            flood,
            cluster,
            cluster_sync,
            registrations: None,
        };
        gateway.http =
            http_listener.map(|listener| gateway.serve_api(listener, &config, &shutdown));
        gateway.retention = Some(gateway.start_retention(&config, &shutdown));
        gateway.manifests = gateway.start_manifests(&config, &shutdown);
        gateway.listen(sip.listeners, &shutdown);
        // After `listen`: the registrars' answers come back on the outside interface.
        gateway.registrations = Some(crate::trunks::registration::RegistrationClient::spawn(
            gateway.layer.clone(),
            gateway.outside_addr(),
            gateway.policy.clone(),
            shutdown.clone(),
        ));
        gateway.end_interrupted_dialogs(interrupted, shutdown.clone());
        gateway.close_lost_nodes_calls(&config, shutdown);
        tracing::info!(inside = %gateway.inside_addr(), outside = %gateway.outside_addr(), trunks = config.trunks.len(), "trunkguard listening");
        Ok(gateway)
    }
}

//! The parts the B2BUA stands on, each started at its step: the media (ports, relay,
//! recorders), the cluster, the SIP trace, the monitor, the cluster's sync; and the B2BUA's
//! settings from them.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::app::AppError;
use crate::b2bua::capacity::CallCapacity;
use crate::b2bua::{MediaSettings, RecordingSettings, Registry, Settings};
use crate::cluster::{ClusterOptions, SharedAdmission};
use crate::config::{Config, TrunkConfig};
use crate::media::{MediaCounters, PortAllocator};
use crate::model::Cdr;
use crate::monitor::service::{
    ClusterLink, MonitorHandle, MonitorService, MonitorSettings, MonitorTask,
};
use crate::policy::Policy;
use crate::recording::RecordingPool;
use crate::shutdown::Shutdown;
use crate::sip::flood::FloodGuard;
use crate::sip::trace::{SipTraces, TraceLimits};
use crate::sip::transport::Interfaces;
use crate::store::Store;
use crate::trunks::TrunkBook;

/// The media parts of the calls.
pub(super) struct Media {
    pub(super) ports: Arc<PortAllocator>,
    pub(super) recordings: RecordingPool,
    pub(super) counters: Arc<MediaCounters>,
}

/// RTP ports, the relay and the recorders: after the repair (the recorders write in the folder
/// it has just settled). A port range or recordings folder that cannot be used fails the start
/// before any socket is bound.
pub(super) fn open_media(config: &Config) -> Result<Media, AppError> {
    let ports = Arc::new(PortAllocator::from_config(&config.media)?);
    let engine = crate::media::start_relay(config.media.engine)?;
    tracing::info!(
        configured = config.media.engine.as_str(),
        running = engine.as_str(),
        "media engine"
    );
    let node = config.cluster.as_ref().map(|c| c.node_id.as_str());
    let recordings = RecordingPool::from_config_on(&config.recording, node).map_err(|source| {
        AppError::Recording {
            dir: config.recording.dir.display().to_string(),
            source,
        }
    })?;
    Ok(Media {
        ports,
        recordings,
        counters: Arc::new(MediaCounters::default()),
    })
}

/// `[cluster]`: this node joins the cluster's shared admission state before the first call
/// (its first heartbeat, bounded by the cluster's op timeout) and starts its worker (beats,
/// releases, reclaim of dead nodes, reconciliation). Redis unreachable does not stop the start:
/// admissions follow `on_shared_state_down` until a beat gets through.
pub(super) async fn join_cluster(
    config: &Config,
    shutdown: &Shutdown,
) -> Result<Option<crate::app::ClusterNode>, AppError> {
    let Some(cluster) = &config.cluster else {
        return Ok(None);
    };
    let opts = ClusterOptions::from_config(cluster);
    let shared = SharedAdmission::new(opts)?;
    match shared.join().await {
        Ok(beat) => {
            tracing::info!(node = %shared.node_id(), live_nodes = beat.live_nodes, "joined the cluster")
        }
        Err(e) => tracing::error!(
            node = %shared.node_id(),
            error = %e,
            on_shared_state_down = cluster.on_shared_state_down.as_str(),
            "cannot reach the cluster's shared state: admissions follow on_shared_state_down until it answers"
        ),
    }
    let worker = shared.spawn(shutdown.clone());
    Ok(Some(crate::app::ClusterNode { shared, worker }))
}

/// `[recording] sip_trace`: the captures, offered every message the interfaces send (the
/// B2BUA offers what they receive), their sweeper and their writer. Before the interfaces are
/// read.
pub(super) fn start_sip_traces(
    config: &Config,
    store: &Store,
    ifaces: &Interfaces,
    shutdown: &Shutdown,
) -> Option<crate::app::SipTracing> {
    if !config.recording.sip_trace {
        return None;
    }
    let (sink, _stats, writer) = crate::monitor::sip_trace_writer::start(store.clone());
    let traces = Arc::new(SipTraces::new(TraceLimits::default(), sink));
    ifaces.inside.trace_with(traces.clone());
    ifaces.outside.trace_with(traces.clone());
    let sweeper = traces.spawn_sweeper(shutdown.clone());
    Some(crate::app::SipTracing {
        traces,
        sweeper,
        writer,
    })
}

/// The monitor refills its windows from the database and restores the steps in force before
/// the first call is admitted (and before interrupted calls are closed: see
/// `close_interrupted_calls`). It reads stored CDRs from the writer's feed from then on.
pub(super) async fn start_monitor(
    store: &Store,
    policy: &Arc<Policy>,
    registry: &Arc<Registry>,
    trunks: &[TrunkConfig],
    stored: mpsc::Receiver<Cdr>,
    cluster: Option<ClusterLink>,
    shutdown: &Shutdown,
) -> Result<(MonitorHandle, MonitorTask), AppError> {
    Ok(MonitorService::start(
        store.clone(),
        policy.clone(),
        registry.clone(),
        trunks,
        MonitorSettings {
            cluster,
            ..MonitorSettings::default()
        },
        stored,
        shutdown.clone(),
    )
    .await?)
}

/// In a cluster: trunk changes announced and applied across the nodes, the change bus
/// subscribed and the monitor lease contended for. Once the monitor and the trunk book exist
/// (both follow the bus) and before the interfaces are read.
pub(super) fn start_cluster_sync(
    sync: Option<&mut crate::app::sync::ClusterSync>,
    trunks: &Arc<TrunkBook>,
    shutdown: &Shutdown,
) {
    if let Some(sync) = sync {
        sync.start(trunks, shutdown);
    }
}

/// The B2BUA's settings: the bound addresses, the media and recording parts, the flood guard,
/// the descriptor budget.
pub(super) fn b2bua_settings(
    config: &Config,
    ifaces: &Interfaces,
    media: &Media,
    flood: &Arc<FloodGuard>,
    capacity: CallCapacity,
    cluster: &Option<crate::app::ClusterNode>,
    traces: Option<Arc<SipTraces>>,
) -> Settings {
    Settings {
        traces,
        inside_addr: ifaces.inside.local_addr(),
        outside_addr: ifaces.outside.local_addr(),
        unknown_sources: config.sip.unknown_sources,
        retry_after_secs: config.sip.retry_after_secs,
        max_queue_delay: Some(Duration::from_millis(config.sip.max_queue_delay_ms)),
        target_queue_delay: Some(Duration::from_millis(config.sip.target_queue_delay_ms)),
        ring_timeout: Duration::from_secs(config.sip.ring_timeout_secs),
        flood: flood.clone(),
        capacity,
        cluster: cluster.as_ref().map(|c| c.shared.clone()),
        node: config.cluster.as_ref().map(|c| c.node_id.clone()),
        recording: Some(RecordingSettings {
            pool: media.recordings.clone(),
            required: config.recording.required,
            early_media: config.recording.record_early_media,
            on_failure: config.recording.on_failure,
            max_pause: Duration::from_secs(config.recording.max_pause_secs),
        }),
        media: MediaSettings {
            ports: media.ports.clone(),
            inside_ip: config.media.inside_address,
            outside_ip: config.media.outside_address,
            timeout: Duration::from_secs(config.media.timeout_secs),
            counters: media.counters.clone(),
        },
    }
}

//! `Gateway::start`: the start-up steps, in the order they run.
//!
//! The order is the crash recovery (docs/architecture.md, "After a crash" and "Start-up"):
//! everything a previous run left behind — CDRs in the spool, recordings left open, calls
//! still journaled — is settled, and the monitor has restored the steps in force, before the
//! SIP interfaces are read and the first new call can be admitted. Each step says why it
//! stands where it does; a step takes what it needs by reference and clones only what it
//! hands on to a task or a part that keeps it.

use std::path::Path;
use std::sync::Arc;

use parking_lot::RwLock;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::mpsc;

use super::{AppError, Gateway};
use crate::api::{ApiCounters, ApiDeps, ApiState, HttpListener, HttpServer};
use crate::b2bua::capacity::CallCapacity;
use crate::b2bua::{B2bua, MediaSettings, RecordingSettings, Registry, Settings};
use crate::cluster::{ClusterOptions, SharedAdmission};
use crate::config::{Config, HttpConfig, TrunkConfig};
use crate::media::{MediaCounters, PortAllocator};
use crate::model::Cdr;
use crate::monitor::cdr_writer::{CdrSink, CdrWriter, CdrWriterHandle, KpiRollup, WriterHooks};
use crate::monitor::persist;
use crate::monitor::recovery::{Interrupted, OwnCalls};
use crate::monitor::service::{
    ClusterLink, MonitorHandle, MonitorService, MonitorSettings, MonitorTask,
};
use crate::policy::Policy;
use crate::recording::repair::{repair_all_except, RepairReport};
use crate::recording::RecordingPool;
use crate::shutdown::{self, Shutdown};
use crate::sip::flood::FloodGuard;
use crate::sip::frontend::Limits;
use crate::sip::stats::SipStats;
use crate::sip::trace::{SipTraces, TraceLimits};
use crate::sip::transaction::{Timers, TransactionLayer};
use crate::sip::transport::{Handler, Interface, Interfaces, Side};
use crate::store::Store;
use crate::trunks::{over_long_secs, OverLongMap, TrunkBook};

/// How long a start waits for a previous run's CDR spool to reach the database before it closes
/// interrupted calls anyway (a database still refusing writes must not keep the gateway down).
const SPOOL_REPLAY_WAIT: Duration = Duration::from_secs(30);
/// Stored CDRs waiting for the monitor (a full queue holds the CDR writer back, not calls).
const STORED_CDR_QUEUE: usize = 4096;
/// The over-long threshold for a CDR of no configured trunk (the rule's default, 60 min).
const DEFAULT_OVER_LONG_SECS: u64 = 3600;

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
        let mut cluster_sync = super::sync::ClusterSync::new(&config, &store).await?;
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

    /// Serves the HTTP API on the listener bound earlier, once every part it reads exists and
    /// before the SIP interfaces are read (health and metrics answer from the first call on).
    fn serve_api(
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
    fn start_retention(&self, config: &Config, shutdown: &Shutdown) -> tokio::task::JoinHandle<()> {
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
    fn start_manifests(
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
    fn listen(&self, (inside, outside): (TcpListener, TcpListener), shutdown: &Shutdown) {
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
    fn end_interrupted_dialogs(&self, interrupted: Vec<Interrupted>, shutdown: Shutdown) {
        if !interrupted.is_empty() {
            self.b2bua.end_interrupted_dialogs(interrupted, shutdown);
        }
    }

    /// In a cluster: the calls of nodes lost from now on (and the sweep for any left behind)
    /// are closed here and their peers told (`node_loss.rs`). After `listen`, like the
    /// restart's own: the peers' answers come back on the interfaces.
    fn close_lost_nodes_calls(&self, config: &Config, shutdown: Shutdown) {
        let Some(cluster) = &self.cluster else {
            return;
        };
        let task = super::node_loss::NodeLoss {
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

/// First of all, so that the recorders, the repair, the API and the purge agree on the
/// recordings folder whatever the working directory; the paths stored (repairs, journal, CDRs)
/// are relative to it (`recording::paths`), so that any node of a cluster finds a file
/// wherever it mounts a shared folder.
fn with_absolute_recording_dir(mut config: Config) -> Config {
    if let Ok(abs) = std::path::absolute(&config.recording.dir) {
        config.recording.dir = abs;
    }
    config
}

/// Before any descriptor is opened: the soft `RLIMIT_NOFILE` raised to the hard limit, and the
/// calls it allows computed and logged (`app::descriptors`).
fn descriptor_budget() -> CallCapacity {
    super::descriptors::budget()
}

/// The trunks in force: the config file's seed an empty database (the first start); after that
/// the database's are the truth (admins change them at run time) and the file's are ignored.
/// Right after the database opens: admission, the monitor and the KPI rollup all start from
/// the trunks in force.
async fn trunks_from_store(store: &Store, config: Config) -> Result<Config, AppError> {
    let seeds: Vec<(String, String)> = config
        .trunks
        .iter()
        .map(|t| t.name.clone())
        .zip(config.trunk_sources.iter().cloned())
        .collect();
    if store
        .seed_trunks(&seeds, "config file", chrono::Utc::now())
        .await?
    {
        tracing::info!(trunks = seeds.len(), "trunks seeded from the config file");
        return Ok(config);
    }
    let stored: Vec<String> = store
        .trunk_definitions()
        .await?
        .into_iter()
        .map(|d| d.definition)
        .collect();
    // Off the runtime: a trunk's `auth_password_file` is read from disk.
    let next = {
        let config = config.clone();
        tokio::task::spawn_blocking(move || config.with_trunk_sources(&stored))
            .await
            .map_err(|e| AppError::Blocking(e.to_string()))??
    };
    let file: Vec<&str> = config.trunks.iter().map(|t| t.name.as_str()).collect();
    let db: Vec<&str> = next.trunks.iter().map(|t| t.name.as_str()).collect();
    if config.trunk_sources != next.trunk_sources {
        tracing::warn!(?file, ?db, "the database's trunks are in force; the config file's [[trunks]] only seed an empty database");
    }
    Ok(next)
}

/// The CDR writer and what comes out of it.
struct CdrFeed {
    cdrs: CdrSink,
    writer: CdrWriterHandle,
    /// Stored CDRs, for the monitor (queued until it starts).
    stored: mpsc::Receiver<Cdr>,
    /// The over-long thresholds of the KPI rollup, by trunk (changed by the `TrunkBook`).
    over_long: OverLongMap,
}

/// The CDR writer (with its spool, when the database has one) starts before any recovery: the
/// spool replay and the closing of interrupted calls both write through it. What it stores
/// goes on to the monitor, and the KPI buckets are updated in the same transaction.
async fn start_cdr_writer(store: &Store, config: &Config) -> Result<CdrFeed, AppError> {
    let spool_dir = config
        .database
        .spool_dir
        .clone()
        .or_else(|| crate::monitor::cdr_spool::default_dir(&config.database.url));
    let spool = match spool_dir {
        Some(dir) => Some(
            crate::monitor::cdr_writer::open_spool(dir, config.database.spool_max_bytes).await?,
        ),
        None => None,
    };
    let (stored_tx, stored) = mpsc::channel(STORED_CDR_QUEUE);
    let over_long: OverLongMap = Arc::new(RwLock::new(over_long_secs(&config.trunks)));
    let (cdrs, writer) = CdrWriter::spawn_with(
        store.clone(),
        config.database.cdr_queue,
        WriterHooks {
            rollup: Some(kpi_rollup(over_long.clone())),
            stored: Some(stored_tx),
            spool,
        },
    );
    Ok(CdrFeed {
        cdrs,
        writer,
        stored,
        over_long,
    })
}

/// A stored CDR's KPI deltas, with the over-long threshold of its trunk as it is now.
fn kpi_rollup(over_long: OverLongMap) -> KpiRollup {
    Arc::new(move |cdr: &Cdr| {
        let secs = cdr
            .attempt
            .trunk
            .as_deref()
            .and_then(|t| over_long.read().get(t).copied())
            .unwrap_or(DEFAULT_OVER_LONG_SECS);
        persist::rollup(cdr, secs)
    })
}

/// A previous run's spool may hold final CDRs of calls the journal still lists: they are stored
/// first (a final CDR deletes its journal row), so that recovery does not close those calls as
/// interrupted. Bounded by `SPOOL_REPLAY_WAIT`.
async fn replay_spool(cdrs: &CdrSink) {
    cdrs.spool_replayed(SPOOL_REPLAY_WAIT).await;
}

/// This node's journaled calls, claimed before its recordings are repaired: with several
/// nodes on one database a node closes only its own (`[cluster] node_id`), and none that a
/// survivor is closing already (it found this node lost while it was down).
async fn claim_own_calls(store: &Store, node: Option<&str>) -> OwnCalls {
    crate::monitor::recovery::claim_own_calls(store, node).await
}

/// Repairs every recording a crash left open (`.part`) in this node's own folder (`[recording]
/// dir`, or its `node_id` folder in a cluster: the folder may be shared), but those of calls a
/// survivor is closing, before the interrupted calls are closed (their CDRs name the repaired
/// file, marked incomplete) and before the recorders start writing in the same folder.
async fn repair_recordings(root: &Path, node: Option<&str>, own: &OwnCalls) -> RepairReport {
    let dir = crate::recording::paths::node_dir(root, node);
    let repaired = repair_all_except(dir, own.held_elsewhere.clone()).await;
    for r in &repaired.repaired {
        tracing::warn!(call_id = %r.call_id, path = %r.path.display(), duration_ms = r.duration_ms, "recording left open by a crash repaired");
    }
    for (path, why) in &repaired.failed {
        tracing::error!(path = %path.display(), error = %why, "recording left open by a crash could not be repaired");
    }
    repaired
}

/// The media parts of the calls.
struct Media {
    ports: Arc<PortAllocator>,
    recordings: RecordingPool,
    counters: Arc<MediaCounters>,
}

/// RTP ports, the relay and the recorders: after the repair (the recorders write in the folder
/// it has just settled). A port range or recordings folder that cannot be used fails the start
/// before any socket is bound.
fn open_media(config: &Config) -> Result<Media, AppError> {
    let ports = Arc::new(PortAllocator::from_config(&config.media)?);
    crate::media::start_relay()?;
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

/// The HTTP API's socket (`[http]`, when enabled): bound before the SIP interfaces, so that a
/// port in use or a bad certificate fails the start before the SIP ports are taken. It is
/// served once the parts exist (`Gateway::serve_api`).
async fn bind_http(http: &HttpConfig) -> Result<Option<HttpListener>, AppError> {
    if !http.enabled {
        return Ok(None);
    }
    let addr = http.listen;
    let bound = match (&http.tls_cert, &http.tls_key) {
        (Some(cert), Some(key)) => {
            let tls = crate::api::tls::acceptor(cert, key).await?;
            HttpListener::bind_tls(addr, tls).await
        }
        _ => HttpListener::bind(addr).await,
    };
    bound
        .map(Some)
        .map_err(|source| AppError::Http { addr, source })
}

/// `[cluster]`: this node joins the cluster's shared admission state before the first call
/// (its first heartbeat, bounded by the cluster's op timeout) and starts its worker (beats,
/// releases, reclaim of dead nodes, reconciliation). Redis unreachable does not stop the start:
/// admissions follow `on_shared_state_down` until a beat gets through.
async fn join_cluster(
    config: &Config,
    shutdown: &Shutdown,
) -> Result<Option<super::ClusterNode>, AppError> {
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
    Ok(Some(super::ClusterNode { shared, worker }))
}

/// The SIP side, bound but not yet read.
struct Sip {
    ifaces: Arc<Interfaces>,
    /// The TCP listeners of the inside and outside interfaces, for `Gateway::listen`.
    listeners: (TcpListener, TcpListener),
    layer: TransactionLayer,
    stats: Arc<SipStats>,
}

/// Binds both interfaces (UDP and TCP) and starts the transaction layer's sweeper. Nothing is
/// read from the sockets until `Gateway::listen`: the B2BUA needs the bound addresses and the
/// layer, and the recovery must be over first.
async fn bind_sip(config: &Config, shutdown: &Shutdown) -> Result<Sip, AppError> {
    let limits = Limits {
        max_message_bytes: config.sip.max_message_bytes,
        ..Limits::default()
    };
    let stats = Arc::new(SipStats::default());
    let (inside, inside_listener) =
        Interface::bind(Side::Inside, config.sip.inside, limits, stats.clone()).await?;
    let (outside, outside_listener) =
        Interface::bind(Side::Outside, config.sip.outside, limits, stats.clone()).await?;
    bind_sip_tls(&config.sip, &inside, &outside).await?;
    let ifaces = Arc::new(Interfaces { inside, outside });
    let layer = TransactionLayer::new(
        Timers::with_t1(Duration::from_millis(config.sip.t1_ms)),
        ifaces.clone(),
        config.sip.server_header.clone(),
    );
    layer.spawn_sweeper(shutdown.clone());
    Ok(Sip {
        ifaces,
        listeners: (inside_listener, outside_listener),
        layer,
        stats,
    })
}

/// `[sip] inside_tls` / `outside_tls`: the TLS listeners, with the certificate read once here.
async fn bind_sip_tls(
    sip: &crate::config::SipConfig,
    inside: &Interface,
    outside: &Interface,
) -> Result<(), AppError> {
    let (Some(cert), Some(key)) = (&sip.tls_certificate, &sip.tls_key) else {
        return Ok(());
    };
    let acceptor = crate::sip::transport::tls::acceptor(cert, key)
        .await
        .map_err(AppError::SipTls)?;
    for (iface, addr) in [(inside, sip.inside_tls), (outside, sip.outside_tls)] {
        if let Some(addr) = addr {
            let bound = iface.bind_tls(addr, acceptor.clone()).await?;
            tracing::info!(side = %iface.side(), addr = %bound, "sip tls listening");
        }
    }
    Ok(())
}

/// `[recording] sip_trace`: the captures, offered every message the interfaces send (the
/// B2BUA offers what they receive), their sweeper and their writer. Before the interfaces are
/// read.
fn start_sip_traces(
    config: &Config,
    store: &Store,
    ifaces: &Interfaces,
    shutdown: &Shutdown,
) -> Option<super::SipTracing> {
    if !config.recording.sip_trace {
        return None;
    }
    let (sink, _stats, writer) = crate::monitor::sip_trace_writer::start(store.clone());
    let traces = Arc::new(SipTraces::new(TraceLimits::default(), sink));
    ifaces.inside.trace_with(traces.clone());
    ifaces.outside.trace_with(traces.clone());
    let sweeper = traces.spawn_sweeper(shutdown.clone());
    Some(super::SipTracing {
        traces,
        sweeper,
        writer,
    })
}

/// The monitor refills its windows from the database and restores the steps in force before
/// the first call is admitted (and before interrupted calls are closed: see
/// `close_interrupted_calls`). It reads stored CDRs from the writer's feed from then on.
async fn start_monitor(
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
fn start_cluster_sync(
    sync: Option<&mut super::sync::ClusterSync>,
    trunks: &Arc<TrunkBook>,
    shutdown: &Shutdown,
) {
    if let Some(sync) = sync {
        sync.start(trunks, shutdown);
    }
}

/// Closes the CDR of every call of this node still journaled (claimed at the start: `own`;
/// end reason `gateway_restart`). After the spool replay and the repair (see them), and after
/// the monitor has refilled its windows: these CDRs reach it through the writer's feed alone,
/// never also through the refill (counted once). Returns the calls whose peers may still hold
/// dialogs.
fn close_interrupted_calls(
    cdrs: &CdrSink,
    own: OwnCalls,
    repaired: &RepairReport,
    config: &Config,
) -> Vec<Interrupted> {
    crate::monitor::recovery::close_interrupted_calls(cdrs, own, repaired, &config.recording.dir)
}

/// The B2BUA's settings: the bound addresses, the media and recording parts, the flood guard,
/// the descriptor budget.
fn b2bua_settings(
    config: &Config,
    ifaces: &Interfaces,
    media: &Media,
    flood: &Arc<FloodGuard>,
    capacity: CallCapacity,
    cluster: &Option<super::ClusterNode>,
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

//! Wiring: the parts started in order, and the orderly stop (stop admitting, drain live calls,
//! end what is left, flush CDRs).

mod trunks;

pub use trunks::{parse_definition, NumberList, TrunkBook, TrunkError};

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::api::{ApiDeps, ApiState, HttpListener, HttpServer};
use crate::b2bua::{B2bua, MediaSettings, RecordingSettings, Registry, Settings};
use crate::config::Config;
use crate::config::{ConfigError, TrunkConfig};
use crate::media::{MediaError, PortAllocator};
use crate::monitor::cdr_writer::{CdrSink, CdrWriter, CdrWriterHandle, KpiRollup, WriterHooks};
use crate::monitor::persist;
use crate::monitor::service::{
    MonitorError, MonitorHandle, MonitorService, MonitorSettings, MonitorTask,
};
use crate::monitor::Cdr;
use crate::policy::Policy;
use crate::recording::repair::repair_all;
use crate::recording::RecordingPool;
use crate::shutdown::{self, ShutdownTrigger};
use crate::sip::flood::FloodGuard;
use crate::sip::frontend::Limits;
use crate::sip::transaction::{Timers, TransactionLayer};
use crate::sip::transport::{Handler, Interface, Interfaces, Side, TransportError};
use crate::store::{Store, StoreError};

/// How long a start waits for a previous run's CDR spool to reach the database before it closes
/// interrupted calls anyway (a database still refusing writes must not keep the gateway down).
const SPOOL_REPLAY_WAIT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error(transparent)]
    Media(#[from] MediaError),
    #[error(transparent)]
    Monitor(#[from] MonitorError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Trunk(#[from] TrunkError),
    #[error("cannot listen for the HTTP API on {addr} (http.listen): {source}")]
    Http {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("http api tls (http.tls_cert, http.tls_key): {0}")]
    Tls(#[from] crate::api::tls::TlsError),
    #[error("cannot start the recorders for {dir}: {source}")]
    Recording { dir: String, source: std::io::Error },
    #[error("database.spool_dir: {0}")]
    Spool(#[from] crate::monitor::cdr_spool::SpoolError),
}

/// A running gateway. Dropping it without `shutdown` leaves its tasks running until the
/// runtime ends; tests and main call `shutdown`.
pub struct Gateway {
    b2bua: B2bua,
    ports: Arc<PortAllocator>,
    recordings: RecordingPool,
    policy: Arc<Policy>,
    store: Store,
    cdrs: CdrSink,
    writer: CdrWriterHandle,
    layer: TransactionLayer,
    ifaces: Arc<Interfaces>,
    trigger: ShutdownTrigger,
    drain_timeout: Duration,
    monitor: MonitorHandle,
    monitor_task: MonitorTask,
    /// The trunks in force and their changes at run time (shared with the HTTP API).
    trunks: Arc<TrunkBook>,
    /// The HTTP API (`[http]`), when enabled.
    http: Option<HttpServer>,
    /// The daily retention purge (`[retention]`).
    retention: tokio::task::JoinHandle<()>,
    /// Gateway-wide media counters (also in `/metrics`).
    media_counters: Arc<crate::media::MediaCounters>,
    /// The flood guard's bans and counters (also in `/metrics`).
    flood: Arc<FloodGuard>,
}

impl Gateway {
    pub async fn start(mut config: Config) -> Result<Gateway, AppError> {
        // Stored recording paths stay valid whatever directory a later command runs from.
        if let Ok(abs) = std::path::absolute(&config.recording.dir) {
            config.recording.dir = abs;
        }
        let store = Store::connect(&config.database.url).await?;
        let config = trunks_from_store(&store, config).await?;
        let spool_dir = config
            .database
            .spool_dir
            .clone()
            .or_else(|| crate::monitor::cdr_spool::default_dir(&config.database.url));
        let spool = match spool_dir {
            Some(dir) => Some(
                crate::monitor::cdr_writer::open_spool(dir, config.database.spool_max_bytes)
                    .await?,
            ),
            None => None,
        };
        // Stored CDRs go on to the monitor; the KPI buckets are updated with them.
        let (stored_tx, stored_rx) = tokio::sync::mpsc::channel(STORED_CDR_QUEUE);
        let over_long = Arc::new(parking_lot::RwLock::new(trunks::over_long_secs(
            &config.trunks,
        )));
        let rollup_over_long = over_long.clone();
        let rollup: KpiRollup = Arc::new(move |cdr: &Cdr| {
            let secs = cdr
                .trunk
                .as_deref()
                .and_then(|t| rollup_over_long.read().get(t).copied())
                .unwrap_or(DEFAULT_OVER_LONG_SECS);
            persist::rollup(cdr, secs)
        });
        let (cdrs, writer) = CdrWriter::spawn_with(
            store.clone(),
            config.database.cdr_queue,
            WriterHooks {
                rollup: Some(rollup),
                stored: Some(stored_tx),
                spool,
            },
        );
        // A previous run's spool may hold final CDRs of calls the journal still lists: stored
        // first, so that recovery does not close those calls as interrupted.
        cdrs.spool_replayed(SPOOL_REPLAY_WAIT).await;
        // What a crash left open is closed before any new call is admitted.
        let repaired = repair_all(config.recording.dir.clone()).await;
        for r in &repaired.repaired {
            tracing::warn!(call_id = %r.call_id, path = %r.path.display(), duration_ms = r.duration_ms, "recording left open by a crash repaired");
        }
        for (path, why) in &repaired.failed {
            tracing::error!(path = %path.display(), error = %why, "recording left open by a crash could not be repaired");
        }
        let ports = Arc::new(PortAllocator::from_config(&config.media)?);
        crate::media::start_relay()?;
        let pool = RecordingPool::from_config(&config.recording).map_err(|source| {
            AppError::Recording {
                dir: config.recording.dir.display().to_string(),
                source,
            }
        })?;
        let policy = Arc::new(Policy::new(&config.trunks));
        policy.set_retry_after_secs(config.sip.retry_after_secs);
        let limits = Limits {
            max_message_bytes: config.sip.max_message_bytes,
            ..Limits::default()
        };
        // HTTP API: bound before the SIP interfaces open, served once the parts exist.
        let http_listener = if config.http.enabled {
            let addr = config.http.listen;
            let bound = match (&config.http.tls_cert, &config.http.tls_key) {
                (Some(cert), Some(key)) => {
                    let tls = crate::api::tls::acceptor(cert, key).await?;
                    HttpListener::bind_tls(addr, tls).await
                }
                _ => HttpListener::bind(addr).await,
            };
            Some(bound.map_err(|source| AppError::Http { addr, source })?)
        } else {
            None
        };
        let sip_stats = Arc::new(crate::sip::stats::SipStats::default());
        let (inside, inside_listener) =
            Interface::bind(Side::Inside, config.sip.inside, limits, sip_stats.clone()).await?;
        let (outside, outside_listener) =
            Interface::bind(Side::Outside, config.sip.outside, limits, sip_stats.clone()).await?;
        let media_counters = Arc::new(crate::media::MediaCounters::default());
        let media_counters_for_gateway = media_counters.clone();
        let ifaces = Arc::new(Interfaces {
            inside: inside.clone(),
            outside: outside.clone(),
        });
        let layer = TransactionLayer::new(
            Timers::with_t1(Duration::from_millis(config.sip.t1_ms)),
            ifaces.clone(),
        );
        let (trigger, shutdown) = shutdown::channel();
        layer.spawn_sweeper(shutdown.clone());
        let flood = Arc::new(FloodGuard::new(config.sip.flood.clone()));
        let flood_for_gateway = flood.clone();
        let settings = Settings {
            inside_addr: inside.local_addr(),
            outside_addr: outside.local_addr(),
            unknown_sources: config.sip.unknown_sources,
            retry_after_secs: config.sip.retry_after_secs,
            ring_timeout: Duration::from_secs(config.sip.ring_timeout_secs),
            flood: flood.clone(),
            recording: Some(RecordingSettings {
                pool: pool.clone(),
                required: config.recording.required,
                early_media: config.recording.record_early_media,
            }),
            media: MediaSettings {
                ports: ports.clone(),
                inside_ip: config.media.inside_address,
                outside_ip: config.media.outside_address,
                timeout: Duration::from_secs(config.media.timeout_secs),
                counters: media_counters.clone(),
            },
        };
        let registry = Arc::new(Registry::default());
        // Steps in force are restored before the first call is admitted.
        let (monitor, monitor_task) = MonitorService::start(
            store.clone(),
            policy.clone(),
            registry.clone(),
            &config.trunks,
            MonitorSettings::default(),
            stored_rx,
            shutdown.clone(),
        )
        .await?;
        // Closed once the monitor has refilled its windows from the database: their CDRs reach
        // it through the writer's feed alone, never also through the refill (counted once).
        let interrupted =
            crate::monitor::recovery::close_interrupted_calls(&store, &cdrs, &repaired).await;
        let trunk_book = Arc::new(TrunkBook::new(
            config.clone(),
            store.clone(),
            policy.clone(),
            monitor.clone(),
            over_long,
        ));
        let b2bua = B2bua::new(
            settings,
            layer.clone(),
            policy.clone(),
            registry,
            cdrs.clone(),
        );
        let http = http_listener.map(|listener| {
            let deps = ApiDeps {
                store: store.clone(),
                registry: b2bua.registry().clone(),
                monitor: monitor.clone(),
                cdrs: cdrs.clone(),
                recordings: pool.clone(),
                policy: policy.clone(),
                counters: crate::api::ApiCounters {
                    attempts: b2bua.attempts().clone(),
                    sip: sip_stats,
                    media: media_counters,
                    flood,
                },
                trunks: trunk_book.clone(),
            };
            HttpServer::start(listener, ApiState::new(deps), shutdown.clone())
        });
        let retention = crate::retention::task::spawn(
            store.clone(),
            config.recording.dir.clone(),
            config.retention.clone(),
            b2bua.registry().clone(),
            shutdown.clone(),
        );
        let handler: Arc<dyn Handler> = Arc::new(b2bua.clone());
        inside.start(inside_listener, handler.clone(), shutdown.clone());
        outside.start(outside_listener, handler, shutdown.clone());
        // The peers may still hold dialogs of calls the crash cut: end them, now that we listen.
        if !interrupted.is_empty() {
            b2bua.end_interrupted_dialogs(interrupted, shutdown);
        }
        tracing::info!(inside = %inside.local_addr(), outside = %outside.local_addr(), trunks = config.trunks.len(), "trunkguard listening");
        Ok(Gateway {
            b2bua,
            ports,
            recordings: pool,
            policy,
            store,
            cdrs,
            writer,
            layer,
            ifaces,
            trigger,
            drain_timeout: Duration::from_secs(config.sip.drain_timeout_secs),
            monitor,
            monitor_task,
            trunks: trunk_book,
            http,
            retention,
            media_counters: media_counters_for_gateway,
            flood: flood_for_gateway,
        })
    }

    /// Gateway-wide media counters: relayed, dropped by reason, lost.
    pub fn media_counters(&self) -> &Arc<crate::media::MediaCounters> {
        &self.media_counters
    }

    /// The flood guard (bans in force, counters).
    pub fn flood(&self) -> &Arc<FloodGuard> {
        &self.flood
    }

    pub fn inside_addr(&self) -> SocketAddr {
        self.ifaces.inside.local_addr()
    }

    pub fn outside_addr(&self) -> SocketAddr {
        self.ifaces.outside.local_addr()
    }

    /// Where the HTTP API listens (None when `http.enabled = false`).
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http.as_ref().map(HttpServer::local_addr)
    }

    pub fn registry(&self) -> &Arc<Registry> {
        self.b2bua.registry()
    }

    pub fn policy(&self) -> &Arc<Policy> {
        &self.policy
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn cdrs(&self) -> &CdrSink {
        &self.cdrs
    }

    /// The trunks in force, in order.
    pub async fn trunks(&self) -> Vec<TrunkConfig> {
        self.trunks.trunks().await
    }

    /// The trunks and their changes at run time (what the HTTP API uses).
    pub fn trunk_book(&self) -> &Arc<TrunkBook> {
        &self.trunks
    }

    /// Creates or replaces a trunk from its `[[trunks]]` TOML table: validated with the other
    /// trunks, stored, then applied to admission, the monitor and the KPI rollup at once.
    pub async fn put_trunk(&self, definition: &str, by: &str) -> Result<TrunkConfig, AppError> {
        Ok(self.trunks.put(definition, by).await?)
    }

    /// Removes a trunk: new calls on it are refused at once (calls in progress go on); false
    /// when there is none of that name.
    pub async fn delete_trunk(&self, name: &str, by: &str) -> Result<bool, AppError> {
        Ok(self.trunks.delete(name, by).await?)
    }

    /// The carrier's eyes: KPIs, anomalies, enforcement.
    pub fn monitor(&self) -> &MonitorHandle {
        &self.monitor
    }

    /// RTP/RTCP port pairs in use (two per live call).
    pub fn media_ports_in_use(&self) -> usize {
        self.ports.in_use()
    }

    /// Recordings open now (each is closed when its call ends).
    pub fn recordings_active(&self) -> usize {
        self.recordings.active_calls()
    }

    pub fn transactions(&self) -> (usize, usize) {
        self.layer.sizes()
    }

    /// Stop admitting, let live calls end for up to the drain timeout, end the rest with BYE,
    /// stop the sockets and write every CDR.
    pub async fn shutdown(self) {
        let drain = self.drain_timeout;
        self.shutdown_with_drain(drain).await
    }

    pub async fn shutdown_with_drain(self, drain: Duration) {
        self.b2bua.stop_admitting();
        let registry = self.b2bua.registry().clone();
        tracing::info!(
            live_calls = registry.len(),
            drain_secs = drain.as_secs(),
            "draining"
        );
        wait_until_empty(&registry, drain).await;
        if !registry.is_empty() {
            tracing::info!(
                live_calls = registry.len(),
                "drain timeout: ending live calls"
            );
            registry.hangup_all("shutdown");
            // Calls end at once; a few wait for a CANCEL's final response (bounded by 64·T1).
            wait_until_empty(&registry, self.layer.timers().timeout()).await;
        }
        // Give BYEs a moment on the wire before the sockets close.
        tokio::time::sleep(Duration::from_millis(200)).await;
        self.trigger.trigger();
        // The API stops with the sockets (it stayed up while calls drained).
        if let Some(http) = self.http {
            http.join().await;
        }
        // The purge stops between two statements once triggered.
        if tokio::time::timeout(CDR_FLUSH_LIMIT, self.retention)
            .await
            .is_err()
        {
            tracing::error!("retention purge did not stop in time");
        }
        drop(self.b2bua);
        // Every call has finished its recording by now (their tasks are gone).
        let pool = self.recordings.clone();
        let _ = tokio::task::spawn_blocking(move || pool.shutdown_blocking()).await;
        // The writer retries a failing database forever; a stop must not hang forever on it.
        match tokio::time::timeout(CDR_FLUSH_LIMIT, self.writer.close()).await {
            Ok(Ok(stats)) => tracing::info!(written = stats.written, "CDRs flushed"),
            Ok(Err(e)) => tracing::error!(error = %e, "CDR writer failed"),
            Err(_) => tracing::error!(
                unwritten = self.cdrs.stats().queued,
                "database unavailable: CDRs not flushed before the stop limit"
            ),
        }
        // The writer has handed the monitor every stored CDR; it stops once it has seen them.
        if tokio::time::timeout(CDR_FLUSH_LIMIT, self.monitor_task.join())
            .await
            .is_err()
        {
            tracing::error!("monitor did not stop in time");
        }
        tracing::info!("trunkguard stopped");
    }
}

/// The trunks in force: the config file's seed an empty database (the first start); after that
/// the database's are the truth (admins change them at run time) and the file's are ignored.
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
    let next = config.with_trunk_sources(&stored)?;
    let file: Vec<&str> = config.trunks.iter().map(|t| t.name.as_str()).collect();
    let db: Vec<&str> = next.trunks.iter().map(|t| t.name.as_str()).collect();
    if config.trunk_sources != next.trunk_sources {
        tracing::warn!(?file, ?db, "the database's trunks are in force; the config file's [[trunks]] only seed an empty database");
    }
    Ok(next)
}

/// Stored CDRs waiting for the monitor (a full queue holds the CDR writer back, not calls).
const STORED_CDR_QUEUE: usize = 4096;
/// The over-long threshold for a CDR of no configured trunk (the rule's default, 60 min).
const DEFAULT_OVER_LONG_SECS: u64 = 3600;

/// How long a stop waits for the database to take the last CDRs.
const CDR_FLUSH_LIMIT: Duration = Duration::from_secs(60);

async fn wait_until_empty(registry: &Registry, limit: Duration) {
    let deadline = tokio::time::Instant::now() + limit;
    while !registry.is_empty() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

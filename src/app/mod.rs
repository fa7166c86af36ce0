//! Wiring: the parts started in order (`start.rs`: the start-up steps, recovery first), the
//! orderly stop (`stop.rs`: stop admitting, drain live calls, end what is left, flush CDRs).

pub mod descriptors;
mod node_loss;
mod start;
mod stop;
mod sync;

use crate::trunks::{TrunkBook, TrunkError};

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::api::HttpServer;
use crate::b2bua::{B2bua, Registry};
use crate::config::{ConfigError, TrunkConfig};
use crate::media::{MediaError, PortAllocator};
use crate::monitor::cdr_writer::{CdrSink, CdrWriterHandle};
use crate::monitor::service::{MonitorError, MonitorHandle, MonitorTask};
use crate::policy::Policy;
use crate::recording::RecordingPool;
use crate::shutdown::ShutdownTrigger;
use crate::sip::flood::FloodGuard;
use crate::sip::stats::SipStats;
use crate::sip::transaction::TransactionLayer;
use crate::sip::transport::{Interfaces, TransportError};
use crate::store::{Store, StoreError};

/// The SIP trace's parts: the captures, their sweeper and the writer that stores them.
struct SipTracing {
    traces: Arc<crate::sip::trace::SipTraces>,
    sweeper: tokio::task::JoinHandle<()>,
    writer: tokio::task::JoinHandle<()>,
}

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
    #[error("sip tls (sip.tls_certificate, sip.tls_key): {0}")]
    SipTls(#[source] crate::sip::transport::TlsFileError),
    #[error("cannot start the recorders for {dir}: {source}")]
    Recording { dir: String, source: std::io::Error },
    #[error("cluster: {0}")]
    Cluster(#[from] crate::cluster::ClusterError),
    #[error("database.spool_dir: {0}")]
    Spool(#[from] crate::monitor::cdr_spool::SpoolError),
    #[error("a start-up step off the runtime failed: {0}")]
    Blocking(String),
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
    /// The daily retention purge (`[retention]`); started with the gateway.
    retention: Option<tokio::task::JoinHandle<()>>,
    /// The daily seal of signed manifests (`[evidence] signing_key` set); started with the
    /// gateway.
    manifests: Option<tokio::task::JoinHandle<()>>,
    /// Gateway-wide media counters (also in `/metrics`).
    media_counters: Arc<crate::media::MediaCounters>,
    /// SIP responses by side and class, counted by the transports (also in `/metrics`).
    sip_stats: Arc<SipStats>,
    /// The calls' SIP traces and their writer (`[recording] sip_trace`).
    sip_traces: Option<SipTracing>,
    /// The flood guard's bans and counters (also in `/metrics`).
    flood: Arc<FloodGuard>,
    /// `[cluster]`: this node's part in the cluster's shared admission state.
    cluster: Option<ClusterNode>,
    /// In a cluster: the change bus and the monitor lease (`sync.rs`).
    cluster_sync: Option<sync::ClusterSync>,
    /// The trunks' registrations with their carriers (`register = true`).
    registrations: Option<crate::trunks::registration::RegistrationClient>,
}

/// A cluster node's handle on the shared admission state and its worker task (which leaves the
/// cluster once the node's last call has ended after a stop).
struct ClusterNode {
    shared: crate::cluster::SharedAdmission,
    worker: Option<tokio::task::JoinHandle<()>>,
}

impl Gateway {
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

    /// The recordings folder's health, as the watcher last found it (what admission reads).
    pub fn recording_disk(&self) -> &Arc<crate::recording::DiskHealth> {
        self.recordings.disk()
    }

    pub fn transactions(&self) -> (usize, usize) {
        self.layer.sizes()
    }
}

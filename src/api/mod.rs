//! The HTTP API (axum): bearer tokens with roles, an audit row for every request that reads or
//! changes data, the OpenAPI 3.1 document generated from the handlers (utoipa), `/healthz` and
//! `/metrics`. One file per concern (`server`, `auth`, `audit`, `error`, `openapi`) and per
//! resource group (`health`, `metrics`, `calls`, `cdrs`, `reports`, `enforcement`, `complaints`, `trunks`, `cdr_export`, `recordings` + `range`, `evidence`, `holds`, `audit_log`). It reaches the calls only through the
//! b2bua's `Registry` and the enforcement only through `MonitorHandle`. The web console
//! (`console/`) is served by the same listener and stands on the same handlers and rules.

pub mod audit;
pub mod audit_log;
pub mod auth;
pub mod calls;
pub mod cdr_export;
pub mod cdrs;
pub mod complaints;
pub mod console;
pub mod enforcement;
pub mod error;
pub mod evidence;
pub mod exposition;
pub mod health;
pub mod holds;
pub mod host_udp;
pub mod manifests;
pub mod metrics;
mod metrics_admission;
mod metrics_cluster;
mod metrics_media;
pub mod openapi;
mod params;
mod range;
pub mod recording_pause;
pub mod recordings;
pub mod reports;
mod schemas;
pub mod server;
pub mod sip_trace;
pub mod tls;
pub mod trunks;

use std::sync::Arc;

pub use auth::{create_token, Principal, Role, TokenError};
pub use error::ApiError;
pub use metrics::ApiCounters;
pub use server::{route_table, Access, HttpListener, HttpServer, RouteSpec};

use crate::b2bua::Registry;
use crate::monitor::cdr_writer::CdrSink;
use crate::monitor::service::MonitorHandle;
use crate::recording::RecordingPool;
use crate::store::Store;

/// What the handlers use of the running gateway.
pub struct ApiDeps {
    pub store: Store,
    pub registry: Arc<Registry>,
    pub monitor: MonitorHandle,
    pub cdrs: CdrSink,
    pub recordings: RecordingPool,
    /// Which trunk owns a number (complaints).
    pub policy: Arc<crate::policy::Policy>,
    /// The parts' counters `/metrics` reads.
    pub counters: ApiCounters,
    /// The trunks, changed at run time by admins.
    pub trunks: Arc<crate::trunks::TrunkBook>,
    /// A cluster node's shared admission state (`/healthz`, `/metrics`); `None` on one node.
    pub cluster: Option<crate::cluster::SharedAdmission>,
    /// `[evidence]`: the signing key whose public half verifies manifests, where their files are.
    pub evidence: crate::config::EvidenceConfig,
}

/// Shared by every request. Cheap to clone.
#[derive(Clone)]
pub struct ApiState {
    deps: Arc<ApiDeps>,
    routes: server::RouteTable,
    /// The web console's signed-in sessions (this node's memory).
    sessions: Arc<console::session::Sessions>,
}

impl ApiState {
    pub fn new(deps: ApiDeps) -> ApiState {
        ApiState {
            deps: Arc::new(deps),
            routes: Arc::new(server::route_table()),
            sessions: Arc::new(console::session::Sessions::new()),
        }
    }

    pub(crate) fn store(&self) -> &Store {
        &self.deps.store
    }

    pub(crate) fn deps(&self) -> &ApiDeps {
        &self.deps
    }
}

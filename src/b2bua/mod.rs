//! The back-to-back user agent: the dispatcher that turns what the transaction layer delivers
//! into calls, the calls themselves, and the registry of live calls.

pub mod admission_times;
pub mod attempts;
mod call;
mod call_id;
pub mod capacity;
mod dispatch;
pub mod live_media;
mod new_attempt;
mod new_call;
pub mod overload;
mod refusal;
mod registry;
pub mod restart;
mod shed;
mod trace;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub use admission_times::AdmissionTimes;
pub use attempts::CallAttempts;
pub use call::media::MediaSettings;
pub use call::pause::{PauseAction, PauseOutcome};
pub use call::recording::RecordingSettings;
pub use live_media::{LiveCallMedia, LiveLegMedia};
pub use overload::{Overload, OverloadFigures};
pub use registry::{LiveCall, RecordingControlError, Registry};

use crate::cluster::SharedAdmission;
use crate::config::UnknownSources;
use crate::monitor::cdr_writer::CdrSink;
use crate::policy::Policy;
use crate::sip::flood::FloodGuard;
use crate::sip::trace::SipTraces;
use crate::sip::transaction::TransactionLayer;

/// What the B2BUA needs to know of the configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Bound addresses of the two interfaces.
    pub inside_addr: SocketAddr,
    pub outside_addr: SocketAddr,
    pub unknown_sources: UnknownSources,
    pub retry_after_secs: u32,
    /// New INVITEs that queued longer are refused `overload` (`None`: off).
    pub max_queue_delay: Option<Duration>,
    /// While the SIP queue stands later than this, new calls are admitted at a rate that
    /// keeps it there and the excess refused `overload` (`None`: the hard limit alone).
    pub target_queue_delay: Option<Duration>,
    /// Longest time an outgoing INVITE may ring before the gateway gives up (like timer C).
    pub ring_timeout: Duration,
    pub media: MediaSettings,
    /// None: calls are not recorded (tests of signalling alone).
    pub recording: Option<RecordingSettings>,
    /// Per-source request budget and bans (shared with `/metrics`).
    pub flood: Arc<FloodGuard>,
    /// The calls the descriptor budget allows; more are refused `descriptor_limit`.
    pub capacity: capacity::CallCapacity,
    /// A cluster node's handle on the admission state shared by the nodes (`[cluster]`):
    /// admission takes its limits there. `None`: a single node, every limit in memory.
    pub cluster: Option<SharedAdmission>,
    /// `[cluster] node_id`: stamped on every attempt (`Attempt::node`), so that the journal
    /// rows and CDRs say which node carried the call. `None`: a single node.
    pub node: Option<String>,
    /// Calls' SIP traces (`[recording] sip_trace`); None: not traced.
    pub traces: Option<Arc<SipTraces>>,
}

pub(crate) struct Ctx {
    pub settings: Settings,
    pub layer: TransactionLayer,
    pub policy: Arc<Policy>,
    pub registry: Arc<Registry>,
    pub cdrs: CdrSink,
    /// New INVITEs, counted as they arrive (`/metrics`).
    pub attempts: Arc<CallAttempts>,
    /// How long admissions take (`/metrics`).
    pub admission_times: Arc<AdmissionTimes>,
    /// How late the SIP queue is, and the INVITEs refused for it (`/metrics`).
    pub overload: Arc<Overload>,
    /// Late responses to INVITEs cancelled after a crash (empty but for a while after one).
    pub late: restart::LateResponses,
    admitting: AtomicBool,
}

/// The transaction user: implements the transport's `Handler`.
#[derive(Clone)]
pub struct B2bua {
    ctx: Arc<Ctx>,
}

impl B2bua {
    pub fn new(
        settings: Settings,
        layer: TransactionLayer,
        policy: Arc<Policy>,
        registry: Arc<Registry>,
        cdrs: CdrSink,
    ) -> B2bua {
        let overload = Arc::new(Overload::new(
            settings.max_queue_delay,
            settings.target_queue_delay,
        ));
        B2bua {
            ctx: Arc::new(Ctx {
                settings,
                layer,
                policy,
                registry,
                cdrs,
                attempts: Arc::default(),
                admission_times: Arc::default(),
                overload,
                late: restart::LateResponses::default(),
                admitting: AtomicBool::new(true),
            }),
        }
    }

    /// Refuse new calls from now on (shutdown drain); live calls go on.
    pub fn stop_admitting(&self) {
        self.ctx.admitting.store(false, Ordering::SeqCst);
    }

    pub fn registry(&self) -> &Arc<Registry> {
        &self.ctx.registry
    }

    /// Call attempts by trunk and direction (`/metrics`).
    pub fn attempts(&self) -> &Arc<CallAttempts> {
        &self.ctx.attempts
    }

    /// How long admissions take (`/metrics`).
    pub fn admission_times(&self) -> &Arc<AdmissionTimes> {
        &self.ctx.admission_times
    }

    pub fn overload(&self) -> &Arc<Overload> {
        &self.ctx.overload
    }

    /// The calls the descriptor budget allows (`/metrics`).
    pub fn capacity(&self) -> capacity::CallCapacity {
        self.ctx.settings.capacity
    }
}

impl Ctx {
    pub(crate) fn admitting(&self) -> bool {
        self.admitting.load(Ordering::SeqCst)
    }
}

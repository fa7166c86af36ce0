//! The running monitor: one task owns the `Monitor` (KPI windows, rules, ladder) and feeds it
//! the stored CDRs, complaints and live calls; what it decides is applied to admission
//! (`Restrictions`) first, so a step takes effect on the very next call, then written to the
//! store (anomalies with their evidence, the append-only enforcement log). It also takes
//! operators' orders (in process through `MonitorHandle`, or from other processes through the
//! `enforcement_requests` table), picks up complaints other processes stored, and reconciles the
//! concurrency counters with the live calls.
//!
//! On start it rebuilds the steps in force from the log, so a restart never lifts a suspension,
//! and refills its windows (`warm_up.rs`). `handle.rs`: what the rest of the gateway calls.
//!
//! In a cluster (`MonitorSettings::cluster`) one node leads (`cluster.rs`): it judges every
//! node's CDRs, read from the database in the order they were stored (`feed.rs`); the others
//! mirror the enforcement log's steps in force into their admission and hand their operators'
//! orders to the leader (`forward.rs`).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::enforcement::{EnforcementAction, EnforcementError, Imposition};
use super::engine::{Monitor, MonitorLimits, MonitorOutput, MonitorStats};
use super::kpi::Subject;
use super::persist;

use crate::cluster::bus::ChangeBus;
use crate::cluster::leader::RoleWatch;
use crate::config::TrunkConfig;
use crate::model::Step;
use crate::model::{Cdr, EndReason};
use crate::policy::Policy;
use crate::shutdown::Shutdown;
use crate::store::{NewEnforcement, Store, StoreError};

/// The cursor name of the complaints already fed to the rules.
const COMPLAINTS_CURSOR: &str = "complaints";
/// Rows taken per poll of the tables other processes append to.
const POLL_BATCH: u32 = 500;
/// Writes kept for retry while the database refuses them; past this the oldest are dropped
/// (and counted): the steps themselves are already applied.
const MAX_UNSAVED: usize = 10_000;

pub use crate::model::LiveCalls;

/// How often the monitor does its periodic work.
#[derive(Debug, Clone)]
pub struct MonitorSettings {
    /// Lifting due steps, the over-long-call check, polling requests and complaints.
    pub tick: Duration,
    /// Comparing concurrency counters with the live calls.
    pub reconcile_every: Duration,
    pub limits: MonitorLimits,
    /// In a cluster: the change bus and this node's role (monitor leader or not). `None`: one
    /// node, fed the CDRs it stores in process.
    pub cluster: Option<ClusterLink>,
}

impl Default for MonitorSettings {
    fn default() -> Self {
        MonitorSettings {
            tick: Duration::from_secs(1),
            reconcile_every: Duration::from_secs(5),
            limits: MonitorLimits::default(),
            cluster: None,
        }
    }
}

/// What ties the monitor to its cluster.
#[derive(Debug, Clone)]
pub struct ClusterLink {
    pub bus: ChangeBus,
    pub role: RoleWatch,
}

/// Figures the monitor exposes (metrics, tests).
#[derive(Debug, Clone, Default, Serialize)]
pub struct MonitorFigures {
    /// Stored CDRs the rules have seen (and whose steps are applied).
    pub cdrs_seen: u64,
    pub anomalies: u64,
    pub actions: u64,
    pub complaints_seen: u64,
    pub requests_handled: u64,
    /// Log writes that failed and wait for a retry.
    pub unsaved: u64,
    /// Log writes given up (the database refused them past `MAX_UNSAVED`).
    pub unsaved_dropped: u64,
    /// Leases minus live calls, summed over trunks, at the last reconciliation (0 is healthy).
    pub concurrency_drift: i64,
    /// Reconciliations that found a drift.
    pub drift_seen: u64,
    pub reconciliations: u64,
    /// This node judges (always on a single node; in a cluster, while it holds the lease and has
    /// taken over).
    pub leading: bool,
}

#[derive(Default)]
struct Shared {
    cdrs_seen: AtomicU64,
    anomalies: AtomicU64,
    actions: AtomicU64,
    complaints_seen: AtomicU64,
    requests_handled: AtomicU64,
    unsaved: AtomicU64,
    unsaved_dropped: AtomicU64,
    drift: AtomicI64,
    drift_seen: AtomicU64,
    reconciliations: AtomicU64,
    leading: AtomicBool,
}

enum Command {
    Impose {
        subject: Subject,
        step: Step,
        duration: Option<chrono::Duration>,
        operator: String,
        reason: String,
        reply: Reply,
    },
    Lift {
        subject: Subject,
        step: Option<Step>,
        operator: String,
        reason: String,
        reply: Reply,
    },
    InForce(oneshot::Sender<Vec<Imposition>>),
    Stats(oneshot::Sender<MonitorStats>),
    /// Poll the store now (tests, and the API after storing a complaint).
    Poll(oneshot::Sender<()>),
    Reconcile(oneshot::Sender<i64>),
    /// The trunks changed at run time.
    ReplaceTrunks(Vec<TrunkConfig>, oneshot::Sender<()>),
    /// A subject's figures over a window, as the rules see them (None: unknown).
    Kpis {
        subject: Subject,
        window: crate::config::RuleWindow,
        reply: oneshot::Sender<Option<super::kpi::KpiCounters>>,
    },
    /// Not the leader: read the steps in force from the log now (an order handed to the leader
    /// was applied).
    Mirror(oneshot::Sender<()>),
}

/// The answer to an operator's order.
type Reply = oneshot::Sender<Result<Vec<EnforcementAction>, MonitorError>>;

#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the monitor has stopped")]
    Stopped,
    #[error(transparent)]
    Enforcement(#[from] EnforcementError),
    /// Not the monitor leader: the order went to the leader as `enforcement_requests` row
    /// `request`, which it did not handle in time (it stays queued and is applied when it does).
    #[error("the cluster's monitor leader did not handle request {request} within {waited:?}; it stays queued")]
    NotHandled { request: i64, waited: Duration },
    /// The leader refused an order this node found valid (their trunks differed a moment).
    #[error("the cluster's monitor leader rejected request {request}: {reason}")]
    Rejected { request: i64, reason: String },
}

/// The handle the rest of the gateway holds. Cheap to clone.
#[derive(Clone)]
pub struct MonitorHandle {
    cmd: mpsc::Sender<Command>,
    shared: Arc<Shared>,
}

/// Owns the monitor task; `join` after the CDR writer has closed (it feeds the monitor).
pub struct MonitorTask {
    task: JoinHandle<()>,
}

impl MonitorTask {
    pub async fn join(self) {
        let _ = self.task.await;
    }
}

pub struct MonitorService {
    engine: Monitor,
    store: Store,
    policy: Arc<Policy>,
    calls: Arc<dyn LiveCalls>,
    hangup_on_suspend: HashMap<String, bool>,
    trunk_names: Vec<String>,
    /// The trunks in force (a node that becomes the leader builds its engine from them).
    trunks: Vec<TrunkConfig>,
    limits: MonitorLimits,
    complaints_cursor: i64,
    unsaved: Vec<Unsaved>,
    shared: Arc<Shared>,
    /// The steps applied to admission, by id: what a change of role or a mirror converges.
    applied: HashMap<u64, Imposition>,
    /// In a cluster: the role and what goes with it.
    cluster: Option<cluster::Clustered>,
}

/// A write the database refused, kept for the next tick.
enum Unsaved {
    Anomaly(Box<crate::store::AnomalyRow>, Vec<NewEnforcement>),
    Log(Vec<NewEnforcement>),
}

impl MonitorService {
    /// Rebuilds the steps in force from the log, applies them to admission, and starts the
    /// task. `stored_cdrs` is the CDR writer's feed of stored CDRs.
    pub async fn start(
        store: Store,
        policy: Arc<Policy>,
        calls: Arc<dyn LiveCalls>,
        trunks: &[TrunkConfig],
        settings: MonitorSettings,
        stored_cdrs: mpsc::Receiver<Cdr>,
        shutdown: Shutdown,
    ) -> Result<(MonitorHandle, MonitorTask), MonitorError> {
        let now = Utc::now();
        let mut engine = Monitor::new(trunks, settings.limits);
        let in_force = steps_in_force(&store).await?;
        let complaints_cursor = store.cursor(COMPLAINTS_CURSOR).await?;
        if settings.cluster.is_none() {
            engine.restore(&in_force, store.last_anomaly_id().await?, now);
            warm_up(&mut engine, &store, complaints_cursor, None, now).await?;
            // Everything stored so far is judged in process: a later cluster leader starts after
            // it. Not awaited: a locked database must not hold the start up.
            tokio::spawn(feed::mark_seen(store.clone()));
        }
        for i in &in_force {
            tracing::info!(subject = %i.subject, step = %i.step, id = i.id, "enforcement step restored");
        }
        let shared = Arc::new(Shared::default());
        shared
            .leading
            .store(settings.cluster.is_none(), Ordering::Relaxed);
        let (cmd_tx, cmd_rx) = mpsc::channel(64);
        let mut service = MonitorService {
            engine,
            store,
            policy,
            calls,
            hangup_on_suspend: trunks
                .iter()
                .map(|t| (t.name.clone(), t.hangup_on_suspend))
                .collect(),
            trunk_names: trunks.iter().map(|t| t.name.clone()).collect(),
            trunks: trunks.to_vec(),
            limits: settings.limits,
            complaints_cursor,
            unsaved: Vec::new(),
            shared: Arc::clone(&shared),
            applied: HashMap::new(),
            cluster: settings
                .cluster
                .as_ref()
                .map(|link| cluster::Clustered::new(link, cmd_tx.downgrade())),
        };
        // Before the first call: a restart never lifts a suspension.
        service.converge(&in_force);
        if let Some(c) = service.cluster.as_mut() {
            c.mirrored = in_force;
        }
        // Subscribed before the bus's subscriber runs: its first resync reaches the monitor.
        let inputs = cluster::Inputs::of(settings.cluster.as_ref());
        let task = tokio::spawn(service.run(settings, stored_cdrs, cmd_rx, shutdown, inputs));
        Ok((
            MonitorHandle {
                cmd: cmd_tx,
                shared,
            },
            MonitorTask { task },
        ))
    }

    async fn run(
        mut self,
        settings: MonitorSettings,
        mut cdrs: mpsc::Receiver<Cdr>,
        mut cmds: mpsc::Receiver<Command>,
        mut shutdown: Shutdown,
        inputs: cluster::Inputs,
    ) {
        let mut tick = tokio::time::interval(settings.tick);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The first reconciliation one period after start, not at once: at start nothing can
        // have drifted yet, and an immediate tick would race the first commands.
        let mut reconcile = tokio::time::interval_at(
            tokio::time::Instant::now() + settings.reconcile_every,
            settings.reconcile_every,
        );
        reconcile.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut feed_tick = tokio::time::interval(feed::FEED_EVERY);
        feed_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut mirror_tick = tokio::time::interval(cluster::MIRROR_EVERY);
        mirror_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let clustered = self.cluster.is_some();
        let cluster::Inputs {
            role: mut roles,
            mut notices,
        } = inputs;
        if let Some(role) = roles.current() {
            self.on_role(role).await;
        }
        let mut cdrs_open = true;
        loop {
            tokio::select! {
                cdr = cdrs.recv(), if cdrs_open => match cdr {
                    // In a cluster the leader reads every node's CDRs from the database.
                    Some(cdr) => if !clustered { self.on_cdr(&cdr).await },
                    // The CDR writer has closed: every CDR is in.
                    None => cdrs_open = false,
                },
                Some(cmd) = cmds.recv() => self.on_command(cmd).await,
                _ = tick.tick() => self.on_tick().await,
                _ = reconcile.tick() => { self.reconcile().await; }
                role = roles.next() => self.on_role(role).await,
                notice = notices.next() => self.on_notice(notice).await,
                _ = feed_tick.tick(), if clustered => self.on_feed_tick().await,
                _ = mirror_tick.tick(), if clustered => self.on_mirror_tick().await,
                _ = shutdown.recv(), if !cdrs_open => break,
            }
            if !cdrs_open && shutdown.is_shutdown() {
                break;
            }
        }
        self.retry_unsaved().await;
        match &self.cluster {
            None => {
                let marked = feed::mark_seen(self.store.clone());
                let _ = tokio::time::timeout(Duration::from_secs(1), marked).await;
            }
            // Stopped: it judges nothing more, whatever role comes next.
            Some(c) => c.acknowledge_stop(),
        }
        tracing::info!(figures = ?self.figures(), "monitor stopped");
    }

    fn figures(&self) -> MonitorFigures {
        figures(&self.shared)
    }

    async fn on_cdr(&mut self, cdr: &Cdr) {
        let out = self.engine.on_cdr(cdr, Utc::now());
        self.conclude(out).await;
        // Counted once its consequences are applied and stored.
        self.shared.cdrs_seen.fetch_add(1, Ordering::Relaxed);
    }

    async fn on_tick(&mut self) {
        if self.is_following() {
            // The leader judges, lifts and takes the orders; only this node's writes remain.
            self.retry_unsaved().await;
            return;
        }
        let now = Utc::now();
        let out = self.engine.tick(now);
        self.conclude(out).await;
        let live = self.calls.live_calls();
        let out = self.engine.check_live(&live, now);
        self.conclude(out).await;
        self.poll().await;
        self.retry_unsaved().await;
    }

    /// Requests and complaints other processes stored.
    async fn poll(&mut self) {
        match self.store.pending_enforcement_requests(POLL_BATCH).await {
            Ok(requests) => {
                for r in requests {
                    self.handle_request(r).await;
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot read enforcement requests"),
        }
        match self
            .store
            .complaints_after(self.complaints_cursor, POLL_BATCH)
            .await
        {
            Ok(complaints) => {
                for stored in complaints {
                    self.shared.complaints_seen.fetch_add(1, Ordering::Relaxed);
                    match persist::complaint_of(&stored) {
                        Some(c) => {
                            let out = self.engine.on_complaint(&c, Utc::now());
                            self.conclude(out).await;
                        }
                        None => {
                            tracing::error!(
                                complaint = stored.id,
                                "complaint codes unknown; skipped"
                            )
                        }
                    }
                    self.complaints_cursor = stored.id;
                }
                if let Err(e) = self
                    .store
                    .set_cursor(COMPLAINTS_CURSOR, self.complaints_cursor)
                    .await
                {
                    tracing::warn!(error = %e, "cannot save the complaints cursor");
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot read new complaints"),
        }
    }

    async fn on_command(&mut self, cmd: Command) {
        match cmd {
            Command::Impose {
                subject,
                step,
                duration,
                operator,
                reason,
                reply,
            } => {
                if self.is_following() {
                    return self.forward_impose(subject, step, duration, operator, reason, reply);
                }
                let res =
                    self.engine
                        .impose(&subject, step, duration, &operator, &reason, Utc::now());
                if let Ok(actions) = &res {
                    self.apply_and_log(actions.clone()).await;
                }
                let _ = reply.send(res.map_err(MonitorError::from));
            }
            Command::Lift {
                subject,
                step,
                operator,
                reason,
                reply,
            } => {
                if self.is_following() {
                    return self.forward_lift(subject, step, operator, reason, reply);
                }
                let actions = self
                    .engine
                    .lift(&subject, step, &operator, &reason, Utc::now());
                self.apply_and_log(actions.clone()).await;
                let _ = reply.send(Ok(actions));
            }
            Command::InForce(reply) => {
                let in_force = match &self.cluster {
                    Some(c) if !c.leading => c.mirrored.clone(),
                    _ => self.engine.in_force(),
                };
                let _ = reply.send(in_force);
            }
            Command::Kpis {
                subject,
                window,
                reply,
            } => {
                let _ = reply.send(self.engine.kpis(&subject, window, Utc::now()));
            }
            Command::Mirror(reply) => {
                if self.is_following() {
                    self.mirror().await;
                }
                let _ = reply.send(());
            }
            Command::Stats(reply) => {
                let _ = reply.send(self.engine.stats());
            }
            Command::Poll(reply) => {
                if self.is_following() {
                    // The leader takes what is stored; tell it now rather than at its next tick.
                    self.announce();
                } else {
                    self.poll().await;
                }
                let _ = reply.send(());
            }
            Command::Reconcile(reply) => {
                let _ = reply.send(self.reconcile().await);
            }
            Command::ReplaceTrunks(trunks, reply) => {
                self.engine.replace_trunks(&trunks);
                self.hangup_on_suspend = trunks
                    .iter()
                    .map(|t| (t.name.clone(), t.hangup_on_suspend))
                    .collect();
                self.trunk_names = trunks.iter().map(|t| t.name.clone()).collect();
                self.trunks = trunks;
                let _ = reply.send(());
            }
        }
    }
}

/// The enforcement log's steps in force (rows that do not decode are logged and skipped).
async fn steps_in_force(store: &Store) -> Result<Vec<Imposition>, StoreError> {
    Ok(store
        .enforcement_in_force()
        .await?
        .iter()
        .filter_map(|e| {
            let i = persist::imposition_of(e);
            if i.is_none() {
                tracing::error!(
                    log_id = e.id,
                    "enforcement log row does not decode; not restored"
                );
            }
            i
        })
        .collect())
}

fn figures(s: &Shared) -> MonitorFigures {
    MonitorFigures {
        cdrs_seen: s.cdrs_seen.load(Ordering::Relaxed),
        anomalies: s.anomalies.load(Ordering::Relaxed),
        actions: s.actions.load(Ordering::Relaxed),
        complaints_seen: s.complaints_seen.load(Ordering::Relaxed),
        requests_handled: s.requests_handled.load(Ordering::Relaxed),
        unsaved: s.unsaved.load(Ordering::Relaxed),
        unsaved_dropped: s.unsaved_dropped.load(Ordering::Relaxed),
        concurrency_drift: s.drift.load(Ordering::Relaxed),
        drift_seen: s.drift_seen.load(Ordering::Relaxed),
        reconciliations: s.reconciliations.load(Ordering::Relaxed),
        leading: s.leading.load(Ordering::Relaxed),
    }
}

mod cluster;
mod conclude;
mod feed;
mod forward;
mod handle;
mod reconcile;
mod requests;
mod warm_up;

use warm_up::warm_up;

#[cfg(test)]
mod tests;

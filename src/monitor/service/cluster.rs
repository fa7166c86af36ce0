//! The monitor of a cluster's node: leader or follower, as the monitor lease says
//! (`cluster::leader`).
//!
//! - **Leader**: judges every node's CDRs from the database (`feed.rs`), lifts due steps, takes
//!   the operators' orders (its own API's in process, the others' and the CLI's from
//!   `enforcement_requests`) and complaints, writes the log; each change of the log is announced
//!   on the change bus.
//! - **Follower**: judges nothing; its admission mirrors the log's steps in force: at start, on
//!   each notice of the bus (and `Resync`), and every `MIRROR_EVERY` as a safety net. Its
//!   operators' orders go to the leader (`forward.rs`).
//!
//! Taking the lead rebuilds the engine as a restart does: the ladder from the log, the windows
//! from the CDRs at or before the feed cursor, so that the CDRs after it are judged once and the
//! ones before are counted once (not judged again). Losing it drops the engine and mirrors.

use std::time::Duration;

use tokio::sync::broadcast::{self, error::RecvError};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::feed::{self, Feed};
use super::{steps_in_force, warm_up, ClusterLink, Command, MonitorError, MonitorService};
use super::{Imposition, Monitor, COMPLAINTS_CURSOR};
use crate::cluster::bus::{Change, ChangeBus, Notice};
use crate::cluster::leader::{Role, RoleWatch};

/// How often a follower re-reads the steps in force whatever the bus says.
pub(super) const MIRROR_EVERY: Duration = Duration::from_secs(10);
/// A leader that could not take over (database unreachable) tries again this often.
const LEAD_RETRY: Duration = Duration::from_secs(1);

/// The monitor's cluster state.
pub(super) struct Clustered {
    bus: ChangeBus,
    role: RoleWatch,
    /// The lease says this node leads.
    want_lead: bool,
    /// The engine judges (it has taken over).
    pub(super) leading: bool,
    last_lead_try: Option<Instant>,
    pub(super) feed: Feed,
    /// Follower: the log's steps in force as last read (what `in_force` answers).
    pub(super) mirrored: Vec<Imposition>,
    /// The monitor's own commands, for the tasks that hand orders to the leader.
    pub(super) commands: mpsc::WeakSender<Command>,
}

impl Clustered {
    pub(super) fn new(link: &ClusterLink, commands: mpsc::WeakSender<Command>) -> Clustered {
        Clustered {
            bus: link.bus.clone(),
            role: link.role.clone(),
            want_lead: false,
            leading: false,
            last_lead_try: None,
            feed: Feed::at(0),
            mirrored: Vec::new(),
            commands,
        }
    }

    pub(super) fn bus(&self) -> &ChangeBus {
        &self.bus
    }

    /// The monitor has stopped: a lease waiting to be handed over need not wait for it.
    pub(super) fn acknowledge_stop(&self) {
        self.role.acknowledge(u64::MAX);
    }
}

/// The run loop's cluster inputs: role changes and bus notices (pending forever when absent).
pub(super) struct Inputs {
    pub(super) role: RoleInput,
    pub(super) notices: NoticeInput,
}

pub(super) struct RoleInput(Option<watch::Receiver<Role>>);
pub(super) struct NoticeInput(Option<broadcast::Receiver<Notice>>);

impl Inputs {
    pub(super) fn of(link: Option<&ClusterLink>) -> Inputs {
        Inputs {
            role: RoleInput(link.map(|l| l.role.role.clone())),
            notices: NoticeInput(link.map(|l| l.bus.subscribe())),
        }
    }
}

impl RoleInput {
    /// The role now, marked seen.
    pub(super) fn current(&mut self) -> Option<Role> {
        self.0.as_mut().map(|r| *r.borrow_and_update())
    }

    pub(super) async fn next(&mut self) -> Role {
        let Some(rx) = self.0.as_mut() else {
            return std::future::pending().await;
        };
        match rx.changed().await {
            Ok(()) => *rx.borrow_and_update(),
            Err(_) => {
                // The lease task is gone (the node is going down or crashed): lead no more.
                self.0 = None;
                Role {
                    epoch: u64::MAX,
                    leading: false,
                }
            }
        }
    }
}

impl NoticeInput {
    pub(super) async fn next(&mut self) -> Result<Notice, RecvError> {
        let Some(rx) = self.0.as_mut() else {
            return std::future::pending().await;
        };
        let got = rx.recv().await;
        if matches!(got, Err(RecvError::Closed)) {
            self.0 = None;
        }
        got
    }
}

impl MonitorService {
    /// In a cluster and not (yet) the leader: judges nothing.
    pub(super) fn is_following(&self) -> bool {
        self.cluster.as_ref().is_some_and(|c| !c.leading)
    }

    /// The lease changed hands.
    pub(super) async fn on_role(&mut self, role: Role) {
        let Some(c) = self.cluster.as_mut() else {
            return;
        };
        c.want_lead = role.leading;
        match (role.leading, c.leading) {
            (true, false) => self.take_lead().await,
            (false, true) => {
                self.follow();
                self.mirror().await;
            }
            _ => {}
        }
        // From here on this node acts on the new role (a stepping-down leader judges no more).
        if let Some(c) = &self.cluster {
            c.role.acknowledge(role.epoch);
        }
    }

    async fn take_lead(&mut self) {
        if let Some(c) = self.cluster.as_mut() {
            c.last_lead_try = Some(Instant::now());
        }
        if let Err(e) = self.lead().await {
            tracing::error!(error = %e, "cannot take over the cluster's monitor now; retrying");
        }
    }

    /// Becomes the judge: the ladder from the log, the windows from the CDRs up to the cursor.
    async fn lead(&mut self) -> Result<(), MonitorError> {
        let now = chrono::Utc::now();
        let in_force = steps_in_force(&self.store).await?;
        let mut engine = Monitor::new(&self.trunks, self.limits);
        engine.restore(&in_force, self.store.last_anomaly_id().await?, now);
        let cursor = feed::start_cursor(&self.store).await?;
        let complaints_cursor = self.store.cursor(COMPLAINTS_CURSOR).await?;
        warm_up(
            &mut engine,
            &self.store,
            complaints_cursor,
            Some(cursor),
            now,
        )
        .await?;
        let target = engine.in_force();
        self.engine = engine;
        self.complaints_cursor = complaints_cursor;
        self.converge(&target);
        if let Some(c) = self.cluster.as_mut() {
            c.leading = true;
            c.feed = Feed::at(cursor);
            c.mirrored.clear();
        }
        self.shared
            .leading
            .store(true, std::sync::atomic::Ordering::Relaxed);
        tracing::info!(
            feed_position = cursor,
            steps_in_force = target.len(),
            "this node now runs the cluster's monitor"
        );
        Ok(())
    }

    /// Judges no more: the engine (windows, ladder) is dropped; the next leader rebuilds its own.
    fn follow(&mut self) {
        self.engine = Monitor::new(&self.trunks, self.limits);
        if let Some(c) = self.cluster.as_mut() {
            c.leading = false;
        }
        self.shared
            .leading
            .store(false, std::sync::atomic::Ordering::Relaxed);
        tracing::warn!("this node no longer runs the cluster's monitor");
    }

    pub(super) async fn on_notice(&mut self, notice: Result<Notice, RecvError>) {
        let why = match notice {
            Ok(Notice::Changed {
                change: Change::Enforcement,
                ..
            }) => "notice",
            // Trunks: the trunk book reloads them and tells the monitor.
            Ok(Notice::Changed { .. }) => return,
            Ok(Notice::Resync) | Err(RecvError::Lagged(_)) => "resync",
            Err(RecvError::Closed) => return,
        };
        tracing::debug!(why, "enforcement may have changed on another node");
        if self.is_following() {
            self.mirror().await;
        } else {
            // An order waits in `enforcement_requests` for the leader.
            self.poll().await;
        }
    }

    pub(super) async fn on_feed_tick(&mut self) {
        let Some(c) = &self.cluster else {
            return;
        };
        if c.leading {
            self.feed().await;
        } else if c.want_lead && c.last_lead_try.is_none_or(|t| t.elapsed() >= LEAD_RETRY) {
            self.take_lead().await;
        }
    }

    pub(super) async fn on_mirror_tick(&mut self) {
        if self.is_following() {
            self.mirror().await;
        }
    }

    /// A follower's admission := the log's steps in force.
    pub(super) async fn mirror(&mut self) {
        match steps_in_force(&self.store).await {
            Ok(target) => {
                self.converge(&target);
                if let Some(c) = self.cluster.as_mut() {
                    c.mirrored = target;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the steps in force; admission keeps the ones it has")
            }
        }
    }

    /// Admission's steps := `target`: what is no longer there is lifted, what is new imposed
    /// (and live calls ended when it suspends a trunk that hangs up on suspension).
    pub(super) fn converge(&mut self, target: &[Imposition]) {
        let restrictions = self.policy.restrictions();
        let gone: Vec<Imposition> = self
            .applied
            .values()
            .filter(|a| !target.iter().any(|t| t.id == a.id))
            .cloned()
            .collect();
        for i in gone {
            restrictions.lift(i.id, &i.subject);
            self.applied.remove(&i.id);
            tracing::info!(id = i.id, subject = %i.subject, step = %i.step, "enforcement step lifted (from the log)");
        }
        for i in target {
            if self.applied.contains_key(&i.id) {
                continue;
            }
            restrictions.impose(i.id, &i.subject, i.step);
            self.applied.insert(i.id, i.clone());
            tracing::warn!(id = i.id, subject = %i.subject, step = %i.step, until = ?i.until, "enforcement step in force (from the log)");
            self.hang_up_if_suspended(i);
        }
    }

    /// Tells the other nodes that the log changed (not waited for: a notice that cannot be sent
    /// is found at their periodic re-read).
    pub(super) fn announce(&self) {
        if let Some(c) = &self.cluster {
            let bus = c.bus().clone();
            tokio::spawn(async move {
                let _ = bus.publish(Change::Enforcement).await;
            });
        }
    }
}

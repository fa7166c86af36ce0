//! `MonitorHandle`: what the rest of the gateway (the API, the app) asks of the running monitor.

use tokio::sync::oneshot;

use super::{figures, Command, MonitorError, MonitorFigures, MonitorHandle};
use crate::config::TrunkConfig;
use crate::model::Step;
use crate::model::Subject;
use crate::monitor::enforcement::{EnforcementAction, Imposition};
use crate::monitor::engine::MonitorStats;

impl MonitorHandle {
    pub fn figures(&self) -> MonitorFigures {
        figures(&self.shared)
    }

    pub async fn impose(
        &self,
        subject: Subject,
        step: Step,
        duration: Option<chrono::Duration>,
        operator: &str,
        reason: &str,
    ) -> Result<Vec<EnforcementAction>, MonitorError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Impose {
            subject,
            step,
            duration,
            operator: operator.to_string(),
            reason: reason.to_string(),
            reply,
        })
        .await?;
        rx.await.map_err(|_| MonitorError::Stopped)?
    }

    pub async fn lift(
        &self,
        subject: Subject,
        step: Option<Step>,
        operator: &str,
        reason: &str,
    ) -> Result<Vec<EnforcementAction>, MonitorError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Lift {
            subject,
            step,
            operator: operator.to_string(),
            reason: reason.to_string(),
            reply,
        })
        .await?;
        rx.await.map_err(|_| MonitorError::Stopped)?
    }

    /// A trunk's or caller ID's figures over a window as the rules see them now (None: not
    /// seen, or this node is not the cluster's monitor leader).
    pub async fn kpis(
        &self,
        subject: Subject,
        window: crate::config::RuleWindow,
    ) -> Result<Option<crate::monitor::kpi::KpiCounters>, MonitorError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Kpis {
            subject,
            window,
            reply,
        })
        .await?;
        rx.await.map_err(|_| MonitorError::Stopped)
    }

    pub async fn in_force(&self) -> Result<Vec<Imposition>, MonitorError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::InForce(reply)).await?;
        rx.await.map_err(|_| MonitorError::Stopped)
    }

    pub async fn stats(&self) -> Result<MonitorStats, MonitorError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Stats(reply)).await?;
        rx.await.map_err(|_| MonitorError::Stopped)
    }

    /// Take what other processes stored (requests, complaints) now rather than at the tick.
    pub async fn poll(&self) -> Result<(), MonitorError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Poll(reply)).await?;
        rx.await.map_err(|_| MonitorError::Stopped)
    }

    /// Reconcile now; returns the drift (0 is healthy).
    pub async fn reconcile(&self) -> Result<i64, MonitorError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Reconcile(reply)).await?;
        rx.await.map_err(|_| MonitorError::Stopped)
    }

    /// The trunks changed at run time: their rules, numbers and flags from now on.
    pub async fn replace_trunks(&self, trunks: Vec<TrunkConfig>) -> Result<(), MonitorError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::ReplaceTrunks(trunks, reply)).await?;
        rx.await.map_err(|_| MonitorError::Stopped)
    }

    async fn send(&self, cmd: Command) -> Result<(), MonitorError> {
        self.cmd.send(cmd).await.map_err(|_| MonitorError::Stopped)
    }
}

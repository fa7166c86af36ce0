//! `trunkguard enforce`: operators impose and lift steps, and read what is in force and the log.
//!
//! Orders go through the `enforcement_requests` table: the running gateway applies them within
//! a second (its monitor owns the ladder and writes the log) and records the outcome, which this
//! command waits for. When no gateway runs, the order waits and is applied at its next start.
//! In a cluster (`[cluster]`) the order is announced on the change bus, so the monitor leader,
//! whichever node it is, takes it at once.

use std::io::Write;
use std::time::Duration;

use chrono::Utc;
use clap::Args;

use super::args::Period;
use super::values::number_value;
use super::CliError;
use crate::cluster::bus::{Change, ChangeBus};
use crate::cluster::ClusterOptions;
use crate::config::ClusterConfig;
use crate::model::Step;
use crate::model::{StepAction, SubjectKind};
use crate::store::{NewRequest, Store, SubjectKey};

/// Who or what an order is about, who gives it and why (`impose` and `lift`).
#[derive(Debug, Clone, Args)]
pub struct EnforceTarget {
    /// The trunk.
    #[arg(long)]
    pub trunk: String,
    /// A caller ID of the trunk (otherwise the step is on the trunk itself).
    #[arg(long, value_parser = number_value)]
    pub number: Option<String>,
    /// Who gives the order (written to the log).
    #[arg(long)]
    pub operator: String,
    /// Why (written to the log).
    #[arg(long)]
    pub reason: String,
    /// Seconds to wait for the running gateway to apply it.
    #[arg(long, default_value_t = 10)]
    pub wait: u64,
}

/// What an order does.
#[derive(Debug, Clone)]
pub struct Order {
    pub action: StepAction,
    pub target: EnforceTarget,
    /// Impose: the step; lift: one step, or none for all.
    pub step: Option<Step>,
    /// Impose: how long; none: until lifted.
    pub duration: Option<chrono::Duration>,
}

fn subject(t: &EnforceTarget) -> SubjectKey {
    match &t.number {
        Some(n) => SubjectKey {
            kind: SubjectKind::CallerId.as_str().into(),
            trunk: t.trunk.clone(),
            number: n.clone(),
        },
        None => SubjectKey {
            kind: SubjectKind::Trunk.as_str().into(),
            trunk: t.trunk.clone(),
            number: String::new(),
        },
    }
}

/// Stores the order (announcing it in a cluster) and waits for the gateway to apply it.
pub async fn order(
    store: &Store,
    o: &Order,
    cluster: Option<&ClusterConfig>,
    out: &mut impl Write,
) -> Result<(), CliError> {
    let t = &o.target;
    if t.reason.trim().is_empty() || t.operator.trim().is_empty() {
        return Err(CliError::Usage(
            "--operator and --reason are required: the log says who and why".into(),
        ));
    }
    if o.action == StepAction::Impose && o.step.is_none() {
        return Err(CliError::Usage("impose needs --step".into()));
    }
    let req = NewRequest {
        requested_at: Utc::now(),
        action: o.action.as_str().to_string(),
        subject: subject(t),
        step: o.step.map(|s| s.code().to_string()),
        duration_secs: o.duration.map(|d| d.num_seconds()),
        operator: t.operator.clone(),
        reason: t.reason.clone(),
    };
    let id = store.insert_enforcement_request(&req).await?;
    announce(cluster).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(t.wait);
    loop {
        if let Some(r) = store.enforcement_request(id).await? {
            if r.state != "pending" {
                let result = r.result.unwrap_or_default();
                writeln!(out, "request {id} {}: {result}", r.state)
                    .map_err(|e| CliError::io("writing", e))?;
                return if r.state == "applied" {
                    Ok(())
                } else {
                    Err(CliError::Usage(format!("rejected: {result}")))
                };
            }
        }
        if tokio::time::Instant::now() >= deadline {
            writeln!(
                out,
                "request {id} queued: no running gateway answered yet; it is applied when one does"
            )
            .map_err(|e| CliError::io("writing", e))?;
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Tells the cluster's nodes that an order waits (the leader would find it within a second
/// anyway: a failure is only logged). Sent as `<node id>.cli`: the node this runs on hears it too.
async fn announce(cluster: Option<&ClusterConfig>) {
    let Some(c) = cluster else {
        return;
    };
    let mut opts = ClusterOptions::from_config(c);
    opts.node_id = format!("{}.cli", opts.node_id);
    match ChangeBus::new(&opts) {
        Ok(bus) => {
            let _ = bus.publish(Change::Enforcement).await;
        }
        Err(e) => tracing::warn!(error = %e, "cannot announce the order on the change bus"),
    }
}

/// The steps in force, one per line.
pub async fn list(store: &Store, out: &mut impl Write) -> Result<(), CliError> {
    let rows = store.enforcement_in_force().await?;
    for e in &rows {
        let r = &e.entry;
        writeln!(
            out,
            "{}\t{}\t{}\t{}\t{}\tuntil {}\t{} {}",
            r.at.to_rfc3339(),
            r.imposition,
            r.step,
            r.subject.trunk,
            if r.subject.number.is_empty() {
                "-"
            } else {
                &r.subject.number
            },
            r.until
                .map(|u| u.to_rfc3339())
                .unwrap_or_else(|| "lifted by hand".into()),
            r.cause,
            r.reason
        )
        .map_err(|e| CliError::io("writing", e))?;
    }
    if rows.is_empty() {
        writeln!(out, "no step in force").map_err(|e| CliError::io("writing", e))?;
    }
    Ok(())
}

/// The log of a period as JSON lines.
pub async fn log(store: &Store, period: &Period, out: &mut impl Write) -> Result<(), CliError> {
    for e in store.enforcement_log(period.from, period.to).await? {
        let r = &e.entry;
        let line = serde_json::json!({
            "id": e.id, "at": r.at, "action": r.action, "imposition": r.imposition,
            "subject": r.subject.kind, "trunk": r.subject.trunk, "number": r.subject.number,
            "step": r.step, "until": r.until, "cause": r.cause, "rule": r.rule,
            "anomaly_id": r.anomaly_id, "operator": r.operator, "reason": r.reason,
        });
        writeln!(out, "{line}").map_err(|e| CliError::io("writing", e))?;
    }
    Ok(())
}

//! `trunkguard enforce`: operators impose and lift steps, and read what is in force and the log.
//!
//! Orders go through the `enforcement_requests` table: the running gateway applies them within
//! a second (its monitor owns the ladder and writes the log) and records the outcome, which this
//! command waits for. When no gateway runs, the order waits and is applied at its next start.

use std::io::Write;
use std::time::Duration;

use chrono::Utc;

use super::{number_arg, time_arg, CliError};
use crate::config::{parse_duration, Step};
use crate::store::{NewRequest, Store, SubjectKey};

/// Who or what an order is about.
#[derive(Debug, Clone)]
pub struct Target {
    pub trunk: String,
    /// A caller ID of the trunk; none: the trunk itself.
    pub number: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Order {
    pub target: Target,
    /// Impose: the step; lift: one step, or none for all.
    pub step: Option<String>,
    /// Impose: how long (90s, 30m, 2h, 7d); none: until lifted.
    pub duration: Option<String>,
    pub operator: String,
    pub reason: String,
    /// How long to wait for the gateway's answer.
    pub wait: Duration,
}

fn subject(t: &Target) -> Result<SubjectKey, CliError> {
    Ok(match &t.number {
        Some(n) => SubjectKey {
            kind: "caller_id".into(),
            trunk: t.trunk.clone(),
            number: number_arg("number", n)?,
        },
        None => SubjectKey {
            kind: "trunk".into(),
            trunk: t.trunk.clone(),
            number: String::new(),
        },
    })
}

fn step_arg(s: &str) -> Result<String, CliError> {
    Step::from_code(s)
        .map(|s| s.code().to_string())
        .ok_or_else(|| {
            CliError::Usage(format!(
                "--step `{s}` is not alert, throttle, suspend_number or suspend_trunk"
            ))
        })
}

/// Stores the order and waits for the gateway to apply it.
pub async fn order(
    store: &Store,
    action: &str,
    o: &Order,
    out: &mut impl Write,
) -> Result<(), CliError> {
    if o.reason.trim().is_empty() || o.operator.trim().is_empty() {
        return Err(CliError::Usage(
            "--operator and --reason are required: the log says who and why".into(),
        ));
    }
    let step = o.step.as_deref().map(step_arg).transpose()?;
    if action == "impose" && step.is_none() {
        return Err(CliError::Usage("impose needs --step".into()));
    }
    let duration_secs = o
        .duration
        .as_deref()
        .map(|d| parse_duration(d).map(|d| d.num_seconds()))
        .transpose()
        .map_err(|e| CliError::Usage(format!("--for {e}")))?;
    let req = NewRequest {
        requested_at: Utc::now(),
        action: action.to_string(),
        subject: subject(&o.target)?,
        step,
        duration_secs,
        operator: o.operator.clone(),
        reason: o.reason.clone(),
    };
    let id = store.insert_enforcement_request(&req).await?;
    let deadline = tokio::time::Instant::now() + o.wait;
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
pub async fn log(
    store: &Store,
    from: &str,
    to: &str,
    out: &mut impl Write,
) -> Result<(), CliError> {
    let from = time_arg("from", from)?;
    let to = time_arg("to", to)?;
    for e in store.enforcement_log(from, to).await? {
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

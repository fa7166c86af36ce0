//! `GET /metrics`: the Prometheus text format (version 0.0.4), rendered here from the figures
//! the parts already keep (no global recorder, no second listener): live calls per trunk from
//! the registry, attempts by outcome from the CDR sink, the CDR queue, the steps in force and
//! the monitor's figures, the recordings open. A carrier token limited to trunks sees only the
//! series of its trunks (and the gateway-wide ones).

use std::collections::BTreeMap;
use std::fmt::Write;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::Extension;

use super::auth::Principal;
use super::error::ErrorBody;
use super::ApiState;
use crate::monitor::service::LiveCalls;

/// The content type of the text format.
pub const CONTENT_TYPE_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

#[utoipa::path(
    get,
    path = "/metrics",
    tag = "carrier",
    description = "Prometheus text format. Series: trunkguard_active_calls{trunk}, \
                   trunkguard_call_attempts_total{trunk,disposition,reason}, \
                   trunkguard_calls_admitted_total{trunk}, trunkguard_calls_refused_total{trunk,reason}, \
                   trunkguard_cdr_queue_depth, trunkguard_cdrs_written_total, \
                   trunkguard_cdr_overflowed_total, trunkguard_enforcement_in_force{trunk,kind,step}, \
                   trunkguard_concurrency_drift, trunkguard_monitor_cdrs_seen_total, \
                   trunkguard_monitor_anomalies_total, trunkguard_monitor_unsaved, \
                   trunkguard_recordings_active. Roles: carrier (its trunks' series only), admin.",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The metrics", content_type = "text/plain; version=0.0.4", body = String),
        (status = 401, description = "Missing, unknown or revoked token", body = ErrorBody),
        (status = 403, description = "Not a carrier or admin token", body = ErrorBody),
    )
)]
pub(crate) async fn metrics(
    State(state): State<ApiState>,
    Extension(who): Extension<Principal>,
) -> impl IntoResponse {
    let text = render(&state, &who).await;
    ([(CONTENT_TYPE, CONTENT_TYPE_TEXT)], text)
}

struct Out<'a> {
    text: String,
    who: &'a Principal,
}

impl Out<'_> {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.text, "# HELP {name} {help}");
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
    }

    /// One sample; skipped when it names a trunk the caller may not see.
    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        if let Some((_, trunk)) = labels.iter().find(|(k, _)| *k == "trunk") {
            if !self.who.sees_trunk(trunk) {
                return;
            }
        }
        self.text.push_str(name);
        if !labels.is_empty() {
            self.text.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.text.push(',');
                }
                let _ = write!(self.text, "{k}=\"{}\"", escape(v));
            }
            self.text.push('}');
        }
        let _ = writeln!(self.text, " {value}");
    }
}

/// A label value as the text format wants it.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

async fn render(state: &ApiState, who: &Principal) -> String {
    let deps = state.deps();
    let mut out = Out {
        text: String::new(),
        who,
    };

    out.family(
        "trunkguard_active_calls",
        "gauge",
        "Calls in progress (ringing or answered) per trunk.",
    );
    let live: BTreeMap<String, u32> = deps.registry.calls_per_trunk().into_iter().collect();
    for (trunk, n) in &live {
        out.sample("trunkguard_active_calls", &[("trunk", trunk)], n);
    }

    let outcomes = deps.cdrs.outcomes();
    out.family(
        "trunkguard_call_attempts_total",
        "counter",
        "Finished call attempts since start by trunk, disposition and refusal reason.",
    );
    let mut admitted: BTreeMap<&str, u64> = BTreeMap::new();
    let mut refused: BTreeMap<(&str, &str), u64> = BTreeMap::new();
    for (k, n) in &outcomes {
        out.sample(
            "trunkguard_call_attempts_total",
            &[
                ("trunk", &k.trunk),
                ("disposition", k.disposition),
                ("reason", &k.reason),
            ],
            n,
        );
        if k.disposition == "refused" {
            *refused.entry((&k.trunk, &k.reason)).or_insert(0) += n;
        } else {
            *admitted.entry(&k.trunk).or_insert(0) += n;
        }
    }
    out.family(
        "trunkguard_calls_admitted_total",
        "counter",
        "Call attempts admitted by the gateway's policy (finished), per trunk.",
    );
    for (trunk, n) in &admitted {
        out.sample("trunkguard_calls_admitted_total", &[("trunk", trunk)], n);
    }
    out.family(
        "trunkguard_calls_refused_total",
        "counter",
        "Call attempts refused by the gateway's policy, per trunk and reason.",
    );
    for ((trunk, reason), n) in &refused {
        out.sample(
            "trunkguard_calls_refused_total",
            &[("trunk", trunk), ("reason", reason)],
            n,
        );
    }

    let cdr = deps.cdrs.stats();
    out.family(
        "trunkguard_cdr_queue_depth",
        "gauge",
        "CDRs and journal entries submitted and not yet stored.",
    );
    out.sample("trunkguard_cdr_queue_depth", &[], cdr.queued);
    out.family(
        "trunkguard_cdrs_written_total",
        "counter",
        "Final CDRs stored since start.",
    );
    out.sample("trunkguard_cdrs_written_total", &[], cdr.written);
    out.family(
        "trunkguard_cdr_overflowed_total",
        "counter",
        "Submissions that went to the CDR overflow list (queue full).",
    );
    out.sample("trunkguard_cdr_overflowed_total", &[], cdr.overflowed);

    match deps.monitor.in_force().await {
        Ok(steps) => {
            out.family(
                "trunkguard_enforcement_in_force",
                "gauge",
                "Enforcement steps in force by trunk, subject kind and step.",
            );
            let mut counts: BTreeMap<(String, &'static str, &'static str), u64> = BTreeMap::new();
            for s in &steps {
                *counts
                    .entry((
                        s.subject.trunk().to_string(),
                        s.subject.kind(),
                        s.step.code(),
                    ))
                    .or_insert(0) += 1;
            }
            for ((trunk, kind, step), n) in &counts {
                out.sample(
                    "trunkguard_enforcement_in_force",
                    &[("trunk", trunk), ("kind", kind), ("step", step)],
                    n,
                );
            }
        }
        Err(e) => tracing::warn!(error = %e, "metrics: steps in force unavailable"),
    }

    let f = deps.monitor.figures();
    out.family(
        "trunkguard_concurrency_drift",
        "gauge",
        "Concurrency leases minus live calls at the last reconciliation (0 is healthy).",
    );
    out.sample("trunkguard_concurrency_drift", &[], f.concurrency_drift);
    out.family(
        "trunkguard_monitor_cdrs_seen_total",
        "counter",
        "Stored CDRs the anomaly rules have seen.",
    );
    out.sample("trunkguard_monitor_cdrs_seen_total", &[], f.cdrs_seen);
    out.family(
        "trunkguard_monitor_anomalies_total",
        "counter",
        "Anomalies the rules found since start.",
    );
    out.sample("trunkguard_monitor_anomalies_total", &[], f.anomalies);
    out.family(
        "trunkguard_monitor_unsaved",
        "gauge",
        "Enforcement log writes waiting for the database.",
    );
    out.sample("trunkguard_monitor_unsaved", &[], f.unsaved);

    out.family(
        "trunkguard_recordings_active",
        "gauge",
        "Recordings open now.",
    );
    out.sample(
        "trunkguard_recordings_active",
        &[],
        deps.recordings.active_calls(),
    );
    out.text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Role;

    #[test]
    fn samples_escape_and_filter_by_trunk() {
        let who = Principal {
            name: "c".into(),
            role: Role::Carrier,
            trunks: vec!["a".into()],
        };
        let mut out = Out {
            text: String::new(),
            who: &who,
        };
        out.sample("m", &[("trunk", "a"), ("reason", "x\"y\\z\n")], 1);
        out.sample("m", &[("trunk", "b")], 2);
        out.sample("g", &[], 3);
        assert_eq!(
            out.text,
            "m{trunk=\"a\",reason=\"x\\\"y\\\\z\\n\"} 1\ng 3\n"
        );
    }
}

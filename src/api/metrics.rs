//! `GET /metrics`: the Prometheus text format (version 0.0.4), rendered here from the figures
//! the parts keep where they are counted (no global recorder, no second listener): live calls
//! per trunk from the registry, call attempts as INVITEs arrive (`b2bua::attempts`), finished
//! attempts by outcome from the CDR sink, SIP responses from the transport (`sip::stats`), RTP
//! relayed, dropped and lost from the relay (`media::counters`), recordings from the recording
//! pool (`recording::counters`), the CDR queue, the steps in force and the monitor's figures.
//! A carrier token limited to trunks sees only the series of its trunks (and the gateway-wide
//! ones).

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::Extension;

use super::auth::Principal;
use super::error::ErrorBody;
use super::exposition::Exposition;
use super::host_udp::{self, HostUdp};
use super::ApiState;
use crate::b2bua::capacity::CallCapacity;
use crate::b2bua::CallAttempts;
use crate::media::{MediaCounters, MediaTotals};
use crate::model::Side;
use crate::model::{Direction, Disposition};
use crate::monitor::cdr_writer::CdrStats;
use crate::monitor::outcomes::OutcomeKey;
use crate::monitor::service::{LiveCalls, MonitorFigures};
use crate::recording::RecordingTotals;
use crate::sip::flood::FloodGuard;
use crate::sip::stats::{Flow, SipStats, CLASSES};

#[cfg(test)]
#[path = "metrics_tests.rs"]
mod tests;

/// The content type of the text format.
pub const CONTENT_TYPE_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The counters the parts keep for `/metrics` (besides those reached through the other deps).
#[derive(Clone, Default)]
pub struct ApiCounters {
    pub attempts: Arc<CallAttempts>,
    pub sip: Arc<SipStats>,
    pub media: Arc<MediaCounters>,
    pub flood: Arc<FloodGuard>,
    /// The calls the descriptor budget allows (`None`: no budget, the families are left out).
    pub capacity: Option<CallCapacity>,
    /// How long admissions take.
    pub admission_times: Arc<crate::b2bua::AdmissionTimes>,
    /// The SIP queue's delay and the INVITEs refused for it.
    pub overload: Arc<crate::b2bua::Overload>,
}

#[utoipa::path(
    get,
    path = "/metrics",
    tag = "carrier",
    description = "Prometheus text format 0.0.4. Calls: trunkguard_active_calls{trunk}, \
                   trunkguard_calls_total{trunk,direction} (INVITEs as they arrive: rate() gives \
                   calls per second), trunkguard_calls_per_second (last 60 s), \
                   trunkguard_call_attempts_total{trunk,disposition,reason} (finished), \
                   trunkguard_calls_admitted_total{trunk}, trunkguard_calls_refused_total{trunk,reason}, \
                   trunkguard_call_capacity_descriptors, trunkguard_open_files_limit, \
                   trunkguard_admission_duration_seconds (histogram), \
                   trunkguard_sip_queue_delay_max_seconds (longest wait of a SIP datagram in the \
                   socket's queue since the previous scrape), trunkguard_sip_queue_delay_limit_seconds, \
                   trunkguard_sip_late_messages_total, trunkguard_overload_refusals_total, \
                   trunkguard_trunk_registered{trunk}, \
                   trunkguard_trunk_registration_failures_total{trunk} (register = true). \
                   SIP: trunkguard_sip_responses_total{side,direction,class}, \
                   trunkguard_flood_bans_total, trunkguard_flood_dropped_total, \
                   trunkguard_flood_banned_sources. Media: \
                   trunkguard_rtp_packets_total{direction}, trunkguard_rtp_bytes_total{direction}, \
                   trunkguard_rtcp_packets_total{direction}, trunkguard_rtcp_bytes_total{direction}, \
                   trunkguard_rtp_not_rtp_packets_total{direction}, \
                   trunkguard_media_dropped_packets_total{kind,reason}, \
                   trunkguard_rtp_lost_packets_total{direction}, \
                   trunkguard_host_udp_no_port_datagrams_total, \
                   trunkguard_host_udp_receive_buffer_errors_total (host-wide kernel counters). \
                   Recordings: \
                   trunkguard_recordings_active, trunkguard_recordings_started_total, \
                   trunkguard_recordings_closed_total{status}, trunkguard_recordings_failed_total{reason}, \
                   trunkguard_recordings_written_bytes_total, \
                   trunkguard_recordings_failed_in_call_total{on_failure}, \
                   trunkguard_recording_disk_usable, trunkguard_recording_disk_free_bytes. \
                   CDRs and monitor: \
                   trunkguard_cdr_queue_depth, trunkguard_cdrs_written_total, \
                   trunkguard_cdr_overflowed_total, trunkguard_cdr_spool_entries, \
                   trunkguard_cdr_spooled_total, trunkguard_cdr_replayed_total, \
                   trunkguard_enforcement_in_force{trunk,kind,step}, \
                   trunkguard_concurrency_drift, trunkguard_monitor_cdrs_seen_total, \
                   trunkguard_monitor_anomalies_total, trunkguard_monitor_unsaved. \
                   Cluster (a node with [cluster]): trunkguard_cluster_shared_state_up{node}, \
                   trunkguard_cluster_live_nodes, trunkguard_cluster_leases_held, \
                   trunkguard_cluster_admissions_total{answer}, \
                   trunkguard_cluster_shared_state_down_total, trunkguard_cluster_redis_errors_total, \
                   trunkguard_cluster_releases_total, trunkguard_cluster_drift_repaired_total{change}, \
                   trunkguard_cluster_nodes_reclaimed_total, trunkguard_cluster_leases_reclaimed_total. \
                   Roles: carrier (its trunks' series only), admin.",
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
    let figures = gather(&state).await;
    let visible = |trunk: &str| who.sees_trunk(trunk);
    let text = render(&figures, &visible);
    ([(CONTENT_TYPE, CONTENT_TYPE_TEXT)], text)
}

/// Everything `/metrics` shows, read at one moment.
#[derive(Debug, Default)]
struct Figures {
    live: BTreeMap<String, u32>,
    attempts: Vec<(String, Direction, u64)>,
    calls_per_second: f64,
    outcomes: Vec<(OutcomeKey, u64)>,
    /// `(side, flow, class 1–6, count)`.
    sip: Vec<(Side, Flow, usize, u64)>,
    /// Flood guard: bans since start, messages dropped, sources banned now.
    flood: (u64, u64, usize),
    media: MediaTotals,
    /// None where the kernel's counters cannot be read (the family is then left out).
    host_udp: Option<HostUdp>,
    recordings_active: usize,
    recordings: RecordingTotals,
    /// The disk watcher's verdict, and the free bytes it last saw.
    recording_disk: (bool, Option<u64>),
    capacity: Option<CallCapacity>,
    cdr: CdrStats,
    /// Steps in force counted by (trunk, subject kind, step); `None` when the monitor did not
    /// answer (the family is then left out rather than shown empty).
    in_force: Option<BTreeMap<(String, &'static str, &'static str), u64>>,
    monitor: MonitorFigures,
    /// A cluster node's shared admission state (`[cluster]`).
    cluster: Option<crate::cluster::SharedAdmission>,
    admission: crate::b2bua::admission_times::AdmissionHistogram,
    overload: crate::b2bua::OverloadFigures,
    /// The trunks that register with their carrier, and how that stands.
    registrations: Vec<(String, crate::policy::RegistrationState)>,
}

async fn gather(state: &ApiState) -> Figures {
    let deps = state.deps();
    let counters = &deps.counters;
    let in_force = match deps.monitor.in_force().await {
        Ok(steps) => {
            let mut counts = BTreeMap::new();
            for s in &steps {
                *counts
                    .entry((
                        s.subject.trunk().to_string(),
                        s.subject.kind().as_str(),
                        s.step.code(),
                    ))
                    .or_insert(0) += 1;
            }
            Some(counts)
        }
        Err(e) => {
            tracing::warn!(error = %e, "metrics: steps in force unavailable");
            None
        }
    };
    let sides = [Side::Inside, Side::Outside];
    let sip = sides
        .iter()
        .flat_map(|&side| Flow::BOTH.map(|flow| (side, flow)))
        .flat_map(|(side, flow)| {
            (1..=CLASSES.len())
                .map(move |class| (side, flow, class, counters.sip.responses(side, flow, class)))
        })
        .collect();
    Figures {
        live: deps.registry.calls_per_trunk().into_iter().collect(),
        attempts: counters.attempts.totals(),
        calls_per_second: counters.attempts.per_second(),
        outcomes: deps.cdrs.outcomes(),
        sip,
        flood: (
            counters.flood.counters.bans.load(Ordering::Relaxed),
            counters.flood.counters.dropped.load(Ordering::Relaxed),
            counters.flood.bans(std::time::Instant::now()).len(),
        ),
        media: counters.media.totals(),
        host_udp: host_udp::read().await,
        recordings_active: deps.recordings.active_calls(),
        recordings: deps.recordings.counters().totals(),
        recording_disk: (
            deps.recordings.disk().verdict().is_ok(),
            deps.recordings.disk().free_bytes(),
        ),
        capacity: counters.capacity,
        cdr: deps.cdrs.stats(),
        in_force,
        monitor: deps.monitor.figures(),
        cluster: deps.cluster.clone(),
        admission: counters.admission_times.read(),
        overload: counters.overload.read(),
        registrations: deps.policy.registrations().all(),
    }
}

fn render(f: &Figures, visible: &dyn Fn(&str) -> bool) -> String {
    let mut out = Exposition::new(visible);
    calls(&mut out, f);
    sip(&mut out, f);
    super::metrics_admission::flood(&mut out, f.flood);
    super::metrics_media::media(&mut out, &f.media);
    if let Some(host) = f.host_udp {
        super::metrics_media::host_udp_drops(&mut out, host);
    }
    super::metrics_media::recordings(
        &mut out,
        &super::metrics_media::RecordingFigures {
            totals: &f.recordings,
            active: f.recordings_active,
            disk: f.recording_disk,
        },
    );
    cdrs_and_monitor(&mut out, f);
    super::metrics_admission::admission_duration(&mut out, &f.admission);
    super::metrics_admission::overload(&mut out, &f.overload);
    super::metrics_admission::registrations(&mut out, &f.registrations, chrono::Utc::now());
    if let Some(shared) = &f.cluster {
        super::metrics_cluster::render(&mut out, shared);
    }
    out.finish()
}

fn calls(out: &mut Exposition<'_>, f: &Figures) {
    out.family(
        "trunkguard_active_calls",
        "gauge",
        "Calls in progress (ringing or answered) per trunk.",
    );
    for (trunk, n) in &f.live {
        out.sample("trunkguard_active_calls", &[("trunk", trunk)], n);
    }

    out.family(
        "trunkguard_calls_total",
        "counter",
        "Call attempts (new INVITEs) as they arrive, per trunk ('' when none matched) and \
         direction; rate() gives calls per second.",
    );
    for (trunk, direction, n) in &f.attempts {
        out.sample(
            "trunkguard_calls_total",
            &[("trunk", trunk), ("direction", direction.as_str())],
            n,
        );
    }
    out.family(
        "trunkguard_calls_per_second",
        "gauge",
        "Call attempts per second over the last 60 seconds, all trunks.",
    );
    out.sample("trunkguard_calls_per_second", &[], f.calls_per_second);

    out.family(
        "trunkguard_call_attempts_total",
        "counter",
        "Finished call attempts since start by trunk, disposition and refusal reason.",
    );
    let mut admitted: BTreeMap<&str, u64> = BTreeMap::new();
    let mut refused: BTreeMap<(&str, &str), u64> = BTreeMap::new();
    for (k, n) in &f.outcomes {
        out.sample(
            "trunkguard_call_attempts_total",
            &[
                ("trunk", &k.trunk),
                ("disposition", k.disposition),
                ("reason", k.reason),
            ],
            n,
        );
        if k.disposition == Disposition::Refused.as_str() {
            *refused.entry((&k.trunk, k.reason)).or_insert(0) += n;
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
    if let Some(c) = f.capacity {
        call_capacity(out, c);
    }
}

/// The descriptor budget, computed at start: calls beyond it are refused `descriptor_limit`.
fn call_capacity(out: &mut Exposition<'_>, c: CallCapacity) {
    out.family(
        "trunkguard_call_capacity_descriptors",
        "gauge",
        "Calls the open-file limit allows at once (limit less a reserve, over the descriptors \
         a call holds); more are refused descriptor_limit.",
    );
    if c.calls == usize::MAX {
        out.sample("trunkguard_call_capacity_descriptors", &[], "+Inf");
    } else {
        out.sample("trunkguard_call_capacity_descriptors", &[], c.calls);
    }
    out.family(
        "trunkguard_open_files_limit",
        "gauge",
        "The soft RLIMIT_NOFILE in force (raised to the hard limit at start).",
    );
    match c.open_files {
        Some(n) => out.sample("trunkguard_open_files_limit", &[], n),
        None => out.sample("trunkguard_open_files_limit", &[], "+Inf"),
    }
}

fn sip(out: &mut Exposition<'_>, f: &Figures) {
    out.family(
        "trunkguard_sip_responses_total",
        "counter",
        "SIP responses that crossed an interface (inside: PBX, outside: carrier), sent or \
         received, by class; retransmissions included.",
    );
    for (side, flow, class, n) in &f.sip {
        out.sample(
            "trunkguard_sip_responses_total",
            &[
                ("side", side.as_str()),
                ("direction", flow.as_str()),
                ("class", CLASSES[class - 1]),
            ],
            n,
        );
    }
}

fn cdrs_and_monitor(out: &mut Exposition<'_>, f: &Figures) {
    out.family(
        "trunkguard_cdr_queue_depth",
        "gauge",
        "CDRs and journal entries submitted and not yet stored.",
    );
    out.sample("trunkguard_cdr_queue_depth", &[], f.cdr.queued);
    out.family(
        "trunkguard_cdrs_written_total",
        "counter",
        "Final CDRs stored since start.",
    );
    out.sample("trunkguard_cdrs_written_total", &[], f.cdr.written);
    out.family(
        "trunkguard_cdr_transactions_total",
        "counter",
        "Database transactions the CDR writer committed (each a batch of CDRs and journal entries).",
    );
    out.sample("trunkguard_cdr_transactions_total", &[], f.cdr.transactions);
    out.family(
        "trunkguard_cdr_overflowed_total",
        "counter",
        "Submissions that went to the CDR overflow list (queue full).",
    );
    out.sample("trunkguard_cdr_overflowed_total", &[], f.cdr.overflowed);
    out.family(
        "trunkguard_cdr_spool_entries",
        "gauge",
        "CDRs and journal entries in the on-disk spool, waiting for the database.",
    );
    out.sample("trunkguard_cdr_spool_entries", &[], f.cdr.spooled);
    out.family(
        "trunkguard_cdr_spooled_total",
        "counter",
        "CDRs and journal entries written to the spool since start (the database refused them).",
    );
    out.sample("trunkguard_cdr_spooled_total", &[], f.cdr.spooled_total);
    out.family(
        "trunkguard_cdr_replayed_total",
        "counter",
        "CDRs and journal entries stored from the spool since start.",
    );
    out.sample("trunkguard_cdr_replayed_total", &[], f.cdr.replayed_total);

    if let Some(in_force) = &f.in_force {
        out.family(
            "trunkguard_enforcement_in_force",
            "gauge",
            "Enforcement steps in force by trunk, subject kind and step.",
        );
        for ((trunk, kind, step), n) in in_force {
            out.sample(
                "trunkguard_enforcement_in_force",
                &[("trunk", trunk), ("kind", kind), ("step", step)],
                n,
            );
        }
    }

    let m = &f.monitor;
    out.family(
        "trunkguard_concurrency_drift",
        "gauge",
        "Concurrency leases minus live calls at the last reconciliation (0 is healthy).",
    );
    out.sample("trunkguard_concurrency_drift", &[], m.concurrency_drift);
    out.family(
        "trunkguard_monitor_cdrs_seen_total",
        "counter",
        "Stored CDRs the anomaly rules have seen.",
    );
    out.sample("trunkguard_monitor_cdrs_seen_total", &[], m.cdrs_seen);
    out.family(
        "trunkguard_monitor_anomalies_total",
        "counter",
        "Anomalies the rules found since start.",
    );
    out.sample("trunkguard_monitor_anomalies_total", &[], m.anomalies);
    out.family(
        "trunkguard_monitor_unsaved",
        "gauge",
        "Enforcement log writes waiting for the database.",
    );
    out.sample("trunkguard_monitor_unsaved", &[], m.unsaved);
}

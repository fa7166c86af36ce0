//! The `/metrics` families of what happens before a call is admitted: the flood guard's bans
//! and drops, how long admission takes (`trunkguard_admission_duration_seconds`, in memory
//! on one node, one Redis script on a cluster node), overload control's view of the SIP
//! queue, and the trunks' registrations with their carriers (outbound calls wait for them).

use super::exposition::Exposition;
use crate::b2bua::admission_times::AdmissionHistogram;
use crate::b2bua::OverloadFigures;

pub(super) fn admission_duration(out: &mut Exposition<'_>, h: &AdmissionHistogram) {
    let name = "trunkguard_admission_duration_seconds";
    out.family(
        name,
        "histogram",
        "Time from a new INVITE's trunk found to the admission's answer (memory on one node, \
         the shared state on a cluster node).",
    );
    let bucket = format!("{name}_bucket");
    for (bound, n) in &h.cumulative {
        let le = if bound.is_infinite() {
            "+Inf".to_string()
        } else {
            bound.to_string()
        };
        out.sample(&bucket, &[("le", &le)], n);
    }
    out.sample(&format!("{name}_sum"), &[], h.sum_secs);
    out.sample(&format!("{name}_count"), &[], h.count);
}

pub(super) fn flood(out: &mut Exposition<'_>, (bans, dropped, banned_now): (u64, u64, usize)) {
    out.family(
        "trunkguard_flood_bans_total",
        "counter",
        "Sources banned for sending more requests than their budget ([sip.flood]).",
    );
    out.sample("trunkguard_flood_bans_total", &[], bans);
    out.family(
        "trunkguard_flood_dropped_total",
        "counter",
        "Messages from banned sources dropped unparsed.",
    );
    out.sample("trunkguard_flood_dropped_total", &[], dropped);
    out.family(
        "trunkguard_flood_banned_sources",
        "gauge",
        "Sources banned now.",
    );
    out.sample("trunkguard_flood_banned_sources", &[], banned_now);
}

pub(super) fn overload(out: &mut Exposition<'_>, o: &OverloadFigures) {
    out.family(
        "trunkguard_sip_queue_delay_max_seconds",
        "gauge",
        "Longest time a SIP datagram waited in the kernel's socket queue before the gateway \
         read it, since the previous scrape.",
    );
    out.sample(
        "trunkguard_sip_queue_delay_max_seconds",
        &[],
        o.worst_queued.as_secs_f64(),
    );
    out.family(
        "trunkguard_sip_queue_delay_limit_seconds",
        "gauge",
        "New INVITEs that waited longer are refused 503 overload ([sip] max_queue_delay_ms; \
         0: off).",
    );
    let limit = o.max_queued.map_or(0.0, |d| d.as_secs_f64());
    out.sample("trunkguard_sip_queue_delay_limit_seconds", &[], limit);
    out.family(
        "trunkguard_sip_late_messages_total",
        "counter",
        "SIP messages that waited in the socket's queue longer than the limit.",
    );
    out.sample("trunkguard_sip_late_messages_total", &[], o.late_messages);
    out.family(
        "trunkguard_overload_refusals_total",
        "counter",
        "New INVITEs refused 503 overload because the SIP queue was late.",
    );
    out.sample("trunkguard_overload_refusals_total", &[], o.refused);
    out.family(
        "trunkguard_overload_admit_limit_per_second",
        "gauge",
        "New calls per second admitted at most while the SIP queue stands late \
         ([sip] target_queue_delay_ms); 0: no limit now.",
    );
    let limit = o.admit_limit.unwrap_or(0.0);
    out.sample("trunkguard_overload_admit_limit_per_second", &[], limit);
    out.family(
        "trunkguard_overload_refusals_repeated_total",
        "counter",
        "Overload refusals sent again to a retransmitted INVITE (no new attempt).",
    );
    out.sample(
        "trunkguard_overload_refusals_repeated_total",
        &[],
        o.repeated,
    );
}

/// `trunkguard_trunk_registered{trunk}` (1 while the registrar's grant runs, 0 otherwise) and
/// the failed REGISTER attempts, for the trunks with `register = true`.
pub(super) fn registrations(
    out: &mut Exposition<'_>,
    all: &[(String, crate::policy::RegistrationState)],
    now: chrono::DateTime<chrono::Utc>,
) {
    out.family(
        "trunkguard_trunk_registered",
        "gauge",
        "1 while the trunk holds a registration its carrier granted (register = true), 0 \
         otherwise: its outbound calls are then refused trunk_not_registered.",
    );
    for (trunk, s) in all {
        let up = u8::from(s.registered(now));
        out.sample("trunkguard_trunk_registered", &[("trunk", trunk)], up);
    }
    out.family(
        "trunkguard_trunk_registration_failures_total",
        "counter",
        "REGISTER attempts that failed (no answer, refused, credentials refused), per trunk.",
    );
    for (trunk, s) in all {
        out.sample(
            "trunkguard_trunk_registration_failures_total",
            &[("trunk", trunk)],
            s.failures,
        );
    }
}

//! The `/metrics` families of the media and the recordings: RTP relayed, dropped and lost
//! (`media::counters`), the host's UDP drops (`host_udp`), recordings open, closed by status,
//! failed by reason and the recordings folder's health (`recording::counters`).

use super::exposition::Exposition;
use super::host_udp::HostUdp;
use crate::media::counters::Flow as MediaFlow;
use crate::media::{DropReason, Leg, MediaTotals};
use crate::recording::RecordingTotals;

/// What the recording families show, read at one moment.
pub(super) struct RecordingFigures<'a> {
    pub totals: &'a RecordingTotals,
    pub active: usize,
    /// The folder usable, and its free bytes when known.
    pub disk: (bool, Option<u64>),
}

pub(super) fn media(out: &mut Exposition<'_>, m: &MediaTotals) {
    let flows = Leg::BOTH.map(|from| MediaFlow { from });
    type PerFlow = fn(&MediaTotals, Leg) -> u64;
    let per_flow: [(&str, &str, PerFlow); 5] = [
        (
            "trunkguard_rtp_packets_total",
            "RTP-socket datagrams relayed, by direction.",
            MediaTotals::rtp_packets,
        ),
        (
            "trunkguard_rtp_bytes_total",
            "Bytes of RTP-socket datagrams relayed (UDP payload), by direction.",
            MediaTotals::rtp_bytes,
        ),
        (
            "trunkguard_rtcp_packets_total",
            "RTCP datagrams relayed, by direction.",
            MediaTotals::rtcp_packets,
        ),
        (
            "trunkguard_rtcp_bytes_total",
            "Bytes of RTCP datagrams relayed (UDP payload), by direction.",
            MediaTotals::rtcp_bytes,
        ),
        (
            "trunkguard_rtp_not_rtp_packets_total",
            "RTCP datagrams multiplexed on RTP sockets (RFC 5761), relayed and not measured, \
             by direction.",
            MediaTotals::not_rtp,
        ),
    ];
    for (name, help, get) in per_flow {
        out.family(name, "counter", help);
        for flow in flows {
            out.sample(name, &[("direction", flow.as_str())], get(m, flow.from));
        }
    }
    out.family(
        "trunkguard_media_dropped_packets_total",
        "counter",
        "Media datagrams received and not relayed, by socket kind and reason.",
    );
    for (kind, rtcp) in [("rtp", false), ("rtcp", true)] {
        for reason in DropReason::ALL {
            out.sample(
                "trunkguard_media_dropped_packets_total",
                &[("kind", kind), ("reason", reason.as_str())],
                m.dropped(rtcp, reason),
            );
        }
    }
    out.family(
        "trunkguard_rtp_lost_packets_total",
        "counter",
        "RTP packets lost before reaching the gateway (sequence-number gaps), by direction; \
         added when a call's media ends.",
    );
    for flow in flows {
        out.sample(
            "trunkguard_rtp_lost_packets_total",
            &[("direction", flow.as_str())],
            m.lost(flow.from),
        );
    }
}

/// Drops the gateway cannot see itself: datagrams to ports no call holds (the kernel answers
/// them with ICMP, rate-limited) and datagrams a full socket buffer had no room for.
pub(super) fn host_udp_drops(out: &mut Exposition<'_>, host: HostUdp) {
    let families = [
        (
            "trunkguard_host_udp_no_port_datagrams_total",
            "UDP datagrams to a port nothing listens on (e.g. a media port no call holds), \
             dropped by the kernel; host-wide (/proc/net/snmp NoPorts).",
            host.no_ports,
        ),
        (
            "trunkguard_host_udp_receive_buffer_errors_total",
            "UDP datagrams dropped by the kernel because the socket's buffer was full (e.g. a \
             flooded media port); host-wide (/proc/net/snmp RcvbufErrors).",
            host.receive_buffer_errors,
        ),
    ];
    for (name, help, value) in families {
        out.family(name, "counter", help);
        out.sample(name, &[], value);
    }
}

pub(super) fn recordings(out: &mut Exposition<'_>, f: &RecordingFigures<'_>) {
    let r = f.totals;
    out.family(
        "trunkguard_recordings_active",
        "gauge",
        "Recordings open now.",
    );
    out.sample("trunkguard_recordings_active", &[], f.active);
    out.family(
        "trunkguard_recordings_started_total",
        "counter",
        "Recording files opened.",
    );
    out.sample("trunkguard_recordings_started_total", &[], r.started);
    out.family(
        "trunkguard_recordings_closed_total",
        "counter",
        "Recordings closed, by the status their CDR gets: complete (every packet in place, \
         audio from both legs), one_way (packets from one leg only), no_media (no packet at \
         all) or incomplete.",
    );
    for (status, n) in [
        ("complete", r.complete),
        ("one_way", r.one_way),
        ("no_media", r.no_media),
    ] {
        out.sample(
            "trunkguard_recordings_closed_total",
            &[("status", status)],
            n,
        );
    }
    out.sample(
        "trunkguard_recordings_closed_total",
        &[("status", "incomplete")],
        r.incomplete,
    );
    out.family(
        "trunkguard_recordings_failed_total",
        "counter",
        "Recording failures by reason code: to start (the folder found unusable at admission, \
         the file at the answer), to write, to close.",
    );
    for (reason, n) in &r.failed {
        out.sample(
            "trunkguard_recordings_failed_total",
            &[("reason", reason)],
            n,
        );
    }
    out.family(
        "trunkguard_recordings_written_bytes_total",
        "counter",
        "Size of the recording files closed, in bytes.",
    );
    out.sample("trunkguard_recordings_written_bytes_total", &[], r.bytes);
    out.family(
        "trunkguard_recordings_failed_in_call_total",
        "counter",
        "Calls whose recording failed after recorded media started (file at the answer, a \
         write mid-call), by what the call did ([recording] on_failure): continue, hangup.",
    );
    for (action, n) in ["continue", "hangup"].iter().zip(r.failed_in_call) {
        out.sample(
            "trunkguard_recordings_failed_in_call_total",
            &[("on_failure", action)],
            n,
        );
    }
    let (usable, free) = f.disk;
    out.family(
        "trunkguard_recording_disk_usable",
        "gauge",
        "1 when the recordings folder's health watcher finds it usable (writable, above \
         min_free_mb), else 0.",
    );
    out.sample("trunkguard_recording_disk_usable", &[], u8::from(usable));
    if let Some(free) = free {
        out.family(
            "trunkguard_recording_disk_free_bytes",
            "gauge",
            "Free bytes on the recordings folder's file system at the watcher's last check.",
        );
        out.sample("trunkguard_recording_disk_free_bytes", &[], free);
    }
}

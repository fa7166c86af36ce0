//! The rendering of `/metrics`: valid exposition text whatever the figures, every series the
//! parts count, and a limited carrier's view.

use super::*;
use crate::api::exposition::{parse, sum};
use crate::media::counters::{Fate, SHARDS};
use crate::media::{DropReason, Leg};
use crate::model::sample_cdr;
use crate::model::RefusalReason;
use crate::monitor::outcomes::CallOutcomes;

/// Figures with something in every family, fed through the parts' own counters.
fn busy_figures() -> Figures {
    let attempts = CallAttempts::default();
    attempts.count(Some("t1"), Direction::Outbound);
    attempts.count(Some("t1"), Direction::Outbound);
    attempts.count(Some("t\"2\\"), Direction::Inbound);
    attempts.count(None, Direction::Inbound);

    let sip = SipStats::default();
    sip.count_sent(Side::Inside, b"SIP/2.0 200 OK\r\n\r\n");
    sip.count_response(Side::Outside, Flow::Received, 404);

    let media = MediaCounters::default();
    for thread in 0..SHARDS {
        media.count(
            thread,
            crate::media::Kind::Rtp,
            Leg::Inside,
            Fate::Relayed {
                bytes: 172,
                rtp: true,
            },
        );
    }
    media.count(
        0,
        crate::media::Kind::Rtp,
        Leg::Outside,
        Fate::Dropped(DropReason::StraySource),
    );
    media.count_lost(1, Leg::Outside, 2);

    let outcomes = CallOutcomes::default();
    outcomes.count(&sample_cdr("a"));
    let mut refused = sample_cdr("b");
    refused.outcome.disposition = crate::model::Disposition::Refused;
    refused.outcome.refusal_reason = Some(RefusalReason::TrunkSuspended);
    outcomes.count(&refused);

    let mut in_force = BTreeMap::new();
    in_force.insert(("t1".to_string(), "trunk", "suspend_trunk"), 1);
    Figures {
        live: [("t1".to_string(), 2), ("t\"2\\".to_string(), 1)].into(),
        attempts: attempts.totals(),
        calls_per_second: attempts.per_second(),
        outcomes: outcomes.snapshot(),
        sip: vec![
            (
                Side::Inside,
                Flow::Sent,
                2,
                sip.responses(Side::Inside, Flow::Sent, 2),
            ),
            (
                Side::Outside,
                Flow::Received,
                4,
                sip.responses(Side::Outside, Flow::Received, 4),
            ),
        ],
        flood: (2, 57, 1),
        media: media.totals(),
        host_udp: Some(HostUdp {
            no_ports: 41,
            receive_buffer_errors: 7,
        }),
        recordings_active: 1,
        recordings: RecordingTotals {
            started: 3,
            complete: 1,
            one_way: 2,
            no_media: 1,
            incomplete: 1,
            bytes: 64_044,
            failed: vec![("recording_disk_full".into(), 1)],
            failed_in_call: [2, 1],
        },
        recording_disk: (true, Some(1 << 30)),
        capacity: Some(crate::b2bua::capacity::CallCapacity {
            open_files: Some(20_000),
            reserve: 2_716,
            per_call: 6,
            calls: 2_880,
        }),
        cdr: CdrStats::default(),
        in_force: Some(in_force),
        monitor: MonitorFigures::default(),
        cluster: None,
        admission: {
            let times = crate::b2bua::AdmissionTimes::default();
            times.record(std::time::Duration::from_micros(40));
            times.record(std::time::Duration::from_millis(2));
            times.read()
        },
        overload: {
            let o = crate::b2bua::Overload::new(Some(std::time::Duration::from_millis(200)), None);
            o.observe(
                crate::model::Side::Inside,
                std::time::Duration::from_millis(350),
            );
            o.count_refusal();
            o.read()
        },
        registrations: vec![
            (
                "t1".to_string(),
                crate::policy::RegistrationState {
                    registered_until: Some(chrono::Utc::now() + chrono::Duration::hours(1)),
                    last_status: Some(200),
                    ..Default::default()
                },
            ),
            (
                "t2".to_string(),
                crate::policy::RegistrationState {
                    // A grant that ran out: not registered any more.
                    registered_until: Some(chrono::Utc::now() - chrono::Duration::seconds(1)),
                    last_status: Some(403),
                    failures: 3,
                    ..Default::default()
                },
            ),
        ],
    }
}

/// A cluster node whose shared state cannot be reached (nothing listens on the port): its
/// families say so, under its node id, and stay valid exposition text.
#[tokio::test]
async fn a_cluster_node_shows_its_shared_state() {
    use crate::cluster::{ClusterOptions, SharedAdmission};
    let shared = SharedAdmission::new(ClusterOptions {
        node_id: "gw-a".into(),
        redis_url: "redis://127.0.0.1:1/0".into(),
        heartbeat: std::time::Duration::from_secs(1),
        node_timeout: std::time::Duration::from_secs(5),
        on_down: crate::config::OnSharedStateDown::Local,
        key_prefix: "tg-metrics-test".into(),
        op_timeout: std::time::Duration::from_millis(200),
        reconcile_every: std::time::Duration::from_secs(60),
    })
    .unwrap();
    assert!(shared.join().await.is_err(), "nothing listens on port 1");
    let mut figures = busy_figures();
    let single = render(&figures, &|_: &str| true);
    assert!(
        !single.contains("trunkguard_cluster_"),
        "a single node has no cluster families"
    );
    figures.cluster = Some(shared);
    let text = render(&figures, &|_: &str| true);
    let samples = parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let node = [("node", "gw-a")];
    assert_eq!(
        sum(&samples, "trunkguard_cluster_shared_state_up", &node),
        0.0
    );
    assert_eq!(sum(&samples, "trunkguard_cluster_live_nodes", &node), 1.0);
    assert_eq!(sum(&samples, "trunkguard_cluster_leases_held", &node), 0.0);
    for answer in ["granted", "callee", "rate", "trunk", "number", "down"] {
        let labels = [("node", "gw-a"), ("answer", answer)];
        assert_eq!(
            sum(&samples, "trunkguard_cluster_admissions_total", &labels),
            0.0
        );
    }
    assert!(
        text.contains("# TYPE trunkguard_cluster_drift_repaired_total counter"),
        "{text}"
    );
}

#[test]
fn every_line_is_valid_exposition_text() {
    let all = |_: &str| true;
    let text = render(&busy_figures(), &all);
    let samples = parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    // Every family has its HELP and TYPE, and the figures come out as counted.
    let helps = text.lines().filter(|l| l.starts_with("# HELP ")).count();
    let types = text.lines().filter(|l| l.starts_with("# TYPE ")).count();
    assert_eq!(helps, types);
    assert!(types >= 25, "{types} families");
    let bucket = "trunkguard_admission_duration_seconds_bucket";
    assert_eq!(sum(&samples, bucket, &[("le", "0.00005")]), 1.0);
    assert_eq!(sum(&samples, bucket, &[("le", "+Inf")]), 2.0);
    assert_eq!(
        sum(&samples, "trunkguard_admission_duration_seconds_count", &[]),
        2.0
    );
    assert_eq!(
        sum(&samples, "trunkguard_sip_queue_delay_max_seconds", &[]),
        0.35
    );
    assert_eq!(
        sum(&samples, "trunkguard_sip_queue_delay_limit_seconds", &[]),
        0.2
    );
    assert_eq!(
        sum(&samples, "trunkguard_sip_late_messages_total", &[]),
        1.0
    );
    assert_eq!(
        sum(&samples, "trunkguard_overload_refusals_total", &[]),
        1.0
    );
    assert_eq!(
        sum(&samples, "trunkguard_overload_admit_limit_per_second", &[]),
        0.0
    );
    assert_eq!(
        sum(
            &samples,
            "trunkguard_calls_total",
            &[("trunk", "t1"), ("direction", "outbound")]
        ),
        2.0
    );
    assert_eq!(
        sum(&samples, "trunkguard_calls_total", &[("trunk", "t\"2\\")]),
        1.0,
        "a label value with a quote and a backslash reads back"
    );
    assert_eq!(
        sum(&samples, "trunkguard_calls_total", &[("trunk", "")]),
        1.0
    );
    let registered = "trunkguard_trunk_registered";
    assert_eq!(sum(&samples, registered, &[("trunk", "t1")]), 1.0);
    assert_eq!(sum(&samples, registered, &[("trunk", "t2")]), 0.0);
    assert_eq!(
        sum(
            &samples,
            "trunkguard_trunk_registration_failures_total",
            &[("trunk", "t2")]
        ),
        3.0
    );
    let per_second = sum(&samples, "trunkguard_calls_per_second", &[]);
    assert!((per_second - 4.0 / 60.0).abs() < 1e-9, "{per_second}");
    assert_eq!(
        sum(
            &samples,
            "trunkguard_sip_responses_total",
            &[("side", "inside"), ("direction", "sent"), ("class", "2xx")]
        ),
        1.0
    );
    assert_eq!(
        sum(
            &samples,
            "trunkguard_sip_responses_total",
            &[
                ("side", "outside"),
                ("direction", "received"),
                ("class", "4xx")
            ]
        ),
        1.0
    );
    assert_eq!(
        sum(
            &samples,
            "trunkguard_rtp_packets_total",
            &[("direction", "inside_to_outside")]
        ),
        SHARDS as f64,
        "every relay thread's shard is summed"
    );
    assert_eq!(
        sum(
            &samples,
            "trunkguard_rtp_bytes_total",
            &[("direction", "inside_to_outside")]
        ),
        (172 * SHARDS) as f64
    );
    assert_eq!(
        sum(
            &samples,
            "trunkguard_media_dropped_packets_total",
            &[("kind", "rtp"), ("reason", "stray_source")]
        ),
        1.0
    );
    assert_eq!(
        sum(
            &samples,
            "trunkguard_rtp_lost_packets_total",
            &[("direction", "outside_to_inside")]
        ),
        2.0
    );
    assert_eq!(
        sum(
            &samples,
            "trunkguard_calls_refused_total",
            &[("reason", "trunk_suspended")]
        ),
        1.0
    );
    assert_eq!(sum(&samples, "trunkguard_flood_bans_total", &[]), 2.0);
    assert_eq!(sum(&samples, "trunkguard_flood_dropped_total", &[]), 57.0);
    assert_eq!(sum(&samples, "trunkguard_flood_banned_sources", &[]), 1.0);
    assert_eq!(
        sum(&samples, "trunkguard_host_udp_no_port_datagrams_total", &[]),
        41.0
    );
    assert_eq!(
        sum(
            &samples,
            "trunkguard_host_udp_receive_buffer_errors_total",
            &[]
        ),
        7.0
    );
    assert_eq!(
        sum(
            &samples,
            "trunkguard_recordings_failed_total",
            &[("reason", "recording_disk_full")]
        ),
        1.0
    );
    assert_eq!(
        sum(
            &samples,
            "trunkguard_recordings_closed_total",
            &[("status", "complete")]
        ),
        1.0
    );
    assert_eq!(
        sum(
            &samples,
            "trunkguard_recordings_closed_total",
            &[("status", "no_media")]
        ),
        1.0
    );
    assert_eq!(
        sum(&samples, "trunkguard_recordings_written_bytes_total", &[]),
        64_044.0
    );
    assert_eq!(
        sum(
            &samples,
            "trunkguard_enforcement_in_force",
            &[("step", "suspend_trunk")]
        ),
        1.0
    );
    assert_eq!(
        sum(
            &samples,
            "trunkguard_recordings_failed_in_call_total",
            &[("on_failure", "hangup")]
        ),
        1.0
    );
    assert_eq!(sum(&samples, "trunkguard_recording_disk_usable", &[]), 1.0);
    assert_eq!(
        sum(&samples, "trunkguard_recording_disk_free_bytes", &[]),
        (1u64 << 30) as f64
    );
    assert_eq!(
        sum(&samples, "trunkguard_call_capacity_descriptors", &[]),
        2_880.0
    );
    assert_eq!(sum(&samples, "trunkguard_open_files_limit", &[]), 20_000.0);
}

#[test]
fn idle_gateway_is_valid_too() {
    let all = |_: &str| true;
    let text = render(&Figures::default(), &all);
    let samples = parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert!(samples.iter().all(|s| s.value == 0.0), "{text}");
    assert!(
        !text.contains("trunkguard_enforcement_in_force"),
        "no answer from the monitor: the family is left out"
    );
}

#[test]
fn a_limited_carrier_sees_only_its_trunks() {
    let only_t1 = |t: &str| t == "t1";
    let text = render(&busy_figures(), &only_t1);
    let samples = parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert!(samples
        .iter()
        .all(|s| s.label("trunk").is_none_or(|t| t == "t1")));
    assert_eq!(sum(&samples, "trunkguard_active_calls", &[]), 2.0);
    // Gateway-wide series stay.
    assert!(sum(&samples, "trunkguard_rtp_packets_total", &[]) > 0.0);
}

//! Calls: the live calls (admin: list, hang up) and a call's full record (compliance: CDR, media
//! legs, DTMF, recording, the anomalies that name it and the enforcement steps they caused).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::cdrs::CdrView;
use super::error::{ApiError, ErrorBody};
use super::holds::HoldView;
use super::ApiState;
use crate::b2bua::{LiveCall, LiveLegMedia};
use crate::model::{EndReason, PauseEnd, RecordingStatus};
use crate::store::{AnomalyRow, EnforcementEntry};

/// The CDR end reason of a call hung up through the API.
pub const HANGUP_REASON: EndReason = EndReason::OperatorHangup;

/// A live call.
#[derive(Debug, Serialize, ToSchema)]
pub struct LiveCallView {
    pub id: String,
    pub trunk: String,
    /// `outbound` or `inbound`.
    pub direction: String,
    pub caller: Option<String>,
    pub callee: Option<String>,
    pub started_at: DateTime<Utc>,
    pub answered_at: Option<DateTime<Utc>>,
    /// Since the INVITE, in milliseconds.
    pub duration_ms: i64,
    /// Since the answer (0 while ringing).
    pub talk_ms: i64,
    /// The two SIP legs: inside (PBX) and outside (carrier).
    pub legs: Vec<LegView>,
}

/// One SIP leg of a live call.
#[derive(Debug, Serialize, ToSchema)]
pub struct LegView {
    /// `inside` (PBX) or `outside` (carrier).
    pub side: String,
    pub call_id: String,
    /// The leg's media so far; null when the call's media has already closed.
    pub media: Option<LiveMediaView>,
}

/// A leg's media while the call runs: RTP from the leg's peer (in) and relayed to it (out).
#[derive(Debug, Serialize, ToSchema)]
pub struct LiveMediaView {
    pub packets_in: u64,
    pub bytes_in: u64,
    pub packets_out: u64,
    pub bytes_out: u64,
    /// Packets missing from what the peer sent (sequence-number gaps so far).
    pub lost: u64,
    /// RFC 3550 interarrival jitter of what the peer sends, in ms.
    pub jitter_ms: Option<f64>,
    /// The encoding of the RTP the peer sends (`PCMU`…), else the first its SDP offers.
    pub codec: Option<String>,
    /// The peer's media address: where its RTP comes from (latched), else its SDP's.
    pub remote: Option<String>,
    /// Since the peer's last RTP packet, in ms; null before the first.
    pub last_packet_age_ms: Option<u64>,
}

impl From<&LiveLegMedia> for LiveMediaView {
    fn from(m: &LiveLegMedia) -> LiveMediaView {
        LiveMediaView {
            packets_in: m.packets_in,
            bytes_in: m.bytes_in,
            packets_out: m.packets_out,
            bytes_out: m.bytes_out,
            lost: m.lost,
            jitter_ms: finite(m.jitter_ms),
            codec: m.codec.clone(),
            remote: m.remote.map(|a| a.to_string()),
            last_packet_age_ms: m
                .last_packet_age
                .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        }
    }
}

impl LiveCallView {
    /// `media`: the call's figures now, inside leg first.
    fn new(c: LiveCall, media: Option<[LiveLegMedia; 2]>, now: DateTime<Utc>) -> LiveCallView {
        let since = |t: DateTime<Utc>| (now - t).num_milliseconds().max(0);
        let [inside, outside] = match &media {
            Some([i, o]) => [Some(LiveMediaView::from(i)), Some(LiveMediaView::from(o))],
            None => [None, None],
        };
        LiveCallView {
            duration_ms: since(c.started_at),
            talk_ms: c.answered_at.map(since).unwrap_or(0),
            legs: vec![
                LegView {
                    side: "inside".into(),
                    call_id: c.inside_call_id,
                    media: inside,
                },
                LegView {
                    side: "outside".into(),
                    call_id: c.outside_call_id,
                    media: outside,
                },
            ],
            id: c.id,
            trunk: c.trunk,
            direction: c.direction.as_str().to_string(),
            caller: c.caller,
            callee: c.callee,
            started_at: c.started_at,
            answered_at: c.answered_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LiveCalls {
    /// Oldest first.
    pub items: Vec<LiveCallView>,
}

#[utoipa::path(
    get,
    path = "/api/v1/calls/live",
    tag = "admin",
    description = "The calls in progress (ringing or answered), oldest first, each leg with \
                   its media figures so far (RTP packets and bytes in and out, lost, jitter, \
                   codec, the peer's media address, the age of its last packet). Role: admin.",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Live calls", body = LiveCalls),
        (status = 401, description = "Missing, unknown or revoked token", body = ErrorBody),
        (status = 403, description = "Not an admin token", body = ErrorBody),
    )
)]
pub(crate) async fn live_calls(State(state): State<ApiState>) -> Json<LiveCalls> {
    let registry = &state.deps().registry;
    let calls = registry.list();
    // One snapshot per call from its relay thread (answered between two epoll waits), all
    // asked at once so that the listing waits for the slowest, not for their sum.
    let mut snapshots = tokio::task::JoinSet::new();
    for (i, c) in calls.iter().enumerate() {
        if let Some(media) = registry.media_of(&c.id) {
            snapshots.spawn(async move { (i, media.snapshot().await) });
        }
    }
    let mut media = vec![None; calls.len()];
    while let Some(done) = snapshots.join_next().await {
        match done {
            Ok((i, figures)) => media[i] = figures,
            Err(e) => tracing::warn!(error = %e, "live call media snapshot failed"),
        }
    }
    let now = Utc::now();
    let items = calls
        .into_iter()
        .zip(media)
        .map(|(c, m)| LiveCallView::new(c, m, now))
        .collect();
    Json(LiveCalls { items })
}

/// A hang-up order taken.
#[derive(Debug, Serialize, ToSchema)]
pub struct HangupAccepted {
    pub id: String,
    /// The CDR's end reason the call will carry.
    pub end_reason: EndReason,
}

#[utoipa::path(
    post,
    path = "/api/v1/calls/live/{id}/hangup",
    tag = "admin",
    description = "End a live call: both legs get BYE (or CANCEL while ringing); its CDR ends \
                   with `operator_hangup`. The order is taken at once (202); the call ends \
                   within moments. Role: admin.",
    params(("id" = String, Path, description = "The call id (as in the live list)")),
    security(("bearer" = [])),
    responses(
        (status = 202, description = "The call is being ended", body = HangupAccepted),
        (status = 401, description = "Missing, unknown or revoked token", body = ErrorBody),
        (status = 403, description = "Not an admin token", body = ErrorBody),
        (status = 404, description = "No such live call", body = ErrorBody),
    )
)]
pub(crate) async fn hangup(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<HangupAccepted>), ApiError> {
    if !state.deps().registry.hangup(&id, HANGUP_REASON) {
        return Err(ApiError::NotFound(format!("no live call {id}")));
    }
    tracing::info!(call_id = %id, "api: hang-up ordered");
    Ok((
        StatusCode::ACCEPTED,
        Json(HangupAccepted {
            id,
            end_reason: HANGUP_REASON,
        }),
    ))
}

/// Media figures of one leg, at the end of the call.
#[derive(Debug, Serialize, ToSchema)]
pub struct MediaLegView {
    /// `inside` or `outside`.
    pub leg: String,
    pub packets_in: u64,
    pub bytes_in: u64,
    pub packets_out: u64,
    pub bytes_out: u64,
    pub lost: u64,
    /// NaN (no figure) is shown as null.
    pub jitter_ms: Option<f64>,
    pub max_jitter_ms: Option<f64>,
    pub longest_gap_ms: u64,
    pub stray: u64,
    pub mos: Option<f64>,
    pub one_way: bool,
}

/// A DTMF digit.
#[derive(Debug, Serialize, ToSchema)]
pub struct DtmfView {
    pub leg: String,
    pub digit: String,
    pub at: DateTime<Utc>,
    pub duration_ms: u32,
}

/// The recording, as evidence (the file itself: `/api/v1/calls/{id}/recording`; its check:
/// `/api/v1/calls/{id}/recording/verify`).
#[derive(Debug, Serialize, ToSchema)]
pub struct RecordingView {
    /// `complete` (audio from both legs), `one_way` (from one leg only), `no_media` (no audio
    /// at all), `incomplete` (cut short) or `failed`.
    pub status: RecordingStatus,
    /// SHA-256 of the WAV file, hex.
    pub sha256: Option<String>,
    /// A raw RTP capture is kept (the codec could not be decoded).
    pub has_pcap: bool,
    pub pcap_sha256: Option<String>,
    pub duration_ms: i64,
    pub size_bytes: i64,
    pub codec: Option<String>,
    pub overflowed_packets: u64,
    pub note: Option<String>,
    /// When the retention purge deleted the files (the row stays); null while they are kept.
    pub purged_at: Option<DateTime<Utc>>,
    /// PCI pauses, in order: the file holds silence on both channels over each interval.
    pub pauses: Vec<PauseView>,
}

/// An interval during which the recording was paused (PCI).
#[derive(Debug, Serialize, ToSchema)]
pub struct PauseView {
    /// Where the pause starts and ends in the recording, in ms from its first sample.
    pub start_ms: i64,
    pub end_ms: i64,
    /// The API token's name that paused it, or `dtmf` (the trunk's `pause_dtmf`).
    pub paused_by: String,
    /// Who resumed it (a token's name, or `dtmf`); null when it ended otherwise.
    pub resumed_by: Option<String>,
    /// `resumed`, `max_pause` (resumed by itself after `[recording] max_pause_secs`) or
    /// `call_ended`.
    pub ended: PauseEnd,
}

/// An anomaly that names the call as an example.
#[derive(Debug, Serialize, ToSchema)]
pub struct AnomalyView {
    pub id: String,
    pub detected_at: DateTime<Utc>,
    pub rule: String,
    /// `trunk`, `caller_id` or `callee`.
    pub subject_kind: String,
    pub trunk: String,
    pub number: String,
    pub window_secs: i64,
    pub observed: f64,
    pub threshold: f64,
    pub sample: i64,
    pub step: String,
    pub detail: String,
    pub call_ids: Vec<String>,
}

impl From<AnomalyRow> for AnomalyView {
    fn from(a: AnomalyRow) -> AnomalyView {
        AnomalyView {
            id: a.id,
            detected_at: a.detected_at,
            rule: a.rule,
            subject_kind: a.subject.kind,
            trunk: a.subject.trunk,
            number: a.subject.number,
            window_secs: a.window_secs,
            observed: a.observed,
            threshold: a.threshold,
            sample: a.sample,
            step: a.step,
            detail: a.detail,
            call_ids: a.call_ids,
        }
    }
}

/// A row of the enforcement log.
#[derive(Debug, Serialize, ToSchema)]
pub struct EnforcementView {
    pub id: i64,
    pub at: DateTime<Utc>,
    /// `impose` or `lift`.
    pub action: String,
    pub imposition: i64,
    pub subject_kind: String,
    pub trunk: String,
    pub number: String,
    /// `alert`, `throttle`, `suspend_number` or `suspend_trunk`.
    pub step: String,
    pub until: Option<DateTime<Utc>>,
    pub cause: String,
    pub rule: Option<String>,
    pub anomaly_id: Option<String>,
    pub operator: Option<String>,
    pub reason: String,
}

impl From<EnforcementEntry> for EnforcementView {
    fn from(e: EnforcementEntry) -> EnforcementView {
        let x = e.entry;
        EnforcementView {
            id: e.id,
            at: x.at,
            action: x.action,
            imposition: x.imposition,
            subject_kind: x.subject.kind,
            trunk: x.subject.trunk,
            number: x.subject.number,
            step: x.step,
            until: x.until,
            cause: x.cause,
            rule: x.rule,
            anomaly_id: x.anomaly_id,
            operator: x.operator,
            reason: x.reason,
        }
    }
}

/// Everything stored about one call.
#[derive(Debug, Serialize, ToSchema)]
pub struct CallRecord {
    pub cdr: CdrView,
    pub media: Vec<MediaLegView>,
    pub dtmf: Vec<DtmfView>,
    pub recording: Option<RecordingView>,
    /// Anomalies that name this call, oldest first.
    pub anomalies: Vec<AnomalyView>,
    /// Enforcement log rows citing those anomalies.
    pub enforcement: Vec<EnforcementView>,
    /// Legal holds on the call, oldest first (released ones too); one with `active` exempts it
    /// from the retention purge.
    pub holds: Vec<HoldView>,
}

fn finite(x: f64) -> Option<f64> {
    x.is_finite().then_some(x)
}

#[utoipa::path(
    get,
    path = "/api/v1/calls/{id}",
    tag = "compliance",
    description = "A call's full record: its CDR, media figures per leg, DTMF, recording \
                   (status and digest), the anomalies that name it, the enforcement steps \
                   they caused and its legal holds. Role: compliance.",
    params(("id" = String, Path, description = "The call id (the CDR's id)")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The call's record", body = CallRecord),
        (status = 401, description = "Missing, unknown or revoked token", body = ErrorBody),
        (status = 403, description = "Not a compliance token", body = ErrorBody),
        (status = 404, description = "No CDR with this id", body = ErrorBody),
    )
)]
pub(crate) async fn call_record(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<CallRecord>, ApiError> {
    let store = state.store();
    let Some(cdr) = store.get_cdr(&id).await? else {
        return Err(ApiError::NotFound(format!("no call {id}")));
    };
    Ok(Json(record_of(store, cdr).await?))
}

/// A stored call's full record (its page, its evidence package).
pub(crate) async fn record_of(
    store: &crate::store::Store,
    cdr: crate::model::Cdr,
) -> Result<CallRecord, ApiError> {
    let id = cdr.attempt.id.clone();
    let anomalies = store.anomalies_of_call(&id).await?;
    let cited: Vec<String> = anomalies.iter().map(|a| a.id.clone()).collect();
    let enforcement = store.enforcement_citing(&cited).await?;
    let holds = store.holds_of_call(&id).await?;
    let purged_at = match cdr.recording {
        Some(_) => store.recording_purged_at(&id).await?,
        None => None,
    };
    let media = cdr
        .media
        .iter()
        .map(|l| MediaLegView {
            leg: l.leg.clone(),
            packets_in: l.packets_in,
            bytes_in: l.bytes_in,
            packets_out: l.packets_out,
            bytes_out: l.bytes_out,
            lost: l.lost,
            jitter_ms: finite(l.jitter_ms),
            max_jitter_ms: finite(l.max_jitter_ms),
            longest_gap_ms: l.longest_gap_ms,
            stray: l.stray,
            mos: l.mos.and_then(finite),
            one_way: l.one_way,
        })
        .collect();
    let dtmf = cdr
        .dtmf
        .iter()
        .map(|d| DtmfView {
            leg: d.leg.clone(),
            digit: d.digit.clone(),
            at: d.at,
            duration_ms: d.duration_ms,
        })
        .collect();
    let recording = cdr.recording.as_ref().map(|r| RecordingView {
        status: r.status,
        sha256: r.sha256.clone(),
        has_pcap: r.pcap_path.is_some(),
        pcap_sha256: r.pcap_sha256.clone(),
        duration_ms: r.duration_ms,
        size_bytes: r.size_bytes,
        codec: r.codec.clone(),
        overflowed_packets: r.overflowed_packets,
        note: r.note.clone(),
        purged_at,
        pauses: cdr
            .recording_pauses
            .iter()
            .map(|p| PauseView {
                start_ms: p.start_ms,
                end_ms: p.end_ms,
                paused_by: p.paused_by.clone(),
                resumed_by: p.resumed_by.clone(),
                ended: p.ended,
            })
            .collect(),
    });
    Ok(CallRecord {
        cdr: CdrView::from(&cdr),
        media,
        dtmf,
        recording,
        anomalies: anomalies.into_iter().map(AnomalyView::from).collect(),
        enforcement: enforcement.into_iter().map(EnforcementView::from).collect(),
        holds: holds.into_iter().map(HoldView::from).collect(),
    })
}

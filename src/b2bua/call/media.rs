//! A call's anchored media: the relay session, the SDP rewrite on every offer and answer that
//! crosses the call, the media timeout, DTMF, and the figures for the CDR.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::b2bua::live_media::LiveCallMedia;
use crate::config::MediaEncryption;
use crate::media::sdes::{AnswerError, Sdes};
use crate::media::sdp::{self, Exchange, Origin, PayloadInfo, UnusableSdp};
use crate::media::{
    Leg, MediaCounters, MediaError, MediaEvent, MediaSession, PortAllocator, RemoteMedia,
    SessionConfig, SessionStats,
};
use crate::model::Side;
use crate::model::{Cdr, EndReason};
use crate::model::{DtmfEvent, LegQuality};

use super::{Call, Phase};

/// Where the B2BUA anchors media.
#[derive(Debug, Clone)]
pub struct MediaSettings {
    pub ports: Arc<PortAllocator>,
    pub inside_ip: std::net::IpAddr,
    pub outside_ip: std::net::IpAddr,
    pub timeout: Duration,
    /// The gateway's media counters (`/metrics`).
    pub counters: Arc<MediaCounters>,
}

pub(crate) fn leg_of(side: Side) -> Leg {
    match side {
        Side::Inside => Leg::Inside,
        Side::Outside => Leg::Outside,
    }
}

pub(crate) struct CallMedia {
    session: MediaSession,
    events: mpsc::Receiver<MediaEvent>,
    /// Our `o=` line per leg (index: `Leg::index`), versioned as our SDP on that leg changes.
    origins: [Origin; 2],
    timeout: Duration,
    dtmf: Vec<DtmfEvent>,
    /// The audio formats of the latest SDP seen, until the recorder has taken them.
    new_payloads: Option<Vec<PayloadInfo>>,
    /// What the live-call listing reads.
    live: Arc<LiveCallMedia>,
    /// Per leg (index: `Leg::index`), the number of m= lines of the last offer sent on it: its
    /// answer must have as many (RFC 3264 §6).
    offered: [Option<usize>; 2],
    /// The streams the gateway declined (port 0 where the peer offered one), for the CDR.
    declined: Vec<String>,
    /// SRTP per leg: the keys offered and answered (`media::sdes`).
    sdes: Sdes,
    /// An answer whose SRTP could not be taken, until the call has seen it.
    answer_failure: Option<AnswerError>,
}

/// Distinct declined stream names kept for a CDR (a call has a handful at most).
const MAX_DECLINED: usize = 8;

impl CallMedia {
    /// Allocate a port pair per leg and start relaying (nothing flows until SDP names peers).
    /// `encryption`: the trunk's `media_encryption` of the inside (PBX) and outside (carrier)
    /// legs.
    pub fn start(
        settings: &MediaSettings,
        encryption: [MediaEncryption; 2],
    ) -> Result<CallMedia, MediaError> {
        let inside = settings.ports.allocate(settings.inside_ip)?;
        let outside = settings.ports.allocate(settings.outside_ip)?;
        // The timeout is armed on answer: a ringing call owes no RTP.
        let config = SessionConfig {
            timeout: None,
            counters: Some(Arc::clone(&settings.counters)),
            ..SessionConfig::from_media_config(&crate::config::MediaConfig::default())
        };
        let (session, events) = MediaSession::start(inside, outside, config)?;
        let live = LiveCallMedia::new(session.probe());
        Ok(CallMedia {
            session,
            events,
            origins: [
                Origin::new(settings.inside_ip),
                Origin::new(settings.outside_ip),
            ],
            timeout: settings.timeout,
            dtmf: Vec::new(),
            new_payloads: None,
            live,
            offered: [None; 2],
            declined: Vec::new(),
            sdes: Sdes::new(encryption),
            answer_failure: None,
        })
    }

    /// The `media_encryption` of `side`'s leg.
    pub fn encryption(&self, side: Side) -> MediaEncryption {
        self.sdes.mode(leg_of(side))
    }

    /// The answer seen last could not be taken (its SRTP): the call must not go on with it.
    pub fn take_answer_failure(&mut self) -> Option<AnswerError> {
        self.answer_failure.take()
    }

    /// The figures the live-call listing reads.
    pub fn live(&self) -> Arc<LiveCallMedia> {
        Arc::clone(&self.live)
    }

    /// A body sent by the peer on `from`, on its way to the other side: learn where that peer
    /// wants media, and put our own address and ports in its place. Bodies that are not SDP
    /// pass unchanged. Initial offers and re-offers are checked before they get here
    /// (`sdp::check_offer`, at admission and in `relay`); an answer, or an offer in a 2xx (late
    /// offer), that cannot be anchored is an error: the caller decides what becomes of the
    /// message, and the relay keeps the media it had. SRTP is settled here too (`sdes`): our
    /// own keys go in, the peer's never cross; an answer whose SRTP cannot be taken is not
    /// forwarded (empty) and `take_answer_failure` says why.
    pub fn rewrite(
        &mut self,
        from: Side,
        exchange: Exchange,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Result<Vec<u8>, UnusableSdp> {
        if body.is_empty() {
            return Ok(Vec::new());
        }
        if !sdp::is_sdp(content_type) {
            return Ok(body.to_vec());
        }
        let from_leg = leg_of(from);
        let to_leg = from_leg.other();
        let parsed = sdp::check_body(body, exchange, self.offered[from_leg.index()])?;
        let anchor = self.session.anchor(to_leg);
        let anchored = parsed.anchor(&anchor, &mut self.origins[to_leg.index()]);
        let mut out = anchored.sdp;
        let audio = parsed.audio();
        if exchange == Exchange::Answer && self.sdes.answers_pending(from_leg) {
            if let Err(e) = self
                .sdes
                .answer(from_leg, &parsed, audio.as_ref(), &mut out)
            {
                tracing::warn!(side = %from, error = %e, "answer refused: its SRTP cannot be taken");
                self.answer_failure = Some(e);
                return Ok(Vec::new());
            }
        } else {
            self.sdes.offer(from_leg, &parsed, audio.as_ref(), &mut out);
        }
        if exchange == Exchange::Offer {
            self.offered[to_leg.index()] = Some(parsed.media_count());
        }
        for index in &anchored.disabled {
            if let Some(name) = sdp::declined_stream(&parsed, *index) {
                if !self.declined.contains(&name) && self.declined.len() < MAX_DECLINED {
                    self.declined.push(name);
                }
            }
        }
        if let Some(audio) = audio {
            if let Some(remote) = RemoteMedia::from_sdp(&audio) {
                self.session.update_remote(from_leg, remote);
            }
            self.live.set_formats(from_leg, &audio.payloads);
            self.new_payloads = Some(audio.payloads);
        }
        self.session.set_keys(self.sdes.keys());
        Ok(out.to_bytes())
    }

    /// Start or stop copying RTP to the recorder.
    pub fn set_tap(&self, tap: Option<crate::media::TapSender>) {
        self.session.set_tap(tap);
    }

    /// The audio formats of SDP seen since the last call.
    pub fn take_new_payloads(&mut self) -> Option<Vec<PayloadInfo>> {
        self.new_payloads.take()
    }

    /// The call is answered: RTP is due from now on.
    pub fn answered(&self) {
        self.session.set_timeout(Some(self.timeout));
    }

    /// The next event of the relay; pending forever once the relay has ended.
    pub async fn next_event(&mut self) -> MediaEvent {
        match self.events.recv().await {
            Some(ev) => ev,
            None => std::future::pending().await,
        }
    }

    pub fn record_dtmf(
        &mut self,
        leg: Leg,
        digit: char,
        at: chrono::DateTime<chrono::Utc>,
        duration_ms: u32,
    ) {
        self.dtmf.push(DtmfEvent {
            leg: leg.as_str().to_string(),
            digit: digit.to_string(),
            at: crate::model::ms_precision(at),
            duration_ms,
        });
    }

    /// The trunk's DTMF commands (recognised on the inside leg, not relayed).
    pub fn set_dtmf_commands(&self, commands: crate::media::DtmfCommands) {
        self.session.set_dtmf_commands(commands);
    }

    /// Pause or resume the copies to the recorder (PCI).
    pub fn set_recording_paused(&self, paused: bool) {
        self.session.set_recording_paused(paused);
    }

    /// Stop relaying (the ports go back to the pool) and hand over what the CDR keeps.
    pub async fn close(self) -> ClosedMedia {
        let stats = self.session.close().await;
        let withheld = stats.inside.dtmf_withheld;
        if withheld > 0 {
            tracing::info!(packets = withheld, "DTMF command packets not relayed");
        }
        ClosedMedia {
            quality: quality(&stats),
            dtmf: self.dtmf,
            paused_packets: [stats.inside.paused_packets, stats.outside.paused_packets],
            declined: self.declined,
        }
    }
}

/// What a call's media leaves when it closes.
pub(crate) struct ClosedMedia {
    pub quality: Vec<LegQuality>,
    pub dtmf: Vec<DtmfEvent>,
    /// RTP per leg not given to the recorder because the recording was paused.
    pub paused_packets: [u64; 2],
    /// The streams the gateway declined, in the order first seen (`video`, `image/t38`…).
    pub declined: Vec<String>,
}

fn quality(stats: &SessionStats) -> Vec<LegQuality> {
    Leg::BOTH
        .iter()
        .map(|&leg| {
            let s = stats.leg(leg);
            LegQuality {
                leg: leg.as_str().to_string(),
                packets_in: s.rtp_in.packets,
                bytes_in: s.rtp_in.bytes,
                packets_out: s.rtp_out.packets,
                bytes_out: s.rtp_out.bytes,
                lost: s.rtp_in.lost,
                jitter_ms: s.rtp_in.jitter_ms,
                max_jitter_ms: s.rtp_in.max_jitter_ms,
                longest_gap_ms: s.rtp_in.longest_gap_ms,
                stray: s.stray,
                mos: s.mos,
                one_way: stats.one_way_audio == Some(leg),
            }
        })
        .collect()
}

/// The next relay event of a call that has media; pending forever otherwise.
pub(super) async fn next_event(media: &mut Option<CallMedia>) -> MediaEvent {
    match media {
        Some(m) => m.next_event().await,
        None => std::future::pending().await,
    }
}

impl Call {
    /// A body from `from` on its way to the other side, anchored when it is SDP; an error when
    /// it is SDP the gateway cannot anchor (nothing of it may cross).
    pub(super) fn across(
        &mut self,
        from: Side,
        exchange: Exchange,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Result<Vec<u8>, UnusableSdp> {
        let Some(m) = &mut self.media else {
            return Ok(body.to_vec());
        };
        let out = m.rewrite(from, exchange, content_type, body);
        if let Some(p) = m.take_new_payloads() {
            self.update_recording_payloads(p);
        }
        if let Err(e) = &out {
            tracing::warn!(side = %from, exchange = ?exchange, error = %e, "SDP not forwarded: it cannot be anchored");
        }
        out
    }

    pub(super) fn on_media(&mut self, ev: MediaEvent) {
        match ev {
            MediaEvent::Timeout { idle } => {
                if self.phase == Phase::Answered {
                    tracing::warn!(idle_secs = idle.as_secs(), "media timeout: ending call");
                    self.bye_both(EndReason::MediaTimeout);
                }
            }
            MediaEvent::Dtmf {
                leg,
                digit,
                at,
                duration_ms,
            } => {
                // The digit itself stays out of logs: callers key card numbers.
                tracing::info!(leg = leg.as_str(), duration_ms, "DTMF digit");
                if self.pauses.is_paused() {
                    // PCI: a card number keyed while paused stays off the CDR too.
                    self.pauses.mask_digit();
                } else if let Some(m) = &mut self.media {
                    m.record_dtmf(leg, digit, at, duration_ms);
                }
            }
            MediaEvent::OneWayAudio { silent } => {
                tracing::info!(silent = silent.as_str(), "one-way audio");
            }
            MediaEvent::DtmfCommand { command, .. } => self.on_dtmf_command(command),
        }
    }

    /// Close the media (its ports go back to the pool), put its figures on the CDR, submit.
    pub(super) async fn submit(&mut self, mut cdr: Cdr) {
        if let Some(media) = self.media.take() {
            let closed = media.close().await;
            if cdr.attempt.answer_at.is_some() || closed.quality.iter().any(|q| q.packets_in > 0) {
                cdr.media = closed.quality;
            }
            cdr.dtmf = closed.dtmf;
            cdr.outcome.declined_media = closed.declined;
            self.paused_packets = closed.paused_packets;
        }
        self.finish_recording(&mut cdr).await;
        self.ctx.submit_cdr(cdr);
    }
}

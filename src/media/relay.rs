//! One call's media: two legs, each owning its RTP/RTCP socket pair, and the pumps that relay
//! between them.
//!
//! Pumps per session: one per leg and socket (inside RTP, inside RTCP, outside RTP, outside
//! RTCP), each handling what arrives on its own leg's socket and sending out of the other leg's
//! socket of the same kind. They run on one of the media relay threads (`engine`), which serves
//! many calls; a tokio task per session supervises the media timeout and one-way audio. Sessions
//! share nothing with each other. Within a call:
//! - where to send toward a leg's peer is published by that leg's receiving pump (it owns the
//!   latch) through a `peer_dest::PeerDest`; the sending pump checks its version with one atomic
//!   load per packet and re-reads only when it changed;
//! - the owner's changes (remote SDP, tap, timeout) reach the pumps and the supervisor through
//!   one `watch` channel (the relay thread is told to look at it);
//! - last-RTP times go to the supervisor through two atomics.
//!
//! Dropping the `MediaSession` stops the relaying and closes the sockets (the ports go back to
//! the pool shortly after, on the relay thread). `close()` does the same and waits for the pumps'
//! figures, the ports being back by then.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::Instrument;

use super::counters::MediaCounters;
use super::engine::{RelayHandle, Relayed};
use super::live::MediaProbe;
use super::peer_dest::PeerDest;
use super::ports::{PortLease, PortPair};
use super::pump::{Kind, State, Wiring};
use super::sdp::{Anchor, Direction, MediaInfo, DEFAULT_CLOCK_RATE};
use super::stats::{Counters, StreamStats};
use super::supervisor::{Supervisor, SupervisorReport};
use super::tap::TapSender;
use super::{Leg, MediaError};

/// Room for events the owner has not read yet; beyond it DTMF reports are dropped and counted.
const EVENT_CAPACITY: usize = 64;
/// Default one-way-audio threshold.
pub const ONE_WAY_AFTER: Duration = Duration::from_secs(5);

/// What a session tells its owner.
#[derive(Debug, Clone, PartialEq)]
pub enum MediaEvent {
    /// No RTP from either side for the timeout (hold excepted): end the call.
    Timeout { idle: Duration },
    /// One RFC 4733 digit, sent by `leg`'s peer.
    Dtmf {
        leg: Leg,
        digit: char,
        at: DateTime<Utc>,
        duration_ms: u32,
    },
    /// `silent`'s peer has sent nothing while the other side talked, for the threshold.
    OneWayAudio { silent: Leg },
    /// The agent (the inside leg's peer) keyed a command sequence (`set_dtmf_commands`); its
    /// packets were not relayed.
    DtmfCommand {
        command: super::DtmfCommand,
        at: DateTime<Utc>,
    },
}

/// Where and how a leg's peer receives media, from its latest SDP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteMedia {
    /// c= and m=; an unspecified address (hold) or port 0 (declined) stops sending to it.
    pub rtp: SocketAddr,
    /// `a=rtcp`; `None`: RTP port + 1.
    pub rtcp: Option<SocketAddr>,
    pub direction: Direction,
    /// RFC 4733 payload type, for DTMF reports.
    pub telephone_event: Option<u8>,
    /// RTP clock of the codec, for jitter.
    pub clock_rate: u32,
}

impl RemoteMedia {
    pub fn new(rtp: SocketAddr, direction: Direction) -> RemoteMedia {
        RemoteMedia {
            rtp,
            rtcp: None,
            direction,
            telephone_event: None,
            clock_rate: DEFAULT_CLOCK_RATE,
        }
    }

    /// From the anchored stream of a peer's SDP (`SessionDescription::audio()`). `None` when
    /// it names no address. A declined stream gives port 0.
    pub fn from_sdp(media: &MediaInfo) -> Option<RemoteMedia> {
        let ip = media.connection?;
        Some(RemoteMedia {
            rtp: SocketAddr::new(ip, media.port),
            rtcp: media.rtcp,
            direction: media.direction,
            telephone_event: media.telephone_event(),
            clock_rate: media.clock_rate(),
        })
    }

    pub fn rtcp_addr(&self) -> Option<SocketAddr> {
        match self.rtcp {
            Some(addr) => Some(addr),
            None if self.rtp.port() == 0 => None,
            None => Some(SocketAddr::new(
                self.rtp.ip(),
                self.rtp.port().checked_add(1)?,
            )),
        }
    }

    /// Hold: a non-sendrecv direction, or c=0.0.0.0.
    pub fn is_hold(&self) -> bool {
        self.direction.is_hold() || self.rtp.ip().is_unspecified()
    }
}

/// How a session starts.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Media timeout; `None` disables it. Leave it off while a call rings (no RTP is due) and
    /// arm it with `set_timeout` on answer.
    pub timeout: Option<Duration>,
    pub one_way_after: Duration,
    pub tap: Option<TapSender>,
    /// The gateway's media counters, which the relay adds this session's datagrams to.
    pub counters: Option<Arc<MediaCounters>>,
    /// The relay engine; `None`: the one the gateway started (`media::start_relay`).
    pub engine: Option<super::MediaEngine>,
}

impl SessionConfig {
    /// `[media] timeout_secs` armed from the start (0 disables it), no tap.
    pub fn from_media_config(config: &crate::config::MediaConfig) -> SessionConfig {
        SessionConfig {
            timeout: (config.timeout_secs > 0).then(|| Duration::from_secs(config.timeout_secs)),
            one_way_after: ONE_WAY_AFTER,
            tap: None,
            counters: None,
            engine: None,
        }
    }
}

/// Figures of one leg at the end of the session.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LegStats {
    /// RTP from this leg's peer, as it arrived.
    pub rtp_in: StreamStats,
    /// RTP relayed to this leg's peer.
    pub rtp_out: Counters,
    pub rtcp_in: Counters,
    pub rtcp_out: Counters,
    /// Packets from sources other than the latched one (RTP and RTCP), dropped.
    pub stray: u64,
    /// The peer's actual RTP source, if it ever sent.
    pub latched: Option<SocketAddr>,
    pub dtmf_digits: u64,
    /// DTMF reports lost because the owner's event queue was full.
    pub dtmf_dropped: u64,
    /// RTP packets not given to the recorder because its queue was full.
    pub tap_dropped: u64,
    /// Estimated MOS of `rtp_in` (see `quality`); `None` without RTP.
    pub mos: Option<f64>,
    /// Payload type of the last RTP packet from this leg's peer (telephone-events aside).
    pub payload_type: Option<u8>,
    /// RFC 4733 packets from this leg's peer never relayed: DTMF commands (inside leg only).
    pub dtmf_withheld: u64,
    /// RTP packets from this leg's peer not given to the recorder: the recording was paused.
    pub paused_packets: u64,
    /// SRTP and SRTCP packets from this leg's peer dropped: they failed authentication (a
    /// wrong key, tampering, a replay) or were not SRTP. Never relayed nor recorded.
    pub srtp_rejected: u64,
}

/// Figures of a whole session, for the CDR.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SessionStats {
    pub inside: LegStats,
    pub outside: LegStats,
    /// The leg whose peer went silent while the other talked.
    pub one_way_audio: Option<Leg>,
    pub timed_out: bool,
}

impl SessionStats {
    pub fn leg(&self, leg: Leg) -> &LegStats {
        match leg {
            Leg::Inside => &self.inside,
            Leg::Outside => &self.outside,
        }
    }
}

/// The owner's wishes, as the tasks see them.
#[derive(Debug, Clone)]
pub(crate) struct Control {
    pub remote: [Option<RemoteMedia>; 2],
    pub tap: Option<TapSender>,
    pub timeout: Option<Duration>,
    /// The trunk's DTMF commands, recognised on the inside leg.
    pub dtmf_commands: super::DtmfCommands,
    /// The recording is paused: no packet goes to the tap.
    pub recording_paused: bool,
    /// SRTP keys per leg (`Leg::index`); plain RTP where none.
    pub keys: [super::srtp::LegKeys; 2],
}

impl Control {
    pub fn hold(&self) -> bool {
        self.remote.iter().flatten().any(RemoteMedia::is_hold)
    }
}

/// One leg's sockets (non-blocking). Field order: the sockets close before the lease returns
/// the ports.
#[derive(Debug)]
pub(crate) struct LegSockets {
    pub rtp: std::net::UdpSocket,
    pub rtcp: std::net::UdpSocket,
    _lease: PortLease,
}

impl LegSockets {
    /// A pair's sockets, keeping its lease.
    pub fn new(
        rtp: std::net::UdpSocket,
        rtcp: std::net::UdpSocket,
        lease: PortLease,
    ) -> Result<LegSockets, MediaError> {
        rtp.set_nonblocking(true).map_err(MediaError::Runtime)?;
        rtcp.set_nonblocking(true).map_err(MediaError::Runtime)?;
        Ok(LegSockets {
            rtp,
            rtcp,
            _lease: lease,
        })
    }

    pub fn socket(&self, kind: Kind) -> &std::net::UdpSocket {
        match kind {
            Kind::Rtp => &self.rtp,
            Kind::Rtcp => &self.rtcp,
        }
    }
}

/// Last RTP arrival per leg, in ms since `epoch` plus one (0: never).
#[derive(Debug)]
pub(crate) struct Activity {
    pub epoch: Instant,
    pub last_rtp: [AtomicU64; 2],
}

impl Activity {
    pub fn touch(&self, leg: Leg, now: Instant) {
        let ms = now.saturating_duration_since(self.epoch).as_millis() as u64 + 1;
        self.last_rtp[leg.index()].store(ms, Ordering::Relaxed);
    }

    pub fn last_rtp(&self, leg: Leg) -> Option<Instant> {
        match self.last_rtp[leg.index()].load(Ordering::Relaxed) {
            0 => None,
            ms => Some(self.epoch + Duration::from_millis(ms - 1)),
        }
    }
}

/// A call's anchored media. See the module docs.
#[derive(Debug)]
pub struct MediaSession {
    control: watch::Sender<Control>,
    anchors: [Anchor; 2],
    relay: RelayHandle,
    supervisor: JoinHandle<SupervisorReport>,
    probe: MediaProbe,
}

impl MediaSession {
    /// Start relaying between two allocated pairs (inside: on `[media] inside_address`, toward
    /// the PBX; outside: toward the carrier). Nothing is sent before `update_remote` names a
    /// leg's peer. Must run inside a tokio runtime. Events come on the returned receiver; it
    /// ends when the session's tasks have ended.
    pub fn start(
        inside: PortPair,
        outside: PortPair,
        config: SessionConfig,
    ) -> Result<(MediaSession, mpsc::Receiver<MediaEvent>), MediaError> {
        // The supervisor is a tokio task: refuse outside a runtime rather than panic.
        tokio::runtime::Handle::try_current()
            .map_err(|e| MediaError::Runtime(std::io::Error::other(e)))?;
        let anchors = [inside.anchor(), outside.anchor()];
        let sockets = [legs_sockets(inside)?, legs_sockets(outside)?];
        let (control, control_rx) = watch::channel(Control {
            remote: [None, None],
            tap: config.tap.clone(),
            timeout: config.timeout,
            dtmf_commands: super::DtmfCommands::default(),
            recording_paused: false,
            keys: Default::default(),
        });
        let (events, events_rx) = mpsc::channel(EVENT_CAPACITY);
        let activity = Arc::new(Activity {
            epoch: Instant::now(),
            last_rtp: [AtomicU64::new(0), AtomicU64::new(0)],
        });
        let span = tracing::Span::current();
        // Each leg's pump publishes where its peer is; the other leg's pump of the same kind
        // reads it.
        let [rtp, rtcp] = Kind::BOTH.map(|kind| {
            let inside_dest = Arc::new(PeerDest::new(None));
            let outside_dest = Arc::new(PeerDest::new(None));
            let pump = |leg, publish, peer_dest| {
                let wiring = Wiring {
                    publish,
                    peer_dest,
                    activity: Arc::clone(&activity),
                    events: events.clone(),
                    span: span.clone(),
                };
                State::new(leg, kind, wiring)
            };
            [
                pump(
                    Leg::Inside,
                    Arc::clone(&inside_dest),
                    Arc::clone(&outside_dest),
                ),
                pump(Leg::Outside, outside_dest, inside_dest),
            ]
        });
        let [rtp_inside, rtp_outside] = rtp;
        let [rtcp_inside, rtcp_outside] = rtcp;
        let relayed = Relayed::new(
            sockets,
            control_rx.clone(),
            [rtp_inside, rtp_outside, rtcp_inside, rtcp_outside],
            config.counters,
        );
        let relay = RelayHandle::start(relayed, config.engine)?;
        let probe = MediaProbe {
            relay: relay.probe(),
            activity: Arc::clone(&activity),
            control: control_rx.clone(),
        };
        let supervisor = Supervisor::new(control_rx, activity, events, config.one_way_after);
        let supervisor = tokio::spawn(supervisor.run().instrument(span));
        tracing::debug!(
            inside = %SocketAddr::new(anchors[0].address, anchors[0].rtp_port),
            outside = %SocketAddr::new(anchors[1].address, anchors[1].rtp_port),
            "media session started"
        );
        let session = MediaSession {
            control,
            anchors,
            relay,
            supervisor,
            probe,
        };
        Ok((session, events_rx))
    }

    /// Asks for this session's figures while it runs (the live-call listing).
    pub fn probe(&self) -> MediaProbe {
        self.probe.clone()
    }

    /// Our address and ports on `leg`: what goes in the SDP sent on that leg.
    pub fn anchor(&self, leg: Leg) -> Anchor {
        self.anchors[leg.index()]
    }

    /// The peer of `leg` gave new SDP (offer, answer, re-INVITE, UPDATE, hold, resume).
    pub fn update_remote(&self, leg: Leg, remote: RemoteMedia) {
        if self.control.send_if_modified(|c| {
            let slot = &mut c.remote[leg.index()];
            let changed = *slot != Some(remote);
            *slot = Some(remote);
            changed
        }) {
            self.relay.control_changed();
        }
    }

    /// Start (or stop, with `None`) copying RTP to the recorder.
    pub fn set_tap(&self, tap: Option<TapSender>) {
        self.control.send_modify(|c| c.tap = tap);
        self.relay.control_changed();
    }

    /// The DTMF sequences the agent may key as commands (empty: none); their packets are held
    /// back and not relayed (`dtmf_command`).
    pub fn set_dtmf_commands(&self, commands: super::DtmfCommands) {
        if self.control.send_if_modified(|c| {
            let changed = c.dtmf_commands != commands;
            c.dtmf_commands = commands;
            changed
        }) {
            self.relay.control_changed();
        }
    }

    /// Pause (true) or resume the recording: while paused the relay copies no packet to the
    /// tap, so the paused audio never reaches the recorder (the recorder's clock goes on: the
    /// interval is silence in the file). Applied by the relay thread before its next packet.
    pub fn set_recording_paused(&self, paused: bool) {
        if self.control.send_if_modified(|c| {
            let changed = c.recording_paused != paused;
            c.recording_paused = paused;
            changed
        }) {
            self.relay.control_changed();
        }
    }

    /// The SRTP keys each leg decrypts and encrypts with (`sdes::Sdes::keys`); plain RTP on a
    /// leg without. Applied by the relay thread before its next packet; a context is rebuilt
    /// only when its key changed.
    pub fn set_keys(&self, keys: &[super::srtp::LegKeys; 2]) {
        if self.control.send_if_modified(|c| {
            let changed = c.keys != *keys;
            if changed {
                c.keys = keys.clone();
            }
            changed
        }) {
            self.relay.control_changed();
        }
    }

    /// Arm, change or disable the media timeout; the idle time counts from now.
    pub fn set_timeout(&self, timeout: Option<Duration>) {
        self.control.send_modify(|c| c.timeout = timeout);
        self.relay.control_changed();
    }

    /// Stop relaying and return the figures. The ports are back in the pool when this returns.
    pub async fn close(self) -> SessionStats {
        let MediaSession {
            control,
            relay,
            supervisor,
            ..
        } = self;
        let reports = relay.close();
        drop(control); // the supervisor's control channel closes: it ends
        let mut stats = SessionStats::default();
        match reports.await {
            Ok(reports) => {
                for (leg, kind, report) in reports {
                    report.merge_into(&mut stats, leg, kind);
                }
            }
            Err(_) => tracing::error!("media relay thread gone; no media figures"),
        }
        match supervisor.await {
            Ok(report) => {
                stats.one_way_audio = report.one_way_audio;
                stats.timed_out = report.timed_out;
            }
            Err(e) => tracing::error!(error = %e, "media supervisor failed"),
        }
        for leg in [&mut stats.inside, &mut stats.outside] {
            leg.mos = leg.rtp_in.mos();
        }
        stats
    }
}

fn legs_sockets(pair: PortPair) -> Result<LegSockets, MediaError> {
    let (rtp, rtcp, lease) = pair.into_parts();
    LegSockets::new(rtp, rtcp, lease)
}

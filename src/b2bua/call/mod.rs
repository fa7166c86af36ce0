//! The call: one task owning both legs, relaying between them, and ending them. Everything a
//! call does to the network goes through the transaction layer; everything it learns ends up
//! in its CDR when it ends. The admission lease lives here and is dropped exactly once, when
//! the call ends, whatever the ending.

mod ack;
mod auth;
mod ending;
mod invite;
mod journal;
mod leg;
pub(crate) mod media;
pub(crate) mod pause;
pub(crate) mod recording;
mod relay;
pub(crate) mod setup;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use rsip::Method;
use tokio::sync::mpsc;
use tokio::time::Instant;

pub(crate) use leg::Leg;
pub(crate) use media::CallMedia;

use super::registry::CallMsg;
use super::Ctx;
use crate::model::{Attempt, Cdr, Disposition, EndReason, Ending, HangupSide, StatusLine};
use crate::policy::AdmissionLease;
use crate::sip::message;
use crate::sip::transaction::{ClientEvent, ClientEventKind, ClientKey, ServerKey, ServerTx};
use crate::sip::transport::{Peer, Side};

pub(crate) use crate::sip::validate::ALLOW;

/// Capacity of a call's queue of client-transaction events.
const EVENT_QUEUE: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// INVITE sent to the B side, no final response relayed to A yet.
    Early,
    Answered,
    Ended,
}

/// A 2xx we sent and retransmit until its ACK comes (§13.3.1.4); the ACK is then passed on
/// to the other leg with the CSeq of the INVITE we sent there.
struct Unacked {
    side: Side,
    cseq: u32,
    resp: rsip::Response,
    next: Instant,
    interval: Duration,
    deadline: Instant,
    ack_other_cseq: u32,
    /// The credentials of the INVITE the ACK goes on to (§13.2.2.4: the ACK carries them).
    ack_credentials: Vec<rsip::Header>,
}

/// An in-dialog request we passed on: its response goes back through `origin`.
struct Relay {
    origin: ServerTx,
    method: Method,
    other_cseq: u32,
    /// The request as sent on the other leg (sent again with credentials if challenged).
    sent: rsip::Request,
    /// Challenges answered for it so far.
    auth_tries: u8,
}

pub(crate) struct CallSetup {
    pub a: Leg,
    pub a_tx: ServerTx,
    pub b: Leg,
    pub b_invite: rsip::Request,
    pub lease: AdmissionLease,
    pub attempt: Attempt,
    pub max_call: Duration,
    pub media: CallMedia,
    /// The audio formats of A's offer: what the recording expects until the answer.
    pub offer_payloads: Vec<crate::media::sdp::PayloadInfo>,
    /// Further carrier addresses of the trunk, tried in order when the one called times out
    /// or answers 503 before any provisional response (outbound calls).
    pub alternates: Vec<Peer>,
    /// The trunk's credentials toward the carrier (`auth_username`…), if any.
    pub credentials: Option<Arc<crate::config::Credentials>>,
}

pub(crate) struct Call {
    ctx: Arc<Ctx>,
    a: Leg,
    b: Leg,
    a_tx: ServerTx,
    b_key: Option<ClientKey>,
    phase: Phase,
    /// A has had its final response to the INVITE.
    a_final_sent: bool,
    /// B has sent its final response to our INVITE (or it timed out).
    b_final_seen: bool,
    lease: Option<AdmissionLease>,
    attempt: Attempt,
    events_tx: mpsc::Sender<Box<ClientEvent>>,
    relays: HashMap<ClientKey, Relay>,
    /// Boxed, as the other parts a call holds only for a moment (`final_cdr`,
    /// `pending_recording`): inline they widened every call for its whole life (issue 16).
    unacked: Option<Box<Unacked>>,
    /// The ACK we sent for B's 2xx, resent if B retransmits its 2xx.
    b_ack: Option<rsip::Request>,
    /// Per leg, the ACK we last sent for a 2xx to a re-INVITE we relayed there, with that
    /// re-INVITE's CSeq: resent when the 2xx is retransmitted (our ACK was lost, §13.3.1.4).
    reinvite_acks: HashMap<Side, (u32, rsip::Request)>,
    ring_deadline: Option<Instant>,
    max_deadline: Option<Instant>,
    max_call: Duration,
    /// After the call ended, wait this long for B's final response to a CANCEL.
    linger_until: Option<Instant>,
    /// The relay; taken at the end to collect its figures for the CDR.
    media: Option<CallMedia>,
    /// The CDR of an ended call, submitted once the media figures are in.
    final_cdr: Option<Box<Cdr>>,
    recorder: Option<crate::recording::Recorder>,
    /// Armed at the answer (or early media), its file being opened: the relay already feeds it.
    pending_recording: Option<Box<crate::recording::PendingRecording>>,
    /// Why the recording could not start, when the call goes on unrecorded.
    recording_failure: Option<String>,
    /// The relay copies RTP to the recorder.
    tapping: bool,
    /// The call was just answered (or early media began): its recording is to be opened.
    recording_due: bool,
    /// The audio formats last negotiated, for the recorder.
    payloads: Vec<crate::media::sdp::PayloadInfo>,
    /// Carrier addresses not tried yet (failover).
    alternates: std::collections::VecDeque<Peer>,
    /// The INVITE sent to B (the latest, after a failover): sent again to the next carrier,
    /// and journaled so that a restart can cancel it. Before `drive` starts, the one to send.
    b_invite: Option<rsip::Request>,
    /// B sent a provisional response other than 100: it took the call, no failover after.
    b_provisional: bool,
    /// PCI pauses of the recording.
    pauses: pause::Pauses,
    /// RTP per leg `[inside, outside]` not given to the recorder while paused (from the relay's
    /// figures at the end): audio that crossed the trunk, for the recording's status.
    paused_packets: [u64; 2],
    /// Answers the carrier's challenges (`auth.rs`); None: the trunk has no credentials.
    auth: Option<auth::Authenticator>,
    /// Challenges to the B INVITE answered so far (one, more only for a stale nonce).
    b_auth_tries: u8,
    /// BYEs toward the carrier whose answer may be a challenge; the call waits for them
    /// (bounded by `bye_deadline`) before it goes.
    byes: HashMap<ClientKey, auth::PendingBye>,
    bye_deadline: Option<Instant>,
}

impl Call {
    /// The call's task. The call is built before the future: an `async fn` taking the setup
    /// would keep the setup's 2 KiB in the task beside the call built from it, for the whole
    /// call. And it is boxed, the INVITE for B inside it: an `async fn` keeps its arguments
    /// twice (as captured, and as the body's locals), so the task held two calls' worth,
    /// 9 KiB (issue 16's memory per call).
    pub(crate) fn run(
        ctx: Arc<Ctx>,
        setup: CallSetup,
        inbox: mpsc::Receiver<CallMsg>,
    ) -> impl std::future::Future<Output = ()> + Send {
        let (call, events_rx) = Call::new(ctx, setup);
        Box::new(call).drive(inbox, events_rx)
    }

    /// The call, with the INVITE for B in `b_invite` until `drive` sends it.
    fn new(ctx: Arc<Ctx>, setup: CallSetup) -> (Call, mpsc::Receiver<Box<ClientEvent>>) {
        let (events_tx, events_rx) = mpsc::channel(EVENT_QUEUE);
        let ring = ctx.settings.ring_timeout;
        let max_pause = ctx
            .settings
            .recording
            .as_ref()
            .map_or(Duration::from_secs(180), |r| r.max_pause);
        let call = Call {
            ctx,
            a: setup.a,
            b: setup.b,
            a_tx: setup.a_tx,
            b_key: None,
            phase: Phase::Early,
            a_final_sent: false,
            b_final_seen: false,
            lease: Some(setup.lease),
            attempt: setup.attempt,
            events_tx,
            relays: HashMap::new(),
            unacked: None,
            b_ack: None,
            reinvite_acks: HashMap::new(),
            ring_deadline: Some(Instant::now() + ring),
            max_deadline: None,
            max_call: setup.max_call,
            linger_until: None,
            media: Some(setup.media),
            final_cdr: None,
            recorder: None,
            recording_failure: None,
            pending_recording: None,
            tapping: false,
            recording_due: false,
            payloads: setup.offer_payloads,
            alternates: setup.alternates.into(),
            b_invite: Some(setup.b_invite),
            b_provisional: false,
            pauses: pause::Pauses::new(max_pause),
            paused_packets: [0; 2],
            auth: setup.credentials.map(auth::Authenticator::new),
            b_auth_tries: 0,
            byes: HashMap::new(),
            bye_deadline: None,
        };
        (call, events_rx)
    }

    async fn drive(
        mut self: Box<Self>,
        mut inbox: mpsc::Receiver<CallMsg>,
        mut events_rx: mpsc::Receiver<Box<ClientEvent>>,
    ) {
        let call = &mut *self;
        {
            let b_invite = call.b_invite.take();
            if let Err(e) = call.prepare_recording() {
                call.refuse_unrecordable(e);
            } else if let Some(b_invite) = b_invite {
                call.b_invite = Some(b_invite.clone());
                call.journal();
                call.b_key = call.ctx.layer.send_request(
                    call.b.side,
                    call.b.peer,
                    b_invite,
                    call.events_tx.clone(),
                );
                let direction = &call.attempt.direction;
                tracing::info!(?direction, to = %call.b.peer, "call started");
            }
        }
        loop {
            // Boxed: each runs once or twice a call, and inline their futures would widen the
            // task's state for the call's whole life.
            if std::mem::take(&mut call.recording_due) {
                Box::pin(call.start_recording_when_due()).await;
            }
            if let Some(cdr) = call.final_cdr.take() {
                Box::pin(call.submit(*cdr)).await;
            }
            if call.finished() {
                break;
            }
            let wake = call.next_deadline();
            tokio::select! {
                msg = inbox.recv() => match msg {
                    Some(m) => call.on_msg(m),
                    None => call.hangup(EndReason::Shutdown),
                },
                Some(ev) = events_rx.recv() => call.on_event(*ev),
                ev = media::next_event(&mut call.media) => call.on_media(ev),
                note = recording::next_failure(&mut call.recorder) => call.on_recording_failure(note),
                _ = tokio::time::sleep_until(wake) => {
                    let now = Instant::now();
                    call.on_pause_timer(now);
                    call.on_timer(now);
                }
            }
        }
        call.ctx.registry.remove(&call.a, &call.b);
    }

    fn finished(&self) -> bool {
        self.phase == Phase::Ended && self.linger_until.is_none() && self.byes.is_empty()
    }

    fn next_deadline(&self) -> Instant {
        let far = Instant::now() + Duration::from_secs(3600);
        [
            self.unacked.as_ref().map(|u| u.next.min(u.deadline)),
            self.ring_deadline,
            self.max_deadline,
            self.linger_until,
            self.pauses.deadline(),
            self.bye_deadline,
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(far)
    }

    fn leg_mut(&mut self, side: Side) -> &mut Leg {
        if self.a.side == side {
            &mut self.a
        } else {
            &mut self.b
        }
    }

    fn on_msg(&mut self, msg: CallMsg) {
        match msg {
            CallMsg::Request(tx) => self.on_request(*tx),
            CallMsg::Cancel(tx) => self.on_cancel(*tx),
            CallMsg::Ack(ack, side) => self.on_ack(*ack, side),
            CallMsg::StrayResponse(resp, side) => self.on_stray_response(*resp, side),
            CallMsg::Hangup(reason) => self.hangup(reason),
            CallMsg::Recording { action, by, reply } => {
                self.on_recording_request(action, by, reply)
            }
        }
    }

    fn on_event(&mut self, ev: ClientEvent) {
        if self.b_key.as_ref() == Some(&ev.key) {
            match ev.kind {
                ClientEventKind::Response(resp) => self.on_b_invite_response(resp),
                ClientEventKind::Timeout => self.on_b_invite_timeout(),
                ClientEventKind::TransportFailed(why) => self.on_b_invite_transport_failed(&why),
            }
        } else if self.relays.contains_key(&ev.key) {
            relay::relay_response(self, ev.key, ev.kind);
        } else if self.byes.contains_key(&ev.key) {
            self.on_bye_event(ev);
        } else if let ClientEventKind::Response(resp) = ev.kind {
            // A 2xx retransmitted to a re-INVITE whose final response was relayed already.
            self.reack(ev.key.side, &resp);
        }
        // Responses to our own BYE (but a challenge) and CANCEL need no action.
    }
}

fn message_response(tx: &ServerTx, code: u16, reason: &str, tag: &str) -> rsip::Response {
    crate::sip::response::response_for(tx.request(), code, reason, Some(tag))
}

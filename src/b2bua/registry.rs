//! Live calls: each call is reachable by its Call-ID on either side, and listed for operators.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, oneshot};

use super::call::pause::{PauseAction, PauseOutcome};
use super::call::Leg;
use super::live_media::LiveCallMedia;
use crate::model::{Direction, EndReason, LiveCallView, LiveCalls, Side};
use crate::sip::transaction::ServerTx;

/// What the dispatcher hands a live call. The messages are boxed: a call's inbox allocates
/// its slots 32 at a time, and with a request inline each slot took 224 bytes (7 KiB a call
/// for an inbox that carries a few messages; issue 16's memory per call).
#[derive(Debug)]
pub(crate) enum CallMsg {
    /// A new in-dialog request (its own server transaction).
    Request(Box<ServerTx>),
    Cancel(Box<ServerTx>),
    /// An ACK for a 2xx, from the given side.
    Ack(Box<rsip::Request>, Side),
    /// A response no client transaction matched (a late 2xx retransmission).
    StrayResponse(Box<rsip::Response>, Side),
    /// The gateway ends the call (operator, shutdown, policy), with the CDR's end reason.
    Hangup(EndReason),
    /// Pause or resume the recording (PCI), asked by the API caller `by`.
    Recording {
        action: PauseAction,
        by: String,
        reply: oneshot::Sender<PauseOutcome>,
    },
}

/// Why a pause or resume could not be handed to a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RecordingControlError {
    #[error("no such live call on this node")]
    NotLive,
    #[error("the call's inbox is full")]
    Busy,
}

/// A live call as operators see it.
#[derive(Debug, Clone)]
pub struct LiveCall {
    pub id: String,
    pub trunk: String,
    pub direction: Direction,
    pub caller: Option<String>,
    pub callee: Option<String>,
    pub started_at: DateTime<Utc>,
    pub inside_call_id: String,
    pub outside_call_id: String,
    /// Filled in by `Registry::list` from the call's answer.
    pub answered_at: Option<DateTime<Utc>>,
}

struct Entry {
    info: Arc<LiveCall>,
    inbox: mpsc::Sender<CallMsg>,
    /// The call has ended and is only closing its media, recording and CDR.
    ended: std::sync::atomic::AtomicBool,
    /// When the call was answered, in ms since the epoch; 0 while not answered.
    answered_ms: AtomicI64,
    /// The call's media figures while it runs.
    media: Option<Arc<LiveCallMedia>>,
}

#[derive(Default)]
pub struct Registry {
    by_leg: Mutex<HashMap<(Side, String), Arc<Entry>>>,
    by_id: Mutex<HashMap<String, Arc<Entry>>>,
}

impl Registry {
    /// Register a call under both legs' Call-IDs; false when either is taken.
    pub(crate) fn insert(
        &self,
        info: LiveCall,
        a: (Side, String),
        b: (Side, String),
        inbox: mpsc::Sender<CallMsg>,
        media: Option<Arc<LiveCallMedia>>,
    ) -> bool {
        let entry = Arc::new(Entry {
            info: Arc::new(info),
            inbox,
            ended: std::sync::atomic::AtomicBool::new(false),
            answered_ms: AtomicI64::new(0),
            media,
        });
        let mut legs = self.by_leg.lock();
        if legs.contains_key(&a) || legs.contains_key(&b) {
            return false;
        }
        legs.insert(a, entry.clone());
        legs.insert(b, entry.clone());
        drop(legs);
        self.by_id.lock().insert(entry.info.id.clone(), entry);
        true
    }

    pub(crate) fn remove(&self, a: &Leg, b: &Leg) {
        let id = {
            let mut legs = self.by_leg.lock();
            let removed = legs.remove(&(a.side, a.call_id.clone()));
            legs.remove(&(b.side, b.call_id.clone()));
            removed.map(|e| e.info.id.clone())
        };
        if let Some(id) = id {
            self.by_id.lock().remove(&id);
        }
    }

    /// The call has ended: no longer listed as live nor open to a hang-up, though its task is
    /// still closing what it owns (it stays counted by `len` until `remove`).
    pub(crate) fn mark_ended(&self, a: &Leg) {
        if let Some(e) = self.by_leg.lock().get(&(a.side, a.call_id.clone())) {
            e.ended.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }

    /// The call was answered at `at` (for the over-long-call check and the live list).
    pub(crate) fn mark_answered(&self, a: &Leg, at: DateTime<Utc>) {
        if let Some(e) = self.by_leg.lock().get(&(a.side, a.call_id.clone())) {
            e.answered_ms
                .store(at.timestamp_millis().max(1), Ordering::SeqCst);
        }
    }

    /// Hand a message to the call owning this Call-ID on this side; false when there is none.
    /// A full inbox drops the message: the peer retransmits.
    pub(crate) fn route(&self, side: Side, call_id: &str, msg: CallMsg) -> bool {
        let inbox = {
            let legs = self.by_leg.lock();
            match legs.get(&(side, call_id.to_string())) {
                Some(e) => e.inbox.clone(),
                None => return false,
            }
        };
        if inbox.try_send(msg).is_err() {
            tracing::warn!(call_id, "call inbox full; message dropped");
        }
        true
    }

    /// Calls whose task is still running (live, or closing after the end).
    pub fn len(&self) -> usize {
        self.by_id.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Is the call with this id still running (live, or closing its media, recording and CDR)?
    pub fn is_running(&self, id: &str) -> bool {
        self.by_id.lock().contains_key(id)
    }

    pub fn list(&self) -> Vec<LiveCall> {
        let ids = self.by_id.lock();
        let mut v: Vec<LiveCall> = ids
            .values()
            .filter(|e| !e.ended.load(Ordering::SeqCst))
            .map(|e| {
                let mut call = (*e.info).clone();
                let ms = e.answered_ms.load(Ordering::SeqCst);
                call.answered_at = (ms > 0)
                    .then(|| DateTime::from_timestamp_millis(ms))
                    .flatten();
                call
            })
            .collect();
        v.sort_by(|a, b| a.started_at.cmp(&b.started_at).then(a.id.cmp(&b.id)));
        v
    }

    /// The media figures of a live call (`None`: no such live call, or it has no media).
    pub fn media_of(&self, id: &str) -> Option<Arc<LiveCallMedia>> {
        self.by_id
            .lock()
            .get(id)
            .filter(|e| !e.ended.load(Ordering::SeqCst))
            .and_then(|e| e.media.clone())
    }

    /// Ask one call to end; false when no such call.
    pub fn hangup(&self, id: &str, reason: EndReason) -> bool {
        let inbox = {
            let ids = self.by_id.lock();
            match ids.get(id) {
                Some(e) if !e.ended.load(std::sync::atomic::Ordering::SeqCst) => e.inbox.clone(),
                _ => return false,
            }
        };
        inbox.try_send(CallMsg::Hangup(reason)).is_ok()
    }

    /// Ask a live call of this node to pause or resume its recording; the call answers on the
    /// returned receiver (which fails if the call ends before it could).
    pub fn recording_control(
        &self,
        id: &str,
        action: PauseAction,
        by: &str,
    ) -> Result<oneshot::Receiver<PauseOutcome>, RecordingControlError> {
        let inbox = {
            let ids = self.by_id.lock();
            match ids.get(id) {
                Some(e) if !e.ended.load(Ordering::SeqCst) => e.inbox.clone(),
                _ => return Err(RecordingControlError::NotLive),
            }
        };
        let (reply, rx) = oneshot::channel();
        let msg = CallMsg::Recording {
            action,
            by: by.to_string(),
            reply,
        };
        match inbox.try_send(msg) {
            Ok(()) => Ok(rx),
            Err(mpsc::error::TrySendError::Full(_)) => Err(RecordingControlError::Busy),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(RecordingControlError::NotLive),
        }
    }

    /// Ask the live calls `which` selects to end; returns how many were asked.
    pub fn hangup_where(&self, which: impl Fn(&LiveCall) -> bool, reason: EndReason) -> usize {
        let inboxes: Vec<_> = self
            .by_id
            .lock()
            .values()
            .filter(|e| !e.ended.load(Ordering::SeqCst) && which(&e.info))
            .map(|e| e.inbox.clone())
            .collect();
        inboxes
            .into_iter()
            .filter(|inbox| inbox.try_send(CallMsg::Hangup(reason)).is_ok())
            .count()
    }

    /// Ask every call to end.
    pub fn hangup_all(&self, reason: EndReason) {
        let inboxes: Vec<_> = self
            .by_id
            .lock()
            .values()
            .map(|e| e.inbox.clone())
            .collect();
        for inbox in inboxes {
            let _ = inbox.try_send(CallMsg::Hangup(reason));
        }
    }
}

/// The monitor's view of the live calls.
impl LiveCalls for Registry {
    fn live_calls(&self) -> Vec<LiveCallView> {
        self.list()
            .into_iter()
            .map(|c| LiveCallView {
                call_id: c.id,
                trunk: c.trunk,
                direction: c.direction,
                caller: c.caller,
                answered_at: c.answered_at,
            })
            .collect()
    }

    fn calls_per_trunk(&self) -> HashMap<String, u32> {
        let mut out = HashMap::new();
        // An ended call has dropped its lease already, though its task may still be
        // closing its media and recording, or lingering for a CANCELled INVITE's final
        // response (up to 64·T1): only calls not ended hold a lease.
        for e in self
            .by_id
            .lock()
            .values()
            .filter(|e| !e.ended.load(Ordering::SeqCst))
        {
            *out.entry(e.info.trunk.clone()).or_insert(0) += 1;
        }
        out
    }

    fn hang_up(&self, trunk: &str, caller_id: Option<&str>, reason: EndReason) -> usize {
        self.hangup_where(
            |c| {
                c.trunk == trunk
                    && caller_id.is_none_or(|n| {
                        c.direction == Direction::Outbound && c.caller.as_deref() == Some(n)
                    })
            },
            reason,
        )
    }

    fn is_running(&self, id: &str) -> bool {
        Registry::is_running(self, id)
    }
}

#[cfg(test)]
mod tests {
    use super::CallMsg;

    /// A call's inbox allocates its slots 32 at a time: a request or response inline made each
    /// slot 224 bytes (7 KiB a call). Boxed, a message is a few words.
    #[test]
    fn an_inbox_slot_stays_a_few_words() {
        assert!(
            std::mem::size_of::<CallMsg>() <= 64,
            "CallMsg is {} bytes: box the variant that grew it",
            std::mem::size_of::<CallMsg>()
        );
    }
}

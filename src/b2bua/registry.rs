//! Live calls: each call is reachable by its Call-ID on either side, and listed for operators.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;

use super::call::Leg;
use crate::monitor::cdr::Direction;
use crate::sip::transaction::ServerTx;
use crate::sip::transport::Side;

/// What the dispatcher hands a live call.
#[derive(Debug)]
pub(crate) enum CallMsg {
    /// A new in-dialog request (its own server transaction).
    Request(ServerTx),
    Cancel(ServerTx),
    /// An ACK for a 2xx, from the given side.
    Ack(rsip::Request, Side),
    /// A response no client transaction matched (a late 2xx retransmission).
    StrayResponse(rsip::Response, Side),
    /// The gateway ends the call (operator, shutdown, policy), with the CDR's end reason.
    Hangup(&'static str),
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
}

struct Entry {
    info: Arc<LiveCall>,
    inbox: mpsc::Sender<CallMsg>,
    /// The call has ended and is only closing its media, recording and CDR.
    ended: std::sync::atomic::AtomicBool,
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
    ) -> bool {
        let entry = Arc::new(Entry {
            info: Arc::new(info),
            inbox,
            ended: std::sync::atomic::AtomicBool::new(false),
        });
        let Ok(mut legs) = self.by_leg.lock() else {
            return false;
        };
        if legs.contains_key(&a) || legs.contains_key(&b) {
            return false;
        }
        legs.insert(a, entry.clone());
        legs.insert(b, entry.clone());
        drop(legs);
        if let Ok(mut ids) = self.by_id.lock() {
            ids.insert(entry.info.id.clone(), entry);
        }
        true
    }

    pub(crate) fn remove(&self, a: &Leg, b: &Leg) {
        let id = {
            let Ok(mut legs) = self.by_leg.lock() else {
                return;
            };
            let removed = legs.remove(&(a.side, a.call_id.clone()));
            legs.remove(&(b.side, b.call_id.clone()));
            removed.map(|e| e.info.id.clone())
        };
        if let (Some(id), Ok(mut ids)) = (id, self.by_id.lock()) {
            ids.remove(&id);
        }
    }

    /// The call has ended: no longer listed as live nor open to a hang-up, though its task is
    /// still closing what it owns (it stays counted by `len` until `remove`).
    pub(crate) fn mark_ended(&self, a: &Leg) {
        if let Ok(legs) = self.by_leg.lock() {
            if let Some(e) = legs.get(&(a.side, a.call_id.clone())) {
                e.ended.store(true, std::sync::atomic::Ordering::SeqCst);
            }
        }
    }

    /// Hand a message to the call owning this Call-ID on this side; false when there is none.
    /// A full inbox drops the message: the peer retransmits.
    pub(crate) fn route(&self, side: Side, call_id: &str, msg: CallMsg) -> bool {
        let inbox = {
            let Ok(legs) = self.by_leg.lock() else {
                return false;
            };
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
        self.by_id.lock().map(|m| m.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn list(&self) -> Vec<LiveCall> {
        let Ok(ids) = self.by_id.lock() else {
            return Vec::new();
        };
        let mut v: Vec<LiveCall> = ids
            .values()
            .filter(|e| !e.ended.load(std::sync::atomic::Ordering::SeqCst))
            .map(|e| (*e.info).clone())
            .collect();
        v.sort_by(|a, b| a.started_at.cmp(&b.started_at).then(a.id.cmp(&b.id)));
        v
    }

    /// Ask one call to end; false when no such call.
    pub fn hangup(&self, id: &str, reason: &'static str) -> bool {
        let inbox = {
            let Ok(ids) = self.by_id.lock() else {
                return false;
            };
            match ids.get(id) {
                Some(e) if !e.ended.load(std::sync::atomic::Ordering::SeqCst) => e.inbox.clone(),
                _ => return false,
            }
        };
        inbox.try_send(CallMsg::Hangup(reason)).is_ok()
    }

    /// Ask every call to end.
    pub fn hangup_all(&self, reason: &'static str) {
        let inboxes: Vec<_> = match self.by_id.lock() {
            Ok(ids) => ids.values().map(|e| e.inbox.clone()).collect(),
            Err(_) => return,
        };
        for inbox in inboxes {
            let _ = inbox.try_send(CallMsg::Hangup(reason));
        }
    }
}

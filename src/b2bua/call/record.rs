//! What a call accumulates for its CDR while it runs.

use chrono::{DateTime, Utc};

use crate::monitor::cdr::{Cdr, Direction, Disposition, HangupSide};
use crate::monitor::q850;

#[derive(Debug, Clone)]
pub(crate) struct CdrDraft {
    pub id: String,
    pub inside_call_id: Option<String>,
    pub outside_call_id: Option<String>,
    pub trunk: Option<String>,
    pub direction: Direction,
    pub source: String,
    pub caller: Option<String>,
    pub callee: Option<String>,
    pub presented_from: Option<String>,
    pub pai: Option<String>,
    pub invite_at: DateTime<Utc>,
    pub ringing_at: Option<DateTime<Utc>>,
    pub answer_at: Option<DateTime<Utc>>,
    /// An explicit cause from the far end (Reason: Q.850;cause=N) wins over the mapping.
    pub q850: Option<u8>,
    pub refusal_reason: Option<String>,
    /// Concurrency right after admission (trunk, caller ID), for the peak-concurrency KPI.
    pub trunk_active: Option<u32>,
    pub caller_active: Option<u32>,
}

impl CdrDraft {
    /// The CDR of a call still in progress, for the journal: a crash leaves this behind and
    /// the next start closes it with end reason `gateway_restart`.
    pub fn provisional(&self) -> Cdr {
        let disposition = if self.answer_at.is_some() {
            Disposition::Answered
        } else {
            Disposition::Failed
        };
        self.finish(0, "In Progress", disposition, "in_progress", None)
    }

    pub fn finish(
        &self,
        status: u16,
        reason: &str,
        disposition: Disposition,
        end_reason: &str,
        hangup: Option<HangupSide>,
    ) -> Cdr {
        let end_at = Utc::now();
        let talk_ms = self
            .answer_at
            .map(|a| (end_at - a).num_milliseconds().max(0))
            .unwrap_or(0);
        let q850_cause = self.q850.or_else(|| {
            if disposition == Disposition::Answered {
                Some(16)
            } else {
                q850::cause_for_sip(status)
            }
        });
        Cdr {
            id: self.id.clone(),
            inside_call_id: self.inside_call_id.clone(),
            outside_call_id: self.outside_call_id.clone(),
            trunk: self.trunk.clone(),
            direction: self.direction,
            source: self.source.clone(),
            caller: self.caller.clone(),
            callee: self.callee.clone(),
            presented_from: self.presented_from.clone(),
            pai: self.pai.clone(),
            invite_at: self.invite_at,
            ringing_at: self.ringing_at,
            answer_at: self.answer_at,
            end_at,
            talk_ms,
            final_status: if disposition == Disposition::Answered {
                200
            } else {
                status
            },
            final_reason: if disposition == Disposition::Answered {
                "OK".to_string()
            } else {
                reason.to_string()
            },
            q850_cause,
            hangup_side: hangup,
            disposition,
            end_reason: end_reason.to_string(),
            refusal_reason: self.refusal_reason.clone(),
            trunk_active: self.trunk_active,
            caller_active: self.caller_active,
            media: Vec::new(),
            recording: None,
            dtmf: Vec::new(),
        }
    }
}

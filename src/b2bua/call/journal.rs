//! The call's journal entry: its CDR so far (with the recording's PCI pauses), the recording
//! file being written, and its dialog state. Written when the call starts, when B changes
//! (failover), at the answer, when the recording opens and at each pause and resume, so that a
//! crash at any point leaves a CDR to close (its pauses on it) and dialogs a restart can end
//! (`b2bua::restart`).

use super::*;
use crate::b2bua::restart::record::{DialogRecord, LegRecord, LegState};

impl Call {
    /// Record the call in progress in the journal.
    pub(super) fn journal(&self) {
        // Relative to the recordings folder, like the CDR's: a survivor finds it in a shared one.
        let part = self
            .recorder
            .as_ref()
            .map(|r| match &self.ctx.settings.recording {
                Some(s) => s.pool.stored_path(&r.part_path()),
                None => r.part_path().display().to_string(),
            });
        // Encoded by the CDR writer if this entry is the one it writes (`store::Dialogs`).
        let dialogs = crate::store::Dialogs::new(self.dialog_record());
        let mut provisional = self.attempt.provisional(chrono::Utc::now());
        provisional.recording_pauses = self.pauses.journaled(std::time::Instant::now());
        self.ctx
            .cdrs
            .journal_with_dialogs(provisional, part, Some(dialogs));
    }

    /// The legs a peer may hold right now, and how each would be ended.
    fn dialog_record(&self) -> DialogRecord {
        let answered = self.phase == Phase::Answered;
        let a = if answered {
            Some(LegState::Confirmed)
        } else if !self.a_final_sent {
            Some(LegRecord::invited(self.a_tx.request()))
        } else {
            // A had a non-2xx final response: nothing left open on its side.
            None
        };
        let b = if answered {
            Some(LegState::Confirmed)
        } else if !self.b_final_seen {
            self.b_invite.as_ref().and_then(LegRecord::inviting)
        } else {
            None
        };
        let legs = [(&self.a, a), (&self.b, b)]
            .into_iter()
            .filter_map(|(leg, state)| state.map(|s| LegRecord::new(leg, s)))
            .collect();
        DialogRecord { legs }
    }
}

//! PCI pause/resume of a call's recording (issue 17, item 5): while a card number is spoken the
//! agent's desktop (`POST /api/v1/calls/{id}/recording/pause`, `/resume`) or the agent's phone
//! (the trunk's `pause_dtmf` / `resume_dtmf`, recognised by the relay) pauses the recording.
//!
//! Paused, the relay copies no packet to the recorder (`MediaSession::set_recording_paused`):
//! the paused audio never reaches the recorder's queue, let alone the disk (nor the pcap). The
//! recorder's clock goes on (`Timeline::observe_clock`), so the interval is silence on both
//! channels and the file keeps the call's length. The intervals, as positions in the file (ms
//! from its first sample), who paused and how each ended, go on the CDR. A pause left open
//! resumes by itself after `[recording] max_pause_secs` (logged). DTMF digits keyed while paused
//! are not put on the CDR either (a card number keyed on the phone). Each pause and resume is
//! journaled (the provisional CDR carries the intervals, an open one as `call_ended`), so a
//! crash leaves them for the restart to put on the CDR it closes.

use std::time::{Duration, Instant as StdInstant};

use tokio::sync::oneshot;
use tokio::time::Instant;

use super::Call;
use crate::media::DtmfCommand;
use crate::model::{PauseEnd, RecordingPause, PAUSED_BY_DTMF};

/// Pause or resume.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PauseAction {
    Pause,
    Resume,
}

impl PauseAction {
    pub fn as_str(self) -> &'static str {
        match self {
            PauseAction::Pause => "pause",
            PauseAction::Resume => "resume",
        }
    }
}

/// What a pause or resume request came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PauseOutcome {
    /// Done: the recording is now paused (or not), from `at_ms` in the file.
    Done { paused: bool, at_ms: i64 },
    /// Asked to pause a paused recording.
    AlreadyPaused,
    /// Asked to resume a recording that is not paused.
    NotPaused,
    /// The call is not being recorded (not answered yet, recording off or failed).
    NotRecording,
}

/// A call's pauses.
#[derive(Debug)]
pub(crate) struct Pauses {
    /// Position 0 of the recording (its `RecordingSpec::started`), once armed.
    recording_started: Option<StdInstant>,
    /// The pause under way: since when, and who.
    open: Option<(StdInstant, String)>,
    done: Vec<RecordingPause>,
    /// When the open pause resumes by itself.
    deadline: Option<Instant>,
    max_pause: Duration,
    /// Digits keyed while paused, kept off the CDR.
    masked_digits: u64,
}

impl Pauses {
    pub(crate) fn new(max_pause: Duration) -> Pauses {
        Pauses {
            recording_started: None,
            open: None,
            done: Vec::new(),
            deadline: None,
            max_pause,
            masked_digits: 0,
        }
    }

    /// The recording's position 0 (when it is armed).
    pub(crate) fn recording_armed(&mut self, started: StdInstant) {
        self.recording_started = Some(started);
    }

    pub(crate) fn is_paused(&self) -> bool {
        self.open.is_some()
    }

    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// A digit keyed while paused: counted, not kept.
    pub(crate) fn mask_digit(&mut self) {
        self.masked_digits += 1;
    }

    fn position_ms(&self, at: StdInstant) -> i64 {
        self.recording_started.map_or(0, |s| {
            i64::try_from(at.saturating_duration_since(s).as_millis()).unwrap_or(i64::MAX)
        })
    }

    /// The intervals so far, for the journal: an open one as if it ended now (`call_ended`,
    /// which a restart after a crash extends to the crash, `monitor::recovery`).
    pub(crate) fn journaled(&self, now: StdInstant) -> Vec<RecordingPause> {
        let mut out = self.done.clone();
        if let Some((since, by)) = &self.open {
            let start_ms = self.position_ms(*since);
            out.push(RecordingPause {
                start_ms,
                end_ms: self.position_ms(now).max(start_ms),
                paused_by: by.clone(),
                resumed_by: None,
                ended: PauseEnd::CallEnded,
            });
        }
        out
    }

    /// The intervals for the CDR, an open one closed at `ended` (the recording's end).
    pub(crate) fn finish(&mut self, ended: StdInstant) -> Vec<RecordingPause> {
        if let Some((since, by)) = self.open.take() {
            let (start_ms, end_ms) = (self.position_ms(since), self.position_ms(ended));
            self.done.push(RecordingPause {
                start_ms,
                end_ms: end_ms.max(start_ms),
                paused_by: by,
                resumed_by: None,
                ended: PauseEnd::CallEnded,
            });
        }
        self.deadline = None;
        if self.masked_digits > 0 {
            tracing::info!(
                digits = self.masked_digits,
                "DTMF digits keyed while the recording was paused kept off the CDR"
            );
        }
        std::mem::take(&mut self.done)
    }
}

impl Call {
    /// An API caller (`by`: its token's name) asks to pause or resume; the answer goes back
    /// on `reply`.
    pub(super) fn on_recording_request(
        &mut self,
        action: PauseAction,
        by: String,
        reply: oneshot::Sender<PauseOutcome>,
    ) {
        let outcome = match action {
            PauseAction::Pause => self.pause_recording(by),
            PauseAction::Resume => self.resume_recording(Some(by), PauseEnd::Resumed),
        };
        // The caller may have given up waiting: nothing to do.
        let _ = reply.send(outcome);
    }

    /// The agent keyed a DTMF command (the relay did not pass it on).
    pub(super) fn on_dtmf_command(&mut self, command: DtmfCommand) {
        let outcome = match command {
            DtmfCommand::PauseRecording => self.pause_recording(PAUSED_BY_DTMF.to_string()),
            DtmfCommand::ResumeRecording => {
                self.resume_recording(Some(PAUSED_BY_DTMF.to_string()), PauseEnd::Resumed)
            }
        };
        if !matches!(outcome, PauseOutcome::Done { .. }) {
            tracing::info!(command = command.as_str(), outcome = ?outcome, "DTMF command had no effect");
        }
    }

    fn pause_recording(&mut self, by: String) -> PauseOutcome {
        let recording = self.tapping
            && self.phase != super::Phase::Ended
            && self.pauses.recording_started.is_some();
        let Some(media) = self.media.as_ref().filter(|_| recording) else {
            return PauseOutcome::NotRecording;
        };
        if self.pauses.is_paused() {
            return PauseOutcome::AlreadyPaused;
        }
        media.set_recording_paused(true);
        // The paused interval is silence in the file even if no packet was recorded before
        // it (a recording writes nothing before its first packet otherwise).
        if let Some(rec) = &self.recorder {
            rec.follow_clock();
        }
        let now = StdInstant::now();
        let at_ms = self.pauses.position_ms(now);
        tracing::info!(by = %by, at_ms, "recording paused");
        self.pauses.open = Some((now, by));
        self.pauses.deadline = Some(Instant::now() + self.pauses.max_pause);
        // A crash from now on leaves the pause on the journaled CDR.
        self.journal();
        PauseOutcome::Done {
            paused: true,
            at_ms,
        }
    }

    /// Resumes the open pause: `by` names who (none when it ends otherwise).
    pub(super) fn resume_recording(&mut self, by: Option<String>, ended: PauseEnd) -> PauseOutcome {
        let Some((since, paused_by)) = self.pauses.open.take() else {
            return if self.pauses.recording_started.is_some() && self.tapping {
                PauseOutcome::NotPaused
            } else {
                PauseOutcome::NotRecording
            };
        };
        if let Some(media) = &self.media {
            media.set_recording_paused(false);
        }
        let now = StdInstant::now();
        let (start_ms, end_ms) = (self.pauses.position_ms(since), self.pauses.position_ms(now));
        match ended {
            PauseEnd::MaxPause => tracing::warn!(
                paused_by = %paused_by,
                secs = self.pauses.max_pause.as_secs(),
                "recording paused for [recording] max_pause_secs: resumed by itself"
            ),
            _ => tracing::info!(
                by = by.as_deref().unwrap_or("-"),
                end_ms,
                "recording resumed"
            ),
        }
        self.pauses.done.push(RecordingPause {
            start_ms,
            end_ms,
            paused_by,
            resumed_by: by,
            ended,
        });
        self.pauses.deadline = None;
        self.journal();
        PauseOutcome::Done {
            paused: false,
            at_ms: end_ms,
        }
    }

    /// The pause's time is up: resume by itself.
    pub(super) fn on_pause_timer(&mut self, now: Instant) {
        if self.pauses.deadline.is_some_and(|d| now >= d) {
            self.resume_recording(None, PauseEnd::MaxPause);
        }
    }
}

//! `KpiCounters`: what one call attempt adds to a subject's figures, mergeable across buckets,
//! and the ratios derived from them.
//!
//! Denominators: the ratios (ASR, NER, error rate, network error ratio) are over the attempts
//! **offered to the carrier**, `attempts − refused_by_gateway`. Our own refusals never reach the
//! carrier, and a suspended number's refused attempts must not dilute (or inflate) its error
//! rate; both `attempts` and `refused_by_gateway` are reported so the raw figures stay visible.
//! ACD and the short-call ratio are over answered calls; complaints per 1,000 answered calls.
//!
//! Classification (the final SIP status and the disposition of the CDR):
//! - refused by our policy (`Disposition::Refused`): `refused_by_gateway` only, whatever status;
//! - answered: `answered`, `talk_ms`, `short_calls` (< 6 s), `over_long` (> the over-long
//!   threshold), `silent_calls` (no RTP packet from either leg: the recording is `no_media`, or
//!   unrecorded with both legs' counts at 0);
//! - busy (486, 600), no answer (480, 487, 408 after ringing, and a caller's CANCEL after
//!   ringing: the network reached the user), rejected by user (603);
//! - invalid number: 404, 410, 484, 604 from the far end;
//! - network error: 408 before any ringing, 500, 502, 503, 504 from the far end;
//! - a CANCEL before any ringing is `cancelled`: neither effective nor an error.

use serde::{Deserialize, Serialize};

use super::pdd::PddHistogram;
use crate::model::{Cdr, Disposition, RecordingStatus, RefusalReason};

/// Answered calls shorter than this are short calls.
pub const SHORT_CALL_MS: i64 = 6_000;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct KpiCounters {
    pub attempts: u64,
    /// Refused by our own policy (never offered to the carrier).
    pub refused_by_gateway: u64,
    /// Of those, refused for calling outside the trunk's calling hours.
    pub refused_outside_hours: u64,
    /// Of those, refused because the caller ID is not the trunk's.
    pub refused_unauthorized: u64,
    pub answered: u64,
    pub busy: u64,
    pub no_answer: u64,
    pub rejected_by_user: u64,
    pub cancelled: u64,
    pub invalid_number: u64,
    pub network_errors: u64,
    pub talk_ms: u64,
    pub short_calls: u64,
    pub over_long: u64,
    /// Answered calls that carried no audio at all.
    pub silent_calls: u64,
    pub pdd: PddHistogram,
    /// Largest concurrency reported by admission (max, not a sum, when merged).
    pub peak_concurrency: u32,
    pub complaints: u64,
}

/// An answered call that carried no audio: its recording holds none, or (unrecorded) the relay
/// counted no packet from either leg.
fn is_silent(cdr: &Cdr) -> bool {
    match &cdr.recording {
        Some(r) if r.status != RecordingStatus::Failed => r.status == RecordingStatus::NoMedia,
        _ => !cdr.media.is_empty() && cdr.media.iter().all(|q| q.packets_in == 0),
    }
}

impl KpiCounters {
    /// What one attempt adds. `over_long_secs`: the trunk's `over_long_call` threshold.
    pub fn from_cdr(cdr: &Cdr, over_long_secs: u64) -> KpiCounters {
        let mut k = KpiCounters {
            attempts: 1,
            ..KpiCounters::default()
        };
        if cdr.outcome.disposition == Disposition::Refused {
            k.refused_by_gateway = 1;
            match cdr.outcome.refusal_reason {
                Some(RefusalReason::OutsideCallingHours) => k.refused_outside_hours = 1,
                Some(RefusalReason::CallerIdNotAuthorized) => k.refused_unauthorized = 1,
                _ => {}
            }
            return k;
        }
        if let Some(ringing) = cdr.attempt.ringing_at {
            let ms = (ringing - cdr.attempt.invite_at).num_milliseconds().max(0);
            k.pdd.record(ms as u64);
        }
        let rang = cdr.attempt.ringing_at.is_some();
        match cdr.outcome.disposition {
            Disposition::Answered => {
                let talk = cdr.outcome.talk_ms.max(0);
                k.answered = 1;
                k.talk_ms = talk as u64;
                k.short_calls = u64::from(talk < SHORT_CALL_MS);
                k.over_long = u64::from(talk as u64 > over_long_secs.saturating_mul(1_000));
                k.silent_calls = u64::from(is_silent(cdr));
            }
            Disposition::Busy => k.busy = 1,
            Disposition::NoAnswer => k.no_answer = 1,
            Disposition::Cancelled if rang => k.no_answer = 1,
            Disposition::Cancelled => k.cancelled = 1,
            Disposition::Rejected | Disposition::Failed => match cdr.outcome.final_status {
                603 => k.rejected_by_user = 1,
                404 | 410 | 484 | 604 => k.invalid_number = 1,
                408 if !rang => k.network_errors = 1,
                500 | 502 | 503 | 504 => k.network_errors = 1,
                _ => {}
            },
            Disposition::Refused => {}
        }
        k
    }

    /// Add another bucket's figures (peak concurrency: the larger).
    pub fn merge(&mut self, o: &KpiCounters) {
        self.attempts += o.attempts;
        self.refused_by_gateway += o.refused_by_gateway;
        self.refused_outside_hours += o.refused_outside_hours;
        self.refused_unauthorized += o.refused_unauthorized;
        self.answered += o.answered;
        self.busy += o.busy;
        self.no_answer += o.no_answer;
        self.rejected_by_user += o.rejected_by_user;
        self.cancelled += o.cancelled;
        self.invalid_number += o.invalid_number;
        self.network_errors += o.network_errors;
        self.talk_ms = self.talk_ms.saturating_add(o.talk_ms);
        self.short_calls += o.short_calls;
        self.over_long += o.over_long;
        self.silent_calls += o.silent_calls;
        self.pdd.merge(&o.pdd);
        self.peak_concurrency = self.peak_concurrency.max(o.peak_concurrency);
        self.complaints += o.complaints;
    }

    /// Attempts that reached the carrier: the denominator of the ratios.
    pub fn offered(&self) -> u64 {
        self.attempts.saturating_sub(self.refused_by_gateway)
    }

    fn over_offered(&self, n: u64) -> Option<f64> {
        ratio(n, self.offered())
    }

    /// ASR = answered / offered.
    pub fn asr(&self) -> Option<f64> {
        self.over_offered(self.answered)
    }

    /// NER = (answered + busy + no answer + rejected by user) / offered.
    pub fn ner(&self) -> Option<f64> {
        self.over_offered(self.answered + self.busy + self.no_answer + self.rejected_by_user)
    }

    /// ACD in seconds = talk time / answered.
    pub fn acd_secs(&self) -> Option<f64> {
        ratio(self.talk_ms, self.answered).map(|ms| ms / 1_000.0)
    }

    /// Answered calls shorter than 6 s / answered.
    pub fn short_call_ratio(&self) -> Option<f64> {
        ratio(self.short_calls, self.answered)
    }

    /// Invalid-number rate = (404, 410, 484, 604) / offered.
    pub fn error_rate(&self) -> Option<f64> {
        self.over_offered(self.invalid_number)
    }

    /// (408 before ringing, 500, 502, 503, 504) / offered.
    pub fn network_error_ratio(&self) -> Option<f64> {
        self.over_offered(self.network_errors)
    }

    pub fn pdd_mean_ms(&self) -> Option<f64> {
        self.pdd.mean_ms()
    }

    /// See the module doc of `pdd` for the resolution.
    pub fn pdd_p95_ms(&self) -> Option<u64> {
        self.pdd.p95_ms()
    }

    pub fn complaints_per_1000_answered(&self) -> Option<f64> {
        ratio(self.complaints, self.answered).map(|r| r * 1_000.0)
    }

    pub fn is_empty(&self) -> bool {
        *self == KpiCounters::default()
    }
}

fn ratio(n: u64, d: u64) -> Option<f64> {
    (d > 0).then(|| n as f64 / d as f64)
}

impl crate::store::BucketCounters for KpiCounters {
    fn merge(&mut self, other: &Self) {
        KpiCounters::merge(self, other);
    }
}

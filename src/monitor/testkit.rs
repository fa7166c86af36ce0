//! Synthetic CDRs and a fake clock for the monitor's tests.

use chrono::{DateTime, Duration, TimeZone, Utc};

use crate::model::{self, Attempt, Cdr, Direction, Disposition, EndReason, RefusalReason};

pub const TRUNK: &str = "demo";
pub const CALLER: &str = "861012345678";
pub const CALLER2: &str = "861012345679";

/// 2024-03-01 12:00:00 UTC.
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 3, 1, 12, 0, 0).unwrap()
}

pub fn secs(n: i64) -> Duration {
    Duration::seconds(n)
}

/// How a synthetic attempt ends.
#[derive(Debug, Clone, Copy)]
pub enum Outcome {
    /// Answered with this many seconds of talk; PDD 2 s.
    Answered(i64),
    /// A final failure status from the far end; rang first when `rang`.
    Status(u16, bool),
    /// Refused by our policy with this reason code.
    Refused(RefusalReason),
}

/// An outbound attempt on `demo` from `caller` to `callee`, ending at `end`.
pub fn cdr(id: &str, caller: &str, callee: &str, end: DateTime<Utc>, outcome: Outcome) -> Cdr {
    let mut c = Cdr {
        attempt: Attempt {
            id: id.to_string(),
            inside_call_id: None,
            outside_call_id: None,
            trunk: Some(TRUNK.to_string()),
            direction: Direction::Outbound,
            source: "10.0.0.5:5060".to_string(),
            caller: Some(caller.to_string()),
            callee: Some(callee.to_string()),
            presented_from: None,
            pai: None,
            invite_at: end,
            ringing_at: None,
            answer_at: None,
            trunk_active: None,
            caller_active: None,
            node: None,
        },
        outcome: model::Outcome {
            end_at: end,
            talk_ms: 0,
            final_status: 0,
            final_reason: String::new(),
            q850_cause: None,
            hangup_side: None,
            disposition: Disposition::Failed,
            end_reason: EndReason::Rejected,
            refusal_reason: None,
            declined_media: Vec::new(),
        },
        media: vec![],
        recording: None,
        dtmf: vec![],
        recording_pauses: vec![],
    };
    match outcome {
        Outcome::Answered(talk) => {
            let answer = end - secs(talk);
            c.attempt.invite_at = answer - secs(10);
            c.attempt.ringing_at = Some(c.attempt.invite_at + secs(2));
            c.attempt.answer_at = Some(answer);
            c.outcome.talk_ms = talk * 1_000;
            c.outcome.final_status = 200;
            c.outcome.disposition = Disposition::Answered;
            c.outcome.end_reason = EndReason::NormalClearing;
        }
        Outcome::Status(status, rang) => {
            c.attempt.invite_at = end - secs(5);
            c.attempt.ringing_at = rang.then(|| c.attempt.invite_at + secs(1));
            c.outcome.final_status = status;
            c.outcome.disposition =
                Disposition::from_final_with_ringing(status, false, false, rang);
            c.outcome.end_reason = EndReason::for_failure_status(status);
        }
        Outcome::Refused(reason) => {
            c.outcome.final_status = 403;
            c.outcome.disposition = Disposition::Refused;
            c.outcome.end_reason = EndReason::Refused;
            c.outcome.refusal_reason = Some(reason);
        }
    }
    c
}

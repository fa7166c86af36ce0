//! The ground floor: the vocabulary every part speaks — the call record and its outcome codes,
//! a number, a side of the trunk, an enforcement subject and step, the live calls. Nothing here
//! does I/O or imports another part of the crate, so every part may import it (see the import
//! rules in docs/architecture.md).

/// A `Copy` enum whose variants have stable text codes (stored in the database, shown in JSON,
/// used as metric labels): `as_str`, `FromStr` (an unknown code is an [`UnknownCode`] naming
/// it), `Display`, and `ALL`, every variant in declaration order. The codes are written once,
/// here, so a variant cannot be added without its code.
macro_rules! text_enum {
    ($name:ident, $kind:literal, { $($variant:ident => $text:literal),+ $(,)? }) => {
        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The code stored in the database and used in JSON.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }
        impl std::str::FromStr for $name {
            type Err = $crate::model::UnknownCode;
            fn from_str(s: &str) -> Result<Self, $crate::model::UnknownCode> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err($crate::model::UnknownCode { kind: $kind, value: s.to_string() }),
                }
            }
        }
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

pub mod cdr;
pub mod enforcement;
pub mod live;
pub mod media;
pub mod number;
pub mod outcome;
pub mod q850;
pub mod refusal;
pub mod side;
pub mod sip_trace;
pub mod status;

pub use cdr::{ms_precision, Attempt, Cdr, Outcome};
pub use enforcement::{Step, StepAction, Subject, SubjectKind};
pub use live::{LiveCallView, LiveCalls};
pub use media::{
    DtmfEvent, LegQuality, PauseEnd, RecordingInfo, RecordingPause, RecordingStatus, PAUSED_BY_DTMF,
};
pub use number::normalize_number;
pub use outcome::{Disposition, EndReason, Ending, HangupSide, RefusalReason, RetryAfter};
pub use side::{Direction, Side};
pub use sip_trace::{SipTrace, SipTraceError, TraceDirection, TraceTransport, TracedMessage};
pub use status::StatusLine;

/// Raised when a stored code is not one of ours.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} code `{value}`")]
pub struct UnknownCode {
    pub kind: &'static str,
    pub value: String,
}

#[cfg(test)]
pub(crate) use cdr::sample_cdr;

//! Errors of the front end: stream framing errors (the connection must be closed) and the
//! internal fault value every check returns.

use super::Rejection;

/// A stream can no longer be framed: send `rejection` (if any) and close the connection.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FramingError {
    #[error("header section longer than {limit} bytes")]
    HeaderTooLarge {
        limit: usize,
        rejection: Option<Box<Rejection>>,
    },
    #[error("message of {size} bytes exceeds the limit")]
    MessageTooLarge {
        size: u64,
        rejection: Option<Box<Rejection>>,
    },
    #[error("no Content-Length on a stream transport")]
    MissingContentLength { rejection: Option<Box<Rejection>> },
    #[error("bad Content-Length: {detail}")]
    BadContentLength {
        detail: &'static str,
        rejection: Option<Box<Rejection>>,
    },
    #[error("more data pushed than the buffer may hold")]
    BufferOverflow,
    #[error("the stream already failed; close the connection")]
    Failed,
}

impl FramingError {
    /// The error response to send before closing, when the broken message was a request.
    pub fn rejection(&self) -> Option<&Rejection> {
        match self {
            FramingError::HeaderTooLarge { rejection, .. }
            | FramingError::MessageTooLarge { rejection, .. }
            | FramingError::MissingContentLength { rejection }
            | FramingError::BadContentLength { rejection, .. } => rejection.as_deref(),
            FramingError::BufferOverflow | FramingError::Failed => None,
        }
    }
}

/// Why a message is refused: the status and reason to answer a request with, extra headers for
/// the response (Allow on 501), and what to log when the message is a response and is dropped.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Fault {
    pub status: u16,
    pub reason: String,
    pub headers: Vec<rsip::Header>,
    pub drop: &'static str,
}

impl Fault {
    pub fn new(status: u16, reason: impl Into<String>, drop: &'static str) -> Self {
        Fault {
            status,
            reason: reason.into(),
            headers: Vec::new(),
            drop,
        }
    }

    /// 400 Bad Request with a reason that names the problem.
    pub fn bad(reason: impl Into<String>) -> Self {
        Fault::new(400, reason, "malformed response")
    }

    pub fn too_large(reason: impl Into<String>) -> Self {
        Fault::new(513, reason, "response exceeds limits")
    }
}

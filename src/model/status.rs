//! SIP status lines the gateway itself sends: a code with its reason phrase, written once here
//! rather than typed by hand at each place that answers.

/// A final (or provisional) status with its reason phrase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusLine {
    pub code: u16,
    pub phrase: &'static str,
}

impl StatusLine {
    pub const fn new(code: u16, phrase: &'static str) -> StatusLine {
        StatusLine { code, phrase }
    }

    pub const TRYING: StatusLine = StatusLine::new(100, "Trying");
    pub const OK: StatusLine = StatusLine::new(200, "OK");
    pub const BAD_REQUEST: StatusLine = StatusLine::new(400, "Bad Request");
    pub const FORBIDDEN: StatusLine = StatusLine::new(403, "Forbidden");
    pub const NOT_FOUND: StatusLine = StatusLine::new(404, "Not Found");
    pub const REQUEST_TIMEOUT: StatusLine = StatusLine::new(408, "Request Timeout");
    pub const TEMPORARILY_UNAVAILABLE: StatusLine = StatusLine::new(480, "Temporarily Unavailable");
    pub const CALL_DOES_NOT_EXIST: StatusLine =
        StatusLine::new(481, "Call/Transaction Does Not Exist");
    pub const LOOP_DETECTED: StatusLine = StatusLine::new(482, "Loop Detected");
    pub const ADDRESS_INCOMPLETE: StatusLine = StatusLine::new(484, "Address Incomplete");
    pub const NOT_ACCEPTABLE_HERE: StatusLine = StatusLine::new(488, "Not Acceptable Here");
    pub const REQUEST_TERMINATED: StatusLine = StatusLine::new(487, "Request Terminated");
    pub const REQUEST_PENDING: StatusLine = StatusLine::new(491, "Request Pending");
    pub const SERVER_INTERNAL_ERROR: StatusLine = StatusLine::new(500, "Server Internal Error");
    /// The far side's response could not be used (an answer the gateway cannot anchor).
    pub const BAD_GATEWAY: StatusLine = StatusLine::new(502, "Bad Gateway");
    pub const SERVICE_UNAVAILABLE: StatusLine = StatusLine::new(503, "Service Unavailable");
    /// To an INVITE a crash left unanswered, at the next start (and the CDR's final status).
    pub const GATEWAY_RESTART: StatusLine = StatusLine::new(500, "Gateway Restart");
    /// To an INVITE a lost cluster node left unanswered, from a survivor (and the CDR's).
    pub const NODE_LOST: StatusLine = StatusLine::new(500, "Node Lost");
    /// Not sent: the status of the provisional CDR a running call journals (a crash leaves it
    /// behind until the next start closes it).
    pub const IN_PROGRESS: StatusLine = StatusLine::new(0, "In Progress");
}

impl std::fmt::Display for StatusLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.code, self.phrase)
    }
}

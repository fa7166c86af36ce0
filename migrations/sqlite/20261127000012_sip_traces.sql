-- Each call's SIP trace (docs/architecture.md, "SIP trace"): every message of both legs as it
-- crossed the wire, gzip-compressed JSON (`model::SipTrace::encode`), one row per attempt,
-- refused ones included. No foreign key to cdrs: the trace is written by its own writer and may
-- land just before its CDR. `invite_at` (the INVITE's arrival, UTC text like the other times) is
-- what the retention purge compares with the recordings' cutoff; a call on legal hold keeps it.
CREATE TABLE IF NOT EXISTS sip_traces (
    cdr_id    TEXT    NOT NULL PRIMARY KEY,
    invite_at TEXT    NOT NULL,
    messages  INTEGER NOT NULL,
    trace     BLOB    NOT NULL
);
CREATE INDEX IF NOT EXISTS sip_traces_invite_at ON sip_traces (invite_at);

-- PostgreSQL twin of migrations/sqlite/20261127000011_sip_traces.sql (see there).
CREATE TABLE IF NOT EXISTS sip_traces (
    cdr_id    text COLLATE "C" NOT NULL PRIMARY KEY,
    invite_at timestamptz NOT NULL,
    messages  bigint NOT NULL,
    trace     bytea NOT NULL
);
CREATE INDEX IF NOT EXISTS sip_traces_invite_at ON sip_traces (invite_at);

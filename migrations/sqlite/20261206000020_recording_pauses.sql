-- PCI pause/resume of a call's recording (issue 17, item 5).

-- The intervals during which a call's recording was paused, written with its CDR (like
-- dtmf_events). seq is the pause's position in Cdr::recording_pauses; start_ms and end_ms are
-- positions in the recording (ms from its first sample); paused_by and resumed_by name the API
-- token or 'dtmf'; ended says how the pause ended. No CHECK on `ended`: the CDR writer retries
-- a refused batch forever, and the Rust type cannot produce another value.
CREATE TABLE IF NOT EXISTS recording_pauses (
    cdr_id      TEXT    NOT NULL REFERENCES cdrs (id) ON DELETE CASCADE,
    seq         INTEGER NOT NULL,
    start_ms    INTEGER NOT NULL,
    end_ms      INTEGER NOT NULL,
    paused_by   TEXT    NOT NULL,
    resumed_by  TEXT,
    ended       TEXT    NOT NULL,
    PRIMARY KEY (cdr_id, seq)
);

-- The `agent` role: a token that may only pause and resume recordings of live calls. SQLite
-- cannot change a CHECK in place: the table is rebuilt (its ids kept, so audit rows still name
-- the same tokens).
CREATE TABLE api_tokens_new (
    id            INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    name          TEXT    NOT NULL UNIQUE,
    role          TEXT    NOT NULL CHECK (role IN ('admin', 'compliance', 'carrier', 'agent')),
    trunks        TEXT    NOT NULL DEFAULT '[]',
    token_sha256  TEXT    NOT NULL UNIQUE,
    created_at    TEXT    NOT NULL,
    revoked_at    TEXT
);

INSERT INTO api_tokens_new (id, name, role, trunks, token_sha256, created_at, revoked_at)
SELECT id, name, role, trunks, token_sha256, created_at, revoked_at FROM api_tokens;

DROP TABLE api_tokens;
ALTER TABLE api_tokens_new RENAME TO api_tokens;

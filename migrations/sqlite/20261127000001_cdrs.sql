-- One row per call attempt, admitted or refused, answered or not.
-- Times are UTC text 'YYYY-MM-DDTHH:MM:SS.mmmZ': they sort correctly as text and read as-is in sqlite3.
-- CHECKs only cover values the Rust types cannot produce wrongly (enum codes): a CHECK that a valid
-- Cdr could violate would make the CDR writer retry that batch forever.
-- No STRICT table: sqlite3 shells older than 3.37 could not open the file for a compliance officer.
CREATE TABLE IF NOT EXISTS cdrs (
    id              TEXT    NOT NULL PRIMARY KEY,
    inside_call_id  TEXT,
    outside_call_id TEXT,
    trunk           TEXT,
    direction       TEXT    NOT NULL CHECK (direction IN ('outbound', 'inbound')),
    source          TEXT    NOT NULL,
    caller          TEXT,
    callee          TEXT,
    presented_from  TEXT,
    pai             TEXT,
    invite_at       TEXT    NOT NULL,
    ringing_at      TEXT,
    answer_at       TEXT,
    end_at          TEXT    NOT NULL,
    talk_ms         INTEGER NOT NULL DEFAULT 0,
    final_status    INTEGER NOT NULL,
    final_reason    TEXT    NOT NULL,
    q850_cause      INTEGER,
    hangup_side     TEXT    CHECK (hangup_side IN ('inside', 'outside', 'gateway')),
    disposition     TEXT    NOT NULL CHECK (disposition IN
                        ('answered', 'busy', 'no_answer', 'cancelled', 'rejected', 'failed', 'refused')),
    end_reason      TEXT    NOT NULL,
    refusal_reason  TEXT
);

-- (invite_at, id) serves the "newest first" listing including its id tie-break; the others lead
-- with the filter column and end with invite_at, so per-trunk / per-number time ranges need no sort.
CREATE INDEX IF NOT EXISTS cdrs_invite_at ON cdrs (invite_at, id);
CREATE INDEX IF NOT EXISTS cdrs_trunk_invite_at ON cdrs (trunk, invite_at);
CREATE INDEX IF NOT EXISTS cdrs_caller_invite_at ON cdrs (caller, invite_at);
CREATE INDEX IF NOT EXISTS cdrs_callee_invite_at ON cdrs (callee, invite_at);

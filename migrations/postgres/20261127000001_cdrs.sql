-- PostgreSQL mirror of migrations/sqlite/20261127000001_cdrs.sql (same tables, indexes and
-- constraints; one file per SQLite file, same version). Types: times are timestamptz (bound and
-- read as chrono's DateTime<Utc>, milliseconds), integers bigint (Rust binds i64), text columns
-- COLLATE "C" so that text compares and sorts bytewise as in SQLite (keyset paging on
-- (invite_at, id) and every ORDER BY give the same order on both backends).
-- CHECKs only cover values the Rust types cannot produce wrongly (enum codes): a CHECK that a valid
-- Cdr could violate would make the CDR writer retry that batch forever.
CREATE TABLE IF NOT EXISTS cdrs (
    id              text COLLATE "C" NOT NULL PRIMARY KEY,
    inside_call_id  text COLLATE "C",
    outside_call_id text COLLATE "C",
    trunk           text COLLATE "C",
    direction       text COLLATE "C" NOT NULL CHECK (direction IN ('outbound', 'inbound')),
    source          text COLLATE "C" NOT NULL,
    caller          text COLLATE "C",
    callee          text COLLATE "C",
    presented_from  text COLLATE "C",
    pai             text COLLATE "C",
    invite_at       timestamptz NOT NULL,
    ringing_at      timestamptz,
    answer_at       timestamptz,
    end_at          timestamptz NOT NULL,
    talk_ms         bigint NOT NULL DEFAULT 0,
    final_status    bigint NOT NULL,
    final_reason    text COLLATE "C" NOT NULL,
    q850_cause      bigint,
    hangup_side     text COLLATE "C" CHECK (hangup_side IN ('inside', 'outside', 'gateway')),
    disposition     text COLLATE "C" NOT NULL CHECK (disposition IN
                        ('answered', 'busy', 'no_answer', 'cancelled', 'rejected', 'failed', 'refused')),
    end_reason      text COLLATE "C" NOT NULL,
    refusal_reason  text COLLATE "C"
);

-- (invite_at, id) serves the "newest first" listing including its id tie-break; the others lead
-- with the filter column and end with invite_at, so per-trunk / per-number time ranges need no sort.
CREATE INDEX IF NOT EXISTS cdrs_invite_at ON cdrs (invite_at, id);
CREATE INDEX IF NOT EXISTS cdrs_trunk_invite_at ON cdrs (trunk, invite_at);
CREATE INDEX IF NOT EXISTS cdrs_caller_invite_at ON cdrs (caller, invite_at);
CREATE INDEX IF NOT EXISTS cdrs_callee_invite_at ON cdrs (callee, invite_at);

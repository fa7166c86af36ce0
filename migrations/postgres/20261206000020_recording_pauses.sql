-- PostgreSQL mirror of migrations/sqlite/20261206000020_recording_pauses.sql: PCI pause/resume
-- of a call's recording (issue 17, item 5).

CREATE TABLE IF NOT EXISTS recording_pauses (
    cdr_id      text COLLATE "C" NOT NULL REFERENCES cdrs (id) ON DELETE CASCADE,
    seq         bigint NOT NULL,
    start_ms    bigint NOT NULL,
    end_ms      bigint NOT NULL,
    paused_by   text COLLATE "C" NOT NULL,
    resumed_by  text COLLATE "C",
    ended       text COLLATE "C" NOT NULL,
    PRIMARY KEY (cdr_id, seq)
);

-- The `agent` role (pause and resume recordings only).
ALTER TABLE api_tokens DROP CONSTRAINT IF EXISTS api_tokens_role_check;
ALTER TABLE api_tokens ADD CONSTRAINT api_tokens_role_check
    CHECK (role IN ('admin', 'compliance', 'carrier', 'agent'));

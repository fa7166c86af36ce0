-- Legal holds and retention (issue 5): a call on hold is exempt from the retention purge; the
-- purge logs what it deleted. Times are UTC text like the cdrs times.

-- One row per hold placed on a call. Releasing a hold fills released_at/released_by and keeps the
-- row (the history of who held what, when and why stays). A call is on hold while it has a row
-- with released_at NULL; at most one such row per call (the partial unique index).
-- No foreign key to cdrs: a hold may be placed on a call whose CDR is still being written, and
-- a hold never stops being evidence of itself.
CREATE TABLE IF NOT EXISTS legal_holds (
    id           INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    call_id      TEXT    NOT NULL,
    placed_at    TEXT    NOT NULL,
    placed_by    TEXT    NOT NULL,
    reason       TEXT    NOT NULL,
    released_at  TEXT,
    released_by  TEXT,
    release_reason TEXT
);
CREATE INDEX IF NOT EXISTS legal_holds_call ON legal_holds (call_id, id);
CREATE UNIQUE INDEX IF NOT EXISTS legal_holds_one_active ON legal_holds (call_id)
    WHERE released_at IS NULL;

-- A recording whose retention ran out: its files are deleted, the row stays (status, digests,
-- size: the record that it existed) with the time of the purge.
ALTER TABLE recordings ADD COLUMN purged_at TEXT;

-- What each purge deleted: kind 'recording' (the files; the row is marked purged_at) or 'cdr'
-- (the CDR with its media legs, recording row, DTMF and complaint links). `file` is the deleted
-- file for a recording (the WAV; the pcap too on a second row), NULL for a CDR. `note` says what
-- else happened (a file already missing). Append-only: triggers refuse UPDATE and DELETE.
CREATE TABLE IF NOT EXISTS retention_log (
    id        INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    at        TEXT    NOT NULL,
    kind      TEXT    NOT NULL CHECK (kind IN ('recording', 'cdr')),
    call_id   TEXT    NOT NULL,
    file      TEXT,
    note      TEXT
);
CREATE INDEX IF NOT EXISTS retention_log_at ON retention_log (at);
CREATE INDEX IF NOT EXISTS retention_log_call ON retention_log (call_id);

CREATE TRIGGER IF NOT EXISTS retention_log_no_update BEFORE UPDATE ON retention_log
BEGIN
    SELECT RAISE(ABORT, 'retention_log is append-only');
END;
CREATE TRIGGER IF NOT EXISTS retention_log_no_delete BEFORE DELETE ON retention_log
BEGIN
    SELECT RAISE(ABORT, 'retention_log is append-only');
END;

-- The purge looks up expired recordings not yet purged, oldest calls first.
CREATE INDEX IF NOT EXISTS recordings_purged ON recordings (purged_at);

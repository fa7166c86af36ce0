-- The HTTP API (issue 5): bearer tokens and the append-only audit log of every request.

-- A token is shown once when created; only its SHA-256 (hex) is kept. `trunks` is a JSON array
-- of trunk names a carrier token is limited to ('[]': every trunk; other roles always '[]').
-- A revoked token stays listed (its name stays taken, so audit rows keep one meaning).
CREATE TABLE IF NOT EXISTS api_tokens (
    id            INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    name          TEXT    NOT NULL UNIQUE,
    role          TEXT    NOT NULL CHECK (role IN ('admin', 'compliance', 'carrier')),
    trunks        TEXT    NOT NULL DEFAULT '[]',
    token_sha256  TEXT    NOT NULL UNIQUE,
    created_at    TEXT    NOT NULL,
    revoked_at    TEXT
);

-- One row per API request that reads or changes data, refused ones included (401: actor
-- 'unknown', role NULL; 403: the token's name and role). `action` is the operation's name,
-- `call_id` / `recording` what it concerned (when one call or recording was concerned),
-- `client` the peer address, `status` the HTTP status returned. Append-only like
-- enforcement_log: triggers refuse UPDATE and DELETE.
CREATE TABLE IF NOT EXISTS audit_log (
    id         INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    at         TEXT    NOT NULL,
    actor      TEXT    NOT NULL,
    role       TEXT,
    method     TEXT    NOT NULL,
    path       TEXT    NOT NULL,
    query      TEXT    NOT NULL DEFAULT '',
    action     TEXT    NOT NULL,
    call_id    TEXT,
    recording  TEXT,
    client     TEXT    NOT NULL,
    status     INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_log_at ON audit_log (at);
CREATE INDEX IF NOT EXISTS audit_log_actor_at ON audit_log (actor, at);
CREATE INDEX IF NOT EXISTS audit_log_call ON audit_log (call_id);

CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
CREATE TRIGGER IF NOT EXISTS audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;

-- CDR search (GET /api/v1/cdrs) by disposition within a time range.
CREATE INDEX IF NOT EXISTS cdrs_disposition_invite_at ON cdrs (disposition, invite_at, id);

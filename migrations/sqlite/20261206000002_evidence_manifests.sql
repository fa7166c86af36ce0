-- Signed daily manifests (issue 17): one row per seal of a UTC day. A seal of a day that has
-- ended is final (at most one per day: the partial unique index); a seal of today so far is
-- partial and stays, superseded by the day's final seal (the manifest chain follows final
-- seals only). `body` is the manifest's canonical JSON (what `signature` signs, what
-- `manifest_sha256` hashes: src/evidence/manifest.rs); the other columns repeat what the
-- queries select by. `file` is the copy under `[evidence] dir`, relative to it.
-- Append-only: triggers refuse UPDATE and DELETE.
CREATE TABLE IF NOT EXISTS evidence_manifests (
    id               INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    day              TEXT    NOT NULL,
    is_final         INTEGER NOT NULL CHECK (is_final IN (0, 1)),
    sealed_at        TEXT    NOT NULL,
    manifest_sha256  TEXT    NOT NULL,
    prev_sha256      TEXT    NOT NULL,
    merkle_root      TEXT    NOT NULL,
    key_fingerprint  TEXT    NOT NULL,
    signature        TEXT    NOT NULL,
    body             TEXT    NOT NULL,
    file             TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS evidence_manifests_final ON evidence_manifests (day)
    WHERE is_final = 1;
CREATE INDEX IF NOT EXISTS evidence_manifests_day ON evidence_manifests (day, id);

CREATE TRIGGER IF NOT EXISTS evidence_manifests_no_update BEFORE UPDATE ON evidence_manifests
BEGIN
    SELECT RAISE(ABORT, 'evidence_manifests is append-only');
END;
CREATE TRIGGER IF NOT EXISTS evidence_manifests_no_delete BEFORE DELETE ON evidence_manifests
BEGIN
    SELECT RAISE(ABORT, 'evidence_manifests is append-only');
END;

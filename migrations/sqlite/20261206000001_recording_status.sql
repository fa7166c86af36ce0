-- A recording's status says what it holds (issue 15, item 5): 'complete' (audio from both legs),
-- 'one_way' (packets from one leg only), 'no_media' (no packet at all), 'incomplete', 'failed'.
-- SQLite cannot change a CHECK in place: the table is rebuilt with its columns and indexes.
CREATE TABLE recordings_new (
    cdr_id             TEXT    NOT NULL PRIMARY KEY REFERENCES cdrs (id) ON DELETE CASCADE,
    status             TEXT    NOT NULL
        CHECK (status IN ('complete', 'one_way', 'no_media', 'incomplete', 'failed')),
    path               TEXT,
    pcap_path          TEXT,
    sha256             TEXT,
    duration_ms        INTEGER NOT NULL,
    size_bytes         INTEGER NOT NULL,
    codec              TEXT,
    overflowed_packets INTEGER NOT NULL,
    note               TEXT,
    pcap_sha256        TEXT,
    purged_at          TEXT
);

INSERT INTO recordings_new (cdr_id, status, path, pcap_path, sha256, duration_ms, size_bytes,
                            codec, overflowed_packets, note, pcap_sha256, purged_at)
SELECT cdr_id, status, path, pcap_path, sha256, duration_ms, size_bytes,
       codec, overflowed_packets, note, pcap_sha256, purged_at
FROM recordings;

DROP TABLE recordings;
ALTER TABLE recordings_new RENAME TO recordings;

CREATE INDEX IF NOT EXISTS recordings_sha256 ON recordings (sha256);
CREATE INDEX IF NOT EXISTS recordings_path ON recordings (path);
CREATE INDEX IF NOT EXISTS recordings_purged ON recordings (purged_at);

-- Existing rows called 'complete' say what they hold, from the relay's per-leg counts stored
-- with their CDR: a leg that sent no packet in the whole call sent none to the recording
-- either. (A leg with packets before the answer only stays 'complete': never demoted wrongly.)
UPDATE recordings SET status = 'no_media'
WHERE status = 'complete'
  AND EXISTS (SELECT 1 FROM cdr_media_legs m WHERE m.cdr_id = recordings.cdr_id)
  AND NOT EXISTS (SELECT 1 FROM cdr_media_legs m
                  WHERE m.cdr_id = recordings.cdr_id AND m.packets_in > 0);
UPDATE recordings SET status = 'one_way'
WHERE status = 'complete'
  AND (SELECT count(*) FROM cdr_media_legs m
       WHERE m.cdr_id = recordings.cdr_id AND m.packets_in > 0) = 1
  AND (SELECT count(*) FROM cdr_media_legs m WHERE m.cdr_id = recordings.cdr_id) = 2;

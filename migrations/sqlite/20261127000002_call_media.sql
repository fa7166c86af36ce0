-- What a call's media left for its CDR (src/monitor/call_media.rs): per-leg quality, the recording
-- as evidence, and the DTMF digits. Written with the CDR row, in the same transaction; deleting a CDR
-- deletes them (ON DELETE CASCADE needs PRAGMA foreign_keys=ON, which the store sets).
-- As in cdrs: CHECKs only on values the Rust types cannot produce wrongly (codes, booleans), because
-- the CDR writer retries a refused batch forever. So no CHECK on leg names or on ranges.
-- REAL columns are nullable: SQLite stores a NaN as NULL; a NULL jitter reads back as NaN.
-- Counters are u64 in Rust, stored saturated at i64::MAX (never reached in practice).

-- One row per leg. seq is the leg's position in Cdr::media, so the list reads back in its order.
CREATE TABLE IF NOT EXISTS cdr_media_legs (
    cdr_id          TEXT    NOT NULL REFERENCES cdrs (id) ON DELETE CASCADE,
    leg             TEXT    NOT NULL,
    seq             INTEGER NOT NULL,
    packets_in      INTEGER NOT NULL,
    bytes_in        INTEGER NOT NULL,
    packets_out     INTEGER NOT NULL,
    bytes_out       INTEGER NOT NULL,
    lost            INTEGER NOT NULL,
    jitter_ms       REAL,
    max_jitter_ms   REAL,
    longest_gap_ms  INTEGER NOT NULL,
    stray           INTEGER NOT NULL,
    mos             REAL,
    one_way         INTEGER NOT NULL CHECK (one_way IN (0, 1)),
    PRIMARY KEY (cdr_id, leg)
);

-- At most one recording per call. path is not UNIQUE (a constraint a buggy caller could violate
-- would wedge the writer); the indexes serve evidence look-ups by digest and crash repair by path.
CREATE TABLE IF NOT EXISTS recordings (
    cdr_id             TEXT    NOT NULL PRIMARY KEY REFERENCES cdrs (id) ON DELETE CASCADE,
    status             TEXT    NOT NULL CHECK (status IN ('complete', 'incomplete', 'failed')),
    path               TEXT,
    pcap_path          TEXT,
    sha256             TEXT,
    duration_ms        INTEGER NOT NULL,
    size_bytes         INTEGER NOT NULL,
    codec              TEXT,
    overflowed_packets INTEGER NOT NULL,
    note               TEXT
);

CREATE INDEX IF NOT EXISTS recordings_sha256 ON recordings (sha256);
CREATE INDEX IF NOT EXISTS recordings_path ON recordings (path);

-- One row per digit; seq is its position in Cdr::dtmf. at is UTC text like the cdrs times.
CREATE TABLE IF NOT EXISTS dtmf_events (
    cdr_id      TEXT    NOT NULL REFERENCES cdrs (id) ON DELETE CASCADE,
    seq         INTEGER NOT NULL,
    leg         TEXT    NOT NULL,
    digit       TEXT    NOT NULL,
    at          TEXT    NOT NULL,
    duration_ms INTEGER NOT NULL,
    PRIMARY KEY (cdr_id, seq)
);

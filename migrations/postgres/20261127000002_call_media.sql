-- PostgreSQL mirror of migrations/sqlite/20261127000002_call_media.sql: what a call's media left
-- for its CDR, written with the CDR row in the same transaction; deleting a CDR deletes them.
-- As in cdrs: CHECKs only on values the Rust types cannot produce wrongly, because the CDR writer
-- retries a refused batch forever. double precision columns are nullable: the store binds a NaN
-- as NULL (as SQLite stores it); a NULL jitter reads back as NaN. Counters are u64 in Rust,
-- stored saturated at i64::MAX. one_way is boolean: the Rust side binds a bool on both backends.

-- One row per leg. seq is the leg's position in Cdr::media, so the list reads back in its order.
CREATE TABLE IF NOT EXISTS cdr_media_legs (
    cdr_id          text COLLATE "C" NOT NULL REFERENCES cdrs (id) ON DELETE CASCADE,
    leg             text COLLATE "C" NOT NULL,
    seq             bigint NOT NULL,
    packets_in      bigint NOT NULL,
    bytes_in        bigint NOT NULL,
    packets_out     bigint NOT NULL,
    bytes_out       bigint NOT NULL,
    lost            bigint NOT NULL,
    jitter_ms       double precision,
    max_jitter_ms   double precision,
    longest_gap_ms  bigint NOT NULL,
    stray           bigint NOT NULL,
    mos             double precision,
    one_way         boolean NOT NULL,
    PRIMARY KEY (cdr_id, leg)
);

-- At most one recording per call. path is not UNIQUE (a constraint a buggy caller could violate
-- would wedge the writer); the indexes serve evidence look-ups by digest and crash repair by path.
CREATE TABLE IF NOT EXISTS recordings (
    cdr_id             text COLLATE "C" NOT NULL PRIMARY KEY REFERENCES cdrs (id) ON DELETE CASCADE,
    status             text COLLATE "C" NOT NULL CHECK (status IN ('complete', 'incomplete', 'failed')),
    path               text COLLATE "C",
    pcap_path          text COLLATE "C",
    sha256             text COLLATE "C",
    duration_ms        bigint NOT NULL,
    size_bytes         bigint NOT NULL,
    codec              text COLLATE "C",
    overflowed_packets bigint NOT NULL,
    note               text COLLATE "C"
);

CREATE INDEX IF NOT EXISTS recordings_sha256 ON recordings (sha256);
CREATE INDEX IF NOT EXISTS recordings_path ON recordings (path);

-- One row per digit; seq is its position in Cdr::dtmf.
CREATE TABLE IF NOT EXISTS dtmf_events (
    cdr_id      text COLLATE "C" NOT NULL REFERENCES cdrs (id) ON DELETE CASCADE,
    seq         bigint NOT NULL,
    leg         text COLLATE "C" NOT NULL,
    digit       text COLLATE "C" NOT NULL,
    at          timestamptz NOT NULL,
    duration_ms bigint NOT NULL,
    PRIMARY KEY (cdr_id, seq)
);

-- The carrier's view (issue "the carrier's eyes"): persisted KPI buckets, complaints, anomalies
-- and the enforcement log. Times are UTC text like the cdrs times.

-- KPI counters per subject and UTC hour, updated in the transaction that inserts the CDRs they
-- count (so a restart never loses or doubles a call). Days are the sum of their hours.
-- subject_kind: 'trunk' (number = ''), 'caller_id' or 'callee' (number = the normalized number).
-- pdd_hist is the post-dial-delay histogram as a JSON array of counts (bins fixed in the code).
CREATE TABLE IF NOT EXISTS kpi_buckets (
    subject_kind     TEXT    NOT NULL CHECK (subject_kind IN ('trunk', 'caller_id', 'callee')),
    trunk            TEXT    NOT NULL,
    number           TEXT    NOT NULL DEFAULT '',
    hour_start       TEXT    NOT NULL,
    counters_json    TEXT    NOT NULL,
    PRIMARY KEY (subject_kind, trunk, number, hour_start)
);
CREATE INDEX IF NOT EXISTS kpi_buckets_hour ON kpi_buckets (hour_start);

-- Complaints about a caller ID, as the carrier, a regulator or the call center itself filed them.
-- The natural key makes importing the same file twice a no-op.
CREATE TABLE IF NOT EXISTS complaints (
    id           INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    complainant  TEXT    NOT NULL,
    caller_id    TEXT    NOT NULL,
    trunk        TEXT,
    received_at  TEXT    NOT NULL,
    category     TEXT    NOT NULL CHECK (category IN ('harassment', 'fraud', 'false_information', 'other')),
    source       TEXT    NOT NULL CHECK (source IN ('carrier', 'regulator', 'internal')),
    text         TEXT    NOT NULL DEFAULT '',
    imported_at  TEXT    NOT NULL,
    UNIQUE (complainant, caller_id, received_at, category, source)
);
CREATE INDEX IF NOT EXISTS complaints_caller_received ON complaints (caller_id, received_at);

-- The calls a complaint is about: same caller and callee, shortly before the complaint.
CREATE TABLE IF NOT EXISTS complaint_cdrs (
    complaint_id INTEGER NOT NULL REFERENCES complaints (id),
    cdr_id       TEXT    NOT NULL REFERENCES cdrs (id),
    PRIMARY KEY (complaint_id, cdr_id)
);
CREATE INDEX IF NOT EXISTS complaint_cdrs_cdr ON complaint_cdrs (cdr_id);

-- Every anomaly a rule found, with its evidence.
CREATE TABLE IF NOT EXISTS anomalies (
    id            TEXT    NOT NULL PRIMARY KEY,
    detected_at   TEXT    NOT NULL,
    rule          TEXT    NOT NULL,
    subject_kind  TEXT    NOT NULL CHECK (subject_kind IN ('trunk', 'caller_id', 'callee')),
    trunk         TEXT    NOT NULL,
    number        TEXT    NOT NULL DEFAULT '',
    window_secs   INTEGER NOT NULL,
    observed      REAL    NOT NULL,
    threshold     REAL    NOT NULL,
    sample        INTEGER NOT NULL,
    step          TEXT    NOT NULL,
    detail        TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS anomalies_detected ON anomalies (detected_at);
CREATE INDEX IF NOT EXISTS anomalies_subject ON anomalies (trunk, number, detected_at);

-- The calls an anomaly names as examples (no foreign key: a live call has no CDR yet).
CREATE TABLE IF NOT EXISTS anomaly_calls (
    anomaly_id TEXT NOT NULL REFERENCES anomalies (id),
    call_id    TEXT NOT NULL,
    PRIMARY KEY (anomaly_id, call_id)
);
CREATE INDEX IF NOT EXISTS anomaly_calls_call ON anomaly_calls (call_id);

-- The enforcement log: append-only. A step is imposed by one row (action 'impose') and lifted by
-- a later row (action 'lift') naming the same `imposition` (the monitor's id of the step). The
-- steps in force are the impose rows without a lift row; the gateway rebuilds its ladder from
-- them on start. `detail_json` is the whole action as the monitor wrote it.
-- cause: 'rule' or 'operator' (impose); 'resumed', 'escalated' or 'operator' (lift).
CREATE TABLE IF NOT EXISTS enforcement_log (
    id            INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    at            TEXT    NOT NULL,
    action        TEXT    NOT NULL CHECK (action IN ('impose', 'lift')),
    imposition    INTEGER NOT NULL,
    subject_kind  TEXT    NOT NULL CHECK (subject_kind IN ('trunk', 'caller_id', 'callee')),
    trunk         TEXT    NOT NULL,
    number        TEXT    NOT NULL DEFAULT '',
    step          TEXT    NOT NULL CHECK (step IN ('alert', 'throttle', 'suspend_number', 'suspend_trunk')),
    until         TEXT,
    cause         TEXT    NOT NULL CHECK (cause IN ('rule', 'operator', 'resumed', 'escalated')),
    rule          TEXT,
    anomaly_id    TEXT,
    operator      TEXT,
    reason        TEXT    NOT NULL DEFAULT '',
    detail_json   TEXT    NOT NULL
);
CREATE INDEX IF NOT EXISTS enforcement_log_at ON enforcement_log (at);
CREATE UNIQUE INDEX IF NOT EXISTS enforcement_log_one_impose ON enforcement_log (imposition) WHERE action = 'impose';
CREATE UNIQUE INDEX IF NOT EXISTS enforcement_log_one_lift ON enforcement_log (imposition) WHERE action = 'lift';

CREATE TRIGGER IF NOT EXISTS enforcement_log_no_update BEFORE UPDATE ON enforcement_log
BEGIN
    SELECT RAISE(ABORT, 'enforcement_log is append-only');
END;
CREATE TRIGGER IF NOT EXISTS enforcement_log_no_delete BEFORE DELETE ON enforcement_log
BEGIN
    SELECT RAISE(ABORT, 'enforcement_log is append-only');
END;

-- Operators' orders from outside the gateway process (the CLI): the running gateway takes the
-- pending ones, applies them to its ladder (which writes the log rows) and marks them handled.
-- step NULL on a lift: every step in force on the subject.
CREATE TABLE IF NOT EXISTS enforcement_requests (
    id            INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    requested_at  TEXT    NOT NULL,
    action        TEXT    NOT NULL CHECK (action IN ('impose', 'lift')),
    subject_kind  TEXT    NOT NULL CHECK (subject_kind IN ('trunk', 'caller_id', 'callee')),
    trunk         TEXT    NOT NULL,
    number        TEXT    NOT NULL DEFAULT '',
    step          TEXT    CHECK (step IN ('alert', 'throttle', 'suspend_number', 'suspend_trunk')),
    duration_secs INTEGER,
    operator      TEXT    NOT NULL,
    reason        TEXT    NOT NULL,
    state         TEXT    NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'applied', 'rejected')),
    handled_at    TEXT,
    result        TEXT
);
CREATE INDEX IF NOT EXISTS enforcement_requests_pending ON enforcement_requests (state, id);

-- Concurrency when the call was admitted (after counting it), for peak concurrency per bucket.
ALTER TABLE cdrs ADD COLUMN trunk_active INTEGER;
ALTER TABLE cdrs ADD COLUMN caller_active INTEGER;

-- Where the running monitor is in tables other processes append to (complaints): after a
-- restart it goes on from there, so each complaint feeds the rules once.
CREATE TABLE IF NOT EXISTS monitor_cursor (
    name  TEXT    NOT NULL PRIMARY KEY,
    value INTEGER NOT NULL
);

-- The pcap's digest (issue 3): when the codec could not be decoded the pcap is the evidence.
ALTER TABLE recordings ADD COLUMN pcap_sha256 TEXT;

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
-- a later row (action 'lift', lifts = the imposing row's id). The steps in force are the impose
-- rows without a lift row whose `until` has not passed; the gateway rebuilds them from here on
-- start, and picks up rows the CLI appends while it runs.
CREATE TABLE IF NOT EXISTS enforcement_log (
    id            INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    at            TEXT    NOT NULL,
    action        TEXT    NOT NULL CHECK (action IN ('impose', 'lift')),
    subject_kind  TEXT    NOT NULL CHECK (subject_kind IN ('trunk', 'caller_id', 'callee')),
    trunk         TEXT    NOT NULL,
    number        TEXT    NOT NULL DEFAULT '',
    step          TEXT    NOT NULL CHECK (step IN ('alert', 'throttle', 'suspend_number', 'suspend_trunk')),
    until         TEXT,
    cause         TEXT    NOT NULL CHECK (cause IN ('anomaly', 'operator', 'expiry', 'recovery')),
    anomaly_id    TEXT    REFERENCES anomalies (id),
    operator      TEXT,
    reason        TEXT    NOT NULL DEFAULT '',
    lifts         INTEGER REFERENCES enforcement_log (id),
    origin        TEXT    NOT NULL DEFAULT 'gateway' CHECK (origin IN ('gateway', 'cli', 'api'))
);
CREATE INDEX IF NOT EXISTS enforcement_log_at ON enforcement_log (at);
CREATE UNIQUE INDEX IF NOT EXISTS enforcement_log_one_lift ON enforcement_log (lifts) WHERE lifts IS NOT NULL;

CREATE TRIGGER IF NOT EXISTS enforcement_log_no_update BEFORE UPDATE ON enforcement_log
BEGIN
    SELECT RAISE(ABORT, 'enforcement_log is append-only');
END;
CREATE TRIGGER IF NOT EXISTS enforcement_log_no_delete BEFORE DELETE ON enforcement_log
BEGIN
    SELECT RAISE(ABORT, 'enforcement_log is append-only');
END;

-- Concurrency when the call was admitted (after counting it), for peak concurrency per bucket.
ALTER TABLE cdrs ADD COLUMN trunk_active INTEGER;
ALTER TABLE cdrs ADD COLUMN caller_active INTEGER;

-- The order in which CDRs were stored, for a cluster's monitor leader (docs/architecture.md,
-- "The running monitor", cluster): every node's CDR writer inserts into cdrs, and this trigger
-- gives each new row the next seq in the same transaction. The leader reads every node's CDRs by
-- seq past its cursor (monitor_cursor 'cdr_feed'), so a new leader continues where the last one
-- stopped. SQLite has one writer at a time, so seq order is commit order; AUTOINCREMENT never
-- reuses a seq (not even one of a deleted row), and a rolled-back insert takes none.
-- An INSERT that the ON CONFLICT clause skips (a CDR stored again) fires no trigger: one seq per CDR.
CREATE TABLE IF NOT EXISTS cdr_feed (
    seq    INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    -- UNIQUE: one seq per CDR, and the index the cascade from a purged CDR needs.
    cdr_id TEXT    NOT NULL UNIQUE REFERENCES cdrs (id) ON DELETE CASCADE
);

-- CDRs stored before this table existed, in INVITE order: history a first leader warms up from.
INSERT INTO cdr_feed (cdr_id) SELECT id FROM cdrs ORDER BY invite_at, id;

CREATE TRIGGER IF NOT EXISTS cdrs_feed AFTER INSERT ON cdrs
BEGIN
    INSERT INTO cdr_feed (cdr_id) VALUES (NEW.id);
END;

-- PostgreSQL twin of migrations/sqlite/20261127000009_cdr_feed.sql (see there). On PostgreSQL
-- concurrent writers can commit a lower seq after a higher one, and a rolled-back insert leaves
-- a gap: the leader's feed waits a short settle time at a gap (src/monitor/service/feed.rs).
CREATE TABLE IF NOT EXISTS cdr_feed (
    seq    BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    cdr_id TEXT   NOT NULL UNIQUE REFERENCES cdrs (id) ON DELETE CASCADE
);

INSERT INTO cdr_feed (cdr_id) SELECT id FROM cdrs ORDER BY invite_at, id;

CREATE OR REPLACE FUNCTION cdr_feed_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO cdr_feed (cdr_id) VALUES (NEW.id);
    RETURN NULL;
END
$$;

CREATE TRIGGER cdrs_feed AFTER INSERT ON cdrs FOR EACH ROW EXECUTE FUNCTION cdr_feed_add();

-- PostgreSQL mirror of migrations/sqlite/20261127000003_call_journal.sql: calls in progress, so
-- that a CDR can be written for every attempt even after a crash. The CDR writer upserts a call's
-- row with a provisional CDR and deletes it in the transaction that inserts the call's final CDR.
-- cdr_json is the provisional Cdr as serde JSON, kept as text (written and read by the store
-- only; text keeps it byte for byte as on SQLite). No foreign key to cdrs: a row exists
-- precisely while its call has no CDR.
CREATE TABLE IF NOT EXISTS call_journal (
    id             text COLLATE "C" NOT NULL PRIMARY KEY,
    cdr_json       text NOT NULL,
    recording_part text,
    updated_at     timestamptz NOT NULL
);

-- PostgreSQL mirror of migrations/sqlite/20261127000008_journal_dialogs.sql: the dialog state of
-- a call in progress (JSON written by src/b2bua/restart/record.rs, kept as text), read after a
-- crash to tell the PBX and the carrier of the dialogs they still hold.
ALTER TABLE call_journal ADD COLUMN dialogs_json text;

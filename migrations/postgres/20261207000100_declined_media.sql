-- PostgreSQL mirror of migrations/sqlite/20261207000100_declined_media.sql: the streams the
-- gateway declined with port 0 (issue 15, item 4), a comma list, NULL when none.
ALTER TABLE cdrs ADD COLUMN IF NOT EXISTS declined_media text COLLATE "C";

-- PostgreSQL mirror of migrations/sqlite/20261127000010_nodes.sql: the cluster node that
-- carried a call (NULL on a single node), on its CDR and its journal row, and who is closing a
-- journaled call since when (one closer per row: the restarted node or a survivor).
ALTER TABLE cdrs ADD COLUMN node text COLLATE "C";
ALTER TABLE call_journal ADD COLUMN node text COLLATE "C";
ALTER TABLE call_journal ADD COLUMN closing_by text COLLATE "C";
ALTER TABLE call_journal ADD COLUMN closing_at timestamptz;
CREATE INDEX IF NOT EXISTS call_journal_node ON call_journal (node, updated_at);

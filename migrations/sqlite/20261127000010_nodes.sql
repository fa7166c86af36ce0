-- Which cluster node carried a call (docs/architecture.md, "After a crash" and "Cluster: a
-- node's loss"). With several nodes on one database a node must close only its own journaled
-- calls at start, and a survivor a lost node's: `node` is `[cluster] node_id` (NULL on a single
-- node and on rows written before this column existed).
ALTER TABLE cdrs ADD COLUMN node TEXT;
ALTER TABLE call_journal ADD COLUMN node TEXT;
-- Who is closing a journaled call and since when (UTC text like the other times): the node
-- that restarts and a survivor of its loss may both look at its rows; a claim (an UPDATE of
-- rows not claimed by another node, or claimed too long ago) gives each row one closer, so no
-- CDR is written and no BYE sent twice. NULL: nobody is closing it (the call may be live).
ALTER TABLE call_journal ADD COLUMN closing_by TEXT;
ALTER TABLE call_journal ADD COLUMN closing_at TEXT;
CREATE INDEX IF NOT EXISTS call_journal_node ON call_journal (node, updated_at);

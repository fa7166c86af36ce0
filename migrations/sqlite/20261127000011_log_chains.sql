-- The audit and enforcement logs as hash chains (issue 17): each row written from now on carries
-- the SHA-256 of its predecessor's link (`prev_sha256`; 64 zeros for the first) and its own
-- (`row_sha256`, over `prev_sha256` and the row's content, see src/store/chain.rs). Rows written
-- before this migration keep NULL links: they precede the chain. One successor per link: the
-- chain can only be a line (two writers racing for the head fail rather than fork it).
ALTER TABLE audit_log ADD COLUMN prev_sha256 TEXT;
ALTER TABLE audit_log ADD COLUMN row_sha256 TEXT;
CREATE UNIQUE INDEX IF NOT EXISTS audit_log_chain ON audit_log (prev_sha256);

ALTER TABLE enforcement_log ADD COLUMN prev_sha256 TEXT;
ALTER TABLE enforcement_log ADD COLUMN row_sha256 TEXT;
CREATE UNIQUE INDEX IF NOT EXISTS enforcement_log_chain ON enforcement_log (prev_sha256);

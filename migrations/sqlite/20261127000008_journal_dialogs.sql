-- The dialog state of a call in progress (both legs: peer, Call-ID, tags, remote target, route
-- set, CSeq, and for a leg still being set up what a CANCEL or a final response needs), as JSON
-- written by src/b2bua/restart/record.rs. After a crash the restart path reads it to send BYE
-- (or CANCEL, or a final error response) to the PBX and the carrier for dialogs they still hold.
-- NULL for rows written before this column existed: those calls are closed without signalling.
ALTER TABLE call_journal ADD COLUMN dialogs_json TEXT;

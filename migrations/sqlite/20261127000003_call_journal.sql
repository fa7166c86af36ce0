-- Calls in progress, so that a CDR can be written for every attempt even after a crash (SIGKILL,
-- power cut) in the middle of a call. The CDR writer upserts a call's row with a provisional CDR
-- (src/monitor/cdr_writer.rs, CdrSink::journal) and deletes it in the transaction that inserts the
-- call's final CDR; a journal entry whose CDR is already stored is ignored. So after a clean
-- shutdown the table is empty, and after a crash it lists exactly the calls that have no CDR:
-- the restart path reads them (Store::journaled_calls), closes them and submits their CDRs.
-- cdr_json is the provisional Cdr as serde JSON (a NaN jitter is written as null and reads back
-- as NaN). recording_part is the recording file being written, for crash repair. updated_at is UTC
-- text like the cdrs times: when the entry was submitted.
-- No foreign key to cdrs: a row exists precisely while its call has no CDR.
CREATE TABLE IF NOT EXISTS call_journal (
    id             TEXT NOT NULL PRIMARY KEY,
    cdr_json       TEXT NOT NULL,
    recording_part TEXT,
    updated_at     TEXT NOT NULL
);

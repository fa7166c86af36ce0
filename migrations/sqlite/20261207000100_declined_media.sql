-- The streams the gateway declined with port 0 in a call's SDP (issue 15, item 4): `video`,
-- `image/t38`, `audio` (an extra audio stream), as a comma list in the order first offered;
-- NULL when none. Written with the CDR; not part of the sealed cdr/1 form.
ALTER TABLE cdrs ADD COLUMN declined_media TEXT;

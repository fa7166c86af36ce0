-- A recording's status says what it holds (issue 15, item 5): 'complete' (audio from both legs),
-- 'one_way' (packets from one leg only), 'no_media' (no packet at all), 'incomplete', 'failed'.
ALTER TABLE recordings DROP CONSTRAINT IF EXISTS recordings_status_check;
ALTER TABLE recordings ADD CONSTRAINT recordings_status_check
    CHECK (status IN ('complete', 'one_way', 'no_media', 'incomplete', 'failed'));

-- Existing rows called 'complete' say what they hold, from the relay's per-leg counts stored
-- with their CDR: a leg that sent no packet in the whole call sent none to the recording
-- either. (A leg with packets before the answer only stays 'complete': never demoted wrongly.)
UPDATE recordings SET status = 'no_media'
WHERE status = 'complete'
  AND EXISTS (SELECT 1 FROM cdr_media_legs m WHERE m.cdr_id = recordings.cdr_id)
  AND NOT EXISTS (SELECT 1 FROM cdr_media_legs m
                  WHERE m.cdr_id = recordings.cdr_id AND m.packets_in > 0);
UPDATE recordings SET status = 'one_way'
WHERE status = 'complete'
  AND (SELECT count(*) FROM cdr_media_legs m
       WHERE m.cdr_id = recordings.cdr_id AND m.packets_in > 0) = 1
  AND (SELECT count(*) FROM cdr_media_legs m WHERE m.cdr_id = recordings.cdr_id) = 2;

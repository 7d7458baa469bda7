-- Jobs sent to a printer through CUPS. A row is written before the job is sent
-- ('sending', with the title the job carries), gets CUPS's job id as soon as
-- CUPS accepts it ('sent'), and ends 'completed' or 'failed'. A print that dies
-- while a job prints leaves 'sending'/'sent' rows: the next print asks CUPS for
-- that job (by id, or by title) instead of sending the labels again.
CREATE TABLE print_jobs (
    id          INTEGER PRIMARY KEY,
    -- NULL for a reprint or a manifest.
    wave_id     INTEGER REFERENCES waves (id),
    chunk       INTEGER,
    -- waybill | slip | reprint-waybill | reprint-slip | manifest
    kind        TEXT NOT NULL,
    printer     TEXT NOT NULL,
    title       TEXT NOT NULL,
    file        TEXT NOT NULL,
    -- The order ids whose documents the job holds, as a JSON array.
    orders      TEXT NOT NULL,
    cups_job    INTEGER,
    state       TEXT NOT NULL CHECK (state IN ('sending', 'sent', 'completed', 'failed')),
    detail      TEXT,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
) STRICT;

CREATE INDEX print_jobs_chunk ON print_jobs (wave_id, chunk);

-- Print waves (波次). A wave is planned — its orders, their order in the wave and
-- their tracking numbers — in one committed transaction before anything renders;
-- each chunk's files are recorded only after they were written and renamed.

CREATE TABLE waves (
    id               INTEGER PRIMARY KEY,
    created_at       TEXT NOT NULL,
    operator         TEXT NOT NULL,
    out_dir          TEXT NOT NULL,
    waybill_template TEXT NOT NULL,
    slip_template    TEXT NOT NULL,
    chunk_size       INTEGER NOT NULL CHECK (chunk_size >= 1),
    -- open | done
    state            TEXT NOT NULL CHECK (state IN ('open', 'done')),
    finished_at      TEXT
) STRICT;

CREATE TABLE wave_orders (
    wave_id       INTEGER NOT NULL REFERENCES waves (id),
    seq           INTEGER NOT NULL,
    order_id      TEXT NOT NULL REFERENCES orders (id),
    order_version INTEGER NOT NULL,
    tracking_no   TEXT NOT NULL REFERENCES tracking_numbers (number),
    chunk         INTEGER NOT NULL,
    -- Set once the chunk's PDFs are complete on disk.
    waybill_file  TEXT,
    slip_file     TEXT,
    waybill_page  INTEGER,
    slip_page     INTEGER,
    printed_at    TEXT,
    PRIMARY KEY (wave_id, seq),
    UNIQUE (wave_id, order_id)
) STRICT;

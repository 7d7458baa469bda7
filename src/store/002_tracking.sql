-- Tracking numbers (运单号). A number is handed out in a committed transaction
-- before any label shows it, and is never handed out twice.

CREATE TABLE tracking_numbers (
    number        TEXT PRIMARY KEY,
    courier       TEXT NOT NULL,
    order_id      TEXT NOT NULL REFERENCES orders (id),
    order_version INTEGER NOT NULL,
    -- allocated | voided
    state         TEXT NOT NULL CHECK (state IN ('allocated', 'voided')),
    allocated_at  TEXT NOT NULL,
    voided_at     TEXT,
    void_reason   TEXT
) STRICT;
-- At most one live number per order.
CREATE UNIQUE INDEX tracking_one_live_per_order ON tracking_numbers (order_id) WHERE state = 'allocated';

-- The next number of each range pool.
CREATE TABLE pool_cursors (
    courier TEXT PRIMARY KEY,
    next    INTEGER NOT NULL
) STRICT;

-- Numbers issued by a courier in a file, loaded on first use, taken in file order.
CREATE TABLE pool_file_numbers (
    courier TEXT NOT NULL,
    seq     INTEGER NOT NULL,
    number  TEXT NOT NULL UNIQUE,
    PRIMARY KEY (courier, seq)
) STRICT;

-- The station's first schema. Migrations are only ever added, never edited.

-- One row per order the station works on, holding the newest valid version.
CREATE TABLE orders (
    id              TEXT PRIMARY KEY,
    version         INTEGER NOT NULL CHECK (version >= 1),
    -- queued | left_queue | printed | changed_after_print | intercept
    state           TEXT NOT NULL,
    -- Why the order is in its state, for the operator (NULL when plain).
    reason          TEXT,
    payload         TEXT NOT NULL,          -- the order as JSON
    printed_payload TEXT,                   -- the order as it was printed
    printed_version INTEGER,
    paid_at         TEXT,                   -- UTC, for shipping order
    urgent          INTEGER NOT NULL DEFAULT 0,
    first_seen      TEXT NOT NULL,
    updated         TEXT NOT NULL
) STRICT;
CREATE INDEX orders_state ON orders (state, urgent DESC, paid_at);

-- Payloads that broke the contract, keyed by order id, or by page and position
-- when they had no usable id.
CREATE TABLE rejections (
    key        TEXT PRIMARY KEY,
    version    INTEGER,
    reason     TEXT NOT NULL,
    raw        TEXT NOT NULL,
    source     TEXT NOT NULL,
    positional INTEGER NOT NULL DEFAULT 0,
    first_seen TEXT NOT NULL,
    last_seen  TEXT NOT NULL
) STRICT;

-- The audit trail: who did what, when, to which order. Append-only.
CREATE TABLE events (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    at       TEXT NOT NULL,
    operator TEXT NOT NULL,
    order_id TEXT,
    action   TEXT NOT NULL,
    detail   TEXT NOT NULL
) STRICT;
CREATE INDEX events_order ON events (order_id, seq);
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;

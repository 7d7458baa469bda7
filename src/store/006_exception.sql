-- Out of stock (缺货): the outbox gains a third kind of send, `exception` — the
-- exception flag with a memo, no shipment. An order may be set aside more than
-- once (each time at a newer version, after customer service put it back), but
-- it is still written back as handed over only once. SQLite cannot change a
-- table's constraints in place, so the table is rebuilt with the same rows.

CREATE TABLE outbox_new (
    id              INTEGER PRIMARY KEY,
    order_id        TEXT NOT NULL REFERENCES orders (id),
    kind            TEXT NOT NULL CHECK (kind IN ('shipment', 'flag', 'exception')),
    batch_id        TEXT NOT NULL,
    courier         TEXT NOT NULL,
    tracking_no     TEXT NOT NULL,
    body            TEXT NOT NULL,
    order_version   INTEGER NOT NULL,
    if_version      INTEGER,
    state           TEXT NOT NULL CHECK (state IN ('pending', 'done', 'alert')),
    attempts        INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at TEXT NOT NULL,
    last_error      TEXT,
    created_at      TEXT NOT NULL,
    done_at         TEXT
) STRICT;
INSERT INTO outbox_new SELECT id, order_id, kind, batch_id, courier, tracking_no, body,
    order_version, if_version, state, attempts, next_attempt_at, last_error, created_at, done_at
    FROM outbox;
DROP TABLE outbox;
ALTER TABLE outbox_new RENAME TO outbox;
CREATE INDEX outbox_due ON outbox (state, next_attempt_at, id);
-- An order is written back as handed over once: one shipment, one done flag.
CREATE UNIQUE INDEX outbox_handover_once ON outbox (order_id, kind) WHERE kind IN ('shipment', 'flag');
-- One exception flag per order version.
CREATE UNIQUE INDEX outbox_exception_once ON outbox (order_id, order_version) WHERE kind = 'exception';

-- Returns intake (退货登记): what came back from a parcel the courier took,
-- who received it, why and in what condition. One row per SKU of a receipt
-- (one receive at the bench or on the command line). Append-only, like the
-- audit trail: a return that was recorded stays recorded.
CREATE TABLE returns (
    id          INTEGER PRIMARY KEY,
    receipt     INTEGER NOT NULL CHECK (receipt > 0),
    order_id    TEXT NOT NULL REFERENCES orders (id),
    tracking_no TEXT NOT NULL,          -- the number the parcel left under
    courier     TEXT NOT NULL,
    sku         TEXT NOT NULL,
    qty         INTEGER NOT NULL CHECK (qty > 0),
    condition   TEXT NOT NULL CHECK (condition IN ('ok', 'damaged')),
    reason      TEXT NOT NULL,          -- '' when none was given
    bench       TEXT NOT NULL,
    operator    TEXT NOT NULL,
    received_at TEXT NOT NULL
) STRICT;
CREATE INDEX returns_order ON returns (order_id, sku);
CREATE INDEX returns_received ON returns (received_at);
CREATE TRIGGER returns_no_update BEFORE UPDATE ON returns
BEGIN SELECT RAISE(ABORT, 'returns are append-only'); END;
CREATE TRIGGER returns_no_delete BEFORE DELETE ON returns
BEGIN SELECT RAISE(ABORT, 'returns are append-only'); END;

-- The outbox gains a fourth kind of send, `return`: the returns flag with its
-- memo, sent after the order's handover write-back. SQLite cannot change a
-- table's constraints in place, so the table is rebuilt with the same rows.
CREATE TABLE outbox_new (
    id              INTEGER PRIMARY KEY,
    order_id        TEXT NOT NULL REFERENCES orders (id),
    kind            TEXT NOT NULL CHECK (kind IN ('shipment', 'flag', 'exception', 'return')),
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
CREATE UNIQUE INDEX outbox_handover_once ON outbox (order_id, kind) WHERE kind IN ('shipment', 'flag');
CREATE UNIQUE INDEX outbox_exception_once ON outbox (order_id, order_version) WHERE kind = 'exception';

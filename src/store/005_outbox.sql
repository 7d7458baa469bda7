-- The write-back outbox: what the station still has to tell the shop about
-- handed-over parcels. Rows are enqueued in the handover close transaction and
-- sent by the outbox worker (`station sync`, `station serve`) until the shop
-- acknowledges them. Per order there is a `shipment` row, then a `flag` row that
-- becomes sendable once the shipment is acknowledged.

CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY,
    order_id        TEXT NOT NULL REFERENCES orders (id),
    kind            TEXT NOT NULL CHECK (kind IN ('shipment', 'flag')),
    batch_id        TEXT NOT NULL,
    -- The parcel, for messages and alerts (the shipment body holds them too).
    courier         TEXT NOT NULL,
    tracking_no     TEXT NOT NULL,
    -- The request body, fixed at enqueue so a resend is byte-identical (the
    -- shop de-duplicates an identical last memo and a repeated tracking number).
    -- The flag row's `if_version` is not part of it: it is sent from the column.
    body            TEXT NOT NULL,
    -- The order version the station knew when the batch closed.
    order_version   INTEGER NOT NULL,
    -- Flag rows: the version to send as if_version, from the shipment's answer.
    if_version      INTEGER,
    state           TEXT NOT NULL CHECK (state IN ('pending', 'done', 'alert')),
    -- Sends begun (counted before the request goes out, so a crash counts too).
    attempts        INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    -- UTC RFC 3339 (millis, Z): not sent before this; also the claim lease.
    next_attempt_at TEXT NOT NULL,
    -- The last problem (HTTP status, timeout) or, for an alert, its reason.
    last_error      TEXT,
    created_at      TEXT NOT NULL,
    done_at         TEXT,
    -- An order is written back once: one shipment, one done flag.
    UNIQUE (order_id, kind)
) STRICT;
CREATE INDEX outbox_due ON outbox (state, next_attempt_at, id);

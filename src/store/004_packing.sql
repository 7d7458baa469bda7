-- Packing benches (验货打包) and courier handovers (交接).
-- New values of orders.state: packed, handed_over, shipped.

-- The order open at each bench (a browser signed in at a bench, or `station scan --bench`).
CREATE TABLE bench_sessions (
    bench         TEXT PRIMARY KEY,
    operator      TEXT NOT NULL,
    order_id      TEXT REFERENCES orders (id),
    order_version INTEGER,
    updated       TEXT NOT NULL
) STRICT;

-- Items scanned so far for one version of an order (a changed order starts over).
CREATE TABLE pack_tallies (
    order_id      TEXT NOT NULL REFERENCES orders (id),
    order_version INTEGER NOT NULL,
    item          INTEGER NOT NULL,     -- index into the order's items
    scanned       INTEGER NOT NULL CHECK (scanned >= 0),
    PRIMARY KEY (order_id, order_version, item)
) STRICT;

-- One row per packing: which parcel, where, by whom.
CREATE TABLE packings (
    order_id      TEXT NOT NULL REFERENCES orders (id),
    order_version INTEGER NOT NULL,
    tracking_no   TEXT NOT NULL REFERENCES tracking_numbers (number),
    bench         TEXT NOT NULL,
    operator      TEXT NOT NULL,
    packed_at     TEXT NOT NULL,
    shop_checked  INTEGER NOT NULL,     -- 0 when the shop was unreachable at packing
    PRIMARY KEY (order_id, tracking_no)
) STRICT;

-- A courier's handover batch (交接批次). Its id is handed out when it opens.
CREATE TABLE handovers (
    id        TEXT PRIMARY KEY,
    courier   TEXT NOT NULL,
    state     TEXT NOT NULL CHECK (state IN ('open', 'closed')),
    opened_by TEXT NOT NULL,
    opened_at TEXT NOT NULL,
    closed_by TEXT,
    closed_at TEXT,
    manifest  TEXT                      -- the manifest PDF, once written
) STRICT;
CREATE INDEX handovers_state ON handovers (state, courier);

-- Parcels scanned into a batch. A tracking number and an order are handed over once.
CREATE TABLE handover_parcels (
    batch_id    TEXT NOT NULL REFERENCES handovers (id),
    seq         INTEGER NOT NULL,
    tracking_no TEXT NOT NULL UNIQUE REFERENCES tracking_numbers (number),
    order_id    TEXT NOT NULL UNIQUE REFERENCES orders (id),
    scanned_by  TEXT NOT NULL,
    scanned_at  TEXT NOT NULL,
    PRIMARY KEY (batch_id, seq)
) STRICT;

-- A closed batch is immutable: its parcels, courier, times and operators never change
-- (only the manifest path may be filled in after the PDF is written).
CREATE TRIGGER handover_parcels_closed_insert BEFORE INSERT ON handover_parcels
WHEN (SELECT state FROM handovers WHERE id = NEW.batch_id) = 'closed'
BEGIN SELECT RAISE(ABORT, 'handover batch is closed'); END;
CREATE TRIGGER handover_parcels_closed_update BEFORE UPDATE ON handover_parcels
WHEN (SELECT state FROM handovers WHERE id = OLD.batch_id) = 'closed'
BEGIN SELECT RAISE(ABORT, 'handover batch is closed'); END;
CREATE TRIGGER handover_parcels_closed_delete BEFORE DELETE ON handover_parcels
WHEN (SELECT state FROM handovers WHERE id = OLD.batch_id) = 'closed'
BEGIN SELECT RAISE(ABORT, 'handover batch is closed'); END;
CREATE TRIGGER handovers_closed_immutable BEFORE UPDATE ON handovers
WHEN OLD.state = 'closed' AND (NEW.id IS NOT OLD.id OR NEW.courier IS NOT OLD.courier
    OR NEW.state IS NOT OLD.state OR NEW.opened_by IS NOT OLD.opened_by
    OR NEW.opened_at IS NOT OLD.opened_at OR NEW.closed_by IS NOT OLD.closed_by
    OR NEW.closed_at IS NOT OLD.closed_at)
BEGIN SELECT RAISE(ABORT, 'handover batch is closed'); END;
CREATE TRIGGER handovers_no_delete BEFORE DELETE ON handovers
BEGIN SELECT RAISE(ABORT, 'handover batches are never deleted'); END;

-- Every change of an order's state, recorded by the database itself, so the day
-- report counts what happened (pulled, intercepted, changed after print, out of
-- stock) from one structured source whatever code path made the change.
CREATE TABLE state_changes (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    at       TEXT NOT NULL,
    order_id TEXT NOT NULL,
    old      TEXT,                      -- NULL when the order was taken in
    new      TEXT NOT NULL
) STRICT;
CREATE INDEX state_changes_at ON state_changes (at, new);
CREATE TRIGGER orders_state_insert AFTER INSERT ON orders
BEGIN
    INSERT INTO state_changes (at, order_id, old, new)
    VALUES (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), NEW.id, NULL, NEW.state);
END;
CREATE TRIGGER orders_state_update AFTER UPDATE OF state ON orders
WHEN OLD.state IS NOT NEW.state
BEGIN
    INSERT INTO state_changes (at, order_id, old, new)
    VALUES (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), NEW.id, OLD.state, NEW.state);
END;
CREATE TRIGGER state_changes_no_update BEFORE UPDATE ON state_changes
BEGIN SELECT RAISE(ABORT, 'state changes are append-only'); END;
CREATE TRIGGER state_changes_no_delete BEFORE DELETE ON state_changes
BEGIN SELECT RAISE(ABORT, 'state changes are append-only'); END;

-- A voided number leaves any open handover batch: the parcel under it is no
-- longer the one scanned (a reprint after a change, 缺货, a manual void), so it
-- shows as waiting again and its new label can be scanned in.
CREATE TRIGGER tracking_void_leaves_open_batch AFTER UPDATE OF state ON tracking_numbers
WHEN NEW.state = 'voided' AND EXISTS (
    SELECT 1 FROM handover_parcels p JOIN handovers h ON h.id = p.batch_id
    WHERE p.tracking_no = NEW.number AND h.state = 'open')
BEGIN
    INSERT INTO events (at, operator, order_id, action, detail)
    SELECT strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), p.scanned_by, NEW.order_id, 'handover.removed',
           NEW.number || ' taken out of ' || p.batch_id || ': the number was voided (' ||
           COALESCE(NEW.void_reason, '') || '); scan the parcel''s current label'
    FROM handover_parcels p WHERE p.tracking_no = NEW.number;
    DELETE FROM handover_parcels WHERE tracking_no = NEW.number
        AND batch_id IN (SELECT id FROM handovers WHERE state = 'open');
END;

-- Numbers from a courier's e-waybill service (电子面单, Waybill API v1).
--
-- Each parcel's request is recorded (and committed) before the call, under a
-- request id the service treats as its idempotency key: a crash or a lost
-- answer sends the same id again and gets the same number back, so a parcel
-- never takes two numbers and a number taken is never lost.

CREATE TABLE waybill_requests (
    request_id    TEXT PRIMARY KEY,
    courier       TEXT NOT NULL,
    order_id      TEXT NOT NULL REFERENCES orders (id),
    order_version INTEGER NOT NULL,
    -- pending: recorded, not answered; taken: a number came back;
    -- refused: the service refused this parcel (unreachable 超区, bad_address, bad_request).
    state         TEXT NOT NULL CHECK (state IN ('pending', 'taken', 'refused')),
    number        TEXT,
    error_code    TEXT,
    error_message TEXT,
    created_at    TEXT NOT NULL,
    answered_at   TEXT
) STRICT;
CREATE INDEX waybill_requests_by_order ON waybill_requests (order_id, order_version, courier, state);

-- The routing the service returned with a number, printed on the waybill as given.
ALTER TABLE tracking_numbers ADD COLUMN sort_code TEXT;       -- 三段码
ALTER TABLE tracking_numbers ADD COLUMN short_address TEXT;   -- 大头笔
ALTER TABLE tracking_numbers ADD COLUMN package_center TEXT;  -- 集包地
-- Set for a number a service issued: a voided one is given back there.
ALTER TABLE tracking_numbers ADD COLUMN request_id TEXT;

-- Numbers to give back to their service (回收): one row per voided service
-- number, queued by the trigger below in the transaction that voids it, sent
-- by the outbox worker (`station sync`, `serve`).
CREATE TABLE waybill_cancels (
    number          TEXT PRIMARY KEY REFERENCES tracking_numbers (number),
    courier         TEXT NOT NULL,
    order_id        TEXT NOT NULL,
    reason          TEXT NOT NULL,
    -- pending | done (cancelled at the service) | alert (already_used, not_found: a person looks)
    state           TEXT NOT NULL CHECK (state IN ('pending', 'done', 'alert')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    last_error      TEXT,
    created_at      TEXT NOT NULL,
    done_at         TEXT
) STRICT;
CREATE INDEX waybill_cancels_due ON waybill_cancels (state, next_attempt_at);

CREATE TRIGGER tracking_void_cancels_at_service AFTER UPDATE OF state ON tracking_numbers
WHEN NEW.state = 'voided' AND OLD.state = 'allocated' AND NEW.request_id IS NOT NULL
BEGIN
    INSERT INTO waybill_cancels (number, courier, order_id, reason, state, next_attempt_at, created_at)
    VALUES (NEW.number, NEW.courier, NEW.order_id, COALESCE(NEW.void_reason, 'voided'), 'pending',
            strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
    ON CONFLICT (number) DO NOTHING;
END;

-- As SQLite's 015: numbers from a courier's e-waybill service, their routing,
-- and the numbers to give back to it.
CREATE TABLE waybill_requests (
    request_id    TEXT COLLATE "C" PRIMARY KEY,
    courier       TEXT COLLATE "C" NOT NULL,
    order_id      TEXT COLLATE "C" NOT NULL REFERENCES orders (id),
    order_version BIGINT NOT NULL,
    state         TEXT COLLATE "C" NOT NULL CHECK (state IN ('pending', 'taken', 'refused')),
    number        TEXT COLLATE "C",
    error_code    TEXT COLLATE "C",
    error_message TEXT COLLATE "C",
    created_at    TEXT COLLATE "C" NOT NULL,
    answered_at   TEXT COLLATE "C"
);
CREATE INDEX waybill_requests_by_order ON waybill_requests (order_id, order_version, courier, state);

ALTER TABLE tracking_numbers ADD COLUMN sort_code TEXT COLLATE "C";
ALTER TABLE tracking_numbers ADD COLUMN short_address TEXT COLLATE "C";
ALTER TABLE tracking_numbers ADD COLUMN package_center TEXT COLLATE "C";
ALTER TABLE tracking_numbers ADD COLUMN request_id TEXT COLLATE "C";

CREATE TABLE waybill_cancels (
    number          TEXT COLLATE "C" PRIMARY KEY REFERENCES tracking_numbers (number),
    courier         TEXT COLLATE "C" NOT NULL,
    order_id        TEXT COLLATE "C" NOT NULL,
    reason          TEXT COLLATE "C" NOT NULL,
    state           TEXT COLLATE "C" NOT NULL CHECK (state IN ('pending', 'done', 'alert')),
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at TEXT COLLATE "C" NOT NULL,
    last_error      TEXT COLLATE "C",
    created_at      TEXT COLLATE "C" NOT NULL,
    done_at         TEXT COLLATE "C"
);
CREATE INDEX waybill_cancels_due ON waybill_cancels (state, next_attempt_at);

CREATE FUNCTION station_void_cancels_at_service() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.state = 'voided' AND OLD.state = 'allocated' AND NEW.request_id IS NOT NULL THEN
        INSERT INTO waybill_cancels (number, courier, order_id, reason, state, next_attempt_at, created_at)
        VALUES (NEW.number, NEW.courier, NEW.order_id, COALESCE(NEW.void_reason, 'voided'), 'pending',
                station_now(), station_now())
        ON CONFLICT (number) DO NOTHING;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER tracking_void_cancels_at_service AFTER UPDATE OF state ON tracking_numbers
    FOR EACH ROW EXECUTE FUNCTION station_void_cancels_at_service();

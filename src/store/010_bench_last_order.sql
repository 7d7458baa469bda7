-- The order a bench worked on last, kept when the bench closes it (a STOP for
-- a changed order, an INTERCEPT): the bench's F2 reprint and F3 out-of-stock
-- may act on that order and no other.
ALTER TABLE bench_sessions ADD COLUMN last_order_id TEXT REFERENCES orders (id);
UPDATE bench_sessions SET last_order_id = order_id;

-- As SQLite's 014: an order's sends by kind and state, for the outbox's claims.
CREATE INDEX outbox_by_order ON outbox (order_id, kind, state);

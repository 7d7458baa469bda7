-- As SQLite's 017: which orders ship under a number (merged parcels), and an
-- order's latest wave.
CREATE INDEX wave_orders_by_tracking ON wave_orders (tracking_no);
CREATE INDEX wave_orders_by_order ON wave_orders (order_id, wave_id);

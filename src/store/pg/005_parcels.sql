-- As SQLite's 017: which orders ship under a number (merged parcels).
CREATE INDEX wave_orders_by_tracking ON wave_orders (tracking_no);

-- Merged parcels (合并发货): the orders of one parcel are the wave rows that
-- carry its number (the lead holds the number in tracking_numbers); this
-- index answers "which orders ship under number N".
CREATE INDEX wave_orders_by_tracking ON wave_orders (tracking_no);

-- Merged parcels (合并发货): the orders of one parcel are the wave rows that
-- carry its number (the lead holds the number in tracking_numbers).
-- "Which orders ship under number N":
CREATE INDEX wave_orders_by_tracking ON wave_orders (tracking_no);
-- "Which is order X's latest wave" (a parcel's riders, an order's slot and
-- waves): without it each look-up scanned every wave's rows.
CREATE INDEX wave_orders_by_order ON wave_orders (order_id, wave_id);

-- An order's sends by kind and state: what a claim asks of every candidate
-- ("is this order's shipment done?", "is anything before this return still
-- pending?"). Without it those questions scanned every done send, so each
-- claim grew with the outbox: 10,000 orders wrote back at a third of the rate
-- of 2,000. (The unique indexes are partial and do not answer them.)
CREATE INDEX outbox_by_order ON outbox (order_id, kind, state);

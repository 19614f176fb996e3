DROP TABLE billing_subscription_cancellations;
DROP TABLE billing_refunds;
DROP TABLE billing_payment_flags;
-- A rejected order granted nothing; `refunded` is the old status closest to that (never
-- `created`, which a later payment event would grant).
UPDATE billing_orders SET status = 'refunded' WHERE status = 'rejected';
ALTER TABLE billing_orders DROP CONSTRAINT billing_orders_status_check;
ALTER TABLE billing_orders ADD CONSTRAINT billing_orders_status_check
    CHECK (status IN ('created', 'paid', 'refunded'));
ALTER TABLE memberships DROP COLUMN void_reason;

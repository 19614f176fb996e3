-- A cheer's public name and message are confirmed once, by the first accepted Checkout
-- callback (`save_order`); later callbacks with the same signature change nothing.
ALTER TABLE billing_orders ADD COLUMN message_confirmed_at TIMESTAMPTZ;
-- Cheers already paid keep the name and message they show today.
UPDATE billing_orders SET message_confirmed_at = COALESCE(paid_at, updated_at)
 WHERE kind = 'cheer' AND status <> 'created';

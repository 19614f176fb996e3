ALTER TABLE billing_orders DROP COLUMN message_confirmed_at;

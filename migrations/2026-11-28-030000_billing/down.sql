DROP TABLE bank_details;
DROP TABLE billing_webhook_events;
DROP TABLE payments;
DROP TABLE billing_orders;
DROP TABLE memberships;
DROP TABLE billing_plans;
DROP FUNCTION billing_has_access(TEXT, TEXT, TIMESTAMPTZ, BOOLEAN, TIMESTAMPTZ);

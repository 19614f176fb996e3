ALTER TABLE billing_subscription_cancellations
    DROP CONSTRAINT billing_subscription_cancellations_reason_check;
DELETE FROM billing_subscription_cancellations WHERE reason = 'trial_used';
ALTER TABLE billing_subscription_cancellations ADD CONSTRAINT billing_subscription_cancellations_reason_check
    CHECK (reason IN ('stale_checkout', 'replaced', 'amount_mismatch'));
ALTER TABLE memberships DROP CONSTRAINT memberships_void_reason_check;
UPDATE memberships SET void_reason = 'amount_mismatch' WHERE void_reason = 'trial_used';
ALTER TABLE memberships ADD CONSTRAINT memberships_void_reason_check
    CHECK (void_reason IN ('stale_checkout', 'replaced', 'amount_mismatch'));
DROP TABLE billing_trial_instruments;

-- One free trial per card and per UPI ID (issue 14; oasis_billing::trials): the instruments a
-- creator's trials were authorised with, as keyed fingerprints (HMAC-SHA-256 under a key
-- derived from the server's secret; never the card id or the UPI ID). The first membership to
-- claim (creator, instrument) holds it.
CREATE TABLE billing_trial_instruments (
    creator_id     BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    fingerprint    BYTEA       NOT NULL CHECK (octet_length(fingerprint) = 32),
    membership_id  BIGINT      NOT NULL REFERENCES memberships (id) ON DELETE CASCADE,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (creator_id, fingerprint)
);
CREATE INDEX billing_trial_instruments_membership_idx ON billing_trial_instruments (membership_id);

-- A trial authorised with an instrument that already had one is voided (`trial_used`) and its
-- subscription cancelled.
ALTER TABLE memberships DROP CONSTRAINT memberships_void_reason_check;
ALTER TABLE memberships ADD CONSTRAINT memberships_void_reason_check
    CHECK (void_reason IN ('stale_checkout', 'replaced', 'amount_mismatch', 'trial_used'));
ALTER TABLE billing_subscription_cancellations
    DROP CONSTRAINT billing_subscription_cancellations_reason_check;
ALTER TABLE billing_subscription_cancellations ADD CONSTRAINT billing_subscription_cancellations_reason_check
    CHECK (reason IN ('stale_checkout', 'replaced', 'amount_mismatch', 'trial_used'));

-- Money correctness: memberships we voided, orders whose payment we refused, payments flagged
-- for an operator, refunds sent exactly once, and cancellations of voided subscriptions.
-- The rules are `oasis_billing::integrity`; the adapter is `oasis_db::billing`.

-- Why we voided a membership (it is `cancelled`, without access, whatever Razorpay says
-- later): its first payment came for a tier no longer sold at its price (`stale_checkout`), a
-- newer checkout replaced it after the tier changed (`replaced`), or a charge did not match its
-- price (`amount_mismatch`).
ALTER TABLE memberships ADD COLUMN void_reason TEXT
    CHECK (void_reason IN ('stale_checkout', 'replaced', 'amount_mismatch'));

-- `rejected`: a payment came that we refused (it did not match the order, or the tier was no
-- longer sold at the order's price). Such an order grants nothing, ever.
ALTER TABLE billing_orders DROP CONSTRAINT billing_orders_status_check;
ALTER TABLE billing_orders ADD CONSTRAINT billing_orders_status_check
    CHECK (status IN ('created', 'paid', 'refunded', 'rejected'));

-- Payments that did not match what was asked, for an operator (`oasis billing flags`).
CREATE TABLE billing_payment_flags (
    id                   BIGSERIAL   PRIMARY KEY,
    razorpay_payment_id  TEXT        NOT NULL,
    reason               TEXT        NOT NULL DEFAULT 'amount_mismatch'
                         CHECK (reason IN ('amount_mismatch')),
    expected_amount      BIGINT      NOT NULL,
    expected_currency    TEXT        NOT NULL,
    actual_amount        BIGINT      NOT NULL,
    actual_currency      TEXT        NOT NULL,
    user_id              BIGINT      REFERENCES users (id) ON DELETE SET NULL,
    creator_id           BIGINT      REFERENCES users (id) ON DELETE SET NULL,
    membership_id        BIGINT      REFERENCES memberships (id) ON DELETE SET NULL,
    order_id             BIGINT      REFERENCES billing_orders (id) ON DELETE SET NULL,
    created_at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT billing_payment_flags_payment_key UNIQUE (razorpay_payment_id, reason)
);
CREATE INDEX billing_payment_flags_user_idx ON billing_payment_flags (user_id);
CREATE INDEX billing_payment_flags_creator_idx ON billing_payment_flags (creator_id);
CREATE INDEX billing_payment_flags_membership_idx ON billing_payment_flags (membership_id);
CREATE INDEX billing_payment_flags_order_idx ON billing_payment_flags (order_id);
CREATE INDEX billing_payment_flags_created_idx ON billing_payment_flags (created_at DESC);

-- Refunds we decided on (payments of stale checkouts): one per payment, sent by the
-- `billing.refund` job with the idempotency key below (Razorpay's `X-Refund-Idempotency`), so
-- that retries, crashes and concurrent runs never refund twice.
CREATE TABLE billing_refunds (
    id                       BIGSERIAL   PRIMARY KEY,
    razorpay_payment_id      TEXT        NOT NULL,
    idempotency_key          TEXT        NOT NULL,
    amount                   BIGINT      NOT NULL CHECK (amount >= 0),
    currency                 TEXT        NOT NULL,
    reason                   TEXT        NOT NULL,
    user_id                  BIGINT      REFERENCES users (id) ON DELETE SET NULL,
    creator_id               BIGINT      REFERENCES users (id) ON DELETE SET NULL,
    tier_id                  BIGINT      REFERENCES tiers (id) ON DELETE SET NULL,
    membership_id            BIGINT      REFERENCES memberships (id) ON DELETE SET NULL,
    order_id                 BIGINT      REFERENCES billing_orders (id) ON DELETE SET NULL,
    -- requested → sent (Razorpay accepted it: razorpay_refund_id is set), or failed (Razorpay
    -- cannot refund this payment; an operator must look).
    status                   TEXT        NOT NULL DEFAULT 'requested'
                             CHECK (status IN ('requested', 'sent', 'failed')),
    razorpay_refund_id       TEXT,
    -- Razorpay's refund status when last seen (pending, processed, failed).
    razorpay_refund_status   TEXT,
    attempts                 INTEGER     NOT NULL DEFAULT 0,
    last_error               TEXT,
    -- One sender at a time (a job whose lease ran out may run twice).
    claimed_until            TIMESTAMPTZ,
    created_at               TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at               TIMESTAMPTZ NOT NULL DEFAULT now(),
    sent_at                  TIMESTAMPTZ,
    CONSTRAINT billing_refunds_payment_key UNIQUE (razorpay_payment_id),
    CONSTRAINT billing_refunds_idempotency_key UNIQUE (idempotency_key),
    CONSTRAINT billing_refunds_refund_key UNIQUE (razorpay_refund_id)
);
CREATE INDEX billing_refunds_user_idx ON billing_refunds (user_id);
CREATE INDEX billing_refunds_creator_idx ON billing_refunds (creator_id);
CREATE INDEX billing_refunds_tier_idx ON billing_refunds (tier_id);
CREATE INDEX billing_refunds_membership_idx ON billing_refunds (membership_id);
CREATE INDEX billing_refunds_order_idx ON billing_refunds (order_id);

-- Razorpay subscriptions of voided memberships, to cancel (best effort, by the
-- `billing.cancel` job): each attempt and its outcome recorded.
CREATE TABLE billing_subscription_cancellations (
    razorpay_subscription_id  TEXT        PRIMARY KEY,
    membership_id             BIGINT      REFERENCES memberships (id) ON DELETE SET NULL,
    reason                    TEXT        NOT NULL
                              CHECK (reason IN ('stale_checkout', 'replaced', 'amount_mismatch')),
    -- requested → cancelled (or already ended at Razorpay), or failed (gave up).
    status                    TEXT        NOT NULL DEFAULT 'requested'
                              CHECK (status IN ('requested', 'cancelled', 'failed')),
    attempts                  INTEGER     NOT NULL DEFAULT 0,
    -- The last attempt's outcome, e.g. "cancelled" or "razorpay: 502 ...".
    outcome                   TEXT,
    requested_at              TIMESTAMPTZ NOT NULL DEFAULT now(),
    attempted_at              TIMESTAMPTZ,
    cancelled_at              TIMESTAMPTZ
);
CREATE INDEX billing_subscription_cancellations_membership_idx
    ON billing_subscription_cancellations (membership_id);

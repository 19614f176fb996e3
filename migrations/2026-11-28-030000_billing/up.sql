-- Billing: memberships, plans, orders, payments, the webhook inbox, bank details.
-- Owned by the billing domain. Amounts are BIGINT minor units (paise, cents) + currency TEXT,
-- exactly as Razorpay counts them.

-- THE entitlement rule, mirroring oasis_billing::entitlement::has_access line by line
-- (a test evaluates both over the same fixtures). IMMUTABLE: `at` is passed in (now()).
CREATE FUNCTION billing_has_access(
    kind TEXT, status TEXT, current_end TIMESTAMPTZ, cancel_at_period_end BOOLEAN, at TIMESTAMPTZ
) RETURNS BOOLEAN LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE kind
        WHEN 'free' THEN status = 'active'
        WHEN 'one_time' THEN status = 'active' AND current_end IS NOT NULL AND at < current_end
        WHEN 'recurring' THEN CASE status
            WHEN 'active' THEN current_end IS NOT NULL AND at < current_end
            WHEN 'paused' THEN current_end IS NOT NULL AND at < current_end
            WHEN 'pending' THEN current_end IS NOT NULL AND at < current_end + interval '3 days'
            WHEN 'cancelled' THEN cancel_at_period_end AND current_end IS NOT NULL AND at < current_end
            ELSE false END
        ELSE false END
$$;

-- A tier's Razorpay plan per price: created once, reused; a price change makes a new plan
-- (price changes apply to new members only).
CREATE TABLE billing_plans (
    tier_id           BIGINT      NOT NULL REFERENCES tiers (id) ON DELETE CASCADE,
    amount            BIGINT      NOT NULL CHECK (amount > 0),
    currency          TEXT        NOT NULL,
    razorpay_plan_id  TEXT        NOT NULL UNIQUE,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tier_id, amount, currency)
);

CREATE TABLE memberships (
    id                        BIGSERIAL   PRIMARY KEY,
    user_id                   BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    tier_id                   BIGINT      NOT NULL REFERENCES tiers (id) ON DELETE RESTRICT,
    kind                      TEXT        NOT NULL CHECK (kind IN ('recurring', 'one_time', 'free')),
    status                    TEXT        NOT NULL CHECK (status IN ('created', 'authenticated',
                              'active', 'pending', 'halted', 'paused', 'cancelled', 'completed', 'expired')),
    amount                    BIGINT      NOT NULL DEFAULT 0 CHECK (amount >= 0),
    currency                  TEXT        NOT NULL DEFAULT 'INR',
    razorpay_subscription_id  TEXT        UNIQUE,
    razorpay_order_id         TEXT        UNIQUE,
    current_start             TIMESTAMPTZ,
    -- End of the paid period (one-time: payment + 30 days).
    current_end               TIMESTAMPTZ,
    cancel_at_period_end      BOOLEAN     NOT NULL DEFAULT false,
    ended_at                  TIMESTAMPTZ,
    paid_count                BIGINT      NOT NULL DEFAULT 0,
    -- Observation time of the Razorpay snapshot the status came from (convergent merge).
    state_at                  TIMESTAMPTZ,
    created_at                TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at                TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX memberships_user_tier_idx ON memberships (user_id, tier_id);
CREATE INDEX memberships_tier_idx ON memberships (tier_id);
-- At most one live recurring membership per user and tier (concurrent `create` calls).
CREATE UNIQUE INDEX memberships_one_live_recurring_key ON memberships (user_id, tier_id)
    WHERE kind = 'recurring' AND status IN ('created', 'authenticated', 'active', 'pending', 'paused');
CREATE UNIQUE INDEX memberships_one_free_key ON memberships (user_id, tier_id)
    WHERE kind = 'free' AND status = 'active';
-- Reconciliation scans memberships still waiting for Razorpay.
CREATE INDEX memberships_waiting_idx ON memberships (updated_at)
    WHERE kind = 'recurring' AND status IN ('created', 'authenticated', 'pending');

-- Razorpay orders we created: one-time tier purchases, cheers, commissions.
CREATE TABLE billing_orders (
    id                   BIGSERIAL   PRIMARY KEY,
    razorpay_order_id    TEXT        NOT NULL UNIQUE,
    kind                 TEXT        NOT NULL CHECK (kind IN ('one_time', 'cheer', 'commission')),
    status               TEXT        NOT NULL DEFAULT 'created' CHECK (status IN ('created', 'paid', 'refunded')),
    -- Payer (NULL: unknown, e.g. an order only seen through a webhook for an unknown username).
    user_id              BIGINT      REFERENCES users (id) ON DELETE SET NULL,
    creator_id           BIGINT      REFERENCES users (id) ON DELETE SET NULL,
    tier_id              BIGINT      REFERENCES tiers (id) ON DELETE SET NULL,
    -- Another domain's id (commission id for kind = 'commission').
    reference_id         BIGINT,
    amount               BIGINT      NOT NULL CHECK (amount >= 0),
    currency             TEXT        NOT NULL,
    name                 TEXT        NOT NULL DEFAULT '',
    message              TEXT        NOT NULL DEFAULT '' CHECK (char_length(message) <= 1000),
    notes                JSONB       NOT NULL DEFAULT '{}'::jsonb,
    razorpay_payment_id  TEXT,
    paid_at              TIMESTAMPTZ,
    created_at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at           TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX billing_orders_user_idx ON billing_orders (user_id, created_at DESC);
CREATE INDEX billing_orders_creator_idx ON billing_orders (creator_id, created_at DESC);
CREATE INDEX billing_orders_tier_idx ON billing_orders (tier_id);
CREATE INDEX billing_orders_waiting_idx ON billing_orders (created_at) WHERE status = 'created';

-- Every Razorpay payment, recorded once.
CREATE TABLE payments (
    id                        BIGSERIAL   PRIMARY KEY,
    razorpay_payment_id       TEXT        NOT NULL,
    kind                      TEXT        NOT NULL CHECK (kind IN ('subscription', 'one_time', 'cheer', 'commission')),
    status                    TEXT        NOT NULL CHECK (status IN ('created', 'failed', 'authorized', 'captured', 'refunded')),
    amount                    BIGINT      NOT NULL CHECK (amount >= 0),
    amount_refunded           BIGINT      NOT NULL DEFAULT 0 CHECK (amount_refunded >= 0),
    currency                  TEXT        NOT NULL,
    user_id                   BIGINT      REFERENCES users (id) ON DELETE SET NULL,
    creator_id                BIGINT      REFERENCES users (id) ON DELETE SET NULL,
    membership_id             BIGINT      REFERENCES memberships (id) ON DELETE SET NULL,
    order_id                  BIGINT      REFERENCES billing_orders (id) ON DELETE SET NULL,
    razorpay_order_id         TEXT,
    razorpay_subscription_id  TEXT,
    notes                     JSONB       NOT NULL DEFAULT '{}'::jsonb,
    -- Razorpay's created_at of the payment.
    paid_at                   TIMESTAMPTZ NOT NULL,
    created_at                TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at                TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT payments_razorpay_payment_id_key UNIQUE (razorpay_payment_id)
);
CREATE INDEX payments_user_idx ON payments (user_id);
CREATE INDEX payments_creator_idx ON payments (creator_id);
CREATE INDEX payments_membership_idx ON payments (membership_id);
CREATE INDEX payments_order_idx ON payments (order_id);

-- Durable webhook inbox: the raw signed bytes, de-duplicated on the event id.
CREATE TABLE billing_webhook_events (
    id            BIGSERIAL   PRIMARY KEY,
    event_id      TEXT        NOT NULL,
    event         TEXT        NOT NULL DEFAULT '',
    body          BYTEA       NOT NULL,
    received_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    processed_at  TIMESTAMPTZ,
    outcome       TEXT,
    CONSTRAINT billing_webhook_events_event_id_key UNIQUE (event_id)
);
CREATE INDEX billing_webhook_events_unprocessed_idx ON billing_webhook_events (received_at)
    WHERE processed_at IS NULL;

-- Creators' bank details, AES-256-GCM sealed (key from OASIS_SECRET_KEY via HKDF, user id as AAD).
CREATE TABLE bank_details (
    user_id       BIGINT      PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    nonce         BYTEA       NOT NULL,
    ciphertext    BYTEA       NOT NULL,
    key_version   SMALLINT    NOT NULL DEFAULT 1,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);

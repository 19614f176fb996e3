-- A fan's change of tier (issue 14): recorded before Razorpay is asked (`requested`), so a crash
-- or a lost answer is resolved by fetching the subscription (the `billing.change` job). An
-- update (`PATCH /v1/subscriptions/:id {plan_id, schedule_change_at}`) applies now (an upgrade:
-- the membership moves at once, Razorpay's prorated charge is accepted between `charge_min` and
-- `charge_now`) or at the cycle end (a downgrade: `scheduled` until the first charge at the new
-- price, or `effective_at`, moves the membership). A replacement (Razorpay refuses to update
-- UPI/eMandate mandates) cancels the old subscription at the cycle end and starts a new one
-- (`new_membership_id`) from `effective_at`.
CREATE TABLE billing_changes (
    id                        BIGSERIAL   PRIMARY KEY,
    membership_id             BIGINT      NOT NULL REFERENCES memberships (id) ON DELETE CASCADE,
    from_tier_id              BIGINT      NOT NULL REFERENCES tiers (id) ON DELETE CASCADE,
    to_tier_id                BIGINT      NOT NULL REFERENCES tiers (id) ON DELETE CASCADE,
    razorpay_subscription_id  TEXT        NOT NULL,
    to_plan_id                TEXT        NOT NULL,
    method                    TEXT        NOT NULL CHECK (method IN ('update', 'replace')),
    effective                 TEXT        NOT NULL CHECK (effective IN ('now', 'cycle_end')),
    state                     TEXT        NOT NULL DEFAULT 'requested'
                              CHECK (state IN ('requested', 'scheduled', 'applied', 'failed')),
    from_amount               BIGINT      NOT NULL CHECK (from_amount >= 0),
    to_amount                 BIGINT      NOT NULL CHECK (to_amount > 0),
    currency                  TEXT        NOT NULL,
    -- What the preview said is charged now, and the lowest prorated charge Razorpay may make
    -- for it a little later (OASIS_BILLING_CHANGE_SKEW_SECS).
    charge_now                BIGINT      NOT NULL DEFAULT 0 CHECK (charge_now >= 0),
    charge_min                BIGINT      NOT NULL DEFAULT 0 CHECK (charge_min >= 0 AND charge_min <= charge_now),
    -- The payment that paid the prorated charge (one only).
    charge_payment_id         TEXT        UNIQUE,
    effective_at              TIMESTAMPTZ NOT NULL,
    new_membership_id         BIGINT      REFERENCES memberships (id) ON DELETE SET NULL,
    attempts                  INTEGER     NOT NULL DEFAULT 0,
    last_error                TEXT,
    created_at                TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at                TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX billing_changes_membership_idx ON billing_changes (membership_id);
CREATE INDEX billing_changes_from_tier_idx ON billing_changes (from_tier_id);
CREATE INDEX billing_changes_to_tier_idx ON billing_changes (to_tier_id);
CREATE INDEX billing_changes_new_membership_idx ON billing_changes (new_membership_id);
-- At most one open change per membership.
CREATE UNIQUE INDEX billing_changes_one_open_key ON billing_changes (membership_id)
    WHERE state IN ('requested', 'scheduled');

-- A new notification kind: a membership changed tier. (Branch "notif" may also rewrite this
-- CHECK: the union of both lists is what main needs.)
ALTER TABLE notifications DROP CONSTRAINT notifications_kind_check;
ALTER TABLE notifications ADD CONSTRAINT notifications_kind_check
    CHECK (kind IN ('new_post', 'comment', 'like', 'follow', 'membership', 'cheer',
                    'payment_failed', 'membership_halted', 'payment_refunded', 'commission',
                    'receipt', 'membership_changed'));

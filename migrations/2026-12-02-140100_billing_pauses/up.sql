-- A fan's pause of a recurring membership: scheduled for the end of the paid period (the
-- `billing.pause` job pauses the subscription at Razorpay then), paused (the `billing.resume`
-- job resumes it at `resume_at`, or earlier when the fan asks), and finally resumed, cancelled
-- (the fan resumed before it took effect) or failed (Razorpay refused; `last_error` says why).
CREATE TABLE billing_pauses (
    id                        BIGSERIAL   PRIMARY KEY,
    membership_id             BIGINT      NOT NULL REFERENCES memberships (id) ON DELETE CASCADE,
    razorpay_subscription_id  TEXT        NOT NULL,
    cycles                    INTEGER     NOT NULL CHECK (cycles BETWEEN 1 AND 3),
    state                     TEXT        NOT NULL DEFAULT 'scheduled'
                              CHECK (state IN ('scheduled', 'paused', 'resumed', 'cancelled', 'failed')),
    pause_at                  TIMESTAMPTZ NOT NULL,
    -- Set once paused at Razorpay: the end of the skipped cycles.
    resume_at                 TIMESTAMPTZ,
    attempts                  INTEGER     NOT NULL DEFAULT 0,
    last_error                TEXT,
    created_at                TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at                TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX billing_pauses_membership_idx ON billing_pauses (membership_id);
-- At most one open pause per membership.
CREATE UNIQUE INDEX billing_pauses_one_open_key ON billing_pauses (membership_id)
    WHERE state IN ('scheduled', 'paused');

-- A creator's hiatus (issue 14): every active membership's subscription is paused at Razorpay
-- (skipping its next `cycles` charges) by the `billing.hiatus` job, which works through
-- `billing_hiatus_members` a batch at a time at a bounded rate and picks up where it stopped
-- after a crash; members keep access throughout and are resumed at `resumes_at`.
CREATE TABLE billing_hiatuses (
    id          BIGSERIAL   PRIMARY KEY,
    creator_id  BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    cycles      INTEGER     NOT NULL CHECK (cycles BETWEEN 1 AND 3),
    state       TEXT        NOT NULL DEFAULT 'pausing'
                CHECK (state IN ('pausing', 'paused', 'resuming', 'done')),
    started_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    resumes_at  TIMESTAMPTZ NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX billing_hiatuses_creator_idx ON billing_hiatuses (creator_id, id DESC);
-- At most one hiatus under way per creator.
CREATE UNIQUE INDEX billing_hiatuses_one_open_key ON billing_hiatuses (creator_id)
    WHERE state <> 'done';

CREATE TABLE billing_hiatus_members (
    hiatus_id                 BIGINT      NOT NULL REFERENCES billing_hiatuses (id) ON DELETE CASCADE,
    membership_id             BIGINT      NOT NULL REFERENCES memberships (id) ON DELETE CASCADE,
    razorpay_subscription_id  TEXT        NOT NULL,
    state                     TEXT        NOT NULL DEFAULT 'pending'
                              CHECK (state IN ('pending', 'paused', 'failed', 'resumed')),
    last_error                TEXT,
    updated_at                TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (hiatus_id, membership_id)
);
CREATE INDEX billing_hiatus_members_membership_idx ON billing_hiatus_members (membership_id);

-- A new notification kind: a member's creator went on hiatus. (Branch "notif" may also rewrite
-- this CHECK: main needs the union of both lists.)
ALTER TABLE notifications DROP CONSTRAINT notifications_kind_check;
ALTER TABLE notifications ADD CONSTRAINT notifications_kind_check
    CHECK (kind IN ('new_post', 'comment', 'like', 'follow', 'membership', 'cheer',
                    'payment_failed', 'membership_halted', 'payment_refunded', 'commission',
                    'receipt', 'membership_changed', 'creator_hiatus'));

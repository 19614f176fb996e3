-- Commissions: creators' offerings and fans' paid requests (the lifecycle's rules are
-- oasis_commissions::rules; the statuses are oasis_commissions::RequestStatus).
CREATE TABLE commissions (
    id            BIGSERIAL   PRIMARY KEY,
    creator_id    BIGINT      NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    title         TEXT        NOT NULL CHECK (char_length(title) BETWEEN 1 AND 200),
    description   TEXT        NOT NULL DEFAULT '',
    price         BIGINT      NOT NULL CHECK (price >= 100),
    currency      TEXT        NOT NULL CHECK (currency IN ('INR', 'USD')),
    delivery_days INTEGER     NOT NULL CHECK (delivery_days BETWEEN 1 AND 365),
    slots         INTEGER     NOT NULL CHECK (slots BETWEEN 1 AND 1000),
    is_open       BOOLEAN     NOT NULL DEFAULT TRUE,
    -- Deleted offerings stay for their past requests.
    deleted_at    TIMESTAMPTZ,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX commissions_creator_idx ON commissions (creator_id, id) WHERE deleted_at IS NULL;
CREATE INDEX commissions_creator_fk_idx ON commissions (creator_id);

CREATE TABLE commission_requests (
    id                  BIGSERIAL   PRIMARY KEY,
    commission_id       BIGINT      NOT NULL REFERENCES commissions(id) ON DELETE CASCADE,
    fan_id              BIGINT      NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    creator_id          BIGINT      NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    description         TEXT        NOT NULL,
    contact_details     TEXT        NOT NULL DEFAULT '',
    mode_of_delivery    TEXT        NOT NULL DEFAULT '' CHECK (char_length(mode_of_delivery) <= 100),
    status              TEXT        NOT NULL CHECK (status IN ('awaiting_payment', 'ordered',
                            'accepted', 'in_progress', 'delivered', 'completed', 'rejected',
                            'cancelled', 'expired')),
    -- The offering's price when the request was made (integer minor units).
    amount              BIGINT      NOT NULL CHECK (amount > 0),
    currency            TEXT        NOT NULL CHECK (currency IN ('INR', 'USD')),
    razorpay_order_id   TEXT        UNIQUE,
    razorpay_payment_id TEXT        UNIQUE,
    -- An unpaid request holds its slot until then.
    hold_until          TIMESTAMPTZ NOT NULL,
    paid_at             TIMESTAMPTZ,
    deliver_by          TIMESTAMPTZ,
    delivered_at        TIMESTAMPTZ,
    delivery_message    TEXT,
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK ((status = 'awaiting_payment' OR status = 'expired' OR status = 'cancelled')
           OR razorpay_payment_id IS NOT NULL)
);
CREATE INDEX commission_requests_commission_idx ON commission_requests (commission_id, status);
CREATE INDEX commission_requests_fan_idx ON commission_requests (fan_id, id);
CREATE INDEX commission_requests_creator_idx ON commission_requests (creator_id, id);
CREATE INDEX commission_requests_hold_idx ON commission_requests (hold_until)
    WHERE status = 'awaiting_payment';
CREATE INDEX commission_requests_delivered_idx ON commission_requests (delivered_at)
    WHERE status = 'delivered';

-- Every transition, oldest first (by_user NULL = the system).
CREATE TABLE commission_request_history (
    id          BIGSERIAL   PRIMARY KEY,
    request_id  BIGINT      NOT NULL REFERENCES commission_requests(id) ON DELETE CASCADE,
    status      TEXT        NOT NULL CHECK (status IN ('awaiting_payment', 'ordered',
                    'accepted', 'in_progress', 'delivered', 'completed', 'rejected',
                    'cancelled', 'expired')),
    by_user     BIGINT      REFERENCES users(id) ON DELETE SET NULL,
    message     TEXT,
    at          TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX commission_request_history_request_idx ON commission_request_history (request_id, id);
CREATE INDEX commission_request_history_by_idx ON commission_request_history (by_user);

-- Files of a delivery (readable by the request's two parties only).
CREATE TABLE commission_delivery_files (
    request_id  BIGINT NOT NULL REFERENCES commission_requests(id) ON DELETE CASCADE,
    media_id    BIGINT NOT NULL REFERENCES media(id) ON DELETE CASCADE,
    PRIMARY KEY (request_id, media_id)
);
CREATE INDEX commission_delivery_files_media_idx ON commission_delivery_files (media_id);

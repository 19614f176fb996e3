-- Route payouts: each creator's linked account (ids as Razorpay made them, and the payout
-- status shown to the creator), and every attempt at transferring a payment's net.
-- creator_id carries no foreign key on purpose (as the ledger): financial records outlive users.

CREATE TABLE payout_accounts (
    creator_id          BIGINT      PRIMARY KEY,
    razorpay_account_id TEXT        CONSTRAINT payout_accounts_account_key UNIQUE,
    stakeholder_id      TEXT,
    product_id          TEXT,
    status              TEXT        NOT NULL DEFAULT 'not_set_up'
        CHECK (status IN ('not_set_up', 'pending', 'active', 'needs_clarification', 'suspended')),
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at          TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE payout_transfers (
    id                   BIGSERIAL   PRIMARY KEY,
    razorpay_payment_id  TEXT        NOT NULL REFERENCES payments (razorpay_payment_id),
    creator_id           BIGINT      NOT NULL,
    attempt              INTEGER     NOT NULL CHECK (attempt >= 1),
    razorpay_account_id  TEXT        NOT NULL,
    amount               BIGINT      NOT NULL CHECK (amount > 0),
    currency             TEXT        NOT NULL,
    on_hold              BOOLEAN     NOT NULL,
    status               TEXT        NOT NULL
        CHECK (status IN ('created', 'processed', 'failed', 'reversed', 'settled')),
    razorpay_transfer_id TEXT        CONSTRAINT payout_transfers_transfer_key UNIQUE,
    error                TEXT,
    reversal_id          TEXT,
    settlement_id        TEXT,
    utr                  TEXT,
    created_at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT payout_transfers_attempt_key UNIQUE (razorpay_payment_id, attempt)
);
-- Exactly once: at most one transfer per payment holds its money (failed and reversed ones do not).
CREATE UNIQUE INDEX payout_transfers_one_live ON payout_transfers (razorpay_payment_id)
    WHERE status IN ('created', 'processed', 'settled');
CREATE INDEX payout_transfers_creator_idx ON payout_transfers (creator_id, id);

ALTER TABLE ledger_postings DROP CONSTRAINT ledger_postings_kind_check;
ALTER TABLE ledger_postings ADD CONSTRAINT ledger_postings_kind_check CHECK (kind IN (
    'capture', 'refund', 'release', 'dispute', 'dispute_won', 'manual_payout',
    'transfer', 'reversal', 'settlement'));

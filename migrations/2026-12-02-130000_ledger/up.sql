-- The earnings ledger: each captured payment's split (ledger_accounts), and balanced postings of
-- entries (ledger_postings, ledger_entries) in integer minor units per currency.
-- creator_id carries no foreign key on purpose: financial records outlive the user rows.

CREATE TABLE ledger_accounts (
    razorpay_payment_id TEXT        PRIMARY KEY REFERENCES payments (razorpay_payment_id),
    creator_id          BIGINT      NOT NULL,
    source              TEXT        NOT NULL CHECK (source IN ('membership', 'one_time', 'cheer', 'commission')),
    currency            TEXT        NOT NULL,
    gross               BIGINT      NOT NULL CHECK (gross > 0),
    gateway_fee         BIGINT      NOT NULL CHECK (gateway_fee >= 0),
    platform_fee        BIGINT      NOT NULL CHECK (platform_fee >= 0),
    net                 BIGINT      NOT NULL CHECK (net >= 0),
    refunded            BIGINT      NOT NULL DEFAULT 0,
    bucket              TEXT        NOT NULL CHECK (bucket IN ('pending', 'on_hold', 'transferred', 'settled', 'disputed', 'available_for_manual_payout')),
    hold_reason         TEXT        CHECK (hold_reason IN ('commission', 'hold_period', 'review')),
    hold_until          TIMESTAMPTZ,
    disputed_from       TEXT        CHECK (disputed_from IN ('pending', 'on_hold', 'transferred', 'settled', 'available_for_manual_payout')),
    captured_at         TIMESTAMPTZ NOT NULL,
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT ledger_accounts_split CHECK (gross = gateway_fee + platform_fee + net),
    CONSTRAINT ledger_accounts_refunded CHECK (refunded BETWEEN 0 AND gross),
    CONSTRAINT ledger_accounts_hold CHECK ((bucket = 'on_hold') = (hold_reason IS NOT NULL))
);
CREATE INDEX ledger_accounts_creator_idx ON ledger_accounts (creator_id);
CREATE INDEX ledger_accounts_hold_due_idx ON ledger_accounts (hold_until) WHERE hold_reason = 'hold_period';

CREATE TABLE ledger_postings (
    id                  BIGSERIAL   PRIMARY KEY,
    -- Unique per fact (capture:pay_…, refund:pay_…:<cumulative>, …): a repeat posts nothing.
    key                 TEXT        NOT NULL CONSTRAINT ledger_postings_key_key UNIQUE,
    razorpay_payment_id TEXT        REFERENCES payments (razorpay_payment_id),
    creator_id          BIGINT      NOT NULL,
    currency            TEXT        NOT NULL,
    kind                TEXT        NOT NULL CHECK (kind IN ('capture', 'refund', 'release', 'dispute', 'dispute_won', 'manual_payout')),
    gross               BIGINT      NOT NULL,
    gateway_fee         BIGINT      NOT NULL,
    platform_fee        BIGINT      NOT NULL,
    net                 BIGINT      NOT NULL,
    reference           TEXT,
    posted_at           TIMESTAMPTZ NOT NULL,
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX ledger_postings_creator_idx ON ledger_postings (creator_id, posted_at);
CREATE INDEX ledger_postings_payment_idx ON ledger_postings (razorpay_payment_id);

CREATE TABLE ledger_entries (
    id          BIGSERIAL PRIMARY KEY,
    posting_id  BIGINT    NOT NULL REFERENCES ledger_postings (id),
    -- The posting's creator and currency, repeated for the balance sums.
    creator_id  BIGINT    NOT NULL,
    currency    TEXT      NOT NULL,
    account     TEXT      NOT NULL CHECK (account IN ('payer', 'gateway_fee', 'platform_fee',
                    'creator_pending', 'creator_on_hold', 'creator_transferred', 'creator_settled',
                    'creator_disputed', 'creator_manual_payout')),
    amount      BIGINT    NOT NULL
);
CREATE INDEX ledger_entries_posting_idx ON ledger_entries (posting_id);
CREATE INDEX ledger_entries_creator_idx ON ledger_entries (creator_id, currency, account);

-- Double entry, enforced at commit: a posting's entries sum to zero.
CREATE FUNCTION ledger_check_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (SELECT COALESCE(SUM(amount), 0) FROM ledger_entries WHERE posting_id = NEW.posting_id) <> 0 THEN
        RAISE EXCEPTION 'ledger posting % does not sum to zero', NEW.posting_id
            USING ERRCODE = 'check_violation', CONSTRAINT = 'ledger_postings_balanced';
    END IF;
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER ledger_entries_balanced AFTER INSERT ON ledger_entries
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_check_balanced();

-- The ledger is append-only.
CREATE FUNCTION ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the ledger is append-only' USING ERRCODE = 'restrict_violation';
END $$;
CREATE TRIGGER ledger_entries_append_only BEFORE UPDATE OR DELETE ON ledger_entries
    FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER ledger_postings_append_only BEFORE UPDATE OR DELETE ON ledger_postings
    FOR EACH ROW EXECUTE FUNCTION ledger_append_only();

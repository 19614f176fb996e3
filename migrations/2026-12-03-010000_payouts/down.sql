ALTER TABLE ledger_postings DROP CONSTRAINT ledger_postings_kind_check;
ALTER TABLE ledger_postings ADD CONSTRAINT ledger_postings_kind_check CHECK (kind IN (
    'capture', 'refund', 'release', 'dispute', 'dispute_won', 'manual_payout'));
DROP TABLE payout_transfers;
DROP TABLE payout_accounts;

DROP TABLE ledger_entries;
DROP TABLE ledger_postings;
DROP TABLE ledger_accounts;
DROP FUNCTION ledger_append_only();
DROP FUNCTION ledger_check_balanced();

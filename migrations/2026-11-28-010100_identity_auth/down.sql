DROP TABLE social_accounts;
DROP TABLE login_failures;
DROP TABLE refresh_tokens;
DROP TABLE email_confirmations;

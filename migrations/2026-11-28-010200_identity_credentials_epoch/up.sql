-- When the password last changed: access JWTs issued before it are refused (refresh tokens and
-- other API keys are revoked at the same time), so a password change ends every other session.
ALTER TABLE users ADD COLUMN credentials_changed_at TIMESTAMPTZ;

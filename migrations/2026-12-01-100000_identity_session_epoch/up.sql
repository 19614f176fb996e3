-- Session epoch: every access/refresh JWT carries the epoch it was issued under; bumping the
-- epoch (password change or reset, or a verified owner claiming an unverified account) refuses
-- every JWT issued before, even within the same second (`iat` has one-second resolution).
ALTER TABLE users ADD COLUMN session_epoch BIGINT NOT NULL DEFAULT 0;

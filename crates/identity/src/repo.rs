//! The storage port of the identity domain. Implemented over PostgreSQL in `oasis-db`, and by an
//! in-memory fake for unit tests. Every method runs inside the caller's transaction.
use crate::model::{LoginType, NewUser, ProfileChanges, User};
use oasis_kernel::{RepoError, Timestamp};

/// A stored refresh token (by its `jti`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshRecord {
    pub jti: String,
    pub user_id: i64,
    /// Every rotation of one login shares a family; reuse of a rotated token revokes it.
    pub family: String,
    pub expires_at: Timestamp,
    pub used: bool,
    pub revoked: bool,
}

/// Failed-login count of one throttle scope within a window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailureCount {
    pub scope: String,
    pub count: u32,
    pub oldest: Option<Timestamp>,
}

/// What [`IdentityRepo::reserve_attempt`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reservation {
    /// One attempt per scope was recorded; these are their ids (to release on success).
    Reserved(Vec<i64>),
    /// Nothing was recorded: these scopes already hold the maximum within the window.
    Refused(Vec<FailureCount>),
}

/// A sensitive change waiting for the link mailed to the account's address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingChange {
    pub user_id: i64,
    /// What to change (`email`, `bank.set`, ...), chosen by the caller.
    pub kind: String,
    /// Opaque to identity (the new address, sealed bank details, ...).
    pub payload: Vec<u8>,
}

pub trait IdentityRepo {
    /// Inserts an account; `Ok(None)` when the username or email is already taken (no error is
    /// raised, so the transaction stays usable).
    fn insert_user(&mut self, user: &NewUser) -> Result<Option<User>, RepoError>;
    fn user_by_id(&mut self, id: i64) -> Result<Option<User>, RepoError>;
    /// Reads an account, locking its row until the transaction ends (so checks made on it hold
    /// until commit: a concurrent claim or password change waits, or is waited for).
    fn lock_user(&mut self, id: i64) -> Result<Option<User>, RepoError>;
    /// Case-insensitive.
    fn user_by_username(&mut self, username: &str) -> Result<Option<User>, RepoError>;
    /// Case-insensitive.
    fn user_by_email(&mut self, email: &str) -> Result<Option<User>, RepoError>;
    fn user_by_social(
        &mut self,
        provider: LoginType,
        subject: &str,
    ) -> Result<Option<User>, RepoError>;
    fn link_social(
        &mut self,
        user_id: i64,
        provider: LoginType,
        subject: &str,
        email: Option<&str>,
    ) -> Result<(), RepoError>;
    /// Removes every provider identity linked to the account; returns how many went.
    fn unlink_all_social(&mut self, user_id: i64) -> Result<u64, RepoError>;
    /// Sets the email (a unique violation is `Conflict{users_email_lower_key}`).
    fn set_email(&mut self, user_id: i64, email: &str, verified: bool) -> Result<(), RepoError>;
    /// Sets (or, with `None`, removes) the password hash and records when it changed.
    fn set_password(&mut self, user_id: i64, hash: Option<&str>) -> Result<(), RepoError>;
    /// Increments the session epoch: every JWT issued before is refused from now on.
    fn bump_session_epoch(&mut self, user_id: i64) -> Result<(), RepoError>;
    /// Applies profile changes and returns the updated account (a taken username is
    /// `Conflict{users_username_lower_key}`).
    fn update_profile(&mut self, user_id: i64, changes: &ProfileChanges)
        -> Result<User, RepoError>;

    fn insert_api_key(&mut self, user_id: i64, key_hash: &[u8]) -> Result<(), RepoError>;
    fn delete_api_key(&mut self, key_hash: &[u8]) -> Result<(), RepoError>;
    /// Deletes every key of the user except `keep`; returns how many went.
    fn delete_api_keys_except(
        &mut self,
        user_id: i64,
        keep: Option<&[u8]>,
    ) -> Result<u64, RepoError>;

    /// Records a pending confirmation of `email` for the user and returns its id. It has no key
    /// yet: the key is minted when the email is sent ([`Self::set_confirmation_key`]), so it
    /// never sits in a job queue.
    fn insert_confirmation(
        &mut self,
        user_id: i64,
        email: &str,
        expires_at: Timestamp,
    ) -> Result<i64, RepoError>;
    /// Gives an unused, unexpired confirmation its (new) key hash; returns the (user id, email)
    /// it confirms, or `None` when it is used, expired or gone.
    fn set_confirmation_key(
        &mut self,
        id: i64,
        key_hash: &[u8],
        now: Timestamp,
    ) -> Result<Option<(i64, String)>, RepoError>;
    /// Marks an unused, unexpired confirmation used; returns (user id, email) it confirms.
    fn consume_confirmation(
        &mut self,
        key_hash: &[u8],
        now: Timestamp,
    ) -> Result<Option<(i64, String)>, RepoError>;
    /// Makes every unused confirmation key of the account unusable; returns how many.
    fn cancel_confirmations(&mut self, user_id: i64, now: Timestamp) -> Result<u64, RepoError>;

    /// Stores a pending change (only the token's hash); older unused ones of the same user and
    /// kind are cancelled.
    fn insert_pending_change(
        &mut self,
        change: &PendingChange,
        token_hash: &[u8],
        expires_at: Timestamp,
    ) -> Result<i64, RepoError>;
    /// Gives an unused, unexpired pending change a new token hash (its link is minted when the
    /// email is sent); returns its user id, `None` when it was used, cancelled or expired.
    fn rekey_pending_change(
        &mut self,
        id: i64,
        token_hash: &[u8],
        now: Timestamp,
    ) -> Result<Option<i64>, RepoError>;
    /// Marks an unused, unexpired pending change used and returns it.
    fn consume_pending_change(
        &mut self,
        token_hash: &[u8],
        now: Timestamp,
    ) -> Result<Option<PendingChange>, RepoError>;
    /// Makes every unused pending change of the account unusable; returns how many.
    fn cancel_pending_changes(&mut self, user_id: i64, now: Timestamp) -> Result<u64, RepoError>;

    fn insert_refresh(&mut self, record: &RefreshRecord) -> Result<(), RepoError>;
    /// Reads a refresh token, locking it until the transaction ends.
    fn lock_refresh(&mut self, jti: &str) -> Result<Option<RefreshRecord>, RepoError>;
    fn mark_refresh_used(&mut self, jti: &str, now: Timestamp) -> Result<(), RepoError>;
    fn revoke_refresh_family(&mut self, family: &str, now: Timestamp) -> Result<u64, RepoError>;
    fn revoke_user_refresh(&mut self, user_id: i64, now: Timestamp) -> Result<u64, RepoError>;

    fn failures_since(
        &mut self,
        scopes: &[String],
        since: Timestamp,
    ) -> Result<Vec<FailureCount>, RepoError>;
    /// Records one failure per scope without checking any limit. Prefer
    /// [`IdentityRepo::reserve_attempt`], which checks and records atomically.
    fn record_failure(&mut self, scopes: &[String], now: Timestamp) -> Result<(), RepoError>;
    /// Atomically checks and records an attempt: unless a scope already holds `max` attempts
    /// after `since`, records one attempt per scope at `now`. Concurrent reservations of a scope
    /// (from any transaction or server process) are serialised until the caller's transaction
    /// ends, so at most `max` are ever granted per scope and window. Must run in a transaction.
    fn reserve_attempt(
        &mut self,
        scopes: &[String],
        max: u32,
        since: Timestamp,
        now: Timestamp,
    ) -> Result<Reservation, RepoError>;
    /// Forgets reserved attempts by id.
    fn release_attempts(&mut self, ids: &[i64]) -> Result<(), RepoError>;
    fn clear_failures(&mut self, scope: &str) -> Result<(), RepoError>;

    /// How many identity emails the user was sent since `since`.
    fn mails_since(&mut self, user_id: i64, since: Timestamp) -> Result<u32, RepoError>;
    /// Records an identity email to the user (and forgets ones older than a day).
    fn log_mail(&mut self, user_id: i64, kind: &str, now: Timestamp) -> Result<(), RepoError>;
}

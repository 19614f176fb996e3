//! Postgres adapter for the identity domain.
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Bytea, Text};
use oasis_kernel::RepoError;

use crate::{repo_error, CachedExt};

/// SHA-256 of an API key, as stored in `auth_tokens.key_hash`.
pub fn token_hash(key: &str) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, key.as_bytes())
        .as_ref()
        .to_vec()
}

/// The user behind an API key.
#[derive(Debug, Clone, QueryableByName)]
pub struct TokenOwner {
    #[diesel(sql_type = BigInt)]
    pub user_id: i64,
    #[diesel(sql_type = Text)]
    pub username: String,
    #[diesel(sql_type = Bool)]
    pub is_creator: bool,
}

/// Resolves an API key to its active user.
pub fn user_for_token(conn: &mut PgConnection, key: &str) -> Result<Option<TokenOwner>, RepoError> {
    diesel::sql_query(
        "SELECT u.id AS user_id, u.username, u.is_creator
         FROM auth_tokens t JOIN users u ON u.id = t.user_id
         WHERE t.key_hash = $1 AND u.is_active",
    )
    .bind::<Bytea, _>(token_hash(key))
    .cached()
    .get_result(conn)
    .optional()
    .map_err(repo_error)
}

/// Stores a new API key for a user (the caller generated `key` and returns it once).
pub fn insert_token(conn: &mut PgConnection, user_id: i64, key: &str) -> Result<(), RepoError> {
    diesel::sql_query("INSERT INTO auth_tokens (user_id, key_hash) VALUES ($1, $2)")
        .bind::<BigInt, _>(user_id)
        .bind::<Bytea, _>(token_hash(key))
        .execute(conn)
        .map(|_| ())
        .map_err(repo_error)
}

// ---------------------------------------------------------------------------------------------
// The identity repository (oasis_identity::IdentityRepo) over one connection.

use chrono::{DateTime, Utc};
use diesel::sql_types::{Array, Nullable, Timestamptz};
use oasis_identity::model::{LoginType, NewUser, ProfileChanges, User};
use oasis_identity::repo::{FailureCount, IdentityRepo, PendingChange, RefreshRecord, Reservation};

/// The identity repository over one connection (run inside the request's transaction).
pub struct PgIdentity<'a>(pub &'a mut PgConnection);

const USER_COLUMNS: &str =
    "id, username, email, first_name, last_name, password_hash, is_creator, \
     profile_pic, bio, login_type, email_verified, is_active, credentials_changed_at, \
     session_epoch";

#[derive(QueryableByName)]
struct UserRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Text)]
    username: String,
    #[diesel(sql_type = Text)]
    email: String,
    #[diesel(sql_type = Text)]
    first_name: String,
    #[diesel(sql_type = Text)]
    last_name: String,
    #[diesel(sql_type = Nullable<Text>)]
    password_hash: Option<String>,
    #[diesel(sql_type = Bool)]
    is_creator: bool,
    #[diesel(sql_type = Nullable<Text>)]
    profile_pic: Option<String>,
    #[diesel(sql_type = Text)]
    bio: String,
    #[diesel(sql_type = Text)]
    login_type: String,
    #[diesel(sql_type = Bool)]
    email_verified: bool,
    #[diesel(sql_type = Bool)]
    is_active: bool,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    credentials_changed_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = BigInt)]
    session_epoch: i64,
}

impl From<UserRow> for User {
    fn from(r: UserRow) -> Self {
        User {
            id: r.id,
            username: r.username,
            email: r.email,
            first_name: r.first_name,
            last_name: r.last_name,
            password_hash: r.password_hash,
            is_creator: r.is_creator,
            profile_pic: r.profile_pic,
            bio: r.bio,
            login_type: r.login_type,
            email_verified: r.email_verified,
            is_active: r.is_active,
            credentials_changed_at: r.credentials_changed_at,
            session_epoch: r.session_epoch,
        }
    }
}

#[derive(QueryableByName)]
struct RefreshRow {
    #[diesel(sql_type = Text)]
    jti: String,
    #[diesel(sql_type = BigInt)]
    user_id: i64,
    #[diesel(sql_type = Text)]
    family: String,
    #[diesel(sql_type = Timestamptz)]
    expires_at: DateTime<Utc>,
    #[diesel(sql_type = Bool)]
    used: bool,
    #[diesel(sql_type = Bool)]
    revoked: bool,
}

#[derive(QueryableByName)]
struct FailureRow {
    #[diesel(sql_type = Text)]
    scope: String,
    #[diesel(sql_type = BigInt)]
    count: i64,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    oldest: Option<DateTime<Utc>>,
}

#[derive(QueryableByName)]
struct Id {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

#[derive(QueryableByName)]
struct PendingRow {
    #[diesel(sql_type = BigInt)]
    user_id: i64,
    #[diesel(sql_type = Text)]
    kind: String,
    #[diesel(sql_type = Bytea)]
    payload: Vec<u8>,
}

/// The advisory-lock key of a throttle scope (first 8 bytes of a SHA-256, under a prefix of its
/// own so it cannot meet other advisory locks by accident).
fn scope_lock_key(scope: &str) -> i64 {
    let d = ring::digest::digest(
        &ring::digest::SHA256,
        format!("oasis/identity/throttle/{scope}").as_bytes(),
    );
    let mut b = [0u8; 8];
    b.copy_from_slice(&d.as_ref()[..8]);
    i64::from_be_bytes(b)
}

#[derive(QueryableByName)]
struct Confirmed {
    #[diesel(sql_type = BigInt)]
    user_id: i64,
    #[diesel(sql_type = Text)]
    email: String,
}

impl PgIdentity<'_> {
    fn one_user(&mut self, where_sql: &str, arg: &str) -> Result<Option<User>, RepoError> {
        diesel::sql_query(format!(
            "SELECT {USER_COLUMNS} FROM users WHERE {where_sql}"
        ))
        .bind::<Text, _>(arg)
        .get_result::<UserRow>(self.0)
        .optional()
        .map(|o| o.map(User::from))
        .map_err(repo_error)
    }
}

fn affected(r: QueryResult<usize>) -> Result<u64, RepoError> {
    r.map(|n| n as u64).map_err(repo_error)
}

impl IdentityRepo for PgIdentity<'_> {
    fn insert_user(&mut self, u: &NewUser) -> Result<Option<User>, RepoError> {
        diesel::sql_query(format!(
            "INSERT INTO users (username, email, first_name, last_name, password_hash, login_type,
                                email_verified, profile_pic)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT DO NOTHING
             RETURNING {USER_COLUMNS}"
        ))
        .bind::<Text, _>(&u.username)
        .bind::<Text, _>(&u.email)
        .bind::<Text, _>(&u.first_name)
        .bind::<Text, _>(&u.last_name)
        .bind::<Nullable<Text>, _>(u.password_hash.as_deref())
        .bind::<Text, _>(u.login_type.as_str())
        .bind::<Bool, _>(u.email_verified)
        .bind::<Nullable<Text>, _>(u.profile_pic.as_deref())
        .get_result::<UserRow>(self.0)
        .optional()
        .map(|o| o.map(User::from))
        .map_err(repo_error)
    }

    fn user_by_id(&mut self, id: i64) -> Result<Option<User>, RepoError> {
        diesel::sql_query(format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
            .bind::<BigInt, _>(id)
            .get_result::<UserRow>(self.0)
            .optional()
            .map(|o| o.map(User::from))
            .map_err(repo_error)
    }

    fn lock_user(&mut self, id: i64) -> Result<Option<User>, RepoError> {
        diesel::sql_query(format!(
            "SELECT {USER_COLUMNS} FROM users WHERE id = $1 FOR UPDATE"
        ))
        .bind::<BigInt, _>(id)
        .get_result::<UserRow>(self.0)
        .optional()
        .map(|o| o.map(User::from))
        .map_err(repo_error)
    }

    fn user_by_username(&mut self, username: &str) -> Result<Option<User>, RepoError> {
        self.one_user("lower(username) = lower($1)", username)
    }

    fn user_by_email(&mut self, email: &str) -> Result<Option<User>, RepoError> {
        self.one_user("lower(email) = lower($1)", email)
    }

    fn user_by_social(
        &mut self,
        provider: LoginType,
        subject: &str,
    ) -> Result<Option<User>, RepoError> {
        diesel::sql_query(format!(
            "SELECT {USER_COLUMNS} FROM users WHERE id =
               (SELECT user_id FROM social_accounts WHERE provider = $1 AND subject = $2)"
        ))
        .bind::<Text, _>(provider.as_str())
        .bind::<Text, _>(subject)
        .get_result::<UserRow>(self.0)
        .optional()
        .map(|o| o.map(User::from))
        .map_err(repo_error)
    }

    fn link_social(
        &mut self,
        user_id: i64,
        provider: LoginType,
        subject: &str,
        email: Option<&str>,
    ) -> Result<(), RepoError> {
        affected(
            diesel::sql_query(
                "INSERT INTO social_accounts (user_id, provider, subject, email)
                 VALUES ($1, $2, $3, $4) ON CONFLICT (provider, subject) DO NOTHING",
            )
            .bind::<BigInt, _>(user_id)
            .bind::<Text, _>(provider.as_str())
            .bind::<Text, _>(subject)
            .bind::<Nullable<Text>, _>(email)
            .execute(self.0),
        )
        .map(|_| ())
    }

    fn unlink_all_social(&mut self, user_id: i64) -> Result<u64, RepoError> {
        affected(
            diesel::sql_query("DELETE FROM social_accounts WHERE user_id = $1")
                .bind::<BigInt, _>(user_id)
                .execute(self.0),
        )
    }

    fn set_email(&mut self, user_id: i64, email: &str, verified: bool) -> Result<(), RepoError> {
        affected(
            diesel::sql_query(
                "UPDATE users SET email = $2, email_verified = $3, updated_at = now() WHERE id = $1",
            )
            .bind::<BigInt, _>(user_id)
            .bind::<Text, _>(email)
            .bind::<Bool, _>(verified)
            .execute(self.0),
        )
        .map(|_| ())
    }

    fn set_password(&mut self, user_id: i64, hash: Option<&str>) -> Result<(), RepoError> {
        affected(
            diesel::sql_query(
                "UPDATE users SET password_hash = $2, credentials_changed_at = now(), updated_at = now()
                 WHERE id = $1",
            )
            .bind::<BigInt, _>(user_id)
            .bind::<Nullable<Text>, _>(hash)
            .execute(self.0),
        )
        .map(|_| ())
    }

    fn bump_session_epoch(&mut self, user_id: i64) -> Result<(), RepoError> {
        affected(
            diesel::sql_query(
                "UPDATE users SET session_epoch = session_epoch + 1, updated_at = now() WHERE id = $1",
            )
            .bind::<BigInt, _>(user_id)
            .execute(self.0),
        )
        .map(|_| ())
    }

    fn update_profile(&mut self, user_id: i64, c: &ProfileChanges) -> Result<User, RepoError> {
        let (pic_set, pic) = match &c.profile_pic {
            Some(p) => (true, p.clone()),
            None => (false, None),
        };
        diesel::sql_query(format!(
            "UPDATE users SET
                username = COALESCE($2, username),
                first_name = COALESCE($3, first_name),
                last_name = COALESCE($4, last_name),
                is_creator = COALESCE($5, is_creator),
                bio = COALESCE($6, bio),
                profile_pic = CASE WHEN $7 THEN $8 ELSE profile_pic END,
                updated_at = now()
             WHERE id = $1
             RETURNING {USER_COLUMNS}"
        ))
        .bind::<BigInt, _>(user_id)
        .bind::<Nullable<Text>, _>(c.username.as_deref())
        .bind::<Nullable<Text>, _>(c.first_name.as_deref())
        .bind::<Nullable<Text>, _>(c.last_name.as_deref())
        .bind::<Nullable<Bool>, _>(c.is_creator)
        .bind::<Nullable<Text>, _>(c.bio.as_deref())
        .bind::<Bool, _>(pic_set)
        .bind::<Nullable<Text>, _>(pic)
        .get_result::<UserRow>(self.0)
        .map(User::from)
        .map_err(repo_error)
    }

    fn insert_api_key(&mut self, user_id: i64, key_hash: &[u8]) -> Result<(), RepoError> {
        affected(
            diesel::sql_query("INSERT INTO auth_tokens (user_id, key_hash) VALUES ($1, $2)")
                .bind::<BigInt, _>(user_id)
                .bind::<Bytea, _>(key_hash)
                .execute(self.0),
        )
        .map(|_| ())
    }

    fn delete_api_key(&mut self, key_hash: &[u8]) -> Result<(), RepoError> {
        affected(
            diesel::sql_query("DELETE FROM auth_tokens WHERE key_hash = $1")
                .bind::<Bytea, _>(key_hash)
                .execute(self.0),
        )
        .map(|_| ())
    }

    fn delete_api_keys_except(
        &mut self,
        user_id: i64,
        keep: Option<&[u8]>,
    ) -> Result<u64, RepoError> {
        affected(
            diesel::sql_query(
                "DELETE FROM auth_tokens WHERE user_id = $1
                 AND ($2::bytea IS NULL OR key_hash <> $2)",
            )
            .bind::<BigInt, _>(user_id)
            .bind::<Nullable<Bytea>, _>(keep)
            .execute(self.0),
        )
    }

    fn insert_confirmation(
        &mut self,
        user_id: i64,
        email: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<i64, RepoError> {
        affected(
            diesel::sql_query(
                "DELETE FROM email_confirmations
                 WHERE user_id = $1 AND expires_at < now() - interval '1 day'",
            )
            .bind::<BigInt, _>(user_id)
            .execute(self.0),
        )?;
        #[derive(QueryableByName)]
        struct Id {
            #[diesel(sql_type = BigInt)]
            id: i64,
        }
        diesel::sql_query(
            "INSERT INTO email_confirmations (user_id, email, expires_at)
             VALUES ($1, $2, $3) RETURNING id",
        )
        .bind::<BigInt, _>(user_id)
        .bind::<Text, _>(email)
        .bind::<Timestamptz, _>(expires_at)
        .get_result::<Id>(self.0)
        .map(|r| r.id)
        .map_err(repo_error)
    }

    fn set_confirmation_key(
        &mut self,
        id: i64,
        key_hash: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Option<(i64, String)>, RepoError> {
        diesel::sql_query(
            "UPDATE email_confirmations SET key_hash = $2
             WHERE id = $1 AND used_at IS NULL AND expires_at > $3
             RETURNING user_id, email",
        )
        .bind::<BigInt, _>(id)
        .bind::<Bytea, _>(key_hash)
        .bind::<Timestamptz, _>(now)
        .get_result::<Confirmed>(self.0)
        .optional()
        .map(|o| o.map(|c| (c.user_id, c.email)))
        .map_err(repo_error)
    }

    fn consume_confirmation(
        &mut self,
        key_hash: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Option<(i64, String)>, RepoError> {
        diesel::sql_query(
            "UPDATE email_confirmations SET used_at = $2
             WHERE key_hash = $1 AND used_at IS NULL AND expires_at > $2
             RETURNING user_id, email",
        )
        .bind::<Bytea, _>(key_hash)
        .bind::<Timestamptz, _>(now)
        .get_result::<Confirmed>(self.0)
        .optional()
        .map(|o| o.map(|c| (c.user_id, c.email)))
        .map_err(repo_error)
    }

    fn cancel_confirmations(&mut self, user_id: i64, now: DateTime<Utc>) -> Result<u64, RepoError> {
        affected(
            diesel::sql_query(
                "UPDATE email_confirmations SET used_at = $2 WHERE user_id = $1 AND used_at IS NULL",
            )
            .bind::<BigInt, _>(user_id)
            .bind::<Timestamptz, _>(now)
            .execute(self.0),
        )
    }

    fn insert_pending_change(
        &mut self,
        change: &PendingChange,
        token_hash: &[u8],
        expires_at: DateTime<Utc>,
    ) -> Result<i64, RepoError> {
        // Older requests of this kind are replaced; long-dead rows of the user go.
        affected(
            diesel::sql_query(
                "DELETE FROM pending_changes
                 WHERE user_id = $1 AND (kind = $2 OR expires_at < now() - interval '1 day')",
            )
            .bind::<BigInt, _>(change.user_id)
            .bind::<Text, _>(&change.kind)
            .execute(self.0),
        )?;
        #[derive(QueryableByName)]
        struct Id {
            #[diesel(sql_type = BigInt)]
            id: i64,
        }
        diesel::sql_query(
            "INSERT INTO pending_changes (user_id, kind, payload, token_hash, expires_at)
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind::<BigInt, _>(change.user_id)
        .bind::<Text, _>(&change.kind)
        .bind::<Bytea, _>(&change.payload)
        .bind::<Bytea, _>(token_hash)
        .bind::<Timestamptz, _>(expires_at)
        .get_result::<Id>(self.0)
        .map(|r| r.id)
        .map_err(repo_error)
    }

    fn rekey_pending_change(
        &mut self,
        id: i64,
        token_hash: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Option<i64>, RepoError> {
        #[derive(QueryableByName)]
        struct User {
            #[diesel(sql_type = BigInt)]
            user_id: i64,
        }
        diesel::sql_query(
            "UPDATE pending_changes SET token_hash = $2
             WHERE id = $1 AND used_at IS NULL AND expires_at > $3
             RETURNING user_id",
        )
        .bind::<BigInt, _>(id)
        .bind::<Bytea, _>(token_hash)
        .bind::<Timestamptz, _>(now)
        .get_result::<User>(self.0)
        .optional()
        .map(|o| o.map(|r| r.user_id))
        .map_err(repo_error)
    }

    fn consume_pending_change(
        &mut self,
        token_hash: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Option<PendingChange>, RepoError> {
        diesel::sql_query(
            "UPDATE pending_changes SET used_at = $2
             WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2
             RETURNING user_id, kind, payload",
        )
        .bind::<Bytea, _>(token_hash)
        .bind::<Timestamptz, _>(now)
        .get_result::<PendingRow>(self.0)
        .optional()
        .map(|o| {
            o.map(|r| PendingChange {
                user_id: r.user_id,
                kind: r.kind,
                payload: r.payload,
            })
        })
        .map_err(repo_error)
    }

    fn cancel_pending_changes(
        &mut self,
        user_id: i64,
        now: DateTime<Utc>,
    ) -> Result<u64, RepoError> {
        affected(
            diesel::sql_query(
                "UPDATE pending_changes SET used_at = $2 WHERE user_id = $1 AND used_at IS NULL",
            )
            .bind::<BigInt, _>(user_id)
            .bind::<Timestamptz, _>(now)
            .execute(self.0),
        )
    }

    fn insert_refresh(&mut self, r: &RefreshRecord) -> Result<(), RepoError> {
        // The user's long-expired tokens go first, so the table does not grow without bound.
        affected(
            diesel::sql_query(
                "DELETE FROM refresh_tokens
                 WHERE user_id = $1 AND expires_at < now() - interval '1 day'",
            )
            .bind::<BigInt, _>(r.user_id)
            .execute(self.0),
        )?;
        affected(
            diesel::sql_query(
                "INSERT INTO refresh_tokens (jti, user_id, family, expires_at) VALUES ($1, $2, $3, $4)",
            )
            .bind::<Text, _>(&r.jti)
            .bind::<BigInt, _>(r.user_id)
            .bind::<Text, _>(&r.family)
            .bind::<Timestamptz, _>(r.expires_at)
            .execute(self.0),
        )
        .map(|_| ())
    }

    fn lock_refresh(&mut self, jti: &str) -> Result<Option<RefreshRecord>, RepoError> {
        diesel::sql_query(
            "SELECT jti, user_id, family, expires_at, used_at IS NOT NULL AS used,
                    revoked_at IS NOT NULL AS revoked
             FROM refresh_tokens WHERE jti = $1 FOR UPDATE",
        )
        .bind::<Text, _>(jti)
        .get_result::<RefreshRow>(self.0)
        .optional()
        .map(|o| {
            o.map(|r| RefreshRecord {
                jti: r.jti,
                user_id: r.user_id,
                family: r.family,
                expires_at: r.expires_at,
                used: r.used,
                revoked: r.revoked,
            })
        })
        .map_err(repo_error)
    }

    fn mark_refresh_used(&mut self, jti: &str, now: DateTime<Utc>) -> Result<(), RepoError> {
        affected(
            diesel::sql_query("UPDATE refresh_tokens SET used_at = $2 WHERE jti = $1")
                .bind::<Text, _>(jti)
                .bind::<Timestamptz, _>(now)
                .execute(self.0),
        )
        .map(|_| ())
    }

    fn revoke_refresh_family(
        &mut self,
        family: &str,
        now: DateTime<Utc>,
    ) -> Result<u64, RepoError> {
        affected(
            diesel::sql_query(
                "UPDATE refresh_tokens SET revoked_at = $2 WHERE family = $1 AND revoked_at IS NULL",
            )
            .bind::<Text, _>(family)
            .bind::<Timestamptz, _>(now)
            .execute(self.0),
        )
    }

    fn revoke_user_refresh(&mut self, user_id: i64, now: DateTime<Utc>) -> Result<u64, RepoError> {
        affected(
            diesel::sql_query(
                "UPDATE refresh_tokens SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL",
            )
            .bind::<BigInt, _>(user_id)
            .bind::<Timestamptz, _>(now)
            .execute(self.0),
        )
    }

    fn failures_since(
        &mut self,
        scopes: &[String],
        since: DateTime<Utc>,
    ) -> Result<Vec<FailureCount>, RepoError> {
        let rows: Vec<FailureRow> = diesel::sql_query(
            "SELECT scope, count(*) AS count, min(failed_at) AS oldest
             FROM login_failures WHERE scope = ANY($1) AND failed_at > $2
             GROUP BY scope",
        )
        .bind::<Array<Text>, _>(scopes)
        .bind::<Timestamptz, _>(since)
        .load(self.0)
        .map_err(repo_error)?;
        Ok(rows
            .into_iter()
            .map(|r| FailureCount {
                scope: r.scope,
                count: r.count.clamp(0, u32::MAX as i64) as u32,
                oldest: r.oldest,
            })
            .collect())
    }

    fn record_failure(&mut self, scopes: &[String], now: DateTime<Utc>) -> Result<(), RepoError> {
        // Old rows of these scopes go first, so the table stays small.
        affected(
            diesel::sql_query(
                "DELETE FROM login_failures WHERE scope = ANY($1) AND failed_at < $2 - interval '1 day'",
            )
            .bind::<Array<Text>, _>(scopes)
            .bind::<Timestamptz, _>(now)
            .execute(self.0),
        )?;
        affected(
            diesel::sql_query(
                "INSERT INTO login_failures (scope, failed_at) SELECT s, $2 FROM unnest($1) AS s",
            )
            .bind::<Array<Text>, _>(scopes)
            .bind::<Timestamptz, _>(now)
            .execute(self.0),
        )
        .map(|_| ())
    }

    fn reserve_attempt(
        &mut self,
        scopes: &[String],
        max: u32,
        since: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Reservation, RepoError> {
        // One transaction-scoped advisory lock per scope, always taken in key order (two
        // requests sharing scopes cannot deadlock), held until the caller commits: the count
        // below and the insert after it are atomic for every process on this database.
        let mut keys: Vec<i64> = scopes.iter().map(|s| scope_lock_key(s)).collect();
        keys.sort_unstable();
        keys.dedup();
        for k in keys {
            affected(
                diesel::sql_query("SELECT pg_advisory_xact_lock($1)")
                    .bind::<BigInt, _>(k)
                    .execute(self.0),
            )?;
        }
        let full: Vec<FailureCount> = self
            .failures_since(scopes, since)?
            .into_iter()
            .filter(|c| c.count >= max)
            .collect();
        if !full.is_empty() {
            return Ok(Reservation::Refused(full));
        }
        affected(
            diesel::sql_query(
                "DELETE FROM login_failures WHERE scope = ANY($1) AND failed_at < $2 - interval '1 day'",
            )
            .bind::<Array<Text>, _>(scopes)
            .bind::<Timestamptz, _>(now)
            .execute(self.0),
        )?;
        let ids: Vec<Id> = diesel::sql_query(
            "INSERT INTO login_failures (scope, failed_at) SELECT s, $2 FROM unnest($1) AS s
             RETURNING id",
        )
        .bind::<Array<Text>, _>(scopes)
        .bind::<Timestamptz, _>(now)
        .load(self.0)
        .map_err(repo_error)?;
        Ok(Reservation::Reserved(
            ids.into_iter().map(|r| r.id).collect(),
        ))
    }

    fn release_attempts(&mut self, ids: &[i64]) -> Result<(), RepoError> {
        if ids.is_empty() {
            return Ok(());
        }
        affected(
            diesel::sql_query("DELETE FROM login_failures WHERE id = ANY($1)")
                .bind::<Array<BigInt>, _>(ids)
                .execute(self.0),
        )
        .map(|_| ())
    }

    fn clear_failures(&mut self, scope: &str) -> Result<(), RepoError> {
        affected(
            diesel::sql_query("DELETE FROM login_failures WHERE scope = $1")
                .bind::<Text, _>(scope)
                .execute(self.0),
        )
        .map(|_| ())
    }

    fn mails_since(&mut self, user_id: i64, since: DateTime<Utc>) -> Result<u32, RepoError> {
        #[derive(QueryableByName)]
        struct N {
            #[diesel(sql_type = BigInt)]
            n: i64,
        }
        diesel::sql_query(
            "SELECT count(*) AS n FROM identity_mail_log WHERE user_id = $1 AND sent_at > $2",
        )
        .bind::<BigInt, _>(user_id)
        .bind::<Timestamptz, _>(since)
        .get_result::<N>(self.0)
        .map(|r| r.n.clamp(0, u32::MAX as i64) as u32)
        .map_err(repo_error)
    }

    fn log_mail(&mut self, user_id: i64, kind: &str, now: DateTime<Utc>) -> Result<(), RepoError> {
        affected(
            diesel::sql_query(
                "DELETE FROM identity_mail_log WHERE user_id = $1 AND sent_at < $2 - interval '1 day'",
            )
            .bind::<BigInt, _>(user_id)
            .bind::<Timestamptz, _>(now)
            .execute(self.0),
        )?;
        affected(
            diesel::sql_query(
                "INSERT INTO identity_mail_log (user_id, kind, sent_at) VALUES ($1, $2, $3)",
            )
            .bind::<BigInt, _>(user_id)
            .bind::<Text, _>(kind)
            .bind::<Timestamptz, _>(now)
            .execute(self.0),
        )
        .map(|_| ())
    }
}

// ---------------------------------------------------------------------------------------------
// Guest checkout accounts (`oasis_server::workflows::guest`): unverified `guest` accounts made
// for a payment, and removed again when the payment could not even start.

impl PgIdentity<'_> {
    /// Creates an unverified `guest` account with a username derived from the email; `None`
    /// when the email was taken concurrently.
    pub fn create_guest_user(
        &mut self,
        email: &str,
        phone: Option<&str>,
        password_hash: &str,
    ) -> Result<Option<(i64, String)>, RepoError> {
        #[derive(QueryableByName)]
        struct IdRow {
            #[diesel(sql_type = BigInt)]
            id: i64,
        }
        let base: String = email
            .split('@')
            .next()
            .unwrap_or("guest")
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(20)
            .collect();
        let base = if base.is_empty() {
            "guest".to_owned()
        } else {
            base
        };
        for attempt in 0..8u32 {
            let username = if attempt == 0 {
                base.clone()
            } else {
                let n: u32 = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.subsec_nanos())
                    .unwrap_or(attempt);
                format!(
                    "{base}_{:04x}",
                    (n ^ attempt.wrapping_mul(2654435761)) & 0xffff
                )
            };
            let r: Option<IdRow> = diesel::sql_query(
                "INSERT INTO users (username, email, password_hash, login_type, email_verified, phone)
                 VALUES ($1, $2, $3, 'guest', false, $4) ON CONFLICT DO NOTHING RETURNING id",
            )
            .bind::<Text, _>(&username)
            .bind::<Text, _>(email)
            .bind::<Text, _>(password_hash)
            .bind::<Nullable<Text>, _>(phone)
            .get_result(self.0)
            .optional()
            .map_err(repo_error)?;
            if let Some(r) = r {
                return Ok(Some((r.id, username)));
            }
            if self.user_by_email(email)?.is_some() {
                return Ok(None);
            }
        }
        Err(RepoError::Conflict {
            constraint: "users_username_lower_key".into(),
        })
    }

    /// Deletes a `guest` account made by a guest checkout that then failed before anyone got
    /// a key to it (still unverified, no API key, no payment): a retry creates it afresh.
    /// Answers whether it was deleted.
    pub fn delete_unused_guest_user(&mut self, user_id: i64) -> Result<bool, RepoError> {
        diesel::sql_query(
            "DELETE FROM users u WHERE u.id = $1 AND u.login_type = 'guest' AND NOT u.email_verified
                AND NOT EXISTS (SELECT 1 FROM auth_tokens t WHERE t.user_id = u.id)
                AND NOT EXISTS (SELECT 1 FROM payments p WHERE p.user_id = u.id)",
        )
        .bind::<BigInt, _>(user_id)
        .execute(self.0)
        .map(|n| n == 1)
        .map_err(repo_error)
    }
}

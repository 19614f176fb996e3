//! Postgres adapter for the identity domain.
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Bytea, Text};
use oasis_kernel::RepoError;

use crate::repo_error;

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

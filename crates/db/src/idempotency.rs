//! The `Idempotency-Key` store (foundation table `idempotency_keys`), one per shell: every
//! route that must not run twice for one key (today billing's POSTs that talk to Razorpay)
//! stores its reply here per (caller, key). A row older than the caller's time-to-live is
//! expired: never replayed, replaced by the next use of its key, and deleted by
//! [`idempotency_sweep`]. The HTTP side is `oasis_server::idempotency`.
use crate::repo_error;
use crate::schema::idempotency_keys;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Text};
use oasis_kernel::RepoError;

/// What a begun idempotent request found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyBegin {
    /// First use of the key: run the request, then [`idempotency_finish`].
    Fresh,
    /// Same key, different request body.
    Mismatch,
    /// Same key, still running.
    InProgress,
    /// Same key, finished: replay this.
    Done { status: i16, body: Vec<u8> },
}

/// Claims `key` for `user_id` (replacing an expired row), or says what holds it.
pub fn idempotency_begin(
    conn: &mut PgConnection,
    user_id: i64,
    key: &str,
    request_hash: &str,
    ttl_secs: i64,
) -> Result<IdempotencyBegin, RepoError> {
    // A conditional upsert (replace only an expired row) with interval arithmetic.
    let n = diesel::sql_query(
        "INSERT INTO idempotency_keys (user_id, key, request_hash) VALUES ($1, $2, $3)
         ON CONFLICT (user_id, key) DO UPDATE
            SET request_hash = EXCLUDED.request_hash, response_status = NULL,
                response_body = NULL, created_at = now()
          WHERE idempotency_keys.created_at <= now() - $4 * interval '1 second'",
    )
    .bind::<BigInt, _>(user_id)
    .bind::<Text, _>(key)
    .bind::<Text, _>(request_hash)
    .bind::<BigInt, _>(ttl_secs)
    .execute(conn)
    .map_err(repo_error)?;
    if n == 1 {
        return Ok(IdempotencyBegin::Fresh);
    }
    // Held by a live row (or one deleted an instant ago: treated as still running).
    Ok(
        idempotency_find(conn, user_id, key, request_hash, ttl_secs)?
            .unwrap_or(IdempotencyBegin::InProgress),
    )
}

/// What a live row says about `key` for `user_id`, without claiming it: `None` when there is
/// no row or it expired; never [`IdempotencyBegin::Fresh`].
pub fn idempotency_find(
    conn: &mut PgConnection,
    user_id: i64,
    key: &str,
    request_hash: &str,
    ttl_secs: i64,
) -> Result<Option<IdempotencyBegin>, RepoError> {
    #[derive(Queryable, Selectable)]
    #[diesel(table_name = idempotency_keys, check_for_backend(diesel::pg::Pg))]
    struct K {
        request_hash: String,
        response_status: Option<i16>,
        response_body: Option<Vec<u8>>,
    }
    let k: Option<K> = idempotency_keys::table
        .find((user_id, key))
        .filter(live(ttl_secs))
        .select(K::as_select())
        .first(conn)
        .optional()
        .map_err(repo_error)?;
    Ok(k.map(|k| match k {
        k if k.request_hash != request_hash => IdempotencyBegin::Mismatch,
        K {
            response_status: Some(status),
            response_body,
            ..
        } => IdempotencyBegin::Done {
            status,
            body: response_body.unwrap_or_default(),
        },
        _ => IdempotencyBegin::InProgress,
    }))
}

/// Stores the response (`Some`) or releases the key after a failure (`None`) so a retry runs.
pub fn idempotency_finish(
    conn: &mut PgConnection,
    user_id: i64,
    key: &str,
    response: Option<(i16, &[u8])>,
) -> Result<(), RepoError> {
    use idempotency_keys::dsl as k;
    let row = k::idempotency_keys.find((user_id, key));
    match response {
        Some((status, body)) => diesel::update(row)
            .set((k::response_status.eq(status), k::response_body.eq(body)))
            .execute(conn),
        None => diesel::delete(row.filter(k::response_status.is_null())).execute(conn),
    }
    .map(|_| ())
    .map_err(repo_error)
}

/// Deletes expired rows; answers how many.
pub fn idempotency_sweep(conn: &mut PgConnection, ttl_secs: i64) -> Result<usize, RepoError> {
    diesel::delete(idempotency_keys::table.filter(diesel::dsl::not(live(ttl_secs))))
        .execute(conn)
        .map_err(repo_error)
}

/// `created_at > now() - ttl`: the row is younger than the time-to-live. Interval arithmetic
/// on a parameter, as a checked SQL fragment.
type Live = Box<dyn BoxableExpression<idempotency_keys::table, diesel::pg::Pg, SqlType = Bool>>;

fn live(ttl_secs: i64) -> Live {
    Box::new(
        diesel::dsl::sql::<Bool>("created_at > now() - ")
            .bind::<BigInt, _>(ttl_secs)
            .sql(" * interval '1 second'"),
    )
}

//! A durable job queue in PostgreSQL (the outbox): rows written in the same transaction as the
//! change that needs them, taken by workers with `FOR UPDATE SKIP LOCKED`, retried with back-off.
//! Emails, notifications and webhook processing go through it, so nothing is sent from inside a
//! transaction and nothing is lost when a send fails.
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer, Jsonb, Text, Timestamptz};
use oasis_kernel::RepoError;

use crate::{repo_error, CachedExt};

/// A job taken by a worker.
#[derive(Debug, Clone, QueryableByName)]
pub struct Job {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Text)]
    pub kind: String,
    #[diesel(sql_type = Jsonb)]
    pub payload: serde_json::Value,
    #[diesel(sql_type = Integer)]
    pub attempts: i32,
}

/// Queues a job (call inside the transaction that makes it necessary).
pub fn enqueue(
    conn: &mut PgConnection,
    kind: &str,
    payload: &serde_json::Value,
) -> Result<i64, RepoError> {
    #[derive(QueryableByName)]
    struct Id {
        #[diesel(sql_type = BigInt)]
        id: i64,
    }
    let row: Id =
        diesel::sql_query("INSERT INTO jobs (kind, payload) VALUES ($1, $2) RETURNING id")
            .bind::<Text, _>(kind)
            .bind::<Jsonb, _>(payload)
            .get_result(conn)
            .map_err(repo_error)?;
    Ok(row.id)
}

/// Queues a job due at `run_at` (call inside the transaction that makes it necessary).
pub fn enqueue_at(
    conn: &mut PgConnection,
    kind: &str,
    payload: &serde_json::Value,
    run_at: chrono::DateTime<chrono::Utc>,
) -> Result<i64, RepoError> {
    let id = enqueue(conn, kind, payload)?;
    diesel::sql_query("UPDATE jobs SET run_at = $2 WHERE id = $1")
        .bind::<BigInt, _>(id)
        .bind::<diesel::sql_types::Timestamptz, _>(run_at)
        .execute(conn)
        .map_err(repo_error)?;
    Ok(id)
}

/// Takes up to `limit` due jobs of the given kinds and leases them for `lease_secs` seconds
/// (a worker asks only for as many as it has free slots, and extends the leases of the jobs it
/// runs with [`extend_leases`]). A crashed worker's jobs become due again when the lease runs out.
pub fn take_due(
    conn: &mut PgConnection,
    kinds: &[&str],
    limit: i64,
    lease_secs: i64,
) -> Result<Vec<Job>, RepoError> {
    let kinds: Vec<String> = kinds.iter().map(|k| (*k).to_owned()).collect();
    diesel::sql_query(
        "UPDATE jobs SET run_at = now() + make_interval(secs => $3), attempts = attempts + 1
         WHERE id IN (
           SELECT id FROM jobs
           WHERE done_at IS NULL AND dead_at IS NULL AND run_at <= now() AND kind = ANY($1)
           ORDER BY run_at, id
           LIMIT $2
           FOR UPDATE SKIP LOCKED)
         RETURNING id, kind, payload, attempts",
    )
    .bind::<diesel::sql_types::Array<Text>, _>(&kinds)
    .bind::<BigInt, _>(limit)
    .bind::<diesel::sql_types::Double, _>(lease_secs as f64)
    .cached()
    .load(conn)
    .map_err(repo_error)
}

/// Extends the leases of jobs still running in this process (a heartbeat): each `(id, attempts)`
/// pair is the lease [`take_due`] handed out, so a job that another worker took over after this
/// lease ran out (its `attempts` moved on) is left alone. Returns how many leases were extended.
pub fn extend_leases(
    conn: &mut PgConnection,
    leases: &[(i64, i32)],
    lease_secs: i64,
) -> Result<u64, RepoError> {
    if leases.is_empty() {
        return Ok(0);
    }
    let (ids, attempts): (Vec<i64>, Vec<i32>) = leases.iter().copied().unzip();
    // unnest over two arrays: one statement whatever the number of running jobs.
    diesel::sql_query(
        "UPDATE jobs SET run_at = now() + make_interval(secs => $3)
         FROM unnest($1::bigint[], $2::int[]) AS held(id, attempts)
         WHERE jobs.id = held.id AND jobs.attempts = held.attempts
           AND jobs.done_at IS NULL AND jobs.dead_at IS NULL",
    )
    .bind::<diesel::sql_types::Array<BigInt>, _>(&ids)
    .bind::<diesel::sql_types::Array<Integer>, _>(&attempts)
    .bind::<diesel::sql_types::Double, _>(lease_secs as f64)
    .execute(conn)
    .map(|n| n as u64)
    .map_err(repo_error)
}

/// Marks a job done.
pub fn complete(conn: &mut PgConnection, id: i64) -> Result<(), RepoError> {
    diesel::sql_query("UPDATE jobs SET done_at = now(), last_error = NULL WHERE id = $1")
        .bind::<BigInt, _>(id)
        .cached()
        .execute(conn)
        .map(|_| ())
        .map_err(repo_error)
}

/// Deletes jobs that finished more than `retention_secs` ago (their payloads are no longer
/// needed); returns how many went. Parked and pending jobs stay.
pub fn sweep_done(conn: &mut PgConnection, retention_secs: i64) -> Result<u64, RepoError> {
    diesel::sql_query(
        "DELETE FROM jobs WHERE done_at IS NOT NULL AND done_at < now() - make_interval(secs => $1)",
    )
    .bind::<diesel::sql_types::Double, _>(retention_secs as f64)
    .execute(conn)
    .map(|n| n as u64)
    .map_err(repo_error)
}

/// Records a failure and schedules the next attempt (exponential back-off, capped at one hour);
/// after `max_attempts` the job is parked as a dead letter (`dead_at` set) for an operator.
/// Returns whether it was parked.
pub fn fail(
    conn: &mut PgConnection,
    id: i64,
    attempts: i32,
    error: &str,
    max_attempts: i32,
) -> Result<bool, RepoError> {
    let dead = attempts >= max_attempts;
    let delay_secs: f64 = if dead {
        0.0
    } else {
        (2f64.powi(attempts.clamp(0, 12))).min(3600.0)
    };
    diesel::sql_query(
        "UPDATE jobs SET last_error = $2, run_at = now() + make_interval(secs => $3),
             dead_at = CASE WHEN $4 THEN now() END
         WHERE id = $1",
    )
    .bind::<BigInt, _>(id)
    .bind::<Text, _>(error)
    .bind::<diesel::sql_types::Double, _>(delay_secs)
    .bind::<diesel::sql_types::Bool, _>(dead)
    .execute(conn)
    .map(|_| dead)
    .map_err(repo_error)
}

/// A job parked after its last allowed attempt.
#[derive(Debug, Clone, QueryableByName)]
pub struct DeadJob {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Text)]
    pub kind: String,
    #[diesel(sql_type = Integer)]
    pub attempts: i32,
    #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
    pub last_error: Option<String>,
    #[diesel(sql_type = Timestamptz)]
    pub created_at: DateTime<Utc>,
    #[diesel(sql_type = Timestamptz)]
    pub dead_at: DateTime<Utc>,
}

/// The dead letters, most recently parked first (at most `limit`).
pub fn dead(conn: &mut PgConnection, limit: i64) -> Result<Vec<DeadJob>, RepoError> {
    diesel::sql_query(
        "SELECT id, kind, attempts, last_error, created_at, dead_at FROM jobs
         WHERE dead_at IS NOT NULL ORDER BY dead_at DESC, id DESC LIMIT $1",
    )
    .bind::<BigInt, _>(limit)
    .load(conn)
    .map_err(repo_error)
}

/// Takes one dead letter back for an operator's re-run: clears `dead_at`, restarts its
/// attempts at 1 and leases it for `lease_secs` (if the re-run dies, a worker takes it when the
/// lease runs out). `None` when `id` is not a dead letter.
pub fn revive(conn: &mut PgConnection, id: i64, lease_secs: i64) -> Result<Option<Job>, RepoError> {
    diesel::sql_query(
        "UPDATE jobs SET dead_at = NULL, attempts = 1,
             run_at = now() + make_interval(secs => $2)
         WHERE id = $1 AND dead_at IS NOT NULL
         RETURNING id, kind, payload, attempts",
    )
    .bind::<BigInt, _>(id)
    .bind::<diesel::sql_types::Double, _>(lease_secs as f64)
    .get_result(conn)
    .optional()
    .map_err(repo_error)
}

/// When the next job of these kinds is due (for a worker's sleep).
pub fn next_due(
    conn: &mut PgConnection,
    kinds: &[&str],
) -> Result<Option<DateTime<Utc>>, RepoError> {
    #[derive(QueryableByName)]
    struct Due {
        #[diesel(sql_type = diesel::sql_types::Nullable<Timestamptz>)]
        due: Option<DateTime<Utc>>,
    }
    let kinds: Vec<String> = kinds.iter().map(|k| (*k).to_owned()).collect();
    let row: Due = diesel::sql_query(
        "SELECT min(run_at) AS due FROM jobs
         WHERE done_at IS NULL AND dead_at IS NULL AND kind = ANY($1)",
    )
    .bind::<diesel::sql_types::Array<Text>, _>(&kinds)
    .get_result(conn)
    .map_err(repo_error)?;
    Ok(row.due)
}

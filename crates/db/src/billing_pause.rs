//! Fans' pauses of recurring memberships (`billing_pauses`) and the jobs that carry them out
//! (`billing.pause` at the end of the paid period, `billing.resume` after the skipped cycles),
//! queued in the same transaction as the row change that makes them necessary.
use crate::billing::{lock_live_recurring, MembershipRow};
use crate::repo_error;
use crate::schema::{billing_pauses, memberships};
use chrono::{DateTime, Utc};
use diesel::dsl::now as db_now;
use diesel::prelude::*;
use oasis_billing::pause::PauseState;
use oasis_billing::BillingPeriod;
use oasis_kernel::RepoError;

/// Job kind: pause the subscription of this pause at Razorpay (payload `{"pause_id": N}`).
pub const JOB_PAUSE: &str = "billing.pause";
/// Job kind: resume it (payload `{"pause_id": N}`).
pub const JOB_RESUME: &str = "billing.resume";

/// A stored pause.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = billing_pauses, check_for_backend(diesel::pg::Pg))]
pub struct PauseRow {
    pub id: i64,
    pub membership_id: i64,
    pub razorpay_subscription_id: String,
    pub cycles: i32,
    pub state: String,
    pub pause_at: DateTime<Utc>,
    pub resume_at: Option<DateTime<Utc>>,
    pub attempts: i32,
    pub last_error: Option<String>,
}

impl PauseRow {
    /// The typed state; an unknown stored value is an error.
    pub fn state(&self) -> Result<PauseState, RepoError> {
        PauseState::parse(&self.state).ok_or_else(|| {
            RepoError::Unavailable(format!("unknown billing_pauses.state {:?}", self.state))
        })
    }
}

/// The caller's live recurring membership of a tier and its open pause (both locked).
pub fn lock_for_pause(
    conn: &mut PgConnection,
    user_id: i64,
    tier_id: i64,
) -> Result<Option<(MembershipRow, Option<PauseRow>)>, RepoError> {
    let Some(m) = lock_live_recurring(conn, user_id, tier_id)? else {
        return Ok(None);
    };
    let open = billing_pauses::table
        .filter(billing_pauses::membership_id.eq(m.id))
        .filter(
            billing_pauses::state
                .eq_any([PauseState::Scheduled.as_str(), PauseState::Paused.as_str()]),
        )
        .select(PauseRow::as_select())
        .for_update()
        .first(conn)
        .optional()
        .map_err(repo_error)?;
    Ok(Some((m, open)))
}

fn job(conn: &mut PgConnection, kind: &str, id: i64, at: DateTime<Utc>) -> Result<(), RepoError> {
    crate::jobs::enqueue_at(conn, kind, &serde_json::json!({ "pause_id": id }), at).map(|_| ())
}

/// Schedules a pause of a membership for `pause_at` (and its job).
pub fn schedule(
    conn: &mut PgConnection,
    membership_id: i64,
    subscription_id: &str,
    cycles: i32,
    pause_at: DateTime<Utc>,
) -> Result<PauseRow, RepoError> {
    let row: PauseRow = diesel::insert_into(billing_pauses::table)
        .values((
            billing_pauses::membership_id.eq(membership_id),
            billing_pauses::razorpay_subscription_id.eq(subscription_id),
            billing_pauses::cycles.eq(cycles),
            billing_pauses::pause_at.eq(pause_at),
        ))
        .returning(PauseRow::as_returning())
        .get_result(conn)
        .map_err(repo_error)?;
    job(conn, JOB_PAUSE, row.id, pause_at)?;
    Ok(row)
}

/// A membership's billing period (the skipped cycles are counted in it).
pub fn period_of(conn: &mut PgConnection, membership_id: i64) -> Result<BillingPeriod, RepoError> {
    let p: String = memberships::table
        .find(membership_id)
        .select(memberships::period)
        .first(conn)
        .map_err(repo_error)?;
    crate::billing::parse_period(&p)
}

/// The pause, locked.
pub fn lock(conn: &mut PgConnection, id: i64) -> Result<Option<PauseRow>, RepoError> {
    billing_pauses::table
        .find(id)
        .select(PauseRow::as_select())
        .for_update()
        .first(conn)
        .optional()
        .map_err(repo_error)
}

fn set_state(
    conn: &mut PgConnection,
    id: i64,
    state: PauseState,
    error: Option<&str>,
) -> Result<(), RepoError> {
    diesel::update(billing_pauses::table.find(id))
        .set((
            billing_pauses::state.eq(state.as_str()),
            billing_pauses::last_error.eq(error),
            billing_pauses::updated_at.eq(db_now),
        ))
        .execute(conn)
        .map(|_| ())
        .map_err(repo_error)
}

/// Paused at Razorpay: resumed by the `billing.resume` job at `resume_at`.
pub fn mark_paused(
    conn: &mut PgConnection,
    id: i64,
    resume_at: DateTime<Utc>,
) -> Result<(), RepoError> {
    set_state(conn, id, PauseState::Paused, None)?;
    diesel::update(billing_pauses::table.find(id))
        .set(billing_pauses::resume_at.eq(resume_at))
        .execute(conn)
        .map_err(repo_error)?;
    job(conn, JOB_RESUME, id, resume_at)
}

/// The fan asked to resume now: a resume job due now (the scheduled one finds it done).
pub fn resume_now(conn: &mut PgConnection, id: i64) -> Result<(), RepoError> {
    job(conn, JOB_RESUME, id, Utc::now())
}

/// Resumed, cancelled (before it took effect) or failed (with the reason): done.
pub fn finish(
    conn: &mut PgConnection,
    id: i64,
    state: PauseState,
    error: Option<&str>,
) -> Result<(), RepoError> {
    set_state(conn, id, state, error)
}

/// One attempt at Razorpay failed for a reason that may pass (the job retries).
pub fn attempt_failed(conn: &mut PgConnection, id: i64, error: &str) -> Result<(), RepoError> {
    diesel::update(billing_pauses::table.find(id))
        .set((
            billing_pauses::attempts.eq(billing_pauses::attempts + 1),
            billing_pauses::last_error.eq(error),
            billing_pauses::updated_at.eq(db_now),
        ))
        .execute(conn)
        .map(|_| ())
        .map_err(repo_error)
}

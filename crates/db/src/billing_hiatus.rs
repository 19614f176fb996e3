//! Creators' hiatuses (`billing_hiatuses`, `billing_hiatus_members`) and the `billing.hiatus`
//! job that carries one out, queued in the same transaction as the row change that needs it.
//! The rules are `oasis_billing::hiatus`'s.
use crate::repo_error;
use crate::schema::{billing_hiatus_members as hm, billing_hiatuses as h, memberships};
use chrono::{DateTime, Utc};
use diesel::dsl::now as db_now;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Timestamptz};
use oasis_billing::hiatus::{HiatusState, MemberState};
use oasis_billing::MembershipStatus;
use oasis_kernel::RepoError;

/// Job kind: work on this hiatus (payload `{"hiatus_id": N}`).
pub const JOB_HIATUS: &str = "billing.hiatus";

/// A stored hiatus.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = h, check_for_backend(diesel::pg::Pg))]
pub struct HiatusRow {
    pub id: i64,
    pub creator_id: i64,
    pub cycles: i32,
    pub state: String,
    pub started_at: DateTime<Utc>,
    pub resumes_at: DateTime<Utc>,
}

impl HiatusRow {
    pub fn state(&self) -> Result<HiatusState, RepoError> {
        HiatusState::parse(&self.state).ok_or_else(|| {
            RepoError::Unavailable(format!("unknown billing_hiatuses.state {:?}", self.state))
        })
    }
}

/// One member of a hiatus still to work on.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = hm, check_for_backend(diesel::pg::Pg))]
pub struct HiatusMember {
    pub membership_id: i64,
    pub razorpay_subscription_id: String,
}

/// A hiatus and its members' counts.
#[derive(Debug, Clone)]
pub struct HiatusSummary {
    pub row: HiatusRow,
    pub total: i64,
    pub paused: i64,
    pub failed: i64,
    /// Fans who joined during it and completed their checkout (first charge at its end).
    pub joined: i64,
}

pub fn job(conn: &mut PgConnection, id: i64, at: DateTime<Utc>) -> Result<(), RepoError> {
    crate::jobs::enqueue_at(
        conn,
        JOB_HIATUS,
        &serde_json::json!({ "hiatus_id": id }),
        at,
    )
    .map(|_| ())
}

/// The creator's hiatus under way at `at`: not over and not yet at `resumes_at` (not locked:
/// a checkout reads it).
pub fn current(
    conn: &mut PgConnection,
    creator_id: i64,
    at: DateTime<Utc>,
) -> Result<Option<HiatusRow>, RepoError> {
    unfinished(creator_id)
        .filter(h::resumes_at.gt(at))
        .first(conn)
        .optional()
        .map_err(repo_error)
}

type OfCreator = diesel::dsl::Filter<h::table, diesel::dsl::Eq<h::creator_id, i64>>;
type Unfinished = diesel::dsl::Select<
    diesel::dsl::Filter<OfCreator, diesel::dsl::NotEq<h::state, &'static str>>,
    diesel::dsl::AsSelect<HiatusRow, diesel::pg::Pg>,
>;

/// The creator's hiatus that is not done (at most one: a partial unique index).
fn unfinished(creator_id: i64) -> Unfinished {
    h::table
        .filter(h::creator_id.eq(creator_id))
        .filter(h::state.ne(HiatusState::Done.as_str()))
        .select(HiatusRow::as_select())
}

/// A membership joined during hiatus `hiatus_id`: access until `first_charge` (never earlier
/// than it had), counted among the hiatus' members.
pub fn join(
    conn: &mut PgConnection,
    membership_id: i64,
    hiatus_id: i64,
    first_charge: DateTime<Utc>,
) -> Result<(), RepoError> {
    diesel::sql_query(
        "UPDATE memberships SET current_end = GREATEST(current_end, $3), hiatus_id = $2,
             updated_at = now()
         WHERE id = $1",
    )
    .bind::<BigInt, _>(membership_id)
    .bind::<BigInt, _>(hiatus_id)
    .bind::<Timestamptz, _>(first_charge)
    .execute(conn)
    .map(|_| ())
    .map_err(repo_error)
}

/// The creator's hiatus under way (not `done`), locked.
pub fn open_hiatus(
    conn: &mut PgConnection,
    creator_id: i64,
) -> Result<Option<HiatusRow>, RepoError> {
    unfinished(creator_id)
        .for_update()
        .first(conn)
        .optional()
        .map_err(repo_error)
}

/// Starts a hiatus: its members are every active, renewing, unvoided recurring membership of
/// the creator's tiers without a fan's pause (those pause on their own); the job is queued now.
pub fn start(
    conn: &mut PgConnection,
    creator_id: i64,
    cycles: i32,
    now: DateTime<Utc>,
    resumes_at: DateTime<Utc>,
) -> Result<HiatusRow, RepoError> {
    let row: HiatusRow = diesel::insert_into(h::table)
        .values((
            h::creator_id.eq(creator_id),
            h::cycles.eq(cycles),
            h::started_at.eq(now),
            h::resumes_at.eq(resumes_at),
        ))
        .returning(HiatusRow::as_returning())
        .get_result(conn)
        .map_err(repo_error)?;
    diesel::sql_query(
        "INSERT INTO billing_hiatus_members (hiatus_id, membership_id, razorpay_subscription_id)
         SELECT $1, m.id, m.razorpay_subscription_id
         FROM memberships m JOIN tiers t ON t.id = m.tier_id
         WHERE t.creator_id = $2 AND m.kind = 'recurring' AND m.status = 'active'
           AND NOT m.cancel_at_period_end AND m.void_reason IS NULL
           AND m.razorpay_subscription_id IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM billing_pauses p
                           WHERE p.membership_id = m.id AND p.state IN ('scheduled', 'paused'))",
    )
    .bind::<BigInt, _>(row.id)
    .bind::<BigInt, _>(creator_id)
    .execute(conn)
    .map_err(repo_error)?;
    job(conn, row.id, now)?;
    Ok(row)
}

/// The creator's latest hiatus with its counts.
pub fn latest(
    conn: &mut PgConnection,
    creator_id: i64,
) -> Result<Option<HiatusSummary>, RepoError> {
    let Some(row) = h::table
        .filter(h::creator_id.eq(creator_id))
        .order(h::id.desc())
        .select(HiatusRow::as_select())
        .first(conn)
        .optional()
        .map_err(repo_error)?
    else {
        return Ok(None);
    };
    let states: Vec<String> = hm::table
        .filter(hm::hiatus_id.eq(row.id))
        .select(hm::state)
        .load(conn)
        .map_err(repo_error)?;
    let count = |s: MemberState| states.iter().filter(|x| *x == s.as_str()).count() as i64;
    let joined: i64 = memberships::table
        .filter(memberships::hiatus_id.eq(row.id))
        .filter(memberships::void_reason.is_null())
        .filter(memberships::status.eq_any([
            MembershipStatus::Authenticated.as_str(),
            MembershipStatus::Active.as_str(),
        ]))
        .count()
        .get_result(conn)
        .map_err(repo_error)?;
    Ok(Some(HiatusSummary {
        total: states.len() as i64 + joined,
        joined,
        paused: count(MemberState::Paused),
        failed: count(MemberState::Failed),
        row,
    }))
}

/// The hiatus, locked.
pub fn lock(conn: &mut PgConnection, id: i64) -> Result<Option<HiatusRow>, RepoError> {
    h::table
        .find(id)
        .select(HiatusRow::as_select())
        .for_update()
        .first(conn)
        .optional()
        .map_err(repo_error)
}

pub fn set_state(conn: &mut PgConnection, id: i64, state: HiatusState) -> Result<(), RepoError> {
    diesel::update(h::table.find(id))
        .set((h::state.eq(state.as_str()), h::updated_at.eq(db_now)))
        .execute(conn)
        .map(|_| ())
        .map_err(repo_error)
}

/// Up to `limit` members in `state`, in membership order.
pub fn members_in(
    conn: &mut PgConnection,
    id: i64,
    state: MemberState,
    limit: i64,
) -> Result<Vec<HiatusMember>, RepoError> {
    hm::table
        .filter(hm::hiatus_id.eq(id))
        .filter(hm::state.eq(state.as_str()))
        .order(hm::membership_id)
        .limit(limit)
        .select(HiatusMember::as_select())
        .load(conn)
        .map_err(repo_error)
}

/// Records a member's step (with the reason of a failure).
pub fn mark_member(
    conn: &mut PgConnection,
    id: i64,
    membership_id: i64,
    state: MemberState,
    error: Option<&str>,
) -> Result<(), RepoError> {
    diesel::update(hm::table.find((id, membership_id)))
        .set((
            hm::state.eq(state.as_str()),
            hm::last_error.eq(error),
            hm::updated_at.eq(db_now),
        ))
        .execute(conn)
        .map(|_| ())
        .map_err(repo_error)
}

/// Members keep access through the hiatus: the period end is moved to its end (never earlier).
pub fn keep_access_until(
    conn: &mut PgConnection,
    membership_id: i64,
    until: DateTime<Utc>,
) -> Result<(), RepoError> {
    diesel::sql_query(
        "UPDATE memberships SET current_end = GREATEST(current_end, $2), updated_at = now()
         WHERE id = $1",
    )
    .bind::<BigInt, _>(membership_id)
    .bind::<Timestamptz, _>(until)
    .execute(conn)
    .map(|_| ())
    .map_err(repo_error)
}

/// The fan of a membership.
pub fn fan_of(conn: &mut PgConnection, membership_id: i64) -> Result<i64, RepoError> {
    memberships::table
        .find(membership_id)
        .select(memberships::user_id)
        .first(conn)
        .map_err(repo_error)
}

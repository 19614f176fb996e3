//! Fans' changes of tier (`billing_changes`) and the `billing.change` job that resolves one
//! (after a crash or a lost answer, and when a downgrade's cycle end has passed), queued in the
//! same transaction as the row change that makes it necessary. The rules are
//! `oasis_billing::change`'s.
use crate::repo_error;
use crate::schema::{billing_changes, memberships};
use chrono::{DateTime, Utc};
use diesel::dsl::now as db_now;
use diesel::prelude::*;
use oasis_billing::change::{ChangeMethod, ChangeState, Effective};
use oasis_billing::ports::ChangeClaim;
use oasis_kernel::RepoError;

/// Job kind: resolve this change from the subscription at Razorpay (payload
/// `{"change_id": N}`).
pub const JOB_CHANGE: &str = "billing.change";

diesel::define_sql_function!(fn lower(x: diesel::sql_types::Text) -> diesel::sql_types::Text);

/// A stored change.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = billing_changes, check_for_backend(diesel::pg::Pg))]
pub struct ChangeRow {
    pub id: i64,
    pub membership_id: i64,
    pub from_tier_id: i64,
    pub to_tier_id: i64,
    pub razorpay_subscription_id: String,
    pub to_plan_id: String,
    pub method: String,
    pub effective: String,
    pub state: String,
    pub from_amount: i64,
    pub to_amount: i64,
    pub currency: String,
    pub charge_now: i64,
    pub charge_min: i64,
    pub charge_payment_id: Option<String>,
    pub effective_at: DateTime<Utc>,
    pub new_membership_id: Option<i64>,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
}

fn unknown(column: &str, v: &str) -> RepoError {
    RepoError::Unavailable(format!("unknown billing_changes.{column} {v:?}"))
}

impl ChangeRow {
    pub fn state(&self) -> Result<ChangeState, RepoError> {
        ChangeState::parse(&self.state).ok_or_else(|| unknown("state", &self.state))
    }
    pub fn method(&self) -> Result<ChangeMethod, RepoError> {
        ChangeMethod::parse(&self.method).ok_or_else(|| unknown("method", &self.method))
    }
    pub fn effective(&self) -> Result<Effective, RepoError> {
        Effective::parse(&self.effective).ok_or_else(|| unknown("effective", &self.effective))
    }
}

/// A change to record.
#[derive(Debug, Clone)]
pub struct NewChange {
    pub membership_id: i64,
    pub from_tier_id: i64,
    pub to_tier_id: i64,
    pub razorpay_subscription_id: String,
    pub to_plan_id: String,
    pub method: ChangeMethod,
    pub effective: Effective,
    pub from_amount: i64,
    pub to_amount: i64,
    pub currency: String,
    pub charge_now: i64,
    pub charge_min: i64,
    pub effective_at: DateTime<Utc>,
}

fn job(conn: &mut PgConnection, id: i64, at: DateTime<Utc>) -> Result<(), RepoError> {
    crate::jobs::enqueue_at(
        conn,
        JOB_CHANGE,
        &serde_json::json!({ "change_id": id }),
        at,
    )
    .map(|_| ())
}

/// The membership's open (requested or scheduled) change, locked.
pub fn open_change(
    conn: &mut PgConnection,
    membership_id: i64,
) -> Result<Option<ChangeRow>, RepoError> {
    billing_changes::table
        .filter(billing_changes::membership_id.eq(membership_id))
        .filter(billing_changes::state.eq_any([
            ChangeState::Requested.as_str(),
            ChangeState::Scheduled.as_str(),
        ]))
        .select(ChangeRow::as_select())
        .for_update()
        .first(conn)
        .optional()
        .map_err(repo_error)
}

/// Records a change before Razorpay is asked, with the job that resolves it at `resolve_at`
/// should the answer be lost (or the process die). A second open change of the membership is
/// a [`RepoError::Conflict`].
pub fn insert(
    conn: &mut PgConnection,
    new: &NewChange,
    resolve_at: DateTime<Utc>,
) -> Result<ChangeRow, RepoError> {
    let row: ChangeRow = diesel::insert_into(billing_changes::table)
        .values((
            billing_changes::membership_id.eq(new.membership_id),
            billing_changes::from_tier_id.eq(new.from_tier_id),
            billing_changes::to_tier_id.eq(new.to_tier_id),
            billing_changes::razorpay_subscription_id.eq(&new.razorpay_subscription_id),
            billing_changes::to_plan_id.eq(&new.to_plan_id),
            billing_changes::method.eq(new.method.as_str()),
            billing_changes::effective.eq(new.effective.as_str()),
            billing_changes::from_amount.eq(new.from_amount),
            billing_changes::to_amount.eq(new.to_amount),
            billing_changes::currency.eq(&new.currency),
            billing_changes::charge_now.eq(new.charge_now),
            billing_changes::charge_min.eq(new.charge_min),
            billing_changes::effective_at.eq(new.effective_at),
        ))
        .returning(ChangeRow::as_returning())
        .get_result(conn)
        .map_err(repo_error)?;
    job(conn, row.id, resolve_at)?;
    Ok(row)
}

/// The change, locked.
pub fn lock(conn: &mut PgConnection, id: i64) -> Result<Option<ChangeRow>, RepoError> {
    billing_changes::table
        .find(id)
        .select(ChangeRow::as_select())
        .for_update()
        .first(conn)
        .optional()
        .map_err(repo_error)
}

fn set_state(
    conn: &mut PgConnection,
    id: i64,
    state: ChangeState,
    error: Option<&str>,
) -> Result<(), RepoError> {
    diesel::update(billing_changes::table.find(id))
        .set((
            billing_changes::state.eq(state.as_str()),
            billing_changes::last_error.eq(error),
            billing_changes::updated_at.eq(db_now),
        ))
        .execute(conn)
        .map(|_| ())
        .map_err(repo_error)
}

/// Moves the membership to the change's tier and price, and marks the change applied.
pub fn move_membership(conn: &mut PgConnection, row: &ChangeRow) -> Result<(), RepoError> {
    diesel::update(memberships::table.find(row.membership_id))
        .set((
            memberships::tier_id.eq(row.to_tier_id),
            memberships::amount.eq(row.to_amount),
            memberships::updated_at.eq(db_now),
        ))
        .execute(conn)
        .map_err(repo_error)?;
    set_state(conn, row.id, ChangeState::Applied, None)
}

/// Made at Razorpay for the cycle end: resolved again (the membership moved) at `effective_at`.
pub fn mark_scheduled(conn: &mut PgConnection, row: &ChangeRow) -> Result<(), RepoError> {
    set_state(conn, row.id, ChangeState::Scheduled, None)?;
    job(conn, row.id, row.effective_at)
}

/// A replacement made (its subscription created, the old one cancelled at its cycle end).
pub fn mark_replaced(conn: &mut PgConnection, id: i64) -> Result<(), RepoError> {
    set_state(conn, id, ChangeState::Applied, None)?;
    release_claim(conn, id)
}

/// Razorpay refused to update the subscription: the change becomes a replacement (at the
/// cycle end, nothing charged now) with `new_membership_id` reserved for it.
pub fn as_replacement(
    conn: &mut PgConnection,
    id: i64,
    new_membership_id: i64,
) -> Result<(), RepoError> {
    diesel::update(billing_changes::table.find(id))
        .set((
            billing_changes::method.eq(ChangeMethod::Replace.as_str()),
            billing_changes::effective.eq(Effective::CycleEnd.as_str()),
            billing_changes::charge_now.eq(0),
            billing_changes::charge_min.eq(0),
            billing_changes::new_membership_id.eq(new_membership_id),
            billing_changes::updated_at.eq(db_now),
        ))
        .execute(conn)
        .map(|_| ())
        .map_err(repo_error)
}

/// Gives a replacement's reserved membership its bridge: access to the new tier from the old
/// period's end (`from`, where its first charge is due) until `until`, while that first charge
/// is awaited (the entitlement rule's authenticated period).
pub fn bridge(
    conn: &mut PgConnection,
    membership_id: i64,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<(), RepoError> {
    diesel::update(memberships::table.find(membership_id))
        .set((
            memberships::current_start.eq(Some(from)),
            memberships::current_end.eq(Some(until)),
            memberships::updated_at.eq(db_now),
        ))
        .execute(conn)
        .map(|_| ())
        .map_err(repo_error)
}

/// The subscription of a replacement's membership: `None` when the membership is gone (the
/// fan dropped the reservation), `Some(None)` before it is attached.
pub fn membership_subscription(
    conn: &mut PgConnection,
    membership_id: i64,
) -> Result<Option<Option<String>>, RepoError> {
    memberships::table
        .find(membership_id)
        .select(memberships::razorpay_subscription_id)
        .first(conn)
        .optional()
        .map_err(repo_error)
}

/// The fan and billing period of a membership.
pub fn owner(
    conn: &mut PgConnection,
    membership_id: i64,
) -> Result<(i64, oasis_billing::BillingPeriod), RepoError> {
    let (user_id, period): (i64, String) = memberships::table
        .find(membership_id)
        .select((memberships::user_id, memberships::period))
        .first(conn)
        .map_err(repo_error)?;
    let period = oasis_billing::BillingPeriod::parse(&period)
        .ok_or_else(|| unknown("memberships.period", &period))?;
    Ok((user_id, period))
}

/// Claims a requested change for `lease` under `token` (or extends the claim `token` holds):
/// whoever holds it works on the change at Razorpay; `false` while another holds it.
pub fn claim(
    conn: &mut PgConnection,
    id: i64,
    token: &str,
    lease: chrono::Duration,
) -> Result<bool, RepoError> {
    let now = Utc::now();
    let n = diesel::update(
        billing_changes::table
            .find(id)
            .filter(billing_changes::state.eq(ChangeState::Requested.as_str()))
            .filter(
                billing_changes::claimed_until
                    .is_null()
                    .or(billing_changes::claimed_until.lt(now))
                    .or(billing_changes::claimed_by.eq(token)),
            ),
    )
    .set((
        billing_changes::claimed_by.eq(token),
        billing_changes::claimed_until.eq(now + lease),
    ))
    .execute(conn)
    .map_err(repo_error)?;
    Ok(n == 1)
}

/// Gives up the claim on a change (whoever holds it).
pub fn release_claim(conn: &mut PgConnection, id: i64) -> Result<(), RepoError> {
    diesel::update(billing_changes::table.find(id))
        .set((
            billing_changes::claimed_by.eq(None::<String>),
            billing_changes::claimed_until.eq(None::<DateTime<Utc>>),
        ))
        .execute(conn)
        .map(|_| ())
        .map_err(repo_error)
}

/// Razorpay did not make it (the reason is kept): done.
pub fn mark_failed(conn: &mut PgConnection, id: i64, why: &str) -> Result<(), RepoError> {
    set_state(conn, id, ChangeState::Failed, Some(why))?;
    release_claim(conn, id)
}

/// One attempt at Razorpay failed for a reason that may pass (the job retries).
pub fn attempt_failed(conn: &mut PgConnection, id: i64, error: &str) -> Result<(), RepoError> {
    diesel::update(billing_changes::table.find(id))
        .set((
            billing_changes::attempts.eq(billing_changes::attempts + 1),
            billing_changes::last_error.eq(error),
            billing_changes::updated_at.eq(db_now),
        ))
        .execute(conn)
        .map(|_| ())
        .map_err(repo_error)
}

/// [`oasis_billing::ports::BillingStore::claim_change_charge`] over `billing_changes`: an
/// immediate update's prorated charge within `[charge_min, charge_now]` (requested — the answer
/// may not be recorded yet — or applied; one payment per change), else a scheduled downgrade
/// whose new price this charge is (the membership moves now).
pub fn claim_change_charge(
    conn: &mut PgConnection,
    membership_id: i64,
    payment_id: &str,
    amount: i64,
    currency: &str,
) -> Result<Option<ChangeClaim>, RepoError> {
    let base = || {
        billing_changes::table
            .filter(billing_changes::membership_id.eq(membership_id))
            .filter(billing_changes::method.eq(ChangeMethod::Update.as_str()))
            .filter(lower(billing_changes::currency).eq(currency.to_lowercase()))
    };
    let prorated: Option<i64> = base()
        .filter(billing_changes::effective.eq(Effective::Now.as_str()))
        .filter(billing_changes::state.eq_any([
            ChangeState::Requested.as_str(),
            ChangeState::Applied.as_str(),
        ]))
        .filter(billing_changes::charge_min.le(amount))
        .filter(billing_changes::charge_now.ge(amount))
        .filter(
            billing_changes::charge_payment_id
                .is_null()
                .or(billing_changes::charge_payment_id.eq(payment_id)),
        )
        .order(billing_changes::id.desc())
        .select(billing_changes::id)
        .for_update()
        .first(conn)
        .optional()
        .map_err(repo_error)?;
    if let Some(change_id) = prorated {
        diesel::update(billing_changes::table.find(change_id))
            .set((
                billing_changes::charge_payment_id.eq(payment_id),
                billing_changes::updated_at.eq(db_now),
            ))
            .execute(conn)
            .map_err(repo_error)?;
        return Ok(Some(ChangeClaim::Prorated { change_id }));
    }
    let scheduled: Option<ChangeRow> = base()
        .filter(billing_changes::effective.eq(Effective::CycleEnd.as_str()))
        .filter(billing_changes::state.eq(ChangeState::Scheduled.as_str()))
        .filter(billing_changes::to_amount.eq(amount))
        .select(ChangeRow::as_select())
        .for_update()
        .first(conn)
        .optional()
        .map_err(repo_error)?;
    match scheduled {
        Some(row) => {
            move_membership(conn, &row)?;
            Ok(Some(ChangeClaim::Moved { change_id: row.id }))
        }
        None => Ok(None),
    }
}

/// What the notification of a change says.
#[derive(Debug, Clone)]
pub struct ChangeNotice {
    pub fan_id: i64,
    pub creator_id: i64,
    pub from_tier: String,
    pub to_tier: String,
    pub effective: Effective,
    pub effective_at: DateTime<Utc>,
}

/// The facts of a change's notification.
pub fn notice(conn: &mut PgConnection, change_id: i64) -> Result<Option<ChangeNotice>, RepoError> {
    use crate::schema::tiers;
    let Some(row) = billing_changes::table
        .find(change_id)
        .select(ChangeRow::as_select())
        .first(conn)
        .optional()
        .map_err(repo_error)?
    else {
        return Ok(None);
    };
    let fan: i64 = memberships::table
        .find(row.membership_id)
        .select(memberships::user_id)
        .first(conn)
        .map_err(repo_error)?;
    let tier = |conn: &mut PgConnection, id: i64| -> Result<(i64, String), RepoError> {
        tiers::table
            .find(id)
            .select((tiers::creator_id, tiers::name))
            .first(conn)
            .map_err(repo_error)
    };
    let (creator, from) = tier(conn, row.from_tier_id)?;
    let (_, to) = tier(conn, row.to_tier_id)?;
    Ok(Some(ChangeNotice {
        fan_id: fan,
        creator_id: creator,
        from_tier: from,
        to_tier: to,
        effective: row.effective()?,
        effective_at: row.effective_at,
    }))
}

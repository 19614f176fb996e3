//! Postgres adapter for the billing domain (migration `2026-11-28-030000_billing`): memberships,
//! plans, orders, payments, the webhook inbox and bank details.
//!
//! Idempotency is enforced by the schema, never by check-then-insert: `UNIQUE(razorpay_payment_id)`,
//! `UNIQUE(razorpay_subscription_id)`, `UNIQUE(razorpay_order_id)`, `UNIQUE(event_id)` and the
//! partial unique index allowing one live recurring membership per user and tier. Concurrent
//! applications of the same Razorpay object serialise on `SELECT … FOR UPDATE` of its row and
//! merge with the pure rules of `oasis_billing` (so two server processes converge).
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{
    Array, BigInt, Bool, Bytea, Integer, Jsonb, Nullable, SmallInt, Text, Timestamptz,
};
use oasis_billing::integrity::VoidReason;
use oasis_billing::ports::{
    BillingStore, Membership, NewOrder, Offer, Order, OrderKind, OrderStatus, PaymentFlag,
    PaymentLinks, RefundRequest, StoredPayment, TierRef,
};
use oasis_billing::{
    BillingPeriod, MembershipKind, MembershipState, MembershipStatus, PaymentSnapshot,
    PaymentStatus,
};
use oasis_kernel::RepoError;
use std::collections::{BTreeMap, HashMap, HashSet};

use crate::schema::{
    bank_details, billing_orders, billing_payment_flags, billing_plans, billing_refunds,
    billing_subscription_cancellations, billing_webhook_events, memberships, payments, tiers,
    users,
};
use crate::{repo_error, CachedExt};
/// The database's clock (`now()`), as the hand-written statements use it.
use diesel::dsl::now as db_now;

diesel::define_sql_function! {
    /// `billing_status_is_live(status)` of migration `2026-12-01-700000` (see [`IS_LIVE`]).
    fn billing_status_is_live(status: Text) -> Bool;
}
diesel::define_sql_function!(fn lower(x: Text) -> Text);

type Ts = DateTime<Utc>;

// ---------------------------------------------------------------------------------------------
// Entitlements (ports of the catalog domain)

/// The SQL mirror of [`oasis_billing::has_access`]: `billing_has_access(kind, status,
/// current_start, current_end, cancel_at_period_end, at)` defined in the migrations (last in
/// `2026-12-04-020000_billing_replace_grace`), for a membership row
/// aliased `m`. Every adapter that asks "does this membership give access now" uses this one
/// expression (catalog, social, notify).
pub const HAS_ACCESS: &str =
    "billing_has_access(m.kind, m.status, m.current_start, m.current_end, m.cancel_at_period_end, now())";

/// The SQL mirror of [`oasis_billing::MembershipStatus::is_live`] for a membership row aliased
/// `m` (the function `billing_status_is_live` of migration `2026-12-01-700000`): every query
/// that asks "is this membership live" uses it instead of a copied status list.
pub const IS_LIVE: &str = "billing_status_is_live(m.status)";

/// A stored value this code does not know: an error, never a guessed default (the CHECK
/// constraints keep such values out; reading one means the schema and the code disagree).
fn unknown(column: &str, value: &str) -> RepoError {
    RepoError::Unavailable(format!("{column}: unknown stored value {value:?}"))
}

fn parse_kind(s: &str) -> Result<MembershipKind, RepoError> {
    MembershipKind::parse(s).ok_or_else(|| unknown("memberships.kind", s))
}

fn parse_status(s: &str) -> Result<MembershipStatus, RepoError> {
    MembershipStatus::parse(s).ok_or_else(|| unknown("memberships.status", s))
}

fn parse_payment_status(s: &str) -> Result<PaymentStatus, RepoError> {
    PaymentStatus::parse(s).ok_or_else(|| unknown("payments.status", s))
}

/// Catalog's ports answered from memberships.
pub struct PgTierAccess<'a>(pub &'a mut PgConnection);

#[derive(QueryableByName)]
struct IdRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

impl oasis_catalog::TierAccess for PgTierAccess<'_> {
    fn tiers_with_access(
        &mut self,
        user_id: i64,
        tier_ids: &[i64],
    ) -> Result<HashSet<i64>, RepoError> {
        if tier_ids.is_empty() {
            return Ok(HashSet::new());
        }
        // The SQL entitlement rule (HAS_ACCESS) is a raw expression.
        let rows: Vec<IdRow> = diesel::sql_query(format!(
            "SELECT DISTINCT m.tier_id AS id FROM memberships m
             WHERE m.user_id = $1 AND m.tier_id = ANY($2) AND {HAS_ACCESS}"
        ))
        .bind::<BigInt, _>(user_id)
        .bind::<Array<BigInt>, _>(tier_ids)
        .cached()
        .load(self.0)
        .map_err(repo_error)?;
        Ok(rows.into_iter().map(|r| r.id).collect())
    }
}

/// One membership as the entitlement rule reads it, with its tier's creator, for callers that
/// evaluate [`oasis_billing::has_access`] themselves at the instant they answer (the read cache
/// keeps these facts, never a decision that a clock could make stale).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MembershipFacts {
    pub tier_id: i64,
    pub creator_id: i64,
    pub facts: oasis_billing::AccessFacts,
}

impl MembershipFacts {
    /// From the stored text of `kind` and `status`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn from_row(
        tier_id: i64,
        creator_id: i64,
        kind: &str,
        status: &str,
        current_start: Option<Ts>,
        current_end: Option<Ts>,
        cancel_at_period_end: bool,
    ) -> Result<Self, RepoError> {
        Ok(Self {
            tier_id,
            creator_id,
            facts: oasis_billing::AccessFacts {
                kind: parse_kind(kind)?,
                status: parse_status(status)?,
                current_start,
                current_end,
                cancel_at_period_end,
            },
        })
    }
}

impl oasis_catalog::TierMembers for PgTierAccess<'_> {
    fn paying_member_counts(&mut self, tier_ids: &[i64]) -> Result<HashMap<i64, i64>, RepoError> {
        paying_member_counts(self.0, tier_ids)
    }
}

/// Paying members of each tier: distinct users whose recurring or one-time membership currently
/// gives access, or whose subscription is still live at Razorpay (it will be charged again).
/// Free-tier members are not counted. Missing ids = 0.
pub fn paying_member_counts(
    conn: &mut PgConnection,
    tier_ids: &[i64],
) -> Result<HashMap<i64, i64>, RepoError> {
    Ok(paying_member_counts_until(conn, tier_ids)?.counts)
}

/// [`paying_member_counts`], and how long they hold.
#[derive(Debug, Clone, Default)]
pub struct MemberCounts {
    /// Paying members per tier (missing ids = 0).
    pub counts: HashMap<i64, i64>,
    /// How long from the moment the statement answered the clock alone leaves every count as it
    /// is (the earliest [`oasis_billing::access_changes_at`] among the memberships counted by
    /// their access; a live subscription counts whatever the clock does); `None`: only a write
    /// can change them; zero: they may already have changed.
    pub hold_for: Option<std::time::Duration>,
}

/// [`paying_member_counts`] with how long they hold (one statement: the counts at `now()`, and
/// the earliest instant after it at which the clock changes a membership's access, less the
/// statement's own clock, so that no clock of this process is compared with the database's).
pub fn paying_member_counts_until(
    conn: &mut PgConnection,
    tier_ids: &[i64],
) -> Result<MemberCounts, RepoError> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = BigInt)]
        tier_id: i64,
        #[diesel(sql_type = BigInt)]
        n: i64,
        #[diesel(sql_type = Nullable<diesel::sql_types::Double>)]
        hold_ms: Option<f64>,
    }
    if tier_ids.is_empty() {
        return Ok(MemberCounts::default());
    }
    // The counted part that the clock cannot change: a live subscription counts while it is
    // live, whatever its period.
    let live = format!("(m.kind = 'recurring' AND {IS_LIVE} AND m.status <> 'created')");
    // A grouped report with the SQL entitlement rule and its clock (the same FROM and WHERE
    // for both, so every membership that can count is looked at once).
    let rows: Vec<Row> = diesel::sql_query(format!(
        "SELECT m.tier_id,
                count(DISTINCT m.user_id) FILTER (WHERE {HAS_ACCESS} OR {live}) AS n,
                (extract(epoch FROM min(billing_access_changes_at(m.kind, m.status,
                    m.current_start, m.current_end, m.cancel_at_period_end, now()))
                    FILTER (WHERE NOT {live})) - extract(epoch FROM clock_timestamp()))::float8
                    * 1000 AS hold_ms
         FROM memberships m
         WHERE m.tier_id = ANY($1) AND m.kind <> 'free'
         GROUP BY m.tier_id"
    ))
    .bind::<Array<BigInt>, _>(tier_ids)
    .cached()
    .load(conn)
    .map_err(repo_error)?;
    let hold_for = rows
        .iter()
        .filter_map(|r| r.hold_ms)
        .min_by(f64::total_cmp)
        .map(|ms| std::time::Duration::from_secs_f64(ms.max(0.0) / 1000.0));
    Ok(MemberCounts {
        counts: rows
            .into_iter()
            .filter(|r| r.n > 0)
            .map(|r| (r.tier_id, r.n))
            .collect(),
        hold_for,
    })
}

/// Paying members of one tier (see [`paying_member_counts`]).
pub fn paying_member_count(conn: &mut PgConnection, tier_id: i64) -> Result<i64, RepoError> {
    Ok(paying_member_counts(conn, &[tier_id])?
        .get(&tier_id)
        .copied()
        .unwrap_or(0))
}

/// Evaluates `billing_status_is_live` on a status (the mirror test compares it with
/// [`MembershipStatus::is_live`]).
pub fn sql_status_is_live(conn: &mut PgConnection, status: &str) -> Result<bool, RepoError> {
    #[derive(QueryableByName)]
    struct B {
        #[diesel(sql_type = Bool)]
        b: bool,
    }
    // A bare SQL function call: nothing for the query builder to check.
    let r: B = diesel::sql_query("SELECT billing_status_is_live($1) AS b")
        .bind::<Text, _>(status)
        .get_result(conn)
        .map_err(repo_error)?;
    Ok(r.b)
}

/// Evaluates `billing_has_access` on given values (the mirror test compares it with
/// [`oasis_billing::has_access`]).
pub fn sql_has_access(
    conn: &mut PgConnection,
    facts: &oasis_billing::AccessFacts,
    at: Ts,
) -> Result<bool, RepoError> {
    #[derive(QueryableByName)]
    struct B {
        #[diesel(sql_type = Bool)]
        v: bool,
    }
    Ok(call_access_rule::<B>(conn, "billing_has_access", facts, at)?.v)
}

/// Evaluates `billing_access_changes_at` on given values (the mirror test compares it with
/// [`oasis_billing::access_changes_at`]).
pub fn sql_access_changes_at(
    conn: &mut PgConnection,
    facts: &oasis_billing::AccessFacts,
    at: Ts,
) -> Result<Option<Ts>, RepoError> {
    #[derive(QueryableByName)]
    struct T {
        #[diesel(sql_type = Nullable<Timestamptz>)]
        v: Option<Ts>,
    }
    Ok(call_access_rule::<T>(conn, "billing_access_changes_at", facts, at)?.v)
}

/// `SELECT function(kind, status, current_start, current_end, cancel_at_period_end, at) AS v`:
/// one of the SQL mirrors of the entitlement rule, on given values.
fn call_access_rule<R: QueryableByName<diesel::pg::Pg> + 'static>(
    conn: &mut PgConnection,
    function: &'static str,
    facts: &oasis_billing::AccessFacts,
    at: Ts,
) -> Result<R, RepoError> {
    // A bare SQL function call: nothing for the query builder to check.
    diesel::sql_query(format!("SELECT {function}($1, $2, $3, $4, $5, $6) AS v"))
        .bind::<Text, _>(facts.kind.as_str())
        .bind::<Text, _>(facts.status.as_str())
        .bind::<Nullable<Timestamptz>, _>(facts.current_start)
        .bind::<Nullable<Timestamptz>, _>(facts.current_end)
        .bind::<Bool, _>(facts.cancel_at_period_end)
        .bind::<Timestamptz, _>(at)
        .get_result(conn)
        .map_err(repo_error)
}

// ---------------------------------------------------------------------------------------------
// Tiers, users (read from catalog's and identity's tables)

/// What billing needs of a tier.
#[derive(Debug, Clone, QueryableByName, Queryable, Selectable)]
#[diesel(table_name = tiers, check_for_backend(diesel::pg::Pg))]
pub struct TierInfo {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = BigInt)]
    pub creator_id: i64,
    #[diesel(sql_type = Text)]
    pub name: String,
    #[diesel(sql_type = BigInt)]
    pub price: i64,
    #[diesel(sql_type = Text)]
    pub currency: String,
    #[diesel(sql_type = Bool)]
    pub is_active: bool,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub annual_price: Option<i64>,
    #[diesel(sql_type = Integer)]
    pub trial_days: i32,
}

impl TierInfo {
    /// The billing domain's view of the tier.
    pub fn to_ref(&self) -> TierRef {
        TierRef {
            id: self.id,
            creator_id: self.creator_id,
            price: self.price,
            annual_price: self.annual_price,
            currency: self.currency.clone(),
            is_active: self.is_active,
        }
    }
}

pub fn tier(conn: &mut PgConnection, tier_id: i64) -> Result<Option<TierInfo>, RepoError> {
    tiers::table
        .find(tier_id)
        .select(TierInfo::as_select())
        .first(conn)
        .optional()
        .map_err(repo_error)
}

/// Resolves a `userID`/`username` note: a numeric id, else a username (case-insensitive).
pub fn resolve_user(conn: &mut PgConnection, v: &str) -> Result<Option<i64>, RepoError> {
    let v = v.trim();
    if v.is_empty() {
        return Ok(None);
    }
    if let Ok(id) = v.parse::<i64>() {
        users::table.find(id).select(users::id).first(conn)
    } else {
        users::table
            .filter(lower(users::username).eq(lower(v)))
            .select(users::id)
            .first(conn)
    }
    .optional()
    .map_err(repo_error)
}

/// A user that exists and is a creator.
pub fn is_creator(conn: &mut PgConnection, user_id: i64) -> Result<bool, RepoError> {
    let r: Option<bool> = users::table
        .find(user_id)
        .select(users::is_creator)
        .first(conn)
        .optional()
        .map_err(repo_error)?;
    Ok(r.unwrap_or(false))
}

// ---------------------------------------------------------------------------------------------
// Plans

/// The plan of an offer: one per (tier, period, amount, currency).
pub fn plan_id(conn: &mut PgConnection, offer: &Offer) -> Result<Option<String>, RepoError> {
    billing_plans::table
        .find((
            offer.tier_id,
            offer.period.as_str(),
            offer.amount,
            &offer.currency,
        ))
        .select(billing_plans::razorpay_plan_id)
        .first(conn)
        .optional()
        .map_err(repo_error)
}

/// Stores a plan; if a concurrent request stored one first, returns that one (ours is unused).
pub fn save_plan(
    conn: &mut PgConnection,
    offer: &Offer,
    razorpay_plan_id: &str,
) -> Result<String, RepoError> {
    diesel::insert_into(billing_plans::table)
        .values((
            billing_plans::tier_id.eq(offer.tier_id),
            billing_plans::period.eq(offer.period.as_str()),
            billing_plans::amount.eq(offer.amount),
            billing_plans::currency.eq(&offer.currency),
            billing_plans::razorpay_plan_id.eq(razorpay_plan_id),
        ))
        .on_conflict_do_nothing()
        .execute(conn)
        .map_err(repo_error)?;
    plan_id(conn, offer)?.ok_or(RepoError::NotFound)
}

// ---------------------------------------------------------------------------------------------
// Memberships

/// A stored membership.
#[derive(Debug, Clone, QueryableByName, Queryable, Selectable)]
#[diesel(table_name = memberships, check_for_backend(diesel::pg::Pg))]
pub struct MembershipRow {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = BigInt)]
    pub user_id: i64,
    #[diesel(sql_type = BigInt)]
    pub tier_id: i64,
    #[diesel(sql_type = Text)]
    pub kind: String,
    #[diesel(sql_type = Text)]
    pub status: String,
    #[diesel(sql_type = BigInt)]
    pub amount: i64,
    #[diesel(sql_type = Text)]
    pub currency: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub razorpay_subscription_id: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub razorpay_order_id: Option<String>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub current_start: Option<Ts>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub current_end: Option<Ts>,
    #[diesel(sql_type = Bool)]
    pub cancel_at_period_end: bool,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub ended_at: Option<Ts>,
    #[diesel(sql_type = BigInt)]
    pub paid_count: i64,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub state_at: Option<Ts>,
    #[diesel(sql_type = Timestamptz)]
    pub created_at: Ts,
    #[diesel(sql_type = Timestamptz)]
    pub updated_at: Ts,
    /// `stale_checkout`, `replaced` or `amount_mismatch` when we voided it.
    #[diesel(sql_type = Nullable<Text>)]
    pub void_reason: Option<String>,
    /// `monthly` or `yearly`.
    #[diesel(sql_type = Text)]
    pub period: String,
}

const M_COLS: &str = "m.id, m.user_id, m.tier_id, m.kind, m.status, m.amount, m.currency,
    m.razorpay_subscription_id, m.razorpay_order_id, m.current_start, m.current_end,
    m.cancel_at_period_end, m.ended_at, m.paid_count, m.state_at, m.created_at, m.updated_at,
    m.void_reason, m.period";

impl MembershipRow {
    /// The typed state; an unknown stored kind or status is an error.
    pub fn state(&self) -> Result<MembershipState, RepoError> {
        Ok(MembershipState {
            kind: parse_kind(&self.kind)?,
            status: parse_status(&self.status)?,
            current_start: self.current_start,
            current_end: self.current_end,
            cancel_at_period_end: self.cancel_at_period_end,
            ended_at: self.ended_at,
            paid_count: self.paid_count,
            state_at: self.state_at,
        })
    }
    pub fn has_access(&self, now: Ts) -> Result<bool, RepoError> {
        Ok(self.state()?.has_access(now))
    }
    /// The billing period; an unknown stored value is an error.
    pub fn period(&self) -> Result<BillingPeriod, RepoError> {
        parse_period(&self.period)
    }
}

fn save_state(conn: &mut PgConnection, id: i64, s: &MembershipState) -> Result<(), RepoError> {
    use memberships::dsl as m;
    diesel::update(m::memberships.find(id))
        .set((
            m::status.eq(s.status.as_str()),
            m::current_start.eq(s.current_start),
            m::current_end.eq(s.current_end),
            m::cancel_at_period_end.eq(s.cancel_at_period_end),
            m::ended_at.eq(s.ended_at),
            m::paid_count.eq(s.paid_count),
            m::state_at.eq(s.state_at),
            m::updated_at.eq(db_now),
        ))
        .execute(conn)
        .map(|_| ())
        .map_err(repo_error)
}

/// The membership of a Razorpay subscription, locked for update.
pub fn lock_membership_by_subscription(
    conn: &mut PgConnection,
    subscription_id: &str,
) -> Result<Option<MembershipRow>, RepoError> {
    memberships::table
        .filter(memberships::razorpay_subscription_id.eq(subscription_id))
        .select(MembershipRow::as_select())
        .for_update()
        .first(conn)
        .optional()
        .map_err(repo_error)
}

/// The caller's live recurring membership of a tier (locked), if any.
pub fn lock_live_recurring(
    conn: &mut PgConnection,
    user_id: i64,
    tier_id: i64,
) -> Result<Option<MembershipRow>, RepoError> {
    memberships::table
        .filter(memberships::user_id.eq(user_id))
        .filter(memberships::tier_id.eq(tier_id))
        .filter(memberships::kind.eq(MembershipKind::Recurring.as_str()))
        .filter(billing_status_is_live(memberships::status))
        .select(MembershipRow::as_select())
        .for_update()
        .first(conn)
        .optional()
        .map_err(repo_error)
}

/// Result of reserving a recurring membership before calling Razorpay.
#[derive(Debug)]
pub enum Reservation {
    /// A new row (no subscription yet): create the subscription and call [`attach_subscription`].
    New(i64),
    /// A live membership already exists for this user and tier.
    Existing(Box<MembershipRow>),
}

/// Reserves the single live recurring membership of (user, tier). Two concurrent calls: the
/// partial unique index lets one insert; the other sees the first's row.
pub fn reserve_recurring(
    conn: &mut PgConnection,
    user_id: i64,
    offer: &Offer,
) -> Result<Reservation, RepoError> {
    let tier_id = offer.tier_id;
    // ON CONFLICT without a target also absorbs the one-live-recurring partial index.
    let inserted: Option<i64> = diesel::insert_into(memberships::table)
        .values((
            memberships::user_id.eq(user_id),
            memberships::tier_id.eq(tier_id),
            memberships::kind.eq(MembershipKind::Recurring.as_str()),
            memberships::status.eq(MembershipStatus::Created.as_str()),
            memberships::amount.eq(offer.amount),
            memberships::currency.eq(&offer.currency),
            memberships::period.eq(offer.period.as_str()),
        ))
        .on_conflict_do_nothing()
        .returning(memberships::id)
        .get_result(conn)
        .optional()
        .map_err(repo_error)?;
    if let Some(id) = inserted {
        return Ok(Reservation::New(id));
    }
    match lock_live_recurring(conn, user_id, tier_id)? {
        Some(m) => Ok(Reservation::Existing(Box::new(m))),
        None => Err(RepoError::Conflict {
            constraint: "memberships_one_live_recurring_key".into(),
        }),
    }
}

/// [`oasis_billing::ports::CheckoutStore::start_trial`]: the reserved membership gets
/// `trial_end` (and its period end) unless the fan has any other membership of the creator's
/// tiers. The fan's row lock is taken first so that two first checkouts of one creator's
/// tiers cannot both get a trial.
pub fn start_trial(
    conn: &mut PgConnection,
    membership_id: i64,
    user_id: i64,
    creator_id: i64,
    trial_end: Ts,
) -> Result<bool, RepoError> {
    users::table
        .find(user_id)
        .select(users::id)
        .for_update()
        .first::<i64>(conn)
        .optional()
        .map_err(repo_error)?;
    let other: i64 = memberships::table
        .inner_join(tiers::table)
        .filter(memberships::user_id.eq(user_id))
        .filter(tiers::creator_id.eq(creator_id))
        .filter(memberships::id.ne(membership_id))
        // A trial refused for its card or UPI ID (`trial_used`) leaves the fan's own trial.
        .filter(
            memberships::void_reason
                .is_null()
                .or(memberships::void_reason.ne(VoidReason::TrialUsed.as_str())),
        )
        .count()
        .get_result(conn)
        .map_err(repo_error)?;
    if other > 0 {
        return Ok(false);
    }
    diesel::update(memberships::table.find(membership_id))
        .set((
            memberships::trial_end.eq(Some(trial_end)),
            memberships::current_end.eq(Some(trial_end)),
        ))
        .execute(conn)
        .map_err(repo_error)?;
    Ok(true)
}

pub fn attach_subscription(
    conn: &mut PgConnection,
    membership_id: i64,
    subscription_id: &str,
) -> Result<(), RepoError> {
    diesel::update(memberships::table.find(membership_id))
        .set((
            memberships::razorpay_subscription_id.eq(subscription_id),
            memberships::updated_at.eq(db_now),
        ))
        .execute(conn)
        .map(|_| ())
        .map_err(repo_error)
}

/// Drops a reservation whose Razorpay call failed (or that was abandoned mid-flight).
pub fn drop_reservation(conn: &mut PgConnection, membership_id: i64) -> Result<(), RepoError> {
    diesel::delete(
        memberships::table
            .find(membership_id)
            .filter(memberships::razorpay_subscription_id.is_null()),
    )
    .execute(conn)
    .map(|_| ())
    .map_err(repo_error)
}

/// Marks a recurring membership cancelled by us (`end_type` 0 → now, 1 → at cycle end).
pub fn cancel_membership(
    conn: &mut PgConnection,
    membership_id: i64,
    at_cycle_end: bool,
    now: Ts,
) -> Result<(), RepoError> {
    let row = memberships::table.find(membership_id);
    if at_cycle_end {
        diesel::update(row)
            .set((
                memberships::cancel_at_period_end.eq(true),
                memberships::updated_at.eq(db_now),
            ))
            .execute(conn)
    } else {
        diesel::update(row)
            .set((
                memberships::status.eq(MembershipStatus::Cancelled.as_str()),
                memberships::cancel_at_period_end.eq(false),
                memberships::ended_at.eq(now),
                memberships::state_at.eq(now),
                memberships::updated_at.eq(db_now),
            ))
            .execute(conn)
    }
    .map(|_| ())
    .map_err(repo_error)
}

/// The caller's membership of a tier that `/subscriptions/end/` can end: a live recurring one,
/// else an active free one.
pub fn lock_endable_membership(
    conn: &mut PgConnection,
    user_id: i64,
    tier_id: i64,
) -> Result<Option<MembershipRow>, RepoError> {
    // Ordered by a boolean expression: clearer in SQL than in the query builder.
    diesel::sql_query(format!(
        "SELECT {M_COLS} FROM memberships m
         WHERE m.user_id = $1 AND m.tier_id = $2
           AND ((m.kind = 'recurring' AND {IS_LIVE})
             OR (m.kind = 'free' AND m.status = 'active'))
         ORDER BY (m.kind = 'recurring') DESC, m.id DESC LIMIT 1 FOR UPDATE"
    ))
    .bind::<BigInt, _>(user_id)
    .bind::<BigInt, _>(tier_id)
    .get_result(conn)
    .optional()
    .map_err(repo_error)
}

/// Joins a free tier; `false` when already a member.
pub fn join_free_tier(
    conn: &mut PgConnection,
    user_id: i64,
    tier_id: i64,
    currency: &str,
) -> Result<bool, RepoError> {
    let n = diesel::insert_into(memberships::table)
        .values((
            memberships::user_id.eq(user_id),
            memberships::tier_id.eq(tier_id),
            memberships::kind.eq(MembershipKind::Free.as_str()),
            memberships::status.eq(MembershipStatus::Active.as_str()),
            memberships::amount.eq(0),
            memberships::currency.eq(currency),
            memberships::current_start.eq(db_now),
            memberships::state_at.eq(db_now),
        ))
        .on_conflict_do_nothing()
        .execute(conn)
        .map_err(repo_error)?;
    Ok(n == 1)
}

/// One line of `GET /subscriptions/list`.
#[derive(Debug, Clone, QueryableByName)]
pub struct MembershipListRow {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = BigInt)]
    pub tier_id: i64,
    #[diesel(sql_type = Text)]
    pub tier_name: String,
    #[diesel(sql_type = BigInt)]
    pub creator_id: i64,
    #[diesel(sql_type = Text)]
    pub creator_username: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub creator_profile_pic: Option<String>,
    #[diesel(sql_type = Text)]
    pub kind: String,
    #[diesel(sql_type = Text)]
    pub status: String,
    #[diesel(sql_type = BigInt)]
    pub amount: i64,
    #[diesel(sql_type = Text)]
    pub currency: String,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub current_end: Option<Ts>,
    #[diesel(sql_type = Bool)]
    pub cancel_at_period_end: bool,
    #[diesel(sql_type = Bool)]
    pub has_access: bool,
    #[diesel(sql_type = Nullable<Text>)]
    pub razorpay_subscription_id: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub razorpay_order_id: Option<String>,
    #[diesel(sql_type = Timestamptz)]
    pub created_at: Ts,
    /// `monthly` or `yearly` (checked: [`MembershipListRow::period`]).
    #[diesel(sql_type = Text)]
    pub period: String,
}

impl MembershipListRow {
    /// The billing period; an unknown stored value is an error.
    pub fn period(&self) -> Result<BillingPeriod, RepoError> {
        parse_period(&self.period)
    }
}

/// A stored `memberships.period`; an unknown value is an error, never a default.
pub fn parse_period(s: &str) -> Result<BillingPeriod, RepoError> {
    BillingPeriod::parse(s)
        .ok_or_else(|| RepoError::Unavailable(format!("unknown memberships.period {s:?}")))
}

/// The caller's memberships (newest first), excluding never-paid checkouts (`created`).
pub fn list_memberships(
    conn: &mut PgConnection,
    user_id: i64,
) -> Result<Vec<MembershipListRow>, RepoError> {
    // A three-table report with the SQL entitlement rule.
    diesel::sql_query(format!(
        "SELECT m.id, m.tier_id, t.name AS tier_name, t.creator_id, u.username AS creator_username,
                u.profile_pic AS creator_profile_pic, m.kind, m.status, m.amount, m.currency,
                m.current_end, m.cancel_at_period_end, {HAS_ACCESS} AS has_access,
                m.razorpay_subscription_id, m.razorpay_order_id, m.created_at, m.period
         FROM memberships m JOIN tiers t ON t.id = m.tier_id JOIN users u ON u.id = t.creator_id
         WHERE m.user_id = $1 AND m.status <> 'created'
         ORDER BY m.created_at DESC, m.id DESC LIMIT 500"
    ))
    .bind::<BigInt, _>(user_id)
    .load(conn)
    .map_err(repo_error)
}

/// Recurring memberships waiting for Razorpay: recent checkouts not yet active (7 days), failed
/// charges (`pending`), active/paused ones whose paid period has run out (Razorpay renews at the
/// period end, so a renewal webhook may be lost), halted ones for 60 days after their period (a
/// card update reactivates them), and — whatever their status — those
/// whose `paid_count` (from a later snapshot) exceeds the charges recorded for them (a charge's
/// webhook was lost while a later event got through). Reconciliation fetches each one and its
/// invoices. Random order so a large backlog is covered fairly across runs.
pub fn waiting_subscriptions(
    conn: &mut PgConnection,
    limit: i64,
) -> Result<Vec<String>, RepoError> {
    #[derive(QueryableByName)]
    struct S {
        #[diesel(sql_type = Text)]
        s: String,
    }
    // A report: interval arithmetic, a correlated count and random order.
    let rows: Vec<S> = diesel::sql_query(
        "SELECT m.razorpay_subscription_id AS s FROM memberships m
         WHERE m.kind = 'recurring' AND m.razorpay_subscription_id IS NOT NULL
           AND ((m.status IN ('created', 'authenticated') AND m.created_at > now() - interval '7 days')
                OR m.status = 'pending'
                OR (m.status IN ('active', 'paused')
                    AND (m.current_end IS NULL OR m.current_end BETWEEN now() - interval '400 days' AND now()))
                OR (m.status = 'halted' AND m.current_end > now() - interval '60 days')
                OR (m.paid_count > 0 AND m.updated_at > now() - interval '400 days'
                    AND m.paid_count > (SELECT count(*) FROM payments p
                        WHERE p.membership_id = m.id AND p.kind = 'subscription'
                          AND p.status IN ('authorized', 'captured', 'refunded'))))
         ORDER BY random() LIMIT $1",
    )
    .bind::<BigInt, _>(limit)
    .load(conn)
    .map_err(repo_error)?;
    Ok(rows.into_iter().map(|r| r.s).collect())
}

// ---------------------------------------------------------------------------------------------
// Orders and payments

/// A Razorpay order we created.
#[derive(Debug, Clone, QueryableByName, Queryable, Selectable)]
#[diesel(table_name = billing_orders, check_for_backend(diesel::pg::Pg))]
pub struct OrderRow {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Text)]
    pub razorpay_order_id: String,
    #[diesel(sql_type = Text)]
    pub kind: String,
    #[diesel(sql_type = Text)]
    pub status: String,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub user_id: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub creator_id: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub tier_id: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub reference_id: Option<i64>,
    #[diesel(sql_type = BigInt)]
    pub amount: i64,
    #[diesel(sql_type = Text)]
    pub currency: String,
    #[diesel(sql_type = Text)]
    pub name: String,
    #[diesel(sql_type = Text)]
    pub message: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub razorpay_payment_id: Option<String>,
}

/// Inserts an order (no-op if it exists) and returns the stored row, locked.
pub fn insert_order(conn: &mut PgConnection, o: &NewOrder) -> Result<OrderRow, RepoError> {
    use billing_orders::dsl as b;
    diesel::insert_into(b::billing_orders)
        .values((
            b::razorpay_order_id.eq(&o.razorpay_order_id),
            b::kind.eq(o.kind.as_str()),
            b::user_id.eq(o.user_id),
            b::creator_id.eq(o.creator_id),
            b::tier_id.eq(o.tier_id),
            b::reference_id.eq(o.reference_id),
            b::amount.eq(o.amount),
            b::currency.eq(&o.currency),
            b::name.eq(&o.name),
            b::message.eq(&o.message),
            b::notes.eq(&o.notes),
        ))
        .on_conflict(b::razorpay_order_id)
        .do_nothing()
        .execute(conn)
        .map_err(repo_error)?;
    lock_order(conn, &o.razorpay_order_id)?.ok_or(RepoError::NotFound)
}

pub fn lock_order(
    conn: &mut PgConnection,
    razorpay_order_id: &str,
) -> Result<Option<OrderRow>, RepoError> {
    billing_orders::table
        .filter(billing_orders::razorpay_order_id.eq(razorpay_order_id))
        .select(OrderRow::as_select())
        .for_update()
        .first(conn)
        .optional()
        .map_err(repo_error)
}

/// Cheer name/message given at `save_order` (they win over what was given at `create_order`).
/// Confirms a cheer's public name and message (each kept as it was when `None`), once: the
/// first call fixes them and answers `true`; later calls change nothing and answer `false`.
pub fn confirm_order_message(
    conn: &mut PgConnection,
    order_id: i64,
    name: Option<&str>,
    message: Option<&str>,
) -> Result<bool, RepoError> {
    // COALESCE with parameters: each field kept when `None`.
    diesel::sql_query(
        "UPDATE billing_orders SET name = COALESCE($2, name), message = COALESCE($3, message),
            message_confirmed_at = now(), updated_at = now()
         WHERE id = $1 AND message_confirmed_at IS NULL",
    )
    .bind::<BigInt, _>(order_id)
    .bind::<Nullable<Text>, _>(name)
    .bind::<Nullable<Text>, _>(message)
    .execute(conn)
    .map(|n| n == 1)
    .map_err(repo_error)
}

/// Orders still unpaid locally, for reconciliation (recent ones only).
pub fn waiting_orders(conn: &mut PgConnection, limit: i64) -> Result<Vec<String>, RepoError> {
    #[derive(QueryableByName)]
    struct S {
        #[diesel(sql_type = Text)]
        s: String,
    }
    // Interval arithmetic and random order.
    let rows: Vec<S> = diesel::sql_query(
        "SELECT razorpay_order_id AS s FROM billing_orders
         WHERE status = 'created' AND created_at > now() - interval '7 days'
         ORDER BY random() LIMIT $1",
    )
    .bind::<BigInt, _>(limit)
    .load(conn)
    .map_err(repo_error)?;
    Ok(rows.into_iter().map(|r| r.s).collect())
}

fn notes_json(notes: &BTreeMap<String, String>) -> serde_json::Value {
    serde_json::to_value(notes).unwrap_or_else(|_| serde_json::json!({}))
}

/// Records a payment once (`UNIQUE(razorpay_payment_id)`); a repeat only moves its status
/// forward (by rank) and fills missing links.
pub fn upsert_payment(
    conn: &mut PgConnection,
    p: &PaymentSnapshot,
    links: &PaymentLinks,
) -> Result<(), RepoError> {
    // An upsert merging by status rank and COALESCE: clearer as SQL.
    diesel::sql_query(
        "INSERT INTO payments (razorpay_payment_id, kind, status, amount, amount_refunded, currency,
            user_id, creator_id, membership_id, order_id, razorpay_order_id, razorpay_subscription_id,
            notes, paid_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
         ON CONFLICT (razorpay_payment_id) DO UPDATE SET
            status = CASE WHEN array_position(ARRAY['created','failed','authorized','captured','refunded'], EXCLUDED.status)
                             > array_position(ARRAY['created','failed','authorized','captured','refunded'], payments.status)
                          THEN EXCLUDED.status ELSE payments.status END,
            amount_refunded = GREATEST(payments.amount_refunded, EXCLUDED.amount_refunded),
            user_id = COALESCE(payments.user_id, EXCLUDED.user_id),
            creator_id = COALESCE(payments.creator_id, EXCLUDED.creator_id),
            membership_id = COALESCE(payments.membership_id, EXCLUDED.membership_id),
            order_id = COALESCE(payments.order_id, EXCLUDED.order_id),
            razorpay_order_id = COALESCE(payments.razorpay_order_id, EXCLUDED.razorpay_order_id),
            razorpay_subscription_id = COALESCE(payments.razorpay_subscription_id, EXCLUDED.razorpay_subscription_id),
            updated_at = now()",
    )
    .bind::<Text, _>(&p.id)
    .bind::<Text, _>(links.kind)
    .bind::<Text, _>(p.status.as_str())
    .bind::<BigInt, _>(p.amount)
    .bind::<BigInt, _>(p.amount_refunded)
    .bind::<Text, _>(&p.currency)
    .bind::<Nullable<BigInt>, _>(links.user_id)
    .bind::<Nullable<BigInt>, _>(links.creator_id)
    .bind::<Nullable<BigInt>, _>(links.membership_id)
    .bind::<Nullable<BigInt>, _>(links.order_id)
    .bind::<Nullable<Text>, _>(p.order_id.as_deref())
    .bind::<Nullable<Text>, _>(links.razorpay_subscription_id.as_deref())
    .bind::<Jsonb, _>(&notes_json(&p.notes))
    .bind::<Timestamptz, _>(p.created_at)
    .execute(conn)
    .map(|_| ())
    .map_err(repo_error)
}

// ---------------------------------------------------------------------------------------------
// The billing service's storage port

/// `oasis_billing::ports::BillingStore` over one connection (inside the caller's transaction).
pub struct PgBilling<'a>(pub &'a mut PgConnection);

impl OrderRow {
    fn to_domain(&self) -> Result<Order, RepoError> {
        Ok(Order {
            id: self.id,
            razorpay_order_id: self.razorpay_order_id.clone(),
            kind: OrderKind::parse(&self.kind)
                .ok_or_else(|| unknown("billing_orders.kind", &self.kind))?,
            status: OrderStatus::parse(&self.status)
                .ok_or_else(|| unknown("billing_orders.status", &self.status))?,
            user_id: self.user_id,
            creator_id: self.creator_id,
            tier_id: self.tier_id,
            reference_id: self.reference_id,
            amount: self.amount,
            currency: self.currency.clone(),
            name: self.name.clone(),
            message: self.message.clone(),
        })
    }
}

impl MembershipRow {
    fn to_domain(&self) -> Result<Membership, RepoError> {
        Ok(Membership {
            id: self.id,
            user_id: self.user_id,
            tier_id: self.tier_id,
            amount: self.amount,
            currency: self.currency.clone(),
            period: self.period()?,
            state: self.state()?,
            void_reason: match self.void_reason.as_deref() {
                None => None,
                Some(r) => Some(
                    VoidReason::parse(r).ok_or_else(|| unknown("memberships.void_reason", r))?,
                ),
            },
        })
    }
}

impl BillingStore for PgBilling<'_> {
    fn lock_membership_by_subscription(
        &mut self,
        subscription_id: &str,
    ) -> Result<Option<Membership>, RepoError> {
        lock_membership_by_subscription(self.0, subscription_id)?
            .map(|m| m.to_domain())
            .transpose()
    }

    fn insert_recurring(
        &mut self,
        user_id: i64,
        offer: &Offer,
        subscription_id: &str,
    ) -> Result<Option<Membership>, RepoError> {
        // ON CONFLICT without a target also absorbs the one-live-recurring partial index.
        diesel::insert_into(memberships::table)
            .values((
                memberships::user_id.eq(user_id),
                memberships::tier_id.eq(offer.tier_id),
                memberships::kind.eq(MembershipKind::Recurring.as_str()),
                memberships::status.eq(MembershipStatus::Created.as_str()),
                memberships::amount.eq(offer.amount),
                memberships::currency.eq(&offer.currency),
                memberships::period.eq(offer.period.as_str()),
                memberships::razorpay_subscription_id.eq(subscription_id),
            ))
            .on_conflict_do_nothing()
            .execute(self.0)
            .map_err(repo_error)?;
        self.lock_membership_by_subscription(subscription_id)
    }

    fn save_membership_state(&mut self, id: i64, state: &MembershipState) -> Result<(), RepoError> {
        save_state(self.0, id, state)
    }

    fn resolve_user(&mut self, id_or_username: &str) -> Result<Option<i64>, RepoError> {
        resolve_user(self.0, id_or_username)
    }

    fn find_tier(&mut self, tier_id: i64) -> Result<Option<TierRef>, RepoError> {
        Ok(tier(self.0, tier_id)?.map(|t| t.to_ref()))
    }

    fn lock_order(&mut self, razorpay_order_id: &str) -> Result<Option<Order>, RepoError> {
        lock_order(self.0, razorpay_order_id)?
            .map(|o| o.to_domain())
            .transpose()
    }

    fn confirm_order_message(
        &mut self,
        order_id: i64,
        name: Option<&str>,
        message: Option<&str>,
    ) -> Result<bool, RepoError> {
        confirm_order_message(self.0, order_id, name, message)
    }

    fn insert_order(&mut self, order: &NewOrder) -> Result<Order, RepoError> {
        insert_order(self.0, order)?.to_domain()
    }

    fn mark_order_paid(
        &mut self,
        order_id: i64,
        payment_id: &str,
        paid_at: Ts,
    ) -> Result<(), RepoError> {
        // CASE and COALESCE over the row's own values: clearer as SQL.
        diesel::sql_query(
            "UPDATE billing_orders SET status = CASE WHEN status = 'created' THEN 'paid' ELSE status END,
                razorpay_payment_id = COALESCE(razorpay_payment_id, $2), paid_at = COALESCE(paid_at, $3),
                updated_at = now()
             WHERE id = $1",
        )
        .bind::<BigInt, _>(order_id)
        .bind::<Text, _>(payment_id)
        .bind::<Timestamptz, _>(paid_at)
        .execute(self.0)
        .map(|_| ())
        .map_err(repo_error)
    }

    fn insert_one_time_membership(
        &mut self,
        order: &Order,
        user_id: i64,
        tier_id: i64,
        start: Ts,
        end: Ts,
    ) -> Result<i64, RepoError> {
        use memberships::dsl as m;
        diesel::insert_into(m::memberships)
            .values((
                m::user_id.eq(user_id),
                m::tier_id.eq(tier_id),
                m::kind.eq(MembershipKind::OneTime.as_str()),
                m::status.eq(MembershipStatus::Active.as_str()),
                m::amount.eq(order.amount),
                m::currency.eq(&order.currency),
                m::razorpay_order_id.eq(&order.razorpay_order_id),
                m::current_start.eq(start),
                m::current_end.eq(end),
                m::paid_count.eq(1),
                m::state_at.eq(start),
            ))
            .on_conflict(m::razorpay_order_id)
            .do_nothing()
            .execute(self.0)
            .map_err(repo_error)?;
        m::memberships
            .filter(m::razorpay_order_id.eq(&order.razorpay_order_id))
            .select(m::id)
            .first(self.0)
            .map_err(repo_error)
    }

    fn upsert_payment(
        &mut self,
        payment: &PaymentSnapshot,
        links: &PaymentLinks,
    ) -> Result<(), RepoError> {
        upsert_payment(self.0, payment, links)
    }

    fn lock_payment(&mut self, payment_id: &str) -> Result<Option<StoredPayment>, RepoError> {
        #[derive(Queryable, Selectable)]
        #[diesel(table_name = payments, check_for_backend(diesel::pg::Pg))]
        struct P {
            status: String,
            amount: i64,
            amount_refunded: i64,
            order_id: Option<i64>,
        }
        let p: Option<P> = payments::table
            .filter(payments::razorpay_payment_id.eq(payment_id))
            .select(P::as_select())
            .for_update()
            .first(self.0)
            .optional()
            .map_err(repo_error)?;
        p.map(|p| {
            Ok(StoredPayment {
                status: parse_payment_status(&p.status)?,
                amount: p.amount,
                amount_refunded: p.amount_refunded,
                order_id: p.order_id,
            })
        })
        .transpose()
    }

    fn set_payment_refunded(
        &mut self,
        payment_id: &str,
        amount_refunded: i64,
        full: bool,
    ) -> Result<(), RepoError> {
        // GREATEST and CASE over the row's own values: clearer as SQL.
        diesel::sql_query(
            "UPDATE payments SET amount_refunded = GREATEST(amount_refunded, $2),
                status = CASE WHEN $3 THEN 'refunded' ELSE status END, updated_at = now()
             WHERE razorpay_payment_id = $1",
        )
        .bind::<Text, _>(payment_id)
        .bind::<BigInt, _>(amount_refunded)
        .bind::<Bool, _>(full)
        .execute(self.0)
        .map(|_| ())
        .map_err(repo_error)
    }

    fn revoke_order(&mut self, order_id: i64, now: Ts) -> Result<(), RepoError> {
        // A rejected order stays rejected (it never granted anything).
        diesel::update(
            billing_orders::table
                .find(order_id)
                .filter(billing_orders::status.ne(OrderStatus::Rejected.as_str())),
        )
        .set((
            billing_orders::status.eq(OrderStatus::Refunded.as_str()),
            billing_orders::updated_at.eq(db_now),
        ))
        .execute(self.0)
        .map_err(repo_error)?;
        // UPDATE … FROM a join with COALESCE: clearer as SQL.
        diesel::sql_query(
            "UPDATE memberships m SET status = 'cancelled', cancel_at_period_end = false,
                ended_at = COALESCE(m.ended_at, $2), updated_at = now()
             FROM billing_orders o
             WHERE o.id = $1 AND m.razorpay_order_id = o.razorpay_order_id AND m.kind = 'one_time'",
        )
        .bind::<BigInt, _>(order_id)
        .bind::<Timestamptz, _>(now)
        .execute(self.0)
        .map(|_| ())
        .map_err(repo_error)
    }

    fn linked_charges(
        &mut self,
        subscription_id: &str,
        payment_ids: &[String],
    ) -> Result<HashSet<String>, RepoError> {
        if payment_ids.is_empty() {
            return Ok(HashSet::new());
        }
        let rows: Vec<String> = payments::table
            .inner_join(memberships::table)
            .filter(payments::razorpay_payment_id.eq_any(payment_ids))
            .filter(memberships::razorpay_subscription_id.eq(subscription_id))
            .select(payments::razorpay_payment_id)
            .load(self.0)
            .map_err(repo_error)?;
        Ok(rows.into_iter().collect())
    }

    fn void_membership(
        &mut self,
        membership_id: i64,
        reason: VoidReason,
        now: Ts,
    ) -> Result<(), RepoError> {
        void_membership(self.0, membership_id, reason, now)
    }

    fn trial_end(&mut self, membership_id: i64) -> Result<Option<Ts>, RepoError> {
        memberships::table
            .find(membership_id)
            .select(memberships::trial_end)
            .first::<Option<Ts>>(self.0)
            .optional()
            .map(Option::flatten)
            .map_err(repo_error)
    }

    fn claim_trial_instrument(
        &mut self,
        creator_id: i64,
        instrument: &oasis_billing::trials::Instrument,
        membership_id: i64,
    ) -> Result<i64, RepoError> {
        use crate::schema::billing_trial_instruments::dsl as t;
        diesel::insert_into(t::billing_trial_instruments)
            .values((
                t::creator_id.eq(creator_id),
                t::fingerprint.eq(instrument.as_bytes()),
                t::membership_id.eq(membership_id),
            ))
            .on_conflict_do_nothing()
            .execute(self.0)
            .map_err(repo_error)?;
        t::billing_trial_instruments
            .find((creator_id, instrument.as_bytes()))
            .select(t::membership_id)
            .first(self.0)
            .map_err(repo_error)
    }

    fn reject_order(&mut self, order_id: i64, payment_id: &str) -> Result<(), RepoError> {
        // COALESCE over the row's own value: clearer as SQL.
        diesel::sql_query(
            "UPDATE billing_orders SET status = 'rejected',
                razorpay_payment_id = COALESCE(razorpay_payment_id, $2), updated_at = now()
             WHERE id = $1 AND status = 'created'",
        )
        .bind::<BigInt, _>(order_id)
        .bind::<Text, _>(payment_id)
        .execute(self.0)
        .map(|_| ())
        .map_err(repo_error)
    }

    fn flag_payment(&mut self, f: &PaymentFlag) -> Result<bool, RepoError> {
        use billing_payment_flags::dsl as b;
        let m = &f.mismatch;
        diesel::insert_into(b::billing_payment_flags)
            .values((
                b::razorpay_payment_id.eq(&f.payment_id),
                b::expected_amount.eq(m.expected_amount),
                b::expected_currency.eq(&m.expected_currency),
                b::actual_amount.eq(m.actual_amount),
                b::actual_currency.eq(&m.actual_currency),
                b::user_id.eq(f.user_id),
                b::creator_id.eq(f.creator_id),
                b::membership_id.eq(f.membership_id),
                b::order_id.eq(f.order_id),
            ))
            .on_conflict_do_nothing()
            .execute(self.0)
            .map(|n| n == 1)
            .map_err(repo_error)
    }

    fn request_refund(&mut self, r: &RefundRequest) -> Result<bool, RepoError> {
        use billing_refunds::dsl as b;
        let n = diesel::insert_into(b::billing_refunds)
            .values((
                b::razorpay_payment_id.eq(&r.payment_id),
                b::idempotency_key.eq(refund_idempotency_key(&r.payment_id)),
                b::amount.eq(r.amount),
                b::currency.eq(&r.currency),
                b::reason.eq(&r.reason),
                b::user_id.eq(r.user_id),
                b::creator_id.eq(r.creator_id),
                b::tier_id.eq(r.tier_id),
                b::membership_id.eq(r.membership_id),
                b::order_id.eq(r.order_id),
            ))
            .on_conflict_do_nothing()
            .execute(self.0)
            .map_err(repo_error)?;
        if n == 1 {
            crate::jobs::enqueue(
                self.0,
                oasis_billing::JOB_REFUND,
                &serde_json::json!({ "payment_id": r.payment_id }),
            )?;
        }
        Ok(n == 1)
    }

    fn request_subscription_cancel(
        &mut self,
        membership_id: i64,
        subscription_id: &str,
        reason: VoidReason,
    ) -> Result<bool, RepoError> {
        request_subscription_cancel(self.0, membership_id, subscription_id, reason)
    }

    fn claim_change_charge(
        &mut self,
        membership_id: i64,
        payment_id: &str,
        amount: i64,
        currency: &str,
    ) -> Result<Option<oasis_billing::ports::ChangeClaim>, RepoError> {
        crate::billing_change::claim_change_charge(
            self.0,
            membership_id,
            payment_id,
            amount,
            currency,
        )
    }

    // --- Sending refunds and cancellations ---------------------------------------------------

    fn claim_refund(
        &mut self,
        payment_id: &str,
        lease_secs: i64,
    ) -> Result<Option<oasis_billing::ports::RefundToSend>, RepoError> {
        claim_refund(self.0, payment_id, lease_secs)?
            .map(RefundRow::into_domain)
            .transpose()
    }

    fn refund_to_send(
        &mut self,
        payment_id: &str,
    ) -> Result<Option<oasis_billing::ports::RefundToSend>, RepoError> {
        refund(self.0, payment_id)?
            .map(RefundRow::into_domain)
            .transpose()
    }

    fn refund_sent(
        &mut self,
        payment_id: &str,
        refund_id: &str,
        refund_status: &str,
    ) -> Result<bool, RepoError> {
        refund_sent(self.0, payment_id, refund_id, refund_status)
    }

    fn refund_attempt_failed(
        &mut self,
        payment_id: &str,
        error: &str,
        give_up: bool,
    ) -> Result<(), RepoError> {
        refund_attempt_failed(self.0, payment_id, error, give_up)
    }

    fn cancellation_pending(&mut self, subscription_id: &str) -> Result<bool, RepoError> {
        Ok(pending_cancellation(self.0, subscription_id)?.is_some())
    }

    fn record_cancellation_attempt(
        &mut self,
        subscription_id: &str,
        cancelled: bool,
        outcome: &str,
    ) -> Result<(), RepoError> {
        let status = if cancelled { "cancelled" } else { "requested" };
        record_cancellation_attempt(self.0, subscription_id, status, outcome)
    }

    // --- Reconciliation ----------------------------------------------------------------------

    fn waiting_subscriptions(
        &mut self,
        _now: oasis_kernel::Timestamp,
        limit: i64,
    ) -> Result<Vec<String>, RepoError> {
        // The database's clock decides (the SQL's `now()`), as it always has.
        waiting_subscriptions(self.0, limit)
    }

    fn waiting_orders(
        &mut self,
        _now: oasis_kernel::Timestamp,
        limit: i64,
    ) -> Result<Vec<String>, RepoError> {
        waiting_orders(self.0, limit)
    }
}

/// The idempotency key of the one refund of a payment (Razorpay's `X-Refund-Idempotency`:
/// at least 10 characters of `[A-Za-z0-9_-]`; the same on every retry).
pub fn refund_idempotency_key(payment_id: &str) -> String {
    let id: String = payment_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .collect();
    format!("oasis-refund-{id}")
}

/// Voids a membership (see `BillingStore::void_membership`).
pub fn void_membership(
    conn: &mut PgConnection,
    membership_id: i64,
    reason: VoidReason,
    now: Ts,
) -> Result<(), RepoError> {
    // COALESCE over the row's own values: clearer as SQL.
    diesel::sql_query(
        "UPDATE memberships SET status = 'cancelled', cancel_at_period_end = false,
            ended_at = COALESCE(ended_at, $3), state_at = COALESCE(state_at, $3),
            void_reason = COALESCE(void_reason, $2), updated_at = now()
         WHERE id = $1",
    )
    .bind::<BigInt, _>(membership_id)
    .bind::<Text, _>(reason.as_str())
    .bind::<Timestamptz, _>(now)
    .execute(conn)
    .map(|_| ())
    .map_err(repo_error)
}

/// Records that a subscription must be cancelled at Razorpay and queues the `billing.cancel`
/// job, once per subscription; `true` when new.
pub fn request_subscription_cancel(
    conn: &mut PgConnection,
    membership_id: i64,
    subscription_id: &str,
    reason: VoidReason,
) -> Result<bool, RepoError> {
    use billing_subscription_cancellations::dsl as c;
    let n = diesel::insert_into(c::billing_subscription_cancellations)
        .values((
            c::razorpay_subscription_id.eq(subscription_id),
            c::membership_id.eq(membership_id),
            c::reason.eq(reason.as_str()),
        ))
        .on_conflict_do_nothing()
        .execute(conn)
        .map_err(repo_error)?;
    if n == 1 {
        crate::jobs::enqueue(
            conn,
            oasis_billing::JOB_CANCEL_SUBSCRIPTION,
            &serde_json::json!({ "subscription_id": subscription_id }),
        )?;
    }
    Ok(n == 1)
}

// ---------------------------------------------------------------------------------------------
// Refunds and cancellations (the `billing.refund` / `billing.cancel` jobs)

/// A refund to send (or sent).
#[derive(Debug, Clone, QueryableByName, Queryable, Selectable)]
#[diesel(table_name = billing_refunds, check_for_backend(diesel::pg::Pg))]
pub struct RefundRow {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Text)]
    pub razorpay_payment_id: String,
    #[diesel(sql_type = Text)]
    pub idempotency_key: String,
    #[diesel(sql_type = BigInt)]
    pub amount: i64,
    #[diesel(sql_type = Text)]
    pub currency: String,
    #[diesel(sql_type = Text)]
    pub reason: String,
    #[diesel(sql_type = Text)]
    pub status: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub razorpay_refund_id: Option<String>,
    #[diesel(sql_type = Integer)]
    pub attempts: i32,
}

impl RefundRow {
    fn into_domain(self) -> Result<oasis_billing::ports::RefundToSend, RepoError> {
        Ok(oasis_billing::ports::RefundToSend {
            status: oasis_billing::ports::RefundStatus::parse(&self.status)?,
            payment_id: self.razorpay_payment_id,
            idempotency_key: self.idempotency_key,
            amount: self.amount,
            reason: self.reason,
        })
    }
}

/// Claims a requested refund for one sender for `lease_secs` (a job whose lease ran out may
/// run twice): `Some` when this caller may send it now, `None` when it is no longer requested
/// or another sender holds it.
pub fn claim_refund(
    conn: &mut PgConnection,
    payment_id: &str,
    lease_secs: i64,
) -> Result<Option<RefundRow>, RepoError> {
    // A conditional claim with interval arithmetic, returning the row: clearer as SQL.
    diesel::sql_query(
        "UPDATE billing_refunds SET claimed_until = now() + make_interval(secs => $2),
            attempts = attempts + 1, updated_at = now()
         WHERE razorpay_payment_id = $1 AND status = 'requested'
           AND (claimed_until IS NULL OR claimed_until < now())
         RETURNING id, razorpay_payment_id, idempotency_key, amount, currency, reason, status,
            razorpay_refund_id, attempts",
    )
    .bind::<Text, _>(payment_id)
    .bind::<diesel::sql_types::Double, _>(lease_secs as f64)
    .get_result(conn)
    .optional()
    .map_err(repo_error)
}

/// A refund's row.
pub fn refund(conn: &mut PgConnection, payment_id: &str) -> Result<Option<RefundRow>, RepoError> {
    billing_refunds::table
        .filter(billing_refunds::razorpay_payment_id.eq(payment_id))
        .select(RefundRow::as_select())
        .first(conn)
        .optional()
        .map_err(repo_error)
}

/// Razorpay accepted the refund: records its id and status (`true` when this call recorded it;
/// the caller then notifies, in the same transaction).
pub fn refund_sent(
    conn: &mut PgConnection,
    payment_id: &str,
    refund_id: &str,
    refund_status: &str,
) -> Result<bool, RepoError> {
    use billing_refunds::dsl as r;
    diesel::update(
        r::billing_refunds
            .filter(r::razorpay_payment_id.eq(payment_id))
            .filter(r::status.eq("requested")),
    )
    .set((
        r::status.eq("sent"),
        r::razorpay_refund_id.eq(refund_id),
        r::razorpay_refund_status.eq(refund_status),
        r::sent_at.eq(db_now),
        r::claimed_until.eq(None::<Ts>),
        r::last_error.eq(None::<String>),
        r::updated_at.eq(db_now),
    ))
    .execute(conn)
    .map(|n| n == 1)
    .map_err(repo_error)
}

/// A refund attempt failed: `give_up` marks it `failed` (an operator must look), else it stays
/// requested (released for the next attempt) with the error recorded.
pub fn refund_attempt_failed(
    conn: &mut PgConnection,
    payment_id: &str,
    error: &str,
    give_up: bool,
) -> Result<(), RepoError> {
    // CASE over the row's own value: clearer as SQL.
    diesel::sql_query(
        "UPDATE billing_refunds SET last_error = $2, claimed_until = NULL,
            status = CASE WHEN $3 THEN 'failed' ELSE status END, updated_at = now()
         WHERE razorpay_payment_id = $1 AND status = 'requested'",
    )
    .bind::<Text, _>(payment_id)
    .bind::<Text, _>(error)
    .bind::<Bool, _>(give_up)
    .execute(conn)
    .map(|_| ())
    .map_err(repo_error)
}

/// A subscription cancellation still to attempt: `(attempts so far, reason)`; `None` when it
/// is done (cancelled or given up) or unknown.
pub fn pending_cancellation(
    conn: &mut PgConnection,
    subscription_id: &str,
) -> Result<Option<(i32, String)>, RepoError> {
    use billing_subscription_cancellations::dsl as c;
    c::billing_subscription_cancellations
        .find(subscription_id)
        .filter(c::status.eq("requested"))
        .select((c::attempts, c::reason))
        .first(conn)
        .optional()
        .map_err(repo_error)
}

/// Records one cancellation attempt and its outcome: `status` is `cancelled`, `failed` (gave
/// up) or `requested` (will retry).
pub fn record_cancellation_attempt(
    conn: &mut PgConnection,
    subscription_id: &str,
    status: &str,
    outcome: &str,
) -> Result<(), RepoError> {
    // CASE and an increment over the row's own values: clearer as SQL.
    diesel::sql_query(
        "UPDATE billing_subscription_cancellations SET attempts = attempts + 1, status = $2,
            outcome = $3, attempted_at = now(),
            cancelled_at = CASE WHEN $2 = 'cancelled' THEN now() ELSE cancelled_at END
         WHERE razorpay_subscription_id = $1",
    )
    .bind::<Text, _>(subscription_id)
    .bind::<Text, _>(status)
    .bind::<Text, _>(outcome)
    .execute(conn)
    .map(|_| ())
    .map_err(repo_error)
}

/// A flagged payment, for operators.
#[derive(Debug, Clone, QueryableByName, serde::Serialize)]
pub struct FlagRow {
    #[diesel(sql_type = Text)]
    pub razorpay_payment_id: String,
    #[diesel(sql_type = Text)]
    pub reason: String,
    #[diesel(sql_type = BigInt)]
    pub expected_amount: i64,
    #[diesel(sql_type = Text)]
    pub expected_currency: String,
    #[diesel(sql_type = BigInt)]
    pub actual_amount: i64,
    #[diesel(sql_type = Text)]
    pub actual_currency: String,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub user_id: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub membership_id: Option<i64>,
    #[diesel(sql_type = Nullable<Text>)]
    pub razorpay_order_id: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub razorpay_subscription_id: Option<String>,
    #[diesel(sql_type = Timestamptz)]
    pub created_at: Ts,
}

/// Flagged payments, newest first.
pub fn payment_flags(conn: &mut PgConnection, limit: i64) -> Result<Vec<FlagRow>, RepoError> {
    // A report over two LEFT JOINs.
    diesel::sql_query(
        "SELECT f.razorpay_payment_id, f.reason, f.expected_amount, f.expected_currency,
            f.actual_amount, f.actual_currency, f.user_id, f.membership_id,
            o.razorpay_order_id, m.razorpay_subscription_id, f.created_at
         FROM billing_payment_flags f
         LEFT JOIN billing_orders o ON o.id = f.order_id
         LEFT JOIN memberships m ON m.id = f.membership_id
         ORDER BY f.created_at DESC, f.id DESC LIMIT $1",
    )
    .bind::<BigInt, _>(limit)
    .load(conn)
    .map_err(repo_error)
}

/// A paid cheer, for `list_message` / `list_tips`.
#[derive(Debug, Clone, QueryableByName)]
pub struct CheerRow {
    #[diesel(sql_type = Text)]
    pub name: String,
    #[diesel(sql_type = Text)]
    pub message: String,
    #[diesel(sql_type = BigInt)]
    pub amount: i64,
    #[diesel(sql_type = Text)]
    pub currency: String,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub paid_at: Option<Ts>,
    #[diesel(sql_type = Nullable<Text>)]
    pub fan_profile_pic: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub creator_username: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub creator_profile_pic: Option<String>,
}

const CHEER_SELECT: &str = "SELECT o.name, o.message, o.amount, o.currency, o.paid_at,
        f.profile_pic AS fan_profile_pic, c.username AS creator_username, c.profile_pic AS creator_profile_pic
     FROM billing_orders o LEFT JOIN users f ON f.id = o.user_id LEFT JOIN users c ON c.id = o.creator_id
     WHERE o.kind = 'cheer' AND o.status = 'paid'";

/// Paid cheers received by a creator, newest first.
pub fn cheers_for_creator(
    conn: &mut PgConnection,
    creator_id: i64,
    limit: i64,
) -> Result<Vec<CheerRow>, RepoError> {
    // A report (shared with `cheers_by_user`, see CHEER_SELECT).
    diesel::sql_query(format!(
        "{CHEER_SELECT} AND o.creator_id = $1 ORDER BY o.paid_at DESC, o.id DESC LIMIT $2"
    ))
    .bind::<BigInt, _>(creator_id)
    .bind::<BigInt, _>(limit)
    .load(conn)
    .map_err(repo_error)
}

/// Paid cheers sent by a user, newest first.
pub fn cheers_by_user(
    conn: &mut PgConnection,
    user_id: i64,
    limit: i64,
) -> Result<Vec<CheerRow>, RepoError> {
    // A report (shared with `cheers_for_creator`, see CHEER_SELECT).
    diesel::sql_query(format!(
        "{CHEER_SELECT} AND o.user_id = $1 ORDER BY o.paid_at DESC, o.id DESC LIMIT $2"
    ))
    .bind::<BigInt, _>(user_id)
    .bind::<BigInt, _>(limit)
    .load(conn)
    .map_err(repo_error)
}

// ---------------------------------------------------------------------------------------------
// Webhook inbox

/// One verified webhook delivery to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookDelivery {
    /// The de-duplication key (`X-Razorpay-Event-Id`, or a hash of the body).
    pub event_id: String,
    /// The event's name (a label).
    pub event: String,
    pub body: Vec<u8>,
}

/// Stores verified webhook deliveries and queues, for each new one, the `job_kind` job that
/// processes it (payload `{"id": <row id>}`), in ONE statement (a data-modifying CTE: atomic on
/// its own, one round trip, one commit for all of them). Per delivery, in order: whether it was
/// new — `false` for an event id stored before, or earlier in the same batch.
pub fn receive_webhook_events(
    conn: &mut PgConnection,
    deliveries: &[WebhookDelivery],
    job_kind: &str,
) -> Result<Vec<bool>, RepoError> {
    if deliveries.is_empty() {
        return Ok(Vec::new());
    }
    #[derive(QueryableByName)]
    struct Stored {
        #[diesel(sql_type = Text)]
        event_id: String,
    }
    let ids: Vec<&str> = deliveries.iter().map(|d| d.event_id.as_str()).collect();
    let events: Vec<&str> = deliveries.iter().map(|d| d.event.as_str()).collect();
    let bodies: Vec<&[u8]> = deliveries.iter().map(|d| d.body.as_slice()).collect();
    let stored: Vec<Stored> = diesel::sql_query(
        "WITH d AS (
             SELECT * FROM unnest($1::text[], $2::text[], $3::bytea[]) WITH ORDINALITY
                 AS d(event_id, event, body, n)
         ), e AS (
             INSERT INTO billing_webhook_events (event_id, event, body)
             SELECT event_id, event, body FROM d ORDER BY n
             ON CONFLICT (event_id) DO NOTHING RETURNING id, event_id
         ), j AS (
             INSERT INTO jobs (kind, payload) SELECT $4, jsonb_build_object('id', e.id) FROM e
         )
         SELECT event_id FROM e",
    )
    .bind::<Array<Text>, _>(&ids)
    .bind::<Array<Text>, _>(&events)
    .bind::<Array<Bytea>, _>(&bodies)
    .bind::<Text, _>(job_kind)
    .cached()
    .load(conn)
    .map_err(repo_error)?;
    let mut new: HashSet<String> = stored.into_iter().map(|s| s.event_id).collect();
    Ok(deliveries.iter().map(|d| new.remove(&d.event_id)).collect())
}

/// A stored webhook event.
#[derive(Debug, Clone, QueryableByName, Queryable, Selectable)]
#[diesel(table_name = billing_webhook_events, check_for_backend(diesel::pg::Pg))]
pub struct WebhookEventRow {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Text)]
    pub event_id: String,
    #[diesel(sql_type = Text)]
    pub event: String,
    #[diesel(sql_type = Bytea)]
    pub body: Vec<u8>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub processed_at: Option<Ts>,
    #[diesel(sql_type = Nullable<Text>)]
    pub outcome: Option<String>,
}

/// Loads (and locks: one processor at a time per event) a stored event by row id.
pub fn lock_webhook_event(
    conn: &mut PgConnection,
    id: i64,
) -> Result<Option<WebhookEventRow>, RepoError> {
    billing_webhook_events::table
        .find(id)
        .select(WebhookEventRow::as_select())
        .for_update()
        .first(conn)
        .optional()
        .map_err(repo_error)
}

/// Finds a stored event by its Razorpay event id (or by row id when numeric and not found).
pub fn find_webhook_event(conn: &mut PgConnection, key: &str) -> Result<Option<i64>, RepoError> {
    let r: Option<i64> = billing_webhook_events::table
        .filter(billing_webhook_events::event_id.eq(key))
        .select(billing_webhook_events::id)
        .first(conn)
        .optional()
        .map_err(repo_error)?;
    if r.is_some() {
        return Ok(r);
    }
    match key.parse::<i64>() {
        Ok(id) => Ok(lock_webhook_event(conn, id)?.map(|e| e.id)),
        Err(_) => Ok(None),
    }
}

pub fn mark_webhook_processed(
    conn: &mut PgConnection,
    id: i64,
    outcome: &str,
) -> Result<(), RepoError> {
    diesel::update(billing_webhook_events::table.find(id))
        .set((
            billing_webhook_events::processed_at.eq(db_now),
            billing_webhook_events::outcome.eq(outcome),
        ))
        .execute(conn)
        .map(|_| ())
        .map_err(repo_error)
}

/// Stored events never processed (their job was lost or parked), oldest first.
pub fn unprocessed_webhook_events(
    conn: &mut PgConnection,
    older_than_secs: i64,
    limit: i64,
) -> Result<Vec<i64>, RepoError> {
    // Interval arithmetic on a parameter.
    let rows: Vec<IdRow> = diesel::sql_query(
        "SELECT id FROM billing_webhook_events
         WHERE processed_at IS NULL AND received_at < now() - $1 * interval '1 second'
         ORDER BY received_at LIMIT $2",
    )
    .bind::<diesel::sql_types::Double, _>(older_than_secs as f64)
    .bind::<BigInt, _>(limit)
    .load(conn)
    .map_err(repo_error)?;
    Ok(rows.into_iter().map(|r| r.id).collect())
}

// ---------------------------------------------------------------------------------------------
// Bank details (sealed bytes only; crypto lives in oasis_billing::bank)

#[derive(Debug, Clone, QueryableByName, Queryable, Selectable)]
#[diesel(table_name = bank_details, check_for_backend(diesel::pg::Pg))]
pub struct SealedBankDetails {
    #[diesel(sql_type = Bytea)]
    pub nonce: Vec<u8>,
    #[diesel(sql_type = Bytea)]
    pub ciphertext: Vec<u8>,
    #[diesel(sql_type = SmallInt)]
    pub key_version: i16,
}

pub fn bank_details(
    conn: &mut PgConnection,
    user_id: i64,
) -> Result<Option<SealedBankDetails>, RepoError> {
    bank_details::table
        .find(user_id)
        .select(SealedBankDetails::as_select())
        .first(conn)
        .optional()
        .map_err(repo_error)
}

/// Inserts or replaces; `true` when it was a new record.
pub fn save_bank_details(
    conn: &mut PgConnection,
    user_id: i64,
    nonce: &[u8],
    ciphertext: &[u8],
    key_version: i16,
) -> Result<bool, RepoError> {
    #[derive(QueryableByName)]
    struct B {
        #[diesel(sql_type = Bool)]
        inserted: bool,
    }
    // An upsert that reports whether it inserted (`xmax = 0`): not expressible in the builder.
    let r: B = diesel::sql_query(
        "INSERT INTO bank_details (user_id, nonce, ciphertext, key_version) VALUES ($1, $2, $3, $4)
         ON CONFLICT (user_id) DO UPDATE SET nonce = EXCLUDED.nonce, ciphertext = EXCLUDED.ciphertext,
            key_version = EXCLUDED.key_version, updated_at = now()
         RETURNING (xmax = 0) AS inserted",
    )
    .bind::<BigInt, _>(user_id)
    .bind::<Bytea, _>(nonce)
    .bind::<Bytea, _>(ciphertext)
    .bind::<SmallInt, _>(key_version)
    .get_result(conn)
    .map_err(repo_error)?;
    Ok(r.inserted)
}

pub fn delete_bank_details(conn: &mut PgConnection, user_id: i64) -> Result<bool, RepoError> {
    diesel::delete(bank_details::table.find(user_id))
        .execute(conn)
        .map(|n| n > 0)
        .map_err(repo_error)
}

/// A payment status as stored (for tests and reports).
pub fn payment_status(
    conn: &mut PgConnection,
    razorpay_payment_id: &str,
) -> Result<Option<PaymentStatus>, RepoError> {
    let r: Option<String> = payments::table
        .filter(payments::razorpay_payment_id.eq(razorpay_payment_id))
        .select(payments::status)
        .first(conn)
        .optional()
        .map_err(repo_error)?;
    r.map(|s| parse_payment_status(&s)).transpose()
}

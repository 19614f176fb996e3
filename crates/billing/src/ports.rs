//! The storage port of the billing service ([`BillingStore`]), implemented over PostgreSQL by
//! `oasis_db::billing::PgBilling` and in memory by this crate's tests.
//!
//! Every method is a single idempotent step whose uniqueness the store enforces (the Postgres
//! adapter with UNIQUE constraints and `ON CONFLICT`, never check-then-insert); `lock_*` methods
//! lock the row for the rest of the transaction so that concurrent applications of one Razorpay
//! object serialise.
use crate::events::PaymentSnapshot;
use crate::gateway::BillingPeriod;
use crate::integrity::{Mismatch, VoidReason};
use crate::state::MembershipState;
use oasis_kernel::{RepoError, Timestamp};
use serde_json::Value;
use std::collections::HashSet;

/// A stored membership.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    pub id: i64,
    pub user_id: i64,
    pub tier_id: i64,
    /// The price the membership was made at (what its charges must be), per `period`.
    pub amount: i64,
    pub currency: String,
    /// How often it is charged (recurring); `Monthly` for one-time and free ones.
    pub period: BillingPeriod,
    pub state: MembershipState,
    /// Set when we voided it: it gives no access, whatever Razorpay says later.
    pub void_reason: Option<VoidReason>,
}

/// What billing needs of a tier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TierRef {
    pub id: i64,
    pub creator_id: i64,
    /// The monthly price (minor units).
    pub price: i64,
    /// The yearly price beside the monthly one (`None`: monthly only).
    pub annual_price: Option<i64>,
    pub currency: String,
    pub is_active: bool,
}

impl TierRef {
    /// The tier's price per `period` (`None`: not sold that way).
    pub fn price_for(&self, period: BillingPeriod) -> Option<i64> {
        match period {
            BillingPeriod::Monthly => Some(self.price),
            BillingPeriod::Yearly => self.annual_price,
        }
    }
    /// The monthly offer (every paid tier has one).
    pub fn monthly(&self) -> Offer {
        Offer {
            tier_id: self.id,
            period: BillingPeriod::Monthly,
            amount: self.price,
            currency: self.currency.clone(),
        }
    }
    /// What a recurring checkout of this tier per `period` sells (`None`: not sold that way).
    pub fn offer(&self, period: BillingPeriod) -> Option<Offer> {
        Some(Offer {
            tier_id: self.id,
            period,
            amount: self.price_for(period)?,
            currency: self.currency.clone(),
        })
    }
}

/// A recurring price of a tier: one Razorpay plan per (tier, period, amount, currency).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    pub tier_id: i64,
    pub period: BillingPeriod,
    pub amount: i64,
    pub currency: String,
}

/// What a Razorpay order we know of pays for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OrderKind {
    /// A one-time tier purchase (30 days of access).
    OneTime,
    /// A tip with a message.
    Cheer,
    /// A commission (consumed by the commissions domain).
    Commission,
}

impl OrderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OneTime => "one_time",
            Self::Cheer => "cheer",
            Self::Commission => "commission",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "one_time" => Self::OneTime,
            "cheer" => Self::Cheer,
            "commission" => Self::Commission,
            _ => return None,
        })
    }
}

/// Where a stored order is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OrderStatus {
    /// Waiting for its payment.
    Created,
    /// Paid (and what it bought granted).
    Paid,
    /// Fully refunded: it grants nothing any more.
    Refunded,
    /// A payment came that we did not accept (it did not match the order, or the order's tier
    /// was no longer sold at its price): the order grants nothing, ever.
    Rejected,
}

impl OrderStatus {
    pub const ALL: [OrderStatus; 4] = [Self::Created, Self::Paid, Self::Refunded, Self::Rejected];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Paid => "paid",
            Self::Refunded => "refunded",
            Self::Rejected => "rejected",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// A stored order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    pub id: i64,
    pub razorpay_order_id: String,
    pub kind: OrderKind,
    pub status: OrderStatus,
    pub user_id: Option<i64>,
    pub creator_id: Option<i64>,
    pub tier_id: Option<i64>,
    pub reference_id: Option<i64>,
    pub amount: i64,
    pub currency: String,
    pub name: String,
    pub message: String,
}

/// An order to store.
#[derive(Debug, Clone, PartialEq)]
pub struct NewOrder {
    pub razorpay_order_id: String,
    pub kind: OrderKind,
    pub user_id: Option<i64>,
    pub creator_id: Option<i64>,
    pub tier_id: Option<i64>,
    pub reference_id: Option<i64>,
    pub amount: i64,
    pub currency: String,
    pub name: String,
    pub message: String,
    pub notes: Value,
}

/// What a payment is linked to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PaymentLinks {
    /// `subscription`, `one_time`, `cheer` or `commission`.
    pub kind: &'static str,
    pub user_id: Option<i64>,
    pub creator_id: Option<i64>,
    pub membership_id: Option<i64>,
    pub order_id: Option<i64>,
    pub razorpay_subscription_id: Option<String>,
}

/// A stored payment's refund-relevant part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredPayment {
    pub status: crate::events::PaymentStatus,
    pub amount: i64,
    pub amount_refunded: i64,
    pub order_id: Option<i64>,
}

/// A refund the service decided on (a payment of a stale checkout). The store keeps one per
/// payment and sends it through Razorpay's refund API exactly once (the app's `billing.refund`
/// job, enqueued in the same transaction).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundRequest {
    pub payment_id: String,
    pub amount: i64,
    pub currency: String,
    /// Why, for the record and the notifications (e.g. "the tier accepts no new members").
    pub reason: String,
    pub user_id: Option<i64>,
    pub creator_id: Option<i64>,
    pub tier_id: Option<i64>,
    pub membership_id: Option<i64>,
    pub order_id: Option<i64>,
}

/// A payment flagged for an operator: it did not match what was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentFlag {
    pub payment_id: String,
    pub mismatch: Mismatch,
    pub user_id: Option<i64>,
    pub creator_id: Option<i64>,
    pub membership_id: Option<i64>,
    pub order_id: Option<i64>,
}

/// Storage for the billing service (one transaction per call of a service function). The
/// checkout steps are in [`CheckoutStore`], the earnings ledger's in
/// [`crate::ledger::LedgerStore`] (parts of every billing store).
pub trait BillingStore:
    CheckoutStore + crate::ledger::LedgerStore + crate::payouts::PayoutStore
{
    /// The membership of a Razorpay subscription, locked.
    fn lock_membership_by_subscription(
        &mut self,
        subscription_id: &str,
    ) -> Result<Option<Membership>, RepoError>;
    /// Inserts a recurring membership at `offer` for a subscription seen only at Razorpay
    /// (no-op when it exists, or when the user already has another live one), then returns it
    /// locked.
    fn insert_recurring(
        &mut self,
        user_id: i64,
        offer: &Offer,
        subscription_id: &str,
    ) -> Result<Option<Membership>, RepoError>;
    fn save_membership_state(&mut self, id: i64, state: &MembershipState) -> Result<(), RepoError>;
    /// A numeric user id, else a username (case-insensitive).
    fn resolve_user(&mut self, id_or_username: &str) -> Result<Option<i64>, RepoError>;
    fn find_tier(&mut self, tier_id: i64) -> Result<Option<TierRef>, RepoError>;
    /// The order, locked.
    fn lock_order(&mut self, razorpay_order_id: &str) -> Result<Option<Order>, RepoError>;
    /// Fixes a cheer's public name and message (each kept as it was when `None`), once: the
    /// first call fixes them and answers `true`; later calls change nothing and answer `false`.
    fn confirm_order_message(
        &mut self,
        order_id: i64,
        name: Option<&str>,
        message: Option<&str>,
    ) -> Result<bool, RepoError>;
    /// Inserts an order (no-op when it exists) and returns it locked.
    fn insert_order(&mut self, order: &NewOrder) -> Result<Order, RepoError>;
    /// `created` → `paid`; fills the paying payment id and time if missing.
    fn mark_order_paid(
        &mut self,
        order_id: i64,
        payment_id: &str,
        paid_at: Timestamp,
    ) -> Result<(), RepoError>;
    /// Inserts the one-time membership bought by an order (no-op when it exists); returns its id.
    fn insert_one_time_membership(
        &mut self,
        order: &Order,
        user_id: i64,
        tier_id: i64,
        start: Timestamp,
        end: Timestamp,
    ) -> Result<i64, RepoError>;
    /// Records a payment once per Razorpay id; a repeat only moves the status forward (by
    /// rank), raises `amount_refunded` and fills missing links.
    fn upsert_payment(
        &mut self,
        payment: &PaymentSnapshot,
        links: &PaymentLinks,
    ) -> Result<(), RepoError>;
    /// A stored payment, locked.
    fn lock_payment(&mut self, payment_id: &str) -> Result<Option<StoredPayment>, RepoError>;
    fn set_payment_refunded(
        &mut self,
        payment_id: &str,
        amount_refunded: i64,
        full: bool,
    ) -> Result<(), RepoError>;
    /// A fully refunded order: the order becomes `refunded` and its one-time membership (if
    /// any) `cancelled` (no access).
    fn revoke_order(&mut self, order_id: i64, now: Timestamp) -> Result<(), RepoError>;
    /// Which of `payment_ids` are recorded and linked to the membership of `subscription_id`
    /// (reconciliation recovers the others).
    fn linked_charges(
        &mut self,
        subscription_id: &str,
        payment_ids: &[String],
    ) -> Result<HashSet<String>, RepoError>;
    /// Voids a membership: `cancelled` now (no access), `reason` recorded (the first one
    /// stays). Razorpay's later snapshots still merge (a terminal status sticks).
    fn void_membership(
        &mut self,
        membership_id: i64,
        reason: VoidReason,
        now: Timestamp,
    ) -> Result<(), RepoError>;
    /// The end of the membership's trial (`None`: it has none).
    fn trial_end(&mut self, membership_id: i64) -> Result<Option<Timestamp>, RepoError>;
    /// Claims `instrument` for a trial of `membership_id` of `creator_id` ([`crate::trials`]):
    /// the first claim of (creator, instrument) stands — of two concurrent ones, one wins.
    /// Answers the membership that holds it (this one, when it won or already held it).
    fn claim_trial_instrument(
        &mut self,
        creator_id: i64,
        instrument: &crate::trials::Instrument,
        membership_id: i64,
    ) -> Result<i64, RepoError>;
    /// `created` → `rejected` (a no-op otherwise), recording the payment that was refused.
    fn reject_order(&mut self, order_id: i64, payment_id: &str) -> Result<(), RepoError>;
    /// Records a mismatched payment for an operator, once per payment; `true` when new.
    fn flag_payment(&mut self, flag: &PaymentFlag) -> Result<bool, RepoError>;
    /// Records a refund to send, once per payment (and queues its sending in the same
    /// transaction); `true` when new.
    fn request_refund(&mut self, refund: &RefundRequest) -> Result<bool, RepoError>;
    /// Records that a voided membership's Razorpay subscription must be cancelled, once per
    /// subscription (and queues the cancellation in the same transaction); `true` when new.
    fn request_subscription_cancel(
        &mut self,
        membership_id: i64,
        subscription_id: &str,
        reason: VoidReason,
    ) -> Result<bool, RepoError>;

    /// A recorded change of tier that explains a charge of the membership which does not
    /// match its price ([`crate::change`]): an immediate upgrade's prorated charge (within the
    /// window the preview gave, claimed by one payment only), or the first renewal at the new
    /// price of a downgrade scheduled for the cycle end (the membership then moves to the new
    /// tier and price in this transaction). Idempotent per payment; `None` when no change
    /// explains it.
    fn claim_change_charge(
        &mut self,
        membership_id: i64,
        payment_id: &str,
        amount: i64,
        currency: &str,
    ) -> Result<Option<ChangeClaim>, RepoError>;

    // --- Reconciliation (the waiting objects the periodic sweep fetches) ---------------------

    /// Razorpay subscriptions whose membership may be behind Razorpay at `now` (at most
    /// `limit`, in random order): checkouts of the last 7 days not yet active, pending ones,
    /// active or paused ones whose paid period ended (or is unknown) within 400 days, halted
    /// ones of the last 60 days, and any with fewer recorded charges than paid cycles.
    fn waiting_subscriptions(
        &mut self,
        now: Timestamp,
        limit: i64,
    ) -> Result<Vec<String>, RepoError>;
    /// Razorpay orders still `created` that were made within 7 days of `now` (at most `limit`).
    fn waiting_orders(&mut self, now: Timestamp, limit: i64) -> Result<Vec<String>, RepoError>;

    // --- Sending refunds and cancellations (the `billing.refund` / `billing.cancel` jobs) ----

    /// Claims a requested refund for one sender until `lease_secs` after now (a sender whose
    /// lease ran out may be joined by another; the idempotency key keeps that harmless):
    /// `Some` when this caller may send it now; `None` when it is no longer requested or
    /// another sender holds it.
    fn claim_refund(
        &mut self,
        payment_id: &str,
        lease_secs: i64,
    ) -> Result<Option<RefundToSend>, RepoError>;
    /// The refund of a payment, whatever its state.
    fn refund_to_send(&mut self, payment_id: &str) -> Result<Option<RefundToSend>, RepoError>;
    /// The gateway made the refund: records it (`true` when this call did; the caller then
    /// announces it in the same transaction).
    fn refund_sent(
        &mut self,
        payment_id: &str,
        refund_id: &str,
        refund_status: &str,
    ) -> Result<bool, RepoError>;
    /// An attempt failed: released for the next one with `error` recorded, or `failed` for
    /// good (`give_up`: an operator must look).
    fn refund_attempt_failed(
        &mut self,
        payment_id: &str,
        error: &str,
        give_up: bool,
    ) -> Result<(), RepoError>;
    /// Whether the cancellation of a voided membership's subscription is still to do.
    fn cancellation_pending(&mut self, subscription_id: &str) -> Result<bool, RepoError>;
    /// Records one cancellation attempt and its outcome (`cancelled`: done for good).
    fn record_cancellation_attempt(
        &mut self,
        subscription_id: &str,
        cancelled: bool,
        outcome: &str,
    ) -> Result<(), RepoError>;
}

/// How a recorded change of tier explained a charge ([`BillingStore::claim_change_charge`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeClaim {
    /// The prorated difference Razorpay charged for an immediate upgrade.
    Prorated { change_id: i64 },
    /// The first charge at the new price of a scheduled downgrade: the membership moved.
    Moved { change_id: i64 },
}

/// Where a refund's sending stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefundStatus {
    /// To send (or being sent).
    Requested,
    /// The gateway made it.
    Sent,
    /// Given up: an operator must refund by hand.
    Failed,
}

impl RefundStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Requested => "requested",
            Self::Sent => "sent",
            Self::Failed => "failed",
        }
    }
    /// An unknown stored value is an error, never a default.
    pub fn parse(s: &str) -> Result<Self, RepoError> {
        Ok(match s {
            "requested" => Self::Requested,
            "sent" => Self::Sent,
            "failed" => Self::Failed,
            other => {
                return Err(RepoError::Unavailable(format!(
                    "unknown refund status {other:?}"
                )))
            }
        })
    }
}

/// A refund to send, as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundToSend {
    pub payment_id: String,
    /// The same on every attempt (the gateway answers a repeat with the refund already made).
    pub idempotency_key: String,
    pub amount: i64,
    pub reason: String,
    pub status: RefundStatus,
}

/// What billing announces to the rest of the platform, in the same transaction as the change
/// that causes it. The app turns announcements into other domains' effects (the fan follows the
/// creator, notifications are queued); billing never writes other domains' tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Announcement {
    /// A membership just gave `fan` access to one of `creator`'s tiers.
    MembershipStarted { fan: i64, creator: i64 },
    /// Razorpay facts about to be applied (notifications of payments, failures, halts).
    EffectsPlanned(Vec<crate::events::Effect>),
    /// A payment was refunded by us (the fan and the creator are told).
    PaymentRefunded { payment_id: String },
    /// A payment of a commission order was recorded and accepted (it matches the order): the
    /// commissions domain moves its request on (or refunds the payment it cannot honour).
    CommissionPaid(CommissionPaid),
    /// A change of tier took effect (or was scheduled): the fan and the creator are told it
    /// *changed* (never "cancelled").
    MembershipChanged { change_id: i64 },
}

/// An accepted payment of a `commission` order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommissionPaid {
    /// Billing's order row.
    pub order_id: i64,
    pub razorpay_order_id: String,
    pub payment_id: String,
    /// Integer minor units (the order's amount: billing refused any other).
    pub amount: i64,
    pub currency: String,
    pub paid_at: Timestamp,
}

/// One transaction's view of the stores: billing's own tables and the announcement outbox.
pub trait BillingTx {
    fn store(&mut self) -> &mut dyn BillingStore;
    /// Records an announcement in this transaction (it takes effect only if it commits).
    fn announce(&mut self, announcement: &Announcement) -> Result<(), RepoError>;
    /// The ledger's fee and hold settings in force (the app's configuration).
    fn ledger_policy(&self) -> crate::ledger::Policy;
    /// The payout retry settings in force (the app's configuration).
    fn payout_policy(&self) -> crate::workflows::payouts::PayoutPolicy {
        self.ledger_policy().payouts
    }
}

/// The unit-of-work port of the workflows: runs `f` in one transaction, off the async workers
/// (the app: a pooled PostgreSQL connection on the blocking pool; tests: [`crate::memory`]'s
/// store behind a mutex, rolled back on error). Everything `f` writes commits together or not
/// at all; `f` must not wait on the network (gateway calls happen between transactions).
pub trait BillingDb: Send + Sync {
    fn tx<T, F>(
        &self,
        f: F,
    ) -> impl std::future::Future<Output = Result<T, crate::BillingError>> + Send
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn BillingTx) -> Result<T, crate::BillingError> + Send + 'static;
}

// ---------------------------------------------------------------------------------------------
// Checkout: what starting and ending a membership, a purchase or a cheer needs of the store
// (`crate::workflows::checkout`). The Postgres adapter implements these in their own block.

/// A tier as a checkout sees it: billing's view plus the name Razorpay shows on a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TierForSale {
    pub tier: TierRef,
    pub name: String,
    /// Days of free trial for a fan's first membership of the creator (0: none).
    pub trial_days: i64,
}

/// A creator's hiatus under way, as a checkout sees it: a fan who joins during it gets access
/// at once and pays first when it ends (their subscription starts at `resumes_at`), as the
/// members whose charges the hiatus skips.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenHiatus {
    pub id: i64,
    pub resumes_at: Timestamp,
}

/// The live recurring membership a reservation met.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingMembership {
    pub id: i64,
    pub status: crate::MembershipStatus,
    /// The price it was made at, per `period`.
    pub amount: i64,
    pub currency: String,
    pub period: BillingPeriod,
    /// `None` while the call that reserved it has not yet stored Razorpay's subscription id.
    pub subscription_id: Option<String>,
    pub created_at: Timestamp,
}

/// Result of reserving a recurring membership before calling the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reservation {
    /// A new row (no subscription yet): create the subscription, then
    /// [`BillingStore::attach_subscription`] (or [`BillingStore::drop_reservation`] on failure).
    New(i64),
    /// A live recurring membership of this user and tier already exists.
    Existing(PendingMembership),
}

/// A membership `end` can end: a live recurring one, else an active free one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndableMembership {
    pub id: i64,
    pub kind: crate::MembershipKind,
    pub subscription_id: Option<String>,
}

/// The checkout part of the billing store.
pub trait CheckoutStore {
    /// The tier with its name.
    fn tier_for_sale(&mut self, tier_id: i64) -> Result<Option<TierForSale>, RepoError>;
    /// A user that exists and is a creator.
    fn is_creator(&mut self, user_id: i64) -> Result<bool, RepoError>;
    /// The Razorpay plan of an offer (tier, period, price), if made before.
    fn plan_id(&mut self, offer: &Offer) -> Result<Option<String>, RepoError>;
    /// Stores a plan; when a concurrent call stored one first, answers that one.
    fn save_plan(&mut self, offer: &Offer, plan_id: &str) -> Result<String, RepoError>;
    /// Reserves the single live recurring membership of (user, tier) at `offer`: of two
    /// concurrent calls one inserts, the other meets the first's row (locked).
    fn reserve_recurring(&mut self, user_id: i64, offer: &Offer) -> Result<Reservation, RepoError>;
    fn attach_subscription(
        &mut self,
        membership_id: i64,
        subscription_id: &str,
    ) -> Result<(), RepoError>;
    /// Gives a just-reserved membership a trial until `trial_end` (its period end before the
    /// first charge) when it is the fan's first membership of `creator_id` — no other
    /// membership of any of the creator's tiers, of any kind or state, ever: one trial per fan
    /// and creator. `true` when granted.
    fn start_trial(
        &mut self,
        membership_id: i64,
        user_id: i64,
        creator_id: i64,
        trial_end: Timestamp,
    ) -> Result<bool, RepoError>;
    /// The creator's hiatus under way at `at` (one that has not reached `resumes_at`).
    fn open_hiatus(
        &mut self,
        creator_id: i64,
        at: Timestamp,
    ) -> Result<Option<OpenHiatus>, RepoError>;
    /// Records that a just-reserved membership joined during `hiatus`: it has access until
    /// `first_charge` (its period end before the first charge; never moved earlier) and is
    /// counted among the hiatus' members.
    fn join_during_hiatus(
        &mut self,
        membership_id: i64,
        hiatus: &OpenHiatus,
        first_charge: Timestamp,
    ) -> Result<(), RepoError>;
    /// Deletes a reservation that never got a subscription id (a no-op once it has one).
    fn drop_reservation(&mut self, membership_id: i64) -> Result<(), RepoError>;
    /// Joins a free tier; `false` when already a member.
    fn join_free_tier(&mut self, user_id: i64, tier: &TierRef) -> Result<bool, RepoError>;
    /// The caller's membership of a tier that can be ended (locked).
    fn lock_endable_membership(
        &mut self,
        user_id: i64,
        tier_id: i64,
    ) -> Result<Option<EndableMembership>, RepoError>;
    /// Ends a membership we cancelled: now (`cancelled`, no access) or at the cycle's end.
    fn cancel_membership(
        &mut self,
        membership_id: i64,
        at_cycle_end: bool,
        now: Timestamp,
    ) -> Result<(), RepoError>;
}

//! An in-memory [`BillingStore`] with the same uniqueness rules as the Postgres adapter, and
//! tests of the billing service over it: every ordering and duplication of a realistic event
//! stream gives the same final state.
use crate::apply::new_recurring_state;
use crate::entitlement::{MembershipKind, MembershipStatus};
use crate::events::{PaymentSnapshot, PaymentStatus};
use crate::gateway::BillingPeriod;
use crate::integrity::VoidReason;
use crate::ports::*;
use crate::state::MembershipState;
use oasis_kernel::{RepoError, Timestamp};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default)]
struct MRow {
    m: Option<Membership>,
    sub: Option<String>,
    order: Option<String>,
    /// When the row was made (checkout rows; the store's clock).
    created: Timestamp,
}

#[derive(Debug, Clone)]
struct PRow {
    status: PaymentStatus,
    amount: i64,
    refunded: i64,
    links: PaymentLinks,
    currency: String,
    created_at: Timestamp,
}

#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    users: BTreeMap<i64, String>,
    tiers: BTreeMap<i64, TierRef>,
    memberships: Vec<MRow>,
    orders: Vec<(Order, Option<String>)>,
    payments: BTreeMap<String, PRow>,
    refunds: BTreeMap<String, RefundRequest>,
    flags: BTreeMap<String, PaymentFlag>,
    cancels: BTreeMap<String, (i64, VoidReason)>,
    // Checkout (see the `CheckoutStore` block below).
    clock: Timestamp,
    tier_names: BTreeMap<i64, String>,
    creators: std::collections::BTreeSet<i64>,
    /// (tier, period, amount, currency) → plan id.
    plans: BTreeMap<(i64, BillingPeriod, i64, String), String>,
    /// Sending state of `refunds`: (status, claimed, attempts, refund id).
    refund_sends: BTreeMap<String, RefundSend>,
    /// Subscriptions whose cancellation is done.
    cancelled: BTreeMap<String, String>,
    /// Orders whose cheer name and message are fixed.
    messages_confirmed: std::collections::BTreeSet<i64>,
    // The earnings ledger (see the `LedgerStore` block below).
    ledger_policy: crate::ledger::Policy,
    ledger_accounts: BTreeMap<String, crate::ledger::PaymentAccount>,
    postings: Vec<crate::ledger::Posting>,
    fee_fetches: std::collections::BTreeSet<String>,
    // Payouts (see the `PayoutStore` block below).
    payout_accounts: BTreeMap<i64, crate::payouts::PayoutAccount>,
    transfers: Vec<crate::payouts::TransferRecord>,
    payout_jobs: Vec<(String, serde_json::Value, i64)>,
    /// Changes of tier that explain a charge: (membership, amount) → (change id, prorated,
    /// new tier); a moved membership takes the new tier and amount.
    changes: BTreeMap<(i64, i64), (i64, bool, i64)>,
    /// Tiers' trial days (absent: 0).
    trial_days: BTreeMap<i64, i64>,
    /// Creators' hiatuses under way (creator → hiatus), and who joined during one.
    hiatuses: BTreeMap<i64, crate::ports::OpenHiatus>,
    joined_in_hiatus: Vec<(i64, i64)>,
    /// Memberships' trial ends, and the instruments trials were had with: (creator,
    /// instrument) → membership.
    trial_ends: BTreeMap<i64, Timestamp>,
    trial_instruments: BTreeMap<(i64, crate::trials::Instrument), i64>,
}

#[derive(Debug, Clone)]
struct RefundSend {
    status: RefundStatus,
    claimed: bool,
    refund_id: Option<String>,
    last_error: Option<String>,
}

impl Default for RefundSend {
    fn default() -> Self {
        Self {
            status: RefundStatus::Requested,
            claimed: false,
            refund_id: None,
            last_error: None,
        }
    }
}

/// The idempotency key of the one refund of a payment (as the Postgres adapter makes it).
fn refund_key(payment_id: &str) -> String {
    let id: String = payment_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .collect();
    format!("oasis-refund-{id}")
}

impl MemoryStore {
    /// Gives a tier a free trial of `days`.
    pub fn set_trial_days(&mut self, tier_id: i64, days: i64) {
        self.trial_days.insert(tier_id, days);
    }

    /// Puts a creator's page on hiatus until `resumes_at`.
    pub fn set_hiatus(&mut self, creator_id: i64, hiatus_id: i64, resumes_at: Timestamp) {
        self.hiatuses.insert(
            creator_id,
            crate::ports::OpenHiatus {
                id: hiatus_id,
                resumes_at,
            },
        );
    }

    /// The memberships that joined during a hiatus: (hiatus, membership).
    pub fn joined_in_hiatus(&self) -> &[(i64, i64)] {
        &self.joined_in_hiatus
    }

    /// Records a change of tier of `membership_id` that explains a charge of `amount`: an
    /// upgrade's prorated charge (`prorated`), or a scheduled downgrade to `to_tier` at that
    /// price.
    pub fn record_change(
        &mut self,
        change_id: i64,
        membership_id: i64,
        amount: i64,
        prorated: bool,
        to_tier: i64,
    ) {
        self.changes
            .insert((membership_id, amount), (change_id, prorated, to_tier));
    }

    /// A user the store resolves (by id or username).
    pub fn add_user(&mut self, id: i64, username: &str) {
        self.users.insert(id, username.to_owned());
    }

    /// A tier as billing sees it (replaces one with the same id: a price change).
    pub fn put_tier(&mut self, tier: TierRef) {
        self.tiers.insert(tier.id, tier);
    }

    /// A tier with its name (for plans).
    pub fn put_tier_named(&mut self, tier: TierRef, name: &str) {
        self.tier_names.insert(tier.id, name.to_owned());
        self.put_tier(tier);
    }

    /// A user who is a creator.
    pub fn add_creator(&mut self, id: i64, username: &str) {
        self.add_user(id, username);
        self.creators.insert(id);
    }

    /// The ledger settings its transactions report ([`BillingTx::ledger_policy`]).
    pub fn set_ledger_policy(&mut self, policy: crate::ledger::Policy) {
        self.ledger_policy = policy;
    }

    /// Payments whose fee fetch was queued (test assertions).
    /// Payout jobs queued: (kind, payload, delay in seconds).
    pub fn payout_jobs(&self) -> Vec<(String, serde_json::Value, i64)> {
        self.payout_jobs.clone()
    }

    pub fn fee_fetches(&self) -> Vec<String> {
        self.fee_fetches.iter().cloned().collect()
    }

    /// The time the store stamps new rows with (the database's `now()`).
    pub fn set_clock(&mut self, now: Timestamp) {
        self.clock = now;
    }

    /// The membership of a user and tier most recently made, if any (test assertions).
    pub fn latest_membership(
        &self,
        user_id: i64,
        tier_id: i64,
    ) -> Option<(Membership, Option<String>)> {
        self.memberships.iter().rev().find_map(|r| {
            let m = r.m.as_ref()?;
            (m.user_id == user_id && m.tier_id == tier_id).then(|| (m.clone(), r.sub.clone()))
        })
    }

    /// Every stored order (test assertions).
    pub fn orders(&self) -> Vec<Order> {
        self.orders.iter().map(|(o, _)| o.clone()).collect()
    }

    /// Every live or ended membership (test assertions).
    pub fn memberships(&self) -> Vec<Membership> {
        self.memberships
            .iter()
            .filter_map(|r| r.m.clone())
            .collect()
    }

    /// The subscription cancellations requested so far (test assertions).
    pub fn cancellations(&self) -> Vec<(String, i64, VoidReason)> {
        self.cancels
            .iter()
            .map(|(s, (m, r))| (s.clone(), *m, *r))
            .collect()
    }

    fn live_recurring(&mut self, user_id: i64, tier_id: i64) -> Option<&mut MRow> {
        self.memberships.iter_mut().find(|r| {
            r.m.as_ref().is_some_and(|m| {
                m.user_id == user_id
                    && m.tier_id == tier_id
                    && m.state.kind == MembershipKind::Recurring
                    && m.state.status.is_live()
            })
        })
    }

    fn active_free(&self, user_id: i64, tier_id: i64) -> Option<&MRow> {
        self.memberships.iter().find(|r| {
            r.m.as_ref().is_some_and(|m| {
                m.user_id == user_id
                    && m.tier_id == tier_id
                    && m.state.kind == MembershipKind::Free
                    && m.state.status == MembershipStatus::Active
            })
        })
    }

    /// The gateway's refund id recorded for a payment's refund, once sent.
    pub fn sent_refund(&self, payment_id: &str) -> Option<String> {
        self.refund_sends.get(payment_id)?.refund_id.clone()
    }

    /// A normalised view (no surrogate ids, no wall-clock times) for comparing runs.
    pub fn view(&self) -> String {
        let mut ms: Vec<String> = self
            .memberships
            .iter()
            .filter_map(|r| {
                let m = r.m.as_ref()?;
                Some(format!(
                    "{:?} u{} t{} {:?} void={:?} {:?} end={:?} cancel={} paid={} sub={:?} order={:?}",
                    m.state.kind,
                    m.user_id,
                    m.tier_id,
                    m.state.status,
                    m.void_reason,
                    m.state.current_start,
                    m.state.current_end,
                    m.state.cancel_at_period_end,
                    m.state.paid_count,
                    r.sub,
                    r.order
                ))
            })
            .collect();
        ms.sort();
        let mut os: Vec<String> = self
            .orders
            .iter()
            .map(|(o, pay)| {
                format!(
                    "{} {:?} {} {} {:?}",
                    o.razorpay_order_id,
                    o.kind,
                    o.status.as_str(),
                    o.amount,
                    pay
                )
            })
            .collect();
        os.sort();
        let ps: Vec<String> = self
            .payments
            .iter()
            .map(|(id, p)| {
                format!(
                    "{id} {} {:?} {} {} u{:?} m={}",
                    p.links.kind,
                    p.status,
                    p.amount,
                    p.refunded,
                    p.links.user_id,
                    p.links.membership_id.is_some()
                )
            })
            .collect();
        let rs: Vec<String> = self
            .refunds
            .values()
            .map(|r| {
                format!(
                    "refund {} {} {}: {}",
                    r.payment_id, r.amount, r.currency, r.reason
                )
            })
            .collect();
        let fs: Vec<String> = self
            .flags
            .values()
            .map(|f| format!("flag {}: {}", f.payment_id, f.mismatch.describe()))
            .collect();
        let cs: Vec<String> = self
            .cancels
            .iter()
            .map(|(s, (m, r))| format!("cancel {s} m{m} {r:?}"))
            .collect();
        format!("{ms:#?}\n{os:#?}\n{ps:#?}\n{rs:#?}\n{fs:#?}\n{cs:#?}")
    }

    fn membership(&self, pred: impl Fn(&MRow) -> bool) -> Option<Membership> {
        self.memberships
            .iter()
            .find(|r| pred(r))
            .and_then(|r| r.m.clone())
    }
}

impl BillingStore for MemoryStore {
    fn lock_membership_by_subscription(
        &mut self,
        id: &str,
    ) -> Result<Option<Membership>, RepoError> {
        Ok(self.membership(|r| r.sub.as_deref() == Some(id)))
    }
    fn insert_recurring(
        &mut self,
        user_id: i64,
        tier: &Offer,
        id: &str,
    ) -> Result<Option<Membership>, RepoError> {
        if let Some(m) = self.membership(|r| r.sub.as_deref() == Some(id)) {
            return Ok(Some(m));
        }
        let live = self.memberships.iter().any(|r| {
            r.m.as_ref().is_some_and(|m| {
                m.user_id == user_id
                    && m.tier_id == tier.tier_id
                    && m.state.kind == MembershipKind::Recurring
                    && m.state.status.is_live()
            })
        });
        if live {
            return Ok(None);
        }
        let m = Membership {
            id: self.memberships.len() as i64 + 1,
            user_id,
            tier_id: tier.tier_id,
            amount: tier.amount,
            currency: tier.currency.clone(),
            period: tier.period,
            state: new_recurring_state(),
            void_reason: None,
        };
        self.memberships.push(MRow {
            m: Some(m.clone()),
            sub: Some(id.to_owned()),
            order: None,
            created: self.clock,
        });
        Ok(Some(m))
    }
    fn save_membership_state(&mut self, id: i64, state: &MembershipState) -> Result<(), RepoError> {
        for r in &mut self.memberships {
            if let Some(m) = &mut r.m {
                if m.id == id {
                    // The kind is fixed at insertion (PostgreSQL does not update it).
                    m.state = MembershipState {
                        kind: m.state.kind,
                        ..state.clone()
                    };
                }
            }
        }
        Ok(())
    }
    fn resolve_user(&mut self, v: &str) -> Result<Option<i64>, RepoError> {
        if let Ok(id) = v.trim().parse::<i64>() {
            return Ok(self.users.contains_key(&id).then_some(id));
        }
        Ok(self
            .users
            .iter()
            .find(|(_, n)| n.eq_ignore_ascii_case(v.trim()))
            .map(|(id, _)| *id))
    }
    fn find_tier(&mut self, id: i64) -> Result<Option<TierRef>, RepoError> {
        Ok(self.tiers.get(&id).cloned())
    }
    fn lock_order(&mut self, id: &str) -> Result<Option<Order>, RepoError> {
        Ok(self
            .orders
            .iter()
            .find(|(o, _)| o.razorpay_order_id == id)
            .map(|(o, _)| o.clone()))
    }
    fn confirm_order_message(
        &mut self,
        order_id: i64,
        name: Option<&str>,
        message: Option<&str>,
    ) -> Result<bool, RepoError> {
        let Some((o, _)) = self.orders.iter_mut().find(|(o, _)| o.id == order_id) else {
            return Ok(false);
        };
        if !self.messages_confirmed.insert(order_id) {
            return Ok(false);
        }
        if let Some(n) = name {
            o.name = n.to_owned();
        }
        if let Some(m) = message {
            o.message = m.to_owned();
        }
        Ok(true)
    }
    fn insert_order(&mut self, n: &NewOrder) -> Result<Order, RepoError> {
        if let Some(o) = self.lock_order(&n.razorpay_order_id)? {
            return Ok(o);
        }
        let o = Order {
            id: self.orders.len() as i64 + 1,
            razorpay_order_id: n.razorpay_order_id.clone(),
            kind: n.kind,
            status: OrderStatus::Created,
            user_id: n.user_id,
            creator_id: n.creator_id,
            tier_id: n.tier_id,
            reference_id: n.reference_id,
            amount: n.amount,
            currency: n.currency.clone(),
            name: n.name.clone(),
            message: n.message.clone(),
        };
        self.orders.push((o.clone(), None));
        Ok(o)
    }
    fn mark_order_paid(
        &mut self,
        id: i64,
        payment_id: &str,
        _at: Timestamp,
    ) -> Result<(), RepoError> {
        for (o, pay) in &mut self.orders {
            if o.id == id {
                if o.status == OrderStatus::Created {
                    o.status = OrderStatus::Paid;
                }
                pay.get_or_insert_with(|| payment_id.to_owned());
            }
        }
        Ok(())
    }
    fn insert_one_time_membership(
        &mut self,
        order: &Order,
        user_id: i64,
        tier_id: i64,
        start: Timestamp,
        end: Timestamp,
    ) -> Result<i64, RepoError> {
        if let Some(m) = self.membership(|r| r.order.as_deref() == Some(&order.razorpay_order_id)) {
            return Ok(m.id);
        }
        let id = self.memberships.len() as i64 + 1;
        self.memberships.push(MRow {
            m: Some(Membership {
                id,
                user_id,
                tier_id,
                amount: order.amount,
                currency: order.currency.clone(),
                period: BillingPeriod::Monthly,
                void_reason: None,
                state: MembershipState {
                    kind: MembershipKind::OneTime,
                    status: MembershipStatus::Active,
                    current_start: Some(start),
                    current_end: Some(end),
                    cancel_at_period_end: false,
                    ended_at: None,
                    paid_count: 1,
                    state_at: Some(start),
                },
            }),
            sub: None,
            order: Some(order.razorpay_order_id.clone()),
            created: self.clock,
        });
        Ok(id)
    }
    fn upsert_payment(
        &mut self,
        p: &PaymentSnapshot,
        links: &PaymentLinks,
    ) -> Result<(), RepoError> {
        let row = self.payments.entry(p.id.clone()).or_insert_with(|| PRow {
            status: p.status,
            amount: p.amount,
            refunded: p.amount_refunded,
            links: links.clone(),
            currency: p.currency.clone(),
            created_at: p.created_at,
        });
        if p.status.rank() > row.status.rank() {
            row.status = p.status;
        }
        row.refunded = row.refunded.max(p.amount_refunded);
        let l = &mut row.links;
        l.user_id = l.user_id.or(links.user_id);
        l.creator_id = l.creator_id.or(links.creator_id);
        l.membership_id = l.membership_id.or(links.membership_id);
        l.order_id = l.order_id.or(links.order_id);
        if l.razorpay_subscription_id.is_none() {
            l.razorpay_subscription_id = links.razorpay_subscription_id.clone();
        }
        Ok(())
    }
    fn lock_payment(&mut self, id: &str) -> Result<Option<StoredPayment>, RepoError> {
        Ok(self.payments.get(id).map(|p| StoredPayment {
            status: p.status,
            amount: p.amount,
            amount_refunded: p.refunded,
            order_id: p.links.order_id,
        }))
    }
    fn set_payment_refunded(
        &mut self,
        id: &str,
        refunded: i64,
        full: bool,
    ) -> Result<(), RepoError> {
        if let Some(p) = self.payments.get_mut(id) {
            p.refunded = p.refunded.max(refunded);
            if full {
                p.status = PaymentStatus::Refunded;
            }
        }
        Ok(())
    }
    fn linked_charges(
        &mut self,
        subscription_id: &str,
        payment_ids: &[String],
    ) -> Result<std::collections::HashSet<String>, RepoError> {
        let membership = self
            .membership(|r| r.sub.as_deref() == Some(subscription_id))
            .map(|m| m.id);
        Ok(payment_ids
            .iter()
            .filter(|id| {
                self.payments
                    .get(id.as_str())
                    .is_some_and(|p| membership.is_some() && p.links.membership_id == membership)
            })
            .cloned()
            .collect())
    }
    fn revoke_order(&mut self, id: i64, now: Timestamp) -> Result<(), RepoError> {
        let mut rid = None;
        for (o, _) in &mut self.orders {
            if o.id == id && o.status != OrderStatus::Rejected {
                o.status = OrderStatus::Refunded;
                rid = Some(o.razorpay_order_id.clone());
            }
        }
        for r in &mut self.memberships {
            if r.order.is_some() && r.order == rid {
                if let Some(m) = &mut r.m {
                    m.state.status = MembershipStatus::Cancelled;
                    m.state.ended_at.get_or_insert(now);
                }
            }
        }
        Ok(())
    }
    fn void_membership(
        &mut self,
        id: i64,
        reason: VoidReason,
        now: Timestamp,
    ) -> Result<(), RepoError> {
        for r in &mut self.memberships {
            if let Some(m) = r.m.as_mut().filter(|m| m.id == id) {
                m.state.status = MembershipStatus::Cancelled;
                m.state.cancel_at_period_end = false;
                m.state.ended_at.get_or_insert(now);
                m.state.state_at.get_or_insert(now);
                m.void_reason.get_or_insert(reason);
            }
        }
        Ok(())
    }
    fn trial_end(&mut self, membership_id: i64) -> Result<Option<Timestamp>, RepoError> {
        Ok(self.trial_ends.get(&membership_id).copied())
    }
    fn claim_trial_instrument(
        &mut self,
        creator_id: i64,
        instrument: &crate::trials::Instrument,
        membership_id: i64,
    ) -> Result<i64, RepoError> {
        Ok(*self
            .trial_instruments
            .entry((creator_id, instrument.clone()))
            .or_insert(membership_id))
    }
    fn reject_order(&mut self, id: i64, payment_id: &str) -> Result<(), RepoError> {
        for (o, pay) in &mut self.orders {
            if o.id == id && o.status == OrderStatus::Created {
                o.status = OrderStatus::Rejected;
                pay.get_or_insert_with(|| payment_id.to_owned());
            }
        }
        Ok(())
    }
    fn flag_payment(&mut self, flag: &PaymentFlag) -> Result<bool, RepoError> {
        if self.flags.contains_key(&flag.payment_id) {
            return Ok(false);
        }
        self.flags.insert(flag.payment_id.clone(), flag.clone());
        Ok(true)
    }
    fn request_refund(&mut self, r: &RefundRequest) -> Result<bool, RepoError> {
        if self.refunds.contains_key(&r.payment_id) {
            return Ok(false);
        }
        self.refunds.insert(r.payment_id.clone(), r.clone());
        Ok(true)
    }
    fn claim_change_charge(
        &mut self,
        membership_id: i64,
        _payment_id: &str,
        amount: i64,
        _currency: &str,
    ) -> Result<Option<crate::ports::ChangeClaim>, RepoError> {
        let Some((change_id, prorated, to_tier)) =
            self.changes.get(&(membership_id, amount)).copied()
        else {
            return Ok(None);
        };
        if prorated {
            return Ok(Some(crate::ports::ChangeClaim::Prorated { change_id }));
        }
        if let Some(m) = self
            .memberships
            .iter_mut()
            .filter_map(|r| r.m.as_mut())
            .find(|m| m.id == membership_id)
        {
            m.tier_id = to_tier;
            m.amount = amount;
        }
        self.changes.remove(&(membership_id, amount));
        Ok(Some(crate::ports::ChangeClaim::Moved { change_id }))
    }

    fn request_subscription_cancel(
        &mut self,
        membership_id: i64,
        subscription_id: &str,
        reason: VoidReason,
    ) -> Result<bool, RepoError> {
        if self.cancels.contains_key(subscription_id) {
            return Ok(false);
        }
        self.cancels
            .insert(subscription_id.to_owned(), (membership_id, reason));
        Ok(true)
    }

    // --- Sending refunds and cancellations ---------------------------------------------------
    // A claim here has no lease time: it lasts until the attempt is recorded (a crashed sender
    // is simulated by calling `refund_attempt_failed`).

    fn claim_refund(
        &mut self,
        payment_id: &str,
        _lease_secs: i64,
    ) -> Result<Option<RefundToSend>, RepoError> {
        if !self.refunds.contains_key(payment_id) {
            return Ok(None);
        }
        let send = self.refund_sends.entry(payment_id.to_owned()).or_default();
        if send.status != RefundStatus::Requested || send.claimed {
            return Ok(None);
        }
        send.claimed = true;
        self.refund_to_send(payment_id)
    }

    fn refund_to_send(&mut self, payment_id: &str) -> Result<Option<RefundToSend>, RepoError> {
        let Some(r) = self.refunds.get(payment_id) else {
            return Ok(None);
        };
        let status = self
            .refund_sends
            .get(payment_id)
            .map_or(RefundStatus::Requested, |s| s.status);
        Ok(Some(RefundToSend {
            payment_id: payment_id.to_owned(),
            idempotency_key: refund_key(payment_id),
            amount: r.amount,
            reason: r.reason.clone(),
            status,
        }))
    }

    fn refund_sent(
        &mut self,
        payment_id: &str,
        refund_id: &str,
        _refund_status: &str,
    ) -> Result<bool, RepoError> {
        if !self.refunds.contains_key(payment_id) {
            return Ok(false);
        }
        let send = self.refund_sends.entry(payment_id.to_owned()).or_default();
        if send.status != RefundStatus::Requested {
            return Ok(false);
        }
        *send = RefundSend {
            status: RefundStatus::Sent,
            claimed: false,
            refund_id: Some(refund_id.to_owned()),
            last_error: None,
        };
        Ok(true)
    }

    fn refund_attempt_failed(
        &mut self,
        payment_id: &str,
        error: &str,
        give_up: bool,
    ) -> Result<(), RepoError> {
        if let Some(send) = self.refund_sends.get_mut(payment_id) {
            if send.status == RefundStatus::Requested {
                send.claimed = false;
                send.last_error = Some(error.to_owned());
                if give_up {
                    send.status = RefundStatus::Failed;
                }
            }
        }
        Ok(())
    }

    fn cancellation_pending(&mut self, subscription_id: &str) -> Result<bool, RepoError> {
        Ok(self.cancels.contains_key(subscription_id)
            && !self.cancelled.contains_key(subscription_id))
    }

    fn record_cancellation_attempt(
        &mut self,
        subscription_id: &str,
        cancelled: bool,
        outcome: &str,
    ) -> Result<(), RepoError> {
        if cancelled && self.cancels.contains_key(subscription_id) {
            self.cancelled
                .insert(subscription_id.to_owned(), outcome.to_owned());
        }
        Ok(())
    }

    // --- Reconciliation ----------------------------------------------------------------------
    // No creation times are kept here: a checkout's age is its last snapshot's (`state_at`),
    // and every `created` order counts as recent.

    fn waiting_subscriptions(
        &mut self,
        now: Timestamp,
        limit: i64,
    ) -> Result<Vec<String>, RepoError> {
        use MembershipStatus as S;
        let days = chrono::Duration::days;
        let mut out = Vec::new();
        for r in &self.memberships {
            let (Some(m), Some(sub)) = (&r.m, &r.sub) else {
                continue;
            };
            let st = &m.state;
            if st.kind != MembershipKind::Recurring {
                continue;
            }
            let charges = self
                .payments
                .values()
                .filter(|p| {
                    p.links.membership_id == Some(m.id)
                        && p.links.kind == "subscription"
                        && matches!(
                            p.status,
                            PaymentStatus::Authorized
                                | PaymentStatus::Captured
                                | PaymentStatus::Refunded
                        )
                })
                .count() as i64;
            let waiting = match st.status {
                S::Created | S::Authenticated => st.state_at.is_none_or(|t| t > now - days(7)),
                S::Pending => true,
                S::Active | S::Paused => st
                    .current_end
                    .is_none_or(|e| e >= now - days(400) && e <= now),
                S::Halted => st.current_end.is_some_and(|e| e > now - days(60)),
                _ => false,
            } || (st.paid_count > 0 && st.paid_count > charges);
            if waiting && (out.len() as i64) < limit {
                out.push(sub.clone());
            }
        }
        Ok(out)
    }

    fn waiting_orders(&mut self, _now: Timestamp, limit: i64) -> Result<Vec<String>, RepoError> {
        Ok(self
            .orders
            .iter()
            .filter(|(o, _)| o.status == OrderStatus::Created)
            .map(|(o, _)| o.razorpay_order_id.clone())
            .take(limit.max(0) as usize)
            .collect())
    }
}

// ---------------------------------------------------------------------------------------------
// Checkout (the same uniqueness rules as the Postgres partial unique indexes: one live
// recurring and one active free membership per user and tier).

fn plan_key(o: &Offer) -> (i64, BillingPeriod, i64, String) {
    (o.tier_id, o.period, o.amount, o.currency.clone())
}

impl CheckoutStore for MemoryStore {
    fn tier_for_sale(&mut self, tier_id: i64) -> Result<Option<TierForSale>, RepoError> {
        Ok(self.tiers.get(&tier_id).map(|t| TierForSale {
            tier: t.clone(),
            name: self.tier_names.get(&tier_id).cloned().unwrap_or_default(),
            trial_days: self.trial_days.get(&tier_id).copied().unwrap_or(0),
        }))
    }
    fn is_creator(&mut self, user_id: i64) -> Result<bool, RepoError> {
        Ok(self.creators.contains(&user_id))
    }
    fn plan_id(&mut self, offer: &Offer) -> Result<Option<String>, RepoError> {
        Ok(self.plans.get(&plan_key(offer)).cloned())
    }
    fn save_plan(&mut self, offer: &Offer, plan_id: &str) -> Result<String, RepoError> {
        Ok(self
            .plans
            .entry(plan_key(offer))
            .or_insert_with(|| plan_id.to_owned())
            .clone())
    }
    fn reserve_recurring(&mut self, user_id: i64, tier: &Offer) -> Result<Reservation, RepoError> {
        if let Some(r) = self.live_recurring(user_id, tier.tier_id) {
            let m = r.m.as_ref().ok_or(RepoError::NotFound)?;
            return Ok(Reservation::Existing(PendingMembership {
                id: m.id,
                status: m.state.status,
                amount: m.amount,
                currency: m.currency.clone(),
                period: m.period,
                subscription_id: r.sub.clone(),
                created_at: r.created,
            }));
        }
        let id = self.memberships.len() as i64 + 1;
        self.memberships.push(MRow {
            m: Some(Membership {
                id,
                user_id,
                tier_id: tier.tier_id,
                amount: tier.amount,
                currency: tier.currency.clone(),
                period: tier.period,
                state: new_recurring_state(),
                void_reason: None,
            }),
            sub: None,
            order: None,
            created: self.clock,
        });
        Ok(Reservation::New(id))
    }
    fn attach_subscription(
        &mut self,
        membership_id: i64,
        subscription_id: &str,
    ) -> Result<(), RepoError> {
        for r in &mut self.memberships {
            if r.m.as_ref().is_some_and(|m| m.id == membership_id) {
                r.sub = Some(subscription_id.to_owned());
            }
        }
        Ok(())
    }
    fn start_trial(
        &mut self,
        membership_id: i64,
        user_id: i64,
        creator_id: i64,
        trial_end: Timestamp,
    ) -> Result<bool, RepoError> {
        let tiers = &self.tiers;
        let other = self
            .memberships
            .iter()
            .filter_map(|r| r.m.as_ref())
            .any(|m| {
                m.id != membership_id
                    && m.user_id == user_id
                    && m.void_reason != Some(VoidReason::TrialUsed)
                    && tiers
                        .get(&m.tier_id)
                        .is_some_and(|t| t.creator_id == creator_id)
            });
        if other {
            return Ok(false);
        }
        for m in self.memberships.iter_mut().filter_map(|r| r.m.as_mut()) {
            if m.id == membership_id {
                m.state.current_end = Some(trial_end);
            }
        }
        self.trial_ends.insert(membership_id, trial_end);
        Ok(true)
    }
    fn open_hiatus(
        &mut self,
        creator_id: i64,
        at: Timestamp,
    ) -> Result<Option<crate::ports::OpenHiatus>, RepoError> {
        Ok(self
            .hiatuses
            .get(&creator_id)
            .filter(|h| h.resumes_at > at)
            .copied())
    }
    fn join_during_hiatus(
        &mut self,
        membership_id: i64,
        hiatus: &crate::ports::OpenHiatus,
        first_charge: Timestamp,
    ) -> Result<(), RepoError> {
        for m in self.memberships.iter_mut().filter_map(|r| r.m.as_mut()) {
            if m.id == membership_id {
                m.state.current_end = m.state.current_end.max(Some(first_charge));
            }
        }
        self.joined_in_hiatus.push((hiatus.id, membership_id));
        Ok(())
    }
    fn drop_reservation(&mut self, membership_id: i64) -> Result<(), RepoError> {
        for r in &mut self.memberships {
            if r.sub.is_none() && r.m.as_ref().is_some_and(|m| m.id == membership_id) {
                // The slot stays (ids are never reused), empty.
                r.m = None;
            }
        }
        Ok(())
    }
    fn join_free_tier(&mut self, user_id: i64, tier: &TierRef) -> Result<bool, RepoError> {
        if self.active_free(user_id, tier.id).is_some() {
            return Ok(false);
        }
        let id = self.memberships.len() as i64 + 1;
        self.memberships.push(MRow {
            m: Some(Membership {
                id,
                user_id,
                tier_id: tier.id,
                amount: 0,
                currency: tier.currency.clone(),
                period: BillingPeriod::Monthly,
                state: MembershipState {
                    kind: MembershipKind::Free,
                    status: MembershipStatus::Active,
                    current_start: Some(self.clock),
                    current_end: None,
                    cancel_at_period_end: false,
                    ended_at: None,
                    paid_count: 0,
                    state_at: Some(self.clock),
                },
                void_reason: None,
            }),
            sub: None,
            order: None,
            created: self.clock,
        });
        Ok(true)
    }
    fn lock_endable_membership(
        &mut self,
        user_id: i64,
        tier_id: i64,
    ) -> Result<Option<EndableMembership>, RepoError> {
        let endable = |r: &MRow| {
            r.m.as_ref().map(|m| EndableMembership {
                id: m.id,
                kind: m.state.kind,
                subscription_id: r.sub.clone(),
            })
        };
        if let Some(r) = self.live_recurring(user_id, tier_id) {
            return Ok(endable(r));
        }
        Ok(self.active_free(user_id, tier_id).and_then(endable))
    }
    fn cancel_membership(
        &mut self,
        membership_id: i64,
        at_cycle_end: bool,
        now: Timestamp,
    ) -> Result<(), RepoError> {
        for r in &mut self.memberships {
            if let Some(m) = r.m.as_mut().filter(|m| m.id == membership_id) {
                if at_cycle_end {
                    m.state.cancel_at_period_end = true;
                } else {
                    m.state.status = MembershipStatus::Cancelled;
                    m.state.cancel_at_period_end = false;
                    m.state.ended_at = Some(now);
                    m.state.state_at = Some(now);
                }
            }
        }
        Ok(())
    }
}

/// The earnings ledger in memory: accounts by payment, postings in order (unique by key).
impl crate::ledger::LedgerStore for MemoryStore {
    fn ledger_facts(
        &mut self,
        payment_id: &str,
    ) -> Result<Option<crate::ledger::PaymentFacts>, RepoError> {
        let Some(p) = self.payments.get(payment_id) else {
            return Ok(None);
        };
        let rejected = self
            .orders
            .iter()
            .any(|(o, _)| Some(o.id) == p.links.order_id && o.status == OrderStatus::Rejected);
        let voided = self.memberships.iter().any(|r| {
            r.m.as_ref()
                .is_some_and(|m| Some(m.id) == p.links.membership_id && m.void_reason.is_some())
        });
        Ok(Some(crate::ledger::PaymentFacts {
            payment_id: payment_id.to_owned(),
            status: p.status,
            amount: p.amount,
            amount_refunded: p.refunded,
            currency: p.currency.clone(),
            creator_id: p.links.creator_id,
            source: crate::ledger::Source::of_payment_kind(p.links.kind),
            accepted: !rejected && !voided,
            captured_at: p.created_at,
        }))
    }
    fn lock_payment_account(
        &mut self,
        payment_id: &str,
    ) -> Result<Option<crate::ledger::PaymentAccount>, RepoError> {
        Ok(self.ledger_accounts.get(payment_id).cloned())
    }
    fn save_payment_account(
        &mut self,
        account: &crate::ledger::PaymentAccount,
    ) -> Result<(), RepoError> {
        self.ledger_accounts
            .insert(account.payment_id.clone(), account.clone());
        Ok(())
    }
    fn post(&mut self, posting: &crate::ledger::Posting) -> Result<bool, RepoError> {
        if !posting.is_balanced() {
            return Err(RepoError::Conflict {
                constraint: "ledger_postings_balanced".into(),
            });
        }
        if self.postings.iter().any(|p| p.key == posting.key) {
            return Ok(false);
        }
        self.postings.push(posting.clone());
        Ok(true)
    }
    fn posted(&mut self, key: &str) -> Result<bool, RepoError> {
        Ok(self.postings.iter().any(|p| p.key == key))
    }
    fn request_fee_fetch(&mut self, payment_id: &str) -> Result<(), RepoError> {
        self.fee_fetches.insert(payment_id.to_owned());
        Ok(())
    }
    fn creator_sums(
        &mut self,
        creator_id: i64,
    ) -> Result<Vec<(String, crate::ledger::Account, i64)>, RepoError> {
        let mut sums = BTreeMap::<(String, crate::ledger::Account), i64>::new();
        for p in self.postings.iter().filter(|p| p.creator_id == creator_id) {
            for e in &p.entries {
                *sums.entry((p.currency.clone(), e.account)).or_default() += e.amount;
            }
        }
        Ok(sums.into_iter().map(|((c, a), v)| (c, a, v)).collect())
    }
    fn statement(
        &mut self,
        creator_id: i64,
        from: Option<Timestamp>,
        to: Option<Timestamp>,
        offset: i64,
        limit: i64,
    ) -> Result<(Vec<crate::ledger::StatementLine>, i64), RepoError> {
        use crate::ledger::PostingKind;
        let mut lines: Vec<&crate::ledger::Posting> = self
            .postings
            .iter()
            .filter(|p| {
                p.creator_id == creator_id
                    && matches!(p.kind, PostingKind::Capture | PostingKind::Refund)
                    && from.is_none_or(|f| p.at >= f)
                    && to.is_none_or(|t| p.at < t)
            })
            .collect();
        lines.sort_by_key(|p| p.at);
        let count = lines.len() as i64;
        let page = lines
            .into_iter()
            .skip(offset.max(0) as usize)
            .take(limit.max(0) as usize)
            .map(|p| crate::ledger::StatementLine {
                at: p.at,
                payment_id: p.payment_id.clone(),
                source: p
                    .payment_id
                    .as_ref()
                    .and_then(|id| self.ledger_accounts.get(id))
                    .map(|a| a.source),
                kind: p.kind,
                currency: p.currency.clone(),
                gross: p.gross,
                gateway_fee: p.gateway_fee,
                platform_fee: p.platform_fee,
                net: p.net,
                reference: p.reference.clone(),
                transfer_id: None,
                settlement_utr: None,
            })
            .collect();
        Ok((page, count))
    }
    fn due_holds(&mut self, now: Timestamp, limit: i64) -> Result<Vec<String>, RepoError> {
        use crate::ledger::{Bucket, HoldReason};
        Ok(self
            .ledger_accounts
            .values()
            .filter(|a| {
                a.bucket == Bucket::OnHold
                    && a.hold == Some(HoldReason::HoldPeriod)
                    && a.hold_until.is_some_and(|u| u <= now)
            })
            .take(limit.max(0) as usize)
            .map(|a| a.payment_id.clone())
            .collect())
    }
    fn manual_payouts_due(&mut self) -> Result<Vec<crate::ledger::ManualPayoutDue>, RepoError> {
        use crate::ledger::{Account, Bucket};
        let mut due = BTreeMap::<(i64, String), i64>::new();
        for p in &self.postings {
            for e in &p.entries {
                if e.account == Account::Creator(Bucket::ManualPayout) {
                    *due.entry((p.creator_id, p.currency.clone())).or_default() += e.amount;
                }
            }
        }
        Ok(due
            .into_iter()
            .filter(|(_, v)| *v > 0)
            .map(
                |((creator_id, currency), amount)| crate::ledger::ManualPayoutDue {
                    creator_id,
                    currency,
                    amount,
                },
            )
            .collect())
    }
    fn unbalanced_postings(&mut self) -> Result<Vec<String>, RepoError> {
        Ok(self
            .postings
            .iter()
            .filter(|p| !p.is_balanced())
            .map(|p| p.key.clone())
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apply::{apply_effects, apply_order_payment};
    use crate::events::{plan_event, Event, OrderSnapshot};
    use crate::state::SubscriptionSnapshot;
    use chrono::{Duration, TimeZone, Utc};

    fn t(s: i64) -> Timestamp {
        Utc.timestamp_opt(1_790_000_000 + s, 0).unwrap()
    }

    fn world() -> MemoryStore {
        let mut s = MemoryStore::default();
        s.users.insert(1, "creator".into());
        s.users.insert(2, "fan".into());
        s.tiers.insert(
            7,
            TierRef {
                id: 7,
                creator_id: 1,
                price: 50_000,
                annual_price: None,
                currency: "INR".into(),
                is_active: true,
            },
        );
        s
    }

    fn notes(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn pay(
        id: &str,
        status: PaymentStatus,
        order: Option<&str>,
        invoice: bool,
        n: &BTreeMap<String, String>,
        refunded: i64,
    ) -> PaymentSnapshot {
        PaymentSnapshot {
            id: id.into(),
            amount: 50_000,
            currency: "INR".into(),
            status,
            order_id: order.map(Into::into),
            invoice_id: invoice.then(|| "inv_1".into()),
            amount_refunded: refunded,
            notes: n.clone(),
            email: None,
            contact: None,
            created_at: t(100),
            fee: Some(1_180),
            instrument: None,
        }
    }

    fn sub(status: MembershipStatus, paid: i64, at: i64, end: i64) -> SubscriptionSnapshot {
        SubscriptionSnapshot {
            id: "sub_1".into(),
            status: Some(status),
            current_start: Some(t(end - 30 * 86_400)),
            current_end: Some(t(end)),
            ended_at: None,
            paid_count: paid,
            observed_at: t(at),
        }
    }

    fn ev(name: &str, at: i64) -> Event {
        Event {
            name: name.into(),
            created_at: t(at),
            subscription: None,
            subscription_notes: BTreeMap::new(),
            payment: None,
            order: None,
            refund: None,
            route: None,
        }
    }

    /// A month of one fan's billing: a recurring membership (checkout + a renewal), a one-time
    /// purchase that is refunded, and a cheer — as Razorpay would send it.
    fn stream() -> Vec<Event> {
        use MembershipStatus as S;
        use PaymentStatus as P;
        let month = 30 * 86_400;
        let sn = notes(&[("type", "subscription"), ("userID", "2"), ("tierID", "7")]);
        let on = notes(&[
            ("type", "subscription"),
            ("username", "fan"),
            ("tierID", "7"),
        ]);
        let cn = notes(&[
            ("type", "cheer"),
            ("creatorID", "1"),
            ("username", "fan"),
            ("name", "F"),
            ("message", "hi"),
        ]);
        let mut out = Vec::new();
        let mut s =
            |name: &str, at: i64, snap: SubscriptionSnapshot, p: Option<PaymentSnapshot>| {
                let mut e = ev(name, at);
                e.subscription = Some(snap);
                e.subscription_notes = sn.clone();
                e.payment = p;
                out.push(e);
            };
        s(
            "subscription.authenticated",
            10,
            sub(S::Authenticated, 0, 10, 0),
            None,
        );
        s(
            "subscription.activated",
            11,
            sub(S::Active, 1, 11, month),
            None,
        );
        s(
            "subscription.charged",
            11,
            sub(S::Active, 1, 11, month),
            Some(pay("pay_s1", P::Captured, Some("order_s1"), true, &sn, 0)),
        );
        s(
            "subscription.charged",
            month,
            sub(S::Active, 2, month, 2 * month),
            Some(pay("pay_s2", P::Captured, Some("order_s2"), true, &sn, 0)),
        );
        let mut p = |name: &str, at: i64, snap: PaymentSnapshot| {
            let mut e = ev(name, at);
            if name == "order.paid" {
                e.order = Some(OrderSnapshot {
                    id: snap.order_id.clone().unwrap_or_default(),
                    amount: snap.amount,
                    currency: snap.currency.clone(),
                    paid: true,
                    notes: snap.notes.clone(),
                });
            }
            if name.starts_with("refund.") {
                e.refund = Some(("rfnd_1".into(), snap.id.clone(), snap.amount));
            }
            e.payment = Some(snap);
            out.push(e);
        };
        // Subscription invoice payments (ignored by the order path).
        p(
            "payment.captured",
            12,
            pay("pay_s1", P::Captured, Some("order_s1"), true, &sn, 0),
        );
        // One-time purchase, then a full refund.
        p(
            "payment.authorized",
            20,
            pay("pay_o1", P::Authorized, Some("order_o1"), false, &on, 0),
        );
        p(
            "payment.captured",
            21,
            pay("pay_o1", P::Captured, Some("order_o1"), false, &on, 0),
        );
        p(
            "order.paid",
            21,
            pay("pay_o1", P::Captured, Some("order_o1"), false, &on, 0),
        );
        p(
            "refund.processed",
            40,
            pay("pay_o1", P::Refunded, Some("order_o1"), false, &on, 50_000),
        );
        // A cheer paid only through webhooks.
        p(
            "payment.authorized",
            30,
            pay("pay_c1", P::Authorized, Some("order_c1"), false, &cn, 0),
        );
        p(
            "payment.captured",
            31,
            pay("pay_c1", P::Captured, Some("order_c1"), false, &cn, 0),
        );
        // A refunded subscription charge whose refund arrives before the charge.
        p(
            "refund.processed",
            50,
            pay("pay_s2", P::Refunded, Some("order_s2"), true, &sn, 50_000),
        );
        out
    }

    fn run(events: &[Event]) -> MemoryStore {
        let mut store = world();
        for e in events {
            apply_effects(&mut store, &plan_event(e), t(60)).unwrap();
        }
        store
    }

    /// Deterministic shuffles (xorshift), so failures reproduce.
    fn shuffled(events: &[Event], seed: u64) -> Vec<Event> {
        let mut v = events.to_vec();
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        for i in (1..v.len()).rev() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            v.swap(i, (x % (i as u64 + 1)) as usize);
        }
        v
    }

    #[test]
    fn in_order_stream_gives_the_expected_state() {
        let s = run(&stream());
        let v = s.view();
        assert!(v.contains("Recurring u2 t7 Active"), "{v}");
        assert!(v.contains("paid=2"), "{v}");
        assert!(
            v.contains("OneTime u2 t7 Cancelled"),
            "refunded purchase: {v}"
        );
        assert!(v.contains("order_o1 OneTime refunded 50000"), "{v}");
        assert!(v.contains("order_c1 Cheer paid 50000"), "{v}");
        assert!(v.contains("pay_s2 subscription Refunded"), "{v}");
        assert_eq!(s.payments.len(), 4, "{v}");
        // The one-time purchase lasts 30 days from the payment.
        let ot = s
            .memberships
            .iter()
            .filter_map(|r| r.m.as_ref())
            .find(|m| m.state.kind == MembershipKind::OneTime)
            .unwrap();
        assert_eq!(ot.state.current_end, Some(t(100) + Duration::days(30)));
    }

    #[test]
    fn any_order_with_duplicates_gives_the_same_state() {
        let events = stream();
        let expected = run(&events).view();
        for seed in 1..300u64 {
            let mut v = shuffled(&events, seed);
            // Duplicate a few deliveries (at-least-once).
            let dups: Vec<Event> = v.iter().step_by(3).cloned().collect();
            v.extend(dups);
            let v = shuffled(&v, seed + 1000);
            assert_eq!(run(&v).view(), expected, "seed {seed}");
        }
        let mut rev = events.clone();
        rev.reverse();
        assert_eq!(run(&rev).view(), expected, "reverse order");
    }

    #[test]
    fn a_lost_charge_is_recovered_from_invoices_and_the_late_webhook_changes_nothing() {
        use crate::reconcile::{charges_to_recover, recover_charges, InvoiceSnapshot};
        use MembershipStatus as S;
        use PaymentStatus as P;
        let events = stream();
        let full = run(&events).view();
        // Cycle 2's `subscription.charged` is lost: the only event linking pay_s2 to the
        // membership (its refund, delivered, recorded it unlinked) and extending the period.
        let at = events
            .iter()
            .position(|e| {
                e.name == "subscription.charged"
                    && e.payment.as_ref().is_some_and(|p| p.id == "pay_s2")
            })
            .unwrap();
        let mut rest = events.clone();
        let lost = rest.remove(at);
        let mut store = run(&rest);
        assert_ne!(store.view(), full);

        let month = 30 * 86_400;
        let sn = notes(&[("type", "subscription"), ("userID", "2"), ("tierID", "7")]);
        let inv = |id: &str, sub: &str, pay: Option<&str>, paid: bool| InvoiceSnapshot {
            id: id.into(),
            subscription_id: Some(sub.into()),
            payment_id: pay.map(Into::into),
            paid,
        };
        let invoices = vec![
            inv("inv_3", "sub_1", None, false),
            inv("inv_2", "sub_1", Some("pay_s2"), true),
            inv("inv_1", "sub_1", Some("pay_s1"), true),
            inv("inv_9", "sub_9", Some("pay_x"), true),
        ];
        let missing = charges_to_recover(&mut store, "sub_1", &invoices).unwrap();
        assert_eq!(missing, vec!["pay_s2".to_owned()]);

        // The payments as fetched now (pay_s2 since refunded), plus ones that must be skipped:
        // another subscription's charge and a failed attempt.
        let mut p2 = pay("pay_s2", P::Refunded, Some("order_s2"), true, &sn, 50_000);
        p2.invoice_id = Some("inv_2".into());
        let mut other = pay("pay_x", P::Captured, Some("order_x"), true, &sn, 0);
        other.invoice_id = Some("inv_9".into());
        let mut failed = pay("pay_f", P::Failed, Some("order_s3"), true, &sn, 0);
        failed.invoice_id = Some("inv_3".into());
        let fetched = sub(S::Active, 2, 2 * month + 5, 2 * month);
        recover_charges(
            &mut store,
            &fetched,
            &sn,
            &invoices,
            &[p2, other, failed],
            t(60),
        )
        .unwrap();
        assert_eq!(store.view(), full, "recovered = as if the webhook had come");
        assert!(charges_to_recover(&mut store, "sub_1", &invoices)
            .unwrap()
            .is_empty());

        // The lost webhook arrives late, and reconciliation runs again: nothing changes.
        apply_effects(&mut store, &plan_event(&lost), t(90)).unwrap();
        recover_charges(&mut store, &fetched, &sn, &invoices, &[], t(95)).unwrap();
        assert_eq!(store.view(), full);
    }

    #[test]
    fn replaying_everything_changes_nothing() {
        let events = stream();
        let once = run(&events);
        let mut store = once.clone();
        for e in &events {
            apply_effects(&mut store, &plan_event(e), t(90_000)).unwrap();
        }
        assert_eq!(store.view(), once.view());
    }

    /// Every ordering, with duplicates, of `events` gives the state of the in-order run.
    fn converges(world: impl Fn() -> MemoryStore, events: &[Event]) -> MemoryStore {
        let apply = |evs: &[Event]| {
            let mut store = world();
            for e in evs {
                apply_effects(&mut store, &plan_event(e), t(60)).unwrap();
            }
            store
        };
        let first = apply(events);
        for seed in 1..200u64 {
            let mut v = shuffled(events, seed);
            let dups: Vec<Event> = v.iter().step_by(2).cloned().collect();
            v.extend(dups);
            let v = shuffled(&v, seed + 7);
            assert_eq!(apply(&v).view(), first.view(), "seed {seed}");
        }
        first
    }

    fn tier7(s: &mut MemoryStore) -> &mut TierRef {
        s.tiers.get_mut(&7).unwrap()
    }

    #[test]
    fn payments_for_a_deactivated_tier_grant_nothing_and_are_refunded_once() {
        let world = || {
            let mut s = world();
            tier7(&mut s).is_active = false;
            s
        };
        // A recurring checkout and a one-time purchase, both paid after the tier was
        // deactivated; our own refund's webhook comes back too.
        let events: Vec<Event> = stream()
            .into_iter()
            .filter(|e| {
                e.payment
                    .as_ref()
                    .is_none_or(|p| p.id != "pay_c1" && p.id != "pay_s2")
            })
            .collect();
        let s = converges(world, &events);
        let v = s.view();
        assert!(
            v.contains("Recurring u2 t7 Cancelled void=Some(StaleCheckout)"),
            "{v}"
        );
        assert!(v.contains("order_o1 OneTime rejected 50000"), "{v}");
        assert!(!v.contains("OneTime u2"), "no one-time membership: {v}");
        assert_eq!(
            s.refunds.keys().cloned().collect::<Vec<_>>(),
            ["pay_o1", "pay_s1"]
        );
        assert!(s
            .refunds
            .values()
            .all(|r| r.reason == "the tier accepts no new members"));
        assert_eq!(s.cancels.keys().cloned().collect::<Vec<_>>(), ["sub_1"]);
        assert!(s.flags.is_empty(), "{v}");
        let now = t(100);
        assert!(s
            .memberships
            .iter()
            .filter_map(|r| r.m.as_ref())
            .all(|m| !m.state.has_access(now)));
    }

    #[test]
    fn a_one_time_order_made_at_an_old_price_is_refunded() {
        let mut s = world();
        let order = s
            .insert_order(&NewOrder {
                razorpay_order_id: "order_old".into(),
                kind: OrderKind::OneTime,
                user_id: Some(2),
                creator_id: Some(1),
                tier_id: Some(7),
                reference_id: None,
                amount: 40_000,
                currency: "INR".into(),
                name: String::new(),
                message: String::new(),
                notes: serde_json::json!({}),
            })
            .unwrap();
        let mut p = pay(
            "pay_old",
            PaymentStatus::Captured,
            Some("order_old"),
            false,
            &BTreeMap::new(),
            0,
        );
        p.amount = 40_000;
        let a = apply_order_payment(&mut s, "order_old", None, &p).unwrap();
        assert!(a.started.is_none(), "{a:?}");
        assert!(a.outcome.contains("rejected"), "{a:?}");
        assert_eq!(
            s.refunds["pay_old"].reason,
            "the tier's price changed from 40000 INR to 50000 INR"
        );
        assert_eq!(s.refunds["pay_old"].order_id, Some(order.id));
        // Redelivered, and refunded since: still one refund, still nothing granted.
        let mut refunded = p.clone();
        refunded.status = PaymentStatus::Refunded;
        refunded.amount_refunded = 40_000;
        apply_order_payment(&mut s, "order_old", None, &p).unwrap();
        apply_order_payment(&mut s, "order_old", None, &refunded).unwrap();
        assert_eq!(s.refunds.len(), 1);
        assert!(
            s.view().contains("order_old OneTime rejected 40000"),
            "{}",
            s.view()
        );
        assert!(!s.view().contains("OneTime u2"));
    }

    #[test]
    fn mismatched_payments_are_flagged_and_grant_nothing() {
        use MembershipStatus as S;
        use PaymentStatus as P;
        let sn = notes(&[("type", "subscription"), ("userID", "2"), ("tierID", "7")]);
        let on = notes(&[
            ("type", "subscription"),
            ("username", "fan"),
            ("tierID", "7"),
        ]);
        let month = 30 * 86_400;
        let mut cheap = pay("pay_s1", P::Captured, Some("order_s1"), true, &sn, 0);
        cheap.amount = 100;
        let mut charged = ev("subscription.charged", 11);
        charged.subscription = Some(sub(S::Active, 1, 11, month));
        charged.subscription_notes = sn.clone();
        charged.payment = Some(cheap);
        let mut activated = ev("subscription.activated", 11);
        activated.subscription = Some(sub(S::Active, 1, 11, month));
        activated.subscription_notes = sn.clone();
        let mut store = world();
        // The order we created asked for the tier's price; the payment is in another currency.
        store
            .insert_order(&NewOrder {
                razorpay_order_id: "order_o1".into(),
                kind: OrderKind::OneTime,
                user_id: Some(2),
                creator_id: Some(1),
                tier_id: Some(7),
                reference_id: None,
                amount: 50_000,
                currency: "INR".into(),
                name: String::new(),
                message: String::new(),
                notes: serde_json::json!({}),
            })
            .unwrap();
        let mut usd = pay("pay_o1", P::Captured, Some("order_o1"), false, &on, 0);
        usd.currency = "USD".into();
        let mut paid = ev("payment.captured", 20);
        paid.payment = Some(usd);
        let events = vec![activated, charged, paid];
        let seeded = store.clone();
        let s = converges(|| seeded.clone(), &events);
        let v = s.view();
        assert!(
            v.contains("Recurring u2 t7 Cancelled void=Some(AmountMismatch)"),
            "{v}"
        );
        assert!(v.contains("order_o1 OneTime rejected 50000"), "{v}");
        assert_eq!(
            s.flags["pay_s1"].mismatch.describe(),
            "paid 100 INR where 50000 INR was asked"
        );
        assert_eq!(
            s.flags["pay_o1"].mismatch.describe(),
            "paid 50000 USD where 50000 INR was asked"
        );
        assert!(s.refunds.is_empty(), "an operator decides: {v}");
        // In one batch, the subscription that activated it does not count as a start.
        let mut fresh = world();
        let applied = apply_effects(&mut fresh, &plan_event(&events[1]), t(60)).unwrap();
        assert!(applied.iter().all(|a| a.started.is_none()), "{applied:?}");
        assert_eq!(applied.iter().map(|a| a.alerts.len()).sum::<usize>(), 1);
    }

    #[test]
    fn accepted_payments_are_not_judged_again_when_the_tier_changes() {
        let events = stream();
        let mut store = run(&events);
        let before = store.view();
        let tier = tier7(&mut store);
        tier.is_active = false;
        tier.price = 99_900;
        for e in &events {
            apply_effects(&mut store, &plan_event(e), t(90_000)).unwrap();
        }
        assert_eq!(store.view(), before);
        assert!(store.refunds.is_empty() && store.flags.is_empty());
    }

    #[test]
    fn a_replaced_checkout_that_is_paid_anyway_is_refunded_and_cancelled_once() {
        use MembershipStatus as S;
        use PaymentStatus as P;
        let mut store = world();
        let sn = notes(&[("type", "subscription"), ("userID", "2"), ("tierID", "7")]);
        let tier = store.tiers[&7].clone();
        let m = store
            .insert_recurring(2, &tier.monthly(), "sub_1")
            .unwrap()
            .unwrap();
        // `/subscriptions/create` replaced it after a price change; its cancellation failed.
        store
            .void_membership(m.id, VoidReason::Replaced, t(5))
            .unwrap();
        let mut charged = ev("subscription.charged", 11);
        charged.subscription = Some(sub(S::Active, 1, 11, 30 * 86_400));
        charged.subscription_notes = sn.clone();
        charged.payment = Some(pay("pay_s1", P::Captured, Some("order_s1"), true, &sn, 0));
        for _ in 0..3 {
            let applied = apply_effects(&mut store, &plan_event(&charged), t(60)).unwrap();
            assert!(applied.iter().all(|a| a.started.is_none()), "{applied:?}");
        }
        let v = store.view();
        assert!(v.contains("Cancelled void=Some(Replaced)"), "{v}");
        assert_eq!(store.refunds.len(), 1, "{v}");
        assert_eq!(
            store.refunds["pay_s1"].reason,
            "a newer checkout replaced this one"
        );
        assert_eq!(store.cancels["sub_1"], (m.id, VoidReason::Replaced));
        assert!(!store.memberships[0]
            .m
            .as_ref()
            .unwrap()
            .state
            .has_access(t(100)));
    }
}

/// [`BillingDb`] over a [`MemoryStore`] behind a mutex: each `tx` runs on a copy that replaces
/// the store only when `f` succeeds (a rollback otherwise); announcements are kept in order.
#[derive(Debug, Default)]
pub struct MemoryDb {
    inner: std::sync::Mutex<(MemoryStore, Vec<Announcement>)>,
}

struct MemoryTx<'a> {
    store: &'a mut MemoryStore,
    announced: &'a mut Vec<Announcement>,
}

impl BillingTx for MemoryTx<'_> {
    fn store(&mut self) -> &mut dyn BillingStore {
        self.store
    }
    fn announce(&mut self, a: &Announcement) -> Result<(), RepoError> {
        self.announced.push(a.clone());
        Ok(())
    }
    fn ledger_policy(&self) -> crate::ledger::Policy {
        self.store.ledger_policy
    }
}

impl MemoryDb {
    pub fn new(store: MemoryStore) -> Self {
        Self {
            inner: std::sync::Mutex::new((store, Vec::new())),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (MemoryStore, Vec<Announcement>)> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reads or changes the committed store directly (test set-up and assertions).
    pub fn with<T>(&self, f: impl FnOnce(&mut MemoryStore) -> T) -> T {
        f(&mut self.lock().0)
    }

    /// Every committed announcement so far.
    pub fn announcements(&self) -> Vec<Announcement> {
        self.lock().1.clone()
    }
}

impl BillingDb for MemoryDb {
    async fn tx<T, F>(&self, f: F) -> Result<T, crate::BillingError>
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn BillingTx) -> Result<T, crate::BillingError> + Send + 'static,
    {
        let mut g = self.lock();
        let mut store = g.0.clone();
        let mut announced = Vec::new();
        let out = f(&mut MemoryTx {
            store: &mut store,
            announced: &mut announced,
        })?;
        g.0 = store;
        g.1.extend(announced);
        Ok(out)
    }
}

// ---------------------------------------------------------------------------------------------
// Payouts

impl crate::payouts::PayoutStore for MemoryStore {
    fn payout_account(
        &mut self,
        creator_id: i64,
    ) -> Result<Option<crate::payouts::PayoutAccount>, RepoError> {
        Ok(self.payout_accounts.get(&creator_id).cloned())
    }

    fn payout_account_by_linked(
        &mut self,
        account_id: &str,
    ) -> Result<Option<crate::payouts::PayoutAccount>, RepoError> {
        Ok(self
            .payout_accounts
            .values()
            .find(|a| a.account_id.as_deref() == Some(account_id))
            .cloned())
    }

    fn save_payout_account(
        &mut self,
        account: &crate::payouts::PayoutAccount,
    ) -> Result<(), RepoError> {
        self.payout_accounts
            .insert(account.creator_id, account.clone());
        Ok(())
    }

    fn payment_transfers(
        &mut self,
        payment_id: &str,
    ) -> Result<Vec<crate::payouts::TransferRecord>, RepoError> {
        Ok(self
            .transfers
            .iter()
            .filter(|t| t.payment_id == payment_id)
            .cloned()
            .collect())
    }

    fn insert_transfer(
        &mut self,
        t: &crate::payouts::NewTransfer,
    ) -> Result<crate::payouts::TransferRecord, RepoError> {
        let clash = self.transfers.iter().any(|x| {
            x.payment_id == t.payment_id && (x.attempt == t.attempt || x.status.is_live())
        });
        if clash {
            return Err(RepoError::Conflict {
                constraint: "payout_transfers_one_live".into(),
            });
        }
        let row = crate::payouts::TransferRecord {
            id: self.transfers.len() as i64 + 1,
            payment_id: t.payment_id.clone(),
            creator_id: t.creator_id,
            attempt: t.attempt,
            account_id: t.account_id.clone(),
            amount: t.amount,
            currency: t.currency.clone(),
            on_hold: t.on_hold,
            status: crate::payouts::TransferStatus::Created,
            transfer_id: None,
            error: None,
            reversal_id: None,
            settlement_id: None,
            utr: None,
            created_at: self.clock,
        };
        self.transfers.push(row.clone());
        Ok(row)
    }

    fn save_transfer(&mut self, t: &crate::payouts::TransferRecord) -> Result<(), RepoError> {
        let row = self
            .transfers
            .iter_mut()
            .find(|x| x.id == t.id)
            .ok_or(RepoError::NotFound)?;
        *row = t.clone();
        Ok(())
    }

    fn transfer(&mut self, id: i64) -> Result<Option<crate::payouts::TransferRecord>, RepoError> {
        Ok(self.transfers.iter().find(|t| t.id == id).cloned())
    }

    fn transfer_by_gateway_id(
        &mut self,
        transfer_id: &str,
    ) -> Result<Option<crate::payouts::TransferRecord>, RepoError> {
        Ok(self
            .transfers
            .iter()
            .find(|t| t.transfer_id.as_deref() == Some(transfer_id))
            .cloned())
    }

    fn creator_transfers(
        &mut self,
        creator_id: i64,
        offset: i64,
        limit: i64,
    ) -> Result<(Vec<crate::payouts::TransferRecord>, i64), RepoError> {
        let all: Vec<_> = self
            .transfers
            .iter()
            .rev()
            .filter(|t| t.creator_id == creator_id)
            .cloned()
            .collect();
        let n = all.len() as i64;
        Ok((
            all.into_iter()
                .skip(offset.max(0) as usize)
                .take(limit.max(0) as usize)
                .collect(),
            n,
        ))
    }

    fn recent_transfers(
        &mut self,
        creator_id: Option<i64>,
        limit: i64,
    ) -> Result<Vec<crate::payouts::TransferRecord>, RepoError> {
        Ok(self
            .transfers
            .iter()
            .rev()
            .filter(|t| creator_id.is_none_or(|c| t.creator_id == c))
            .take(limit.max(0) as usize)
            .cloned()
            .collect())
    }

    fn transferable_payments(&mut self, limit: i64) -> Result<Vec<String>, RepoError> {
        let active: std::collections::BTreeSet<i64> = self
            .payout_accounts
            .values()
            .filter(|a| a.status == crate::ledger::PayoutStatus::Active)
            .map(|a| a.creator_id)
            .collect();
        Ok(self
            .ledger_accounts
            .values()
            .filter(|a| active.contains(&a.creator_id))
            .filter(|a| crate::payouts::transferable(a).is_some())
            .filter(|a| {
                !self
                    .transfers
                    .iter()
                    .any(|t| t.payment_id == a.payment_id && t.status.is_live())
            })
            .map(|a| a.payment_id.clone())
            .take(limit.max(0) as usize)
            .collect())
    }

    fn queue_payout_job(
        &mut self,
        kind: &str,
        payload: &serde_json::Value,
        delay_secs: i64,
    ) -> Result<(), RepoError> {
        if !self
            .payout_jobs
            .iter()
            .any(|(k, p, _)| k == kind && p == payload)
        {
            self.payout_jobs
                .push((kind.to_owned(), payload.clone(), delay_secs));
        }
        Ok(())
    }
}

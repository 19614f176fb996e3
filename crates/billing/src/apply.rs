//! The billing service: applies [`Effect`]s (from webhooks, Checkout callbacks, fetches and
//! reconciliation) to a [`BillingStore`]. Every function is idempotent and, together with the
//! merge rules, order-independent: any interleaving of the same facts gives one final state.
use crate::entitlement::ONE_TIME_DAYS;
use crate::events::{Effect, PaymentSnapshot, PaymentStatus, Purpose};
use crate::integrity::{self, Asked, VoidReason};
use crate::notes::{CheckoutNotes, NoteFields, NotesOn};
use crate::ports::{
    BillingStore, ChangeClaim, Membership, NewOrder, OrderKind, OrderStatus, PaymentFlag,
    PaymentLinks, RefundRequest,
};
use crate::state::{merge_subscription, MembershipState, SubscriptionSnapshot};
use oasis_kernel::{RepoError, Timestamp};
use std::collections::BTreeMap;

/// What applying one effect did: a line for the inbox's `outcome`, the (fan, creator) pair
/// when it just gave the fan access (the app makes the fan follow the creator), and lines an
/// operator must see (the app logs them at error level).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Applied {
    pub outcome: String,
    pub started: Option<(i64, i64)>,
    /// The (fan, creator) pair whose membership this effect voided: a `started` of the same
    /// pair earlier in the same batch is withdrawn ([`apply_effects`]).
    pub voided: Option<(i64, i64)>,
    pub alerts: Vec<String>,
    /// An accepted payment of a commission order (announced in the same transaction).
    pub commission_paid: Option<crate::ports::CommissionPaid>,
    /// A scheduled change of tier this effect completed (the membership moved; announced).
    pub changed: Option<i64>,
}

impl From<String> for Applied {
    fn from(outcome: String) -> Self {
        Applied {
            outcome,
            ..Default::default()
        }
    }
}

/// A payment that moved money to us (or did and was refunded since): the ones judged and, for
/// stale checkouts, refunded.
fn took_money(status: PaymentStatus) -> bool {
    matches!(
        status,
        PaymentStatus::Authorized | PaymentStatus::Captured | PaymentStatus::Refunded
    )
}

/// A recurring membership that has never been paid (a pending checkout) at `now`.
fn never_paid(m: &Membership, now: Timestamp) -> bool {
    m.state.paid_count == 0 && !m.state.has_access(now) && !m.state.status.is_terminal()
}

/// Merges a subscription snapshot into its membership, creating the membership from the notes
/// (`userID` — an id or, in the seed's payloads, a username — and `tierID`) when we never saw it.
pub fn apply_subscription(
    store: &mut (impl BillingStore + ?Sized),
    snap: &SubscriptionSnapshot,
    notes: &BTreeMap<String, String>,
    now: Timestamp,
) -> Result<Applied, RepoError> {
    let mut m = store.lock_membership_by_subscription(&snap.id)?;
    if m.is_none() {
        let fields = NoteFields::read(NotesOn::Subscription, notes);
        let user = match &fields.payer {
            Some(u) => store.resolve_user(&u.lookup_key())?,
            None => None,
        };
        let tier = match fields.tier_id {
            Some(t) => store.find_tier(t)?,
            None => None,
        };
        let offer = match (&tier, fields.period) {
            (Some(t), Some(p)) => t.offer(p),
            _ => None,
        };
        let (Some(user_id), Some(offer)) = (user, offer) else {
            return Ok(format!(
                "ignored: subscription {} of unknown user, tier or period",
                snap.id
            )
            .into());
        };
        m = store.insert_recurring(user_id, &offer, &snap.id)?;
    }
    let Some(m) = m else {
        return Ok(format!(
            "ignored: subscription {} conflicts with another live membership",
            snap.id
        )
        .into());
    };
    let after = merge_subscription(&m.state, snap);
    if after != m.state {
        store.save_membership_state(m.id, &after)?;
    }
    // The first payment of a pending checkout: accepted only while its tier still sells it at
    // its price. Otherwise the membership is voided (no access), its subscription cancelled and
    // its charges refunded (`apply_subscription_payment`).
    let first_payment = never_paid(&m, now) && (after.paid_count > 0 || after.has_access(now));
    if first_payment && m.void_reason.is_none() {
        let tier = store.find_tier(m.tier_id)?;
        let asked = Asked {
            amount: m.amount,
            currency: &m.currency,
            period: m.period,
        };
        if let Some(stale) = integrity::staleness(&asked, tier.as_ref()) {
            store.void_membership(m.id, VoidReason::StaleCheckout, now)?;
            store.request_subscription_cancel(m.id, &snap.id, VoidReason::StaleCheckout)?;
            return Ok(Applied {
                outcome: format!(
                    "membership {} voided: paid after {}; subscription {} to be cancelled and its charges refunded",
                    m.id,
                    stale.describe(),
                    snap.id
                ),
                ..Default::default()
            });
        }
    }
    let started = if !m.state.has_access(now) && after.has_access(now) {
        store
            .find_tier(m.tier_id)?
            .map(|t| (m.user_id, t.creator_id))
    } else {
        None
    };
    Ok(Applied {
        outcome: format!(
            "membership {} {} -> {}",
            m.id,
            m.state.status.as_str(),
            after.status.as_str()
        ),
        started,
        ..Default::default()
    })
}

/// Records a recurring membership's charge (once per payment id), then judges it: a charge
/// that does not match the membership's price is flagged and voids the membership (no access);
/// a charge of a voided stale (or replaced) checkout is refunded, once.
pub fn apply_subscription_payment(
    store: &mut (impl BillingStore + ?Sized),
    subscription_id: &str,
    p: &PaymentSnapshot,
    now: Timestamp,
) -> Result<Applied, RepoError> {
    let m = store.lock_membership_by_subscription(subscription_id)?;
    let tier = match &m {
        Some(m) => store.find_tier(m.tier_id)?,
        None => None,
    };
    let creator = tier.as_ref().map(|t| t.creator_id);
    store.upsert_payment(
        p,
        &PaymentLinks {
            kind: "subscription",
            user_id: m.as_ref().map(|m| m.user_id),
            creator_id: creator,
            membership_id: m.as_ref().map(|m| m.id),
            order_id: None,
            razorpay_subscription_id: Some(subscription_id.to_owned()),
        },
    )?;
    let mut applied: Applied = format!("payment {} recorded ({})", p.id, p.status.as_str()).into();
    let Some(m) = m.filter(|_| took_money(p.status)) else {
        return Ok(applied);
    };
    // Every charge of a subscription is an invoice's (the first one too, when the subscription
    // starts at once). A payment without an invoice is the token authorisation of a
    // subscription that starts later (a replacement, a trial): a small amount Razorpay refunds
    // at once. It is recorded, but it is no charge: never judged against the price.
    if p.invoice_id.is_none() && m.state.paid_count == 0 {
        applied
            .outcome
            .push_str(" (the mandate's authorisation, not a charge)");
        // A trial's authorisation shows the card or UPI ID: one trial per instrument and
        // creator (crate::trials).
        if let (Some(instrument), Some(creator), None) = (&p.instrument, creator, m.void_reason) {
            if store.trial_end(m.id)?.is_some() {
                let holder = store.claim_trial_instrument(creator, instrument, m.id)?;
                if holder != m.id {
                    store.void_membership(m.id, VoidReason::TrialUsed, now)?;
                    store.request_subscription_cancel(
                        m.id,
                        subscription_id,
                        VoidReason::TrialUsed,
                    )?;
                    applied.voided = Some((m.user_id, creator));
                    applied.outcome.push_str(&format!(
                        "; trial refused: its card or UPI ID had a trial with membership {holder}"
                    ));
                }
            }
        }
        return Ok(applied);
    }
    let asked = Asked {
        amount: m.amount,
        currency: &m.currency,
        period: m.period,
    };
    let mut void_reason = m.void_reason;
    // A change of tier explains some charges that differ from the price: an upgrade's prorated
    // difference, and the first renewal at a scheduled downgrade's price.
    let mut mismatch = integrity::mismatch(&asked, p.amount, &p.currency);
    if mismatch.is_some() && void_reason.is_none() {
        match store.claim_change_charge(m.id, &p.id, p.amount, &p.currency)? {
            Some(ChangeClaim::Prorated { change_id }) => {
                mismatch = None;
                applied
                    .outcome
                    .push_str(&format!("; the prorated charge of change {change_id}"));
            }
            Some(ChangeClaim::Moved { change_id }) => {
                mismatch = None;
                applied.changed = Some(change_id);
                applied
                    .outcome
                    .push_str(&format!("; change {change_id} applied at its price"));
            }
            None => {}
        }
    }
    if let Some(mm) = mismatch {
        let flag = PaymentFlag {
            payment_id: p.id.clone(),
            mismatch: mm.clone(),
            user_id: Some(m.user_id),
            creator_id: creator,
            membership_id: Some(m.id),
            order_id: None,
        };
        if store.flag_payment(&flag)? {
            applied.alerts.push(format!(
                "payment {} of subscription {subscription_id} (membership {}) {}: flagged, membership voided",
                p.id,
                m.id,
                mm.describe()
            ));
        }
        if void_reason.is_none() {
            store.void_membership(m.id, VoidReason::AmountMismatch, now)?;
            void_reason = Some(VoidReason::AmountMismatch);
            applied.voided = creator.map(|c| (m.user_id, c));
        }
        applied
            .outcome
            .push_str(&format!("; mismatch: {}", mm.describe()));
    }
    if let Some(reason) = void_reason.filter(|r| r.refunds_payments()) {
        let why = match reason {
            VoidReason::Replaced => "a newer checkout replaced this one".to_owned(),
            _ => integrity::staleness(&asked, tier.as_ref())
                .map(|s| s.describe())
                .unwrap_or_else(|| "the checkout was no longer current".to_owned()),
        };
        store.request_refund(&RefundRequest {
            payment_id: p.id.clone(),
            amount: p.amount,
            currency: p.currency.clone(),
            reason: why,
            user_id: Some(m.user_id),
            creator_id: creator,
            tier_id: Some(m.tier_id),
            membership_id: Some(m.id),
            order_id: None,
        })?;
        // A voided checkout's subscription must not charge again.
        store.request_subscription_cancel(m.id, subscription_id, reason)?;
        applied
            .outcome
            .push_str(&format!("; refund requested ({})", reason.as_str()));
    }
    Ok(applied)
}

/// Records a payment of an order and grants what it paid for. An order unknown locally (created
/// by another deployment, or the seed's fixtures) is created from the notes: `type`
/// `subscription` → one-time tier purchase (`username`/`userID`, `tierID`); `cheer` (`creatorID`,
/// `username`, `name`, `message`); `commission` (`creatorID`, `username`, `commissionID`).
pub fn apply_order_payment(
    store: &mut (impl BillingStore + ?Sized),
    order_id: &str,
    notes_type: Option<&str>,
    p: &PaymentSnapshot,
) -> Result<Applied, RepoError> {
    let mut order = store.lock_order(order_id)?;
    if order.is_none() {
        let n = &p.notes;
        let fields = NoteFields::read(NotesOn::Order, n);
        let user_id = match &fields.payer {
            Some(u) => store.resolve_user(&u.lookup_key())?,
            None => None,
        };
        let creator_from_note = match fields.creator_id {
            Some(c) => store.resolve_user(&c.to_string())?,
            None => None,
        };
        let kind = notes_type.and_then(CheckoutNotes::order_kind_of_type);
        let (kind, tier_id, creator_id, reference_id) = match kind {
            Some(OrderKind::OneTime) => {
                let t = match fields.tier_id {
                    Some(t) => store.find_tier(t)?,
                    None => None,
                };
                (
                    OrderKind::OneTime,
                    t.as_ref().map(|t| t.id),
                    t.map(|t| t.creator_id),
                    None,
                )
            }
            Some(OrderKind::Cheer) => (OrderKind::Cheer, None, creator_from_note, None),
            Some(OrderKind::Commission) => (
                OrderKind::Commission,
                None,
                creator_from_note,
                fields.commission_id,
            ),
            None => {
                return Ok(format!(
                    "ignored: payment {} of unknown order {order_id} (notes.type {notes_type:?})",
                    p.id
                )
                .into())
            }
        };
        order = Some(
            store.insert_order(&NewOrder {
                razorpay_order_id: order_id.to_owned(),
                kind,
                user_id,
                creator_id,
                tier_id,
                reference_id,
                amount: p.amount,
                currency: p.currency.clone(),
                name: fields.name.clone(),
                message: fields
                    .message
                    .chars()
                    .take(crate::checkout::MAX_MESSAGE_CHARS)
                    .collect(),
                notes: serde_json::to_value(n).unwrap_or_default(),
            })?,
        );
    }
    let Some(order) = order else {
        return Ok(String::from("ignored").into());
    };
    let links = PaymentLinks {
        kind: order.kind.as_str(),
        user_id: order.user_id,
        creator_id: order.creator_id,
        membership_id: None,
        order_id: Some(order.id),
        razorpay_subscription_id: None,
    };
    store.upsert_payment(p, &links)?;
    // Decide on the merged state of the payment, not on this (possibly stale) snapshot: a
    // refund seen before the capture must still win.
    let stored = store.lock_payment(&p.id)?.ok_or(RepoError::NotFound)?;
    let refunded = stored.status == PaymentStatus::Refunded
        || (stored.amount > 0 && stored.amount_refunded >= stored.amount);
    let paid = refunded || stored.status.is_paid();
    if order.status == OrderStatus::Rejected {
        // Refused once, refused forever: record the payment's progress, grant nothing.
        return Ok(format!(
            "payment {} of rejected {} order {} recorded ({})",
            p.id,
            order.kind.as_str(),
            order.razorpay_order_id,
            stored.status.as_str()
        )
        .into());
    }
    if paid && order.status == OrderStatus::Created {
        // The order's first payment: does it match the order, and does the tier still sell it?
        let tier = match (order.kind, order.tier_id) {
            (OrderKind::OneTime, Some(t)) => store.find_tier(t)?,
            _ => None,
        };
        let asked = Asked {
            amount: order.amount,
            currency: &order.currency,
            period: crate::BillingPeriod::Monthly,
        };
        let verdict = integrity::judge(&asked, order.kind == OrderKind::OneTime, tier.as_ref(), p);
        if !verdict.grants() {
            return reject_order_payment(store, &order, p, tier.map(|t| t.id), verdict);
        }
    }
    let mut started = None;
    let mut commission_paid = None;
    if paid {
        let was_unpaid = order.status == OrderStatus::Created;
        if order.kind == OrderKind::Commission && !refunded {
            commission_paid = Some(crate::ports::CommissionPaid {
                order_id: order.id,
                razorpay_order_id: order.razorpay_order_id.clone(),
                payment_id: p.id.clone(),
                amount: stored.amount,
                currency: p.currency.clone(),
                paid_at: p.created_at,
            });
        }
        store.mark_order_paid(order.id, &p.id, p.created_at)?;
        if let (OrderKind::OneTime, Some(user_id), Some(tier_id)) =
            (order.kind, order.user_id, order.tier_id)
        {
            let end = p.created_at + chrono::Duration::days(ONE_TIME_DAYS);
            let membership_id =
                store.insert_one_time_membership(&order, user_id, tier_id, p.created_at, end)?;
            store.upsert_payment(
                p,
                &PaymentLinks {
                    membership_id: Some(membership_id),
                    ..links.clone()
                },
            )?;
            if was_unpaid && !refunded {
                started = order.creator_id.map(|c| (user_id, c));
            }
        }
        if refunded {
            store.revoke_order(order.id, p.created_at)?;
        }
    }
    Ok(Applied {
        outcome: format!(
            "payment {} of {} order {} recorded ({})",
            p.id,
            order.kind.as_str(),
            order.razorpay_order_id,
            stored.status.as_str()
        ),
        started,
        commission_paid,
        ..Default::default()
    })
}

/// Refuses an order's first payment: the order becomes `rejected` (it grants nothing, ever); a
/// mismatch is flagged for an operator, a stale checkout's payment refunded (once).
fn reject_order_payment(
    store: &mut (impl BillingStore + ?Sized),
    order: &crate::ports::Order,
    p: &PaymentSnapshot,
    tier_id: Option<i64>,
    verdict: integrity::Verdict,
) -> Result<Applied, RepoError> {
    store.reject_order(order.id, &p.id)?;
    let mut applied: Applied = format!(
        "payment {} of {} order {} rejected",
        p.id,
        order.kind.as_str(),
        order.razorpay_order_id
    )
    .into();
    if let Some(mm) = verdict.mismatch {
        let flag = PaymentFlag {
            payment_id: p.id.clone(),
            mismatch: mm.clone(),
            user_id: order.user_id,
            creator_id: order.creator_id,
            membership_id: None,
            order_id: Some(order.id),
        };
        if store.flag_payment(&flag)? {
            applied.alerts.push(format!(
                "payment {} of {} order {} {}: flagged, nothing granted",
                p.id,
                order.kind.as_str(),
                order.razorpay_order_id,
                mm.describe()
            ));
        }
        applied
            .outcome
            .push_str(&format!("; mismatch: {}", mm.describe()));
    }
    if let Some(stale) = verdict.stale {
        store.request_refund(&RefundRequest {
            payment_id: p.id.clone(),
            amount: p.amount,
            currency: p.currency.clone(),
            reason: stale.describe(),
            user_id: order.user_id,
            creator_id: order.creator_id,
            tier_id: tier_id.or(order.tier_id),
            membership_id: None,
            order_id: Some(order.id),
        })?;
        applied
            .outcome
            .push_str(&format!("; {}: refund requested", stale.describe()));
    }
    Ok(applied)
}

/// A processed refund of a payment outside our orders (a subscription charge): the payment
/// becomes `refunded` once fully refunded; recorded first when we never saw it (the charge event
/// then fills its links). What it bought is withdrawn when it belongs to an order.
pub fn apply_refund(
    store: &mut (impl BillingStore + ?Sized),
    payment_id: &str,
    amount: i64,
    payment: Option<&PaymentSnapshot>,
    now: Timestamp,
) -> Result<Applied, RepoError> {
    let Some(p) = store.lock_payment(payment_id)? else {
        if let Some(snap) = payment {
            store.upsert_payment(
                snap,
                &PaymentLinks {
                    kind: "subscription",
                    ..Default::default()
                },
            )?;
            return Ok(format!("refund of {payment_id}: recorded the refunded payment").into());
        }
        return Ok(format!("ignored: refund of unknown payment {payment_id}").into());
    };
    let refunded = p.amount_refunded.max(amount.min(p.amount));
    let full = refunded >= p.amount;
    store.set_payment_refunded(payment_id, refunded, full)?;
    if full {
        if let Some(order_id) = p.order_id {
            store.revoke_order(order_id, now)?;
        }
    }
    Ok(format!(
        "refund of {payment_id}: {refunded} refunded{}",
        if full { " (full)" } else { "" }
    )
    .into())
}

/// Applies planned effects in order (call inside one transaction).
pub fn apply_effects(
    store: &mut (impl BillingStore + ?Sized),
    effects: &[Effect],
    now: Timestamp,
) -> Result<Vec<Applied>, RepoError> {
    let mut out = Vec::new();
    for fx in effects {
        out.push(match fx {
            Effect::Subscription { snapshot, notes } => {
                apply_subscription(store, snapshot, notes, now)?
            }
            Effect::Payment { payment, purpose } => match purpose {
                Purpose::Subscription { subscription_id } => {
                    apply_subscription_payment(store, subscription_id, payment, now)?
                }
                Purpose::Order {
                    order_id,
                    notes_type,
                } => apply_order_payment(store, order_id, notes_type.as_deref(), payment)?,
                Purpose::Unlinked => String::from("ignored: unlinked payment").into(),
            },
            Effect::Refund {
                payment_id,
                amount,
                payment,
            } => apply_refund(store, payment_id, *amount, payment.as_ref(), now)?,
            Effect::Ignore { reason } => format!("ignored: {reason}").into(),
        });
    }
    // A membership voided later in the batch (a mismatched charge after the subscription that
    // activated it) never started.
    let voided: Vec<(i64, i64)> = out.iter().filter_map(|a| a.voided).collect();
    for a in &mut out {
        if a.started.is_some_and(|s| voided.contains(&s)) {
            a.started = None;
        }
    }
    Ok(out)
}

/// A fresh recurring membership's state (for stores creating one).
pub fn new_recurring_state() -> MembershipState {
    MembershipState::new_recurring()
}

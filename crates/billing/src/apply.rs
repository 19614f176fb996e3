//! The billing service: applies [`Effect`]s (from webhooks, Checkout callbacks, fetches and
//! reconciliation) to a [`BillingStore`]. Every function is idempotent and, together with the
//! merge rules, order-independent: any interleaving of the same facts gives one final state.
use crate::entitlement::ONE_TIME_DAYS;
use crate::events::{Effect, PaymentSnapshot, PaymentStatus, Purpose};
use crate::ports::{BillingStore, NewOrder, OrderKind, PaymentLinks};
use crate::state::{merge_subscription, MembershipState, SubscriptionSnapshot};
use oasis_kernel::{RepoError, Timestamp};
use std::collections::BTreeMap;

/// What applying one effect did: a line for the inbox's `outcome`, and the (fan, creator)
/// pair when it just gave the fan access (the app makes the fan follow the creator).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub outcome: String,
    pub started: Option<(i64, i64)>,
}

impl From<String> for Applied {
    fn from(outcome: String) -> Self {
        Applied {
            outcome,
            started: None,
        }
    }
}

/// Merges a subscription snapshot into its membership, creating the membership from the notes
/// (`userID` — an id or, in the seed's payloads, a username — and `tierID`) when we never saw it.
pub fn apply_subscription(
    store: &mut impl BillingStore,
    snap: &SubscriptionSnapshot,
    notes: &BTreeMap<String, String>,
    now: Timestamp,
) -> Result<Applied, RepoError> {
    let mut m = store.lock_membership_by_subscription(&snap.id)?;
    if m.is_none() {
        let user = match notes.get("userID").or_else(|| notes.get("username")) {
            Some(u) => store.resolve_user(u)?,
            None => None,
        };
        let tier = match notes
            .get("tierID")
            .and_then(|t| t.trim().parse::<i64>().ok())
        {
            Some(t) => store.find_tier(t)?,
            None => None,
        };
        let (Some(user_id), Some(tier)) = (user, tier) else {
            return Ok(format!("ignored: subscription {} of unknown user or tier", snap.id).into());
        };
        m = store.insert_recurring(user_id, &tier, &snap.id)?;
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
    })
}

/// Records a recurring membership's charge (once per payment id).
pub fn apply_subscription_payment(
    store: &mut impl BillingStore,
    subscription_id: &str,
    p: &PaymentSnapshot,
) -> Result<Applied, RepoError> {
    let m = store.lock_membership_by_subscription(subscription_id)?;
    let creator = match &m {
        Some(m) => store.find_tier(m.tier_id)?.map(|t| t.creator_id),
        None => None,
    };
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
    Ok(format!("payment {} recorded ({})", p.id, p.status.as_str()).into())
}

/// Records a payment of an order and grants what it paid for. An order unknown locally (created
/// by another deployment, or the seed's fixtures) is created from the notes: `type`
/// `subscription` → one-time tier purchase (`username`/`userID`, `tierID`); `cheer` (`creatorID`,
/// `username`, `name`, `message`); `commission` (`creatorID`, `username`, `commissionID`).
pub fn apply_order_payment(
    store: &mut impl BillingStore,
    order_id: &str,
    notes_type: Option<&str>,
    p: &PaymentSnapshot,
) -> Result<Applied, RepoError> {
    let mut order = store.lock_order(order_id)?;
    if order.is_none() {
        let n = &p.notes;
        let user_id = match n.get("username").or_else(|| n.get("userID")) {
            Some(u) => store.resolve_user(u)?,
            None => None,
        };
        let num = |k: &str| n.get(k).and_then(|v| v.trim().parse::<i64>().ok());
        let creator_from_note = match num("creatorID") {
            Some(c) => store.resolve_user(&c.to_string())?,
            None => None,
        };
        let (kind, tier_id, creator_id, reference_id) = match notes_type {
            Some("subscription") => {
                let t = match num("tierID") {
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
            Some("cheer") => (OrderKind::Cheer, None, creator_from_note, None),
            Some("commission") => (
                OrderKind::Commission,
                None,
                creator_from_note,
                num("commissionID"),
            ),
            other => {
                return Ok(format!(
                    "ignored: payment {} of unknown order {order_id} (notes.type {other:?})",
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
                name: n.get("name").cloned().unwrap_or_default(),
                message: n
                    .get("message")
                    .map(|m| m.chars().take(crate::checkout::MAX_MESSAGE_CHARS).collect())
                    .unwrap_or_default(),
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
    let mut started = None;
    if paid {
        let was_unpaid = order.status == "created";
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
    })
}

/// A processed refund of a payment outside our orders (a subscription charge): the payment
/// becomes `refunded` once fully refunded; recorded first when we never saw it (the charge event
/// then fills its links). What it bought is withdrawn when it belongs to an order.
pub fn apply_refund(
    store: &mut impl BillingStore,
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
    store: &mut impl BillingStore,
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
                    apply_subscription_payment(store, subscription_id, payment)?
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
    Ok(out)
}

/// A fresh recurring membership's state (for stores creating one).
pub fn new_recurring_state() -> MembershipState {
    MembershipState::new_recurring()
}

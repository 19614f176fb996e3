//! The behaviour every [`BillingStore`] must have, as one suite run against the in-memory fake
//! ([`crate::memory::MemoryStore`], unit test below) and the PostgreSQL adapter
//! (`oasis_db::billing::PgBilling`, `tests/api/billing.rs`), so the two cannot drift.
//!
//! Run it on a store without billing rows, given a [`World`] made beforehand (a creator, a fan
//! and two of the creator's active tiers, priced 50000 INR and 20000 INR). Each check panics
//! with a message on failure. `lock_*` methods are plain reads here: in memory a lock is a
//! no-op, and in PostgreSQL it lasts for the caller's transaction.
use crate::entitlement::{MembershipKind, MembershipStatus};
use crate::events::{PaymentSnapshot, PaymentStatus};
use crate::integrity::{Mismatch, VoidReason};
use crate::ports::*;
use crate::state::MembershipState;
use chrono::Duration;
use oasis_kernel::Timestamp;
use std::collections::{BTreeMap, HashSet};

/// What the suite needs to exist already.
#[derive(Debug, Clone)]
pub struct World<'a> {
    pub creator: i64,
    pub fan: i64,
    /// The fan's username, in any case.
    pub fan_username: &'a str,
    /// Active, 50000 INR, of `creator`.
    pub tier: i64,
    /// Active, 20000 INR, of `creator`.
    pub other_tier: i64,
    /// An id no user and no tier has.
    pub missing: i64,
}

fn payment(id: &str, status: PaymentStatus, refunded: i64, at: Timestamp) -> PaymentSnapshot {
    PaymentSnapshot {
        id: id.into(),
        amount: 50_000,
        currency: "INR".into(),
        status,
        order_id: None,
        invoice_id: None,
        amount_refunded: refunded,
        notes: BTreeMap::new(),
        email: None,
        contact: None,
        created_at: at,
        fee: None,
        instrument: None,
    }
}

fn new_order(id: &str, kind: OrderKind, w: &World, tier: Option<i64>) -> NewOrder {
    NewOrder {
        razorpay_order_id: id.into(),
        kind,
        user_id: Some(w.fan),
        creator_id: Some(w.creator),
        tier_id: tier,
        reference_id: None,
        amount: 50_000,
        currency: "INR".into(),
        name: "Fan".into(),
        message: "hi".into(),
        notes: serde_json::json!({ "type": "cheer" }),
    }
}

/// Runs every check; `now` is a whole second (PostgreSQL keeps microseconds).
pub fn run_all(store: &mut (impl BillingStore + ?Sized), w: &World, now: Timestamp) {
    users_and_tiers(store, w);
    recurring_memberships(store, w, now);
    orders_and_one_time_memberships(store, w, now);
    payments(store, w, now);
    records_once(store, w);
    trials(store, w, now);
    // Last: its final check violates a unique index (PostgreSQL aborts the transaction).
    payouts(store, w, now);
}

/// One trial per card and UPI ID ([`crate::trials`]): the first claim of (creator, instrument)
/// stands.
fn trials(store: &mut (impl BillingStore + ?Sized), w: &World, now: Timestamp) {
    let tier = store.find_tier(w.other_tier).unwrap().unwrap();
    let m = store
        .insert_recurring(w.fan, &tier.monthly(), "sub_t1")
        .unwrap()
        .expect("inserted");
    assert_eq!(store.trial_end(m.id).unwrap(), None);
    // The fan has had memberships of the creator: no trial, and none recorded.
    let end = now + Duration::days(7);
    assert!(!store.start_trial(m.id, w.fan, w.creator, end).unwrap());
    assert_eq!(store.trial_end(m.id).unwrap(), None);
    assert_eq!(store.trial_end(w.missing).unwrap(), None);

    let key = crate::trials::InstrumentKey::new(b"contract suite");
    let card = key.of_payment(Some("card"), Some("card_T1"), None).unwrap();
    let upi = key
        .of_payment(Some("upi"), None, Some("fan@okaxis"))
        .unwrap();
    let c1 = store
        .lock_membership_by_subscription("sub_c1")
        .unwrap()
        .unwrap();
    assert_eq!(
        store
            .claim_trial_instrument(w.creator, &card, m.id)
            .unwrap(),
        m.id
    );
    assert_eq!(
        store
            .claim_trial_instrument(w.creator, &card, m.id)
            .unwrap(),
        m.id,
        "a repeat of the holder's claim"
    );
    assert_eq!(
        store
            .claim_trial_instrument(w.creator, &card, c1.id)
            .unwrap(),
        m.id,
        "the first claim stands"
    );
    assert_eq!(
        store
            .claim_trial_instrument(w.creator, &upi, c1.id)
            .unwrap(),
        c1.id
    );
    // Per creator: the fan (a user) as another creator's claim of the same card.
    assert_eq!(
        store.claim_trial_instrument(w.fan, &card, c1.id).unwrap(),
        c1.id
    );
}

/// Linked accounts and transfer attempts ([`crate::payouts::PayoutStore`]).
fn payouts(store: &mut (impl BillingStore + ?Sized), w: &World, now: Timestamp) {
    use crate::ledger::PayoutStatus;
    use crate::payouts::{NewTransfer, PayoutAccount, TransferStatus};
    assert_eq!(store.payout_account(w.creator).unwrap(), None);
    let mut a = PayoutAccount::new(w.creator);
    a.account_id = Some("acc_po1".into());
    store.save_payout_account(&a).unwrap();
    a.product_id = Some("acc_prd_po1".into());
    a.status = PayoutStatus::Active;
    store.save_payout_account(&a).unwrap();
    assert_eq!(store.payout_account(w.creator).unwrap(), Some(a.clone()));
    assert_eq!(
        store.payout_account_by_linked("acc_po1").unwrap(),
        Some(a.clone())
    );
    assert_eq!(store.payout_account_by_linked("acc_none").unwrap(), None);

    let links = PaymentLinks {
        kind: "cheer",
        user_id: Some(w.fan),
        creator_id: Some(w.creator),
        membership_id: None,
        order_id: None,
        razorpay_subscription_id: None,
    };
    store
        .upsert_payment(&payment("pay_po1", PaymentStatus::Captured, 0, now), &links)
        .unwrap();
    let intent = |attempt| NewTransfer {
        payment_id: "pay_po1".into(),
        creator_id: w.creator,
        attempt,
        account_id: "acc_po1".into(),
        amount: 48_820,
        currency: "INR".into(),
        on_hold: true,
    };
    assert!(store.payment_transfers("pay_po1").unwrap().is_empty());
    let mut first = store.insert_transfer(&intent(1)).unwrap();
    assert_eq!(
        (
            first.status,
            first.transfer_id.as_deref(),
            first.on_hold,
            first.amount
        ),
        (TransferStatus::Created, None, true, 48_820)
    );
    assert_eq!(store.transfer(first.id).unwrap(), Some(first.clone()));
    first.transfer_id = Some("trf_po1".into());
    first.status = TransferStatus::Failed;
    first.error = Some("bank rejected".into());
    store.save_transfer(&first).unwrap();
    assert_eq!(
        store.transfer_by_gateway_id("trf_po1").unwrap(),
        Some(first.clone())
    );
    assert_eq!(store.transfer_by_gateway_id("trf_none").unwrap(), None);
    // A failed attempt holds nothing: the next one is recorded beside it.
    let mut second = store.insert_transfer(&intent(2)).unwrap();
    second.status = TransferStatus::Settled;
    second.transfer_id = Some("trf_po2".into());
    second.on_hold = false;
    second.settlement_id = Some("setl_po1".into());
    second.utr = Some("RZRP000000000001".into());
    store.save_transfer(&second).unwrap();
    let all = store.payment_transfers("pay_po1").unwrap();
    assert_eq!(
        all.iter().map(|t| t.attempt).collect::<Vec<_>>(),
        vec![1, 2],
        "oldest first"
    );
    assert_eq!(all[1], second);
    let (page, count) = store.creator_transfers(w.creator, 0, 1).unwrap();
    assert_eq!((page.len(), count), (1, 2));
    assert_eq!(page[0].id, second.id, "newest first");
    let (page, _) = store.creator_transfers(w.creator, 1, 10).unwrap();
    assert_eq!(page[0].id, first.id);
    assert_eq!(store.creator_transfers(w.fan, 0, 10).unwrap(), (vec![], 0));
    let recent = store.recent_transfers(None, 1).unwrap();
    assert_eq!(recent, vec![second.clone()], "newest first, limited");
    assert_eq!(
        store.recent_transfers(Some(w.creator), 10).unwrap().len(),
        2
    );
    assert!(store.recent_transfers(Some(w.fan), 10).unwrap().is_empty());
    assert!(
        store.transferable_payments(10).unwrap().is_empty(),
        "no ledger account waits"
    );
    let job = serde_json::json!({ "payment_id": "pay_po1" });
    store
        .queue_payout_job(crate::payouts::JOB_TRANSFER, &job, 60)
        .unwrap();
    store
        .queue_payout_job(crate::payouts::JOB_TRANSFER, &job, 60)
        .unwrap();
    // At most one live transfer per payment.
    match store.insert_transfer(&intent(3)) {
        Err(oasis_kernel::RepoError::Conflict { constraint }) => {
            assert_eq!(constraint, "payout_transfers_one_live")
        }
        other => panic!("a second live transfer was recorded: {other:?}"),
    }
}

fn users_and_tiers(store: &mut (impl BillingStore + ?Sized), w: &World) {
    let by_id = w.fan.to_string();
    assert_eq!(store.resolve_user(&by_id).unwrap(), Some(w.fan), "by id");
    assert_eq!(
        store.resolve_user(&format!(" {by_id} ")).unwrap(),
        Some(w.fan),
        "by id, trimmed"
    );
    assert_eq!(
        store.resolve_user(&w.fan_username.to_uppercase()).unwrap(),
        Some(w.fan),
        "by username, case-insensitive"
    );
    assert_eq!(store.resolve_user(&w.missing.to_string()).unwrap(), None);
    assert_eq!(store.resolve_user("nobody_at_all").unwrap(), None);
    assert_eq!(store.resolve_user("").unwrap(), None);

    let t = store.find_tier(w.tier).unwrap().expect("the tier");
    assert_eq!(
        t,
        TierRef {
            id: w.tier,
            creator_id: w.creator,
            price: 50_000,
            annual_price: None,
            currency: "INR".into(),
            is_active: true,
        }
    );
    assert_eq!(store.find_tier(w.missing).unwrap(), None);
}

fn recurring_memberships(store: &mut (impl BillingStore + ?Sized), w: &World, now: Timestamp) {
    let tier = store.find_tier(w.tier).unwrap().unwrap();
    assert_eq!(
        store.lock_membership_by_subscription("sub_c1").unwrap(),
        None
    );

    // Inserted once per subscription, as a fresh recurring membership at the tier's price.
    let m = store
        .insert_recurring(w.fan, &tier.monthly(), "sub_c1")
        .unwrap()
        .expect("inserted");
    assert_eq!((m.user_id, m.tier_id), (w.fan, w.tier));
    assert_eq!((m.amount, m.currency.as_str()), (50_000, "INR"));
    assert_eq!(m.state, MembershipState::new_recurring());
    assert_eq!(m.void_reason, None);
    let again = store
        .insert_recurring(w.fan, &tier.monthly(), "sub_c1")
        .unwrap();
    assert_eq!(
        again,
        Some(m.clone()),
        "a repeat returns the same membership"
    );
    assert_eq!(
        store.lock_membership_by_subscription("sub_c1").unwrap(),
        Some(m.clone())
    );

    // One live recurring membership per user and tier.
    assert_eq!(
        store
            .insert_recurring(w.fan, &tier.monthly(), "sub_c2")
            .unwrap(),
        None,
        "a second live subscription of the same tier is refused"
    );
    assert_eq!(
        store.lock_membership_by_subscription("sub_c2").unwrap(),
        None
    );

    // The state is saved whole (the kind never changes).
    let start = now - Duration::days(1);
    let state = MembershipState {
        kind: MembershipKind::Recurring,
        status: MembershipStatus::Active,
        current_start: Some(start),
        current_end: Some(start + Duration::days(30)),
        cancel_at_period_end: true,
        ended_at: None,
        paid_count: 1,
        state_at: Some(now),
    };
    store.save_membership_state(m.id, &state).unwrap();
    let saved = store
        .lock_membership_by_subscription("sub_c1")
        .unwrap()
        .unwrap();
    assert_eq!(saved.state, state);
    assert!(saved.state.has_access(now));

    // Every live status blocks a second one; an ended one does not.
    for status in MembershipStatus::ALL {
        store
            .save_membership_state(
                m.id,
                &MembershipState {
                    status,
                    ..state.clone()
                },
            )
            .unwrap();
        let second = store
            .insert_recurring(w.fan, &tier.monthly(), "sub_c2")
            .unwrap();
        assert_eq!(
            second.is_none(),
            status.is_live(),
            "a membership {status:?} blocks a second one: {}",
            status.is_live()
        );
        if !status.is_live() {
            break;
        }
    }
    let second = store
        .lock_membership_by_subscription("sub_c2")
        .unwrap()
        .expect("inserted once the first ended");
    assert_ne!(second.id, m.id);
    store
        .save_membership_state(second.id, &MembershipState::new_recurring())
        .unwrap();

    // Another tier is independent.
    let other = store.find_tier(w.other_tier).unwrap().unwrap();
    let o = store
        .insert_recurring(w.fan, &other.monthly(), "sub_c3")
        .unwrap()
        .expect("another tier");
    assert_eq!((o.tier_id, o.amount), (w.other_tier, 20_000));

    // Voiding: cancelled now, no access, the first reason stays.
    store.save_membership_state(o.id, &state).unwrap();
    store
        .void_membership(o.id, VoidReason::Replaced, now)
        .unwrap();
    store
        .void_membership(o.id, VoidReason::AmountMismatch, now + Duration::hours(1))
        .unwrap();
    let v = store
        .lock_membership_by_subscription("sub_c3")
        .unwrap()
        .unwrap();
    assert_eq!(v.void_reason, Some(VoidReason::Replaced));
    assert_eq!(v.state.status, MembershipStatus::Cancelled);
    assert!(!v.state.cancel_at_period_end);
    assert_eq!(v.state.ended_at, Some(now), "the first end stays");
    assert_eq!(
        v.state.state_at,
        Some(now),
        "a stored observation time stays"
    );
    assert_eq!(v.state.current_end, state.current_end);
    assert!(!v.state.has_access(now));
    // A membership never observed at Razorpay gets the void's time as its observation time.
    store
        .void_membership(second.id, VoidReason::StaleCheckout, now)
        .unwrap();
    let v = store
        .lock_membership_by_subscription("sub_c2")
        .unwrap()
        .unwrap();
    assert_eq!(
        (v.state.status, v.state.ended_at, v.state.state_at),
        (MembershipStatus::Cancelled, Some(now), Some(now))
    );
    assert_eq!(v.void_reason, Some(VoidReason::StaleCheckout));
}

fn orders_and_one_time_memberships(
    store: &mut (impl BillingStore + ?Sized),
    w: &World,
    now: Timestamp,
) {
    assert_eq!(store.lock_order("order_c1").unwrap(), None);
    let n = new_order("order_c1", OrderKind::OneTime, w, Some(w.tier));
    let o = store.insert_order(&n).unwrap();
    assert_eq!(o.razorpay_order_id, "order_c1");
    assert_eq!(
        (o.kind, o.status),
        (OrderKind::OneTime, OrderStatus::Created)
    );
    assert_eq!(
        (o.user_id, o.creator_id, o.tier_id, o.reference_id),
        (Some(w.fan), Some(w.creator), Some(w.tier), None)
    );
    assert_eq!((o.amount, o.currency.as_str()), (50_000, "INR"));
    assert_eq!((o.name.as_str(), o.message.as_str()), ("Fan", "hi"));
    let changed = NewOrder {
        amount: 1,
        message: "changed".into(),
        ..n.clone()
    };
    assert_eq!(
        store.insert_order(&changed).unwrap(),
        o,
        "a repeat keeps the first order"
    );
    assert_eq!(store.lock_order("order_c1").unwrap(), Some(o.clone()));

    // created → paid, once.
    store.mark_order_paid(o.id, "pay_o1", now).unwrap();
    store.mark_order_paid(o.id, "pay_o2", now).unwrap();
    let paid = store.lock_order("order_c1").unwrap().unwrap();
    assert_eq!(paid.status, OrderStatus::Paid);

    // The one-time membership of an order, once.
    let end = now + Duration::days(30);
    let id = store
        .insert_one_time_membership(&paid, w.fan, w.tier, now, end)
        .unwrap();
    let again = store
        .insert_one_time_membership(&paid, w.fan, w.tier, now, end + Duration::days(1))
        .unwrap();
    assert_eq!(id, again, "one membership per order");

    // A full refund revokes the order and its membership.
    store.revoke_order(o.id, now).unwrap();
    assert_eq!(
        store.lock_order("order_c1").unwrap().unwrap().status,
        OrderStatus::Refunded
    );
    store.mark_order_paid(o.id, "pay_o1", now).unwrap();
    assert_eq!(
        store.lock_order("order_c1").unwrap().unwrap().status,
        OrderStatus::Refunded,
        "a refunded order is not paid again"
    );

    // Rejection: only from `created`, and it sticks.
    let r = store
        .insert_order(&new_order("order_c2", OrderKind::Cheer, w, None))
        .unwrap();
    assert_eq!((r.kind, r.tier_id), (OrderKind::Cheer, None));
    store.reject_order(r.id, "pay_r1").unwrap();
    assert_eq!(
        store.lock_order("order_c2").unwrap().unwrap().status,
        OrderStatus::Rejected
    );
    store.mark_order_paid(r.id, "pay_r1", now).unwrap();
    store.revoke_order(r.id, now).unwrap();
    assert_eq!(
        store.lock_order("order_c2").unwrap().unwrap().status,
        OrderStatus::Rejected,
        "a rejected order is never paid nor refunded"
    );
    store.reject_order(paid.id, "pay_x").unwrap();
    assert_eq!(
        store.lock_order("order_c1").unwrap().unwrap().status,
        OrderStatus::Refunded,
        "only a created order is rejected"
    );
    let c = store
        .insert_order(&NewOrder {
            reference_id: Some(77),
            ..new_order("order_c3", OrderKind::Commission, w, None)
        })
        .unwrap();
    assert_eq!((c.kind, c.reference_id), (OrderKind::Commission, Some(77)));
}

fn payments(store: &mut (impl BillingStore + ?Sized), w: &World, now: Timestamp) {
    assert_eq!(store.lock_payment("pay_c1").unwrap(), None);
    let m = store
        .lock_membership_by_subscription("sub_c1")
        .unwrap()
        .unwrap();
    let order = store.lock_order("order_c1").unwrap().unwrap();
    let links = PaymentLinks {
        kind: "subscription",
        user_id: Some(w.fan),
        creator_id: None,
        membership_id: None,
        order_id: None,
        razorpay_subscription_id: Some("sub_c1".into()),
    };
    store
        .upsert_payment(
            &payment("pay_c1", PaymentStatus::Authorized, 0, now),
            &links,
        )
        .unwrap();
    let p = store.lock_payment("pay_c1").unwrap().unwrap();
    assert_eq!(
        p,
        StoredPayment {
            status: PaymentStatus::Authorized,
            amount: 50_000,
            amount_refunded: 0,
            order_id: None,
        }
    );
    assert!(
        store
            .linked_charges("sub_c1", &["pay_c1".into()])
            .unwrap()
            .is_empty(),
        "not linked to the membership yet"
    );

    // A repeat moves the status forward only, raises the refund, fills missing links.
    store
        .upsert_payment(
            &payment("pay_c1", PaymentStatus::Captured, 100, now),
            &PaymentLinks {
                membership_id: Some(m.id),
                order_id: Some(order.id),
                ..links.clone()
            },
        )
        .unwrap();
    store
        .upsert_payment(&payment("pay_c1", PaymentStatus::Created, 50, now), &links)
        .unwrap();
    let p = store.lock_payment("pay_c1").unwrap().unwrap();
    assert_eq!(
        p.status,
        PaymentStatus::Captured,
        "status only moves forward"
    );
    assert_eq!(p.amount_refunded, 100, "refunded only grows");
    assert_eq!(p.order_id, Some(order.id), "missing links are filled");
    let other_order = store.lock_order("order_c2").unwrap().unwrap();
    store
        .upsert_payment(
            &payment("pay_c1", PaymentStatus::Captured, 100, now),
            &PaymentLinks {
                order_id: Some(other_order.id),
                ..links.clone()
            },
        )
        .unwrap();
    assert_eq!(
        store.lock_payment("pay_c1").unwrap().unwrap().order_id,
        Some(order.id),
        "a stored link stays"
    );
    for status in [
        PaymentStatus::Created,
        PaymentStatus::Failed,
        PaymentStatus::Authorized,
    ] {
        store
            .upsert_payment(&payment("pay_c1", status, 0, now), &links)
            .unwrap();
    }
    assert_eq!(
        store.lock_payment("pay_c1").unwrap().unwrap().status,
        PaymentStatus::Captured
    );

    // Charges linked to a subscription's membership.
    store
        .upsert_payment(&payment("pay_c2", PaymentStatus::Captured, 0, now), &links)
        .unwrap();
    let asked: Vec<String> = ["pay_c1", "pay_c2", "pay_unknown"]
        .into_iter()
        .map(String::from)
        .collect();
    assert_eq!(
        store.linked_charges("sub_c1", &asked).unwrap(),
        HashSet::from(["pay_c1".to_owned()])
    );
    assert!(store.linked_charges("sub_c1", &[]).unwrap().is_empty());
    assert!(store.linked_charges("sub_none", &asked).unwrap().is_empty());

    // Refunds recorded on the payment: the amount never shrinks; `full` marks it refunded.
    store.set_payment_refunded("pay_c2", 10_000, false).unwrap();
    store.set_payment_refunded("pay_c2", 5_000, false).unwrap();
    let p = store.lock_payment("pay_c2").unwrap().unwrap();
    assert_eq!(
        (p.status, p.amount_refunded),
        (PaymentStatus::Captured, 10_000),
        "a smaller refund amount does not lower the recorded one"
    );
    store.set_payment_refunded("pay_c2", 50_000, true).unwrap();
    let p = store.lock_payment("pay_c2").unwrap().unwrap();
    assert_eq!(
        (p.status, p.amount_refunded),
        (PaymentStatus::Refunded, 50_000)
    );
    store
        .upsert_payment(&payment("pay_c2", PaymentStatus::Captured, 0, now), &links)
        .unwrap();
    assert_eq!(
        store.lock_payment("pay_c2").unwrap().unwrap().status,
        PaymentStatus::Refunded,
        "refunded is final"
    );
    store.set_payment_refunded("pay_none", 1, true).unwrap();
    assert_eq!(store.lock_payment("pay_none").unwrap(), None);
}

fn records_once(store: &mut (impl BillingStore + ?Sized), w: &World) {
    let m = store
        .lock_membership_by_subscription("sub_c1")
        .unwrap()
        .unwrap();
    let flag = PaymentFlag {
        payment_id: "pay_f1".into(),
        mismatch: Mismatch {
            expected_amount: 50_000,
            expected_currency: "INR".into(),
            actual_amount: 1,
            actual_currency: "INR".into(),
        },
        user_id: Some(w.fan),
        creator_id: Some(w.creator),
        membership_id: Some(m.id),
        order_id: None,
    };
    assert!(store.flag_payment(&flag).unwrap(), "a new flag");
    assert!(!store.flag_payment(&flag).unwrap(), "once per payment");
    assert!(store
        .flag_payment(&PaymentFlag {
            payment_id: "pay_f2".into(),
            ..flag.clone()
        })
        .unwrap());

    let refund = RefundRequest {
        payment_id: "pay_f1".into(),
        amount: 50_000,
        currency: "INR".into(),
        reason: "the tier accepts no new members".into(),
        user_id: Some(w.fan),
        creator_id: Some(w.creator),
        tier_id: Some(w.tier),
        membership_id: Some(m.id),
        order_id: None,
    };
    assert!(store.request_refund(&refund).unwrap(), "a new refund");
    assert!(
        !store
            .request_refund(&RefundRequest {
                amount: 1,
                ..refund.clone()
            })
            .unwrap(),
        "one refund per payment"
    );

    assert!(store
        .request_subscription_cancel(m.id, "sub_c1", VoidReason::StaleCheckout)
        .unwrap());
    assert!(
        !store
            .request_subscription_cancel(m.id, "sub_c1", VoidReason::Replaced)
            .unwrap(),
        "one cancellation per subscription"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::MemoryStore;
    use chrono::{TimeZone, Utc};

    #[test]
    fn memory_store_meets_the_contract() {
        let mut store = MemoryStore::default();
        store.add_user(1, "creator");
        store.add_user(2, "Fan_One");
        for (id, price) in [(7, 50_000), (8, 20_000)] {
            store.put_tier(TierRef {
                id,
                creator_id: 1,
                price,
                annual_price: None,
                currency: "INR".into(),
                is_active: true,
            });
        }
        let w = World {
            creator: 1,
            fan: 2,
            fan_username: "fan_one",
            tier: 7,
            other_tier: 8,
            missing: 999,
        };
        run_all(
            &mut store,
            &w,
            Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).unwrap(),
        );
    }
}

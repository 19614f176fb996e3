//! Applying Razorpay's truth: webhook events, Checkout confirmations, on-demand fetches of a
//! subscription (with the charges its lost webhooks carried) or an order, and the periodic
//! reconciliation of everything still waiting locally.
//!
//! Every path ends in [`apply_in`]: the planned effects are announced (notifications) and
//! applied by [`crate::apply::apply_effects`] in one transaction, and every membership that
//! starts is announced (the fan follows the creator). Applying is idempotent, so webhooks,
//! callbacks, fetches and replays converge on one state.
use crate::apply::{self, Applied};
use crate::checkout::CheerText;
use crate::events::{plan_event, Effect, Event, PaymentSnapshot, Purpose};
use crate::gateway::{GatewayError, PaymentGateway};
use crate::integrity::VoidReason;
use crate::notes::CheckoutNotes;
use crate::ports::{Announcement, BillingDb, BillingTx, OrderKind};
use crate::reconcile::{self, InvoiceSnapshot};
use crate::BillingError;
use oasis_kernel::Timestamp;

/// What applying a batch of effects did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Synced {
    /// One line per effect, joined with `"; "`.
    pub outcome: String,
    /// Payments flagged for an operator (the shell logs them at error level).
    pub alerts: Vec<String>,
}

impl Synced {
    fn from_applied(applied: &[Applied]) -> Self {
        Synced {
            outcome: applied
                .iter()
                .map(|a| a.outcome.as_str())
                .collect::<Vec<_>>()
                .join("; "),
            alerts: applied.iter().flat_map(|a| a.alerts.clone()).collect(),
        }
    }
}

/// Applies effects inside the caller's transaction: announces them (notifications), applies
/// them, and announces each membership that started. Every path that applies Razorpay's
/// facts — webhooks, Checkout confirmations, fetches, reconciliation — comes through here.
pub fn apply_in(
    t: &mut dyn BillingTx,
    effects: &[Effect],
    now: Timestamp,
) -> Result<Synced, BillingError> {
    if effects.is_empty() {
        return Ok(Synced::default());
    }
    t.announce(&Announcement::EffectsPlanned(effects.to_vec()))?;
    let applied = apply::apply_effects(t.store(), effects, now)?;
    for a in &applied {
        if let Some((fan, creator)) = a.started {
            t.announce(&Announcement::MembershipStarted { fan, creator })?;
        }
        if let Some(paid) = &a.commission_paid {
            t.announce(&Announcement::CommissionPaid(paid.clone()))?;
        }
        if let Some(change_id) = a.changed {
            t.announce(&Announcement::MembershipChanged { change_id })?;
        }
    }
    let mut synced = Synced::from_applied(&applied);
    // The earnings ledger follows every payment recorded or refunded, in this transaction.
    let posted = super::ledger::post_effects_in(t, effects, now)?;
    synced.alerts.extend(posted.alerts);
    Ok(synced)
}

/// Applies a webhook event inside the caller's transaction (the shell holds the stored event's
/// row locked in the same transaction).
pub fn apply_event_in(
    t: &mut dyn BillingTx,
    event: &Event,
    now: Timestamp,
) -> Result<Synced, BillingError> {
    let mut synced = apply_in(t, &plan_event(event), now)?;
    if let Some(fact) = &event.route {
        let policy = t.payout_policy();
        synced.outcome = super::payouts::apply_fact_in(t, fact, policy, now)?;
    }
    Ok(synced)
}

/// Applies a webhook event in its own transaction.
pub async fn apply_event(
    db: &impl BillingDb,
    event: Event,
    now: Timestamp,
) -> Result<Synced, BillingError> {
    db.tx(move |t| apply_event_in(t, &event, now)).await
}

/// Applies effects in one transaction.
pub async fn apply_effects(
    db: &impl BillingDb,
    effects: Vec<Effect>,
    now: Timestamp,
) -> Result<Synced, BillingError> {
    db.tx(move |t| apply_in(t, &effects, now)).await
}

/// Fetches a subscription and applies it (observed `now`).
pub async fn sync_subscription(
    db: &impl BillingDb,
    gw: &impl PaymentGateway,
    id: &str,
    now: Timestamp,
) -> Result<Synced, BillingError> {
    let s = gw.fetch_subscription(id, now).await?;
    let effects = vec![Effect::Subscription {
        snapshot: s.snapshot,
        notes: s.notes,
    }];
    apply_effects(db, effects, now).await
}

/// A Checkout confirmation of a subscription: fetches the subscription and the payment and
/// applies both in one transaction, as the `subscription.charged` webhook would (so the
/// payment is judged — amount, stale checkout — together with the state that grants access).
pub async fn confirm_subscription_payment(
    db: &impl BillingDb,
    gw: &impl PaymentGateway,
    subscription_id: &str,
    payment_id: &str,
    now: Timestamp,
) -> Result<Synced, BillingError> {
    let s = gw.fetch_subscription(subscription_id, now).await?;
    let p = gw.fetch_payment(payment_id).await?;
    let mut effects = vec![Effect::Subscription {
        snapshot: s.snapshot,
        notes: s.notes,
    }];
    if let Some(p) = p {
        effects.push(Effect::Payment {
            payment: p,
            purpose: Purpose::Subscription {
                subscription_id: subscription_id.to_owned(),
            },
        });
    }
    apply_effects(db, effects, now).await
}

/// The `type` an order's notes give (what [`Purpose::Order`] falls back to when the order is
/// unknown locally).
fn order_notes_type(p: &PaymentSnapshot) -> Option<String> {
    CheckoutNotes::type_note(&p.notes).map(str::to_owned)
}

/// Fetches an order's payments and applies each.
pub async fn sync_order(
    db: &impl BillingDb,
    gw: &impl PaymentGateway,
    order_id: &str,
    now: Timestamp,
) -> Result<Synced, BillingError> {
    let payments = gw.order_payments(order_id).await?;
    if payments.is_empty() {
        return Ok(Synced {
            outcome: format!("order {order_id}: no payments yet"),
            alerts: Vec::new(),
        });
    }
    let effects: Vec<Effect> = payments
        .into_iter()
        .map(|p| Effect::Payment {
            purpose: Purpose::Order {
                order_id: order_id.to_owned(),
                notes_type: order_notes_type(&p),
            },
            payment: p,
        })
        .collect();
    apply_effects(db, effects, now).await
}

/// What reconciling one subscription did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SubscriptionSync {
    pub synced: Synced,
    /// Charges (paid invoices' payments) recorded now because their webhook never came.
    pub recovered: usize,
    /// Paid invoices' payments that are not charges we can record (skipped; logged).
    pub skipped: Vec<String>,
}

/// Fetches a subscription and its invoices, fetches the payments of paid invoices that are not
/// recorded as charges of its membership, and applies it all in one transaction as the effects
/// of the `subscription.charged` events that carried them ([`crate::reconcile`]): the state and
/// period as the webhook would set them, each missing payment recorded once.
pub async fn sync_subscription_and_charges(
    db: &impl BillingDb,
    gw: &impl PaymentGateway,
    id: &str,
    now: Timestamp,
) -> Result<SubscriptionSync, BillingError> {
    let s = gw.fetch_subscription(id, now).await?;
    let invoices: Vec<InvoiceSnapshot> = gw.subscription_invoices(id).await?;
    let (sid, inv) = (id.to_owned(), invoices.clone());
    let missing = db
        .tx(move |t| Ok(reconcile::charges_to_recover(t.store(), &sid, &inv)?))
        .await?;
    let mut charges = Vec::with_capacity(missing.len());
    let mut skipped = Vec::new();
    for pay in missing {
        match gw.fetch_payment(&pay).await? {
            Some(p) if reconcile::is_invoiced_charge(id, &invoices, &p) => charges.push(p),
            _ => skipped.push(pay),
        }
    }
    let recovered = charges.len();
    let effects = reconcile::plan_recovered_charges(&s.snapshot, &s.notes, &invoices, &charges);
    let synced = apply_effects(db, effects, now).await?;
    Ok(SubscriptionSync {
        synced,
        recovered,
        skipped,
    })
}

/// What a Checkout callback is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfirmTarget {
    /// A recurring membership's subscription (`sub_…`).
    Subscription(String),
    /// An order (`order_…`): a one-time purchase or a cheer.
    Order(String),
}

/// What confirming a Checkout callback did.
#[derive(Debug)]
pub enum Confirmed {
    /// Razorpay's truth is applied.
    Applied(Synced),
    /// The gateway could not answer now: the caller queues a sync job (the webhook and
    /// reconciliation would apply it too).
    Deferred(GatewayError),
}

/// A verified Checkout callback of `user_id`: makes sure the checkout is not someone else's
/// ([`BillingError::NotFound`] if it is), then fetches Razorpay's truth and applies it.
pub async fn confirm(
    db: &impl BillingDb,
    gw: &impl PaymentGateway,
    user_id: i64,
    target: &ConfirmTarget,
    payment_id: &str,
    now: Timestamp,
) -> Result<Confirmed, BillingError> {
    let t = target.clone();
    let owner = db
        .tx(move |tx| {
            let s = tx.store();
            Ok(match &t {
                ConfirmTarget::Subscription(sub) => {
                    s.lock_membership_by_subscription(sub)?.map(|m| m.user_id)
                }
                ConfirmTarget::Order(order) => s.lock_order(order)?.and_then(|o| o.user_id),
            })
        })
        .await?;
    if owner.is_some_and(|o| o != user_id) {
        return Err(BillingError::NotFound);
    }
    let applied = match target {
        ConfirmTarget::Subscription(sub) => {
            confirm_subscription_payment(db, gw, sub, payment_id, now).await
        }
        ConfirmTarget::Order(order) => sync_order(db, gw, order, now).await,
    };
    if let (Ok(_), ConfirmTarget::Subscription(sub)) = (&applied, target) {
        // A trial refused for its card or UPI ID (crate::trials) is the fan's to know now.
        let sub = sub.clone();
        let refused = db
            .tx(move |tx| {
                Ok(tx
                    .store()
                    .lock_membership_by_subscription(&sub)?
                    .is_some_and(|m| m.void_reason == Some(VoidReason::TrialUsed)))
            })
            .await?;
        if refused {
            return Err(BillingError::TrialUsed);
        }
    }
    match applied {
        Ok(s) => Ok(Confirmed::Applied(s)),
        Err(BillingError::Gateway(e)) => Ok(Confirmed::Deferred(e)),
        Err(e) => Err(e),
    }
}

/// What a cheer's or purchase's Checkout callback (`save_order`) claims besides the payment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrderCallback {
    /// When given, must be the order's amount.
    pub amount: Option<i64>,
    /// A cheer's public name and message.
    pub text: CheerText,
}

/// A verified Checkout callback of an order (`save_order`): in one transaction the order must
/// not be someone else's ([`BillingError::NotFound`]) and, when `amount` is given, must be of
/// that amount; a cheer's first accepted confirmation fixes its public name and message (a
/// replayed signature cannot rewrite them later). Then Razorpay's truth is applied as
/// [`confirm`] does.
pub async fn confirm_order(
    db: &impl BillingDb,
    gw: &impl PaymentGateway,
    user_id: i64,
    order_id: &str,
    payment_id: &str,
    callback: OrderCallback,
    now: Timestamp,
) -> Result<Confirmed, BillingError> {
    let OrderCallback { amount, text } = callback;
    let oid = order_id.to_owned();
    db.tx(move |tx| {
        let s = tx.store();
        let Some(o) = s.lock_order(&oid)? else {
            return Ok(());
        };
        if o.user_id.is_some_and(|u| u != user_id) {
            return Err(BillingError::NotFound);
        }
        if amount.is_some_and(|a| a != o.amount) {
            return Err(BillingError::invalid(
                "amount",
                "Does not match the order's amount.",
            ));
        }
        if o.kind == OrderKind::Cheer {
            s.confirm_order_message(o.id, text.name.as_deref(), text.message.as_deref())?;
        }
        Ok(())
    })
    .await?;
    let target = ConfirmTarget::Order(order_id.to_owned());
    confirm(db, gw, user_id, &target, payment_id, now).await
}

/// How many waiting subscriptions and orders one reconciliation pass fetches.
pub const RECONCILE_BATCH: i64 = 200;

/// What a reconciliation pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Reconciled {
    pub subscriptions: usize,
    pub orders: usize,
    /// Subscription charges recorded from invoices (their `subscription.charged` was lost).
    pub recovered_charges: usize,
    /// One line per object that could not be reconciled (`"<id>: <error>"`).
    pub errors: Vec<String>,
    /// Payments flagged for an operator while applying.
    pub alerts: Vec<String>,
}

/// Fetches from the gateway every subscription and order still waiting locally
/// ([`crate::ports::BillingStore::waiting_subscriptions`], `waiting_orders`) and applies its
/// true state — for subscriptions, with the payments of their paid invoices not yet recorded.
/// A lost webhook therefore cannot lose a payment (of an order or of a subscription's cycle),
/// nor a membership's state.
pub async fn reconcile(
    db: &impl BillingDb,
    gw: &impl PaymentGateway,
    now: Timestamp,
) -> Result<Reconciled, BillingError> {
    let mut report = Reconciled::default();
    let (subs, orders) = db
        .tx(move |t| {
            let s = t.store();
            Ok((
                s.waiting_subscriptions(now, RECONCILE_BATCH)?,
                s.waiting_orders(now, RECONCILE_BATCH)?,
            ))
        })
        .await?;
    for sub in subs {
        match sync_subscription_and_charges(db, gw, &sub, now).await {
            Ok(done) => {
                report.subscriptions += 1;
                report.recovered_charges += done.recovered;
                report.alerts.extend(done.synced.alerts);
            }
            Err(e) => {
                report.errors.push(format!("{sub}: {e}"));
                // Still restore the state when only the invoices could not be read.
                if let Ok(s) = sync_subscription(db, gw, &sub, now).await {
                    report.alerts.extend(s.alerts);
                }
            }
        }
    }
    for order in orders {
        match sync_order(db, gw, &order, now).await {
            Ok(s) => {
                report.orders += 1;
                report.alerts.extend(s.alerts);
            }
            Err(e) => report.errors.push(format!("{order}: {e}")),
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::{BillingPeriod, OrderRequest, PlanRequest, SubscriptionRequest};
    use crate::memory::{MemoryDb, MemoryStore};
    use crate::memory_gateway::MemoryGateway;
    use crate::notes::Payer;
    use crate::ports::{BillingStore, NewOrder, OrderKind, TierRef};
    use chrono::{Duration, TimeZone, Utc};
    use pollster::block_on;

    const FAN: i64 = 1;
    const CREATOR: i64 = 2;
    const TIER: i64 = 10;

    fn t(secs: i64) -> Timestamp {
        Utc.timestamp_opt(1_700_000_000 + secs, 0).unwrap()
    }

    fn tier() -> TierRef {
        TierRef {
            id: TIER,
            creator_id: CREATOR,
            price: 5000,
            annual_price: None,
            currency: "INR".into(),
            is_active: true,
        }
    }

    fn world() -> (MemoryDb, MemoryGateway) {
        let mut s = MemoryStore::default();
        s.add_user(FAN, "fan");
        s.add_user(CREATOR, "creator");
        s.put_tier(tier());
        (MemoryDb::new(s), MemoryGateway::new())
    }

    /// A recurring checkout of the fan: the subscription at the gateway and its membership.
    fn checkout(db: &MemoryDb, gw: &MemoryGateway) -> String {
        let plan = block_on(gw.create_plan(&PlanRequest {
            tier_id: TIER,
            name: "Gold".into(),
            amount: 5000,
            currency: "INR".into(),
            period: BillingPeriod::Monthly,
        }))
        .unwrap();
        let sub = block_on(gw.create_subscription(&SubscriptionRequest {
            plan_id: plan,
            total_count: 120,
            notes: CheckoutNotes::Recurring {
                payer: Payer::Id(FAN),
                tier_id: TIER,
                period: crate::BillingPeriod::Monthly,
            },
            start_at: None,
            change_id: None,
        }))
        .unwrap();
        db.with(|s| s.insert_recurring(FAN, &tier().monthly(), &sub).unwrap())
            .expect("membership");
        sub
    }

    /// A one-time purchase's order, at the gateway and stored.
    fn order(db: &MemoryDb, gw: &MemoryGateway) -> String {
        let notes = CheckoutNotes::OneTime {
            payer: Payer::Id(FAN),
            username: Some("fan".into()),
            tier_id: TIER,
        };
        let id = block_on(gw.create_order(&OrderRequest {
            amount: 5000,
            currency: "INR".into(),
            receipt: "r1".into(),
            notes: notes.clone(),
        }))
        .unwrap();
        db.with(|s| {
            s.insert_order(&NewOrder {
                razorpay_order_id: id.clone(),
                kind: OrderKind::OneTime,
                user_id: Some(FAN),
                creator_id: Some(CREATOR),
                tier_id: Some(TIER),
                reference_id: None,
                amount: 5000,
                currency: "INR".into(),
                name: String::new(),
                message: String::new(),
                notes: serde_json::to_value(notes.to_map()).unwrap(),
            })
            .unwrap()
        });
        id
    }

    /// A cheer's order of the fan to the creator, at the gateway and stored.
    fn cheer(db: &MemoryDb, gw: &MemoryGateway) -> String {
        let notes = CheckoutNotes::Cheer {
            creator_id: CREATOR,
            payer: Some(Payer::Id(FAN)),
            name: "Fan".into(),
            message: "at start".into(),
        };
        let id = block_on(gw.create_order(&OrderRequest {
            amount: 700,
            currency: "INR".into(),
            receipt: "c1".into(),
            notes: notes.clone(),
        }))
        .unwrap();
        db.with(|s| {
            s.insert_order(&NewOrder {
                razorpay_order_id: id.clone(),
                kind: OrderKind::Cheer,
                user_id: Some(FAN),
                creator_id: Some(CREATOR),
                tier_id: None,
                reference_id: None,
                amount: 700,
                currency: "INR".into(),
                name: "Fan".into(),
                message: "at start".into(),
                notes: serde_json::to_value(notes.to_map()).unwrap(),
            })
            .unwrap()
        });
        id
    }

    fn cb(amount: Option<i64>, text: CheerText) -> OrderCallback {
        OrderCallback { amount, text }
    }

    #[test]
    fn a_cheers_first_confirmation_fixes_its_name_and_message() {
        let (db, gw) = world();
        let oid = cheer(&db, &gw);
        let pay = gw.pay_order(&oid, 700, "INR", t(0));
        let text = |n: &str, m: &str| CheerText::new(Some(n), Some(m)).unwrap();
        let stored = |db: &MemoryDb| {
            let o = db.with(|s| s.lock_order(&oid).unwrap()).unwrap();
            (o.name, o.message)
        };
        // Someone else's order is not found; a wrong amount is a field error; neither fixes
        // anything.
        assert!(matches!(
            block_on(confirm_order(
                &db,
                &gw,
                CREATOR,
                &oid,
                &pay.id,
                cb(None, text("X", "x")),
                t(1)
            )),
            Err(BillingError::NotFound)
        ));
        match block_on(confirm_order(
            &db,
            &gw,
            FAN,
            &oid,
            &pay.id,
            cb(Some(701), text("X", "x")),
            t(1),
        )) {
            Err(BillingError::Invalid {
                field: "amount", ..
            }) => {}
            other => panic!("{other:?}"),
        }
        assert_eq!(stored(&db), ("Fan".into(), "at start".into()));
        let out = block_on(confirm_order(
            &db,
            &gw,
            FAN,
            &oid,
            &pay.id,
            cb(Some(700), text(" Ann ", "thanks")),
            t(2),
        ))
        .unwrap();
        assert!(matches!(out, Confirmed::Applied(_)), "{out:?}");
        assert_eq!(stored(&db), ("Ann".into(), "thanks".into()));
        let o = db.with(|s| s.lock_order(&oid).unwrap()).unwrap();
        assert_eq!(o.status, crate::ports::OrderStatus::Paid);
        // A replayed confirmation answers the same and rewrites nothing.
        let again = block_on(confirm_order(
            &db,
            &gw,
            FAN,
            &oid,
            &pay.id,
            cb(None, text("Mallory", "rewritten")),
            t(3),
        ))
        .unwrap();
        assert!(matches!(again, Confirmed::Applied(_)), "{again:?}");
        assert_eq!(stored(&db), ("Ann".into(), "thanks".into()));
    }

    #[test]
    fn a_blank_confirmation_keeps_the_cheers_text_and_fixes_it() {
        let (db, gw) = world();
        let oid = cheer(&db, &gw);
        let pay = gw.pay_order(&oid, 700, "INR", t(0));
        let blank = CheerText::new(Some("  "), None).unwrap();
        block_on(confirm_order(
            &db,
            &gw,
            FAN,
            &oid,
            &pay.id,
            cb(None, blank),
            t(1),
        ))
        .unwrap();
        let later = CheerText::new(Some("Eve"), Some("late")).unwrap();
        block_on(confirm_order(
            &db,
            &gw,
            FAN,
            &oid,
            &pay.id,
            cb(None, later),
            t(2),
        ))
        .unwrap();
        let o = db.with(|s| s.lock_order(&oid).unwrap()).unwrap();
        assert_eq!((o.name.as_str(), o.message.as_str()), ("Fan", "at start"));
    }

    fn started(db: &MemoryDb) -> usize {
        db.announcements()
            .iter()
            .filter(|a| matches!(a, Announcement::MembershipStarted { .. }))
            .count()
    }

    fn charged(db: &MemoryDb, sub: &str, payment: &str) -> bool {
        db.with(|s| {
            s.linked_charges(sub, &[payment.to_owned()])
                .unwrap()
                .contains(payment)
        })
    }

    fn has_access(db: &MemoryDb, sub: &str, now: Timestamp) -> bool {
        db.with(|s| {
            s.lock_membership_by_subscription(sub)
                .unwrap()
                .is_some_and(|m| m.state.has_access(now))
        })
    }

    #[test]
    fn a_webhook_applied_twice_records_once() {
        let (db, gw) = world();
        let sub = checkout(&db, &gw);
        let pay = gw
            .charge_subscription(&sub, t(0), Duration::days(30))
            .unwrap();
        let remote = gw.subscription(&sub).unwrap();
        let mut snapshot = remote.snapshot;
        snapshot.observed_at = t(1);
        let event = Event {
            name: "subscription.charged".into(),
            created_at: t(1),
            subscription: Some(snapshot),
            subscription_notes: remote.notes,
            payment: Some(pay.clone()),
            order: None,
            refund: None,
            route: None,
        };
        block_on(apply_event(&db, event.clone(), t(2))).unwrap();
        let once = db.with(|s| s.view());
        block_on(apply_event(&db, event, t(3))).unwrap();
        assert_eq!(db.with(|s| s.view()), once, "the repeat changes nothing");
        assert!(charged(&db, &sub, &pay.id));
        assert!(has_access(&db, &sub, t(10)));
        assert_eq!(started(&db), 1, "{:?}", db.announcements());
        let planned = db
            .announcements()
            .iter()
            .filter(|a| matches!(a, Announcement::EffectsPlanned(_)))
            .count();
        assert_eq!(planned, 2, "every application announces its effects");
    }

    #[test]
    fn a_confirm_with_the_gateway_down_is_deferred() {
        let (db, gw) = world();
        let sub = checkout(&db, &gw);
        let pay = gw
            .charge_subscription(&sub, t(0), Duration::days(30))
            .unwrap();
        let target = ConfirmTarget::Subscription(sub.clone());
        gw.fail_next(GatewayError::Unavailable("connection reset".into()));
        let out = block_on(confirm(&db, &gw, FAN, &target, &pay.id, t(1))).unwrap();
        assert!(
            matches!(out, Confirmed::Deferred(GatewayError::Unavailable(_))),
            "{out:?}"
        );
        assert!(!has_access(&db, &sub, t(2)), "nothing applied yet");
        assert!(db.announcements().is_empty());
        // Someone else's checkout is not found, whatever the gateway says.
        assert!(matches!(
            block_on(confirm(&db, &gw, CREATOR, &target, &pay.id, t(1))),
            Err(BillingError::NotFound)
        ));
        // Once the gateway answers, the same confirmation applies it.
        let out = block_on(confirm(&db, &gw, FAN, &target, &pay.id, t(3))).unwrap();
        assert!(matches!(out, Confirmed::Applied(_)), "{out:?}");
        assert!(charged(&db, &sub, &pay.id));
        assert!(has_access(&db, &sub, t(4)));
    }

    #[test]
    fn reconcile_recovers_a_lost_charge_and_a_lost_order_payment() {
        let (db, gw) = world();
        let sub = checkout(&db, &gw);
        let oid = order(&db, &gw);
        // Both were paid; neither webhook nor callback ever came.
        let charge = gw
            .charge_subscription(&sub, t(0), Duration::days(30))
            .unwrap();
        let paid = gw.pay_order(&oid, 5000, "INR", t(0));
        let report = block_on(reconcile(&db, &gw, t(60))).unwrap();
        assert_eq!(report.errors, Vec::<String>::new());
        assert_eq!((report.subscriptions, report.orders), (1, 1), "{report:?}");
        assert_eq!(report.recovered_charges, 1);
        assert!(charged(&db, &sub, &charge.id));
        assert!(has_access(&db, &sub, t(120)));
        let o = db.with(|s| s.lock_order(&oid).unwrap()).unwrap();
        assert_eq!(o.status, crate::ports::OrderStatus::Paid);
        assert!(db.with(|s| s.lock_payment(&paid.id).unwrap()).is_some());
        // Nothing is waiting any more, and a second pass records nothing twice.
        let again = block_on(reconcile(&db, &gw, t(120))).unwrap();
        assert_eq!(again.recovered_charges, 0, "{again:?}");
        assert_eq!(again.orders, 0, "{again:?}");
        assert_eq!(started(&db), 2, "{:?}", db.announcements());
    }
}

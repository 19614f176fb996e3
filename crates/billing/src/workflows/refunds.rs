//! Giving money back and stopping charges that grant nothing: sending a refund the billing
//! service decided on (a payment of a stale checkout, recorded by [`crate::apply`] with its
//! idempotency key), exactly once, and cancelling a voided membership's subscription at the
//! gateway (best effort, each attempt recorded).
use super::sync::{apply_in, Synced};
use crate::events::{Effect, PaymentStatus};
use crate::gateway::{GatewayError, PaymentGateway, RefundReceipt};
use crate::ports::{Announcement, BillingDb, RefundStatus, RefundToSend};
use crate::BillingError;
use oasis_kernel::Timestamp;

/// How long one sender holds a refund (a job whose lease ran out may run again meanwhile; the
/// idempotency key makes even that harmless, the claim makes it rare).
pub const CLAIM_SECS: i64 = 90;

/// What sending a refund did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundOutcome {
    /// The gateway made it (now, or before a crash): recorded and announced once.
    Sent(RefundReceipt),
    /// Nothing to send (any more), and why.
    Settled(String),
    /// The gateway will not refund this payment: given up, an operator must.
    Refused(GatewayError),
    /// Not now (another sender holds it, the payment is not captured yet, …): try later.
    Later(String),
}

async fn release(
    db: &impl BillingDb,
    payment_id: &str,
    error: String,
    give_up: bool,
) -> Result<(), BillingError> {
    let pid = payment_id.to_owned();
    db.tx(move |t| Ok(t.store().refund_attempt_failed(&pid, &error, give_up)?))
        .await
}

async fn record_sent(
    db: &impl BillingDb,
    receipt: RefundReceipt,
) -> Result<RefundOutcome, BillingError> {
    let r = receipt.clone();
    db.tx(move |t| {
        if t.store().refund_sent(&r.payment_id, &r.id, &r.status)? {
            t.announce(&Announcement::PaymentRefunded {
                payment_id: r.payment_id.clone(),
            })?;
        }
        Ok(())
    })
    .await?;
    Ok(RefundOutcome::Sent(receipt))
}

/// Sends the refund of `payment_id`, exactly once: claimed by one sender, checked against the
/// gateway's refunds of the payment first (a crash after the gateway refunded but before we
/// recorded it), then sent with the row's idempotency key (a lost answer retried gets the same
/// refund back). `Err` (a gateway outage, storage) = retry later; the claim is released.
pub async fn send_refund(
    db: &impl BillingDb,
    gw: &impl PaymentGateway,
    payment_id: &str,
) -> Result<RefundOutcome, BillingError> {
    let pid = payment_id.to_owned();
    let claimed: Option<RefundToSend> = db
        .tx(move |t| Ok(t.store().claim_refund(&pid, CLAIM_SECS)?))
        .await?;
    let Some(row) = claimed else {
        let pid = payment_id.to_owned();
        let row = db.tx(move |t| Ok(t.store().refund_to_send(&pid)?)).await?;
        return Ok(match row {
            Some(r) if r.status == RefundStatus::Requested => RefundOutcome::Later(format!(
                "refund of {payment_id} is being sent by another worker"
            )),
            Some(r) => RefundOutcome::Settled(format!(
                "refund of {payment_id} already {}",
                r.status.as_str()
            )),
            None => RefundOutcome::Settled(format!("no refund requested for {payment_id}")),
        });
    };
    let payment = match gw.fetch_payment(payment_id).await {
        Ok(p) => p,
        Err(e) => {
            release(db, payment_id, e.to_string(), false).await?;
            return Err(e.into());
        }
    };
    let Some(payment) = payment else {
        let why = "payment in a status billing does not know".to_owned();
        release(db, payment_id, why.clone(), false).await?;
        return Ok(RefundOutcome::Later(why));
    };
    match payment.status {
        PaymentStatus::Created | PaymentStatus::Failed => {
            let why = format!("payment is {}: nothing to refund", payment.status.as_str());
            release(db, payment_id, why.clone(), true).await?;
            return Ok(RefundOutcome::Settled(why));
        }
        PaymentStatus::Authorized => {
            // Auto-capture follows shortly (the gateway refunds only captured payments).
            let why = "payment not captured yet".to_owned();
            release(db, payment_id, why.clone(), false).await?;
            return Ok(RefundOutcome::Later(why));
        }
        _ => {}
    }
    if payment.amount_refunded >= payment.amount && payment.amount > 0 {
        // Already refunded: by us (a crash before we recorded it) or by someone else. Never again.
        let refunds = match gw.payment_refunds(payment_id).await {
            Ok(r) => r,
            Err(e) => {
                release(db, payment_id, e.to_string(), false).await?;
                return Err(e.into());
            }
        };
        let ours = refunds
            .iter()
            .find(|r| r.idempotency_key.as_deref() == Some(row.idempotency_key.as_str()))
            .or_else(|| refunds.first());
        return match ours {
            Some(r) => record_sent(db, r.clone()).await,
            None => {
                let why = "payment refunded at the gateway, but no refund listed".to_owned();
                release(db, payment_id, why.clone(), false).await?;
                Ok(RefundOutcome::Later(why))
            }
        };
    }
    // A transfer that reached the creator is reversed first (each step its own exactly-once
    // record); until it is, the refund waits.
    if let Err(e) =
        super::payouts::reverse_before_refund(db, gw, payment_id, chrono::Utc::now()).await
    {
        release(db, payment_id, e.to_string(), false).await?;
        return Err(e);
    }
    match gw
        .refund(payment_id, row.amount, &row.idempotency_key)
        .await
    {
        Ok(r) => record_sent(db, r).await,
        Err(e @ GatewayError::Unavailable(_)) => {
            release(db, payment_id, e.to_string(), false).await?;
            Err(e.into())
        }
        Err(e) => {
            release(db, payment_id, e.to_string(), true).await?;
            Ok(RefundOutcome::Refused(e))
        }
    }
}

/// What cancelling a voided membership's subscription did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CancelOutcome {
    /// No cancellation is pending for it.
    NothingToCancel,
    /// Cancelled at the gateway (now, or it had ended already); the state is merged.
    Cancelled { outcome: String, synced: Synced },
    /// The attempt failed (recorded): try later.
    Later(String),
}

/// Cancels the gateway subscription of a voided membership now (best effort). Each attempt
/// and its outcome is recorded; the cancelled subscription is merged into the (voided,
/// terminal) membership like any fetch.
pub async fn cancel_voided_subscription(
    db: &impl BillingDb,
    gw: &impl PaymentGateway,
    subscription_id: &str,
    now: Timestamp,
) -> Result<CancelOutcome, BillingError> {
    let sid = subscription_id.to_owned();
    let pending = db
        .tx(move |t| Ok(t.store().cancellation_pending(&sid)?))
        .await?;
    if !pending {
        return Ok(CancelOutcome::NothingToCancel);
    }
    let (cancelled, outcome, fetched) =
        match gw.cancel_subscription(subscription_id, false, now).await {
            Ok(s) => (true, "cancelled".to_owned(), Some(s)),
            // Not cancellable: already ended (cancelled, completed, expired)?
            Err(e @ (GatewayError::Rejected { .. } | GatewayError::NotFound)) => {
                match gw.fetch_subscription(subscription_id, now).await {
                    Ok(s) if s.snapshot.status.is_some_and(|st| st.is_terminal()) => {
                        let st = s.snapshot.status.map(|st| st.as_str()).unwrap_or_default();
                        (true, format!("already {st} at Razorpay"), Some(s))
                    }
                    _ => (false, format!("razorpay: {e}"), None),
                }
            }
            Err(e) => (false, format!("razorpay: {e}"), None),
        };
    let effects: Vec<Effect> = fetched
        .into_iter()
        .map(|s| Effect::Subscription {
            snapshot: s.snapshot,
            notes: s.notes,
        })
        .collect();
    let (sid, out) = (subscription_id.to_owned(), outcome.clone());
    let synced = db
        .tx(move |t| {
            t.store()
                .record_cancellation_attempt(&sid, cancelled, &out)?;
            apply_in(t, &effects, now)
        })
        .await?;
    Ok(if cancelled {
        CancelOutcome::Cancelled { outcome, synced }
    } else {
        CancelOutcome::Later(outcome)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::OrderRequest;
    use crate::memory::{MemoryDb, MemoryStore};
    use crate::memory_gateway::MemoryGateway;
    use crate::notes::{CheckoutNotes, Payer};
    use crate::ports::{BillingStore, RefundRequest};
    use chrono::{TimeZone, Utc};
    use pollster::block_on;

    /// A captured payment at the gateway whose refund the service decided on.
    fn world() -> (MemoryDb, MemoryGateway, String) {
        world_asking(5000)
    }

    fn world_asking(amount: i64) -> (MemoryDb, MemoryGateway, String) {
        let gw = MemoryGateway::new();
        let order = block_on(gw.create_order(&OrderRequest {
            amount: 5000,
            currency: "INR".into(),
            receipt: "r1".into(),
            notes: CheckoutNotes::OneTime {
                payer: Payer::Id(1),
                username: None,
                tier_id: 10,
            },
        }))
        .unwrap();
        let at = Utc.timestamp_opt(1_700_000_000, 0).unwrap();
        let p = gw.pay_order(&order, 5000, "INR", at);
        let mut store = MemoryStore::default();
        store
            .request_refund(&RefundRequest {
                payment_id: p.id.clone(),
                amount,
                currency: "INR".into(),
                reason: "the tier accepts no new members".into(),
                user_id: Some(1),
                creator_id: Some(2),
                tier_id: Some(10),
                membership_id: None,
                order_id: None,
            })
            .unwrap();
        (MemoryDb::new(store), gw, p.id)
    }

    fn announced_refunds(db: &MemoryDb) -> usize {
        db.announcements()
            .iter()
            .filter(|a| matches!(a, Announcement::PaymentRefunded { .. }))
            .count()
    }

    #[test]
    fn a_refund_is_sent_once_when_the_first_answer_is_lost() {
        let (db, gw, pid) = world();
        gw.lose_next_refund_answer();
        let first = block_on(send_refund(&db, &gw, &pid));
        assert!(
            matches!(
                first,
                Err(BillingError::Gateway(GatewayError::Unavailable(_)))
            ),
            "{first:?}"
        );
        assert_eq!(gw.refunds().len(), 1, "the gateway made it");
        assert_eq!(db.with(|s| s.sent_refund(&pid)), None, "we do not know yet");
        // The retry finds the refund the gateway made under our key, and records it.
        let again = block_on(send_refund(&db, &gw, &pid)).unwrap();
        let RefundOutcome::Sent(r) = again else {
            panic!("{again:?}")
        };
        assert_eq!(r.id, gw.refunds()[0].id);
        assert_eq!(db.with(|s| s.sent_refund(&pid)), Some(r.id.clone()));
        // Any later run sends nothing.
        let third = block_on(send_refund(&db, &gw, &pid)).unwrap();
        assert_eq!(
            third,
            RefundOutcome::Settled(format!("refund of {pid} already sent"))
        );
        assert_eq!(gw.count("refund"), 1);
        assert_eq!(gw.refunds().len(), 1);
        assert_eq!(announced_refunds(&db), 1);
    }

    #[test]
    fn a_refund_job_running_twice_sends_once() {
        let (db, gw, pid) = world();
        // Another run holds the claim: this one waits.
        let held = db.with(|s| s.claim_refund(&pid, CLAIM_SECS).unwrap());
        assert!(held.is_some());
        let second = block_on(send_refund(&db, &gw, &pid)).unwrap();
        assert!(matches!(second, RefundOutcome::Later(_)), "{second:?}");
        assert_eq!(gw.count("refund"), 0);
        // The holder's attempt ends (released); the next run sends it, and runs after that
        // send nothing.
        db.with(|s| {
            s.refund_attempt_failed(&pid, "lease ran out", false)
                .unwrap()
        });
        for _ in 0..3 {
            block_on(send_refund(&db, &gw, &pid)).unwrap();
        }
        assert_eq!(gw.count("refund"), 1);
        assert_eq!(gw.refunds().len(), 1);
        assert!(db.with(|s| s.sent_refund(&pid)).is_some());
        assert_eq!(announced_refunds(&db), 1);
    }

    #[test]
    fn an_outage_is_retried_and_a_refusal_is_given_up() {
        let (db, gw, pid) = world();
        gw.fail_next(GatewayError::Unavailable("down".into()));
        assert!(block_on(send_refund(&db, &gw, &pid)).is_err());
        assert_eq!(gw.count("refund"), 0, "released, nothing sent");
        let out = block_on(send_refund(&db, &gw, &pid)).unwrap();
        assert!(matches!(out, RefundOutcome::Sent(_)), "{out:?}");

        // More than the payment: the gateway refuses, for good.
        let (db, gw, pid) = world_asking(6000);
        let out = block_on(send_refund(&db, &gw, &pid)).unwrap();
        assert!(
            matches!(out, RefundOutcome::Refused(GatewayError::Rejected { .. })),
            "{out:?}"
        );
        let again = block_on(send_refund(&db, &gw, &pid)).unwrap();
        assert_eq!(
            again,
            RefundOutcome::Settled(format!("refund of {pid} already failed"))
        );
        assert_eq!(gw.count("refund"), 1);
        assert_eq!(announced_refunds(&db), 0);
    }

    /// A voided membership whose subscription must be cancelled at the gateway.
    fn voided() -> (MemoryDb, MemoryGateway, String) {
        use crate::gateway::{BillingPeriod, PlanRequest, SubscriptionRequest};
        use crate::integrity::VoidReason;
        use crate::ports::TierRef;
        let gw = MemoryGateway::new();
        let plan = block_on(gw.create_plan(&PlanRequest {
            tier_id: 10,
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
                payer: Payer::Id(1),
                tier_id: 10,
                period: crate::BillingPeriod::Monthly,
            },
            start_at: None,
            change_id: None,
        }))
        .unwrap();
        let tier = TierRef {
            id: 10,
            creator_id: 2,
            price: 5000,
            annual_price: None,
            currency: "INR".into(),
            is_active: true,
        };
        let mut store = MemoryStore::default();
        store.add_user(1, "fan");
        store.put_tier(tier.clone());
        let m = store
            .insert_recurring(1, &tier.monthly(), &sub)
            .unwrap()
            .unwrap();
        store
            .request_subscription_cancel(m.id, &sub, VoidReason::Replaced)
            .unwrap();
        (MemoryDb::new(store), gw, sub)
    }

    #[test]
    fn a_voided_subscription_is_cancelled_once_and_an_outage_is_retried() {
        let now = Utc.timestamp_opt(1_700_000_100, 0).unwrap();
        let (db, gw, sub) = voided();
        gw.fail_next(GatewayError::Unavailable("down".into()));
        let out = block_on(cancel_voided_subscription(&db, &gw, &sub, now)).unwrap();
        assert!(matches!(out, CancelOutcome::Later(_)), "{out:?}");
        let out = block_on(cancel_voided_subscription(&db, &gw, &sub, now)).unwrap();
        assert!(
            matches!(&out, CancelOutcome::Cancelled { outcome, .. } if outcome == "cancelled"),
            "{out:?}"
        );
        let again = block_on(cancel_voided_subscription(&db, &gw, &sub, now)).unwrap();
        assert_eq!(again, CancelOutcome::NothingToCancel);
        assert_eq!(gw.count("cancel_subscription"), 2);
    }

    #[test]
    fn a_subscription_already_ended_at_the_gateway_counts_as_cancelled() {
        let now = Utc.timestamp_opt(1_700_000_100, 0).unwrap();
        let (db, gw, sub) = voided();
        block_on(gw.cancel_subscription(&sub, false, now)).unwrap();
        let out = block_on(cancel_voided_subscription(&db, &gw, &sub, now)).unwrap();
        assert!(
            matches!(&out, CancelOutcome::Cancelled { outcome, .. } if outcome == "already cancelled at Razorpay"),
            "{out:?}"
        );
        let m = db
            .with(|s| s.lock_membership_by_subscription(&sub).unwrap())
            .unwrap();
        assert!(!m.state.has_access(now));
    }
}

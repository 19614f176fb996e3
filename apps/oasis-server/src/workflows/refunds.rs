//! Giving money back and stopping charges that grant nothing, the shell's part: the
//! `billing.refund` job (one refund per payment of a stale checkout, exactly once) and the
//! `billing.cancel` job (cancels a voided membership's Razorpay subscription, best effort).
//!
//! The billing service decides (`oasis_billing::integrity`, applied by `oasis_billing::apply`)
//! and records the refund or cancellation in the transaction that applied the payment, which
//! also queues the job; the sending is billing's workflow (`oasis_billing::workflows::refunds`),
//! run here over [`super::billing_db::PgBillingDb`] and [`crate::gateway::RazorpayGateway`].
use super::billing::{log_alerts, ports};
use crate::context::AppContext;
use crate::db::Db;
use crate::jobs::{JobError, JobRegistry};
use crate::payments::Payments;
use chrono::Utc;
use oasis_billing::workflows::refunds::{self as flow, CancelOutcome, RefundOutcome};
use oasis_billing::{JOB_CANCEL_SUBSCRIPTION, JOB_REFUND};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A `billing.refund` job (queued by `oasis_db::billing` with the refund's row).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundJob {
    pub payment_id: String,
}

/// A `billing.cancel` job (queued by `oasis_db::billing` with the cancellation's row).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancelJob {
    pub subscription_id: String,
}

/// Sends the refund of `payment_id` decided by the billing service, exactly once. `Err` =
/// retry later.
pub async fn send_refund(
    db: &Db,
    payments: &Payments,
    payment_id: &str,
) -> Result<String, JobError> {
    let (bdb, gw) = ports(db, payments);
    match flow::send_refund(&bdb, &gw, payment_id).await? {
        RefundOutcome::Sent(r) => {
            tracing::warn!(payment = payment_id, refund = %r.id, amount = r.amount,
                "billing: refunded a payment of a stale checkout");
            Ok(format!("refund {} of {payment_id} recorded", r.id))
        }
        RefundOutcome::Settled(why) => Ok(why),
        RefundOutcome::Refused(e) => {
            // Razorpay will not refund this payment: an operator must.
            tracing::error!(payment = payment_id, error = %e,
                "billing: Razorpay refused the refund of a stale checkout's payment; refund it by hand");
            Ok(format!("refund of {payment_id} refused: {e}"))
        }
        RefundOutcome::Later(why) => Err(JobError::NotYet(why)),
    }
}

/// Cancels the Razorpay subscription of a voided membership now (best effort; `Err` = retry
/// later).
pub async fn cancel_subscription(
    db: &Db,
    payments: &Payments,
    subscription_id: &str,
) -> Result<String, JobError> {
    let (bdb, gw) = ports(db, payments);
    match flow::cancel_voided_subscription(&bdb, &gw, subscription_id, Utc::now()).await? {
        CancelOutcome::NothingToCancel => Ok(format!("{subscription_id}: nothing to cancel")),
        CancelOutcome::Cancelled { outcome, synced } => {
            log_alerts(&synced.alerts);
            tracing::info!(subscription = subscription_id, %outcome, "billing: voided subscription cancelled");
            Ok(format!("{subscription_id}: {outcome}"))
        }
        CancelOutcome::Later(outcome) => {
            tracing::warn!(subscription = subscription_id, %outcome, "billing: cancelling a voided subscription failed; will retry");
            Err(JobError::NotYet(outcome))
        }
    }
}

pub fn register(registry: &mut JobRegistry, ctx: &AppContext) {
    let (db, payments) = (ctx.db.clone(), ctx.payments.clone());
    registry.register(JOB_REFUND, move |payload: Value| {
        let (db, payments) = (db.clone(), payments.clone());
        async move {
            let Ok(RefundJob { payment_id }) = serde_json::from_value(payload.clone()) else {
                tracing::error!(%payload, "billing.refund: payload without payment_id dropped");
                return Ok(());
            };
            let outcome = send_refund(&db, &payments, &payment_id).await?;
            tracing::info!(payment = %payment_id, %outcome, "billing.refund");
            Ok(())
        }
    });
    let (db, payments) = (ctx.db.clone(), ctx.payments.clone());
    registry.register(JOB_CANCEL_SUBSCRIPTION, move |payload: Value| {
        let (db, payments) = (db.clone(), payments.clone());
        async move {
            let Ok(CancelJob { subscription_id }) = serde_json::from_value(payload.clone())
            else {
                tracing::error!(%payload, "billing.cancel: payload without subscription_id dropped");
                return Ok(());
            };
            cancel_subscription(&db, &payments, &subscription_id)
                .await
                .map(|_| ())
        }
    });
}

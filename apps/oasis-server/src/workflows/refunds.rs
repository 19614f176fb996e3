//! Giving money back and stopping charges that grant nothing: the `billing.refund` job (one
//! refund per payment of a stale checkout, through Razorpay's refund API with an idempotency
//! key), the `billing.cancel` job (cancels a voided membership's Razorpay subscription, best
//! effort, each attempt and its outcome recorded).
//!
//! The billing service decides (`oasis_billing::integrity`, applied by `oasis_billing::apply`)
//! and records the refund or cancellation in the transaction that applied the payment
//! (`oasis_db::billing::PgBilling`), which also queues the job: nothing is decided here.
use super::billing::log_alerts;
use crate::context::AppContext;
use crate::db::Db;
use crate::gateway::{notes_map, to_subscription};
use crate::jobs::{JobError, JobRegistry};
use crate::payments::Payments;
use chrono::Utc;
use oasis_billing::workflows::sync::apply_in;
use oasis_billing::{Effect, JOB_CANCEL_SUBSCRIPTION, JOB_REFUND};
use oasis_db::billing as store;
use razorpay::{CancelAt, CreateRefund, Notes, PaymentStatus, Refund};
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

/// How long one sender holds a refund (a job whose lease ran out may run again meanwhile; the
/// idempotency key makes even that harmless, the claim makes it rare).
const CLAIM_SECS: i64 = 90;

/// The note that marks a refund as ours (and which refund row it is).
const NOTE_KEY: &str = "oasis_refund";

/// What we send: the same body on every attempt (Razorpay refuses a different body under the
/// same idempotency key). No amount: the whole captured amount.
fn refund_request(row: &store::RefundRow) -> CreateRefund {
    let reason: String = row.reason.chars().take(250).collect();
    CreateRefund {
        notes: Notes::new()
            .with(NOTE_KEY, row.idempotency_key.clone())
            .with("reason", reason),
        ..Default::default()
    }
}

/// Records that Razorpay accepted the refund and tells the fan and the creator (once).
async fn record_sent(db: &Db, payment_id: &str, refund: &Refund) -> Result<String, JobError> {
    let (pid, rid, status) = (
        payment_id.to_owned(),
        refund.id.clone(),
        refund.status.as_str().to_owned(),
    );
    db.tx_as::<_, JobError, _>(move |c| {
        if store::refund_sent(c, &pid, &rid, &status)? {
            oasis_db::notify::enqueue_event(
                c,
                &oasis_notify::Event::PaymentRefunded {
                    payment_id: pid.clone(),
                },
            )?;
        }
        Ok(())
    })
    .await?;
    tracing::warn!(payment = payment_id, refund = %refund.id, amount = refund.amount,
        "billing: refunded a payment of a stale checkout");
    Ok(format!("refund {} of {payment_id} recorded", refund.id))
}

async fn release(db: &Db, payment_id: &str, error: &str, give_up: bool) -> Result<(), JobError> {
    let (pid, e) = (payment_id.to_owned(), error.to_owned());
    db.tx_as(move |c| Ok(store::refund_attempt_failed(c, &pid, &e, give_up)?))
        .await
}

/// A Razorpay failure of a job (retried).
fn razorpay_failed(e: razorpay::Error) -> JobError {
    JobError::Gateway(crate::gateway::gateway_error(e))
}

/// Sends the refund of `payment_id` decided by the billing service, exactly once: claimed by
/// one sender, checked against Razorpay's refunds of the payment first (a crash after Razorpay
/// refunded but before we recorded it), then sent with the row's idempotency key (a lost answer
/// retried gets the same refund back). `Err` = retry later.
pub async fn send_refund(
    db: &Db,
    payments: &Payments,
    payment_id: &str,
) -> Result<String, JobError> {
    let pid = payment_id.to_owned();
    let claimed = db
        .tx_as::<_, JobError, _>(move |c| Ok(store::claim_refund(c, &pid, CLAIM_SECS)?))
        .await?;
    let Some(row) = claimed else {
        let pid = payment_id.to_owned();
        let row = db
            .run_as::<_, JobError, _>(move |c| Ok(store::refund(c, &pid)?))
            .await?;
        return match row {
            Some(r) if r.status == "requested" => Err(JobError::NotYet(format!(
                "refund of {payment_id} is being sent by another worker"
            ))),
            Some(r) => Ok(format!("refund of {payment_id} already {}", r.status)),
            None => Ok(format!("no refund requested for {payment_id}")),
        };
    };
    let client = payments.client();
    let payment = match client.fetch_payment(payment_id).await {
        Ok(p) => p,
        Err(e) => {
            release(db, payment_id, &e.to_string(), false).await?;
            return Err(razorpay_failed(e));
        }
    };
    match payment.status {
        PaymentStatus::Created | PaymentStatus::Failed => {
            let why = format!("payment is {}: nothing to refund", payment.status.as_str());
            release(db, payment_id, &why, true).await?;
            return Ok(why);
        }
        PaymentStatus::Authorized => {
            // Auto-capture follows shortly (Razorpay refunds only captured payments).
            let why = "payment not captured yet";
            release(db, payment_id, why, false).await?;
            return Err(JobError::NotYet(why.to_owned()));
        }
        _ => {}
    }
    if payment.amount_refunded >= payment.amount && payment.amount > 0 {
        // Already refunded: by us (a crash before we recorded it) or by someone else. Never again.
        let refunds = client
            .fetch_payment_refunds(payment_id)
            .await
            .map_err(razorpay_failed)?;
        let ours = refunds
            .items
            .iter()
            .find(|r| r.notes.get(NOTE_KEY) == Some(row.idempotency_key.as_str()))
            .or_else(|| refunds.items.first());
        return match ours {
            Some(r) => record_sent(db, payment_id, r).await,
            None => {
                let why = "payment refunded at Razorpay, but no refund listed";
                release(db, payment_id, why, false).await?;
                Err(JobError::NotYet(why.to_owned()))
            }
        };
    }
    match client
        .refund_payment_idempotent(payment_id, &refund_request(&row), &row.idempotency_key)
        .await
    {
        Ok(r) => record_sent(db, payment_id, &r).await,
        Err(e) if e.is_retryable() => {
            release(db, payment_id, &e.to_string(), false).await?;
            Err(razorpay_failed(e))
        }
        Err(e) => {
            // Razorpay will not refund this payment: an operator must.
            tracing::error!(payment = payment_id, error = %e,
                "billing: Razorpay refused the refund of a stale checkout's payment; refund it by hand");
            release(db, payment_id, &e.to_string(), true).await?;
            Ok(format!("refund of {payment_id} refused: {e}"))
        }
    }
}

/// Cancels the Razorpay subscription of a voided membership now (best effort; `Err` = retry
/// later). Each attempt and its outcome is recorded; the cancelled subscription is merged into
/// the (voided, terminal) membership like any fetch.
pub async fn cancel_subscription(
    db: &Db,
    payments: &Payments,
    subscription_id: &str,
) -> Result<String, JobError> {
    let sid = subscription_id.to_owned();
    let pending = db
        .run_as::<_, JobError, _>(move |c| Ok(store::pending_cancellation(c, &sid)?))
        .await?;
    if pending.is_none() {
        return Ok(format!("{subscription_id}: nothing to cancel"));
    }
    let client = payments.client();
    let (status, outcome, fetched) = match client
        .cancel_subscription(subscription_id, CancelAt::Now)
        .await
    {
        Ok(s) => ("cancelled", "cancelled".to_owned(), Some(s)),
        // Not cancellable: already ended (cancelled, completed, expired)?
        Err(e) if !e.is_retryable() => match client.fetch_subscription(subscription_id).await {
            Ok(s) if s.status.is_terminal() => (
                "cancelled",
                format!("already {} at Razorpay", s.status.as_str()),
                Some(s),
            ),
            _ => ("requested", format!("razorpay: {e}"), None),
        },
        Err(e) => ("requested", format!("razorpay: {e}"), None),
    };
    let (sid, st, out) = (
        subscription_id.to_owned(),
        status.to_owned(),
        outcome.clone(),
    );
    let effects: Vec<Effect> = fetched
        .iter()
        .map(|s| Effect::Subscription {
            snapshot: to_subscription(s, Utc::now()),
            notes: notes_map(&s.notes),
        })
        .collect();
    let now = Utc::now();
    let synced = db
        .tx_as::<_, JobError, _>(move |c| {
            store::record_cancellation_attempt(c, &sid, &st, &out)?;
            Ok(apply_in(
                &mut super::billing_db::PgTx::new(c),
                &effects,
                now,
            )?)
        })
        .await?;
    log_alerts(&synced.alerts);
    if status == "cancelled" {
        tracing::info!(subscription = subscription_id, %outcome, "billing: voided subscription cancelled");
        Ok(format!("{subscription_id}: {outcome}"))
    } else {
        tracing::warn!(subscription = subscription_id, %outcome, "billing: cancelling a voided subscription failed; will retry");
        Err(JobError::NotYet(outcome))
    }
}

pub fn register(registry: &mut JobRegistry, ctx: &AppContext) {
    let (db, payments) = (ctx.db.clone(), ctx.payments.clone());
    registry.register(JOB_REFUND, move |payload: Value| {
        let (db, payments) = (db.clone(), payments.clone());
        async move {
            let Ok(RefundJob { payment_id: id }) = serde_json::from_value(payload.clone()) else {
                tracing::error!(%payload, "billing.refund: payload without payment_id dropped");
                return Ok(());
            };
            let id = id.as_str();
            let outcome = send_refund(&db, &payments, id).await?;
            tracing::info!(payment = id, %outcome, "billing.refund");
            Ok(())
        }
    });
    let (db, payments) = (ctx.db.clone(), ctx.payments.clone());
    registry.register(JOB_CANCEL_SUBSCRIPTION, move |payload: Value| {
        let (db, payments) = (db.clone(), payments.clone());
        async move {
            let Ok(CancelJob { subscription_id: id }) = serde_json::from_value(payload.clone())
            else {
                tracing::error!(%payload, "billing.cancel: payload without subscription_id dropped");
                return Ok(());
            };
            cancel_subscription(&db, &payments, &id).await.map(|_| ())
        }
    });
}

//! Giving money back and stopping charges that grant nothing: the `billing.refund` job (one
//! refund per payment of a stale checkout, through Razorpay's refund API with an idempotency
//! key), the `billing.cancel` job (cancels a voided membership's Razorpay subscription, best
//! effort, each attempt and its outcome recorded), and `oasis billing flags` (payments that did
//! not match what was asked).
//!
//! The billing service decides (`oasis_billing::integrity`, applied by `oasis_billing::apply`)
//! and records the refund or cancellation in the transaction that applied the payment
//! (`oasis_db::billing::PgBilling`), which also queues the job: nothing is decided here.
use super::sync::{apply_effects, cli_context, notes_map, stop_cluster, to_subscription};
use crate::config::Settings;
use crate::context::AppContext;
use crate::db::Db;
use crate::jobs::JobRegistry;
use crate::payments::Payments;
use chrono::Utc;
use oasis_billing::{Effect, JOB_CANCEL_SUBSCRIPTION, JOB_REFUND};
use oasis_db::billing as store;
use razorpay::{CancelAt, CreateRefund, Notes, PaymentStatus, Refund};
use serde_json::Value;

/// How long one sender holds a refund (a job whose lease ran out may run again meanwhile; the
/// idempotency key makes even that harmless, the claim makes it rare).
const CLAIM_SECS: i64 = 90;

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

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
async fn record_sent(db: &Db, payment_id: &str, refund: &Refund) -> Result<String, String> {
    let (pid, rid, status) = (
        payment_id.to_owned(),
        refund.id.clone(),
        refund.status.as_str().to_owned(),
    );
    db.tx(move |c| {
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
    .await
    .map_err(err)?;
    tracing::warn!(payment = payment_id, refund = %refund.id, amount = refund.amount,
        "billing: refunded a payment of a stale checkout");
    Ok(format!("refund {} of {payment_id} recorded", refund.id))
}

async fn release(db: &Db, payment_id: &str, error: &str, give_up: bool) -> Result<(), String> {
    let (pid, e) = (payment_id.to_owned(), error.to_owned());
    db.tx(move |c| Ok(store::refund_attempt_failed(c, &pid, &e, give_up)?))
        .await
        .map_err(err)
}

/// Sends the refund of `payment_id` decided by the billing service, exactly once: claimed by
/// one sender, checked against Razorpay's refunds of the payment first (a crash after Razorpay
/// refunded but before we recorded it), then sent with the row's idempotency key (a lost answer
/// retried gets the same refund back). `Err` = retry later.
pub async fn send_refund(db: &Db, payments: &Payments, payment_id: &str) -> Result<String, String> {
    let pid = payment_id.to_owned();
    let claimed = db
        .tx(move |c| Ok(store::claim_refund(c, &pid, CLAIM_SECS)?))
        .await
        .map_err(err)?;
    let Some(row) = claimed else {
        let pid = payment_id.to_owned();
        let row = db
            .run(move |c| Ok(store::refund(c, &pid)?))
            .await
            .map_err(err)?;
        return match row {
            Some(r) if r.status == "requested" => Err(format!(
                "refund of {payment_id} is being sent by another worker"
            )),
            Some(r) => Ok(format!("refund of {payment_id} already {}", r.status)),
            None => Ok(format!("no refund requested for {payment_id}")),
        };
    };
    let client = payments.client();
    let payment = match client.fetch_payment(payment_id).await {
        Ok(p) => p,
        Err(e) => {
            release(db, payment_id, &e.to_string(), false).await?;
            return Err(e.to_string());
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
            return Err(why.to_owned());
        }
        _ => {}
    }
    if payment.amount_refunded >= payment.amount && payment.amount > 0 {
        // Already refunded: by us (a crash before we recorded it) or by someone else. Never again.
        let refunds = client
            .fetch_payment_refunds(payment_id)
            .await
            .map_err(err)?;
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
                Err(why.to_owned())
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
            Err(e.to_string())
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
) -> Result<String, String> {
    let sid = subscription_id.to_owned();
    let pending = db
        .run(move |c| Ok(store::pending_cancellation(c, &sid)?))
        .await
        .map_err(err)?;
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
    db.tx(move |c| {
        store::record_cancellation_attempt(c, &sid, &st, &out)?;
        apply_effects(c, &effects)?;
        Ok(())
    })
    .await
    .map_err(err)?;
    if status == "cancelled" {
        tracing::info!(subscription = subscription_id, %outcome, "billing: voided subscription cancelled");
        Ok(format!("{subscription_id}: {outcome}"))
    } else {
        tracing::warn!(subscription = subscription_id, %outcome, "billing: cancelling a voided subscription failed; will retry");
        Err(outcome)
    }
}

pub fn register(registry: &mut JobRegistry, ctx: &AppContext) {
    let (db, payments) = (ctx.db.clone(), ctx.payments.clone());
    registry.register(JOB_REFUND, move |payload: Value| {
        let (db, payments) = (db.clone(), payments.clone());
        async move {
            let Some(id) = payload.get("payment_id").and_then(Value::as_str) else {
                tracing::error!(%payload, "billing.refund: payload without payment_id dropped");
                return Ok(());
            };
            let outcome = send_refund(&db, &payments, id).await?;
            tracing::info!(payment = id, %outcome, "billing.refund");
            Ok(())
        }
    });
    let (db, payments) = (ctx.db.clone(), ctx.payments.clone());
    registry.register(JOB_CANCEL_SUBSCRIPTION, move |payload: Value| {
        let (db, payments) = (db.clone(), payments.clone());
        async move {
            let Some(id) = payload.get("subscription_id").and_then(Value::as_str) else {
                tracing::error!(%payload, "billing.cancel: payload without subscription_id dropped");
                return Ok(());
            };
            cancel_subscription(&db, &payments, id).await.map(|_| ())
        }
    });
}

/// `oasis billing flags`: payments that did not match what was asked, newest first, one line
/// each (tab-separated).
pub async fn cli_flags(settings: Settings) -> Result<String, String> {
    let (db, _payments, cluster) = cli_context(settings).await?;
    let rows = db
        .run(|c| Ok(store::payment_flags(c, 1000)?))
        .await
        .map_err(err);
    stop_cluster(cluster).await;
    let rows = rows?;
    if rows.is_empty() {
        return Ok("no flagged payments".into());
    }
    let mut out = format!("{} flagged payment(s)", rows.len());
    for f in rows {
        let what = f
            .razorpay_order_id
            .or(f.razorpay_subscription_id)
            .unwrap_or_default();
        out.push_str(&format!(
            "\n{}\t{}\t{}\texpected {} {}\tpaid {} {}\tuser {}\t{}",
            f.created_at.to_rfc3339(),
            f.razorpay_payment_id,
            f.reason,
            f.expected_amount,
            f.expected_currency,
            f.actual_amount,
            f.actual_currency,
            f.user_id
                .map(|u| u.to_string())
                .unwrap_or_else(|| "-".into()),
            what,
        ));
    }
    Ok(out)
}

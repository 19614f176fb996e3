//! Commissions × billing: a fan's request reserves a slot (commissions), its payment is a
//! billing order (`oasis_billing::workflows::checkout::start_commission_order`) recorded by
//! billing's paths (webhook, Checkout callback, reconciliation), and the recorded payment is
//! announced (`Announcement::CommissionPaid`) so that [`on_commission_paid`] moves the request
//! to `ordered` in the same transaction — or asks billing for a refund of a payment it cannot
//! honour. Rejections and paid cancellations ask billing for the full refund in the transaction
//! of the transition (billing sends it exactly once: `billing.refund`).
//!
//! Jobs: a periodic sweep (`OASIS_COMMISSION_SWEEP_SECS`) expires unpaid requests whose hold
//! ended and completes deliveries older than `OASIS_COMMISSION_AUTOCOMPLETE_DAYS`.
use crate::context::AppContext;
use crate::db::{Db, DbError};
use crate::workflows::billing_db::billing_ports;
use chrono::Utc;
use diesel::PgConnection;
use oasis_billing::notes::CommissionRequestNotes;
use oasis_billing::ports::{BillingStore, CommissionPaid, RefundRequest};
use oasis_billing::workflows::checkout::{Buyer, CommissionPayment};
use oasis_billing::workflows::sync::{self as flow, ConfirmTarget, Confirmed};
use oasis_billing::BillingError;
use oasis_commissions::model::RequestView;
use oasis_commissions::services::{self, PaymentApplied};
use oasis_commissions::{
    Changed, CommissionError, RefundDue, RequestInput, RequestStatus, StatusChange,
};
use oasis_db::billing::PgBilling;
use oasis_db::commissions::{self as repo, PgCommissions};
use oasis_kernel::RepoError;
use std::time::Duration;

/// What the commissions workflows fail with (mapped to HTTP once, in the routes).
#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    #[error(transparent)]
    Commission(#[from] CommissionError),
    #[error(transparent)]
    Billing(#[from] BillingError),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<RepoError> for FlowError {
    fn from(e: RepoError) -> Self {
        Self::Db(e.into())
    }
}

/// A started request: its view and the Razorpay order Checkout opens.
pub struct StartedRequest {
    pub view: RequestView,
    pub order_id: String,
}

/// Starts a fan's request: reserves a slot (one transaction, the offering locked), makes the
/// Razorpay order through billing (between transactions), then attaches the order. A refused
/// request creates nothing at Razorpay; a failed order frees the slot at once.
pub async fn start_request(
    ctx: &AppContext,
    fan: Buyer,
    input: RequestInput,
) -> Result<StartedRequest, FlowError> {
    let hold = ctx.settings.commission_payment_hold_secs;
    let fan_id = fan.id;
    let (request, offering) = ctx
        .db
        .tx_as(move |c| {
            Ok::<_, FlowError>(services::reserve_request(
                &mut PgCommissions(c),
                fan_id,
                &input,
                Utc::now(),
                hold,
            )?)
        })
        .await?;
    let payment = CommissionPayment {
        commission_id: offering.id,
        creator_id: offering.creator_id,
        amount: request.amount,
        currency: request.currency.code().to_owned(),
        request: Some(CommissionRequestNotes {
            request_id: request.id,
            description: request.description.clone(),
            contact_details: request.contact_details.clone(),
            mode_of_delivery: request.mode_of_delivery.clone(),
        }),
    };
    let id = request.id;
    let order_id =
        match crate::workflows::checkout::start_commission_order(ctx, fan, &payment).await {
            Ok(o) => o,
            Err(e) => {
                ctx.db
                    .tx_as(move |c| {
                        Ok::<_, FlowError>(services::abandon_request(&mut PgCommissions(c), id)?)
                    })
                    .await?;
                return Err(e.into());
            }
        };
    let oid = order_id.clone();
    let view = ctx
        .db
        .tx_as(move |c| {
            services::attach_order(&mut PgCommissions(c), id, &oid)?;
            Ok::<_, FlowError>(repo::request_view(c, id)?.ok_or(RepoError::NotFound)?)
        })
        .await?;
    Ok(StartedRequest { view, order_id })
}

/// A request as one of its two parties sees it (404 for anyone else).
pub async fn request_for(ctx: &AppContext, caller: i64, id: i64) -> Result<RequestView, FlowError> {
    ctx.db.run_as(move |c| visible(c, caller, id)).await
}

fn visible(c: &mut PgConnection, caller: i64, id: i64) -> Result<RequestView, FlowError> {
    match repo::request_view(c, id)? {
        Some(v) if v.request.fan_id == caller || v.request.creator_id == caller => Ok(v),
        _ => Err(CommissionError::NotFound.into()),
    }
}

/// The fan's Checkout callback (signature already verified by the route): the order must be
/// this request's; Razorpay's truth is fetched and applied through billing (whichever of the
/// callback, the webhook and reconciliation comes first applies it, once). When Razorpay cannot
/// answer now, a sync job is queued. Answers the request as it is.
pub async fn confirm_payment(
    ctx: &AppContext,
    caller: i64,
    id: i64,
    order_id: String,
    payment_id: String,
) -> Result<RequestView, FlowError> {
    let v = request_for(ctx, caller, id).await?;
    if v.request.fan_id != caller {
        return Err(CommissionError::Forbidden("Only the fan pays for a request.".into()).into());
    }
    if v.request.razorpay_order_id.as_deref() != Some(order_id.as_str()) {
        return Err(CommissionError::invalid(
            "razorpay_order_id",
            "This is not the order of this request.",
        )
        .into());
    }
    if v.request.razorpay_payment_id.is_none() {
        let (db, gw) = billing_ports(ctx);
        let target = ConfirmTarget::Order(order_id.clone());
        match flow::confirm(&db, &gw, caller, &target, &payment_id, Utc::now()).await? {
            Confirmed::Applied(s) => crate::workflows::billing::log_alerts(&s.alerts),
            Confirmed::Deferred(e) => {
                tracing::warn!(request = id, error = %e, "commission confirmation deferred to a sync job");
                let job = crate::workflows::billing::SyncJob::Order { order_id };
                ctx.db
                    .tx_as(move |c| Ok::<_, FlowError>(job.enqueue(c)?))
                    .await?;
            }
        }
        ctx.jobs.wake();
    }
    request_for(ctx, caller, id).await
}

/// Billing recorded an accepted payment of a commission order (inside billing's transaction):
/// the request becomes `ordered`, or — expired with no free slot, cancelled, or a second
/// payment — the payment is refunded in full (billing sends it exactly once).
pub fn on_commission_paid(c: &mut PgConnection, paid: &CommissionPaid) -> Result<(), RepoError> {
    let applied = services::record_payment(
        &mut PgCommissions(c),
        &paid.razorpay_order_id,
        &paid.payment_id,
        paid.amount,
        paid.paid_at,
        Utc::now(),
    )
    .map_err(into_repo)?;
    match applied {
        PaymentApplied::Ordered(changed) => {
            tracing::info!(request = changed.request.id, payment = %paid.payment_id, "commission request paid");
            notify_change(c, &changed)?;
        }
        PaymentApplied::Refund(due) => {
            tracing::warn!(request = due.request_id, payment = %due.payment_id, reason = %due.reason,
                "commission payment cannot be honoured: refunding it");
            request_refund(c, &due, Some(paid.order_id))?;
        }
        PaymentApplied::AlreadyApplied => {}
        PaymentApplied::UnknownOrder => {
            tracing::warn!(order = %paid.razorpay_order_id, "payment of a commission order no request knows");
        }
    }
    Ok(())
}

fn into_repo(e: CommissionError) -> RepoError {
    match e {
        CommissionError::Repo(r) => r,
        other => RepoError::Unavailable(format!("commission payment: {other}")),
    }
}

/// Records the full refund a transition owes (once per payment; billing's `billing.refund`
/// job, queued in this transaction, sends it with its idempotency key).
fn request_refund(
    c: &mut PgConnection,
    due: &RefundDue,
    billing_order: Option<i64>,
) -> Result<(), RepoError> {
    let mut billing = PgBilling(c);
    let order_id = match billing_order {
        Some(o) => Some(o),
        None => {
            let oid = repo::order_of_request(billing.0, due.request_id)?;
            match oid {
                Some(oid) => billing.lock_order(&oid)?.map(|o| o.id),
                None => None,
            }
        }
    };
    billing.request_refund(&RefundRequest {
        payment_id: due.payment_id.clone(),
        amount: due.amount,
        currency: due.currency.code().to_owned(),
        reason: due.reason.clone(),
        user_id: Some(due.fan_id),
        creator_id: Some(due.creator_id),
        tier_id: None,
        membership_id: None,
        order_id,
    })?;
    Ok(())
}

/// Takes the lock of the request's billing order before the request's own: a payment's webhook
/// locks the order, then (announcing `CommissionPaid`) the request, so a transition that locked
/// the request first and the order later (to record its refund) could deadlock with a
/// redelivered webhook of the same payment. Every transaction takes them in billing's order.
fn lock_order_first(c: &mut PgConnection, request_id: i64) -> Result<(), RepoError> {
    if let Some(oid) = repo::order_of_request(c, request_id)? {
        PgBilling(c).lock_order(&oid)?;
    }
    Ok(())
}

/// Queues the in-app notifications of a transition (notify's fan-out, same transaction).
fn notify_change(c: &mut PgConnection, changed: &Changed) -> Result<(), RepoError> {
    use oasis_notify::CommissionStep as Step;
    let r = &changed.request;
    let (step, actor) = match r.status {
        RequestStatus::Ordered => (Step::Paid, Some(r.fan_id)),
        RequestStatus::Accepted => (Step::Accepted, Some(r.creator_id)),
        RequestStatus::Delivered => (Step::Delivered, Some(r.creator_id)),
        RequestStatus::Rejected => (Step::Rejected, Some(r.creator_id)),
        // The creator never saw an unpaid request.
        RequestStatus::Cancelled if changed.from != RequestStatus::AwaitingPayment => {
            (Step::Cancelled, Some(r.fan_id))
        }
        RequestStatus::Completed => (Step::Completed, changed.by),
        _ => return Ok(()),
    };
    oasis_db::notify::enqueue_event(
        c,
        &oasis_notify::Event::CommissionChanged {
            request_id: r.id,
            step,
            actor,
        },
    )
}

/// A completed commission's money becomes transferable: its payment's ledger hold is released
/// in the transaction that completes it (billing's `release_commission_hold_in`).
fn release_hold(
    c: &mut PgConnection,
    changed: &Changed,
    policy: oasis_billing::ledger::Policy,
) -> Result<(), FlowError> {
    use oasis_billing::ledger::Release;
    let (RequestStatus::Completed, Some(pid)) =
        (changed.request.status, &changed.request.razorpay_payment_id)
    else {
        return Ok(());
    };
    let mut t = crate::workflows::billing_db::PgTx::new(c, policy);
    match oasis_billing::workflows::ledger::release_commission_hold_in(&mut t, pid, Utc::now())? {
        Release::NotPosted => tracing::warn!(request = changed.request.id, payment = %pid,
            "completed commission's payment is not in the earnings ledger yet: its hold stays until released"),
        Release::Released(_) | Release::NotHeld => {}
    }
    Ok(())
}

/// One party's change of status (`PATCH`), in one transaction with the refund it owes and its
/// notifications.
pub async fn change_status(
    ctx: &AppContext,
    caller: i64,
    id: i64,
    change: StatusChange,
) -> Result<RequestView, FlowError> {
    let days = ctx.settings.commission_autocomplete_days;
    let policy = ctx.payments.ledger_policy();
    let (view, refunded) = ctx
        .db
        .tx_as(move |c| {
            lock_order_first(c, id)?;
            let changed = services::change_status(
                &mut PgCommissions(c),
                caller,
                id,
                &change,
                Utc::now(),
                days,
            )?;
            if let Some(due) = &changed.refund {
                request_refund(c, due, None)?;
            }
            release_hold(c, &changed, policy)?;
            notify_change(c, &changed)?;
            Ok::<_, FlowError>((visible(c, caller, id)?, changed.refund.is_some()))
        })
        .await?;
    if refunded {
        ctx.jobs.wake();
    }
    Ok(view)
}

/// How many requests one sweep handles per kind.
const SWEEP_BATCH: i64 = 200;

/// What one sweep did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    pub expired: usize,
    pub completed: usize,
}

/// Expires unpaid requests whose hold ended (their slots free up) and completes deliveries
/// older than the autocomplete delay; each request in its own transaction.
pub async fn sweep(
    db: &Db,
    days: i64,
    policy: oasis_billing::ledger::Policy,
) -> Result<Swept, FlowError> {
    let now = Utc::now();
    let (expiring, completing) = db
        .tx_as(move |c| {
            let mut s = PgCommissions(c);
            use oasis_commissions::CommissionStore;
            let before = now - chrono::Duration::days(days);
            Ok::<_, FlowError>((
                s.due_expiries(now, SWEEP_BATCH)?,
                s.due_completions(before, SWEEP_BATCH)?,
            ))
        })
        .await?;
    let mut out = Swept::default();
    for (ids, to) in [
        (expiring, RequestStatus::Expired),
        (completing, RequestStatus::Completed),
    ] {
        for id in ids {
            let done = db
                .tx_as(move |c| {
                    lock_order_first(c, id)?;
                    let changed =
                        services::system_change(&mut PgCommissions(c), id, to, Utc::now(), days)?;
                    if let Some(ch) = &changed {
                        release_hold(c, ch, policy)?;
                        notify_change(c, ch)?;
                    }
                    Ok::<_, FlowError>(changed.is_some())
                })
                .await?;
            if done {
                match to {
                    RequestStatus::Expired => out.expired += 1,
                    _ => out.completed += 1,
                }
            }
        }
    }
    Ok(out)
}

/// Starts the periodic sweep (ends with the server's context).
pub fn register(ctx: &AppContext) {
    let every = Duration::from_secs(ctx.settings.commission_sweep_secs);
    let days = ctx.settings.commission_autocomplete_days;
    // Ends when the server's context (which owns the Razorpay peer) is gone.
    let weak = ctx.payments.downgrade();
    let (db, policy) = (ctx.db.clone(), ctx.payments.ledger_policy());
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            if crate::payments::Payments::upgrade(&weak).is_none() {
                return;
            }
            match sweep(&db, days, policy).await {
                Ok(s) if s == Swept::default() => {}
                Ok(s) => tracing::info!(
                    expired = s.expired,
                    completed = s.completed,
                    "commission sweep"
                ),
                Err(e) => tracing::warn!(error = %e, "commission sweep failed"),
            }
        }
    });
}

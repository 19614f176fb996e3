//! The app's entry points to billing's checkout workflows: the ports over the pool and the
//! Razorpay peer, the wall clock and tokio's timer, and the job runner woken when a start
//! queued work. Handlers (and the guest checkout workflow) call these and map the result.
use crate::context::AppContext;
use crate::workflows::billing_db::{billing_ports, TokioPause};
use chrono::Utc;
use oasis_billing::workflows::checkout::{self, Buyer, CommissionPayment};
use oasis_billing::{BillingError, BillingPeriod};

/// Starts (or returns the pending) recurring membership of `user_id` in `tier_id`, billed per
/// `period`.
pub async fn start_recurring(
    ctx: &AppContext,
    user_id: i64,
    tier_id: i64,
    period: BillingPeriod,
) -> Result<String, BillingError> {
    let (db, gw) = billing_ports(ctx);
    let started =
        checkout::start_recurring(&db, &gw, &TokioPause, Utc::now(), user_id, tier_id, period)
            .await?;
    if started.replaced_stale {
        tracing::info!(
            user = user_id,
            tier = tier_id,
            "billing: a stale pending checkout was replaced"
        );
        ctx.jobs.wake();
    }
    Ok(started.id)
}

/// Starts a one-time purchase of a tier (one period of access, no renewal).
pub async fn start_onetime(
    ctx: &AppContext,
    user_id: i64,
    username: &str,
    tier_id: i64,
    currency: Option<&str>,
) -> Result<String, BillingError> {
    let (db, gw) = billing_ports(ctx);
    let buyer = Buyer {
        id: user_id,
        username: username.to_owned(),
    };
    let started = checkout::start_onetime(&db, &gw, Utc::now(), &buyer, tier_id, currency).await?;
    Ok(started.id)
}

/// Starts the payment of a commission (for the commissions domain); see
/// [`checkout::start_commission_order`]. Returns the `order_…` id for Checkout.
pub async fn start_commission_order(
    ctx: &AppContext,
    payer: Buyer,
    commission: &CommissionPayment,
) -> Result<String, BillingError> {
    let (db, gw) = billing_ports(ctx);
    let started =
        checkout::start_commission_order(&db, &gw, Utc::now(), &payer, commission).await?;
    Ok(started.id)
}

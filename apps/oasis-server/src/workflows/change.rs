//! Changing a membership's tier, the shell's part: the preview (`GET
//! /subscriptions/change/preview`), the change (`POST /subscriptions/change/`) and the
//! `billing.change` job. The rules are billing's ([`oasis_billing::change`]); the rows and job
//! queueing are `oasis_db::billing_change`'s.
//!
//! The change is recorded (`requested`) before Razorpay is asked, with a `billing.change` job
//! due `OASIS_BILLING_CHANGE_SKEW_SECS` later: should the answer be lost or the process die,
//! the job fetches the subscription and records what Razorpay did (the new plan now, the new
//! plan scheduled, or nothing). An update applies now (an upgrade: the membership moves at once
//! and Razorpay's prorated charge is recorded and accepted as the preview's) or at the cycle end
//! (a downgrade: `scheduled`, the membership moves with the first charge at the new price or
//! when the job finds the cycle end passed). Where Razorpay refuses an update (UPI and eMandate
//! mandates), the membership is *replaced*: the old subscription is cancelled at its cycle end
//! and a new one starts then (`start_at`), authorised by the fan in Checkout.
use super::billing::ports;
use super::billing_db::PgTx;
use crate::context::AppContext;
use crate::db::Db;
use crate::error::ApiError;
use crate::jobs::{JobError, JobRegistry};
use crate::payments::Payments;
use crate::routes::billing::api_error;
use chrono::{Duration, Utc};
use oasis_billing::change::{
    self, ChangeMethod, ChangePreview, ChangeState, Changeable, CurrentCycle, Effective,
    UpdateOutcome,
};
use oasis_billing::gateway::{
    GatewayError, PaymentGateway, RemoteSubscription, SubscriptionRequest,
};
use oasis_billing::notes::{CheckoutNotes, Payer};
use oasis_billing::ports::Offer;
use oasis_billing::workflows::sync::{apply_in, sync_subscription_and_charges};
use oasis_billing::{BillingError, Effect};
use oasis_db::billing::{self as bdb, tier, Reservation};
use oasis_db::billing_change::{self as store, NewChange, JOB_CHANGE};
use oasis_db::billing_pause::lock_for_pause;
use serde::Deserialize;
use serde_json::Value;

/// What the change did: the preview's numbers, and for a replacement the new subscription the
/// fan authorises in Checkout.
#[derive(Debug, Clone)]
pub struct ChangeAnswer {
    pub preview: ChangePreview,
    pub state: ChangeState,
    /// A replacement's subscription (`sub_…`) and the key Checkout opens with.
    pub replacement: Option<(String, String)>,
}

fn job_to_api(e: JobError) -> ApiError {
    match e {
        JobError::Db(e) => e.into(),
        JobError::Billing(e) => api_error(e),
        JobError::Gateway(e) => api_error(BillingError::Gateway(e)),
        other => ApiError::internal(other),
    }
}

/// The membership and both tiers, checked: what a preview and a change start from.
struct Checked {
    membership_id: i64,
    user_id: i64,
    from_tier_id: i64,
    subscription_id: String,
    cycle: CurrentCycle,
    offer: Offer,
    to_name: String,
    plan_id: Option<String>,
}

fn no_membership() -> ApiError {
    api_error(BillingError::invalid(
        "tier",
        "You have no membership of this tier to change.",
    ))
}

/// Reads and checks (locked inside the caller's transaction).
fn check(
    c: &mut diesel::PgConnection,
    user_id: i64,
    tier_id: i64,
    to_id: i64,
) -> Result<Checked, ApiError> {
    let Some((m, open)) = lock_for_pause(c, user_id, tier_id)? else {
        return Err(no_membership());
    };
    if let Some(ch) = store::open_change(c, m.id)? {
        return Err(api_error(BillingError::invalid(
            "tier",
            format!(
                "This membership is already changing tier ({}).",
                ch.state()?.as_str()
            ),
        )));
    }
    let state = m.state()?;
    let member = Changeable {
        status: state.status,
        cancel_at_period_end: state.cancel_at_period_end,
        current_start: state.current_start,
        current_end: state.current_end,
        period: m.period()?,
        amount: m.amount,
        currency: m.currency.clone(),
        pause_open: open.is_some(),
    };
    let from = tier(c, m.tier_id)?
        .ok_or_else(|| api_error(BillingError::invalid("tier", "No such tier.")))?
        .to_ref();
    let to = tier(c, to_id)?;
    let (cycle, offer) =
        change::check_change(&member, &from, to.as_ref().map(|t| t.to_ref()).as_ref())
            .map_err(api_error)?;
    if bdb::lock_live_recurring(c, user_id, to_id)?.is_some() {
        return Err(api_error(BillingError::invalid(
            "to",
            "You already have a membership of that tier.",
        )));
    }
    let Some(subscription_id) = m.razorpay_subscription_id.clone() else {
        return Err(no_membership());
    };
    let plan_id = bdb::plan_id(c, &offer)?;
    Ok(Checked {
        membership_id: m.id,
        user_id,
        from_tier_id: m.tier_id,
        subscription_id,
        cycle,
        to_name: to.map(|t| t.name).unwrap_or_default(),
        offer,
        plan_id,
    })
}

/// How Razorpay will change this subscription: by its mandate's method.
async fn method_of(ctx: &AppContext, subscription_id: &str) -> Result<ChangeMethod, ApiError> {
    let (_, gw) = ports(&ctx.db, &ctx.payments);
    let remote = gw
        .fetch_subscription(subscription_id, Utc::now())
        .await
        .map_err(|e| api_error(e.into()))?;
    Ok(change::method_for(remote.payment_method.as_deref()))
}

/// `GET /subscriptions/change/preview`: what changing the caller's membership of `tier_id` to
/// `to_id` would do: by a plan update at Razorpay, or by a replacement where Razorpay refuses
/// to update the subscription's mandate.
pub async fn preview_change(
    ctx: &AppContext,
    user_id: i64,
    tier_id: i64,
    to_id: i64,
) -> Result<ChangePreview, ApiError> {
    // Locks only for this statement (no transaction): a read.
    let checked = ctx
        .db
        .run(move |c| check(c, user_id, tier_id, to_id))
        .await?;
    let method = method_of(ctx, &checked.subscription_id).await?;
    change::preview(&checked.cycle, &checked.offer, Utc::now(), method).map_err(api_error)
}

/// `POST /subscriptions/change/`: makes the change the preview announces.
pub async fn request_change(
    ctx: &AppContext,
    user_id: i64,
    tier_id: i64,
    to_id: i64,
) -> Result<ChangeAnswer, ApiError> {
    let checked = ctx
        .db
        .run(move |c| check(c, user_id, tier_id, to_id))
        .await?;
    let method = method_of(ctx, &checked.subscription_id).await?;
    let (bdb_port, gw) = ports(&ctx.db, &ctx.payments);
    let plan_id = oasis_billing::workflows::checkout::plan_for(
        &bdb_port,
        &gw,
        &checked.to_name,
        &checked.offer,
        checked.plan_id.clone(),
    )
    .await
    .map_err(api_error)?;
    let now = Utc::now();
    let skew = Duration::seconds(ctx.settings.billing_change_skew_secs);
    let preview =
        change::preview(&checked.cycle, &checked.offer, now, method).map_err(api_error)?;
    let (charge_min, charge_now) = if preview.effective == Effective::Now {
        change::charge_window(&checked.cycle, &checked.offer, now, skew).map_err(api_error)?
    } else {
        (0, 0)
    };
    let new = NewChange {
        membership_id: checked.membership_id,
        from_tier_id: checked.from_tier_id,
        to_tier_id: checked.offer.tier_id,
        razorpay_subscription_id: checked.subscription_id.clone(),
        to_plan_id: plan_id.clone(),
        method,
        effective: preview.effective,
        from_amount: checked.cycle.amount,
        to_amount: checked.offer.amount,
        currency: checked.cycle.currency.clone(),
        charge_now,
        charge_min,
        effective_at: preview.next_charge_at,
    };
    // Recorded before Razorpay is asked (the same checks again, now in the transaction).
    let row = ctx
        .db
        .tx(move |c| {
            check(c, user_id, tier_id, to_id)?;
            Ok(store::insert(c, &new, now + skew)?)
        })
        .await?;
    ctx.jobs.wake();
    let db = ctx.db.clone();
    let policy = ctx.payments.ledger_policy();
    let answer = match method {
        ChangeMethod::Update => {
            match gw
                .update_subscription(
                    &row.razorpay_subscription_id,
                    &plan_id,
                    preview.effective == Effective::CycleEnd,
                    now,
                )
                .await
            {
                Ok(remote) => {
                    let state = record_update(&db, &gw, policy, row.id, remote)
                        .await
                        .map_err(job_to_api)?;
                    if state == ChangeState::Failed {
                        return Err(ApiError::bad_gateway(
                            "Razorpay did not change the subscription; try again.",
                        ));
                    }
                    ChangeAnswer {
                        preview,
                        state,
                        replacement: None,
                    }
                }
                // Razorpay refuses to update this subscription: replace it instead.
                Err(GatewayError::Rejected { description, .. }) => {
                    tracing::info!(change = row.id, reason = %description, "billing: update refused; replacing");
                    let preview =
                        change::preview(&checked.cycle, &checked.offer, now, ChangeMethod::Replace)
                            .map_err(api_error)?;
                    let id = row.id;
                    db.tx(move |c| Ok(store::as_replacement(c, id)?)).await?;
                    let sub = replace(ctx, &checked, &plan_id, row.id)
                        .await
                        .map_err(job_to_api)?;
                    ChangeAnswer {
                        preview,
                        state: ChangeState::Applied,
                        replacement: Some((sub, gw.public_key().to_owned())),
                    }
                }
                Err(e) => {
                    // Unknown outcome: the `billing.change` job resolves it from the
                    // subscription.
                    let (id, msg) = (row.id, e.to_string());
                    db.run_as(move |c| Ok::<_, JobError>(store::attempt_failed(c, id, &msg)?))
                        .await
                        .map_err(job_to_api)?;
                    return Err(api_error(e.into()));
                }
            }
        }
        ChangeMethod::Replace => {
            let sub = replace(ctx, &checked, &plan_id, row.id)
                .await
                .map_err(job_to_api)?;
            ChangeAnswer {
                preview,
                state: ChangeState::Applied,
                replacement: Some((sub, gw.public_key().to_owned())),
            }
        }
    };
    ctx.jobs.wake();
    Ok(answer)
}

/// Queues the change's notification ("changed", never "cancelled").
pub fn notify_change(
    c: &mut diesel::PgConnection,
    change_id: i64,
) -> Result<(), oasis_kernel::RepoError> {
    let Some(n) = store::notice(c, change_id)? else {
        return Ok(());
    };
    oasis_db::notify::enqueue_event(
        c,
        &oasis_notify::Event::MembershipChanged {
            change_id,
            fan_id: n.fan_id,
            creator_id: n.creator_id,
            from_tier: n.from_tier,
            to_tier: n.to_tier,
            effective_at: (n.effective == Effective::CycleEnd).then_some(n.effective_at),
        },
    )
}

/// Records Razorpay's answer to an update (or the subscription as fetched after a lost one):
/// the membership moves now, the change waits for the cycle end, or it was not made. Then an
/// immediate update's prorated charge is recorded from the subscription's invoices (accepted
/// by the amount check as the change's). Returns the change's new state.
async fn record_update(
    db: &Db,
    gw: &impl PaymentGateway,
    policy: oasis_billing::ledger::Policy,
    change_id: i64,
    remote: RemoteSubscription,
) -> Result<ChangeState, JobError> {
    let now = Utc::now();
    let sid = remote.snapshot.id.clone();
    let state = db
        .tx_as(move |c| -> Result<ChangeState, JobError> {
            let Some(row) = store::lock(c, change_id)? else {
                return Ok(ChangeState::Failed);
            };
            if row.state()? != ChangeState::Requested {
                return Ok(row.state()?);
            }
            let outcome = change::resolve_step(
                &remote.plan_id,
                remote.has_scheduled_changes,
                &row.to_plan_id,
                row.effective()?,
            );
            let effects = vec![Effect::Subscription {
                snapshot: remote.snapshot,
                notes: remote.notes,
            }];
            apply_in(&mut PgTx::new(c, policy), &effects, now)?;
            let state = match outcome {
                UpdateOutcome::AppliedNow => {
                    store::move_membership(c, &row)?;
                    ChangeState::Applied
                }
                UpdateOutcome::Scheduled => {
                    store::mark_scheduled(c, &row)?;
                    ChangeState::Scheduled
                }
                UpdateOutcome::NotMade => {
                    store::mark_failed(c, change_id, "Razorpay did not make the change")?;
                    return Ok(ChangeState::Failed);
                }
            };
            notify_change(c, change_id)?;
            tracing::info!(
                change = change_id,
                state = state.as_str(),
                "billing: change recorded"
            );
            Ok(state)
        })
        .await?;
    if state == ChangeState::Applied {
        // A failure here leaves the charge to the change's job (due at the skew), which
        // records it when it finds the change applied and its charge unclaimed.
        if let Err(e) = record_charge(db, gw, policy, &sid).await {
            tracing::warn!(change = change_id, error = %e, "billing: prorated charge not recorded yet");
        }
    }
    Ok(state)
}

/// Records an immediate update's prorated charge from the subscription's invoices (the amount
/// check accepts it as the change's).
async fn record_charge(
    db: &Db,
    gw: &impl PaymentGateway,
    policy: oasis_billing::ledger::Policy,
    subscription_id: &str,
) -> Result<(), JobError> {
    let bdb_port = super::billing_db::PgBillingDb(db.pool().clone(), policy);
    let synced = sync_subscription_and_charges(&bdb_port, gw, subscription_id, Utc::now()).await?;
    for alert in &synced.synced.alerts {
        tracing::error!(subscription = subscription_id, "{alert}");
    }
    Ok(())
}

/// A replacement: the old subscription is cancelled at its cycle end (access until then) and a
/// new membership of the target tier is reserved, its subscription starting at the period end
/// (the fan authorises it in Checkout). Returns the new subscription's id.
async fn replace(
    ctx: &AppContext,
    checked: &Checked,
    plan_id: &str,
    change_id: i64,
) -> Result<String, JobError> {
    let (_, gw) = ports(&ctx.db, &ctx.payments);
    let policy = ctx.payments.ledger_policy();
    let now = Utc::now();
    let old = gw
        .cancel_subscription(&checked.subscription_id, true, now)
        .await?;
    let (user_id, offer, membership_id) = (
        checked.user_id,
        checked.offer.clone(),
        checked.membership_id,
    );
    let reserved = ctx
        .db
        .tx_as(move |c| -> Result<i64, JobError> {
            let effects = vec![Effect::Subscription {
                snapshot: old.snapshot,
                notes: old.notes,
            }];
            apply_in(&mut PgTx::new(c, policy), &effects, now)?;
            bdb::cancel_membership(c, membership_id, true, now)?;
            match bdb::reserve_recurring(c, user_id, &offer)? {
                Reservation::New(id) => Ok(id),
                Reservation::Existing(_) => Err(JobError::Billing(BillingError::invalid(
                    "to",
                    "You already have a membership of that tier.",
                ))),
            }
        })
        .await?;
    let sub = gw
        .create_subscription(&SubscriptionRequest {
            plan_id: plan_id.to_owned(),
            total_count: checked.offer.period.total_count(),
            notes: CheckoutNotes::Recurring {
                payer: Payer::Id(checked.user_id),
                tier_id: checked.offer.tier_id,
                period: checked.offer.period,
            },
            start_at: Some(checked.cycle.current_end),
        })
        .await;
    let sub = match sub {
        Ok(s) => s,
        Err(e) => {
            let msg = e.to_string();
            ctx.db
                .tx_as(move |c| -> Result<(), JobError> {
                    bdb::drop_reservation(c, reserved)?;
                    store::attempt_failed(c, change_id, &msg)?;
                    Ok(())
                })
                .await?;
            return Err(e.into());
        }
    };
    let s = sub.clone();
    ctx.db
        .tx_as(move |c| -> Result<(), JobError> {
            bdb::attach_subscription(c, reserved, &s)?;
            store::mark_replaced(c, change_id, reserved)?;
            notify_change(c, change_id)?;
            Ok(())
        })
        .await?;
    Ok(sub)
}

#[derive(Deserialize)]
struct ChangeJob {
    change_id: i64,
}

/// The `billing.change` job: resolves a change whose answer was lost (from the subscription at
/// Razorpay), and moves a scheduled downgrade once its cycle end has passed.
pub async fn run_change(
    db: &Db,
    gw: &impl PaymentGateway,
    policy: oasis_billing::ledger::Policy,
    change_id: i64,
) -> Result<(), JobError> {
    let row = db
        .run_as(move |c| Ok::<_, JobError>(store::lock(c, change_id)?))
        .await?;
    let Some(row) = row else { return Ok(()) };
    let now = Utc::now();
    match (row.state()?, row.method()?) {
        (ChangeState::Requested, ChangeMethod::Update) => {
            let remote = gw
                .fetch_subscription(&row.razorpay_subscription_id, now)
                .await?;
            record_update(db, gw, policy, change_id, remote).await?;
            Ok(())
        }
        (ChangeState::Requested, ChangeMethod::Replace) => {
            // Never completed (the process died between the steps): the fan is told by the
            // change's state and may ask again; the old subscription keeps its state.
            db.tx_as(move |c| {
                Ok::<_, JobError>(store::mark_failed(
                    c,
                    change_id,
                    "the replacement was not completed",
                )?)
            })
            .await
        }
        (ChangeState::Scheduled, _) if now >= row.effective_at => {
            let remote = gw
                .fetch_subscription(&row.razorpay_subscription_id, now)
                .await?;
            let made = remote.plan_id == row.to_plan_id || remote.has_scheduled_changes;
            db.tx_as(move |c| -> Result<(), JobError> {
                let Some(row) = store::lock(c, change_id)? else {
                    return Ok(());
                };
                if row.state()? != ChangeState::Scheduled {
                    return Ok(());
                }
                if made {
                    store::move_membership(c, &row)?;
                } else {
                    store::mark_failed(c, change_id, "the scheduled change vanished at Razorpay")?;
                }
                Ok(())
            })
            .await
        }
        // Applied now, but its prorated charge not yet recorded (the run that applied it
        // failed after committing): record it from the subscription's invoices.
        (ChangeState::Applied, ChangeMethod::Update)
            if row.effective()? == Effective::Now
                && row.charge_now > 0
                && row.charge_payment_id.is_none() =>
        {
            record_charge(db, gw, policy, &row.razorpay_subscription_id).await
        }
        _ => Ok(()),
    }
}

fn change_id(payload: &Value) -> Option<i64> {
    match serde_json::from_value::<ChangeJob>(payload.clone()) {
        Ok(j) => Some(j.change_id),
        Err(_) => {
            tracing::error!(%payload, "{JOB_CHANGE}: payload without change_id dropped");
            None
        }
    }
}

pub fn register(registry: &mut JobRegistry, ctx: &AppContext) {
    let (db, payments): (Db, Payments) = (ctx.db.clone(), ctx.payments.clone());
    registry.register(JOB_CHANGE, move |payload: Value| {
        let (db, payments) = (db.clone(), payments.clone());
        async move {
            let Some(id) = change_id(&payload) else {
                return Ok(());
            };
            let (_, gw) = ports(&db, &payments);
            run_change(&db, &gw, payments.ledger_policy(), id).await
        }
    });
}

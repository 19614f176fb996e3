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
//! mandates), the membership is *replaced*: a new subscription starts when the old one's paid
//! period ends (`start_at`), authorised by the fan in Checkout, and the old one is cancelled at
//! its cycle end.
//!
//! A replacement is made in steps, each recorded before the next, so that a crash or a lost
//! answer anywhere leaves a state the `billing.change` job finishes (never undoes): (1) the new
//! membership is reserved in the transaction that records the change (or turns the refused
//! update into a replacement), with its bridge period (access to the new tier from the old
//! period's end for `OASIS_BILLING_REPLACE_GRACE_SECS`, while its first charge is awaited);
//! (2) its subscription is created at Razorpay, carrying the change's id in its notes, and
//! attached — a lost answer is found again by that note instead of being made twice; (3) only
//! then is the old subscription cancelled at its cycle end, and the change marked applied. The
//! old subscription is never cancelled before the new one exists (so the fan never loses the
//! membership), and the new one is never left beside an uncancelled old one (the job finishes
//! step 3; should the old period end first, the new subscription is cancelled instead, so
//! nothing is charged twice). The request and the job take turns by claiming the change
//! (`claimed_by`/`claimed_until`, for `OASIS_BILLING_CHANGE_SKEW_SECS`).
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
    let grace = Duration::seconds(ctx.settings.billing_replace_grace_secs);
    let (offer, effective_at) = (checked.offer.clone(), preview.next_charge_at);
    // Recorded before Razorpay is asked (the same checks again, now in the transaction); a
    // replacement's membership is reserved in the same transaction.
    let row = ctx
        .db
        .tx(move |c| {
            check(c, user_id, tier_id, to_id)?;
            let row = store::insert(c, &new, now + skew)?;
            if method == ChangeMethod::Replace {
                let reserved = reserve_replacement(c, user_id, &offer, effective_at, grace)?;
                store::as_replacement(c, row.id, reserved)?;
            }
            Ok(row)
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
                    let (id, offer, at) = (row.id, checked.offer.clone(), preview.next_charge_at);
                    db.tx(move |c| {
                        let reserved = reserve_replacement(c, user_id, &offer, at, grace)?;
                        Ok(store::as_replacement(c, id, reserved)?)
                    })
                    .await?;
                    let sub = replace_now(ctx, &gw, row.id).await?;
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
            let sub = replace_now(ctx, &gw, row.id).await?;
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
    let bdb_port = super::billing_db::PgBillingDb(db.clone(), policy);
    let synced = sync_subscription_and_charges(&bdb_port, gw, subscription_id, Utc::now()).await?;
    for alert in &synced.synced.alerts {
        tracing::error!(subscription = subscription_id, "{alert}");
    }
    Ok(())
}

/// Reserves a replacement's membership of the new tier (inside the transaction that records
/// the change as a replacement) with its bridge period: access from `effective_at` (the old
/// period's end, where its first charge is due) for `grace`, until that charge is judged.
fn reserve_replacement(
    c: &mut diesel::PgConnection,
    user_id: i64,
    offer: &Offer,
    effective_at: chrono::DateTime<Utc>,
    grace: Duration,
) -> Result<i64, ApiError> {
    match bdb::reserve_recurring(c, user_id, offer)? {
        Reservation::New(id) => {
            store::bridge(c, id, effective_at, effective_at + grace)?;
            Ok(id)
        }
        Reservation::Existing(_) => Err(api_error(BillingError::invalid(
            "to",
            "You already have a membership of that tier.",
        ))),
    }
}

/// The request's part of a replacement: [`finish_replacement`] at once; what is left undone
/// the `billing.change` job finishes.
async fn replace_now(
    ctx: &AppContext,
    gw: &impl PaymentGateway,
    change_id: i64,
) -> Result<String, ApiError> {
    let lease = Duration::seconds(ctx.settings.billing_change_skew_secs.max(1));
    let policy = ctx.payments.ledger_policy();
    match finish_replacement(&ctx.db, gw, policy, change_id, lease)
        .await
        .map_err(job_to_api)?
    {
        Replaced::Done(sub) => Ok(sub),
        Replaced::Busy => Err(ApiError::bad_gateway(
            "This change of tier is being completed; look again in a moment.",
        )),
        Replaced::Failed(why) => Err(ApiError::bad_gateway(format!(
            "Razorpay did not make the replacement ({why}); your membership is unchanged."
        ))),
    }
}

/// Where [`finish_replacement`] left a replacement.
#[derive(Debug)]
enum Replaced {
    /// Applied: the new subscription (`sub_…`), the old one cancelled at its cycle end.
    Done(String),
    /// Another worker holds the change (it finishes it, or its claim expires).
    Busy,
    /// Given up, with the reason; nothing is left at Razorpay to charge twice.
    Failed(String),
}

/// Finishes a replacement from whatever step its durable state is at: creates (or finds, by
/// its change note) and attaches the new subscription, then cancels the old one at its cycle
/// end, then marks the change applied. Safe to run again at any point, and by one worker at a
/// time (the change's claim).
async fn finish_replacement(
    db: &Db,
    gw: &impl PaymentGateway,
    policy: oasis_billing::ledger::Policy,
    change_id: i64,
    lease: Duration,
) -> Result<Replaced, JobError> {
    let token = uuid::Uuid::new_v4().to_string();
    let claim = |db: Db| {
        let token = token.clone();
        async move {
            db.tx_as(move |c| Ok::<_, JobError>(store::claim(c, change_id, &token, lease)?))
                .await
        }
    };
    if !claim(db.clone()).await? {
        let done = db
            .run_as(move |c| -> Result<Option<String>, JobError> {
                let Some(row) = store::lock(c, change_id)? else {
                    return Ok(None);
                };
                match (row.state()?, row.new_membership_id) {
                    (ChangeState::Applied, Some(m)) => {
                        Ok(store::membership_subscription(c, m)?.flatten())
                    }
                    _ => Ok(None),
                }
            })
            .await?;
        return Ok(done.map_or(Replaced::Busy, Replaced::Done));
    }
    let found = db
        .run_as(move |c| -> Result<_, JobError> {
            let Some(row) = store::lock(c, change_id)? else {
                return Ok(None);
            };
            let owner = store::owner(c, row.membership_id)?;
            let sub = match row.new_membership_id {
                Some(m) => store::membership_subscription(c, m)?,
                None => None,
            };
            Ok(Some((row, owner, sub)))
        })
        .await?;
    let Some((row, (user_id, period), sub)) = found else {
        return Ok(Replaced::Failed("the change is gone".into()));
    };
    let fail = |why: &'static str| {
        let db = db.clone();
        async move {
            db.tx_as(move |c| Ok::<_, JobError>(store::mark_failed(c, change_id, why)?))
                .await?;
            tracing::warn!(change = change_id, "billing: replacement given up: {why}");
            Ok::<_, JobError>(Replaced::Failed(why.to_owned()))
        }
    };
    let attempt_failed = |e: GatewayError| {
        let db = db.clone();
        async move {
            let msg = e.to_string();
            db.tx_as(move |c| Ok::<_, JobError>(store::attempt_failed(c, change_id, &msg)?))
                .await?;
            Err::<Replaced, JobError>(e.into())
        }
    };
    if row.state()? != ChangeState::Requested || row.method()? != ChangeMethod::Replace {
        return Ok(Replaced::Busy);
    }
    let (Some(new_membership), Some(sub)) = (row.new_membership_id, sub) else {
        // The reserved membership is gone (the fan's own new checkout of that tier dropped
        // it): nothing was made at Razorpay for the old subscription.
        return fail("the replacement's membership is gone").await;
    };
    // Step 2: the new subscription, created once (a lost answer is found by its note).
    let sid = match sub {
        Some(sid) => sid,
        None => {
            let since = row.created_at - Duration::minutes(10);
            let sid = match gw
                .find_change_subscription(&row.to_plan_id, change_id, since)
                .await
            {
                Ok(Some(sid)) => sid,
                Ok(None) => {
                    if !claim(db.clone()).await? {
                        return Ok(Replaced::Busy);
                    }
                    let made = gw
                        .create_subscription(&SubscriptionRequest {
                            plan_id: row.to_plan_id.clone(),
                            total_count: period.total_count(),
                            notes: CheckoutNotes::Recurring {
                                payer: Payer::Id(user_id),
                                tier_id: row.to_tier_id,
                                period,
                            },
                            start_at: Some(row.effective_at),
                            change_id: Some(change_id),
                        })
                        .await;
                    match made {
                        Ok(sid) => sid,
                        // Refused (e.g. its start has passed): nothing was made, the old
                        // subscription goes on as it was.
                        Err(GatewayError::Rejected { .. }) => {
                            db.tx_as(move |c| {
                                Ok::<_, JobError>(bdb::drop_reservation(c, new_membership)?)
                            })
                            .await?;
                            return fail("Razorpay refused the new subscription").await;
                        }
                        Err(e) => return attempt_failed(e).await,
                    }
                }
                Err(e) => return attempt_failed(e).await,
            };
            let s = sid.clone();
            db.tx_as(move |c| Ok::<_, JobError>(bdb::attach_subscription(c, new_membership, &s)?))
                .await?;
            tracing::info!(change = change_id, subscription = %sid, "billing: replacement subscription made");
            sid
        }
    };
    let now = Utc::now();
    if now >= row.effective_at {
        // Too late: the old subscription's period ended before it could be cancelled, so it
        // renews; the new one must not charge beside it.
        if let Err(e) = gw.cancel_subscription(&sid, false, now).await {
            if !matches!(e, GatewayError::Rejected { .. }) {
                return attempt_failed(e).await;
            }
        }
        db.tx_as(move |c| {
            Ok::<_, JobError>(bdb::cancel_membership(c, new_membership, false, now)?)
        })
        .await?;
        return fail("the old period ended before the replacement was completed").await;
    }
    // Step 3: the old subscription ends at its cycle end (a repeat changes nothing).
    if !claim(db.clone()).await? {
        return Ok(Replaced::Busy);
    }
    let old = match gw
        .cancel_subscription(&row.razorpay_subscription_id, true, now)
        .await
    {
        Ok(old) => old,
        Err(GatewayError::Rejected { .. }) => {
            match gw
                .fetch_subscription(&row.razorpay_subscription_id, now)
                .await
            {
                Ok(old) if old.snapshot.status.is_some_and(|s| s.is_terminal()) => old,
                Ok(_) => {
                    return attempt_failed(GatewayError::Unavailable(
                        "the old subscription could not be cancelled at its cycle end".into(),
                    ))
                    .await
                }
                Err(e) => return attempt_failed(e).await,
            }
        }
        Err(e) => return attempt_failed(e).await,
    };
    let old_membership = row.membership_id;
    db.tx_as(move |c| -> Result<(), JobError> {
        let Some(row) = store::lock(c, change_id)? else {
            return Ok(());
        };
        if row.state()? != ChangeState::Requested {
            return Ok(());
        }
        let effects = vec![Effect::Subscription {
            snapshot: old.snapshot,
            notes: old.notes,
        }];
        apply_in(&mut PgTx::new(c, policy), &effects, now)?;
        bdb::cancel_membership(c, old_membership, true, now)?;
        store::mark_replaced(c, change_id)?;
        notify_change(c, change_id)?;
        Ok(())
    })
    .await?;
    tracing::info!(change = change_id, "billing: replacement applied");
    Ok(Replaced::Done(sid))
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
    lease: Duration,
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
            // Not completed (the process died between the steps, or an answer was lost):
            // finish it from where it stands.
            match finish_replacement(db, gw, policy, change_id, lease).await? {
                Replaced::Busy => Err(JobError::NotYet(format!(
                    "change {change_id} is being worked on by another worker"
                ))),
                Replaced::Done(_) | Replaced::Failed(_) => Ok(()),
            }
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
    let lease = Duration::seconds(ctx.settings.billing_change_skew_secs.max(1));
    registry.register(JOB_CHANGE, move |payload: Value| {
        let (db, payments) = (db.clone(), payments.clone());
        async move {
            let Some(id) = change_id(&payload) else {
                return Ok(());
            };
            let (_, gw) = ports(&db, &payments);
            run_change(&db, &gw, payments.ledger_policy(), id, lease).await
        }
    });
}

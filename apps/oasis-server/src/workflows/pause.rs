//! Fans' pauses of recurring memberships, the shell's part: the requests the routes make and
//! the `billing.pause` / `billing.resume` jobs. The rules are billing's
//! ([`oasis_billing::pause`]); the rows and job queueing are `oasis_db::billing_pause`'s.
//!
//! Both jobs are crash-safe: each first looks at the subscription at Razorpay and acts only when
//! Razorpay still needs it (a pause whose answer was lost is found paused and recorded; a
//! repeated resume finds it active), then records the result and queues what follows in one
//! transaction.
use super::billing::ports;
use super::billing_db::PgTx;
use crate::context::AppContext;
use crate::db::Db;
use crate::error::ApiError;
use crate::jobs::{JobError, JobRegistry};
use crate::payments::Payments;
use crate::routes::billing::api_error;
use chrono::{DateTime, Utc};
use oasis_billing::gateway::{GatewayError, PaymentGateway, RemoteSubscription};
use oasis_billing::pause::{self, Pausable, PauseState, PauseStep, ResumeStep};
use oasis_billing::workflows::sync::apply_in;
use oasis_billing::{BillingError, Effect};
use oasis_db::billing_pause::{self as store, PauseRow, JOB_PAUSE, JOB_RESUME};
use serde::Deserialize;
use serde_json::Value;

/// A pause as the fan sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PauseView {
    pub state: PauseState,
    pub cycles: i64,
    /// When Razorpay is (or was) asked to pause: just before the paid period ends.
    pub pause_at: DateTime<Utc>,
    /// When it resumes (for a scheduled pause: when it will, counted from the period's end).
    pub resume_at: Option<DateTime<Utc>>,
}

fn view(row: &PauseRow, state: PauseState, resume_at: Option<DateTime<Utc>>) -> PauseView {
    PauseView {
        state,
        cycles: i64::from(row.cycles),
        pause_at: row.pause_at,
        resume_at: row.resume_at.or(resume_at),
    }
}

/// `POST /subscriptions/pause/`: schedules a pause of the caller's membership of `tier_id` for
/// the end of its paid period, skipping `cycles` charges.
pub async fn request_pause(
    ctx: &AppContext,
    user_id: i64,
    tier_id: i64,
    cycles: i64,
) -> Result<PauseView, ApiError> {
    let cycles = pause::validate_cycles(cycles).map_err(api_error)?;
    let lead = chrono::Duration::seconds(ctx.settings.billing_pause_lead_secs);
    let now = Utc::now();
    let v = ctx
        .db
        .tx(move |c| {
            let Some((m, open)) = store::lock_for_pause(c, user_id, tier_id)? else {
                return Err(api_error(BillingError::invalid(
                    "tier",
                    "You have no membership of this tier to pause.",
                )));
            };
            if let Some(p) = open {
                return Err(api_error(BillingError::invalid(
                    "tier",
                    format!(
                        "This membership's pause is already {}.",
                        p.state()?.as_str()
                    ),
                )));
            }
            let state = m.state()?;
            let period = m.period()?;
            let end = pause::check_pausable(&Pausable {
                status: state.status,
                cancel_at_period_end: state.cancel_at_period_end,
                current_end: state.current_end,
                period,
            })
            .map_err(api_error)?;
            let sid = m.razorpay_subscription_id.clone().unwrap_or_default();
            let at = pause::pause_at(end, now, lead);
            let row = store::schedule(c, m.id, &sid, cycles as i32, at)?;
            Ok(view(
                &row,
                PauseState::Scheduled,
                Some(pause::resume_at(end, period, cycles)),
            ))
        })
        .await?;
    ctx.jobs.wake();
    Ok(v)
}

/// `POST /subscriptions/resume/`: ends the caller's pause of `tier_id` early. A pause not yet
/// made at Razorpay is cancelled (nothing to ask); a paused subscription is resumed now by the
/// `billing.resume` job.
pub async fn request_resume(
    ctx: &AppContext,
    user_id: i64,
    tier_id: i64,
) -> Result<PauseView, ApiError> {
    let v = ctx
        .db
        .tx(move |c| {
            let open = store::lock_for_pause(c, user_id, tier_id)?.and_then(|(_, p)| p);
            let Some(p) = open else {
                return Err(api_error(BillingError::invalid(
                    "tier",
                    "This membership is not paused.",
                )));
            };
            match p.state()? {
                PauseState::Scheduled => {
                    store::finish(c, p.id, PauseState::Cancelled, None)?;
                    Ok(view(&p, PauseState::Cancelled, None))
                }
                _ => {
                    store::resume_now(c, p.id)?;
                    Ok(view(&p, PauseState::Paused, Some(Utc::now())))
                }
            }
        })
        .await?;
    ctx.jobs.wake();
    Ok(v)
}

#[derive(Deserialize)]
struct PauseJob {
    pause_id: i64,
}

/// Applies Razorpay's answer to the membership and records the pause's next state, in one
/// transaction.
async fn record(
    db: &Db,
    policy: oasis_billing::ledger::Policy,
    remote: RemoteSubscription,
    pause_id: i64,
    next: impl FnOnce(&mut diesel::PgConnection) -> Result<(), oasis_kernel::RepoError> + Send + 'static,
) -> Result<(), JobError> {
    let now = Utc::now();
    db.tx_as(move |c| -> Result<(), JobError> {
        let effects = vec![Effect::Subscription {
            snapshot: remote.snapshot,
            notes: remote.notes,
        }];
        apply_in(&mut PgTx::new(c, policy), &effects, now)?;
        next(c)?;
        tracing::info!(pause = pause_id, "billing: pause recorded");
        Ok(())
    })
    .await
}

/// The `billing.pause` job: at the end of the paid period, pauses the subscription at Razorpay
/// (unless the pause was cancelled meanwhile) and queues its resumption.
pub async fn run_pause(
    db: &Db,
    gw: &impl PaymentGateway,
    policy: oasis_billing::ledger::Policy,
    pause_id: i64,
) -> Result<(), JobError> {
    let found = db
        .run_as(move |c| -> Result<_, JobError> {
            match store::lock(c, pause_id)? {
                Some(r) if r.state()? == PauseState::Scheduled => {
                    let period = store::period_of(c, r.membership_id)?;
                    Ok(Some((r, period)))
                }
                _ => Ok(None), // cancelled, already paused or gone
            }
        })
        .await?;
    let Some((row, period)) = found else {
        return Ok(());
    };
    let now = Utc::now();
    let remote = gw
        .fetch_subscription(&row.razorpay_subscription_id, now)
        .await?;
    let remote = match pause::pause_step(remote.snapshot.status) {
        PauseStep::AlreadyPaused => remote,
        PauseStep::Pause => match gw
            .pause_subscription(&row.razorpay_subscription_id, now)
            .await
        {
            Ok(r) => r,
            Err(GatewayError::Rejected { description, .. }) => {
                // The client repeats a pause whose answer was lost; the repeat is refused. So
                // look again: paused means the first one took.
                let again = gw
                    .fetch_subscription(&row.razorpay_subscription_id, now)
                    .await?;
                if pause::pause_step(again.snapshot.status) != PauseStep::AlreadyPaused {
                    return refuse(db, pause_id, description).await;
                }
                again
            }
            Err(e) => {
                let msg = e.to_string();
                db.run_as(move |c| Ok::<_, JobError>(store::attempt_failed(c, pause_id, &msg)?))
                    .await?;
                return Err(e.into());
            }
        },
        PauseStep::Refuse(why) => return refuse(db, pause_id, why).await,
    };
    let end = remote.snapshot.current_end.unwrap_or(now);
    let resume_at = pause::resume_at(end, period, i64::from(row.cycles));
    record(db, policy, remote, pause_id, move |c| {
        store::mark_paused(c, pause_id, resume_at)
    })
    .await
}

async fn refuse(db: &Db, pause_id: i64, why: String) -> Result<(), JobError> {
    tracing::warn!(pause = pause_id, reason = %why, "billing: Razorpay would not pause");
    db.tx_as(move |c| {
        Ok::<_, JobError>(store::finish(c, pause_id, PauseState::Failed, Some(&why))?)
    })
    .await
}

/// The `billing.resume` job: resumes a paused subscription at Razorpay (at `resume_at`, or now
/// when the fan asked) and records it; a repeat finds it done.
pub async fn run_resume(
    db: &Db,
    gw: &impl PaymentGateway,
    policy: oasis_billing::ledger::Policy,
    pause_id: i64,
) -> Result<(), JobError> {
    let row = db
        .run_as(move |c| Ok::<_, JobError>(store::lock(c, pause_id)?))
        .await?;
    let Some(row) = row.filter(|r| r.state().ok() == Some(PauseState::Paused)) else {
        return Ok(());
    };
    let now = Utc::now();
    let remote = gw
        .fetch_subscription(&row.razorpay_subscription_id, now)
        .await?;
    let remote = match pause::resume_step(remote.snapshot.status) {
        ResumeStep::Done => remote,
        ResumeStep::Resume => {
            match gw
                .resume_subscription(&row.razorpay_subscription_id, now)
                .await
            {
                Ok(r) => r,
                // A repeat of a resume whose answer was lost is refused: look again.
                Err(GatewayError::Rejected { .. }) => {
                    let again = gw
                        .fetch_subscription(&row.razorpay_subscription_id, now)
                        .await?;
                    if pause::resume_step(again.snapshot.status) == ResumeStep::Resume {
                        return Err(JobError::NotYet(
                            "Razorpay refused to resume a paused subscription".into(),
                        ));
                    }
                    again
                }
                Err(e) => return Err(e.into()),
            }
        }
    };
    record(db, policy, remote, pause_id, move |c| {
        store::finish(c, pause_id, PauseState::Resumed, None)
    })
    .await
}

fn pause_id(kind: &str, payload: &Value) -> Option<i64> {
    match serde_json::from_value::<PauseJob>(payload.clone()) {
        Ok(j) => Some(j.pause_id),
        Err(_) => {
            tracing::error!(%payload, "{kind}: payload without pause_id dropped");
            None
        }
    }
}

pub fn register(registry: &mut JobRegistry, ctx: &AppContext) {
    let (db, payments): (Db, Payments) = (ctx.db.clone(), ctx.payments.clone());
    registry.register(JOB_PAUSE, move |payload: Value| {
        let (db, payments) = (db.clone(), payments.clone());
        async move {
            let Some(id) = pause_id(JOB_PAUSE, &payload) else {
                return Ok(());
            };
            let (_, gw) = ports(&db, &payments);
            run_pause(&db, &gw, payments.ledger_policy(), id).await
        }
    });
    let (db, payments) = (ctx.db.clone(), ctx.payments.clone());
    registry.register(JOB_RESUME, move |payload: Value| {
        let (db, payments) = (db.clone(), payments.clone());
        async move {
            let Some(id) = pause_id(JOB_RESUME, &payload) else {
                return Ok(());
            };
            let (_, gw) = ports(&db, &payments);
            run_resume(&db, &gw, payments.ledger_policy(), id).await
        }
    });
}

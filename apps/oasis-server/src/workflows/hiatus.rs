//! A creator's hiatus, the shell's part: `POST /subscriptions/hiatus/` starts one, `GET` shows
//! it, and the `billing.hiatus` job carries it out. The rules are billing's
//! ([`oasis_billing::hiatus`]); the rows and job queueing are `oasis_db::billing_hiatus`'s.
//!
//! The job works through the members a batch (`OASIS_BILLING_HIATUS_BATCH`) at a time, at most
//! `OASIS_BILLING_HIATUS_RATE` Razorpay calls a second, committing each member's step on its own:
//! after a crash (or a Razorpay outage, which fails the run) it picks up with the members still
//! to do. A pause whose answer was lost is found paused (the repeat is refused; the subscription
//! is fetched), a resume likewise. Members keep access throughout: their period end is moved to
//! the hiatus' end; each is notified.
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
use oasis_billing::hiatus::{self, HiatusState, MemberState};
use oasis_billing::workflows::sync::apply_in;
use oasis_billing::{BillingError, Effect, MembershipStatus};
use oasis_db::billing_hiatus::{self as store, HiatusMember, HiatusRow, JOB_HIATUS};
use serde::Deserialize;
use serde_json::Value;

/// What `GET /subscriptions/hiatus/` shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HiatusView {
    pub active: bool,
    pub cycles: i64,
    pub members_total: i64,
    pub members_paused: i64,
    pub members_failed: i64,
    pub members_joined: i64,
    pub started_at: Option<DateTime<Utc>>,
    pub resumes_at: Option<DateTime<Utc>>,
}

fn view(s: Option<store::HiatusSummary>) -> Result<HiatusView, oasis_kernel::RepoError> {
    Ok(match s {
        None => HiatusView {
            active: false,
            cycles: 0,
            members_total: 0,
            members_paused: 0,
            members_failed: 0,
            members_joined: 0,
            started_at: None,
            resumes_at: None,
        },
        Some(s) => HiatusView {
            active: s.row.state()? != HiatusState::Done,
            cycles: i64::from(s.row.cycles),
            members_total: s.total,
            members_paused: s.paused,
            members_failed: s.failed,
            members_joined: s.joined,
            started_at: Some(s.row.started_at),
            resumes_at: Some(s.row.resumes_at),
        },
    })
}

/// `POST /subscriptions/hiatus/`: puts the creator's page on hiatus for `cycles` (1–3).
pub async fn request_hiatus(
    ctx: &AppContext,
    creator_id: i64,
    cycles: i64,
) -> Result<HiatusView, ApiError> {
    let cycles = oasis_billing::pause::validate_cycles(cycles).map_err(api_error)?;
    let now = Utc::now();
    let resumes_at = hiatus::resumes_at(now, cycles);
    let v = ctx
        .db
        .tx(move |c| {
            if store::open_hiatus(c, creator_id)?.is_some() {
                return Err(api_error(BillingError::invalid(
                    "cycles",
                    "Your page is already on hiatus.",
                )));
            }
            store::start(c, creator_id, cycles as i32, now, resumes_at)?;
            Ok(view(store::latest(c, creator_id)?)?)
        })
        .await?;
    ctx.jobs.wake();
    Ok(v)
}

/// `GET /subscriptions/hiatus/`: the creator's latest hiatus.
pub async fn hiatus_status(ctx: &AppContext, creator_id: i64) -> Result<HiatusView, ApiError> {
    ctx.db
        .run(move |c| Ok(view(store::latest(c, creator_id)?)?))
        .await
}

/// The job's settings.
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    pub rate_per_sec: i64,
    pub batch: i64,
}

/// Records one member's step with Razorpay's view of its subscription, in one transaction.
async fn record(
    db: &Db,
    policy: oasis_billing::ledger::Policy,
    row: &HiatusRow,
    m: &HiatusMember,
    state: MemberState,
    remote: Option<RemoteSubscription>,
    error: Option<String>,
) -> Result<(), JobError> {
    let (id, mid, creator, resumes_at) = (row.id, m.membership_id, row.creator_id, row.resumes_at);
    let now = Utc::now();
    db.tx_as(move |c| -> Result<(), JobError> {
        if let Some(remote) = remote {
            let effects = vec![Effect::Subscription {
                snapshot: remote.snapshot,
                notes: remote.notes,
            }];
            apply_in(&mut PgTx::new(c, policy), &effects, now)?;
        }
        store::mark_member(c, id, mid, state, error.as_deref())?;
        if state == MemberState::Paused {
            store::keep_access_until(c, mid, resumes_at)?;
            let fan_id = store::fan_of(c, mid)?;
            oasis_db::notify::enqueue_event(
                c,
                &oasis_notify::Event::CreatorHiatus {
                    hiatus_id: id,
                    fan_id,
                    creator_id: creator,
                    resumes_at,
                },
            )?;
        }
        Ok(())
    })
    .await
}

async fn pause_one(
    db: &Db,
    gw: &impl PaymentGateway,
    policy: oasis_billing::ledger::Policy,
    row: &HiatusRow,
    m: &HiatusMember,
) -> Result<(), JobError> {
    let sid = &m.razorpay_subscription_id;
    let now = Utc::now();
    match gw.pause_subscription(sid, now).await {
        Ok(r) => record(db, policy, row, m, MemberState::Paused, Some(r), None).await,
        Err(GatewayError::Rejected { description, .. }) => {
            // A repeat of a pause whose answer was lost is refused: look.
            let again = gw.fetch_subscription(sid, now).await?;
            if again.snapshot.status == Some(MembershipStatus::Paused) {
                record(db, policy, row, m, MemberState::Paused, Some(again), None).await
            } else {
                record(
                    db,
                    policy,
                    row,
                    m,
                    MemberState::Failed,
                    Some(again),
                    Some(description),
                )
                .await
            }
        }
        Err(e) => Err(e.into()),
    }
}

async fn resume_one(
    db: &Db,
    gw: &impl PaymentGateway,
    policy: oasis_billing::ledger::Policy,
    row: &HiatusRow,
    m: &HiatusMember,
) -> Result<(), JobError> {
    let sid = &m.razorpay_subscription_id;
    let now = Utc::now();
    match gw.resume_subscription(sid, now).await {
        Ok(r) => record(db, policy, row, m, MemberState::Resumed, Some(r), None).await,
        Err(GatewayError::Rejected { .. }) => {
            let again = gw.fetch_subscription(sid, now).await?;
            if again.snapshot.status == Some(MembershipStatus::Paused) {
                return Err(JobError::NotYet(
                    "Razorpay refused to resume a paused subscription".into(),
                ));
            }
            record(db, policy, row, m, MemberState::Resumed, Some(again), None).await
        }
        Err(e) => Err(e.into()),
    }
}

/// The `billing.hiatus` job: one batch of the hiatus' current step, then it queues itself again
/// (or, all paused, for `resumes_at`; all resumed, it is done).
pub async fn run_hiatus(
    db: &Db,
    gw: &impl PaymentGateway,
    policy: oasis_billing::ledger::Policy,
    pace: Pace,
    id: i64,
) -> Result<(), JobError> {
    let row = db
        .run_as(move |c| Ok::<_, JobError>(store::lock(c, id)?))
        .await?;
    let Some(row) = row else { return Ok(()) };
    let state = row.state()?;
    let (todo, next) = match state {
        HiatusState::Pausing => (MemberState::Pending, HiatusState::Paused),
        HiatusState::Resuming => (MemberState::Paused, HiatusState::Done),
        HiatusState::Paused => {
            if Utc::now() >= row.resumes_at {
                db.tx_as(move |c| -> Result<(), JobError> {
                    store::set_state(c, id, HiatusState::Resuming)?;
                    Ok(store::job(c, id, Utc::now())?)
                })
                .await?;
            }
            return Ok(());
        }
        HiatusState::Done => return Ok(()),
    };
    let batch = pace.batch.max(1);
    let members = db
        .run_as(move |c| Ok::<_, JobError>(store::members_in(c, id, todo, batch)?))
        .await?;
    for (i, m) in members.iter().enumerate() {
        if i > 0 {
            tokio::time::sleep(hiatus::spacing(pace.rate_per_sec)).await;
        }
        if state == HiatusState::Pausing {
            pause_one(db, gw, policy, &row, m).await?;
        } else {
            resume_one(db, gw, policy, &row, m).await?;
        }
    }
    let more = members.len() as i64 >= batch;
    let resumes_at = row.resumes_at;
    db.tx_as(move |c| -> Result<(), JobError> {
        if more {
            // The next batch, after this one's spacing.
            store::job(c, id, Utc::now())?;
        } else {
            store::set_state(c, id, next)?;
            if next == HiatusState::Paused {
                store::job(c, id, resumes_at)?;
            }
        }
        Ok(())
    })
    .await?;
    tracing::info!(
        hiatus = id,
        done = members.len(),
        more,
        "billing: hiatus batch"
    );
    Ok(())
}

#[derive(Deserialize)]
struct HiatusJob {
    hiatus_id: i64,
}

pub fn register(registry: &mut JobRegistry, ctx: &AppContext) {
    let (db, payments): (Db, Payments) = (ctx.db.clone(), ctx.payments.clone());
    let pace = Pace {
        rate_per_sec: ctx.settings.billing_hiatus_rate,
        batch: ctx.settings.billing_hiatus_batch,
    };
    registry.register(JOB_HIATUS, move |payload: Value| {
        let (db, payments) = (db.clone(), payments.clone());
        async move {
            let Ok(job) = serde_json::from_value::<HiatusJob>(payload.clone()) else {
                tracing::error!(%payload, "{JOB_HIATUS}: payload without hiatus_id dropped");
                return Ok(());
            };
            let (_, gw) = ports(&db, &payments);
            run_hiatus(&db, &gw, payments.ledger_policy(), pace, job.hiatus_id).await
        }
    });
}

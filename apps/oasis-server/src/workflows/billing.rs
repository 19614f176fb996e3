//! Applying Razorpay's truth, the shell's part: the webhook inbox processor (`billing.webhook`
//! jobs), on-demand fetches (`billing.sync` jobs, queued when a Checkout confirmation could not
//! fetch inline), the periodic reconciliation and the replay of stored events.
//!
//! The work itself is billing's (`oasis_billing::workflows::sync`), run here over
//! [`PgBillingDb`] and [`RazorpayGateway`]; what stays here is the webhook inbox (its rows are
//! the shell's: the raw signed bodies) and the scheduling.
use super::billing_db::{PgBillingDb, PgTx};
use crate::context::AppContext;
use crate::db::{Db, DbError};
use crate::gateway::{to_event, RazorpayGateway};
use crate::jobs::{JobError, JobRegistry};
use crate::payments::Payments;
use chrono::Utc;
use diesel::PgConnection;
use oasis_billing::apply::Applied;
use oasis_billing::workflows::sync::{self as flow, Synced};
use oasis_billing::BillingError;
use oasis_db::billing as store;
use oasis_kernel::RepoError;
use serde::{Deserialize, Serialize};
use std::time::Duration;

pub const JOB_WEBHOOK: &str = "billing.webhook";
pub const JOB_SYNC: &str = "billing.sync";

/// A `billing.webhook` job: process the stored event with this inbox row id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookJob {
    pub id: i64,
}

/// A `billing.sync` job: fetch and apply what a Checkout confirmation could not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "SyncWire", into = "SyncWire")]
pub enum SyncJob {
    /// A subscription's Checkout callback (the subscription and the payment).
    ConfirmSubscription {
        subscription_id: String,
        payment_id: String,
    },
    /// A subscription.
    Subscription { subscription_id: String },
    /// An order's payments.
    Order { order_id: String },
    /// Nothing to fetch (a payload naming neither).
    Nothing,
}

/// The payload's stored shape (kept: queued jobs outlive a deploy).
#[derive(Serialize, Deserialize)]
struct SyncWire {
    subscription_id: Option<String>,
    payment_id: Option<String>,
    order_id: Option<String>,
}

impl From<SyncWire> for SyncJob {
    fn from(w: SyncWire) -> Self {
        match (w.subscription_id, w.payment_id, w.order_id) {
            (Some(subscription_id), Some(payment_id), _) => Self::ConfirmSubscription {
                subscription_id,
                payment_id,
            },
            (Some(subscription_id), None, _) => Self::Subscription { subscription_id },
            (None, _, Some(order_id)) => Self::Order { order_id },
            (None, _, None) => Self::Nothing,
        }
    }
}

impl From<SyncJob> for SyncWire {
    fn from(j: SyncJob) -> Self {
        let (subscription_id, payment_id, order_id) = match j {
            SyncJob::ConfirmSubscription {
                subscription_id,
                payment_id,
            } => (Some(subscription_id), Some(payment_id), None),
            SyncJob::Subscription { subscription_id } => (Some(subscription_id), None, None),
            SyncJob::Order { order_id } => (None, None, Some(order_id)),
            SyncJob::Nothing => (None, None, None),
        };
        SyncWire {
            subscription_id,
            payment_id,
            order_id,
        }
    }
}

impl SyncJob {
    /// Queues this job (inside the caller's transaction).
    pub fn enqueue(&self, c: &mut PgConnection) -> Result<(), RepoError> {
        let payload = serde_json::to_value(self)
            .map_err(|e| RepoError::Unavailable(format!("sync job payload: {e}")))?;
        oasis_db::jobs::enqueue(c, JOB_SYNC, &payload)?;
        Ok(())
    }
}

/// A membership just gave its fan access: the fan follows the creator (social's `follows`).
pub fn with_follow(applied: Applied, c: &mut PgConnection) -> Result<String, RepoError> {
    if let Some((fan, creator)) = applied.started {
        follow_creator(c, fan, creator)?;
    }
    Ok(applied.outcome)
}

/// Makes `fan` follow `creator` (idempotent; nothing for oneself).
pub fn follow_creator(c: &mut PgConnection, fan: i64, creator: i64) -> Result<(), RepoError> {
    oasis_db::social::follow_on_membership(c, fan, creator)?;
    let event = oasis_notify::Event::MembershipStarted {
        fan_id: fan,
        creator_id: creator,
    };
    oasis_db::notify::enqueue_event(c, &event)
}

/// Payments flagged for an operator are logged at error level (and listed by
/// `oasis billing flags`).
pub fn log_alerts<'a>(alerts: impl IntoIterator<Item = &'a String>) {
    for alert in alerts {
        tracing::error!(%alert, "billing: payment flagged for an operator (oasis billing flags)");
    }
}

fn outcome(s: Synced) -> String {
    log_alerts(&s.alerts);
    s.outcome
}

/// Why a stored event could not be processed.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("no such stored event")]
    NoSuchEvent,
    #[error(transparent)]
    Billing(#[from] BillingError),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<RepoError> for ProcessError {
    fn from(e: RepoError) -> Self {
        Self::Db(e.into())
    }
}

/// Processes a stored webhook event (inside the caller's transaction; the event row is locked
/// so concurrent processors of one event serialise). Already processed events are skipped
/// unless `force` (operator replay).
pub fn process_stored_event(
    c: &mut PgConnection,
    id: i64,
    force: bool,
    payments: &Payments,
) -> Result<String, ProcessError> {
    let Some(row) = store::lock_webhook_event(c, id)? else {
        return Ok(format!("no stored event {id}"));
    };
    if row.processed_at.is_some() && !force {
        return Ok(format!(
            "already processed: {}",
            row.outcome.unwrap_or_default()
        ));
    }
    let outcome = match serde_json::from_slice::<razorpay::WebhookEvent>(&row.body) {
        Ok(ev) => outcome(flow::apply_event_in(
            &mut PgTx::new(c, payments.ledger_policy()),
            &to_event(&ev, payments.instrument_key()),
            Utc::now(),
        )?),
        Err(e) => format!("malformed: {e}"),
    };
    // PostgreSQL text cannot hold NUL; an outcome quoting a (signed) event must still be stored.
    let outcome = outcome.replace('\0', "");
    store::mark_webhook_processed(c, id, &outcome)?;
    Ok(outcome)
}

/// The domain's workflows over this app's adapters.
pub(crate) fn ports(db: &Db, payments: &Payments) -> (PgBillingDb, RazorpayGateway) {
    (
        PgBillingDb(db.clone(), payments.ledger_policy()),
        RazorpayGateway(payments.clone()),
    )
}

/// Runs one `billing.sync` job.
pub async fn run_sync_job(db: &Db, payments: &Payments, job: &SyncJob) -> Result<(), JobError> {
    let (bdb, gw) = ports(db, payments);
    let now = Utc::now();
    let synced = match job {
        SyncJob::ConfirmSubscription {
            subscription_id,
            payment_id,
        } => {
            flow::confirm_subscription_payment(&bdb, &gw, subscription_id, payment_id, now).await?
        }
        SyncJob::Subscription { subscription_id } => {
            flow::sync_subscription(&bdb, &gw, subscription_id, now).await?
        }
        SyncJob::Order { order_id } => flow::sync_order(&bdb, &gw, order_id, now).await?,
        SyncJob::Nothing => return Ok(()),
    };
    tracing::info!(?job, outcome = %outcome(synced), "billing.sync");
    Ok(())
}

/// What a reconciliation pass did.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct ReconcileReport {
    pub subscriptions: usize,
    pub orders: usize,
    pub events: usize,
    /// Subscription charges recorded from invoices (their `subscription.charged` was lost).
    pub recovered_charges: usize,
    pub errors: Vec<String>,
}

impl std::fmt::Display for ReconcileReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "reconciled {} subscription(s), {} order(s), {} stored event(s), {} recovered charge(s); {} error(s)",
            self.subscriptions,
            self.orders,
            self.events,
            self.recovered_charges,
            self.errors.len()
        )?;
        for e in &self.errors {
            write!(f, "\n  {e}")?;
        }
        Ok(())
    }
}

/// Billing's reconciliation (every subscription and order still waiting locally, fetched and
/// applied, lost charges recovered), then the stored webhook events whose processing never
/// completed, re-processed.
pub async fn reconcile(db: &Db, payments: &Payments) -> ReconcileReport {
    let mut report = ReconcileReport::default();
    let (bdb, gw) = ports(db, payments);
    match flow::reconcile(&bdb, &gw, Utc::now()).await {
        Ok(r) => {
            log_alerts(&r.alerts);
            if r.recovered_charges > 0 {
                tracing::warn!(
                    recovered = r.recovered_charges,
                    "billing: recorded subscription charges whose webhook never came"
                );
            }
            report.subscriptions = r.subscriptions;
            report.orders = r.orders;
            report.recovered_charges = r.recovered_charges;
            report.errors = r.errors;
        }
        Err(e) => {
            report.errors.push(format!("database: {e}"));
            return report;
        }
    }
    let events = match db
        .run_as::<_, DbError, _>(|c| Ok(store::unprocessed_webhook_events(c, 60, 200)?))
        .await
    {
        Ok(ids) => ids,
        Err(e) => {
            report.errors.push(format!("database: {e}"));
            return report;
        }
    };
    for id in events {
        let payments = payments.clone();
        match db
            .tx_as(move |c| process_stored_event(c, id, false, &payments))
            .await
        {
            Ok(_) => report.events += 1,
            Err(e) => report.errors.push(format!("event {id}: {e}")),
        }
    }
    report
}

/// Reprocesses one stored event by its Razorpay event id (or inbox row id), even if processed.
pub async fn replay_event(db: &Db, payments: &Payments, key: &str) -> Result<String, ProcessError> {
    let (key, payments) = (key.to_owned(), payments.clone());
    db.tx_as(move |c| {
        let Some(id) = store::find_webhook_event(c, &key)? else {
            return Err(ProcessError::NoSuchEvent);
        };
        process_stored_event(c, id, true, &payments)
    })
    .await
}

pub fn register(registry: &mut JobRegistry, ctx: &AppContext) {
    let (db, payments) = (ctx.db.clone(), ctx.payments.clone());
    registry.register(JOB_WEBHOOK, move |payload: serde_json::Value| {
        let (db, payments) = (db.clone(), payments.clone());
        async move {
            let WebhookJob { id } = serde_json::from_value(payload)?;
            let outcome = db
                .tx_as(move |c| process_stored_event(c, id, false, &payments))
                .await
                .map_err(|e| match e {
                    ProcessError::Billing(b) => JobError::Billing(b),
                    ProcessError::Db(d) => JobError::Db(d),
                    ProcessError::NoSuchEvent => JobError::NotYet(e.to_string()),
                })?;
            tracing::info!(event = id, %outcome, "webhook processed");
            Ok(())
        }
    });
    let (db, payments) = (ctx.db.clone(), ctx.payments.clone());
    registry.register(JOB_SYNC, move |payload: serde_json::Value| {
        let (db, payments) = (db.clone(), payments.clone());
        async move {
            let job: SyncJob = serde_json::from_value(payload)?;
            run_sync_job(&db, &payments, &job).await
        }
    });
    // Periodic reconciliation (also `oasis jobs run billing.reconcile`).
    let (db, payments) = (ctx.db.clone(), ctx.payments.clone());
    let every = Duration::from_secs(ctx.settings.billing_reconcile_secs);
    registry.periodic(PERIODIC_RECONCILE, every, move |_: serde_json::Value| {
        let (db, payments) = (db.clone(), payments.clone());
        async move {
            let report = reconcile(&db, &payments).await;
            if report.errors.is_empty() {
                tracing::info!(%report, "billing reconciliation");
                Ok(())
            } else {
                tracing::warn!(%report, "billing reconciliation");
                Err(JobError::NotYet(report.to_string()))
            }
        }
    });
}

/// The periodic reconciliation's name (`oasis jobs run billing.reconcile`).
pub const PERIODIC_RECONCILE: &str = "billing.reconcile";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_job_payloads_keep_their_stored_shape() {
        let job = SyncJob::ConfirmSubscription {
            subscription_id: "sub_1".into(),
            payment_id: "pay_1".into(),
        };
        let v = serde_json::to_value(&job).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"subscription_id": "sub_1", "payment_id": "pay_1", "order_id": null})
        );
        assert_eq!(serde_json::from_value::<SyncJob>(v).unwrap(), job);
        let order: SyncJob =
            serde_json::from_value(serde_json::json!({"order_id": "order_1"})).unwrap();
        assert_eq!(
            order,
            SyncJob::Order {
                order_id: "order_1".into()
            }
        );
    }
}

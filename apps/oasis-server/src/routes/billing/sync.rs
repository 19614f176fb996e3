//! Applying Razorpay's truth: the webhook inbox processor (`billing.webhook` jobs), on-demand
//! fetches (`billing.sync` jobs, used when a Checkout confirmation could not fetch inline),
//! the periodic reconciliation and the `oasis billing reconcile|replay` CLI.
//!
//! Every path ends in the same idempotent adapter functions (`oasis_db::billing::apply_*`), which
//! lock the Razorpay object's row and merge with the pure rules of `oasis_billing`, so webhooks,
//! Checkout callbacks, reconciliation and replays converge on one state.
use crate::config::Settings;
use crate::context::AppContext;
use crate::db::Db;
use crate::error::ApiError;
use crate::jobs::JobRegistry;
use crate::payments::Payments;
use chrono::{DateTime, TimeZone, Utc};
use diesel::PgConnection;
use oasis_billing::apply::{self, Applied};
use oasis_billing::reconcile::{self, InvoiceSnapshot};
use oasis_billing::{
    plan_event, Effect, Event, MembershipStatus, OrderSnapshot, PaymentSnapshot, PaymentStatus,
    SubscriptionSnapshot,
};
use oasis_db::billing as store;
use oasis_db::billing::PgBilling;
use oasis_kernel::RepoError;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;

pub const JOB_WEBHOOK: &str = "billing.webhook";
pub const JOB_SYNC: &str = "billing.sync";

fn ts(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(secs, 0).single().unwrap_or_else(Utc::now)
}

fn opt_ts(secs: Option<i64>) -> Option<DateTime<Utc>> {
    secs.filter(|s| *s > 0).map(ts)
}

pub(crate) fn notes_map(n: &razorpay::Notes) -> BTreeMap<String, String> {
    n.iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

pub(crate) fn to_subscription(
    s: &razorpay::Subscription,
    observed_at: DateTime<Utc>,
) -> SubscriptionSnapshot {
    SubscriptionSnapshot {
        id: s.id.clone(),
        status: MembershipStatus::parse(s.status.as_str()),
        current_start: opt_ts(s.current_start),
        current_end: opt_ts(s.current_end),
        ended_at: opt_ts(s.ended_at),
        paid_count: s.paid_count,
        observed_at,
    }
}

/// `None` for a status we do not know (nothing is recorded from it).
pub(crate) fn to_payment(p: &razorpay::Payment) -> Option<PaymentSnapshot> {
    Some(PaymentSnapshot {
        id: p.id.clone(),
        amount: p.amount,
        currency: p.currency.clone(),
        status: PaymentStatus::parse(p.status.as_str())?,
        order_id: p.order_id.clone().filter(|s| !s.is_empty()),
        invoice_id: p.invoice_id.clone().filter(|s| !s.is_empty()),
        amount_refunded: p.amount_refunded,
        notes: notes_map(&p.notes),
        email: p.email.clone(),
        contact: p.contact.clone(),
        created_at: ts(p.created_at),
    })
}

pub(crate) fn to_event(ev: &razorpay::WebhookEvent) -> Event {
    let at = ts(ev.created_at);
    let p = &ev.payload;
    Event {
        name: ev.event.clone(),
        created_at: at,
        subscription: p.subscription.as_ref().map(|s| to_subscription(s, at)),
        subscription_notes: p
            .subscription
            .as_ref()
            .map(|s| notes_map(&s.notes))
            .unwrap_or_default(),
        payment: p.payment.as_ref().and_then(to_payment),
        order: p.order.as_ref().map(|o| OrderSnapshot {
            id: o.id.clone(),
            amount: o.amount,
            currency: o.currency.clone(),
            paid: o.status.as_str() == "paid",
            notes: notes_map(&o.notes),
        }),
        refund: p
            .refund
            .as_ref()
            .map(|r| (r.id.clone(), r.payment_id.clone(), r.amount)),
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

/// Applies planned effects with the billing service (call inside one transaction). Every path
/// that applies Razorpay's facts — webhooks, Checkout confirmations, fetches, reconciliation —
/// comes through here. Payments flagged for an operator are logged at error level (and listed
/// by `oasis billing flags`).
pub fn apply_effects(c: &mut PgConnection, effects: &[Effect]) -> Result<Vec<String>, RepoError> {
    crate::routes::notify::enqueue_billing_effects(c, effects)?;
    let applied = apply::apply_effects(&mut PgBilling(c), effects, Utc::now())?;
    for alert in applied.iter().flat_map(|a| a.alerts.iter()) {
        tracing::error!(%alert, "billing: payment flagged for an operator (oasis billing flags)");
    }
    applied.into_iter().map(|a| with_follow(a, c)).collect()
}

/// Processes a stored webhook event (inside the caller's transaction; the event row is locked
/// so concurrent processors of one event serialise). Already processed events are skipped
/// unless `force` (operator replay).
pub fn process_stored_event(
    c: &mut PgConnection,
    id: i64,
    force: bool,
) -> Result<String, RepoError> {
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
        Ok(ev) => {
            let effects = plan_event(&to_event(&ev));
            apply_effects(c, &effects)?.join("; ")
        }
        Err(e) => format!("malformed: {e}"),
    };
    // PostgreSQL text cannot hold NUL; an outcome quoting a (signed) event must still be stored.
    let outcome = outcome.replace('\0', "");
    store::mark_webhook_processed(c, id, &outcome)?;
    Ok(outcome)
}

fn job_error(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// The effect of a fetched subscription (observed now).
fn subscription_effect(s: &razorpay::Subscription) -> Effect {
    Effect::Subscription {
        snapshot: to_subscription(s, Utc::now()),
        notes: notes_map(&s.notes),
    }
}

/// Fetches a subscription and applies it (observed now).
pub async fn sync_subscription(db: &Db, payments: &Payments, id: &str) -> Result<String, String> {
    let s = payments
        .client()
        .fetch_subscription(id)
        .await
        .map_err(job_error)?;
    let effects = [subscription_effect(&s)];
    db.tx(move |c| Ok(apply_effects(c, &effects)?.join("; ")))
        .await
        .map_err(job_error)
}

/// A Checkout confirmation of a subscription: fetches the subscription and the payment and
/// applies both in one transaction, as the `subscription.charged` webhook would (so the
/// payment is judged — amount, stale checkout — together with the state that grants access).
pub async fn confirm_subscription_payment(
    db: &Db,
    payments: &Payments,
    subscription_id: &str,
    payment_id: &str,
) -> Result<String, String> {
    let client = payments.client();
    let s = client
        .fetch_subscription(subscription_id)
        .await
        .map_err(job_error)?;
    let p = client.fetch_payment(payment_id).await.map_err(job_error)?;
    let mut effects = vec![subscription_effect(&s)];
    if let Some(p) = to_payment(&p) {
        effects.push(Effect::Payment {
            payment: p,
            purpose: oasis_billing::Purpose::Subscription {
                subscription_id: subscription_id.to_owned(),
            },
        });
    }
    db.tx(move |c| Ok(apply_effects(c, &effects)?.join("; ")))
        .await
        .map_err(job_error)
}

pub(crate) fn to_invoice(i: &razorpay::Invoice) -> InvoiceSnapshot {
    InvoiceSnapshot {
        id: i.id.clone(),
        subscription_id: i.subscription_id.clone().filter(|s| !s.is_empty()),
        payment_id: i.payment_id.clone().filter(|s| !s.is_empty()),
        paid: i.status == razorpay::InvoiceStatus::Paid,
    }
}

/// What reconciling one subscription did.
#[derive(Debug, Default, Clone)]
pub struct SubscriptionSync {
    pub outcome: String,
    /// Charges (paid invoices' payments) recorded now because their webhook never came.
    pub recovered: usize,
}

/// Fetches a subscription and its invoices, fetches the payments of paid invoices that are not
/// recorded as charges of its membership, and applies it all in one transaction as the effects
/// of the `subscription.charged` events that carried them (`oasis_billing::reconcile`), through
/// [`apply_effects`] like any webhook: the state and period as the webhook would set them, each
/// missing payment recorded once.
pub async fn sync_subscription_and_charges(
    db: &Db,
    payments: &Payments,
    id: &str,
) -> Result<SubscriptionSync, String> {
    let client = payments.client();
    let s = client.fetch_subscription(id).await.map_err(job_error)?;
    let invoices: Vec<InvoiceSnapshot> = client
        .fetch_subscription_invoices(id)
        .await
        .map_err(|e| format!("invoices: {e}"))?
        .iter()
        .map(to_invoice)
        .collect();
    let sid = id.to_owned();
    let inv = invoices.clone();
    let missing = db
        .run(move |c| {
            Ok(reconcile::charges_to_recover(
                &mut PgBilling(c),
                &sid,
                &inv,
            )?)
        })
        .await
        .map_err(job_error)?;
    let mut charges = Vec::with_capacity(missing.len());
    for pay in &missing {
        let p = client.fetch_payment(pay).await.map_err(job_error)?;
        match to_payment(&p) {
            Some(p) if reconcile::is_invoiced_charge(id, &invoices, &p) => charges.push(p),
            _ => tracing::warn!(subscription = id, payment = %pay,
                "billing: a paid invoice's payment is not a charge we can record; skipped"),
        }
    }
    let snap = to_subscription(&s, Utc::now());
    let notes = notes_map(&s.notes);
    let recovered = charges.len();
    // Applied exactly as a stored webhook's effects are (`process_stored_event`).
    let effects = reconcile::plan_recovered_charges(&snap, &notes, &invoices, &charges);
    let outcome = db
        .tx(move |c| Ok(apply_effects(c, &effects)?.join("; ")))
        .await
        .map_err(job_error)?;
    Ok(SubscriptionSync { outcome, recovered })
}

/// Fetches an order's payments and applies each.
pub async fn sync_order(db: &Db, payments: &Payments, order_id: &str) -> Result<String, String> {
    let list = payments
        .client()
        .fetch_order_payments(order_id)
        .await
        .map_err(job_error)?;
    let snaps: Vec<PaymentSnapshot> = list.items.iter().filter_map(to_payment).collect();
    if snaps.is_empty() {
        return Ok(format!("order {order_id}: no payments yet"));
    }
    let effects: Vec<Effect> = snaps
        .into_iter()
        .map(|p| Effect::Payment {
            purpose: oasis_billing::Purpose::Order {
                order_id: order_id.to_owned(),
                notes_type: p.notes.get("type").cloned(),
            },
            payment: p,
        })
        .collect();
    db.tx(move |c| Ok(apply_effects(c, &effects)?.join("; ")))
        .await
        .map_err(job_error)
}

/// Enqueues a `billing.sync` job (inside the caller's transaction).
pub fn enqueue_sync(c: &mut PgConnection, payload: &Value) -> Result<(), ApiError> {
    oasis_db::jobs::enqueue(c, JOB_SYNC, payload)?;
    Ok(())
}

async fn run_sync_job(db: &Db, payments: &Payments, payload: &Value) -> Result<(), String> {
    let s = |k: &str| payload.get(k).and_then(Value::as_str).map(str::to_owned);
    if let Some(sub) = s("subscription_id") {
        match s("payment_id") {
            Some(pay) => confirm_subscription_payment(db, payments, &sub, &pay).await?,
            None => sync_subscription(db, payments, &sub).await?,
        };
    }
    if let Some(order) = s("order_id") {
        sync_order(db, payments, &order).await?;
    }
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

/// Fetches from Razorpay every subscription and order still waiting locally and applies its
/// true state — for subscriptions, with the payments of their paid invoices not yet recorded;
/// re-processes stored webhook events whose processing never completed. A lost webhook
/// therefore cannot lose a payment (of an order or of a subscription's cycle), nor a
/// membership's state.
pub async fn reconcile(db: &Db, payments: &Payments) -> ReconcileReport {
    let mut report = ReconcileReport::default();
    let waiting = db
        .run(|c| {
            Ok((
                store::waiting_subscriptions(c, 200)?,
                store::waiting_orders(c, 200)?,
                store::unprocessed_webhook_events(c, 60, 200)?,
            ))
        })
        .await;
    let (subs, orders, events) = match waiting {
        Ok(w) => w,
        Err(e) => {
            report.errors.push(format!("database: {e}"));
            return report;
        }
    };
    for sub in subs {
        match sync_subscription_and_charges(db, payments, &sub).await {
            Ok(done) => {
                report.subscriptions += 1;
                report.recovered_charges += done.recovered;
                if done.recovered > 0 {
                    tracing::warn!(subscription = %sub, recovered = done.recovered, outcome = %done.outcome,
                        "billing: recorded subscription charges whose webhook never came");
                }
            }
            Err(e) => {
                report.errors.push(format!("{sub}: {e}"));
                // Still restore the state when only the invoices could not be read.
                if let Err(e) = sync_subscription(db, payments, &sub).await {
                    tracing::warn!(subscription = %sub, error = %e, "billing: subscription sync failed");
                }
            }
        }
    }
    for order in orders {
        match sync_order(db, payments, &order).await {
            Ok(_) => report.orders += 1,
            Err(e) => report.errors.push(format!("{order}: {e}")),
        }
    }
    for id in events {
        match db
            .tx(move |c| Ok(process_stored_event(c, id, false)?))
            .await
        {
            Ok(_) => report.events += 1,
            Err(e) => report.errors.push(format!("event {id}: {e}")),
        }
    }
    report
}

/// Reprocesses one stored event by its Razorpay event id (or inbox row id), even if processed.
pub async fn replay_event(db: &Db, key: &str) -> Result<String, String> {
    let key = key.to_owned();
    db.tx(move |c| {
        let Some(id) = store::find_webhook_event(c, &key)? else {
            return Err(ApiError::not_found());
        };
        Ok(process_stored_event(c, id, true)?)
    })
    .await
    .map_err(|e| match e {
        ApiError::Detail { status, .. } if status.as_u16() == 404 => {
            "no such stored event".to_owned()
        }
        other => other.to_string(),
    })
}

pub fn register(registry: &mut JobRegistry, ctx: &AppContext) {
    let db = ctx.db.clone();
    registry.register(JOB_WEBHOOK, move |payload: Value| {
        let db = db.clone();
        async move {
            let id = payload
                .get("id")
                .and_then(Value::as_i64)
                .ok_or("payload without id")?;
            db.tx(move |c| Ok(process_stored_event(c, id, false)?))
                .await
                .map(|outcome| tracing::info!(event = id, %outcome, "webhook processed"))
                .map_err(job_error)
        }
    });
    let (db, payments) = (ctx.db.clone(), ctx.payments.clone());
    registry.register(JOB_SYNC, move |payload: Value| {
        let (db, payments) = (db.clone(), payments.clone());
        async move { run_sync_job(&db, &payments, &payload).await }
    });
    // Periodic reconciliation; ends when the server (and its context) is gone.
    let db = ctx.db.clone();
    let weak = ctx.payments.downgrade();
    let every = Duration::from_secs(ctx.settings.billing_reconcile_secs);
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            let Some(payments) = Payments::upgrade(&weak) else {
                return;
            };
            let report = reconcile(&db, &payments).await;
            if report.errors.is_empty() {
                tracing::info!(%report, "billing reconciliation");
            } else {
                tracing::warn!(%report, "billing reconciliation");
            }
        }
    });
}

pub(super) async fn cli_context(
    mut settings: Settings,
) -> Result<(Db, Payments, Option<oasis_db::cluster::EmbeddedCluster>), String> {
    settings.resolve_secret_key().map_err(|e| e.to_string())?;
    let s = settings.clone();
    let database = tokio::task::spawn_blocking(move || crate::database::prepare_database(&s))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    let pool = oasis_db::build_pool(&database.url, 2).map_err(|e| e.to_string())?;
    let payments = Payments::from_settings(&settings, None)?;
    Ok((Db::new(pool), payments, database.cluster))
}

pub(super) async fn stop_cluster(cluster: Option<oasis_db::cluster::EmbeddedCluster>) {
    if let Some(cluster) = cluster {
        if cluster.started_here() {
            let _ = tokio::task::spawn_blocking(move || cluster.stop()).await;
        }
    }
}

/// `oasis billing reconcile`.
pub async fn cli_reconcile(settings: Settings) -> Result<String, String> {
    let (db, payments, cluster) = cli_context(settings).await?;
    let report = reconcile(&db, &payments).await;
    stop_cluster(cluster).await;
    if report.errors.is_empty() {
        Ok(report.to_string())
    } else {
        Err(report.to_string())
    }
}

/// `oasis billing replay <event-id>`.
pub async fn cli_replay(settings: Settings, event_id: &str) -> Result<String, String> {
    let (db, _payments, cluster) = cli_context(settings).await?;
    let r = replay_event(&db, event_id).await;
    stop_cluster(cluster).await;
    r
}

/// A JSON payload for a sync job.
pub fn sync_payload(
    subscription_id: Option<&str>,
    payment_id: Option<&str>,
    order_id: Option<&str>,
) -> Value {
    json!({"subscription_id": subscription_id, "payment_id": payment_id, "order_id": order_id})
}

//! The `notify.fanout` job, which turns events (raised with [`oasis_db::notify::enqueue_event`]
//! in the transaction that made them) into notifications, and the events billing's effects raise.
use crate::context::AppContext;
use crate::jobs::{JobError, JobRegistry};
use diesel::PgConnection;
use oasis_db::notify as repo;
use oasis_kernel::RepoError;
use oasis_notify::{Event, JOB_FANOUT};
use serde_json::Value;

/// Raises the notification events of billing effects about to be applied (payments: cheers
/// paid, payments failed; subscriptions: memberships halted). The fan-out reads the applied
/// state when it runs, after this transaction commits.
pub fn enqueue_billing_effects(
    c: &mut PgConnection,
    effects: &[oasis_billing::Effect],
) -> Result<(), RepoError> {
    for fx in effects {
        let event = match fx {
            oasis_billing::Effect::Payment { payment, .. } => Event::PaymentRecorded {
                payment_id: payment.id.clone(),
            },
            oasis_billing::Effect::Subscription { snapshot, .. } => Event::SubscriptionChanged {
                subscription_id: snapshot.id.clone(),
            },
            _ => continue,
        };
        repo::enqueue_event(c, &event)?;
    }
    Ok(())
}

pub fn register(registry: &mut JobRegistry, ctx: &AppContext) {
    let (db, jobs) = (ctx.db.clone(), ctx.jobs.clone());
    registry.register(JOB_FANOUT, move |payload: Value| {
        let (db, jobs) = (db.clone(), jobs.clone());
        async move {
            let event: Event = match serde_json::from_value(payload) {
                Ok(e) => e,
                Err(e) => {
                    // Never succeeds on retry: drop it, loudly.
                    tracing::error!(error = %e, "notify.fanout: malformed payload dropped");
                    return Ok(());
                }
            };
            let n = db
                .tx_as::<_, JobError, _>(move |c| {
                    let delivered = repo::run_fanout(c, &event)?;
                    // Their mails, in the same transaction (whether to send is decided at
                    // send time, from the recipient's settings then).
                    for d in delivered.iter().filter(|d| d.kind.mailed_at_once()) {
                        super::notify_mail::enqueue(c, d.id)?;
                    }
                    Ok(delivered.len())
                })
                .await?;
            if n > 0 {
                jobs.wake();
            }
            tracing::debug!(inserted = n, "notifications fanned out");
            Ok(())
        }
    });
}

//! The earnings ledger's shell part: the `billing.ledger_fee` job (a captured payment whose fee
//! no event carried is fetched and posted), the periodic release of membership holds, and the
//! operator's `oasis payouts pending|mark-paid` commands. The rules and workflows are billing's
//! (`oasis_billing::ledger`, `oasis_billing::workflows::ledger`).
use super::billing::{log_alerts, ports};
use super::cli::{cli_context, stop_cluster, CliError};
use crate::config::Settings;
use crate::context::AppContext;
use crate::jobs::{JobError, JobRegistry};
use chrono::Utc;
use oasis_billing::workflows::ledger as flow;
use oasis_billing::JOB_LEDGER_FEE;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::time::Duration;

/// A `billing.ledger_fee` job (queued by `oasis_db::ledger` when a payment is posted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeeJob {
    pub payment_id: String,
}

/// Membership holds are released in transactions of this many payments.
const RELEASE_BATCH: i64 = 500;

pub fn register(registry: &mut JobRegistry, ctx: &AppContext) {
    let (db, payments) = (ctx.db.clone(), ctx.payments.clone());
    registry.register(JOB_LEDGER_FEE, move |payload: Value| {
        let (db, payments) = (db.clone(), payments.clone());
        async move {
            let Ok(FeeJob { payment_id }) = serde_json::from_value(payload.clone()) else {
                tracing::error!(%payload, "billing.ledger_fee: payload without payment_id dropped");
                return Ok(());
            };
            let (bdb, gw) = ports(&db, &payments);
            let posted = flow::post_fetched(&bdb, &gw, &payment_id, Utc::now())
                .await
                .map_err(|e| JobError::NotYet(e.to_string()))?;
            log_alerts(&posted.alerts);
            tracing::info!(payment = %payment_id, outcome = %posted.lines.join("; "), "billing.ledger_fee");
            Ok(())
        }
    });
    // Membership holds end by time (also `oasis jobs run ledger.release_holds`).
    let (db, payments) = (ctx.db.clone(), ctx.payments.clone());
    let every = Duration::from_secs(ctx.settings.billing_reconcile_secs);
    registry.periodic(PERIODIC_RELEASE_HOLDS, every, move |_: Value| {
        let (db, payments) = (db.clone(), payments.clone());
        async move {
            let (bdb, _) = ports(&db, &payments);
            let mut released = 0;
            loop {
                let n = flow::release_due_holds(&bdb, Utc::now(), RELEASE_BATCH).await?;
                released += n;
                if (n as i64) < RELEASE_BATCH {
                    break;
                }
            }
            if released > 0 {
                tracing::info!(released, "ledger: membership holds released");
            }
            Ok(())
        }
    });
}

/// The periodic release of membership holds (`oasis jobs run ledger.release_holds`).
pub const PERIODIC_RELEASE_HOLDS: &str = "ledger.release_holds";

/// `oasis payouts pending`: non-INR balances an operator must pay by hand, one line each
/// (tab-separated: creator id, currency, amount in minor units).
pub async fn cli_pending(settings: Settings) -> Result<String, CliError> {
    let (db, payments, cluster) = cli_context(settings).await?;
    let (bdb, _) = ports(&db, &payments);
    let due = flow::manual_payouts_due(&bdb).await;
    stop_cluster(cluster).await;
    let due = due.map_err(|e| CliError::Incomplete(e.to_string()))?;
    if due.is_empty() {
        return Ok("no manual payouts pending".into());
    }
    let mut out = format!("{} manual payout(s) pending", due.len());
    for d in due {
        out.push_str(&format!("\n{}\t{}\t{}", d.creator_id, d.currency, d.amount));
    }
    Ok(out)
}

/// `oasis payouts mark-paid <creator-id> <currency> <amount> --reference <text>`.
pub async fn cli_mark_paid(
    settings: Settings,
    creator_id: i64,
    currency: &str,
    amount: i64,
    reference: &str,
) -> Result<String, CliError> {
    let (db, payments, cluster) = cli_context(settings).await?;
    let (bdb, _) = ports(&db, &payments);
    let r = flow::mark_manual_payout(
        &bdb,
        creator_id,
        currency.to_ascii_uppercase(),
        amount,
        reference.to_owned(),
        Utc::now(),
    )
    .await;
    stop_cluster(cluster).await;
    match r {
        Ok(true) => Ok(format!(
            "recorded: {amount} {currency} paid to creator {creator_id} ({reference})"
        )),
        Ok(false) => Ok(format!(
            "already recorded: {currency} payout {reference:?} of creator {creator_id}"
        )),
        Err(e) => Err(CliError::Incomplete(e.to_string())),
    }
}

//! The earnings ledger's shell part: the `billing.ledger_fee` job (a captured payment whose fee
//! no event carried is fetched and posted), the periodic release of membership holds, the
//! operator's `oasis payouts pending|mark-paid` commands, and Razorpay Route: the linked-account
//! job (queued when bank details are saved), the transfer sweep and its per-payment retries,
//! the release of commissions' held transfers and the settlement job. The rules and workflows are billing's
//! (`oasis_billing::ledger`, `oasis_billing::workflows::ledger`).
use super::billing::{log_alerts, ports};
use super::cli::{cli_context, stop_cluster, CliError};
use crate::config::Settings;
use crate::context::AppContext;
use crate::jobs::{JobError, JobRegistry};
use chrono::Utc;
use oasis_billing::payouts::{
    JOB_LINKED_ACCOUNT, JOB_RELEASE, JOB_REVERSE, JOB_SETTLEMENT, JOB_TRANSFER,
};
use oasis_billing::workflows::ledger as flow;
use oasis_billing::workflows::payouts as route;
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

/// Queues the linked-account job of a creator whose bank details were just saved (in that
/// transaction). The payload names the creator only: the job reads the sealed details.
pub fn queue_linked_account(
    c: &mut diesel::PgConnection,
    creator_id: i64,
) -> Result<(), oasis_kernel::RepoError> {
    use oasis_billing::payouts::PayoutStore;
    oasis_db::billing::PgBilling(c).queue_payout_job(
        JOB_LINKED_ACCOUNT,
        &serde_json::json!({ "creator_id": creator_id }),
        0,
    )
}

#[derive(Debug, Deserialize)]
struct CreatorJob {
    creator_id: i64,
}

#[derive(Debug, Deserialize)]
struct PaymentJob {
    payment_id: String,
}

#[derive(Debug, Deserialize)]
struct SettlementJob {
    settlement_id: String,
    utr: String,
}

fn bad(kind: &str, payload: &Value) -> Result<(), JobError> {
    tracing::error!(%payload, "{kind}: unreadable payload dropped");
    Ok(())
}

async fn linked_account_job(ctx: &AppContext, creator_id: i64) -> Result<(), JobError> {
    let Some(d) = crate::routes::billing::bank::load(ctx, creator_id)
        .await
        .map_err(|e| JobError::NotYet(e.to_string()))?
    else {
        return Ok(());
    };
    if d.legal_name.is_empty() || d.business_type.is_empty() || d.contact_phone.is_empty() {
        tracing::info!(
            creator_id,
            "payouts.linked_account: bank details lack the payout fields"
        );
        return Ok(());
    }
    let user = crate::routes::identity::load_user(ctx, creator_id)
        .await
        .map_err(|e| JobError::NotYet(e.to_string()))?;
    let profile = oasis_billing::gateway::LinkedAccountRequest {
        reference_id: format!("oasis-{creator_id}"),
        email: user.email.clone(),
        phone: d.contact_phone.clone(),
        legal_name: d.legal_name.clone(),
        business_type: d.business_type.clone(),
        contact_name: d.account_holder_name.clone(),
    };
    let bank = oasis_billing::gateway::SettlementBank {
        account_number: d.account_number.clone(),
        ifsc_code: d.ifsc_code.clone(),
        beneficiary_name: d.account_holder_name.clone(),
    };
    let (bdb, gw) = ports(&ctx.db, &ctx.payments);
    let out = route::set_up_linked_account(&bdb, &gw, creator_id, profile, bank)
        .await
        .map_err(|e| JobError::NotYet(e.to_string()))?;
    tracing::info!(creator_id, outcome = %out, "payouts.linked_account");
    Ok(())
}

pub fn register(registry: &mut JobRegistry, ctx: &AppContext) {
    let c = ctx.clone();
    registry.register(JOB_LINKED_ACCOUNT, move |payload: Value| {
        let ctx = c.clone();
        async move {
            let Ok(CreatorJob { creator_id }) = serde_json::from_value(payload.clone()) else {
                return bad(JOB_LINKED_ACCOUNT, &payload);
            };
            linked_account_job(&ctx, creator_id).await
        }
    });
    let (db, payments) = (ctx.db.clone(), ctx.payments.clone());
    registry.register(JOB_TRANSFER, move |payload: Value| {
        let (db, payments) = (db.clone(), payments.clone());
        async move {
            let Ok(PaymentJob { payment_id }) = serde_json::from_value(payload.clone()) else {
                return bad(JOB_TRANSFER, &payload);
            };
            let (bdb, gw) = ports(&db, &payments);
            let policy = payments.ledger_policy().payouts;
            let out = route::transfer_payment(&bdb, &gw, &payment_id, policy, Utc::now())
                .await
                .map_err(|e| JobError::NotYet(e.to_string()))?;
            tracing::info!(payment = %payment_id, outcome = %out, "payouts.transfer");
            Ok(())
        }
    });
    let (db, payments) = (ctx.db.clone(), ctx.payments.clone());
    registry.register(JOB_RELEASE, move |payload: Value| {
        let (db, payments) = (db.clone(), payments.clone());
        async move {
            let Ok(PaymentJob { payment_id }) = serde_json::from_value(payload.clone()) else {
                return bad(JOB_RELEASE, &payload);
            };
            let (bdb, gw) = ports(&db, &payments);
            let out = route::release_transfer(&bdb, &gw, &payment_id, Utc::now())
                .await
                .map_err(|e| JobError::NotYet(e.to_string()))?;
            tracing::info!(payment = %payment_id, outcome = %out, "payouts.release");
            Ok(())
        }
    });
    let (db, payments) = (ctx.db.clone(), ctx.payments.clone());
    registry.register(JOB_REVERSE, move |payload: Value| {
        let (db, payments) = (db.clone(), payments.clone());
        async move {
            let Ok(PaymentJob { payment_id }) = serde_json::from_value(payload.clone()) else {
                return bad(JOB_REVERSE, &payload);
            };
            let (bdb, gw) = ports(&db, &payments);
            let out = route::reverse_before_refund(&bdb, &gw, &payment_id, Utc::now())
                .await
                .map_err(|e| JobError::NotYet(e.to_string()))?;
            tracing::info!(payment = %payment_id, outcome = ?out, "payouts.reverse");
            Ok(())
        }
    });
    let (db, payments) = (ctx.db.clone(), ctx.payments.clone());
    registry.register(JOB_SETTLEMENT, move |payload: Value| {
        let (db, payments) = (db.clone(), payments.clone());
        async move {
            let Ok(SettlementJob { settlement_id, utr }) = serde_json::from_value(payload.clone())
            else {
                return bad(JOB_SETTLEMENT, &payload);
            };
            let (bdb, gw) = ports(&db, &payments);
            let out = route::settle(&bdb, &gw, &settlement_id, &utr, Utc::now())
                .await
                .map_err(|e| JobError::NotYet(e.to_string()))?;
            tracing::info!(settlement = %settlement_id, outcome = %out, "payouts.settlement");
            Ok(())
        }
    });
    // Money that became transferable (captured, a hold ended, a linked account activated) is
    // transferred by the sweep (also `oasis jobs run payouts.sweep`).
    let (db, payments) = (ctx.db.clone(), ctx.payments.clone());
    let every = Duration::from_secs(ctx.settings.payout_sweep_secs);
    registry.periodic(PERIODIC_TRANSFER_SWEEP, every, move |_: Value| {
        let (db, payments) = (db.clone(), payments.clone());
        async move {
            let (bdb, gw) = ports(&db, &payments);
            let policy = payments.ledger_policy().payouts;
            for pid in route::transferable_payments(&bdb, SWEEP_BATCH).await? {
                match route::transfer_payment(&bdb, &gw, &pid, policy, Utc::now()).await {
                    Ok(out) => tracing::info!(payment = %pid, outcome = %out, "payouts.sweep"),
                    Err(e) => tracing::warn!(payment = %pid, error = %e, "payouts.sweep: retried next sweep"),
                }
            }
            Ok(())
        }
    });
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

/// The periodic Route transfer sweep (`oasis jobs run payouts.sweep`).
pub const PERIODIC_TRANSFER_SWEEP: &str = "payouts.sweep";

/// Payments one sweep transfers at most.
const SWEEP_BATCH: i64 = 200;

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

/// `oasis payouts transfers [--creator <id>] [--limit <n>]`: the most recent Route transfer
/// attempts, newest first, one per line (tab-separated: row id, creator id, payment, attempt,
/// status, amount in minor units, currency, transfer id, settlement UTR, error).
pub async fn cli_transfers(
    settings: Settings,
    creator_id: Option<i64>,
    limit: i64,
) -> Result<String, CliError> {
    let (db, payments, cluster) = cli_context(settings).await?;
    let (bdb, _) = ports(&db, &payments);
    let rows = route::recent_transfers(&bdb, creator_id, limit.clamp(1, 10_000)).await;
    stop_cluster(cluster).await;
    let rows = rows.map_err(|e| CliError::Incomplete(e.to_string()))?;
    let mut out = format!("{} transfer attempt(s)", rows.len());
    for t in rows {
        out.push_str(&format!(
            "\n{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
            t.id,
            t.creator_id,
            t.payment_id,
            t.attempt,
            t.status.as_str(),
            t.amount,
            t.currency,
            t.transfer_id.as_deref().unwrap_or("-"),
            t.utr.as_deref().unwrap_or("-"),
            t.error.as_deref().unwrap_or("-"),
        ));
    }
    Ok(out)
}

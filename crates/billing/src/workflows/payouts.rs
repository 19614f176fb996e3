//! Route payouts over the unit of work and the gateway: setting up a creator's linked account,
//! transferring a payment's net exactly once, releasing a commission's held transfer, marking
//! settlements, reversing a transfer before its payment is refunded, and applying Route and
//! dispute webhooks. Rules and storage are in [`crate::payouts`].
use crate::gateway::{
    GatewayError, LinkedAccountRequest, PaymentGateway, RemoteTransfer, SettlementBank,
};
use crate::ledger::PayoutStatus;
use crate::payouts::{
    self, NewTransfer, PayoutAccount, RouteFact, TransferRecord, TransferStatus, JOB_RELEASE,
    JOB_SETTLEMENT, JOB_TRANSFER,
};
use crate::ports::{BillingDb, BillingTx, RefundStatus};
use crate::BillingError;
use oasis_kernel::{Page, PageRequest, Timestamp};
use serde_json::json;

/// The payout settings in force (the app's `OASIS_PAYOUT_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PayoutPolicy {
    /// First delay before retrying a failed transfer; doubles per attempt.
    pub retry_base_secs: u64,
    /// Attempts per payment before an operator must look.
    pub max_attempts: i32,
}

impl Default for PayoutPolicy {
    fn default() -> Self {
        Self {
            retry_base_secs: 60,
            max_attempts: 5,
        }
    }
}

/// What one payout step did, in words (for the job's log line).
pub type Outcome = String;

/// Creates or updates a creator's linked account, its stakeholder and its `route` product with
/// the settlement bank account, storing each id as soon as the gateway gives it (a retried job
/// resumes where it stopped), and the `payout_status` the product's answer says.
pub async fn set_up_linked_account(
    db: &impl BillingDb,
    gw: &impl PaymentGateway,
    creator_id: i64,
    profile: LinkedAccountRequest,
    bank: SettlementBank,
) -> Result<Outcome, BillingError> {
    let mut a = db
        .tx(move |t| Ok(t.store().payout_account(creator_id)?))
        .await?
        .unwrap_or_else(|| PayoutAccount::new(creator_id));
    let account_id = match a.account_id.clone() {
        Some(id) => {
            gw.update_linked_account(&id, &profile).await?;
            id
        }
        None => {
            let id = gw.create_linked_account(&profile).await?;
            a.account_id = Some(id.clone());
            save(db, &a).await?;
            id
        }
    };
    let sid = gw
        .save_stakeholder(
            &account_id,
            a.stakeholder_id.as_deref(),
            &profile.contact_name,
            &profile.email,
        )
        .await?;
    if a.stakeholder_id.as_deref() != Some(sid.as_str()) {
        a.stakeholder_id = Some(sid);
        save(db, &a).await?;
    }
    let product_id = match a.product_id.clone() {
        Some(p) => p,
        None => {
            let (p, status) = gw.request_route_product(&account_id).await?;
            a.product_id = Some(p.clone());
            if let Some(s) = PayoutStatus::of_activation(&status) {
                a.status = s;
            }
            save(db, &a).await?;
            p
        }
    };
    let status = gw
        .configure_route_product(&account_id, &product_id, &bank)
        .await?;
    if let Some(s) = PayoutStatus::of_activation(&status) {
        a.status = s;
    }
    save(db, &a).await?;
    Ok(format!(
        "linked account {account_id} of creator {creator_id}: {}",
        a.status.as_str()
    ))
}

async fn save(db: &impl BillingDb, a: &PayoutAccount) -> Result<(), BillingError> {
    let a = a.clone();
    db.tx(move |t| Ok(t.store().save_payout_account(&a)?)).await
}

/// The creator's payout status (`not_set_up` without a linked account).
pub fn payout_status_in(
    t: &mut dyn BillingTx,
    creator_id: i64,
) -> Result<PayoutStatus, BillingError> {
    Ok(t.store()
        .payout_account(creator_id)?
        .map(|a| a.status)
        .unwrap_or(PayoutStatus::NotSetUp))
}

enum Step {
    Done(Outcome),
    /// An intent without the gateway's answer: list the payment's transfers first.
    Resolve(TransferRecord),
    Send(TransferRecord),
}

/// Transfers a payment's net to its creator's linked account, exactly once. The intent is a
/// stored row before the gateway is called; an intent without the gateway's answer (a lost
/// answer, a crash) is resolved by listing the payment's transfers, and sent only when the
/// listing has no transfer carrying its id. `Err`: try again later (the intent stays).
pub async fn transfer_payment(
    db: &impl BillingDb,
    gw: &impl PaymentGateway,
    payment_id: &str,
    policy: PayoutPolicy,
    now: Timestamp,
) -> Result<Outcome, BillingError> {
    let pid = payment_id.to_owned();
    let step = db
        .tx(move |t| {
            let s = t.store();
            let Some(acct) = s.lock_payment_account(&pid)? else {
                return Ok(Step::Done(format!("{pid}: not in the ledger yet")));
            };
            let rows = s.payment_transfers(&pid)?;
            if let Some(live) = rows.iter().find(|r| r.status.is_live()) {
                return Ok(match live.transfer_id {
                    Some(_) => Step::Done(format!("{pid}: transferred already")),
                    None => Step::Resolve(live.clone()),
                });
            }
            let Some(on_hold) = payouts::transferable(&acct) else {
                return Ok(Step::Done(format!("{pid}: nothing to transfer")));
            };
            if s.refund_to_send(&pid)?
                .is_some_and(|r| r.status != RefundStatus::Failed)
            {
                return Ok(Step::Done(format!(
                    "{pid}: being refunded, not transferred"
                )));
            }
            let Some(pa) = s.payout_account(acct.creator_id)? else {
                return Ok(Step::Done(format!("{pid}: creator has no linked account")));
            };
            let (PayoutStatus::Active, Some(account_id)) = (pa.status, pa.account_id) else {
                return Ok(Step::Done(format!("{pid}: linked account not active")));
            };
            let attempt = rows.iter().map(|r| r.attempt).max().unwrap_or(0) + 1;
            if attempt > policy.max_attempts {
                return Ok(Step::Done(format!(
                    "{pid}: {} failed attempts; an operator must look",
                    attempt - 1
                )));
            }
            let row = s.insert_transfer(&NewTransfer {
                payment_id: pid.clone(),
                creator_id: acct.creator_id,
                attempt,
                account_id,
                amount: acct.remaining_net(),
                currency: acct.currency.clone(),
                on_hold,
            })?;
            Ok(Step::Send(row))
        })
        .await?;
    let row = match step {
        Step::Done(o) => return Ok(o),
        Step::Resolve(row) => {
            let listed = gw.payment_transfers(payment_id).await?;
            match listed.into_iter().find(|t| t.intent == Some(row.id)) {
                Some(remote) => return record(db, row.id, remote, policy, now).await,
                None => row,
            }
        }
        Step::Send(row) => row,
    };
    match gw
        .create_transfer(payment_id, &row.account_id, row.amount, row.on_hold, row.id)
        .await
    {
        Ok(remote) => record(db, row.id, remote, policy, now).await,
        Err(e @ GatewayError::Rejected { .. }) => {
            let (id, why) = (row.id, e.to_string());
            db.tx(move |t| fail_in(t, id, &why, policy, now)).await
        }
        Err(e) => Err(e.into()),
    }
}

/// Marks a transfer row failed and queues the next attempt with back-off.
fn fail_in(
    t: &mut dyn BillingTx,
    id: i64,
    why: &str,
    policy: PayoutPolicy,
    _now: Timestamp,
) -> Result<Outcome, BillingError> {
    let s = t.store();
    let Some(mut row) = s.transfer(id)? else {
        return Ok(format!("no transfer {id}"));
    };
    if row.status == TransferStatus::Failed {
        return Ok(format!("transfer {id} failed already"));
    }
    row.status = TransferStatus::Failed;
    row.error = Some(why.to_owned());
    s.save_transfer(&row)?;
    let delay = payouts::retry_delay_secs(policy.retry_base_secs, row.attempt);
    s.queue_payout_job(
        JOB_TRANSFER,
        &json!({ "payment_id": row.payment_id }),
        delay,
    )?;
    Ok(format!(
        "{}: attempt {} failed ({why}); retry in {delay} s",
        row.payment_id, row.attempt
    ))
}

/// Records what the gateway has of a transfer row (its answer, a listing or a webhook).
async fn record(
    db: &impl BillingDb,
    id: i64,
    remote: RemoteTransfer,
    policy: PayoutPolicy,
    now: Timestamp,
) -> Result<Outcome, BillingError> {
    db.tx(move |t| record_in(t, id, &remote, policy, now)).await
}

fn record_in(
    t: &mut dyn BillingTx,
    id: i64,
    remote: &RemoteTransfer,
    policy: PayoutPolicy,
    now: Timestamp,
) -> Result<Outcome, BillingError> {
    let s = t.store();
    let Some(mut row) = s.transfer(id)? else {
        return Ok(format!("no transfer {id}"));
    };
    if row.transfer_id.is_none() {
        row.transfer_id = Some(remote.id.clone());
        s.save_transfer(&row)?;
    }
    // Every amount from the gateway is checked against what was asked: a transfer of another
    // amount is recorded with the discrepancy and never posted (an operator must look).
    if remote.amount != row.amount {
        row.error = Some(format!(
            "the gateway's transfer {} is {}, {} was asked",
            remote.id, remote.amount, row.amount
        ));
        s.save_transfer(&row)?;
        return Ok(format!(
            "{}: MISMATCH: {}",
            row.payment_id,
            row.error.as_deref().unwrap_or_default()
        ));
    }
    match remote.processed {
        Some(false) => fail_in(
            t,
            id,
            remote.error.as_deref().unwrap_or("transfer failed"),
            policy,
            now,
        ),
        Some(true) => {
            if row.status == TransferStatus::Created {
                row.status = TransferStatus::Processed;
                s.save_transfer(&row)?;
            }
            let posted =
                !row.on_hold && payouts::post_transfer_in(s, &row.payment_id, &remote.id, now)?;
            Ok(format!(
                "{}: transfer {} processed{}",
                row.payment_id,
                remote.id,
                if posted { ", net transferred" } else { "" }
            ))
        }
        None => Ok(format!(
            "{}: transfer {} under way",
            row.payment_id, remote.id
        )),
    }
}

/// After a commission's hold ended (inside that transaction): its held transfer, if any, is
/// released by a job (`PATCH on_hold: false`); without one the next sweep transfers it unheld.
pub fn queue_release_in(t: &mut dyn BillingTx, payment_id: &str) -> Result<(), BillingError> {
    let s = t.store();
    let held = s
        .payment_transfers(payment_id)?
        .into_iter()
        .any(|r| r.status.is_live() && r.on_hold);
    if held {
        s.queue_payout_job(JOB_RELEASE, &json!({ "payment_id": payment_id }), 0)?;
    }
    Ok(())
}

/// After a refund was posted (inside that transaction): a payment refunded in full at the
/// gateway without our `billing.refund` (which reverses first), whose transfer reached the
/// creator, gets its transfer reversed by a job.
pub fn queue_reversal_if_refunded_in(
    t: &mut dyn BillingTx,
    payment_id: &str,
) -> Result<(), BillingError> {
    let s = t.store();
    let Some(a) = s.lock_payment_account(payment_id)? else {
        return Ok(());
    };
    if a.refunded < a.split.gross {
        return Ok(());
    }
    let live = s.payment_transfers(payment_id)?.into_iter().any(|r| {
        r.transfer_id.is_some()
            && matches!(
                r.status,
                TransferStatus::Processed | TransferStatus::Settled
            )
    });
    if live {
        s.queue_payout_job(
            payouts::JOB_REVERSE,
            &json!({ "payment_id": payment_id }),
            0,
        )?;
    }
    Ok(())
}

/// Releases a commission's held transfer and posts it (its net is `pending` since the hold
/// ended). `Err`: try again later.
pub async fn release_transfer(
    db: &impl BillingDb,
    gw: &impl PaymentGateway,
    payment_id: &str,
    now: Timestamp,
) -> Result<Outcome, BillingError> {
    let pid = payment_id.to_owned();
    let row = db
        .tx(move |t| {
            Ok(t.store()
                .payment_transfers(&pid)?
                .into_iter()
                .find(|r| r.status.is_live() && r.on_hold))
        })
        .await?;
    let Some(mut row) = row else {
        return Ok(format!("{payment_id}: no held transfer"));
    };
    let Some(trf) = row.transfer_id.clone() else {
        return Err(BillingError::Gateway(GatewayError::Unavailable(format!(
            "{payment_id}: the held transfer's answer is not recorded yet"
        ))));
    };
    gw.release_transfer(&trf).await?;
    db.tx(move |t| {
        let s = t.store();
        row.on_hold = false;
        s.save_transfer(&row)?;
        let posted = row.status == TransferStatus::Processed
            && payouts::post_transfer_in(s, &row.payment_id, &trf, now)?;
        Ok(format!(
            "{}: transfer {trf} released{}",
            row.payment_id,
            if posted { ", net transferred" } else { "" }
        ))
    })
    .await
}

/// Marks the transfers a settlement paid out as settled, with its UTR. `Err`: try again later.
pub async fn settle(
    db: &impl BillingDb,
    gw: &impl PaymentGateway,
    settlement_id: &str,
    utr: &str,
    now: Timestamp,
) -> Result<Outcome, BillingError> {
    let listed = gw.settlement_transfers(settlement_id).await?;
    let (setl, utr) = (settlement_id.to_owned(), utr.to_owned());
    db.tx(move |t| {
        let s = t.store();
        let mut n = 0;
        for remote in listed {
            let Some(mut row) = s.transfer_by_gateway_id(&remote.id)? else {
                continue;
            };
            if row.status == TransferStatus::Settled || row.status == TransferStatus::Reversed {
                continue;
            }
            row.status = TransferStatus::Settled;
            row.settlement_id = Some(setl.clone());
            row.utr = Some(utr.clone());
            s.save_transfer(&row)?;
            payouts::post_settlement_in(s, &row.payment_id, &remote.id, &utr, now)?;
            n += 1;
        }
        Ok(format!(
            "settlement {setl} ({utr}): {n} transfer(s) settled"
        ))
    })
    .await
}

/// Before a payment is refunded: reverses its transfer (if one reached the creator) and posts
/// the reversal. A reversal already made (a lost answer) is found by listing the transfer's
/// reversals first. `Err`: try again later (the refund waits).
pub async fn reverse_before_refund(
    db: &impl BillingDb,
    gw: &impl PaymentGateway,
    payment_id: &str,
    now: Timestamp,
) -> Result<Option<Outcome>, BillingError> {
    let pid = payment_id.to_owned();
    let live = db
        .tx(move |t| {
            Ok(t.store()
                .payment_transfers(&pid)?
                .into_iter()
                .find(|r| r.status.is_live()))
        })
        .await?;
    let Some(row) = live else {
        return Ok(None);
    };
    let Some(trf) = row.transfer_id.clone() else {
        // An intent whose answer is unknown: resolve it first (the next attempt reverses).
        let listed = gw.payment_transfers(payment_id).await?;
        if let Some(remote) = listed.into_iter().find(|t| t.intent == Some(row.id)) {
            let id = row.id;
            db.tx(move |t| {
                let s = t.store();
                if let Some(mut r) = s.transfer(id)? {
                    r.transfer_id = Some(remote.id.clone());
                    s.save_transfer(&r)?;
                }
                Ok(())
            })
            .await?;
            return Err(BillingError::Gateway(GatewayError::Unavailable(
                "transfer resolved; reverse on the next attempt".into(),
            )));
        }
        // Never made: the intent fails, nothing to reverse.
        let id = row.id;
        db.tx(move |t| {
            let s = t.store();
            if let Some(mut r) = s.transfer(id)? {
                r.status = TransferStatus::Failed;
                r.error = Some("not made before the payment's refund".into());
                s.save_transfer(&r)?;
            }
            Ok(())
        })
        .await?;
        return Ok(None);
    };
    let reversal = match gw
        .transfer_reversals(&trf)
        .await?
        .into_iter()
        .find(|r| r.intent == Some(row.id))
    {
        Some(r) => r.id,
        None => gw.reverse_transfer(&trf, row.id).await?,
    };
    let mut row = row;
    let out = db
        .tx(move |t| {
            let s = t.store();
            row.status = TransferStatus::Reversed;
            row.reversal_id = Some(reversal.clone());
            s.save_transfer(&row)?;
            payouts::post_reversal_in(s, &row.payment_id, &reversal, now)?;
            Ok(format!(
                "{}: transfer {trf} reversed ({reversal})",
                row.payment_id
            ))
        })
        .await?;
    Ok(Some(out))
}

/// Applies a Route or dispute webhook inside the caller's transaction.
pub fn apply_fact_in(
    t: &mut dyn BillingTx,
    fact: &RouteFact,
    policy: PayoutPolicy,
    now: Timestamp,
) -> Result<Outcome, BillingError> {
    match fact {
        RouteFact::Transfer {
            transfer_id,
            payment_id,
            amount,
            processed,
            error,
            intent,
        } => {
            let s = t.store();
            let row = match s.transfer_by_gateway_id(transfer_id)? {
                Some(r) => Some(r),
                None => match intent {
                    Some(i) => s.transfer(*i)?.filter(|r| &r.payment_id == payment_id),
                    None => None,
                },
            };
            let Some(row) = row else {
                return Ok(format!("transfer {transfer_id}: not ours"));
            };
            let remote = RemoteTransfer {
                id: transfer_id.clone(),
                payment_id: payment_id.clone(),
                amount: *amount,
                on_hold: row.on_hold,
                processed: Some(*processed),
                error: error.clone(),
                intent: Some(row.id),
                settlement_id: None,
            };
            record_in(t, row.id, &remote, policy, now)
        }
        RouteFact::Settlement { settlement_id, utr } => {
            t.store().queue_payout_job(
                JOB_SETTLEMENT,
                &json!({ "settlement_id": settlement_id, "utr": utr }),
                0,
            )?;
            Ok(format!("settlement {settlement_id}: queued"))
        }
        RouteFact::Product { account_id, status } => set_status_in(t, account_id, *status),
        RouteFact::AccountSuspended { account_id } => {
            set_status_in(t, account_id, PayoutStatus::Suspended)
        }
        RouteFact::Dispute { payment_id, phase } => {
            Ok(payouts::dispute_in(t.store(), payment_id, *phase, now)?)
        }
    }
}

fn set_status_in(
    t: &mut dyn BillingTx,
    account_id: &str,
    status: PayoutStatus,
) -> Result<Outcome, BillingError> {
    let s = t.store();
    let Some(mut a) = s.payout_account_by_linked(account_id)? else {
        return Ok(format!("linked account {account_id}: not ours"));
    };
    a.status = status;
    s.save_payout_account(&a)?;
    Ok(format!("linked account {account_id}: {}", status.as_str()))
}

/// Payments waiting for a transfer (the periodic sweep), at most `limit`.
pub async fn transferable_payments(
    db: &impl BillingDb,
    limit: i64,
) -> Result<Vec<String>, BillingError> {
    db.tx(move |t| Ok(t.store().transferable_payments(limit)?))
        .await
}

/// The most recent transfer attempts (one creator's, or everyone's), for the operator.
pub async fn recent_transfers(
    db: &impl BillingDb,
    creator_id: Option<i64>,
    limit: i64,
) -> Result<Vec<TransferRecord>, BillingError> {
    db.tx(move |t| Ok(t.store().recent_transfers(creator_id, limit)?))
        .await
}

/// One page of a creator's transfers, newest first.
pub async fn creator_transfers(
    db: &impl BillingDb,
    creator_id: i64,
    page: PageRequest,
) -> Result<Page<TransferRecord>, BillingError> {
    db.tx(move |t| {
        let (results, count) =
            t.store()
                .creator_transfers(creator_id, page.offset(), page.limit())?;
        Ok(Page { count, results })
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{Effect, PaymentStatus, Purpose};
    use crate::ledger::{Bucket, Policy};
    use crate::memory::{MemoryDb, MemoryStore};
    use crate::memory_gateway::MemoryGateway;
    use crate::ports::{NewOrder, OrderKind};
    use chrono::{TimeZone, Utc};
    use pollster::block_on;

    fn t(s: i64) -> Timestamp {
        Utc.timestamp_opt(1_800_000_000 + s, 0).unwrap()
    }

    fn world() -> MemoryDb {
        let mut s = MemoryStore::default();
        s.add_creator(7, "maker");
        s.add_user(8, "fan");
        s.set_ledger_policy(Policy::default());
        crate::ports::BillingStore::insert_order(
            &mut s,
            &NewOrder {
                razorpay_order_id: "order_c".into(),
                kind: OrderKind::Cheer,
                user_id: Some(8),
                creator_id: Some(7),
                tier_id: None,
                reference_id: None,
                amount: 10_000,
                currency: "INR".into(),
                name: String::new(),
                message: String::new(),
                notes: serde_json::json!({}),
            },
        )
        .unwrap();
        let db = MemoryDb::new(s);
        let fx = vec![Effect::Payment {
            payment: crate::events::PaymentSnapshot {
                id: "pay_c".into(),
                amount: 10_000,
                currency: "INR".into(),
                status: PaymentStatus::Captured,
                order_id: Some("order_c".into()),
                invoice_id: None,
                amount_refunded: 0,
                notes: [("type".to_owned(), "cheer".to_owned())]
                    .into_iter()
                    .collect(),
                email: None,
                contact: None,
                created_at: t(0),
                fee: Some(236),
                instrument: None,
            },
            purpose: Purpose::Order {
                order_id: "order_c".into(),
                notes_type: Some("cheer".into()),
            },
        }];
        block_on(super::super::sync::apply_effects(&db, fx, t(1))).unwrap();
        db
    }

    fn profile() -> LinkedAccountRequest {
        LinkedAccountRequest {
            reference_id: "oasis-7".into(),
            email: "maker@example.org".into(),
            phone: "9000090000".into(),
            legal_name: "Maker Studio".into(),
            business_type: "individual".into(),
            contact_name: "Maker".into(),
        }
    }

    fn bank() -> SettlementBank {
        SettlementBank {
            account_number: "123456789012".into(),
            ifsc_code: "HDFC0001234".into(),
            beneficiary_name: "Maker".into(),
        }
    }

    fn bucket(db: &MemoryDb) -> Bucket {
        db.with(|s| {
            crate::ledger::LedgerStore::lock_payment_account(s, "pay_c")
                .unwrap()
                .unwrap()
                .bucket
        })
    }

    #[test]
    fn a_lost_answer_is_resolved_by_listing_never_a_second_transfer() {
        let db = world();
        let gw = MemoryGateway::default();
        let p = PayoutPolicy::default();
        block_on(set_up_linked_account(&db, &gw, 7, profile(), bank())).unwrap();
        // Under review: nothing is transferred.
        let o = block_on(transfer_payment(&db, &gw, "pay_c", p, t(2))).unwrap();
        assert!(o.contains("not active"), "{o}");
        gw.set_route_status("activated");
        block_on(set_up_linked_account(&db, &gw, 7, profile(), bank())).unwrap();
        assert_eq!(
            gw.count("create_linked_account"),
            1,
            "resumed, not recreated"
        );
        gw.lose_next_transfer_answer();
        assert!(block_on(transfer_payment(&db, &gw, "pay_c", p, t(3))).is_err());
        let o = block_on(transfer_payment(&db, &gw, "pay_c", p, t(4))).unwrap();
        assert!(o.contains("processed"), "{o}");
        block_on(transfer_payment(&db, &gw, "pay_c", p, t(5))).unwrap();
        assert_eq!(gw.count("create_transfer"), 1, "never two transfers");
        assert_eq!(gw.transfers()[0].amount, 10_000 - 236);
        assert_eq!(bucket(&db), Bucket::Transferred);
        // A refund reverses it first.
        let o = block_on(reverse_before_refund(&db, &gw, "pay_c", t(6))).unwrap();
        assert!(o.unwrap().contains("reversed"));
        assert_eq!(bucket(&db), Bucket::Pending);
        assert!(block_on(reverse_before_refund(&db, &gw, "pay_c", t(7)))
            .unwrap()
            .is_none());
        assert_eq!(gw.count("reverse_transfer"), 1);
        assert!(block_on(super::super::ledger::unbalanced_postings(&db))
            .unwrap()
            .is_empty());
    }
}

//! The earnings ledger's workflows: posting what [`super::sync::apply_in`] recorded (in its
//! transaction), fetching a fee no event carried, releasing holds, the creator's earnings and
//! statement, and the operator's manual payouts. The rules are in [`crate::ledger`].
use crate::events::Effect;
use crate::gateway::PaymentGateway;
use crate::ledger::{
    self, Balance, Earnings, HoldReason, ManualPayoutDue, ManualPayoutError, Posted, Release,
    StatementLine,
};
use crate::ports::{BillingDb, BillingTx};
use crate::BillingError;
use oasis_kernel::{Page, PageRequest, Timestamp};

/// Posts every payment the effects recorded or refunded (inside the caller's transaction).
pub fn post_effects_in(
    t: &mut dyn BillingTx,
    effects: &[Effect],
    now: Timestamp,
) -> Result<Posted, BillingError> {
    let policy = t.ledger_policy();
    let mut out = Posted::default();
    for fx in effects {
        let (id, fee) = match fx {
            Effect::Payment { payment, .. } => (payment.id.as_str(), payment.fee),
            Effect::Refund {
                payment_id,
                payment,
                ..
            } => (payment_id.as_str(), payment.as_ref().and_then(|p| p.fee)),
            _ => continue,
        };
        let p = ledger::post_payment(t.store(), &policy, id, fee, now)?;
        out.lines.extend(p.lines);
        out.alerts.extend(p.alerts);
        super::payouts::queue_reversal_if_refunded_in(t, id)?;
    }
    Ok(out)
}

/// The `billing.ledger_fee` job: fetches a captured payment whose fee no event carried and
/// posts it. `Err` = retry later (an outage, or Razorpay has no fee for it yet).
pub async fn post_fetched(
    db: &impl BillingDb,
    gw: &impl PaymentGateway,
    payment_id: &str,
    now: Timestamp,
) -> Result<Posted, BillingError> {
    let p = gw.fetch_payment(payment_id).await?;
    let Some(fee) = p.and_then(|p| p.fee) else {
        return Err(BillingError::Gateway(
            crate::gateway::GatewayError::Unavailable(format!(
                "payment {payment_id} has no fee at the gateway yet"
            )),
        ));
    };
    let pid = payment_id.to_owned();
    db.tx(move |t| {
        let policy = t.ledger_policy();
        Ok(ledger::post_payment(
            t.store(),
            &policy,
            &pid,
            Some(fee),
            now,
        )?)
    })
    .await
}

/// Ends the commission hold of a payment (inside the caller's transaction): the commissions
/// workflow calls this when a commission is completed. [`Release::NotPosted`] means the payment
/// is not in the ledger yet (not captured, or its fee is being fetched): call again later.
pub fn release_commission_hold_in(
    t: &mut dyn BillingTx,
    razorpay_payment_id: &str,
    now: Timestamp,
) -> Result<Release, BillingError> {
    let r = ledger::release_hold_in(t.store(), razorpay_payment_id, HoldReason::Commission, now)?;
    if matches!(r, Release::Released(_)) {
        // A transfer made on hold is released at the gateway by a job.
        super::payouts::queue_release_in(t, razorpay_payment_id)?;
    }
    Ok(r)
}

/// [`release_commission_hold_in`] in its own transaction.
pub async fn release_commission_hold(
    db: &impl BillingDb,
    razorpay_payment_id: &str,
    now: Timestamp,
) -> Result<Release, BillingError> {
    let pid = razorpay_payment_id.to_owned();
    db.tx(move |t| release_commission_hold_in(t, &pid, now))
        .await
}

/// Releases membership holds whose period ended (the periodic sweep); returns how many.
pub async fn release_due_holds(
    db: &impl BillingDb,
    now: Timestamp,
    limit: i64,
) -> Result<usize, BillingError> {
    db.tx(move |t| Ok(ledger::release_due_holds_in(t.store(), now, limit)?))
        .await
}

/// A creator's balances, one per currency they earned in.
pub async fn balances(db: &impl BillingDb, creator_id: i64) -> Result<Vec<Balance>, BillingError> {
    db.tx(move |t| Ok(Balance::from_sums(&t.store().creator_sums(creator_id)?)))
        .await
}

/// A creator's earnings: balances and the Route linked account's payout status.
pub async fn earnings(db: &impl BillingDb, creator_id: i64) -> Result<Earnings, BillingError> {
    db.tx(move |t| {
        Ok(Earnings {
            balances: Balance::from_sums(&t.store().creator_sums(creator_id)?),
            payout_status: super::payouts::payout_status_in(t, creator_id)?,
        })
    })
    .await
}

/// A period of a creator's ledger, `[from, to)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
}

impl Period {
    /// From ISO dates (inclusive both ends, UTC days); `to` before `from` is a field error.
    pub fn from_dates(
        from: Option<chrono::NaiveDate>,
        to: Option<chrono::NaiveDate>,
    ) -> Result<Self, BillingError> {
        if let (Some(f), Some(t)) = (from, to) {
            if t < f {
                return Err(BillingError::invalid(
                    "to",
                    "Ensure this date is not before `from`.",
                ));
            }
        }
        let start = |d: chrono::NaiveDate| d.and_time(chrono::NaiveTime::MIN).and_utc();
        Ok(Self {
            from: from.map(start),
            to: to.and_then(|d| d.succ_opt()).map(start),
        })
    }
}

/// One page of a creator's statement.
pub async fn statement(
    db: &impl BillingDb,
    creator_id: i64,
    period: Period,
    page: PageRequest,
) -> Result<Page<StatementLine>, BillingError> {
    db.tx(move |t| {
        let (results, count) = t.store().statement(
            creator_id,
            period.from,
            period.to,
            page.offset(),
            page.limit(),
        )?;
        Ok(Page { count, results })
    })
    .await
}

/// The whole statement of a period (a CSV export), at most `max_rows` lines; `Invalid` when the
/// period has more (the creator narrows it).
pub async fn statement_export(
    db: &impl BillingDb,
    creator_id: i64,
    period: Period,
    max_rows: i64,
) -> Result<Vec<StatementLine>, BillingError> {
    db.tx(move |t| {
        let (lines, count) =
            t.store()
                .statement(creator_id, period.from, period.to, 0, max_rows)?;
        if count > max_rows {
            return Err(BillingError::invalid(
                "from",
                format!("The period has {count} lines; export at most {max_rows} at a time."),
            ));
        }
        Ok(lines)
    })
    .await
}

/// What an operator must still pay out by hand (non-INR balances).
pub async fn manual_payouts_due(db: &impl BillingDb) -> Result<Vec<ManualPayoutDue>, BillingError> {
    db.tx(|t| Ok(t.store().manual_payouts_due()?)).await
}

/// Records an operator's manual payout; `Ok(false)` when the same reference was recorded before.
pub async fn mark_manual_payout(
    db: &impl BillingDb,
    creator_id: i64,
    currency: String,
    amount: i64,
    reference: String,
    now: Timestamp,
) -> Result<bool, BillingError> {
    db.tx(move |t| {
        ledger::mark_manual_payout_in(t.store(), creator_id, &currency, amount, &reference, now)?
            .map_err(|e| {
                let field = match e {
                    ManualPayoutError::Reference => "reference",
                    _ => "amount",
                };
                BillingError::invalid(field, e.to_string())
            })
    })
    .await
}

/// Postings whose entries do not sum to zero (always empty; checked by the test suite).
pub async fn unbalanced_postings(db: &impl BillingDb) -> Result<Vec<String>, BillingError> {
    db.tx(|t| Ok(t.store().unbalanced_postings()?)).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{Effect, PaymentStatus, Purpose};
    use crate::ledger::{Bucket, Policy};
    use crate::memory::{MemoryDb, MemoryStore};
    use crate::ports::{NewOrder, OrderKind};
    use chrono::{TimeZone, Utc};
    use pollster::block_on;

    fn t(s: i64) -> Timestamp {
        Utc.timestamp_opt(1_800_000_000 + s, 0).unwrap()
    }

    fn order_payment(id: &str, order: &str, kind: &str, cur: &str) -> Effect {
        Effect::Payment {
            payment: crate::events::PaymentSnapshot {
                id: id.into(),
                amount: 10_000,
                currency: cur.into(),
                status: PaymentStatus::Captured,
                order_id: Some(order.into()),
                invoice_id: None,
                amount_refunded: 0,
                notes: [("type".to_owned(), kind.to_owned())].into_iter().collect(),
                email: None,
                contact: None,
                created_at: t(0),
                fee: Some(236),
                instrument: None,
            },
            purpose: Purpose::Order {
                order_id: order.into(),
                notes_type: Some(kind.into()),
            },
        }
    }

    fn world(policy: Policy) -> MemoryDb {
        let mut s = MemoryStore::default();
        s.add_creator(7, "maker");
        s.add_user(8, "fan");
        s.set_ledger_policy(policy);
        for (order, kind, cur) in [
            ("order_c", OrderKind::Cheer, "INR"),
            ("order_k", OrderKind::Commission, "INR"),
            ("order_u", OrderKind::Cheer, "USD"),
        ] {
            crate::ports::BillingStore::insert_order(
                &mut s,
                &NewOrder {
                    razorpay_order_id: order.into(),
                    kind,
                    user_id: Some(8),
                    creator_id: Some(7),
                    tier_id: None,
                    reference_id: None,
                    amount: 10_000,
                    currency: cur.into(),
                    name: String::new(),
                    message: String::new(),
                    notes: serde_json::json!({}),
                },
            )
            .unwrap();
        }
        MemoryDb::new(s)
    }

    fn balance(db: &MemoryDb, cur: &str) -> Balance {
        block_on(balances(db, 7))
            .unwrap()
            .into_iter()
            .find(|b| b.currency == cur)
            .unwrap_or_default()
    }

    #[test]
    fn payments_are_posted_once_with_their_net() {
        let db = world(Policy {
            platform_fee_bps: 500,
            hold_days: 0,
            ..Default::default()
        });
        let fx = vec![order_payment("pay_c", "order_c", "cheer", "INR")];
        for _ in 0..3 {
            block_on(super::super::sync::apply_effects(&db, fx.clone(), t(1))).unwrap();
        }
        let b = balance(&db, "INR");
        assert_eq!(b.gross, 10_000);
        assert_eq!(b.fees, 236 + 500);
        assert_eq!(b.pending, 10_000 - 236 - 500);
        assert_eq!(b.net() + b.fees, b.gross);
        assert!(block_on(unbalanced_postings(&db)).unwrap().is_empty());
    }

    #[test]
    fn commissions_are_held_until_released_and_usd_accrues_for_manual_payout() {
        let db = world(Policy::default());
        let fx = vec![
            order_payment("pay_k", "order_k", "commission", "INR"),
            order_payment("pay_u", "order_u", "cheer", "USD"),
        ];
        block_on(super::super::sync::apply_effects(&db, fx, t(1))).unwrap();
        assert_eq!(balance(&db, "INR").on_hold, 10_000 - 236);
        assert_eq!(
            balance(&db, "USD").available_for_manual_payout,
            10_000 - 236
        );
        assert_eq!(
            block_on(release_commission_hold(&db, "pay_k", t(2))).unwrap(),
            Release::Released(Bucket::Pending)
        );
        assert_eq!(
            block_on(release_commission_hold(&db, "pay_k", t(3))).unwrap(),
            Release::NotHeld
        );
        assert_eq!(
            block_on(release_commission_hold(&db, "pay_none", t(3))).unwrap(),
            Release::NotPosted
        );
        let b = balance(&db, "INR");
        assert_eq!((b.on_hold, b.pending), (0, 10_000 - 236));
        let due = block_on(manual_payouts_due(&db)).unwrap();
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].amount, 10_000 - 236);
        let mark = |amount: i64, r: &str| {
            block_on(mark_manual_payout(
                &db,
                7,
                "USD".into(),
                amount,
                r.into(),
                t(4),
            ))
        };
        assert!(matches!(
            mark(1_000_000, "wire-1"),
            Err(BillingError::Invalid { .. })
        ));
        assert!(mark(9_764, "wire-1").unwrap());
        assert!(
            !mark(9_764, "wire-1").unwrap(),
            "the same reference records once"
        );
        let usd = balance(&db, "USD");
        assert_eq!((usd.available_for_manual_payout, usd.settled), (0, 9_764));
        assert!(block_on(manual_payouts_due(&db)).unwrap().is_empty());
    }

    #[test]
    fn refunds_reverse_proportionally_and_fully() {
        let db = world(Policy {
            platform_fee_bps: 333,
            hold_days: 0,
            ..Default::default()
        });
        block_on(super::super::sync::apply_effects(
            &db,
            vec![order_payment("pay_c", "order_c", "cheer", "INR")],
            t(1),
        ))
        .unwrap();
        for (refunded, at) in [(3_333, 2), (7_000, 3), (10_000, 4)] {
            let fx = vec![Effect::Refund {
                payment_id: "pay_c".into(),
                amount: refunded,
                payment: None,
            }];
            // A processed refund of an order payment is applied as its payment; here the
            // refund path stands for both (the ledger follows the stored refunded amount).
            db.with(|s| {
                crate::ports::BillingStore::set_payment_refunded(
                    s,
                    "pay_c",
                    refunded,
                    refunded == 10_000,
                )
                .unwrap()
            });
            block_on(super::super::sync::apply_effects(&db, fx, t(at))).unwrap();
            let b = balance(&db, "INR");
            assert_eq!(b.gross, 10_000 - refunded);
            assert_eq!(b.net() + b.fees, b.gross);
        }
        let b = balance(&db, "INR");
        assert_eq!((b.pending, b.fees, b.gross), (0, 0, 0));
        let page = block_on(statement(
            &db,
            7,
            Period {
                from: None,
                to: None,
            },
            PageRequest::default(),
        ))
        .unwrap();
        assert_eq!(page.count, 4, "a capture and three refunds");
        assert_eq!(page.results.iter().map(|l| l.gross).sum::<i64>(), 0);
        assert!(block_on(unbalanced_postings(&db)).unwrap().is_empty());
    }

    #[test]
    fn a_payment_without_its_fee_waits_for_the_fetch() {
        let db = world(Policy::default());
        let mut fx = order_payment("pay_c", "order_c", "cheer", "INR");
        if let Effect::Payment { payment, .. } = &mut fx {
            payment.fee = None;
        }
        block_on(super::super::sync::apply_effects(&db, vec![fx], t(1))).unwrap();
        assert_eq!(balance(&db, "INR"), Balance::default());
        assert_eq!(db.with(|s| s.fee_fetches()), vec!["pay_c".to_owned()]);
        let gw = crate::memory_gateway::MemoryGateway::default();
        // The gateway does not know it: the job retries later.
        assert!(block_on(post_fetched(&db, &gw, "pay_c", t(2))).is_err());
    }

    #[test]
    fn statement_periods_are_whole_days() {
        let d = |s: &str| Some(s.parse::<chrono::NaiveDate>().unwrap());
        let p = Period::from_dates(d("2026-12-01"), d("2026-12-01")).unwrap();
        assert_eq!(p.to.unwrap() - p.from.unwrap(), chrono::Duration::days(1));
        assert!(Period::from_dates(d("2026-12-02"), d("2026-12-01")).is_err());
    }
}

//! Postgres adapter of billing's earnings ledger (`oasis_billing::ledger::LedgerStore`, migration
//! `2026-12-02-130000_ledger`): one `ledger_accounts` row per posted payment, append-only
//! `ledger_postings` (unique `key`: a repeated fact posts nothing) and their `ledger_entries`,
//! whose zero sum per posting a deferred constraint trigger checks at commit.
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use oasis_billing::ledger::{
    Account, Bucket, HoldReason, LedgerStore, ManualPayoutDue, PaymentAccount, PaymentFacts,
    Posting, PostingKind, Source, Split, StatementLine,
};
use oasis_billing::PaymentStatus;
use oasis_kernel::RepoError;

use crate::billing::PgBilling;
use crate::repo_error;
use crate::schema::{
    billing_orders, jobs, ledger_accounts, ledger_entries, ledger_postings, memberships, payments,
    payout_transfers,
};
use oasis_billing::payouts::TransferStatus;

type Ts = DateTime<Utc>;

fn unknown(column: &str, value: &str) -> RepoError {
    RepoError::Unavailable(format!("{column}: unknown stored value {value:?}"))
}

#[derive(Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = ledger_accounts, check_for_backend(diesel::pg::Pg))]
#[diesel(treat_none_as_null = true)]
struct AccountRow {
    razorpay_payment_id: String,
    creator_id: i64,
    source: String,
    currency: String,
    gross: i64,
    gateway_fee: i64,
    platform_fee: i64,
    net: i64,
    refunded: i64,
    bucket: String,
    hold_reason: Option<String>,
    hold_until: Option<Ts>,
    disputed_from: Option<String>,
    captured_at: Ts,
}

impl AccountRow {
    fn into_domain(self) -> Result<PaymentAccount, RepoError> {
        Ok(PaymentAccount {
            split: Split {
                gross: self.gross,
                gateway_fee: self.gateway_fee,
                platform_fee: self.platform_fee,
                net: self.net,
            },
            source: Source::parse(&self.source)?,
            bucket: Bucket::parse(&self.bucket)?,
            hold: self
                .hold_reason
                .as_deref()
                .map(HoldReason::parse)
                .transpose()?,
            disputed_from: self
                .disputed_from
                .as_deref()
                .map(Bucket::parse)
                .transpose()?,
            payment_id: self.razorpay_payment_id,
            creator_id: self.creator_id,
            currency: self.currency,
            refunded: self.refunded,
            hold_until: self.hold_until,
            captured_at: self.captured_at,
        })
    }
    fn of(a: &PaymentAccount) -> Self {
        Self {
            razorpay_payment_id: a.payment_id.clone(),
            creator_id: a.creator_id,
            source: a.source.as_str().to_owned(),
            currency: a.currency.clone(),
            gross: a.split.gross,
            gateway_fee: a.split.gateway_fee,
            platform_fee: a.split.platform_fee,
            net: a.split.net,
            refunded: a.refunded,
            bucket: a.bucket.as_str().to_owned(),
            hold_reason: a.hold.map(|h| h.as_str().to_owned()),
            hold_until: a.hold_until,
            disputed_from: a.disputed_from.map(|b| b.as_str().to_owned()),
            captured_at: a.captured_at,
        }
    }
}

impl LedgerStore for PgBilling<'_> {
    fn ledger_facts(&mut self, payment_id: &str) -> Result<Option<PaymentFacts>, RepoError> {
        #[derive(Queryable, Selectable)]
        #[diesel(table_name = payments, check_for_backend(diesel::pg::Pg))]
        struct P {
            kind: String,
            status: String,
            amount: i64,
            amount_refunded: i64,
            currency: String,
            creator_id: Option<i64>,
            membership_id: Option<i64>,
            order_id: Option<i64>,
            paid_at: Ts,
        }
        let Some(p) = payments::table
            .filter(payments::razorpay_payment_id.eq(payment_id))
            .select(P::as_select())
            .first::<P>(self.0)
            .optional()
            .map_err(repo_error)?
        else {
            return Ok(None);
        };
        let rejected = match p.order_id {
            Some(o) => billing_orders::table
                .find(o)
                .select(billing_orders::status)
                .first::<String>(self.0)
                .optional()
                .map_err(repo_error)?
                .is_some_and(|s| s == oasis_billing::ports::OrderStatus::Rejected.as_str()),
            None => false,
        };
        let voided = match p.membership_id {
            Some(m) => memberships::table
                .find(m)
                .select(memberships::void_reason)
                .first::<Option<String>>(self.0)
                .optional()
                .map_err(repo_error)?
                .flatten()
                .is_some(),
            None => false,
        };
        Ok(Some(PaymentFacts {
            payment_id: payment_id.to_owned(),
            status: PaymentStatus::parse(&p.status)
                .ok_or_else(|| unknown("payments.status", &p.status))?,
            amount: p.amount,
            amount_refunded: p.amount_refunded,
            currency: p.currency,
            creator_id: p.creator_id,
            source: Source::of_payment_kind(&p.kind),
            accepted: !rejected && !voided,
            captured_at: p.paid_at,
        }))
    }

    fn lock_payment_account(
        &mut self,
        payment_id: &str,
    ) -> Result<Option<PaymentAccount>, RepoError> {
        ledger_accounts::table
            .find(payment_id)
            .select(AccountRow::as_select())
            .for_update()
            .first::<AccountRow>(self.0)
            .optional()
            .map_err(repo_error)?
            .map(AccountRow::into_domain)
            .transpose()
    }

    fn save_payment_account(&mut self, account: &PaymentAccount) -> Result<(), RepoError> {
        let row = AccountRow::of(account);
        diesel::insert_into(ledger_accounts::table)
            .values(&row)
            .on_conflict(ledger_accounts::razorpay_payment_id)
            .do_update()
            .set((&row, ledger_accounts::updated_at.eq(diesel::dsl::now)))
            .execute(self.0)
            .map(|_| ())
            .map_err(repo_error)
    }

    fn post(&mut self, p: &Posting) -> Result<bool, RepoError> {
        if !p.is_balanced() {
            // The trigger would refuse it at commit; refuse it here with the same name.
            return Err(RepoError::Conflict {
                constraint: "ledger_postings_balanced".into(),
            });
        }
        use ledger_postings::dsl as lp;
        let id: Option<i64> = diesel::insert_into(lp::ledger_postings)
            .values((
                lp::key.eq(&p.key),
                lp::razorpay_payment_id.eq(p.payment_id.as_deref()),
                lp::creator_id.eq(p.creator_id),
                lp::currency.eq(&p.currency),
                lp::kind.eq(p.kind.as_str()),
                lp::gross.eq(p.gross),
                lp::gateway_fee.eq(p.gateway_fee),
                lp::platform_fee.eq(p.platform_fee),
                lp::net.eq(p.net),
                lp::reference.eq(p.reference.as_deref()),
                lp::posted_at.eq(p.at),
            ))
            .on_conflict(lp::key)
            .do_nothing()
            .returning(lp::id)
            .get_result(self.0)
            .optional()
            .map_err(repo_error)?;
        let Some(id) = id else {
            return Ok(false);
        };
        let rows: Vec<_> = p
            .entries
            .iter()
            .filter(|e| e.amount != 0)
            .map(|e| {
                (
                    ledger_entries::posting_id.eq(id),
                    ledger_entries::creator_id.eq(p.creator_id),
                    ledger_entries::currency.eq(&p.currency),
                    ledger_entries::account.eq(e.account.as_str()),
                    ledger_entries::amount.eq(e.amount),
                )
            })
            .collect();
        diesel::insert_into(ledger_entries::table)
            .values(&rows)
            .execute(self.0)
            .map_err(repo_error)?;
        Ok(true)
    }

    fn posted(&mut self, key: &str) -> Result<bool, RepoError> {
        diesel::select(diesel::dsl::exists(
            ledger_postings::table.filter(ledger_postings::key.eq(key)),
        ))
        .get_result(self.0)
        .map_err(repo_error)
    }

    fn request_fee_fetch(&mut self, payment_id: &str) -> Result<(), RepoError> {
        let payload = serde_json::json!({ "payment_id": payment_id });
        let queued: bool = diesel::select(diesel::dsl::exists(
            jobs::table
                .filter(jobs::kind.eq(oasis_billing::JOB_LEDGER_FEE))
                .filter(jobs::payload.eq(&payload))
                .filter(jobs::done_at.is_null()),
        ))
        .get_result(self.0)
        .map_err(repo_error)?;
        if !queued {
            crate::jobs::enqueue(self.0, oasis_billing::JOB_LEDGER_FEE, &payload)?;
        }
        Ok(())
    }

    fn creator_sums(&mut self, creator_id: i64) -> Result<Vec<(String, Account, i64)>, RepoError> {
        let rows: Vec<(String, String, i64)> = ledger_entries::table
            .filter(ledger_entries::creator_id.eq(creator_id))
            .group_by((ledger_entries::currency, ledger_entries::account))
            .select((
                ledger_entries::currency,
                ledger_entries::account,
                sum_amount(),
            ))
            .load(self.0)
            .map_err(repo_error)?;
        rows.into_iter()
            .map(|(c, a, v)| Ok((c, Account::parse(&a)?, v)))
            .collect()
    }

    fn statement(
        &mut self,
        creator_id: i64,
        from: Option<Ts>,
        to: Option<Ts>,
        offset: i64,
        limit: i64,
    ) -> Result<(Vec<StatementLine>, i64), RepoError> {
        let kinds = [PostingKind::Capture.as_str(), PostingKind::Refund.as_str()];
        // Transfers, reversals and settlements are not lines of their own: each capture line
        // names its transfer and the settlement's UTR.
        let filtered = || {
            let mut q = ledger_postings::table
                .filter(ledger_postings::creator_id.eq(creator_id))
                .filter(ledger_postings::kind.eq_any(kinds))
                .into_boxed();
            if let Some(f) = from {
                q = q.filter(ledger_postings::posted_at.ge(f));
            }
            if let Some(t) = to {
                q = q.filter(ledger_postings::posted_at.lt(t));
            }
            q
        };
        let count: i64 = filtered().count().get_result(self.0).map_err(repo_error)?;
        #[allow(clippy::type_complexity)]
        let rows: Vec<(
            Ts,
            Option<String>,
            String,
            String,
            i64,
            i64,
            i64,
            i64,
            Option<String>,
        )> = filtered()
            .order((ledger_postings::posted_at.asc(), ledger_postings::id.asc()))
            .offset(offset)
            .limit(limit)
            .select((
                ledger_postings::posted_at,
                ledger_postings::razorpay_payment_id,
                ledger_postings::kind,
                ledger_postings::currency,
                ledger_postings::gross,
                ledger_postings::gateway_fee,
                ledger_postings::platform_fee,
                ledger_postings::net,
                ledger_postings::reference,
            ))
            .load(self.0)
            .map_err(repo_error)?;
        let ids: Vec<&str> = rows.iter().filter_map(|r| r.1.as_deref()).collect();
        let sources: std::collections::HashMap<String, String> = ledger_accounts::table
            .filter(ledger_accounts::razorpay_payment_id.eq_any(&ids))
            .select((
                ledger_accounts::razorpay_payment_id,
                ledger_accounts::source,
            ))
            .load::<(String, String)>(self.0)
            .map_err(repo_error)?
            .into_iter()
            .collect();
        // Each payment's live Route transfer (the one that holds its money) and its settlement.
        let transfers: std::collections::HashMap<String, (Option<String>, Option<String>)> =
            payout_transfers::table
                .filter(payout_transfers::razorpay_payment_id.eq_any(&ids))
                .filter(payout_transfers::status.ne(TransferStatus::Failed.as_str()))
                .order(payout_transfers::attempt.asc())
                .select((
                    payout_transfers::razorpay_payment_id,
                    payout_transfers::razorpay_transfer_id,
                    payout_transfers::utr,
                ))
                .load::<(String, Option<String>, Option<String>)>(self.0)
                .map_err(repo_error)?
                .into_iter()
                .map(|(p, t, u)| (p, (t, u)))
                .collect();
        let lines = rows
            .into_iter()
            .map(|r| {
                let (transfer_id, settlement_utr) =
                    r.1.as_ref()
                        .and_then(|id| transfers.get(id))
                        .cloned()
                        .unwrap_or_default();
                Ok(StatementLine {
                    at: r.0,
                    source: match r.1.as_ref().and_then(|id| sources.get(id)) {
                        Some(s) => Some(Source::parse(s)?),
                        None => None,
                    },
                    payment_id: r.1,
                    kind: PostingKind::parse(&r.2)?,
                    currency: r.3,
                    gross: r.4,
                    gateway_fee: r.5,
                    platform_fee: r.6,
                    net: r.7,
                    reference: r.8,
                    transfer_id,
                    settlement_utr,
                })
            })
            .collect::<Result<Vec<_>, RepoError>>()?;
        Ok((lines, count))
    }

    fn due_holds(&mut self, now: Ts, limit: i64) -> Result<Vec<String>, RepoError> {
        ledger_accounts::table
            .filter(ledger_accounts::hold_reason.eq(HoldReason::HoldPeriod.as_str()))
            .filter(ledger_accounts::hold_until.le(now))
            .order(ledger_accounts::hold_until.asc())
            .limit(limit)
            .select(ledger_accounts::razorpay_payment_id)
            .load(self.0)
            .map_err(repo_error)
    }

    fn manual_payouts_due(&mut self) -> Result<Vec<ManualPayoutDue>, RepoError> {
        let rows: Vec<(i64, String, i64)> = ledger_entries::table
            .filter(ledger_entries::account.eq(Account::Creator(Bucket::ManualPayout).as_str()))
            .group_by((ledger_entries::creator_id, ledger_entries::currency))
            .select((
                ledger_entries::creator_id,
                ledger_entries::currency,
                sum_amount(),
            ))
            .order((ledger_entries::creator_id, ledger_entries::currency))
            .load(self.0)
            .map_err(repo_error)?;
        Ok(rows
            .into_iter()
            .filter_map(|(creator_id, currency, v)| {
                let amount = v;
                (amount > 0).then_some(ManualPayoutDue {
                    creator_id,
                    currency,
                    amount,
                })
            })
            .collect())
    }

    fn unbalanced_postings(&mut self) -> Result<Vec<String>, RepoError> {
        // A grouped HAVING over a join: clearer as SQL.
        #[derive(QueryableByName)]
        struct K {
            #[diesel(sql_type = diesel::sql_types::Text)]
            key: String,
        }
        diesel::sql_query(
            "SELECT p.key FROM ledger_postings p LEFT JOIN ledger_entries e ON e.posting_id = p.id
             GROUP BY p.id, p.key HAVING COALESCE(SUM(e.amount), 0) <> 0 ORDER BY p.id",
        )
        .load::<K>(self.0)
        .map(|v| v.into_iter().map(|k| k.key).collect())
        .map_err(repo_error)
    }
}

/// `SUM(amount)` as a `bigint`: PostgreSQL sums `bigint` into `numeric`, which Diesel reads only
/// with its `numeric` feature (bigdecimal, not built here); minor units fit an `i64`.
fn sum_amount() -> diesel::expression::SqlLiteral<diesel::sql_types::BigInt> {
    diesel::dsl::sql::<diesel::sql_types::BigInt>("COALESCE(SUM(ledger_entries.amount), 0)::bigint")
}

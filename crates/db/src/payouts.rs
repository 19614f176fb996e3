//! Postgres adapter of billing's Route payouts (`oasis_billing::payouts::PayoutStore`, migration
//! `2026-12-03-010000_payouts`): `payout_accounts` (one per creator) and `payout_transfers` (every
//! attempt; a partial unique index keeps at most one live transfer per payment).
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use oasis_billing::ledger::PayoutStatus;
use oasis_billing::payouts::{
    NewTransfer, PayoutAccount, PayoutStore, TransferRecord, TransferStatus, JOB_TRANSFER,
};
use oasis_kernel::RepoError;

use crate::billing::PgBilling;
use crate::repo_error;
use crate::schema::{jobs, payout_accounts, payout_transfers};

type Ts = DateTime<Utc>;

#[derive(Queryable, Selectable)]
#[diesel(table_name = payout_accounts, check_for_backend(diesel::pg::Pg))]
struct AccountRow {
    creator_id: i64,
    razorpay_account_id: Option<String>,
    stakeholder_id: Option<String>,
    product_id: Option<String>,
    status: String,
}

impl AccountRow {
    fn into_domain(self) -> Result<PayoutAccount, RepoError> {
        Ok(PayoutAccount {
            creator_id: self.creator_id,
            account_id: self.razorpay_account_id,
            stakeholder_id: self.stakeholder_id,
            product_id: self.product_id,
            status: PayoutStatus::parse(&self.status)?,
        })
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = payout_transfers, check_for_backend(diesel::pg::Pg))]
struct TransferRow {
    id: i64,
    razorpay_payment_id: String,
    creator_id: i64,
    attempt: i32,
    razorpay_account_id: String,
    amount: i64,
    currency: String,
    on_hold: bool,
    status: String,
    razorpay_transfer_id: Option<String>,
    error: Option<String>,
    reversal_id: Option<String>,
    settlement_id: Option<String>,
    utr: Option<String>,
    created_at: Ts,
}

impl TransferRow {
    fn into_domain(self) -> Result<TransferRecord, RepoError> {
        Ok(TransferRecord {
            id: self.id,
            payment_id: self.razorpay_payment_id,
            creator_id: self.creator_id,
            attempt: self.attempt,
            account_id: self.razorpay_account_id,
            amount: self.amount,
            currency: self.currency,
            on_hold: self.on_hold,
            status: TransferStatus::parse(&self.status)?,
            transfer_id: self.razorpay_transfer_id,
            error: self.error,
            reversal_id: self.reversal_id,
            settlement_id: self.settlement_id,
            utr: self.utr,
            created_at: self.created_at,
        })
    }
}

fn rows(v: Vec<TransferRow>) -> Result<Vec<TransferRecord>, RepoError> {
    v.into_iter().map(TransferRow::into_domain).collect()
}

impl PayoutStore for PgBilling<'_> {
    fn payout_account(&mut self, creator_id: i64) -> Result<Option<PayoutAccount>, RepoError> {
        payout_accounts::table
            .find(creator_id)
            .select(AccountRow::as_select())
            .first::<AccountRow>(self.0)
            .optional()
            .map_err(repo_error)?
            .map(AccountRow::into_domain)
            .transpose()
    }

    fn payout_account_by_linked(
        &mut self,
        account_id: &str,
    ) -> Result<Option<PayoutAccount>, RepoError> {
        payout_accounts::table
            .filter(payout_accounts::razorpay_account_id.eq(account_id))
            .select(AccountRow::as_select())
            .first::<AccountRow>(self.0)
            .optional()
            .map_err(repo_error)?
            .map(AccountRow::into_domain)
            .transpose()
    }

    fn save_payout_account(&mut self, a: &PayoutAccount) -> Result<(), RepoError> {
        use payout_accounts::dsl as pa;
        let values = (
            pa::razorpay_account_id.eq(a.account_id.as_deref()),
            pa::stakeholder_id.eq(a.stakeholder_id.as_deref()),
            pa::product_id.eq(a.product_id.as_deref()),
            pa::status.eq(a.status.as_str()),
        );
        diesel::insert_into(pa::payout_accounts)
            .values((pa::creator_id.eq(a.creator_id), values))
            .on_conflict(pa::creator_id)
            .do_update()
            .set((values, pa::updated_at.eq(diesel::dsl::now)))
            .execute(self.0)
            .map(|_| ())
            .map_err(repo_error)
    }

    fn payment_transfers(&mut self, payment_id: &str) -> Result<Vec<TransferRecord>, RepoError> {
        rows(
            payout_transfers::table
                .filter(payout_transfers::razorpay_payment_id.eq(payment_id))
                .order(payout_transfers::attempt.asc())
                .select(TransferRow::as_select())
                .load(self.0)
                .map_err(repo_error)?,
        )
    }

    fn insert_transfer(&mut self, t: &NewTransfer) -> Result<TransferRecord, RepoError> {
        use payout_transfers::dsl as pt;
        diesel::insert_into(pt::payout_transfers)
            .values((
                pt::razorpay_payment_id.eq(&t.payment_id),
                pt::creator_id.eq(t.creator_id),
                pt::attempt.eq(t.attempt),
                pt::razorpay_account_id.eq(&t.account_id),
                pt::amount.eq(t.amount),
                pt::currency.eq(&t.currency),
                pt::on_hold.eq(t.on_hold),
                pt::status.eq(TransferStatus::Created.as_str()),
            ))
            .returning(TransferRow::as_returning())
            .get_result::<TransferRow>(self.0)
            .map_err(repo_error)?
            .into_domain()
    }

    fn save_transfer(&mut self, t: &TransferRecord) -> Result<(), RepoError> {
        use payout_transfers::dsl as pt;
        diesel::update(pt::payout_transfers.find(t.id))
            .set((
                pt::status.eq(t.status.as_str()),
                pt::on_hold.eq(t.on_hold),
                pt::razorpay_transfer_id.eq(t.transfer_id.as_deref()),
                pt::error.eq(t.error.as_deref()),
                pt::reversal_id.eq(t.reversal_id.as_deref()),
                pt::settlement_id.eq(t.settlement_id.as_deref()),
                pt::utr.eq(t.utr.as_deref()),
                pt::updated_at.eq(diesel::dsl::now),
            ))
            .execute(self.0)
            .map(|_| ())
            .map_err(repo_error)
    }

    fn transfer(&mut self, id: i64) -> Result<Option<TransferRecord>, RepoError> {
        payout_transfers::table
            .find(id)
            .select(TransferRow::as_select())
            .for_update()
            .first::<TransferRow>(self.0)
            .optional()
            .map_err(repo_error)?
            .map(TransferRow::into_domain)
            .transpose()
    }

    fn transfer_by_gateway_id(
        &mut self,
        transfer_id: &str,
    ) -> Result<Option<TransferRecord>, RepoError> {
        payout_transfers::table
            .filter(payout_transfers::razorpay_transfer_id.eq(transfer_id))
            .select(TransferRow::as_select())
            .for_update()
            .first::<TransferRow>(self.0)
            .optional()
            .map_err(repo_error)?
            .map(TransferRow::into_domain)
            .transpose()
    }

    fn creator_transfers(
        &mut self,
        creator_id: i64,
        offset: i64,
        limit: i64,
    ) -> Result<(Vec<TransferRecord>, i64), RepoError> {
        let count: i64 = payout_transfers::table
            .filter(payout_transfers::creator_id.eq(creator_id))
            .count()
            .get_result(self.0)
            .map_err(repo_error)?;
        let page = rows(
            payout_transfers::table
                .filter(payout_transfers::creator_id.eq(creator_id))
                .order(payout_transfers::id.desc())
                .offset(offset)
                .limit(limit)
                .select(TransferRow::as_select())
                .load(self.0)
                .map_err(repo_error)?,
        )?;
        Ok((page, count))
    }

    fn recent_transfers(
        &mut self,
        creator_id: Option<i64>,
        limit: i64,
    ) -> Result<Vec<TransferRecord>, RepoError> {
        let mut q = payout_transfers::table.into_boxed();
        if let Some(c) = creator_id {
            q = q.filter(payout_transfers::creator_id.eq(c));
        }
        rows(
            q.order(payout_transfers::id.desc())
                .limit(limit)
                .select(TransferRow::as_select())
                .load(self.0)
                .map_err(repo_error)?,
        )
    }

    fn transferable_payments(&mut self, limit: i64) -> Result<Vec<String>, RepoError> {
        // An anti-join over three tables with a status list: clearer as SQL.
        #[derive(QueryableByName)]
        struct P {
            #[diesel(sql_type = diesel::sql_types::Text)]
            razorpay_payment_id: String,
        }
        diesel::sql_query(
            "SELECT la.razorpay_payment_id FROM ledger_accounts la
             JOIN payout_accounts pa ON pa.creator_id = la.creator_id AND pa.status = 'active'
             WHERE la.currency = 'INR'
               AND (la.bucket = 'pending' OR (la.bucket = 'on_hold' AND la.hold_reason = 'commission'))
               AND NOT EXISTS (SELECT 1 FROM payout_transfers pt
                               WHERE pt.razorpay_payment_id = la.razorpay_payment_id
                                 AND pt.status IN ('created', 'processed', 'settled'))
               AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.kind = $1 AND j.done_at IS NULL
                               AND j.payload ->> 'payment_id' = la.razorpay_payment_id)
             ORDER BY la.captured_at LIMIT $2",
        )
        .bind::<diesel::sql_types::Text, _>(JOB_TRANSFER)
        .bind::<diesel::sql_types::BigInt, _>(limit)
        .load::<P>(self.0)
        .map(|v| v.into_iter().map(|p| p.razorpay_payment_id).collect())
        .map_err(repo_error)
    }

    fn queue_payout_job(
        &mut self,
        kind: &str,
        payload: &serde_json::Value,
        delay_secs: i64,
    ) -> Result<(), RepoError> {
        let queued: bool = diesel::select(diesel::dsl::exists(
            jobs::table
                .filter(jobs::kind.eq(kind))
                .filter(jobs::payload.eq(payload))
                .filter(jobs::done_at.is_null()),
        ))
        .get_result(self.0)
        .map_err(repo_error)?;
        if !queued {
            let at = Utc::now() + chrono::Duration::seconds(delay_secs.max(0));
            crate::jobs::enqueue_at(self.0, kind, payload, at)?;
        }
        Ok(())
    }
}

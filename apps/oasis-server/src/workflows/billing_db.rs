//! billing's unit-of-work port ([`BillingDb`]) over the PostgreSQL pool: each `tx` takes a pooled
//! connection on the blocking pool (never an async worker) and runs the workflow's step in one
//! transaction. Announcements become other domains' effects in that same transaction: the fan
//! follows the creator (social), notifications are queued (notify).
use diesel::{Connection, PgConnection};
use oasis_billing::ledger::Policy;
use oasis_billing::ports::{Announcement, BillingDb, BillingStore, BillingTx};
use oasis_billing::BillingError;
use oasis_db::billing::PgBilling;
use oasis_db::PgPool;
use oasis_kernel::RepoError;

/// See the module documentation. `policy`: the earnings ledger's settings its transactions
/// apply.
#[derive(Clone)]
pub struct PgBillingDb(pub PgPool, pub Policy);

/// One transaction's [`BillingTx`] over a connection already inside a transaction (for shell
/// work that must share it, e.g. the webhook inbox row).
pub struct PgTx<'a>(PgBilling<'a>, Policy);

impl<'a> PgTx<'a> {
    pub fn new(c: &'a mut PgConnection, policy: Policy) -> Self {
        Self(PgBilling(c), policy)
    }
}

impl BillingTx for PgTx<'_> {
    fn store(&mut self) -> &mut dyn BillingStore {
        &mut self.0
    }

    fn announce(&mut self, a: &Announcement) -> Result<(), RepoError> {
        let c: &mut PgConnection = self.0 .0;
        match a {
            Announcement::MembershipStarted { fan, creator } => {
                super::billing::follow_creator(c, *fan, *creator)
            }
            Announcement::EffectsPlanned(effects) => {
                crate::workflows::notify::enqueue_billing_effects(c, effects)
            }
            Announcement::CommissionPaid(paid) => {
                crate::workflows::commissions::on_commission_paid(c, paid)
            }
            Announcement::MembershipChanged { change_id } => {
                super::change::notify_change(c, *change_id)
            }
            Announcement::PaymentRefunded { payment_id } => oasis_db::notify::enqueue_event(
                c,
                &oasis_notify::Event::PaymentRefunded {
                    payment_id: payment_id.clone(),
                },
            ),
        }
    }

    fn ledger_policy(&self) -> Policy {
        self.1
    }
}

/// A transaction's error: the workflow's, or the database's own (commit, rollback).
enum TxError {
    Billing(BillingError),
    Db(diesel::result::Error),
}

impl From<diesel::result::Error> for TxError {
    fn from(e: diesel::result::Error) -> Self {
        Self::Db(e)
    }
}

impl BillingDb for PgBillingDb {
    async fn tx<T, F>(&self, f: F) -> Result<T, BillingError>
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn BillingTx) -> Result<T, BillingError> + Send + 'static,
    {
        let (pool, policy) = (self.0.clone(), self.1);
        let run = move || -> Result<T, BillingError> {
            let mut conn = pool
                .get()
                .map_err(|e| BillingError::Repo(RepoError::Unreachable(e.to_string())))?;
            conn.transaction::<T, TxError, _>(|c| {
                f(&mut PgTx(PgBilling(c), policy)).map_err(TxError::Billing)
            })
            .map_err(|e| match e {
                TxError::Billing(b) => b,
                TxError::Db(d) => BillingError::Repo(oasis_db::repo_error(d)),
            })
        };
        actix_web::web::block(run)
            .await
            .map_err(|e| BillingError::Repo(RepoError::Unavailable(e.to_string())))?
    }
}

/// The checkout workflows' wait between looks at a concurrent reservation: tokio's timer.
pub struct TokioPause;

impl oasis_billing::workflows::checkout::Pause for TokioPause {
    async fn pause(&self, d: std::time::Duration) {
        tokio::time::sleep(d).await
    }
}

/// Billing's ports over the app's pool and Razorpay peer.
pub fn billing_ports(
    ctx: &crate::context::AppContext,
) -> (PgBillingDb, crate::gateway::RazorpayGateway) {
    (
        PgBillingDb(ctx.db.pool().clone(), ctx.payments.ledger_policy()),
        crate::gateway::RazorpayGateway(ctx.payments.clone()),
    )
}

//! billing's unit-of-work port ([`BillingDb`]) over the PostgreSQL pool: each `tx` takes a pooled
//! connection on the blocking pool (never an async worker) and runs the workflow's step in one
//! transaction, through [`Db`] so the read cache hears what it wrote before the caller goes on. Announcements become other domains' effects in that same transaction: the fan
//! follows the creator (social), notifications are queued (notify).
use crate::db::{Db, DbError};
use diesel::PgConnection;
use oasis_billing::ledger::Policy;
use oasis_billing::ports::{Announcement, BillingDb, BillingStore, BillingTx};
use oasis_billing::BillingError;
use oasis_db::billing::PgBilling;
use oasis_kernel::RepoError;

/// See the module documentation. `policy`: the earnings ledger's settings its transactions
/// apply.
#[derive(Clone)]
pub struct PgBillingDb(pub Db, pub Policy);

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

/// Billing's workflows fail with [`BillingError`]; the pool's own failures are repository ones.
impl From<DbError> for BillingError {
    fn from(e: DbError) -> Self {
        BillingError::Repo(match e {
            DbError::Unavailable(m) => RepoError::Unreachable(m),
            DbError::BlockingPoolClosed => RepoError::Unavailable(e.to_string()),
            DbError::Repo(r) => r,
        })
    }
}

impl BillingDb for PgBillingDb {
    async fn tx<T, F>(&self, f: F) -> Result<T, BillingError>
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn BillingTx) -> Result<T, BillingError> + Send + 'static,
    {
        let policy = self.1;
        self.0
            .tx_as(move |c| f(&mut PgTx(PgBilling(c), policy)))
            .await
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
        PgBillingDb(ctx.db.clone(), ctx.payments.ledger_policy()),
        crate::gateway::RazorpayGateway(ctx.payments.clone()),
    )
}

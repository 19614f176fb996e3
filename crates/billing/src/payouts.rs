//! Paying creators through Razorpay Route: the creator's linked account and its `payout_status`,
//! one transfer of a payment's net to it (exactly once: the intent is a stored row before the
//! gateway is called, and a lost answer is resolved by listing the payment's transfers), its
//! settlement, its reversal before a refund, and chargebacks. The ledger postings these facts
//! make are here too (pure rules over [`crate::ledger::LedgerStore`]); the async steps are in
//! [`crate::workflows::payouts`].
use crate::ledger::{
    move_entries, Bucket, HoldReason, LedgerStore, PayoutStatus, Posting, PostingKind,
    ROUTE_CURRENCY,
};
use oasis_kernel::{RepoError, Timestamp};

/// Job kind: create or update a creator's linked account, stakeholder and `route` product
/// (payload `{"creator_id"}`; queued when bank details are saved).
pub const JOB_LINKED_ACCOUNT: &str = "payouts.linked_account";
/// Job kind: transfer one payment's net (payload `{"payment_id"}`; a retry of a failed one).
pub const JOB_TRANSFER: &str = "payouts.transfer";
/// Job kind: release the hold of a commission's transfer (payload `{"payment_id"}`).
pub const JOB_RELEASE: &str = "payouts.release";
/// Job kind: reverse the transfer of a payment refunded at the gateway without us (payload
/// `{"payment_id"}`).
pub const JOB_REVERSE: &str = "payouts.reverse";
/// Job kind: mark the transfers a settlement paid (payload `{"settlement_id", "utr"}`).
pub const JOB_SETTLEMENT: &str = "payouts.settlement";

/// The note on a Route transfer that names our intent (the transfers row id).
pub const TRANSFER_NOTE: &str = "oasis_transfer";
/// The note on a reversal that names the transfers row it reverses.
pub const REVERSAL_NOTE: &str = "oasis_reversal";

impl PayoutStatus {
    pub const ALL: [PayoutStatus; 5] = [
        Self::NotSetUp,
        Self::Pending,
        Self::Active,
        Self::NeedsClarification,
        Self::Suspended,
    ];
    pub fn parse(s: &str) -> Result<Self, RepoError> {
        Self::ALL
            .into_iter()
            .find(|x| x.as_str() == s)
            .ok_or_else(|| RepoError::Unavailable(format!("unknown payout status {s:?}")))
    }
    /// From a `route` product's `activation_status` (`None`: a status we do not know).
    pub fn of_activation(s: &str) -> Option<Self> {
        Some(match s {
            "requested" | "under_review" => Self::Pending,
            "activated" => Self::Active,
            "needs_clarification" => Self::NeedsClarification,
            "suspended" => Self::Suspended,
            _ => return None,
        })
    }
}

/// Where one transfer of a payment stands (what `GET /subscriptions/api/payouts` shows).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransferStatus {
    /// The intent is recorded (the gateway may or may not have it yet) or it is being processed.
    Created,
    /// Credited to the creator's linked account.
    Processed,
    /// Failed at the gateway (a new attempt follows with back-off).
    Failed,
    /// Reversed (before a refund of its payment).
    Reversed,
    /// Paid out to the creator's bank (with the settlement's UTR).
    Settled,
}

impl TransferStatus {
    pub const ALL: [TransferStatus; 5] = [
        Self::Created,
        Self::Processed,
        Self::Failed,
        Self::Reversed,
        Self::Settled,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Processed => "processed",
            Self::Failed => "failed",
            Self::Reversed => "reversed",
            Self::Settled => "settled",
        }
    }
    pub fn parse(s: &str) -> Result<Self, RepoError> {
        Self::ALL
            .into_iter()
            .find(|x| x.as_str() == s)
            .ok_or_else(|| RepoError::Unavailable(format!("unknown transfer status {s:?}")))
    }
    /// Holds the payment's money at the creator's side (at most one per payment).
    pub fn is_live(self) -> bool {
        matches!(self, Self::Created | Self::Processed | Self::Settled)
    }
}

/// A creator's Route linked account as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayoutAccount {
    pub creator_id: i64,
    pub account_id: Option<String>,
    pub stakeholder_id: Option<String>,
    pub product_id: Option<String>,
    pub status: PayoutStatus,
}

impl PayoutAccount {
    pub fn new(creator_id: i64) -> Self {
        Self {
            creator_id,
            account_id: None,
            stakeholder_id: None,
            product_id: None,
            status: PayoutStatus::NotSetUp,
        }
    }
}

/// One attempt at transferring a payment's net.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferRecord {
    pub id: i64,
    pub payment_id: String,
    pub creator_id: i64,
    /// 1 for the first attempt; a failed attempt's retry is the next.
    pub attempt: i32,
    pub account_id: String,
    pub amount: i64,
    pub currency: String,
    pub on_hold: bool,
    pub status: TransferStatus,
    /// `trf_…` once the gateway answered (or the listing found it).
    pub transfer_id: Option<String>,
    pub error: Option<String>,
    pub reversal_id: Option<String>,
    pub settlement_id: Option<String>,
    pub utr: Option<String>,
    pub created_at: Timestamp,
}

/// A transfer intent to record before calling the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTransfer {
    pub payment_id: String,
    pub creator_id: i64,
    pub attempt: i32,
    pub account_id: String,
    pub amount: i64,
    pub currency: String,
    pub on_hold: bool,
}

/// What a Route or dispute webhook says (parsed by the shell).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteFact {
    /// `transfer.processed` / `transfer.failed`.
    Transfer {
        transfer_id: String,
        payment_id: String,
        /// Minor units, as the gateway says.
        amount: i64,
        processed: bool,
        error: Option<String>,
        /// Our intent id from the transfer's notes.
        intent: Option<i64>,
    },
    /// `settlement.processed`.
    Settlement { settlement_id: String, utr: String },
    /// `product.route.*`: the linked account's product changed status.
    Product {
        account_id: String,
        status: PayoutStatus,
    },
    /// `account.suspended`.
    AccountSuspended { account_id: String },
    /// `payment.dispute.*`.
    Dispute {
        payment_id: String,
        phase: DisputePhase,
    },
}

/// Where a chargeback stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisputePhase {
    /// Opened (created, under review, action required): the amount is `disputed`.
    Open,
    /// Won: the amount returns to where it was.
    Won,
    /// Lost or closed against the creator: it stays `disputed`.
    Lost,
}

impl DisputePhase {
    /// From the event name's last part (`created`, `won`, …).
    pub fn of_event(name: &str) -> Option<Self> {
        Some(match name.rsplit('.').next()? {
            "created" | "under_review" | "action_required" => Self::Open,
            "won" => Self::Won,
            "lost" | "closed" => Self::Lost,
            _ => return None,
        })
    }
}

/// Storage of linked accounts and transfers (part of every billing store).
pub trait PayoutStore {
    fn payout_account(&mut self, creator_id: i64) -> Result<Option<PayoutAccount>, RepoError>;
    fn payout_account_by_linked(
        &mut self,
        account_id: &str,
    ) -> Result<Option<PayoutAccount>, RepoError>;
    /// Inserts or updates.
    fn save_payout_account(&mut self, account: &PayoutAccount) -> Result<(), RepoError>;
    /// A payment's transfer attempts, oldest first.
    fn payment_transfers(&mut self, payment_id: &str) -> Result<Vec<TransferRecord>, RepoError>;
    /// Records an intent (`created`, no gateway id). At most one live transfer per payment and
    /// one row per (payment, attempt): a second is a `Conflict`.
    fn insert_transfer(&mut self, t: &NewTransfer) -> Result<TransferRecord, RepoError>;
    /// Saves a row's gateway id, status, error, hold, reversal and settlement.
    fn save_transfer(&mut self, t: &TransferRecord) -> Result<(), RepoError>;
    fn transfer(&mut self, id: i64) -> Result<Option<TransferRecord>, RepoError>;
    fn transfer_by_gateway_id(
        &mut self,
        transfer_id: &str,
    ) -> Result<Option<TransferRecord>, RepoError>;
    /// A creator's transfers, newest first: a page and the count.
    fn creator_transfers(
        &mut self,
        creator_id: i64,
        offset: i64,
        limit: i64,
    ) -> Result<(Vec<TransferRecord>, i64), RepoError>;
    /// The most recent transfer attempts (of one creator, or of everyone), newest first.
    fn recent_transfers(
        &mut self,
        creator_id: Option<i64>,
        limit: i64,
    ) -> Result<Vec<TransferRecord>, RepoError>;
    /// INR payments whose net waits for a transfer (pending, or held for a commission) to an
    /// active linked account, with no live transfer and no job queued for one (at most `limit`).
    fn transferable_payments(&mut self, limit: i64) -> Result<Vec<String>, RepoError>;
    /// Queues a payouts job (`delay_secs` from now), unless the same is queued and not done.
    fn queue_payout_job(
        &mut self,
        kind: &str,
        payload: &serde_json::Value,
        delay_secs: i64,
    ) -> Result<(), RepoError>;
}

#[allow(clippy::too_many_arguments)]
fn move_posting(
    key: String,
    kind: PostingKind,
    payment_id: &str,
    creator_id: i64,
    currency: &str,
    amount: i64,
    from: Bucket,
    to: Bucket,
    reference: Option<String>,
    at: Timestamp,
) -> Posting {
    Posting {
        key,
        payment_id: Some(payment_id.to_owned()),
        creator_id,
        currency: currency.to_owned(),
        kind,
        gross: 0,
        gateway_fee: 0,
        platform_fee: 0,
        net: amount,
        reference,
        at,
        entries: move_entries(amount, from, to),
    }
}

/// Whether a payment's ledger account can be transferred now (`Some(on_hold)`): INR, its net
/// transferable (`pending`) or held for a commission (transferred `on_hold` until it completes).
pub fn transferable(account: &crate::ledger::PaymentAccount) -> Option<bool> {
    if account.currency != ROUTE_CURRENCY || account.remaining_net() < 100 {
        return None;
    }
    match (account.bucket, account.hold) {
        (Bucket::Pending, _) => Some(false),
        (Bucket::OnHold, Some(HoldReason::Commission)) => Some(true),
        _ => None,
    }
}

/// One whole-net move of a payment's ledger account, from a bucket `from` accepts to `to`.
struct WholeMove<'a> {
    key: String,
    kind: PostingKind,
    reference: &'a str,
    to: Bucket,
}

/// Moves the payment's remaining net as `m` says when its account passes `from`; `Ok(true)` when
/// posted now (a posting already made under the key is not posted twice).
fn move_whole_net(
    store: &mut (impl LedgerStore + ?Sized),
    payment_id: &str,
    from: impl Fn(&crate::ledger::PaymentAccount) -> bool,
    m: WholeMove<'_>,
    now: Timestamp,
) -> Result<bool, RepoError> {
    let Some(mut a) = store.lock_payment_account(payment_id)? else {
        return Ok(false);
    };
    if !from(&a) {
        return Ok(false);
    }
    let posted = store.post(&move_posting(
        m.key,
        m.kind,
        payment_id,
        a.creator_id,
        &a.currency,
        a.remaining_net(),
        a.bucket,
        m.to,
        Some(m.reference.to_owned()),
        now,
    ))?;
    if posted {
        a.bucket = m.to;
        store.save_payment_account(&a)?;
    }
    Ok(posted)
}

/// Posts a processed, unheld transfer: the payment's net moves `pending` → `transferred`. A
/// transfer still held for a commission is posted when its hold ends. Idempotent.
pub fn post_transfer_in(
    store: &mut (impl LedgerStore + ?Sized),
    payment_id: &str,
    transfer_id: &str,
    now: Timestamp,
) -> Result<bool, RepoError> {
    let m = WholeMove {
        key: format!("transfer:{transfer_id}"),
        kind: PostingKind::Transfer,
        reference: transfer_id,
        to: Bucket::Transferred,
    };
    move_whole_net(store, payment_id, |a| a.bucket == Bucket::Pending, m, now)
}

/// Posts a settlement of a transferred payment: `transferred` → `settled` (reference: the UTR).
pub fn post_settlement_in(
    store: &mut (impl LedgerStore + ?Sized),
    payment_id: &str,
    transfer_id: &str,
    utr: &str,
    now: Timestamp,
) -> Result<bool, RepoError> {
    let m = WholeMove {
        key: format!("settlement:{transfer_id}"),
        kind: PostingKind::Settlement,
        reference: utr,
        to: Bucket::Settled,
    };
    move_whole_net(
        store,
        payment_id,
        |a| a.bucket == Bucket::Transferred,
        m,
        now,
    )
}

/// Posts a reversal: the net returns from `transferred`/`settled` to `pending` (so the refund
/// that follows reverses it from there). Fully refunded already (a refund made without us took
/// the net from where it was): the reversal recovers the money at the gateway and the ledger has
/// nothing left to move.
pub fn post_reversal_in(
    store: &mut (impl LedgerStore + ?Sized),
    payment_id: &str,
    reversal_id: &str,
    now: Timestamp,
) -> Result<bool, RepoError> {
    let m = WholeMove {
        key: format!("reversal:{reversal_id}"),
        kind: PostingKind::Reversal,
        reference: reversal_id,
        to: Bucket::Pending,
    };
    let from = |a: &crate::ledger::PaymentAccount| {
        matches!(a.bucket, Bucket::Transferred | Bucket::Settled) && a.remaining_net() != 0
    };
    move_whole_net(store, payment_id, from, m, now)
}

/// A chargeback: opened, the payment's net moves to `disputed` (remembering where it was);
/// won, it goes back (a hold's money to where its release would put it); lost, it stays.
pub fn dispute_in(
    store: &mut (impl LedgerStore + ?Sized),
    payment_id: &str,
    phase: DisputePhase,
    now: Timestamp,
) -> Result<String, RepoError> {
    let Some(mut a) = store.lock_payment_account(payment_id)? else {
        return Ok(format!("dispute of {payment_id}: not in the ledger"));
    };
    let amount = a.remaining_net();
    match phase {
        DisputePhase::Open if a.bucket != Bucket::Disputed => {
            let from = a.bucket;
            store.post(&move_posting(
                format!("dispute:{payment_id}"),
                PostingKind::Dispute,
                payment_id,
                a.creator_id,
                &a.currency,
                amount,
                from,
                Bucket::Disputed,
                None,
                now,
            ))?;
            a.disputed_from = Some(from);
            a.bucket = Bucket::Disputed;
            a.hold = None;
            a.hold_until = None;
            store.save_payment_account(&a)?;
            Ok(format!("dispute of {payment_id}: {amount} disputed"))
        }
        DisputePhase::Won if a.bucket == Bucket::Disputed => {
            let to = match a.disputed_from {
                Some(Bucket::OnHold) | None => crate::ledger::transferable_bucket(&a.currency),
                Some(b) => b,
            };
            store.post(&move_posting(
                format!("dispute_won:{payment_id}"),
                PostingKind::DisputeWon,
                payment_id,
                a.creator_id,
                &a.currency,
                amount,
                Bucket::Disputed,
                to,
                None,
                now,
            ))?;
            a.bucket = to;
            a.disputed_from = None;
            store.save_payment_account(&a)?;
            Ok(format!("dispute of {payment_id} won: {amount} back"))
        }
        _ => Ok(format!("dispute of {payment_id}: nothing to move")),
    }
}

/// Delay before retrying a failed transfer's attempt `attempt` (1-based): `base * 2^(attempt-1)`,
/// at most a day.
pub fn retry_delay_secs(base_secs: u64, attempt: i32) -> i64 {
    let factor = 1i64 << (attempt.max(1) - 1).min(16);
    (base_secs as i64).saturating_mul(factor).min(86_400)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_mappings() {
        for s in TransferStatus::ALL {
            assert_eq!(TransferStatus::parse(s.as_str()).unwrap(), s);
        }
        for s in PayoutStatus::ALL {
            assert_eq!(PayoutStatus::parse(s.as_str()).unwrap(), s);
        }
        assert_eq!(
            PayoutStatus::of_activation("under_review"),
            Some(PayoutStatus::Pending)
        );
        assert_eq!(
            PayoutStatus::of_activation("activated"),
            Some(PayoutStatus::Active)
        );
        assert_eq!(PayoutStatus::of_activation("rejected"), None);
        assert_eq!(
            DisputePhase::of_event("payment.dispute.won"),
            Some(DisputePhase::Won)
        );
        assert_eq!(retry_delay_secs(10, 1), 10);
        assert_eq!(retry_delay_secs(10, 3), 40);
        assert_eq!(retry_delay_secs(10, 40), 86_400);
        assert!(!TransferStatus::Failed.is_live() && TransferStatus::Settled.is_live());
    }
}

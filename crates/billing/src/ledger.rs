//! The earnings ledger: every captured payment split into double-entry postings (gross, the
//! gateway's fee, the platform's fee, the creator's net), in integer minor units per currency,
//! written in the same transaction as the payment; refunds reverse them proportionally; holds,
//! releases and manual payouts move the creator's net between buckets.
//!
//! Rules here are pure ([`split`], [`refund_part`], the posting builders); [`post_payment`] and
//! the other `*_in` functions apply them to a [`LedgerStore`] inside the caller's transaction.
//! Every posting's entries sum to zero (the adapter refuses one that does not), and each posting
//! carries a unique key so that applying the same fact twice posts once.
use crate::events::PaymentStatus;
use oasis_kernel::{RepoError, Timestamp};

/// How much the platform keeps and how long memberships' money is held (the app's settings
/// `OASIS_PLATFORM_FEE_BPS`, `OASIS_PAYOUT_HOLD_DAYS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Policy {
    /// Platform fee in basis points of the gross (0..=10000), rounded down to the minor unit.
    pub platform_fee_bps: u32,
    /// Days a membership payment's net stays `on_hold` before it becomes transferable.
    pub hold_days: u32,
    /// Route transfers' retry settings.
    pub payouts: crate::workflows::payouts::PayoutPolicy,
}

/// The only currency Razorpay Route transfers; others accrue for manual payout.
pub const ROUTE_CURRENCY: &str = "INR";

/// What a payment paid for, as the ledger records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    Membership,
    OneTime,
    Cheer,
    Commission,
}

impl Source {
    pub const ALL: [Source; 4] = [
        Self::Membership,
        Self::OneTime,
        Self::Cheer,
        Self::Commission,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Membership => "membership",
            Self::OneTime => "one_time",
            Self::Cheer => "cheer",
            Self::Commission => "commission",
        }
    }
    pub fn parse(s: &str) -> Result<Self, RepoError> {
        Self::ALL
            .into_iter()
            .find(|x| x.as_str() == s)
            .ok_or_else(|| unknown("ledger source", s))
    }
    /// From a payment's link kind (`subscription`, `one_time`, `cheer`, `commission`).
    pub fn of_payment_kind(kind: &str) -> Option<Self> {
        Some(match kind {
            "subscription" => Self::Membership,
            "one_time" => Self::OneTime,
            "cheer" => Self::Cheer,
            "commission" => Self::Commission,
            _ => return None,
        })
    }
}

/// Where (part of) a creator's net is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Bucket {
    /// Captured, not yet transferred (INR, waiting for the linked account or the transfer).
    Pending,
    /// Held: a commission until it is completed, a membership for the hold period, a payment
    /// that granted nothing until an operator (or its refund) settles it.
    OnHold,
    /// Transferred to the creator's linked account (Route).
    Transferred,
    /// Paid out to the creator's bank (Route settlement or a manual payout).
    Settled,
    /// Under a chargeback.
    Disputed,
    /// Non-INR money waiting for an operator's manual payout.
    ManualPayout,
}

impl Bucket {
    pub const ALL: [Bucket; 6] = [
        Self::Pending,
        Self::OnHold,
        Self::Transferred,
        Self::Settled,
        Self::Disputed,
        Self::ManualPayout,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::OnHold => "on_hold",
            Self::Transferred => "transferred",
            Self::Settled => "settled",
            Self::Disputed => "disputed",
            Self::ManualPayout => "available_for_manual_payout",
        }
    }
    pub fn parse(s: &str) -> Result<Self, RepoError> {
        Self::ALL
            .into_iter()
            .find(|x| x.as_str() == s)
            .ok_or_else(|| unknown("ledger bucket", s))
    }
}

/// A ledger account. The fan's side (`Payer`) is where money enters (negative) and leaves
/// again on a refund; the rest are what it became.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Account {
    /// The fan's payments: credited (negative) by a capture, debited back by a refund.
    Payer,
    /// Razorpay's fee (its GST included).
    GatewayFee,
    /// The platform's fee.
    PlatformFee,
    /// The creator's net, by where it is.
    Creator(Bucket),
}

impl Account {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Payer => "payer",
            Self::GatewayFee => "gateway_fee",
            Self::PlatformFee => "platform_fee",
            Self::Creator(b) => match b {
                Bucket::Pending => "creator_pending",
                Bucket::OnHold => "creator_on_hold",
                Bucket::Transferred => "creator_transferred",
                Bucket::Settled => "creator_settled",
                Bucket::Disputed => "creator_disputed",
                Bucket::ManualPayout => "creator_manual_payout",
            },
        }
    }
    pub fn all() -> Vec<Account> {
        let mut v = vec![Self::Payer, Self::GatewayFee, Self::PlatformFee];
        v.extend(Bucket::ALL.into_iter().map(Self::Creator));
        v
    }
    pub fn parse(s: &str) -> Result<Self, RepoError> {
        Self::all()
            .into_iter()
            .find(|x| x.as_str() == s)
            .ok_or_else(|| unknown("ledger account", s))
    }
}

/// Why a payment's net is held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HoldReason {
    /// A commission, until the commissions workflow reports it completed.
    Commission,
    /// A membership charge, for the hold period.
    HoldPeriod,
    /// A payment that granted nothing (mismatched, stale or rejected): until its refund or an
    /// operator.
    Review,
}

impl HoldReason {
    pub const ALL: [HoldReason; 3] = [Self::Commission, Self::HoldPeriod, Self::Review];
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Commission => "commission",
            Self::HoldPeriod => "hold_period",
            Self::Review => "review",
        }
    }
    pub fn parse(s: &str) -> Result<Self, RepoError> {
        Self::ALL
            .into_iter()
            .find(|x| x.as_str() == s)
            .ok_or_else(|| unknown("ledger hold reason", s))
    }
}

/// What a posting records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PostingKind {
    /// A captured payment split into gross, fees and net.
    Capture,
    /// (Part of) a refund, reversing the capture proportionally.
    Refund,
    /// A hold ended: the net became transferable.
    Release,
    /// A chargeback opened / ended in the creator's favour.
    Dispute,
    DisputeWon,
    /// An operator paid (non-INR) money out by hand.
    ManualPayout,
    /// A Route transfer of the net reached the creator's linked account.
    Transfer,
    /// A Route transfer was reversed (before a refund): the net is back with the platform.
    Reversal,
    /// The linked account's balance was settled to the creator's bank (reference: the UTR).
    Settlement,
}

impl PostingKind {
    pub const ALL: [PostingKind; 9] = [
        Self::Capture,
        Self::Refund,
        Self::Release,
        Self::Dispute,
        Self::DisputeWon,
        Self::ManualPayout,
        Self::Transfer,
        Self::Reversal,
        Self::Settlement,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Capture => "capture",
            Self::Refund => "refund",
            Self::Release => "release",
            Self::Dispute => "dispute",
            Self::DisputeWon => "dispute_won",
            Self::ManualPayout => "manual_payout",
            Self::Transfer => "transfer",
            Self::Reversal => "reversal",
            Self::Settlement => "settlement",
        }
    }
    pub fn parse(s: &str) -> Result<Self, RepoError> {
        Self::ALL
            .into_iter()
            .find(|x| x.as_str() == s)
            .ok_or_else(|| unknown("ledger posting kind", s))
    }
}

fn unknown(what: &str, v: &str) -> RepoError {
    RepoError::Unavailable(format!("unknown {what} {v:?}"))
}

/// A captured payment's split. `gross = gateway_fee + platform_fee + net`, all `>= 0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Split {
    pub gross: i64,
    pub gateway_fee: i64,
    pub platform_fee: i64,
    pub net: i64,
}

/// Why a payment cannot be split.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SplitError {
    #[error("gross {0} is not positive")]
    Gross(i64),
    #[error("gateway fee {fee} is outside 0..={gross}")]
    Fee { fee: i64, gross: i64 },
    #[error("platform fee rate {0} bps is above 10000")]
    Rate(u32),
}

/// Splits a captured payment: the platform fee is `bps` of the gross rounded down, never more
/// than what the gateway's fee leaves; the creator gets the rest.
pub fn split(gross: i64, gateway_fee: i64, bps: u32) -> Result<Split, SplitError> {
    if gross <= 0 {
        return Err(SplitError::Gross(gross));
    }
    if !(0..=gross).contains(&gateway_fee) {
        return Err(SplitError::Fee {
            fee: gateway_fee,
            gross,
        });
    }
    if bps > 10_000 {
        return Err(SplitError::Rate(bps));
    }
    let platform = (i128::from(gross) * i128::from(bps) / 10_000) as i64;
    let platform_fee = platform.min(gross - gateway_fee);
    Ok(Split {
        gross,
        gateway_fee,
        platform_fee,
        net: gross - gateway_fee - platform_fee,
    })
}

/// The part of a split that `refunded` (cumulative, `0..=gross`) of the gross takes back:
/// largest-remainder rounding, so every part stays between the floor and the ceiling of its
/// exact share (never above its component, never below zero) and the parts sum to `refunded`
/// exactly. A refund's posting is the difference between two cumulative parts, so a series of
/// partial refunds ending in a full one reverses the capture to the paisa.
pub fn refund_part(s: &Split, refunded: i64) -> Split {
    let r = refunded.clamp(0, s.gross);
    let g = i128::from(s.gross);
    let comps = [s.gateway_fee, s.platform_fee, s.net];
    let mut parts = [0i64; 3];
    let mut rems = [0i128; 3];
    for i in 0..3 {
        let x = i128::from(comps[i]) * i128::from(r);
        parts[i] = (x / g) as i64;
        rems[i] = x % g;
    }
    let mut left = r - parts.iter().sum::<i64>();
    // Largest remainder first; ties go to the creator's net, then the platform, then the fee.
    let mut order = [2usize, 1, 0];
    order.sort_by(|a, b| rems[*b].cmp(&rems[*a]));
    for i in order {
        if left == 0 {
            break;
        }
        if rems[i] > 0 {
            parts[i] += 1;
            left -= 1;
        }
    }
    debug_assert_eq!(left, 0);
    Split {
        gross: r,
        gateway_fee: parts[0],
        platform_fee: parts[1],
        net: parts[2],
    }
}

/// One line of a posting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub account: Account,
    pub amount: i64,
}

/// A balanced set of entries recording one fact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Posting {
    /// Unique per fact (`capture:pay_…`, `refund:pay_…:<cumulative>`, …): posting it again is a
    /// no-op.
    pub key: String,
    pub payment_id: Option<String>,
    pub creator_id: i64,
    pub currency: String,
    pub kind: PostingKind,
    /// The amounts this posting moves (a refund's are its proportional part).
    pub gross: i64,
    pub gateway_fee: i64,
    pub platform_fee: i64,
    pub net: i64,
    /// A refund id, a bank reference, an operator's note.
    pub reference: Option<String>,
    pub at: Timestamp,
    pub entries: Vec<Entry>,
}

impl Posting {
    /// Entries sum to zero (double entry); the adapter refuses a posting that does not.
    pub fn is_balanced(&self) -> bool {
        self.entries
            .iter()
            .map(|e| i128::from(e.amount))
            .sum::<i128>()
            == 0
    }
}

/// The capture's entries: the fan's money (negative) became fees and the creator's net.
pub fn capture_entries(s: &Split, bucket: Bucket) -> Vec<Entry> {
    vec![
        Entry {
            account: Account::Payer,
            amount: -s.gross,
        },
        Entry {
            account: Account::GatewayFee,
            amount: s.gateway_fee,
        },
        Entry {
            account: Account::PlatformFee,
            amount: s.platform_fee,
        },
        Entry {
            account: Account::Creator(bucket),
            amount: s.net,
        },
    ]
}

/// A refund's entries: `part` of every component goes back to the fan.
pub fn refund_entries(part: &Split, bucket: Bucket) -> Vec<Entry> {
    capture_entries(part, bucket)
        .into_iter()
        .map(|e| Entry {
            amount: -e.amount,
            ..e
        })
        .collect()
}

/// Moves `amount` of the creator's net between buckets.
pub fn move_entries(amount: i64, from: Bucket, to: Bucket) -> Vec<Entry> {
    vec![
        Entry {
            account: Account::Creator(from),
            amount: -amount,
        },
        Entry {
            account: Account::Creator(to),
            amount,
        },
    ]
}

/// Where a net goes once transferable: Route for INR, the operator's manual payout otherwise.
pub fn transferable_bucket(currency: &str) -> Bucket {
    if currency == ROUTE_CURRENCY {
        Bucket::Pending
    } else {
        Bucket::ManualPayout
    }
}

/// Where a newly captured payment's net starts.
pub fn initial_bucket(
    source: Source,
    accepted: bool,
    currency: &str,
    captured_at: Timestamp,
    policy: &Policy,
) -> (Bucket, Option<(HoldReason, Option<Timestamp>)>) {
    if !accepted {
        return (Bucket::OnHold, Some((HoldReason::Review, None)));
    }
    match source {
        Source::Commission => (Bucket::OnHold, Some((HoldReason::Commission, None))),
        Source::Membership if policy.hold_days > 0 => (
            Bucket::OnHold,
            Some((
                HoldReason::HoldPeriod,
                Some(captured_at + chrono::Duration::days(i64::from(policy.hold_days))),
            )),
        ),
        _ => (transferable_bucket(currency), None),
    }
}

/// What the ledger needs of a recorded payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentFacts {
    pub payment_id: String,
    pub status: PaymentStatus,
    pub amount: i64,
    pub amount_refunded: i64,
    pub currency: String,
    pub creator_id: Option<i64>,
    /// `None` until a charge or order event links the payment.
    pub source: Option<Source>,
    /// `false` when the payment granted nothing (its order was rejected, its membership voided).
    pub accepted: bool,
    pub captured_at: Timestamp,
}

/// A payment's account in the ledger: its split and where its (remaining) net is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentAccount {
    pub payment_id: String,
    pub creator_id: i64,
    pub source: Source,
    pub currency: String,
    pub split: Split,
    /// Cumulative gross refunded so far (as posted).
    pub refunded: i64,
    pub bucket: Bucket,
    pub hold: Option<HoldReason>,
    pub hold_until: Option<Timestamp>,
    /// The bucket before a dispute moved the net (where a won dispute returns it).
    pub disputed_from: Option<Bucket>,
    pub captured_at: Timestamp,
}

impl PaymentAccount {
    /// The creator's net still on this payment (after refunds).
    pub fn remaining_net(&self) -> i64 {
        self.split.net - refund_part(&self.split, self.refunded).net
    }
}

/// A creator's balance in one currency (minor units).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Balance {
    pub currency: String,
    pub pending: i64,
    pub on_hold: i64,
    pub transferred: i64,
    pub settled: i64,
    pub disputed: i64,
    pub available_for_manual_payout: i64,
    /// Gateway and platform fees kept from the creator's payments.
    pub fees: i64,
    /// Gross received (net of refunds).
    pub gross: i64,
}

impl Balance {
    /// The creator's net earnings (every bucket).
    pub fn net(&self) -> i64 {
        self.pending
            + self.on_hold
            + self.transferred
            + self.settled
            + self.disputed
            + self.available_for_manual_payout
    }

    /// Builds balances from per-account sums of a creator's entries.
    pub fn from_sums(sums: &[(String, Account, i64)]) -> Vec<Balance> {
        let mut out: Vec<Balance> = Vec::new();
        for (cur, account, amount) in sums {
            let i = match out.iter().position(|b| &b.currency == cur) {
                Some(i) => i,
                None => {
                    out.push(Balance {
                        currency: cur.clone(),
                        ..Default::default()
                    });
                    out.len() - 1
                }
            };
            let b = &mut out[i];
            match account {
                Account::Payer => b.gross -= amount,
                Account::GatewayFee | Account::PlatformFee => b.fees += amount,
                Account::Creator(Bucket::Pending) => b.pending += amount,
                Account::Creator(Bucket::OnHold) => b.on_hold += amount,
                Account::Creator(Bucket::Transferred) => b.transferred += amount,
                Account::Creator(Bucket::Settled) => b.settled += amount,
                Account::Creator(Bucket::Disputed) => b.disputed += amount,
                Account::Creator(Bucket::ManualPayout) => b.available_for_manual_payout += amount,
            }
        }
        out.sort_by(|a, b| a.currency.cmp(&b.currency));
        out
    }
}

/// Where a creator's Razorpay Route linked account stands, as shown to them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PayoutStatus {
    /// No linked account (no bank details, or not created yet).
    NotSetUp,
    /// Created; Razorpay is reviewing it.
    Pending,
    /// Transfers can be made.
    Active,
    /// Razorpay needs more information from the creator.
    NeedsClarification,
    /// Razorpay suspended it: no transfers.
    Suspended,
}

impl PayoutStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotSetUp => "not_set_up",
            Self::Pending => "pending",
            Self::Active => "active",
            Self::NeedsClarification => "needs_clarification",
            Self::Suspended => "suspended",
        }
    }
}

/// A creator's earnings: balances per currency and where their payouts stand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Earnings {
    pub balances: Vec<Balance>,
    pub payout_status: PayoutStatus,
}

/// One line of a creator's statement (a posting that concerns a payment).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementLine {
    pub at: Timestamp,
    pub payment_id: Option<String>,
    pub source: Option<Source>,
    pub kind: PostingKind,
    pub currency: String,
    pub gross: i64,
    pub gateway_fee: i64,
    pub platform_fee: i64,
    pub net: i64,
    pub reference: Option<String>,
    /// The payment's Route transfer and its settlement's bank reference, once made.
    pub transfer_id: Option<String>,
    pub settlement_utr: Option<String>,
}

/// Money an operator must pay out by hand (non-INR).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManualPayoutDue {
    pub creator_id: i64,
    pub currency: String,
    pub amount: i64,
}

/// The ledger's storage (part of every billing store).
pub trait LedgerStore {
    /// What the ledger needs of a recorded payment (`None`: not recorded).
    fn ledger_facts(&mut self, payment_id: &str) -> Result<Option<PaymentFacts>, RepoError>;
    /// The payment's ledger account, locked for the rest of the transaction.
    fn lock_payment_account(
        &mut self,
        payment_id: &str,
    ) -> Result<Option<PaymentAccount>, RepoError>;
    /// Inserts or updates the account.
    fn save_payment_account(&mut self, account: &PaymentAccount) -> Result<(), RepoError>;
    /// Writes a posting with its entries; `false` (nothing written) when its key was posted
    /// before. A posting whose entries do not sum to zero is refused (`RepoError::Conflict`).
    fn post(&mut self, posting: &Posting) -> Result<bool, RepoError>;
    /// Whether a posting with this key was written.
    fn posted(&mut self, key: &str) -> Result<bool, RepoError>;
    /// Queues a fetch of the payment's fee (the `billing.ledger_fee` job), once per payment.
    fn request_fee_fetch(&mut self, payment_id: &str) -> Result<(), RepoError>;
    /// Per (currency, account) sums of a creator's entries.
    fn creator_sums(&mut self, creator_id: i64) -> Result<Vec<(String, Account, i64)>, RepoError>;
    /// A creator's postings of `[from, to)` (oldest first), a page of them, and their count.
    fn statement(
        &mut self,
        creator_id: i64,
        from: Option<Timestamp>,
        to: Option<Timestamp>,
        offset: i64,
        limit: i64,
    ) -> Result<(Vec<StatementLine>, i64), RepoError>;
    /// Payments whose hold-period hold ends at or before `now` (at most `limit`).
    fn due_holds(&mut self, now: Timestamp, limit: i64) -> Result<Vec<String>, RepoError>;
    /// Creators' balances awaiting a manual payout (positive ones).
    fn manual_payouts_due(&mut self) -> Result<Vec<ManualPayoutDue>, RepoError>;
    /// Postings whose entries do not sum to zero (the ledger's invariant: always empty).
    fn unbalanced_postings(&mut self) -> Result<Vec<String>, RepoError>;
}

/// What posting a payment did (for the caller's outcome and alerts).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Posted {
    pub lines: Vec<String>,
    pub alerts: Vec<String>,
}

/// Brings a recorded payment's ledger up to date with what is stored of it: once captured
/// (and linked to a creator), its capture is posted; every refund since is reversed
/// proportionally. `fee` is Razorpay's fee when the caller has it (a webhook, a fetch); without
/// it (and none posted yet) a fetch of the payment is queued. Idempotent.
pub fn post_payment(
    store: &mut (impl LedgerStore + ?Sized),
    policy: &Policy,
    payment_id: &str,
    fee: Option<i64>,
    now: Timestamp,
) -> Result<Posted, RepoError> {
    let mut out = Posted::default();
    let Some(facts) = store.ledger_facts(payment_id)? else {
        return Ok(out);
    };
    let captured = matches!(
        facts.status,
        PaymentStatus::Captured | PaymentStatus::Refunded
    );
    let (Some(creator_id), Some(source), true) = (facts.creator_id, facts.source, captured) else {
        return Ok(out);
    };
    let account = match store.lock_payment_account(payment_id)? {
        Some(a) => a,
        None => {
            let Some(fee) = fee else {
                store.request_fee_fetch(payment_id)?;
                out.lines
                    .push(format!("ledger: fee of {payment_id} to be fetched"));
                return Ok(out);
            };
            let s = match split(facts.amount, fee, policy.platform_fee_bps) {
                Ok(s) => s,
                Err(e) => {
                    out.alerts.push(format!(
                        "payment {payment_id}: not posted to the ledger: {e}"
                    ));
                    return Ok(out);
                }
            };
            let (bucket, hold) = initial_bucket(
                source,
                facts.accepted,
                &facts.currency,
                facts.captured_at,
                policy,
            );
            let account = PaymentAccount {
                payment_id: payment_id.to_owned(),
                creator_id,
                source,
                currency: facts.currency.clone(),
                split: s,
                refunded: 0,
                bucket,
                hold: hold.map(|h| h.0),
                hold_until: hold.and_then(|h| h.1),
                disputed_from: None,
                captured_at: facts.captured_at,
            };
            store.save_payment_account(&account)?;
            store.post(&Posting {
                key: format!("capture:{payment_id}"),
                payment_id: Some(payment_id.to_owned()),
                creator_id,
                currency: facts.currency.clone(),
                kind: PostingKind::Capture,
                gross: s.gross,
                gateway_fee: s.gateway_fee,
                platform_fee: s.platform_fee,
                net: s.net,
                reference: None,
                at: facts.captured_at,
                entries: capture_entries(&s, bucket),
            })?;
            out.lines.push(format!(
                "ledger: {payment_id} net {} {} ({})",
                s.net,
                facts.currency,
                bucket.as_str()
            ));
            account
        }
    };
    // Refunds: the payment's stored refunded amount (a full refund = the whole gross).
    let target = if facts.status == PaymentStatus::Refunded {
        account.split.gross
    } else {
        facts.amount_refunded.clamp(0, account.split.gross)
    };
    if target > account.refunded {
        out.lines.push(reverse_in(store, account, target, now)?);
    }
    Ok(out)
}

/// Posts the refund of `account` up to `target` (cumulative) and saves the account.
fn reverse_in(
    store: &mut (impl LedgerStore + ?Sized),
    mut account: PaymentAccount,
    target: i64,
    now: Timestamp,
) -> Result<String, RepoError> {
    let before = refund_part(&account.split, account.refunded);
    let after = refund_part(&account.split, target);
    let part = Split {
        gross: after.gross - before.gross,
        gateway_fee: after.gateway_fee - before.gateway_fee,
        platform_fee: after.platform_fee - before.platform_fee,
        net: after.net - before.net,
    };
    let pid = account.payment_id.clone();
    store.post(&Posting {
        key: format!("refund:{pid}:{target}"),
        payment_id: Some(pid.clone()),
        creator_id: account.creator_id,
        currency: account.currency.clone(),
        kind: PostingKind::Refund,
        gross: -part.gross,
        gateway_fee: -part.gateway_fee,
        platform_fee: -part.platform_fee,
        net: -part.net,
        reference: None,
        at: now,
        entries: refund_entries(&part, account.bucket),
    })?;
    account.refunded = target;
    store.save_payment_account(&account)?;
    Ok(format!(
        "ledger: {pid} refund of {} reverses net {}",
        part.gross, part.net
    ))
}

/// Why a hold could not be released.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Release {
    /// Released now: the net became transferable (in this bucket).
    Released(Bucket),
    /// It was not held for this reason (released before, never held, refunded): nothing to do.
    NotHeld,
    /// The payment has no ledger account yet (not captured, or its fee is being fetched): call
    /// again later (the commissions workflow's job retries).
    NotPosted,
}

/// Ends the hold of `reason` on a payment's net: it moves to Route's `pending` (INR) or the
/// manual payout (other currencies). Idempotent.
pub fn release_hold_in(
    store: &mut (impl LedgerStore + ?Sized),
    payment_id: &str,
    reason: HoldReason,
    now: Timestamp,
) -> Result<Release, RepoError> {
    let Some(mut account) = store.lock_payment_account(payment_id)? else {
        return Ok(Release::NotPosted);
    };
    if account.hold != Some(reason) || account.bucket != Bucket::OnHold {
        return Ok(Release::NotHeld);
    }
    let to = transferable_bucket(&account.currency);
    let amount = account.remaining_net();
    store.post(&Posting {
        key: format!("release:{payment_id}:{}", reason.as_str()),
        payment_id: Some(payment_id.to_owned()),
        creator_id: account.creator_id,
        currency: account.currency.clone(),
        kind: PostingKind::Release,
        gross: 0,
        gateway_fee: 0,
        platform_fee: 0,
        net: 0,
        reference: Some(reason.as_str().to_owned()),
        at: now,
        entries: move_entries(amount, Bucket::OnHold, to),
    })?;
    account.bucket = to;
    account.hold = None;
    account.hold_until = None;
    store.save_payment_account(&account)?;
    Ok(Release::Released(to))
}

/// Releases every hold-period hold due at `now` (at most `limit`); returns how many.
pub fn release_due_holds_in(
    store: &mut (impl LedgerStore + ?Sized),
    now: Timestamp,
    limit: i64,
) -> Result<usize, RepoError> {
    let mut n = 0;
    for pid in store.due_holds(now, limit)? {
        if matches!(
            release_hold_in(store, &pid, HoldReason::HoldPeriod, now)?,
            Release::Released(_)
        ) {
            n += 1;
        }
    }
    Ok(n)
}

/// Why a manual payout was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManualPayoutError {
    #[error("amount must be positive")]
    Amount,
    #[error("a reference is required")]
    Reference,
    #[error("only {available} {currency} is available for manual payout")]
    MoreThanAvailable { available: i64, currency: String },
}

/// Records that an operator paid `amount` of a creator's manual-payout balance (`reference`:
/// the bank's or the operator's note). Idempotent per (creator, currency, reference).
pub fn mark_manual_payout_in(
    store: &mut (impl LedgerStore + ?Sized),
    creator_id: i64,
    currency: &str,
    amount: i64,
    reference: &str,
    now: Timestamp,
) -> Result<Result<bool, ManualPayoutError>, RepoError> {
    if amount <= 0 {
        return Ok(Err(ManualPayoutError::Amount));
    }
    let reference = reference.trim();
    if reference.is_empty() {
        return Ok(Err(ManualPayoutError::Reference));
    }
    let key = format!("manual:{creator_id}:{currency}:{reference}");
    let available = Balance::from_sums(&store.creator_sums(creator_id)?)
        .into_iter()
        .find(|b| b.currency == currency)
        .map(|b| b.available_for_manual_payout)
        .unwrap_or(0);
    let posting = Posting {
        key,
        payment_id: None,
        creator_id,
        currency: currency.to_owned(),
        kind: PostingKind::ManualPayout,
        gross: 0,
        gateway_fee: 0,
        platform_fee: 0,
        net: amount,
        reference: Some(reference.to_owned()),
        at: now,
        entries: move_entries(amount, Bucket::ManualPayout, Bucket::Settled),
    };
    if amount > available {
        // A repeat of a payout already recorded is not an overdraft.
        if !store.posted(&posting.key)? {
            return Ok(Err(ManualPayoutError::MoreThanAvailable {
                available,
                currency: currency.to_owned(),
            }));
        }
        return Ok(Ok(false));
    }
    Ok(Ok(store.post(&posting)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SplitMix64: a seeded generator for the property test (no dependency, reproducible).
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n.max(1)
        }
    }

    fn sum(entries: &[Entry]) -> i64 {
        entries.iter().map(|e| e.amount).sum()
    }

    #[test]
    fn split_rounds_the_platform_fee_down() {
        let s = split(10_000, 236, 250).unwrap();
        assert_eq!((s.gateway_fee, s.platform_fee, s.net), (236, 250, 9_514));
        let s = split(999, 23, 150).unwrap();
        assert_eq!(s.platform_fee, 14, "14.985 rounds down");
        assert_eq!(s.net, 999 - 23 - 14);
        assert_eq!(
            split(100, 101, 0),
            Err(SplitError::Fee {
                fee: 101,
                gross: 100
            })
        );
        assert_eq!(split(0, 0, 0), Err(SplitError::Gross(0)));
        assert_eq!(split(100, 0, 10_001), Err(SplitError::Rate(10_001)));
        // The platform never takes more than the gateway leaves.
        assert_eq!(split(100, 90, 5_000).unwrap().platform_fee, 10);
    }

    /// Property: over random amounts, fee rates and refund sequences, no paisa appears or
    /// disappears: every posting sums to zero, every cumulative refunded part lies within its
    /// component, and a full refund brings every account of the payment back to zero.
    #[test]
    fn no_paisa_appears_or_disappears() {
        let mut rng = Rng(0x0A515_u64);
        for case in 0..20_000 {
            let gross = 1 + rng.below(if case % 3 == 0 { 1_000 } else { 50_000_000 }) as i64;
            let fee = rng.below(gross as u64 + 1) as i64;
            let bps = rng.below(10_001) as u32;
            let s = split(gross, fee, bps).unwrap();
            assert_eq!(s.gateway_fee + s.platform_fee + s.net, gross);
            assert!(s.platform_fee >= 0 && s.net >= 0);
            assert!(
                i128::from(s.platform_fee) * 10_000 <= i128::from(gross) * i128::from(bps),
                "rounded down"
            );
            let mut totals = std::collections::BTreeMap::<Account, i64>::new();
            fn add(totals: &mut std::collections::BTreeMap<Account, i64>, es: &[Entry]) {
                assert_eq!(sum(es), 0, "unbalanced: {es:?}");
                for e in es {
                    *totals.entry(e.account).or_default() += e.amount;
                }
            }
            add(&mut totals, &capture_entries(&s, Bucket::Pending));
            let mut refunded = 0;
            let steps = rng.below(5);
            for _ in 0..steps {
                let next = (refunded + 1 + rng.below((gross - refunded) as u64) as i64).min(gross);
                let (b, a) = (refund_part(&s, refunded), refund_part(&s, next));
                for (x, c) in [
                    (a.gateway_fee, s.gateway_fee),
                    (a.platform_fee, s.platform_fee),
                    (a.net, s.net),
                ] {
                    assert!(
                        (0..=c).contains(&x),
                        "case {case}: part {x} outside 0..={c}"
                    );
                }
                assert_eq!(a.gateway_fee + a.platform_fee + a.net, next);
                let part = Split {
                    gross: a.gross - b.gross,
                    gateway_fee: a.gateway_fee - b.gateway_fee,
                    platform_fee: a.platform_fee - b.platform_fee,
                    net: a.net - b.net,
                };
                add(&mut totals, &refund_entries(&part, Bucket::Pending));
                refunded = next;
                if refunded == gross {
                    break;
                }
            }
            // What is left on each account is exactly the capture less the cumulative part.
            let b = refund_part(&s, refunded);
            let left = |acc: Account| totals.get(&acc).copied().unwrap_or(0);
            assert_eq!(left(Account::Payer), -(gross - refunded));
            assert_eq!(left(Account::GatewayFee), s.gateway_fee - b.gateway_fee);
            assert_eq!(left(Account::PlatformFee), s.platform_fee - b.platform_fee);
            assert_eq!(left(Account::Creator(Bucket::Pending)), s.net - b.net);
            // The rest of the refund brings every account back to zero.
            let rest = Split {
                gross: gross - refunded,
                gateway_fee: s.gateway_fee - b.gateway_fee,
                platform_fee: s.platform_fee - b.platform_fee,
                net: s.net - b.net,
            };
            assert_eq!(refund_part(&s, gross), s);
            add(&mut totals, &refund_entries(&rest, Bucket::Pending));
            assert!(
                totals.values().all(|v| *v == 0),
                "case {case}: after a full refund {totals:?}"
            );
        }
    }

    #[test]
    fn holds_and_currencies_choose_the_bucket() {
        let now = chrono::Utc::now();
        let p = Policy {
            platform_fee_bps: 0,
            hold_days: 3,
            ..Default::default()
        };
        assert_eq!(
            initial_bucket(Source::Commission, true, "INR", now, &p).0,
            Bucket::OnHold
        );
        assert_eq!(
            initial_bucket(Source::Membership, true, "INR", now, &p).1,
            Some((
                HoldReason::HoldPeriod,
                Some(now + chrono::Duration::days(3))
            ))
        );
        assert_eq!(
            initial_bucket(Source::Cheer, true, "USD", now, &p).0,
            Bucket::ManualPayout
        );
        assert_eq!(
            initial_bucket(Source::Cheer, true, "INR", now, &Policy::default()).0,
            Bucket::Pending
        );
        assert_eq!(
            initial_bucket(Source::OneTime, false, "INR", now, &p).1,
            Some((HoldReason::Review, None))
        );
    }

    #[test]
    fn names_round_trip() {
        for a in Account::all() {
            assert_eq!(Account::parse(a.as_str()).unwrap(), a);
        }
        for b in Bucket::ALL {
            assert_eq!(Bucket::parse(b.as_str()).unwrap(), b);
        }
        for k in PostingKind::ALL {
            assert_eq!(PostingKind::parse(k.as_str()).unwrap(), k);
        }
        assert!(Account::parse("creator").is_err());
    }
}

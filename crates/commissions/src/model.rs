//! The commissions vocabulary: offerings, requests, their states and who acts.
use oasis_kernel::{Currency, Timestamp};

/// Where a request is in its life. Stored as its `as_str` (a CHECK constraint lists them); an
/// unknown stored value is an error, never a default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RequestStatus {
    /// Created with its Razorpay order; holds a slot until its payment hold ends.
    AwaitingPayment,
    /// Paid: waiting for the creator.
    Ordered,
    Accepted,
    InProgress,
    Delivered,
    /// The end of a delivered request (the fan, or by itself after the autocomplete delay).
    Completed,
    /// The creator turned down an ordered request (refunded in full).
    Rejected,
    /// The fan cancelled (refunded in full when it was paid).
    Cancelled,
    /// Its payment never came within the hold.
    Expired,
}

impl RequestStatus {
    pub const ALL: [RequestStatus; 9] = [
        Self::AwaitingPayment,
        Self::Ordered,
        Self::Accepted,
        Self::InProgress,
        Self::Delivered,
        Self::Completed,
        Self::Rejected,
        Self::Cancelled,
        Self::Expired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::AwaitingPayment => "awaiting_payment",
            Self::Ordered => "ordered",
            Self::Accepted => "accepted",
            Self::InProgress => "in_progress",
            Self::Delivered => "delivered",
            Self::Completed => "completed",
            Self::Rejected => "rejected",
            Self::Cancelled => "cancelled",
            Self::Expired => "expired",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// Active requests keep their offering from being deleted.
    pub fn is_active(self) -> bool {
        matches!(
            self,
            Self::AwaitingPayment
                | Self::Ordered
                | Self::Accepted
                | Self::InProgress
                | Self::Delivered
        )
    }

    /// Paid and not yet delivered: holds a slot whatever the time (an unpaid request holds
    /// one only during its payment hold, see [`crate::rules::holds_slot`]).
    pub fn is_paid_work(self) -> bool {
        matches!(self, Self::Ordered | Self::Accepted | Self::InProgress)
    }

    /// What the creator's dashboard counts as open: ordered, accepted or in progress.
    pub const OPEN: [RequestStatus; 3] = [Self::Ordered, Self::Accepted, Self::InProgress];
}

/// Who makes a transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    Fan(i64),
    Creator(i64),
    /// Payments, expiry, autocompletion.
    System,
}

impl Actor {
    /// The acting user's id (`None` for the system).
    pub fn user_id(self) -> Option<i64> {
        match self {
            Self::Fan(u) | Self::Creator(u) => Some(u),
            Self::System => None,
        }
    }
}

/// A creator's offering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offering {
    pub id: i64,
    pub creator_id: i64,
    pub title: String,
    pub description: String,
    /// Integer minor units.
    pub price: i64,
    pub currency: Currency,
    pub delivery_days: i32,
    pub slots: i32,
    pub is_open: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// An offering's fields as written (create) or changed (update: `None` keeps the value).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OfferingInput {
    pub title: Option<String>,
    pub description: Option<String>,
    pub price: Option<i64>,
    pub currency: Option<String>,
    pub delivery_days: Option<i64>,
    pub slots: Option<i64>,
    pub is_open: Option<bool>,
}

/// A validated offering to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferingFields {
    pub title: String,
    pub description: String,
    pub price: i64,
    pub currency: Currency,
    pub delivery_days: i32,
    pub slots: i32,
    pub is_open: bool,
}

/// What a fan asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestInput {
    pub commission_id: i64,
    pub description: String,
    pub contact_details: String,
    pub mode_of_delivery: String,
    /// Must be the offering's when given.
    pub currency: Option<String>,
}

/// A request to store (as `awaiting_payment`, holding a slot until `hold_until`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRequest {
    pub commission_id: i64,
    pub fan_id: i64,
    pub creator_id: i64,
    pub description: String,
    pub contact_details: String,
    pub mode_of_delivery: String,
    /// The offering's price now (a later price change does not touch it).
    pub amount: i64,
    pub currency: Currency,
    pub hold_until: Timestamp,
    pub created_at: Timestamp,
}

/// A stored request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub id: i64,
    pub commission_id: i64,
    pub fan_id: i64,
    pub creator_id: i64,
    pub description: String,
    pub contact_details: String,
    pub mode_of_delivery: String,
    pub status: RequestStatus,
    pub amount: i64,
    pub currency: Currency,
    pub razorpay_order_id: Option<String>,
    pub razorpay_payment_id: Option<String>,
    pub hold_until: Timestamp,
    pub paid_at: Option<Timestamp>,
    pub deliver_by: Option<Timestamp>,
    pub delivered_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// What a change of status writes besides the status (and its history line).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChangeRecord {
    /// The payment that moved it to `ordered`: its id, time and the resulting deadline.
    pub paid: Option<Paid>,
    /// A delivery: its note and media ids.
    pub delivery: Option<Delivery>,
    /// The reason or note given with the transition (kept in the history).
    pub message: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paid {
    pub payment_id: String,
    pub paid_at: Timestamp,
    pub deliver_by: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub message: String,
    pub attachments: Vec<i64>,
}

/// A change of status one party asks for (`PATCH`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusChange {
    pub to: RequestStatus,
    pub message: Option<String>,
    pub attachments: Vec<i64>,
}

/// A full refund a transition owes the fan (billing sends it, exactly once per payment).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundDue {
    pub request_id: i64,
    pub payment_id: String,
    pub amount: i64,
    pub currency: Currency,
    pub fan_id: i64,
    pub creator_id: i64,
    pub reason: String,
}

/// A transition that happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changed {
    pub request: Request,
    pub from: RequestStatus,
    pub refund: Option<RefundDue>,
}

// ---------------------------------------------------------------------------------------------
// Read models (what the adapter answers for lists and detail views).

/// A user as a request shows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRef {
    pub id: i64,
    pub username: String,
    pub profile_pic: Option<String>,
}

/// An offering with its creator and the requests holding a slot now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferingView {
    pub offering: Offering,
    pub open_orders: i64,
    pub creator: UserRef,
}

/// One line of a request's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    pub status: RequestStatus,
    pub at: Timestamp,
    /// The acting user; `None` = the system.
    pub by: Option<i64>,
    pub message: Option<String>,
}

/// Where a request's refund stands (billing's record of it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefundState {
    /// Recorded, being sent to Razorpay.
    Pending,
    /// Razorpay made it.
    Processed,
    /// Razorpay refused; an operator refunds by hand.
    Failed,
}

impl RefundState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Processed => "processed",
            Self::Failed => "failed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundView {
    pub amount: i64,
    pub state: RefundState,
    pub at: Timestamp,
}

/// A request as its two parties see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestView {
    pub request: Request,
    pub title: String,
    pub fan: UserRef,
    pub creator: UserRef,
    pub history: Vec<HistoryEntry>,
    pub delivery: Option<Delivery>,
    pub refund: Option<RefundView>,
}

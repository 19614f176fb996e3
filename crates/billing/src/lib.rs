#![doc = include_str!("../README.md")]

pub mod apply;
pub mod bank;
pub mod change;
pub mod checkout;
pub mod contract;
pub mod entitlement;
mod error;
pub mod events;
pub mod gateway;
pub mod hiatus;
pub mod integrity;
pub mod ledger;
/// In-memory store and unit of work, for unit tests and the `BillingStore` contract suite.
pub mod memory;
pub mod memory_gateway;
pub mod notes;
pub mod pause;
pub mod payouts;
pub mod ports;
pub mod reconcile;
pub mod state;
pub mod trials;
pub mod workflows;

pub use entitlement::{
    access_changes_at, has_access, AccessFacts, MembershipKind, MembershipStatus, GRACE_DAYS,
    ONE_TIME_DAYS,
};
pub use error::BillingError;
pub use events::{
    plan_event, Effect, Event, OrderSnapshot, PaymentSnapshot, PaymentStatus, Purpose,
};
pub use gateway::BillingPeriod;
pub use state::{merge_subscription, MembershipState, SubscriptionSnapshot};

/// Recurring memberships are created with this many monthly cycles (10 years).
///
/// Razorpay ends a subscription (`completed`) once `total_count` cycles are billed; a peer
/// platform used 12 and lost every member silently after a year. 120 is well inside Razorpay's
/// limit for monthly plans and far beyond any card's expiry, so in practice a membership ends
/// only when the member (or the card) ends it.
pub const TOTAL_COUNT_MONTHLY: i64 = 120;

/// Job kind that sends a refund the service decided on (`ports::RefundRequest`) through
/// Razorpay's refund API, exactly once per payment.
pub const JOB_REFUND: &str = "billing.refund";
/// Job kind that cancels the Razorpay subscription of a voided membership (best effort; the
/// attempt and its outcome are recorded).
pub const JOB_CANCEL_SUBSCRIPTION: &str = "billing.cancel";
/// Job kind that fetches a captured payment whose fee no event carried, and posts it to the
/// earnings ledger (`workflows::ledger::post_fetched`).
pub const JOB_LEDGER_FEE: &str = "billing.ledger_fee";

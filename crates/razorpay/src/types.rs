//! Razorpay entities (responses) and request bodies.
//!
//! Every entity deserialises leniently: unknown fields are ignored, missing
//! fields take their default, `null` is accepted wherever Razorpay has been seen
//! to send it, and integers/booleans may arrive as strings.

use crate::de;
use crate::notes::Notes;
use serde::{Deserialize, Serialize};

/// Declares a string-backed enum with known variants and an `Other(String)`
/// fallback, so that a value Razorpay adds later never fails deserialisation.
macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $s:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
            /// A value this crate does not know (kept verbatim).
            Other(String),
        }

        impl $name {
            /// The wire name.
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $s,)+
                    Self::Other(s) => s.as_str(),
                }
            }
            /// Parses a wire name; unknown names become `Other`.
            pub fn parse(s: &str) -> Self {
                match s {
                    $($s => Self::$variant,)+
                    other => Self::Other(other.to_owned()),
                }
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::Other(String::new())
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = std::convert::Infallible;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Ok(Self::parse(s))
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de2> Deserialize<'de2> for $name {
            fn deserialize<D: serde::Deserializer<'de2>>(d: D) -> Result<Self, D::Error> {
                Ok(Self::parse(&de::string(d)?))
            }
        }
    };
}
pub(crate) use string_enum;

string_enum! {
    /// Billing period of a plan.
    Period {
        /// Every `interval` days (Razorpay requires `interval >= 7`).
        Daily => "daily",
        /// Every `interval` weeks.
        Weekly => "weekly",
        /// Every `interval` months.
        Monthly => "monthly",
        /// Every `interval` quarters.
        Quarterly => "quarterly",
        /// Every `interval` years.
        Yearly => "yearly",
    }
}

string_enum! {
    /// Subscription status (see the lifecycle in the crate README).
    SubscriptionStatus {
        /// Created, not yet authorised by the customer.
        Created => "created",
        /// Mandate authorised; first charge at `start_at`.
        Authenticated => "authenticated",
        /// Charging every cycle.
        Active => "active",
        /// A charge failed and is being retried.
        Pending => "pending",
        /// Retries exhausted.
        Halted => "halted",
        /// Paused by the merchant.
        Paused => "paused",
        /// Cancelled (terminal).
        Cancelled => "cancelled",
        /// Last cycle billed (terminal).
        Completed => "completed",
        /// Never authorised before `expire_by`/`start_at` (terminal).
        Expired => "expired",
    }
}

impl SubscriptionStatus {
    /// `cancelled`, `completed` and `expired` are terminal.
    pub fn is_terminal(&self) -> bool {
        matches!(self, Self::Cancelled | Self::Completed | Self::Expired)
    }
}

string_enum! {
    /// Order status: created → attempted → paid.
    OrderStatus {
        /// No payment attempted yet.
        Created => "created",
        /// At least one payment attempted, none captured.
        Attempted => "attempted",
        /// Paid in full (stays `paid` after a refund).
        Paid => "paid",
    }
}

string_enum! {
    /// Payment status: created → authorized → captured → refunded, or failed.
    PaymentStatus {
        /// Created.
        Created => "created",
        /// Authorised, not yet captured.
        Authorized => "authorized",
        /// Captured (money moved).
        Captured => "captured",
        /// Fully refunded.
        Refunded => "refunded",
        /// Failed.
        Failed => "failed",
    }
}

string_enum! {
    /// Refund status.
    RefundStatus {
        /// Initiated.
        Pending => "pending",
        /// Done.
        Processed => "processed",
        /// Failed.
        Failed => "failed",
    }
}

string_enum! {
    /// Invoice status. A subscription bills each cycle through an invoice: `issued` while the
    /// charge is due or being retried, `paid` once charged.
    InvoiceStatus {
        /// Not yet issued.
        Draft => "draft",
        /// Issued, not (fully) paid.
        Issued => "issued",
        /// Partly paid.
        PartiallyPaid => "partially_paid",
        /// Paid.
        Paid => "paid",
        /// Expired unpaid.
        Expired => "expired",
        /// Cancelled.
        Cancelled => "cancelled",
        /// Deleted.
        Deleted => "deleted",
    }
}

/// `{"entity":"collection","count":N,"items":[...]}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Collection<T> {
    /// Always `"collection"`.
    #[serde(deserialize_with = "de::string")]
    pub entity: String,
    /// Number of items in this page.
    #[serde(deserialize_with = "de::int")]
    pub count: i64,
    /// The items.
    pub items: Vec<T>,
}

/// The item (product) a plan bills.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Item {
    /// `item_…`.
    #[serde(deserialize_with = "de::string")]
    pub id: String,
    /// Whether the item is active.
    #[serde(deserialize_with = "de::bool_lenient")]
    pub active: bool,
    /// Display name.
    #[serde(deserialize_with = "de::string")]
    pub name: String,
    /// Description.
    #[serde(deserialize_with = "de::opt_string")]
    pub description: Option<String>,
    /// Amount in minor units (paise).
    #[serde(deserialize_with = "de::int")]
    pub amount: i64,
    /// Unit amount in minor units.
    #[serde(deserialize_with = "de::int")]
    pub unit_amount: i64,
    /// ISO currency code, e.g. `INR`.
    #[serde(deserialize_with = "de::string")]
    pub currency: String,
    /// `"plan"` for plan items.
    #[serde(rename = "type", deserialize_with = "de::opt_string")]
    pub item_type: Option<String>,
    /// Unit.
    #[serde(deserialize_with = "de::opt_string")]
    pub unit: Option<String>,
    /// Whether the amount includes tax.
    #[serde(deserialize_with = "de::bool_lenient")]
    pub tax_inclusive: bool,
    /// HSN code.
    #[serde(deserialize_with = "de::opt_string")]
    pub hsn_code: Option<String>,
    /// SAC code.
    #[serde(deserialize_with = "de::opt_string")]
    pub sac_code: Option<String>,
    /// Tax rate.
    #[serde(deserialize_with = "de::opt_int")]
    pub tax_rate: Option<i64>,
    /// Tax id.
    #[serde(deserialize_with = "de::opt_string")]
    pub tax_id: Option<String>,
    /// Tax group id.
    #[serde(deserialize_with = "de::opt_string")]
    pub tax_group_id: Option<String>,
    /// Unix seconds.
    #[serde(deserialize_with = "de::int")]
    pub created_at: i64,
    /// Unix seconds.
    #[serde(deserialize_with = "de::opt_int")]
    pub updated_at: Option<i64>,
}

/// A subscription plan.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Plan {
    /// `plan_…`.
    #[serde(deserialize_with = "de::string")]
    pub id: String,
    /// Always `"plan"`.
    #[serde(deserialize_with = "de::string")]
    pub entity: String,
    /// Number of `period`s per billing cycle.
    #[serde(deserialize_with = "de::int")]
    pub interval: i64,
    /// Billing period.
    pub period: Period,
    /// What is billed.
    pub item: Item,
    /// Notes.
    pub notes: Notes,
    /// Unix seconds.
    #[serde(deserialize_with = "de::int")]
    pub created_at: i64,
}

/// A recurring subscription.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Subscription {
    /// `sub_…`.
    #[serde(deserialize_with = "de::string")]
    pub id: String,
    /// Always `"subscription"`.
    #[serde(deserialize_with = "de::string")]
    pub entity: String,
    /// `plan_…`.
    #[serde(deserialize_with = "de::string")]
    pub plan_id: String,
    /// `cust_…`, `null` until authenticated.
    #[serde(deserialize_with = "de::opt_string")]
    pub customer_id: Option<String>,
    /// Status.
    pub status: SubscriptionStatus,
    /// Start of the current cycle (Unix seconds).
    #[serde(deserialize_with = "de::opt_int")]
    pub current_start: Option<i64>,
    /// End of the current cycle (Unix seconds).
    #[serde(deserialize_with = "de::opt_int")]
    pub current_end: Option<i64>,
    /// When it ended (cancelled/completed).
    #[serde(deserialize_with = "de::opt_int")]
    pub ended_at: Option<i64>,
    /// Quantity of the plan billed.
    #[serde(deserialize_with = "de::int")]
    pub quantity: i64,
    /// Notes.
    pub notes: Notes,
    /// Next charge (Unix seconds).
    #[serde(deserialize_with = "de::opt_int")]
    pub charge_at: Option<i64>,
    /// First charge (Unix seconds).
    #[serde(deserialize_with = "de::opt_int")]
    pub start_at: Option<i64>,
    /// Last cycle's end (Unix seconds).
    #[serde(deserialize_with = "de::opt_int")]
    pub end_at: Option<i64>,
    /// Authorisation attempts.
    #[serde(deserialize_with = "de::int")]
    pub auth_attempts: i64,
    /// Total billing cycles.
    #[serde(deserialize_with = "de::int")]
    pub total_count: i64,
    /// Cycles paid.
    #[serde(deserialize_with = "de::int")]
    pub paid_count: i64,
    /// Cycles left.
    #[serde(deserialize_with = "de::opt_int")]
    pub remaining_count: Option<i64>,
    /// Whether Razorpay notifies the customer.
    #[serde(deserialize_with = "de::bool_lenient")]
    pub customer_notify: bool,
    /// Unix seconds.
    #[serde(deserialize_with = "de::int")]
    pub created_at: i64,
    /// Authorisation deadline (Unix seconds).
    #[serde(deserialize_with = "de::opt_int")]
    pub expire_by: Option<i64>,
    /// Hosted authorisation link.
    #[serde(deserialize_with = "de::opt_string")]
    pub short_url: Option<String>,
    /// Whether an update is scheduled for the cycle end.
    #[serde(deserialize_with = "de::bool_lenient")]
    pub has_scheduled_changes: bool,
    /// When the scheduled change applies (Unix seconds).
    #[serde(deserialize_with = "de::opt_int")]
    pub change_scheduled_at: Option<i64>,
    /// `"api"`, `"dashboard"`, ...
    #[serde(deserialize_with = "de::opt_string")]
    pub source: Option<String>,
    /// `offer_…`.
    #[serde(deserialize_with = "de::opt_string")]
    pub offer_id: Option<String>,
    /// Present while paused (Unix seconds).
    #[serde(
        deserialize_with = "de::opt_int",
        skip_serializing_if = "Option::is_none"
    )]
    pub paused_at: Option<i64>,
    /// The mandate's payment method once authenticated (`card`, `emandate`, `upi`, …).
    /// Razorpay refuses plan updates of UPI (and eMandate) mandates.
    #[serde(
        deserialize_with = "de::opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub payment_method: Option<String>,
}

/// An order (one-time payment).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Order {
    /// `order_…`.
    #[serde(deserialize_with = "de::string")]
    pub id: String,
    /// Always `"order"`.
    #[serde(deserialize_with = "de::string")]
    pub entity: String,
    /// Minor units.
    #[serde(deserialize_with = "de::int")]
    pub amount: i64,
    /// Minor units paid.
    #[serde(deserialize_with = "de::int")]
    pub amount_paid: i64,
    /// Minor units still due.
    #[serde(deserialize_with = "de::int")]
    pub amount_due: i64,
    /// ISO currency code.
    #[serde(deserialize_with = "de::string")]
    pub currency: String,
    /// Merchant receipt (<= 40 chars).
    #[serde(deserialize_with = "de::opt_string")]
    pub receipt: Option<String>,
    /// `offer_…`.
    #[serde(deserialize_with = "de::opt_string")]
    pub offer_id: Option<String>,
    /// Status.
    pub status: OrderStatus,
    /// Payment attempts.
    #[serde(deserialize_with = "de::int")]
    pub attempts: i64,
    /// Notes.
    pub notes: Notes,
    /// Unix seconds.
    #[serde(deserialize_with = "de::int")]
    pub created_at: i64,
}

/// A payment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Payment {
    /// `pay_…`.
    #[serde(deserialize_with = "de::string")]
    pub id: String,
    /// Always `"payment"`.
    #[serde(deserialize_with = "de::string")]
    pub entity: String,
    /// Minor units.
    #[serde(deserialize_with = "de::int")]
    pub amount: i64,
    /// ISO currency code.
    #[serde(deserialize_with = "de::string")]
    pub currency: String,
    /// Status.
    pub status: PaymentStatus,
    /// `order_…` (subscription payments have one too).
    #[serde(deserialize_with = "de::opt_string")]
    pub order_id: Option<String>,
    /// `inv_…` for subscription payments.
    #[serde(deserialize_with = "de::opt_string")]
    pub invoice_id: Option<String>,
    /// International card.
    #[serde(deserialize_with = "de::bool_lenient")]
    pub international: bool,
    /// card | netbanking | wallet | emi | upi.
    #[serde(deserialize_with = "de::opt_string")]
    pub method: Option<String>,
    /// Minor units refunded.
    #[serde(deserialize_with = "de::int")]
    pub amount_refunded: i64,
    /// null | partial | full.
    #[serde(deserialize_with = "de::opt_string")]
    pub refund_status: Option<String>,
    /// Captured (seen as `"1"` in the wild).
    #[serde(deserialize_with = "de::bool_lenient")]
    pub captured: bool,
    /// Description.
    #[serde(deserialize_with = "de::opt_string")]
    pub description: Option<String>,
    /// `card_…`.
    #[serde(deserialize_with = "de::opt_string")]
    pub card_id: Option<String>,
    /// Bank code (netbanking).
    #[serde(deserialize_with = "de::opt_string")]
    pub bank: Option<String>,
    /// Wallet name.
    #[serde(deserialize_with = "de::opt_string")]
    pub wallet: Option<String>,
    /// UPI VPA.
    #[serde(deserialize_with = "de::opt_string")]
    pub vpa: Option<String>,
    /// Customer e-mail.
    #[serde(deserialize_with = "de::opt_string")]
    pub email: Option<String>,
    /// Customer phone.
    #[serde(deserialize_with = "de::opt_string")]
    pub contact: Option<String>,
    /// `cust_…`.
    #[serde(deserialize_with = "de::opt_string")]
    pub customer_id: Option<String>,
    /// Notes (copied from the order or subscription).
    pub notes: Notes,
    /// Razorpay fee (minor units).
    #[serde(deserialize_with = "de::opt_int")]
    pub fee: Option<i64>,
    /// Tax on the fee (minor units).
    #[serde(deserialize_with = "de::opt_int")]
    pub tax: Option<i64>,
    /// Failure code.
    #[serde(deserialize_with = "de::opt_string")]
    pub error_code: Option<String>,
    /// Failure description.
    #[serde(deserialize_with = "de::opt_string")]
    pub error_description: Option<String>,
    /// Failure source.
    #[serde(deserialize_with = "de::opt_string")]
    pub error_source: Option<String>,
    /// Failure step.
    #[serde(deserialize_with = "de::opt_string")]
    pub error_step: Option<String>,
    /// Failure reason.
    #[serde(deserialize_with = "de::opt_string")]
    pub error_reason: Option<String>,
    /// Acquirer data (rrn, upi_transaction_id, auth_code, ...), kept as JSON.
    #[serde(deserialize_with = "de::value")]
    pub acquirer_data: serde_json::Value,
    /// Unix seconds.
    #[serde(deserialize_with = "de::int")]
    pub created_at: i64,
}

/// A refund.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Refund {
    /// `rfnd_…`.
    #[serde(deserialize_with = "de::string")]
    pub id: String,
    /// Always `"refund"`.
    #[serde(deserialize_with = "de::string")]
    pub entity: String,
    /// Minor units.
    #[serde(deserialize_with = "de::int")]
    pub amount: i64,
    /// ISO currency code.
    #[serde(deserialize_with = "de::string")]
    pub currency: String,
    /// `pay_…`.
    #[serde(deserialize_with = "de::string")]
    pub payment_id: String,
    /// Notes.
    pub notes: Notes,
    /// Merchant receipt.
    #[serde(deserialize_with = "de::opt_string")]
    pub receipt: Option<String>,
    /// Acquirer data (arn, ...).
    #[serde(deserialize_with = "de::value")]
    pub acquirer_data: serde_json::Value,
    /// Unix seconds.
    #[serde(deserialize_with = "de::int")]
    pub created_at: i64,
    /// Batch id.
    #[serde(deserialize_with = "de::opt_string")]
    pub batch_id: Option<String>,
    /// Status.
    pub status: RefundStatus,
    /// Speed the refund was processed at.
    #[serde(deserialize_with = "de::opt_string")]
    pub speed_processed: Option<String>,
    /// Speed requested.
    #[serde(deserialize_with = "de::opt_string")]
    pub speed_requested: Option<String>,
}

/// An invoice (`GET /v1/invoices?subscription_id=…`: one per billed cycle of a subscription).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Invoice {
    /// `inv_…`.
    #[serde(deserialize_with = "de::string")]
    pub id: String,
    /// Always `"invoice"`.
    #[serde(deserialize_with = "de::string")]
    pub entity: String,
    /// `"invoice"` (Razorpay's invoice type).
    #[serde(rename = "type", deserialize_with = "de::opt_string")]
    pub invoice_type: Option<String>,
    /// Merchant receipt.
    #[serde(deserialize_with = "de::opt_string")]
    pub receipt: Option<String>,
    /// Invoice number.
    #[serde(deserialize_with = "de::opt_string")]
    pub invoice_number: Option<String>,
    /// `cust_…`.
    #[serde(deserialize_with = "de::opt_string")]
    pub customer_id: Option<String>,
    /// `order_…` the invoice is paid through.
    #[serde(deserialize_with = "de::opt_string")]
    pub order_id: Option<String>,
    /// `sub_…` for a subscription's cycle invoice.
    #[serde(deserialize_with = "de::opt_string")]
    pub subscription_id: Option<String>,
    /// `pay_…` of the payment that paid it (`null` until paid).
    #[serde(deserialize_with = "de::opt_string")]
    pub payment_id: Option<String>,
    /// Status.
    pub status: InvoiceStatus,
    /// Line items, kept as JSON.
    #[serde(deserialize_with = "de::value")]
    pub line_items: serde_json::Value,
    /// Minor units.
    #[serde(deserialize_with = "de::int")]
    pub amount: i64,
    /// Minor units paid.
    #[serde(deserialize_with = "de::int")]
    pub amount_paid: i64,
    /// Minor units still due.
    #[serde(deserialize_with = "de::int")]
    pub amount_due: i64,
    /// Gross amount (minor units).
    #[serde(deserialize_with = "de::opt_int")]
    pub gross_amount: Option<i64>,
    /// Tax amount (minor units).
    #[serde(deserialize_with = "de::opt_int")]
    pub tax_amount: Option<i64>,
    /// ISO currency code.
    #[serde(deserialize_with = "de::string")]
    pub currency: String,
    /// E.g. `₹`.
    #[serde(deserialize_with = "de::opt_string")]
    pub currency_symbol: Option<String>,
    /// Description.
    #[serde(deserialize_with = "de::opt_string")]
    pub description: Option<String>,
    /// Notes.
    pub notes: Notes,
    /// Hosted invoice link.
    #[serde(deserialize_with = "de::opt_string")]
    pub short_url: Option<String>,
    /// Start of the billed cycle (Unix seconds).
    #[serde(deserialize_with = "de::opt_int")]
    pub billing_start: Option<i64>,
    /// End of the billed cycle (Unix seconds).
    #[serde(deserialize_with = "de::opt_int")]
    pub billing_end: Option<i64>,
    /// Invoice date (Unix seconds).
    #[serde(deserialize_with = "de::opt_int")]
    pub date: Option<i64>,
    /// Unix seconds.
    #[serde(deserialize_with = "de::opt_int")]
    pub issued_at: Option<i64>,
    /// Unix seconds.
    #[serde(deserialize_with = "de::opt_int")]
    pub paid_at: Option<i64>,
    /// Unix seconds.
    #[serde(deserialize_with = "de::opt_int")]
    pub cancelled_at: Option<i64>,
    /// Unix seconds.
    #[serde(deserialize_with = "de::opt_int")]
    pub expired_at: Option<i64>,
    /// Unix seconds.
    #[serde(deserialize_with = "de::opt_int")]
    pub expire_by: Option<i64>,
    /// Whether partial payments are allowed.
    #[serde(deserialize_with = "de::bool_lenient")]
    pub partial_payment: bool,
    /// Unix seconds.
    #[serde(deserialize_with = "de::int")]
    pub created_at: i64,
}

// ----------------------------------------------------------------------------
// Requests
// ----------------------------------------------------------------------------

/// The item of a [`CreatePlan`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanItem {
    /// Display name.
    pub name: String,
    /// Minor units (paise), at least 100.
    pub amount: i64,
    /// ISO currency code.
    pub currency: String,
    /// Description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// `POST /v1/plans`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreatePlan {
    /// Billing period.
    pub period: Period,
    /// Periods per cycle (daily needs >= 7).
    pub interval: i64,
    /// What is billed.
    pub item: PlanItem,
    /// Notes (omitted when empty).
    #[serde(default, skip_serializing_if = "Notes::is_empty")]
    pub notes: Notes,
}

/// An add-on charged with the first payment of a subscription.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Addon {
    /// The add-on item.
    pub item: PlanItem,
}

/// `POST /v1/subscriptions`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CreateSubscription {
    /// `plan_…`.
    pub plan_id: String,
    /// Billing cycles before the subscription completes. Choose it large
    /// (e.g. 120 monthly cycles) so memberships do not silently end.
    pub total_count: i64,
    /// Quantity (default 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quantity: Option<i64>,
    /// Whether Razorpay notifies the customer (default true).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer_notify: Option<bool>,
    /// First charge (Unix seconds); immediate when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_at: Option<i64>,
    /// Authorisation deadline (Unix seconds).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expire_by: Option<i64>,
    /// Add-ons billed with the first charge.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addons: Vec<Addon>,
    /// `offer_…`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offer_id: Option<String>,
    /// Notes (omitted when empty).
    #[serde(default, skip_serializing_if = "Notes::is_empty")]
    pub notes: Notes,
}

/// When a subscription cancellation takes effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelAt {
    /// Immediately (`cancel_at_cycle_end: false`); sets `ended_at`.
    Now,
    /// At the end of the current cycle (`cancel_at_cycle_end: true`).
    CycleEnd,
}

/// When a subscription update takes effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScheduleChangeAt {
    /// Immediately.
    Now,
    /// At the end of the current cycle.
    CycleEnd,
}

/// `PATCH /v1/subscriptions/:id`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UpdateSubscription {
    /// New plan.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan_id: Option<String>,
    /// New quantity.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quantity: Option<i64>,
    /// New number of remaining cycles.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remaining_count: Option<i64>,
    /// New start (only before the first charge).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_at: Option<i64>,
    /// `offer_…`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offer_id: Option<String>,
    /// When the change applies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule_change_at: Option<ScheduleChangeAt>,
    /// Whether Razorpay notifies the customer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer_notify: Option<bool>,
}

/// Capture mode of an order's payments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaptureMode {
    /// Captured as soon as authorised (Razorpay's default).
    Automatic,
    /// Left `authorized` until `capture` is called.
    Manual,
}

/// `payment` options of a [`CreateOrder`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderPaymentOptions {
    /// Capture mode.
    pub capture: CaptureMode,
}

/// `POST /v1/orders`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CreateOrder {
    /// Minor units (paise), at least 100.
    pub amount: i64,
    /// ISO currency code.
    pub currency: String,
    /// Merchant receipt (<= 40 chars); a good idempotency handle for reconciliation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub receipt: Option<String>,
    /// Notes (omitted when empty). The payment inherits them.
    #[serde(default, skip_serializing_if = "Notes::is_empty")]
    pub notes: Notes,
    /// Allow partial payments.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partial_payment: Option<bool>,
    /// Capture options.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment: Option<OrderPaymentOptions>,
}

/// `POST /v1/payments/:id/capture`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CapturePayment {
    /// Minor units; must equal the authorised amount.
    pub amount: i64,
    /// ISO currency code.
    pub currency: String,
}

/// `POST /v1/payments/:id/refund`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CreateRefund {
    /// Minor units; the whole unrefunded amount when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount: Option<i64>,
    /// `normal` or `optimum`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub speed: Option<String>,
    /// Merchant receipt.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub receipt: Option<String>,
    /// Notes (omitted when empty).
    #[serde(default, skip_serializing_if = "Notes::is_empty")]
    pub notes: Notes,
}

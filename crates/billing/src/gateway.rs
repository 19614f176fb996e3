//! The payment-gateway port: everything the billing workflows ask of Razorpay, in billing's own
//! types. The shell implements it over the `razorpay` client (`oasis_server::gateway`);
//! [`crate::memory_gateway::MemoryGateway`] implements it in memory for the workflows' unit tests.
//!
//! Errors are typed: "this object does not exist at Razorpay" ([`GatewayError::NotFound`]) is
//! told apart from a refusal and from an outage by the implementation, never by callers looking
//! at HTTP status codes.
use crate::events::{OrderSnapshot, PaymentSnapshot};
use crate::notes::CheckoutNotes;
use crate::reconcile::InvoiceSnapshot;
use crate::state::SubscriptionSnapshot;
use oasis_kernel::Timestamp;
use std::collections::BTreeMap;
use std::future::Future;

/// How often a plan bills (a tier's `price` is monthly, its `annual_price` yearly).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum BillingPeriod {
    #[default]
    Monthly,
    Yearly,
}

impl BillingPeriod {
    pub const ALL: [BillingPeriod; 2] = [Self::Monthly, Self::Yearly];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Monthly => "monthly",
            Self::Yearly => "yearly",
        }
    }
    /// `monthly` / `yearly`; anything else is `None` (never guessed).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == s)
    }
    /// Months one cycle pays for (MRR counts a yearly membership as a twelfth a month).
    pub fn months(self) -> i64 {
        match self {
            Self::Monthly => 1,
            Self::Yearly => 12,
        }
    }
    /// Cycles a subscription is created with: ten years either way (see
    /// [`crate::TOTAL_COUNT_MONTHLY`]).
    pub fn total_count(self) -> i64 {
        crate::TOTAL_COUNT_MONTHLY / self.months()
    }
}

/// A plan to create for a tier at one price.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanRequest {
    pub tier_id: i64,
    /// Shown to the fan by Razorpay (at most 100 characters).
    pub name: String,
    pub amount: i64,
    pub currency: String,
    pub period: BillingPeriod,
}

/// A subscription to create on a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionRequest {
    pub plan_id: String,
    /// Billing cycles before Razorpay completes the subscription.
    pub total_count: i64,
    pub notes: CheckoutNotes,
    /// The first charge (Razorpay `start_at`; `None`: at once, the authorisation being the
    /// first charge). A replacement subscription starts at the old one's period end.
    pub start_at: Option<Timestamp>,
    /// The change of tier this subscription replaces a membership for (written into its notes
    /// as [`CHANGE_NOTE`], so that a lost answer is found again: [`PaymentGateway::find_change_subscription`]).
    pub change_id: Option<i64>,
}

/// The note naming the change of tier a replacement subscription was made for.
pub const CHANGE_NOTE: &str = "changeID";

/// An order to create (one-time purchase, cheer, commission).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRequest {
    pub amount: i64,
    pub currency: String,
    /// Our reference (at most 40 characters).
    pub receipt: String,
    pub notes: CheckoutNotes,
}

/// A subscription as the gateway has it now, with its notes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteSubscription {
    pub snapshot: SubscriptionSnapshot,
    pub notes: BTreeMap<String, String>,
    /// The plan it bills now (`plan_…`).
    pub plan_id: String,
    /// A `PATCH … schedule_change_at: cycle_end` waits for the cycle end.
    pub has_scheduled_changes: bool,
    /// The mandate's method once authenticated (`card`, `emandate`, `upi`, …; `None` before,
    /// or where Razorpay does not say).
    pub payment_method: Option<String>,
}

/// A refund the gateway made (or had already made for the same idempotency key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundReceipt {
    /// `rfnd_…`.
    pub id: String,
    pub payment_id: String,
    pub amount: i64,
    /// The gateway's status of it (`pending`, `processed`, …), recorded as is.
    pub status: String,
    /// The idempotency key it was made under, when we made it (its notes say).
    pub idempotency_key: Option<String>,
}

/// A creator's Route linked account as the gateway needs it (no bank details: those go to
/// [`SettlementBank`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkedAccountRequest {
    /// Our reference (`oasis-<creator id>`, at most 20 characters).
    pub reference_id: String,
    pub email: String,
    pub phone: String,
    pub legal_name: String,
    pub business_type: String,
    pub contact_name: String,
}

/// The bank account a linked account is settled to. `Debug` masks the number.
#[derive(Clone, PartialEq, Eq)]
pub struct SettlementBank {
    pub account_number: String,
    pub ifsc_code: String,
    pub beneficiary_name: String,
}

impl std::fmt::Debug for SettlementBank {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SettlementBank")
            .field("ifsc_code", &self.ifsc_code)
            .field("beneficiary_name", &self.beneficiary_name)
            .finish_non_exhaustive()
    }
}

/// A Route transfer as the gateway has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteTransfer {
    /// `trf_…`.
    pub id: String,
    pub payment_id: String,
    pub amount: i64,
    pub on_hold: bool,
    /// `Some(true)` processed, `Some(false)` failed, `None` still under way (or reversed).
    pub processed: Option<bool>,
    pub error: Option<String>,
    /// Our intent id (the transfer's `oasis_transfer` note).
    pub intent: Option<i64>,
    pub settlement_id: Option<String>,
}

/// A reversal the gateway made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteReversal {
    /// `rvrsl_…`.
    pub id: String,
    /// Our transfers row id (the reversal's `oasis_reversal` note).
    pub intent: Option<i64>,
}

/// Why a gateway call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GatewayError {
    /// The object does not exist at the gateway (HTTP 502 if it reaches a client: our data and
    /// the gateway's disagree).
    #[error("not found at the payment gateway")]
    NotFound,
    /// The gateway refused the request (HTTP 502; 400 where the workflow knows the caller
    /// caused it).
    #[error("the payment gateway refused the request: {code}: {description}")]
    Rejected { code: String, description: String },
    /// The gateway could not be reached or failed (HTTP 502/503; jobs retry).
    #[error("the payment gateway is unavailable: {0}")]
    Unavailable(String),
}

/// What the billing workflows need of the payment gateway. Every call may fail with a
/// [`GatewayError`]; writes that can be repeated safely say so.
pub trait PaymentGateway: Send + Sync {
    /// The key id Checkout is opened with (public).
    fn public_key(&self) -> &str;

    /// Creates a plan; returns its `plan_…` id.
    fn create_plan(
        &self,
        plan: &PlanRequest,
    ) -> impl Future<Output = Result<String, GatewayError>> + Send;

    /// Creates a subscription; returns its `sub_…` id.
    fn create_subscription(
        &self,
        req: &SubscriptionRequest,
    ) -> impl Future<Output = Result<String, GatewayError>> + Send;

    /// The subscription made on `plan_id` for change `change_id` (its [`CHANGE_NOTE`]), created
    /// at or after `since`, if there is one: how a replacement whose answer was lost (or whose
    /// process died before recording it) is found instead of made twice. A read.
    fn find_change_subscription(
        &self,
        plan_id: &str,
        change_id: i64,
        since: Timestamp,
    ) -> impl Future<Output = Result<Option<String>, GatewayError>> + Send;

    /// The subscription as it is now (`observed_at` = `now`).
    fn fetch_subscription(
        &self,
        id: &str,
        now: Timestamp,
    ) -> impl Future<Output = Result<RemoteSubscription, GatewayError>> + Send;

    /// Cancels a subscription now or at the end of its paid cycle; returns its new state.
    fn cancel_subscription(
        &self,
        id: &str,
        at_cycle_end: bool,
        now: Timestamp,
    ) -> impl Future<Output = Result<RemoteSubscription, GatewayError>> + Send;

    /// Pauses an active subscription now (Razorpay `POST …/pause {pause_at: "now"}`; see
    /// [`crate::pause`] for the state rules); returns its new state. A repeat is refused.
    fn pause_subscription(
        &self,
        id: &str,
        now: Timestamp,
    ) -> impl Future<Output = Result<RemoteSubscription, GatewayError>> + Send;

    /// Resumes a paused subscription now (`POST …/resume {resume_at: "now"}`); returns its new
    /// state. A repeat is refused.
    fn resume_subscription(
        &self,
        id: &str,
        now: Timestamp,
    ) -> impl Future<Output = Result<RemoteSubscription, GatewayError>> + Send;

    /// Changes the subscription's plan now or at the end of its cycle (`PATCH
    /// /v1/subscriptions/:id {plan_id, schedule_change_at}`; see [`crate::change`] for
    /// Razorpay's rules); returns its new state. An immediate upgrade makes Razorpay charge the
    /// prorated difference through an invoice. A refusal (a UPI mandate, a state that cannot
    /// be updated) is [`GatewayError::Rejected`].
    fn update_subscription(
        &self,
        id: &str,
        plan_id: &str,
        at_cycle_end: bool,
        now: Timestamp,
    ) -> impl Future<Output = Result<RemoteSubscription, GatewayError>> + Send;

    /// The subscription's cycle invoices (each with the payment that paid it).
    fn subscription_invoices(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Vec<InvoiceSnapshot>, GatewayError>> + Send;

    /// Creates an order; returns its `order_…` id.
    fn create_order(
        &self,
        req: &OrderRequest,
    ) -> impl Future<Output = Result<String, GatewayError>> + Send;

    /// The order as it is now.
    fn fetch_order(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<OrderSnapshot, GatewayError>> + Send;

    /// The order's payments (payments in statuses billing does not know are left out).
    fn order_payments(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Vec<PaymentSnapshot>, GatewayError>> + Send;

    /// One payment (`None` when its status is one billing does not know).
    fn fetch_payment(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<PaymentSnapshot>, GatewayError>> + Send;

    /// The refunds made of a payment, oldest first.
    fn payment_refunds(
        &self,
        payment_id: &str,
    ) -> impl Future<Output = Result<Vec<RefundReceipt>, GatewayError>> + Send;

    /// Refunds `amount` of a payment. Idempotent under `idempotency_key`: a repeat answers the
    /// refund already made, so a lost answer can be retried without refunding twice.
    fn refund(
        &self,
        payment_id: &str,
        amount: i64,
        idempotency_key: &str,
    ) -> impl Future<Output = Result<RefundReceipt, GatewayError>> + Send;

    // ---- Route (payouts to creators); a gateway without Route answers `Unavailable` ----

    /// Creates a `route` linked account; returns its `acc_…` id. When one with the same email
    /// exists already (a lost answer of an earlier create), its id.
    fn create_linked_account(
        &self,
        _req: &LinkedAccountRequest,
    ) -> impl Future<Output = Result<String, GatewayError>> + Send {
        async {
            Err(GatewayError::Unavailable(
                "Route is not supported by this gateway".into(),
            ))
        }
    }

    /// Updates the linked account's phone, legal name and contact name.
    fn update_linked_account(
        &self,
        _account_id: &str,
        _req: &LinkedAccountRequest,
    ) -> impl Future<Output = Result<(), GatewayError>> + Send {
        async {
            Err(GatewayError::Unavailable(
                "Route is not supported by this gateway".into(),
            ))
        }
    }

    /// Creates (`stakeholder_id: None`; returns the new `sth_…`) or updates a stakeholder.
    fn save_stakeholder(
        &self,
        _account_id: &str,
        _stakeholder_id: Option<&str>,
        _name: &str,
        _email: &str,
    ) -> impl Future<Output = Result<String, GatewayError>> + Send {
        async {
            Err(GatewayError::Unavailable(
                "Route is not supported by this gateway".into(),
            ))
        }
    }

    /// Requests the `route` product; returns `(acc_prd_… id, activation_status)`.
    fn request_route_product(
        &self,
        _account_id: &str,
    ) -> impl Future<Output = Result<(String, String), GatewayError>> + Send {
        async {
            Err(GatewayError::Unavailable(
                "Route is not supported by this gateway".into(),
            ))
        }
    }

    /// Sets the product's settlement bank account (terms accepted); returns its
    /// `activation_status`.
    fn configure_route_product(
        &self,
        _account_id: &str,
        _product_id: &str,
        _bank: &SettlementBank,
    ) -> impl Future<Output = Result<String, GatewayError>> + Send {
        async {
            Err(GatewayError::Unavailable(
                "Route is not supported by this gateway".into(),
            ))
        }
    }

    /// Transfers `amount` of a payment to a linked account, noting our intent id. Never
    /// repeated after it may have been sent: a lost answer is resolved with
    /// [`Self::payment_transfers`].
    fn create_transfer(
        &self,
        _payment_id: &str,
        _account_id: &str,
        _amount: i64,
        _on_hold: bool,
        _intent: i64,
    ) -> impl Future<Output = Result<RemoteTransfer, GatewayError>> + Send {
        async {
            Err(GatewayError::Unavailable(
                "Route is not supported by this gateway".into(),
            ))
        }
    }

    /// Every transfer made from a payment.
    fn payment_transfers(
        &self,
        _payment_id: &str,
    ) -> impl Future<Output = Result<Vec<RemoteTransfer>, GatewayError>> + Send {
        async {
            Err(GatewayError::Unavailable(
                "Route is not supported by this gateway".into(),
            ))
        }
    }

    /// Releases a held transfer (`on_hold: false`).
    fn release_transfer(
        &self,
        _transfer_id: &str,
    ) -> impl Future<Output = Result<RemoteTransfer, GatewayError>> + Send {
        async {
            Err(GatewayError::Unavailable(
                "Route is not supported by this gateway".into(),
            ))
        }
    }

    /// The reversals made of a transfer.
    fn transfer_reversals(
        &self,
        _transfer_id: &str,
    ) -> impl Future<Output = Result<Vec<RemoteReversal>, GatewayError>> + Send {
        async {
            Err(GatewayError::Unavailable(
                "Route is not supported by this gateway".into(),
            ))
        }
    }

    /// Reverses the whole transfer, noting our intent; returns the `rvrsl_…` id.
    fn reverse_transfer(
        &self,
        _transfer_id: &str,
        _intent: i64,
    ) -> impl Future<Output = Result<String, GatewayError>> + Send {
        async {
            Err(GatewayError::Unavailable(
                "Route is not supported by this gateway".into(),
            ))
        }
    }

    /// The transfers a settlement paid out.
    fn settlement_transfers(
        &self,
        _settlement_id: &str,
    ) -> impl Future<Output = Result<Vec<RemoteTransfer>, GatewayError>> + Send {
        async {
            Err(GatewayError::Unavailable(
                "Route is not supported by this gateway".into(),
            ))
        }
    }
}

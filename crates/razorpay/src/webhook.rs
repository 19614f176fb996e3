//! Webhook envelope, event kinds, and [`parse_webhook`] (verify, then parse).

use crate::de;
use crate::route::{Dispute, LinkedAccount, MerchantProduct, Settlement, Transfer};
use crate::signature::verify_webhook_signature;
use crate::types::{string_enum, Order, Payment, Refund, Subscription};
use serde::{Deserialize, Serialize};

string_enum! {
    /// The event names Oasis handles. Unknown names are kept as `Other`, never rejected.
    EventKind {
        /// Mandate authorised (future start or trial).
        SubscriptionAuthenticated => "subscription.authenticated",
        /// Subscription became active.
        SubscriptionActivated => "subscription.activated",
        /// A cycle was charged (subscription + payment).
        SubscriptionCharged => "subscription.charged",
        /// Last cycle billed (subscription + payment).
        SubscriptionCompleted => "subscription.completed",
        /// Subscription updated (PATCH).
        SubscriptionUpdated => "subscription.updated",
        /// A charge failed and will be retried.
        SubscriptionPending => "subscription.pending",
        /// Retries exhausted.
        SubscriptionHalted => "subscription.halted",
        /// Cancelled.
        SubscriptionCancelled => "subscription.cancelled",
        /// Paused.
        SubscriptionPaused => "subscription.paused",
        /// Resumed.
        SubscriptionResumed => "subscription.resumed",
        /// Payment authorised.
        PaymentAuthorized => "payment.authorized",
        /// Payment captured.
        PaymentCaptured => "payment.captured",
        /// Payment failed.
        PaymentFailed => "payment.failed",
        /// Order paid (payment + order).
        OrderPaid => "order.paid",
        /// Refund created (refund + payment).
        RefundCreated => "refund.created",
        /// Refund processed (refund + payment).
        RefundProcessed => "refund.processed",
        /// Refund failed (refund + payment).
        RefundFailed => "refund.failed",
        /// A Route transfer was credited to the linked account (transfer).
        TransferProcessed => "transfer.processed",
        /// A Route transfer failed (transfer).
        TransferFailed => "transfer.failed",
        /// A linked account's balance was settled to its bank (settlement, with the UTR).
        SettlementProcessed => "settlement.processed",
        /// A linked account's `route` product is being reviewed (merchant_product).
        ProductRouteUnderReview => "product.route.under_review",
        /// Razorpay needs more information for the `route` product (merchant_product).
        ProductRouteNeedsClarification => "product.route.needs_clarification",
        /// The `route` product is active: transfers can be made (merchant_product).
        ProductRouteActivated => "product.route.activated",
        /// The `route` product was suspended (merchant_product).
        ProductRouteSuspended => "product.route.suspended",
        /// The linked account was suspended (account).
        AccountSuspended => "account.suspended",
        /// The linked account was activated (account).
        AccountActivated => "account.activated",
        /// A payment's chargeback opened (payment + dispute).
        PaymentDisputeCreated => "payment.dispute.created",
        /// A dispute was won (payment + dispute).
        PaymentDisputeWon => "payment.dispute.won",
        /// A dispute was lost (payment + dispute).
        PaymentDisputeLost => "payment.dispute.lost",
        /// A dispute was closed (payment + dispute).
        PaymentDisputeClosed => "payment.dispute.closed",
        /// A dispute is under review (payment + dispute).
        PaymentDisputeUnderReview => "payment.dispute.under_review",
        /// A dispute needs the merchant's action (payment + dispute).
        PaymentDisputeActionRequired => "payment.dispute.action_required",
    }
}

/// The entities carried by an event; each present only when the event contains it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(from = "RawPayload", into = "RawPayload")]
pub struct WebhookPayload {
    /// `payload.subscription.entity`.
    pub subscription: Option<Subscription>,
    /// `payload.payment.entity`.
    pub payment: Option<Payment>,
    /// `payload.order.entity`.
    pub order: Option<Order>,
    /// `payload.refund.entity`.
    pub refund: Option<Refund>,
    /// `payload.transfer.entity`.
    pub transfer: Option<Transfer>,
    /// `payload.settlement.entity`.
    pub settlement: Option<Settlement>,
    /// `payload.merchant_product.entity`.
    pub merchant_product: Option<MerchantProduct>,
    /// `payload.account.entity`.
    pub account: Option<LinkedAccount>,
    /// `payload.dispute.entity`.
    pub dispute: Option<Dispute>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Wrapped<T> {
    entity: T,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
struct RawPayload {
    #[serde(skip_serializing_if = "Option::is_none")]
    subscription: Option<Wrapped<Subscription>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    payment: Option<Wrapped<Payment>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    order: Option<Wrapped<Order>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    refund: Option<Wrapped<Refund>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    transfer: Option<Wrapped<Transfer>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    settlement: Option<Wrapped<Settlement>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    merchant_product: Option<Wrapped<MerchantProduct>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    account: Option<Wrapped<LinkedAccount>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dispute: Option<Wrapped<Dispute>>,
}

impl From<RawPayload> for WebhookPayload {
    fn from(r: RawPayload) -> Self {
        WebhookPayload {
            subscription: r.subscription.map(|w| w.entity),
            payment: r.payment.map(|w| w.entity),
            order: r.order.map(|w| w.entity),
            refund: r.refund.map(|w| w.entity),
            transfer: r.transfer.map(|w| w.entity),
            settlement: r.settlement.map(|w| w.entity),
            merchant_product: r.merchant_product.map(|w| w.entity),
            account: r.account.map(|w| w.entity),
            dispute: r.dispute.map(|w| w.entity),
        }
    }
}

impl From<WebhookPayload> for RawPayload {
    fn from(p: WebhookPayload) -> Self {
        RawPayload {
            subscription: p.subscription.map(|entity| Wrapped { entity }),
            payment: p.payment.map(|entity| Wrapped { entity }),
            order: p.order.map(|entity| Wrapped { entity }),
            refund: p.refund.map(|entity| Wrapped { entity }),
            transfer: p.transfer.map(|entity| Wrapped { entity }),
            settlement: p.settlement.map(|entity| Wrapped { entity }),
            merchant_product: p.merchant_product.map(|entity| Wrapped { entity }),
            account: p.account.map(|entity| Wrapped { entity }),
            dispute: p.dispute.map(|entity| Wrapped { entity }),
        }
    }
}

/// A webhook: `{"entity":"event","account_id","event","contains","payload","created_at"}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct WebhookEvent {
    /// Always `"event"`.
    #[serde(deserialize_with = "de::string")]
    pub entity: String,
    /// `acc_…` of the merchant account.
    #[serde(deserialize_with = "de::opt_string")]
    pub account_id: Option<String>,
    /// The event name, e.g. `subscription.charged` (see [`WebhookEvent::kind`]).
    #[serde(deserialize_with = "de::string")]
    pub event: String,
    /// Which entities `payload` holds, e.g. `["subscription","payment"]`.
    pub contains: Vec<String>,
    /// The entities.
    pub payload: WebhookPayload,
    /// Unix seconds.
    #[serde(deserialize_with = "de::int")]
    pub created_at: i64,
}

impl WebhookEvent {
    /// The event name as an [`EventKind`].
    pub fn kind(&self) -> EventKind {
        EventKind::parse(&self.event)
    }

    /// `notes.type` of the payment, else of the order, else of the subscription
    /// (how Oasis routes payments: subscription, cheer, commission...).
    pub fn notes_type(&self) -> Option<&str> {
        let p = &self.payload;
        p.payment
            .as_ref()
            .and_then(|x| x.notes.get("type"))
            .or_else(|| p.order.as_ref().and_then(|x| x.notes.get("type")))
            .or_else(|| p.subscription.as_ref().and_then(|x| x.notes.get("type")))
    }
}

/// Why a webhook was rejected.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// `X-Razorpay-Signature` missing or not the HMAC of the body (answer 400; do not process).
    #[error("webhook signature does not match the body")]
    BadSignature,
    /// Signed correctly but not a webhook envelope (answer 2xx and log: a retry will not fix it).
    #[error("webhook body is not a Razorpay event: {0}")]
    Malformed(#[from] serde_json::Error),
}

/// Verifies `signature` over `raw_body` with `webhook_secret` (constant time),
/// and only then parses the body. Pass the bytes exactly as received.
pub fn parse_webhook(
    raw_body: &[u8],
    signature: &str,
    webhook_secret: &str,
) -> Result<WebhookEvent, WebhookError> {
    if !verify_webhook_signature(raw_body, signature, webhook_secret) {
        return Err(WebhookError::BadSignature);
    }
    Ok(serde_json::from_slice(raw_body)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signature::sign_webhook;

    #[test]
    fn unknown_events_are_kept() {
        let body = br#"{"entity":"event","event":"invoice.paid","contains":["invoice"],"payload":{"invoice":{"entity":{"id":"inv_1"}}},"created_at":1}"#;
        let sig = sign_webhook(body, "s");
        let ev = parse_webhook(body, &sig, "s").unwrap();
        assert_eq!(ev.kind(), EventKind::Other("invoice.paid".into()));
        assert!(ev.payload.payment.is_none());
    }

    #[test]
    fn bad_signature_is_rejected_before_parsing() {
        let body = b"not json at all";
        assert!(matches!(
            parse_webhook(body, "00", "s"),
            Err(WebhookError::BadSignature)
        ));
        let sig = sign_webhook(body, "s");
        assert!(matches!(
            parse_webhook(body, &sig, "s"),
            Err(WebhookError::Malformed(_))
        ));
    }

    #[test]
    fn round_trips_envelope() {
        let ev = WebhookEvent {
            entity: "event".into(),
            account_id: Some("acc_x".into()),
            event: "order.paid".into(),
            contains: vec!["payment".into(), "order".into()],
            payload: WebhookPayload {
                payment: Some(Payment {
                    id: "pay_1".into(),
                    ..Default::default()
                }),
                order: Some(Order {
                    id: "order_1".into(),
                    ..Default::default()
                }),
                ..Default::default()
            },
            created_at: 5,
        };
        let s = serde_json::to_string(&ev).unwrap();
        assert!(s.contains(r#""payment":{"entity":{"id":"pay_1""#));
        let back: WebhookEvent = serde_json::from_str(&s).unwrap();
        assert_eq!(back, ev);
        assert_eq!(back.kind(), EventKind::OrderPaid);
    }
}

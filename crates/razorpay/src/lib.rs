#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod client;
mod de;
pub mod error;
mod notes;
pub mod route;
pub mod signature;
pub mod types;
pub mod webhook;

pub use client::{
    Client, ClientConfig, RequestKind, RetryPolicy, DEFAULT_BASE_URL, REFUND_IDEMPOTENCY_HEADER,
};
pub use error::{ApiErrorDetail, Error};
pub use notes::Notes;
pub use route::*;
pub use secrecy::{ExposeSecret, SecretString};
pub use signature::{
    hmac_sha256_hex, sign_order, sign_payment_link, sign_subscription, sign_webhook,
    verify_order_signature, verify_payment_link_signature, verify_subscription_signature,
    verify_webhook_signature,
};
pub use types::*;
pub use webhook::{parse_webhook, EventKind, WebhookError, WebhookEvent, WebhookPayload};

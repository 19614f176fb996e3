//! The simulator's in-memory state, optionally persisted as JSON.

use crate::input::ApiError;
use rand::Rng;
use razorpay::{
    Dispute, Invoice, LinkedAccount, Order, Payment, Plan, ProductConfiguration, Refund, Reversal,
    Settlement, Stakeholder, Subscription, Transfer,
};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Unix seconds now.
pub(crate) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// `n` random alphanumerics.
pub(crate) fn alnum(n: usize) -> String {
    let mut rng = rand::thread_rng();
    (0..n)
        .map(|_| ALNUM[rng.gen_range(0..ALNUM.len())] as char)
        .collect()
}

/// `<prefix>_` + 14 alphanumerics, as Razorpay's ids.
pub(crate) fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", alnum(14))
}

/// Whether `id` is `<prefix>_` + 14 alphanumerics.
pub(crate) fn well_formed(id: &str, prefix: &str) -> bool {
    id.strip_prefix(prefix)
        .and_then(|r| r.strip_prefix('_'))
        .is_some_and(|r| r.len() == 14 && r.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// Checks an id from a URL: malformed → "<id> is not a valid id"; well-formed
/// but absent is the caller's "The id provided does not exist".
pub(crate) fn check_id(id: &str, prefix: &str) -> Result<(), ApiError> {
    if well_formed(id, prefix) {
        Ok(())
    } else {
        Err(ApiError::invalid_id(id))
    }
}

/// A subscription plus what the simulator needs to know about it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct SubRec {
    pub sub: Subscription,
    /// Created without `start_at`: the authorisation payment is the first charge.
    pub immediate: bool,
    /// Cancel requested at the end of the current cycle.
    #[serde(default)]
    pub cancel_at_cycle_end: bool,
    /// Changes of a `PATCH` with `schedule_change_at: cycle_end`.
    #[serde(default)]
    pub scheduled: Option<ScheduledChange>,
    /// Add-ons billed with the first charge (minor units).
    #[serde(default)]
    pub addons_amount: i64,
    /// The mandate's instrument, set when it is authorised: every payment of the subscription
    /// is made with this card (`card_id`) or UPI ID (`vpa`).
    #[serde(default)]
    pub card_id: Option<String>,
    #[serde(default)]
    pub vpa: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct ScheduledChange {
    pub plan_id: Option<String>,
    pub quantity: Option<i64>,
    pub remaining_count: Option<i64>,
}

/// An order plus its capture mode.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct OrderRec {
    pub order: Order,
    /// `payment.capture == "manual"`: payments stay `authorized`.
    #[serde(default)]
    pub manual_capture: bool,
}

/// One webhook event and its delivery log.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct EventRec {
    /// Sent as `X-Razorpay-Event-Id` (the same on retries and duplicates).
    pub id: String,
    pub event: String,
    pub created_at: i64,
    /// The exact bytes sent (signature is computed over them).
    pub body: String,
    #[serde(default)]
    pub noncanonical: bool,
    #[serde(default)]
    pub attempts: u32,
    /// Number of 2xx answers (more than 1 with duplicates or redelivery).
    #[serde(default)]
    pub deliveries: u32,
    #[serde(default)]
    pub last_status: Option<u16>,
    #[serde(default)]
    pub last_error: Option<String>,
    #[serde(default)]
    pub delivered: bool,
    /// Dropped on purpose (`/_sim/webhooks/drop_next`): never sent unless redelivered.
    #[serde(default)]
    pub dropped: bool,
}

/// Everything the simulator knows, in creation order.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct State {
    pub account_id: String,
    pub plans: Vec<Plan>,
    pub subscriptions: Vec<SubRec>,
    pub orders: Vec<OrderRec>,
    pub payments: Vec<Payment>,
    pub refunds: Vec<Refund>,
    /// Subscription cycle invoices (one per billed cycle; a retried charge reuses its cycle's).
    pub invoices: Vec<Invoice>,
    pub events: Vec<EventRec>,
    /// Refunds made with `X-Refund-Idempotency`: a repeat of the key answers the same refund.
    pub refund_keys: Vec<RefundKey>,
    /// Route linked accounts with their stakeholders and product configurations.
    pub accounts: Vec<AccountRec>,
    /// Route transfers from payments.
    pub transfers: Vec<Transfer>,
    pub reversals: Vec<Reversal>,
    /// Settlements of linked accounts' balances.
    pub settlements: Vec<Settlement>,
    pub disputes: Vec<Dispute>,
    /// The card entity of each card number paid with (`/_sim/checkout`'s `card`): as for a
    /// saved card at Razorpay, one card number keeps one `card_id`.
    #[serde(default)]
    pub cards: std::collections::BTreeMap<String, String>,
}

/// A Route linked account, its stakeholders and product configurations.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct AccountRec {
    pub account: LinkedAccount,
    #[serde(default)]
    pub stakeholders: Vec<Stakeholder>,
    #[serde(default)]
    pub products: Vec<ProductConfiguration>,
}

/// One `X-Refund-Idempotency` key and what it did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct RefundKey {
    pub key: String,
    pub payment_id: String,
    /// The request body it came with (a different body with the same key is refused).
    pub body: String,
    pub refund_id: String,
}

impl State {
    pub fn fresh() -> State {
        State {
            account_id: new_id("acc"),
            ..Default::default()
        }
    }

    /// Loads `path` if it exists and parses; otherwise a fresh state.
    pub fn load(path: Option<&Path>) -> State {
        let Some(path) = path else {
            return State::fresh();
        };
        match std::fs::read(path) {
            Ok(bytes) => match serde_json::from_slice::<State>(&bytes) {
                Ok(mut s) => {
                    if s.account_id.is_empty() {
                        s.account_id = new_id("acc");
                    }
                    s
                }
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "razorpay-sim: state file unreadable; starting empty");
                    State::fresh()
                }
            },
            Err(_) => State::fresh(),
        }
    }

    /// Writes the state atomically (temp file + rename).
    pub fn save(&self, path: &Path) {
        let tmp = path.with_extension("tmp");
        let res = serde_json::to_vec(self)
            .map_err(std::io::Error::other)
            .and_then(|bytes| std::fs::write(&tmp, bytes))
            .and_then(|()| std::fs::rename(&tmp, path));
        if let Err(e) = res {
            tracing::warn!(path = %path.display(), error = %e, "razorpay-sim: could not persist state");
        }
    }

    pub fn plan(&self, id: &str) -> Result<&Plan, ApiError> {
        check_id(id, "plan")?;
        self.plans
            .iter()
            .find(|p| p.id == id)
            .ok_or_else(ApiError::not_found)
    }

    pub fn sub_mut(&mut self, id: &str) -> Result<&mut SubRec, ApiError> {
        check_id(id, "sub")?;
        self.subscriptions
            .iter_mut()
            .find(|s| s.sub.id == id)
            .ok_or_else(ApiError::not_found)
    }

    pub fn order_mut(&mut self, id: &str) -> Result<&mut OrderRec, ApiError> {
        check_id(id, "order")?;
        self.orders
            .iter_mut()
            .find(|o| o.order.id == id)
            .ok_or_else(ApiError::not_found)
    }

    pub fn payment_mut(&mut self, id: &str) -> Result<&mut Payment, ApiError> {
        check_id(id, "pay")?;
        self.payments
            .iter_mut()
            .find(|p| p.id == id)
            .ok_or_else(ApiError::not_found)
    }

    pub fn invoice(&self, id: &str) -> Result<&Invoice, ApiError> {
        check_id(id, "inv")?;
        self.invoices
            .iter()
            .find(|i| i.id == id)
            .ok_or_else(ApiError::not_found)
    }

    pub fn refund(&self, id: &str) -> Result<&Refund, ApiError> {
        check_id(id, "rfnd")?;
        self.refunds
            .iter()
            .find(|r| r.id == id)
            .ok_or_else(ApiError::not_found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        let id = new_id("order");
        assert!(well_formed(&id, "order"), "{id}");
        assert_eq!(id.len(), "order_".len() + 14);
        assert!(!well_formed("order_short", "order"));
        assert!(!well_formed("pay_AAAAAAAAAAAAAA", "order"));
        assert!(!well_formed("order_AAAAAAAAAAAA-A", "order"));
        assert!(check_id("sub_!", "sub").is_err());
    }
}

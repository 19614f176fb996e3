//! Recovering subscription charges whose webhook was lost.
//!
//! A renewal reaches us as `subscription.charged` (the subscription and the payment). When that
//! event is lost, fetching the subscription restores its state, but the payment — the money —
//! is only listed by Razorpay's invoices: one invoice per billed cycle, with the `payment_id`
//! that paid it. Reconciliation therefore lists the subscription's invoices, asks the store which
//! paid invoices' payments are not yet recorded as charges of the membership
//! ([`charges_to_recover`]), fetches those payments, and applies the effects of
//! [`plan_recovered_charges`] — those of the very `subscription.charged` events that were lost,
//! planned by [`plan_event`] and applied as webhook effects are ([`apply_effects`]). The period
//! is extended by the same merge and the payment recorded by the same upsert (once per Razorpay
//! payment id) as on the webhook path, so a late delivery of the lost webhook changes nothing.
use crate::apply::{apply_effects, Applied};
use crate::events::{plan_event, Effect, Event, PaymentSnapshot, PaymentStatus};
use crate::ports::BillingStore;
use crate::state::SubscriptionSnapshot;
use oasis_kernel::{RepoError, Timestamp};
use std::collections::BTreeMap;

/// A subscription's cycle invoice as Razorpay lists it (`GET /v1/invoices?subscription_id=`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoiceSnapshot {
    /// `inv_…`.
    pub id: String,
    pub subscription_id: Option<String>,
    /// The payment that paid it (`None` while unpaid).
    pub payment_id: Option<String>,
    /// `status == "paid"`.
    pub paid: bool,
}

impl InvoiceSnapshot {
    fn paid_charge_of(&self, subscription_id: &str) -> Option<&str> {
        if self.paid && self.subscription_id.as_deref() == Some(subscription_id) {
            self.payment_id.as_deref().filter(|p| !p.is_empty())
        } else {
            None
        }
    }
}

/// The payment ids of `subscription_id`'s paid invoices that are not recorded as charges of its
/// membership — never seen, or seen only through an event that could not link them (a refund
/// delivered before the charge) — each once, in the invoices' order.
pub fn charges_to_recover(
    store: &mut (impl BillingStore + ?Sized),
    subscription_id: &str,
    invoices: &[InvoiceSnapshot],
) -> Result<Vec<String>, RepoError> {
    let mut ids: Vec<String> = Vec::new();
    for p in invoices
        .iter()
        .filter_map(|i| i.paid_charge_of(subscription_id))
    {
        if !ids.iter().any(|x| x == p) {
            ids.push(p.to_owned());
        }
    }
    if ids.is_empty() {
        return Ok(ids);
    }
    let linked = store.linked_charges(subscription_id, &ids)?;
    ids.retain(|p| !linked.contains(p));
    Ok(ids)
}

/// Whether a fetched payment is a paid charge of one of the subscription's paid invoices (the
/// payments [`recover_charges`] records; others are skipped).
pub fn is_invoiced_charge(
    subscription_id: &str,
    invoices: &[InvoiceSnapshot],
    p: &PaymentSnapshot,
) -> bool {
    let charged = matches!(
        p.status,
        PaymentStatus::Authorized | PaymentStatus::Captured | PaymentStatus::Refunded
    );
    charged
        && invoices.iter().any(|i| {
            i.paid_charge_of(subscription_id) == Some(p.id.as_str())
                && p.invoice_id.as_deref().is_none_or(|inv| inv == i.id)
        })
}

/// The `subscription.charged` event Razorpay sent (or would have sent) for `payment`, carrying
/// the subscription as fetched.
fn charged_event(
    subscription: &SubscriptionSnapshot,
    notes: &BTreeMap<String, String>,
    payment: Option<&PaymentSnapshot>,
) -> Event {
    Event {
        name: "subscription.charged".into(),
        created_at: subscription.observed_at,
        subscription: Some(subscription.clone()),
        subscription_notes: notes.clone(),
        payment: payment.cloned(),
        order: None,
        refund: None,
        route: None,
    }
}

/// The effects of a fetched subscription and the fetched payments of its paid invoices: those
/// of the `subscription.charged` events that carried them, planned by [`plan_event`] — the
/// subscription merged once (it extends the paid period exactly as the webhook does), then each
/// payment that is a paid charge of one of `invoices` (others — failed, or of another
/// subscription — are skipped). Apply them as webhook effects are applied, inside one
/// transaction; applying them is idempotent.
pub fn plan_recovered_charges(
    subscription: &SubscriptionSnapshot,
    notes: &BTreeMap<String, String>,
    invoices: &[InvoiceSnapshot],
    payments: &[PaymentSnapshot],
) -> Vec<Effect> {
    let charges: Vec<&PaymentSnapshot> = payments
        .iter()
        .filter(|p| is_invoiced_charge(&subscription.id, invoices, p))
        .collect();
    let events: Vec<Event> = if charges.is_empty() {
        vec![charged_event(subscription, notes, None)]
    } else {
        charges
            .iter()
            .map(|p| charged_event(subscription, notes, Some(p)))
            .collect()
    };
    let mut effects = Vec::new();
    for ev in &events {
        for fx in plan_event(ev) {
            // One subscription effect (the same snapshot each time), then every payment.
            if !effects.contains(&fx) {
                effects.push(fx);
            }
        }
    }
    effects
}

/// [`plan_recovered_charges`], applied with [`apply_effects`].
pub fn recover_charges(
    store: &mut (impl BillingStore + ?Sized),
    subscription: &SubscriptionSnapshot,
    notes: &BTreeMap<String, String>,
    invoices: &[InvoiceSnapshot],
    payments: &[PaymentSnapshot],
    now: Timestamp,
) -> Result<Vec<Applied>, RepoError> {
    let effects = plan_recovered_charges(subscription, notes, invoices, payments);
    apply_effects(store, &effects, now)
}

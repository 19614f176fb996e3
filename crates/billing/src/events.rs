//! What a Razorpay webhook means for Oasis: [`plan_event`] turns an event (already verified and
//! parsed by the app) into [`Effect`]s that the Postgres adapter applies idempotently.
//!
//! Routing follows `notes.type`: `subscription` (a recurring membership, or a one-time tier
//! purchase when it is an order payment), `cheer`, `commission` (stored generically for the
//! commissions domain).
use crate::notes::CheckoutNotes;
use crate::state::SubscriptionSnapshot;
use oasis_kernel::Timestamp;
use std::collections::BTreeMap;

/// Razorpay payment status; merged by [`PaymentStatus::rank`] (a payment only moves forward).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PaymentStatus {
    Created,
    Failed,
    Authorized,
    Captured,
    Refunded,
}

impl PaymentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Failed => "failed",
            Self::Authorized => "authorized",
            Self::Captured => "captured",
            Self::Refunded => "refunded",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "created" => Self::Created,
            "failed" => Self::Failed,
            "authorized" => Self::Authorized,
            "captured" => Self::Captured,
            "refunded" => Self::Refunded,
            _ => return None,
        })
    }
    /// Merge order: a later-delivered older status never overwrites a newer one.
    pub fn rank(self) -> i16 {
        match self {
            Self::Created => 0,
            Self::Failed => 1,
            Self::Authorized => 2,
            Self::Captured => 3,
            Self::Refunded => 4,
        }
    }
    /// The money was (or will be, by auto-capture) received: grants what it paid for.
    pub fn is_paid(self) -> bool {
        matches!(self, Self::Authorized | Self::Captured)
    }
}

/// A Razorpay payment as carried by an event or fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentSnapshot {
    pub id: String,
    pub amount: i64,
    pub currency: String,
    pub status: PaymentStatus,
    pub order_id: Option<String>,
    pub invoice_id: Option<String>,
    pub amount_refunded: i64,
    pub notes: BTreeMap<String, String>,
    pub email: Option<String>,
    pub contact: Option<String>,
    pub created_at: Timestamp,
    /// Razorpay's fee (its GST included), once captured; `None` when the source did not carry
    /// it (the ledger then fetches the payment).
    pub fee: Option<i64>,
    /// The card or UPI ID it was paid with, as a keyed fingerprint ([`crate::trials`]), where
    /// Razorpay revealed it.
    pub instrument: Option<crate::trials::Instrument>,
}

/// A Razorpay order as carried by `order.paid` or fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderSnapshot {
    pub id: String,
    pub amount: i64,
    pub currency: String,
    pub paid: bool,
    pub notes: BTreeMap<String, String>,
}

/// A verified, parsed webhook event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub name: String,
    pub created_at: Timestamp,
    pub subscription: Option<SubscriptionSnapshot>,
    pub subscription_notes: BTreeMap<String, String>,
    pub payment: Option<PaymentSnapshot>,
    pub order: Option<OrderSnapshot>,
    /// `(refund id, payment id, amount)` of a refund event.
    pub refund: Option<(String, String, i64)>,
    /// What a Route (transfer, settlement, linked account) or dispute event says.
    pub route: Option<crate::payouts::RouteFact>,
}

/// What a payment paid for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Purpose {
    /// A charge of a recurring membership.
    Subscription { subscription_id: String },
    /// A payment of an order: the stored order decides (one-time tier, cheer, commission); when
    /// the order is unknown locally (created elsewhere, or the seed's fixtures) the notes say.
    Order {
        order_id: String,
        notes_type: Option<String>,
    },
    /// Neither (e.g. a subscription's invoice payment without its subscription): recorded only
    /// if a subscription event links it.
    Unlinked,
}

/// One idempotent change to apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Merge this view of a subscription (creating the membership from its notes
    /// `userID`/`tierID` if we never saw it).
    Subscription {
        snapshot: SubscriptionSnapshot,
        notes: BTreeMap<String, String>,
    },
    /// Record (or advance) a payment, once per `razorpay_payment_id`.
    Payment {
        payment: PaymentSnapshot,
        purpose: Purpose,
    },
    /// A refund was processed for a payment not paid through one of our orders (a
    /// subscription charge): mark the payment refunded (recording it first if unseen).
    /// Refunds of order payments arrive as [`Effect::Payment`] with the refunded payment.
    Refund {
        payment_id: String,
        amount: i64,
        payment: Option<PaymentSnapshot>,
    },
    /// Nothing to do (unknown or informational event); the event is still kept in the inbox.
    Ignore { reason: String },
}

/// Maps an event to effects. Pure; the same event always gives the same effects.
pub fn plan_event(ev: &Event) -> Vec<Effect> {
    let mut out = Vec::new();
    let family = ev.name.split('.').next().unwrap_or("");
    if ev.route.is_some() || ev.name.starts_with("payment.dispute.") {
        // Route and dispute facts are applied by `workflows::payouts::apply_fact_in`.
        return vec![Effect::Ignore {
            reason: format!("{}: a payout fact", ev.name),
        }];
    }
    match family {
        "subscription" => {
            if let Some(s) = &ev.subscription {
                out.push(Effect::Subscription {
                    snapshot: s.clone(),
                    notes: ev.subscription_notes.clone(),
                });
                if let Some(p) = &ev.payment {
                    out.push(Effect::Payment {
                        payment: p.clone(),
                        purpose: Purpose::Subscription {
                            subscription_id: s.id.clone(),
                        },
                    });
                }
            }
        }
        "payment" | "order" => {
            if let Some(p) = &ev.payment {
                let order_id = p
                    .order_id
                    .clone()
                    .or_else(|| ev.order.as_ref().map(|o| o.id.clone()));
                let notes_type = CheckoutNotes::type_note(&p.notes)
                    .or_else(|| {
                        ev.order
                            .as_ref()
                            .and_then(|o| CheckoutNotes::type_note(&o.notes))
                    })
                    .map(str::to_owned);
                let purpose = match order_id {
                    // Subscription charges carry an invoice; subscription.charged records them.
                    Some(_) if p.invoice_id.is_some() => Purpose::Unlinked,
                    Some(order_id) => Purpose::Order {
                        order_id,
                        notes_type,
                    },
                    None => Purpose::Unlinked,
                };
                if purpose == Purpose::Unlinked {
                    out.push(Effect::Ignore {
                        reason: "payment of a subscription invoice or without an order".into(),
                    });
                } else {
                    out.push(Effect::Payment {
                        payment: p.clone(),
                        purpose,
                    });
                }
            }
        }
        "refund" => {
            if let (Some((_, payment_id, amount)), "refund.processed") =
                (&ev.refund, ev.name.as_str())
            {
                match &ev.payment {
                    // An order payment: its (refunded) state goes through the order's path,
                    // which withdraws what it bought.
                    Some(p) if p.order_id.is_some() && p.invoice_id.is_none() => {
                        out.push(Effect::Payment {
                            payment: p.clone(),
                            purpose: Purpose::Order {
                                order_id: p.order_id.clone().unwrap_or_default(),
                                notes_type: CheckoutNotes::type_note(&p.notes).map(str::to_owned),
                            },
                        })
                    }
                    p => out.push(Effect::Refund {
                        payment_id: payment_id.clone(),
                        amount: *amount,
                        payment: p.clone(),
                    }),
                }
            }
        }
        _ => {}
    }
    if out.is_empty() {
        out.push(Effect::Ignore {
            reason: format!("{} needs no action", ev.name),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn payment(order: Option<&str>, ty: &str) -> PaymentSnapshot {
        PaymentSnapshot {
            id: "pay_1".into(),
            amount: 34800,
            currency: "INR".into(),
            status: PaymentStatus::Authorized,
            order_id: order.map(Into::into),
            invoice_id: None,
            amount_refunded: 0,
            notes: [("type".to_owned(), ty.to_owned())].into_iter().collect(),
            email: None,
            contact: None,
            created_at: Utc.timestamp_opt(1616943771, 0).unwrap(),
            fee: None,
            instrument: None,
        }
    }

    fn event(name: &str, p: Option<PaymentSnapshot>) -> Event {
        Event {
            name: name.into(),
            created_at: Utc.timestamp_opt(1616943771, 0).unwrap(),
            subscription: None,
            subscription_notes: BTreeMap::new(),
            payment: p,
            order: None,
            refund: None,
            route: None,
        }
    }

    #[test]
    fn order_payments_route_by_notes_type() {
        for ty in ["cheer", "subscription", "commission"] {
            let fx = plan_event(&event(
                "payment.authorized",
                Some(payment(Some("order_1"), ty)),
            ));
            assert_eq!(fx.len(), 1);
            match &fx[0] {
                Effect::Payment {
                    purpose:
                        Purpose::Order {
                            order_id,
                            notes_type,
                        },
                    payment,
                } => {
                    assert_eq!(order_id, "order_1");
                    assert_eq!(notes_type.as_deref(), Some(ty));
                    assert_eq!(payment.amount, 34800, "amount is never scaled");
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn invoice_payments_and_unknown_events_are_ignored() {
        let mut p = payment(Some("order_1"), "subscription");
        p.invoice_id = Some("inv_1".into());
        assert!(matches!(
            plan_event(&event("payment.captured", Some(p)))[0],
            Effect::Ignore { .. }
        ));
        assert!(matches!(
            plan_event(&event("invoice.paid", None))[0],
            Effect::Ignore { .. }
        ));
    }

    #[test]
    fn payment_status_rank_only_moves_forward() {
        assert!(PaymentStatus::Captured.rank() > PaymentStatus::Authorized.rank());
        assert!(PaymentStatus::Refunded.rank() > PaymentStatus::Captured.rank());
        assert!(PaymentStatus::Authorized.is_paid() && !PaymentStatus::Failed.is_paid());
    }
}

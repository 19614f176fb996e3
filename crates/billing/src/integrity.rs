//! Money correctness: is a pending checkout still what its tier sells, and does a payment match
//! what was asked. Pure rules over this crate's types; the service ([`crate::apply`]) and the
//! checkout flows of the app decide with them.
//!
//! - A pending checkout (a recurring membership not yet paid, or a one-time order) is made at
//!   the tier's price and currency of that moment. It stays *current* while the tier exists, is
//!   active and still has that price and currency ([`staleness`]); `/subscriptions/create`
//!   reuses only a current one ([`reusable`]) and replaces the others.
//! - A payment is *accepted* (it grants what it paid for) only when it matches what was asked
//!   — same amount, same currency ([`mismatch`]) — and its checkout is current ([`judge`]).
//!   A mismatched payment is flagged for an operator and grants nothing; a payment of a stale
//!   checkout grants nothing and is refunded (once: the store records one refund per payment).
//! - The rules apply when a checkout is first paid. A membership or order accepted earlier is
//!   never re-judged when its tier changes later (price changes apply to new members only;
//!   deactivating a tier stops new memberships, not existing ones).
use crate::events::PaymentSnapshot;
use crate::ports::TierRef;

/// What a checkout asked for: an amount in minor units and a currency code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asked<'a> {
    pub amount: i64,
    pub currency: &'a str,
    /// The billing period the amount is for (one-time orders: `Monthly`, the tier's `price`).
    pub period: crate::BillingPeriod,
}

/// Why a pending checkout no longer sells what its tier sells now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stale {
    /// The tier was deleted (or never existed here).
    TierGone,
    /// The creator deactivated the tier: it accepts no new members.
    TierInactive,
    /// The tier is no longer sold per the checkout's period (its annual price was removed).
    PeriodWithdrawn(crate::BillingPeriod),
    /// The tier's price or currency changed since the checkout was made.
    PriceChanged {
        asked_amount: i64,
        asked_currency: String,
        amount: i64,
        currency: String,
    },
}

impl Stale {
    /// A short line for records and notifications.
    pub fn describe(&self) -> String {
        match self {
            Stale::TierGone => "the tier no longer exists".into(),
            Stale::TierInactive => "the tier accepts no new members".into(),
            Stale::PeriodWithdrawn(p) => format!("the tier is no longer sold {}", p.as_str()),
            Stale::PriceChanged {
                asked_amount,
                asked_currency,
                amount,
                currency,
            } => format!(
                "the tier's price changed from {asked_amount} {asked_currency} to {amount} {currency}"
            ),
        }
    }
}

fn same_currency(a: &str, b: &str) -> bool {
    a.trim().eq_ignore_ascii_case(b.trim())
}

/// Whether a checkout made for `asked` is stale against the tier as it is now (`None` = the
/// tier is gone).
pub fn staleness(asked: &Asked<'_>, tier: Option<&TierRef>) -> Option<Stale> {
    let Some(tier) = tier else {
        return Some(Stale::TierGone);
    };
    if !tier.is_active {
        return Some(Stale::TierInactive);
    }
    let Some(price) = tier.price_for(asked.period) else {
        return Some(Stale::PeriodWithdrawn(asked.period));
    };
    if price != asked.amount || !same_currency(&tier.currency, asked.currency) {
        return Some(Stale::PriceChanged {
            asked_amount: asked.amount,
            asked_currency: asked.currency.to_owned(),
            amount: price,
            currency: tier.currency.clone(),
        });
    }
    None
}

/// Whether a pending checkout made for `asked` may be handed out again for `tier` now: the
/// tier is active and its price and currency are unchanged.
pub fn reusable(asked: &Asked<'_>, tier: &TierRef) -> bool {
    staleness(asked, Some(tier)).is_none()
}

/// A payment that does not match what was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    pub expected_amount: i64,
    pub expected_currency: String,
    pub actual_amount: i64,
    pub actual_currency: String,
}

impl Mismatch {
    pub fn describe(&self) -> String {
        format!(
            "paid {} {} where {} {} was asked",
            self.actual_amount, self.actual_currency, self.expected_amount, self.expected_currency
        )
    }
}

/// Compares a payment's amount and currency with what was asked (currency codes compare
/// case-insensitively; amounts exactly, in minor units).
pub fn mismatch(asked: &Asked<'_>, amount: i64, currency: &str) -> Option<Mismatch> {
    if amount == asked.amount && same_currency(currency, asked.currency) {
        return None;
    }
    Some(Mismatch {
        expected_amount: asked.amount,
        expected_currency: asked.currency.to_owned(),
        actual_amount: amount,
        actual_currency: currency.to_owned(),
    })
}

/// What to do with a payment that is the first payment of its checkout.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Verdict {
    /// Flag for an operator: the payment is not what was asked.
    pub mismatch: Option<Mismatch>,
    /// Refund it: the checkout's tier is no longer sold at that price.
    pub stale: Option<Stale>,
}

impl Verdict {
    /// Only a matching payment of a current checkout grants anything.
    pub fn grants(&self) -> bool {
        self.mismatch.is_none() && self.stale.is_none()
    }
}

/// Judges the first payment of a checkout that asked for `asked`. `tier` is the tier now:
/// `Some` for tier purchases (checked for staleness), `None` with `sells_tier == false` for
/// cheers and commissions (only the amount is checked).
pub fn judge(
    asked: &Asked<'_>,
    sells_tier: bool,
    tier: Option<&TierRef>,
    payment: &PaymentSnapshot,
) -> Verdict {
    Verdict {
        mismatch: mismatch(asked, payment.amount, &payment.currency),
        stale: if sells_tier {
            staleness(asked, tier)
        } else {
            None
        },
    }
}

/// Why a membership was voided by us (it gives no access, whatever Razorpay says later).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VoidReason {
    /// Its first payment came for a tier no longer sold at its price (the payment is refunded).
    StaleCheckout,
    /// A newer checkout replaced it at `/subscriptions/create` after the tier changed (any
    /// payment that still comes is refunded).
    Replaced,
    /// A charge did not match the membership's price (flagged for an operator).
    AmountMismatch,
    /// Its trial was authorised with a card or UPI ID that another membership of the creator
    /// had a trial with ([`crate::trials`]); the authorisation is refunded by Razorpay itself.
    TrialUsed,
}

impl VoidReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::StaleCheckout => "stale_checkout",
            Self::Replaced => "replaced",
            Self::AmountMismatch => "amount_mismatch",
            Self::TrialUsed => "trial_used",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "stale_checkout" => Self::StaleCheckout,
            "replaced" => Self::Replaced,
            "amount_mismatch" => Self::AmountMismatch,
            "trial_used" => Self::TrialUsed,
            _ => return None,
        })
    }
    /// Payments of a membership voided for this reason are refunded (money for nothing).
    pub fn refunds_payments(self) -> bool {
        matches!(self, Self::StaleCheckout | Self::Replaced)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::PaymentStatus;
    use chrono::{TimeZone, Utc};

    fn tier(price: i64, currency: &str, active: bool) -> TierRef {
        TierRef {
            id: 7,
            creator_id: 1,
            price,
            annual_price: None,
            currency: currency.into(),
            is_active: active,
        }
    }

    fn asked(amount: i64, currency: &str) -> Asked<'_> {
        Asked {
            amount,
            currency,
            period: crate::BillingPeriod::Monthly,
        }
    }

    fn payment(amount: i64, currency: &str) -> PaymentSnapshot {
        PaymentSnapshot {
            id: "pay_1".into(),
            amount,
            currency: currency.into(),
            status: PaymentStatus::Captured,
            order_id: Some("order_1".into()),
            invoice_id: None,
            amount_refunded: 0,
            notes: Default::default(),
            email: None,
            contact: None,
            created_at: Utc.timestamp_opt(1_790_000_000, 0).unwrap(),
            fee: None,
            instrument: None,
        }
    }

    #[test]
    fn a_pending_checkout_is_reused_only_while_the_tier_sells_it_unchanged() {
        let a = asked(30_000, "INR");
        assert!(reusable(&a, &tier(30_000, "INR", true)));
        assert!(
            reusable(&a, &tier(30_000, "inr", true)),
            "codes ignore case"
        );
        assert!(!reusable(&a, &tier(40_000, "INR", true)), "price changed");
        assert!(
            !reusable(&a, &tier(30_000, "USD", true)),
            "currency changed"
        );
        assert!(!reusable(&a, &tier(30_000, "INR", false)), "deactivated");
    }

    #[test]
    fn staleness_says_why() {
        let a = asked(30_000, "INR");
        assert_eq!(staleness(&a, None), Some(Stale::TierGone));
        assert_eq!(
            staleness(&a, Some(&tier(30_000, "INR", false))),
            Some(Stale::TierInactive)
        );
        let s = staleness(&a, Some(&tier(40_000, "INR", true))).unwrap();
        assert_eq!(
            s.describe(),
            "the tier's price changed from 30000 INR to 40000 INR"
        );
        assert_eq!(staleness(&a, Some(&tier(30_000, "INR", true))), None);
    }

    #[test]
    fn a_yearly_checkout_is_judged_against_the_annual_price() {
        let yearly = Asked {
            amount: 300_000,
            currency: "INR",
            period: crate::BillingPeriod::Yearly,
        };
        let mut t = tier(30_000, "INR", true);
        assert_eq!(
            staleness(&yearly, Some(&t)),
            Some(Stale::PeriodWithdrawn(crate::BillingPeriod::Yearly)),
            "monthly-only tier"
        );
        t.annual_price = Some(300_000);
        assert_eq!(staleness(&yearly, Some(&t)), None);
        assert!(reusable(&asked(30_000, "INR"), &t), "monthly unaffected");
        t.annual_price = Some(320_000);
        assert!(matches!(
            staleness(&yearly, Some(&t)),
            Some(Stale::PriceChanged {
                amount: 320_000,
                ..
            })
        ));
    }

    #[test]
    fn a_payment_matches_only_the_exact_amount_and_currency() {
        let a = asked(30_000, "INR");
        assert_eq!(mismatch(&a, 30_000, "INR"), None);
        assert_eq!(mismatch(&a, 30_000, "inr"), None);
        let m = mismatch(&a, 29_999, "INR").unwrap();
        assert_eq!(
            (
                m.expected_amount,
                m.actual_amount,
                m.expected_currency.as_str()
            ),
            (30_000, 29_999, "INR")
        );
        assert_eq!(m.describe(), "paid 29999 INR where 30000 INR was asked");
        assert!(
            mismatch(&a, 30_000, "USD").is_some(),
            "same digits, other money"
        );
        assert!(mismatch(&a, 3_000_000, "INR").is_some(), "never scaled");
    }

    #[test]
    fn verdicts() {
        let a = asked(30_000, "INR");
        let ok = judge(
            &a,
            true,
            Some(&tier(30_000, "INR", true)),
            &payment(30_000, "INR"),
        );
        assert!(ok.grants());
        let stale = judge(
            &a,
            true,
            Some(&tier(30_000, "INR", false)),
            &payment(30_000, "INR"),
        );
        assert!(!stale.grants() && stale.stale.is_some() && stale.mismatch.is_none());
        let both = judge(&a, true, None, &payment(100, "INR"));
        assert!(both.stale.is_some() && both.mismatch.is_some());
        // Cheers and commissions: only the amount counts.
        let cheer = judge(&a, false, None, &payment(30_000, "INR"));
        assert!(cheer.grants());
        assert!(!judge(&a, false, None, &payment(30_000, "USD")).grants());
    }

    #[test]
    fn void_reasons_round_trip_and_say_what_is_refunded() {
        for r in [
            VoidReason::StaleCheckout,
            VoidReason::Replaced,
            VoidReason::AmountMismatch,
        ] {
            assert_eq!(VoidReason::parse(r.as_str()), Some(r));
        }
        assert!(VoidReason::StaleCheckout.refunds_payments());
        assert!(VoidReason::Replaced.refunds_payments());
        assert!(!VoidReason::AmountMismatch.refunds_payments());
        assert_eq!(VoidReason::parse("nope"), None);
    }
}

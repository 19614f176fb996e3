//! Input rules of the checkout endpoints.
use crate::BillingError;
use oasis_kernel::Currency;

/// Longest cheer message, in characters.
pub const MAX_MESSAGE_CHARS: usize = 1000;
/// Longest cheer display name, in characters.
pub const MAX_NAME_CHARS: usize = 100;

/// The billing period a recurring checkout asks for: `monthly` (the default when absent) or
/// `yearly`.
pub fn parse_period(v: Option<&str>) -> Result<crate::BillingPeriod, BillingError> {
    match v.map(str::trim) {
        None | Some("") => Ok(crate::BillingPeriod::Monthly),
        Some(p) => crate::BillingPeriod::parse(p).ok_or_else(|| {
            BillingError::invalid("period", format!("\"{p}\" is not a valid choice."))
        }),
    }
}

/// A validated cheer (tip with a message) to a creator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cheer {
    pub amount: i64,
    pub currency: Currency,
    pub name: String,
    pub message: String,
}

/// Validates a cheer: integer minor units within the currency's bounds (never scaled),
/// message at most 1000 characters.
pub fn validate_cheer(
    amount: i64,
    currency: &str,
    name: &str,
    message: &str,
) -> Result<Cheer, BillingError> {
    let currency: Currency = currency
        .parse()
        .map_err(|e: oasis_kernel::ParseCurrencyError| {
            BillingError::invalid("currency", e.to_string())
        })?;
    if amount < currency.min_charge() || amount > currency.max_charge() {
        return Err(BillingError::invalid(
            "amount",
            format!(
                "Ensure this value is between {} and {} (minor units of {}).",
                currency.min_charge(),
                currency.max_charge(),
                currency
            ),
        ));
    }
    check_cheer_message(message)?;
    check_cheer_name(name)?;
    Ok(Cheer {
        amount,
        currency,
        name: name.trim().to_owned(),
        message: message.to_owned(),
    })
}

/// A cheer's message: at most [`MAX_MESSAGE_CHARS`] characters (the one place of this rule
/// and its message, for starting and for confirming a cheer).
pub fn check_cheer_message(message: &str) -> Result<(), BillingError> {
    if message.chars().count() > MAX_MESSAGE_CHARS {
        return Err(BillingError::invalid(
            "message",
            format!("Ensure this field has no more than {MAX_MESSAGE_CHARS} characters."),
        ));
    }
    Ok(())
}

/// A cheer's display name: at most [`MAX_NAME_CHARS`] characters.
pub fn check_cheer_name(name: &str) -> Result<(), BillingError> {
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(BillingError::invalid(
            "name",
            format!("Ensure this field has no more than {MAX_NAME_CHARS} characters."),
        ));
    }
    Ok(())
}

/// The public name and message a cheer's Checkout confirmation gives (`save_order`): checked
/// like [`validate_cheer`]'s; a missing or blank one keeps what `create_order` stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheerText {
    /// Trimmed; `None` when absent or blank.
    pub name: Option<String>,
    /// `None` when absent or empty.
    pub message: Option<String>,
}

impl CheerText {
    pub fn new(name: Option<&str>, message: Option<&str>) -> Result<Self, BillingError> {
        if let Some(m) = message {
            check_cheer_message(m)?;
        }
        if let Some(n) = name {
            check_cheer_name(n)?;
        }
        Ok(Self {
            name: name
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned),
            message: message.filter(|s| !s.is_empty()).map(str::to_owned),
        })
    }
}

/// The kinds of Razorpay objects whose ids a Checkout callback carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RazorpayIdKind {
    Payment,
    Order,
    Subscription,
}

impl RazorpayIdKind {
    /// The id prefix Razorpay gives objects of this kind.
    pub fn prefix(self) -> &'static str {
        match self {
            Self::Payment => "pay_",
            Self::Order => "order_",
            Self::Subscription => "sub_",
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Self::Payment => "payment",
            Self::Order => "order",
            Self::Subscription => "subscription",
        }
    }
}

/// `Ok` when `id` names a Razorpay object of `kind`: its prefix, then letters and digits.
///
/// Order signatures sign `order_id|payment_id` and subscription signatures
/// `payment_id|subscription_id`: one format, so without this check a subscription's signature
/// verifies as an order's with the ids swapped. Checked before any signature.
pub fn check_razorpay_id(
    field: &'static str,
    id: &str,
    kind: RazorpayIdKind,
) -> Result<(), BillingError> {
    let well_formed = id
        .strip_prefix(kind.prefix())
        .is_some_and(|rest| !rest.is_empty() && rest.chars().all(|c| c.is_ascii_alphanumeric()));
    if well_formed {
        Ok(())
    } else {
        Err(BillingError::invalid(
            field,
            format!(
                "Not a Razorpay {} id (expected {}…).",
                kind.noun(),
                kind.prefix()
            ),
        ))
    }
}

/// `end_type`: 1 = cancel at cycle end, 0 = now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndType {
    Now,
    CycleEnd,
}

impl EndType {
    pub fn parse(v: i64) -> Result<Self, BillingError> {
        match v {
            0 => Ok(Self::Now),
            1 => Ok(Self::CycleEnd),
            _ => Err(BillingError::invalid(
                "end_type",
                "Must be 0 (now) or 1 (at cycle end).",
            )),
        }
    }
}

/// Guest checkout payment types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuestPaymentType {
    Recurring,
    OneTime,
    Commission,
}

impl GuestPaymentType {
    pub fn parse(s: &str) -> Result<Self, BillingError> {
        match s {
            "recurring" => Ok(Self::Recurring),
            "oneTime" => Ok(Self::OneTime),
            "commission" => Ok(Self::Commission),
            _ => Err(BillingError::invalid(
                "payment_type",
                "Must be \"recurring\", \"oneTime\" or \"commission\".",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn razorpay_ids_must_carry_their_kind_prefix() {
        use RazorpayIdKind::*;
        assert!(check_razorpay_id("f", "pay_29QQoUBi66xm2f", Payment).is_ok());
        assert!(check_razorpay_id("f", "order_AAAAAAAAAAAAAA", Order).is_ok());
        assert!(check_razorpay_id("f", "sub_AAAAAAAAAAAAAA", Subscription).is_ok());
        for (id, kind) in [
            ("sub_AAAAAAAAAAAAAA", Order),
            ("pay_AAAAAAAAAAAAAA", Order),
            ("order_AAAAAAAAAAAAAA", Payment),
            ("pay_", Payment),
            ("pay_AA-A", Payment),
            ("", Subscription),
        ] {
            match check_razorpay_id("f", id, kind) {
                Err(BillingError::Invalid { field: "f", .. }) => {}
                other => panic!("{id} as {kind:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn cheer_amounts_are_bounded_per_currency_and_never_scaled() {
        assert_eq!(validate_cheer(100, "INR", "a", "b").unwrap().amount, 100);
        assert!(validate_cheer(99, "INR", "a", "b").is_err());
        assert!(validate_cheer(50_000_001, "INR", "a", "b").is_err());
        assert!(validate_cheer(1_000_001, "USD", "a", "b").is_err());
        assert!(validate_cheer(500, "EUR", "a", "b").is_err());
    }

    #[test]
    fn cheer_message_is_at_most_1000_chars() {
        assert!(validate_cheer(500, "INR", "a", &"é".repeat(1000)).is_ok());
        assert!(validate_cheer(500, "INR", "a", &"x".repeat(1001)).is_err());
    }

    #[test]
    fn a_confirmed_cheer_text_has_the_limits_of_a_new_cheer() {
        let ok = CheerText::new(Some("  Ann "), Some(&"é".repeat(1000))).unwrap();
        assert_eq!(ok.name.as_deref(), Some("Ann"));
        assert_eq!(ok.message.map(|m| m.chars().count()), Some(1000));
        assert_eq!(
            CheerText::new(Some("  "), Some("")).unwrap(),
            CheerText::default()
        );
        for (name, message, field) in [
            (None, Some("x".repeat(1001)), "message"),
            (Some("n".repeat(101)), None, "name"),
        ] {
            let err = CheerText::new(name.as_deref(), message.as_deref()).unwrap_err();
            let via_start = validate_cheer(
                500,
                "INR",
                name.as_deref().unwrap_or(""),
                message.as_deref().unwrap_or(""),
            )
            .unwrap_err();
            match (err, via_start) {
                (
                    BillingError::Invalid { field: f, message },
                    BillingError::Invalid {
                        field: f2,
                        message: m2,
                    },
                ) => {
                    assert_eq!((f, f2), (field, field));
                    assert_eq!(message, m2);
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn end_types() {
        assert_eq!(EndType::parse(1).unwrap(), EndType::CycleEnd);
        assert_eq!(EndType::parse(0).unwrap(), EndType::Now);
        assert!(EndType::parse(2).is_err());
    }
}

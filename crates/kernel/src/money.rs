use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Currencies Oasis accepts. Amounts are always integer minor units (paise, cents).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Currency {
    #[serde(rename = "INR")]
    Inr,
    #[serde(rename = "USD")]
    Usd,
}

impl Currency {
    pub const ALL: [Currency; 2] = [Currency::Inr, Currency::Usd];

    pub fn code(self) -> &'static str {
        match self {
            Currency::Inr => "INR",
            Currency::Usd => "USD",
        }
    }
    /// Smallest amount Razorpay charges (100 minor units in both currencies).
    pub fn min_charge(self) -> i64 {
        100
    }
    /// Upper bound for a single payment we accept, in minor units.
    pub fn max_charge(self) -> i64 {
        match self {
            Currency::Inr => 50_000_000, // ₹5,00,000
            Currency::Usd => 1_000_000,  // $10,000
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("\"{0}\" is not a supported currency (INR or USD).")]
pub struct ParseCurrencyError(pub String);

impl FromStr for Currency {
    type Err = ParseCurrencyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_uppercase().as_str() {
            "INR" => Ok(Currency::Inr),
            "USD" => Ok(Currency::Usd),
            _ => Err(ParseCurrencyError(s.to_owned())),
        }
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// An amount of money: integer minor units and a currency. Never a float.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    pub amount: i64,
    pub currency: Currency,
}

impl Money {
    pub fn new(amount: i64, currency: Currency) -> Self {
        Self { amount, currency }
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.amount, self.currency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn currency_parses_case_insensitively_and_rejects_others() {
        assert_eq!("inr".parse::<Currency>(), Ok(Currency::Inr));
        assert_eq!("USD".parse::<Currency>(), Ok(Currency::Usd));
        assert!("EUR".parse::<Currency>().is_err());
    }
}

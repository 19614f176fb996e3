//! One free trial per card and per UPI ID (issue 14), beside the rule of one per fan and
//! creator ([`crate::ports::CheckoutStore::start_trial`]).
//!
//! Razorpay reveals the instrument of a payment in two fields of the payment entity: `card_id`
//! (method `card`/`emi`; a recurring mandate's card is tokenised, and Razorpay keeps one card
//! entity per saved card) and `vpa` (method `upi`, the UPI ID itself). A trial's subscription is
//! authorised by a token payment (no invoice, refunded at once); that payment's instrument is
//! claimed for the creator. When another membership of the creator claimed it first, the
//! trial is refused: the membership is voided ([`crate::integrity::VoidReason::TrialUsed`]),
//! its subscription cancelled at Razorpay, and the fan told to subscribe again (no trial).
//!
//! Only a keyed fingerprint is kept ([`Instrument`]: HMAC-SHA-256 under a key derived from the
//! server's secret), never the card id or UPI ID: the table says "this creator saw this
//! instrument" and nothing a reader could use elsewhere.
use ring::{hkdf, hmac};

/// A payment instrument as a keyed fingerprint (32 bytes). Its `Debug` shows nothing.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instrument([u8; 32]);

impl std::fmt::Debug for Instrument {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Instrument(..)")
    }
}

impl Instrument {
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
    /// A stored fingerprint (`None`: not 32 bytes).
    pub fn from_bytes(b: &[u8]) -> Option<Self> {
        Some(Self(b.try_into().ok()?))
    }
}

struct Len32;
impl hkdf::KeyType for Len32 {
    fn len(&self) -> usize {
        32
    }
}

/// Makes [`Instrument`]s from what Razorpay says of a payment.
#[derive(Clone)]
pub struct InstrumentKey(hmac::Key);

impl std::fmt::Debug for InstrumentKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InstrumentKey(..)")
    }
}

impl InstrumentKey {
    /// Derives the key from the server's secret root key.
    pub fn new(secret_key: &[u8]) -> Self {
        let salt = hkdf::Salt::new(hkdf::HKDF_SHA256, b"oasis/billing/trial-instruments");
        let mut bytes = [0u8; 32];
        salt.extract(secret_key)
            .expand(&[b"hmac-sha256 v1"], Len32)
            .and_then(|okm| okm.fill(&mut bytes))
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        Self(hmac::Key::new(hmac::HMAC_SHA256, &bytes))
    }

    /// The instrument of a payment: its card (`card_id`) for card and EMI payments, its UPI ID
    /// (`vpa`, case-insensitive) for UPI; `None` for other methods or when Razorpay did not say.
    pub fn of_payment(
        &self,
        method: Option<&str>,
        card_id: Option<&str>,
        vpa: Option<&str>,
    ) -> Option<Instrument> {
        fn nonempty(s: Option<&str>) -> Option<&str> {
            s.map(str::trim).filter(|s| !s.is_empty())
        }
        let message = match method {
            Some("card" | "emi") => format!("card:{}", nonempty(card_id)?),
            Some("upi") => format!("upi:{}", nonempty(vpa)?.to_lowercase()),
            _ => return None,
        };
        let tag = hmac::sign(&self.0, message.as_bytes());
        Instrument::from_bytes(tag.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_card_or_upi_id_gives_one_fingerprint_under_one_key() {
        let k = InstrumentKey::new(b"root secret");
        let card = k.of_payment(Some("card"), Some("card_ABC"), None).unwrap();
        assert_eq!(
            k.of_payment(Some("emi"), Some(" card_ABC "), None),
            Some(card.clone())
        );
        assert_ne!(
            k.of_payment(Some("card"), Some("card_ABD"), None),
            Some(card.clone())
        );
        let upi = k.of_payment(Some("upi"), None, Some("Fan@OKAXIS")).unwrap();
        assert_eq!(
            k.of_payment(Some("upi"), None, Some("fan@okaxis")),
            Some(upi.clone())
        );
        assert_ne!(upi, card);
        // Nothing to go on: no fingerprint.
        assert_eq!(k.of_payment(Some("netbanking"), None, None), None);
        assert_eq!(k.of_payment(Some("upi"), None, Some("  ")), None);
        assert_eq!(k.of_payment(None, Some("card_ABC"), None), None);
        // Another server secret, another fingerprint; and it never prints.
        let other = InstrumentKey::new(b"another secret");
        assert_ne!(
            other.of_payment(Some("card"), Some("card_ABC"), None),
            Some(card.clone())
        );
        assert_eq!(format!("{card:?}"), "Instrument(..)");
    }
}

//! Creators' bank details: validation, masking and encryption at rest (AES-256-GCM, key from
//! HKDF-SHA256 over `OASIS_SECRET_KEY`, the user id bound as associated data so a ciphertext
//! cannot be moved to another account).
use crate::BillingError;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::hkdf;
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};

/// Plain bank details. `Debug` masks the account number (never log it).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BankDetails {
    pub ifsc_code: String,
    pub account_number: String,
    pub bank_name: String,
    pub account_holder_name: String,
    /// The linked account's contact phone (10 digits, an optional `+91`).
    #[serde(default)]
    pub contact_phone: String,
    /// The creator's legal name (4 to 200 characters).
    #[serde(default)]
    pub legal_name: String,
    /// Razorpay's business type (`individual`, `proprietorship`, …).
    #[serde(default)]
    pub business_type: String,
}

/// The business types a Route linked account can have.
pub const BUSINESS_TYPES: [&str; 8] = [
    "individual",
    "proprietorship",
    "partnership",
    "private_limited",
    "public_limited",
    "llp",
    "ngo",
    "not_yet_registered",
];

impl std::fmt::Debug for BankDetails {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BankDetails")
            .field("ifsc_code", &self.ifsc_code)
            .field("account_number", &self.masked_account_number())
            .field("bank_name", &self.bank_name)
            .field("account_holder_name", &self.account_holder_name)
            .field("legal_name", &self.legal_name)
            .field("business_type", &self.business_type)
            .finish_non_exhaustive()
    }
}

fn is_ifsc(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 11
        && b[..4].iter().all(u8::is_ascii_uppercase)
        && b[4] == b'0'
        && b[5..]
            .iter()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

impl BankDetails {
    /// Validates and normalises (trims; IFSC upper-cased). Errors name the seed's field names.
    pub fn new(
        ifsc_code: &str,
        account_number: &str,
        bank_name: &str,
        account_holder_name: &str,
        contact_phone: &str,
        legal_name: &str,
        business_type: &str,
    ) -> Result<Self, oasis_kernel::FieldErrors> {
        let mut errs = oasis_kernel::FieldErrors::new();
        let ifsc = ifsc_code.trim().to_ascii_uppercase();
        if !is_ifsc(&ifsc) {
            errs.add("ifscCode", "Enter a valid IFSC code (e.g. HDFC0001234).");
        }
        let acc = account_number.trim();
        if !(9..=18).contains(&acc.len()) || !acc.bytes().all(|c| c.is_ascii_digit()) {
            errs.add("accountNumber", "Enter 9 to 18 digits.");
        }
        let bank = bank_name.trim();
        if bank.is_empty() || bank.chars().count() > 100 {
            errs.add(
                "BankName",
                "Enter the bank's name (at most 100 characters).",
            );
        }
        let holder = account_holder_name.trim();
        if holder.is_empty() || holder.chars().count() > 100 {
            errs.add(
                "accountHolderName",
                "Enter the account holder's name (at most 100 characters).",
            );
        }
        let phone = contact_phone.trim();
        let digits = phone.strip_prefix("+91").unwrap_or(phone);
        if digits.len() != 10 || !digits.bytes().all(|c| c.is_ascii_digit()) {
            errs.add("contactPhone", "Enter a 10-digit phone number.");
        }
        let legal = legal_name.trim();
        if !(4..=200).contains(&legal.chars().count()) {
            errs.add("legalName", "Enter the legal name (4 to 200 characters).");
        }
        let btype = business_type.trim().to_ascii_lowercase();
        if !BUSINESS_TYPES.contains(&btype.as_str()) {
            errs.add(
                "businessType",
                format!("Choose one of: {}.", BUSINESS_TYPES.join(", ")),
            );
        }
        errs.into_result().map(|_| Self {
            ifsc_code: ifsc,
            account_number: acc.to_owned(),
            bank_name: bank.to_owned(),
            account_holder_name: holder.to_owned(),
            contact_phone: digits.to_owned(),
            legal_name: legal.to_owned(),
            business_type: btype,
        })
    }

    /// `XXXXXX1234`: only the last 4 digits.
    pub fn masked_account_number(&self) -> String {
        let n = self.account_number.len();
        let keep = n.min(4);
        format!(
            "{}{}",
            "X".repeat(n - keep),
            &self.account_number[n - keep..]
        )
    }
}

/// Seals and opens bank details.
pub struct BankCipher {
    key: LessSafeKey,
    rng: SystemRandom,
}

/// Current key version stored with each ciphertext (for rotation).
pub const KEY_VERSION: i16 = 1;

struct Len32;
impl hkdf::KeyType for Len32 {
    fn len(&self) -> usize {
        32
    }
}

impl BankCipher {
    /// Derives the AES-256 key from the server's secret root key.
    pub fn new(secret_key: &[u8]) -> Self {
        let salt = hkdf::Salt::new(hkdf::HKDF_SHA256, b"oasis/billing/bank-details");
        let prk = salt.extract(secret_key);
        let mut bytes = [0u8; 32];
        prk.expand(&[b"aes-256-gcm v1"], Len32)
            .and_then(|okm| okm.fill(&mut bytes))
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        let key =
            LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &bytes).expect("32-byte AES-256 key"));
        Self {
            key,
            rng: SystemRandom::new(),
        }
    }

    /// Returns `(nonce, ciphertext+tag)`.
    pub fn seal(
        &self,
        user_id: i64,
        details: &BankDetails,
    ) -> Result<(Vec<u8>, Vec<u8>), BillingError> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng
            .fill(&mut nonce)
            .map_err(|_| BillingError::invalid("accountNumber", "Encryption unavailable."))?;
        let mut buf = serde_json::to_vec(details)
            .map_err(|e| BillingError::invalid("accountNumber", e.to_string()))?;
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(user_id.to_be_bytes()),
                &mut buf,
            )
            .map_err(|_| BillingError::invalid("accountNumber", "Encryption failed."))?;
        Ok((nonce.to_vec(), buf))
    }

    /// Opens a sealed record; `None` if it was tampered with, moved to another user, or sealed
    /// under another key.
    pub fn open(&self, user_id: i64, nonce: &[u8], ciphertext: &[u8]) -> Option<BankDetails> {
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut buf = ciphertext.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(user_id.to_be_bytes()), &mut buf)
            .ok()?;
        serde_json::from_slice(plain).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn details() -> BankDetails {
        BankDetails::new(
            "hdfc0001234",
            "123456789012",
            "HDFC Bank",
            "Asha Rao",
            "9000090000",
            "Asha Rao",
            "individual",
        )
        .unwrap()
    }

    #[test]
    fn validation_follows_the_formats() {
        assert_eq!(details().ifsc_code, "HDFC0001234");
        let e = BankDetails::new("HDFC1001234", "12345678", "", "", "12", "abc", "company")
            .unwrap_err();
        for f in [
            "ifscCode",
            "accountNumber",
            "BankName",
            "accountHolderName",
            "contactPhone",
            "legalName",
            "businessType",
        ] {
            assert!(e.has(f), "{f}");
        }
        let ok = |acc: &str| {
            BankDetails::new("HDFC0001234", acc, "B", "H", "9000090000", "Asha", "llp").is_ok()
        };
        assert!(!ok("1234567890123456789") && !ok("12345678a") && ok("123456789"));
    }

    #[test]
    fn masked_and_debug_never_show_the_number() {
        let d = details();
        assert_eq!(d.masked_account_number(), "XXXXXXXX9012");
        assert!(!format!("{d:?}").contains("123456789012"));
    }

    #[test]
    fn seal_open_round_trip_bound_to_user_and_key() {
        let c = BankCipher::new(b"test-secret-key-0123456789abcdef0123");
        let (nonce, ct) = c.seal(7, &details()).unwrap();
        assert!(!ct.windows(12).any(|w| w == b"123456789012"));
        assert_eq!(c.open(7, &nonce, &ct), Some(details()));
        assert_eq!(c.open(8, &nonce, &ct), None);
        let other = BankCipher::new(b"another-secret-key-0123456789abcdef");
        assert_eq!(other.open(7, &nonce, &ct), None);
    }
}

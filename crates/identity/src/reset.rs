//! Stateless password-reset tokens (Django's `PasswordResetTokenGenerator` idea): an HMAC over
//! the user id, the current password hash, the email and a timestamp. Setting a new password
//! changes the hash, so a token works once; it also expires after [`crate::RESET_TTL`].
use base64::Engine;
use chrono::{DateTime, Utc};

pub struct ResetSigner {
    key: ring::hmac::Key,
}

impl std::fmt::Debug for ResetSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ResetSigner")
    }
}

/// What the token is bound to.
#[derive(Debug, Clone, Copy)]
pub struct ResetSubject<'a> {
    pub user_id: i64,
    pub password_hash: Option<&'a str>,
    pub email: &'a str,
}

fn to_base36(mut n: u64) -> String {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    if n == 0 {
        return "0".into();
    }
    let mut out = Vec::new();
    while n > 0 {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

/// `uid` in the reset link: base64url of the decimal user id (as Django does).
pub fn encode_uid(user_id: i64) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(user_id.to_string())
}

pub fn decode_uid(uid: &str) -> Option<i64> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(uid.trim_end_matches('='))
        .ok()?;
    std::str::from_utf8(&bytes).ok()?.parse().ok()
}

impl ResetSigner {
    pub fn from_secret(secret: &[u8]) -> Self {
        let k = crate::secrets::derive_key(secret, "oasis-password-reset");
        Self {
            key: ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &k),
        }
    }

    fn message(s: ResetSubject<'_>, ts: u64) -> String {
        format!(
            "{}|{}|{}|{}",
            s.user_id,
            s.password_hash.unwrap_or(""),
            s.email.to_lowercase(),
            ts
        )
    }

    /// `<timestamp base36>-<hmac hex>`.
    pub fn make(&self, s: ResetSubject<'_>, now: DateTime<Utc>) -> String {
        let ts = now.timestamp().max(0) as u64;
        let tag = ring::hmac::sign(&self.key, Self::message(s, ts).as_bytes());
        format!("{}-{}", to_base36(ts), hex::encode(tag.as_ref()))
    }

    /// Constant-time check of signature, then age.
    pub fn check(&self, s: ResetSubject<'_>, token: &str, now: DateTime<Utc>) -> bool {
        let Some((ts36, tag_hex)) = token.split_once('-') else {
            return false;
        };
        let Ok(ts) = u64::from_str_radix(ts36, 36) else {
            return false;
        };
        let Ok(tag) = hex::decode(tag_hex) else {
            return false;
        };
        if ring::hmac::verify(&self.key, Self::message(s, ts).as_bytes(), &tag).is_err() {
            return false;
        }
        let age = now.timestamp() - ts as i64;
        (0..=crate::RESET_TTL.num_seconds()).contains(&age)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_once_per_password_and_expires() {
        let s = ResetSigner::from_secret(b"secret-secret-secret-secret-1234");
        let subj = ResetSubject {
            user_id: 5,
            password_hash: Some("$2b$04$abc"),
            email: "a@b.co",
        };
        let now = Utc::now();
        let t = s.make(subj, now);
        assert!(s.check(subj, &t, now));
        assert!(s.check(subj, &t, now + chrono::Duration::hours(23)));
        assert!(!s.check(subj, &t, now + chrono::Duration::hours(25)));
        let changed = ResetSubject {
            password_hash: Some("$2b$04$new"),
            ..subj
        };
        assert!(!s.check(changed, &t, now));
        let other_user = ResetSubject { user_id: 6, ..subj };
        assert!(!s.check(other_user, &t, now));
        assert!(!s.check(subj, "garbage", now));
        assert!(!s.check(subj, "zz-zz", now));
    }

    #[test]
    fn uid_round_trip() {
        assert_eq!(encode_uid(1), "MQ");
        assert_eq!(decode_uid("MQ"), Some(1));
        assert_eq!(decode_uid(&encode_uid(123456)), Some(123456));
        assert_eq!(decode_uid("!!"), None);
    }
}

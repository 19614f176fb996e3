//! simplejwt-compatible JSON Web Tokens: HS256, claims `token_type`, `exp`, `iat`, `jti`,
//! `user_id`, plus `epoch` (the account's session epoch when issued; absent = 0). The signing key is derived from the server secret (HMAC-SHA256(secret, "oasis-jwt")).
use crate::IdentityError;
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenType {
    Access,
    Refresh,
}

impl TokenType {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenType::Access => "access",
            TokenType::Refresh => "refresh",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub token_type: String,
    pub exp: i64,
    pub iat: i64,
    pub jti: String,
    pub user_id: i64,
    /// The account's session epoch at issue ([`crate::User::session_epoch`]). Left out while
    /// 0, so an account whose sessions were never ended gets exactly simplejwt's claims.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub epoch: i64,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

impl Claims {
    pub fn expires_at(&self) -> DateTime<Utc> {
        DateTime::from_timestamp(self.exp, 0).unwrap_or(DateTime::<Utc>::MIN_UTC)
    }
}

/// Signing keys and lifetimes.
#[derive(Clone)]
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    pub access_ttl: chrono::Duration,
    pub refresh_ttl: chrono::Duration,
}

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtKeys")
            .field("access_ttl", &self.access_ttl)
            .field("refresh_ttl", &self.refresh_ttl)
            .finish_non_exhaustive()
    }
}

/// An issued access/refresh pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenPair {
    pub access: String,
    pub refresh: String,
    pub refresh_claims: Claims,
}

impl JwtKeys {
    pub fn from_secret(secret: &[u8], access_ttl_secs: i64, refresh_ttl_secs: i64) -> Self {
        let key = crate::secrets::derive_key(secret, "oasis-jwt");
        Self {
            encoding: EncodingKey::from_secret(&key),
            decoding: DecodingKey::from_secret(&key),
            access_ttl: chrono::Duration::seconds(access_ttl_secs),
            refresh_ttl: chrono::Duration::seconds(refresh_ttl_secs),
        }
    }

    /// Signs a token of `kind` for `user_id` under session epoch `epoch`, issued at `now`.
    pub fn issue(
        &self,
        user_id: i64,
        epoch: i64,
        kind: TokenType,
        now: DateTime<Utc>,
    ) -> (String, Claims) {
        let ttl = match kind {
            TokenType::Access => self.access_ttl,
            TokenType::Refresh => self.refresh_ttl,
        };
        let claims = Claims {
            token_type: kind.as_str().to_owned(),
            exp: (now + ttl).timestamp(),
            iat: now.timestamp(),
            jti: crate::secrets::new_jti(),
            user_id,
            epoch,
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            // HS256 with a byte key cannot fail to sign; serialization of plain fields neither.
            .unwrap_or_default();
        (token, claims)
    }

    /// A fresh access + refresh pair.
    pub fn pair(&self, user_id: i64, epoch: i64, now: DateTime<Utc>) -> TokenPair {
        let (access, _) = self.issue(user_id, epoch, TokenType::Access, now);
        let (refresh, refresh_claims) = self.issue(user_id, epoch, TokenType::Refresh, now);
        TokenPair {
            access,
            refresh,
            refresh_claims,
        }
    }

    /// Checks signature (HS256 only: `none` and every other algorithm are refused), expiry
    /// against `now` (no leeway) and, when given, the token type.
    pub fn decode(
        &self,
        token: &str,
        expected: Option<TokenType>,
        now: DateTime<Utc>,
    ) -> Result<Claims, IdentityError> {
        let mut v = Validation::new(Algorithm::HS256);
        v.validate_exp = false;
        v.validate_nbf = false;
        v.validate_aud = false;
        v.leeway = 0;
        v.required_spec_claims = ["exp".to_owned()].into_iter().collect();
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &v)
            .map_err(|_| IdentityError::TokenInvalid)?;
        let claims = data.claims;
        if claims.exp <= now.timestamp() {
            return Err(IdentityError::TokenInvalid);
        }
        if let Some(kind) = expected {
            if claims.token_type != kind.as_str() {
                return Err(IdentityError::TokenInvalid);
            }
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    fn keys() -> JwtKeys {
        JwtKeys::from_secret(b"0123456789abcdef0123456789abcdef", 300, 86400)
    }

    fn b64(v: &serde_json::Value) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    }

    #[test]
    fn round_trip_with_type() {
        let k = keys();
        let now = Utc::now();
        let (t, c) = k.issue(7, 0, TokenType::Access, now);
        let back = k.decode(&t, Some(TokenType::Access), now).unwrap();
        assert_eq!(back, c);
        assert_eq!(back.exp - back.iat, 300);
        assert!(k.decode(&t, Some(TokenType::Refresh), now).is_err());
        assert!(k.decode(&t, None, now).is_ok());
    }

    #[test]
    fn the_epoch_claim_round_trips_and_defaults_to_zero() {
        let k = keys();
        let now = Utc::now();
        let (t, _) = k.issue(7, 3, TokenType::Access, now);
        assert_eq!(k.decode(&t, None, now).unwrap().epoch, 3);
        let (t, _) = k.issue(7, 0, TokenType::Access, now);
        let payload = t.split('.').nth(1).unwrap();
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap();
        assert!(!String::from_utf8(raw).unwrap().contains("epoch"));
        assert_eq!(k.decode(&t, None, now).unwrap().epoch, 0);
    }

    #[test]
    fn expired_is_refused() {
        let k = keys();
        let past = Utc::now() - chrono::Duration::seconds(301);
        let (t, _) = k.issue(7, 0, TokenType::Access, past);
        assert!(matches!(
            k.decode(&t, Some(TokenType::Access), Utc::now()),
            Err(IdentityError::TokenInvalid)
        ));
    }

    #[test]
    fn tampered_and_foreign_keys_are_refused() {
        let k = keys();
        let now = Utc::now();
        let (t, _) = k.issue(7, 0, TokenType::Access, now);
        let parts: Vec<&str> = t.split('.').collect();
        let forged_payload = b64(&serde_json::json!({
            "token_type": "access", "exp": now.timestamp() + 300, "iat": now.timestamp(),
            "jti": "x", "user_id": 1
        }));
        let forged = format!("{}.{}.{}", parts[0], forged_payload, parts[2]);
        assert!(k.decode(&forged, None, now).is_err());
        let other = JwtKeys::from_secret(b"another-secret-another-secret-xx", 300, 86400);
        assert!(other.decode(&t, None, now).is_err());
    }

    #[test]
    fn alg_none_is_refused() {
        let k = keys();
        let now = Utc::now();
        let header = b64(&serde_json::json!({"alg": "none", "typ": "JWT"}));
        let payload = b64(&serde_json::json!({
            "token_type": "access", "exp": now.timestamp() + 300, "iat": now.timestamp(),
            "jti": "x", "user_id": 1
        }));
        assert!(k
            .decode(&format!("{header}.{payload}."), None, now)
            .is_err());
        assert!(k.decode(&format!("{header}.{payload}"), None, now).is_err());
    }

    #[test]
    fn key_is_derived_not_the_raw_secret() {
        let secret = b"0123456789abcdef0123456789abcdef";
        let k = keys();
        let (t, _) = k.issue(1, 0, TokenType::Access, Utc::now());
        let raw = DecodingKey::from_secret(secret);
        let v = Validation::new(Algorithm::HS256);
        assert!(jsonwebtoken::decode::<Claims>(&t, &raw, &v).is_err());
    }
}

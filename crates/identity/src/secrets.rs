//! Random secrets and how they are stored.
use rand::RngCore;

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    hex::encode(buf)
}

/// A DRF-style API key: 40 lowercase hex characters (160 random bits).
pub fn new_api_key() -> String {
    random_hex(20)
}

/// An email-confirmation key: 64 lowercase hex characters (256 random bits).
pub fn new_confirmation_key() -> String {
    random_hex(32)
}

/// A JWT id.
pub fn new_jti() -> String {
    random_hex(16)
}

/// SHA-256 of a key: what the database stores (a leaked table yields no usable keys).
pub fn key_hash(key: &str) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, key.as_bytes())
        .as_ref()
        .to_vec()
}

/// HMAC-SHA256(secret, purpose): a sub-key for one purpose.
pub fn derive_key(secret: &[u8], purpose: &str) -> Vec<u8> {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    ring::hmac::sign(&key, purpose.as_bytes()).as_ref().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_have_the_documented_shape() {
        let k = new_api_key();
        assert_eq!(k.len(), 40);
        assert!(k
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_ne!(k, new_api_key());
        assert_eq!(new_confirmation_key().len(), 64);
        assert_eq!(key_hash("abc").len(), 32);
        assert_ne!(derive_key(b"s", "a"), derive_key(b"s", "b"));
    }
}

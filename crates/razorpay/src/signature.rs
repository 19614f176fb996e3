//! HMAC-SHA256 signatures of Razorpay Checkout, payment links and webhooks.
//!
//! All signatures are lowercase hex HMAC-SHA256. Verification decodes the
//! hex and uses [`ring::hmac::verify`], which compares in constant time.

use ring::hmac;

/// Lowercase hex HMAC-SHA256 of `message` under `key`.
pub fn hmac_sha256_hex(key: &[u8], message: &[u8]) -> String {
    let k = hmac::Key::new(hmac::HMAC_SHA256, key);
    hex::encode(hmac::sign(&k, message).as_ref())
}

fn verify(key: &[u8], message: &[u8], signature_hex: &str) -> bool {
    let Ok(tag) = hex::decode(signature_hex.trim()) else {
        return false;
    };
    let k = hmac::Key::new(hmac::HMAC_SHA256, key);
    hmac::verify(&k, message, &tag).is_ok()
}

/// Signature Checkout returns for an order payment: `HMAC(key_secret, order_id|payment_id)`.
pub fn sign_order(order_id: &str, payment_id: &str, key_secret: &str) -> String {
    hmac_sha256_hex(
        key_secret.as_bytes(),
        format!("{order_id}|{payment_id}").as_bytes(),
    )
}

/// Signature Checkout returns for a subscription payment:
/// `HMAC(key_secret, payment_id|subscription_id)` (note the order).
pub fn sign_subscription(payment_id: &str, subscription_id: &str, key_secret: &str) -> String {
    hmac_sha256_hex(
        key_secret.as_bytes(),
        format!("{payment_id}|{subscription_id}").as_bytes(),
    )
}

/// Payment link callback signature:
/// `HMAC(key_secret, plink_id|reference_id|status|payment_id)`.
pub fn sign_payment_link(
    payment_link_id: &str,
    reference_id: &str,
    status: &str,
    payment_id: &str,
    key_secret: &str,
) -> String {
    hmac_sha256_hex(
        key_secret.as_bytes(),
        format!("{payment_link_id}|{reference_id}|{status}|{payment_id}").as_bytes(),
    )
}

/// `X-Razorpay-Signature` of a webhook: `HMAC(webhook_secret, raw body bytes)`.
pub fn sign_webhook(raw_body: &[u8], webhook_secret: &str) -> String {
    hmac_sha256_hex(webhook_secret.as_bytes(), raw_body)
}

/// Verifies the `razorpay_signature` Checkout handed the frontend for an order payment.
pub fn verify_order_signature(
    order_id: &str,
    payment_id: &str,
    signature: &str,
    key_secret: &str,
) -> bool {
    verify(
        key_secret.as_bytes(),
        format!("{order_id}|{payment_id}").as_bytes(),
        signature,
    )
}

/// Verifies the `razorpay_signature` Checkout handed the frontend for a subscription.
pub fn verify_subscription_signature(
    payment_id: &str,
    subscription_id: &str,
    signature: &str,
    key_secret: &str,
) -> bool {
    verify(
        key_secret.as_bytes(),
        format!("{payment_id}|{subscription_id}").as_bytes(),
        signature,
    )
}

/// Verifies a payment link callback signature.
pub fn verify_payment_link_signature(
    payment_link_id: &str,
    reference_id: &str,
    status: &str,
    payment_id: &str,
    signature: &str,
    key_secret: &str,
) -> bool {
    verify(
        key_secret.as_bytes(),
        format!("{payment_link_id}|{reference_id}|{status}|{payment_id}").as_bytes(),
        signature,
    )
}

/// Verifies `X-Razorpay-Signature` over the raw body bytes exactly as received.
/// Never re-serialise parsed JSON before verifying: Razorpay's bytes are not canonical.
pub fn verify_webhook_signature(raw_body: &[u8], signature: &str, webhook_secret: &str) -> bool {
    verify(webhook_secret.as_bytes(), raw_body, signature)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SDK_SECRET: &str = "EnLs21M47BllR3X8PSFtjtbd";

    #[test]
    fn vector_1_order() {
        let sig = "b2335e3b0801106b84a7faff035df56ecffde06918c9ddd1f0fafbb37a51cc89";
        assert_eq!(
            sign_order("fake_order_id", "fake_payment_id", "key_secret"),
            sig
        );
        assert!(verify_order_signature(
            "fake_order_id",
            "fake_payment_id",
            sig,
            "key_secret"
        ));
        assert!(!verify_order_signature(
            "fake_order_id",
            "fake_payment_id",
            sig,
            "other"
        ));
    }

    #[test]
    fn vector_2_subscription() {
        let sig = "601f383334975c714c91a7d97dd723eb56520318355863dcf3821c0d07a17693";
        assert_eq!(
            sign_subscription("pay_IDZNwZZFtnjyym", "sub_ID6MOhgkcoHj9I", SDK_SECRET),
            sig
        );
        assert!(verify_subscription_signature(
            "pay_IDZNwZZFtnjyym",
            "sub_ID6MOhgkcoHj9I",
            sig,
            SDK_SECRET
        ));
        // Swapped order must fail.
        assert!(!verify_subscription_signature(
            "sub_ID6MOhgkcoHj9I",
            "pay_IDZNwZZFtnjyym",
            sig,
            SDK_SECRET
        ));
    }

    #[test]
    fn vector_3_payment_link() {
        let sig = "07ae18789e35093e51d0a491eb9922646f3f82773547e5b0f67ee3f2d3bf7d5b";
        assert_eq!(
            sign_payment_link(
                "plink_IH3cNucfVEgV68",
                "TSsd1989",
                "paid",
                "pay_IH3d0ara9bSsjQ",
                SDK_SECRET
            ),
            sig
        );
        assert!(verify_payment_link_signature(
            "plink_IH3cNucfVEgV68",
            "TSsd1989",
            "paid",
            "pay_IH3d0ara9bSsjQ",
            sig,
            SDK_SECRET
        ));
    }

    #[test]
    fn vector_4_order_sdk_key() {
        let sig = "0d4e745a1838664ad6c9c9902212a32d627d68e917290b0ad5f08ff4561bc50f";
        assert_eq!(
            sign_order("order_IEIaMR65cu6nz3", "pay_IH4NVgf4Dreq1l", SDK_SECRET),
            sig
        );
        assert!(verify_order_signature(
            "order_IEIaMR65cu6nz3",
            "pay_IH4NVgf4Dreq1l",
            sig,
            SDK_SECRET
        ));
    }

    #[test]
    fn vector_5_webhook() {
        let body = br#"{"a":1,"b":2,"c":{"d":3}}"#;
        let sig = "2fe04e22977002e6c7cb553adab8b460cb9e2a4970d5953cb27a8472752e3bbc";
        assert_eq!(sign_webhook(body, "123456"), sig);
        assert!(verify_webhook_signature(body, sig, "123456"));
        // Uppercase hex is the same tag.
        assert!(verify_webhook_signature(
            body,
            &sig.to_uppercase(),
            "123456"
        ));
        // One byte of difference (a space) breaks it.
        assert!(!verify_webhook_signature(
            br#"{"a":1, "b":2,"c":{"d":3}}"#,
            sig,
            "123456"
        ));
        assert!(!verify_webhook_signature(body, "not-hex", "123456"));
        assert!(!verify_webhook_signature(body, "", "123456"));
    }
}

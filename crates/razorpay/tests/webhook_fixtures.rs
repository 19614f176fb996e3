//! The webhook payloads the previous (Django) backend documented, parsed
//! through the same path the server uses: signature over the raw bytes, then
//! lenient parsing.

use razorpay::{
    parse_webhook, sign_webhook, EventKind, PaymentStatus, SubscriptionStatus, WebhookError,
};

const SECRET: &str = "whsec_fixture";

fn parse(raw: &str) -> razorpay::WebhookEvent {
    let sig = sign_webhook(raw.as_bytes(), SECRET);
    parse_webhook(raw.as_bytes(), &sig, SECRET).expect("fixture parses")
}

#[test]
fn recurring_subscription_authenticated() {
    let raw = include_str!("fixtures/subscription_authenticated.json");
    let ev = parse(raw);
    assert_eq!(ev.kind(), EventKind::SubscriptionAuthenticated);
    assert_eq!(ev.account_id.as_deref(), Some("acc_F5Motm2sJ5Fomd"));
    assert_eq!(ev.contains, vec!["subscription".to_string()]);
    let sub = ev.payload.subscription.expect("subscription entity");
    assert_eq!(sub.id, "sub_F5aa7VaVXtXh80");
    assert_eq!(sub.status, SubscriptionStatus::Authenticated);
    assert_eq!(sub.current_start, None);
    assert_eq!(sub.remaining_count, Some(3));
    assert_eq!(sub.start_at, Some(1593109800));
    // `"tierID":4` is a number in the payload.
    assert_eq!(sub.notes.get("tierID"), Some("4"));
    assert_eq!(sub.notes.get("userID"), Some("anshulyadav"));
    assert_eq!(sub.offer_id.as_deref(), Some("offer_JHD834hjbxzhd38d"));
    assert!(ev.payload.payment.is_none());
    assert_eq!(ev.created_at, 1592811255);
}

#[test]
fn payment_authorized_subscription_cheer_commission() {
    for (raw, ty) in [
        (
            include_str!("fixtures/payment_authorized_subscription.json"),
            "subscription",
        ),
        (
            include_str!("fixtures/payment_authorized_cheer.json"),
            "cheer",
        ),
        (
            include_str!("fixtures/payment_authorized_commission.json"),
            "commission",
        ),
    ] {
        let ev = parse(raw);
        assert_eq!(ev.kind(), EventKind::PaymentAuthorized);
        assert_eq!(ev.notes_type(), Some(ty));
        let p = ev.payload.payment.as_ref().expect("payment entity");
        assert_eq!(p.id, "pay_Gs7H4cAY5zRubS");
        assert_eq!(p.amount, 34800);
        assert_eq!(p.status, PaymentStatus::Authorized);
        assert!(!p.captured);
        assert_eq!(p.order_id.as_deref(), Some("order_Gs7Gk7vBhrievW"));
        assert_eq!(p.method.as_deref(), Some("upi"));
        assert_eq!(p.fee, None);
        assert_eq!(p.acquirer_data["rrn"], "785396808883");
    }
    let ev = parse(include_str!("fixtures/payment_authorized_commission.json"));
    let notes = &ev.payload.payment.unwrap().notes;
    assert_eq!(notes.get("commissionID"), Some("1"));
    assert_eq!(notes.get("mode_of_delivery"), Some("1"));
}

#[test]
fn sloppy_variants_of_a_fixture() {
    // captured as "1", notes as [], an unknown field, nulls for integers.
    let raw = include_str!("fixtures/payment_authorized_cheer.json")
        .replace(r#""captured":false"#, r#""captured":"1""#)
        .replace(r#""amount_refunded":0"#, r#""amount_refunded":null"#)
        .replace(
            r#""notes":{"type": "cheer", "creatorID": "11","username":"usingla78", "name":"Utsav", "message":"check"}"#,
            r#""notes":[],"brand_new_field":{"x":[1,2]}"#,
        );
    assert!(raw.contains(r#""notes":[]"#));
    let ev = parse(&raw);
    let p = ev.payload.payment.unwrap();
    assert!(p.captured);
    assert_eq!(p.amount_refunded, 0);
    assert!(p.notes.is_empty());
}

#[test]
fn tampered_fixture_is_rejected() {
    let raw = include_str!("fixtures/payment_authorized_cheer.json");
    let sig = sign_webhook(raw.as_bytes(), SECRET);
    let tampered = raw.replace("34800", "348000");
    assert!(matches!(
        parse_webhook(tampered.as_bytes(), &sig, SECRET),
        Err(WebhookError::BadSignature)
    ));
    assert!(matches!(
        parse_webhook(raw.as_bytes(), &sig, "wrong secret"),
        Err(WebhookError::BadSignature)
    ));
}

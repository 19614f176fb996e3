//! The `razorpay` crate against the simulator.

use crate::{Sim, KEY_ID, KEY_SECRET};
use razorpay::{
    verify_order_signature, verify_subscription_signature, CancelAt, CaptureMode, CapturePayment,
    CreateOrder, CreatePlan, CreateRefund, CreateSubscription, Error, Notes, OrderPaymentOptions,
    OrderStatus, PaymentStatus, Period, PlanItem, RefundStatus, SubscriptionStatus,
    UpdateSubscription,
};
use serde_json::json;

fn plan_req(amount: i64) -> CreatePlan {
    CreatePlan {
        period: Period::Monthly,
        interval: 1,
        item: PlanItem {
            name: "Gold tier".into(),
            amount,
            currency: "INR".into(),
            description: Some("Monthly membership".into()),
        },
        notes: Notes::new().with("tierID", "4"),
    }
}

fn api_error(e: &Error) -> (u16, &str, &str, Option<&str>) {
    match e {
        Error::Api {
            status,
            code,
            description,
            field,
            ..
        } => (
            *status,
            code.as_str(),
            description.as_str(),
            field.as_deref(),
        ),
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn plan_and_subscription_lifecycle() {
    let sim = Sim::start().await;
    let rzp = sim.client();

    let plan = rzp.create_plan(&plan_req(49_900)).await.unwrap();
    assert!(
        plan.id.starts_with("plan_") && plan.id.len() == 19,
        "{}",
        plan.id
    );
    assert_eq!(plan.entity, "plan");
    assert!(plan.item.id.starts_with("item_"));
    assert_eq!(plan.item.amount, 49_900);
    assert_eq!(plan.item.unit_amount, 49_900);
    assert_eq!(plan.item.item_type.as_deref(), Some("plan"));
    assert_eq!(rzp.fetch_plan(&plan.id).await.unwrap(), plan);

    let sub = rzp
        .create_subscription(&CreateSubscription {
            plan_id: plan.id.clone(),
            total_count: 120,
            notes: Notes::new()
                .with("type", "subscription")
                .with("tierID", "4"),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(sub.id.starts_with("sub_"));
    assert_eq!(sub.status, SubscriptionStatus::Created);
    assert_eq!(sub.customer_id, None);
    assert_eq!(sub.remaining_count, Some(120));
    assert_eq!(sub.quantity, 1);
    assert!(sub.customer_notify);
    assert!(sub
        .short_url
        .as_deref()
        .unwrap()
        .starts_with("https://rzp.io/i/"));

    // Checkout: the customer authorises; the first charge happens at once.
    let co = sim
        .control(
            "checkout",
            json!({"subscription_id": sub.id, "outcome": "success"}),
        )
        .await;
    let pay_id = co["razorpay_payment_id"].as_str().unwrap();
    assert_eq!(co["razorpay_subscription_id"], sub.id.as_str());
    assert!(verify_subscription_signature(
        pay_id,
        &sub.id,
        co["razorpay_signature"].as_str().unwrap(),
        KEY_SECRET
    ));
    // Razorpay's subscription message is payment_id|subscription_id; the other order fails.
    assert!(!verify_order_signature(
        &sub.id,
        pay_id,
        co["razorpay_signature"].as_str().unwrap(),
        KEY_SECRET
    ));

    let s = rzp.fetch_subscription(&sub.id).await.unwrap();
    assert_eq!(s.status, SubscriptionStatus::Active);
    assert_eq!(s.paid_count, 1);
    assert_eq!(s.remaining_count, Some(119));
    assert!(s.customer_id.as_deref().unwrap().starts_with("cust_"));
    assert!(s.current_end > s.current_start);

    let p = rzp.fetch_payment(pay_id).await.unwrap();
    assert_eq!(p.status, PaymentStatus::Captured);
    assert!(p.captured);
    assert_eq!(p.amount, 49_900);
    assert_eq!(p.notes.get("type"), Some("subscription"));
    assert!(p.invoice_id.as_deref().unwrap().starts_with("inv_"));

    // Next cycle.
    let c = sim
        .control(
            &format!("subscriptions/{}/cycle", sub.id),
            json!({"outcome": "charged"}),
        )
        .await;
    assert_eq!(c["subscription"]["paid_count"], 2);

    // Pause / resume.
    let s = rzp.pause_subscription(&sub.id).await.unwrap();
    assert_eq!(s.status, SubscriptionStatus::Paused);
    assert!(s.paused_at.is_some());
    let e = rzp.pause_subscription(&sub.id).await.unwrap_err();
    assert_eq!(api_error(&e).0, 400);
    assert_eq!(api_error(&e).3, Some("status"));
    let s = rzp.resume_subscription(&sub.id).await.unwrap();
    assert_eq!(s.status, SubscriptionStatus::Active);
    assert_eq!(s.paused_at, None);

    // Update now.
    let s = rzp
        .update_subscription(
            &sub.id,
            &UpdateSubscription {
                quantity: Some(2),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(s.quantity, 2);

    // Cancel at cycle end: stays active until the next cycle.
    let s = rzp
        .cancel_subscription(&sub.id, CancelAt::CycleEnd)
        .await
        .unwrap();
    assert_eq!(s.status, SubscriptionStatus::Active);
    let c = sim
        .control(
            &format!("subscriptions/{}/cycle", sub.id),
            json!({"outcome": "charged"}),
        )
        .await;
    assert_eq!(c["subscription"]["status"], "cancelled");
    assert!(c["payment"].is_null());
    let s = rzp.fetch_subscription(&sub.id).await.unwrap();
    assert_eq!(s.status, SubscriptionStatus::Cancelled);
    assert!(s.ended_at.is_some());
    assert_eq!(s.paid_count, 2);

    let e = rzp
        .cancel_subscription(&sub.id, CancelAt::Now)
        .await
        .unwrap_err();
    let (status, code, desc, field) = api_error(&e);
    assert_eq!(status, 400);
    assert_eq!(code, "BAD_REQUEST_ERROR");
    assert_eq!(desc, "Subscription is not cancellable in cancelled status.");
    assert_eq!(field, Some("status"));
    sim.stop().await;
}

#[tokio::test]
async fn subscription_completes_halts_and_cancels_now() {
    let sim = Sim::start().await;
    let rzp = sim.client();
    let plan = rzp.create_plan(&plan_req(10_000)).await.unwrap();
    let mk = |total| CreateSubscription {
        plan_id: plan.id.clone(),
        total_count: total,
        ..Default::default()
    };

    // total_count 2: the checkout charge + one cycle, then completed.
    let sub = rzp.create_subscription(&mk(2)).await.unwrap();
    sim.control("checkout", json!({"subscription_id": sub.id}))
        .await;
    let c = sim
        .control(&format!("subscriptions/{}/cycle", sub.id), json!({}))
        .await;
    assert_eq!(c["subscription"]["status"], "completed");
    assert_eq!(c["subscription"]["remaining_count"], 0);
    let s = rzp.fetch_subscription(&sub.id).await.unwrap();
    assert_eq!(s.status, SubscriptionStatus::Completed);
    assert!(s.status.is_terminal());

    // pending → halted → charged again → active.
    let sub = rzp.create_subscription(&mk(12)).await.unwrap();
    sim.control("checkout", json!({"subscription_id": sub.id}))
        .await;
    let path = format!("subscriptions/{}/cycle", sub.id);
    let c = sim.control(&path, json!({"outcome": "pending"})).await;
    assert_eq!(c["subscription"]["status"], "pending");
    assert_eq!(c["payment"]["status"], "failed");
    let c = sim.control(&path, json!({"outcome": "halted"})).await;
    assert_eq!(c["subscription"]["status"], "halted");
    let c = sim.control(&path, json!({"outcome": "charged"})).await;
    assert_eq!(c["subscription"]["status"], "active");
    assert_eq!(c["subscription"]["paid_count"], 2);

    // Cancel now.
    let s = rzp
        .cancel_subscription(&sub.id, CancelAt::Now)
        .await
        .unwrap();
    assert_eq!(s.status, SubscriptionStatus::Cancelled);
    assert!(s.ended_at.is_some());

    // Future start: authenticated, no charge yet.
    let start = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        + 7 * 86_400;
    let sub = rzp
        .create_subscription(&CreateSubscription {
            start_at: Some(start),
            ..mk(12)
        })
        .await
        .unwrap();
    assert_eq!(sub.start_at, Some(start));
    sim.control(
        "checkout",
        json!({"subscription_id": sub.id, "method": "upi"}),
    )
    .await;
    let s = rzp.fetch_subscription(&sub.id).await.unwrap();
    assert_eq!(s.status, SubscriptionStatus::Authenticated);
    assert_eq!(s.paid_count, 0);
    let c = sim
        .control(&format!("subscriptions/{}/cycle", sub.id), json!({}))
        .await;
    assert_eq!(c["subscription"]["status"], "active");
    assert_eq!(c["subscription"]["paid_count"], 1);
    sim.stop().await;
}

#[tokio::test]
async fn order_checkout_capture_and_refunds() {
    let sim = Sim::start().await;
    let rzp = sim.client();
    let order = rzp
        .create_order(&CreateOrder {
            amount: 50_000,
            currency: "INR".into(),
            receipt: Some("tip-1".into()),
            notes: Notes::new().with("type", "cheer").with("creatorID", "11"),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(order.id.starts_with("order_"));
    assert_eq!(order.status, OrderStatus::Created);
    assert_eq!(order.amount_due, 50_000);

    let co = sim
        .control(
            "checkout",
            json!({"order_id": order.id, "outcome": "success", "method": "upi"}),
        )
        .await;
    let pay_id = co["razorpay_payment_id"].as_str().unwrap().to_owned();
    assert!(verify_order_signature(
        &order.id,
        &pay_id,
        co["razorpay_signature"].as_str().unwrap(),
        KEY_SECRET
    ));

    let o = rzp.fetch_order(&order.id).await.unwrap();
    assert_eq!(o.status, OrderStatus::Paid);
    assert_eq!(o.amount_paid, 50_000);
    assert_eq!(o.amount_due, 0);
    assert_eq!(o.attempts, 1);
    let pays = rzp.fetch_order_payments(&order.id).await.unwrap();
    assert_eq!(pays.entity, "collection");
    assert_eq!(pays.count, 1);
    let p = &pays.items[0];
    assert_eq!(p.id, pay_id);
    assert_eq!(p.status, PaymentStatus::Captured);
    assert_eq!(p.notes.get("type"), Some("cheer"));
    assert_eq!(p.vpa.as_deref(), Some("success@razorpay"));
    assert!(p.fee.is_some());

    // Paying a paid order again is refused.
    let resp = reqwest::Client::new()
        .post(format!("{}/_sim/checkout", sim.base()))
        .json(&json!({"order_id": order.id}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);

    // Refunds: partial, then the rest, then nothing left.
    let r = rzp
        .refund_payment(
            &pay_id,
            &CreateRefund {
                amount: Some(20_000),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(r.id.starts_with("rfnd_"));
    assert_eq!(r.status, RefundStatus::Processed);
    assert_eq!(rzp.fetch_refund(&r.id).await.unwrap(), r);
    let p = rzp.fetch_payment(&pay_id).await.unwrap();
    assert_eq!(p.refund_status.as_deref(), Some("partial"));
    assert_eq!(p.amount_refunded, 20_000);
    let e = rzp
        .refund_payment(
            &pay_id,
            &CreateRefund {
                amount: Some(40_000),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(api_error(&e).3, Some("amount"));
    rzp.refund_payment(&pay_id, &CreateRefund::default())
        .await
        .unwrap();
    let p = rzp.fetch_payment(&pay_id).await.unwrap();
    assert_eq!(p.status, PaymentStatus::Refunded);
    assert_eq!(p.refund_status.as_deref(), Some("full"));
    // The order stays paid after a refund.
    assert_eq!(
        rzp.fetch_order(&order.id).await.unwrap().status,
        OrderStatus::Paid
    );

    // Manual capture.
    let order = rzp
        .create_order(&CreateOrder {
            amount: 12_300,
            currency: "INR".into(),
            payment: Some(OrderPaymentOptions {
                capture: CaptureMode::Manual,
            }),
            ..Default::default()
        })
        .await
        .unwrap();
    let co = sim.control("checkout", json!({"order_id": order.id})).await;
    let pay_id = co["razorpay_payment_id"].as_str().unwrap();
    let p = rzp.fetch_payment(pay_id).await.unwrap();
    assert_eq!(p.status, PaymentStatus::Authorized);
    assert!(!p.captured);
    let e = rzp
        .capture_payment(
            pay_id,
            &CapturePayment {
                amount: 100,
                currency: "INR".into(),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(api_error(&e).3, Some("amount"));
    let p = rzp
        .capture_payment(
            pay_id,
            &CapturePayment {
                amount: 12_300,
                currency: "INR".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(p.status, PaymentStatus::Captured);
    assert_eq!(
        rzp.fetch_order(&order.id).await.unwrap().status,
        OrderStatus::Paid
    );

    // A failed checkout leaves the order attempted.
    let order = rzp
        .create_order(&CreateOrder {
            amount: 1_000,
            currency: "INR".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let co = sim
        .control(
            "checkout",
            json!({"order_id": order.id, "outcome": "failure"}),
        )
        .await;
    assert_eq!(co["error"]["reason"], "payment_failed");
    let fid = co["error"]["metadata"]["payment_id"].as_str().unwrap();
    assert_eq!(
        rzp.fetch_payment(fid).await.unwrap().status,
        PaymentStatus::Failed
    );
    let o = rzp.fetch_order(&order.id).await.unwrap();
    assert_eq!(o.status, OrderStatus::Attempted);
    assert_eq!(o.attempts, 1);
    sim.stop().await;
}

#[tokio::test]
async fn errors_have_razorpay_shapes() {
    let sim = Sim::start().await;
    let rzp = sim.client();

    let e = rzp.fetch_order("order_AAAAAAAAAAAAAA").await.unwrap_err();
    assert!(e.is_not_found(), "{e:?}");
    assert!(!e.is_retryable());
    let e = rzp.fetch_subscription("sub_nope").await.unwrap_err();
    assert_eq!(api_error(&e).2, "sub_nope is not a valid id");

    let e = rzp
        .create_order(&CreateOrder {
            amount: 50,
            currency: "INR".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    let (status, code, _, field) = api_error(&e);
    assert_eq!(
        (status, code, field),
        (400, "BAD_REQUEST_ERROR", Some("amount"))
    );

    let e = rzp
        .create_subscription(&CreateSubscription {
            plan_id: "plan_AAAAAAAAAAAAAA".into(),
            total_count: 12,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(e.is_not_found());

    // Wrong secret: 401 "Authentication failed".
    let e = sim
        .client_with("wrong")
        .fetch_plan("plan_AAAAAAAAAAAAAA")
        .await
        .unwrap_err();
    assert!(e.is_auth());
    assert_eq!(api_error(&e).2, "Authentication failed");

    let http = reqwest::Client::new();
    let base = sim.base();
    // No credentials.
    let r = http.get(format!("{base}/v1/plans")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        v["error"]["description"],
        "Please provide your api key for authentication purposes"
    );
    assert_eq!(v["error"]["code"], "BAD_REQUEST_ERROR");
    // Unknown route and unknown method.
    for (m, path) in [("GET", "/v1/nothing/here"), ("DELETE", "/v1/plans")] {
        let r = http
            .request(m.parse().unwrap(), format!("{base}{path}"))
            .basic_auth(KEY_ID, Some(KEY_SECRET))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        let v: serde_json::Value = r.json().await.unwrap();
        assert_eq!(
            v["error"]["description"],
            "The requested URL was not found on the server."
        );
    }
    // count > 100.
    let r = http
        .get(format!("{base}/v1/orders?count=101"))
        .basic_auth(KEY_ID, Some(KEY_SECRET))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["error"]["field"], "count");
    // Unknown field.
    let r = http
        .post(format!("{base}/v1/orders"))
        .basic_auth(KEY_ID, Some(KEY_SECRET))
        .json(&json!({"amount": 1000, "currency": "INR", "colour": "red"}))
        .send()
        .await
        .unwrap();
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        v["error"]["description"],
        "colour is/are not required and should not be sent"
    );
    assert_eq!(v["error"]["field"], "colour");

    // Form-encoded bodies, and the npm SDK's empty form body on cancel.
    let r = http
        .post(format!("{base}/v1/orders"))
        .basic_auth(KEY_ID, Some(KEY_SECRET))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("amount=2500&currency=INR&notes[type]=commission&notes[commissionID]=1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["amount"], 2500);
    assert_eq!(v["notes"]["type"], "commission");
    let plan = rzp.create_plan(&plan_req(1_000)).await.unwrap();
    let sub = rzp
        .create_subscription(&CreateSubscription {
            plan_id: plan.id,
            total_count: 3,
            ..Default::default()
        })
        .await
        .unwrap();
    let r = http
        .post(format!("{base}/v1/subscriptions/{}/cancel", sub.id))
        .basic_auth(KEY_ID, Some(KEY_SECRET))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["status"], "cancelled");
    // Empty notes are serialised as [] and the client reads them.
    let o: serde_json::Value = http
        .post(format!("{base}/v1/orders"))
        .basic_auth(KEY_ID, Some(KEY_SECRET))
        .json(&json!({"amount": 1000, "currency": "INR"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(o["notes"], json!([]));
    let fetched = rzp.fetch_order(o["id"].as_str().unwrap()).await.unwrap();
    assert!(fetched.notes.is_empty());
    sim.stop().await;
}

#[tokio::test]
async fn injected_502_retried_on_get_but_not_on_create() {
    let sim = Sim::start().await;
    let rzp = sim.client();
    let order = rzp
        .create_order(&CreateOrder {
            amount: 1_000,
            currency: "INR".into(),
            ..Default::default()
        })
        .await
        .unwrap();

    // Two 502s on GET: the third attempt succeeds.
    sim.control(
        "chaos",
        json!({"fail_routes": [{"method": "GET", "path_prefix": "/v1/orders", "status": 502, "times": 2}]}),
    )
    .await;
    assert_eq!(rzp.fetch_order(&order.id).await.unwrap().id, order.id);

    // Three 504s exhaust the 3 attempts.
    sim.control(
        "chaos",
        json!({"fail_routes": [{"method": "GET", "path_prefix": "/v1/orders", "status": 504, "times": 3}]}),
    )
    .await;
    let e = rzp.fetch_order(&order.id).await.unwrap_err();
    assert_eq!(api_error(&e).0, 504);
    assert_eq!(api_error(&e).1, "GATEWAY_ERROR");
    assert!(e.is_retryable());
    // ...and the next call goes through.
    rzp.fetch_order(&order.id).await.unwrap();

    // A 502 on create after the order was made (lost response): not retried,
    // so exactly one order exists.
    sim.control(
        "chaos",
        json!({"fail_routes": [{"method": "POST", "path_prefix": "/v1/orders", "status": 502, "times": 1, "when": "after"}]}),
    )
    .await;
    let e = rzp
        .create_order(&CreateOrder {
            amount: 7_700,
            currency: "INR".into(),
            receipt: Some("lost-response".into()),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(api_error(&e).0, 502);
    let list: serde_json::Value = reqwest::Client::new()
        .get(format!("{}/v1/orders?count=100", sim.base()))
        .basic_auth(KEY_ID, Some(KEY_SECRET))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let made = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["receipt"] == "lost-response")
        .count();
    assert_eq!(made, 1, "a create must not be retried after a 502");

    // A 500 on a subscription create is surfaced as is (not retried).
    sim.control(
        "chaos",
        json!({"fail_routes": [{"path_prefix": "/v1/subscriptions", "status": 500, "times": 1}]}),
    )
    .await;
    let e = rzp
        .create_subscription(&CreateSubscription {
            plan_id: "plan_AAAAAAAAAAAAAA".into(),
            total_count: 1,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(api_error(&e).1, "SERVER_ERROR");
    sim.stop().await;
}

#[tokio::test]
async fn mounted_under_a_scope_like_the_server_does() {
    use actix_web::{web, App, HttpServer};
    let sim = razorpay_sim::Simulator::new(razorpay_sim::SimConfig {
        key_id: KEY_ID.into(),
        key_secret: KEY_SECRET.into(),
        webhook_secret: crate::WEBHOOK_SECRET.into(),
        webhook_url: None,
        state_file: None,
    });
    let app_sim = sim.clone();
    let server = HttpServer::new(move || {
        let s = app_sim.clone();
        App::new()
            .route("/health", web::get().to(|| async { "ok" }))
            .service(web::scope("/_razorpay").configure(move |c| s.configure(c)))
    })
    .workers(1)
    .disable_signals()
    .bind("127.0.0.1:0")
    .unwrap();
    let addr = server.addrs()[0];
    let server = server.run();
    let handle = server.handle();
    tokio::spawn(server);

    let rzp = razorpay::Client::new(razorpay::ClientConfig {
        base_url: format!("http://{addr}/_razorpay"),
        key_id: KEY_ID.into(),
        key_secret: razorpay::SecretString::from(KEY_SECRET.to_owned()),
        timeout: std::time::Duration::from_secs(10),
    })
    .unwrap();
    let order = rzp
        .create_order(&CreateOrder {
            amount: 1_000,
            currency: "INR".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(rzp.fetch_order(&order.id).await.unwrap().id, order.id);
    let e = rzp.fetch_plan("plan_AAAAAAAAAAAAAA").await.unwrap_err();
    assert!(e.is_not_found());
    let http = reqwest::Client::new();
    let r = http
        .get(format!("http://{addr}/_razorpay/v1/unknown"))
        .basic_auth(KEY_ID, Some(KEY_SECRET))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let co: serde_json::Value = http
        .post(format!("http://{addr}/_razorpay/_sim/checkout"))
        .json(&json!({"order_id": order.id}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(verify_order_signature(
        &order.id,
        co["razorpay_payment_id"].as_str().unwrap(),
        co["razorpay_signature"].as_str().unwrap(),
        KEY_SECRET
    ));
    // The rest of the app is untouched.
    let r = http
        .get(format!("http://{addr}/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), "ok");
    handle.stop(false).await;
}

#[tokio::test]
async fn state_file_survives_a_restart() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("razorpay-sim-state-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("state.json");
    let _ = std::fs::remove_file(&file);
    let config = || razorpay_sim::SimConfig {
        key_id: KEY_ID.into(),
        key_secret: KEY_SECRET.into(),
        webhook_secret: crate::WEBHOOK_SECRET.into(),
        webhook_url: None,
        state_file: Some(file.clone()),
    };
    let client = |addr: std::net::SocketAddr| {
        razorpay::Client::new(razorpay::ClientConfig {
            base_url: format!("http://{addr}"),
            key_id: KEY_ID.into(),
            key_secret: razorpay::SecretString::from(KEY_SECRET.to_owned()),
            timeout: std::time::Duration::from_secs(10),
        })
        .unwrap()
    };

    let (_sim, addr, handle) = razorpay_sim::spawn(config(), "127.0.0.1:0").await.unwrap();
    let rzp = client(addr);
    let plan = rzp.create_plan(&plan_req(2_000)).await.unwrap();
    let sub = rzp
        .create_subscription(&CreateSubscription {
            plan_id: plan.id.clone(),
            total_count: 24,
            notes: Notes::new().with("type", "subscription"),
            ..Default::default()
        })
        .await
        .unwrap();
    let http = reqwest::Client::new();
    http.post(format!("http://{addr}/_sim/checkout"))
        .json(&json!({"subscription_id": sub.id}))
        .send()
        .await
        .unwrap();
    handle.stop(false).await;
    assert!(file.exists());

    let (_sim, addr, handle) = razorpay_sim::spawn(config(), "127.0.0.1:0").await.unwrap();
    let rzp = client(addr);
    assert_eq!(rzp.fetch_plan(&plan.id).await.unwrap(), plan);
    let s = rzp.fetch_subscription(&sub.id).await.unwrap();
    assert_eq!(s.status, SubscriptionStatus::Active);
    assert_eq!(s.notes.get("type"), Some("subscription"));
    let log: serde_json::Value = http
        .get(format!("http://{addr}/_sim/webhooks"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(log["count"], 5, "the event log is persisted too");
    handle.stop(false).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn subscription_invoices_one_per_billed_cycle() {
    use razorpay::InvoiceStatus;
    let sim = Sim::start().await;
    let rzp = sim.client();
    let plan = rzp.create_plan(&plan_req(10_000)).await.unwrap();
    let sub = rzp
        .create_subscription(&CreateSubscription {
            plan_id: plan.id.clone(),
            total_count: 120,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(rzp
        .fetch_subscription_invoices(&sub.id)
        .await
        .unwrap()
        .is_empty());

    // Cycle 1 at Checkout; cycle 2 fails once (pending) and is retried on the same invoice.
    let co = sim
        .control("checkout", json!({"subscription_id": sub.id}))
        .await;
    let first_pay = co["razorpay_payment_id"].as_str().unwrap().to_owned();
    let path = format!("subscriptions/{}/cycle", sub.id);
    let failed = sim.control(&path, json!({"outcome": "pending"})).await;
    let c2 = sim.control(&path, json!({"outcome": "charged"})).await;
    assert_eq!(
        failed["payment"]["invoice_id"], c2["payment"]["invoice_id"],
        "a retried charge pays the cycle's invoice"
    );
    let c3 = sim.control(&path, json!({"outcome": "charged"})).await;

    let invoices = rzp.fetch_subscription_invoices(&sub.id).await.unwrap();
    assert_eq!(invoices.len(), 3, "{invoices:?}");
    // Newest first; each paid by the cycle's successful payment.
    let pays = [
        c3["payment"]["id"].as_str().unwrap(),
        c2["payment"]["id"].as_str().unwrap(),
        first_pay.as_str(),
    ];
    for (inv, pay) in invoices.iter().zip(pays) {
        assert!(
            inv.id.starts_with("inv_") && inv.id.len() == 18,
            "{}",
            inv.id
        );
        assert_eq!(inv.entity, "invoice");
        assert_eq!(inv.invoice_type.as_deref(), Some("invoice"));
        assert_eq!(inv.status, InvoiceStatus::Paid);
        assert_eq!(inv.subscription_id.as_deref(), Some(sub.id.as_str()));
        assert_eq!(inv.payment_id.as_deref(), Some(pay));
        assert_eq!(
            (inv.amount, inv.amount_paid, inv.amount_due),
            (10_000, 10_000, 0)
        );
        assert_eq!(inv.currency, "INR");
        assert!(inv.paid_at.is_some());
        assert!(inv.billing_end > inv.billing_start);
        let p = rzp.fetch_payment(pay).await.unwrap();
        assert_eq!(p.invoice_id.as_deref(), Some(inv.id.as_str()));
        assert_eq!(p.order_id, inv.order_id);
        assert_eq!(rzp.fetch_invoice(&inv.id).await.unwrap(), *inv);
    }
    let s = rzp.fetch_subscription(&sub.id).await.unwrap();
    assert_eq!(invoices[0].billing_end, s.current_end);
    assert_eq!(invoices[0].billing_start, s.current_start);

    // Paging: count/skip, newest first.
    let page = rzp.list_subscription_invoices(&sub.id, 1, 1).await.unwrap();
    assert_eq!((page.entity.as_str(), page.count), ("collection", 1));
    assert_eq!(page.items[0].id, invoices[1].id);

    // A failing cycle leaves an issued invoice without a payment.
    sim.control(&path, json!({"outcome": "pending"})).await;
    let invoices = rzp.fetch_subscription_invoices(&sub.id).await.unwrap();
    assert_eq!(invoices.len(), 4);
    assert_eq!(invoices[0].status, InvoiceStatus::Issued);
    assert_eq!(invoices[0].payment_id, None);
    assert_eq!(invoices[0].amount_due, 10_000);

    // Reads are retried through injected gateway errors.
    sim.control(
        "chaos",
        json!({"fail_routes": [{"method": "GET", "path_prefix": "/v1/invoices", "status": 502, "times": 2}]}),
    )
    .await;
    assert_eq!(
        rzp.fetch_subscription_invoices(&sub.id)
            .await
            .unwrap()
            .len(),
        4
    );

    // Razorpay's errors.
    let e = rzp.fetch_invoice("inv_AAAAAAAAAAAAAA").await.unwrap_err();
    assert_eq!(api_error(&e).2, "The id provided does not exist");
    let e = rzp.fetch_invoice("inv_nope").await.unwrap_err();
    assert_eq!(api_error(&e).2, "inv_nope is not a valid id");
    let e = rzp
        .fetch_subscription_invoices("sub_nope")
        .await
        .unwrap_err();
    assert_eq!(api_error(&e).0, 400);
    assert!(rzp
        .fetch_subscription_invoices("sub_AAAAAAAAAAAAAA")
        .await
        .unwrap()
        .is_empty());
    let r = reqwest::Client::new()
        .get(format!(
            "{}/v1/invoices?subscription_id={}&count=101",
            sim.base(),
            sub.id
        ))
        .basic_auth(KEY_ID, Some(KEY_SECRET))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["error"]["field"], "count");

    // A future-start subscription's token authorisation is not a billed cycle.
    let start = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        + 7 * 86_400;
    let later = rzp
        .create_subscription(&CreateSubscription {
            plan_id: plan.id.clone(),
            total_count: 12,
            start_at: Some(start),
            ..Default::default()
        })
        .await
        .unwrap();
    sim.control("checkout", json!({"subscription_id": later.id}))
        .await;
    assert!(rzp
        .fetch_subscription_invoices(&later.id)
        .await
        .unwrap()
        .is_empty());
    sim.stop().await;
}

#[tokio::test]
async fn subscription_invoices_page_past_one_hundred() {
    let sim = Sim::start().await;
    let rzp = sim.client();
    let plan = rzp.create_plan(&plan_req(10_000)).await.unwrap();
    let sub = rzp
        .create_subscription(&CreateSubscription {
            plan_id: plan.id.clone(),
            total_count: 120,
            ..Default::default()
        })
        .await
        .unwrap();
    sim.control("checkout", json!({"subscription_id": sub.id}))
        .await;
    let path = format!("subscriptions/{}/cycle", sub.id);
    for _ in 0..100 {
        sim.control(&path, json!({"outcome": "charged"})).await;
    }
    let invoices = rzp.fetch_subscription_invoices(&sub.id).await.unwrap();
    assert_eq!(invoices.len(), 101);
    let ids: std::collections::HashSet<_> = invoices.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(ids.len(), 101, "no invoice twice across pages");
    let pays: std::collections::HashSet<_> = invoices
        .iter()
        .map(|i| i.payment_id.clone().unwrap())
        .collect();
    assert_eq!(pays.len(), 101);
    sim.stop().await;
}

#[tokio::test]
async fn idempotent_refunds_refund_once_even_when_the_answer_is_lost() {
    let sim = Sim::start().await;
    let rzp = sim.client();
    let order = rzp
        .create_order(&CreateOrder {
            amount: 30_000,
            currency: "INR".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let co = sim.control("checkout", json!({"order_id": order.id})).await;
    let pay = co["razorpay_payment_id"].as_str().unwrap().to_owned();
    // The first answer is lost after the refund was made; the client retries with the key.
    sim.control(
        "chaos",
        json!({"fail_routes": [{"method": "POST", "path_prefix": format!("/v1/payments/{pay}/refund"),
                                "status": 502, "when": "after"}]}),
    )
    .await;
    let req = CreateRefund {
        notes: Notes::new().with("reason", "stale"),
        ..Default::default()
    };
    let r = rzp
        .refund_payment_idempotent(&pay, &req, "oasis-refund-test1")
        .await
        .unwrap();
    let again = rzp
        .refund_payment_idempotent(&pay, &req, "oasis-refund-test1")
        .await
        .unwrap();
    assert_eq!(again.id, r.id, "same key and body: the same refund");
    let list = rzp.fetch_payment_refunds(&pay).await.unwrap();
    assert_eq!(list.count, 1, "{list:?}");
    assert_eq!(list.items[0].amount, 30_000);
    assert_eq!(
        rzp.fetch_payment(&pay).await.unwrap().status,
        PaymentStatus::Refunded
    );
    // The same key for another request is refused; a malformed key too.
    let other = CreateRefund {
        amount: Some(100),
        ..Default::default()
    };
    let e = rzp
        .refund_payment_idempotent(&pay, &other, "oasis-refund-test1")
        .await
        .unwrap_err();
    assert_eq!(api_error(&e).0, 400);
    let e = rzp
        .refund_payment_idempotent(&pay, &req, "short")
        .await
        .unwrap_err();
    assert_eq!(api_error(&e).0, 400);
}

#[tokio::test]
async fn checkout_can_pay_an_order_another_amount_or_currency() {
    let sim = Sim::start().await;
    let rzp = sim.client();
    let order = rzp
        .create_order(&CreateOrder {
            amount: 30_000,
            currency: "INR".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let co = sim
        .control(
            "checkout",
            json!({"order_id": order.id, "amount": 100, "currency": "USD"}),
        )
        .await;
    let p = rzp
        .fetch_payment(co["razorpay_payment_id"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!((p.amount, p.currency.as_str()), (100, "USD"));
    assert_ne!(
        rzp.fetch_order(&order.id).await.unwrap().status,
        OrderStatus::Paid,
        "an underpaid order is not paid"
    );
}

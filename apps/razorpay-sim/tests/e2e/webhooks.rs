//! Webhook delivery to a receiver that verifies like the server will:
//! signature over the raw bytes with the crate's verifier, then parse.

use crate::{eventually, Sim, WEBHOOK_SECRET};
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use razorpay::{
    parse_webhook, verify_webhook_signature, CreateOrder, CreatePlan, CreateSubscription,
    EventKind, Notes, Period, PlanItem, WebhookEvent,
};
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

#[derive(Clone, Debug)]
pub struct Received {
    pub event_id: String,
    pub raw: Vec<u8>,
    pub signature: String,
    pub event: WebhookEvent,
}

#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<Received>>>,
    /// Answer 500 to this many requests first.
    fail_first: Arc<Mutex<u32>>,
    bad_signatures: Arc<Mutex<u32>>,
}

impl Receiver {
    async fn start(fail_first: u32) -> (Receiver, String, actix_web::dev::ServerHandle) {
        let r = Receiver::default();
        *r.fail_first.lock().unwrap() = fail_first;
        let app_r = r.clone();
        let server = HttpServer::new(move || {
            let r = app_r.clone();
            App::new().route(
                "/hook",
                web::post().to(move |req: HttpRequest, body: web::Bytes| {
                    let r = r.clone();
                    async move { r.handle(&req, &body) }
                }),
            )
        })
        .workers(1)
        .disable_signals()
        .bind("127.0.0.1:0")
        .unwrap();
        let url = format!("http://{}/hook", server.addrs()[0]);
        let server = server.run();
        let handle = server.handle();
        tokio::spawn(server);
        (r, url, handle)
    }

    fn handle(&self, req: &HttpRequest, body: &[u8]) -> HttpResponse {
        {
            let mut f = self.fail_first.lock().unwrap();
            if *f > 0 {
                *f -= 1;
                return HttpResponse::InternalServerError().finish();
            }
        }
        let header = |n: &str| {
            req.headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned()
        };
        let signature = header("X-Razorpay-Signature");
        match parse_webhook(body, &signature, WEBHOOK_SECRET) {
            Ok(event) => {
                self.got.lock().unwrap().push(Received {
                    event_id: header("X-Razorpay-Event-Id"),
                    raw: body.to_vec(),
                    signature,
                    event,
                });
                HttpResponse::Ok().finish()
            }
            Err(_) => {
                *self.bad_signatures.lock().unwrap() += 1;
                HttpResponse::BadRequest().finish()
            }
        }
    }

    fn events(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    async fn wait_for(&self, n: usize) -> Vec<Received> {
        eventually(&format!("{n} webhooks"), || async {
            let got = self.events();
            (got.len() >= n).then_some(got)
        })
        .await
    }
}

fn names(got: &[Received]) -> Vec<String> {
    got.iter().map(|r| r.event.event.clone()).collect()
}

async fn setup(fail_first: u32) -> (Sim, Receiver, actix_web::dev::ServerHandle) {
    let sim = Sim::start().await;
    let (rx, url, handle) = Receiver::start(fail_first).await;
    sim.sim.set_webhook_url(url);
    (sim, rx, handle)
}

async fn order(sim: &Sim, notes: Notes) -> razorpay::Order {
    sim.client()
        .create_order(&CreateOrder {
            amount: 34_800,
            currency: "INR".into(),
            notes,
            ..Default::default()
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn order_checkout_emits_signed_webhooks() {
    let (sim, rx, h) = setup(0).await;
    let o = order(
        &sim,
        Notes::new().with("type", "cheer").with("creatorID", "11"),
    )
    .await;
    let co = sim
        .control("checkout", json!({"order_id": o.id, "method": "upi"}))
        .await;
    let got = rx.wait_for(3).await;
    assert_eq!(
        names(&got),
        ["payment.authorized", "payment.captured", "order.paid"]
    );
    let ids: std::collections::HashSet<_> = got.iter().map(|r| r.event_id.clone()).collect();
    assert_eq!(ids.len(), 3, "event ids are unique per event");
    for r in &got {
        assert!(verify_webhook_signature(
            &r.raw,
            &r.signature,
            WEBHOOK_SECRET
        ));
        assert_eq!(r.event.entity, "event");
        assert!(r.event.account_id.as_deref().unwrap().starts_with("acc_"));
        let p = r.event.payload.payment.as_ref().unwrap();
        assert_eq!(p.id, co["razorpay_payment_id"].as_str().unwrap());
        assert_eq!(r.event.notes_type(), Some("cheer"));
    }
    assert_eq!(got[0].event.kind(), EventKind::PaymentAuthorized);
    assert!(!got[0].event.payload.payment.as_ref().unwrap().captured);
    assert!(got[1].event.payload.payment.as_ref().unwrap().captured);
    let paid = &got[2].event;
    assert_eq!(paid.contains, ["payment", "order"]);
    assert_eq!(paid.payload.order.as_ref().unwrap().id, o.id);

    // The delivery log agrees.
    let log = eventually("log delivered", || async {
        let log = sim.log().await;
        log.iter().all(|e| e["delivered"] == true).then_some(log)
    })
    .await;
    assert_eq!(log.len(), 3);
    assert!(log
        .iter()
        .all(|e| e["attempts"] == 1 && e["last_status"] == 200));

    // A failed checkout: payment.failed.
    let o = order(&sim, Notes::new().with("type", "commission")).await;
    sim.control("checkout", json!({"order_id": o.id, "outcome": "failure"}))
        .await;
    let got = rx.wait_for(4).await;
    assert_eq!(got[3].event.kind(), EventKind::PaymentFailed);
    assert_eq!(
        got[3]
            .event
            .payload
            .payment
            .as_ref()
            .unwrap()
            .error_reason
            .as_deref(),
        Some("payment_failed")
    );
    h.stop(false).await;
    sim.stop().await;
}

#[tokio::test]
async fn subscription_webhooks_and_retries() {
    // The receiver fails the first two requests: delivery is retried.
    let (sim, rx, h) = setup(2).await;
    let rzp = sim.client();
    let plan = rzp
        .create_plan(&CreatePlan {
            period: Period::Monthly,
            interval: 1,
            item: PlanItem {
                name: "Tier".into(),
                amount: 34_800,
                currency: "INR".into(),
                description: None,
            },
            notes: Notes::new(),
        })
        .await
        .unwrap();
    let sub = rzp
        .create_subscription(&CreateSubscription {
            plan_id: plan.id,
            total_count: 2,
            notes: Notes::new()
                .with("type", "subscription")
                .with("tierID", "7"),
            ..Default::default()
        })
        .await
        .unwrap();
    sim.control("checkout", json!({"subscription_id": sub.id}))
        .await;
    let got = rx.wait_for(5).await;
    let mut n = names(&got);
    n.sort();
    assert_eq!(
        n,
        [
            "payment.authorized",
            "payment.captured",
            "subscription.activated",
            "subscription.authenticated",
            "subscription.charged",
        ]
    );
    let charged = got
        .iter()
        .find(|r| r.event.kind() == EventKind::SubscriptionCharged)
        .unwrap();
    assert_eq!(charged.event.contains, ["subscription", "payment"]);
    let s = charged.event.payload.subscription.as_ref().unwrap();
    assert_eq!(s.id, sub.id);
    assert_eq!(s.paid_count, 1);
    assert_eq!(s.notes.get("tierID"), Some("7"));
    assert_eq!(
        charged
            .event
            .payload
            .payment
            .as_ref()
            .unwrap()
            .notes
            .get("type"),
        Some("subscription")
    );

    // The two failures were retried: some event needed more than one attempt,
    // and every event is eventually delivered exactly once.
    let log = eventually("all delivered", || async {
        let log = sim.log().await;
        log.iter().all(|e| e["delivered"] == true).then_some(log)
    })
    .await;
    let attempts: u64 = log.iter().map(|e| e["attempts"].as_u64().unwrap()).sum();
    assert_eq!(attempts, 5 + 2);
    assert!(log.iter().all(|e| e["deliveries"] == 1));

    // Last cycle: charged then completed.
    sim.control(&format!("subscriptions/{}/cycle", sub.id), json!({}))
        .await;
    let got = rx.wait_for(9).await;
    let tail = names(&got[5..]);
    assert!(
        tail.contains(&"subscription.completed".to_string()),
        "{tail:?}"
    );
    assert!(
        tail.contains(&"subscription.charged".to_string()),
        "{tail:?}"
    );
    h.stop(false).await;
    sim.stop().await;
}

#[tokio::test]
async fn chaos_duplicates_and_noncanonical_bytes() {
    let (sim, rx, h) = setup(0).await;
    sim.control(
        "chaos",
        json!({"duplicate_deliveries": true, "shuffle": true, "noncanonical_json": true}),
    )
    .await;
    let o = order(
        &sim,
        Notes::new()
            .with("type", "cheer")
            .with("message", "₹500 for https://example.com/art"),
    )
    .await;
    sim.control("checkout", json!({"order_id": o.id})).await;
    let got = rx.wait_for(6).await;
    let mut per_id: HashMap<String, Vec<&Received>> = HashMap::new();
    for r in &got {
        per_id.entry(r.event_id.clone()).or_default().push(r);
    }
    assert_eq!(per_id.len(), 3, "3 events, each delivered twice");
    for copies in per_id.values() {
        assert_eq!(copies.len(), 2);
        assert_eq!(
            copies[0].raw, copies[1].raw,
            "duplicates carry the same bytes"
        );
    }
    for r in &got {
        let text = std::str::from_utf8(&r.raw).unwrap();
        assert!(text.contains(r"\u20b9500"), "{text}");
        assert!(text.contains(r"https:\/\/example.com\/art"), "{text}");
        assert!(
            r.event
                .payload
                .payment
                .as_ref()
                .unwrap()
                .notes
                .get("message")
                == Some("₹500 for https://example.com/art")
        );
        // Re-serialising the parsed JSON gives other bytes: the signature no longer matches.
        let reserialised =
            serde_json::to_vec(&serde_json::from_slice::<serde_json::Value>(&r.raw).unwrap())
                .unwrap();
        assert_ne!(reserialised, r.raw);
        assert!(!verify_webhook_signature(
            &reserialised,
            &r.signature,
            WEBHOOK_SECRET
        ));
    }
    assert_eq!(*rx.bad_signatures.lock().unwrap(), 0);
    h.stop(false).await;
    sim.stop().await;
}

#[tokio::test]
async fn dropped_webhook_can_be_redelivered() {
    let (sim, rx, h) = setup(0).await;
    sim.control("webhooks/drop_next", json!({"count": 1})).await;
    let o = order(&sim, Notes::new().with("type", "cheer")).await;
    sim.control("checkout", json!({"order_id": o.id})).await;
    let got = rx.wait_for(2).await;
    assert_eq!(names(&got), ["payment.captured", "order.paid"]);
    let log = sim.log().await;
    let dropped: Vec<_> = log.iter().filter(|e| e["dropped"] == true).collect();
    assert_eq!(dropped.len(), 1);
    assert_eq!(dropped[0]["event"], "payment.authorized");
    assert_eq!(dropped[0]["attempts"], 0);
    let id = dropped[0]["event_id"].as_str().unwrap().to_owned();

    sim.control("webhooks/redeliver", json!({"event_id": id}))
        .await;
    let got = rx.wait_for(3).await;
    assert_eq!(got[2].event_id, id);
    assert_eq!(got[2].event.kind(), EventKind::PaymentAuthorized);
    h.stop(false).await;
    sim.stop().await;
}

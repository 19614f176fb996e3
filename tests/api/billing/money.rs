//! Money correctness: stale checkouts are replaced, payments for tiers no longer sold are
//! recorded, grant nothing and are refunded exactly once, and payments that do not match what
//! was asked grant nothing and are flagged for an operator.
use super::*;

/// Polls `sql` (one boolean) until it holds.
pub(super) async fn until(app: &TestApp, what: &str, sql: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !boolean(app, sql) {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {sql}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

impl Sim {
    /// An authenticated `/v1` POST or PATCH (the standalone simulator's keys).
    async fn api(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let r = self
            .http
            .request(method, format!("{}{path}", self.base))
            .basic_auth(KEY_ID, Some(KEY_SECRET))
            .json(&body)
            .send()
            .await
            .expect("sim reachable");
        let status = r.status();
        let v: Value = r.json().await.expect("sim json");
        assert!(status.is_success(), "{path}: {status} {v}");
        v
    }

    async fn refunds_of(&self, payment: &str) -> Vec<Value> {
        self.get(&format!("/v1/payments/{payment}/refunds")).await["items"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Redelivers every event the simulator sent (same event ids).
    async fn redeliver_all(&self) {
        for e in self.events().await {
            self.post(
                "/_sim/webhooks/redeliver",
                json!({"event_id": e["event_id"]}),
            )
            .await;
        }
    }
}

async fn patch_tier(app: &TestApp, who: &TestUser, tier: i64, body: Value) {
    let r = app
        .patch(
            &format!("/content/api/tiers/{tier}/"),
            &body,
            Some(&who.token),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
}

fn notification_kinds(app: &TestApp, who: &TestUser) -> String {
    text(
        app,
        &format!(
            "SELECT coalesce(string_agg(kind || ':' || verb, ' | ' ORDER BY id), '') AS t
             FROM notifications WHERE recipient_id = {}",
            who.id
        ),
    )
}

#[tokio::test]
async fn a_price_change_replaces_the_pending_checkout_and_cancels_the_old_one() {
    let (app, sim) = standalone().await;
    let creator = app.create_user("pc_creator", true);
    let fan = app.create_user("pc_fan", false);
    let tier = create_tier(&app, &creator, 30_000).await;
    let old = create_sub(&app, &fan, tier).await;
    assert_eq!(create_sub(&app, &fan, tier).await, old, "unchanged: reused");

    patch_tier(&app, &creator, tier, json!({"price": 40_000})).await;
    // The first cancellation attempt fails at Razorpay: recorded, retried.
    sim.post(
        "/_sim/chaos",
        json!({"fail_routes": [{"method": "POST", "path_prefix": format!("/v1/subscriptions/{old}/cancel"),
                                "status": 502, "times": 3}]}),
    )
    .await;
    let new = create_sub(&app, &fan, tier).await;
    assert_ne!(
        new, old,
        "a checkout made at the old price is not handed out again"
    );
    let plan = sim.get(&format!("/v1/subscriptions/{new}")).await["plan_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        sim.get(&format!("/v1/plans/{plan}")).await["item"]["amount"],
        40_000
    );
    assert_eq!(
        create_sub(&app, &fan, tier).await,
        new,
        "the new one is reused"
    );
    assert_eq!(
        text(
            &app,
            "SELECT string_agg(concat_ws(',', status, amount, coalesce(void_reason, '-')), ' | ' ORDER BY id) AS t
             FROM memberships"
        ),
        "cancelled,30000,replaced | created,40000,-"
    );
    until(
        &app,
        "the old subscription's cancellation",
        &format!(
            "SELECT coalesce((SELECT status = 'cancelled' AND attempts >= 2 AND outcome = 'cancelled'
                FROM billing_subscription_cancellations WHERE razorpay_subscription_id = '{old}'), false) AS b"
        ),
    )
    .await;
    assert_eq!(
        sim.get(&format!("/v1/subscriptions/{old}")).await["status"],
        "cancelled"
    );
    assert_eq!(
        sim.get(&format!("/v1/subscriptions/{new}")).await["status"],
        "created"
    );
    // The new checkout is paid at the new price: access, no refund.
    let paid = sim.pay(&new).await;
    save_sub(&app, &fan, tier, &paid).await;
    settle(&app, &sim).await;
    let l = list(&app, &fan).await;
    assert!(
        l.iter()
            .any(|m| m["has_access"] == true && m["amount"] == 40_000),
        "{l:?}"
    );
    assert_eq!(int(&app, "SELECT count(*) AS n FROM billing_refunds"), 0);
}

#[tokio::test]
async fn paying_for_a_deactivated_tier_is_recorded_refunded_once_and_grants_nothing() {
    let (app, sim) = standalone().await;
    let creator = app.create_user("dt_creator", true);
    let fan = app.create_user("dt_fan", false);
    let tier = create_tier(&app, &creator, 30_000).await;
    let post = create_post(&app, &creator, &[tier]).await;
    let sid = create_sub(&app, &fan, tier).await;
    let r = app
        .post(
            "/subscriptions/create_onetime/",
            &json!({"tierID": tier}),
            Some(&fan.token),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let oid = r.body["SubscriptionID"].as_str().unwrap().to_owned();
    patch_tier(&app, &creator, tier, json!({"is_active": false})).await;

    // Every webhook is delivered twice, and the first answer to each refund is lost after
    // Razorpay made it (the client retries with the same idempotency key).
    sim.post(
        "/_sim/chaos",
        json!({"duplicate_deliveries": true, "shuffle": true,
               "fail_routes": [{"method": "POST", "path_prefix": "/v1/payments/", "status": 502,
                                "when": "after", "times": 2}]}),
    )
    .await;
    let sub_paid = sim.pay(&sid).await;
    let order_paid = sim.pay(&oid).await;
    save_sub(&app, &fan, tier, &sub_paid).await;
    let r = app
        .post(
            "/subscriptions/save",
            &json!({"tierID": tier, "razorpay_payment_id": order_paid["razorpay_payment_id"],
                    "razorpay_signature": order_paid["razorpay_signature"], "razorpay_order_id": oid}),
            Some(&fan.token),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    settle(&app, &sim).await;
    until(
        &app,
        "both refunds",
        "SELECT count(*) = 2 AND bool_and(status = 'sent' AND razorpay_refund_id IS NOT NULL) AS b
         FROM billing_refunds",
    )
    .await;
    // Everything again: redelivered webhooks, the Checkout callbacks, a reconciliation.
    sim.redeliver_all().await;
    save_sub(&app, &fan, tier, &sub_paid).await;
    let mut cli = app.settings.clone();
    cli.public_url = app.address.clone();
    reconcile(&cli).await;
    settle(&app, &sim).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    drain(&app).await;

    for paid in [&sub_paid, &order_paid] {
        let pay = paid["razorpay_payment_id"].as_str().unwrap();
        let refunds = sim.refunds_of(pay).await;
        assert_eq!(refunds.len(), 1, "exactly one refund of {pay}: {refunds:?}");
        assert_eq!(refunds[0]["amount"], 30_000);
        assert_eq!(
            text(
                &app,
                &format!(
                    "SELECT concat_ws(',', p.status, p.amount, r.razorpay_refund_id, r.reason)
                     FROM payments p JOIN billing_refunds r USING (razorpay_payment_id)
                     WHERE p.razorpay_payment_id = '{pay}'"
                )
            ),
            format!(
                "refunded,30000,{},the tier accepts no new members",
                refunds[0]["id"].as_str().unwrap()
            ),
            "recorded, never ignored"
        );
    }
    // Nothing granted: no access, no one-time membership, the order rejected.
    assert!(locked(&app, post, &fan).await);
    assert!(list(&app, &fan)
        .await
        .iter()
        .all(|m| m["has_access"] == false));
    assert_eq!(
        text(
            &app,
            "SELECT concat_ws(',', (SELECT string_agg(kind || ':' || status || ':' || coalesce(void_reason, '-'), ' ') FROM memberships),
                                  (SELECT status FROM billing_orders)) AS t"
        ),
        "recurring:cancelled:stale_checkout,rejected"
    );
    // The subscription no longer charges.
    until(
        &app,
        "the subscription's cancellation",
        "SELECT coalesce((SELECT status = 'cancelled' FROM billing_subscription_cancellations), false) AS b",
    )
    .await;
    assert_eq!(
        sim.get(&format!("/v1/subscriptions/{sid}")).await["status"],
        "cancelled"
    );
    // The fan and the creator are told, once per payment.
    until(
        &app,
        "refund notifications",
        "SELECT count(*) = 4 AS b FROM notifications WHERE kind = 'payment_refunded'",
    )
    .await;
    let fan_sees = notification_kinds(&app, &fan);
    assert!(
        fan_sees.contains("payment_refunded:Your payment of INR 300.00 for Gold was refunded: the tier accepts no new members."),
        "{fan_sees}"
    );
    assert!(!fan_sees.contains("membership:"), "{fan_sees}");
    let creator_sees = notification_kinds(&app, &creator);
    assert!(
        creator_sees.contains(
            "payment_refunded:A payment of INR 300.00 for Gold was refunded automatically"
        ),
        "{creator_sees}"
    );
    assert!(
        !creator_sees.contains("membership:"),
        "nobody joined: {creator_sees}"
    );
}

#[tokio::test]
async fn payments_that_do_not_match_what_was_asked_grant_nothing_and_are_flagged() {
    let (app, sim) = standalone().await;
    let creator = app.create_user("mm_creator", true);
    let fan = app.create_user("mm_fan", false);
    let tier = create_tier(&app, &creator, 30_000).await;
    let post = create_post(&app, &creator, &[tier]).await;

    // A one-time purchase paid 100 paise instead of 30 000 (webhook and Checkout callback).
    let r = app
        .post(
            "/subscriptions/create_onetime/",
            &json!({"tierID": tier}),
            Some(&fan.token),
        )
        .await;
    let oid = r.body["SubscriptionID"].as_str().unwrap().to_owned();
    let paid = sim
        .post("/_sim/checkout", json!({"order_id": oid, "amount": 100}))
        .await;
    let r = app
        .post(
            "/subscriptions/save",
            &json!({"tierID": tier, "razorpay_payment_id": paid["razorpay_payment_id"],
                    "razorpay_signature": paid["razorpay_signature"], "razorpay_order_id": oid}),
            Some(&fan.token),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    // A cheer of 5 000 INR paid as 5 000 USD.
    let r = app
        .post(
            "/subscriptions/create_order",
            &json!({"amount": 5_000, "currency": "INR", "creatorID": creator.id, "message": "hi"}),
            Some(&fan.token),
        )
        .await;
    let cheer = r.body["SubscriptionID"].as_str().unwrap().to_owned();
    sim.post(
        "/_sim/checkout",
        json!({"order_id": cheer, "currency": "USD"}),
    )
    .await;
    settle(&app, &sim).await;

    assert!(locked(&app, post, &fan).await);
    assert_eq!(
        int(&app, "SELECT count(*) AS n FROM memberships"),
        0,
        "no one-time membership"
    );
    let r = app
        .get(&format!("/subscriptions/list_message/{}", creator.id), None)
        .await;
    assert_eq!(r.body["messages"], json!([]), "{}", r.text);
    assert_eq!(
        text(
            &app,
            "SELECT string_agg(kind || ':' || status, ' ' ORDER BY id) AS t FROM billing_orders"
        ),
        "one_time:rejected cheer:rejected"
    );

    // A recurring membership whose plan was changed at Razorpay (a dashboard edit): the renewal
    // charges 100 paise where the membership costs 30 000.
    let sid = create_sub(&app, &fan, tier).await;
    let first = sim.pay(&sid).await;
    save_sub(&app, &fan, tier, &first).await;
    settle(&app, &sim).await;
    assert!(
        !locked(&app, post, &fan).await,
        "the matching first charge grants access"
    );
    let cheap = sim
        .api(
            reqwest::Method::POST,
            "/v1/plans",
            json!({"period": "monthly", "interval": 1,
                   "item": {"name": "cheap", "amount": 100, "currency": "INR"}}),
        )
        .await;
    sim.api(
        reqwest::Method::PATCH,
        &format!("/v1/subscriptions/{sid}"),
        json!({"plan_id": cheap["id"], "schedule_change_at": "now"}),
    )
    .await;
    sim.post(
        &format!("/_sim/subscriptions/{sid}/cycle"),
        json!({"outcome": "charged"}),
    )
    .await;
    settle(&app, &sim).await;
    assert!(
        locked(&app, post, &fan).await,
        "the mismatched renewal grants nothing"
    );
    assert_eq!(
        text(
            &app,
            "SELECT concat_ws(',', status, void_reason) AS t FROM memberships WHERE kind = 'recurring'"
        ),
        "cancelled,amount_mismatch"
    );

    // Every mismatch is recorded with what was asked and what came, and nothing is refunded
    // behind the operator's back.
    assert_eq!(
        text(
            &app,
            "SELECT string_agg(concat_ws(',', expected_amount, expected_currency, actual_amount, actual_currency),
                               ' | ' ORDER BY id) AS t FROM billing_payment_flags"
        ),
        "30000,INR,100,INR | 5000,INR,5000,USD | 30000,INR,100,INR"
    );
    assert_eq!(
        int(&app, "SELECT count(*) AS n FROM payments"),
        4,
        "every payment recorded"
    );
    assert_eq!(int(&app, "SELECT count(*) AS n FROM billing_refunds"), 0);
    let listed = oasis_server::workflows::cli::cli_flags(app.settings.clone())
        .await
        .expect("oasis billing flags");
    assert!(listed.starts_with("3 flagged payment(s)"), "{listed}");
    assert!(
        listed.contains(&oid) && listed.contains(&cheer) && listed.contains(&sid),
        "{listed}"
    );
    assert!(
        listed.contains("expected 5000 INR\tpaid 5000 USD"),
        "{listed}"
    );
}

#[tokio::test]
async fn paying_an_order_for_a_deleted_tier_is_refunded() {
    let (app, sim) = standalone().await;
    let creator = app.create_user("dl_creator", true);
    let fan = app.create_user("dl_fan", false);
    let tier = create_tier(&app, &creator, 25_000).await;
    let r = app
        .post(
            "/subscriptions/create_onetime/",
            &json!({"tierID": tier}),
            Some(&fan.token),
        )
        .await;
    let oid = r.body["SubscriptionID"].as_str().unwrap().to_owned();
    let r = app
        .delete(&format!("/content/api/tiers/{tier}/"), Some(&creator.token))
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    let paid = sim.pay(&oid).await;
    let pay = paid["razorpay_payment_id"].as_str().unwrap();
    settle(&app, &sim).await;
    until(
        &app,
        "the refund",
        "SELECT coalesce((SELECT status = 'sent' FROM billing_refunds), false) AS b",
    )
    .await;
    assert_eq!(sim.refunds_of(pay).await.len(), 1);
    assert_eq!(
        text(
            &app,
            "SELECT concat_ws(',', o.status, r.reason, (SELECT count(*) FROM memberships)) AS t
             FROM billing_orders o JOIN billing_refunds r ON r.order_id = o.id"
        ),
        "rejected,the tier no longer exists,0"
    );
    until(
        &app,
        "the fan's notification",
        &format!(
            "SELECT count(*) = 1 AS b FROM notifications WHERE kind = 'payment_refunded' AND recipient_id = {}",
            fan.id
        ),
    )
    .await;
}

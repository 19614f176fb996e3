//! Billing end to end through the real server, against the Razorpay simulator as the peer —
//! embedded (default `spawn_app`, mounted under `/_razorpay`) and standalone
//! (`razorpay_sim::spawn` + `RAZORPAY_*` settings pointing at it).
use diesel::prelude::*;
use oasis_tests::{json, spawn_app, spawn_app_with, Resp, TestApp, TestUser};
use serde_json::Value;
use std::time::{Duration, Instant};

const KEY_ID: &str = "rzp_test_standalone01";
const KEY_SECRET: &str = "standalone_key_secret";
const WEBHOOK_SECRET: &str = "standalone_webhook_secret";

// ---------------------------------------------------------------------------------------------
// helpers

fn int(app: &TestApp, sql: &str) -> i64 {
    app.query_i64(sql)
}

fn boolean(app: &TestApp, sql: &str) -> bool {
    app.query_bool(sql)
}

fn text(app: &TestApp, sql: &str) -> String {
    app.query_text(sql)
}

/// An HTTP client for the simulator that cannot hang a test forever.
fn sim_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

/// A simulator handle: its base URL (embedded: `<app>/_razorpay`).
struct Sim {
    base: String,
    http: reqwest::Client,
    _handle: Option<actix_web::dev::ServerHandle>,
}

impl Sim {
    fn embedded(app: &TestApp) -> Sim {
        Sim {
            base: app.url("/_razorpay"),
            http: sim_client(),
            _handle: None,
        }
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .expect("sim reachable");
        let status = r.status();
        let v: Value = r.json().await.expect("sim json");
        assert!(status.is_success(), "{path}: {status} {v}");
        v
    }

    async fn get(&self, path: &str) -> Value {
        self.http
            .get(format!("{}{path}", self.base))
            // The standalone simulator's keys (the embedded one's are derived, unknown here).
            .basic_auth(KEY_ID, Some(KEY_SECRET))
            .send()
            .await
            .expect("sim reachable")
            .json()
            .await
            .expect("sim json")
    }

    /// Plays the customer at Checkout: `{razorpay_payment_id, razorpay_signature, ...}`.
    async fn pay(&self, id: &str) -> Value {
        let key = if id.starts_with("sub_") {
            "subscription_id"
        } else {
            "order_id"
        };
        let v = self
            .post("/_sim/checkout", json!({ key: id, "outcome": "success" }))
            .await;
        assert!(v["razorpay_payment_id"].is_string(), "{v}");
        v
    }

    async fn events(&self) -> Vec<Value> {
        self.get("/_sim/webhooks").await["items"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

/// A standalone simulator (own server) and an app configured with its keys.
async fn standalone_with(tweak: impl FnOnce(&mut oasis_server::Settings)) -> (TestApp, Sim) {
    let (sim, addr, handle) = razorpay_sim::spawn(
        razorpay_sim::SimConfig {
            key_id: KEY_ID.into(),
            key_secret: KEY_SECRET.into(),
            webhook_secret: WEBHOOK_SECRET.into(),
            webhook_url: None,
            state_file: None,
        },
        "127.0.0.1:0",
    )
    .await
    .expect("simulator starts");
    let base = format!("http://{addr}");
    let b = base.clone();
    let app = spawn_app_with(move |s| {
        standalone_settings(s, &b);
        tweak(s);
    })
    .await;
    sim.set_webhook_url(app.url("/razorpay/webhooks/"));
    (
        app,
        Sim {
            base,
            http: sim_client(),
            _handle: Some(handle),
        },
    )
}

fn standalone_settings(s: &mut oasis_server::Settings, base: &str) {
    s.razorpay.key_id = Some(KEY_ID.into());
    s.razorpay.key_secret = Some(secrecy::SecretString::from(KEY_SECRET));
    s.razorpay.webhook_secret = Some(secrecy::SecretString::from(WEBHOOK_SECRET));
    s.razorpay.api_base = base.to_owned();
}

async fn standalone() -> (TestApp, Sim) {
    standalone_with(|_| {}).await
}

/// Waits until the simulator has delivered (or dropped) every event and the server has
/// processed every stored one.
async fn settle(app: &TestApp, sim: &Sim) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let events = sim.events().await;
        let sent = events.iter().all(|e| {
            e["delivered"].as_bool() == Some(true) || e["dropped"].as_bool() == Some(true)
        });
        let pending = int(
            app,
            "SELECT count(*) AS n FROM billing_webhook_events WHERE processed_at IS NULL",
        );
        if sent && pending == 0 {
            // What the last one wrote is committed; its read-cache notification may still be
            // on its way (the next read must not race it).
            app.settle().await;
            return;
        }
        assert!(
            Instant::now() < deadline,
            "webhooks did not settle: pending {pending}, events {events:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the server processed every stored event (no simulator involved).
async fn drain(app: &TestApp) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while int(
        app,
        "SELECT count(*) AS n FROM billing_webhook_events WHERE processed_at IS NULL",
    ) > 0
    {
        assert!(Instant::now() < deadline, "inbox not drained");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    app.settle().await;
}

async fn create_tier(app: &TestApp, who: &TestUser, price: i64) -> i64 {
    let r = app
        .post(
            "/content/api/tiers/",
            &json!({"name": "Gold", "description": "d", "price": price, "currency": "INR", "benefits": ["a"]}),
            Some(&who.token),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.body["id"].as_i64().unwrap()
}

async fn create_post(app: &TestApp, who: &TestUser, tiers: &[i64]) -> i64 {
    let r = app
        .post(
            "/content/api/content/",
            &json!({"title": "members only", "body": "secret body", "tiers": tiers}),
            Some(&who.token),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.body["id"].as_i64().unwrap()
}

async fn locked(app: &TestApp, post: i64, who: &TestUser) -> bool {
    let r = app
        .get(&format!("/content/api/content/{post}/"), Some(&who.token))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let locked = r.body["locked"].as_bool().expect("locked flag");
    assert_eq!(locked, r.body["body"].is_null(), "{}", r.text);
    locked
}

async fn list(app: &TestApp, who: &TestUser) -> Vec<Value> {
    let r = app.get("/subscriptions/list", Some(&who.token)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["subscriptions"].as_array().unwrap().clone()
}

async fn create_sub(app: &TestApp, fan: &TestUser, tier: i64) -> String {
    let r = app
        .post(
            "/subscriptions/create",
            &json!({"tierID": tier}),
            Some(&fan.token),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let sid = r.body["SubscriptionID"].as_str().unwrap().to_owned();
    assert!(sid.starts_with("sub_"), "{sid}");
    sid
}

async fn save_sub(app: &TestApp, fan: &TestUser, tier: i64, paid: &Value) {
    let r = app
        .post(
            "/subscriptions/save",
            &json!({
                "tierID": tier,
                "razorpay_payment_id": paid["razorpay_payment_id"],
                "razorpay_signature": paid["razorpay_signature"],
                "razorpay_subscription_id": paid["razorpay_subscription_id"],
            }),
            Some(&fan.token),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body, json!({"details": "Subscription created"}));
}

/// A snapshot of everything billing stored, comparable across runs (ids of Razorpay objects,
/// statuses, amounts, periods).
fn state(app: &TestApp) -> String {
    text(
        app,
        "SELECT coalesce((SELECT string_agg(concat_ws(',', kind, status, amount, currency, paid_count,
                    current_end, cancel_at_period_end, razorpay_subscription_id, razorpay_order_id), ' | ' ORDER BY id)
                  FROM memberships), '') || ' || ' ||
                coalesce((SELECT string_agg(concat_ws(',', razorpay_payment_id, kind, status, amount, currency, amount_refunded),
                    ' | ' ORDER BY razorpay_payment_id) FROM payments), '') || ' || ' ||
                coalesce((SELECT string_agg(concat_ws(',', razorpay_order_id, kind, status, amount, razorpay_payment_id),
                    ' | ' ORDER BY razorpay_order_id) FROM billing_orders), '') AS t",
    )
}

// ---------------------------------------------------------------------------------------------
// the entitlement rule

#[tokio::test]
async fn entitlement_sql_mirrors_the_rule() {
    let app = spawn_app().await;
    let mut conn = app.conn();
    let cases = oasis_billing::entitlement::fixtures();
    let mut granted = 0;
    for c in &cases {
        let sql = oasis_db::billing::sql_has_access(&mut conn, &c.facts(), c.at).unwrap();
        assert_eq!(sql, c.expected(), "{c:?}");
        granted += sql as usize;
    }
    assert!(granted > 10 && granted < cases.len() / 2, "{granted}");
}

#[tokio::test]
async fn access_changes_sql_mirrors_the_rule() {
    let app = spawn_app().await;
    let mut conn = app.conn();
    let mut changes = 0;
    for c in oasis_billing::entitlement::fixtures() {
        let sql = oasis_db::billing::sql_access_changes_at(&mut conn, &c.facts(), c.at).unwrap();
        // PostgreSQL keeps microseconds.
        let expected = c.expected_change().map(|t| t.timestamp_micros());
        assert_eq!(sql.map(|t| t.timestamp_micros()), expected, "{c:?}");
        changes += sql.is_some() as usize;
    }
    assert!(changes > 20, "{changes}");
}

#[tokio::test]
async fn live_statuses_sql_mirrors_the_rule() {
    let app = spawn_app().await;
    let mut conn = app.conn();
    let mut live = 0;
    for s in oasis_billing::MembershipStatus::ALL {
        let sql = oasis_db::billing::sql_status_is_live(&mut conn, s.as_str()).unwrap();
        assert_eq!(sql, s.is_live(), "{s:?}");
        live += sql as usize;
    }
    assert_eq!(live, oasis_billing::MembershipStatus::LIVE.len());
    assert!(!oasis_db::billing::sql_status_is_live(&mut conn, "weird").unwrap());
}

#[tokio::test]
async fn billing_states_are_constrained_and_unknown_ones_are_errors_when_read() {
    use oasis_billing::ports::BillingStore;
    let app = spawn_app().await;
    let creator = app.create_user("st_creator", true);
    let fan = app.create_user("st_fan", false);
    let tier = create_tier(&app, &creator, 50_000).await;
    let mut conn = app.conn();
    diesel::sql_query(format!(
        "INSERT INTO memberships (user_id, tier_id, kind, status, amount, currency, razorpay_subscription_id)
         VALUES ({}, {tier}, 'recurring', 'active', 50000, 'INR', 'sub_st')",
        fan.id
    ))
    .execute(&mut conn)
    .unwrap();
    diesel::sql_query(
        "INSERT INTO billing_orders (razorpay_order_id, kind, amount, currency) VALUES ('order_st', 'cheer', 100, 'INR')",
    )
    .execute(&mut conn)
    .unwrap();
    // Every state column refuses a value the code does not know.
    for update in [
        "UPDATE memberships SET status = 'weird'",
        "UPDATE memberships SET kind = 'weird'",
        "UPDATE memberships SET void_reason = 'weird'",
        "UPDATE billing_orders SET status = 'weird'",
        "UPDATE billing_orders SET kind = 'weird'",
    ] {
        let e = diesel::sql_query(update).execute(&mut conn).unwrap_err();
        assert!(e.to_string().contains("check constraint"), "{update}: {e}");
    }
    // Should one get past the schema anyway, reading it is an error, not a guessed default.
    diesel::connection::SimpleConnection::batch_execute(
        &mut conn,
        "ALTER TABLE memberships DROP CONSTRAINT memberships_status_check;
         UPDATE memberships SET status = 'weird';
         ALTER TABLE billing_orders DROP CONSTRAINT billing_orders_status_check;
         UPDATE billing_orders SET status = 'weird'",
    )
    .unwrap();
    let mut store = oasis_db::billing::PgBilling(&mut conn);
    let e = store.lock_membership_by_subscription("sub_st").unwrap_err();
    assert!(e.to_string().contains("memberships.status"), "{e}");
    let e = store.lock_order("order_st").unwrap_err();
    assert!(e.to_string().contains("billing_orders.status"), "{e}");
}

/// The store contract the in-memory fake also honours, run against PostgreSQL (in one
/// transaction, as the workflows use it).
#[tokio::test]
async fn postgres_billing_store_honours_the_contract() {
    use chrono::{TimeZone, Utc};
    let app = spawn_app().await;
    let creator = app.create_user("bc_creator", true);
    let fan = app.create_user("Bc_Fan", false);
    let tier = create_tier(&app, &creator, 50_000).await;
    let other_tier = create_tier(&app, &creator, 20_000).await;
    let world = oasis_billing::contract::World {
        creator: creator.id,
        fan: fan.id,
        fan_username: "bc_fan",
        tier,
        other_tier,
        missing: 999_999,
    };
    let mut conn = app.conn();
    conn.test_transaction::<_, diesel::result::Error, _>(|conn| {
        oasis_billing::contract::run_all(
            &mut oasis_db::billing::PgBilling(conn),
            &world,
            Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).unwrap(),
        );
        Ok(())
    });
    assert_eq!(
        int(&app, "SELECT count(*) FROM memberships"),
        0,
        "rolled back"
    );
}

// ---------------------------------------------------------------------------------------------
// recurring memberships

#[tokio::test]
async fn recurring_membership_end_to_end_embedded() {
    let app = spawn_app().await;
    let sim = Sim::embedded(&app);
    let creator = app.create_user("rc_creator", true);
    let fan = app.create_user("rc_fan", false);
    let tier = create_tier(&app, &creator, 50_000).await;
    let post = create_post(&app, &creator, &[tier]).await;
    assert!(locked(&app, post, &fan).await);

    let r = app
        .post(
            "/subscriptions/create",
            &json!({"tierID": tier}),
            Some(&fan.token),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.body["public_key"]
        .as_str()
        .unwrap()
        .starts_with("rzp_test_"));
    let sid = r.body["SubscriptionID"].as_str().unwrap().to_owned();
    // Asking again before paying hands back the same checkout.
    assert_eq!(create_sub(&app, &fan, tier).await, sid);
    // The plan is created once and carries the tier's price unchanged; 120 monthly cycles.
    assert_eq!(int(&app, "SELECT count(*) AS n FROM billing_plans"), 1);
    assert_eq!(int(&app, "SELECT amount AS n FROM billing_plans"), 50_000);

    // A forged Checkout signature is refused and records nothing.
    let r = app
        .post(
            "/subscriptions/save",
            &json!({"tierID": tier, "razorpay_payment_id": "pay_ForgedForged01",
                    "razorpay_signature": "00".repeat(32), "razorpay_subscription_id": sid}),
            Some(&fan.token),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(r.body["razorpay_signature"].is_array());
    assert_eq!(int(&app, "SELECT count(*) AS n FROM payments"), 0);
    assert_eq!(text(&app, "SELECT status AS t FROM memberships"), "created");

    let paid = sim.pay(&sid).await;
    // Someone else cannot confirm (or learn about) this checkout.
    let other = app.create_user("rc_other", false);
    let r = app
        .post(
            "/subscriptions/save",
            &json!({"tierID": tier, "razorpay_payment_id": paid["razorpay_payment_id"],
                    "razorpay_signature": paid["razorpay_signature"], "razorpay_subscription_id": sid}),
            Some(&other.token),
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.text);
    save_sub(&app, &fan, tier, &paid).await;
    let l = list(&app, &fan).await;
    assert_eq!(l.len(), 1, "{l:?}");
    assert_eq!(l[0]["status"], "active");
    assert_eq!(l[0]["type"], "recurring");
    assert_eq!(l[0]["has_access"], true);
    assert_eq!(l[0]["amount"], 50_000);
    assert_eq!(l[0]["creator"], creator.id);
    assert_eq!(l[0]["cancel_at_period_end"], false);
    assert!(l[0]["current_period_end"].is_string());
    assert!(!locked(&app, post, &fan).await, "entitled after paying");
    assert_eq!(
        int(
            &app,
            &format!(
                "SELECT count(*) AS n FROM follows WHERE follower_id = {} AND creator_id = {}",
                fan.id, creator.id
            )
        ),
        1,
        "subscribing follows the creator"
    );

    settle(&app, &sim).await;
    assert_eq!(
        int(
            &app,
            "SELECT count(*) AS n FROM payments WHERE kind = 'subscription' AND amount = 50000"
        ),
        1
    );
    assert_eq!(int(&app, "SELECT count(*) AS n FROM memberships"), 1);
    // A second live membership of the same tier is refused.
    let r = app
        .post(
            "/subscriptions/create",
            &json!({"tierID": tier}),
            Some(&fan.token),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(r.body["code"], "already_subscribed");

    // A renewal: charged → a second payment, paid period extended.
    let before = text(&app, "SELECT current_end::text AS t FROM memberships");
    sim.post(
        &format!("/_sim/subscriptions/{sid}/cycle"),
        json!({"outcome": "charged"}),
    )
    .await;
    settle(&app, &sim).await;
    assert_eq!(int(&app, "SELECT count(*) AS n FROM payments"), 2);
    assert_eq!(int(&app, "SELECT paid_count AS n FROM memberships"), 2);
    assert!(boolean(
        &app,
        &format!("SELECT current_end > '{before}'::timestamptz AS b FROM memberships")
    ));

    // Cancel at cycle end: access until the period ends.
    let r = app
        .post(
            "/subscriptions/end/",
            &json!({"tier": tier, "end_type": 1}),
            Some(&fan.token),
        )
        .await;
    assert_eq!(r.body, json!({"status": "Success"}), "{}", r.text);
    let l = list(&app, &fan).await;
    assert_eq!(l[0]["cancel_at_period_end"], true);
    assert_eq!(l[0]["has_access"], true);
    assert!(!locked(&app, post, &fan).await);
    // Cancel now: access ends now.
    let r = app
        .post(
            "/subscriptions/end/",
            &json!({"tier": tier, "end_type": 0}),
            Some(&fan.token),
        )
        .await;
    assert_eq!(r.body, json!({"status": "Success"}), "{}", r.text);
    let l = list(&app, &fan).await;
    assert_eq!(l[0]["status"], "cancelled");
    assert_eq!(l[0]["has_access"], false);
    assert!(
        locked(&app, post, &fan).await,
        "locked again after cancelling now"
    );
    settle(&app, &sim).await;
    assert_eq!(list(&app, &fan).await[0]["has_access"], false);
    let r = app
        .post(
            "/subscriptions/end/",
            &json!({"tier": tier, "end_type": 0}),
            Some(&fan.token),
        )
        .await;
    assert_eq!(
        r.body,
        json!({"status": "Failed", "message": "Subscription does not exist"})
    );
}

#[tokio::test]
async fn concurrent_duplicate_creates_share_one_subscription() {
    let (app, sim) = standalone().await;
    let creator = app.create_user("cc_creator", true);
    let fan = app.create_user("cc_fan", false);
    let tier = create_tier(&app, &creator, 20_000).await;
    let body = json!({"tierID": tier});
    let calls = (0..4).map(|_| app.post("/subscriptions/create", &body, Some(&fan.token)));
    let results = futures_join_all(calls).await;
    let mut ids = Vec::new();
    for r in &results {
        assert_eq!(r.status, 200, "{}", r.text);
        ids.push(r.body["SubscriptionID"].as_str().unwrap().to_owned());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_eq!(int(&app, "SELECT count(*) AS n FROM memberships"), 1);
    let subs = sim.get("/v1/subscriptions?count=100").await;
    assert_eq!(subs["count"], 1, "one Razorpay subscription: {subs}");
}

async fn futures_join_all<F: std::future::Future>(fs: impl Iterator<Item = F>) -> Vec<F::Output> {
    let handles: Vec<_> = fs.collect();
    let mut out = Vec::new();
    // Poll them concurrently on this task.
    let mut pinned: Vec<_> = handles.into_iter().map(Box::pin).collect();
    let mut done: Vec<Option<F::Output>> = (0..pinned.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut all = true;
        for (i, f) in pinned.iter_mut().enumerate() {
            if done[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => done[i] = Some(v),
                    std::task::Poll::Pending => all = false,
                }
            }
        }
        if all {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    for d in done {
        out.push(d.expect("finished"));
    }
    out
}

#[tokio::test]
async fn razorpay_failures_are_a_clean_502_and_leave_nothing_behind() {
    let (app, sim) = standalone().await;
    let creator = app.create_user("gw_creator", true);
    let fan = app.create_user("gw_fan", false);
    let tier = create_tier(&app, &creator, 20_000).await;
    sim.post(
        "/_sim/chaos",
        json!({"fail_routes": [{"method": "POST", "path_prefix": "/v1/subscriptions", "status": 502, "times": 1}]}),
    )
    .await;
    let r = app
        .post(
            "/subscriptions/create",
            &json!({"tierID": tier}),
            Some(&fan.token),
        )
        .await;
    assert_eq!(r.status, 502, "{}", r.text);
    assert_eq!(r.body["code"], "upstream_error");
    assert_eq!(int(&app, "SELECT count(*) AS n FROM memberships"), 0);
    // Works again once Razorpay does.
    let sid = create_sub(&app, &fan, tier).await;
    // Razorpay fails the confirmation fetches (every retry of the client): the Checkout
    // callback still answers 200 and a durable sync job applies the payment afterwards.
    sim.post("/_sim/webhooks/drop_next", json!({"count": 100}))
        .await;
    let paid = sim.pay(&sid).await;
    sim.post(
        "/_sim/chaos",
        json!({"fail_routes": [{"method": "GET", "path_prefix": "/v1/subscriptions", "status": 503, "times": 3}]}),
    )
    .await;
    save_sub(&app, &fan, tier, &paid).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while text(&app, "SELECT status AS t FROM memberships") != "active" {
        assert!(
            Instant::now() < deadline,
            "the sync job never applied the payment"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        int(
            &app,
            "SELECT count(*) AS n FROM jobs WHERE kind = 'billing.sync'"
        ),
        1
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while int(&app, "SELECT count(*) AS n FROM payments") != 1 {
        assert!(Instant::now() < deadline, "payment not recorded");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    sim.post(
        "/_sim/chaos",
        json!({"fail_routes": [{"path_prefix": "/v1/orders", "status": 500, "times": 5}]}),
    )
    .await;
    let r = app
        .post(
            "/subscriptions/create_order",
            &json!({"amount": 500, "currency": "INR", "creatorID": creator.id}),
            Some(&fan.token),
        )
        .await;
    assert_eq!(r.status, 502, "{}", r.text);
    assert_eq!(int(&app, "SELECT count(*) AS n FROM billing_orders"), 0);
}

// ---------------------------------------------------------------------------------------------
// one-time purchases and cheers

#[tokio::test]
async fn one_time_purchase_and_cheers_standalone() {
    let (app, sim) = standalone().await;
    let creator = app.create_user("ot_creator", true);
    let fan = app.create_user("ot_fan", false);
    let tier = create_tier(&app, &creator, 34_800).await;
    let post = create_post(&app, &creator, &[tier]).await;

    let r = app
        .post(
            "/subscriptions/create_onetime/",
            &json!({"tierID": tier, "currency": "USD"}),
            Some(&fan.token),
        )
        .await;
    assert_eq!(r.status, 400, "currency must be the tier's: {}", r.text);
    let r = app
        .post(
            "/subscriptions/create_onetime/",
            &json!({"tierID": tier, "currency": "INR"}),
            Some(&fan.token),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["public_key"], KEY_ID);
    let oid = r.body["SubscriptionID"].as_str().unwrap().to_owned();
    assert!(oid.starts_with("order_"));
    let order = sim.get(&format!("/v1/orders/{oid}")).await;
    assert_eq!(order["amount"], 34_800, "never scaled");
    assert_eq!(order["notes"]["type"], "subscription");

    // The browser closes: only the webhook confirms it.
    let paid = sim.pay(&oid).await;
    settle(&app, &sim).await;
    let l = list(&app, &fan).await;
    assert_eq!(l.len(), 1, "{l:?}");
    assert_eq!(l[0]["type"], "one_time");
    assert_eq!(l[0]["has_access"], true);
    assert!(boolean(
        &app,
        "SELECT current_end BETWEEN now() + interval '29 days 23 hours' AND now() + interval '30 days 1 hour' AS b FROM memberships"
    ));
    assert!(!locked(&app, post, &fan).await);
    // The late Checkout callback changes nothing.
    let before = state(&app);
    let r = app
        .post(
            "/subscriptions/save",
            &json!({"tierID": tier, "razorpay_payment_id": paid["razorpay_payment_id"],
                    "razorpay_signature": paid["razorpay_signature"], "razorpay_order_id": oid}),
            Some(&fan.token),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(state(&app), before);
    assert_eq!(int(&app, "SELECT count(*) AS n FROM payments"), 1);

    // Cheers: validation.
    for (body, field) in [
        (
            json!({"amount": 12.5, "currency": "INR", "creatorID": creator.id}),
            "amount",
        ),
        (
            json!({"amount": 99, "currency": "INR", "creatorID": creator.id}),
            "amount",
        ),
        (
            json!({"amount": 500, "currency": "EUR", "creatorID": creator.id}),
            "currency",
        ),
        (
            json!({"amount": 500, "currency": "INR", "creatorID": creator.id, "message": "x".repeat(1001)}),
            "message",
        ),
        (
            json!({"amount": 500, "currency": "INR", "creatorID": fan.id}),
            "creatorID",
        ),
        (
            json!({"currency": "INR", "creatorID": creator.id}),
            "amount",
        ),
    ] {
        let r = app
            .post("/subscriptions/create_order", &body, Some(&fan.token))
            .await;
        assert_eq!(r.status, 400, "{body}: {}", r.text);
        assert!(r.body[field].is_array(), "{field}: {}", r.text);
    }
    // A cheer confirmed by the Checkout callback (the seed's field name for the order id).
    let r = app
        .post(
            "/subscriptions/create_order",
            &json!({"amount": 12_345, "currency": "INR", "creatorID": creator.id, "name": "Asha", "message": "first"}),
            Some(&fan.token),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let c1 = r.body["SubscriptionID"].as_str().unwrap().to_owned();
    let paid = sim.pay(&c1).await;
    let bad = app
        .post(
            "/subscriptions/save_order",
            &json!({"name": "Asha", "message": "love it", "amount": 12_345,
                    "razorpay_payment_id": paid["razorpay_payment_id"],
                    "razorpay_signature": "ab".repeat(32), "razorpay_subscription_id": c1}),
            Some(&fan.token),
        )
        .await;
    assert_eq!(bad.status, 400, "{}", bad.text);
    let r = app
        .post(
            "/subscriptions/save_order",
            &json!({"name": "Asha", "message": "love it", "amount": 12_345,
                    "razorpay_payment_id": paid["razorpay_payment_id"],
                    "razorpay_signature": paid["razorpay_signature"], "razorpay_subscription_id": c1}),
            Some(&fan.token),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body, json!({"details": "Subscription created"}));
    // A cheer paid only through the webhook (browser closed before save_order).
    let r = app
        .post(
            "/subscriptions/create_order",
            &json!({"amount": 777, "currency": "INR", "creatorID": creator.id, "message": "second"}),
            Some(&fan.token),
        )
        .await;
    let c2 = r.body["SubscriptionID"].as_str().unwrap().to_owned();
    sim.pay(&c2).await;
    settle(&app, &sim).await;

    let r = app
        .get(&format!("/subscriptions/list_message/{}", creator.id), None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let msgs = r.body["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 2, "{}", r.text);
    let mut amounts: Vec<i64> = msgs.iter().map(|m| m["amount"].as_i64().unwrap()).collect();
    amounts.sort();
    assert_eq!(amounts, vec![777, 12_345]);
    assert!(msgs
        .iter()
        .any(|m| m["message"] == "love it" && m["name"] == "Asha"));
    assert!(msgs.iter().all(|m| m["dateTime"].is_string()));
    let r = app
        .get(
            &format!("/subscriptions/list_tips/{}", fan.id),
            Some(&fan.token),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let tips = r.body["tips"].as_array().unwrap();
    assert_eq!(tips.len(), 2);
    assert!(tips.iter().all(|t| t["Creator_username"] == "ot_creator"));
    assert!(tips.iter().all(|t| t["dateCreated"].is_string()));
    let r = app
        .get(
            &format!("/subscriptions/list_tips/{}", fan.id),
            Some(&creator.token),
        )
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(
        int(
            &app,
            "SELECT count(*) AS n FROM payments WHERE kind = 'cheer'"
        ),
        2
    );
}

#[tokio::test]
async fn a_cheers_confirmed_name_and_message_cannot_be_rewritten() {
    let app = spawn_app().await;
    let sim = Sim::embedded(&app);
    let creator = app.create_user("rw_creator", true);
    let fan = app.create_user("rw_fan", false);
    let r = app
        .post(
            "/subscriptions/create_order",
            &json!({"amount": 2_500, "currency": "INR", "creatorID": creator.id,
                    "name": "Asha", "message": "draft"}),
            Some(&fan.token),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let oid = r.body["SubscriptionID"].as_str().unwrap().to_owned();
    let paid = sim.pay(&oid).await;
    let (app, fan, oid, paid) = (&app, &fan, &oid, &paid);
    let save = |name: &str, message: &str| {
        let body = json!({"name": name, "message": message, "razorpay_order_id": oid,
            "razorpay_payment_id": paid["razorpay_payment_id"],
            "razorpay_signature": paid["razorpay_signature"]});
        async move {
            app.post("/subscriptions/save_order", &body, Some(&fan.token))
                .await
        }
    };
    let first = save("Asha", "love it").await;
    assert_eq!(first.status, 200, "{}", first.text);
    // The same signature again, posing as the creator: answered alike, changes nothing.
    let again = save("rw_creator", "I, the creator, endorse this").await;
    assert_eq!(again.status, 200, "{}", again.text);
    assert_eq!(again.body, first.body);
    let stored = || {
        text(
            app,
            &format!("SELECT name || '|' || message FROM billing_orders WHERE razorpay_order_id = '{oid}'"),
        )
    };
    assert_eq!(stored(), "Asha|love it");
    let r = app
        .post(
            "/subscriptions/save_order",
            &json!({"razorpay_order_id": oid, "razorpay_payment_id": paid["razorpay_payment_id"],
                    "razorpay_signature": paid["razorpay_signature"], "name": "", "message": ""}),
            Some(&fan.token),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(stored(), "Asha|love it");
    let r = app
        .get(&format!("/subscriptions/list_message/{}", creator.id), None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let msgs = r.body["messages"].as_array().unwrap();
    assert!(
        msgs.iter()
            .all(|m| m["name"] == "Asha" && m["message"] == "love it"),
        "{}",
        r.text
    );
}

#[tokio::test]
async fn checkout_ids_must_carry_their_kind_prefix_before_any_signature_check() {
    let app = spawn_app().await;
    let sim = Sim::embedded(&app);
    let creator = app.create_user("px_creator", true);
    let fan = app.create_user("px_fan", false);
    let tier = create_tier(&app, &creator, 20_000).await;
    let sid = create_sub(&app, &fan, tier).await;
    let sub_paid = sim.pay(&sid).await;
    let r = app
        .post(
            "/subscriptions/create_order",
            &json!({"amount": 5_000, "currency": "INR", "creatorID": creator.id}),
            Some(&fan.token),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let oid = r.body["SubscriptionID"].as_str().unwrap().to_owned();
    let order_paid = sim.pay(&oid).await;
    let sync_jobs = || {
        int(
            &app,
            "SELECT count(*) AS n FROM jobs WHERE kind = 'billing.sync'",
        )
    };
    let before = sync_jobs();
    // Signatures sign `order|payment` and `payment|subscription`: with the ids swapped, one
    // kind's signature is valid for the other. The prefixes tell them apart.
    let sub_as_order = json!({"name": "x", "message": "y",
        "razorpay_order_id": sub_paid["razorpay_payment_id"],
        "razorpay_payment_id": sid,
        "razorpay_signature": sub_paid["razorpay_signature"]});
    let r = app
        .post("/subscriptions/save_order", &sub_as_order, Some(&fan.token))
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(
        r.body,
        json!({"razorpay_payment_id": ["Not a Razorpay payment id (expected pay_…)."]})
    );
    // The seed's field for the order id is checked alike.
    let sub_as_seed_order = json!({
        "razorpay_subscription_id": sid,
        "razorpay_payment_id": sub_paid["razorpay_payment_id"],
        "razorpay_signature": sub_paid["razorpay_signature"]});
    let r = app
        .post(
            "/subscriptions/save_order",
            &sub_as_seed_order,
            Some(&fan.token),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(
        r.body,
        json!({"razorpay_subscription_id": ["Not a Razorpay order id (expected order_…)."]})
    );
    let order_as_sub = json!({"tierID": tier,
        "razorpay_subscription_id": order_paid["razorpay_payment_id"],
        "razorpay_payment_id": oid,
        "razorpay_signature": order_paid["razorpay_signature"]});
    let r = app
        .post("/subscriptions/save", &order_as_sub, Some(&fan.token))
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(r.body["razorpay_payment_id"].is_array(), "{}", r.text);
    let mut order_as_sub = order_as_sub;
    order_as_sub["razorpay_payment_id"] = order_paid["razorpay_payment_id"].clone();
    order_as_sub["razorpay_subscription_id"] = json!(oid);
    let r = app
        .post("/subscriptions/save", &order_as_sub, Some(&fan.token))
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(
        r.body,
        json!({"razorpay_subscription_id": ["Not a Razorpay subscription id (expected sub_…)."]})
    );
    let r = app
        .post(
            "/subscriptions/save",
            &json!({"razorpay_order_id": sid, "razorpay_payment_id": sub_paid["razorpay_payment_id"],
                    "razorpay_signature": sub_paid["razorpay_signature"]}),
            Some(&fan.token),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(r.body["razorpay_order_id"].is_array(), "{}", r.text);
    assert_eq!(sync_jobs(), before, "a refused callback queues nothing");
    // The right ids in the right fields still confirm.
    save_sub(&app, &fan, tier, &sub_paid).await;
    let r = app
        .post(
            "/subscriptions/save_order",
            &json!({"razorpay_order_id": oid,
                    "razorpay_payment_id": order_paid["razorpay_payment_id"],
                    "razorpay_signature": order_paid["razorpay_signature"]}),
            Some(&fan.token),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[tokio::test]
async fn free_tier_membership() {
    let app = spawn_app().await;
    let creator = app.create_user("ft_creator", true);
    let fan = app.create_user("ft_fan", false);
    let free = create_tier(&app, &creator, 0).await;
    let paid = create_tier(&app, &creator, 10_000).await;
    let post = create_post(&app, &creator, &[free]).await;
    assert!(locked(&app, post, &fan).await);
    let r = app
        .post(
            "/subscriptions/subscribe_to_public_tier",
            &json!({"tierID": paid}),
            Some(&fan.token),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    let r = app
        .post(
            "/subscriptions/subscribe_to_public_tier",
            &json!({"tierID": free}),
            Some(&fan.token),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = app
        .post(
            "/subscriptions/subscribe_to_public_tier",
            &json!({"tierID": free}),
            Some(&fan.token),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(int(&app, "SELECT count(*) AS n FROM memberships"), 1);
    assert!(!locked(&app, post, &fan).await);
    let l = list(&app, &fan).await;
    assert_eq!(l[0]["type"], "free");
    assert_eq!(
        int(
            &app,
            &format!(
                "SELECT count(*) AS n FROM follows WHERE follower_id = {}",
                fan.id
            )
        ),
        1
    );
    let r = app
        .post(
            "/subscriptions/create",
            &json!({"tierID": free}),
            Some(&fan.token),
        )
        .await;
    assert_eq!(r.status, 400, "a free tier is not sold: {}", r.text);
    let r = app
        .post(
            "/subscriptions/end/",
            &json!({"tier": free, "end_type": 0}),
            Some(&fan.token),
        )
        .await;
    assert_eq!(r.body["status"], "Success", "{}", r.text);
    assert!(locked(&app, post, &fan).await);
    // Anonymous callers are refused.
    let r = app
        .post(
            "/subscriptions/subscribe_to_public_tier",
            &json!({"tierID": free}),
            None,
        )
        .await;
    assert_eq!(r.status, 401);
}

// ---------------------------------------------------------------------------------------------
// webhooks

#[tokio::test]
async fn bad_webhook_signatures_store_nothing() {
    let app = spawn_app().await;
    let body = r#"{"entity":"event","event":"payment.captured","contains":["payment"],"payload":{},"created_at":1}"#;
    for path in [
        "/razorpay/webhooks/",
        "/razorpay/webhooks/save_onetime_order/",
    ] {
        for sig in [
            None,
            Some("deadbeef"),
            Some(&razorpay::sign_webhook(body.as_bytes(), "wrong-secret")[..]),
        ] {
            let mut req = app
                .client
                .post(app.url(path))
                .header("Content-Type", "application/json")
                .header("X-Razorpay-Event-Id", "evt_bad")
                .body(body);
            if let Some(s) = sig {
                req = req.header("X-Razorpay-Signature", s);
            }
            let r = app.send(req).await;
            assert_eq!(r.status, 400, "{path} {sig:?}: {}", r.text);
        }
    }
    assert_eq!(
        int(&app, "SELECT count(*) AS n FROM billing_webhook_events"),
        0
    );
    assert_eq!(
        int(
            &app,
            "SELECT count(*) AS n FROM jobs WHERE kind LIKE 'billing.%'"
        ),
        0
    );
}

async fn deliver(
    app: &TestApp,
    path: &str,
    event_id: Option<&str>,
    body: &str,
    secret: &str,
) -> u16 {
    let mut req = app
        .client
        .post(app.url(path))
        .header("Content-Type", "application/json")
        .header(
            "X-Razorpay-Signature",
            razorpay::sign_webhook(body.as_bytes(), secret),
        )
        .body(body.to_owned());
    if let Some(id) = event_id {
        req = req.header("X-Razorpay-Event-Id", id);
    }
    let r = app.send(req).await;
    r.status
}

#[tokio::test]
async fn a_burst_of_deliveries_is_stored_once_each_and_answered_after_its_commit() {
    // Deliveries arriving together share intake statements (workflows::inbox); each event id
    // is stored once with one job, and exactly one of its deliveries is answered "new", also
    // when both copies land in the same statement. Jobs stay queued (no runner) to be counted.
    let (app, _sim) = standalone_with(|s| {
        s.background_jobs = false;
        s.webhook_batch_max = 8;
    })
    .await;
    let body = |i: usize| {
        format!(
            r#"{{"entity":"event","event":"payment.authorized","contains":["payment"],"payload":{{}},"created_at":{i}}}"#
        )
    };
    let sends = (0..60).map(|n| {
        let (i, client) = (n / 2, app.client.clone());
        let (url, body) = (app.url("/razorpay/webhooks/"), body(i));
        async move {
            let r = client
                .post(url)
                .header("Content-Type", "application/json")
                .header("X-Razorpay-Event-Id", format!("evt_burst_{i}"))
                .header(
                    "X-Razorpay-Signature",
                    razorpay::sign_webhook(body.as_bytes(), WEBHOOK_SECRET),
                )
                .body(body)
                .send()
                .await
                .expect("sent");
            let status = r.status().as_u16();
            let v: Value = r.json().await.expect("JSON");
            (i, status, v["new"].as_bool())
        }
    });
    let answers = futures_join_all(sends).await;
    let mut new_per_event = vec![0; 30];
    for (i, status, new) in answers {
        assert_eq!(status, 200, "evt_burst_{i}");
        if new.expect("a new flag") {
            new_per_event[i] += 1;
        }
    }
    assert_eq!(new_per_event, vec![1; 30], "one new answer per event id");
    assert_eq!(
        int(
            &app,
            "SELECT count(DISTINCT event_id) AS n FROM billing_webhook_events
             WHERE event_id LIKE 'evt_burst_%'"
        ),
        30
    );
    assert_eq!(
        int(&app, "SELECT count(*) AS n FROM billing_webhook_events"),
        30
    );
    assert_eq!(
        int(
            &app,
            "SELECT count(*) AS n FROM jobs j JOIN billing_webhook_events e
             ON e.id = (j.payload->>'id')::bigint WHERE j.kind = 'billing.webhook'"
        ),
        30
    );
}

#[tokio::test]
async fn duplicated_reordered_and_replayed_webhooks_converge() {
    // Run A: the real flow with the simulator duplicating and shuffling deliveries.
    let (a, sim) = standalone().await;
    let creator = a.create_user("cv_creator", true);
    let fan = a.create_user("cv_fan", false);
    let tier = create_tier(&a, &creator, 30_000).await;
    sim.post(
        "/_sim/chaos",
        json!({"duplicate_deliveries": true, "shuffle": true, "noncanonical_json": true}),
    )
    .await;
    let sid = create_sub(&a, &fan, tier).await;
    sim.pay(&sid).await;
    sim.post(
        &format!("/_sim/subscriptions/{sid}/cycle"),
        json!({"outcome": "charged"}),
    )
    .await;
    let r = a
        .post(
            "/subscriptions/create_order",
            &json!({"amount": 4_200, "currency": "INR", "creatorID": creator.id, "message": "hi"}),
            Some(&fan.token),
        )
        .await;
    let oid = r.body["SubscriptionID"].as_str().unwrap().to_owned();
    sim.pay(&oid).await;
    settle(&a, &sim).await;
    let final_a = state(&a);
    assert!(final_a.contains(",active,30000,INR,2,"), "{final_a}");
    assert_eq!(
        int(&a, "SELECT count(*) AS n FROM payments"),
        3,
        "{final_a}"
    );
    let events = sim.events().await;
    let stored = int(&a, "SELECT count(*) AS n FROM billing_webhook_events");
    assert_eq!(stored as usize, events.len(), "each event stored once");

    // Replays a day later (same event ids): nothing changes, nothing is stored twice.
    for e in &events {
        sim.post(
            "/_sim/webhooks/redeliver",
            json!({"event_id": e["event_id"]}),
        )
        .await;
    }
    settle(&a, &sim).await;
    assert_eq!(state(&a), final_a);
    assert_eq!(
        int(&a, "SELECT count(*) AS n FROM billing_webhook_events"),
        stored
    );
    // An operator replay (`oasis billing replay <event-id>`) reprocesses to the same state.
    let first = events[0]["event_id"].as_str().unwrap();
    let out = oasis_server::workflows::cli::cli_replay(a.settings.clone(), first)
        .await
        .expect("replay");
    assert!(!out.is_empty());
    assert_eq!(state(&a), final_a);
    assert!(
        oasis_server::workflows::cli::cli_replay(a.settings.clone(), "evt_nope")
            .await
            .is_err()
    );

    // Run B: a fresh database with the same users and tier (same ids) receives the same
    // events in reverse order, with no Checkout callback: same final state.
    let b = spawn_app_with(|s| standalone_settings(s, &sim.base)).await;
    let c2 = b.create_user("cv_creator", true);
    let f2 = b.create_user("cv_fan", false);
    assert_eq!((c2.id, f2.id), (creator.id, fan.id));
    assert_eq!(create_tier(&b, &c2, 30_000).await, tier);
    let o = b
        .post(
            "/subscriptions/create_order",
            &json!({"amount": 4_200, "currency": "INR", "creatorID": creator.id, "message": "hi"}),
            Some(&f2.token),
        )
        .await;
    assert_eq!(o.status, 200);
    // Re-point that local order at A's Razorpay order so both runs describe the same objects.
    diesel::sql_query(format!(
        "UPDATE billing_orders SET razorpay_order_id = '{oid}'"
    ))
    .execute(&mut b.conn())
    .unwrap();
    for e in events.iter().rev() {
        let status = deliver(
            &b,
            "/razorpay/webhooks/",
            e["event_id"].as_str(),
            e["body"].as_str().unwrap(),
            WEBHOOK_SECRET,
        )
        .await;
        assert_eq!(status, 200);
    }
    drain(&b).await;
    assert_eq!(state(&b), final_a, "reverse order converges");
}

#[tokio::test]
async fn concurrent_deliveries_to_two_servers_record_each_payment_once() {
    let (one, sim) = standalone().await;
    // Events are only logged by the simulator; we deliver them ourselves, to both servers.
    sim.post(
        "/_sim/webhook_url",
        json!({"url": "http://127.0.0.1:9/unused"}),
    )
    .await;
    sim.post("/_sim/webhooks/drop_next", json!({"count": 1000}))
        .await;
    // A second server process on the same database, same Razorpay account.
    let (url, base) = (one.db.url().to_owned(), sim.base.clone());
    let two = spawn_app_with(move |s| {
        standalone_settings(s, &base);
        s.database_url = Some(url);
    })
    .await;
    let creator = one.create_user("cd_creator", true);
    let fan = one.create_user("cd_fan", false);
    let tier = create_tier(&one, &creator, 25_000).await;
    let sid = create_sub(&one, &fan, tier).await;
    sim.pay(&sid).await;
    let r = one
        .post(
            "/subscriptions/create_order",
            &json!({"amount": 900, "currency": "INR", "creatorID": creator.id}),
            Some(&fan.token),
        )
        .await;
    let oid = r.body["SubscriptionID"].as_str().unwrap().to_owned();
    sim.pay(&oid).await;
    let events = sim.events().await;
    assert!(events.len() >= 8, "{events:?}");
    for _round in 0..2 {
        let mut futs = Vec::new();
        for e in &events {
            let (id, body) = (e["event_id"].as_str(), e["body"].as_str().unwrap());
            futs.push(deliver(
                &one,
                "/razorpay/webhooks/",
                id,
                body,
                WEBHOOK_SECRET,
            ));
            futs.push(deliver(
                &two,
                "/razorpay/webhooks/",
                id,
                body,
                WEBHOOK_SECRET,
            ));
        }
        for status in futures_join_all(futs.into_iter()).await {
            assert_eq!(status, 200);
        }
    }
    drain(&one).await;
    assert_eq!(
        int(&one, "SELECT count(*) AS n FROM billing_webhook_events") as usize,
        events.len()
    );
    assert_eq!(
        int(&one, "SELECT count(*) AS n FROM payments"),
        2,
        "{}",
        state(&one)
    );
    assert_eq!(
        int(
            &one,
            "SELECT count(DISTINCT razorpay_payment_id) AS n FROM payments"
        ),
        2
    );
    assert_eq!(text(&one, "SELECT status AS t FROM memberships"), "active");
    assert_eq!(text(&one, "SELECT status AS t FROM billing_orders"), "paid");
}

#[tokio::test]
async fn lost_webhooks_are_recovered_by_reconciliation() {
    let (app, sim) = standalone().await;
    let creator = app.create_user("lw_creator", true);
    let fan = app.create_user("lw_fan", false);
    let tier = create_tier(&app, &creator, 15_000).await;
    sim.post("/_sim/webhooks/drop_next", json!({"count": 1000}))
        .await;
    let sid = create_sub(&app, &fan, tier).await;
    sim.pay(&sid).await;
    let r = app
        .post(
            "/subscriptions/create_order",
            &json!({"amount": 2_500, "currency": "INR", "creatorID": creator.id, "message": "lost"}),
            Some(&fan.token),
        )
        .await;
    let oid = r.body["SubscriptionID"].as_str().unwrap().to_owned();
    sim.pay(&oid).await;
    let r = app
        .post(
            "/subscriptions/create_onetime/",
            &json!({"tierID": tier}),
            Some(&fan.token),
        )
        .await;
    let ot = r.body["SubscriptionID"].as_str().unwrap().to_owned();
    sim.pay(&ot).await;
    settle(&app, &sim).await;
    // Every webhook was lost and no browser came back: nothing is known yet.
    assert_eq!(int(&app, "SELECT count(*) AS n FROM payments"), 0);
    assert_eq!(text(&app, "SELECT status AS t FROM memberships"), "created");

    let report = oasis_server::workflows::cli::cli_reconcile(app.settings.clone())
        .await
        .expect("reconcile");
    assert!(report.contains("1 subscription(s), 2 order(s)"), "{report}");
    assert_eq!(
        text(
            &app,
            "SELECT status AS t FROM memberships WHERE kind = 'recurring'"
        ),
        "active"
    );
    assert_eq!(
        int(
            &app,
            "SELECT count(*) AS n FROM memberships WHERE kind = 'one_time'"
        ),
        1
    );
    assert_eq!(
        int(
            &app,
            "SELECT count(*) AS n FROM payments WHERE kind IN ('cheer', 'one_time')"
        ),
        2
    );
    let r = app
        .get(&format!("/subscriptions/list_message/{}", creator.id), None)
        .await;
    assert_eq!(r.body["messages"][0]["message"], "lost");
    assert_eq!(r.body["messages"][0]["amount"], 2_500);
    // Idempotent.
    let before = state(&app);
    oasis_server::workflows::cli::cli_reconcile(app.settings.clone())
        .await
        .expect("reconcile again");
    assert_eq!(state(&app), before);
}

/// The three payloads of the seed README (and its recurring-subscription example), verbatim.
const SEED_RECURRING: &str = r#"{
  "entity": "event",
  "account_id": "acc_F5Motm2sJ5Fomd",
  "event": "subscription.authenticated",
  "contains": [
    "subscription"
  ],
  "payload": {
    "subscription": {
      "entity": {
        "id": "sub_F5aa7VaVXtXh80",
        "entity": "subscription",
        "plan_id": "plan_F5Zu0nrXVhHV2m",
        "customer_id": "cust_Hqv4jKULwAykog",
        "status": "authenticated",
        "current_start": null,
        "current_end": null,
        "ended_at": null,
        "quantity": 1,
        "notes": {
            "userID":"anshulyadav",
            "tierID":4
        },
        "charge_at": 1593109800,
        "start_at": 1593109800,
        "end_at": 1598380200,
        "auth_attempts": 0,
        "total_count": 3,
        "paid_count": 0,
        "customer_notify": true,
        "created_at": 1592811228,
        "expire_by": null,
        "short_url": null,
        "has_scheduled_changes": false,
        "change_scheduled_at": null,
        "source": "api",
        "offer_id":"offer_JHD834hjbxzhd38d",
        "remaining_count": 3
      }
    }
  },
  "created_at": 1592811255
}"#;
const SEED_SUBSCRIPTION: &str = r#"{"entity":"event","account_id":"acc_FlI5o3qjKOncPY","event":"payment.authorized","contains":["payment"],"payload":{"payment":{"entity":{"id":"pay_Gs7H4cAY5zRubS","entity":"payment","amount":34800,"currency":"INR","status":"authorized","order_id":"order_Gs7Gk7vBhrievW","invoice_id":null,"international":false,"method":"upi","amount_refunded":0,"refund_status":null,"captured":false,"description":"2","card_id":null,"bank":null,"wallet":null,"vpa":"success@razorpay","email":"fan@example.com","contact":"+910000000000","notes":{"type": "subscription", "username": "usingla78", "tierID":"7"},"fee":null,"tax":null,"error_code":null,"error_description":null,"error_source":null,"error_step":null,"error_reason":null,"acquirer_data":{"rrn":"785396808883","upi_transaction_id":"61284802FCF29B9835F49EF57CD430D2"},"created_at":1616943771}}},"created_at":1616943771}"#;
const SEED_CHEER: &str = r#"{"entity":"event","account_id":"acc_FlI5o3qjKOncPY","event":"payment.authorized","contains":["payment"],"payload":{"payment":{"entity":{"id":"pay_Gs7H4cAY5zRubS","entity":"payment","amount":34800,"currency":"INR","status":"authorized","order_id":"order_Gs7Gk7vBhrievW","invoice_id":null,"international":false,"method":"upi","amount_refunded":0,"refund_status":null,"captured":false,"description":"2","card_id":null,"bank":null,"wallet":null,"vpa":"success@razorpay","email":"fan@example.com","contact":"+910000000000","notes":{"type": "cheer", "creatorID": "11","username":"usingla78", "name":"Utsav", "message":"check"},"fee":null,"tax":null,"error_code":null,"error_description":null,"error_source":null,"error_step":null,"error_reason":null,"acquirer_data":{"rrn":"785396808883","upi_transaction_id":"61284802FCF29B9835F49EF57CD430D2"},"created_at":1616943771}}},"created_at":1616943771}"#;
const SEED_COMMISSION: &str = r#"{"entity":"event","account_id":"acc_FlI5o3qjKOncPY","event":"payment.authorized","contains":["payment"],"payload":{"payment":{"entity":{"id":"pay_Gs7H4cAY5zRubS","entity":"payment","amount":34800,"currency":"INR","status":"authorized","order_id":"order_Gs7Gk7vBhrievW","invoice_id":null,"international":false,"method":"upi","amount_refunded":0,"refund_status":null,"captured":false,"description":"2","card_id":null,"bank":null,"wallet":null,"vpa":"success@razorpay","email":"fan@example.com","contact":"+910000000000","notes":{"type": "commission", "creatorID": "11","username":"usingla78", "commissionID":1, "description":"Utsav", "contactDetails":"somedetails", "status":"ordered","mode_of_delivery":"1"},"fee":null,"tax":null,"error_code":null,"error_description":null,"error_source":null,"error_step":null,"error_reason":null,"acquirer_data":{"rrn":"785396808883","upi_transaction_id":"61284802FCF29B9835F49EF57CD430D2"},"created_at":1616943771}}},"created_at":1616943771}"#;

/// An app with the seed's world: creator 11 with tiers 4 and 7, fans usingla78 and anshulyadav.
async fn seed_world() -> TestApp {
    let app = spawn_app_with(|s| standalone_settings(s, "http://127.0.0.1:9")).await;
    let mut c = app.conn();
    for sql in [
        "INSERT INTO users (id, username, email, is_creator, email_verified) VALUES (11, 'creator11', 'c11@example.com', true, true)",
        "INSERT INTO users (username, email, email_verified) VALUES ('usingla78', 'u78@example.com', true), ('anshulyadav', 'ay@example.com', true)",
        "INSERT INTO tiers (id, creator_id, name, price, currency) VALUES (4, 11, 'Four', 34800, 'INR'), (7, 11, 'Seven', 34800, 'INR')",
    ] {
        diesel::sql_query(sql).execute(&mut c).expect(sql);
    }
    app
}

#[tokio::test]
async fn seed_readme_payloads_are_processed() {
    // Recurring: subscription.authenticated creates the membership from its notes (username
    // in `userID`), without access (nothing paid yet).
    let app = seed_world().await;
    assert_eq!(
        deliver(
            &app,
            "/razorpay/webhooks/",
            None,
            SEED_RECURRING,
            WEBHOOK_SECRET
        )
        .await,
        200
    );
    drain(&app).await;
    assert_eq!(
        text(&app, "SELECT concat_ws(',', u.username, m.tier_id, m.kind, m.status, m.razorpay_subscription_id) AS t
                    FROM memberships m JOIN users u ON u.id = m.user_id"),
        "anshulyadav,4,recurring,authenticated,sub_F5aa7VaVXtXh80"
    );
    assert!(!boolean(&app, "SELECT billing_has_access(kind, status, current_start, current_end, cancel_at_period_end, now()) AS b FROM memberships"));
    // The same bytes again (no event id: de-duplicated by the body's hash).
    assert_eq!(
        deliver(
            &app,
            "/razorpay/webhooks/",
            None,
            SEED_RECURRING,
            WEBHOOK_SECRET
        )
        .await,
        200
    );
    assert_eq!(
        int(&app, "SELECT count(*) AS n FROM billing_webhook_events"),
        1
    );

    // One-time tier purchase (at the seed's one-time URL): 30 days from the payment.
    assert_eq!(
        deliver(
            &app,
            "/razorpay/webhooks/save_onetime_order/",
            Some("evt_seed_sub"),
            SEED_SUBSCRIPTION,
            WEBHOOK_SECRET
        )
        .await,
        200
    );
    drain(&app).await;
    assert_eq!(
        text(
            &app,
            "SELECT concat_ws(',', u.username, m.tier_id, m.kind, m.status, m.amount,
                        m.current_end = to_timestamp(1616943771) + interval '30 days') AS t
                    FROM memberships m JOIN users u ON u.id = m.user_id WHERE m.kind = 'one_time'"
        ),
        "usingla78,7,one_time,active,34800,t"
    );
    assert_eq!(
        text(
            &app,
            "SELECT concat_ws(',', kind, status, amount, currency) AS t FROM payments"
        ),
        "one_time,authorized,34800,INR"
    );

    // Cheer (another world: the fixtures share their payment and order ids).
    let app = seed_world().await;
    assert_eq!(
        deliver(
            &app,
            "/razorpay/webhooks/",
            Some("evt_seed_cheer"),
            SEED_CHEER,
            WEBHOOK_SECRET
        )
        .await,
        200
    );
    drain(&app).await;
    let r = app.get("/subscriptions/list_message/11", None).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body["messages"].as_array().unwrap().len(),
        1,
        "{}",
        r.text
    );
    let m = &r.body["messages"][0];
    assert_eq!(
        (
            m["name"].as_str(),
            m["message"].as_str(),
            m["amount"].as_i64()
        ),
        (Some("Utsav"), Some("check"), Some(34800))
    );
    assert_eq!(
        text(
            &app,
            "SELECT concat_ws(',', kind, status, amount) AS t FROM payments"
        ),
        "cheer,authorized,34800"
    );

    // Commission: stored generically for the commissions domain.
    let app = seed_world().await;
    assert_eq!(
        deliver(
            &app,
            "/razorpay/webhooks/",
            Some("evt_seed_comm"),
            SEED_COMMISSION,
            WEBHOOK_SECRET
        )
        .await,
        200
    );
    drain(&app).await;
    assert_eq!(
        text(&app, "SELECT concat_ws(',', o.kind, o.status, o.creator_id, o.reference_id, o.amount, p.kind) AS t
                    FROM billing_orders o JOIN payments p ON p.order_id = o.id"),
        "commission,paid,11,1,34800,commission"
    );
}

// ---------------------------------------------------------------------------------------------
// bank details, guest checkout, idempotency, OpenAPI

#[tokio::test]
async fn bank_details_are_encrypted_masked_and_creator_only() {
    let app = spawn_app().await;
    let creator = app.create_user("bd_creator", true);
    app.set_password(creator.id, "bank-Passw0rd-1");
    let fan = app.create_user("bd_fan", false);
    let path = "/subscriptions/api/bankdetails";
    let body = json!({"ifscCode": "HDFC0001234", "accountNumber": "123456789012", "BankName": "HDFC Bank", "accountHolderName": "Asha Rao", "contactPhone": "9000090000", "legalName": "Asha Rao", "businessType": "individual", "password": "bank-Passw0rd-1"});
    assert_eq!(app.post(path, &body, Some(&fan.token)).await.status, 403);
    assert_eq!(app.post(path, &body, None).await.status, 401);
    assert_eq!(app.get(path, Some(&creator.token)).await.status, 404);
    let r = app
        .post(path, &json!({"ifscCode": "HDFC1001234", "accountNumber": "12ab", "BankName": "", "accountHolderName": "A", "password": "bank-Passw0rd-1"}), Some(&creator.token))
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(
        r.body["ifscCode"].is_array()
            && r.body["accountNumber"].is_array()
            && r.body["BankName"].is_array()
    );
    // A token alone cannot redirect payouts: the current password is required, and checked.
    let mut no_password = body.clone();
    no_password.as_object_mut().unwrap().remove("password");
    let r = app.post(path, &no_password, Some(&creator.token)).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(r.body, json!({"password": ["This field is required."]}));
    let mut wrong = body.clone();
    wrong["password"] = json!("not-the-password");
    let r = app.post(path, &wrong, Some(&creator.token)).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(r.body["password"].is_array(), "{}", r.text);
    assert_eq!(int(&app, "SELECT count(*) AS n FROM bank_details"), 0);
    let r = app.post(path, &body, Some(&creator.token)).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["accountNumber"], "XXXXXXXX9012");
    let r = app.get(path, Some(&creator.token)).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body,
        json!({"ifscCode": "HDFC0001234", "accountNumber": "XXXXXXXX9012", "BankName": "HDFC Bank", "accountHolderName": "Asha Rao", "contactPhone": "9000090000", "legalName": "Asha Rao", "businessType": "individual"})
    );
    assert!(!r.text.contains("123456789012"));
    // At rest: ciphertext only.
    assert!(!boolean(
        &app,
        "SELECT position('123456789012'::bytea IN ciphertext) > 0 OR position('Asha'::bytea IN ciphertext) > 0 AS b FROM bank_details"
    ));
    let r = app
        .patch(
            path,
            &json!({"accountNumber": "987654321"}),
            Some(&creator.token),
        )
        .await;
    assert_eq!(r.body, json!({"password": ["This field is required."]}));
    let r = app
        .patch(
            path,
            &json!({"accountNumber": "987654321", "password": "bank-Passw0rd-1"}),
            Some(&creator.token),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["accountNumber"], "XXXXX4321");
    assert_eq!(r.body["BankName"], "HDFC Bank");
    let r = app.delete(path, Some(&creator.token)).await;
    assert_eq!(r.body, json!({"password": ["This field is required."]}));
    let r = app
        .delete_json(
            path,
            &json!({"password": "wrong-wrong"}),
            Some(&creator.token),
        )
        .await;
    assert!(r.body["password"].is_array(), "{}", r.text);
    let right = json!({"password": "bank-Passw0rd-1"});
    assert_eq!(
        app.delete_json(path, &right, Some(&creator.token))
            .await
            .status,
        204
    );
    assert_eq!(
        app.delete_json(path, &right, Some(&creator.token))
            .await
            .status,
        404
    );
    assert_eq!(int(&app, "SELECT count(*) AS n FROM bank_details"), 0);
    // Never logged: the server's log file (if any) is not inspected here; the body type has no
    // Debug and the domain type's Debug masks the number (unit-tested in oasis-billing).
}

#[tokio::test]
async fn guest_checkout_creates_an_unverified_account_and_starts_the_payment() {
    let app = spawn_app().await;
    let creator = app.create_user("gc_creator", true);
    let tier = create_tier(&app, &creator, 9_900).await;
    let body = json!({"email": "Guest.Fan@example.com", "phone": "+919999999999", "password": "long-enough-pw",
                      "payment_type": "recurring", "tierID": tier});
    let r = app
        .post("/subscriptions/get_ghost_user/", &body, None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    for k in [
        "email",
        "phone",
        "username",
        "SubscriptionID",
        "public_key",
        "key",
    ] {
        assert!(r.body[k].is_string(), "{k}: {}", r.text);
    }
    assert!(r.body["SubscriptionID"]
        .as_str()
        .unwrap()
        .starts_with("sub_"));
    let key = r.body["key"].as_str().unwrap().to_owned();
    let sid = r.body["SubscriptionID"].clone();
    assert_eq!(
        text(&app, "SELECT concat_ws(',', login_type, email_verified) AS t FROM users WHERE lower(email) = 'guest.fan@example.com'"),
        "guest,f"
    );
    let r = app.get("/subscriptions/list", Some(&key)).await;
    assert_eq!(r.status, 200, "the key works: {}", r.text);
    // Existing email: only with its password (login's refusal otherwise).
    let mut wrong = body.clone();
    wrong["password"] = json!("not-the-password");
    let r = app
        .post("/subscriptions/get_ghost_user/", &wrong, None)
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(
        r.body,
        json!({"non_field_errors": ["Unable to log in with provided credentials."]})
    );
    // Like login, the unverified account gets no second key until its email is confirmed.
    let r = app
        .post("/subscriptions/get_ghost_user/", &body, None)
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(
        r.body,
        json!({"non_field_errors": ["E-mail is not verified."]})
    );
    diesel::sql_query(
        "UPDATE users SET email_verified = true WHERE lower(email) = 'guest.fan@example.com'",
    )
    .execute(&mut app.conn())
    .unwrap();
    let r = app
        .post("/subscriptions/get_ghost_user/", &body, None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.body["SubscriptionID"], sid,
        "the pending checkout is reused"
    );
    assert_eq!(
        int(
            &app,
            "SELECT count(*) AS n FROM users WHERE login_type = 'guest'"
        ),
        1
    );
    assert_eq!(
        text(
            &app,
            "SELECT phone AS t FROM users WHERE lower(email) = 'guest.fan@example.com'"
        ),
        "+919999999999",
        "the guest's phone is stored"
    );
    let bad_phone = json!({"email": "p@example.com", "phone": "call me maybe", "password": "long-enough-pw",
                           "payment_type": "recurring", "tierID": tier});
    let r = app
        .post("/subscriptions/get_ghost_user/", &bad_phone, None)
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(r.body["phone"].is_array(), "{}", r.text);
    let one = json!({"email": "other@example.com", "phone": "+91 11111 11111", "password": "long-enough-pw",
                     "payment_type": "oneTime", "tierID": tier, "currency": "INR"});
    let r = app.post("/subscriptions/get_ghost_user/", &one, None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.body["SubscriptionID"]
        .as_str()
        .unwrap()
        .starts_with("order_"));
    let bad = json!({"email": "x@example.com", "password": "long-enough-pw", "payment_type": "weekly", "tierID": tier});
    assert_eq!(
        app.post("/subscriptions/get_ghost_user/", &bad, None)
            .await
            .status,
        400
    );
}

#[tokio::test]
async fn idempotency_key_replays_the_first_response() {
    let app = spawn_app().await;
    let creator = app.create_user("ik_creator", true);
    let fan = app.create_user("ik_fan", false);
    let body = json!({"amount": 1_000, "currency": "INR", "creatorID": creator.id});
    let send = |b: Value, key: &'static str| {
        app.send(
            app.client
                .post(app.url("/subscriptions/create_order"))
                .header("Authorization", format!("Token {}", fan.token))
                .header("Idempotency-Key", key)
                .json(&b),
        )
    };
    let r1 = send(body.clone(), "k-1").await;
    assert_eq!(r1.status, 200, "{}", r1.text);
    let r2 = send(body.clone(), "k-1").await;
    assert_eq!(r2.status, 200);
    assert_eq!(r2.body, r1.body);
    assert_eq!(r2.header("idempotent-replayed"), Some("true"));
    assert_eq!(int(&app, "SELECT count(*) AS n FROM billing_orders"), 1);
    let mut other = body.clone();
    other["amount"] = json!(2_000);
    assert_eq!(send(other, "k-1").await.status, 422);
    assert_eq!(send(body, "k-2").await.status, 200);
    assert_eq!(int(&app, "SELECT count(*) AS n FROM billing_orders"), 2);
}

/// `POST /subscriptions/get_ghost_user/`, with an Idempotency-Key when given.
async fn ghost(app: &TestApp, body: &Value, key: Option<&str>) -> Resp {
    let mut r = app
        .client
        .post(app.url("/subscriptions/get_ghost_user/"))
        .json(body);
    if let Some(k) = key {
        r = r.header("Idempotency-Key", k);
    }
    app.send(r).await
}

fn guest_body(email: &str, password: &str, tier: i64) -> Value {
    json!({"email": email, "phone": "+919876543210", "password": password,
           "payment_type": "recurring", "tierID": tier})
}

/// A guest account made through guest checkout, then verified (as if its link was opened).
async fn verified_guest(app: &TestApp, email: &str, password: &str, tier: i64) {
    let r = ghost(app, &guest_body(email, password, tier), None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    diesel::sql_query(format!(
        "UPDATE users SET email_verified = true WHERE email = '{email}'"
    ))
    .execute(&mut app.conn())
    .unwrap();
}

#[tokio::test]
async fn guest_idempotency_replays_only_to_the_right_password_and_stores_no_key() {
    let app = spawn_app().await;
    let creator = app.create_user("gi_creator", true);
    let tier = create_tier(&app, &creator, 9_900).await;
    verified_guest(&app, "gi_owner@example.com", "violet-harbor-31", tier).await;
    let owner = int(
        &app,
        "SELECT id AS n FROM users WHERE email = 'gi_owner@example.com'",
    );
    let right = guest_body("gi_owner@example.com", "violet-harbor-31", tier);
    let first = ghost(&app, &right, Some("gi-key-1")).await;
    assert_eq!(first.status, 200, "{}", first.text);
    let first_key = first.body["key"].as_str().unwrap().to_owned();
    // Same key and body, wrong password: exactly what the wrong password gets without a key.
    let wrong = guest_body("gi_owner@example.com", "amber-lantern-77", tier);
    let keyless = ghost(&app, &wrong, None).await;
    let with_key = ghost(&app, &wrong, Some("gi-key-1")).await;
    assert_eq!(with_key.status, 400, "{}", with_key.text);
    assert_eq!(
        with_key.body,
        json!({"non_field_errors": ["Unable to log in with provided credentials."]})
    );
    assert_eq!(
        (with_key.status, &with_key.body),
        (keyless.status, &keyless.body)
    );
    assert!(with_key.header("idempotent-replayed").is_none());
    // The right password replays the checkout, with a new working key.
    let again = ghost(&app, &right, Some("gi-key-1")).await;
    assert_eq!(again.status, 200, "{}", again.text);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.body["SubscriptionID"], first.body["SubscriptionID"]);
    let again_key = again.body["key"].as_str().unwrap().to_owned();
    assert_ne!(again_key, first_key);
    for k in [&first_key, &again_key] {
        assert_eq!(app.get("/subscriptions/list", Some(k)).await.status, 200);
    }
    // Stored under the account, without any API key.
    assert_eq!(
        int(
            &app,
            &format!("SELECT count(*) AS n FROM idempotency_keys WHERE user_id = {owner}")
        ),
        1
    );
    assert_eq!(
        int(
            &app,
            "SELECT count(*) AS n FROM idempotency_keys WHERE user_id = 0"
        ),
        0
    );
    let stored = text(
        &app,
        "SELECT convert_from(response_body, 'UTF8') AS t FROM idempotency_keys",
    );
    assert!(
        !stored.contains(&first_key) && !stored.contains("\"key\""),
        "{stored}"
    );
    let v: Value = serde_json::from_str(&stored).unwrap();
    assert_eq!(v["SubscriptionID"], first.body["SubscriptionID"]);
    // The key is the account's own: another account using it runs its own request.
    verified_guest(&app, "gi_other@example.com", "copper-meadow-52", tier).await;
    let other = ghost(
        &app,
        &guest_body("gi_other@example.com", "copper-meadow-52", tier),
        Some("gi-key-1"),
    )
    .await;
    assert_eq!(other.status, 200, "{}", other.text);
    assert!(other.header("idempotent-replayed").is_none());
    assert_ne!(other.body["SubscriptionID"], first.body["SubscriptionID"]);
}

#[tokio::test]
async fn expired_idempotent_replies_are_not_replayed() {
    let app = spawn_app().await;
    let creator = app.create_user("ie_creator", true);
    let fan = app.create_user("ie_fan", false);
    let body = json!({"amount": 1_000, "currency": "INR", "creatorID": creator.id});
    let send = || {
        app.send(
            app.client
                .post(app.url("/subscriptions/create_order"))
                .header("Authorization", format!("Token {}", fan.token))
                .header("Idempotency-Key", "ie-1")
                .json(&body),
        )
    };
    assert_eq!(send().await.status, 200);
    assert_eq!(send().await.header("idempotent-replayed"), Some("true"));
    // A day and an hour later (the default time-to-live is 24 h) the key runs afresh.
    diesel::sql_query("UPDATE idempotency_keys SET created_at = now() - interval '25 hours'")
        .execute(&mut app.conn())
        .unwrap();
    let r = send().await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.header("idempotent-replayed").is_none());
    assert_eq!(int(&app, "SELECT count(*) AS n FROM billing_orders"), 2);
    assert_eq!(send().await.header("idempotent-replayed"), Some("true"));
}

#[tokio::test]
async fn expired_idempotent_replies_are_swept() {
    let app = spawn_app_with(|s| s.idempotency_ttl_secs = 3).await;
    let creator = app.create_user("is_creator", true);
    let fan = app.create_user("is_fan", false);
    let r = app
        .send(
            app.client
                .post(app.url("/subscriptions/create_order"))
                .header("Authorization", format!("Token {}", fan.token))
                .header("Idempotency-Key", "is-1")
                .json(&json!({"amount": 1_000, "currency": "INR", "creatorID": creator.id})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let rows = || int(&app, "SELECT count(*) AS n FROM idempotency_keys");
    assert_eq!(rows(), 1, "stored while fresh");
    let deadline = Instant::now() + Duration::from_secs(20);
    while rows() > 0 {
        assert!(Instant::now() < deadline, "expired reply never swept");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn guest_checkout_refuses_an_unverified_email_like_login() {
    let app = spawn_app().await;
    let creator = app.create_user("gu_creator", true);
    let tier = create_tier(&app, &creator, 9_900).await;
    // Registered, never confirmed.
    let r = app
        .post(
            "/authenticate/rest-auth/registration/",
            &json!({"email": "gu_squat@example.com", "first_name": "A", "last_name": "B",
                    "username": "gu_squat", "password": "violet-harbor-31",
                    "password2": "violet-harbor-31", "login_type": "manual"}),
            None,
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let login = app
        .post(
            "/authenticate/rest-auth/login/",
            &json!({"email": "gu_squat@example.com", "password": "violet-harbor-31"}),
            None,
        )
        .await;
    assert_eq!(login.status, 400, "{}", login.text);
    let body = guest_body("gu_squat@example.com", "violet-harbor-31", tier);
    for key in [None, Some("gu-1")] {
        let r = ghost(&app, &body, key).await;
        assert_eq!((r.status, &r.body), (login.status, &login.body), "{key:?}");
    }
    assert_eq!(
        int(
            &app,
            "SELECT count(*) AS n FROM auth_tokens t JOIN users u ON u.id = t.user_id
             WHERE u.email = 'gu_squat@example.com'"
        ),
        0,
        "no key for the unverified account"
    );
    assert_eq!(int(&app, "SELECT count(*) AS n FROM memberships"), 0);
    // A new guest's own retry (same Idempotency-Key) still gets its answer; without the key,
    // its unverified account is refused like any other.
    let new = guest_body("gu_new@example.com", "copper-meadow-52", tier);
    let first = ghost(&app, &new, Some("gu-new")).await;
    assert_eq!(first.status, 200, "{}", first.text);
    let retry = ghost(&app, &new, Some("gu-new")).await;
    assert_eq!(retry.status, 200, "{}", retry.text);
    assert_eq!(retry.header("idempotent-replayed"), Some("true"));
    assert_eq!(retry.body["SubscriptionID"], first.body["SubscriptionID"]);
    let r = ghost(&app, &new, None).await;
    assert_eq!((r.status, &r.body), (login.status, &login.body));
    let r = ghost(&app, &new, Some("gu-other")).await;
    assert_eq!((r.status, &r.body), (login.status, &login.body));
    // A checkout that fails after creating the account leaves no account behind, so the
    // retry is not refused as unverified.
    let usd = json!({"email": "gu_late@example.com", "password": "copper-meadow-52",
                     "payment_type": "oneTime", "tierID": tier, "currency": "USD"});
    let r = ghost(&app, &usd, None).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(r.body["currency"].is_array(), "{}", r.text);
    assert_eq!(
        int(
            &app,
            "SELECT count(*) AS n FROM users WHERE email = 'gu_late@example.com'"
        ),
        0
    );
    let mut inr = usd.clone();
    inr["currency"] = json!("INR");
    let r = ghost(&app, &inr, None).await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[tokio::test]
async fn guest_checkout_answers_known_and_unknown_emails_alike() {
    let app = spawn_app().await;
    let creator = app.create_user("ga_creator", true);
    let tier = create_tier(&app, &creator, 9_900).await;
    verified_guest(&app, "ga_known@example.com", "violet-harbor-31", tier).await;
    let failures = || int(&app, "SELECT count(*) AS n FROM login_failures");
    let before = failures();
    // A weak password: the same field errors whether or not the email has an account, and
    // no password is evaluated (nothing counted).
    for weak in ["12345678", "password", "short"] {
        let known = ghost(&app, &guest_body("ga_known@example.com", weak, tier), None).await;
        let unknown = ghost(&app, &guest_body("ga_unkno@example.com", weak, tier), None).await;
        assert_eq!(known.status, 400, "{weak}: {}", known.text);
        assert!(known.body["password"].is_array(), "{weak}: {}", known.text);
        assert_eq!(
            (known.status, &known.body),
            (unknown.status, &unknown.body),
            "{weak}"
        );
    }
    assert_eq!(failures(), before);
    assert_eq!(
        int(
            &app,
            "SELECT count(*) AS n FROM users WHERE email = 'ga_unkno@example.com'"
        ),
        0
    );
    // A strong wrong password for the known email: login's refusal, as login answers it.
    let wrong = ghost(
        &app,
        &guest_body("ga_known@example.com", "amber-lantern-77", tier),
        None,
    )
    .await;
    let login = app
        .post(
            "/authenticate/rest-auth/login/",
            &json!({"email": "ga_known@example.com", "password": "amber-lantern-77"}),
            None,
        )
        .await;
    assert_eq!(wrong.status, 400, "{}", wrong.text);
    assert_eq!((wrong.status, &wrong.body), (login.status, &login.body));
    assert!(wrong.body.get("password").is_none(), "{}", wrong.text);
}

#[tokio::test]
async fn guest_checkout_shares_the_registration_limit() {
    let limit = 6;
    let app = oasis_tests::spawn_app_with(|s| s.registrations_per_hour = limit).await;
    let creator = app.create_user("gl_creator", true);
    let tier = create_tier(&app, &creator, 9_900).await;
    verified_guest(&app, "gl_known@example.com", "violet-harbor-31", tier).await;
    for i in 1..limit - 1 {
        let r = app
            .post(
                "/authenticate/rest-auth/registration/",
                &json!({"email": format!("gl{i}@example.com"), "first_name": "A", "last_name": "B",
                        "username": format!("gl{i}"), "password": "violet-harbor-31",
                        "password2": "violet-harbor-31", "login_type": "manual"}),
                None,
            )
            .await;
        assert_eq!(r.status, 201, "{i}: {}", r.text);
    }
    let r = ghost(
        &app,
        &guest_body("gl_last@example.com", "copper-meadow-52", tier),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "the limit's last account: {}", r.text);
    let r = ghost(
        &app,
        &guest_body("gl_over@example.com", "copper-meadow-52", tier),
        None,
    )
    .await;
    assert_eq!(r.status, 429, "{}", r.text);
    assert!(r.header("retry-after").is_some());
    assert_eq!(
        int(
            &app,
            "SELECT count(*) AS n FROM users WHERE email = 'gl_over@example.com'"
        ),
        0
    );
    let r = app
        .post(
            "/authenticate/rest-auth/registration/",
            &json!({"email": "gl_reg@example.com", "first_name": "A", "last_name": "B",
                    "username": "gl_reg", "password": "violet-harbor-31",
                    "password2": "violet-harbor-31", "login_type": "manual"}),
            None,
        )
        .await;
    assert_eq!(r.status, 429, "one limit for both: {}", r.text);
    // Signing in to an existing account creates nothing and is not limited.
    let r = ghost(
        &app,
        &guest_body("gl_known@example.com", "violet-harbor-31", tier),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[tokio::test]
async fn every_billing_route_is_in_the_openapi_document() {
    let app = spawn_app().await;
    let r = app.get("/api/openapi.json", None).await;
    assert_eq!(r.status, 200);
    for p in [
        "/subscriptions/create",
        "/subscriptions/save",
        "/subscriptions/create_onetime/",
        "/subscriptions/create_order",
        "/subscriptions/save_order",
        "/subscriptions/subscribe_to_public_tier",
        "/subscriptions/end/",
        "/subscriptions/get_ghost_user/",
        "/subscriptions/list",
        "/subscriptions/list_message/{creator_id}",
        "/subscriptions/list_tips/{userID}",
        "/subscriptions/api/bankdetails",
        "/razorpay/webhooks/",
        "/razorpay/webhooks/save_onetime_order/",
    ] {
        assert!(r.body["paths"][p].is_object(), "{p} missing from OpenAPI");
    }
    let bank = &r.body["paths"]["/subscriptions/api/bankdetails"];
    for m in ["get", "post", "patch", "delete"] {
        assert!(bank[m].is_object(), "bankdetails {m}");
    }
}

#[tokio::test]
async fn failed_renewals_grace_halt_and_recovery() {
    let (app, sim) = standalone().await;
    let creator = app.create_user("pr_creator", true);
    let fan = app.create_user("pr_fan", false);
    let tier = create_tier(&app, &creator, 40_000).await;
    let post = create_post(&app, &creator, &[tier]).await;
    let sid = create_sub(&app, &fan, tier).await;
    sim.pay(&sid).await;
    settle(&app, &sim).await;
    assert!(!locked(&app, post, &fan).await);
    let cycle = |outcome: &'static str| {
        let (sim, sid) = (&sim, sid.clone());
        async move {
            sim.post(
                &format!("/_sim/subscriptions/{sid}/cycle"),
                json!({"outcome": outcome}),
            )
            .await
        }
    };
    // A failed charge: pending, access continues (paid period, then 3 days' grace).
    cycle("pending").await;
    settle(&app, &sim).await;
    let l = list(&app, &fan).await;
    assert_eq!(l[0]["status"], "pending");
    assert_eq!(l[0]["has_access"], true);
    // Pretend the paid period ended 2 days ago: still inside the grace; 4 days: not.
    diesel::sql_query("UPDATE memberships SET current_end = now() - interval '2 days'")
        .execute(&mut app.conn())
        .unwrap();
    app.settle().await;
    assert!(!locked(&app, post, &fan).await, "grace");
    diesel::sql_query("UPDATE memberships SET current_end = now() - interval '4 days'")
        .execute(&mut app.conn())
        .unwrap();
    app.settle().await;
    assert!(locked(&app, post, &fan).await, "grace over");
    // Retries exhausted: halted, no access.
    cycle("halted").await;
    settle(&app, &sim).await;
    assert_eq!(list(&app, &fan).await[0]["status"], "halted");
    assert!(locked(&app, post, &fan).await);
    // The card is fixed: charged again, active again, access back.
    cycle("charged").await;
    settle(&app, &sim).await;
    let l = list(&app, &fan).await;
    assert_eq!(l[0]["status"], "active", "{l:?}");
    assert_eq!(l[0]["has_access"], true);
    assert!(!locked(&app, post, &fan).await);
    assert_eq!(
        int(
            &app,
            "SELECT count(*) AS n FROM payments WHERE status = 'captured'"
        ),
        2
    );
    assert!(
        int(
            &app,
            "SELECT count(*) AS n FROM payments WHERE status = 'failed'"
        ) <= 2
    );
}

#[tokio::test]
async fn a_refunded_one_time_purchase_ends_access() {
    let (app, sim) = standalone().await;
    let creator = app.create_user("rf_creator", true);
    let fan = app.create_user("rf_fan", false);
    let tier = create_tier(&app, &creator, 10_000).await;
    let post = create_post(&app, &creator, &[tier]).await;
    let r = app
        .post(
            "/subscriptions/create_onetime/",
            &json!({"tierID": tier}),
            Some(&fan.token),
        )
        .await;
    let oid = r.body["SubscriptionID"].as_str().unwrap().to_owned();
    let paid = sim.pay(&oid).await;
    settle(&app, &sim).await;
    assert!(!locked(&app, post, &fan).await);
    let pay = paid["razorpay_payment_id"].as_str().unwrap();
    let r = sim
        .http
        .post(format!("{}/v1/payments/{pay}/refund", sim.base))
        .basic_auth(KEY_ID, Some(KEY_SECRET))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    settle(&app, &sim).await;
    assert_eq!(
        text(
            &app,
            "SELECT concat_ws(',', status, amount_refunded) AS t FROM payments"
        ),
        "refunded,10000"
    );
    assert!(locked(&app, post, &fan).await, "refund ends access");
    assert_eq!(list(&app, &fan).await[0]["has_access"], false);
}

#[tokio::test]
async fn production_refuses_the_embedded_simulator() {
    let db = tokio::task::spawn_blocking(oasis_tests::oasis_testdb::TestDb::new)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut s = oasis_tests::test_settings(dir.path(), db.url());
    s.env = oasis_server::config::Environment::Production;
    match oasis_server::Application::build(s).await {
        Ok(_) => panic!("production started with the embedded Razorpay simulator"),
        Err(e) => assert!(e.to_string().contains("RAZORPAY_KEY_ID"), "{e}"),
    }
}

#[tokio::test]
async fn cli_reconcile_reaches_a_running_servers_embedded_simulator() {
    // `oasis billing reconcile` in embedded mode talks to the running server's simulator at
    // OASIS_PUBLIC_URL/_razorpay with keys derived from the same OASIS_SECRET_KEY.
    let app = spawn_app().await;
    let sim = Sim::embedded(&app);
    let creator = app.create_user("er_creator", true);
    let fan = app.create_user("er_fan", false);
    sim.post("/_sim/webhooks/drop_next", json!({"count": 100}))
        .await;
    let r = app
        .post(
            "/subscriptions/create_order",
            &json!({"amount": 1_500, "currency": "INR", "creatorID": creator.id, "message": "lost"}),
            Some(&fan.token),
        )
        .await;
    let oid = r.body["SubscriptionID"].as_str().unwrap().to_owned();
    sim.pay(&oid).await;
    settle(&app, &sim).await;
    assert_eq!(int(&app, "SELECT count(*) AS n FROM payments"), 0);
    let mut cli = app.settings.clone();
    cli.public_url = app.address.clone();
    let report = oasis_server::workflows::cli::cli_reconcile(cli)
        .await
        .expect("reconcile");
    assert!(report.contains("1 order(s)"), "{report}");
    assert_eq!(
        text(
            &app,
            "SELECT concat_ws(',', kind, status, amount) AS t FROM payments"
        ),
        "cheer,captured,1500"
    );
}

#[tokio::test]
async fn cancel_at_cycle_end_keeps_access_until_the_period_ends() {
    let (app, sim) = standalone().await;
    let creator = app.create_user("ce_creator", true);
    let fan = app.create_user("ce_fan", false);
    let tier = create_tier(&app, &creator, 30_000).await;
    let post = create_post(&app, &creator, &[tier]).await;
    let sid = create_sub(&app, &fan, tier).await;
    let paid = sim.pay(&sid).await;
    save_sub(&app, &fan, tier, &paid).await;
    let r = app
        .post(
            "/subscriptions/end/",
            &json!({"tier": tier, "end_type": 1}),
            Some(&fan.token),
        )
        .await;
    assert_eq!(r.body, json!({"status": "Success"}), "{}", r.text);
    // The cycle comes: Razorpay cancels instead of charging.
    sim.post(
        &format!("/_sim/subscriptions/{sid}/cycle"),
        json!({"outcome": "charged"}),
    )
    .await;
    settle(&app, &sim).await;
    let l = list(&app, &fan).await;
    assert_eq!(l[0]["status"], "cancelled", "{l:?}");
    assert_eq!(l[0]["cancel_at_period_end"], true);
    assert_eq!(l[0]["has_access"], true, "paid period not over yet");
    assert!(!locked(&app, post, &fan).await);
    assert_eq!(
        int(&app, "SELECT count(*) AS n FROM payments"),
        1,
        "no charge"
    );
    // Once the period is over, access ends.
    diesel::sql_query("UPDATE memberships SET current_end = now() - interval '1 minute'")
        .execute(&mut app.conn())
        .unwrap();
    app.settle().await;
    assert!(locked(&app, post, &fan).await);
    // A new membership can be started.
    let again = create_sub(&app, &fan, tier).await;
    assert_ne!(again, sid);
}

/// Redelivers every dropped event of the simulator and waits until each reached the server and
/// the inbox is drained.
async fn redeliver_dropped(app: &TestApp, sim: &Sim) -> usize {
    let dropped: Vec<String> = sim
        .events()
        .await
        .iter()
        .filter(|e| e["dropped"] == true && e["delivered"] != true)
        .map(|e| e["event_id"].as_str().unwrap().to_owned())
        .collect();
    for id in &dropped {
        sim.post("/_sim/webhooks/redeliver", json!({ "event_id": id }))
            .await;
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let events = sim.events().await;
        let done = dropped.iter().all(|id| {
            events
                .iter()
                .any(|e| e["event_id"] == id.as_str() && e["delivered"] == true)
        });
        if done {
            break;
        }
        assert!(Instant::now() < deadline, "redelivery stuck: {events:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drain(app).await;
    dropped.len()
}

/// `oasis billing reconcile` against a running server's embedded simulator.
async fn reconcile(cli: &oasis_server::Settings) -> String {
    oasis_server::workflows::cli::cli_reconcile(cli.clone())
        .await
        .expect("reconcile")
}

#[tokio::test]
async fn a_lost_renewal_webhook_cannot_lose_the_payment() {
    let app = spawn_app().await;
    let sim = Sim::embedded(&app);
    let creator = app.create_user("lr_creator", true);
    let fan = app.create_user("lr_fan", false);
    let tier = create_tier(&app, &creator, 42_000).await;
    let sid = create_sub(&app, &fan, tier).await;
    let paid = sim.pay(&sid).await;
    save_sub(&app, &fan, tier, &paid).await;
    settle(&app, &sim).await;
    assert_eq!(int(&app, "SELECT count(*) AS n FROM payments"), 1);
    let mut cli = app.settings.clone();
    cli.public_url = app.address.clone();
    let one_payment = |pay: &str| {
        text(
            &app,
            &format!(
                "SELECT concat_ws(',', count(*), min(p.kind), min(p.status), min(p.amount), min(p.currency),
                        bool_and(p.membership_id = m.id), bool_and(p.user_id = {}), bool_and(p.creator_id = {}),
                        bool_and(p.razorpay_subscription_id = m.razorpay_subscription_id)) AS t
                 FROM payments p, memberships m WHERE p.razorpay_payment_id = '{pay}'",
                fan.id, creator.id
            ),
        )
    };

    // Cycle 2 is charged at Razorpay, and every webhook of it is lost.
    sim.post("/_sim/webhooks/drop_next", json!({"count": 100}))
        .await;
    let c2 = sim
        .post(
            &format!("/_sim/subscriptions/{sid}/cycle"),
            json!({"outcome": "charged"}),
        )
        .await;
    sim.post("/_sim/webhooks/drop_next", json!({"count": 0}))
        .await;
    let pay2 = c2["payment"]["id"].as_str().unwrap().to_owned();
    let end2 = c2["subscription"]["current_end"].as_i64().unwrap();
    assert!(
        sim.events()
            .await
            .iter()
            .any(|e| e["dropped"] == true && e["event"] == "subscription.charged"),
        "the renewal's webhook was dropped"
    );
    settle(&app, &sim).await;
    assert_eq!(one_payment(&pay2), "0", "nothing told the server yet");
    assert_eq!(int(&app, "SELECT paid_count AS n FROM memberships"), 1);

    // Razorpay renews at the end of the paid period (the simulator bills at once): the
    // local period runs out, which is when reconciliation looks at the subscription.
    diesel::sql_query("UPDATE memberships SET current_end = now() - interval '1 minute'")
        .execute(&mut app.conn())
        .unwrap();
    let report = reconcile(&cli).await;
    assert!(
        report.contains("1 subscription(s)") && report.contains("1 recovered charge(s)"),
        "{report}"
    );
    assert_eq!(
        one_payment(&pay2),
        "1,subscription,captured,42000,INR,t,t,t,t",
        "the cycle-2 payment is recorded once, linked to the membership"
    );
    assert_eq!(int(&app, "SELECT count(*) AS n FROM payments"), 2);
    assert_eq!(
        text(
            &app,
            "SELECT concat_ws(',', status, paid_count, extract(epoch FROM current_end)::bigint) AS t FROM memberships"
        ),
        format!("active,2,{end2}"),
        "the period is extended as subscription.charged would"
    );
    assert_eq!(list(&app, &fan).await[0]["has_access"], true);
    let recovered = state(&app);

    // The lost webhooks arrive late (a retry, a day later): still once, same final state.
    assert!(redeliver_dropped(&app, &sim).await >= 3);
    assert_eq!(
        int(
            &app,
            "SELECT count(*) AS n FROM billing_webhook_events WHERE event = 'subscription.charged'"
        ),
        2,
        "the late charged event reached the inbox and was processed"
    );
    assert_eq!(
        one_payment(&pay2),
        "1,subscription,captured,42000,INR,t,t,t,t"
    );
    assert_eq!(state(&app), recovered);
    // Reconciling again changes nothing either.
    diesel::sql_query("UPDATE memberships SET current_end = now() - interval '1 minute'")
        .execute(&mut app.conn())
        .unwrap();
    let report = reconcile(&cli).await;
    assert!(report.contains("0 recovered charge(s)"), "{report}");
    assert_eq!(state(&app), recovered);

    // Only cycle 3's events are lost, cycle 4's arrive: the membership's period is current,
    // but its paid_count (4) exceeds the charges recorded (3) — reconciliation catches that too.
    sim.post("/_sim/webhooks/drop_next", json!({"count": 100}))
        .await;
    let c3 = sim
        .post(
            &format!("/_sim/subscriptions/{sid}/cycle"),
            json!({"outcome": "charged"}),
        )
        .await;
    sim.post("/_sim/webhooks/drop_next", json!({"count": 0}))
        .await;
    let pay3 = c3["payment"]["id"].as_str().unwrap().to_owned();
    let c4 = sim
        .post(
            &format!("/_sim/subscriptions/{sid}/cycle"),
            json!({"outcome": "charged"}),
        )
        .await;
    settle(&app, &sim).await;
    let pay4 = c4["payment"]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        one_payment(&pay4),
        "1,subscription,captured,42000,INR,t,t,t,t"
    );
    assert_eq!(one_payment(&pay3), "0");
    assert!(boolean(
        &app,
        "SELECT paid_count = 4 AND current_end > now() AS b FROM memberships"
    ));
    let report = reconcile(&cli).await;
    assert!(report.contains("1 recovered charge(s)"), "{report}");
    assert_eq!(
        one_payment(&pay3),
        "1,subscription,captured,42000,INR,t,t,t,t"
    );
    assert_eq!(
        int(
            &app,
            "SELECT sum(amount)::bigint AS n FROM payments WHERE kind = 'subscription' AND status = 'captured'"
        ),
        4 * 42_000,
        "every cycle's money is counted exactly once"
    );
    let recovered = state(&app);
    redeliver_dropped(&app, &sim).await;
    assert_eq!(state(&app), recovered);
}

#[tokio::test]
async fn guest_checkout_cannot_be_used_to_guess_passwords_or_set_weak_ones() {
    let app = spawn_app_with(|s| s.login_max_failures = 3).await;
    let creator = app.create_user("gg_creator", true);
    let tier = create_tier(&app, &creator, 9_900).await;
    let body = |pw: &str, email: &str| {
        json!({"email": email, "phone": "+911234567890", "password": pw,
               "payment_type": "recurring", "tierID": tier})
    };
    // Weak passwords are refused for new guest accounts, and nothing is created.
    for weak in ["12345678", "password", "short"] {
        let r = app
            .post(
                "/subscriptions/get_ghost_user/",
                &body(weak, "weak@example.com"),
                None,
            )
            .await;
        assert_eq!(r.status, 400, "{weak}: {}", r.text);
        assert!(r.body["password"].is_array(), "{}", r.text);
    }
    assert_eq!(
        int(
            &app,
            "SELECT count(*) AS n FROM users WHERE lower(email) = 'weak@example.com'"
        ),
        0
    );
    // Wrong passwords for an existing account are throttled like failed logins.
    let r = app
        .post(
            "/subscriptions/get_ghost_user/",
            &body("violet-harbor-31", "victim@example.com"),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    for _ in 0..3 {
        let r = app
            .post(
                "/subscriptions/get_ghost_user/",
                &body("guess-guess-guess", "victim@example.com"),
                None,
            )
            .await;
        assert_eq!(r.status, 400, "{}", r.text);
    }
    let r = app
        .post(
            "/subscriptions/get_ghost_user/",
            &body("violet-harbor-31", "victim@example.com"),
            None,
        )
        .await;
    assert_eq!(r.status, 429, "{}", r.text);
    assert!(r.header("retry-after").is_some());
}

mod commissions;
mod ledger;
mod memberships;
mod money;
mod payouts;

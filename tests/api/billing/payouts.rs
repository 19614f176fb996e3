//! Razorpay Route payouts end to end, through the real app and a standalone simulator: bank
//! details create the creator's linked account (a job), the simulator's reviewer activates it,
//! a cheer's net is transferred and settled (with the UTR in the ledger and `/payouts`), a
//! failed transfer is retried and both attempts stay visible, a lost transfer answer never
//! makes a second transfer, a commission is held until completed and reversed before a refund,
//! a dispute moves the net to `disputed`, a suspended account gets nothing, and USD accrues for
//! manual payout.
use super::*;

const PW: &str = "payout-Passw0rd-1";

/// The simulator's fee: 2% plus 18% GST on it (apps/razorpay-sim `mark_captured`).
fn net(amount: i64) -> i64 {
    let fee = amount * 2 / 100;
    amount - fee - fee * 18 / 100
}

async fn fast_payouts() -> (TestApp, Sim) {
    standalone_with(|s| {
        s.payout_sweep_secs = 1;
        s.ledger.payouts.retry_base_secs = 1;
    })
    .await
}

async fn poll<F: Fn(&Value) -> bool>(app: &TestApp, who: &TestUser, path: &str, ok: F) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r = app.get(path, Some(&who.token)).await;
        assert_eq!(r.status, 200, "{path}: {}", r.text);
        if ok(&r.body) {
            return r.body;
        }
        assert!(
            Instant::now() < deadline,
            "{path} never became ready: {}",
            r.text
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A creator with bank details whose linked account the simulator activated, and a fan.
async fn active_creator(app: &TestApp, sim: &Sim, name: &str) -> (TestUser, TestUser) {
    let creator = app.create_user(&format!("{name}_creator"), true);
    app.set_password(creator.id, PW);
    let fan = app.create_user(&format!("{name}_fan"), false);
    // The payout fields are validated like the others.
    let bad = json!({"ifscCode": "HDFC0001234", "accountNumber": "123456789012",
        "BankName": "HDFC Bank", "accountHolderName": "Asha Rao", "contactPhone": "12",
        "legalName": "A", "businessType": "company", "password": PW});
    let r = app
        .post("/subscriptions/api/bankdetails", &bad, Some(&creator.token))
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    for f in ["contactPhone", "legalName", "businessType"] {
        assert!(r.body[f].is_array(), "{f}: {}", r.text);
    }
    let body = json!({"ifscCode": "HDFC0001234", "accountNumber": "123456789012",
        "BankName": "HDFC Bank", "accountHolderName": "Asha Rao", "contactPhone": "9000090000",
        "legalName": "Asha Rao Studio", "businessType": "individual", "password": PW});
    let r = app
        .post(
            "/subscriptions/api/bankdetails",
            &body,
            Some(&creator.token),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    poll(app, &creator, "/subscriptions/api/earnings", |e| {
        e["payout_status"] == "pending"
    })
    .await;
    sim.post(
        "/_sim/route/products",
        json!({"activation_status": "activated"}),
    )
    .await;
    poll(app, &creator, "/subscriptions/api/earnings", |e| {
        e["payout_status"] == "active"
    })
    .await;
    (creator, fan)
}

async fn cheer(
    app: &TestApp,
    sim: &Sim,
    fan: &TestUser,
    creator: i64,
    amount: i64,
    cur: &str,
) -> String {
    let r = app
        .post(
            "/subscriptions/create_order",
            &json!({"amount": amount, "currency": cur, "creatorID": creator, "message": "hi"}),
            Some(&fan.token),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let oid = r.body["SubscriptionID"].as_str().unwrap().to_owned();
    sim.pay(&oid).await["razorpay_payment_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn rows_of<'a>(page: &'a Value, payment: &str) -> Vec<&'a Value> {
    page["results"]
        .as_array()
        .map(|v| v.iter().filter(|t| t["payment"] == payment).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn a_cheer_ends_as_a_settled_transfer_and_usd_accrues_for_manual_payout() {
    let (app, sim) = fast_payouts().await;
    let (creator, fan) = active_creator(&app, &sim, "po1").await;
    let inr = cheer(&app, &sim, &fan, creator.id, 12_345, "INR").await;
    cheer(&app, &sim, &fan, creator.id, 1_000, "USD").await;
    let page = poll(&app, &creator, "/subscriptions/api/payouts", |p| {
        rows_of(p, &inr).iter().any(|t| t["status"] == "processed")
    })
    .await;
    assert_eq!(page["count"], 1, "USD is never transferred: {page}");
    let t = rows_of(&page, &inr)[0].clone();
    assert_eq!(
        (t["amount"].as_i64(), t["currency"].as_str()),
        (Some(net(12_345)), Some("INR"))
    );
    let e = poll(&app, &creator, "/subscriptions/api/earnings", |e| {
        e["balances"]["INR"]["transferred"] == net(12_345)
    })
    .await;
    assert_eq!(e["balances"]["INR"]["pending"], 0, "{e}");
    assert_eq!(
        e["balances"]["USD"]["available_for_manual_payout"],
        net(1_000),
        "{e}"
    );

    let settled = sim.post("/_sim/settlements/run", json!({})).await;
    let utr = settled["items"][0]["utr"].as_str().unwrap().to_owned();
    let page = poll(&app, &creator, "/subscriptions/api/payouts", |p| {
        rows_of(p, &inr).iter().any(|t| t["status"] == "settled")
    })
    .await;
    assert_eq!(
        rows_of(&page, &inr)[0]["settlement_reference"],
        utr.as_str(),
        "{page}"
    );
    let e = poll(&app, &creator, "/subscriptions/api/earnings", |e| {
        e["balances"]["INR"]["settled"] == net(12_345)
    })
    .await;
    assert_eq!(e["balances"]["INR"]["transferred"], 0, "{e}");
    // The statement names the transfer and the settlement's bank reference.
    let st = app
        .get(
            "/subscriptions/api/earnings/statement",
            Some(&creator.token),
        )
        .await;
    assert_eq!(st.status, 200, "{}", st.text);
    let line = st.body["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["payment"] == inr.as_str())
        .cloned()
        .unwrap();
    assert_eq!(line["settlement_utr"], utr.as_str(), "{line}");
    assert!(
        line["transfer"].as_str().unwrap().starts_with("trf_"),
        "{line}"
    );
    // A refund made at Razorpay's dashboard (not by Oasis): the transfer is reversed after it.
    let second = cheer(&app, &sim, &fan, creator.id, 5_000, "INR").await;
    poll(&app, &creator, "/subscriptions/api/payouts", |p| {
        rows_of(p, &second)
            .iter()
            .any(|t| t["status"] == "processed")
    })
    .await;
    let r = sim
        .http
        .post(format!("{}/v1/payments/{second}/refund", sim.base))
        .basic_auth(KEY_ID, Some(KEY_SECRET))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    poll(&app, &creator, "/subscriptions/api/payouts", |p| {
        rows_of(p, &second)
            .iter()
            .any(|t| t["status"] == "reversed")
    })
    .await;
    let at_rzp = sim.get(&format!("/v1/payments/{second}/transfers")).await;
    assert_eq!(at_rzp["items"][0]["status"], "reversed", "{at_rzp}");
    let e = poll(&app, &creator, "/subscriptions/api/earnings", |_| true).await;
    let b = &e["balances"]["INR"];
    assert_eq!(
        (
            b["gross"].as_i64(),
            b["settled"].as_i64(),
            b["transferred"].as_i64()
        ),
        (Some(12_345), Some(net(12_345)), Some(0)),
        "{e}"
    );
    // The operator sees every creator's through the command line.
    let mut cli = app.settings.clone();
    cli.public_url = app.address.clone();
    let listed = oasis_server::workflows::payouts::cli_transfers(cli, None, 10)
        .await
        .expect("transfers");
    assert!(
        listed.contains(&format!(
            "\t{}\t{inr}\t1\tsettled\t{}\tINR\ttrf_",
            creator.id,
            net(12_345)
        )),
        "{listed}"
    );
    assert!(listed.contains(&utr), "{listed}");
    // Only the creator sees their own.
    let r = app
        .get("/subscriptions/api/payouts", Some(&fan.token))
        .await;
    assert_eq!(r.status, 403, "{}", r.text);
}

#[tokio::test]
async fn a_failed_transfer_is_retried_and_a_lost_answer_makes_no_second_transfer() {
    let (app, sim) = fast_payouts().await;
    let (creator, fan) = active_creator(&app, &sim, "po2").await;
    sim.post("/_sim/transfers/fail_next", json!({"count": 1}))
        .await;
    let first = cheer(&app, &sim, &fan, creator.id, 20_000, "INR").await;
    let page = poll(&app, &creator, "/subscriptions/api/payouts", |p| {
        rows_of(p, &first)
            .iter()
            .any(|t| t["status"] == "processed")
    })
    .await;
    let rows = rows_of(&page, &first);
    assert_eq!(rows.len(), 2, "both attempts stay visible: {page}");
    let statuses: Vec<_> = rows.iter().map(|t| t["status"].as_str().unwrap()).collect();
    assert!(
        statuses.contains(&"failed") && statuses.contains(&"processed"),
        "{page}"
    );
    assert!(rows.iter().any(|t| t["error"].is_string()), "{page}");

    sim.post("/_sim/transfers/drop_next_answer", json!({"count": 1}))
        .await;
    let second = cheer(&app, &sim, &fan, creator.id, 30_000, "INR").await;
    let page = poll(&app, &creator, "/subscriptions/api/payouts", |p| {
        rows_of(p, &second)
            .iter()
            .any(|t| t["status"] == "processed")
    })
    .await;
    assert_eq!(rows_of(&page, &second).len(), 1, "{page}");
    // Give the sweep more chances to go wrong, then count at Razorpay.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let at_rzp = sim.get(&format!("/v1/payments/{second}/transfers")).await;
    assert_eq!(
        at_rzp["count"], 1,
        "never two transfers for one payment: {at_rzp}"
    );
    assert_eq!(at_rzp["items"][0]["amount"], net(30_000));
    let e = poll(&app, &creator, "/subscriptions/api/earnings", |e| {
        e["balances"]["INR"]["transferred"] == net(20_000) + net(30_000)
    })
    .await;
    assert_eq!(e["balances"]["INR"]["pending"], 0, "{e}");
}

async fn commission_offering(app: &TestApp, creator: &TestUser, price: i64) -> i64 {
    let r = app
        .post(
            "/commissions/api/commission-creator/",
            &json!({"title": "Portrait", "description": "A drawing of you", "price": price,
                    "currency": "INR", "delivery_days": 7, "slots": 5, "is_open": true}),
            Some(&creator.token),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.body["id"].as_i64().unwrap()
}

/// Orders and pays a commission; answers (request id, payment id).
async fn paid_commission(app: &TestApp, sim: &Sim, fan: &TestUser, offering: i64) -> (i64, String) {
    let r = app
        .post(
            "/commissions/api/commission-user/",
            &json!({"commissionID": offering, "description": "My cat, in watercolour",
                    "contactDetails": "cat@example.com", "mode_of_delivery": "1", "currency": "INR"}),
            Some(&fan.token),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.body["id"].as_i64().unwrap();
    let oid = r.body["SubscriptionID"].as_str().unwrap().to_owned();
    let pay = sim.pay(&oid).await["razorpay_payment_id"]
        .as_str()
        .unwrap()
        .to_owned();
    poll(
        app,
        fan,
        &format!("/commissions/api/commission-user/{id}/"),
        |v| v["status"] == "ordered",
    )
    .await;
    (id, pay)
}

async fn move_to(app: &TestApp, who: &TestUser, id: i64, body: Value) {
    let r = app
        .patch(
            &format!("/commissions/api/commission-user/{id}/"),
            &body,
            Some(&who.token),
        )
        .await;
    assert_eq!(r.status, 200, "{body}: {}", r.text);
}

#[tokio::test]
async fn a_commission_is_transferred_on_hold_released_on_completion_and_reversed_before_a_refund() {
    let (app, sim) = fast_payouts().await;
    let (creator, fan) = active_creator(&app, &sim, "po3").await;
    let offering = commission_offering(&app, &creator, 50_000).await;

    // Completed: the held transfer is released, then settled.
    let (done, done_pay) = paid_commission(&app, &sim, &fan, offering).await;
    let page = poll(&app, &creator, "/subscriptions/api/payouts", |p| {
        rows_of(p, &done_pay)
            .iter()
            .any(|t| t["status"] == "processed")
    })
    .await;
    assert_eq!(rows_of(&page, &done_pay)[0]["on_hold"], true, "{page}");
    let none = sim.post("/_sim/settlements/run", json!({})).await;
    assert_eq!(none["count"], 0, "a held transfer is not settled: {none}");
    let e = poll(&app, &creator, "/subscriptions/api/earnings", |_| true).await;
    assert_eq!(e["balances"]["INR"]["on_hold"], net(50_000), "{e}");
    move_to(&app, &creator, done, json!({"status": "accepted"})).await;
    move_to(&app, &creator, done, json!({"status": "in_progress"})).await;
    move_to(
        &app,
        &creator,
        done,
        json!({"status": "delivered", "message": "Here it is"}),
    )
    .await;
    move_to(&app, &fan, done, json!({"status": "completed"})).await;
    poll(&app, &creator, "/subscriptions/api/payouts", |p| {
        rows_of(p, &done_pay).iter().any(|t| t["on_hold"] == false)
    })
    .await;
    poll(&app, &creator, "/subscriptions/api/earnings", |e| {
        e["balances"]["INR"]["transferred"] == net(50_000)
    })
    .await;
    sim.post("/_sim/settlements/run", json!({})).await;
    poll(&app, &creator, "/subscriptions/api/earnings", |e| {
        e["balances"]["INR"]["settled"] == net(50_000)
    })
    .await;

    // Cancelled after its transfer: the transfer is reversed, then the payment refunded.
    let (cancelled, cancelled_pay) = paid_commission(&app, &sim, &fan, offering).await;
    poll(&app, &creator, "/subscriptions/api/payouts", |p| {
        rows_of(p, &cancelled_pay)
            .iter()
            .any(|t| t["status"] == "processed")
    })
    .await;
    move_to(
        &app,
        &fan,
        cancelled,
        json!({"status": "cancelled", "message": "Changed my mind"}),
    )
    .await;
    poll(&app, &creator, "/subscriptions/api/payouts", |p| {
        rows_of(p, &cancelled_pay)
            .iter()
            .any(|t| t["status"] == "reversed")
    })
    .await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let refunds = sim
            .get(&format!("/v1/payments/{cancelled_pay}/refunds"))
            .await;
        if refunds["count"] == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "never refunded: {refunds}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let at_rzp = sim
        .get(&format!("/v1/payments/{cancelled_pay}/transfers"))
        .await;
    assert_eq!(at_rzp["items"][0]["status"], "reversed", "{at_rzp}");
    let e = poll(&app, &creator, "/subscriptions/api/earnings", |e| {
        e["balances"]["INR"]["gross"] == 50_000
    })
    .await;
    let b = &e["balances"]["INR"];
    assert_eq!(
        (
            b["settled"].as_i64(),
            b["pending"].as_i64(),
            b["on_hold"].as_i64(),
            b["transferred"].as_i64()
        ),
        (Some(net(50_000)), Some(0), Some(0), Some(0)),
        "the refunded commission left nothing behind: {e}"
    );
    // Reversed first, then refunded.
    let trf = at_rzp["items"][0]["id"].as_str().unwrap();
    let rev = sim.get(&format!("/v1/transfers/{trf}/reversals")).await;
    let refund = sim
        .get(&format!("/v1/payments/{cancelled_pay}/refunds"))
        .await;
    assert!(
        rev["items"][0]["created_at"].as_i64() <= refund["items"][0]["created_at"].as_i64(),
        "{rev} {refund}"
    );
    assert_eq!(rev["count"], 1, "{rev}");
}

#[tokio::test]
async fn a_membership_charge_settles_a_dispute_moves_it_and_a_suspended_account_gets_nothing() {
    let (app, sim) = fast_payouts().await;
    let (creator, fan) = active_creator(&app, &sim, "po4").await;
    let tier = create_tier(&app, &creator, 10_000).await;
    let sid = create_sub(&app, &fan, tier).await;
    let pay = sim.pay(&sid).await["razorpay_payment_id"]
        .as_str()
        .unwrap()
        .to_owned();
    poll(&app, &creator, "/subscriptions/api/payouts", |p| {
        rows_of(p, &pay).iter().any(|t| t["status"] == "processed")
    })
    .await;
    sim.post("/_sim/settlements/run", json!({})).await;
    let e = poll(&app, &creator, "/subscriptions/api/earnings", |e| {
        e["balances"]["INR"]["settled"] == net(10_000)
    })
    .await;
    assert_eq!(e["balances"]["INR"]["gross"], 10_000, "{e}");
    let page = poll(&app, &creator, "/subscriptions/api/payouts", |p| {
        rows_of(p, &pay).iter().any(|t| t["status"] == "settled")
    })
    .await;
    assert!(
        rows_of(&page, &pay)[0]["settlement_reference"].is_string(),
        "{page}"
    );
    // A chargeback moves the amount to `disputed`; winning it brings it back.
    sim.post(
        &format!("/_sim/payments/{pay}/dispute"),
        json!({"status": "created"}),
    )
    .await;
    poll(&app, &creator, "/subscriptions/api/earnings", |e| {
        e["balances"]["INR"]["disputed"] == net(10_000)
    })
    .await;
    sim.post(
        &format!("/_sim/payments/{pay}/dispute"),
        json!({"status": "won"}),
    )
    .await;
    poll(&app, &creator, "/subscriptions/api/earnings", |e| {
        e["balances"]["INR"]["settled"] == net(10_000) && e["balances"]["INR"]["disputed"] == 0
    })
    .await;
    // Razorpay's review asks for more, then suspends: the creator sees it, nothing more moves.
    for status in ["needs_clarification", "suspended"] {
        sim.post("/_sim/route/products", json!({"activation_status": status}))
            .await;
        poll(&app, &creator, "/subscriptions/api/earnings", |e| {
            e["payout_status"] == status
        })
        .await;
    }
    let next = sim
        .pay(&create_sub(&app, &fan, create_tier(&app, &creator, 20_000).await).await)
        .await["razorpay_payment_id"]
        .as_str()
        .unwrap()
        .to_owned();
    poll(&app, &creator, "/subscriptions/api/earnings", |e| {
        e["balances"]["INR"]["pending"] == net(20_000)
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let page = app
        .get("/subscriptions/api/payouts", Some(&creator.token))
        .await;
    assert!(
        rows_of(&page.body, &next).is_empty(),
        "a suspended account gets nothing: {}",
        page.text
    );
}

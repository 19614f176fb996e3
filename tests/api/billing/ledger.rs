//! The earnings ledger end to end: a membership charge and cheers (INR and USD) paid at the
//! simulator are posted with Razorpay's fee and the platform fee; a partial refund reverses
//! proportionally; the statement pages and exports as CSV; USD accrues for the operator's
//! manual payout (`oasis payouts pending|mark-paid`).
use super::*;

/// The simulator's fee: 2% plus 18% GST on it (apps/razorpay-sim `mark_captured`).
fn sim_fee(amount: i64) -> i64 {
    let fee = amount * 2 / 100;
    fee + fee * 18 / 100
}

const BPS: u32 = 500;

fn platform_fee(amount: i64) -> i64 {
    amount * i64::from(BPS) / 10_000
}

fn net(amount: i64) -> i64 {
    amount - sim_fee(amount) - platform_fee(amount)
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
    let paid = sim.pay(&oid).await;
    paid["razorpay_payment_id"].as_str().unwrap().to_owned()
}

async fn earnings(app: &TestApp, who: &TestUser) -> Value {
    let r = app
        .get("/subscriptions/api/earnings/", Some(&who.token))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body
}

#[tokio::test]
async fn payments_refunds_and_manual_payouts_through_the_ledger() {
    let (app, sim) = standalone_with(|s| s.ledger.platform_fee_bps = BPS).await;
    let creator = app.create_user("lg_creator", true);
    let fan = app.create_user("lg_fan", false);
    let tier = create_tier(&app, &creator, 10_000).await;

    // A membership charge, an INR cheer and a USD cheer.
    let sid = create_sub(&app, &fan, tier).await;
    sim.pay(&sid).await;
    let inr = cheer(&app, &sim, &fan, creator.id, 12_345, "INR").await;
    cheer(&app, &sim, &fan, creator.id, 1_000, "USD").await;
    settle(&app, &sim).await;

    let e = earnings(&app, &creator).await;
    assert_eq!(e["payout_status"], "not_set_up", "{e}");
    let b = &e["balances"]["INR"];
    assert_eq!(b["gross"], 22_345, "{e}");
    assert_eq!(b["pending"], net(10_000) + net(12_345), "{e}");
    assert_eq!(
        b["fees"],
        sim_fee(10_000) + sim_fee(12_345) + platform_fee(10_000) + platform_fee(12_345)
    );
    assert_eq!(b["net"], b["pending"]);
    assert_eq!(
        (b["on_hold"].as_i64(), b["transferred"].as_i64()),
        (Some(0), Some(0))
    );
    let usd = &e["balances"]["USD"];
    assert_eq!(usd["available_for_manual_payout"], net(1_000), "{e}");
    assert_eq!(usd["pending"], 0);

    // Duplicate deliveries and a reconciliation post nothing twice.
    let postings = int(&app, "SELECT count(*) AS n FROM ledger_postings");
    assert_eq!(postings, 3);
    let mut cli = app.settings.clone();
    cli.public_url = app.address.clone();
    reconcile(&cli).await;
    assert_eq!(int(&app, "SELECT count(*) AS n FROM ledger_postings"), 3);

    // A partial refund of the INR cheer reverses its split proportionally.
    let r = sim
        .http
        .post(format!("{}/v1/payments/{inr}/refund", sim.base))
        .basic_auth(KEY_ID, Some(KEY_SECRET))
        .json(&json!({"amount": 5_000}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    settle(&app, &sim).await;
    let e = earnings(&app, &creator).await;
    let b = &e["balances"]["INR"];
    assert_eq!(b["gross"], 22_345 - 5_000, "{e}");
    let (fees, net_now) = (b["fees"].as_i64().unwrap(), b["net"].as_i64().unwrap());
    assert_eq!(fees + net_now, 22_345 - 5_000, "no paisa lost: {e}");
    let reversed = net(10_000) + net(12_345) - net_now;
    // 5000/12345 of the cheer's net, rounded to the paisa.
    let exact = net(12_345) as f64 * 5_000.0 / 12_345.0;
    assert!(
        (reversed as f64 - exact).abs() <= 1.0,
        "{reversed} vs {exact}"
    );

    // The dashboard shows the net beside the gross.
    let r = app.get("/feed/api/stats", Some(&creator.token)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let net_of = |field: &str, cur: &str| {
        r.body[field]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["currency"] == cur)
            .map(|m| m["amount"].as_i64().unwrap())
    };
    assert_eq!(
        net_of("net_earnings_all_time", "INR"),
        Some(net_now),
        "{}",
        r.text
    );
    assert_eq!(net_of("net_earnings_this_month", "USD"), Some(net(1_000)));
    assert_eq!(
        r.body["earnings_all_time"]["amounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["currency"] == "INR")
            .map(|m| m["amount"].as_i64().unwrap()),
        Some(22_345 - 5_000),
        "gross beside it: {}",
        r.text
    );

    // The statement: JSON pages, oldest first.
    let r = app
        .get(
            "/subscriptions/api/earnings/statement?page_size=3",
            Some(&creator.token),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["count"], 4, "{}", r.text);
    assert!(r.body["next"].as_str().unwrap().contains("page=2"));
    // Captures share the second they were paid in: their order among themselves is the
    // order they were recorded in.
    let charge = r.body["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["type"] == "membership")
        .cloned()
        .unwrap_or_else(|| panic!("the membership charge is on page 1: {}", r.text));
    assert_eq!(charge["kind"], "capture");
    assert_eq!(charge["gross"], 10_000);
    assert_eq!(charge["gateway_fee"], sim_fee(10_000));
    assert_eq!(charge["platform_fee"], platform_fee(10_000));
    assert_eq!(charge["net"], net(10_000));
    let r = app
        .get(
            "/subscriptions/api/earnings/statement?page=2&page_size=3",
            Some(&creator.token),
        )
        .await;
    assert_eq!(r.body["results"][0]["kind"], "refund", "{}", r.text);
    assert_eq!(r.body["results"][0]["gross"], -5_000);
    // A period with nothing in it, and bad input.
    let r = app
        .get(
            "/subscriptions/api/earnings/statement?from=2001-01-01&to=2001-12-31",
            Some(&creator.token),
        )
        .await;
    assert_eq!(r.body["count"], 0, "{}", r.text);
    for (q, field) in [
        ("from=yesterday", "from"),
        ("from=2026-12-02&to=2026-12-01", "to"),
        ("format=xlsx", "format"),
    ] {
        let r = app
            .get(
                &format!("/subscriptions/api/earnings/statement?{q}"),
                Some(&creator.token),
            )
            .await;
        assert_eq!(r.status, 400, "{q}: {}", r.text);
        assert!(r.body[field].is_array(), "{q}: {}", r.text);
    }
    // Only creators have earnings; nobody sees another's (the caller's own are answered).
    let r = app
        .get("/subscriptions/api/earnings", Some(&fan.token))
        .await;
    assert_eq!(r.status, 403, "{}", r.text);
    let r = app.get("/subscriptions/api/earnings", None).await;
    assert_eq!(r.status, 401, "{}", r.text);

    // The CSV export parses with a standard CSV reader and says the same.
    let r = app
        .get(
            "/subscriptions/api/earnings/statement?format=csv&from=2000-01-01",
            Some(&creator.token),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.header("content-type").unwrap().starts_with("text/csv"));
    assert!(r
        .header("content-disposition")
        .unwrap()
        .contains("attachment; filename=\"oasis-statement-2000-01-01-now.csv\""));
    let mut rd = csv::Reader::from_reader(r.text.as_bytes());
    let header: Vec<String> = rd.headers().unwrap().iter().map(str::to_owned).collect();
    assert_eq!(
        header,
        [
            "date",
            "payment",
            "kind",
            "type",
            "currency",
            "gross",
            "gateway_fee",
            "platform_fee",
            "net",
            "transfer",
            "settlement_utr"
        ]
    );
    let rows: Vec<csv::StringRecord> = rd.records().map(|r| r.expect("a CSV row")).collect();
    assert_eq!(rows.len(), 4);
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let inr_net: i64 = rows
        .iter()
        .filter(|r| &r[col("currency")] == "INR")
        .map(|r| r[col("net")].parse::<i64>().unwrap())
        .sum();
    assert_eq!(inr_net, net_now);
    assert!(rows
        .iter()
        .any(|r| r[col("payment")] == inr && &r[col("kind")] == "refund"));
    // An empty period still has its header row.
    let r = app
        .get(
            "/subscriptions/api/earnings/statement?format=csv&to=2001-01-01",
            Some(&creator.token),
        )
        .await;
    assert_eq!(r.text.lines().count(), 1, "{}", r.text);

    // USD: the operator lists it and marks it paid, once per reference.
    let pending = oasis_server::workflows::payouts::cli_pending(cli.clone())
        .await
        .expect("pending");
    assert!(
        pending.contains(&format!("{}\tUSD\t{}", creator.id, net(1_000))),
        "{pending}"
    );
    let over = oasis_server::workflows::payouts::cli_mark_paid(
        cli.clone(),
        creator.id,
        "USD",
        net(1_000) + 1,
        "wire-7",
    )
    .await;
    assert!(over.is_err(), "more than available is refused");
    for _ in 0..2 {
        oasis_server::workflows::payouts::cli_mark_paid(
            cli.clone(),
            creator.id,
            "usd",
            net(1_000),
            "wire-7",
        )
        .await
        .expect("mark-paid");
    }
    let usd = &earnings(&app, &creator).await["balances"]["USD"];
    assert_eq!(usd["available_for_manual_payout"], 0, "{usd}");
    assert_eq!(usd["settled"], net(1_000), "{usd}");
    let pending = oasis_server::workflows::payouts::cli_pending(cli)
        .await
        .expect("pending");
    assert_eq!(pending, "no manual payouts pending");
}

#[tokio::test]
async fn the_ledger_refuses_unbalanced_postings_and_edits() {
    let app = spawn_app().await;
    let mut c = app.conn();
    let creator = app.create_user("lg_guard", true);
    diesel::sql_query(format!(
        "INSERT INTO ledger_postings (key, creator_id, currency, kind, gross, gateway_fee, platform_fee, net, posted_at)
         VALUES ('manual:test', {}, 'USD', 'manual_payout', 0, 0, 0, 0, now())",
        creator.id
    ))
    .execute(&mut c)
    .unwrap();
    // One-sided entry: refused at commit by the deferred trigger.
    let r = c.transaction::<_, diesel::result::Error, _>(|c| {
        diesel::sql_query(format!(
            "INSERT INTO ledger_entries (posting_id, creator_id, currency, account, amount)
             SELECT id, {}, 'USD', 'creator_settled', 1 FROM ledger_postings",
            creator.id
        ))
        .execute(c)?;
        Ok(())
    });
    let err = r.expect_err("unbalanced posting committed");
    assert!(err.to_string().contains("does not sum to zero"), "{err}");
    // Append-only.
    let r = diesel::sql_query("UPDATE ledger_postings SET net = 1").execute(&mut c);
    assert!(r.unwrap_err().to_string().contains("append-only"));
    // An unknown account name is a CHECK violation.
    let r = diesel::sql_query(format!(
        "INSERT INTO ledger_entries (posting_id, creator_id, currency, account, amount)
         SELECT id, {}, 'USD', 'creator', 0 FROM ledger_postings",
        creator.id
    ))
    .execute(&mut c);
    assert!(r.is_err());
}

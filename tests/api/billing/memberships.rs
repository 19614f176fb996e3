//! Memberships that bend: annual billing (and, as they land, pause/resume, tier changes, free
//! trials and creator hiatus), through the real server against the simulator.
use super::*;

async fn tier_with(app: &TestApp, who: &TestUser, body: Value) -> Resp {
    app.post("/content/api/tiers/", &body, Some(&who.token))
        .await
}

async fn start(app: &TestApp, fan: &TestUser, body: Value) -> Resp {
    app.post("/subscriptions/create", &body, Some(&fan.token))
        .await
}

#[tokio::test]
async fn a_tier_sells_yearly_beside_monthly_and_mrr_counts_a_twelfth() {
    let (app, sim) = standalone().await;
    let creator = app.create_user("yr_creator", true);
    let fan = app.create_user("yr_fan", false);
    let monthly_fan = app.create_user("yr_monthly", false);

    // Tier validation: a yearly price needs a paid tier and the charge limits.
    let r = tier_with(
        &app,
        &creator,
        json!({"name": "Free", "price": 0, "annual_price": 100_000}),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(r.body["annual_price"].is_array(), "{}", r.text);
    let r = tier_with(
        &app,
        &creator,
        json!({"name": "Gold", "price": 50_000, "annual_price": 500_000, "currency": "INR"}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["annual_price"], 500_000);
    let gold = r.body["id"].as_i64().unwrap();
    let silver = create_tier(&app, &creator, 20_000).await;
    let r = app
        .get(&format!("/content/api/tiers/{silver}/"), Some(&fan.token))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["annual_price"], Value::Null, "monthly only");

    // Refusals: an unknown period, and yearly on a monthly-only tier; nothing is made.
    let r = start(&app, &fan, json!({"tierID": gold, "period": "weekly"})).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(r.body["period"].is_array(), "{}", r.text);
    let r = start(&app, &fan, json!({"tierID": silver, "period": "yearly"})).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(r.body["period"].is_array(), "{}", r.text);
    assert_eq!(int(&app, "SELECT count(*) AS n FROM memberships"), 0);

    // A yearly membership: its own plan at Razorpay (yearly, the annual price, 10 cycles).
    let r = start(&app, &fan, json!({"tierID": gold, "period": "yearly"})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let sid = r.body["SubscriptionID"].as_str().unwrap().to_owned();
    let sub = sim.get(&format!("/v1/subscriptions/{sid}")).await;
    assert_eq!(sub["total_count"], 10, "{sub}");
    assert_eq!(sub["notes"]["period"], "yearly", "{sub}");
    let plan = sim
        .get(&format!("/v1/plans/{}", sub["plan_id"].as_str().unwrap()))
        .await;
    assert_eq!(plan["period"], "yearly", "{plan}");
    assert_eq!(plan["item"]["amount"], 500_000, "{plan}");
    let paid = sim.pay(&sid).await;
    save_sub(&app, &fan, gold, &paid).await;
    let l = list(&app, &fan).await;
    assert_eq!(l.len(), 1, "{l:?}");
    assert_eq!(
        (&l[0]["period"], &l[0]["amount"], &l[0]["has_access"]),
        (&json!("yearly"), &json!(500_000), &json!(true))
    );
    // The paid period is a year.
    assert!(boolean(
        &app,
        "SELECT current_end - current_start BETWEEN interval '364 days' AND interval '366 days' AS b
         FROM memberships WHERE period = 'yearly'"
    ));

    // A monthly member of the same tier: plans are per (tier, period, price).
    let sid = create_sub(&app, &monthly_fan, gold).await;
    let paid = sim.pay(&sid).await;
    save_sub(&app, &monthly_fan, gold, &paid).await;
    assert_eq!(
        text(
            &app,
            "SELECT string_agg(period || ':' || amount, ',' ORDER BY period) AS t FROM billing_plans"
        ),
        "monthly:50000,yearly:500000"
    );
    settle(&app, &sim).await;

    // MRR: 50000 a month + 500000 a year (a twelfth: 41667 rounded).
    let r = app.get("/feed/api/stats", Some(&creator.token)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["mrr"], json!([{"amount": 91667, "currency": "INR"}]));
    let g = r.body["tiers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == gold)
        .cloned()
        .unwrap();
    assert_eq!(g["active_members"], 2, "both periods are members alike");

    // Removing the yearly price keeps the yearly member's; new yearly checkouts are refused.
    let r = app
        .patch(
            &format!("/content/api/tiers/{gold}/"),
            &json!({"annual_price": null}),
            Some(&creator.token),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["annual_price"], Value::Null);
    let late = app.create_user("yr_late", false);
    let r = start(&app, &late, json!({"tierID": gold, "period": "yearly"})).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(list(&app, &fan).await[0]["has_access"], true);
}

/// Polls `sql` (one text value) until it equals `want`.
async fn until_text(app: &TestApp, sql: &str, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = text(app, sql);
        if got == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{sql}: {got:?}, waiting for {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A fan with a paid monthly membership of a new tier: (fan, tier, subscription id).
async fn member(
    app: &TestApp,
    sim: &Sim,
    name: &str,
    creator: &TestUser,
) -> (TestUser, i64, String) {
    let fan = app.create_user(name, false);
    let tier = create_tier(app, creator, 30_000).await;
    let sid = create_sub(app, &fan, tier).await;
    let paid = sim.pay(&sid).await;
    save_sub(app, &fan, tier, &paid).await;
    (fan, tier, sid)
}

async fn pause(app: &TestApp, fan: &TestUser, body: Value) -> Resp {
    app.post("/subscriptions/pause/", &body, Some(&fan.token))
        .await
}

async fn resume(app: &TestApp, fan: &TestUser, tier: i64) -> Resp {
    app.post(
        "/subscriptions/resume/",
        &json!({ "tier": tier }),
        Some(&fan.token),
    )
    .await
}

fn refusal(r: &Resp, field: &str) -> String {
    assert_eq!(r.status, 400, "{}", r.text);
    r.body[field][0]
        .as_str()
        .unwrap_or_else(|| panic!("no {field} message: {}", r.text))
        .to_owned()
}

#[tokio::test]
async fn a_fan_pauses_at_the_period_end_skips_cycles_and_resumes_even_after_a_lost_answer() {
    // Pauses are made 40 days before the period ends: i.e. at once, in this test.
    let (app, sim) = standalone_with(|s| s.billing_pause_lead_secs = 40 * 86_400).await;
    let creator = app.create_user("pz_creator", true);
    let (fan, tier, sid) = member(&app, &sim, "pz_fan", &creator).await;
    settle(&app, &sim).await;

    // Refusals, each with its reason; nothing is recorded.
    for cycles in [json!(0), json!(4), json!("x")] {
        refusal(
            &pause(&app, &fan, json!({"tier": tier, "cycles": cycles})).await,
            "cycles",
        );
    }
    let other_tier = create_tier(&app, &creator, 40_000).await;
    let why = refusal(
        &pause(&app, &fan, json!({"tier": other_tier, "cycles": 1})).await,
        "tier",
    );
    assert!(why.contains("no membership"), "{why}");
    let why = refusal(&resume(&app, &fan, tier).await, "tier");
    assert!(why.contains("not paused"), "{why}");
    let unpaid = app.create_user("pz_unpaid", false);
    create_sub(&app, &unpaid, tier).await;
    let why = refusal(
        &pause(&app, &unpaid, json!({"tier": tier, "cycles": 1})).await,
        "tier",
    );
    assert!(
        why.contains("Only an active") && why.contains("created"),
        "{why}"
    );
    assert_eq!(int(&app, "SELECT count(*) AS n FROM billing_pauses"), 0);

    // Razorpay pauses but its answer is lost (502 after acting): the job finds it paused.
    sim.post(
        "/_sim/chaos",
        json!({"fail_routes": [{"method": "POST", "path_prefix": format!("/v1/subscriptions/{sid}/pause"),
                                "status": 502, "times": 1, "when": "after"}]}),
    )
    .await;
    let r = pause(&app, &fan, json!({"tier": tier, "cycles": 2})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        (&r.body["state"], &r.body["cycles"]),
        (&json!("scheduled"), &json!(2))
    );
    assert!(r.body["resume_at"].is_string(), "{}", r.text);
    let why = refusal(
        &pause(&app, &fan, json!({"tier": tier, "cycles": 1})).await,
        "tier",
    );
    assert!(why.contains("already"), "{why}");
    until_text(&app, "SELECT state AS t FROM billing_pauses", "paused").await;
    assert_eq!(
        sim.get(&format!("/v1/subscriptions/{sid}")).await["status"],
        "paused"
    );
    settle(&app, &sim).await;
    let l = list(&app, &fan).await;
    assert_eq!(
        (&l[0]["status"], &l[0]["has_access"]),
        (&json!("paused"), &json!(true)),
        "paused at Razorpay, access until the paid period ends"
    );
    // Resumes two calendar months after the paid period's end.
    assert!(boolean(
        &app,
        "SELECT p.resume_at = m.current_end + interval '2 months' AS b
         FROM billing_pauses p JOIN memberships m ON m.id = p.membership_id"
    ));
    // No charge while paused: Razorpay refuses to bill a paused subscription.
    let r = sim
        .http
        .post(format!("{}/_sim/subscriptions/{sid}/cycle", sim.base))
        .json(&json!({"outcome": "charged"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    // The fan resumes early; a lost answer again is found done.
    sim.post(
        "/_sim/chaos",
        json!({"fail_routes": [{"method": "POST", "path_prefix": format!("/v1/subscriptions/{sid}/resume"),
                                "status": 502, "times": 1, "when": "after"}]}),
    )
    .await;
    let r = resume(&app, &fan, tier).await;
    assert_eq!(r.status, 200, "{}", r.text);
    until_text(&app, "SELECT state AS t FROM billing_pauses", "resumed").await;
    assert_eq!(
        sim.get(&format!("/v1/subscriptions/{sid}")).await["status"],
        "active"
    );
    settle(&app, &sim).await;
    assert_eq!(list(&app, &fan).await[0]["status"], "active");
    // The scheduled resume finds nothing left to do.
    assert_eq!(
        text(
            &app,
            "SELECT string_agg(state, ',') AS t FROM billing_pauses"
        ),
        "resumed"
    );
}

#[tokio::test]
async fn a_pause_waits_for_the_period_end_and_resuming_before_it_asks_razorpay_nothing() {
    let (app, sim) = standalone().await;
    let creator = app.create_user("pw_creator", true);
    let (fan, tier, sid) = member(&app, &sim, "pw_fan", &creator).await;
    let r = pause(&app, &fan, json!({"tier": tier, "cycles": 1})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["state"], "scheduled");
    // Scheduled a minute (OASIS_BILLING_PAUSE_LEAD_SECS) before the paid period ends.
    assert!(boolean(
        &app,
        "SELECT p.pause_at = m.current_end - interval '60 seconds' AS b
         FROM billing_pauses p JOIN memberships m ON m.id = p.membership_id"
    ));
    assert!(boolean(
        &app,
        "SELECT j.run_at = p.pause_at AS b FROM jobs j, billing_pauses p
         WHERE j.kind = 'billing.pause' AND j.done_at IS NULL"
    ));
    let r = resume(&app, &fan, tier).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["state"], "cancelled");
    assert_eq!(
        sim.get(&format!("/v1/subscriptions/{sid}")).await["status"],
        "active"
    );
    // A new pause may be asked for again.
    let r = pause(&app, &fan, json!({"tier": tier, "cycles": 3})).await;
    assert_eq!(r.status, 200, "{}", r.text);
}

async fn change_preview(app: &TestApp, fan: &TestUser, tier: i64, to: i64) -> Resp {
    app.get(
        &format!("/subscriptions/change/preview?tier={tier}&to={to}"),
        Some(&fan.token),
    )
    .await
}

#[tokio::test]
async fn a_change_preview_prices_an_upgrade_now_and_a_downgrade_at_the_cycle_end() {
    let (app, sim) = standalone().await;
    let creator = app.create_user("cp_creator", true);
    let (fan, tier, _sid) = member(&app, &sim, "cp_fan", &creator).await;
    settle(&app, &sim).await;
    let gold = create_tier(&app, &creator, 60_000).await;
    let bronze = create_tier(&app, &creator, 10_000).await;

    // Upgrade: now, the prorated difference of the remaining amounts (Razorpay's rule).
    let r = change_preview(&app, &fan, tier, gold).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        (&r.body["effective"], &r.body["method"], &r.body["credit"]),
        (&json!("now"), &json!("update"), &json!(0)),
        "{}",
        r.text
    );
    let expected = int(
        &app,
        "SELECT round(30000 * extract(epoch FROM current_end - now())
                     / extract(epoch FROM current_end - current_start))::bigint AS n
         FROM memberships",
    );
    let charge = r.body["charge_now"].as_i64().unwrap();
    assert!(
        (charge - expected).abs() <= 1 && charge > 0,
        "{charge} vs {expected}"
    );
    assert_eq!(
        (&r.body["next_charge_amount"], &r.body["currency"]),
        (&json!(60_000), &json!("INR"))
    );
    let next_at = r.body["next_charge_at"].as_str().unwrap().to_owned();
    assert!(boolean(
        &app,
        &format!("SELECT current_end = '{next_at}'::timestamptz AS b FROM memberships")
    ));

    // Downgrade (with a trailing slash): at the cycle end, no credit, the next charge cheaper.
    let r = app
        .get(
            &format!("/subscriptions/change/preview/?tier={tier}&to={bronze}"),
            Some(&fan.token),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        (
            &r.body["effective"],
            &r.body["charge_now"],
            &r.body["credit"],
            &r.body["next_charge_amount"],
            &r.body["next_charge_at"]
        ),
        (
            &json!("cycle_end"),
            &json!(0),
            &json!(0),
            &json!(10_000),
            &json!(next_at)
        ),
        "{}",
        r.text
    );

    // Refusals, each with its reason.
    let why = refusal(&change_preview(&app, &fan, tier, tier).await, "to");
    assert!(why.contains("already your tier"), "{why}");
    let other = app.create_user("cp_other", true);
    let theirs = create_tier(&app, &other, 60_000).await;
    let why = refusal(&change_preview(&app, &fan, tier, theirs).await, "to");
    assert!(why.contains("another creator"), "{why}");
    let why = refusal(&change_preview(&app, &fan, gold, tier).await, "tier");
    assert!(why.contains("no membership"), "{why}");
    let unpaid = app.create_user("cp_unpaid", false);
    create_sub(&app, &unpaid, tier).await;
    let why = refusal(&change_preview(&app, &unpaid, tier, gold).await, "tier");
    assert!(
        why.contains("Only an active") && why.contains("created"),
        "{why}"
    );
    let r = tier_with(
        &app,
        &creator,
        json!({"name": "Dollar", "description": "d", "price": 2_000, "currency": "USD", "benefits": ["a"]}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let usd = r.body["id"].as_i64().unwrap();
    let why = refusal(&change_preview(&app, &fan, tier, usd).await, "to");
    assert!(why.contains("USD"), "{why}");
    let r = app
        .get(
            &format!("/subscriptions/change/preview?to={gold}"),
            Some(&fan.token),
        )
        .await;
    assert_eq!(refusal(&r, "tier"), "This field is required.");
    let r = app
        .get(
            &format!("/subscriptions/change/preview?tier={tier}&to={gold}"),
            None,
        )
        .await;
    assert_eq!(r.status, 401, "{}", r.text);
}

async fn change(app: &TestApp, fan: &TestUser, body: Value) -> Resp {
    app.post("/subscriptions/change/", &body, Some(&fan.token))
        .await
}

/// Polls `sql` (one integer) until it equals `want`.
async fn until_int(app: &TestApp, sql: &str, want: i64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got = int(app, sql);
        if got == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{sql}: {got}, waiting for {want}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The preview's fields of a change answer.
fn preview_part(v: &Value) -> Value {
    json!({
        "effective": v["effective"], "method": v["method"], "charge_now": v["charge_now"],
        "credit": v["credit"], "next_charge_amount": v["next_charge_amount"],
        "next_charge_at": v["next_charge_at"], "currency": v["currency"],
    })
}

#[tokio::test]
async fn an_upgrade_charges_what_the_preview_said_and_a_downgrade_waits_for_the_cycle_end() {
    let (app, sim) = standalone().await;
    let creator = app.create_user("ch_creator", true);
    let (fan, tier, sid) = member(&app, &sim, "ch_fan", &creator).await;
    settle(&app, &sim).await;
    let gold = create_tier(&app, &creator, 60_000).await;
    let bronze = create_tier(&app, &creator, 10_000).await;

    // Refusals, each with its reason; nothing is recorded.
    let why = refusal(
        &change(&app, &fan, json!({"tier": tier, "to": tier})).await,
        "to",
    );
    assert!(why.contains("already your tier"), "{why}");
    let why = refusal(
        &change(&app, &fan, json!({"tier": gold, "to": tier})).await,
        "tier",
    );
    assert!(why.contains("no membership"), "{why}");
    assert_eq!(
        refusal(&change(&app, &fan, json!({"tier": tier})).await, "to"),
        "This field is required."
    );
    let (other_fan, other_tier, _) = member(&app, &sim, "ch_other", &creator).await;
    let r = change(&app, &other_fan, json!({"tier": other_tier, "to": 999_999})).await;
    assert!(refusal(&r, "to").contains("No such tier"), "{}", r.text);
    assert_eq!(int(&app, "SELECT count(*) AS n FROM billing_changes"), 0);

    // The upgrade: what the preview says is what the answer says and what Razorpay charges.
    let p = change_preview(&app, &fan, tier, gold).await;
    assert_eq!(p.status, 200, "{}", p.text);
    let r = change(&app, &fan, json!({"tier": tier, "to": gold})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        preview_part(&r.body),
        p.body,
        "the answer equals the preview"
    );
    assert_eq!(
        (&r.body["effective"], &r.body["method"], &r.body["state"]),
        (&json!("now"), &json!("update"), &json!("applied"))
    );
    let charged = r.body["charge_now"].as_i64().unwrap();
    assert!(charged > 0, "{}", r.text);
    // At Razorpay: the new plan, and an invoice paid with the prorated difference.
    let sub = sim.get(&format!("/v1/subscriptions/{sid}")).await;
    let plan = sim
        .get(&format!("/v1/plans/{}", sub["plan_id"].as_str().unwrap()))
        .await;
    assert_eq!(plan["item"]["amount"], 60_000, "{plan}");
    // Recorded and accepted: a charge of the membership, matching the preview, not flagged.
    assert_eq!(
        int(
            &app,
            &format!(
                "SELECT count(*) AS n FROM payments p JOIN billing_changes c
                 ON c.charge_payment_id = p.razorpay_payment_id
                 WHERE p.amount = {charged} AND p.membership_id = c.membership_id"
            )
        ),
        1
    );
    assert_eq!(
        int(&app, "SELECT count(*) AS n FROM billing_payment_flags"),
        0
    );
    settle(&app, &sim).await;
    let l = list(&app, &fan).await;
    assert_eq!(l.len(), 1, "one membership per fan and creator: {l:?}");
    assert_eq!(
        (&l[0]["tier"], &l[0]["amount"], &l[0]["has_access"]),
        (&json!(gold), &json!(60_000), &json!(true)),
        "{l:?}"
    );
    // Both are told it changed (never "cancelled").
    until_int(
        &app,
        "SELECT count(*) AS n FROM notifications WHERE kind = 'membership_changed'",
        2,
    )
    .await;
    assert_eq!(
        int(
            &app,
            "SELECT count(*) AS n FROM notifications WHERE kind = 'membership_changed'
             AND verb LIKE '%changed%' AND verb NOT ILIKE '%cancel%'"
        ),
        2
    );

    // The downgrade: at the cycle end, nothing charged now, the old tier until then.
    let p = change_preview(&app, &fan, gold, bronze).await;
    assert_eq!(p.status, 200, "{}", p.text);
    let r = change(&app, &fan, json!({"tier": gold, "to": bronze})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(preview_part(&r.body), p.body);
    assert_eq!(
        (
            &r.body["effective"],
            &r.body["charge_now"],
            &r.body["state"]
        ),
        (&json!("cycle_end"), &json!(0), &json!("scheduled"))
    );
    let why = refusal(
        &change(&app, &fan, json!({"tier": gold, "to": tier})).await,
        "tier",
    );
    assert!(why.contains("already changing"), "{why}");
    let sub = sim.get(&format!("/v1/subscriptions/{sid}")).await;
    assert_eq!(sub["has_scheduled_changes"], true, "{sub}");
    assert_eq!(list(&app, &fan).await[0]["tier"], gold);

    // The renewal: Razorpay applies the new plan and charges its price; the membership moves.
    sim.post(
        &format!("/_sim/subscriptions/{sid}/cycle"),
        json!({"outcome": "charged"}),
    )
    .await;
    settle(&app, &sim).await;
    let l = list(&app, &fan).await;
    assert_eq!(
        (&l[0]["tier"], &l[0]["amount"], &l[0]["has_access"]),
        (&json!(bronze), &json!(10_000), &json!(true)),
        "{l:?}"
    );
    assert_eq!(
        text(
            &app,
            "SELECT string_agg(state, ',' ORDER BY id) AS t FROM billing_changes"
        ),
        "applied,applied"
    );
    assert_eq!(
        int(&app, "SELECT count(*) AS n FROM billing_payment_flags"),
        0
    );
    assert_eq!(
        int(
            &app,
            "SELECT count(*) AS n FROM memberships WHERE void_reason IS NOT NULL"
        ),
        0
    );
}

#[tokio::test]
async fn a_lost_answer_of_an_upgrade_is_resolved_from_the_subscription() {
    let (app, sim) = standalone_with(|s| s.billing_change_skew_secs = 1).await;
    let creator = app.create_user("cl_creator", true);
    let (fan, tier, sid) = member(&app, &sim, "cl_fan", &creator).await;
    settle(&app, &sim).await;
    let gold = create_tier(&app, &creator, 60_000).await;
    // Razorpay updates the subscription but every answer is lost (502 after acting; the
    // client's retries repeat the same update, which changes nothing more).
    sim.post(
        "/_sim/chaos",
        json!({"fail_routes": [{"method": "PATCH", "path_prefix": format!("/v1/subscriptions/{sid}"),
                                "status": 502, "times": 3, "when": "after"}]}),
    )
    .await;
    let r = change(&app, &fan, json!({"tier": tier, "to": gold})).await;
    assert_eq!(r.status, 502, "{}", r.text);
    // The job finds the new plan at Razorpay: the membership moves, the charge is accepted.
    until_text(&app, "SELECT state AS t FROM billing_changes", "applied").await;
    settle(&app, &sim).await;
    let l = list(&app, &fan).await;
    assert_eq!(
        (&l[0]["tier"], &l[0]["has_access"]),
        (&json!(gold), &json!(true)),
        "{l:?}"
    );
    // The prorated charge is recorded right after (from the subscription's invoices).
    until_int(
        &app,
        "SELECT count(*) AS n FROM billing_changes c JOIN payments p
         ON p.razorpay_payment_id = c.charge_payment_id AND p.amount = c.charge_now",
        1,
    )
    .await;
    assert_eq!(
        int(&app, "SELECT count(*) AS n FROM billing_payment_flags"),
        0
    );
}

#[tokio::test]
async fn a_upi_mandate_is_replaced_at_the_cycle_end_without_a_gap_or_a_second_charge() {
    let (app, sim) = standalone().await;
    let creator = app.create_user("cr_creator", true);
    let fan = app.create_user("cr_fan", false);
    let tier = create_tier(&app, &creator, 30_000).await;
    let gold = create_tier(&app, &creator, 60_000).await;
    let sid = create_sub(&app, &fan, tier).await;
    let paid = sim
        .post(
            "/_sim/checkout",
            json!({"subscription_id": sid, "outcome": "success", "method": "upi"}),
        )
        .await;
    save_sub(&app, &fan, tier, &paid).await;
    settle(&app, &sim).await;

    // Razorpay does not update UPI mandates: the preview says so.
    let p = change_preview(&app, &fan, tier, gold).await;
    assert_eq!(p.status, 200, "{}", p.text);
    assert_eq!(
        (
            &p.body["method"],
            &p.body["effective"],
            &p.body["charge_now"]
        ),
        (&json!("replace"), &json!("cycle_end"), &json!(0)),
        "{}",
        p.text
    );
    let r = change(&app, &fan, json!({"tier": tier, "to": gold})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(preview_part(&r.body), p.body);
    let new_sid = r.body["SubscriptionID"].as_str().unwrap().to_owned();
    assert!(r.body["key"].is_string(), "{}", r.text);
    // The new subscription starts exactly when the old one's paid period ends.
    let old_end = sim.get(&format!("/v1/subscriptions/{sid}")).await["current_end"].clone();
    let new = sim.get(&format!("/v1/subscriptions/{new_sid}")).await;
    assert_eq!(new["start_at"], old_end, "{new}");
    // The fan authorises the new mandate (a token payment, refunded: not a charge).
    let auth = sim.pay(&new_sid).await;
    save_sub(&app, &fan, gold, &auth).await;
    settle(&app, &sim).await;
    assert_eq!(
        int(&app, "SELECT count(*) AS n FROM billing_payment_flags"),
        0
    );
    let l = list(&app, &fan).await;
    let old = l.iter().find(|m| m["tier"] == tier).unwrap();
    assert_eq!(
        (&old["has_access"], &old["cancel_at_period_end"]),
        (&json!(true), &json!(true)),
        "the old tier until its period ends: {l:?}"
    );
    // Days before the old period ends, the fan is not warned that access ends: it goes on in
    // the new tier (a plain cancel-at-cycle-end is warned: notify_stream's digest test).
    let shift = |by: &str| {
        let sql = format!(
            "UPDATE memberships SET current_end = current_end {by} interval '29 days'
             WHERE tier_id = {tier} AND user_id = {}",
            fan.id
        );
        diesel::RunQueryDsl::execute(diesel::sql_query(sql), &mut app.conn()).unwrap()
    };
    assert_eq!(shift("-"), 1);
    let out = oasis_server::workflows::cli::cli_jobs_run(
        app.settings.clone(),
        Some("notify.access_ending"),
    )
    .await
    .unwrap();
    assert_eq!(out, "notify.access_ending: done");
    assert_eq!(
        int(
            &app,
            "SELECT count(*) AS n FROM notifications WHERE kind = 'access_ending'"
        ),
        0,
        "a change of tier is no ending"
    );
    assert_eq!(shift("+"), 1);

    // The cycle end: the old subscription ends instead of renewing; the new one charges once.
    sim.post(
        &format!("/_sim/subscriptions/{sid}/cycle"),
        json!({"outcome": "charged"}),
    )
    .await;
    let r = sim
        .post(
            &format!("/_sim/subscriptions/{new_sid}/cycle"),
            json!({"outcome": "charged"}),
        )
        .await;
    assert_eq!(r["payment"]["amount"], 60_000, "{r}");
    settle(&app, &sim).await;
    assert_eq!(
        int(
            &app,
            "SELECT count(*) AS n FROM memberships WHERE billing_status_is_live(status)"
        ),
        1,
        "one membership per fan and creator afterwards"
    );
    let l = list(&app, &fan).await;
    let now = l.iter().find(|m| m["tier"] == gold).unwrap();
    assert_eq!(
        (&now["status"], &now["has_access"]),
        (&json!("active"), &json!(true))
    );
    // Charged once per period: the old tier's first charge, then the new tier's.
    assert_eq!(
        text(
            &app,
            "SELECT string_agg(amount::text, ',' ORDER BY id) AS t FROM payments
             WHERE kind = 'subscription' AND status = 'captured'"
        ),
        "30000,60000"
    );
    assert_eq!(
        int(&app, "SELECT count(*) AS n FROM billing_payment_flags"),
        0
    );
}

#[tokio::test]
async fn a_first_membership_starts_with_a_free_trial_once_and_cancelling_in_it_charges_nothing() {
    let (app, sim) = standalone().await;
    let creator = app.create_user("tr_creator", true);
    let fan = app.create_user("tr_fan", false);
    // Validation: 0–31 days, a paid tier only.
    for (price, days) in [(30_000, 32), (30_000, -1), (0, 7)] {
        let r = tier_with(
            &app,
            &creator,
            json!({"name": "T", "price": price, "trial_days": days}),
        )
        .await;
        assert!(r.body["trial_days"].is_array(), "{}", r.text);
    }
    let r = tier_with(
        &app,
        &creator,
        json!({"name": "Trial", "price": 30_000, "trial_days": 7}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["trial_days"], 7);
    let tier = r.body["id"].as_i64().unwrap();

    // The first membership: its subscription's first charge is at the trial's end.
    let sid = create_sub(&app, &fan, tier).await;
    let sub = sim.get(&format!("/v1/subscriptions/{sid}")).await;
    let (start, created) = (
        sub["start_at"].as_i64().unwrap(),
        sub["created_at"].as_i64().unwrap(),
    );
    assert!((start - created - 7 * 86_400).abs() < 120, "{sub}");
    // Authorised (a token payment Razorpay refunds: no charge, never judged): access at once.
    let auth = sim.pay(&sid).await;
    save_sub(&app, &fan, tier, &auth).await;
    settle(&app, &sim).await;
    let l = list(&app, &fan).await;
    assert_eq!(
        (&l[0]["status"], &l[0]["has_access"]),
        (&json!("authenticated"), &json!(true)),
        "{l:?}"
    );
    assert!(boolean(
        &app,
        &format!("SELECT trial_end = to_timestamp({start}) AS b FROM memberships")
    ));
    assert_eq!(
        int(&app, "SELECT count(*) AS n FROM billing_payment_flags"),
        0
    );
    assert_eq!(
        int(
            &app,
            "SELECT count(*) AS n FROM memberships WHERE void_reason IS NOT NULL"
        ),
        0
    );

    // One trial per fan and creator: another tier of the same creator starts paid at once.
    let other = tier_with(
        &app,
        &creator,
        json!({"name": "Trial 2", "price": 40_000, "trial_days": 7}),
    )
    .await;
    let other = other.body["id"].as_i64().unwrap();
    let sid2 = create_sub(&app, &fan, other).await;
    let sub2 = sim.get(&format!("/v1/subscriptions/{sid2}")).await;
    assert!(
        (sub2["start_at"].as_i64().unwrap() - sub2["created_at"].as_i64().unwrap()).abs() < 120,
        "{sub2}"
    );

    // Cancelling during the trial: access until the trial's end, nothing charged.
    let r = app
        .post(
            "/subscriptions/end/",
            &json!({"tier": tier, "end_type": 1}),
            Some(&fan.token),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    settle(&app, &sim).await;
    assert_eq!(
        sim.get(&format!("/v1/subscriptions/{sid}")).await["status"],
        "cancelled"
    );
    let l = list(&app, &fan).await;
    let m = l.iter().find(|m| m["tier"] == tier).unwrap();
    assert_eq!(
        (&m["status"], &m["has_access"], &m["cancel_at_period_end"]),
        (&json!("cancelled"), &json!(true), &json!(true)),
        "{l:?}"
    );
    assert!(boolean(
        &app,
        &format!(
            "SELECT current_end = to_timestamp({start}) AS b FROM memberships WHERE tier_id = {tier}"
        )
    ));
    assert_eq!(
        int(
            &app,
            "SELECT count(*) AS n FROM payments WHERE status = 'captured'"
        ),
        0,
        "nothing charged"
    );
}

/// Authorises `sid` at Checkout with `with` (`{"card": number}` or `{"method": "upi", "vpa": id}`)
/// and confirms it: the status and body of `/subscriptions/save`.
async fn authorise_with(app: &TestApp, sim: &Sim, fan: &TestUser, sid: &str, with: Value) -> Resp {
    let mut body = json!({"subscription_id": sid, "outcome": "success"});
    for (k, v) in with.as_object().unwrap() {
        body[k] = v.clone();
    }
    let paid = sim.post("/_sim/checkout", body).await;
    app.post(
        "/subscriptions/save",
        &json!({
            "razorpay_payment_id": paid["razorpay_payment_id"],
            "razorpay_signature": paid["razorpay_signature"],
            "razorpay_subscription_id": sid,
        }),
        Some(&fan.token),
    )
    .await
}

async fn trial_tier(app: &TestApp, creator: &TestUser) -> i64 {
    let r = tier_with(
        app,
        creator,
        json!({"name": "Trial", "price": 30_000, "trial_days": 7}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.body["id"].as_i64().unwrap()
}

/// Waits (bounded) until the simulator says the subscription is cancelled.
async fn wait_cancelled(sim: &Sim, sid: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while sim.get(&format!("/v1/subscriptions/{sid}")).await["status"] != "cancelled" {
        assert!(
            Instant::now() < deadline,
            "subscription {sid} was not cancelled"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The subscription's first charge is a trial's end (7 days on) rather than now.
async fn starts_after_a_trial(sim: &Sim, sid: &str) -> bool {
    let sub = sim.get(&format!("/v1/subscriptions/{sid}")).await;
    sub["start_at"].as_i64().unwrap() - sub["created_at"].as_i64().unwrap() > 6 * 86_400
}

#[tokio::test]
async fn a_free_trial_is_one_per_card_and_per_upi_id_and_a_refused_one_charges_nothing() {
    let (app, sim) = standalone().await;
    let creator = app.create_user("tc_creator", true);
    let elsewhere = app.create_user("tc_other_creator", true);
    let [ann, ben, cat, dev] =
        ["tc_ann", "tc_ben", "tc_cat", "tc_dev"].map(|n| app.create_user(n, false));
    let (tier, other_tier) = (
        trial_tier(&app, &creator).await,
        trial_tier(&app, &elsewhere).await,
    );
    const CARD: &str = "4111 1111 1111 1111";

    // Ann's trial with the card.
    let sid_ann = create_sub(&app, &ann, tier).await;
    assert!(starts_after_a_trial(&sim, &sid_ann).await);
    let r = authorise_with(&app, &sim, &ann, &sid_ann, json!({"card": CARD})).await;
    assert_eq!(r.status, 200, "{}", r.text);

    // Ben, another fan, with the same card: offered a trial (nothing tells them apart yet),
    // refused once the authorisation shows the card.
    let sid_ben = create_sub(&app, &ben, tier).await;
    assert!(starts_after_a_trial(&sim, &sid_ben).await);
    let r = authorise_with(
        &app,
        &sim,
        &ben,
        &sid_ben,
        json!({"card": "4111-1111-1111-1111"}),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap()
            .contains("one per card or UPI ID"),
        "{}",
        r.text
    );
    settle(&app, &sim).await;
    // The refused membership gives no access, is voided, and its subscription is cancelled at
    // Razorpay (the `billing.cancel` job), so the trial's end charges nothing.
    let l = list(&app, &ben).await;
    assert_eq!(l.len(), 1, "{l:?}");
    assert_eq!(l[0]["has_access"], json!(false), "{l:?}");
    assert!(boolean(
        &app,
        &format!(
            "SELECT void_reason = 'trial_used' AS b FROM memberships WHERE razorpay_subscription_id = '{sid_ben}'"
        )
    ));
    wait_cancelled(&sim, &sid_ben).await;
    // Ann keeps hers.
    let l = list(&app, &ann).await;
    assert_eq!(
        (&l[0]["status"], &l[0]["has_access"]),
        (&json!("authenticated"), &json!(true))
    );

    // Ben with a card of his own: the refusal did not use up his own trial.
    let sid_ben2 = create_sub(&app, &ben, tier).await;
    assert!(starts_after_a_trial(&sim, &sid_ben2).await);
    let r = authorise_with(
        &app,
        &sim,
        &ben,
        &sid_ben2,
        json!({"card": "5555 5555 5555 4444"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    // The same card at another creator: a trial there too (one per card and creator).
    let sid_ann_elsewhere = create_sub(&app, &ann, other_tier).await;
    let r = authorise_with(&app, &sim, &ann, &sid_ann_elsewhere, json!({"card": CARD})).await;
    assert_eq!(r.status, 200, "{}", r.text);

    // UPI IDs, case-insensitively.
    let sid_cat = create_sub(&app, &cat, tier).await;
    let r = authorise_with(
        &app,
        &sim,
        &cat,
        &sid_cat,
        json!({"method": "upi", "vpa": "Cat.Home@okaxis"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let sid_dev = create_sub(&app, &dev, tier).await;
    let r = authorise_with(
        &app,
        &sim,
        &dev,
        &sid_dev,
        json!({"method": "upi", "vpa": "cat.home@OKAXIS"}),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text);
    settle(&app, &sim).await;
    assert_eq!(list(&app, &dev).await[0]["has_access"], json!(false));

    wait_cancelled(&sim, &sid_dev).await;
    assert_eq!(
        int(
            &app,
            "SELECT count(*) AS n FROM memberships WHERE void_reason = 'trial_used'"
        ),
        2
    );
    // What is kept: one fingerprint per (creator, instrument) that had a trial — never the
    // card id or the UPI ID.
    assert_eq!(
        int(&app, "SELECT count(*) AS n FROM billing_trial_instruments"),
        4
    );
    assert_eq!(
        int(
            &app,
            "SELECT count(*) AS n FROM billing_trial_instruments
             WHERE position(convert_to('okaxis', 'UTF8') in fingerprint) > 0
                OR position(convert_to('card_', 'UTF8') in fingerprint) > 0"
        ),
        0
    );
    assert_eq!(
        int(
            &app,
            "SELECT count(*) AS n FROM payments WHERE status = 'captured'"
        ),
        0,
        "nothing charged"
    );
    assert_eq!(
        int(&app, "SELECT count(*) AS n FROM billing_payment_flags"),
        0
    );
}

async fn hiatus(app: &TestApp, who: &TestUser) -> Value {
    let r = app.get("/subscriptions/hiatus/", Some(&who.token)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body
}

#[tokio::test]
async fn a_creator_hiatus_pauses_every_member_resumes_after_an_interruption_and_resumes_them_all() {
    // One member per run of the job, so an outage interrupts it between members.
    let (app, sim) = standalone_with(|s| {
        s.billing_hiatus_batch = 1;
        s.billing_hiatus_rate = 50;
    })
    .await;
    let creator = app.create_user("hi_creator", true);
    let mut subs = Vec::new();
    let mut fans = Vec::new();
    for name in ["hi_a", "hi_b", "hi_c"] {
        let (fan, _, sid) = member(&app, &sim, name, &creator).await;
        fans.push(fan);
        subs.push(sid);
    }
    settle(&app, &sim).await;
    assert_eq!(hiatus(&app, &creator).await["active"], false);

    // Refusals.
    for cycles in [json!(0), json!(4), json!("x")] {
        let r = app
            .post(
                "/subscriptions/hiatus/",
                &json!({"cycles": cycles}),
                Some(&creator.token),
            )
            .await;
        refusal(&r, "cycles");
    }
    let r = app
        .post(
            "/subscriptions/hiatus/",
            &json!({"cycles": 1}),
            Some(&fans[0].token),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text);

    // Razorpay is down for the second member's pause: the job stops there and picks up later.
    sim.post(
        "/_sim/chaos",
        json!({"fail_routes": [{"method": "POST", "path_prefix": format!("/v1/subscriptions/{}/pause", subs[1]),
                                "status": 503, "times": 3, "when": "before"}]}),
    )
    .await;
    let r = app
        .post(
            "/subscriptions/hiatus/",
            &json!({"cycles": 2}),
            Some(&creator.token),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        (
            &r.body["active"],
            &r.body["cycles"],
            &r.body["members_total"]
        ),
        (&json!(true), &json!(2), &json!(3)),
        "{}",
        r.text
    );
    let r = app
        .post(
            "/subscriptions/hiatus/",
            &json!({"cycles": 1}),
            Some(&creator.token),
        )
        .await;
    assert!(refusal(&r, "cycles").contains("already"), "{}", r.text);
    until_int(
        &app,
        "SELECT count(*) AS n FROM billing_hiatus_members WHERE state = 'paused'",
        3,
    )
    .await;
    assert!(
        int(
            &app,
            "SELECT count(*) AS n FROM jobs WHERE kind = 'billing.hiatus' AND attempts > 1"
        ) >= 1,
        "the job was interrupted and ran again"
    );
    let h = hiatus(&app, &creator).await;
    assert_eq!(
        (&h["members_paused"], &h["members_failed"], &h["active"]),
        (&json!(3), &json!(0), &json!(true)),
        "{h}"
    );
    assert!(boolean(
        &app,
        "SELECT resumes_at = started_at + interval '2 months' AS b FROM billing_hiatuses"
    ));
    for sid in &subs {
        assert_eq!(
            sim.get(&format!("/v1/subscriptions/{sid}")).await["status"],
            "paused"
        );
    }
    settle(&app, &sim).await;
    // Members keep access throughout (their period end moved to the hiatus' end), and are told.
    for fan in &fans {
        let l = list(&app, fan).await;
        assert_eq!(
            (&l[0]["status"], &l[0]["has_access"]),
            (&json!("paused"), &json!(true)),
            "{l:?}"
        );
    }
    assert!(boolean(
        &app,
        "SELECT bool_and(m.current_end >= h.resumes_at) AS b FROM memberships m, billing_hiatuses h"
    ));
    until_int(
        &app,
        "SELECT count(*) AS n FROM notifications WHERE kind = 'creator_hiatus'",
        3,
    )
    .await;

    // A fan who joins during the hiatus is not charged before it ends, as the members are not:
    // access at once, the subscription's first charge at the hiatus' end.
    let joiner = app.create_user("hi_joiner", false);
    let tier = create_tier(&app, &creator, 30_000).await;
    let sid = create_sub(&app, &joiner, tier).await;
    let sub = sim.get(&format!("/v1/subscriptions/{sid}")).await;
    let start = sub["start_at"].as_i64().unwrap();
    assert!(
        boolean(
            &app,
            &format!(
                "SELECT floor(extract(epoch FROM resumes_at)) = {start} AS b FROM billing_hiatuses"
            )
        ),
        "{sub}"
    );
    let auth = sim.pay(&sid).await;
    save_sub(&app, &joiner, tier, &auth).await;
    settle(&app, &sim).await;
    let l = list(&app, &joiner).await;
    assert_eq!(
        (&l[0]["status"], &l[0]["has_access"]),
        (&json!("authenticated"), &json!(true)),
        "{l:?}"
    );
    let h = hiatus(&app, &creator).await;
    assert_eq!(
        (
            &h["members_total"],
            &h["members_paused"],
            &h["members_joined"]
        ),
        (&json!(4), &json!(3), &json!(1)),
        "{h}"
    );
    assert_eq!(
        int(&app, &format!("SELECT count(*) AS n FROM payments WHERE status = 'captured' AND razorpay_subscription_id = '{sid}'")),
        0,
        "nothing charged during the hiatus"
    );
    assert_eq!(
        int(&app, "SELECT count(*) AS n FROM billing_payment_flags"),
        0
    );
    // At the hiatus' end the first charge is the tier's price.
    let r = sim
        .post(
            &format!("/_sim/subscriptions/{sid}/cycle"),
            json!({"outcome": "charged"}),
        )
        .await;
    assert_eq!(r["payment"]["amount"], 30_000, "{r}");
    settle(&app, &sim).await;
    let l = list(&app, &joiner).await;
    assert_eq!(
        (&l[0]["status"], &l[0]["has_access"]),
        (&json!("active"), &json!(true)),
        "{l:?}"
    );
    assert_eq!(
        int(&app, "SELECT count(*) AS n FROM billing_payment_flags"),
        0
    );

    // The hiatus' end (made due now): every member is resumed.
    diesel::sql_query("UPDATE billing_hiatuses SET resumes_at = now()")
        .execute(&mut app.conn())
        .unwrap();
    diesel::sql_query(
        "UPDATE jobs SET run_at = now() WHERE kind = 'billing.hiatus' AND done_at IS NULL",
    )
    .execute(&mut app.conn())
    .unwrap();
    until_text(&app, "SELECT state AS t FROM billing_hiatuses", "done").await;
    for sid in &subs {
        assert_eq!(
            sim.get(&format!("/v1/subscriptions/{sid}")).await["status"],
            "active"
        );
    }
    assert_eq!(hiatus(&app, &creator).await["active"], false);
}

/// Runs one SQL statement (test set-up: moving a fan's memberships through time).
fn exec(app: &TestApp, sql: &str) {
    use diesel::RunQueryDsl;
    diesel::sql_query(sql).execute(&mut app.conn()).unwrap();
}

/// A fan whose UPI-mandated membership of a 30000 tier is replaced by one of a 60000 tier of
/// the same creator: (fan, old tier, new tier, old subscription, the change's answer).
async fn upi_replacement(
    app: &TestApp,
    sim: &Sim,
    name: &str,
) -> (TestUser, i64, i64, String, Resp) {
    let creator = app.create_user(&format!("{name}_creator"), true);
    let fan = app.create_user(name, false);
    let tier = create_tier(app, &creator, 30_000).await;
    let gold = create_tier(app, &creator, 60_000).await;
    let sid = create_sub(app, &fan, tier).await;
    let paid = sim
        .post(
            "/_sim/checkout",
            json!({"subscription_id": sid, "outcome": "success", "method": "upi"}),
        )
        .await;
    save_sub(app, &fan, tier, &paid).await;
    settle(app, sim).await;
    let r = change(app, &fan, json!({"tier": tier, "to": gold})).await;
    (fan, tier, gold, sid, r)
}

fn access_of(l: &[Value], tier: i64) -> Value {
    l.iter()
        .find(|m| m["tier"] == tier)
        .map(|m| m["has_access"].clone())
        .unwrap_or(Value::Null)
}

#[tokio::test]
async fn a_replacement_keeps_access_from_the_old_period_end_until_its_first_charge_is_judged() {
    let (app, sim) = standalone_with(|s| s.billing_replace_grace_secs = 7200).await;
    let (fan, tier, gold, sid, r) = upi_replacement(&app, &sim, "rg_fan").await;
    assert_eq!(r.status, 200, "{}", r.text);
    let new_sid = r.body["SubscriptionID"].as_str().unwrap().to_owned();
    let auth = sim.pay(&new_sid).await;
    save_sub(&app, &fan, gold, &auth).await;
    settle(&app, &sim).await;
    // The bridge: from the old period's end (the new subscription's start_at) for the grace.
    let old_end = sim.get(&format!("/v1/subscriptions/{sid}")).await["current_end"]
        .as_i64()
        .unwrap();
    assert_eq!(
        text(
            &app,
            &format!(
                "SELECT status || ',' || extract(epoch FROM current_start)::bigint || ',' ||
                        extract(epoch FROM current_end - current_start)::bigint AS t
                 FROM memberships WHERE razorpay_subscription_id = '{new_sid}'"
            )
        ),
        format!("authenticated,{old_end},7200")
    );
    // Before the old period ends: the old tier only (the upgrade is not given away).
    let l = list(&app, &fan).await;
    assert_eq!(
        (access_of(&l, tier), access_of(&l, gold)),
        (json!(true), json!(false)),
        "{l:?}"
    );
    // A minute after the old period ended, the first charge not yet come (late): the new tier.
    let shift = format!(
        "make_interval(secs => {} - extract(epoch FROM now()) + 60)",
        old_end
    );
    exec(
        &app,
        &format!(
            "UPDATE memberships SET current_start = current_start - {shift},
                                    current_end = current_end - {shift}
             WHERE user_id = {}",
            fan.id
        ),
    );
    let l = list(&app, &fan).await;
    assert_eq!(
        (access_of(&l, tier), access_of(&l, gold)),
        (json!(false), json!(true)),
        "no window without access: {l:?}"
    );
    // The rule at the bridge's edges, as stored: not before its start, not after the grace.
    assert_eq!(
        text(
            &app,
            &format!(
                "SELECT concat_ws(',',
                    billing_has_access(kind, status, current_start, current_end, cancel_at_period_end, current_start - interval '1 second'),
                    billing_has_access(kind, status, current_start, current_end, cancel_at_period_end, current_end - interval '1 second'),
                    billing_has_access(kind, status, current_start, current_end, cancel_at_period_end, current_end)) AS t
                 FROM memberships WHERE razorpay_subscription_id = '{new_sid}'"
            )
        ),
        "f,t,f"
    );
    // The first charge fails: Razorpay retries (pending: the usual grace), then gives up.
    // (Webhooks carry whole seconds: a second apart from the Checkout callback's fetch.)
    tokio::time::sleep(Duration::from_millis(1100)).await;
    for (outcome, access) in [("pending", true), ("halted", false)] {
        sim.post(
            &format!("/_sim/subscriptions/{new_sid}/cycle"),
            json!({"outcome": outcome}),
        )
        .await;
        settle(&app, &sim).await;
        let l = list(&app, &fan).await;
        let m = l.iter().find(|m| m["tier"] == gold).unwrap();
        assert_eq!(
            (&m["status"], &m["has_access"]),
            (&json!(outcome), &json!(access)),
            "{l:?}"
        );
    }
    // A replacement whose first charge never comes: the access ends with the grace.
    let (fan2, _, gold2, _, r) = upi_replacement(&app, &sim, "rg_fan2").await;
    assert_eq!(r.status, 200, "{}", r.text);
    let sid2 = r.body["SubscriptionID"].as_str().unwrap().to_owned();
    let auth = sim.pay(&sid2).await;
    save_sub(&app, &fan2, gold2, &auth).await;
    settle(&app, &sim).await;
    exec(
        &app,
        &format!(
            "UPDATE memberships SET current_start = now() - interval '7201 seconds',
                                    current_end = now() - interval '1 second'
             WHERE razorpay_subscription_id = '{sid2}'"
        ),
    );
    assert_eq!(access_of(&list(&app, &fan2).await, gold2), json!(false));
    // The first charge, when it comes, gives the new period.
    sim.post(
        &format!("/_sim/subscriptions/{sid2}/cycle"),
        json!({"outcome": "charged"}),
    )
    .await;
    settle(&app, &sim).await;
    assert_eq!(access_of(&list(&app, &fan2).await, gold2), json!(true));
}

#[tokio::test]
async fn a_replacement_cut_at_any_step_is_finished_once_without_a_second_charge() {
    let (app, sim) = standalone_with(|s| s.billing_change_skew_secs = 1).await;
    // Where the work is cut: the new subscription's creation answer lost (made at Razorpay,
    // not recorded), its creation failed before Razorpay made it, and the old subscription's
    // cancellation failed (the process gone before it: nothing cancelled) or its answer lost.
    let cuts = [
        ("lost_create", "POST", "/v1/subscriptions", 502, 1, "after"),
        (
            "failed_create",
            "POST",
            "/v1/subscriptions",
            500,
            1,
            "before",
        ),
        ("failed_cancel", "POST", "/cancel", 500, 3, "before"),
        ("lost_cancel", "POST", "/cancel", 502, 3, "after"),
    ];
    for (name, method, path, status, times, when) in cuts {
        let creator = app.create_user(&format!("{name}_creator"), true);
        let fan = app.create_user(name, false);
        let tier = create_tier(&app, &creator, 30_000).await;
        let gold = create_tier(&app, &creator, 60_000).await;
        let sid = create_sub(&app, &fan, tier).await;
        let paid = sim
            .post(
                "/_sim/checkout",
                json!({"subscription_id": sid, "outcome": "success", "method": "upi"}),
            )
            .await;
        save_sub(&app, &fan, tier, &paid).await;
        settle(&app, &sim).await;
        let path = if path == "/cancel" {
            format!("/v1/subscriptions/{sid}/cancel")
        } else {
            path.to_owned()
        };
        sim.post(
            "/_sim/chaos",
            json!({"fail_routes": [{"method": method, "path_prefix": path, "status": status,
                                    "times": times, "when": when}]}),
        )
        .await;
        let r = change(&app, &fan, json!({"tier": tier, "to": gold})).await;
        assert_eq!(r.status, 502, "{name}: {}", r.text);
        sim.post("/_sim/chaos", json!({})).await;
        // The job finishes it.
        let mine = format!(
            "SELECT state AS t FROM billing_changes c JOIN memberships m ON m.id = c.membership_id
             WHERE m.user_id = {}",
            fan.id
        );
        until_text(&app, &mine, "applied").await;
        let change_id = int(
            &app,
            &format!(
                "SELECT c.id AS n FROM billing_changes c JOIN memberships m ON m.id = c.membership_id
                 WHERE m.user_id = {}",
                fan.id
            ),
        );
        // Exactly one new subscription at Razorpay, the one Oasis recorded.
        let new_sid = text(
            &app,
            &format!(
                "SELECT razorpay_subscription_id AS t FROM memberships
                 WHERE user_id = {} AND tier_id = {gold}",
                fan.id
            ),
        );
        let plan = sim.get(&format!("/v1/subscriptions/{new_sid}")).await["plan_id"]
            .as_str()
            .unwrap()
            .to_owned();
        let subs = sim
            .get(&format!("/v1/subscriptions?plan_id={plan}&count=100"))
            .await;
        let want = change_id.to_string();
        let made: Vec<&str> = subs["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["notes"]["changeID"].as_str() == Some(want.as_str()))
            .map(|s| s["id"].as_str().unwrap())
            .collect();
        assert_eq!(made, vec![new_sid.as_str()], "{name}: {subs}");
        // The fan finds it to authorise by subscribing to the new tier again.
        let again = start(&app, &fan, json!({"tierID": gold})).await;
        assert_eq!(again.status, 200, "{name}: {}", again.text);
        assert_eq!(again.body["SubscriptionID"], new_sid.as_str(), "{name}");
        let auth = sim.pay(&new_sid).await;
        save_sub(&app, &fan, gold, &auth).await;
        // The cycle end: the old one ends without a charge; the new one charges once.
        let old = sim
            .post(
                &format!("/_sim/subscriptions/{sid}/cycle"),
                json!({"outcome": "charged"}),
            )
            .await;
        assert_eq!(
            (&old["subscription"]["status"], &old["payment"]),
            (&json!("cancelled"), &Value::Null),
            "{name}: the old subscription was cancelled at its cycle end: {old}"
        );
        let new = sim
            .post(
                &format!("/_sim/subscriptions/{new_sid}/cycle"),
                json!({"outcome": "charged"}),
            )
            .await;
        assert_eq!(new["payment"]["amount"], 60_000, "{name}: {new}");
        settle(&app, &sim).await;
        assert_eq!(
            int(
                &app,
                &format!(
                    "SELECT count(*) AS n FROM memberships
                     WHERE user_id = {} AND billing_status_is_live(status)",
                    fan.id
                )
            ),
            1,
            "{name}: one membership per fan and creator"
        );
        assert_eq!(
            text(
                &app,
                &format!(
                    "SELECT string_agg(amount::text, ',' ORDER BY id) AS t FROM payments
                     WHERE user_id = {} AND kind = 'subscription' AND status = 'captured'",
                    fan.id
                )
            ),
            "30000,60000",
            "{name}: charged once per period"
        );
        let l = list(&app, &fan).await;
        assert_eq!(access_of(&l, gold), json!(true), "{name}: {l:?}");
    }
    assert_eq!(
        int(&app, "SELECT count(*) AS n FROM billing_payment_flags"),
        0
    );
}

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

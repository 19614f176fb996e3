//! Commissions end to end: offerings with slots, requests paid through billing's orders
//! (Checkout callback, webhook, reconciliation), the lifecycle, refunds exactly once, privacy.
use super::money::until as wait_for;
use super::*;

async fn offering(app: &TestApp, who: &TestUser, price: i64, slots: i64) -> i64 {
    let r = app
        .post(
            "/commissions/api/commission-creator/",
            &json!({"title": "Portrait", "description": "A drawing of you", "price": price,
                    "currency": "INR", "delivery_days": 7, "slots": slots, "is_open": true}),
            Some(&who.token),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.body["id"].as_i64().unwrap()
}

fn request_body(commission: i64) -> Value {
    json!({"commissionID": commission, "description": "My cat, in watercolour",
           "contactDetails": "cat@example.com", "mode_of_delivery": "1", "currency": "INR"})
}

async fn order(app: &TestApp, fan: &TestUser, commission: i64) -> Resp {
    app.post(
        "/commissions/api/commission-user/",
        &request_body(commission),
        Some(&fan.token),
    )
    .await
}

/// Orders and answers (request id, order id).
async fn ordered(app: &TestApp, fan: &TestUser, commission: i64) -> (i64, String) {
    let r = order(app, fan, commission).await;
    assert_eq!(r.status, 201, "{}", r.text);
    (
        r.body["id"].as_i64().unwrap(),
        r.body["SubscriptionID"].as_str().unwrap().to_owned(),
    )
}

async fn get_request(app: &TestApp, who: &TestUser, id: i64) -> Resp {
    app.get(
        &format!("/commissions/api/commission-user/{id}/"),
        Some(&who.token),
    )
    .await
}

async fn status_of(app: &TestApp, who: &TestUser, id: i64) -> String {
    let r = get_request(app, who, id).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["status"].as_str().unwrap().to_owned()
}

async fn patch(app: &TestApp, who: &TestUser, id: i64, body: Value) -> Resp {
    app.patch(
        &format!("/commissions/api/commission-user/{id}/"),
        &body,
        Some(&who.token),
    )
    .await
}

async fn confirm(app: &TestApp, fan: &TestUser, id: i64, oid: &str, paid: &Value) -> Resp {
    app.post(
        &format!("/commissions/api/commission-user/{id}/confirm/"),
        &json!({"razorpay_order_id": oid, "razorpay_payment_id": paid["razorpay_payment_id"],
                "razorpay_signature": paid["razorpay_signature"]}),
        Some(&fan.token),
    )
    .await
}

async fn wait_status(app: &TestApp, who: &TestUser, id: i64, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = status_of(app, who, id).await;
        if s == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "request {id} stays {s}, not {want}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn refunds_at_sim(sim: &Sim, payment: &str) -> Vec<Value> {
    sim.get(&format!("/v1/payments/{payment}/refunds")).await["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

async fn upload(app: &TestApp, who: &TestUser, filename: &str, bytes: &[u8]) -> Resp {
    let boundary = "----oasis-commission-boundary-7MA4YWxk";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    app.send(
        app.client
            .post(app.url("/content/api/media/"))
            .header(
                "Content-Type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .header("Authorization", format!("Token {}", who.token))
            .body(body),
    )
    .await
}

#[tokio::test]
async fn offerings_are_validated_owned_and_listed() {
    let app = spawn_app().await;
    let creator = app.create_user("of_creator", true);
    let other = app.create_user("of_other", true);
    let fan = app.create_user("of_fan", false);
    let base = json!({"title": "Portrait", "price": 100, "currency": "INR", "delivery_days": 7, "slots": 3});
    for (field, value) in [
        ("price", json!(99)),
        ("title", json!("")),
        ("title", json!("x".repeat(201))),
        ("delivery_days", json!(0)),
        ("delivery_days", json!(366)),
        ("slots", json!(0)),
        ("slots", json!(1001)),
        ("currency", json!("EUR")),
    ] {
        let mut body = base.clone();
        body[field] = value;
        let r = app
            .post(
                "/commissions/api/commission-creator",
                &body,
                Some(&creator.token),
            )
            .await;
        assert_eq!(r.status, 400, "{field}: {}", r.text);
        assert!(r.body[field].is_array(), "{field}: {}", r.text);
    }
    let r = app
        .post(
            "/commissions/api/commission-creator/",
            &base,
            Some(&fan.token),
        )
        .await;
    assert_eq!(r.status, 403, "fans cannot offer: {}", r.text);
    let r = app
        .post(
            "/commissions/api/commission-creator/",
            &base,
            Some(&creator.token),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.body["id"].as_i64().unwrap();
    assert_eq!(
        (
            &r.body["creator"],
            &r.body["open_orders"],
            &r.body["is_open"],
            &r.body["description"]
        ),
        (&json!(creator.id), &json!(0), &json!(true), &json!(""))
    );
    for key in [
        "created_at",
        "updated_at",
        "delivery_days",
        "slots",
        "price",
        "currency",
        "title",
    ] {
        assert!(!r.body[key].is_null(), "{key}: {}", r.text);
    }
    // Anyone reads an open offering; only the owner edits or deletes it.
    let path = format!("/commissions/api/commission-creator/{id}/");
    assert_eq!(app.get(&path, None).await.status, 200);
    let r = app
        .patch(&path, &json!({"price": 500}), Some(&other.token))
        .await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert_eq!(app.delete(&path, Some(&other.token)).await.status, 403);
    let r = app
        .patch(
            &path,
            &json!({"price": 500, "is_open": false}),
            Some(&creator.token),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        (r.body["price"].as_i64(), r.body["is_open"].as_bool()),
        (Some(500), Some(false))
    );
    // Closed: 404 to others, still the owner's.
    assert_eq!(app.get(&path, Some(&fan.token)).await.status, 404);
    assert_eq!(app.get(&path, None).await.status, 404);
    assert_eq!(
        app.patch(&path, &json!({"price": 700}), Some(&other.token))
            .await
            .status,
        404
    );
    assert_eq!(app.get(&path, Some(&creator.token)).await.status, 200);
    assert_eq!(
        app.get(
            "/commissions/api/commission-creator/999999",
            Some(&creator.token)
        )
        .await
        .status,
        404
    );
    let own = app
        .get("/commissions/api/commission-creator", Some(&creator.token))
        .await;
    assert_eq!(own.body["count"], 1, "{}", own.text);
    // Public lists show open offerings only, with the creator's name and picture.
    app.patch(&path, &json!({"is_open": true}), Some(&creator.token))
        .await;
    offering(&app, &other, 2_000, 1).await;
    let all = app.get("/commissions/api/get-commissions", None).await;
    assert_eq!(all.status, 200, "{}", all.text);
    assert_eq!(all.body["count"], 2, "{}", all.text);
    let mine = app
        .get(
            &format!("/commissions/api/get-commissions?creator={}", creator.id),
            None,
        )
        .await;
    assert_eq!(mine.body["count"], 1, "{}", mine.text);
    assert_eq!(mine.body["results"][0]["username"], "of_creator");
    assert!(mine.body["results"][0].get("profile_pic").is_some());
    assert_eq!(mine.body["results"][0]["id"], id);
    let list = app
        .get(&format!("/commissions/list/{}", creator.id), None)
        .await;
    assert_eq!(
        (list.status, &list.body["count"]),
        (200, &json!(1)),
        "{}",
        list.text
    );
    // Deletable while nothing is active; deleted then gone.
    let d = app
        .get(
            &format!("/commissions/api/deletable/{id}"),
            Some(&creator.token),
        )
        .await;
    assert_eq!(d.body, json!({"deletable": true}));
    let d = app
        .get(
            &format!("/commissions/api/deletable/{id}"),
            Some(&other.token),
        )
        .await;
    assert_eq!(d.status, 404);
    assert_eq!(app.delete(&path, Some(&creator.token)).await.status, 204);
    assert_eq!(app.get(&path, Some(&creator.token)).await.status, 404);
}

#[tokio::test]
async fn a_request_is_paid_by_checkout_and_walks_its_lifecycle_privately() {
    let (app, sim) = standalone().await;
    let creator = app.create_user("lc_creator", true);
    let fan = app.create_user("lc_fan", false);
    let stranger = app.create_user("lc_stranger", false);
    let commission = offering(&app, &creator, 50_000, 2).await;

    // Refusals create nothing at Razorpay.
    let r = order(&app, &creator, commission).await;
    assert_eq!(
        (r.status, r.body["code"].as_str()),
        (409, Some("own_commission")),
        "{}",
        r.text
    );
    let mut usd = request_body(commission);
    usd["currency"] = json!("USD");
    let r = app
        .post("/commissions/api/commission-user", &usd, Some(&fan.token))
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(r.body["currency"].is_array(), "{}", r.text);
    assert_eq!(int(&app, "SELECT count(*) AS n FROM billing_orders"), 0);

    let r = order(&app, &fan, commission).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["status"], "awaiting_payment");
    assert_eq!(
        (r.body["amount"].as_i64(), r.body["currency"].as_str()),
        (Some(50_000), Some("INR"))
    );
    assert!(r.body["public_key"].is_string());
    let id = r.body["id"].as_i64().unwrap();
    let oid = r.body["SubscriptionID"].as_str().unwrap().to_owned();
    assert!(oid.starts_with("order_"), "{oid}");
    // The seed's Commission payload, as notes.
    let notes = sim.get(&format!("/v1/orders/{oid}")).await["notes"].clone();
    assert_eq!(
        notes,
        json!({"type": "commission", "creatorID": creator.id.to_string(), "username": "lc_fan",
               "commissionID": commission.to_string(), "requestID": id.to_string(),
               "description": "My cat, in watercolour", "contactDetails": "cat@example.com",
               "status": "ordered", "mode_of_delivery": "1"})
    );
    // A price change applies to new requests only.
    app.patch(
        &format!("/commissions/api/commission-creator/{commission}/"),
        &json!({"price": 90_000}),
        Some(&creator.token),
    )
    .await;
    let v = get_request(&app, &fan, id).await;
    assert_eq!(v.body["amount"], 50_000);
    assert_eq!(v.body["deliver_by"], Value::Null);
    let off = app
        .get(
            &format!("/commissions/api/commission-creator/{commission}/"),
            None,
        )
        .await;
    assert_eq!(off.body["open_orders"], 1, "an unpaid request holds a slot");

    // Drop the webhooks so that only the Checkout callback confirms.
    sim.post("/_sim/webhooks/drop_next", json!({"count": 100}))
        .await;
    let paid = sim.pay(&oid).await;
    let mut forged = paid.clone();
    forged["razorpay_signature"] = json!("0".repeat(64));
    let r = confirm(&app, &fan, id, &oid, &forged).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(r.body["razorpay_signature"].is_array(), "{}", r.text);
    assert_eq!(status_of(&app, &fan, id).await, "awaiting_payment");
    let r = confirm(&app, &stranger, id, &oid, &paid).await;
    assert_eq!(r.status, 404, "a third party learns nothing: {}", r.text);
    let r = confirm(&app, &fan, id, &oid, &paid).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["status"], "ordered");
    assert!(r.body["deliver_by"].is_string(), "{}", r.text);
    let r = confirm(&app, &fan, id, &oid, &paid).await;
    assert_eq!(
        (r.status, r.body["status"].as_str()),
        (200, Some("ordered")),
        "a repeat changes nothing"
    );
    assert!(boolean(
        &app,
        "SELECT deliver_by BETWEEN paid_at + interval '7 days' AND paid_at + interval '7 days 1 second' AS b FROM commission_requests"
    ));
    assert_eq!(
        int(
            &app,
            "SELECT count(*) AS n FROM payments WHERE kind = 'commission'"
        ),
        1
    );

    // The wrong party is forbidden; impossible moves conflict; strangers see nothing.
    let r = patch(&app, &fan, id, json!({"status": "accepted"})).await;
    assert_eq!(r.status, 403, "{}", r.text);
    let r = patch(
        &app,
        &creator,
        id,
        json!({"status": "delivered", "message": "x"}),
    )
    .await;
    assert_eq!(r.status, 409, "{}", r.text);
    let r = patch(&app, &creator, id, json!({"status": "cancelled"})).await;
    assert_eq!(r.status, 403, "cancelling is the fan's: {}", r.text);
    let r = patch(&app, &creator, id, json!({"status": "shipped"})).await;
    assert_eq!(r.status, 400, "{}", r.text);
    for who in [&stranger] {
        assert_eq!(get_request(&app, who, id).await.status, 404);
        assert_eq!(
            patch(&app, who, id, json!({"status": "cancelled"}))
                .await
                .status,
            404
        );
        let l = app
            .get("/commissions/api/get-commissions-user", Some(&who.token))
            .await;
        assert_eq!(l.body["count"], 0, "{}", l.text);
    }
    let d = app
        .get(
            &format!("/commissions/api/deletable/{commission}"),
            Some(&creator.token),
        )
        .await;
    assert_eq!(d.body, json!({"deletable": false}));
    let r = app
        .delete(
            &format!("/commissions/api/commission-creator/{commission}/"),
            Some(&creator.token),
        )
        .await;
    assert_eq!(
        (r.status, r.body["code"].as_str()),
        (409, Some("commission_in_use")),
        "{}",
        r.text
    );

    assert_eq!(
        patch(&app, &creator, id, json!({"status": "accepted"}))
            .await
            .status,
        200
    );
    let r = patch(&app, &fan, id, json!({"status": "cancelled"})).await;
    assert_eq!(
        (r.status, r.body["code"].as_str()),
        (409, Some("not_overdue")),
        "{}",
        r.text
    );
    assert_eq!(
        patch(&app, &creator, id, json!({"status": "in_progress"}))
            .await
            .status,
        200
    );
    // The delivery: a message and the creator's upload, readable by the two parties only.
    let up = upload(
        &app,
        &creator,
        "cat.pdf",
        b"%PDF-1.4\n1 0 obj << >> endobj\n% the drawing\ntrailer << >>\n%%EOF\n",
    )
    .await;
    assert_eq!(up.status, 201, "{}", up.text);
    let media = up.body["id"].as_i64().unwrap();
    let stranger_media = upload(
        &app,
        &stranger,
        "x.pdf",
        b"%PDF-1.4\n1 0 obj << >> endobj\n% other\ntrailer << >>\n%%EOF\n",
    )
    .await
    .body["id"]
        .as_i64()
        .unwrap();
    let r = patch(
        &app,
        &creator,
        id,
        json!({"status": "delivered", "message": "Here it is", "attachments": [stranger_media]}),
    )
    .await;
    assert_eq!(r.status, 400, "only the creator's own files: {}", r.text);
    let r = patch(
        &app,
        &creator,
        id,
        json!({"status": "delivered", "message": "Here it is", "attachments": [media]}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["delivery"]["message"], "Here it is");
    let fan_view = get_request(&app, &fan, id).await;
    let url = fan_view.body["delivery"]["attachments"][0]["url"]
        .as_str()
        .unwrap()
        .to_owned();
    let got = app.send(app.client.get(&url)).await;
    assert_eq!(
        got.status, 200,
        "the fan downloads the delivery: {}",
        got.text
    );
    let plain = format!("/content/api/media/{media}/file");
    assert_eq!(app.get(&plain, Some(&fan.token)).await.status, 200);
    assert_eq!(app.get(&plain, Some(&stranger.token)).await.status, 404);
    assert_eq!(app.get(&plain, None).await.status, 404);

    // The earnings ledger holds the commission's net (50000 less the simulator's 2% + GST fee)
    // until the fan completes it.
    let balance = |e: &Value, bucket: &str| e["balances"]["INR"][bucket].as_i64();
    let e = app
        .get("/subscriptions/api/earnings", Some(&creator.token))
        .await
        .body;
    assert_eq!(
        (balance(&e, "on_hold"), balance(&e, "pending")),
        (Some(48_820), Some(0)),
        "{e}"
    );
    let r = patch(&app, &creator, id, json!({"status": "completed"})).await;
    assert_eq!(r.status, 403, "completing is the fan's: {}", r.text);
    let r = patch(&app, &fan, id, json!({"status": "completed"})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let e = app
        .get("/subscriptions/api/earnings", Some(&creator.token))
        .await
        .body;
    assert_eq!(
        (balance(&e, "on_hold"), balance(&e, "pending")),
        (Some(0), Some(48_820)),
        "completing releases the hold: {e}"
    );
    let h: Vec<(String, Value)> = r.body["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["status"].as_str().unwrap().to_owned(), e["by"].clone()))
        .collect();
    assert_eq!(
        h,
        vec![
            ("awaiting_payment".into(), json!(fan.id)),
            ("ordered".into(), json!("system")),
            ("accepted".into(), json!(creator.id)),
            ("in_progress".into(), json!(creator.id)),
            ("delivered".into(), json!(creator.id)),
            ("completed".into(), json!(fan.id)),
        ]
    );
    assert_eq!(r.body["refund"], Value::Null);
    assert_eq!(r.body["commission"]["title"], "Portrait");
    assert_eq!(r.body["fan"]["username"], "lc_fan");
    assert_eq!(r.body["creator"]["id"], creator.id);
    assert_eq!(r.body["contact_details"], "cat@example.com");
    // Lists: the creator's received requests, the fan's own.
    let l = app
        .get(
            "/commissions/api/get-commissions-user",
            Some(&creator.token),
        )
        .await;
    assert_eq!(l.body["count"], 1, "{}", l.text);
    let l = app
        .get(
            "/commissions/api/get-commissions-user?role=fan",
            Some(&creator.token),
        )
        .await;
    assert_eq!(l.body["count"], 0, "{}", l.text);
    let l = app
        .get(
            "/commissions/api/get-commissions-user?status=completed",
            Some(&fan.token),
        )
        .await;
    assert_eq!(l.body["count"], 1, "{}", l.text);
    // Deletable again; the deleted offering's request stays readable.
    let r = app
        .delete(
            &format!("/commissions/api/commission-creator/{commission}/"),
            Some(&creator.token),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(status_of(&app, &fan, id).await, "completed");
}

#[tokio::test]
async fn two_fans_racing_for_the_last_slot_get_it_once() {
    let app = spawn_app().await;
    let creator = app.create_user("race_creator", true);
    let commission = offering(&app, &creator, 10_000, 2).await;
    let fans: Vec<TestUser> = (0..6)
        .map(|i| app.create_user(&format!("race_fan{i}"), false))
        .collect();
    let answers = futures_join_all(fans.iter().map(|f| order(&app, f, commission))).await;
    let won = answers.iter().filter(|r| r.status == 201).count();
    let full = answers
        .iter()
        .filter(|r| r.status == 409 && r.body["code"] == "no_free_slot")
        .count();
    assert_eq!((won, full), (2, 4), "{answers:?}");
    // A retried POST with its Idempotency-Key answers the first reply; it takes no new slot.
    let other = offering(&app, &creator, 10_000, 5).await;
    let send = || {
        app.send(
            app.client
                .post(app.url("/commissions/api/commission-user/"))
                .header("Authorization", format!("Token {}", fans[0].token))
                .header("Idempotency-Key", "comm-retry-0001")
                .json(&request_body(other)),
        )
    };
    let (a, b) = (send().await, send().await);
    assert_eq!((a.status, b.status), (201, 201), "{} {}", a.text, b.text);
    assert_eq!(a.body, b.body);
    assert_eq!(
        int(&app, "SELECT count(*) AS n FROM commission_requests"),
        3
    );
    assert_eq!(
        int(&app, "SELECT count(*) AS n FROM billing_orders"),
        3,
        "refused requests made no order"
    );
}

#[tokio::test]
async fn unpaid_requests_expire_and_late_payments_are_honoured_or_refunded() {
    let app = spawn_app_with(|s| {
        // Holds far longer than the test: a request expires only when the test makes its hold
        // due (below), so a slow machine cannot expire the second request early.
        s.commission_payment_hold_secs = 3600;
        s.commission_sweep_secs = 1;
    })
    .await;
    let sim = Sim::embedded(&app);
    // Makes a request's hold due now; the periodic sweep then expires it.
    let end_hold = |id: i64| {
        use diesel::RunQueryDsl;
        diesel::sql_query(format!(
            "UPDATE commission_requests SET hold_until = now() - interval '1 second' WHERE id = {id}"
        ))
        .execute(&mut app.conn())
        .unwrap();
    };
    let creator = app.create_user("ex_creator", true);
    let early = app.create_user("ex_early", false);
    let late = app.create_user("ex_late", false);
    let commission = offering(&app, &creator, 20_000, 1).await;
    let (first, first_order) = ordered(&app, &early, commission).await;
    // The hold ends: the request expires by itself and frees its slot.
    end_hold(first);
    wait_status(&app, &early, first, "expired").await;
    let (second, _) = ordered(&app, &late, commission).await;
    // The first fan pays after all (the webhook only): no slot is free, so it is refunded.
    let paid = sim.pay(&first_order).await;
    settle(&app, &sim).await;
    let pay = paid["razorpay_payment_id"].as_str().unwrap().to_owned();
    wait_for(
        &app,
        "the late payment's refund",
        &format!("SELECT coalesce((SELECT status = 'sent' FROM billing_refunds WHERE razorpay_payment_id = '{pay}'), false) AS b"),
    )
    .await;
    assert_eq!(status_of(&app, &early, first).await, "expired");
    let v = get_request(&app, &early, first).await;
    assert_eq!(v.body["refund"]["amount"], 20_000, "{}", v.text);
    // The second request expires too; paid late with its slot free, it is honoured.
    end_hold(second);
    wait_status(&app, &late, second, "expired").await;
    let second_order = text(
        &app,
        &format!("SELECT razorpay_order_id AS t FROM commission_requests WHERE id = {second}"),
    );
    sim.pay(&second_order).await;
    settle(&app, &sim).await;
    wait_status(&app, &late, second, "ordered").await;
    let h = get_request(&app, &late, second).await.body["history"].clone();
    let steps: Vec<&str> = h
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["status"].as_str().unwrap())
        .collect();
    assert_eq!(steps, ["awaiting_payment", "expired", "ordered"]);
    assert_eq!(h[1]["by"], "system");
}

#[tokio::test]
async fn rejection_and_cancellation_refund_exactly_once_even_when_the_answer_is_lost() {
    let (app, sim) = standalone().await;
    let creator = app.create_user("rf_creator", true);
    let fan = app.create_user("rf_fan", false);
    let commission = offering(&app, &creator, 30_000, 5).await;
    let (rejected, o1) = ordered(&app, &fan, commission).await;
    let (cancelled, o2) = ordered(&app, &fan, commission).await;
    let (unpaid, _) = ordered(&app, &fan, commission).await;
    let p1 = sim.pay(&o1).await;
    let p2 = sim.pay(&o2).await;
    settle(&app, &sim).await;
    wait_status(&app, &fan, rejected, "ordered").await;
    wait_status(&app, &fan, cancelled, "ordered").await;
    // Every refund's first answer is lost after Razorpay made it.
    sim.post(
        "/_sim/chaos",
        json!({"fail_routes": [{"method": "POST", "path_prefix": "/v1/payments/", "status": 502,
                                "when": "after", "times": 2}]}),
    )
    .await;
    let r = patch(&app, &creator, rejected, json!({"status": "rejected"})).await;
    assert_eq!(r.status, 400, "a rejection needs a reason: {}", r.text);
    let r = patch(
        &app,
        &creator,
        rejected,
        json!({"status": "rejected", "message": "Too busy"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["refund"]["status"], "pending", "{}", r.text);
    let r = patch(
        &app,
        &fan,
        cancelled,
        json!({"status": "cancelled", "message": "Changed my mind"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = patch(&app, &fan, unpaid, json!({"status": "cancelled"})).await;
    assert_eq!(
        (r.status, &r.body["refund"]),
        (200, &Value::Null),
        "nothing to refund: {}",
        r.text
    );
    let r = patch(&app, &creator, rejected, json!({"status": "accepted"})).await;
    assert_eq!(r.status, 409, "an end is an end: {}", r.text);
    wait_for(
        &app,
        "both refunds sent",
        "SELECT count(*) = 2 AND bool_and(status = 'sent') AS b FROM billing_refunds",
    )
    .await;
    settle(&app, &sim).await;
    // Everything again: redelivered webhooks and a reconciliation change nothing.
    for e in sim.events().await {
        sim.post(
            "/_sim/webhooks/redeliver",
            json!({"event_id": e["event_id"]}),
        )
        .await;
    }
    let mut cli = app.settings.clone();
    cli.public_url = app.address.clone();
    reconcile(&cli).await;
    settle(&app, &sim).await;
    drain(&app).await;
    for (id, paid) in [(rejected, &p1), (cancelled, &p2)] {
        let pay = paid["razorpay_payment_id"].as_str().unwrap();
        let refunds = refunds_at_sim(&sim, pay).await;
        assert_eq!(refunds.len(), 1, "exactly one refund of {pay}: {refunds:?}");
        assert_eq!(refunds[0]["amount"], 30_000);
        for who in [&fan, &creator] {
            let v = get_request(&app, who, id).await;
            assert_eq!(v.body["refund"]["status"], "processed", "{}", v.text);
            assert_eq!(v.body["refund"]["amount"], 30_000);
        }
    }
    let v = get_request(&app, &creator, rejected).await;
    let last = v.body["history"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(
        (last["status"].as_str(), last["message"].as_str()),
        (Some("rejected"), Some("Too busy"))
    );
    assert_eq!(
        int(
            &app,
            "SELECT count(*) AS n FROM payments WHERE kind = 'commission' AND status = 'refunded'"
        ),
        2
    );
}

fn notifications_of(app: &TestApp, who: &TestUser) -> String {
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
async fn a_guest_orders_a_commission_and_dashboards_and_notifications_follow_it() {
    let app = spawn_app().await;
    let sim = Sim::embedded(&app);
    let creator = app.create_user("gc_creator", true);
    let commission = offering(&app, &creator, 25_000, 3).await;
    let body = json!({"email": "gc_guest@example.com", "phone": "+919876543210",
                      "password": "violet-harbor-31", "payment_type": "commission",
                      "commissionID": commission, "currency": "INR",
                      "description": "A dragon", "contactDetails": "@guest", "mode_of_delivery": 1});
    let mut bad = body.clone();
    bad["commissionID"] = json!(999_999);
    let r = ghost(&app, &bad, None).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(r.body["commissionID"].is_array(), "{}", r.text);
    let r = ghost(&app, &body, None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let oid = r.body["SubscriptionID"].as_str().unwrap().to_owned();
    assert!(oid.starts_with("order_"), "{}", r.text);
    assert_eq!(r.body["email"], "gc_guest@example.com");
    let guest = TestUser {
        id: int(
            &app,
            "SELECT id AS n FROM users WHERE email = 'gc_guest@example.com'",
        ),
        username: r.body["username"].as_str().unwrap().to_owned(),
        email: "gc_guest@example.com".into(),
        token: r.body["key"].as_str().unwrap().to_owned(),
    };
    // Only the webhook confirms it.
    sim.pay(&oid).await;
    settle(&app, &sim).await;
    let mine = app
        .get("/commissions/api/get-commissions-user", Some(&guest.token))
        .await;
    assert_eq!(mine.body["count"], 1, "{}", mine.text);
    let id = mine.body["results"][0]["id"].as_i64().unwrap();
    assert_eq!(mine.body["results"][0]["status"], "ordered");
    assert_eq!(mine.body["results"][0]["mode_of_delivery"], "1");

    let stats = app.get("/feed/api/stats", Some(&creator.token)).await;
    assert_eq!(stats.status, 200, "{}", stats.text);
    assert_eq!(stats.body["open_commissions"], 1, "{}", stats.text);
    assert_eq!(stats.body["commissions"]["count"], 1, "{}", stats.text);
    assert!(stats.text.contains("25000"), "{}", stats.text);
    let us = app.get("/feed/api/userstats", Some(&guest.token)).await;
    assert_eq!(us.body["commissions"], json!({"ordered": 1}), "{}", us.text);
    assert_eq!(us.body["commissions_ordered"], 1, "{}", us.text);
    wait_for(
        &app,
        "the creator's notification",
        &format!("SELECT count(*) = 1 AS b FROM notifications WHERE recipient_id = {} AND kind = 'commission'", creator.id),
    )
    .await;
    assert!(
        notifications_of(&app, &creator).contains(&format!(
            "commission:{} ordered \"Portrait\" (INR 250.00).",
            guest.username
        )),
        "{}",
        notifications_of(&app, &creator)
    );

    // Rejected: the guest is told and refunded; the dashboards reverse the payment.
    let r = patch(
        &app,
        &creator,
        id,
        json!({"status": "rejected", "message": "Not my style"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    wait_for(
        &app,
        "the refund and its notifications",
        &format!("SELECT count(*) = 2 AS b FROM notifications WHERE recipient_id = {} AND kind IN ('commission', 'payment_refunded')", guest.id),
    )
    .await;
    let told = notifications_of(&app, &guest);
    assert!(
        told.contains("commission:gc_creator declined your request for \"Portrait\""),
        "{told}"
    );
    assert!(
        told.contains("payment_refunded:Your payment of INR 250.00 for Portrait was refunded"),
        "{told}"
    );
    settle(&app, &sim).await;
    wait_for(
        &app,
        "the refund webhook",
        "SELECT bool_and(status = 'refunded') AS b FROM payments",
    )
    .await;
    let stats = app.get("/feed/api/stats", Some(&creator.token)).await;
    assert_eq!(stats.body["open_commissions"], 0, "{}", stats.text);
    assert!(
        !stats.text.contains("25000"),
        "net of the refund: {}",
        stats.text
    );
    let us = app.get("/feed/api/userstats", Some(&guest.token)).await;
    assert_eq!(
        us.body["commissions"],
        json!({"rejected": 1}),
        "{}",
        us.text
    );

    // Every route is documented.
    let doc = app.get("/api/openapi.json", None).await;
    for p in [
        "/commissions/api/commission-creator/",
        "/commissions/api/commission-creator/{id}/",
        "/commissions/api/deletable/{id}",
        "/commissions/list/{creator_id}",
        "/commissions/api/get-commissions",
        "/commissions/api/commission-user/",
        "/commissions/api/commission-user/{id}/",
        "/commissions/api/commission-user/{id}/confirm/",
        "/commissions/api/get-commissions-user",
    ] {
        assert!(doc.body["paths"][p].is_object(), "{p} missing from OpenAPI");
    }
}

#[tokio::test]
async fn a_lost_webhook_is_recovered_by_reconciliation_and_deliveries_complete_by_themselves() {
    let (app, sim) = standalone_with(|s| s.commission_sweep_secs = 1).await;
    let creator = app.create_user("rc_creator", true);
    let fan = app.create_user("rc_fan", false);
    let commission = offering(&app, &creator, 15_000, 1).await;
    let (id, oid) = ordered(&app, &fan, commission).await;
    sim.post("/_sim/webhooks/drop_next", json!({"count": 100}))
        .await;
    sim.pay(&oid).await;
    settle(&app, &sim).await;
    assert_eq!(status_of(&app, &fan, id).await, "awaiting_payment");
    let mut cli = app.settings.clone();
    cli.public_url = app.address.clone();
    reconcile(&cli).await;
    assert_eq!(status_of(&app, &fan, id).await, "ordered");
    for step in ["accepted", "in_progress"] {
        assert_eq!(
            patch(&app, &creator, id, json!({"status": step}))
                .await
                .status,
            200
        );
    }
    let r = patch(
        &app,
        &creator,
        id,
        json!({"status": "delivered", "message": "Done"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.body["delivery"],
        json!({"message": "Done", "attachments": []})
    );
    // Seven days later (the default delay) it completes by itself.
    diesel::sql_query(format!(
        "UPDATE commission_requests SET delivered_at = now() - interval '7 days 1 minute' WHERE id = {id}"
    ))
    .execute(&mut app.conn())
    .unwrap();
    wait_status(&app, &fan, id, "completed").await;
    let h = get_request(&app, &fan, id).await.body["history"].clone();
    let last = h.as_array().unwrap().last().unwrap();
    assert_eq!(
        (last["status"].as_str(), &last["by"]),
        (Some("completed"), &json!("system"))
    );
}

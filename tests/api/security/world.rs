//! A small world with one of everything, made through the real API (the embedded simulator is
//! Razorpay): a creator (the *owner*) with tiers, public and gated posts, an attachment, an
//! offering and bank details; a *member* of the owner's tier (paid through Checkout), with a like,
//! comments, a follow, a paid commission request and an unpaid one; a *fan* who is signed in but
//! pays for nothing; and an *other creator* with tiers and posts of their own.
use oasis_tests::{json, Resp, TestApp, TestUser};
use serde_json::Value;

/// The password every world account has (the secrets test looks for it everywhere).
pub const PASSWORD: &str = "Wor1d-Passw0rd-7fq2";
/// The owner's full bank account number (never stored or shown in full).
pub const ACCOUNT_NUMBER: &str = "918273645501234";
/// Text only the tier's members and the owner may read.
pub const GATED_BODY: &str = "GATED-BODY-7d1c0e";
/// A commission request's contact details: the fan's and the creator's only.
pub const CONTACT: &str = "CONTACT-DETAILS-55a9e1";
/// The member's comment on the gated post: for those who may see the post only.
pub const GATED_COMMENT: &str = "GATED-COMMENT-3b8f24";

pub const ROLES: [&str; 5] = ["anonymous", "fan", "member", "other", "owner"];

pub struct World {
    pub fan: TestUser,
    pub member: TestUser,
    pub other: TestUser,
    pub owner: TestUser,
    /// A second API key per role (index as [`ROLES`], none for anonymous), for rows that end the
    /// session they are called with (logout).
    pub spare: [Option<String>; 5],
    /// The owner's paid tier the member belongs to.
    pub tier: i64,
    /// A second tier of the owner, with the same price (change preview target).
    pub tier2: i64,
    /// A tier the member also pays for, which the pause/resume rows act on.
    pub tier_pause: i64,
    /// A tier the member also pays for, which the end row ends.
    pub tier_end: i64,
    /// A tier the member also pays for, which the change row changes (to `tier2`).
    pub tier_change: i64,
    /// A tier with no members and no posts (the delete row).
    pub tier_del: i64,
    /// The owner's free (public) tier.
    pub tier_free: i64,
    pub post_public: i64,
    pub post_gated: i64,
    /// A public post for the delete row.
    pub post_del: i64,
    /// A gated post whose tiers the remove-tiers row removes.
    pub post_rmtier: i64,
    /// The owner's image, attached to the gated post.
    pub media: i64,
    /// The member's like of the public post.
    pub like: i64,
    /// The member's comments on the public post (one for the delete row).
    pub comment: i64,
    pub comment_del: i64,
    /// The member's comment the owner deletes (moderation).
    pub comment_mod: i64,
    /// The member's like of and comment on the gated post.
    pub like_gated: i64,
    pub comment_gated: i64,
    pub offering: i64,
    pub offering_del: i64,
    /// The member's paid request (`ordered`).
    pub request: i64,
    /// The member's unpaid request and the Checkout answer paying it.
    pub request_unpaid: i64,
    pub request_unpaid_order: String,
    pub request_unpaid_paid: Value,
    /// Notifications of the owner (one for the delete row).
    pub notification: i64,
    pub notification_del: i64,
}

pub fn role_token(w: &World, role: usize) -> Option<&str> {
    match role {
        1 => Some(&w.fan.token),
        2 => Some(&w.member.token),
        3 => Some(&w.other.token),
        4 => Some(&w.owner.token),
        _ => None,
    }
}

fn ok(r: &Resp, want: u16, what: &str) {
    assert_eq!(r.status, want, "{what}: {}", r.text);
}

async fn tier(app: &TestApp, who: &TestUser, name: &str, price: i64) -> i64 {
    let r = app
        .post(
            "/content/api/tiers/",
            &json!({"name": name, "description": "d", "price": price, "currency": "INR", "benefits": ["a"]}),
            Some(&who.token),
        )
        .await;
    ok(&r, 201, "tier");
    r.body["id"].as_i64().unwrap()
}

/// A post; `body` is its text when gated (a public one says "public body").
async fn post(
    app: &TestApp,
    who: &TestUser,
    tiers: &[i64],
    attachments: &[i64],
    body: &str,
) -> i64 {
    let r = app
        .post(
            "/content/api/content/",
            &json!({"title": "a post", "body": if tiers.is_empty() { "public body" } else { body },
                    "tiers": tiers, "attachments": attachments}),
            Some(&who.token),
        )
        .await;
    ok(&r, 201, "post");
    r.body["id"].as_i64().unwrap()
}

/// Plays the customer at the simulator's Checkout (`sim`: its base URL).
pub async fn pay(app: &TestApp, sim: &str, key: &str, id: &str) -> Value {
    let r = app
        .send(
            app.client
                .post(format!("{sim}/_sim/checkout"))
                .json(&json!({ key: id, "outcome": "success" })),
        )
        .await;
    ok(&r, 200, "sim checkout");
    r.body
}

/// A paid recurring membership of `tier` for `fan`, through create, Checkout and save.
pub async fn subscribe(app: &TestApp, sim: &str, fan: &TestUser, tier: i64) {
    let r = app
        .post(
            "/subscriptions/create",
            &json!({"tierID": tier}),
            Some(&fan.token),
        )
        .await;
    ok(&r, 200, "create");
    let sid = r.body["SubscriptionID"].as_str().unwrap().to_owned();
    let paid = pay(app, sim, "subscription_id", &sid).await;
    let r = app
        .post(
            "/subscriptions/save",
            &json!({"tierID": tier, "razorpay_payment_id": paid["razorpay_payment_id"],
                    "razorpay_signature": paid["razorpay_signature"],
                    "razorpay_subscription_id": paid["razorpay_subscription_id"]}),
            Some(&fan.token),
        )
        .await;
    ok(&r, 200, "save");
}

/// A tiny valid PNG (1×1).
pub fn png() -> Vec<u8> {
    hex::decode(
        "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082",
    )
    .unwrap()
}

pub const BOUNDARY: &str = "----oasis-matrix-boundary-k3J9";

pub fn multipart(filename: &str, bytes: &[u8]) -> Vec<u8> {
    let mut body = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    body
}

pub async fn upload(app: &TestApp, token: Option<&str>, filename: &str, bytes: &[u8]) -> Resp {
    let mut req = app
        .client
        .post(app.url("/content/api/media/"))
        .header(
            "Content-Type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(multipart(filename, bytes));
    if let Some(t) = token {
        req = req.header("Authorization", format!("Token {t}"));
    }
    app.send(req).await
}

fn spare_token(app: &TestApp, user: &TestUser, n: u32) -> String {
    let token = format!("{:0>40}", format!("5ba7e{:x}{n:x}", user.id));
    oasis_db::identity::insert_token(&mut app.conn(), user.id, &token).expect("spare token");
    token
}

/// The world, paid through the simulator at `sim` (embedded: `app.url("/_razorpay")`).
pub async fn build(app: &TestApp, prefix: &str, sim: &str) -> World {
    let fan = app.create_user(&format!("{prefix}_fan"), false);
    let member = app.create_user(&format!("{prefix}_member"), false);
    let other = app.create_user(&format!("{prefix}_other"), true);
    let owner = app.create_user(&format!("{prefix}_owner"), true);
    for u in [&fan, &member, &other, &owner] {
        app.set_password(u.id, PASSWORD);
    }
    let spare = [
        None,
        Some(spare_token(app, &fan, 1)),
        Some(spare_token(app, &member, 2)),
        Some(spare_token(app, &other, 3)),
        Some(spare_token(app, &owner, 4)),
    ];

    let tier_id = tier(app, &owner, "Gold", 500).await;
    let tier2 = tier(app, &owner, "Platinum", 900).await;
    let tier_pause = tier(app, &owner, "Silver", 500).await;
    let tier_end = tier(app, &owner, "Bronze", 500).await;
    let tier_change = tier(app, &owner, "Copper", 500).await;
    let tier_del = tier(app, &owner, "Unused", 500).await;
    let tier_free = tier(app, &owner, "Free", 0).await;
    let other_tier = tier(app, &other, "Other gold", 500).await;

    let up = upload(app, Some(&owner.token), "pic.png", &png()).await;
    ok(&up, 201, "upload");
    let media = up.body["id"].as_i64().unwrap();

    let post_public = post(app, &owner, &[], &[], "").await;
    let post_gated = post(app, &owner, &[tier_id], &[media], GATED_BODY).await;
    let post_del = post(app, &owner, &[], &[], "").await;
    // Made public by the remove-tiers row: its text is not the gated one.
    let post_rmtier = post(app, &owner, &[tier_id], &[], "soon public").await;
    post(
        app,
        &other,
        &[other_tier],
        &[],
        "the other creator's gated body",
    )
    .await;

    for t in [tier_id, tier_pause, tier_end, tier_change] {
        subscribe(app, sim, &member, t).await;
    }

    let r = app
        .post(
            "/content/api/likes/",
            &json!({"post": post_public}),
            Some(&member.token),
        )
        .await;
    ok(&r, 201, "like");
    let like = r.body["id"].as_i64().unwrap();
    let mut comments = vec![];
    for text in ["nice", "to delete", "to moderate"] {
        let r = app
            .post(
                "/content/api/comment/",
                &json!({"post": post_public, "text": text}),
                Some(&member.token),
            )
            .await;
        ok(&r, 201, "comment");
        comments.push(r.body["id"].as_i64().unwrap());
    }
    let r = app
        .post(
            "/content/api/likes/",
            &json!({"post": post_gated}),
            Some(&member.token),
        )
        .await;
    ok(&r, 201, "like of the gated post");
    let like_gated = r.body["id"].as_i64().unwrap();
    let r = app
        .post(
            "/content/api/comment/",
            &json!({"post": post_gated, "text": GATED_COMMENT}),
            Some(&member.token),
        )
        .await;
    ok(&r, 201, "comment on the gated post");
    let comment_gated = r.body["id"].as_i64().unwrap();
    let r = app
        .post(
            &format!("/feed/api/follow/{}", owner.id),
            &json!({}),
            Some(&member.token),
        )
        .await;
    assert!(r.status < 300, "follow: {}", r.text);

    let mut offerings = vec![];
    for title in ["Portrait", "Sketch"] {
        let r = app
            .post(
                "/commissions/api/commission-creator/",
                &json!({"title": title, "description": "A drawing", "price": 1000,
                        "currency": "INR", "delivery_days": 7, "slots": 100, "is_open": true}),
                Some(&owner.token),
            )
            .await;
        ok(&r, 201, "offering");
        offerings.push(r.body["id"].as_i64().unwrap());
    }
    let mut requests = vec![];
    for _ in 0..2 {
        let r = app
            .post(
                "/commissions/api/commission-user/",
                &json!({"commissionID": offerings[0], "description": "My cat",
                        "contactDetails": CONTACT, "mode_of_delivery": "1", "currency": "INR"}),
                Some(&member.token),
            )
            .await;
        ok(&r, 201, "commission request");
        requests.push((
            r.body["id"].as_i64().unwrap(),
            r.body["SubscriptionID"].as_str().unwrap().to_owned(),
        ));
    }
    let paid = pay(app, sim, "order_id", &requests[0].1).await;
    let r = app
        .post(
            &format!("/commissions/api/commission-user/{}/confirm/", requests[0].0),
            &json!({"razorpay_order_id": requests[0].1, "razorpay_payment_id": paid["razorpay_payment_id"],
                    "razorpay_signature": paid["razorpay_signature"]}),
            Some(&member.token),
        )
        .await;
    ok(&r, 200, "confirm");
    let unpaid = pay(app, sim, "order_id", &requests[1].1).await;

    let r = app
        .post(
            "/subscriptions/api/bankdetails",
            &json!({"ifscCode": "HDFC0001234", "accountNumber": ACCOUNT_NUMBER,
                    "BankName": "HDFC", "accountHolderName": "Owner", "contactPhone": "9000090000",
                    "legalName": "Owner Studio", "businessType": "individual", "password": PASSWORD}),
            Some(&owner.token),
        )
        .await;
    assert!(r.status < 300, "bank details: {}", r.text);

    let notification = notify(app, owner.id, member.id, "n1");
    let notification_del = notify(app, owner.id, member.id, "n2");

    World {
        fan,
        member,
        other,
        owner,
        spare,
        tier: tier_id,
        tier2,
        tier_pause,
        tier_end,
        tier_change,
        tier_del,
        tier_free,
        post_public,
        post_gated,
        post_del,
        post_rmtier,
        media,
        like,
        comment: comments[0],
        comment_del: comments[1],
        comment_mod: comments[2],
        like_gated,
        comment_gated,
        offering: offerings[0],
        offering_del: offerings[1],
        request: requests[0].0,
        request_unpaid: requests[1].0,
        request_unpaid_order: requests[1].1.clone(),
        request_unpaid_paid: unpaid,
        notification,
        notification_del,
    }
}

/// A follow notification for `recipient`, written directly (what the fan-out would write).
fn notify(app: &TestApp, recipient: i64, actor: i64, key: &str) -> i64 {
    use diesel::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Id {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        id: i64,
    }
    let row: Id = diesel::sql_query(format!(
        "INSERT INTO notifications (recipient_id, actor_id, kind, verb, event_key, data, unread, created_at, shown)
         VALUES ({recipient}, {actor}, 'follow', 'followed you', 'matrix-{key}', '{{}}'::jsonb, true, now(), true)
         RETURNING id"
    ))
    .get_result(&mut app.conn())
    .expect("insert notification");
    row.id
}

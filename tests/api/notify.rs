//! Notify: every event notifies the right people (and nobody else), once; the seed's
//! `/feed/api/notifications/?max=` shape; unread counts and marking read; locked posts' bodies
//! never reach a notification; nobody reads or changes another user's notifications.
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use oasis_tests::{json, spawn_app, Resp, TestApp, TestUser};
use std::time::{Duration, Instant};

const SECRET: &str = "SECRET-BODY-7f3a";

fn int(app: &TestApp, sql: &str) -> i64 {
    app.query_i64(sql)
}

/// Waits until every `notify.fanout` job is done (bounded); fails with the jobs' errors.
async fn drain(app: &TestApp) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let pending = int(
            app,
            "SELECT count(*) AS n FROM jobs WHERE kind = 'notify.fanout' AND done_at IS NULL",
        );
        if pending == 0 {
            return;
        }
        if Instant::now() > deadline {
            #[derive(QueryableByName)]
            struct E {
                #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
                last_error: Option<String>,
            }
            let errs: Vec<E> = diesel::sql_query(
                "SELECT last_error FROM jobs WHERE kind = 'notify.fanout' AND done_at IS NULL",
            )
            .load(&mut app.conn())
            .unwrap();
            let errs: Vec<Option<String>> = errs.into_iter().map(|e| e.last_error).collect();
            panic!("{pending} notify.fanout job(s) not done: {errs:?}");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// `kind` of every notification of `user`, oldest first.
fn kinds(app: &TestApp, user: &TestUser) -> Vec<String> {
    #[derive(QueryableByName)]
    struct K {
        #[diesel(sql_type = Text)]
        kind: String,
    }
    diesel::sql_query(
        "SELECT kind FROM notifications WHERE recipient_id = $1 ORDER BY created_at, id",
    )
    .bind::<BigInt, _>(user.id)
    .load::<K>(&mut app.conn())
    .unwrap()
    .into_iter()
    .map(|k| k.kind)
    .collect()
}

async fn inbox(app: &TestApp, who: &TestUser, query: &str) -> Resp {
    let r = app
        .get(
            &format!("/feed/api/notifications/{query}"),
            Some(&who.token),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    r
}

async fn create_tier(app: &TestApp, who: &TestUser, name: &str, price: i64) -> i64 {
    let r = app
        .post(
            "/content/api/tiers/",
            &json!({"name": name, "description": "d", "price": price, "currency": "INR", "benefits": ["a"]}),
            Some(&who.token),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.body["id"].as_i64().unwrap()
}

async fn create_post(app: &TestApp, who: &TestUser, title: &str, body: &str, tiers: &[i64]) -> i64 {
    let r = app
        .post(
            "/content/api/content/",
            &json!({"title": title, "body": body, "tiers": tiers}),
            Some(&who.token),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.body["id"].as_i64().unwrap()
}

/// An active paid-up membership, written directly (no Razorpay involved).
fn membership(app: &TestApp, user: i64, tier: i64) {
    diesel::sql_query(
        "INSERT INTO memberships (user_id, tier_id, kind, status, amount, currency, current_start,
             current_end, paid_count)
         VALUES ($1, $2, 'recurring', 'active', 50000, 'INR', now(), now() + interval '30 days', 1)",
    )
    .bind::<BigInt, _>(user)
    .bind::<BigInt, _>(tier)
    .execute(&mut app.conn())
    .expect("membership");
}

async fn follow(app: &TestApp, fan: &TestUser, creator: &TestUser) {
    let r = app
        .post(
            &format!("/feed/api/follow/{}", creator.id),
            &json!({}),
            Some(&fan.token),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
}

/// Every text a notification stores, for leak checks.
fn stored_text(app: &TestApp) -> String {
    #[derive(QueryableByName)]
    struct T {
        #[diesel(sql_type = Text)]
        t: String,
    }
    diesel::sql_query(
        "SELECT COALESCE(string_agg(concat_ws('|', verb, target_repr, action_object_repr, data::text), '\n'), '') AS t
         FROM notifications",
    )
    .get_result::<T>(&mut app.conn())
    .unwrap()
    .t
}

#[tokio::test]
async fn new_posts_reach_followers_and_members_with_locked_bodies_kept_out() {
    let app = spawn_app().await;
    let creator = app.create_user("np_creator", true);
    let follower = app.create_user("np_follower", false);
    let member = app.create_user("np_member", false);
    let stranger = app.create_user("np_stranger", false);
    let other_creator = app.create_user("np_other", true);
    let gone = app.create_user("np_gone", false);
    let gold = create_tier(&app, &creator, "Gold", 50_000).await;
    follow(&app, &follower, &creator).await;
    follow(&app, &stranger, &other_creator).await;
    membership(&app, member.id, gold);
    follow(&app, &gone, &creator).await;
    diesel::sql_query("UPDATE users SET is_active = false WHERE id = $1")
        .bind::<BigInt, _>(gone.id)
        .execute(&mut app.conn())
        .unwrap();
    app.settle().await;
    drain(&app).await;

    let public = create_post(&app, &creator, "Hello all", "a public body", &[]).await;
    let locked = create_post(&app, &creator, "Gold news", SECRET, &[gold]).await;
    drain(&app).await;

    assert_eq!(kinds(&app, &follower), ["new_post", "new_post"]);
    assert_eq!(kinds(&app, &member), ["new_post", "new_post"]);
    assert!(
        kinds(&app, &stranger).is_empty(),
        "not following this creator"
    );
    assert!(
        kinds(&app, &gone).is_empty(),
        "deactivated accounts get nothing"
    );
    assert_eq!(
        kinds(&app, &creator),
        ["follow", "follow"],
        "never about one's own post"
    );
    assert_eq!(kinds(&app, &other_creator), ["follow"]);

    // The locked body is nowhere: not stored, not served (to a follower without access, nor to
    // a member with access).
    assert!(!stored_text(&app).contains(SECRET));
    for who in [&follower, &member] {
        let r = inbox(&app, who, "?max=100").await;
        assert!(!r.text.contains(SECRET), "{}", r.text);
        let all = r.body["all_list"].as_array().unwrap();
        assert_eq!(all.len(), 2);
        // Newest first: the locked post, title only.
        assert_eq!(all[0]["kind"], "new_post");
        assert_eq!(all[0]["action_object"], "Gold news");
        assert_eq!(all[0]["action_object_id"], locked);
        assert_eq!(all[0]["data"]["title"], "Gold news");
        assert_eq!(all[0]["data"]["locked"], true);
        assert!(all[0]["data"].get("preview").is_none());
        assert_eq!(all[0]["verb"], "published a new post for members");
        // The public one carries a preview of its body.
        assert_eq!(all[1]["data"]["post_id"], public);
        assert_eq!(all[1]["data"]["preview"], "a public body");
        assert_eq!(all[1]["actor"], "np_creator");
        assert_eq!(all[1]["actor_id"], creator.id);
    }

    // A post gated after the fact: its stored preview is no longer served to anyone.
    let r = app
        .patch(
            &format!("/content/api/content/{public}/"),
            &json!({"tiers": [gold]}),
            Some(&creator.token),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    for who in [&follower, &member] {
        let r = inbox(&app, who, "").await;
        assert!(!r.text.contains("a public body"), "{}", r.text);
        let n = &r.body["all_list"][1];
        assert_eq!(n["data"]["post_id"], public);
        assert_eq!(n["data"]["locked"], true);
        assert_eq!(n["data"]["title"], "Hello all");
    }

    // Deleting a post deletes the notifications about it.
    let r = app
        .delete(
            &format!("/content/api/content/{public}/"),
            Some(&creator.token),
        )
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(kinds(&app, &follower), ["new_post"]);
}

#[tokio::test]
async fn seed_response_shape_counts_and_max() {
    let app = spawn_app().await;
    let creator = app.create_user("sh_creator", true);
    let fan = app.create_user("sh_fan", false);
    follow(&app, &fan, &creator).await;
    for i in 0..3 {
        create_post(&app, &creator, &format!("post {i}"), "body", &[]).await;
    }
    drain(&app).await;

    let r = inbox(&app, &fan, "?max=100").await;
    let b = &r.body;
    let keys: Vec<&str> = b.as_object().unwrap().keys().map(String::as_str).collect();
    for k in ["unread_count", "unread_list", "all_count", "all_list"] {
        assert!(keys.contains(&k), "{k} missing: {}", r.text);
    }
    assert_eq!(b["unread_count"], 3);
    assert_eq!(b["all_count"], 3);
    let item = &b["unread_list"][0];
    for k in [
        "slug",
        "sulg",
        "actor",
        "target",
        "action_object",
        "data",
        "verb",
        "unread",
        "timestamp",
    ] {
        assert!(
            item.as_object().unwrap().contains_key(k),
            "{k} missing: {item}"
        );
    }
    assert_eq!(item["slug"], item["id"]);
    assert_eq!(item["sulg"], item["id"]);
    assert_eq!(item["recipient"], fan.id);
    assert_eq!(item["unread"], true);
    assert_eq!(item["action_object"], "post 2", "newest first");
    // The trailing slash and its absence both work; default max is 100.
    let r2 = app.get("/feed/api/notifications", Some(&fan.token)).await;
    assert_eq!(r2.status, 200);
    assert_eq!(r2.body["all_list"].as_array().unwrap().len(), 3);

    // max bounds the lists, not the counts.
    let r = inbox(&app, &fan, "?max=2").await;
    assert_eq!(r.body["all_list"].as_array().unwrap().len(), 2);
    assert_eq!(r.body["unread_list"].as_array().unwrap().len(), 2);
    assert_eq!(r.body["all_count"], 3);
    for bad in ["0", "101", "abc", "-5"] {
        let r = app
            .get(
                &format!("/feed/api/notifications/?max={bad}"),
                Some(&fan.token),
            )
            .await;
        assert_eq!(r.status, 400, "max={bad}: {}", r.text);
        assert!(r.body["max"].is_array(), "{}", r.text);
    }
    // Anonymous: 401 on every route.
    assert_eq!(app.get("/feed/api/notifications/", None).await.status, 401);
    assert_eq!(
        app.get("/feed/api/notifications/unread_count", None)
            .await
            .status,
        401
    );
    assert_eq!(
        app.post("/feed/api/notifications/mark_all_as_read", &json!({}), None)
            .await
            .status,
        401
    );

    // Mark one read: it leaves the unread list.
    let id = r.body["all_list"][0]["id"].as_i64().unwrap();
    let m = app
        .post(
            &format!("/feed/api/notifications/{id}/read"),
            &json!({}),
            Some(&fan.token),
        )
        .await;
    assert_eq!(m.status, 200, "{}", m.text);
    assert_eq!(m.body["unread"], false);
    assert_eq!(m.body["id"], id);
    let c = app
        .get("/feed/api/notifications/unread_count", Some(&fan.token))
        .await;
    assert_eq!(c.body, json!({"unread_count": 2}));
    let r = inbox(&app, &fan, "").await;
    assert_eq!(
        (
            r.body["unread_count"].as_i64(),
            r.body["all_count"].as_i64()
        ),
        (Some(2), Some(3))
    );
    assert!(r.body["unread_list"]
        .as_array()
        .unwrap()
        .iter()
        .all(|n| n["id"] != id));
    // Mark all read.
    let m = app
        .post(
            "/feed/api/notifications/mark_all_as_read",
            &json!({}),
            Some(&fan.token),
        )
        .await;
    assert_eq!(m.status, 200, "{}", m.text);
    assert_eq!(m.body, json!({"marked": 2, "unread_count": 0}));
    let r = inbox(&app, &fan, "").await;
    assert_eq!(r.body["unread_count"], 0);
    assert_eq!(r.body["unread_list"], json!([]));
    assert_eq!(r.body["all_count"], 3);
    assert_eq!(
        int(
            &app,
            &format!(
                "SELECT count(*) AS n FROM notifications WHERE unread AND recipient_id = {}",
                fan.id
            )
        ),
        0
    );
    // Delete one.
    let d = app
        .delete(&format!("/feed/api/notifications/{id}"), Some(&fan.token))
        .await;
    assert_eq!(d.status, 204, "{}", d.text);
    assert_eq!(inbox(&app, &fan, "").await.body["all_count"], 2);
    let again = app
        .delete(&format!("/feed/api/notifications/{id}"), Some(&fan.token))
        .await;
    assert_eq!(again.status, 404);
}

#[tokio::test]
async fn nobody_reads_marks_or_deletes_another_users_notifications() {
    let app = spawn_app().await;
    let creator = app.create_user("ow_creator", true);
    let fan = app.create_user("ow_fan", false);
    let intruder = app.create_user("ow_intruder", true);
    follow(&app, &fan, &creator).await;
    create_post(&app, &creator, "mine", "body", &[]).await;
    drain(&app).await;
    let id = inbox(&app, &fan, "").await.body["all_list"][0]["id"]
        .as_i64()
        .unwrap();

    let r = app
        .post(
            &format!("/feed/api/notifications/{id}/read"),
            &json!({}),
            Some(&intruder.token),
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.text);
    let r = app
        .delete(
            &format!("/feed/api/notifications/{id}"),
            Some(&intruder.token),
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.text);
    let r = app
        .post(
            "/feed/api/notifications/mark_all_as_read",
            &json!({}),
            Some(&intruder.token),
        )
        .await;
    assert_eq!(r.body["marked"], 0);
    let r = inbox(&app, &intruder, "").await;
    assert_eq!(r.body["all_count"], 0);
    assert_eq!(r.body["all_list"], json!([]));
    // Untouched.
    assert_eq!(
        int(
            &app,
            &format!("SELECT count(*) AS n FROM notifications WHERE id = {id} AND unread")
        ),
        1
    );
    // Unknown and malformed ids.
    for path in [
        "/feed/api/notifications/999999/read",
        "/feed/api/notifications/abc/read",
    ] {
        let r = app.post(path, &json!({}), Some(&fan.token)).await;
        assert_eq!(r.status, 404, "{path}: {}", r.text);
    }
    assert_eq!(
        app.delete("/feed/api/notifications/abc", Some(&fan.token))
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn comments_likes_and_follows_notify_the_creator_not_themselves() {
    let app = spawn_app().await;
    let creator = app.create_user("cl_creator", true);
    let fan = app.create_user("cl_fan", false);
    let bystander = app.create_user("cl_bystander", false);
    let gold = create_tier(&app, &creator, "Gold", 50_000).await;
    membership(&app, fan.id, gold);
    let post = create_post(&app, &creator, "Gold talk", SECRET, &[gold]).await;
    drain(&app).await;
    let before = kinds(&app, &fan);

    // A comment by a member with access: the creator is told, with the comment quoted.
    let r = app
        .post(
            "/content/api/comment/",
            &json!({"post": post, "text": "love this"}),
            Some(&fan.token),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    // The creator's own comment and like: nobody is told.
    let r = app
        .post(
            "/content/api/comment/",
            &json!({"post": post, "text": "thanks"}),
            Some(&creator.token),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = app
        .post(
            "/content/api/likes/",
            &json!({"post": post}),
            Some(&creator.token),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    // A like, then unlike and like again: one notification.
    let r = app
        .post(
            "/content/api/likes/",
            &json!({"post": post}),
            Some(&fan.token),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let like = r.body["id"].as_i64().unwrap();
    let r = app
        .post(
            "/content/api/likes/",
            &json!({"post": post}),
            Some(&fan.token),
        )
        .await;
    assert_eq!(r.status, 200, "already liked");
    let r = app
        .delete(&format!("/content/api/likes/{like}/"), Some(&fan.token))
        .await;
    assert_eq!(r.status, 204);
    let r = app
        .post(
            "/content/api/likes/",
            &json!({"post": post}),
            Some(&fan.token),
        )
        .await;
    assert_eq!(r.status, 201);
    // A comment attempt by someone without access is refused and notifies nobody.
    let r = app
        .post(
            "/content/api/comment/",
            &json!({"post": post, "text": "let me in"}),
            Some(&bystander.token),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text);
    // Follows through both seed paths; unfollow + follow again notifies once.
    follow(&app, &bystander, &creator).await;
    let r = app
        .delete(
            &format!("/feed/api/follow/{}", creator.id),
            Some(&bystander.token),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = app
        .patch(
            "/content/api/user-creator",
            &json!({"creator": creator.id, "follow": true}),
            Some(&bystander.token),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    follow(&app, &bystander, &creator).await;
    drain(&app).await;

    assert_eq!(kinds(&app, &creator), ["comment", "like", "follow"]);
    assert_eq!(
        kinds(&app, &fan),
        before,
        "the fan gets nothing for their own acts"
    );
    assert!(kinds(&app, &bystander).is_empty());

    let r = inbox(&app, &creator, "").await;
    let all = r.body["all_list"].as_array().unwrap();
    let (follow_n, like_n, comment_n) = (&all[0], &all[1], &all[2]);
    assert_eq!(comment_n["actor"], "cl_fan");
    assert_eq!(comment_n["verb"], "commented on your post");
    assert_eq!(comment_n["target"], "Gold talk");
    assert_eq!(comment_n["target_id"], post);
    assert_eq!(comment_n["action_object"], "love this");
    assert_eq!(comment_n["data"]["comment"], "love this");
    assert_eq!(like_n["verb"], "liked your post");
    assert_eq!(like_n["actor"], "cl_fan");
    assert_eq!(follow_n["actor"], "cl_bystander");
    assert_eq!(follow_n["verb"], "started following you");
    assert_eq!(follow_n["target"], "cl_creator");
    assert!(!r.text.contains(SECRET));
    assert!(!stored_text(&app).contains(SECRET));
}

#[tokio::test]
async fn rerunning_the_fanout_never_duplicates_and_large_audiences_take_one_statement() {
    let app = spawn_app().await;
    let creator = app.create_user("big_creator", true);
    let gold = create_tier(&app, &creator, "Gold", 50_000).await;
    // 10,000 followers, 500 of whom are also members, and 100 members who do not follow.
    let mut c = app.conn();
    diesel::sql_query(
        "INSERT INTO users (username, email, first_name, last_name, is_creator, email_verified)
         SELECT 'bulk' || g, 'bulk' || g || '@example.com', 'B', 'U', false, true
         FROM generate_series(1, 10100) g",
    )
    .execute(&mut c)
    .unwrap();
    diesel::sql_query(
        "INSERT INTO follows (follower_id, creator_id)
         SELECT id, $1 FROM users WHERE username ~ '^bulk[0-9]+$' AND substr(username, 5)::int <= 10000",
    )
    .bind::<BigInt, _>(creator.id)
    .execute(&mut c)
    .unwrap();
    diesel::sql_query(
        "INSERT INTO memberships (user_id, tier_id, kind, status, amount, currency, current_start, current_end, paid_count)
         SELECT id, $1, 'recurring', 'active', 50000, 'INR', now(), now() + interval '30 days', 1
         FROM users WHERE username ~ '^bulk[0-9]+$' AND substr(username, 5)::int > 9500",
    )
    .bind::<BigInt, _>(gold)
    .execute(&mut c)
    .unwrap();

    let started = Instant::now();
    let post = create_post(&app, &creator, "For everyone", "hi", &[]).await;
    drain(&app).await;
    let took = started.elapsed();
    eprintln!("fan-out of one post to 10,100 recipients: {took:?}");
    let count = |app: &TestApp| {
        int(
            app,
            &format!("SELECT count(*) AS n FROM notifications WHERE kind = 'new_post' AND post_id = {post}"),
        )
    };
    assert_eq!(count(&app), 10_100);
    assert_eq!(
        int(
            &app,
            "SELECT count(DISTINCT recipient_id) AS n FROM notifications"
        ),
        10_100
    );

    // The same event again (a job run twice after a crash, or raised twice): nothing new.
    for _ in 0..2 {
        let event = json!({"event": "post_published", "post_id": post});
        oasis_db::jobs::enqueue(&mut c, "notify.fanout", &event).unwrap();
    }
    drain(&app).await;
    assert_eq!(count(&app), 10_100);
    // Per-user reads stay fast with 10k rows in the table.
    let r = inbox(&app, &app_user(&app, "bulk42"), "?max=5").await;
    assert_eq!(r.body["all_count"], 1);

    // A heavy inbox: 20,000 notifications (half unread) for one user; the first page stays a
    // bounded read.
    diesel::sql_query(
        "INSERT INTO notifications (recipient_id, actor_id, kind, verb, event_key, unread, created_at)
         SELECT $1, $1, 'follow', 'started following you', 'load:' || g, g % 2 = 0,
                now() - make_interval(secs => g)
         FROM generate_series(1, 20000) g",
    )
    .bind::<BigInt, _>(creator.id)
    .execute(&mut c)
    .unwrap();
    diesel::sql_query("ANALYZE notifications")
        .execute(&mut c)
        .unwrap();
    let started = Instant::now();
    for _ in 0..20 {
        let r = inbox(&app, &creator, "?max=100").await;
        assert_eq!(r.body["all_count"], 20_000);
        assert_eq!(r.body["unread_count"], 10_000);
        assert_eq!(r.body["all_list"].as_array().unwrap().len(), 100);
        assert_eq!(r.body["unread_list"].as_array().unwrap().len(), 100);
    }
    eprintln!(
        "GET /feed/api/notifications/?max=100 with 20,000 stored: {:?} per request",
        started.elapsed() / 20
    );
}

/// A token for an existing user.
fn app_user(app: &TestApp, username: &str) -> TestUser {
    #[derive(QueryableByName)]
    struct Id {
        #[diesel(sql_type = BigInt)]
        id: i64,
    }
    let mut c = app.conn();
    let id = diesel::sql_query("SELECT id FROM users WHERE username = $1")
        .bind::<Text, _>(username)
        .get_result::<Id>(&mut c)
        .unwrap()
        .id;
    let token = format!("{:0>40}", format!("{id:x}beef"));
    oasis_db::identity::insert_token(&mut c, id, &token).unwrap();
    TestUser {
        id,
        username: username.into(),
        email: format!("{username}@example.com"),
        token,
    }
}

#[tokio::test]
async fn notification_routes_are_in_the_openapi_document() {
    let app = spawn_app().await;
    let r = app.get("/api/openapi.json", None).await;
    assert_eq!(r.status, 200);
    for (p, m) in [
        ("/feed/api/notifications/", "get"),
        ("/feed/api/notifications/unread_count", "get"),
        ("/feed/api/notifications/mark_all_as_read", "post"),
        ("/feed/api/notifications/{id}/read", "post"),
        ("/feed/api/notifications/{id}", "delete"),
    ] {
        assert!(
            r.body["paths"][p][m].is_object(),
            "{m} {p} missing from OpenAPI"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Billing events, through the real flows against the embedded Razorpay simulator

struct Sim {
    base: String,
    http: oasis_tests::reqwest::Client,
}

impl Sim {
    fn embedded(app: &TestApp) -> Sim {
        Sim {
            base: app.url("/_razorpay"),
            http: oasis_tests::reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
        }
    }

    async fn post(&self, path: &str, body: serde_json::Value) -> serde_json::Value {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .expect("sim reachable");
        let status = r.status();
        let v: serde_json::Value = r.json().await.expect("sim json");
        assert!(status.is_success(), "{path}: {status} {v}");
        v
    }

    async fn pay(&self, id: &str) -> serde_json::Value {
        let key = if id.starts_with("sub_") {
            "subscription_id"
        } else {
            "order_id"
        };
        self.post("/_sim/checkout", json!({ key: id, "outcome": "success" }))
            .await
    }

    /// Waits until every webhook is delivered and processed, and every fan-out done.
    async fn settle(&self, app: &TestApp) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let events: serde_json::Value = self
                .http
                .get(format!("{}/_sim/webhooks", self.base))
                .send()
                .await
                .expect("sim reachable")
                .json()
                .await
                .expect("sim json");
            let sent = events["items"].as_array().is_some_and(|items| {
                items.iter().all(|e| {
                    e["delivered"].as_bool() == Some(true) || e["dropped"].as_bool() == Some(true)
                })
            });
            let pending = int(
                app,
                "SELECT count(*) AS n FROM billing_webhook_events WHERE processed_at IS NULL",
            );
            if sent && pending == 0 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "webhooks did not settle: {events}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        drain(app).await;
    }
}

#[tokio::test]
async fn memberships_cheers_failed_payments_and_halts_notify_the_right_side() {
    let app = spawn_app().await;
    let sim = Sim::embedded(&app);
    let creator = app.create_user("bl_creator", true);
    let fan = app.create_user("bl_fan", false);
    let stranger = app.create_user("bl_stranger", false);
    let free = create_tier(&app, &creator, "Free", 0).await;
    let gold = create_tier(&app, &creator, "Gold", 40_000).await;

    // Joining the free tier: "bl_fan joined Free" (and the automatic follow is not a second
    // notification).
    let r = app
        .post(
            "/subscriptions/subscribe_to_public_tier",
            &json!({"tierID": free}),
            Some(&fan.token),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    drain(&app).await;
    assert_eq!(kinds(&app, &creator), ["membership"]);

    // A recurring membership paid at Checkout (webhooks deliver it).
    let r = app
        .post(
            "/subscriptions/create",
            &json!({"tierID": gold}),
            Some(&fan.token),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let sid = r.body["SubscriptionID"].as_str().unwrap().to_owned();
    sim.pay(&sid).await;
    sim.settle(&app).await;
    assert_eq!(kinds(&app, &creator), ["membership", "membership"]);

    // A failed renewal, then retries exhausted: the fan is told, twice, differently.
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
    cycle("pending").await;
    sim.settle(&app).await;
    cycle("halted").await;
    sim.settle(&app).await;
    // The first charge's receipt, then the warnings.
    assert_eq!(
        kinds(&app, &fan),
        ["receipt", "payment_failed", "membership_halted"]
    );

    // A cheer with a name and a message.
    cheer(&app, &sim, &fan, &creator, 12_345, "keep going").await;
    assert_eq!(kinds(&app, &creator), ["membership", "membership", "cheer"]);
    assert!(kinds(&app, &stranger).is_empty());
    assert!(
        !kinds(&app, &fan)
            .iter()
            .any(|k| k == "membership" || k == "cheer"),
        "the fan is not told about their own payments as if they were the creator"
    );

    let r = inbox(&app, &creator, "").await;
    let all = r.body["all_list"].as_array().unwrap();
    let cheer = &all[0];
    assert_eq!(cheer["kind"], "cheer");
    assert_eq!(cheer["actor"], "bl_fan");
    assert_eq!(cheer["data"]["name"], "Asha");
    assert_eq!(cheer["data"]["message"], "keep going");
    assert_eq!(cheer["data"]["amount"], 12_345);
    assert_eq!(cheer["data"]["currency"], "INR");
    assert_eq!(all[1]["verb"], "joined Gold");
    assert_eq!(all[1]["actor"], "bl_fan");
    assert_eq!(all[2]["verb"], "joined Free");
    let r = inbox(&app, &fan, "").await;
    let halted = r.body["all_list"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["kind"] == "membership_halted")
        .cloned()
        .unwrap();
    assert!(
        halted["verb"].as_str().unwrap().contains("Gold"),
        "{halted}"
    );
    assert_eq!(halted["actor"], "bl_creator");

    // A one-time purchase by another fan: "bl_buyer joined Gold"; that fan's failed cheer
    // tells the fan, not the creator.
    let buyer = app.create_user("bl_buyer", false);
    let r = app
        .post(
            "/subscriptions/create_onetime/",
            &json!({"tierID": gold, "currency": "INR"}),
            Some(&buyer.token),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let oid = r.body["SubscriptionID"].as_str().unwrap().to_owned();
    sim.pay(&oid).await;
    sim.settle(&app).await;
    let r = app
        .post(
            "/subscriptions/create_order",
            &json!({"amount": 500, "currency": "INR", "creatorID": creator.id, "message": "oops"}),
            Some(&buyer.token),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let oid = r.body["SubscriptionID"].as_str().unwrap().to_owned();
    let failed = sim
        .http
        .post(format!("{}/_sim/checkout", sim.base))
        .json(&json!({"order_id": oid, "outcome": "failure"}))
        .send()
        .await
        .expect("sim reachable");
    assert!(!failed.status().is_server_error());
    sim.settle(&app).await;
    assert_eq!(
        kinds(&app, &creator),
        ["membership", "membership", "cheer", "membership"]
    );
    assert_eq!(kinds(&app, &buyer), ["receipt", "payment_failed"]);
    let r = inbox(&app, &creator, "?max=1").await;
    assert_eq!(r.body["all_list"][0]["verb"], "joined Gold");
    assert_eq!(r.body["all_list"][0]["actor"], "bl_buyer");
    assert_eq!(r.body["all_list"][0]["data"]["membership_kind"], "one_time");
    let r = inbox(&app, &buyer, "").await;
    let n = &r.body["all_list"][0];
    assert_eq!(n["data"]["payment_kind"], "cheer");
    assert_eq!(n["data"]["amount"], 500);
    assert_eq!(n["actor"], "bl_creator");
}

/// The PostgreSQL store meets the same contract as the in-memory fake the rules are tested on.
#[tokio::test]
async fn postgres_store_meets_the_contract() {
    let app = spawn_app().await;
    let alice = app.create_user("contract_alice", false);
    let bob = app.create_user("contract_bob", false);
    let mut conn = app.conn();
    oasis_notify::contract::run_all(
        &mut oasis_db::notify::PgNotify(&mut conn),
        (alice.id, &alice.username),
        (bob.id, &bob.username),
        chrono::Utc::now(),
    );
}

// ---------------------------------------------------------------------------------------------
// Settings and emails over a real SMTP server on loopback

/// Waits (bounded) until every `notify.email` job is done.
async fn drain_mail(app: &TestApp) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while int(
        app,
        "SELECT count(*) AS n FROM jobs WHERE kind = 'notify.email' AND done_at IS NULL",
    ) > 0
    {
        assert!(Instant::now() < deadline, "notify.email jobs not done");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn mails_to(smtp: &oasis_tests::smtp::SmtpServer, who: &TestUser) -> Vec<String> {
    smtp.messages()
        .into_iter()
        .filter(|m| m.to == [who.email.clone()])
        .map(|m| m.data)
        .collect()
}

/// A header's value, unfolded.
fn header(mail: &str, name: &str) -> Option<String> {
    let head = mail.split("\r\n\r\n").next()?;
    let unfolded = head.replace("\r\n ", " ").replace("\r\n\t", " ");
    unfolded
        .split("\r\n")
        .find_map(|l| l.strip_prefix(&format!("{name}: ")).map(str::to_owned))
}

/// A cheer named "Asha" paid at Checkout and confirmed; returns its payment id once its
/// webhooks, fan-outs and mails are done.
async fn cheer(
    app: &TestApp,
    sim: &Sim,
    fan: &TestUser,
    creator: &TestUser,
    amount: i64,
    message: &str,
) -> String {
    let r = app
        .post(
            "/subscriptions/create_order",
            &json!({"amount": amount, "currency": "INR", "creatorID": creator.id, "name": "Asha", "message": message}),
            Some(&fan.token),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let oid = r.body["SubscriptionID"].as_str().unwrap().to_owned();
    let paid = sim.pay(&oid).await;
    let r = app
        .post(
            "/subscriptions/save_order",
            &json!({"name": "Asha", "message": message, "amount": amount,
                    "razorpay_payment_id": paid["razorpay_payment_id"],
                    "razorpay_signature": paid["razorpay_signature"], "razorpay_order_id": oid}),
            Some(&fan.token),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    sim.settle(app).await;
    drain_mail(app).await;
    paid["razorpay_payment_id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn settings_receipts_tips_and_one_click_unsubscribe_over_smtp() {
    let smtp = oasis_tests::smtp::SmtpServer::start().await;
    let url = smtp.url();
    let app = oasis_tests::spawn_app_with(|s| s.mail.smtp_url = Some(url.into())).await;
    let sim = Sim::embedded(&app);
    let creator = app.create_user("ml_creator", true);
    let fan = app.create_user("ml_fan", false);
    let path = "/feed/api/notification-settings/";

    // Defaults, and what cannot be changed.
    let r = app.get(path, Some(&fan.token)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["receipts"], json!({"in_app": true, "email": true}));
    assert_eq!(r.body["social"], json!({"in_app": true, "email": false}));
    assert_eq!(r.body.as_object().unwrap().len(), 7);
    assert_eq!(app.get(path, None).await.status, 401);
    let r = app
        .patch(
            path,
            &json!({"new_posts": {"email": false}, "receipts": {"email": false}}),
            Some(&fan.token),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(r.body["receipts"][0]
        .as_str()
        .unwrap()
        .contains("cannot be turned off"));
    for bad in [
        json!({"security": {"email": false}}),
        json!({"social": {"email": true}}),
        json!({"bogus": {}}),
        json!({"receipts": {"email": "yes"}}),
        json!([]),
    ] {
        let r = app.patch(path, &bad, Some(&fan.token)).await;
        assert_eq!(r.status, 400, "{bad}: {}", r.text);
    }
    assert_eq!(
        app.get(path, Some(&fan.token)).await.body["new_posts"]["email"],
        true,
        "nothing stored"
    );

    // A cheer: the fan's receipt (amount, payment id, creator) and the creator's tip mail,
    // each plain text + HTML; only the optional one has RFC 8058 headers.
    let pay1 = cheer(&app, &sim, &fan, &creator, 12_345, "thanks").await;
    let fan_mails = mails_to(&smtp, &fan);
    assert_eq!(fan_mails.len(), 1, "one receipt");
    let receipt = &fan_mails[0];
    assert_eq!(
        header(receipt, "Subject").as_deref(),
        Some("Your Oasis receipt")
    );
    assert!(
        receipt.contains("INR 123.45") && receipt.contains(&pay1) && receipt.contains("ml_creator"),
        "{receipt}"
    );
    assert!(receipt.contains("multipart/alternative") && receipt.contains("text/html"));
    assert!(
        header(receipt, "List-Unsubscribe").is_none(),
        "receipts cannot be unsubscribed"
    );
    let creator_mails = mails_to(&smtp, &creator);
    assert_eq!(creator_mails.len(), 1, "one tip mail");
    let tip = &creator_mails[0];
    assert!(tip.contains("INR 123.45"), "{tip}");
    assert_eq!(
        header(tip, "List-Unsubscribe-Post").as_deref(),
        Some("List-Unsubscribe=One-Click")
    );
    let link = header(tip, "List-Unsubscribe").unwrap();
    let link = link
        .trim_start_matches('<')
        .trim_end_matches('>')
        .to_owned();
    assert!(link.starts_with(&app.address), "{link}");
    assert!(tip.contains(&link), "the link is in the body too");
    assert!(!link.contains(&creator.token));

    // The link works without logging in: GET is a form (changes nothing), POST unsubscribes.
    let get = app.client.get(&link).send().await.unwrap();
    assert_eq!(get.status(), 200);
    assert!(get.text().await.unwrap().contains("method=\"post\""));
    assert_eq!(
        app.get(path, Some(&creator.token)).await.body["creator_activity"]["email"],
        true
    );
    let post = app
        .client
        .post(&link)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 200);
    let r = app.get(path, Some(&creator.token)).await;
    assert_eq!(
        r.body["creator_activity"],
        json!({"in_app": true, "email": false})
    );
    let forged = link.replacen(&format!("/{}.", creator.id), &format!("/{}.", fan.id), 1);
    assert_ne!(forged, link);
    assert_eq!(app.client.post(&forged).send().await.unwrap().status(), 400);

    // The fan hides receipts in-app: the next receipt is mailed but not in the inbox; the
    // creator's next tip is in-app only.
    let r = app
        .patch(
            path,
            &json!({"receipts": {"in_app": false}}),
            Some(&fan.token),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["receipts"], json!({"in_app": false, "email": true}));
    let before = inbox(&app, &fan, "").await.body["all_count"]
        .as_i64()
        .unwrap();
    let pay2 = cheer(&app, &sim, &fan, &creator, 500, "thanks").await;
    let fan_mails = mails_to(&smtp, &fan);
    assert_eq!(fan_mails.len(), 2);
    assert!(fan_mails[1].contains(&pay2) && fan_mails[1].contains("INR 5.00"));
    assert_eq!(
        inbox(&app, &fan, "").await.body["all_count"]
            .as_i64()
            .unwrap(),
        before,
        "hidden in-app"
    );
    assert_eq!(
        mails_to(&smtp, &creator).len(),
        1,
        "unsubscribed: no second tip mail"
    );
    let r = inbox(&app, &creator, "").await;
    assert_eq!(r.body["all_list"][0]["kind"], "cheer", "still in-app");
    // Jobs carried ids only.
    assert_eq!(
        int(&app, "SELECT count(*) AS n FROM jobs WHERE kind = 'notify.email' AND payload::text NOT LIKE '{\"notification_id\": %}'"),
        0
    );
    app.stop().await;
}

/// The database accepts every notification kind the code knows, and no other: a migration that
/// rewrites the kinds' CHECK cannot drop one (as a merge of two new kinds once did).
#[tokio::test]
async fn the_database_accepts_exactly_the_kinds_the_code_knows() {
    let app = spawn_app().await;
    let creator = app.create_user("kinds_creator", true);
    let insert = |kind: &str| {
        diesel::sql_query(format!(
            "INSERT INTO notifications (recipient_id, kind, verb, event_key) \
             VALUES ({}, '{kind}', 'v', 'kinds:{kind}')",
            creator.id
        ))
        .execute(&mut app.conn())
    };
    for kind in oasis_notify::Kind::ALL {
        assert!(insert(kind.as_str()).is_ok(), "{} refused", kind.as_str());
    }
    assert!(insert("not_a_kind").is_err());
}

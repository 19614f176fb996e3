//! Catalog: tiers, posts gated by tiers, likes, comments, media — through the real server.
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use oasis_tests::{json, spawn_app, spawn_app_with, Resp, TestApp, TestUser};
use serde_json::Value;

fn count(app: &TestApp, sql: &str) -> i64 {
    app.query_i64(sql)
}

fn text_of(app: &TestApp, sql: &str) -> String {
    app.query_text(sql)
}

/// Gives `user` access to `tier` the way billing records it: an active one-time membership.
/// Waits until the server heard of it (another connection's write reaches its read cache).
async fn grant(app: &TestApp, user: &TestUser, tier: i64) {
    diesel::sql_query(
        "INSERT INTO memberships (user_id, tier_id, kind, status, amount, currency, current_start, current_end, paid_count)
         VALUES ($1, $2, 'one_time', 'active', 50000, 'INR', now(), now() + interval '30 days', 1)",
    )
    .bind::<BigInt, _>(user.id)
    .bind::<BigInt, _>(tier)
    .execute(&mut app.conn())
    .expect("grant membership");
    app.settle().await;
}

/// Ends every membership of `user` (paid period over), and waits until the server heard of it.
async fn revoke(app: &TestApp, user: &TestUser) {
    diesel::sql_query(
        "UPDATE memberships SET status = 'expired', current_end = now() - interval '1 day' WHERE user_id = $1",
    )
    .bind::<BigInt, _>(user.id)
    .execute(&mut app.conn())
    .expect("revoke");
    app.settle().await;
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

async fn create_post(app: &TestApp, who: &TestUser, title: &str, tiers: &[i64]) -> Value {
    let r = app
        .post(
            "/content/api/content/",
            &json!({"title": title, "body": format!("body of {title}"), "tiers": tiers}),
            Some(&who.token),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.body
}

fn multipart(filename: &str, bytes: &[u8]) -> (String, Vec<u8>) {
    let boundary = "----oasis-test-boundary-7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

async fn upload(app: &TestApp, who: &TestUser, filename: &str, bytes: &[u8]) -> Resp {
    let (ct, body) = multipart(filename, bytes);
    app.send(
        app.client
            .post(app.url("/content/api/media/"))
            .header("Content-Type", ct)
            .header("Authorization", format!("Token {}", who.token))
            .body(body),
    )
    .await
}

fn png(extra: usize) -> Vec<u8> {
    let mut v =
        b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR\0\0\0\x01\0\0\0\x01\x08\x02\0\0\0\x90wS\xde".to_vec();
    v.extend(std::iter::repeat_n(7u8, extra));
    v.extend_from_slice(b"\0\0\0\0IEND\xAE\x42\x60\x82");
    v
}

fn pdf(text: &str) -> Vec<u8> {
    format!("%PDF-1.4\n1 0 obj << >> endobj\n% {text}\ntrailer << >>\n%%EOF\n").into_bytes()
}

/// Files stored under the media folder (excluding the temp folder).
fn stored_files(app: &TestApp) -> Vec<std::path::PathBuf> {
    let root = app.data_dir.path().join("media");
    let mut out = Vec::new();
    let Ok(dirs) = std::fs::read_dir(&root) else {
        return out;
    };
    for d in dirs.flatten() {
        let p = d.path();
        if p.is_dir() {
            for f in std::fs::read_dir(&p).unwrap().flatten() {
                out.push(f.path());
            }
        }
    }
    out
}

// ------------------------------------------------------------------------------------------
// Tiers

#[tokio::test]
async fn tiers_crud_for_creators_with_owner_only_edits() {
    let app = spawn_app().await;
    let alice = app.create_user("alice", true);
    let bob = app.create_user("bob", true);
    let fan = app.create_user("fan", false);

    // Fans cannot create tiers; anonymous callers are 401.
    let body =
        json!({"name": "Gold", "price": 50000, "currency": "INR", "benefits": ["early access"]});
    let r = app
        .post("/content/api/tiers", &body, Some(&fan.token))
        .await;
    assert_eq!(r.status, 403, "{}", r.text);
    let r = app.post("/content/api/tiers/", &body, None).await;
    assert_eq!(r.status, 401);
    assert_eq!(count(&app, "SELECT count(*) AS n FROM tiers"), 0);

    let r = app
        .post("/content/api/tiers", &body, Some(&alice.token))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let gold = r.body["id"].as_i64().unwrap();
    assert_eq!(r.body["creator"], alice.id);
    assert_eq!(r.body["price"], 50000);
    assert_eq!(r.body["currency"], "INR");
    assert_eq!(r.body["benefits"], json!(["early access"]));
    assert_eq!(r.body["is_active"], true);
    assert_eq!(r.body["subscriber_count"], 0);
    assert!(r.body["created_at"].is_string());

    // Validation: DRF field errors.
    let r = app
        .post(
            "/content/api/tiers/",
            &json!({"price": -1, "currency": "EUR"}),
            Some(&alice.token),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(r.body["name"].is_array());
    assert!(r.body["currency"].is_array());
    let r = app
        .post(
            "/content/api/tiers/",
            &json!({"name": "x", "price": "cheap"}),
            Some(&alice.token),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    // One active free tier per creator.
    let free = create_tier(&app, &alice, "Free", 0).await;
    let r = app
        .post(
            "/content/api/tiers/",
            &json!({"name": "Free 2", "price": 0}),
            Some(&alice.token),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(r.body["price"].is_array());

    // Someone else's tier: 403 and nothing changed.
    let r = app
        .patch(
            &format!("/content/api/tiers/{gold}/"),
            &json!({"price": 100}),
            Some(&bob.token),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text);
    let r = app
        .delete(&format!("/content/api/tiers/{gold}"), Some(&bob.token))
        .await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert_eq!(
        count(
            &app,
            &format!("SELECT price AS n FROM tiers WHERE id = {gold}")
        ),
        50000
    );

    // Owner edits: price change and deactivation.
    let r = app
        .patch(
            &format!("/content/api/tiers/{gold}"),
            &json!({"price": 60000, "is_active": false, "benefits": ["x", "y"]}),
            Some(&alice.token),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["price"], 60000);
    assert_eq!(r.body["is_active"], false);
    assert_eq!(r.body["benefits"], json!(["x", "y"]));

    // Anyone lists a creator's ACTIVE tiers; the creator lists all of their own.
    let r = app
        .get(&format!("/content/api/tiers/?creator={}", alice.id), None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["count"], 1);
    assert_eq!(r.body["results"][0]["id"], free);
    assert!(r.body["next"].is_null() && r.body["previous"].is_null());
    let r = app.get("/content/api/tiers", Some(&alice.token)).await;
    assert_eq!(r.body["count"], 2, "{}", r.text);
    let r = app.get("/content/api/tiers/", Some(&bob.token)).await;
    assert_eq!(r.body["count"], 0);
    let r = app.get("/content/api/tiers/", None).await;
    assert_eq!(r.status, 401);

    // Retrieve, 404, 405.
    let r = app.get(&format!("/content/api/tiers/{gold}/"), None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["name"], "Gold");
    let r = app.get("/content/api/tiers/999999/", None).await;
    assert_eq!(r.status, 404);
    let r = app
        .put(
            &format!("/content/api/tiers/{gold}/"),
            &json!({}),
            Some(&alice.token),
        )
        .await;
    assert_eq!(r.status, 405);

    // Owner deletes.
    let r = app
        .delete(&format!("/content/api/tiers/{gold}/"), Some(&alice.token))
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(
        count(
            &app,
            &format!("SELECT count(*) AS n FROM tiers WHERE id = {gold}")
        ),
        0
    );
}

#[tokio::test]
async fn tier_with_paying_members_or_gating_posts_cannot_be_deleted() {
    let app = spawn_app().await;
    let alice = app.create_user("alice", true);
    let fan = app.create_user("fan", false);
    let gold = create_tier(&app, &alice, "Gold", 50000).await;
    grant(&app, &fan, gold).await;

    let r = app.get(&format!("/content/api/tiers/{gold}/"), None).await;
    assert_eq!(r.body["subscriber_count"], 1, "{}", r.text);
    let r = app
        .delete(&format!("/content/api/tiers/{gold}/"), Some(&alice.token))
        .await;
    assert_eq!(r.status, 409, "{}", r.text);
    assert_eq!(r.body["code"], "tier_has_members");
    assert_eq!(
        count(
            &app,
            &format!("SELECT count(*) AS n FROM tiers WHERE id = {gold}")
        ),
        1
    );
    // Deactivation is allowed, and the member keeps access until the paid period ends.
    let post = create_post(&app, &alice, "gated", &[gold]).await;
    let r = app
        .patch(
            &format!("/content/api/tiers/{gold}/"),
            &json!({"is_active": false}),
            Some(&alice.token),
        )
        .await;
    assert_eq!(r.status, 200);
    let r = app
        .get(
            &format!("/content/api/content/{}/", post["id"]),
            Some(&fan.token),
        )
        .await;
    assert_eq!(r.body["locked"], false, "{}", r.text);

    // A tier without members that gates a post: deleting it would make the post public.
    revoke(&app, &fan).await;
    let r = app
        .delete(&format!("/content/api/tiers/{gold}/"), Some(&alice.token))
        .await;
    assert_eq!(r.status, 409, "{}", r.text);
    assert_eq!(r.body["code"], "tier_in_use");
    assert_eq!(count(&app, "SELECT count(*) AS n FROM post_tiers"), 1);
}

// ------------------------------------------------------------------------------------------
// Posts and the visibility rule

#[tokio::test]
async fn visibility_rule_across_posts_comments_and_likes() {
    let app = spawn_app().await;
    let alice = app.create_user("alice", true);
    let member = app.create_user("member", false);
    let other = app.create_user("other", false);
    let gold = create_tier(&app, &alice, "Gold", 50000).await;
    let silver = create_tier(&app, &alice, "Silver", 20000).await;
    grant(&app, &member, silver).await;
    let public = create_post(&app, &alice, "public", &[]).await;
    let gated = create_post(&app, &alice, "gated", &[gold, silver]).await;
    assert_eq!(gated["tiers"], json!([gold, silver]));
    assert_eq!(gated["locked"], false, "the creator sees their own post");
    let (pub_id, gated_id) = (
        public["id"].as_i64().unwrap(),
        gated["id"].as_i64().unwrap(),
    );

    // Who sees the gated post's body.
    let cases: [(&str, Option<&str>, bool); 4] = [
        ("anonymous", None, false),
        ("owner", Some(&alice.token), true),
        ("entitled", Some(&member.token), true),
        ("not entitled", Some(&other.token), false),
    ];
    for (who, token, visible) in cases {
        let r = app
            .get(&format!("/content/api/content/{gated_id}/"), token)
            .await;
        assert_eq!(r.status, 200, "{who}: {}", r.text);
        assert_eq!(r.body["locked"], !visible, "{who}");
        assert_eq!(r.body["title"], "gated", "{who}: title is always shown");
        assert_eq!(r.body["tiers"], json!([gold, silver]), "{who}");
        if visible {
            assert_eq!(r.body["body"], "body of gated", "{who}");
        } else {
            assert!(r.body["body"].is_null(), "{who}: {}", r.text);
        }
        // The public post is visible to everyone.
        let r = app
            .get(&format!("/content/api/content/{pub_id}"), token)
            .await;
        assert_eq!(r.body["locked"], false, "{who}");
        assert_eq!(r.body["body"], "body of public", "{who}");

        // The creator's page: newest first, same rule.
        let r = app
            .get(
                &format!("/content/api/content/?creator={}", alice.id),
                token,
            )
            .await;
        assert_eq!(r.body["count"], 2, "{who}");
        assert_eq!(r.body["results"][0]["id"], gated_id, "{who}: newest first");
        assert_eq!(r.body["results"][0]["locked"], !visible, "{who}");
        assert_eq!(r.body["results"][1]["locked"], false, "{who}");

        // Comments and likes of the gated post: readable only when visible.
        let r = app
            .get(&format!("/content/api/comment/?post={gated_id}"), token)
            .await;
        assert_eq!(
            r.status,
            if visible { 200 } else { 403 },
            "{who}: {}",
            r.text
        );
        let r = app
            .get(&format!("/content/api/likes/?post={gated_id}"), token)
            .await;
        assert_eq!(
            r.status,
            if visible { 200 } else { 403 },
            "{who}: {}",
            r.text
        );
        let r = app
            .get(&format!("/content/api/comment/?post={pub_id}"), token)
            .await;
        assert_eq!(r.status, 200, "{who}");
    }

    // Writing likes/comments on a locked post: 403, nothing stored.
    let r = app
        .post(
            "/content/api/likes/",
            &json!({"post": gated_id}),
            Some(&other.token),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert_eq!(r.body["code"], "post_locked");
    let r = app
        .post(
            "/content/api/comment/",
            &json!({"post": gated_id, "text": "hi"}),
            Some(&other.token),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert_eq!(count(&app, "SELECT count(*) AS n FROM likes"), 0);
    assert_eq!(count(&app, "SELECT count(*) AS n FROM comments"), 0);
    // Anonymous writes: 401.
    let r = app
        .post("/content/api/likes/", &json!({"post": pub_id}), None)
        .await;
    assert_eq!(r.status, 401);

    // The entitled member likes and comments; counts show up for everyone, body still locked.
    let r = app
        .post(
            "/content/api/likes/",
            &json!({"post": gated_id}),
            Some(&member.token),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let like_id = r.body["id"].as_i64().unwrap();
    let r = app
        .post(
            "/content/api/comment/",
            &json!({"post": gated_id, "text": "great"}),
            Some(&member.token),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let comment_id = r.body["id"].as_i64().unwrap();
    assert_eq!(r.body["username"], "member");
    let r = app
        .get(
            &format!("/content/api/content/{gated_id}/"),
            Some(&member.token),
        )
        .await;
    assert_eq!(r.body["like_count"], 1);
    assert_eq!(r.body["comment_count"], 1);
    assert_eq!(r.body["liked_by_me"], true);
    let r = app
        .get(
            &format!("/content/api/content/{gated_id}/"),
            Some(&other.token),
        )
        .await;
    assert_eq!(r.body["liked_by_me"], false);
    assert!(r.body["body"].is_null());
    // A single comment/like of a locked post is not readable either.
    let r = app
        .get(
            &format!("/content/api/comment/{comment_id}/"),
            Some(&other.token),
        )
        .await;
    assert_eq!(r.status, 403);
    let r = app
        .get(
            &format!("/content/api/comment/{comment_id}/"),
            Some(&member.token),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["text"], "great");
    let r = app
        .get(&format!("/content/api/likes/{like_id}/"), None)
        .await;
    assert_eq!(r.status, 403);

    // When access ends, the member is locked out everywhere.
    revoke(&app, &member).await;
    let r = app
        .get(
            &format!("/content/api/content/{gated_id}/"),
            Some(&member.token),
        )
        .await;
    assert_eq!(r.body["locked"], true);
    let r = app
        .patch(
            &format!("/content/api/comment/{comment_id}/"),
            &json!({"text": "edit"}),
            Some(&member.token),
        )
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(
        text_of(
            &app,
            &format!("SELECT text AS t FROM comments WHERE id = {comment_id}")
        ),
        "great"
    );
}

#[tokio::test]
async fn post_ownership_and_tier_rules() {
    let app = spawn_app().await;
    let alice = app.create_user("alice", true);
    let bob = app.create_user("bob", true);
    let fan = app.create_user("fan", false);
    let a1 = create_tier(&app, &alice, "A1", 10000).await;
    let a2 = create_tier(&app, &alice, "A2", 20000).await;
    let b1 = create_tier(&app, &bob, "B1", 10000).await;

    // Only creators post.
    let r = app
        .post(
            "/content/api/content/",
            &json!({"title": "t"}),
            Some(&fan.token),
        )
        .await;
    assert_eq!(r.status, 403);
    // Tiers must be the creator's own (400, nothing created).
    let r = app
        .post(
            "/content/api/content/",
            &json!({"title": "t", "body": "b", "tiers": [a1, b1]}),
            Some(&alice.token),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(r.body["tiers"].is_array());
    let r = app
        .post(
            "/content/api/content/",
            &json!({"title": "t", "tiers": [987654]}),
            Some(&alice.token),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    let r = app
        .post(
            "/content/api/content/",
            &json!({"body": "no title"}),
            Some(&alice.token),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["title"][0], "This field is required.");
    assert_eq!(count(&app, "SELECT count(*) AS n FROM posts"), 0);

    let post = create_post(&app, &alice, "mine", &[a1, a2]).await;
    let id = post["id"].as_i64().unwrap();

    // Someone else's post: 403, nothing changed.
    let r = app
        .patch(
            &format!("/content/api/content/{id}/"),
            &json!({"title": "pwned", "tiers": []}),
            Some(&bob.token),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text);
    let r = app
        .delete(&format!("/content/api/content/{id}"), Some(&bob.token))
        .await;
    assert_eq!(r.status, 403);
    let r = app
        .delete_json(
            &format!("/content/api/remove-tiers/{id}/"),
            &json!({"tiers": [a1]}),
            Some(&bob.token),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert_eq!(
        text_of(
            &app,
            &format!("SELECT title AS t FROM posts WHERE id = {id}")
        ),
        "mine"
    );
    assert_eq!(
        count(
            &app,
            &format!("SELECT count(*) AS n FROM post_tiers WHERE post_id = {id}")
        ),
        2
    );

    // remove-tiers: foreign or unknown tiers → 400 and nothing changed.
    for bad in [
        json!({"tiers": [a1, b1]}),
        json!({"tiers": [a1, 424242]}),
        json!({}),
        json!({"tiers": []}),
    ] {
        let r = app
            .delete_json(
                &format!("/content/api/remove-tiers/{id}/"),
                &bad,
                Some(&alice.token),
            )
            .await;
        assert_eq!(r.status, 400, "{bad}: {}", r.text);
    }
    assert_eq!(
        count(
            &app,
            &format!("SELECT count(*) AS n FROM post_tiers WHERE post_id = {id}")
        ),
        2
    );
    let r = app
        .delete_json(
            &format!("/content/api/remove-tiers/{id}"),
            &json!({"tiers": [a1]}),
            Some(&alice.token),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["tiers"], json!([a2]));
    let r = app
        .delete_json(
            "/content/api/remove-tiers/999999/",
            &json!({"tiers": [a1]}),
            Some(&alice.token),
        )
        .await;
    assert_eq!(r.status, 404);

    // Owner edits: tiers replaced (must be own), title changed.
    let r = app
        .patch(
            &format!("/content/api/content/{id}/"),
            &json!({"tiers": [b1]}),
            Some(&alice.token),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    let r = app
        .patch(
            &format!("/content/api/content/{id}/"),
            &json!({"title": "renamed", "tiers": []}),
            Some(&alice.token),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["title"], "renamed");
    assert_eq!(r.body["tiers"], json!([]));
    // Now public: a fan sees the body.
    let r = app
        .get(&format!("/content/api/content/{id}/"), Some(&fan.token))
        .await;
    assert_eq!(r.body["body"], "body of mine");

    // Owner deletes; likes/comments go with it.
    app.post(
        "/content/api/likes/",
        &json!({"post": id}),
        Some(&fan.token),
    )
    .await;
    let r = app
        .delete(&format!("/content/api/content/{id}/"), Some(&alice.token))
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(count(&app, "SELECT count(*) AS n FROM posts"), 0);
    assert_eq!(count(&app, "SELECT count(*) AS n FROM likes"), 0);
    let r = app.get(&format!("/content/api/content/{id}/"), None).await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn posts_list_is_paginated_newest_first() {
    let app = spawn_app().await;
    let alice = app.create_user("alice", true);
    let bob = app.create_user("bob", true);
    for i in 0..5 {
        create_post(&app, &alice, &format!("a{i}"), &[]).await;
    }
    create_post(&app, &bob, "b0", &[]).await;
    let r = app
        .get(
            &format!("/content/api/content/?creator={}&page_size=2", alice.id),
            None,
        )
        .await;
    assert_eq!(r.body["count"], 5, "{}", r.text);
    let titles: Vec<&str> = r.body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, ["a4", "a3"]);
    let next = r.body["next"].as_str().unwrap().to_owned();
    assert!(
        next.contains("page=2") && next.contains("page_size=2"),
        "{next}"
    );
    assert!(r.body["previous"].is_null());
    let r = app.send(app.client.get(&next)).await;
    let titles: Vec<&str> = r.body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, ["a2", "a1"]);
    assert!(r.body["previous"].is_string());
    let r = app.get("/content/api/content", None).await;
    assert_eq!(r.body["count"], 6);
    assert_eq!(r.body["results"][0]["title"], "b0");
    let r = app.get("/content/api/content/?page=0", None).await;
    assert_eq!(r.status, 400);
    let r = app.get("/content/api/content/?creator=abc", None).await;
    assert_eq!(r.status, 400);
}

// ------------------------------------------------------------------------------------------
// Likes and comments

#[tokio::test]
async fn concurrent_likes_create_exactly_one() {
    let app = spawn_app().await;
    let alice = app.create_user("alice", true);
    let fan = app.create_user("fan", false);
    let post = create_post(&app, &alice, "p", &[]).await;
    let id = post["id"].as_i64().unwrap();
    let body = json!({"post": id});
    let reqs = (0..12).map(|_| app.post("/content/api/likes/", &body, Some(&fan.token)));
    let results = futures_join_all(reqs).await;
    let created = results.iter().filter(|r| r.status == 201).count();
    let existing = results.iter().filter(|r| r.status == 200).count();
    assert_eq!(
        created,
        1,
        "{:?}",
        results.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    assert_eq!(existing, 11);
    let ids: std::collections::HashSet<i64> = results
        .iter()
        .map(|r| r.body["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids.len(), 1, "every answer names the same like");
    assert_eq!(count(&app, "SELECT count(*) AS n FROM likes"), 1);

    // Unknown post: field error; unlike by someone else: 403; by the author: 204.
    let r = app
        .post(
            "/content/api/likes/",
            &json!({"post": 999999}),
            Some(&fan.token),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(r.body["post"].is_array());
    let like = *ids.iter().next().unwrap();
    let r = app
        .delete(&format!("/content/api/likes/{like}/"), Some(&alice.token))
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(count(&app, "SELECT count(*) AS n FROM likes"), 1);
    let r = app
        .get(&format!("/content/api/likes/?post={id}"), None)
        .await;
    assert_eq!(r.body["count"], 1);
    assert_eq!(r.body["results"][0]["user"], fan.id);
    let r = app
        .delete(&format!("/content/api/likes/{like}"), Some(&fan.token))
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(count(&app, "SELECT count(*) AS n FROM likes"), 0);
}

async fn futures_join_all<F: std::future::Future<Output = Resp>>(
    futs: impl Iterator<Item = F>,
) -> Vec<Resp> {
    let handles: Vec<_> = futs.collect();
    let mut out = Vec::new();
    // Drive them concurrently on this task.
    let mut pinned: Vec<std::pin::Pin<Box<F>>> = handles.into_iter().map(Box::pin).collect();
    let mut done: Vec<Option<Resp>> = pinned.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut all = true;
        for (i, f) in pinned.iter_mut().enumerate() {
            if done[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(r) => done[i] = Some(r),
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
        out.push(d.unwrap());
    }
    out
}

#[tokio::test]
async fn comments_validation_pagination_and_ownership() {
    let app = spawn_app().await;
    let alice = app.create_user("alice", true);
    let fan = app.create_user("fan", false);
    let other = app.create_user("other", false);
    let post = create_post(&app, &alice, "p", &[]).await;
    let id = post["id"].as_i64().unwrap();

    for (text, ok) in [
        ("", false),
        ("   ", false),
        (&"x".repeat(5001)[..], false),
        (&"é".repeat(5000)[..], true),
    ] {
        let r = app
            .post(
                "/content/api/comment/",
                &json!({"post": id, "text": text}),
                Some(&fan.token),
            )
            .await;
        assert_eq!(
            r.status,
            if ok { 201 } else { 400 },
            "len {}: {}",
            text.len(),
            r.text
        );
        if !ok {
            assert!(r.body["text"].is_array());
        }
    }
    let r = app
        .post(
            "/content/api/comment/",
            &json!({"post": id}),
            Some(&fan.token),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["text"][0], "This field is required.");
    // NUL cannot be stored in PostgreSQL TEXT: a field error, never a 500.
    let r = app
        .post(
            "/content/api/comment/",
            &json!({"post": id, "text": "a\0b"}),
            Some(&fan.token),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    let r = app
        .post(
            "/content/api/tiers/",
            &json!({"name": "x\0", "price": 0, "benefits": ["\0"]}),
            Some(&alice.token),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(r.body["name"].is_array() && r.body["benefits"].is_array());
    for i in 0..3 {
        let r = app
            .post(
                "/content/api/comment/",
                &json!({"post": id, "text": format!("c{i}")}),
                Some(&other.token),
            )
            .await;
        assert_eq!(r.status, 201);
    }
    // Oldest first, paginated.
    let r = app
        .get(
            &format!("/content/api/comment/?post={id}&page_size=2&page=2"),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["count"], 4);
    assert_eq!(r.body["results"][0]["text"], "c1");
    assert_eq!(r.body["results"][1]["text"], "c2");
    assert!(
        r.body["next"].is_null() && r.body["previous"].is_string(),
        "{}",
        r.text
    );
    let r = app.get("/content/api/comment/", None).await;
    assert_eq!(r.status, 400, "post is required");

    let c0: i64 = count(&app, "SELECT min(id) AS n FROM comments WHERE text = 'c0'");
    // Author edits; others cannot (403, unchanged).
    let r = app
        .patch(
            &format!("/content/api/comment/{c0}/"),
            &json!({"text": "hijack"}),
            Some(&fan.token),
        )
        .await;
    assert_eq!(r.status, 403);
    let r = app
        .patch(
            &format!("/content/api/comment/{c0}/"),
            &json!({"text": "hijack"}),
            Some(&alice.token),
        )
        .await;
    assert_eq!(
        r.status, 403,
        "the post's creator does not edit others' words"
    );
    assert_eq!(
        text_of(
            &app,
            &format!("SELECT text AS t FROM comments WHERE id = {c0}")
        ),
        "c0"
    );
    let r = app
        .patch(
            &format!("/content/api/comment/{c0}"),
            &json!({"text": "c0 edited"}),
            Some(&other.token),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["text"], "c0 edited");
    let r = app
        .patch(
            &format!("/content/api/comment/{c0}"),
            &json!({"text": ""}),
            Some(&other.token),
        )
        .await;
    assert_eq!(r.status, 400);

    // Delete: not by a bystander; by the post's creator or the author.
    let r = app
        .delete(&format!("/content/api/comment/{c0}/"), Some(&fan.token))
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(
        count(
            &app,
            &format!("SELECT count(*) AS n FROM comments WHERE id = {c0}")
        ),
        1
    );
    let r = app
        .delete(&format!("/content/api/comment/{c0}/"), Some(&alice.token))
        .await;
    assert_eq!(r.status, 204);
    let c1: i64 = count(&app, "SELECT min(id) AS n FROM comments WHERE text = 'c1'");
    let r = app
        .delete(&format!("/content/api/comment/{c1}/"), Some(&other.token))
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(count(&app, "SELECT count(*) AS n FROM comments"), 2);
    let r = app.get(&format!("/content/api/comment/{c1}/"), None).await;
    assert_eq!(r.status, 404);
}

// ------------------------------------------------------------------------------------------
// Media

#[tokio::test]
async fn media_uploads_are_sniffed_limited_and_stored_by_hash() {
    let app = spawn_app_with(|s| {
        s.max_image_bytes = 2_000;
        s.max_attachment_bytes = 8_000;
    })
    .await;
    let alice = app.create_user("alice", true);

    // A valid PNG named .txt is still a PNG (content, not name).
    let img = png(100);
    let r = upload(&app, &alice, "pic.txt", &img).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["kind"], "image");
    assert_eq!(r.body["content_type"], "image/png");
    assert_eq!(r.body["size"], img.len());
    let file = r.body["file"].as_str().unwrap().to_owned();
    assert!(file.ends_with(&format!("/content/api/media/{}/file", r.body["id"])));
    // Its uploader gets it at its stable URL (others only once it is attached or a profile
    // picture: media_is_private_until_attached_to_a_visible_post_or_a_profile_picture).
    let got = app
        .send(
            app.client
                .get(&file)
                .header("Authorization", format!("Token {}", alice.token)),
        )
        .await;
    assert_eq!(got.status, 200);
    assert_eq!(got.header("content-type"), Some("image/png"));
    let hash = r.body["sha256"].as_str().unwrap().to_owned();
    let path = app
        .data_dir
        .path()
        .join("media")
        .join(&hash[..2])
        .join(&hash);
    assert_eq!(std::fs::read(&path).unwrap(), img, "stored under its hash");
    // The same bytes again: a second row, one file.
    let r = upload(&app, &alice, "again.png", &img).await;
    assert_eq!(r.status, 201);
    assert_eq!(stored_files(&app).len(), 1);

    let rows_before = count(&app, "SELECT count(*) AS n FROM media");
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("big.png", png(3_000), 413),              // image over the image limit
        ("big.pdf", pdf(&"x".repeat(9_000)), 413), // attachment over its limit
        (
            "notes.txt",
            b"just some text, not a file type we take".to_vec(),
            415,
        ),
        (
            "fake.png",
            b"<html><script>alert(1)</script></html>".to_vec(),
            415,
        ),
        ("cut.png", png(100)[..60].to_vec(), 400), // truncated
        ("cut.pdf", pdf("x")[..20].to_vec(), 400),
        ("empty.png", Vec::new(), 400),
    ];
    for (name, bytes, status) in cases {
        let r = upload(&app, &alice, name, &bytes).await;
        assert_eq!(r.status, status, "{name}: {}", r.text);
    }
    assert_eq!(
        count(&app, "SELECT count(*) AS n FROM media"),
        rows_before,
        "nothing recorded"
    );
    assert_eq!(stored_files(&app).len(), 1, "nothing stored");
    let tmp = app.data_dir.path().join("media").join("tmp");
    assert_eq!(
        std::fs::read_dir(&tmp).map(|d| d.count()).unwrap_or(0),
        0,
        "no temp leftovers"
    );

    // A multipart body cut off before its closing boundary (client went away): 400, nothing kept.
    let (ct, mut body) = multipart("whole.png", &png(50));
    body.truncate(body.len() - 30);
    let r = app
        .send(
            app.client
                .post(app.url("/content/api/media/"))
                .header("Content-Type", ct)
                .header("Authorization", format!("Token {}", alice.token))
                .timeout(std::time::Duration::from_secs(20))
                .body(body),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(count(&app, "SELECT count(*) AS n FROM media"), rows_before);
    assert_eq!(stored_files(&app).len(), 1);
    assert_eq!(std::fs::read_dir(&tmp).map(|d| d.count()).unwrap_or(0), 0);

    // A PDF within the attachment limit (over the image limit) is fine.
    let doc = pdf(&"y".repeat(4_000));
    let r = upload(&app, &alice, "../../etc/doc.pdf", &doc).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["kind"], "attachment");
    assert_eq!(r.body["filename"], "doc.pdf");

    // Not multipart: 415; anonymous: 401.
    let r = app
        .post(
            "/content/api/media/",
            &json!({"file": "x"}),
            Some(&alice.token),
        )
        .await;
    assert_eq!(r.status, 415, "{}", r.text);
    let (ct, body) = multipart("a.png", &img);
    let r = app
        .send(
            app.client
                .post(app.url("/content/api/media"))
                .header("Content-Type", ct)
                .body(body),
        )
        .await;
    assert_eq!(r.status, 401);
}

#[tokio::test]
async fn attachments_follow_the_visibility_rule_and_leaked_links_die() {
    let app = spawn_app().await;
    let alice = app.create_user("alice", true);
    let bob = app.create_user("bob", true);
    let member = app.create_user("member", false);
    let other = app.create_user("other", false);
    let gold = create_tier(&app, &alice, "Gold", 50000).await;
    grant(&app, &member, gold).await;

    let doc = pdf("secret members-only content");
    let r = upload(&app, &alice, "secret.pdf", &doc).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let media_id = r.body["id"].as_i64().unwrap();
    let img = png(10);
    let r = upload(&app, &alice, "cover.png", &img).await;
    let public_img = r.body["id"].as_i64().unwrap();

    // Attachments must be the creator's own media.
    let r = app
        .post(
            "/content/api/content/",
            &json!({"title": "t", "attachments": [media_id]}),
            Some(&bob.token),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);

    let r = app
        .post(
            "/content/api/content/",
            &json!({"title": "gated", "body": "b", "tiers": [gold], "attachments": [media_id]}),
            Some(&alice.token),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let post_id = r.body["id"].as_i64().unwrap();
    let r2 = app
        .post(
            "/content/api/content/",
            &json!({"title": "public", "body": "b", "attachments": [public_img]}),
            Some(&alice.token),
        )
        .await;
    let public_post = r2.body["id"].as_i64().unwrap();

    // Locked viewers get the attachment's id and type but no URL or name.
    for token in [None, Some(other.token.as_str())] {
        let r = app
            .get(&format!("/content/api/content/{post_id}/"), token)
            .await;
        assert_eq!(r.body["locked"], true);
        let a = &r.body["attachments"][0];
        assert_eq!(a["id"], media_id);
        assert_eq!(a["content_type"], "application/pdf");
        assert!(a["url"].is_null() && a["filename"].is_null(), "{a}");
        // Direct download refused.
        let r = app
            .get(&format!("/content/api/media/{media_id}/file"), token)
            .await;
        assert_eq!(r.status, 403, "{}", r.text);
        assert!(!r.text.contains("secret members-only"));
    }

    // The member gets a signed URL that works without credentials (for <img>/<a> tags)...
    let r = app
        .get(
            &format!("/content/api/content/{post_id}/"),
            Some(&member.token),
        )
        .await;
    let url = r.body["attachments"][0]["url"].as_str().unwrap().to_owned();
    assert_eq!(r.body["attachments"][0]["filename"], "secret.pdf");
    let r = app.send(app.client.get(&url)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.text.as_bytes(), &doc[..]);
    assert_eq!(r.header("content-type"), Some("application/pdf"));
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    assert!(r
        .header("content-disposition")
        .unwrap()
        .starts_with("attachment"));

    // ...tampering with it fails...
    let forged = url.replace(&format!("v={}", member.id), &format!("v={}", other.id));
    assert_ne!(forged, url);
    let r = app.send(app.client.get(&forged)).await;
    assert_eq!(r.status, 403);
    assert_eq!(r.body["code"], "link_invalid");
    let other_media = url.replace(&format!("/{media_id}/file"), &format!("/{public_img}/file"));
    let r = app.send(app.client.get(&other_media)).await;
    assert_eq!(r.status, 403, "a signature is bound to one media id");

    // ...and once the member's access ends, the leaked URL stops working.
    revoke(&app, &member).await;
    let r = app.send(app.client.get(&url)).await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert!(!r.text.contains("secret members-only"));

    // Public post media: served to anyone; the creator always gets their files.
    let r = app
        .get(&format!("/content/api/content/{public_post}/"), None)
        .await;
    let purl = r.body["attachments"][0]["url"].as_str().unwrap().to_owned();
    let r = app.send(app.client.get(&purl)).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("image/png"));
    let r = app
        .get(&format!("/content/api/media/{public_img}/file"), None)
        .await;
    assert_eq!(r.status, 200);
    let r = app
        .get(
            &format!("/content/api/media/{media_id}/file"),
            Some(&alice.token),
        )
        .await;
    assert_eq!(r.status, 200);
    let r = app
        .get(
            &format!("/content/api/media/{media_id}/"),
            Some(&other.token),
        )
        .await;
    assert_eq!(r.status, 403);
    let r = app.get("/content/api/media/999999/file", None).await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn media_is_private_until_attached_to_a_visible_post_or_a_profile_picture() {
    let app = spawn_app().await;
    let alice = app.create_user("alice", true);
    let bob = app.create_user("bob", false);
    let member = app.create_user("member", false);
    let gold = create_tier(&app, &alice, "Gold", 50000).await;
    grant(&app, &member, gold).await;
    let r = upload(&app, &alice, "me.png", &png(20)).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let pic = r.body["id"].as_i64().unwrap();
    let pic_url = r.body["file"].as_str().unwrap().to_owned();
    let r = upload(&app, &alice, "extra.png", &png(30)).await;
    let extra = r.body["id"].as_i64().unwrap();
    let r = upload(&app, &alice, "notes.pdf", &pdf("members only")).await;
    let doc = r.body["id"].as_i64().unwrap();
    let status = |id: i64, token: Option<String>| {
        let app = &app;
        async move {
            let file = app
                .get(&format!("/content/api/media/{id}/file"), token.as_deref())
                .await;
            let meta = app
                .get(&format!("/content/api/media/{id}/"), token.as_deref())
                .await;
            assert_eq!(file.status, meta.status, "{}", meta.text);
            file.status
        }
    };
    let others = || [None, Some(bob.token.clone()), Some(member.token.clone())];

    // Not attached to anything: nobody but the uploader (404: not even its existence).
    for id in [pic, extra, doc] {
        for who in others() {
            assert_eq!(status(id, who).await, 404, "media {id}");
        }
        assert_eq!(status(id, Some(alice.token.clone())).await, 200);
    }

    // Someone else pointing their profile picture at it changes nothing.
    let r = app
        .patch(
            "/authenticate/rest-auth/user/",
            &json!({"profile_pic": pic_url}),
            Some(&bob.token),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(status(pic, None).await, 404);
    // The uploader's profile picture is public, while it is one.
    let r = app
        .patch(
            "/authenticate/rest-auth/user/",
            &json!({"profile_pic": pic_url}),
            Some(&alice.token),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    for who in others() {
        assert_eq!(status(pic, who).await, 200);
    }
    assert_eq!(status(extra, None).await, 404, "only that image");
    let r = app
        .patch(
            "/authenticate/rest-auth/user/",
            &json!({"profile_pic": null}),
            Some(&alice.token),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(status(pic, None).await, 404);

    // Attached to a gated post: members only (403 for the others, as the post is locked for
    // them); detached again: nobody but the uploader.
    let r = app
        .post(
            "/content/api/content/",
            &json!({"title": "gated", "tiers": [gold], "attachments": [extra, doc]}),
            Some(&alice.token),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let post = r.body["id"].as_i64().unwrap();
    for id in [extra, doc] {
        assert_eq!(status(id, Some(member.token.clone())).await, 200);
        assert_eq!(status(id, Some(bob.token.clone())).await, 403);
        assert_eq!(status(id, None).await, 403);
    }
    let r = app
        .patch(
            &format!("/content/api/content/{post}/"),
            &json!({"attachments": []}),
            Some(&alice.token),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    for id in [extra, doc] {
        for who in others() {
            assert_eq!(status(id, who).await, 404, "detached media {id}");
        }
        assert_eq!(status(id, Some(alice.token.clone())).await, 200);
    }
    // A public post makes its attachments public.
    let r = app
        .post(
            "/content/api/content/",
            &json!({"title": "open", "attachments": [extra]}),
            Some(&alice.token),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    for who in others() {
        assert_eq!(status(extra, who).await, 200);
    }
}

#[tokio::test]
async fn download_links_ignore_forwarded_headers_unless_a_trusted_proxy_sends_them() {
    for trusted in [false, true] {
        let app = spawn_app_with(|s| {
            s.public_url = "https://oasis.example/api".into();
            if trusted {
                s.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
            }
        })
        .await;
        let alice = app.create_user("alice", true);
        let r = upload(&app, &alice, "a.png", &png(10)).await;
        let media = r.body["id"].as_i64().unwrap();
        create_post(&app, &alice, "p1", &[]).await;
        let r = app
            .post(
                "/content/api/content/",
                &json!({"title": "p2", "attachments": [media]}),
                Some(&alice.token),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        let r = app
            .send(
                app.client
                    .get(app.url("/content/api/content/?page_size=1"))
                    .header("Host", "evil.example")
                    .header("X-Forwarded-Host", "evil.example")
                    .header("X-Forwarded-Proto", "http"),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        let origin = if trusted {
            "http://evil.example/api"
        } else {
            "https://oasis.example/api"
        };
        let next = r.body["next"].as_str().unwrap();
        assert!(
            next.starts_with(&format!("{origin}/content/api/content?")),
            "{next}"
        );
        let a = &r.body["results"][0]["attachments"][0];
        let url = a["url"].as_str().unwrap();
        assert!(
            url.starts_with(&format!("{origin}/content/api/media/{media}/file?")),
            "{url}"
        );
    }
}

#[tokio::test]
async fn openapi_documents_catalog_routes() {
    let app = spawn_app().await;
    let r = app.get("/api/openapi.json", None).await;
    let paths = &r.body["paths"];
    for p in [
        "/content/api/tiers/",
        "/content/api/tiers/{id}/",
        "/content/api/content/",
        "/content/api/content/{id}/",
        "/content/api/remove-tiers/{id}/",
        "/content/api/likes/",
        "/content/api/likes/{id}/",
        "/content/api/comment/",
        "/content/api/comment/{id}/",
        "/content/api/media/",
        "/content/api/media/{id}/",
        "/content/api/media/{id}/file",
    ] {
        assert!(paths[p].is_object(), "{p} documented");
    }
    assert!(r.body["components"]["schemas"]["PostDto"].is_object());
}

#[tokio::test]
async fn load_post_views_runs_a_fixed_number_of_queries() {
    use diesel::connection::{Instrumentation, InstrumentationEvent};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    struct Counter(Arc<AtomicUsize>);
    impl Instrumentation for Counter {
        fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
            if matches!(event, InstrumentationEvent::StartQuery { .. }) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
    }

    let app = spawn_app().await;
    let alice = app.create_user("alice", true);
    let fan = app.create_user("fan", false);
    let gold = create_tier(&app, &alice, "Gold", 50000).await;
    let silver = create_tier(&app, &alice, "Silver", 20000).await;
    grant(&app, &fan, silver).await;
    let doc = upload(&app, &alice, "a.pdf", &pdf("x")).await.body["id"].clone();
    let mut ids = Vec::new();
    for i in 0..30 {
        let tiers = match i % 3 {
            0 => json!([]),
            1 => json!([gold]),
            _ => json!([gold, silver]),
        };
        let r = app
            .post(
                "/content/api/content/",
                &json!({"title": format!("p{i}"), "body": "b", "tiers": tiers, "attachments": [doc]}),
                Some(&alice.token),
            )
            .await;
        let id = r.body["id"].as_i64().unwrap();
        if i % 3 != 1 {
            app.post(
                "/content/api/likes/",
                &json!({"post": id}),
                Some(&fan.token),
            )
            .await;
            app.post(
                "/content/api/comment/",
                &json!({"post": id, "text": "c"}),
                Some(&fan.token),
            )
            .await;
        }
        ids.push(id);
    }

    let counter = Arc::new(AtomicUsize::new(0));
    let mut conn = app.conn();
    conn.set_instrumentation(Counter(counter.clone()));
    let mut queries = |ids: &[i64], viewer: Option<i64>| {
        counter.store(0, Ordering::SeqCst);
        let views = oasis_db::catalog::load_post_views(&mut conn, ids, viewer).unwrap();
        (views, counter.load(Ordering::SeqCst))
    };
    // One gated post vs thirty posts.
    let (one, q1) = queries(&ids[1..2], Some(fan.id));
    let (all, q30) = queries(&ids, Some(fan.id));
    assert_eq!(one.len(), 1);
    assert_eq!(all.len(), 30);
    assert_eq!(
        q1, q30,
        "same number of queries for 1 and 30 posts ({q1} vs {q30})"
    );
    assert!(q30 <= 3, "{q30} queries");
    // Order of the ids is kept, and the rule is applied per post.
    let got: Vec<i64> = all.iter().map(|v| v.id).collect();
    assert_eq!(got, ids);
    for (i, v) in all.iter().enumerate() {
        let locked = i % 3 == 1;
        assert_eq!(v.locked, locked, "post {i}");
        assert_eq!(v.body.is_none(), locked);
        assert_eq!(v.liked_by_me, !locked);
        assert_eq!(v.like_count, if locked { 0 } else { 1 });
        assert_eq!(v.comment_count, if locked { 0 } else { 1 });
        assert_eq!(v.attachments.len(), 1);
    }
    let (_, anon) = queries(&ids, None);
    assert!(anon <= 2, "anonymous: no access query ({anon})");
}

#[tokio::test]
async fn oversized_upload_is_refused_before_it_is_stored() {
    let app = spawn_app_with(|s| {
        s.max_image_bytes = 2_000;
        s.max_attachment_bytes = 4_000;
    })
    .await;
    let alice = app.create_user("alice", true);
    // Far above every limit: refused from Content-Length, the client still gets a clean 413.
    let r = upload(&app, &alice, "huge.png", &png(2_000_000)).await;
    assert_eq!(r.status, 413, "{}", r.text);
    assert_eq!(r.body["code"], "file_too_large");
    assert_eq!(count(&app, "SELECT count(*) AS n FROM media"), 0);
    assert!(stored_files(&app).is_empty());
    // Still serving on the same client afterwards.
    let r = upload(&app, &alice, "ok.png", &png(10)).await;
    assert_eq!(r.status, 201, "{}", r.text);
}

/// The repository contract the in-memory fake also honours, run against PostgreSQL.
#[tokio::test]
async fn postgres_repository_honours_the_contract() {
    let app = spawn_app().await;
    let (a, b, c) = (
        app.create_user("alice", true),
        app.create_user("bob", true),
        app.create_user("carol", false),
    );
    let mut conn = app.conn();
    conn.test_transaction::<_, diesel::result::Error, _>(|conn| {
        oasis_catalog::contract::run_all(&mut oasis_db::catalog::PgCatalog(conn), a.id, b.id, c.id);
        Ok(())
    });
    assert_eq!(
        count(&app, "SELECT count(*) AS n FROM tiers"),
        0,
        "rolled back"
    );
}

#[tokio::test]
async fn concurrent_deletes_of_one_comment_succeed_once() {
    let app = spawn_app().await;
    let creator = app.create_user("deleter", true);
    let post = app
        .post(
            "/content/api/content/",
            &json!({"title": "t", "body": "b", "tiers": []}),
            Some(&creator.token),
        )
        .await;
    assert_eq!(post.status, 201, "{}", post.text);
    let c = app
        .post(
            "/content/api/comment/",
            &json!({"post": post.body["id"], "text": "bye"}),
            Some(&creator.token),
        )
        .await;
    assert_eq!(c.status, 201, "{}", c.text);
    let path = format!("/content/api/comment/{}/", c.body["id"]);
    let tries = (0..8).map(|_| app.delete(&path, Some(&creator.token)));
    let mut statuses: Vec<u16> = futures_join_all(tries)
        .await
        .into_iter()
        .map(|r| r.status)
        .collect();
    statuses.sort();
    assert_eq!(statuses[0], 204, "{statuses:?}");
    assert!(statuses[1..].iter().all(|s| *s == 404), "{statuses:?}");
}

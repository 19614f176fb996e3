//! Social: follows, feed (visibility, pinned pages, cursors, plan), profiles, own posts, search
//! (relevance, non-leakage of locked bodies), dashboards.
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use oasis_tests::{json, spawn_app, Resp, TestApp};
use serde_json::Value;
use std::collections::HashSet;

#[derive(QueryableByName)]
struct Id {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

fn count(app: &TestApp, sql: &str) -> i64 {
    app.query_i64(sql)
}

fn tier(app: &TestApp, creator: i64, name: &str, price: i64) -> i64 {
    diesel::sql_query(
        "INSERT INTO tiers (creator_id, name, price, currency) VALUES ($1, $2, $3, 'INR') RETURNING id",
    )
    .bind::<BigInt, _>(creator)
    .bind::<Text, _>(name)
    .bind::<BigInt, _>(price)
    .get_result::<Id>(&mut app.conn())
    .expect("tier")
    .id
}

/// A post, optionally gated by tiers; `age_secs` back-dates it (older = larger).
fn post(app: &TestApp, creator: i64, title: &str, body: &str, tiers: &[i64], age_secs: i64) -> i64 {
    let mut c = app.conn();
    let id = diesel::sql_query(
        "INSERT INTO posts (creator_id, title, body, created_at, updated_at)
         VALUES ($1, $2, $3, now() - make_interval(secs => $4), now()) RETURNING id",
    )
    .bind::<BigInt, _>(creator)
    .bind::<Text, _>(title)
    .bind::<Text, _>(body)
    .bind::<diesel::sql_types::Double, _>(age_secs as f64)
    .get_result::<Id>(&mut c)
    .expect("post")
    .id;
    for t in tiers {
        diesel::sql_query("INSERT INTO post_tiers (post_id, tier_id) VALUES ($1, $2)")
            .bind::<BigInt, _>(id)
            .bind::<BigInt, _>(*t)
            .execute(&mut c)
            .expect("post tier");
    }
    id
}

/// An active paid-up monthly membership of `user` in `tier`.
fn membership(app: &TestApp, user: i64, tier: i64) -> i64 {
    diesel::sql_query(
        "INSERT INTO memberships (user_id, tier_id, kind, status, amount, currency, current_start,
             current_end, paid_count)
         VALUES ($1, $2, 'recurring', 'active', 50000, 'INR', now(), now() + interval '30 days', 1)
         RETURNING id",
    )
    .bind::<BigInt, _>(user)
    .bind::<BigInt, _>(tier)
    .get_result::<Id>(&mut app.conn())
    .expect("membership")
    .id
}

fn ids(results: &Value) -> Vec<i64> {
    results
        .as_array()
        .expect("results array")
        .iter()
        .map(|p| p["id"].as_i64().unwrap())
        .collect()
}

/// Follows an absolute `next`/`previous` link of the app.
async fn follow_link(app: &TestApp, link: &Value, token: &str) -> Resp {
    let url = link.as_str().expect("link");
    let path = url.strip_prefix(&app.address).expect("same origin");
    app.get(path, Some(token)).await
}

#[tokio::test]
async fn follow_is_idempotent_and_refuses_self_and_non_creators() {
    let app = spawn_app().await;
    let creator = app.create_user("followed_creator", true);
    let fan = app.create_user("fan", false);
    let other_fan = app.create_user("other_fan", false);
    let path = format!("/feed/api/follow/{}", creator.id);

    let r = app.get(&path, Some(&fan.token)).await;
    assert_eq!((r.status, &r.body), (200, &json!({"is_following": false})));
    for _ in 0..2 {
        let r = app.post(&path, &json!({}), Some(&fan.token)).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["is_following"], true);
    }
    let stored = format!(
        "SELECT count(*) AS n FROM follows WHERE follower_id = {} AND creator_id = {}",
        fan.id, creator.id
    );
    assert_eq!(count(&app, &stored), 1);
    let r = app.get(&format!("{path}/"), Some(&fan.token)).await;
    assert_eq!(r.body["is_following"], true);

    // Yourself, a non-creator, nobody, anonymous.
    let r = app.post(&path, &json!({}), Some(&creator.token)).await;
    assert_eq!(
        (r.status, r.body["code"].as_str()),
        (400, Some("cannot_follow_self"))
    );
    let r = app
        .post(
            &format!("/feed/api/follow/{}", other_fan.id),
            &json!({}),
            Some(&fan.token),
        )
        .await;
    assert_eq!(
        (r.status, r.body["code"].as_str()),
        (400, Some("not_a_creator"))
    );
    let r = app
        .post("/feed/api/follow/999999", &json!({}), Some(&fan.token))
        .await;
    assert_eq!(r.status, 404);
    let r = app.post(&path, &json!({}), None).await;
    assert_eq!(r.status, 401);
    let r = app.put(&path, &json!({}), Some(&fan.token)).await;
    assert_eq!(r.status, 405);

    for _ in 0..2 {
        let r = app.delete(&path, Some(&fan.token)).await;
        assert_eq!((r.status, &r.body), (200, &json!({"is_following": false})));
    }
    assert_eq!(count(&app, &stored), 0);

    // The seed's second path.
    let r = app
        .patch(
            "/content/api/user-creator/",
            &json!({"creator": creator.id, "follow": true}),
            Some(&fan.token),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body, json!({"creator": creator.id, "is_following": true}));
    assert_eq!(count(&app, &stored), 1);
    let r = app
        .patch(
            "/content/api/user-creator",
            &json!({"creator": creator.id, "follow": false}),
            Some(&fan.token),
        )
        .await;
    assert_eq!(r.body["is_following"], false);
    assert_eq!(count(&app, &stored), 0);
    let r = app
        .patch("/content/api/user-creator", &json!({}), Some(&fan.token))
        .await;
    assert_eq!(r.status, 400);
    assert!(
        r.body["creator"].is_array() && r.body["follow"].is_array(),
        "{}",
        r.text
    );
    let r = app
        .patch(
            "/content/api/user-creator",
            &json!({"creator": other_fan.id, "follow": true}),
            Some(&fan.token),
        )
        .await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn feed_shows_followed_and_member_creators_newest_first_with_locked_bodies_hidden() {
    let app = spawn_app().await;
    let followed = app.create_user("followed", true);
    let member_of = app.create_user("member_of", true);
    let stranger = app.create_user("stranger", true);
    let fan = app.create_user("feed_fan", false);

    let gold = tier(&app, followed.id, "Gold", 50000);
    let silver = tier(&app, member_of.id, "Silver", 20000);
    let other = tier(&app, member_of.id, "Other", 90000);
    membership(&app, fan.id, silver);

    let public = post(&app, followed.id, "Public hello", "public body", &[], 40);
    let locked = post(
        &app,
        followed.id,
        "Gold only",
        "gold secret body",
        &[gold],
        30,
    );
    let unlocked = post(
        &app,
        member_of.id,
        "Silver news",
        "silver body",
        &[silver],
        20,
    );
    let locked_other = post(&app, member_of.id, "Other news", "other body", &[other], 10);
    let _not_mine = post(&app, stranger.id, "Stranger", "stranger body", &[], 5);

    let r = app
        .post(
            &format!("/feed/api/follow/{}", followed.id),
            &json!({}),
            Some(&fan.token),
        )
        .await;
    assert_eq!(r.status, 200);

    let r = app.get("/feed/api/feed", Some(&fan.token)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["count"], 4);
    assert_eq!(
        ids(&r.body["results"]),
        vec![locked_other, unlocked, locked, public]
    );
    assert!(r.body["next"].is_null() && r.body["previous"].is_null());
    let by_id = |id: i64| {
        r.body["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["id"] == id)
            .unwrap()
            .clone()
    };
    assert_eq!(by_id(public)["body"], "public body");
    assert_eq!(by_id(public)["locked"], false);
    assert_eq!(by_id(locked)["body"], Value::Null);
    assert_eq!(by_id(locked)["locked"], true);
    assert_eq!(by_id(locked)["title"], "Gold only");
    assert_eq!(by_id(unlocked)["body"], "silver body");
    assert_eq!(by_id(locked_other)["body"], Value::Null);
    assert!(!r.text.contains("gold secret body") && !r.text.contains("other body"));

    let r = app.get("/feed/api/feed", None).await;
    assert_eq!(r.status, 401);
    let r = app
        .get("/feed/api/feed?page_size=101", Some(&fan.token))
        .await;
    assert_eq!(r.status, 400);
    assert!(r.body["page_size"].is_array(), "{}", r.text);
    let r = app
        .get("/feed/api/feed?cursor=garbage", Some(&fan.token))
        .await;
    assert_eq!(r.status, 400);
    assert!(r.body["cursor"].is_array(), "{}", r.text);

    // A page far beyond the end is empty, not an error.
    let r = app
        .get("/feed/api/feed?page=922337203685477580", Some(&fan.token))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["results"], json!([]));
    let r = app.get("/feed/api/feed?max_id=-1", Some(&fan.token)).await;
    assert_eq!(r.status, 400);

    // A user following nobody has an empty feed.
    let r = app.get("/feed/api/feed", Some(&stranger.token)).await;
    assert_eq!((r.status, r.body["count"].as_i64()), (200, Some(0)));
}

#[tokio::test]
async fn feed_pages_are_pinned_and_cursors_stable_while_posts_arrive() {
    let app = spawn_app().await;
    let a = app.create_user("prolific_a", true);
    let b = app.create_user("prolific_b", true);
    let fan = app.create_user("pager", false);
    for c in [&a, &b] {
        app.post(
            &format!("/feed/api/follow/{}", c.id),
            &json!({}),
            Some(&fan.token),
        )
        .await;
    }
    // 25 posts, interleaved between two creators, in pairs 10 s apart (within a pair the later
    // insert is newer by a few ms).
    let mut aged = Vec::new();
    for i in 0..25_i64 {
        let creator = if i % 2 == 0 { a.id } else { b.id };
        let age = 1000 - (i / 2) * 10;
        aged.push((age, post(&app, creator, &format!("p{i}"), "body", &[], age)));
    }
    // Newest first: smallest age, then highest id.
    aged.sort_by_key(|&(age, id)| (age, -id));
    let expected: Vec<i64> = aged.iter().map(|&(_, id)| id).collect();

    // Page mode: next carries max_id; new posts published between pages never show up.
    let r = app
        .get("/feed/api/feed?page_size=10", Some(&fan.token))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["count"], 25);
    let mut seen = ids(&r.body["results"]);
    let mut next = r.body["next"].clone();
    assert!(next.as_str().unwrap().contains("max_id="), "{next}");
    let mut n = 0;
    while !next.is_null() {
        for k in 0..3 {
            post(&app, a.id, &format!("fresh {n}-{k}"), "new", &[], 0);
        }
        let r = follow_link(&app, &next, &fan.token).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["count"], 25, "the snapshot's count");
        assert!(!r.body["previous"].is_null());
        seen.extend(ids(&r.body["results"]));
        next = r.body["next"].clone();
        n += 1;
    }
    assert_eq!(n, 2);
    assert_eq!(seen, expected, "no duplicates, no gaps, newest first");

    // Previous link of page 2 leads back to page 1 of the same snapshot.
    let r = app
        .get("/feed/api/feed?page_size=10", Some(&fan.token))
        .await;
    assert_eq!(r.body["count"], 25 + 6);
    let first_fresh = ids(&r.body["results"]);
    let r2 = follow_link(&app, &r.body["next"], &fan.token).await;
    let back = follow_link(&app, &r2.body["previous"], &fan.token).await;
    assert_eq!(ids(&back.body["results"]), first_fresh);

    // Cursor mode: keyset pages stay exact under inserts and deletes.
    let r = app
        .get("/feed/api/feed?page_size=7", Some(&fan.token))
        .await;
    let mut all = ids(&r.body["results"]);
    let mut cursor = r.body["next_cursor"].as_str().unwrap().to_owned();
    let mut pages = 0;
    loop {
        post(&app, b.id, "during cursor paging", "x", &[], 0);
        let r = app
            .get(
                &format!("/feed/api/feed?page_size=7&cursor={cursor}"),
                Some(&fan.token),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        all.extend(ids(&r.body["results"]));
        pages += 1;
        match r.body["next_cursor"].as_str() {
            Some(c) => {
                assert!(r.body["next"].as_str().unwrap().contains("cursor="));
                cursor = c.to_owned();
            }
            None => {
                assert!(r.body["next"].is_null());
                break;
            }
        }
    }
    assert!(pages >= 4);
    let unique: HashSet<i64> = all.iter().copied().collect();
    assert_eq!(unique.len(), all.len(), "no duplicates");
    assert_eq!(
        all.len(),
        31,
        "every post of the first snapshot exactly once"
    );
    assert_eq!(
        &all[6..],
        &expected[..],
        "the original 25 at the end, in order"
    );
}

/// `count` of the feed, `post_count` of a profile and a creator's post list come from
/// `creator_post_counts` (kept by triggers), no longer from counting posts per page: they must
/// stay equal to the counts of the posts themselves through API creates and deletes, SQL inserts,
/// pinned pages, and a TRUNCATE.
#[tokio::test]
async fn maintained_post_counts_equal_counting_the_posts() {
    let app = spawn_app().await;
    let a = app.create_user("counted_a", true);
    let b = app.create_user("counted_b", true);
    let fan = app.create_user("counted_fan", false);
    for c in [&a, &b] {
        let r = app
            .post(
                &format!("/feed/api/follow/{}", c.id),
                &json!({}),
                Some(&fan.token),
            )
            .await;
        assert!(r.status < 300, "{}", r.text);
    }
    let drift = |app: &TestApp| {
        count(
            app,
            "SELECT count(*) AS n FROM (SELECT creator_id, count(*) AS posts FROM posts GROUP BY 1) x
             FULL JOIN creator_post_counts c USING (creator_id)
             WHERE COALESCE(x.posts, 0) <> COALESCE(c.posts, 0)",
        )
    };
    let posts_of = |app: &TestApp, creator: i64| {
        count(
            app,
            &format!("SELECT count(*) AS n FROM posts WHERE creator_id = {creator}"),
        )
    };
    for i in 0..5 {
        post(&app, a.id, &format!("a{i}"), "body", &[], 100 - i);
        post(&app, b.id, &format!("b{i}"), "body", &[], 50 - i);
    }
    // Written beside the server: its read cache hears of them on LISTEN.
    app.settle().await;
    let mut created = Vec::new();
    for i in 0..3 {
        let r = app
            .post(
                "/content/api/content",
                &json!({"title": format!("api {i}"), "body": "x"}),
                Some(&a.token),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        created.push(r.body["id"].as_i64().unwrap());
    }
    let r = app
        .delete(
            &format!("/content/api/content/{}", created[0]),
            Some(&a.token),
        )
        .await;
    assert!(r.status < 300, "{}", r.text);
    assert_eq!(drift(&app), 0);
    assert_eq!(posts_of(&app, a.id), 7);

    let r = app
        .get("/feed/api/feed?page_size=4", Some(&fan.token))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["count"], 12);
    let profile = app
        .get(&format!("/feed/api/user-profile/{}", a.id), None)
        .await;
    assert_eq!(profile.body["profile"]["post_count"], 7);
    assert_eq!(profile.body["count"], 7);
    let list = app
        .get(&format!("/content/api/content?creator={}", b.id), None)
        .await;
    assert_eq!(list.body["count"], 5);
    let own = app.get("/feed/api/get-posts", Some(&a.token)).await;
    assert_eq!(own.body["count"], 7);

    // A pinned page: posts published after the pin are not counted, deletes of older ones are
    // (exactly what counting `id <= max_id` gives).
    let next = r.body["next"].clone();
    let pin: i64 = next
        .as_str()
        .unwrap()
        .split("max_id=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    post(&app, b.id, "after the pin", "new", &[], 0);
    app.settle().await;
    let del = app
        .delete(
            &format!("/content/api/content/{}", created[1]),
            Some(&a.token),
        )
        .await;
    assert!(del.status < 300, "{}", del.text);
    let expected = count(
        &app,
        &format!(
            "SELECT count(*) AS n FROM posts WHERE creator_id IN ({}, {}) AND id <= {pin}",
            a.id, b.id
        ),
    );
    assert_eq!(expected, 11);
    let r2 = follow_link(&app, &next, &fan.token).await;
    assert_eq!(r2.status, 200, "{}", r2.text);
    assert_eq!(r2.body["count"], expected);
    // Cursor mode counts every post of the sources.
    let cursor = r.body["next_cursor"]
        .as_str()
        .expect("next_cursor")
        .to_owned();
    let r3 = app
        .get(
            &format!("/feed/api/feed?page_size=4&cursor={cursor}"),
            Some(&fan.token),
        )
        .await;
    assert_eq!(r3.status, 200, "{}", r3.text);
    assert_eq!(
        r3.body["count"],
        posts_of(&app, a.id) + posts_of(&app, b.id)
    );
    assert_eq!(r3.body["count"], 12);
    assert_eq!(drift(&app), 0);

    diesel::sql_query("TRUNCATE posts CASCADE")
        .execute(&mut app.conn())
        .unwrap();
    assert_eq!(drift(&app), 0);
    app.settle().await;
    let r = app.get("/feed/api/feed", Some(&fan.token)).await;
    assert_eq!(r.body["count"], 0);
    post(&app, a.id, "fresh start", "body", &[], 0);
    app.settle().await;
    let r = app.get("/feed/api/feed", Some(&fan.token)).await;
    assert_eq!(r.body["count"], 1);
    assert_eq!(drift(&app), 0);
}

#[tokio::test]
async fn feed_query_does_not_scan_posts_sequentially_on_100k_posts() {
    let app = spawn_app().await;
    let fan = app.create_user("explain_fan", false);
    let mut c = app.conn();
    diesel::sql_query(
        "INSERT INTO users (username, email, is_creator, email_verified)
         SELECT 'seed_creator_' || g, 'seed' || g || '@example.com', true, true
         FROM generate_series(1, 500) g",
    )
    .execute(&mut c)
    .unwrap();
    diesel::sql_query(
        "INSERT INTO posts (creator_id, title, body, created_at)
         SELECT u.id, 'title ' || g, 'body ' || g, now() - make_interval(secs => g)
         FROM generate_series(1, 100000) g
         JOIN users u ON u.username = 'seed_creator_' || (1 + g % 500)",
    )
    .execute(&mut c)
    .unwrap();
    diesel::sql_query(
        "INSERT INTO follows (follower_id, creator_id)
         SELECT $1, id FROM users WHERE username LIKE 'seed_creator_%' ORDER BY id LIMIT 20",
    )
    .bind::<BigInt, _>(fan.id)
    .execute(&mut c)
    .unwrap();
    diesel::sql_query("ANALYZE").execute(&mut c).unwrap();
    assert_eq!(count(&app, "SELECT count(*) AS n FROM posts"), 100_000);

    let plan = oasis_db::social::explain_feed(&mut c, fan.id).unwrap();
    assert!(!plan.contains("Seq Scan on posts"), "{plan}");
    // Every read of posts is a per-creator range of posts_creator_created_idx (the page) or of
    // posts_creator_id_idx (the posts newer than the pin, for `count`), except the snapshot pin
    // (max(id): one entry at the end of the primary key).
    for line in plan.lines() {
        let reads_posts = line.contains(" on posts ") && !line.contains("Bitmap Heap Scan");
        let bitmap = line.contains("Bitmap Index Scan on posts");
        if reads_posts || bitmap {
            assert!(
                line.contains("posts_creator_created_idx")
                    || line.contains("posts_creator_id_idx")
                    || line.contains("Index Only Scan Backward using posts_pkey"),
                "{line}\n{plan}"
            );
        }
    }
    assert!(plan.contains("posts_creator_created_idx"), "{plan}");

    // And it answers through the real server.
    let r = app.get("/feed/api/feed", Some(&fan.token)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["count"], 20 * 200);
    assert_eq!(r.body["results"].as_array().unwrap().len(), 10);
}

#[tokio::test]
async fn profile_shows_counters_tiers_and_posts_and_own_posts_list() {
    let app = spawn_app().await;
    let creator = app.create_user("profiled", true);
    let fan = app.create_user("profile_fan", false);
    let gold = tier(&app, creator.id, "Gold", 50000);
    let hidden = tier(&app, creator.id, "Retired", 1000);
    diesel::sql_query("UPDATE tiers SET is_active = false WHERE id = $1")
        .bind::<BigInt, _>(hidden)
        .execute(&mut app.conn())
        .unwrap();
    let open = post(&app, creator.id, "Open", "open body", &[], 20);
    let gated = post(&app, creator.id, "Gated", "gated body", &[gold], 10);
    app.post(
        &format!("/feed/api/follow/{}", creator.id),
        &json!({}),
        Some(&fan.token),
    )
    .await;

    let path = format!("/feed/api/user-profile/{}", creator.id);
    let r = app.get(&path, Some(&fan.token)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let p = &r.body["profile"];
    assert_eq!(p["id"], creator.id);
    assert_eq!(p["username"], "profiled");
    assert_eq!(p["is_creator"], true);
    assert_eq!(p["follower_count"], 1);
    assert_eq!(p["post_count"], 2);
    assert_eq!(p["is_following"], true);
    for k in ["first_name", "last_name", "profile_pic", "bio"] {
        assert!(p.get(k).is_some(), "{k}");
    }
    let tiers: Vec<i64> = ids(&p["tiers"]);
    assert_eq!(tiers, vec![gold], "inactive tiers are hidden from others");
    assert_eq!(r.body["count"], 2);
    assert_eq!(ids(&r.body["results"]), vec![gated, open]);
    assert_eq!(r.body["results"][0]["body"], Value::Null);
    assert_eq!(r.body["results"][1]["body"], "open body");

    // Anonymous and paginated.
    let r = app.get(&format!("{path}?page_size=1"), None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["profile"]["is_following"], false);
    assert_eq!(ids(&r.body["results"]), vec![gated]);
    let next = r.body["next"].as_str().unwrap();
    assert!(next.contains("page=2"), "{next}");
    // The owner sees every tier and every body.
    let r = app.get(&path, Some(&creator.token)).await;
    assert_eq!(r.body["profile"]["tiers"].as_array().unwrap().len(), 2);
    assert_eq!(r.body["results"][0]["body"], "gated body");
    let r = app.get("/feed/api/user-profile/424242", None).await;
    assert_eq!(r.status, 404);

    let r = app.get("/feed/api/get-posts", Some(&creator.token)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["count"], 2);
    assert_eq!(ids(&r.body["results"]), vec![gated, open]);
    assert_eq!(r.body["results"][0]["body"], "gated body");
    let r = app.get("/feed/api/get-posts", Some(&fan.token)).await;
    assert_eq!(r.body["count"], 0);
    let r = app.get("/feed/api/get-posts", None).await;
    assert_eq!(r.status, 401);
}

#[tokio::test]
async fn search_ranks_names_and_posts_and_never_matches_locked_bodies() {
    let app = spawn_app().await;
    let kath = app.create_user("katherine_jones", true);
    let bob = app.create_user("bob_builder", true);
    let _fan_named = app.create_user("katherine_fan", false);
    let fan = app.create_user("searcher", false);
    let member = app.create_user("paying_member", false);
    diesel::sql_query(
        "UPDATE users SET first_name = 'Katherine', last_name = 'Jones' WHERE id = $1",
    )
    .bind::<BigInt, _>(kath.id)
    .execute(&mut app.conn())
    .unwrap();
    let gold = tier(&app, kath.id, "Gold", 50000);
    membership(&app, member.id, gold);

    let in_title = post(
        &app,
        bob.id,
        "Watercolor basics",
        "brushes and paper",
        &[],
        30,
    );
    let in_body = post(
        &app,
        bob.id,
        "Sunday notes",
        "some watercolor tips inside",
        &[],
        20,
    );
    let locked = post(
        &app,
        kath.id,
        "Weekly update",
        "the secret zebra watercolor plan",
        &[gold],
        10,
    );

    // Names: exact, partial, misspelt; fans (non-creators) are never listed.
    for q in [
        "katherine_jones",
        "katherin",
        "kathrine",
        "jones",
        "Katherine Jones",
    ] {
        let r = app
            .get(
                &format!("/feed/api/search?q={}", urlencode(q)),
                Some(&fan.token),
            )
            .await;
        assert_eq!(r.status, 200, "{q}: {}", r.text);
        let found = ids(&r.body["creators"]);
        assert_eq!(found.first(), Some(&kath.id), "{q}: {found:?}");
        assert!(!r.text.contains("katherine_fan"), "{q}");
    }
    let r = app.get("/feed/api/search?q=bob", None).await;
    assert_eq!(ids(&r.body["creators"]), vec![bob.id]);

    // Posts: a title match outranks a body match; the locked post's body never matches.
    let r = app
        .get("/feed/api/search?q=watercolor", Some(&fan.token))
        .await;
    assert_eq!(ids(&r.body["posts"]), vec![in_title, in_body], "{}", r.text);
    for q in ["zebra", "secret zebra", "zeb"] {
        let r = app
            .get(
                &format!("/feed/api/search?q={}", urlencode(q)),
                Some(&fan.token),
            )
            .await;
        assert_eq!(ids(&r.body["posts"]), Vec::<i64>::new(), "{q}");
        let r = app
            .get(&format!("/feed/api/search?q={}", urlencode(q)), None)
            .await;
        assert_eq!(ids(&r.body["posts"]), Vec::<i64>::new(), "{q} anonymous");
    }
    // ... but its title does, shown locked.
    let r = app.get("/feed/api/search?q=weekly", Some(&fan.token)).await;
    assert_eq!(ids(&r.body["posts"]), vec![locked]);
    assert_eq!(r.body["posts"][0]["locked"], true);
    assert_eq!(r.body["posts"][0]["body"], Value::Null);
    assert!(!r.text.contains("zebra"));
    // Readers (the creator, a member) find it by its body.
    for reader in [&kath, &member] {
        let r = app
            .get("/feed/api/search?q=zebra", Some(&reader.token))
            .await;
        assert_eq!(ids(&r.body["posts"]), vec![locked], "{}", reader.username);
        assert_eq!(
            r.body["posts"][0]["body"],
            "the secret zebra watercolor plan"
        );
    }

    // Bad queries.
    for q in ["", "%20%20", "%00", &"a".repeat(101)] {
        let r = app
            .get(&format!("/feed/api/search?q={q}"), Some(&fan.token))
            .await;
        assert_eq!(r.status, 400, "{q:?}");
        assert!(r.body["q"].is_array(), "{}", r.text);
    }
    let r = app.get("/feed/api/search", None).await;
    assert_eq!(r.status, 400);
    // Odd characters are just text.
    for q in [
        "%27%3A*%26%7C!(",
        "x%C2%B2",
        "%E6%97%A5%E6%9C%AC",
        "%D9%A1%D9%A2",
        "the",
        "a%5C%25_",
        "a%00b",
    ] {
        let r = app.get(&format!("/feed/api/search?q={q}"), None).await;
        assert_eq!(r.status, 200, "{q}: {}", r.text);
    }
}

fn urlencode(s: &str) -> String {
    s.replace(' ', "%20")
}

#[tokio::test]
async fn dashboards_report_followers_members_money_and_series() {
    let app = spawn_app().await;
    let creator = app.create_user("stats_creator", true);
    let fan = app.create_user("stats_fan", false);
    let gold = tier(&app, creator.id, "Gold", 50000);
    let _free = tier(&app, creator.id, "Free", 0);
    membership(&app, fan.id, gold);
    post(&app, creator.id, "One", "b", &[], 0);
    app.post(
        &format!("/feed/api/follow/{}", creator.id),
        &json!({}),
        Some(&fan.token),
    )
    .await;
    let mut c = app.conn();
    diesel::sql_query(
        "INSERT INTO payments (razorpay_payment_id, kind, status, amount, amount_refunded, currency,
             user_id, creator_id, paid_at)
         VALUES ('pay_1', 'subscription', 'captured', 50000, 0, 'INR', $1, $2, now()),
                ('pay_2', 'cheer', 'captured', 1000, 0, 'USD', $1, $2, now()),
                ('pay_3', 'cheer', 'refunded', 2000, 2000, 'INR', $1, $2, now()),
                ('pay_4', 'subscription', 'failed', 50000, 0, 'INR', $1, $2, now()),
                ('pay_5', 'subscription', 'captured', 30000, 0, 'INR', $1, $2,
                    now() - interval '400 days')",
    )
    .bind::<BigInt, _>(fan.id)
    .bind::<BigInt, _>(creator.id)
    .execute(&mut c)
    .unwrap();

    let r = app.get("/feed/api/stats", Some(&creator.token)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let s = &r.body;
    assert_eq!(s["followers"], 1);
    assert_eq!(s["posts"], 1);
    assert_eq!(s["active_members"], 1);
    let tiers = s["tiers"].as_array().unwrap();
    assert_eq!(tiers.len(), 2);
    let g = tiers.iter().find(|t| t["id"] == gold).unwrap();
    assert_eq!(g["active_members"], 1);
    assert_eq!(s["mrr"], json!([{"amount": 50000, "currency": "INR"}]));
    assert_eq!(
        s["earnings_all_time"]["amounts"],
        json!([{"amount": 80000, "currency": "INR"}, {"amount": 1000, "currency": "USD"}])
    );
    assert_eq!(
        s["earnings_this_month"]["amounts"],
        json!([{"amount": 50000, "currency": "INR"}, {"amount": 1000, "currency": "USD"}])
    );
    assert_eq!(s["tips"]["count"], 2);
    assert_eq!(
        s["tips"]["amounts"],
        json!([{"amount": 0, "currency": "INR"}, {"amount": 1000, "currency": "USD"}])
    );
    assert_eq!(s["open_commissions"], 0);
    let daily = s["daily"].as_array().unwrap();
    assert_eq!(daily.len(), 30);
    let today = &daily[29];
    assert_eq!(today["new_members"], 1);
    assert_eq!(today["new_followers"], 1);
    assert_eq!(
        today["earnings"],
        json!([{"amount": 50000, "currency": "INR"}, {"amount": 1000, "currency": "USD"}])
    );
    assert!(daily[..29].iter().all(|d| d["new_members"] == 0));

    let r = app.get("/feed/api/stats", Some(&fan.token)).await;
    assert_eq!(r.status, 403);
    let r = app.get("/feed/api/stats", None).await;
    assert_eq!(r.status, 401);

    let r = app.get("/feed/api/userstats", Some(&fan.token)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["following"], 1);
    assert_eq!(r.body["active_memberships"], 1);
    assert_eq!(
        r.body["total_spent"]["amounts"],
        json!([{"amount": 80000, "currency": "INR"}, {"amount": 1000, "currency": "USD"}])
    );
    assert_eq!(r.body["tips_given"]["count"], 2);
    assert_eq!(r.body["commissions_ordered"], 0);
    let r = app.get("/feed/api/userstats", None).await;
    assert_eq!(r.status, 401);
}

#[tokio::test]
async fn social_routes_are_in_the_openapi_document() {
    let app = spawn_app().await;
    let r = app.get("/api/openapi.json", None).await;
    for path in [
        "/feed/api/follow/{creator_id}",
        "/content/api/user-creator",
        "/feed/api/feed",
        "/feed/api/user-profile/{id}",
        "/feed/api/get-posts",
        "/feed/api/search",
        "/feed/api/stats",
        "/feed/api/userstats",
    ] {
        assert!(r.body["paths"][path].is_object(), "{path} documented");
    }
    let follow = &r.body["paths"]["/feed/api/follow/{creator_id}"];
    for m in ["get", "post", "delete"] {
        assert!(follow[m].is_object(), "{m}");
    }
}

/// The repository contract the in-memory fake also honours, run against PostgreSQL.
#[tokio::test]
async fn postgres_follow_repository_honours_the_contract() {
    let app = spawn_app().await;
    let (creator, fan, other) = (
        app.create_user("contract_creator", true),
        app.create_user("contract_fan", false),
        app.create_user("contract_other", false),
    );
    let mut conn = app.conn();
    conn.test_transaction::<_, diesel::result::Error, _>(|conn| {
        oasis_social::contract::run_all(
            &mut oasis_db::social::PgSocial(conn),
            creator.id,
            fan.id,
            other.id,
            987_654,
        );
        Ok(())
    });
    assert_eq!(
        count(&app, "SELECT count(*) AS n FROM follows"),
        0,
        "rolled back"
    );
}

#[tokio::test]
async fn concurrent_follows_store_one_row_and_membership_hook_follows() {
    let app = spawn_app().await;
    let creator = app.create_user("popular", true);
    let fan = app.create_user("eager_fan", false);
    // Both follow paths at once, from parallel tasks.
    let tasks: Vec<_> = (0..12)
        .map(|i| {
            let client = app.client.clone();
            let auth = format!("Token {}", fan.token);
            let req = if i % 2 == 0 {
                client.post(app.url(&format!("/feed/api/follow/{}", creator.id)))
            } else {
                client
                    .patch(app.url("/content/api/user-creator"))
                    .json(&json!({"creator": creator.id, "follow": true}))
            };
            tokio::spawn(async move { req.header("Authorization", auth).send().await })
        })
        .collect();
    for t in tasks {
        let r = t.await.unwrap().expect("response");
        assert_eq!(r.status().as_u16(), 200);
    }
    assert_eq!(count(&app, "SELECT count(*) AS n FROM follows"), 1);

    // Billing's hook when a membership starts: idempotent, never a self-follow.
    let other = app.create_user("member_fan", false);
    let mut c = app.conn();
    for _ in 0..2 {
        oasis_db::social::follow_on_membership(&mut c, other.id, creator.id).unwrap();
    }
    oasis_db::social::follow_on_membership(&mut c, creator.id, creator.id).unwrap();
    assert_eq!(count(&app, "SELECT count(*) AS n FROM follows"), 2);
}

/// Search's SQL readability (`oasis_db::social::search_post_ids`: a post matches on its body only
/// when the viewer may read it) agrees with `oasis_catalog::can_view` fed by
/// `oasis_billing::has_access`, over every entitlement fixture: public, own, and gated posts
/// with one or two tiers, for anonymous viewers, the creator and members in every state.
#[tokio::test]
async fn search_visibility_mirrors_can_view() {
    use diesel::sql_types::{Bool, Nullable, Timestamptz};
    let app = spawn_app().await;
    let mut conn = app.conn();
    let creator = app.create_user("sv_creator", true);
    let other = app.create_user("sv_other", true);
    let (t1, t2) = (
        tier(&app, creator.id, "one", 100),
        tier(&app, creator.id, "two", 200),
    );
    let t3 = tier(&app, other.id, "three", 300);
    // Titles never match the query: only readable bodies can make a post appear.
    let mut posts: Vec<(i64, i64, Vec<i64>)> = Vec::new();
    for (n, (owner, tiers)) in [
        (creator.id, vec![]),
        (creator.id, vec![t1]),
        (creator.id, vec![t2]),
        (creator.id, vec![t1, t2]),
        (other.id, vec![]),
        (other.id, vec![t3]),
        (other.id, vec![t1, t3]),
    ]
    .into_iter()
    .enumerate()
    {
        let id = diesel::sql_query(
            "INSERT INTO posts (creator_id, title, body) VALUES ($1, $2, 'the zephyrquill body')
             RETURNING id",
        )
        .bind::<BigInt, _>(owner)
        .bind::<Text, _>(format!("post {n}"))
        .get_result::<Id>(&mut conn)
        .unwrap()
        .id;
        for t in &tiers {
            diesel::sql_query("INSERT INTO post_tiers (post_id, tier_id) VALUES ($1, $2)")
                .bind::<BigInt, _>(id)
                .bind::<BigInt, _>(*t)
                .execute(&mut conn)
                .unwrap();
        }
        posts.push((id, owner, tiers));
    }
    let q = oasis_social::SearchQuery::parse(Some("zephyrquill")).unwrap();
    let check = |conn: &mut diesel::PgConnection, viewer: Option<i64>, held: &HashSet<i64>| {
        let found: HashSet<i64> =
            oasis_db::social::search_post_ids(conn, &q, viewer.unwrap_or(0), 1000)
                .unwrap()
                .into_iter()
                .collect();
        let expected: HashSet<i64> = posts
            .iter()
            .filter(|(_, owner, tiers)| oasis_catalog::can_view(*owner, tiers, viewer, held))
            .map(|(id, _, _)| *id)
            .collect();
        assert_eq!(found, expected, "viewer {viewer:?} holding {held:?}");
        found.len()
    };
    assert_eq!(check(&mut conn, None, &HashSet::new()), 2);
    assert_eq!(check(&mut conn, Some(creator.id), &HashSet::new()), 5);
    let cases = oasis_billing::entitlement::fixtures();
    let mut granted = 0;
    for (i, c) in cases.iter().enumerate() {
        let fan = app.create_user(&format!("sv_fan{i}"), false);
        // Alternate the tier held, so that one- and two-tier posts and both creators are covered.
        let held_tier = [t1, t2, t3][i % 3];
        diesel::sql_query(
            "INSERT INTO memberships (user_id, tier_id, kind, status, amount, currency,
                                      current_start, current_end, cancel_at_period_end)
             VALUES ($1, $2, $3, $4, 100, 'INR', $5, $6, $7)",
        )
        .bind::<BigInt, _>(fan.id)
        .bind::<BigInt, _>(held_tier)
        .bind::<Text, _>(c.kind.as_str())
        .bind::<Text, _>(c.status.as_str())
        .bind::<Nullable<Timestamptz>, _>(c.current_start)
        .bind::<Nullable<Timestamptz>, _>(c.current_end)
        .bind::<Bool, _>(c.cancel_at_period_end)
        .execute(&mut conn)
        .unwrap();
        let held: HashSet<i64> = if c.expected() {
            granted += 1;
            [held_tier].into()
        } else {
            HashSet::new()
        };
        check(&mut conn, Some(fan.id), &held);
    }
    assert!(granted > 10 && granted < cases.len() / 2, "{granted}");
}

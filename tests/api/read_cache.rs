//! The read cache (docs/scaling.md, "The read cache"): every cached read answers what a fresh
//! read would. A process sees its own writes on the very next request; another process's (or
//! an operator's `psql`) once its notification arrives, which `settle` waits for; what changes
//! with the clock alone (a paid period ending) applies on the next request.
use oasis_tests::{json, spawn_app, spawn_app_with, Peer, Resp, TestApp, TestUser};
use serde_json::Value;

/// A statement run as an operator would, on a connection of its own.
fn exec(app: &TestApp, sql: &str) {
    diesel::RunQueryDsl::execute(diesel::sql_query(sql), &mut app.conn())
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

async fn ok(r: Resp) -> Value {
    assert!(r.status < 300, "{} {}", r.status, r.text);
    r.body
}

/// Reads `path` twice (the second answer comes from memory when the cache is on) and checks the
/// two agree.
async fn warm(app: &TestApp, path: &str, user: Option<&TestUser>) -> Value {
    let token = user.map(|u| u.token.as_str());
    let first = ok(app.get(path, token).await).await;
    let second = ok(app.get(path, token).await).await;
    assert_eq!(
        first, second,
        "{path}: two reads with nothing written between"
    );
    second
}

async fn create_post(app: &TestApp, creator: &TestUser, title: &str, tiers: &[i64]) -> i64 {
    let r = app
        .post(
            "/content/api/content",
            &json!({"title": title, "body": format!("{title} body"), "tiers": tiers}),
            Some(&creator.token),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.body["id"].as_i64().expect("post id")
}

async fn create_tier(app: &TestApp, creator: &TestUser, name: &str, price: i64) -> i64 {
    let r = app
        .post(
            "/content/api/tiers",
            &json!({"name": name, "price": price, "currency": "INR", "benefits": []}),
            Some(&creator.token),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.body["id"].as_i64().expect("tier id")
}

/// `fan` likes `post`; the like's id.
async fn like(app: &TestApp, fan: &TestUser, post: i64) -> i64 {
    ok(app
        .post(
            "/content/api/likes/",
            &json!({"post": post}),
            Some(&fan.token),
        )
        .await)
    .await["id"]
        .as_i64()
        .expect("like id")
}

fn feed_titles(feed: &Value) -> Vec<String> {
    feed["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|p| p["title"].as_str().expect("title").to_owned())
        .collect()
}

#[tokio::test]
async fn a_process_reads_its_own_writes_on_the_next_request() {
    // The listener hears writes only every 5 s here: everything below is seen through the
    // writing connection's own notifications, on the very next request.
    let app = spawn_app_with(|s| s.sse.listen_poll_ms = 5_000).await;
    let creator = app.create_user("rc_creator", true);
    let fan = app.create_user("rc_fan", false);
    let first = create_post(&app, &creator, "first", &[]).await;
    ok(app
        .post(
            &format!("/feed/api/follow/{}", creator.id),
            &json!({}),
            Some(&fan.token),
        )
        .await)
    .await;
    let detail = format!("/content/api/content/{first}");
    let profile = format!("/feed/api/user-profile/{}", creator.id);

    let feed = warm(&app, "/feed/api/feed", Some(&fan)).await;
    assert_eq!(feed_titles(&feed), ["first"]);
    let post = warm(&app, &detail, Some(&fan)).await;
    assert_eq!(
        (post["like_count"].clone(), post["liked_by_me"].clone()),
        (json!(0), json!(false))
    );
    let page = warm(&app, &profile, None).await;
    assert_eq!(page["count"], 1, "{page}");
    assert_eq!(page["profile"]["follower_count"], 1, "{page}");

    // A like and a comment: counts and liked_by_me on the next read, in every view of the post.
    let like_id = like(&app, &fan, first).await;
    ok(app
        .post(
            "/content/api/comment/",
            &json!({"post": first, "text": "hi"}),
            Some(&fan.token),
        )
        .await)
    .await;
    let post = ok(app.get(&detail, Some(&fan.token)).await).await;
    assert_eq!(post["like_count"], 1, "{post}");
    assert_eq!(post["comment_count"], 1, "{post}");
    assert_eq!(post["liked_by_me"], true, "{post}");
    let feed = ok(app.get("/feed/api/feed", Some(&fan.token)).await).await;
    assert_eq!(feed["results"][0]["like_count"], 1, "{feed}");
    assert_eq!(feed["results"][0]["liked_by_me"], true, "{feed}");
    // Someone else's view of the same post: the count, not the fan's like.
    let anon = ok(app.get(&detail, None).await).await;
    assert_eq!(
        (anon["like_count"].clone(), anon["liked_by_me"].clone()),
        (json!(1), json!(false))
    );
    // Unliking, then liking again: each on the next read.
    let r = app
        .delete(&format!("/content/api/likes/{like_id}"), Some(&fan.token))
        .await;
    assert!(r.status < 300, "{} {}", r.status, r.text);
    let post = ok(app.get(&detail, Some(&fan.token)).await).await;
    assert_eq!(
        (post["like_count"].clone(), post["liked_by_me"].clone()),
        (json!(0), json!(false))
    );
    like(&app, &fan, first).await;
    let feed = ok(app.get("/feed/api/feed", Some(&fan.token)).await).await;
    assert_eq!(feed["results"][0]["liked_by_me"], true, "{feed}");

    // An edit and a new post: the detail, the feed and the profile follow at once.
    ok(app
        .patch(
            &detail,
            &json!({"title": "first, edited"}),
            Some(&creator.token),
        )
        .await)
    .await;
    create_post(&app, &creator, "second", &[]).await;
    let post = ok(app.get(&detail, Some(&fan.token)).await).await;
    assert_eq!(post["title"], "first, edited");
    let feed = ok(app.get("/feed/api/feed", Some(&fan.token)).await).await;
    assert_eq!(feed_titles(&feed), ["second", "first, edited"]);
    let page = ok(app.get(&profile, None).await).await;
    assert_eq!(page["count"], 2, "{page}");

    // Unfollowing empties the feed; deleting the post makes its detail a 404.
    let r = app
        .delete(
            &format!("/feed/api/follow/{}", creator.id),
            Some(&fan.token),
        )
        .await;
    assert!(r.status < 300, "{} {}", r.status, r.text);
    let page = ok(app.get(&profile, None).await).await;
    assert_eq!(page["profile"]["follower_count"], 0, "{page}");
    let feed = ok(app.get("/feed/api/feed", Some(&fan.token)).await).await;
    assert_eq!(feed["count"], 0, "{feed}");
    let r = app.delete(&detail, Some(&creator.token)).await;
    assert!(r.status < 300, "{} {}", r.status, r.text);
    assert_eq!(app.get(&detail, Some(&fan.token)).await.status, 404);

    // A membership through billing's own unit of work (a free tier): the gated post opens in
    // its detail and on the creator's page.
    let free = create_tier(&app, &creator, "Free", 0).await;
    let gated = create_post(&app, &creator, "gated", &[free]).await;
    let gated_detail = format!("/content/api/content/{gated}");
    assert_eq!(warm(&app, &gated_detail, Some(&fan)).await["locked"], true);
    let page = warm(&app, &profile, Some(&fan)).await;
    assert_eq!(page["results"][0]["locked"], true, "{page}");
    ok(app
        .post(
            "/subscriptions/subscribe_to_public_tier",
            &json!({"tierID": free}),
            Some(&fan.token),
        )
        .await)
    .await;
    let open = ok(app.get(&gated_detail, Some(&fan.token)).await).await;
    assert_eq!(
        (open["locked"].clone(), open["body"].clone()),
        (json!(false), json!("gated body"))
    );
    let page = ok(app.get(&profile, Some(&fan.token)).await).await;
    assert_eq!(page["results"][0]["locked"], false, "{page}");

    // A token that logged out is refused on the very next request.
    warm(&app, "/authenticate/rest-auth/user/", Some(&fan)).await;
    ok(app
        .post(
            "/authenticate/rest-auth/logout/",
            &json!({}),
            Some(&fan.token),
        )
        .await)
    .await;
    let r = app
        .get("/authenticate/rest-auth/user/", Some(&fan.token))
        .await;
    assert_eq!(r.status, 401, "{}", r.text);
    app.stop().await;
}

/// `POST path` with `body` as `user`, answered by the other process.
async fn on_peer(app: &TestApp, peer: &Peer, path: &str, body: Value, user: &TestUser) -> Resp {
    let req = app.client.post(peer.url(path)).json(&body);
    app.send(req.header("Authorization", format!("Token {}", user.token)))
        .await
}

#[tokio::test]
async fn another_process_writes_reach_this_process_cache() {
    let app = spawn_app().await;
    let peer = app.spawn_peer(|s| s.background_jobs = false).await;
    let creator = app.create_user("rc_peer_creator", true);
    let fan = app.create_user("rc_peer_fan", false);
    let post = create_post(&app, &creator, "shared", &[]).await;
    let detail = format!("/content/api/content/{post}");
    let tiers = format!("/content/api/tiers?creator={}", creator.id);
    let before = warm(&app, &detail, Some(&fan)).await;
    assert_eq!(before["like_count"], 0);
    warm(&app, &tiers, None).await;
    warm(&app, "/authenticate/rest-auth/user/", Some(&fan)).await;

    // The peer writes; this process hears of it and answers what the peer would.
    let r = on_peer(
        &app,
        &peer,
        "/content/api/likes/",
        json!({"post": post}),
        &fan,
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let tier = json!({"name": "Peer tier", "price": 9900, "currency": "INR"});
    let r = on_peer(&app, &peer, "/content/api/tiers", tier, &creator).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = on_peer(
        &app,
        &peer,
        "/authenticate/rest-auth/logout/",
        json!({}),
        &fan,
    )
    .await;
    assert!(r.status < 300, "{} {}", r.status, r.text);
    app.settle().await;
    let after = ok(app.get(&detail, None).await).await;
    assert_eq!(after["like_count"], 1, "{after}");
    let list = ok(app.get(&tiers, None).await).await;
    assert!(list.to_string().contains("Peer tier"), "{list}");
    let r = app
        .get("/authenticate/rest-auth/user/", Some(&fan.token))
        .await;
    assert_eq!(r.status, 401, "{}", r.text);

    // An operator's SQL is a write like any other (TRUNCATE included).
    exec(
        &app,
        &format!("UPDATE posts SET title = 'from psql' WHERE id = {post}"),
    );
    app.settle().await;
    assert_eq!(ok(app.get(&detail, None).await).await["title"], "from psql");
    exec(&app, "TRUNCATE likes");
    app.settle().await;
    assert_eq!(ok(app.get(&detail, None).await).await["like_count"], 0);
    peer.stop().await;
    app.stop().await;
}

#[tokio::test]
async fn access_follows_memberships_and_the_clock_on_every_request() {
    let app = spawn_app().await;
    let creator = app.create_user("rc_gate_creator", true);
    let fan = app.create_user("rc_gate_fan", false);
    let tier = create_tier(&app, &creator, "Gold", 50000).await;
    let gated = create_post(&app, &creator, "gated", &[tier]).await;
    let detail = format!("/content/api/content/{gated}");
    let profile = format!("/feed/api/user-profile/{}", creator.id);
    let locked = warm(&app, &detail, Some(&fan)).await;
    assert_eq!(
        (locked["locked"].clone(), locked["body"].clone()),
        (json!(true), Value::Null)
    );
    let page = warm(&app, &profile, Some(&fan)).await;
    assert_eq!(page["results"][0]["locked"], true, "{page}");
    let tiers = format!("/content/api/tiers?creator={}", creator.id);
    let members = warm(&app, &tiers, None).await;
    assert_eq!(members["results"][0]["subscriber_count"], 0, "{members}");

    // A membership paid for three more seconds (written as the payment flow would).
    exec(&app, &format!(
        "INSERT INTO memberships (user_id, tier_id, kind, status, amount, currency,
             current_start, current_end, paid_count)
         VALUES ({}, {tier}, 'recurring', 'active', 50000, 'INR', now(), now() + interval '3 seconds', 1)",
        fan.id
    ));
    app.settle().await;
    let open = ok(app.get(&detail, Some(&fan.token)).await).await;
    assert_eq!(open["locked"], false, "{open}");
    assert_eq!(open["body"], "gated body");
    let page = ok(app.get(&profile, Some(&fan.token)).await).await;
    assert_eq!(page["results"][0]["locked"], false, "{page}");
    let members = ok(app.get(&tiers, None).await).await;
    assert_eq!(members["results"][0]["subscriber_count"], 1, "{members}");
    // The fan follows nobody: the membership alone puts the creator in the feed.
    let feed = warm(&app, "/feed/api/feed", Some(&fan)).await;
    assert_eq!(feed_titles(&feed), ["gated"]);
    assert_eq!(feed["results"][0]["locked"], false, "{feed}");

    // The period ends with no write at all: the next request is locked again.
    let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let r = ok(app.get(&detail, Some(&fan.token)).await).await;
        if r["locked"] == true {
            assert_eq!(r["body"], Value::Null, "{r}");
            break;
        }
        assert!(std::time::Instant::now() < until, "access never ended: {r}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let page = ok(app.get(&profile, Some(&fan.token)).await).await;
    assert_eq!(page["results"][0]["locked"], true, "{page}");
    assert_eq!(page["results"][0]["body"], Value::Null, "{page}");
    // ... and the feed no longer draws from the creator (kept only until the period's end).
    let feed = ok(app.get("/feed/api/feed", Some(&fan.token)).await).await;
    assert_eq!(feed["count"], 0, "{feed}");

    // Ungating the post opens it to everyone at once.
    let r = app
        .delete_json(
            &format!("/content/api/remove-tiers/{gated}"),
            &json!({"tiers": [tier]}),
            Some(&creator.token),
        )
        .await;
    assert!(r.status < 300, "{} {}", r.status, r.text);
    let open = ok(app.get(&detail, None).await).await;
    assert_eq!(open["locked"], false, "{open}");
    app.stop().await;
}

#[tokio::test]
async fn with_the_cache_off_every_read_goes_to_the_database() {
    let app = spawn_app_with(|s| s.read_cache.enabled = false).await;
    assert!(!app.reads.enabled());
    assert!(app.reads.versions().is_none());
    let creator = app.create_user("rc_off_creator", true);
    let post = create_post(&app, &creator, "plain", &[]).await;
    let detail = format!("/content/api/content/{post}");
    warm(&app, &detail, None).await;
    // A write the server is never told of is seen at once: nothing was kept.
    exec(
        &app,
        &format!("UPDATE posts SET title = 'direct' WHERE id = {post}"),
    );
    assert_eq!(ok(app.get(&detail, None).await).await["title"], "direct");
    app.stop().await;
}

/// `GET path` as `user` on the other process (`Some`) or this one.
async fn get_on(app: &TestApp, peer: Option<&Peer>, path: &str, user: &TestUser) -> Value {
    let url = peer.map_or_else(|| app.url(path), |p| p.url(path));
    let req = app.client.get(url);
    ok(app
        .send(req.header("Authorization", format!("Token {}", user.token)))
        .await)
    .await
}

/// The path and query of a `next` link (either process's).
fn link_path(link: &Value) -> Option<String> {
    let url = link.as_str()?;
    Some(url[url.find("/feed/")?..].to_owned())
}

/// Every page of `user`'s feed from `first` on, following `next` links, or in cursor mode
/// (`cursor_pages`: the page size) each page's `next_cursor` (either process answers the other's
/// links the same way): `(count, post ids)` per page.
async fn walk(
    app: &TestApp,
    peer: Option<&Peer>,
    first: &str,
    cursor_pages: Option<i64>,
    user: &TestUser,
) -> Vec<(i64, Vec<i64>)> {
    let mut pages = Vec::new();
    let mut path = Some(first.to_owned());
    while let Some(p) = path {
        let body = get_on(app, peer, &p, user).await;
        let ids = body["results"]
            .as_array()
            .expect("results")
            .iter()
            .map(|r| r["id"].as_i64().expect("id"))
            .collect();
        pages.push((body["count"].as_i64().expect("count"), ids));
        path = match cursor_pages {
            Some(size) => body["next_cursor"]
                .as_str()
                .map(|c| format!("/feed/api/feed?page_size={size}&cursor={c}")),
            None => link_path(&body["next"]),
        };
        assert!(pages.len() < 100, "no end to {first}");
    }
    pages
}

#[tokio::test]
async fn feed_pages_merged_in_memory_are_the_databases_pages() {
    // Timelines of 4 posts: shallow pages merge in memory, deeper pages (and pins below a
    // creator's newest posts) go to the database; the peer keeps no cache and asks the
    // database's feed query for every page.
    let app = spawn_app_with(|s| s.read_cache.timeline_posts = 4).await;
    let peer = app
        .spawn_peer(|s| {
            s.background_jobs = false;
            s.read_cache.enabled = false;
        })
        .await;
    let fan = app.create_user("rc_merge_fan", false);
    let creators: Vec<TestUser> = (0..4)
        .map(|i| app.create_user(&format!("rc_merge_creator{i}"), true))
        .collect();
    // The fan follows three of them; the fourth (not followed) posts last, so that the newest
    // post id is not a source's.
    for c in &creators[..3] {
        ok(app
            .post(
                &format!("/feed/api/follow/{}", c.id),
                &json!({}),
                Some(&fan.token),
            )
            .await)
        .await;
    }
    // 9, 3 and 0 posts, in one statement (one `now()`): times collide in fours, also across
    // creators (ties go to the higher id).
    let insert = |counts: &[(i64, i64)]| {
        let selects: Vec<String> = counts
            .iter()
            .map(|(creator, n)| {
                format!(
                    "SELECT {creator}, 'merge ' || i, 'body',
                            now() - make_interval(secs => (i % 4) * 10), now()
                     FROM generate_series(1, {n}) i"
                )
            })
            .collect();
        exec(
            &app,
            &format!(
                "INSERT INTO posts (creator_id, title, body, created_at, updated_at) {}",
                selects.join(" UNION ALL ")
            ),
        )
    };
    insert(&[(creators[0].id, 9), (creators[1].id, 3)]);
    insert(&[(creators[3].id, 2)]);
    app.settle().await;

    let both = |first: String, cursor_pages: Option<i64>| {
        let (app, peer, fan) = (&app, &peer, &fan);
        async move {
            let here = walk(app, None, &first, cursor_pages, fan).await;
            let there = walk(app, Some(peer), &first, cursor_pages, fan).await;
            assert_eq!(here, there, "{first}: this process against the database");
            here
        }
    };
    for size in [1, 2, 3, 5, 12, 20] {
        let pages = both(format!("/feed/api/feed?page_size={size}"), None).await;
        assert_eq!(pages[0].0, 12, "page size {size}");
        let seen: Vec<i64> = pages.iter().flat_map(|(_, ids)| ids.clone()).collect();
        let once: std::collections::HashSet<i64> = seen.iter().copied().collect();
        assert_eq!(
            (seen.len(), once.len()),
            (12, 12),
            "page size {size}: every post once"
        );
    }
    // Pinned walks while creators keep posting: page 1 is read, then new posts, then the rest
    // from page 1's link, on both processes. The second creator's timeline holds all their
    // posts (the pin is applied in memory); the first's does not (the database answers).
    for (creator, n) in [(creators[1].id, 1), (creators[0].id, 2)] {
        let page1 = get_on(&app, None, "/feed/api/feed?page_size=2", &fan).await;
        insert(&[(creator, n)]);
        app.settle().await;
        let rest = link_path(&page1["next"]).expect("a next link");
        let pinned = both(rest, None).await;
        let count = page1["count"].as_i64();
        assert!(pinned.iter().all(|(c, _)| Some(*c) == count), "{pinned:?}");
    }
    // Cursor pages, from the fresh page 1's cursor.
    let fresh = get_on(&app, None, "/feed/api/feed?page_size=4", &fan).await;
    assert_eq!(fresh["count"], 15);
    let cursor = fresh["next_cursor"].as_str().expect("a cursor");
    let pages = both(
        format!("/feed/api/feed?page_size=4&cursor={cursor}"),
        Some(4),
    )
    .await;
    let seen: usize = pages.iter().map(|(_, ids)| ids.len()).sum();
    assert_eq!(seen, 11, "{pages:?}");
    peer.stop().await;
    app.stop().await;
}

/// A statement that fires no trigger (`session_replication_role = replica`, as a replica's apply
/// or a careless operator would write): no process hears it, so a kept result shows what was
/// there before it until the result is read again, which tells a kept answer from a fresh one.
fn exec_unheard(app: &TestApp, sql: &str) {
    let mut c = app.conn();
    for s in ["SET session_replication_role = replica", sql] {
        diesel::RunQueryDsl::execute(diesel::sql_query(s), &mut c)
            .unwrap_or_else(|e| panic!("{s}: {e}"));
    }
}

/// A tier list's paying member counts change with the clock alone when a counted period ends:
/// the list is kept until exactly then (the database answers when, with the counts), however
/// long `OASIS_READ_CACHE_MAX_AGE_MS` is.
#[tokio::test]
async fn a_tier_list_is_kept_until_the_clock_changes_its_counts() {
    let app = spawn_app_with(|s| s.read_cache.max_age_ms = 600_000).await;
    let creator = app.create_user("rc_clock_creator", true);
    let fan = app.create_user("rc_clock_fan", false);
    let tier = create_tier(&app, &creator, "Gold", 50000).await;
    let tiers = format!("/content/api/tiers?creator={}", creator.id);
    const ENDS_IN: std::time::Duration = std::time::Duration::from_millis(1500);
    // One-time access ending 1.5 s from now, with no write when it does.
    let inserted = std::time::Instant::now();
    exec(&app, &format!(
        "INSERT INTO memberships (user_id, tier_id, kind, status, amount, currency,
             current_start, current_end, paid_count)
         VALUES ({}, {tier}, 'one_time', 'active', 50000, 'INR', now(), now() + interval '{} milliseconds', 1)",
        fan.id,
        ENDS_IN.as_millis()
    ));
    app.settle().await;
    let members = ok(app.get(&tiers, None).await).await;
    assert_eq!(members["results"][0]["subscriber_count"], 1, "{members}");
    // Kept: a rename nobody hears is not seen.
    exec_unheard(
        &app,
        &format!("UPDATE tiers SET name = 'Unheard' WHERE id = {tier}"),
    );
    let kept = ok(app.get(&tiers, None).await).await;
    assert_eq!(kept["results"][0]["name"], "Gold", "{kept}");
    let (zero, fresh) = loop {
        let r = ok(app.get(&tiers, None).await).await;
        if r["results"][0]["subscriber_count"] == 0 {
            break (std::time::Instant::now(), r);
        }
        assert_eq!(r["results"][0]["subscriber_count"], 1, "{r}");
        assert!(
            inserted.elapsed() < ENDS_IN * 5,
            "the count did not follow the clock: {r}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    };
    assert!(zero - inserted >= ENDS_IN, "the period had not ended");
    assert_eq!(
        fresh["results"][0]["name"], "Unheard",
        "read again: {fresh}"
    );
    app.stop().await;
}

/// A list the clock cannot change is kept for at most `OASIS_READ_CACHE_MAX_AGE_MS` (a safety net
/// for writes nobody hears); a hot one is read again in the background from half to three
/// quarters of that on, so its readers see what is new before it would expire under them (and
/// none of them waits for the database when it does).
#[tokio::test]
async fn a_hot_tier_list_is_read_again_before_it_expires() {
    const MAX_AGE: std::time::Duration = std::time::Duration::from_millis(3000);
    let app = spawn_app_with(|s| s.read_cache.max_age_ms = MAX_AGE.as_millis() as u64).await;
    let creator = app.create_user("rc_refresh_creator", true);
    let fan = app.create_user("rc_refresh_fan", false);
    let tier = create_tier(&app, &creator, "Gold", 50000).await;
    let tiers = format!("/content/api/tiers?creator={}", creator.id);
    // A live subscription: counted whatever the clock does.
    exec(&app, &format!(
        "INSERT INTO memberships (user_id, tier_id, kind, status, amount, currency,
             current_start, current_end, paid_count, razorpay_subscription_id)
         VALUES ({}, {tier}, 'recurring', 'active', 50000, 'INR', now(), now() + interval '1 second', 1, 'sub_rc_refresh')",
        fan.id
    ));
    app.settle().await;
    // This read keeps the list (the insert retired the one before).
    let loaded = std::time::Instant::now();
    let members = ok(app.get(&tiers, None).await).await;
    assert_eq!(members["results"][0]["subscriber_count"], 1, "{members}");
    exec_unheard(
        &app,
        &format!("UPDATE tiers SET name = 'Unheard' WHERE id = {tier}"),
    );
    let seen = loop {
        let r = ok(app.get(&tiers, None).await).await;
        assert_eq!(r["results"][0]["subscriber_count"], 1, "{r}");
        if r["results"][0]["name"] == "Unheard" {
            break std::time::Instant::now();
        }
        assert_eq!(r["results"][0]["name"], "Gold", "{r}");
        assert!(
            loaded.elapsed() < 2 * MAX_AGE,
            "the list was never read again: {r}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert!(
        seen - loaded >= MAX_AGE / 2,
        "read again before half its age ({:?})",
        seen - loaded
    );
    assert!(
        seen - loaded < MAX_AGE,
        "the change arrived only when the kept list expired ({:?} after it was read)",
        seen - loaded
    );
    app.stop().await;
}

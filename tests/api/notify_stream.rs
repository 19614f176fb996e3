//! The live notification stream (Server-Sent Events): across two application instances on one
//! database (LISTEN/NOTIFY), `Last-Event-ID` resume, the caps, tickets, hidden categories and
//! shutdown.
use oasis_tests::{json, spawn_app, spawn_app_with, SseStream, TestApp, TestUser};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(60);
const STREAM: &str = "/feed/api/notifications/stream";

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

async fn post(app: &TestApp, creator: &TestUser, title: &str) -> i64 {
    let r = app
        .post(
            "/content/api/content/",
            &json!({"title": title, "body": "b", "tiers": []}),
            Some(&creator.token),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.body["id"].as_i64().unwrap()
}

/// The notification id of `fan`'s new_post notification about `post_id` (waits for the
/// fan-out, bounded).
async fn notification_of(app: &TestApp, fan: &TestUser, post_id: i64) -> i64 {
    let deadline = Instant::now() + WAIT;
    loop {
        let id = app.query_i64(&format!(
            "SELECT COALESCE(max(id), 0) AS n FROM notifications
             WHERE recipient_id = {} AND post_id = {post_id}",
            fan.id
        ));
        if id > 0 {
            return id;
        }
        assert!(
            Instant::now() < deadline,
            "no notification of post {post_id}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn id_of(ev: &oasis_tests::SseEvent) -> i64 {
    ev.id.as_deref().expect("an id").parse().unwrap()
}

#[tokio::test]
async fn a_notification_raised_on_one_process_reaches_a_stream_held_on_another() {
    let a = spawn_app().await;
    // B runs no jobs: the fan-out certainly runs on A, and B only hears of it through
    // PostgreSQL.
    let b = a.spawn_peer(|s| s.background_jobs = false).await;
    let creator = a.create_user("sse_creator", true);
    let fan = a.create_user("sse_fan", false);
    follow(&a, &fan, &creator).await;

    let mut s = SseStream::open(&b.url(STREAM), Some(&fan.token), None)
        .await
        .expect("stream opens on B");
    let first = s.next(WAIT).await.expect("first event");
    assert_eq!(first.event.as_deref(), Some("unread_count"));
    assert_eq!(first.data, json!({"unread_count": 0}));

    let post_id = post(&a, &creator, "Across processes").await;
    let ev = s.next(WAIT).await.expect("the notification");
    assert_eq!(ev.event, None);
    let id = id_of(&ev);
    assert_eq!(id, notification_of(&a, &fan, post_id).await);
    // The same JSON as the inbox's item.
    let inbox = a
        .get("/feed/api/notifications/?max=1", Some(&fan.token))
        .await;
    assert_eq!(ev.data, inbox.body["all_list"][0], "the inbox item");
    assert_eq!(ev.data["kind"], "new_post");
    let count = s.next(WAIT).await.expect("the count");
    assert_eq!(count.event.as_deref(), Some("unread_count"));
    assert_eq!(count.data, json!({"unread_count": 1}));

    // Reading on A changes the count on B's stream.
    let r = a
        .post(
            "/feed/api/notifications/mark_all_as_read",
            &json!({}),
            Some(&fan.token),
        )
        .await;
    assert_eq!(r.status, 200);
    let count = s.next(WAIT).await.expect("the count");
    assert_eq!(count.event.as_deref(), Some("unread_count"));
    assert_eq!(count.data, json!({"unread_count": 0}));

    // Stopping B ends its stream (well before actix's 30 s graceful timeout).
    let started = Instant::now();
    b.stop().await;
    assert_eq!(s.next(WAIT).await, None, "the stream ended");
    assert!(
        started.elapsed() < Duration::from_secs(25),
        "ended at shutdown"
    );
}

#[tokio::test]
async fn last_event_id_resumes_without_loss_or_repetition() {
    let app = spawn_app().await;
    let creator = app.create_user("resume_creator", true);
    let fan = app.create_user("resume_fan", false);
    follow(&app, &fan, &creator).await;
    let url = app.url(STREAM);

    let mut s = SseStream::open(&url, Some(&fan.token), None).await.unwrap();
    s.until_unread(0, WAIT).await;
    let p1 = post(&app, &creator, "one").await;
    let got = s.until_unread(1, WAIT).await;
    let first = notification_of(&app, &fan, p1).await;
    assert_eq!(got.iter().map(id_of).collect::<Vec<_>>(), [first]);
    drop(s);

    // Missed while away.
    let mut missed = Vec::new();
    for t in ["two", "three", "four"] {
        let p = post(&app, &creator, t).await;
        missed.push(notification_of(&app, &fan, p).await);
    }
    let mut s = SseStream::open(&url, Some(&fan.token), Some(first))
        .await
        .unwrap();
    let got = s.until_unread(4, WAIT).await;
    assert_eq!(
        got.iter().map(id_of).collect::<Vec<_>>(),
        missed,
        "what was missed, once, in order"
    );
    // Then live again, nothing repeated.
    let p5 = post(&app, &creator, "five").await;
    let got = s.until_unread(5, WAIT).await;
    assert_eq!(
        got.iter().map(id_of).collect::<Vec<_>>(),
        [notification_of(&app, &fan, p5).await]
    );
    // Resuming from the newest id replays nothing.
    drop(s);
    let newest = notification_of(&app, &fan, p5).await;
    let mut s = SseStream::open(&url, Some(&fan.token), Some(newest))
        .await
        .unwrap();
    let first_event = s.next(WAIT).await.unwrap();
    assert_eq!(first_event.event.as_deref(), Some("unread_count"));
    assert_eq!(first_event.data["unread_count"], 5);
}

#[tokio::test]
async fn streams_over_the_caps_are_refused_with_a_json_429() {
    let app = spawn_app_with(|s| {
        s.sse.max_per_user = 2;
        s.sse.max_total = 3;
        s.sse.heartbeat_secs = 1;
    })
    .await;
    let url = app.url(STREAM);
    let ann = app.create_user("cap_ann", false);
    let bob = app.create_user("cap_bob", false);
    let cid = app.create_user("cap_cid", false);
    let a1 = SseStream::open(&url, Some(&ann.token), None).await.unwrap();
    let _a2 = SseStream::open(&url, Some(&ann.token), None).await.unwrap();
    let (status, body) = SseStream::open(&url, Some(&ann.token), None)
        .await
        .err()
        .expect("a third stream of ann is refused");
    assert_eq!(status, 429);
    assert_eq!(body["code"], "too_many_streams", "{body}");
    assert!(body["detail"].as_str().unwrap().contains("this user"));
    let _b1 = SseStream::open(&url, Some(&bob.token), None).await.unwrap();
    let (status, body) = SseStream::open(&url, Some(&cid.token), None)
        .await
        .err()
        .expect("over the process's cap");
    assert_eq!(status, 429);
    assert_eq!(body["code"], "too_many_streams");

    // A closed stream frees its place (the server notices at the latest at the next
    // heartbeat).
    drop(a1);
    let deadline = Instant::now() + WAIT;
    let _c1 = loop {
        match SseStream::open(&url, Some(&cid.token), None).await {
            Ok(s) => break s,
            Err((429, _)) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await
            }
            Err(e) => panic!("the freed place was not reused: {e:?}"),
        }
    };
    // Anonymous: 401 (not a place taken).
    let (status, _) = SseStream::open(&url, None, None).await.err().unwrap();
    assert_eq!(status, 401);
}

#[tokio::test]
async fn stream_tickets_are_single_use_expire_and_open_only_the_stream() {
    let app = spawn_app().await;
    let fan = app.create_user("ticket_fan", false);
    let r = app
        .post(
            "/feed/api/notifications/stream-ticket",
            &json!({}),
            Some(&fan.token),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["expires_in"], 60);
    let ticket = r.body["ticket"].as_str().unwrap().to_owned();
    assert!(ticket.len() >= 40);
    // Only its hash is stored.
    assert_eq!(
        app.query_i64(&format!(
            "SELECT count(*) AS n FROM notification_stream_tickets
             WHERE ticket_hash = sha256('{ticket}'::bytea) AND user_id = {}",
            fan.id
        )),
        1
    );
    assert_eq!(
        app.query_i64(&format!(
            "SELECT count(*) AS n FROM notification_stream_tickets t
             WHERE position('{ticket}' in t::text) > 0"
        )),
        0
    );
    // Not a credential anywhere else.
    let r = app
        .get(&format!("/feed/api/notifications/?ticket={ticket}"), None)
        .await;
    assert_eq!(r.status, 401);

    let with = |t: &str| app.url(&format!("{STREAM}?ticket={t}"));
    let mut s = SseStream::open(&with(&ticket), None, None)
        .await
        .expect("the ticket opens the stream");
    assert_eq!(
        s.next(WAIT).await.unwrap().event.as_deref(),
        Some("unread_count")
    );
    let (status, body) = SseStream::open(&with(&ticket), None, None)
        .await
        .err()
        .expect("single use");
    assert_eq!(status, 401);
    assert_eq!(body["code"], "authentication_failed");

    let r = app
        .post(
            "/feed/api/notifications/stream-ticket",
            &json!({}),
            Some(&fan.token),
        )
        .await;
    let old = r.body["ticket"].as_str().unwrap().to_owned();
    diesel::RunQueryDsl::execute(
        diesel::sql_query(
            "UPDATE notification_stream_tickets SET expires_at = now() - interval '1 second'",
        ),
        &mut app.conn(),
    )
    .unwrap();
    let (status, _) = SseStream::open(&with(&old), None, None)
        .await
        .err()
        .expect("expired");
    assert_eq!(status, 401);
    let (status, _) = SseStream::open(&with("forged"), None, None)
        .await
        .err()
        .unwrap();
    assert_eq!(status, 401);
    let r = app
        .post("/feed/api/notifications/stream-ticket", &json!({}), None)
        .await;
    assert_eq!(r.status, 401);
}

#[tokio::test]
async fn categories_turned_off_in_app_stay_out_of_the_stream() {
    let app = spawn_app().await;
    let creator = app.create_user("hid_creator", true);
    let fan = app.create_user("hid_fan", false);
    follow(&app, &fan, &creator).await;
    let settings = "/feed/api/notification-settings/";
    let r = app
        .patch(
            settings,
            &json!({"new_posts": {"in_app": false}}),
            Some(&fan.token),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let mut s = SseStream::open(&app.url(STREAM), Some(&fan.token), None)
        .await
        .unwrap();
    s.until_unread(0, WAIT).await;
    let hidden = post(&app, &creator, "hidden").await;
    notification_of(&app, &fan, hidden).await;
    let r = app
        .patch(
            settings,
            &json!({"new_posts": {"in_app": true}}),
            Some(&fan.token),
        )
        .await;
    assert_eq!(r.status, 200);
    let shown = post(&app, &creator, "shown").await;
    let ev = s.next_notification(WAIT).await.unwrap();
    assert_eq!(id_of(&ev), notification_of(&app, &fan, shown).await);
    assert_eq!(ev.data["action_object"], "shown", "{}", ev.data);
}

/// Every mail sent to `who` so far.
fn mails(smtp: &oasis_tests::smtp::SmtpServer, who: &TestUser) -> Vec<String> {
    smtp.messages()
        .into_iter()
        .filter(|m| m.to == [who.email.clone()])
        .map(|m| m.data)
        .collect()
}

async fn wait_mails(smtp: &oasis_tests::smtp::SmtpServer, who: &TestUser, n: usize) -> Vec<String> {
    let deadline = Instant::now() + WAIT;
    loop {
        let m = mails(smtp, who);
        if m.len() >= n {
            return m;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {n} mails to {}",
            m.len(),
            who.email
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn run_job(app: &TestApp, name: &str) {
    let out = oasis_server::workflows::cli::cli_jobs_run(app.settings.clone(), Some(name))
        .await
        .unwrap();
    assert_eq!(out, format!("{name}: done"));
}

#[tokio::test]
async fn daily_digest_and_access_ending_warnings_are_sent_once_with_preferences() {
    let smtp = oasis_tests::smtp::SmtpServer::start().await;
    let url = smtp.url();
    let app = spawn_app_with(|s| s.mail.smtp_url = Some(url.into())).await;
    let creator = app.create_user("dg_creator", true);
    let fan = app.create_user("dg_fan", false);
    let quiet = app.create_user("dg_quiet", false);
    follow(&app, &fan, &creator).await;
    follow(&app, &quiet, &creator).await;
    let r = app
        .patch(
            "/feed/api/notification-settings/",
            &json!({"new_posts": {"email": false}}),
            Some(&quiet.token),
        )
        .await;
    assert_eq!(r.status, 200);
    let tier = app
        .post(
            "/content/api/tiers/",
            &json!({"name": "Gold", "description": "d", "price": 50000, "currency": "INR", "benefits": ["a"]}),
            Some(&creator.token),
        )
        .await
        .body["id"]
        .as_i64()
        .unwrap();
    let open = post(&app, &creator, "Open letter").await;
    let r = app
        .post(
            "/content/api/content/",
            &json!({"title": "Members only", "body": "SECRET-DIGEST-BODY", "tiers": [tier]}),
            Some(&creator.token),
        )
        .await;
    assert_eq!(r.status, 201);
    let gated = r.body["id"].as_i64().unwrap();
    notification_of(&app, &fan, open).await;
    notification_of(&app, &fan, gated).await;

    run_job(&app, "notify.digest").await;
    let got = wait_mails(&smtp, &fan, 1).await;
    let digest = &got[0];
    assert!(digest.contains("Open letter") && digest.contains("Members only"));
    assert!(
        !digest.contains("SECRET-DIGEST-BODY"),
        "gated posts by title only"
    );
    assert!(
        digest.contains("List-Unsubscribe"),
        "optional: one-click unsubscribe"
    );
    // Same day: never twice.
    run_job(&app, "notify.digest").await;
    assert_eq!(
        app.query_i64(&format!(
            "SELECT count(*) AS n FROM notification_digests WHERE user_id = {}",
            fan.id
        )),
        1
    );
    assert_eq!(
        app.query_i64(&format!(
            "SELECT count(*) AS n FROM notification_digests WHERE user_id = {}",
            quiet.id
        )),
        0,
        "email off: no digest"
    );

    // Access ends in 2 days: a one-time purchase and a cancelled-at-cycle-end membership warn;
    // a renewing one does not.
    diesel::RunQueryDsl::execute(
        diesel::sql_query(format!(
            "INSERT INTO memberships (user_id, tier_id, kind, status, amount, currency, current_start,
                 current_end, paid_count, cancel_at_period_end)
             VALUES ({f}, {tier}, 'one_time', 'active', 50000, 'INR', now(), now() + interval '2 days', 1, false),
                    ({q}, {tier}, 'recurring', 'active', 50000, 'INR', now(), now() + interval '2 days', 1, true),
                    ({c}, {tier}, 'recurring', 'active', 50000, 'INR', now(), now() + interval '2 days', 1, false)",
            f = fan.id,
            q = quiet.id,
            c = app.create_user("dg_renews", false).id
        )),
        &mut app.conn(),
    )
    .unwrap();
    let before = mails(&smtp, &fan).len();
    run_job(&app, "notify.access_ending").await;
    run_job(&app, "notify.access_ending").await;
    let got = wait_mails(&smtp, &fan, before + 1).await;
    let warning = got.last().unwrap();
    assert!(
        warning.contains("Gold") && warning.contains("ends"),
        "{warning}"
    );
    wait_mails(&smtp, &quiet, 1).await;
    assert_eq!(
        app.query_i64("SELECT count(*) AS n FROM notifications WHERE kind = 'access_ending'"),
        2,
        "once per membership and period; renewing memberships are not warned"
    );
}

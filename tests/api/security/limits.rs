//! Every limit at its boundary and one past it: body sizes (413), upload sizes (413), page sizes
//! and list lengths (400 field errors), rate limits (429 with `Retry-After`) — always JSON in
//! Django REST framework's shapes. The configurable ones are set small here, which also shows the
//! setting is honoured.
use super::world::{self, png};
use oasis_tests::{json, spawn_app, spawn_app_with, Resp, TestApp, TestUser};
use serde_json::Value;
use std::time::Duration;

fn detail(r: &Resp, status: u16, code: &str, what: &str) {
    assert_eq!(r.status, status, "{what}: {}", r.text);
    assert!(
        r.header("content-type")
            .is_some_and(|c| c.starts_with("application/json")),
        "{what}: not JSON: {:?}",
        r.headers
    );
    assert_eq!(r.body["code"], code, "{what}: {}", r.text);
    assert!(r.body["detail"].is_string(), "{what}: {}", r.text);
}

fn field(r: &Resp, name: &str, what: &str) {
    assert_eq!(r.status, 400, "{what}: {}", r.text);
    assert!(
        r.body[name].is_array() || r.body[name].is_object(),
        "{what}: no field error on {name}: {}",
        r.text
    );
}

async fn raw_json(app: &TestApp, path: &str, body: Vec<u8>, token: &str) -> Resp {
    app.send(
        app.client
            .post(app.url(path))
            .header("Content-Type", "application/json")
            .header("Authorization", format!("Token {token}"))
            .body(body),
    )
    .await
}

/// A tier body of exactly `len` bytes (the description pads it).
fn tier_body(len: usize) -> Vec<u8> {
    let make = |pad: usize| {
        serde_json::to_vec(&json!({"name": "Sized", "description": "x".repeat(pad),
                                   "price": 500, "currency": "INR", "benefits": []}))
        .unwrap()
    };
    let base = make(0).len();
    let body = make(len - base);
    assert_eq!(body.len(), len);
    body
}

#[tokio::test]
async fn json_bodies_are_refused_one_byte_past_the_limit() {
    let app = spawn_app_with(|s| s.json_limit = 2048).await;
    let creator = app.create_user("lim_json", true);
    let r = raw_json(&app, "/content/api/tiers/", tier_body(2048), &creator.token).await;
    assert_eq!(r.status, 201, "at the limit: {}", r.text);
    let r = raw_json(&app, "/content/api/tiers/", tier_body(2049), &creator.token).await;
    detail(&r, 413, "payload_too_large", "one byte past");
    assert_eq!(
        app.query_i64("SELECT count(*) FROM tiers"),
        1,
        "only the body at the limit made a tier"
    );
}

/// A PNG of exactly `len` bytes: a valid head and IEND tail with a text chunk between.
fn png_of(len: usize) -> Vec<u8> {
    let p = png();
    let (head, iend) = p.split_at(p.len() - 12);
    let pad = len - p.len() - 12;
    let mut out = head.to_vec();
    out.extend_from_slice(&(pad as u32).to_be_bytes());
    out.extend_from_slice(b"tEXt");
    out.extend_from_slice(b"k\0");
    out.extend(std::iter::repeat_n(b'x', pad - 2));
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(iend);
    assert_eq!(out.len(), len);
    out
}

/// A PDF of exactly `len` bytes.
fn pdf_of(len: usize) -> Vec<u8> {
    let (head, tail) = (b"%PDF-1.4\n".as_slice(), b"\n%%EOF\n".as_slice());
    let mut out = head.to_vec();
    out.extend(std::iter::repeat_n(b'%', len - head.len() - tail.len()));
    out.extend_from_slice(tail);
    out
}

#[tokio::test]
async fn uploads_are_refused_one_byte_past_their_limit() {
    let app = spawn_app_with(|s| {
        s.max_image_bytes = 4096;
        s.max_attachment_bytes = 8192;
    })
    .await;
    let u = app.create_user("lim_upload", true);
    let r = world::upload(&app, Some(&u.token), "a.png", &png_of(4096)).await;
    assert_eq!(r.status, 201, "image at the limit: {}", r.text);
    let r = world::upload(&app, Some(&u.token), "b.png", &png_of(4097)).await;
    detail(&r, 413, "file_too_large", "image one byte past");
    let r = world::upload(&app, Some(&u.token), "a.pdf", &pdf_of(8192)).await;
    assert_eq!(r.status, 201, "attachment at the limit: {}", r.text);
    let r = world::upload(&app, Some(&u.token), "b.pdf", &pdf_of(8193)).await;
    detail(&r, 413, "file_too_large", "attachment one byte past");
    // An image past the image limit but within the attachment limit is still refused.
    let r = world::upload(&app, Some(&u.token), "c.png", &png_of(6000)).await;
    detail(
        &r,
        413,
        "file_too_large",
        "image within the attachment limit",
    );
    assert_eq!(app.query_i64("SELECT count(*) FROM media"), 2);
}

/// Every paginated list: `page_size` at the configured largest size and one past it.
#[tokio::test]
async fn page_sizes_are_refused_one_past_the_configured_largest() {
    for (max, app) in [
        (100, spawn_app().await),
        (20, spawn_app_with(|s| s.max_page_size = 20).await),
    ] {
        let creator = app.create_user(&format!("lim_page{max}"), true);
        let c = creator.id;
        let r = app
            .post(
                "/content/api/content/",
                &json!({"title": "t", "body": "b"}),
                Some(&creator.token),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        let p = r.body["id"].as_i64().unwrap();
        for path in [
            format!("/content/api/tiers/?creator={c}"),
            format!("/content/api/content/?creator={c}"),
            format!("/content/api/likes/?post={p}"),
            format!("/content/api/comment/?post={p}"),
            "/feed/api/feed?".to_owned(),
            format!("/feed/api/user-profile/{c}?"),
            "/feed/api/get-posts?".to_owned(),
            "/commissions/api/commission-creator/?".to_owned(),
            format!("/commissions/list/{c}?"),
            format!("/commissions/api/get-commissions?creator={c}"),
            "/commissions/api/get-commissions-user?".to_owned(),
            "/subscriptions/api/earnings/statement?from=2026-01-01&to=2026-02-01".to_owned(),
        ] {
            let sep = if path.ends_with('?') { "" } else { "&" };
            let r = app
                .get(&format!("{path}{sep}page_size={max}"), Some(&creator.token))
                .await;
            assert_eq!(r.status, 200, "{path} page_size={max}: {}", r.text);
            let r = app
                .get(
                    &format!("{path}{sep}page_size={}", max + 1),
                    Some(&creator.token),
                )
                .await;
            field(&r, "page_size", &format!("{path} page_size={}", max + 1));
            assert_eq!(
                r.body["page_size"][0],
                format!("Ensure this value is between 1 and {max}."),
                "{path}"
            );
        }
    }
}

async fn post_json(app: &TestApp, path: &str, body: Value, who: &TestUser) -> Resp {
    app.post(path, &body, Some(&who.token)).await
}

#[tokio::test]
async fn list_lengths_and_texts_are_refused_one_past_their_limit() {
    let app = spawn_app().await;
    let w = world::build(&app, "ll", &app.url("/_razorpay")).await;
    let owner = &w.owner;

    // A tier's benefits: 50.
    let tier = |n: usize| {
        json!({"name": "Many", "description": "d", "price": 500, "currency": "INR",
               "benefits": (0..n).map(|i| format!("b{i}")).collect::<Vec<_>>()})
    };
    let r = post_json(&app, "/content/api/tiers/", tier(50), owner).await;
    assert_eq!(r.status, 201, "50 benefits: {}", r.text);
    let r = post_json(&app, "/content/api/tiers/", tier(51), owner).await;
    field(&r, "benefits", "51 benefits");

    // A post's tiers (50) and attachments (20), distinct ones (repeats count once).
    let mut tiers = vec![w.tier];
    while tiers.len() < 51 {
        let r = post_json(
            &app,
            "/content/api/tiers/",
            json!({"name": format!("T{}", tiers.len()), "description": "d", "price": 500,
                   "currency": "INR", "benefits": []}),
            owner,
        )
        .await;
        assert_eq!(r.status, 201, "{}", r.text);
        tiers.push(r.body["id"].as_i64().unwrap());
    }
    let mut media = vec![w.media];
    while media.len() < 21 {
        let r = world::upload(
            &app,
            Some(&owner.token),
            "m.pdf",
            &pdf_of(100 + media.len()),
        )
        .await;
        assert_eq!(r.status, 201, "{}", r.text);
        media.push(r.body["id"].as_i64().unwrap());
    }
    let post = |t: usize, a: usize| json!({"title": "t", "body": "b", "tiers": tiers[..t], "attachments": media[..a]});
    let r = post_json(&app, "/content/api/content/", post(50, 20), owner).await;
    assert_eq!(r.status, 201, "50 tiers, 20 attachments: {}", r.text);
    let r = post_json(&app, "/content/api/content/", post(51, 1), owner).await;
    field(&r, "tiers", "51 tiers");
    let r = post_json(&app, "/content/api/content/", post(1, 21), owner).await;
    field(&r, "attachments", "21 attachments");

    // A comment: 5000 characters.
    let comment = |n: usize| json!({"post": w.post_public, "text": "é".repeat(n)});
    let r = post_json(&app, "/content/api/comment/", comment(5000), &w.member).await;
    assert_eq!(r.status, 201, "5000 characters: {}", r.text);
    let r = post_json(&app, "/content/api/comment/", comment(5001), &w.member).await;
    field(&r, "text", "5001 characters");

    // A cheer's message: 1000 characters.
    let cheer = |n: usize| {
        json!({"amount": 500, "currency": "INR", "creatorID": owner.id, "name": "n",
               "message": "m".repeat(n)})
    };
    let r = post_json(&app, "/subscriptions/create_order", cheer(1000), &w.fan).await;
    assert_eq!(r.status, 200, "1000 characters: {}", r.text);
    let r = post_json(&app, "/subscriptions/create_order", cheer(1001), &w.fan).await;
    field(&r, "message", "1001 characters");

    // The notifications list: `max` 1–100.
    let r = app
        .get("/feed/api/notifications/?max=100", Some(&owner.token))
        .await;
    assert_eq!(r.status, 200, "max=100: {}", r.text);
    let r = app
        .get("/feed/api/notifications/?max=101", Some(&owner.token))
        .await;
    field(&r, "max", "max=101");
}

#[tokio::test]
async fn failed_logins_are_throttled_past_the_limit() {
    let app = spawn_app_with(|s| s.login_max_failures = 3).await;
    let u = app.create_user("lim_login", false);
    app.set_password(u.id, world::PASSWORD);
    let login = |password: &'static str| {
        let body = json!({"username": "lim_login", "password": password});
        let app = &app;
        async move {
            app.post("/authenticate/rest-auth/login/", &body, None)
                .await
        }
    };
    for i in 1..=3 {
        let r = login("wrong-password").await;
        assert_eq!(r.status, 400, "failure {i}: {}", r.text);
    }
    let r = login("wrong-password").await;
    detail(&r, 429, "throttled", "failure 4");
    let retry: u64 = r
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!(retry > 0 && retry <= 900, "{retry}");
    // Even the right password waits now.
    detail(
        &login(world::PASSWORD).await,
        429,
        "throttled",
        "right password",
    );
}

#[tokio::test]
async fn registrations_are_throttled_past_the_hourly_limit() {
    let app = spawn_app_with(|s| s.registrations_per_hour = 2).await;
    let register = |n: u32| {
        let body = json!({"username": format!("lim_reg{n}"), "email": format!("lim_reg{n}@example.com"),
                          "password": world::PASSWORD, "password2": world::PASSWORD, "login_type": "manual"});
        let app = &app;
        async move {
            app.post("/authenticate/rest-auth/registration/", &body, None)
                .await
        }
    };
    for n in 1..=2 {
        let r = register(n).await;
        assert_eq!(r.status, 201, "registration {n}: {}", r.text);
    }
    let r = register(3).await;
    detail(&r, 429, "throttled", "registration 3");
    assert!(r.header("retry-after").is_some());
    assert_eq!(
        app.query_i64("SELECT count(*) FROM users WHERE username LIKE 'lim_reg%'"),
        2
    );
}

/// Account emails per account and hour (`OASIS_IDENTITY_MAILS_PER_HOUR`): past the limit the
/// answer is the same (nothing to learn about the account) but nothing more is sent.
#[tokio::test]
async fn account_emails_stop_past_the_hourly_limit() {
    let app = spawn_app_with(|s| s.identity_mails_per_hour = 2).await;
    let u = app.create_user("lim_mail", false);
    for i in 1..=3 {
        let r = app
            .post(
                "/authenticate/rest-auth/password/reset/",
                &json!({"email": u.email}),
                None,
            )
            .await;
        assert_eq!(r.status, 200, "request {i}: {}", r.text);
    }
    let sent = || {
        std::fs::read_dir(&app.settings.mail.outbox)
            .map(|d| d.count())
            .unwrap_or(0)
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while sent() < 2 {
        assert!(std::time::Instant::now() < deadline, "mails never sent");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Every mail job has run: exactly the two allowed were sent.
    while app.query_i64("SELECT count(*) FROM jobs WHERE kind = 'mail.send' AND done_at IS NULL")
        > 0
    {
        assert!(std::time::Instant::now() < deadline, "mail jobs never ran");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(sent(), 2);
    assert_eq!(
        app.query_i64("SELECT count(*) FROM jobs WHERE kind = 'mail.send'"),
        2
    );
}

/// An upload carries one part, `file`; whatever else comes with it is bounded in all (64 KiB of
/// other parts together, each part's headers counted), not per part, so a body of endless small
/// parts is refused instead of being read for as long as the client sends it.
#[tokio::test]
async fn uploads_with_endless_other_parts_are_refused() {
    let app = spawn_app().await;
    let u = app.create_user("lim_parts", true);
    let b = world::BOUNDARY;
    let mut body = Vec::new();
    for i in 0..200 {
        body.extend_from_slice(
            format!(
                "--{b}\r\nContent-Disposition: form-data; name=\"extra{i}\"\r\n\r\n{}\r\n",
                "x".repeat(1000)
            )
            .as_bytes(),
        );
    }
    body.extend_from_slice(&world::multipart("a.png", &png()));
    let r = app
        .send(
            app.client
                .post(app.url("/content/api/media/"))
                .header("Content-Type", format!("multipart/form-data; boundary={b}"))
                .header("Authorization", format!("Token {}", u.token))
                .body(body),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(r.body["code"], "invalid_upload", "{}", r.text);
    // A few small ones are read and ignored.
    let mut body =
        format!("--{b}\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhello\r\n")
            .into_bytes();
    body.extend_from_slice(&world::multipart("a.png", &png()));
    let r = app
        .send(
            app.client
                .post(app.url("/content/api/media/"))
                .header("Content-Type", format!("multipart/form-data; boundary={b}"))
                .header("Authorization", format!("Token {}", u.token))
                .body(body),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
}

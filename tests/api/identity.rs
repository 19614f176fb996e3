//! Identity end to end: registration, email verification (outbox and SMTP), login and API keys,
//! JWT (rotation, reuse, tampering), throttling, password flows, profiles, Google and Facebook.
use base64::Engine;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use oasis_identity::jwt::{JwtKeys, TokenType};
use oasis_tests::graph::GraphApi;
use oasis_tests::oidc::OidcProvider;
use oasis_tests::smtp::SmtpServer;
use oasis_tests::{json, spawn_app, spawn_app_with, Resp, TestApp};
use secrecy::ExposeSecret;
use std::time::Duration;

const PASSWORD: &str = "Tr0ub4dor&3-horse";

// ---------------------------------------------------------------------------------------------
// helpers

/// Plain-text bodies of the outbox emails addressed to `to`, oldest first.
fn outbox_mails(app: &TestApp, to: &str) -> Vec<String> {
    let dir = &app.settings.mail.outbox;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut mails: Vec<(std::time::SystemTime, String)> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
        .filter_map(|e| {
            let text = std::fs::read_to_string(e.path()).ok()?;
            let modified = e.metadata().ok()?.modified().ok()?;
            Some((modified, text))
        })
        .filter(|(_, t)| {
            t.lines()
                .any(|l| l.eq_ignore_ascii_case(&format!("To: {to}")))
        })
        .collect();
    mails.sort_by_key(|m| m.0);
    mails.into_iter().map(|m| m.1).collect()
}

/// Waits (bounded) until at least `n` emails to `to` are in the outbox; returns the n-th.
async fn wait_mail(app: &TestApp, to: &str, n: usize) -> String {
    for _ in 0..200 {
        let mails = outbox_mails(app, to);
        if mails.len() >= n {
            return mails[n - 1].clone();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no email #{n} to {to} in the outbox");
}

/// The text after `marker` up to the next `/` or whitespace.
fn after<'a>(text: &'a str, marker: &str) -> &'a str {
    let i = text
        .find(marker)
        .unwrap_or_else(|| panic!("{marker} not in {text}"))
        + marker.len();
    let rest = &text[i..];
    let end = rest
        .find(|c: char| c == '/' || c.is_whitespace())
        .unwrap_or(rest.len());
    &rest[..end]
}

fn confirm_key(mail: &str) -> String {
    after(mail, "account-confirm-email/").to_owned()
}

async fn register(app: &TestApp, username: &str, email: &str) -> Resp {
    app.post(
        "/authenticate/rest-auth/registration/",
        &json!({
            "email": email, "first_name": "Ada", "last_name": "Lovelace",
            "username": username, "password": PASSWORD, "password2": PASSWORD,
            "login_type": "manual"
        }),
        None,
    )
    .await
}

/// Registers and verifies; returns the email.
async fn verified_user(app: &TestApp, username: &str) -> String {
    let email = format!("{username}@example.com");
    let r = register(app, username, &email).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let mail = wait_mail(app, &email, 1).await;
    let r = app
        .post(
            "/authenticate/rest-auth/registration/verify-email/",
            &json!({"key": confirm_key(&mail)}),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    email
}

async fn login(app: &TestApp, username: &str, password: &str) -> Resp {
    app.post(
        "/authenticate/rest-auth/login/",
        &json!({"username": username, "password": password}),
        None,
    )
    .await
}

async fn jwt_pair(app: &TestApp, username: &str, password: &str) -> (String, String) {
    let r = app
        .post(
            "/authenticate/api/token/",
            &json!({"username": username, "password": password}),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    (
        r.body["access"].as_str().unwrap().to_owned(),
        r.body["refresh"].as_str().unwrap().to_owned(),
    )
}

fn keys(app: &TestApp) -> JwtKeys {
    JwtKeys::from_secret(
        app.settings.secret().expose_secret().as_bytes(),
        app.settings.jwt_access_ttl,
        app.settings.jwt_refresh_ttl,
    )
}

fn count(app: &TestApp, sql: &str) -> i64 {
    app.query_i64(sql)
}

fn b64(v: &serde_json::Value) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
}

// ---------------------------------------------------------------------------------------------
// registration, verification, login

#[tokio::test]
async fn register_verify_by_link_then_login_with_token_key() {
    let app = spawn_app().await;
    let r = register(&app, "ada", "Ada@Example.com").await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body, json!({"detail": "Verification e-mail sent."}));

    // Unverified: refused, but only with the right password.
    let r = login(&app, "ada", PASSWORD).await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.body,
        json!({"non_field_errors": ["E-mail is not verified."]})
    );

    let mail = wait_mail(&app, "Ada@Example.com", 1).await;
    let key = confirm_key(&mail);
    assert_eq!(key.len(), 64);
    let link = format!(
        "{}/authenticate/rest-auth/registration/account-confirm-email/{key}/",
        app.settings.public_url
    );
    assert!(mail.contains(&link), "link in {mail}");
    assert!(
        mail.contains(&format!("key in the app: {key}")),
        "key in {mail}"
    );

    let r = app
        .get(
            &format!("/authenticate/rest-auth/registration/account-confirm-email/{key}/"),
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().starts_with("text/html"));
    assert!(r.text.contains("E-mail confirmed"), "{}", r.text);
    // Single use.
    let r = app
        .get(
            &format!("/authenticate/rest-auth/registration/account-confirm-email/{key}"),
            None,
        )
        .await;
    assert_eq!(r.status, 404);
    // A person followed the link: the refusal is a page too.
    assert!(r.header("content-type").unwrap().starts_with("text/html"));
    assert!(r.text.contains("invalid"), "{}", r.text);

    // Login by username (any case) or by email (any case).
    let r = login(&app, "ADA", PASSWORD).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let token = r.body["key"].as_str().unwrap().to_owned();
    assert_eq!(token.len(), 40);
    assert!(token.chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(r.body["is_creator"], false);
    let user_id = r.body["user_id"].as_i64().unwrap();
    let r = app
        .post(
            "/authenticate/rest-auth/login",
            &json!({"email": "ada@EXAMPLE.com", "password": PASSWORD}),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["user_id"], user_id);

    let r = app.get("/authenticate/rest-auth/user/", Some(&token)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.body,
        json!({"pk": user_id, "username": "ada", "email": "Ada@Example.com",
               "first_name": "Ada", "last_name": "Lovelace", "is_creator": false,
               "profile_pic": null, "bio": "", "login_type": "manual"})
    );

    // Only hashes are stored.
    #[derive(QueryableByName)]
    struct H {
        #[diesel(sql_type = Text)]
        h: String,
    }
    let stored: Vec<H> = diesel::sql_query("SELECT encode(key_hash, 'hex') AS h FROM auth_tokens")
        .load(&mut app.conn())
        .unwrap();
    assert_eq!(stored.len(), 2);
    assert!(stored.iter().all(|s| s.h != token && s.h.len() == 64));
    assert_eq!(
        count(
            &app,
            &format!(
                "SELECT count(*) AS n FROM auth_tokens WHERE key_hash = sha256('{token}'::bytea)"
            )
        ),
        1
    );
    assert_eq!(
        count(
            &app,
            &format!("SELECT count(*) AS n FROM email_confirmations WHERE key_hash = sha256('{key}'::bytea)")
        ),
        1
    );
    // Password stored as bcrypt at the configured cost.
    #[derive(QueryableByName)]
    struct P {
        #[diesel(sql_type = Text)]
        password_hash: String,
    }
    let p: P = diesel::sql_query("SELECT password_hash FROM users WHERE username = 'ada'")
        .get_result(&mut app.conn())
        .unwrap();
    assert!(
        p.password_hash.starts_with("$2b$04$"),
        "{}",
        p.password_hash
    );
}

#[tokio::test]
async fn verify_email_post_is_single_use_and_keys_expire() {
    let app = spawn_app().await;
    register(&app, "bob", "bob@example.com").await;
    let key = confirm_key(&wait_mail(&app, "bob@example.com", 1).await);
    for path in [
        "/authenticate/rest-auth/registration/verify-email",
        "/authenticate/rest-auth/registration/verify-email/",
    ] {
        let r = app.post(path, &json!({"key": "0".repeat(64)}), None).await;
        assert_eq!(r.status, 404, "{path}");
    }
    let r = app
        .post(
            "/authenticate/rest-auth/registration/verify-email/",
            &json!({}),
            None,
        )
        .await;
    assert_eq!(r.body, json!({"key": ["This field is required."]}));
    let r = app
        .post(
            "/authenticate/rest-auth/registration/verify-email/",
            &json!({"key": key}),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body, json!({"detail": "ok"}));
    let r = app
        .post(
            "/authenticate/rest-auth/registration/verify-email/",
            &json!({"key": key}),
            None,
        )
        .await;
    assert_eq!(r.status, 404);

    // An expired key (older than 3 days) does not verify.
    register(&app, "carol", "carol@example.com").await;
    let key = confirm_key(&wait_mail(&app, "carol@example.com", 1).await);
    diesel::sql_query(
        "UPDATE email_confirmations SET created_at = now() - interval '4 days',
                expires_at = now() - interval '1 day' WHERE used_at IS NULL",
    )
    .execute(&mut app.conn())
    .unwrap();
    let r = app
        .post(
            "/authenticate/rest-auth/registration/verify-email/",
            &json!({"key": key}),
            None,
        )
        .await;
    assert_eq!(r.status, 404);
    // Keys live 3 days.
    assert_eq!(
        count(
            &app,
            "SELECT count(*) AS n FROM email_confirmations
             WHERE used_at IS NOT NULL AND expires_at - created_at BETWEEN interval '71 hours' AND interval '73 hours'"
        ),
        1
    );
    let r = login(&app, "carol", PASSWORD).await;
    assert_eq!(r.body["non_field_errors"][0], "E-mail is not verified.");
}

#[tokio::test]
async fn registration_validation_errors_are_field_errors() {
    let app = spawn_app().await;
    let path = "/authenticate/rest-auth/registration";
    let r = app.post(path, &json!({}), None).await;
    assert_eq!(r.status, 400);
    for f in ["email", "username", "password", "password2"] {
        assert_eq!(
            r.body[f],
            json!(["This field is required."]),
            "{f}: {}",
            r.text
        );
    }
    let base = json!({"email": "x@example.com", "first_name": "X", "last_name": "Y",
                      "username": "xavier", "password": PASSWORD, "password2": PASSWORD,
                      "login_type": "manual"});
    let with = |k: &str, v: serde_json::Value| {
        let mut b = base.clone();
        b[k] = v;
        b
    };
    let r = app
        .post(path, &with("password2", json!("Different-Pass-99")), None)
        .await;
    assert_eq!(
        r.body,
        json!({"password2": ["The two password fields didn't match."]})
    );
    let cases = [
        (
            "short",
            "This password is too short. It must contain at least 8 characters.",
        ),
        ("password123", "This password is too common."),
        ("83749261537", "This password is entirely numeric."),
        ("xavier2024", "The password is too similar to the username."),
    ];
    for (pw, msg) in cases {
        let mut b = with("password", json!(pw));
        b["password2"] = json!(pw);
        let r = app.post(path, &b, None).await;
        assert_eq!(r.status, 400, "{pw}");
        let msgs: Vec<&str> = r.body["password"]
            .as_array()
            .unwrap_or_else(|| panic!("{pw}: {}", r.text))
            .iter()
            .map(|m| m.as_str().unwrap())
            .collect();
        assert!(msgs.contains(&msg), "{pw}: {msgs:?}");
    }
    let r = app
        .post(path, &with("email", json!("not-an-email")), None)
        .await;
    assert_eq!(r.body, json!({"email": ["Enter a valid email address."]}));
    let r = app
        .post(path, &with("username", json!("no spaces!")), None)
        .await;
    assert!(r.body["username"][0]
        .as_str()
        .unwrap()
        .contains("valid username"));
    let r = app.post(path, &with("username", json!("ab")), None).await;
    assert!(r.body["username"][0]
        .as_str()
        .unwrap()
        .contains("at least 3"));
    let r = app
        .post(path, &with("first_name", json!("n".repeat(151))), None)
        .await;
    assert!(r.body["first_name"][0].as_str().unwrap().contains("150"));
    let r = app
        .post(path, &with("login_type", json!("google")), None)
        .await;
    assert!(r.body["login_type"].is_array(), "{}", r.text);

    // Uniqueness ignores case, for email and username.
    let r = app.post(path, &base, None).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = app
        .post(path, &with("email", json!("X@EXAMPLE.COM")), None)
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.body,
        json!({"email": ["A user is already registered with this e-mail address."],
               "username": ["A user with that username already exists."]})
    );
    let mut b = with("username", json!("XAVIER"));
    b["email"] = json!("other@example.com");
    let r = app.post(path, &b, None).await;
    assert_eq!(
        r.body,
        json!({"username": ["A user with that username already exists."]})
    );
    assert_eq!(count(&app, "SELECT count(*) AS n FROM users"), 1);
    // Nothing but JSON errors, never a 500.
    let r = app
        .send(
            app.client
                .post(app.url(path))
                .header("content-type", "application/json")
                .body("{not json"),
        )
        .await;
    assert_eq!(r.status, 400);
    let r = app.post(path, &with("email", json!(42)), None).await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn wrong_credentials_look_the_same_whether_or_not_the_account_exists() {
    let app = spawn_app().await;
    verified_user(&app, "dora").await;
    let wrong_pw = login(&app, "dora", "wrong-password-1").await;
    let no_user = login(&app, "nobody_here", "wrong-password-1").await;
    let by_email = app
        .post(
            "/authenticate/rest-auth/login/",
            &json!({"email": "nobody@example.com", "password": "x"}),
            None,
        )
        .await;
    for r in [&wrong_pw, &no_user, &by_email] {
        assert_eq!(r.status, 400);
        assert_eq!(
            r.body,
            json!({"non_field_errors": ["Unable to log in with provided credentials."]})
        );
    }
    assert_eq!(wrong_pw.text, no_user.text);
    let r = app
        .post(
            "/authenticate/rest-auth/login/",
            &json!({"password": "x"}),
            None,
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.body["non_field_errors"].is_array());
    let r = app
        .post(
            "/authenticate/rest-auth/login/",
            &json!({"username": "dora"}),
            None,
        )
        .await;
    assert_eq!(r.body, json!({"password": ["This field is required."]}));
    // A social account has no usable password: the same refusal.
    diesel::sql_query("UPDATE users SET password_hash = NULL WHERE username = 'dora'")
        .execute(&mut app.conn())
        .unwrap();
    let r = login(&app, "dora", PASSWORD).await;
    assert_eq!(r.text, no_user.text);
}

#[tokio::test]
async fn resend_email_and_reset_do_not_reveal_accounts() {
    let app = spawn_app().await;
    register(&app, "erin", "erin@example.com").await;
    wait_mail(&app, "erin@example.com", 1).await;
    verified_user(&app, "fred").await;

    let resend = |email: &'static str| {
        let app = &app;
        async move {
            app.post(
                "/authenticate/rest-auth/registration/resend-email/",
                &json!({ "email": email }),
                None,
            )
            .await
        }
    };
    let a = resend("erin@example.com").await;
    let b = resend("ghost@example.com").await;
    let c = resend("fred@example.com").await;
    for r in [&a, &b, &c] {
        assert_eq!(r.status, 200);
        assert_eq!(r.body, json!({"detail": "ok"}));
    }
    assert_eq!(a.text, b.text);
    // Only the unverified account got a new email; the new key works, the old one too.
    let second = wait_mail(&app, "erin@example.com", 2).await;
    let r = app
        .post(
            "/authenticate/rest-auth/registration/verify-email/",
            &json!({"key": confirm_key(&second)}),
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(outbox_mails(&app, "fred@example.com").len(), 1);
    assert!(outbox_mails(&app, "ghost@example.com").is_empty());

    let reset = |email: &'static str| {
        let app = &app;
        async move {
            app.post(
                "/authenticate/rest-auth/password/reset/",
                &json!({ "email": email }),
                None,
            )
            .await
        }
    };
    let a = reset("fred@example.com").await;
    let b = reset("ghost@example.com").await;
    assert_eq!(a.status, 200);
    assert_eq!(a.text, b.text);
    assert_eq!(
        a.body,
        json!({"detail": "Password reset e-mail has been sent."})
    );
    wait_mail(&app, "fred@example.com", 2).await;
    assert!(outbox_mails(&app, "ghost@example.com").is_empty());
    let r = app
        .post(
            "/authenticate/rest-auth/password/reset/",
            &json!({"email": "bad"}),
            None,
        )
        .await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn identity_emails_per_account_are_capped_without_revealing_it() {
    let app = spawn_app().await;
    let email = verified_user(&app, "vera").await; // 1 email (verification)
    let mut answers = Vec::new();
    for _ in 0..6 {
        let r = app
            .post(
                "/authenticate/rest-auth/password/reset/",
                &json!({ "email": email }),
                None,
            )
            .await;
        answers.push((r.status, r.text));
    }
    assert!(
        answers.windows(2).all(|w| w[0] == w[1]),
        "same answer: {answers:?}"
    );
    // Five per hour in all: the verification email and four resets.
    assert_eq!(
        count(
            &app,
            "SELECT count(*) AS n FROM jobs WHERE kind = 'mail.send'"
        ),
        5
    );
    let r = app
        .patch(
            "/authenticate/rest-auth/user/",
            &json!({"email": "vera2@example.com"}),
            Some(&app.create_user("unused_w", false).token),
        )
        .await;
    assert_eq!(r.status, 200, "another account is not capped");
}

// ---------------------------------------------------------------------------------------------
// throttling

#[tokio::test]
async fn failed_logins_are_throttled_per_account_and_per_address() {
    let app = spawn_app_with(|s| {
        s.login_max_failures = 3;
        s.login_window_secs = 600;
    })
    .await;
    verified_user(&app, "gina").await;
    for _ in 0..3 {
        let r = login(&app, "gina", "wrong-password").await;
        assert_eq!(r.status, 400);
    }
    // Now even the right password is refused until the window passes.
    let r = login(&app, "gina", PASSWORD).await;
    assert_eq!(r.status, 429, "{}", r.text);
    assert_eq!(r.body["code"], "throttled");
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=600).contains(&retry), "{retry}");
    // Through the other login spelling and the JWT endpoint too.
    let r = app
        .post(
            "/authenticate/api/token/",
            &json!({"email": "gina@example.com", "password": PASSWORD}),
            None,
        )
        .await;
    assert_eq!(r.status, 429);
    // Stored in PostgreSQL (shared by every server process).
    assert!(count(&app, "SELECT count(*) AS n FROM login_failures") >= 6);
    // The window passes: failures older than it no longer count.
    diesel::sql_query("UPDATE login_failures SET failed_at = now() - interval '11 minutes'")
        .execute(&mut app.conn())
        .unwrap();
    let r = login(&app, "gina", PASSWORD).await;
    assert_eq!(r.status, 200, "{}", r.text);

    // Per address: failures spread over many names from one client add up.
    let app = spawn_app_with(|s| s.login_max_failures = 3).await;
    verified_user(&app, "hank").await;
    for name in ["u1x", "u2x", "u3x"] {
        assert_eq!(login(&app, name, "nope-nope").await.status, 400);
    }
    let r = login(&app, "hank", PASSWORD).await;
    assert_eq!(r.status, 429);
    assert!(r.header("retry-after").is_some());
}

#[tokio::test]
async fn throttling_is_shared_by_server_processes_on_one_database() {
    let a = spawn_app_with(|s| s.login_max_failures = 2).await;
    let url = a.db.url().to_owned();
    let b = spawn_app_with(move |s| {
        s.login_max_failures = 2;
        s.database_url = Some(url);
    })
    .await;
    verified_user(&a, "uma").await;
    assert_eq!(login(&a, "uma", "wrong-password").await.status, 400);
    assert_eq!(login(&b, "uma", "wrong-password").await.status, 400);
    assert_eq!(login(&a, "uma", PASSWORD).await.status, 429);
    assert_eq!(login(&b, "uma", PASSWORD).await.status, 429);
}

// ---------------------------------------------------------------------------------------------
// logout, JWT

#[tokio::test]
async fn logout_revokes_the_presented_key_only() {
    let app = spawn_app().await;
    verified_user(&app, "ivan").await;
    let k1 = login(&app, "ivan", PASSWORD).await.body["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let k2 = login(&app, "ivan", PASSWORD).await.body["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = app
        .post("/authenticate/rest-auth/logout/", &json!({}), Some(&k1))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, json!({"detail": "Successfully logged out."}));
    let r = app.get("/authenticate/rest-auth/user/", Some(&k1)).await;
    assert_eq!(r.status, 401);
    let r = app.get("/authenticate/rest-auth/user/", Some(&k2)).await;
    assert_eq!(r.status, 200);
    // An empty body works too; anonymous logout is harmless.
    let r = app
        .send(
            app.client
                .post(app.url("/authenticate/rest-auth/logout"))
                .header("Authorization", format!("Token {k2}")),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        app.get("/authenticate/rest-auth/user/", Some(&k2))
            .await
            .status,
        401
    );
    let r = app
        .post("/authenticate/rest-auth/logout/", &json!({}), None)
        .await;
    assert_eq!(r.status, 200);
    let r = app.get("/authenticate/rest-auth/user/", None).await;
    assert_eq!(r.status, 401);
}

#[tokio::test]
async fn jwt_pair_authenticates_rotates_and_detects_reuse() {
    let app = spawn_app().await;
    verified_user(&app, "jane").await;
    let (access, refresh) = jwt_pair(&app, "jane", PASSWORD).await;
    let claims = keys(&app)
        .decode(&access, Some(TokenType::Access), chrono::Utc::now())
        .unwrap();
    assert_eq!(claims.exp - claims.iat, 300);
    assert_eq!(claims.token_type, "access");
    // Claims are simplejwt's.
    let payload: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(access.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    let mut names: Vec<&str> = payload
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    names.sort();
    assert_eq!(names, ["exp", "iat", "jti", "token_type", "user_id"]);
    let header: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(access.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["alg"], "HS256");

    let r = app
        .get("/authenticate/rest-auth/user/", Some(&access))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["username"], "jane");

    let r = app
        .post(
            "/authenticate/api/token/verify/",
            &json!({"token": access}),
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, json!({}));

    // Rotation.
    let r = app
        .post(
            "/authenticate/api/token/refresh/",
            &json!({"refresh": refresh}),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let access2 = r.body["access"].as_str().unwrap().to_owned();
    let refresh2 = r.body["refresh"].as_str().unwrap().to_owned();
    assert_ne!(refresh2, refresh);
    assert_eq!(
        app.get("/authenticate/rest-auth/user/", Some(&access2))
            .await
            .status,
        200
    );

    // Reuse of the rotated token: refused and the whole family dies.
    let r = app
        .post(
            "/authenticate/api/token/refresh",
            &json!({"refresh": refresh}),
            None,
        )
        .await;
    assert_eq!(r.status, 401);
    assert_eq!(r.body["code"], "token_not_valid");
    let r = app
        .post(
            "/authenticate/api/token/refresh/",
            &json!({"refresh": refresh2}),
            None,
        )
        .await;
    assert_eq!(r.status, 401, "family revoked: {}", r.text);
    let r = app
        .post(
            "/authenticate/api/token/verify/",
            &json!({"token": refresh2}),
            None,
        )
        .await;
    assert_eq!(r.status, 401);
    assert_eq!(
        count(
            &app,
            "SELECT count(*) AS n FROM refresh_tokens WHERE revoked_at IS NOT NULL"
        ),
        2
    );
    // Another login is a separate family and still works.
    let (_, other) = jwt_pair(&app, "jane", PASSWORD).await;
    let r = app
        .post(
            "/authenticate/api/token/refresh/",
            &json!({"refresh": other}),
            None,
        )
        .await;
    assert_eq!(r.status, 200);

    // Wrong credentials at the JWT endpoint: simplejwt's 401.
    let r = app
        .post(
            "/authenticate/api/token/",
            &json!({"username": "jane", "password": "nope-nope-nope"}),
            None,
        )
        .await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.body["detail"],
        "No active account found with the given credentials"
    );
    let r = app
        .post("/authenticate/api/token/refresh/", &json!({}), None)
        .await;
    assert_eq!(r.body, json!({"refresh": ["This field is required."]}));
}

#[tokio::test]
async fn forged_expired_and_mistyped_jwts_are_401() {
    let app = spawn_app().await;
    verified_user(&app, "kate").await;
    let (access, refresh) = jwt_pair(&app, "kate", PASSWORD).await;
    let k = keys(&app);
    let user_id = k.decode(&access, None, chrono::Utc::now()).unwrap().user_id;
    let now = chrono::Utc::now();

    let expired = k
        .issue(
            user_id,
            0,
            TokenType::Access,
            now - chrono::Duration::seconds(301),
        )
        .0;
    let parts: Vec<&str> = access.split('.').collect();
    let tampered_payload = b64(&json!({
        "token_type": "access", "exp": now.timestamp() + 300, "iat": now.timestamp(),
        "jti": "abc", "user_id": user_id + 1
    }));
    let tampered = format!("{}.{}.{}", parts[0], tampered_payload, parts[2]);
    let none_header = b64(&json!({"alg": "none", "typ": "JWT"}));
    let alg_none = format!("{none_header}.{}.", parts[1]);
    let other_key = JwtKeys::from_secret(b"some-other-secret-some-other-secret", 300, 86400)
        .issue(user_id, 0, TokenType::Access, now)
        .0;
    for (what, token) in [
        ("expired", expired.as_str()),
        ("tampered", tampered.as_str()),
        ("alg none", alg_none.as_str()),
        ("foreign key", other_key.as_str()),
        ("refresh as access", refresh.as_str()),
        ("garbage", "a.b.c"),
    ] {
        let r = app
            .send(
                app.client
                    .get(app.url("/authenticate/rest-auth/user/"))
                    .header("Authorization", format!("Bearer {token}")),
            )
            .await;
        assert_eq!(r.status, 401, "{what}: {}", r.text);
        if what != "refresh as access" {
            let r = app
                .post(
                    "/authenticate/api/token/verify/",
                    &json!({ "token": token }),
                    None,
                )
                .await;
            assert_eq!(r.status, 401, "verify {what}");
            assert_eq!(r.body["code"], "token_not_valid");
        }
    }
    // An access token cannot be used to refresh.
    let r = app
        .post(
            "/authenticate/api/token/refresh/",
            &json!({ "refresh": access }),
            None,
        )
        .await;
    assert_eq!(r.status, 401);
    // A deactivated user's tokens stop working.
    diesel::sql_query("UPDATE users SET is_active = false")
        .execute(&mut app.conn())
        .unwrap();
    app.settle().await;
    assert_eq!(
        app.get("/authenticate/rest-auth/user/", Some(&access))
            .await
            .status,
        401
    );
}

// ---------------------------------------------------------------------------------------------
// password change and reset

#[tokio::test]
async fn password_change_revokes_other_keys_and_refresh_tokens() {
    let app = spawn_app().await;
    verified_user(&app, "liam").await;
    let current = login(&app, "liam", PASSWORD).await.body["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let other = login(&app, "liam", PASSWORD).await.body["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let (access, refresh) = jwt_pair(&app, "liam", PASSWORD).await;
    assert_eq!(
        app.get("/authenticate/rest-auth/user/", Some(&access))
            .await
            .status,
        200
    );
    // An access token clearly older than the change (iat has one-second resolution).
    let old_access = keys(&app)
        .issue(
            count(&app, "SELECT id AS n FROM users WHERE username = 'liam'"),
            0,
            TokenType::Access,
            chrono::Utc::now() - chrono::Duration::seconds(2),
        )
        .0;
    assert_eq!(
        app.get("/authenticate/rest-auth/user/", Some(&old_access))
            .await
            .status,
        200
    );
    let path = "/authenticate/rest-auth/password/change/";
    let r = app
        .post(
            path,
            &json!({"old_password": "wrong-one-1", "new_password1": "Fresh-Passw0rd!", "new_password2": "Fresh-Passw0rd!"}),
            Some(&current),
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.body["old_password"].is_array(), "{}", r.text);
    let r = app
        .post(
            path,
            &json!({"old_password": PASSWORD, "new_password1": "Fresh-Passw0rd!", "new_password2": "other"}),
            Some(&current),
        )
        .await;
    assert_eq!(
        r.body,
        json!({"new_password2": ["The two password fields didn't match."]})
    );
    let r = app
        .post(
            path,
            &json!({"old_password": PASSWORD, "new_password1": "qwerty123", "new_password2": "qwerty123"}),
            Some(&current),
        )
        .await;
    assert_eq!(r.status, 400);
    let r = app
        .post(
            path,
            &json!({"old_password": PASSWORD, "new_password1": "Fresh-Passw0rd!", "new_password2": "Fresh-Passw0rd!"}),
            Some(&current),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body, json!({"detail": "New password has been saved."}));
    assert_eq!(
        app.get("/authenticate/rest-auth/user/", Some(&current))
            .await
            .status,
        200
    );
    assert_eq!(
        app.get("/authenticate/rest-auth/user/", Some(&other))
            .await
            .status,
        401
    );
    let r = app
        .get("/authenticate/rest-auth/user/", Some(&old_access))
        .await;
    assert_eq!(
        r.status, 401,
        "access tokens from before the change: {}",
        r.text
    );
    let (fresh, _) = jwt_pair(&app, "liam", "Fresh-Passw0rd!").await;
    assert_eq!(
        app.get("/authenticate/rest-auth/user/", Some(&fresh))
            .await
            .status,
        200
    );
    let r = app
        .post(
            "/authenticate/api/token/refresh/",
            &json!({ "refresh": refresh }),
            None,
        )
        .await;
    assert_eq!(r.status, 401);
    assert_eq!(login(&app, "liam", PASSWORD).await.status, 400);
    assert_eq!(login(&app, "liam", "Fresh-Passw0rd!").await.status, 200);
    let r = app.post(path, &json!({}), None).await;
    assert_eq!(r.status, 401);
}

#[tokio::test]
async fn mail_jobs_carry_no_secrets_and_finished_jobs_are_swept() {
    let app = spawn_app_with(|s| s.job_retention_secs = 1).await;
    let payloads_containing = |secret: &str| -> i64 {
        let mut conn = app.conn();
        #[derive(QueryableByName)]
        struct N {
            #[diesel(sql_type = BigInt)]
            n: i64,
        }
        diesel::sql_query("SELECT count(*) AS n FROM jobs WHERE strpos(payload::text, $1) > 0")
            .bind::<Text, _>(secret)
            .get_result::<N>(&mut conn)
            .unwrap()
            .n
    };
    // A job no worker handles (pending forever) must survive the sweep.
    diesel::sql_query("INSERT INTO jobs (kind) VALUES ('test.unhandled')")
        .execute(&mut app.conn())
        .unwrap();

    // Registration, a resent verification and a password reset: their keys and tokens arrive
    // by email but were never in a job's payload.
    let r = register(&app, "nina", "nina@example.com").await;
    assert_eq!(r.status, 201, "{}", r.text);
    let first = confirm_key(&wait_mail(&app, "nina@example.com", 1).await);
    let r = app
        .post(
            "/authenticate/rest-auth/registration/resend-email/",
            &json!({"email": "nina@example.com"}),
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    let second = confirm_key(&wait_mail(&app, "nina@example.com", 2).await);
    assert_ne!(first, second);
    let r = app
        .post(
            "/authenticate/rest-auth/registration/verify-email/",
            &json!({"key": second}),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "the mailed key works: {}", r.text);
    let r = app
        .post(
            "/authenticate/rest-auth/password/reset/",
            &json!({"email": "nina@example.com"}),
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    let mail = wait_mail(&app, "nina@example.com", 3).await;
    let uid = after(&mail, "/password/reset/confirm/").to_owned();
    let token = after(&mail, &format!("/password/reset/confirm/{uid}/")).to_owned();
    for secret in [&first, &second, &token, &"account-confirm-email".to_owned()] {
        assert_eq!(payloads_containing(secret), 0, "{secret} in a job payload");
    }
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM jobs WHERE kind = 'mail.send' AND (payload ? 'body' OR payload ? 'links')"
        ),
        0
    );
    let r = app
        .post(
            "/authenticate/rest-auth/password/reset/confirm/",
            &json!({"uid": uid, "token": token, "new_password1": "An0ther-Passphrase", "new_password2": "An0ther-Passphrase"}),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "the mailed token works: {}", r.text);

    // Finished jobs go once they are older than OASIS_JOB_RETENTION_SECS; pending ones stay.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while count(&app, "SELECT count(*) FROM jobs WHERE done_at IS NOT NULL") > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "finished jobs never swept"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        count(&app, "SELECT count(*) FROM jobs WHERE kind = 'mail.send'"),
        0
    );
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM jobs WHERE kind = 'test.unhandled'"
        ),
        1
    );
}

#[tokio::test]
async fn password_reset_token_is_single_use_and_dies_with_the_password() {
    let app = spawn_app().await;
    let email = verified_user(&app, "mona").await;
    let key = login(&app, "mona", PASSWORD).await.body["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = app
        .post(
            "/authenticate/rest-auth/password/reset/",
            &json!({ "email": email }),
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    let mail = wait_mail(&app, &email, 2).await;
    let uid = after(&mail, "/password/reset/confirm/").to_owned();
    let marker = format!("/password/reset/confirm/{uid}/");
    let token = after(&mail, &marker).to_owned();
    assert!(mail.contains(&format!(
        "{}/authenticate/rest-auth/password/reset/confirm/{uid}/{token}/",
        app.settings.public_url
    )));
    // The link shows a page.
    let r = app
        .get(
            &format!("/authenticate/rest-auth/password/reset/confirm/{uid}/{token}/"),
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    assert!(r.text.contains(&token));

    let path = "/authenticate/rest-auth/password/reset/confirm/";
    let body = |uid: &str, token: &str, pw: &str| json!({"uid": uid, "token": token, "new_password1": pw, "new_password2": pw});
    let r = app
        .post(path, &body(&uid, "1-abc", "Brand-New-Pass1"), None)
        .await;
    assert_eq!(r.body, json!({"token": ["Invalid value"]}));
    let r = app
        .post(path, &body("!!", &token, "Brand-New-Pass1"), None)
        .await;
    assert_eq!(r.body, json!({"uid": ["Invalid value"]}));
    let r = app.post(path, &body(&uid, &token, "1234"), None).await;
    assert_eq!(r.status, 400);
    assert!(r.body["new_password2"].is_array(), "{}", r.text);
    let r = app
        .post(path, &body(&uid, &token, "Brand-New-Pass1"), None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.body,
        json!({"detail": "Password has been reset with the new password."})
    );
    // Single use, existing sessions revoked, new password works.
    let r = app
        .post(path, &body(&uid, &token, "Another-New-Pass2"), None)
        .await;
    assert_eq!(r.body, json!({"token": ["Invalid value"]}));
    assert_eq!(
        app.get("/authenticate/rest-auth/user/", Some(&key))
            .await
            .status,
        401
    );
    assert_eq!(login(&app, "mona", "Brand-New-Pass1").await.status, 200);

    // A token dies when the password changes by other means.
    app.post(
        "/authenticate/rest-auth/password/reset/",
        &json!({ "email": email }),
        None,
    )
    .await;
    let mail = wait_mail(&app, &email, 3).await;
    let token = after(&mail, &marker).to_owned();
    let k = login(&app, "mona", "Brand-New-Pass1").await.body["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = app
        .post(
            "/authenticate/rest-auth/password/change/",
            &json!({"old_password": "Brand-New-Pass1", "new_password1": "Third-Pass-333", "new_password2": "Third-Pass-333"}),
            Some(&k),
        )
        .await;
    assert_eq!(r.status, 200);
    let r = app
        .post(path, &body(&uid, &token, "Fourth-Pass-444"), None)
        .await;
    assert_eq!(r.body, json!({"token": ["Invalid value"]}));

    // And after 24 hours.
    let signer = oasis_identity::reset::ResetSigner::from_secret(
        app.settings.secret().expose_secret().as_bytes(),
    );
    #[derive(QueryableByName)]
    struct U {
        #[diesel(sql_type = BigInt)]
        id: i64,
        #[diesel(sql_type = Text)]
        password_hash: String,
    }
    let u: U = diesel::sql_query("SELECT id, password_hash FROM users WHERE username = 'mona'")
        .get_result(&mut app.conn())
        .unwrap();
    let subject = oasis_identity::reset::ResetSubject {
        user_id: u.id,
        password_hash: Some(&u.password_hash),
        email: &email,
    };
    let old = signer.make(subject, chrono::Utc::now() - chrono::Duration::hours(25));
    let fresh = signer.make(subject, chrono::Utc::now() - chrono::Duration::hours(23));
    let r = app
        .post(path, &body(&uid, &old, "Fifth-Pass-555"), None)
        .await;
    assert_eq!(r.body, json!({"token": ["Invalid value"]}));
    let r = app
        .post(path, &body(&uid, &fresh, "Fifth-Pass-555"), None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);

    // An unverified account (say, squatted by someone who typed this address) can be reclaimed:
    // the reset proves the address, so it also verifies it.
    register(&app, "rita", "rita@example.com").await;
    wait_mail(&app, "rita@example.com", 1).await;
    assert_eq!(login(&app, "rita", PASSWORD).await.status, 400);
    app.post(
        "/authenticate/rest-auth/password/reset/",
        &json!({"email": "rita@example.com"}),
        None,
    )
    .await;
    let mail = wait_mail(&app, "rita@example.com", 2).await;
    let uid = after(&mail, "/password/reset/confirm/").to_owned();
    let token = after(&mail, &format!("/password/reset/confirm/{uid}/")).to_owned();
    let r = app
        .post(path, &body(&uid, &token, "Rita-Owns-This-1"), None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(login(&app, "rita", "Rita-Owns-This-1").await.status, 200);
}

// ---------------------------------------------------------------------------------------------
// profiles

#[tokio::test]
async fn own_profile_patch_and_public_profile() {
    let app = spawn_app().await;
    verified_user(&app, "nina").await;
    let other = app.create_user("taken_name", false);
    let key = login(&app, "nina", PASSWORD).await.body["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = "/authenticate/rest-auth/user/";
    let r = app
        .patch(
            path,
            &json!({"is_creator": true, "bio": "I make things", "first_name": "Nina",
                    "profile_pic": "https://cdn.example.com/n.png"}),
            Some(&key),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["is_creator"], true);
    assert_eq!(r.body["bio"], "I make things");
    assert_eq!(r.body["profile_pic"], "https://cdn.example.com/n.png");
    // The creator flag takes effect for authentication right away.
    let r = login(&app, "nina", PASSWORD).await;
    assert_eq!(r.body["is_creator"], true);

    let r = app
        .patch(path, &json!({"username": "TAKEN_NAME"}), Some(&key))
        .await;
    assert_eq!(
        r.body,
        json!({"username": ["A user with that username already exists."]})
    );
    let r = app
        .patch(
            path,
            &json!({"username": "x y", "profile_pic": "ftp://x"}),
            Some(&key),
        )
        .await;
    assert!(
        r.body["username"].is_array() && r.body["profile_pic"].is_array(),
        "{}",
        r.text
    );
    let r = app
        .patch(
            path,
            &json!({"email": other.email.to_uppercase(), "password": PASSWORD}),
            Some(&key),
        )
        .await;
    assert_eq!(
        r.body,
        json!({"email": ["A user is already registered with this e-mail address."]})
    );

    // Changing the email: nothing changes until the new address is confirmed.
    let r = app
        .patch(
            path,
            &json!({"email": "nina.new@example.com", "password": PASSWORD}),
            Some(&key),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["email"], "nina@example.com");
    let mail = wait_mail(&app, "nina.new@example.com", 1).await;
    let r = app
        .post(
            "/authenticate/rest-auth/registration/verify-email/",
            &json!({"key": confirm_key(&mail)}),
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    let r = app.get(path, Some(&key)).await;
    assert_eq!(r.body["email"], "nina.new@example.com");
    let r = app
        .post(
            "/authenticate/rest-auth/login/",
            &json!({"email": "nina.new@example.com", "password": PASSWORD}),
            None,
        )
        .await;
    assert_eq!(r.status, 200);

    // Public profile: anyone, no email.
    let id = r.body["user_id"].as_i64().unwrap();
    for token in [None, Some(other.token.as_str())] {
        let r = app
            .get(&format!("/authenticate/api/users/{id}/"), token)
            .await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body["username"], "nina");
        assert_eq!(r.body["is_creator"], true);
        assert!(r.body.get("email").is_none(), "{}", r.text);
        assert!(!r.text.contains("example.com/n") || r.body["profile_pic"].is_string());
        assert!(!r.text.contains("nina.new@example.com"));
    }
    assert_eq!(
        app.get("/authenticate/api/users/999999/", None)
            .await
            .status,
        404
    );
    assert_eq!(
        app.get("/authenticate/api/users/abc/", None).await.status,
        404
    );
    assert_eq!(app.get(path, None).await.status, 401);
    let r = app.delete(path, Some(&key)).await;
    assert_eq!(r.status, 405);
}

// ---------------------------------------------------------------------------------------------
// email delivery over SMTP

#[tokio::test]
async fn verification_email_goes_over_smtp_and_failed_sends_are_retried() {
    let smtp = SmtpServer::start().await;
    let url = smtp.url();
    let app = spawn_app_with(|s| s.mail.smtp_url = Some(url.into())).await;
    smtp.fail_next(1);
    let r = register(&app, "olga", "olga@example.com").await;
    assert_eq!(r.status, 201);
    let mut got = Vec::new();
    for _ in 0..300 {
        got = smtp.messages();
        if !got.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(got.len(), 1, "the retried send arrives once");
    let m = &got[0];
    assert_eq!(m.to, vec!["olga@example.com".to_owned()]);
    assert_eq!(m.from, "no-reply@oasis.local");
    assert!(m.data.contains("Subject: Confirm your e-mail address"));
    let key = confirm_key(&m.data);
    assert_eq!(key.len(), 64);
    // The first attempt failed (451) and was recorded; the job then completed (its row is
    // marked done just after the SMTP server has the message, so wait for that commit).
    let done = "SELECT count(*) AS n FROM jobs WHERE kind = 'mail.send' AND done_at IS NOT NULL AND attempts = 2";
    for _ in 0..100 {
        if count(&app, done) == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(count(&app, done), 1);
    let r = app
        .post(
            "/authenticate/rest-auth/registration/verify-email/",
            &json!({ "key": key }),
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    assert!(outbox_mails(&app, "olga@example.com").is_empty());
}

// ---------------------------------------------------------------------------------------------
// Google (OpenID Connect)

/// Points the app's Google settings at the loopback OpenID provider.
fn use_google(s: &mut oasis_server::Settings, idp: &OidcProvider) {
    s.google.issuer_url = idp.issuer.clone();
    s.google.client_id = Some(idp.client_id.clone());
    s.google.client_secret = Some(idp.client_secret.clone().into());
}

/// Points the app's Facebook settings at the loopback Graph API.
fn use_facebook(s: &mut oasis_server::Settings, graph: &GraphApi) {
    s.facebook.graph_url = graph.url.clone();
    s.facebook.app_id = Some(graph.app_id.clone());
    s.facebook.app_secret = Some(graph.app_secret.clone().into());
}

async fn google_app(idp: &OidcProvider) -> TestApp {
    spawn_app_with(|s| use_google(s, idp)).await
}

#[tokio::test]
async fn google_id_token_creates_then_logs_into_the_account() {
    let idp = OidcProvider::start("oasis-web.apps", "s3cr3t").await;
    let app = google_app(&idp).await;
    let token = idp.sign(&idp.claims("g-100", "grace@example.com", true));
    let r = app
        .post(
            "/authenticate/rest-auth/google/",
            &json!({"id_token": token}),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    for f in ["key", "access", "refresh"] {
        assert!(r.body[f].is_string(), "{f}");
    }
    assert_eq!(r.body["is_creator"], false);
    let id = r.body["user_id"].as_i64().unwrap();
    let key = r.body["key"].as_str().unwrap().to_owned();
    let me = app.get("/authenticate/rest-auth/user/", Some(&key)).await;
    assert_eq!(me.body["username"], "grace_hopper");
    assert_eq!(me.body["login_type"], "google");
    assert_eq!(me.body["email"], "grace@example.com");
    let access = r.body["access"].as_str().unwrap();
    assert_eq!(
        app.get("/authenticate/rest-auth/user/", Some(access))
            .await
            .status,
        200
    );
    assert_eq!(
        count(
            &app,
            "SELECT count(*) AS n FROM users WHERE password_hash IS NULL AND email_verified"
        ),
        1
    );
    // No usable password.
    assert_eq!(login(&app, "grace_hopper", "").await.status, 400);

    // Again: same account. Another person with the same name: a distinct username.
    let r = app
        .post(
            "/authenticate/rest-auth/google",
            &json!({"id_token": idp.sign(&idp.claims("g-100", "grace@example.com", true))}),
            None,
        )
        .await;
    assert_eq!(r.body["user_id"], id);
    let r = app
        .post(
            "/authenticate/rest-auth/google/",
            &json!({"id_token": idp.sign(&idp.claims("g-200", "grace2@example.com", true))}),
            None,
        )
        .await;
    assert_ne!(r.body["user_id"], id);
    let key2 = r.body["key"].as_str().unwrap().to_owned();
    let me2 = app.get("/authenticate/rest-auth/user/", Some(&key2)).await;
    assert_eq!(me2.body["username"], "grace_hopper1");
    // Discovery is cached.
    assert_eq!(idp.discovery_requests(), 1);
}

#[tokio::test]
async fn google_verified_email_links_but_unverified_never_takes_over() {
    let idp = OidcProvider::start("oasis-web.apps", "s3cr3t").await;
    let app = google_app(&idp).await;
    verified_user(&app, "pat").await;
    let r = app
        .post(
            "/authenticate/rest-auth/google/",
            &json!({"id_token": idp.sign(&idp.claims("g-1", "PAT@example.com", false))}),
            None,
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(r.body["non_field_errors"][0]
        .as_str()
        .unwrap()
        .contains("already exists"));
    assert_eq!(count(&app, "SELECT count(*) AS n FROM social_accounts"), 0);
    let r = app
        .post(
            "/authenticate/rest-auth/google/",
            &json!({"id_token": idp.sign(&idp.claims("g-1", "PAT@example.com", true))}),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let pat = login(&app, "pat", PASSWORD).await;
    assert_eq!(r.body["user_id"], pat.body["user_id"]);
    // A new person with an unverified email gets an (unverified) account of their own.
    let r = app
        .post(
            "/authenticate/rest-auth/google/",
            &json!({"id_token": idp.sign(&idp.claims("g-2", "quinn@example.com", false))}),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        count(&app, "SELECT count(*) AS n FROM users WHERE email = 'quinn@example.com' AND NOT email_verified"),
        1
    );
}

#[tokio::test]
async fn google_refuses_bad_tokens_with_400_and_unreachable_provider_with_502() {
    let idp = OidcProvider::start("oasis-web.apps", "s3cr3t").await;
    let app = google_app(&idp).await;
    let path = "/authenticate/rest-auth/google/";
    let good = idp.claims("g-1", "r@example.com", true);
    let mut wrong_aud = good.clone();
    wrong_aud["aud"] = json!("someone-else.apps");
    let mut wrong_iss = good.clone();
    wrong_iss["iss"] = json!("https://accounts.evil.example");
    let mut expired = good.clone();
    expired["exp"] = json!(chrono::Utc::now().timestamp() - 60);
    let cases = [
        ("wrong audience", idp.sign(&wrong_aud)),
        ("wrong issuer", idp.sign(&wrong_iss)),
        ("expired", idp.sign(&expired)),
        ("forged signature", idp.sign_forged(&good)),
        ("malformed", "not-a-jwt".to_owned()),
    ];
    for (what, token) in cases {
        let r = app.post(path, &json!({ "id_token": token }), None).await;
        assert_eq!(r.status, 400, "{what}: {}", r.text);
        assert!(r.body["non_field_errors"].is_array(), "{what}: {}", r.text);
    }
    let r = app.post(path, &json!({}), None).await;
    assert_eq!(r.status, 400);
    assert_eq!(count(&app, "SELECT count(*) AS n FROM users"), 0);

    // Provider down → 502.
    idp.stop().await;
    let dead = format!("{}-gone", idp.issuer);
    let app2 = spawn_app_with(move |s| {
        s.google.issuer_url = dead;
        s.google.client_id = Some("x".into());
    })
    .await;
    let r = app2
        .post(path, &json!({ "id_token": idp.sign(&good) }), None)
        .await;
    assert_eq!(r.status, 502, "{}", r.text);
    assert_eq!(r.body["code"], "upstream_error");
    // Not configured → 400.
    let app3 = spawn_app().await;
    let r = app3.post(path, &json!({"id_token": "a.b.c"}), None).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["code"], "not_configured");
}

#[tokio::test]
async fn google_authorization_code_is_exchanged() {
    let idp = OidcProvider::start("oasis-web.apps", "s3cr3t").await;
    let app = google_app(&idp).await;
    let redirect = "http://localhost:3000/auth/google/callback";
    let code = idp.issue_code(idp.claims("g-7", "sam@example.com", true), redirect);
    let r = app
        .post(
            "/authenticate/rest-auth/google/",
            &json!({"code": code, "redirect_uri": redirect}),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.body["key"].is_string());
    assert_eq!(idp.token_requests(), 1);
    // A used code is refused by the provider → 400.
    let r = app
        .post(
            "/authenticate/rest-auth/google/",
            &json!({"code": code, "redirect_uri": redirect}),
            None,
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(r.body["non_field_errors"][0]
        .as_str()
        .unwrap()
        .contains("invalid_grant"));
    let r = app
        .post(
            "/authenticate/rest-auth/google/",
            &json!({"code": "abc"}),
            None,
        )
        .await;
    assert_eq!(r.body, json!({"redirect_uri": ["This field is required."]}));
}

// ---------------------------------------------------------------------------------------------
// Facebook (Graph API)

async fn facebook_app(graph: &GraphApi) -> TestApp {
    spawn_app_with(|s| use_facebook(s, graph)).await
}

#[tokio::test]
async fn facebook_login_creates_and_refuses_what_it_must() {
    let graph = GraphApi::start("1234567890", "fb-app-secret").await;
    let app = facebook_app(&graph).await;
    let path = "/authenticate/rest-auth/facebook/";
    graph.add_user("tok-ok", graph.user("fb-1", Some("mark@example.com")));
    let r = app
        .post(path, &json!({"access_token": "tok-ok"}), None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let key = r.body["key"].as_str().unwrap().to_owned();
    assert!(r.body["refresh"].is_string());
    let me = app.get("/authenticate/rest-auth/user/", Some(&key)).await;
    assert_eq!(me.body["username"], "mark_zed");
    assert_eq!(me.body["login_type"], "facebook");
    assert_eq!(me.body["profile_pic"], "https://graph.example/fb-1/picture");
    assert_eq!(graph.requests(), ["debug_token", "me"]);
    let again = app
        .post(path, &json!({"access_token": "tok-ok"}), None)
        .await;
    assert_eq!(again.body["user_id"], r.body["user_id"]);

    // Another app's token, an invalid token, an unknown token, no email.
    let mut foreign = graph.user("fb-2", Some("x@example.com"));
    foreign.app_id = "999".into();
    graph.add_user("tok-foreign", foreign);
    let mut invalid = graph.user("fb-3", Some("y@example.com"));
    invalid.valid = false;
    graph.add_user("tok-invalid", invalid);
    graph.add_user("tok-noemail", graph.user("fb-4", None));
    for t in ["tok-foreign", "tok-invalid", "tok-unknown", "tok-noemail"] {
        let r = app.post(path, &json!({ "access_token": t }), None).await;
        assert_eq!(r.status, 400, "{t}: {}", r.text);
        assert!(r.body["non_field_errors"].is_array(), "{t}");
    }
    // The Graph API does not vouch for emails: an existing account is never taken over.
    verified_user(&app, "tess").await;
    graph.add_user("tok-tess", graph.user("fb-5", Some("tess@example.com")));
    let r = app
        .post(path, &json!({"access_token": "tok-tess"}), None)
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        count(
            &app,
            "SELECT count(*) AS n FROM social_accounts WHERE provider = 'facebook'"
        ),
        1
    );
    let r = app.post(path, &json!({}), None).await;
    assert_eq!(r.body, json!({"access_token": ["This field is required."]}));

    // Graph API down → 502.
    graph.stop().await;
    let r = app
        .post(path, &json!({"access_token": "tok-ok"}), None)
        .await;
    assert_eq!(r.status, 502, "{}", r.text);
}

// ---------------------------------------------------------------------------------------------
// documentation

#[tokio::test]
async fn identity_routes_are_in_the_openapi_document() {
    let app = spawn_app().await;
    let r = app.get("/api/openapi.json", None).await;
    let paths = &r.body["paths"];
    for p in [
        "/authenticate/rest-auth/registration/",
        "/authenticate/rest-auth/registration/verify-email/",
        "/authenticate/rest-auth/registration/resend-email/",
        "/authenticate/rest-auth/registration/account-confirm-email/{key}/",
        "/authenticate/rest-auth/login/",
        "/authenticate/rest-auth/logout/",
        "/authenticate/rest-auth/user/",
        "/authenticate/rest-auth/user/confirm-change/",
        "/authenticate/rest-auth/user/confirm-change/{key}/",
        "/authenticate/rest-auth/password/change/",
        "/authenticate/rest-auth/password/reset/",
        "/authenticate/rest-auth/password/reset/confirm/",
        "/authenticate/api/token/",
        "/authenticate/api/token/refresh/",
        "/authenticate/api/token/verify/",
        "/authenticate/api/users/{id}/",
        "/authenticate/rest-auth/google/",
        "/authenticate/rest-auth/facebook/",
    ] {
        assert!(
            paths[p].is_object(),
            "{p} missing from the OpenAPI document"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// adapter contract

#[tokio::test]
async fn postgres_adapter_honours_the_repository_contract() {
    let app = spawn_app().await;
    let mut conn = app.conn();
    tokio::task::spawn_blocking(move || {
        oasis_identity::contract::run_all(
            &mut oasis_db::identity::PgIdentity(&mut conn),
            chrono::Utc::now(),
        )
    })
    .await
    .expect("the PostgreSQL adapter honours the IdentityRepo contract");
}

#[tokio::test]
async fn nul_characters_are_field_errors_never_500() {
    let app = spawn_app().await;
    let user = app.create_user("nul_user", false);
    let cases = [
        (
            "/authenticate/rest-auth/registration/",
            json!({"email": "n@example.com", "username": "nul_x", "first_name": "a\u{0}b",
                   "password": PASSWORD, "password2": PASSWORD}),
        ),
        (
            "/authenticate/rest-auth/login/",
            json!({"username": "nul\u{0}user", "password": "x"}),
        ),
        (
            "/authenticate/rest-auth/password/reset/",
            json!({"email": "a\u{0}@example.com"}),
        ),
        (
            "/authenticate/rest-auth/registration/verify-email/",
            json!({"key": "\u{0}"}),
        ),
    ];
    for (path, body) in cases {
        let r = app.post(path, &body, None).await;
        assert_eq!(r.status, 400, "{path}: {}", r.text);
    }
    for body in [
        json!({"bio": "x\u{0}"}),
        json!({"profile_pic": "https://x.example/\u{0}.png"}),
        json!({"last_name": "\u{0}"}),
    ] {
        let r = app
            .patch("/authenticate/rest-auth/user/", &body, Some(&user.token))
            .await;
        assert_eq!(r.status, 400, "{body}: {}", r.text);
    }
}

/// Enumeration by timing: a login for an account that does not exist (or has no usable
/// password) still costs one full bcrypt verify. Asserted as a lower bound only (noise can only
/// make requests slower, never faster): without the dummy verify such a login would take a few
/// milliseconds instead of a bcrypt run.
#[tokio::test]
async fn unknown_accounts_cost_a_full_bcrypt_verify_too() {
    use oasis_identity::password::{Bcrypt, PasswordHasher};
    let app = spawn_app_with(|s| s.bcrypt_cost = 10).await;
    let hasher = Bcrypt::new(10).unwrap();
    let hash = hasher.hash("some-password").unwrap();
    let raw = tokio::task::spawn_blocking(move || {
        (0..3)
            .map(|_| {
                let t = std::time::Instant::now();
                assert!(hasher.verify("some-password", &hash));
                t.elapsed()
            })
            .min()
            .unwrap()
    })
    .await
    .unwrap();
    for (what, body) in [
        (
            "unknown username",
            json!({"username": "nobody_at_all", "password": "x"}),
        ),
        (
            "unknown email",
            json!({"email": "nobody@example.com", "password": "x"}),
        ),
    ] {
        let mut fastest = Duration::MAX;
        for _ in 0..3 {
            let t = std::time::Instant::now();
            let r = app
                .post("/authenticate/rest-auth/login/", &body, None)
                .await;
            fastest = fastest.min(t.elapsed());
            assert_eq!(r.status, 400);
        }
        // `raw` can itself be inflated by a busy machine, so the bar is the smaller of half a
        // verify and 10 ms: still far above a login without the dummy verify (~1 ms).
        let floor = (raw / 2).min(Duration::from_millis(10));
        assert!(
            fastest >= floor,
            "{what}: fastest login {fastest:?} is much faster than one bcrypt verify ({raw:?})"
        );
    }
}

#[tokio::test]
async fn behind_a_trusted_proxy_clients_are_throttled_by_forwarded_address() {
    let app = spawn_app_with(|s| {
        s.login_max_failures = 3;
        s.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    })
    .await;
    verified_user(&app, "ivan").await;
    let attempt = |who: &'static str, xff: &'static str| {
        let app = &app;
        async move {
            app.send(
                app.client
                    .post(app.url("/authenticate/rest-auth/login/"))
                    .header("X-Forwarded-For", xff)
                    .json(&json!({"username": who, "password": "not-it-at-all"})),
            )
            .await
            .status
        }
    };
    // One client behind the proxy spreads failures over many names: it is throttled ...
    for name in ["p1x", "p2x", "p3x"] {
        assert_eq!(attempt(name, "203.0.113.7").await, 400);
    }
    assert_eq!(attempt("p4x", "203.0.113.7").await, 429);
    // ... a spoofed left-most entry does not help it (the proxy appends the real address) ...
    assert_eq!(attempt("p5x", "198.51.100.1, 203.0.113.7").await, 429);
    // ... while another client behind the same proxy is not locked out.
    let r = app
        .send(
            app.client
                .post(app.url("/authenticate/rest-auth/login/"))
                .header("X-Forwarded-For", "203.0.113.99")
                .json(&json!({"username": "ivan", "password": PASSWORD})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[tokio::test]
async fn wrong_old_passwords_are_throttled_like_failed_logins() {
    let app = spawn_app_with(|s| s.login_max_failures = 3).await;
    verified_user(&app, "olga").await;
    let token = login(&app, "olga", PASSWORD).await.body["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let change = |old: &'static str| {
        let (app, token) = (&app, token.clone());
        async move {
            app.post(
                "/authenticate/rest-auth/password/change/",
                &json!({"old_password": old, "new_password1": "fresh-river-77", "new_password2": "fresh-river-77"}),
                Some(&token),
            )
            .await
        }
    };
    for _ in 0..3 {
        let r = change("guess-guess-1").await;
        assert_eq!(r.status, 400, "{}", r.text);
        assert!(r.body["old_password"].is_array());
    }
    let r = change(PASSWORD).await;
    assert_eq!(r.status, 429, "{}", r.text);
    assert!(r.header("retry-after").is_some());
    // The account scope is shared with login: the right password is refused there too for now.
    assert_eq!(login(&app, "olga", PASSWORD).await.status, 429);
    // And nothing changed.
    diesel::sql_query("UPDATE login_failures SET failed_at = now() - interval '1 day'")
        .execute(&mut app.conn())
        .unwrap();
    assert_eq!(login(&app, "olga", PASSWORD).await.status, 200);
}

#[tokio::test]
async fn one_address_cannot_register_accounts_in_bulk() {
    // OASIS_REGISTRATIONS_PER_HOUR (default 20, see the config tests) sets the limit.
    let app = spawn_app_with(|s| s.registrations_per_hour = 4).await;
    let limit = app.settings.registrations_per_hour as usize;
    let r = register(&app, "bulk0", "bulk0@example.com").await;
    assert_eq!(r.status, 201, "{}", r.text);
    // A refused registration (taken username) does not count.
    assert_eq!(
        register(&app, "bulk0", "bulk0b@example.com").await.status,
        400
    );
    // Three times the rest of the allowance at once: exactly the allowance gets through.
    let mut racing = tokio::task::JoinSet::new();
    for i in 1..=3 * (limit - 1) {
        let (client, url) = (
            app.client.clone(),
            app.url("/authenticate/rest-auth/registration/"),
        );
        racing.spawn(async move {
            client
                .post(url)
                .json(&json!({
                    "email": format!("bulk{i}@example.com"), "first_name": "Ada",
                    "last_name": "Lovelace", "username": format!("bulk{i}"),
                    "password": PASSWORD, "password2": PASSWORD, "login_type": "manual"
                }))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        });
    }
    let statuses = racing.join_all().await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        limit - 1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 201 || *s == 429),
        "{statuses:?}"
    );
    assert_eq!(
        count(
            &app,
            "SELECT count(*) AS n FROM users WHERE username LIKE 'bulk%'"
        ),
        limit as i64
    );
    let r = register(&app, "bulk_over", "bulk_over@example.com").await;
    assert_eq!(r.status, 429, "{}", r.text);
    assert!(r.header("retry-after").is_some());
    assert_eq!(
        count(
            &app,
            "SELECT count(*) AS n FROM users WHERE username = 'bulk_over'"
        ),
        0,
        "nothing created"
    );
    // An hour later the address may register again.
    diesel::sql_query("UPDATE login_failures SET failed_at = now() - interval '2 hours'")
        .execute(&mut app.conn())
        .unwrap();
    assert_eq!(
        register(&app, "bulk_over", "bulk_over@example.com")
            .await
            .status,
        201
    );
}

// ---------------------------------------------------------------------------------------------
// claims of unverified accounts (pre-account takeover)

const ME: &str = "/authenticate/rest-auth/user/";

/// Sessions held by whoever registered an account, minted with the server's own code on a
/// direct connection: an unverified account cannot sign in with its password, but it can hold
/// sessions from elsewhere (guest checkout, a social login that did not verify the address).
fn mint_sessions(app: &TestApp, user_id: i64) -> (String, String, String) {
    use oasis_identity::IdentityRepo;
    let mut conn = app.conn();
    let mut repo = oasis_db::identity::PgIdentity(&mut conn);
    let user = repo.user_by_id(user_id).unwrap().unwrap();
    let key = oasis_identity::service::issue_api_key(&mut repo, user_id).unwrap();
    let pair = oasis_identity::service::issue_jwt_pair(
        &mut repo,
        &keys(app),
        &user,
        None,
        chrono::Utc::now(),
    )
    .unwrap();
    (key, pair.access, pair.refresh)
}

/// Resets the password of `email` through the mailed link (the `n`-th mail to it).
async fn reset_password(app: &TestApp, email: &str, n: usize, new: &str) -> Resp {
    let r = app
        .post(
            "/authenticate/rest-auth/password/reset/",
            &json!({ "email": email }),
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    let mail = wait_mail(app, email, n).await;
    let uid = after(&mail, "/password/reset/confirm/").to_owned();
    let token = after(&mail, &format!("/password/reset/confirm/{uid}/")).to_owned();
    app.post(
        "/authenticate/rest-auth/password/reset/confirm/",
        &json!({"uid": uid, "token": token, "new_password1": new, "new_password2": new}),
        None,
    )
    .await
}

async fn refresh(app: &TestApp, token: &str) -> Resp {
    app.post(
        "/authenticate/api/token/refresh/",
        &json!({ "refresh": token }),
        None,
    )
    .await
}

#[tokio::test]
async fn google_verified_owner_takes_sole_control_of_an_unverified_account() {
    let idp = OidcProvider::start("oasis-web.apps", "s3cr3t").await;
    let app = google_app(&idp).await;
    // A squatter registers the victim's address with a password of their own, never confirms.
    assert_eq!(
        register(&app, "squatter", "victim@example.com")
            .await
            .status,
        201
    );
    let r = login(&app, "squatter", PASSWORD).await;
    assert_eq!(
        r.body,
        json!({"non_field_errors": ["E-mail is not verified."]})
    );
    let id = count(
        &app,
        "SELECT id AS n FROM users WHERE username = 'squatter'",
    );
    let (key, access, refresh_token) = mint_sessions(&app, id);
    for t in [&key, &access] {
        assert_eq!(app.get(ME, Some(t)).await.status, 200);
    }
    // ... and leaves a change of the address to their own pending.
    let r = app
        .patch(
            ME,
            &json!({"email": "squatter@evil.example", "password": PASSWORD}),
            Some(&key),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let pending = confirm_key(&wait_mail(&app, "squatter@evil.example", 1).await);

    // The owner signs in with Google, which verified the address.
    let claims = idp.claims("g-victim", "victim@example.com", true);
    let r = app
        .post(
            "/authenticate/rest-auth/google/",
            &json!({"id_token": idp.sign(&claims)}),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["user_id"], id, "the account keeps its id");
    let owner_key = r.body["key"].as_str().unwrap().to_owned();
    let owner_access = r.body["access"].as_str().unwrap().to_owned();
    let owner_refresh = r.body["refresh"].as_str().unwrap().to_owned();

    // Nothing the squatter held works any more: password, API key, JWT, refresh token, the
    // pending email change.
    let r = login(&app, "squatter", PASSWORD).await;
    assert_eq!(
        r.body,
        json!({"non_field_errors": ["Unable to log in with provided credentials."]})
    );
    let r = app
        .post(
            "/authenticate/api/token/",
            &json!({"email": "victim@example.com", "password": PASSWORD}),
            None,
        )
        .await;
    assert_eq!(r.status, 401, "{}", r.text);
    assert_eq!(app.get(ME, Some(&key)).await.status, 401);
    let r = app.get(ME, Some(&access)).await;
    assert_eq!(r.status, 401, "a JWT of the same second too: {}", r.text);
    assert_eq!(refresh(&app, &refresh_token).await.status, 401);
    let r = app
        .post(
            "/authenticate/rest-auth/registration/verify-email/",
            &json!({ "key": pending }),
            None,
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.text);
    assert!(
        count(
            &app,
            &format!(
                "SELECT count(*) AS n FROM users WHERE id = {id} AND email = 'victim@example.com' \
             AND email_verified AND password_hash IS NULL"
            )
        ) == 1
    );

    // The owner's session works, and again with Google.
    let me = app.get(ME, Some(&owner_key)).await;
    assert_eq!(me.status, 200);
    assert_eq!(me.body["email"], "victim@example.com");
    assert_eq!(app.get(ME, Some(&owner_access)).await.status, 200);
    assert_eq!(refresh(&app, &owner_refresh).await.status, 200);
    let r = app
        .post(
            "/authenticate/rest-auth/google/",
            &json!({"id_token": idp.sign(&claims)}),
            None,
        )
        .await;
    assert_eq!(r.body["user_id"], id);
    // The owner can set a password through reset, and sign in with it.
    let r = reset_password(&app, "victim@example.com", 2, "Owner-Chosen-Pass9").await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = app
        .post(
            "/authenticate/rest-auth/login/",
            &json!({"email": "victim@example.com", "password": "Owner-Chosen-Pass9"}),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["user_id"], id);
}

async fn social_app(idp: &OidcProvider, graph: &GraphApi) -> TestApp {
    spawn_app_with(|s| {
        use_google(s, idp);
        use_facebook(s, graph);
    })
    .await
}

#[tokio::test]
async fn an_account_made_through_facebook_is_claimed_by_the_google_verified_owner() {
    let idp = OidcProvider::start("oasis-web.apps", "s3cr3t").await;
    let graph = GraphApi::start("1234567890", "fb-app-secret").await;
    let app = social_app(&idp, &graph).await;
    // Facebook does not vouch for emails: a squatter's Facebook profile names the victim's.
    graph.add_user(
        "tok-squat",
        graph.user("fb-squat", Some("vera@example.com")),
    );
    let fb = "/authenticate/rest-auth/facebook/";
    let r = app
        .post(fb, &json!({"access_token": "tok-squat"}), None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let id = r.body["user_id"].as_i64().unwrap();
    let squat: Vec<String> = ["key", "access", "refresh"]
        .iter()
        .map(|f| r.body[f].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(app.get(ME, Some(&squat[0])).await.status, 200);

    let r = app
        .post(
            "/authenticate/rest-auth/google/",
            &json!({"id_token": idp.sign(&idp.claims("g-vera", "vera@example.com", true))}),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["user_id"], id);
    let owner_key = r.body["key"].as_str().unwrap().to_owned();

    assert_eq!(app.get(ME, Some(&squat[0])).await.status, 401);
    assert_eq!(app.get(ME, Some(&squat[1])).await.status, 401);
    assert_eq!(refresh(&app, &squat[2]).await.status, 401);
    // The Facebook identity no longer opens the account.
    let r = app
        .post(fb, &json!({"access_token": "tok-squat"}), None)
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(
        count(
            &app,
            "SELECT count(*) AS n FROM social_accounts WHERE provider = 'facebook'"
        ),
        0
    );
    assert_eq!(app.get(ME, Some(&owner_key)).await.status, 200);
}

#[tokio::test]
async fn a_verified_account_linked_by_google_keeps_its_password_and_sessions() {
    let idp = OidcProvider::start("oasis-web.apps", "s3cr3t").await;
    let app = google_app(&idp).await;
    verified_user(&app, "wendy").await;
    let key = login(&app, "wendy", PASSWORD).await.body["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let (access, refresh_token) = jwt_pair(&app, "wendy", PASSWORD).await;
    let r = app
        .post(
            "/authenticate/rest-auth/google/",
            &json!({"id_token": idp.sign(&idp.claims("g-wendy", "wendy@example.com", true))}),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(app.get(ME, Some(&key)).await.status, 200);
    assert_eq!(app.get(ME, Some(&access)).await.status, 200);
    assert_eq!(refresh(&app, &refresh_token).await.status, 200);
    assert_eq!(login(&app, "wendy", PASSWORD).await.status, 200);
}

#[tokio::test]
async fn resetting_the_password_of_an_unverified_account_claims_it() {
    let app = spawn_app().await;
    assert_eq!(
        register(&app, "squat2", "owner2@example.com").await.status,
        201
    );
    let id = count(&app, "SELECT id AS n FROM users WHERE username = 'squat2'");
    let (key, access, refresh_token) = mint_sessions(&app, id);
    let r = app
        .patch(
            ME,
            &json!({"email": "squat2@evil.example", "password": PASSWORD}),
            Some(&key),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let pending = confirm_key(&wait_mail(&app, "squat2@evil.example", 1).await);
    // The owner of the address resets the password through the link mailed to it.
    let r = reset_password(&app, "owner2@example.com", 2, "Owner-Two-Pass7").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(app.get(ME, Some(&key)).await.status, 401);
    assert_eq!(app.get(ME, Some(&access)).await.status, 401);
    assert_eq!(refresh(&app, &refresh_token).await.status, 401);
    let r = app
        .post(
            "/authenticate/rest-auth/registration/verify-email/",
            &json!({ "key": pending }),
            None,
        )
        .await;
    assert_eq!(
        r.status, 404,
        "the squatter's pending email change died: {}",
        r.text
    );
    assert_eq!(login(&app, "squat2", PASSWORD).await.status, 400);
    let r = login(&app, "squat2", "Owner-Two-Pass7").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["user_id"], id);
}

// ---------------------------------------------------------------------------------------------
// atomic throttle

#[tokio::test]
async fn concurrent_wrong_logins_never_evaluate_more_passwords_than_the_limit() {
    // A slower bcrypt widens the window between checking the throttle and recording a failure.
    let app = spawn_app_with(|s| {
        s.login_max_failures = 3;
        s.bcrypt_cost = 8;
    })
    .await;
    verified_user(&app, "rex").await;
    // Successful logins do not count as failures.
    for _ in 0..4 {
        assert_eq!(login(&app, "rex", PASSWORD).await.status, 200);
    }
    assert_eq!(
        count(
            &app,
            "SELECT count(*) AS n FROM login_failures WHERE scope NOT LIKE 'register:%'"
        ),
        0
    );
    let mut racing = tokio::task::JoinSet::new();
    for i in 0..9 {
        let (client, url) = (
            app.client.clone(),
            app.url("/authenticate/rest-auth/login/"),
        );
        racing.spawn(async move {
            client
                .post(url)
                .json(&json!({"username": "rex", "password": format!("wrong-guess-{i}")}))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        });
    }
    let statuses = racing.join_all().await;
    let evaluated = statuses.iter().filter(|s| **s == 400).count();
    assert_eq!(
        evaluated, 3,
        "exactly the limit was evaluated: {statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        6,
        "{statuses:?}"
    );
    let rex = count(&app, "SELECT id AS n FROM users WHERE username = 'rex'");
    assert_eq!(
        count(
            &app,
            &format!("SELECT count(*) AS n FROM login_failures WHERE scope = 'user:{rex}'")
        ),
        3
    );
    assert_eq!(login(&app, "rex", PASSWORD).await.status, 429);
}

#[tokio::test]
async fn concurrent_wrong_current_passwords_are_capped_like_logins() {
    let app = spawn_app_with(|s| {
        s.login_max_failures = 2;
        s.bcrypt_cost = 8;
    })
    .await;
    verified_user(&app, "cora").await;
    let key = login(&app, "cora", PASSWORD).await.body["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut racing = tokio::task::JoinSet::new();
    for i in 0..6 {
        let (client, url, key) = (
            app.client.clone(),
            app.url("/authenticate/rest-auth/password/change/"),
            key.clone(),
        );
        racing.spawn(async move {
            client
                .post(url)
                .header("Authorization", format!("Token {key}"))
                .json(&json!({"old_password": format!("guess-{i}-x"), "new_password1": "fresh-river-77", "new_password2": "fresh-river-77"}))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        });
    }
    let statuses = racing.join_all().await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 400).count(),
        2,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        4,
        "{statuses:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// sensitive changes: email and bank account need the password (or a link, without one)

#[tokio::test]
async fn changing_the_email_needs_the_current_password_throttled_like_a_login() {
    let app = spawn_app_with(|s| s.login_max_failures = 3).await;
    verified_user(&app, "ella").await;
    let key = login(&app, "ella", PASSWORD).await.body["key"]
        .as_str()
        .unwrap()
        .to_owned();
    // Other fields and the unchanged address need no password.
    let r = app
        .patch(
            ME,
            &json!({"bio": "hi", "email": "ELLA@example.com"}),
            Some(&key),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = app
        .patch(ME, &json!({"email": "ella.new@example.com"}), Some(&key))
        .await;
    assert_eq!(r.body, json!({"password": ["This field is required."]}));
    for _ in 0..2 {
        let r = app
            .patch(
                ME,
                &json!({"email": "ella.new@example.com", "password": "not-hers-1", "bio": "changed"}),
                Some(&key),
            )
            .await;
        assert_eq!(r.status, 400, "{}", r.text);
        assert_eq!(
            r.body,
            json!({"password": ["Your password was entered incorrectly. Please enter it again."]})
        );
    }
    assert!(outbox_mails(&app, "ella.new@example.com").is_empty());
    assert_eq!(
        app.get(ME, Some(&key)).await.body["bio"],
        "hi",
        "nothing applied"
    );
    let r = app
        .patch(
            ME,
            &json!({"email": "ella.new@example.com", "password": PASSWORD}),
            Some(&key),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let mail = wait_mail(&app, "ella.new@example.com", 1).await;
    assert!(mail.contains("account-confirm-email/"));
    // Wrong passwords count like failed logins: the third fills the window.
    let r = app
        .patch(
            ME,
            &json!({"email": "ella.other@example.com", "password": "not-hers-2"}),
            Some(&key),
        )
        .await;
    assert_eq!(r.status, 400);
    let r = app
        .patch(
            ME,
            &json!({"email": "ella.other@example.com", "password": PASSWORD}),
            Some(&key),
        )
        .await;
    assert_eq!(r.status, 429, "{}", r.text);
    assert_eq!(login(&app, "ella", PASSWORD).await.status, 429);
}

/// The key in the last "confirm the change" email to `to` (the `n`-th email to it).
async fn change_key(app: &TestApp, to: &str, n: usize) -> String {
    let mail = wait_mail(app, to, n).await;
    assert!(mail.contains("Confirm the change"), "{mail}");
    after(&mail, "confirm-change/").to_owned()
}

#[tokio::test]
async fn accounts_without_a_password_confirm_an_email_change_by_a_link_to_the_current_address() {
    let idp = OidcProvider::start("oasis-web.apps", "s3cr3t").await;
    let app = google_app(&idp).await;
    let r = app
        .post(
            "/authenticate/rest-auth/google/",
            &json!({"id_token": idp.sign(&idp.claims("g-sofia", "sofia@example.com", true))}),
            None,
        )
        .await;
    let key = r.body["key"].as_str().unwrap().to_owned();
    let r = app
        .patch(ME, &json!({"email": "sofia.new@example.com"}), Some(&key))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["email"], "sofia@example.com");
    // The link goes to the current address; the new one hears nothing yet.
    let token = change_key(&app, "sofia@example.com", 1).await;
    assert_eq!(token.len(), 64);
    assert!(outbox_mails(&app, "sofia.new@example.com").is_empty());
    // Only a hash of the token is stored.
    assert_eq!(
        count(
            &app,
            &format!(
                "SELECT count(*) AS n FROM pending_changes WHERE token_hash = sha256('{token}'::bytea)"
            )
        ),
        1
    );
    let page = app
        .get(
            &format!("/authenticate/rest-auth/user/confirm-change/{token}/"),
            None,
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(page.text.contains("sofia.new@example.com"), "{}", page.text);
    // Single use.
    let again = app
        .post(
            "/authenticate/rest-auth/user/confirm-change/",
            &json!({ "key": token }),
            None,
        )
        .await;
    assert_eq!(again.status, 404);
    // Then the new address confirms itself, as with a password.
    let mail = wait_mail(&app, "sofia.new@example.com", 1).await;
    let r = app
        .post(
            "/authenticate/rest-auth/registration/verify-email/",
            &json!({"key": confirm_key(&mail)}),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        app.get(ME, Some(&key)).await.body["email"],
        "sofia.new@example.com"
    );
}

#[tokio::test]
async fn accounts_without_a_password_confirm_bank_changes_by_a_link() {
    let app = spawn_app().await;
    // `create_user` makes an account without a usable password, like a social login.
    let creator = app.create_user("bk_social", true);
    let path = "/subscriptions/api/bankdetails";
    let body = json!({"ifscCode": "HDFC0001234", "accountNumber": "123456789012", "BankName": "HDFC Bank", "accountHolderName": "Asha Rao", "contactPhone": "9000090000", "legalName": "Asha Rao", "businessType": "individual"});
    let r = app.post(path, &body, Some(&creator.token)).await;
    assert_eq!(r.status, 202, "{}", r.text);
    assert_eq!(
        r.body,
        json!({"detail": "Confirm this change through the link sent to your e-mail address."})
    );
    assert_eq!(
        app.get(path, Some(&creator.token)).await.status,
        404,
        "not yet"
    );
    // The pending change holds sealed details only.
    assert_eq!(
        count(
            &app,
            "SELECT count(*) AS n FROM pending_changes WHERE position('123456789012'::bytea IN payload) > 0 \
             OR position('Asha'::bytea IN payload) > 0"
        ),
        0
    );
    let mail = wait_mail(&app, &creator.email, 1).await;
    assert!(
        mail.contains("XXXXXXXX9012") && !mail.contains("123456789012"),
        "{mail}"
    );
    let token = change_key(&app, &creator.email, 1).await;
    // A newer request replaces it.
    let mut newer = body.clone();
    newer["accountNumber"] = json!("555566667777");
    assert_eq!(
        app.post(path, &newer, Some(&creator.token)).await.status,
        202
    );
    let newer_token = change_key(&app, &creator.email, 2).await;
    let r = app
        .post(
            "/authenticate/rest-auth/user/confirm-change/",
            &json!({ "key": token }),
            None,
        )
        .await;
    assert_eq!(r.status, 404, "replaced: {}", r.text);
    let r = app
        .post(
            "/authenticate/rest-auth/user/confirm-change/",
            &json!({ "key": newer_token }),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = app.get(path, Some(&creator.token)).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["accountNumber"], "XXXXXXXX7777");

    let r = app
        .patch(path, &json!({"BankName": "SBI"}), Some(&creator.token))
        .await;
    assert_eq!(r.status, 202, "{}", r.text);
    let t = change_key(&app, &creator.email, 3).await;
    let page = app
        .get(
            &format!("/authenticate/rest-auth/user/confirm-change/{t}"),
            None,
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert_eq!(
        app.get(path, Some(&creator.token)).await.body["BankName"],
        "SBI"
    );

    let r = app.delete(path, Some(&creator.token)).await;
    assert_eq!(r.status, 202, "{}", r.text);
    assert_eq!(
        app.get(path, Some(&creator.token)).await.status,
        200,
        "not yet"
    );
    let t = change_key(&app, &creator.email, 4).await;
    let r = app
        .post(
            "/authenticate/rest-auth/user/confirm-change/",
            &json!({ "key": t }),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(app.get(path, Some(&creator.token)).await.status, 404);
    // Unknown keys: JSON 404, and a page for the link.
    let r = app
        .post(
            "/authenticate/rest-auth/user/confirm-change/",
            &json!({"key": "nope"}),
            None,
        )
        .await;
    assert_eq!(r.status, 404);
    let page = app
        .get("/authenticate/rest-auth/user/confirm-change/nope/", None)
        .await;
    assert_eq!(page.status, 404);
    assert!(page.text.contains("Link not valid"));
}

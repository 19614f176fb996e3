//! Secrets never in a log line nor in plain text in a table. A broad scenario (the matrix's world
//! — tiers, memberships paid through Checkout and webhooks, bank details, commissions — plus
//! registration, email confirmation, login, JWTs, a password change and reset, an email change
//! and a guest checkout) runs in a child process of this test binary in production mode with
//! `RUST_LOG=debug`; the child dumps every text, JSON and byte column of every table and looks
//! for every secret it used, then writes the secrets to a file. The parent greps the child's
//! whole log output for each of them.
use super::world::{self, ACCOUNT_NUMBER, PASSWORD};
use oasis_tests::{json, spawn_app_with, TestApp};
use serde_json::Value;
use std::time::Duration;

const KEY_ID: &str = "rzp_test_secrets01";
const KEY_SECRET: &str = "KeySecret-9hT4vQ2mZx81";
const WEBHOOK_SECRET: &str = "WebhookSecret-p3Lr6Yw0Qa";
const SECRET_KEY: &str = "Oasis-Root-Secret-Key-c4e1b7a9d2f65e8011aa";
const REG_PASSWORD: &str = "Reg1stered-Pass-w0rd-k2";
const CHANGED_PASSWORD: &str = "Chang3d-Pass-w0rd-r8";
const RESET_PASSWORD: &str = "Res3t-Pass-w0rd-t5";
const GUEST_PASSWORD: &str = "Gue5t-Pass-w0rd-m1";
const ACCOUNT_NUMBER_2: &str = "605040302010987";

/// Plain-text bodies of the outbox emails to `to`, oldest first.
fn mails(app: &TestApp, to: &str) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(&app.settings.mail.outbox) else {
        return vec![];
    };
    let mut found: Vec<(std::time::SystemTime, String)> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let text = std::fs::read_to_string(e.path()).ok()?;
            Some((e.metadata().ok()?.modified().ok()?, text))
        })
        .filter(|(_, t)| {
            t.lines()
                .any(|l| l.eq_ignore_ascii_case(&format!("To: {to}")))
        })
        .collect();
    found.sort_by_key(|m| m.0);
    found.into_iter().map(|m| m.1).collect()
}

async fn wait_mail(app: &TestApp, to: &str, n: usize) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let m = mails(app, to);
        if m.len() >= n {
            return m[n - 1].clone();
        }
        assert!(std::time::Instant::now() < deadline, "no mail #{n} to {to}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The text after `marker` up to the next `/` or whitespace.
fn after(text: &str, marker: &str) -> String {
    let i = text
        .find(marker)
        .unwrap_or_else(|| panic!("{marker} not in {text}"))
        + marker.len();
    let rest = &text[i..];
    let end = rest
        .find(|c: char| c == '/' || c.is_whitespace())
        .unwrap_or(rest.len());
    rest[..end].to_owned()
}

fn ok(r: &oasis_tests::Resp, want: u16, what: &str) {
    assert_eq!(r.status, want, "{what}: {}", r.text);
}

fn s(v: &Value) -> String {
    v.as_str()
        .unwrap_or_else(|| panic!("not a string: {v}"))
        .to_owned()
}

/// Every text, JSON and byte value of every table (one string per row and column).
fn dump(app: &TestApp) -> Vec<(String, String)> {
    use diesel::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Col {
        #[diesel(sql_type = diesel::sql_types::Text)]
        table_name: String,
        #[diesel(sql_type = diesel::sql_types::Text)]
        column_name: String,
        #[diesel(sql_type = diesel::sql_types::Text)]
        data_type: String,
    }
    #[derive(diesel::QueryableByName)]
    struct V {
        #[diesel(sql_type = diesel::sql_types::Text)]
        v: String,
    }
    let mut conn = app.conn();
    let cols: Vec<Col> = diesel::sql_query(
        "SELECT table_name::text, column_name::text, data_type::text FROM information_schema.columns
          WHERE table_schema = 'public'
            AND data_type IN ('text', 'character varying', 'character', 'json', 'jsonb', 'bytea', 'ARRAY')",
    )
    .load(&mut conn)
    .expect("columns");
    assert!(cols.len() > 20, "too few columns: {}", cols.len());
    let mut out = vec![];
    for c in cols {
        let expr = match c.data_type.as_str() {
            "bytea" => format!("encode(\"{}\", 'escape')", c.column_name),
            _ => format!("\"{}\"::text", c.column_name),
        };
        let rows: Vec<V> = diesel::sql_query(format!(
            "SELECT {expr} AS v FROM \"{}\" WHERE \"{}\" IS NOT NULL",
            c.table_name, c.column_name
        ))
        .load(&mut conn)
        .unwrap_or_else(|e| panic!("{}.{}: {e}", c.table_name, c.column_name));
        for r in rows {
            out.push((format!("{}.{}", c.table_name, c.column_name), r.v));
        }
    }
    out
}

/// The forms a secret could be written in: as is, and percent-encoded.
fn forms(secret: &str) -> Vec<String> {
    let mut v = vec![secret.to_owned()];
    let enc: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
    if enc != secret {
        v.push(enc);
    }
    v
}

#[tokio::test]
#[ignore = "the child half of no_secret_in_any_log_line_or_table (run by it, in its own process)"]
async fn secrets_scenario_child() {
    let out = std::env::var("OASIS_SECRETS_OUT").expect("OASIS_SECRETS_OUT");
    let (sim, addr, _sim_handle) = razorpay_sim::spawn(
        razorpay_sim::SimConfig {
            key_id: KEY_ID.into(),
            key_secret: KEY_SECRET.into(),
            webhook_secret: WEBHOOK_SECRET.into(),
            webhook_url: None,
            state_file: None,
        },
        "127.0.0.1:0",
    )
    .await
    .expect("simulator starts");
    let sim_base = format!("http://{addr}");
    let base = sim_base.clone();
    let app = spawn_app_with(move |s| {
        // What OASIS_ENV=production sets (development logs the links of outbox mails).
        s.env = oasis_server::config::Environment::Production;
        s.mail.log_links = false;
        s.secret_key = Some(secrecy::SecretString::from(SECRET_KEY));
        s.razorpay.key_id = Some(KEY_ID.into());
        s.razorpay.key_secret = Some(secrecy::SecretString::from(KEY_SECRET));
        s.razorpay.webhook_secret = Some(secrecy::SecretString::from(WEBHOOK_SECRET));
        s.razorpay.api_base = base;
    })
    .await;
    sim.set_webhook_url(app.url("/razorpay/webhooks/"));

    let mut secrets: Vec<String> = [
        KEY_SECRET,
        WEBHOOK_SECRET,
        SECRET_KEY,
        PASSWORD,
        REG_PASSWORD,
        CHANGED_PASSWORD,
        RESET_PASSWORD,
        GUEST_PASSWORD,
        ACCOUNT_NUMBER,
        ACCOUNT_NUMBER_2,
    ]
    .map(str::to_owned)
    .to_vec();

    let w = world::build(&app, "sx", &sim_base).await;
    for u in [&w.fan, &w.member, &w.other, &w.owner] {
        secrets.push(u.token.clone());
    }
    secrets.extend(w.spare.iter().flatten().cloned());

    // Registration, confirmation by the mailed key, login.
    let email = "sx_reg@example.com";
    let r = app
        .post(
            "/authenticate/rest-auth/registration/",
            &json!({"username": "sx_reg", "email": email, "password": REG_PASSWORD,
                    "password2": REG_PASSWORD, "login_type": "manual"}),
            None,
        )
        .await;
    ok(&r, 201, "register");
    let key = after(&wait_mail(&app, email, 1).await, "account-confirm-email/");
    secrets.push(key.clone());
    let r = app
        .get(
            &format!("/authenticate/rest-auth/registration/account-confirm-email/{key}/"),
            None,
        )
        .await;
    ok(&r, 200, "confirm");
    let r = app
        .post(
            "/authenticate/rest-auth/login/",
            &json!({"username": "sx_reg", "password": REG_PASSWORD}),
            None,
        )
        .await;
    ok(&r, 200, "login");
    let token = s(&r.body["key"]);
    secrets.push(token.clone());

    // JWTs: obtain, refresh, verify, and a call with one.
    let r = app
        .post(
            "/authenticate/api/token/",
            &json!({"username": "sx_reg", "password": REG_PASSWORD}),
            None,
        )
        .await;
    ok(&r, 200, "jwt");
    let (access, refresh) = (s(&r.body["access"]), s(&r.body["refresh"]));
    let r = app
        .post(
            "/authenticate/api/token/refresh/",
            &json!({"refresh": refresh}),
            None,
        )
        .await;
    ok(&r, 200, "refresh");
    secrets.extend([access.clone(), refresh, s(&r.body["access"])]);
    ok(
        &app.post(
            "/authenticate/api/token/verify/",
            &json!({"token": access}),
            None,
        )
        .await,
        200,
        "verify",
    );
    ok(
        &app.get("/authenticate/rest-auth/user/", Some(&access))
            .await,
        200,
        "jwt call",
    );

    // Password change, then a reset through the mailed link.
    let r = app
        .post(
            "/authenticate/rest-auth/password/change/",
            &json!({"old_password": REG_PASSWORD, "new_password1": CHANGED_PASSWORD,
                    "new_password2": CHANGED_PASSWORD}),
            Some(&token),
        )
        .await;
    ok(&r, 200, "password change");
    let before = mails(&app, email).len();
    let r = app
        .post(
            "/authenticate/rest-auth/password/reset/",
            &json!({"email": email}),
            None,
        )
        .await;
    ok(&r, 200, "reset");
    let mail = wait_mail(&app, email, before + 1).await;
    let uid = after(&mail, "/password/reset/confirm/");
    let reset = after(&mail, &format!("/password/reset/confirm/{uid}/"));
    secrets.push(reset.clone());
    let r = app
        .post(
            "/authenticate/rest-auth/password/reset/confirm/",
            &json!({"uid": uid, "token": reset, "new_password1": RESET_PASSWORD,
                    "new_password2": RESET_PASSWORD}),
            None,
        )
        .await;
    ok(&r, 200, "reset confirm");

    // An email change (password checked, link mailed to the new address).
    let r = app
        .post(
            "/authenticate/rest-auth/login/",
            &json!({"username": "sx_reg", "password": RESET_PASSWORD}),
            None,
        )
        .await;
    ok(&r, 200, "login after reset");
    let token = s(&r.body["key"]);
    secrets.push(token.clone());
    let new_email = "sx_new@example.com";
    let r = app
        .patch(
            "/authenticate/rest-auth/user/",
            &json!({"email": new_email, "password": RESET_PASSWORD}),
            Some(&token),
        )
        .await;
    ok(&r, 200, "email change");
    let key = after(
        &wait_mail(&app, new_email, 1).await,
        "account-confirm-email/",
    );
    secrets.push(key.clone());
    ok(
        &app.get(
            &format!("/authenticate/rest-auth/registration/account-confirm-email/{key}/"),
            None,
        )
        .await,
        200,
        "confirm new email",
    );

    // The bank account changed (password in the body), a guest checkout (password in the body).
    let r = app
        .patch(
            "/subscriptions/api/bankdetails",
            &json!({"accountNumber": ACCOUNT_NUMBER_2, "password": PASSWORD}),
            Some(&w.owner.token),
        )
        .await;
    ok(&r, 200, "bank patch");
    let r = app
        .post(
            "/subscriptions/get_ghost_user/",
            &json!({"email": "sx_guest@example.com", "password": GUEST_PASSWORD,
                    "payment_type": "recurring", "tierID": w.tier}),
            Some("not-a-key"),
        )
        .await;
    // A bad credential is refused before anything else; the guest comes without one.
    ok(&r, 401, "guest with a bad key");
    let r = app
        .post(
            "/subscriptions/get_ghost_user/",
            &json!({"email": "sx_guest@example.com", "password": GUEST_PASSWORD,
                    "payment_type": "recurring", "tierID": w.tier}),
            None,
        )
        .await;
    ok(&r, 200, "guest checkout");
    if let Some(k) = r.body["key"].as_str() {
        secrets.push(k.to_owned());
    }

    // Everything the webhooks and mails started has run.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while app.query_i64(
        "SELECT count(*) FROM jobs WHERE done_at IS NULL AND dead_at IS NULL AND run_at <= now()",
    ) > 0
    {
        assert!(std::time::Instant::now() < deadline, "jobs did not finish");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let mut found = vec![];
    let values = dump(&app);
    for secret in &secrets {
        for form in forms(secret) {
            for (col, v) in &values {
                if v.contains(&form) {
                    found.push(format!("{col} holds {}…", &secret[..4]));
                }
            }
        }
    }
    found.sort();
    found.dedup();
    println!(
        "secrets: {} secrets, {} values of {} columns searched",
        secrets.len(),
        values.len(),
        values
            .iter()
            .map(|v| &v.0)
            .collect::<std::collections::BTreeSet<_>>()
            .len()
    );
    assert!(
        found.is_empty(),
        "secrets in plain text in the database:\n{}",
        found.join("\n")
    );
    std::fs::write(&out, serde_json::to_string(&secrets).unwrap()).expect("write secrets");
    app.stop().await;
}

#[test]
fn no_secret_in_any_log_line_or_table() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out_file = dir.path().join("secrets.json");
    let output = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "security::secrets::secrets_scenario_child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env("TEST_LOG", "1")
        .env("RUST_LOG", "debug")
        .env("OASIS_SECRETS_OUT", &out_file)
        .output()
        .expect("child runs");
    let logs = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "the scenario failed:\n{}",
        logs.chars()
            .rev()
            .take(20_000)
            .collect::<String>()
            .chars()
            .rev()
            .collect::<String>()
    );
    let secrets: Vec<String> =
        serde_json::from_str(&std::fs::read_to_string(&out_file).expect("secrets file"))
            .expect("secrets json");
    assert!(secrets.len() > 20, "{secrets:?}");
    let lines: Vec<&str> = logs.lines().collect();
    // The child really logged (requests at debug level): else this would prove nothing.
    assert!(
        lines.iter().filter(|l| l.contains("request")).count() > 100,
        "too few log lines ({})",
        lines.len()
    );
    // The links' paths were requested and logged, with their secret part redacted.
    assert!(
        logs.contains("account-confirm-email/[redacted]"),
        "no redacted confirmation path in the logs"
    );
    let mut found = vec![];
    for secret in &secrets {
        for form in forms(secret) {
            for line in lines.iter().filter(|l| l.contains(&form)) {
                found.push(format!(
                    "{}…: {}",
                    &secret[..4],
                    line.replace(&form, "<SECRET>")
                        .chars()
                        .take(300)
                        .collect::<String>()
                ));
            }
        }
    }
    println!(
        "secrets: {} log lines searched for {} secrets, {} found",
        lines.len(),
        secrets.len(),
        found.len()
    );
    assert!(
        found.is_empty(),
        "secrets in the logs:\n{}",
        found.join("\n")
    );
}

//! Notification emails: the `notify.email` job (queued by the fan-out in its transaction, one
//! per stored notification whose kind is mailed at once), rendered at send time from the
//! templates in `apps/oasis-server/templates/mail/` (plain text + HTML, minijinja with HTML
//! auto-escaping) and the recipient's settings *then*: category email off → not sent; over
//! `OASIS_NOTIFY_EMAILS_PER_HOUR` → not sent (receipts never capped). Optional emails carry a
//! signed one-click unsubscribe link and RFC 8058 headers. The job carries the notification's
//! id only.
use crate::config::Settings;
use crate::context::AppContext;
use crate::db::{Db, DbError};
use crate::jobs::{JobError, JobRegistry};
use crate::mail::{Email, MailError, Mailer};
use base64::Engine;
use diesel::PgConnection;
use oasis_db::notify::{self as repo, NotificationMail, PgNotify};
use oasis_kernel::RepoError;
use oasis_notify::{Category, Kind, NotifyError, Preferences};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::sync::{Arc, OnceLock};

/// The job kind carrying an [`EmailJob`].
pub const JOB_EMAIL: &str = "notify.email";

/// What a [`JOB_EMAIL`] job says: which notification to mail. Never a secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailJob {
    pub notification_id: i64,
}

/// Queues the mail of a stored notification (in the fan-out's transaction).
pub fn enqueue(c: &mut PgConnection, notification_id: i64) -> Result<(), RepoError> {
    let payload = serde_json::to_value(EmailJob { notification_id })
        .map_err(|e| RepoError::Unavailable(e.to_string()))?;
    oasis_db::jobs::enqueue(c, JOB_EMAIL, &payload)?;
    Ok(())
}

/// The templates, parsed once (compiled into the binary).
fn templates() -> &'static minijinja::Environment<'static> {
    static ENV: OnceLock<minijinja::Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = minijinja::Environment::new();
        // HTML templates auto-escape by their `.html` name (minijinja's default).
        for (name, src) in TEMPLATES {
            if let Err(e) = env.add_template(name, src) {
                // Caught by `every_template_renders` before any release.
                tracing::error!(template = name, error = %e, "mail template does not parse");
            }
        }
        env
    })
}

macro_rules! templates {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("../../templates/mail/", $name)))),*]
    };
}

const TEMPLATES: &[(&str, &str)] = templates![
    "layout.html",
    "footer.txt",
    "receipt.txt",
    "receipt.html",
    "payment_failed.txt",
    "payment_failed.html",
    "membership_halted.txt",
    "membership_halted.html",
    "payment_refunded.txt",
    "payment_refunded.html",
    "membership.txt",
    "membership.html",
    "cheer.txt",
    "cheer.html",
    "commission.txt",
    "commission.html",
    "access_ending.txt",
    "access_ending.html",
    "digest.txt",
    "digest.html",
    "unsubscribe_page.html",
];

/// The template (both parts share the name) and subject of a kind mailed at once.
fn template_of(kind: Kind, data: &Value) -> Option<(&'static str, String)> {
    let tier = data["tier"].as_str().unwrap_or("your membership");
    Some(match kind {
        Kind::Receipt => ("receipt", "Your Oasis receipt".to_owned()),
        Kind::PaymentFailed => ("payment_failed", "Your payment failed".to_owned()),
        Kind::MembershipHalted => (
            "membership_halted",
            format!("Your membership of {tier} is on hold"),
        ),
        Kind::PaymentRefunded => ("payment_refunded", "A payment was refunded".to_owned()),
        Kind::Membership => ("membership", "You have a new member".to_owned()),
        Kind::Cheer => ("cheer", "You received a tip".to_owned()),
        Kind::Commission => {
            let title = data["title"].as_str().unwrap_or("your commission");
            ("commission", format!("Commission update: {title}"))
        }
        Kind::AccessEnding => ("access_ending", format!("Your access to {tier} ends soon")),
        Kind::NewPost
        | Kind::Comment
        | Kind::Like
        | Kind::Follow
        | Kind::MembershipChanged
        | Kind::CreatorHiatus => return None,
    })
}

/// Renders `<name>.txt` and `<name>.html` with `ctx`.
pub fn render(name: &str, ctx: &Value) -> Result<(String, String), MailError> {
    let env = templates();
    let one = |file: String| -> Result<String, MailError> {
        env.get_template(&file)
            .and_then(|t| t.render(minijinja::value::Serde(ctx)))
            .map_err(|e| MailError::Render(format!("{file}: {e}")))
    };
    Ok((one(format!("{name}.txt"))?, one(format!("{name}.html"))?))
}

fn category_label(c: Category) -> &'static str {
    match c {
        Category::Receipts => "receipt",
        Category::MembershipWarnings => "membership warning",
        Category::CreatorActivity => "new member and tip",
        Category::CommissionUpdates => "commission update",
        Category::NewPosts => "new post digest",
        Category::Social => "social",
        Category::Security => "security",
    }
}

fn day(v: &Value) -> Option<String> {
    let t: chrono::DateTime<chrono::Utc> = serde_json::from_value(v.clone()).ok()?;
    Some(t.format("%-d %b %Y").to_string())
}

/// The email for a notification, or `None` when it must not be sent (email off now, over the
/// rate cap, or a kind that is never mailed at once).
pub fn compose(m: &NotificationMail, settings: &Settings) -> Result<Option<Email>, MailError> {
    let n = &m.notification;
    let category = n.kind.category();
    let Some((template, subject)) = template_of(n.kind, &n.data) else {
        return Ok(None);
    };
    if !m.channels.email && !category.email_required() {
        return Ok(None);
    }
    if category.rate_capped() && m.mailed_last_hour >= settings.notify_emails_per_hour {
        tracing::info!(
            notification = n.id,
            recipient = n.recipient_id,
            "notification email over the per-recipient hourly cap; in-app only"
        );
        return Ok(None);
    }
    let base = settings.public_url.trim_end_matches('/');
    let unsubscribe = (!category.email_required()).then(|| {
        format!(
            "{base}/feed/api/notification-settings/unsubscribe/{}",
            unsubscribe_token(settings, n.recipient_id, category)
        )
    });
    let d = &n.data;
    let amount = d["amount"]
        .as_i64()
        .zip(d["currency"].as_str())
        .map(|(a, c)| oasis_notify::money(a, c));
    let what = match (d["payment_kind"].as_str(), d["tier"].as_str()) {
        (Some("cheer"), _) => "a cheer".to_owned(),
        (_, Some(t)) => t.to_owned(),
        (Some(k), None) => k.replace('_', "-"),
        (None, None) => String::new(),
    };
    let period = match (day(&d["period_start"]), day(&d["period_end"])) {
        (Some(a), Some(b)) => Some(format!("{a} – {b}")),
        _ => None,
    };
    let ctx = json!({
        "subject": subject,
        "name": m.recipient_name,
        "verb": n.verb,
        "actor": n.actor_name.clone().unwrap_or_else(|| "someone".into()),
        "amount": amount,
        "what": what,
        "tier": d["tier"],
        "creator": d["creator"],
        "period": period,
        "payment_id": d["payment_id"],
        "date": n.created_at.format("%-d %b %Y").to_string(),
        "reason": d["reason"],
        "cheer_name": d["name"].as_str().filter(|s| !s.trim().is_empty()).unwrap_or("a fan"),
        "message": d["message"],
        "membership_kind": d["membership_kind"],
        "category_label": category_label(category),
        "unsubscribe_url": unsubscribe,
        "settings_url": format!("{base}/feed/api/notification-settings/"),
    });
    let (body, html) = render(template, &ctx)?;
    Ok(Some(Email {
        to: m.recipient_email.clone(),
        subject,
        body,
        links: unsubscribe.iter().cloned().collect(),
        html: Some(html),
        list_unsubscribe: unsubscribe,
    }))
}

/// The job kind carrying a [`DigestJob`].
pub const JOB_DIGEST: &str = "notify.digest_mail";

/// Which digest to mail: the one planned for `user_id` on `day` (ids only; the posts are read
/// when it is sent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DigestJob {
    pub user_id: i64,
    pub day: chrono::NaiveDate,
}

/// Queues a planned digest's mail (in the planning transaction).
pub fn enqueue_digest(c: &mut PgConnection, job: DigestJob) -> Result<(), RepoError> {
    let payload = serde_json::to_value(job).map_err(|e| RepoError::Unavailable(e.to_string()))?;
    oasis_db::jobs::enqueue(c, JOB_DIGEST, &payload)?;
    Ok(())
}

/// The new-post digest: every post by title (and a preview for public posts only), or
/// `None` when its email is off now or no post is left.
pub fn compose_digest(
    d: &repo::DigestMail,
    settings: &Settings,
) -> Result<Option<Email>, MailError> {
    if !d.email_on || d.posts.is_empty() {
        return Ok(None);
    }
    let category = Category::NewPosts;
    let base = settings.public_url.trim_end_matches('/');
    let unsubscribe = format!(
        "{base}/feed/api/notification-settings/unsubscribe/{}",
        unsubscribe_token(settings, d.user_id, category)
    );
    let subject = match d.posts.len() {
        1 => "1 new post from creators you follow".to_owned(),
        n => format!("{n} new posts from creators you follow"),
    };
    let posts: Vec<Value> = d
        .posts
        .iter()
        .map(|p| {
            json!({
                "creator": p.creator,
                "title": p.title,
                "locked": p.locked,
                // Never a gated post's body, whatever is stored.
                "preview": if p.locked { None } else { p.preview.clone() },
            })
        })
        .collect();
    let ctx = json!({
        "subject": subject,
        "name": d.username,
        "posts": posts,
        "category_label": category_label(category),
        "unsubscribe_url": unsubscribe,
        "settings_url": format!("{base}/feed/api/notification-settings/"),
    });
    let (body, html) = render("digest", &ctx)?;
    Ok(Some(Email {
        to: d.email.clone(),
        subject,
        body,
        links: vec![unsubscribe.clone()],
        html: Some(html),
        list_unsubscribe: Some(unsubscribe),
    }))
}

fn token_key(settings: &Settings) -> ring::hmac::Key {
    let root = ring::hmac::Key::new(
        ring::hmac::HMAC_SHA256,
        settings.secret().expose_secret().as_bytes(),
    );
    let sub = ring::hmac::sign(&root, b"oasis/notify/unsubscribe/v1");
    ring::hmac::Key::new(ring::hmac::HMAC_SHA256, sub.as_ref())
}

/// A token naming (user, category), signed with a key derived from `OASIS_SECRET_KEY`. It does
/// not expire (an old email's link keeps working) and does nothing but turn one category's
/// email off.
pub fn unsubscribe_token(settings: &Settings, user: i64, category: Category) -> String {
    let msg = format!("{user}.{}", category.as_str());
    let sig = ring::hmac::sign(&token_key(settings), msg.as_bytes());
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    format!("{msg}.{}", b64.encode(sig.as_ref()))
}

/// The (user, category) of a valid token.
pub fn verify_unsubscribe_token(settings: &Settings, token: &str) -> Option<(i64, Category)> {
    let (msg, sig) = token.rsplit_once('.')?;
    let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(sig)
        .ok()?;
    ring::hmac::verify(&token_key(settings), msg.as_bytes(), &sig).ok()?;
    let (user, category) = msg.split_once('.')?;
    Some((user.parse().ok()?, Category::parse(category)?))
}

/// Why an unsubscribe did not happen.
#[derive(Debug, thiserror::Error)]
pub enum UnsubscribeError {
    /// Forged, altered or truncated (HTTP 400).
    #[error("This unsubscribe link is not valid.")]
    BadToken,
    #[error(transparent)]
    Notify(#[from] NotifyError),
    #[error(transparent)]
    Db(#[from] DbError),
}

/// Turns off the email of the token's category (idempotent); returns the category.
pub async fn unsubscribe(
    db: &Db,
    settings: &Settings,
    token: &str,
) -> Result<Category, UnsubscribeError> {
    let (user, category) =
        verify_unsubscribe_token(settings, token).ok_or(UnsubscribeError::BadToken)?;
    let patch = json!({ category.as_str(): { "email": false } });
    db.tx_as::<_, UnsubscribeError, _>(move |c| {
        let _: Preferences = oasis_notify::update_preferences(&mut PgNotify(c), user, &patch)?;
        Ok(())
    })
    .await?;
    Ok(category)
}

/// The page behind an unsubscribe link: a one-button form before (`done` false: a GET must
/// not change anything — mail scanners follow links), the confirmation after.
pub fn unsubscribe_page(category: Option<Category>, done: bool, action: &str) -> String {
    let ctx = json!({
        "done": done,
        "category_label": category.map(category_label).unwrap_or("these"),
        "action": action,
    });
    templates()
        .get_template("unsubscribe_page.html")
        .and_then(|t| t.render(minijinja::value::Serde(&ctx)))
        .unwrap_or_else(|e| {
            tracing::error!(error = %e, "unsubscribe page does not render");
            String::new()
        })
}

pub fn register(registry: &mut JobRegistry, ctx: &AppContext) {
    let mailer = match Mailer::new(&ctx.settings.mail) {
        Ok(m) => Arc::new(m),
        Err(e) => {
            tracing::error!(error = %e, "mail is misconfigured; notification emails stay queued");
            return;
        }
    };
    let (db, settings, digest_mailer) = (ctx.db.clone(), ctx.settings.clone(), mailer.clone());
    registry.register(JOB_EMAIL, move |payload: Value| {
        let (db, settings, mailer) = (db.clone(), settings.clone(), mailer.clone());
        async move {
            let EmailJob { notification_id } = serde_json::from_value(payload)?;
            let email = db
                .tx_as::<_, JobError, _>(move |c| {
                    let Some(m) = repo::notification_mail(c, notification_id)? else {
                        return Ok(None);
                    };
                    let email = compose(&m, &settings)?;
                    if email.is_some() {
                        repo::mark_emailed(c, notification_id)?;
                    }
                    Ok(email)
                })
                .await?;
            match email {
                Some(email) => Ok(mailer.send(&email).await?),
                None => Ok(()),
            }
        }
    });
    let (db, settings, mailer) = (ctx.db.clone(), ctx.settings.clone(), digest_mailer);
    registry.register(JOB_DIGEST, move |payload: Value| {
        let (db, settings, mailer) = (db.clone(), settings.clone(), mailer.clone());
        async move {
            let DigestJob { user_id, day } = serde_json::from_value(payload)?;
            let email = db
                .run_as::<_, JobError, _>(move |c| {
                    let Some(d) = repo::digest_mail(c, user_id, day)? else {
                        return Ok(None);
                    };
                    Ok(compose_digest(&d, &settings)?)
                })
                .await?;
            match email {
                Some(email) => Ok(mailer.send(&email).await?),
                None => Ok(()),
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        let mut env = std::collections::HashMap::new();
        env.insert("OASIS_SECRET_KEY", "k".repeat(40));
        Settings::load_from(|k| env.get(k).cloned()).unwrap()
    }

    fn sample(kind: Kind) -> NotificationMail {
        let data = json!({
            "payment_id": "pay_TEST123", "payment_kind": "subscription", "amount": 49900,
            "currency": "INR", "tier": "Gold <b>", "creator": "cora", "creator_id": 1,
            "period_start": "2026-12-01T00:00:00Z", "period_end": "2027-01-01T00:00:00Z",
            "reason": "the tier accepts no new members", "name": "Ann", "message": "keep <going>",
            "membership_id": 3,
        });
        NotificationMail {
            notification: oasis_notify::Notification {
                id: 9,
                recipient_id: 2,
                actor_id: Some(1),
                actor_name: Some("fan<x>".into()),
                kind,
                verb: format!("did {}", kind.as_str()),
                target: None,
                action_object: None,
                post_id: None,
                data,
                unread: true,
                created_at: chrono::Utc::now(),
            },
            recipient_email: "ann@example.com".into(),
            recipient_name: "ann".into(),
            channels: kind.category().default_channels(),
            mailed_last_hour: 0,
        }
    }

    /// Every template, both parts: renders, escapes HTML, shows the amount, and carries the
    /// unsubscribe link exactly when the category can be turned off.
    #[test]
    fn every_template_renders() {
        let s = settings();
        let mailed: Vec<Kind> = Kind::ALL
            .into_iter()
            .filter(|k| k.mailed_at_once())
            .collect();
        assert_eq!(
            mailed.len() * 2 + 5,
            TEMPLATES.len(),
            "a template per part and kind"
        );
        for kind in mailed {
            let e = compose(&sample(kind), &s).unwrap().expect("sent");
            let html = e.html.as_deref().unwrap();
            assert!(html.contains("Hi ann"), "{kind:?}: {html}");
            assert!(
                !html.contains("<b>") && !html.contains("<going>") && !html.contains("<x>"),
                "{kind:?} escapes: {html}"
            );
            if matches!(
                kind,
                Kind::Receipt | Kind::PaymentRefunded | Kind::Cheer | Kind::PaymentFailed
            ) {
                assert!(e.body.contains("INR 499.00"), "{kind:?}: {}", e.body);
                assert!(html.contains("INR 499.00"), "{kind:?}: {html}");
            }
            if kind.category().email_required() {
                assert!(e.list_unsubscribe.is_none(), "{kind:?}");
                assert!(e.body.contains("cannot be turned off"));
            } else {
                let url = e.list_unsubscribe.clone().unwrap();
                // minijinja's HTML escaping writes `/` as `&#x2f;` (valid in an href).
                let escaped = url.replace('/', "&#x2f;");
                assert!(
                    e.body.contains(&url) && html.contains(&escaped),
                    "{kind:?}: {html}"
                );
            }
        }
        let r = compose(&sample(Kind::Receipt), &s).unwrap().unwrap();
        for part in [&r.body, r.html.as_ref().unwrap()] {
            assert!(part.contains("pay_TEST123"));
            assert!(part.contains("cora"));
            assert!(part.contains("1 Dec 2026 – 1 Jan 2027"), "{part}");
        }
        let page = unsubscribe_page(Some(Category::NewPosts), false, "/x?a=<b>");
        assert!(page.contains("new post digest") && page.contains("method=\"post\""));
        assert!(!page.contains("<b>"));
        assert!(unsubscribe_page(None, true, "").contains("no longer receive"));
        for kind in [Kind::Like, Kind::Comment, Kind::Follow, Kind::NewPost] {
            assert!(compose(&sample(kind), &s).unwrap().is_none());
        }
    }

    #[test]
    fn preferences_and_the_cap_decide_at_send_time() {
        let s = settings();
        let mut m = sample(Kind::Membership);
        m.channels.email = false;
        assert!(compose(&m, &s).unwrap().is_none(), "email off");
        let mut m = sample(Kind::Membership);
        m.mailed_last_hour = s.notify_emails_per_hour;
        assert!(compose(&m, &s).unwrap().is_none(), "over the cap");
        let mut m = sample(Kind::Receipt);
        m.mailed_last_hour = 1000;
        assert!(
            compose(&m, &s).unwrap().is_some(),
            "receipts are never capped"
        );
    }

    #[test]
    fn unsubscribe_tokens_are_signed() {
        let s = settings();
        let t = unsubscribe_token(&s, 42, Category::NewPosts);
        assert_eq!(
            verify_unsubscribe_token(&s, &t),
            Some((42, Category::NewPosts))
        );
        let forged = t.replacen("42.", "43.", 1);
        assert_eq!(verify_unsubscribe_token(&s, &forged), None);
        assert_eq!(verify_unsubscribe_token(&s, "42.new_posts"), None);
        assert_eq!(verify_unsubscribe_token(&s, ""), None);
    }

    /// One sample of each mailed kind (and the digest) opened in headless Chromium (Debian's
    /// `chromium`): the page shows its amount and loads nothing from outside — every request
    /// Chromium makes goes to a local "proxy" that counts connections and must count none.
    /// Skips, saying so, when chromium is not installed.
    #[test]
    fn every_mail_opens_in_headless_chromium_without_external_resources() {
        let Some(chromium) = ["chromium", "chromium-browser"].into_iter().find(|c| {
            std::process::Command::new(c)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        }) else {
            eprintln!("SKIPPED: chromium is not installed (apt-get install chromium)");
            return;
        };
        let s = settings();
        let dir = tempfile::tempdir().unwrap();
        let proxy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let proxy_port = proxy.local_addr().unwrap().port();
        // The "proxy" records each request line and answers 502 at once (a page that asks for
        // something is not left waiting).
        let requested = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let log = requested.clone();
        std::thread::spawn(move || {
            for conn in proxy.incoming() {
                use std::io::{Read, Write};
                let Ok(mut conn) = conn else { continue };
                let _ = conn.set_read_timeout(Some(std::time::Duration::from_secs(2)));
                let mut head = [0u8; 512];
                let n = conn.read(&mut head).unwrap_or(0);
                let line = String::from_utf8_lossy(&head[..n]);
                let line = line.lines().next().unwrap_or_default().to_owned();
                log.lock().unwrap().push(line);
                let _ = conn.write_all(
                    b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
            }
        });
        let mut pages: Vec<(String, String, Option<&str>)> = Kind::ALL
            .into_iter()
            .filter(|k| k.mailed_at_once())
            .map(|k| {
                let e = compose(&sample(k), &s).unwrap().expect("sent");
                let shows = matches!(
                    k,
                    Kind::Receipt | Kind::PaymentRefunded | Kind::Cheer | Kind::PaymentFailed
                )
                .then_some("INR 499.00");
                (k.as_str().to_owned(), e.html.unwrap(), shows)
            })
            .collect();
        let digest = repo::DigestMail {
            user_id: 2,
            email: "ann@example.com".into(),
            username: "ann".into(),
            day: chrono::Utc::now().date_naive(),
            email_on: true,
            posts: vec![repo::DigestPost {
                post_id: 1,
                creator: "cora".into(),
                title: "Members only".into(),
                locked: true,
                preview: Some("SECRET".into()),
            }],
        };
        let d = compose_digest(&digest, &s).unwrap().unwrap();
        assert!(!d.body.contains("SECRET") && !d.html.as_ref().unwrap().contains("SECRET"));
        pages.push(("digest".into(), d.html.unwrap(), Some("Members only")));
        // The negative control: a page that does load something from outside is caught.
        pages.push((
            "control".into(),
            "<html><body><p>Hi ann</p><img src=\"http://tracker.example/pixel.gif\">\
             <link rel=\"stylesheet\" href=\"https://fonts.example/a.css\"></body></html>"
                .into(),
            None,
        ));
        for (name, html, shows) in pages {
            let file = dir.path().join(format!("{name}.html"));
            std::fs::write(&file, &html).unwrap();
            requested.lock().unwrap().clear();
            let out = std::process::Command::new(chromium)
                .args([
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--disable-default-apps",
                    "--no-first-run",
                    "--no-default-browser-check",
                    &format!("--user-data-dir={}", dir.path().join("profile").display()),
                    &format!("--proxy-server=http://127.0.0.1:{proxy_port}"),
                    "--proxy-bypass-list=<-loopback>",
                    "--dump-dom",
                ])
                .arg(format!("file://{}", file.display()))
                .output()
                .expect("chromium runs");
            let dom = String::from_utf8_lossy(&out.stdout);
            assert!(dom.contains("Hi ann"), "{name}: {dom}");
            if let Some(text) = shows {
                assert!(dom.contains(text), "{name} shows {text}: {dom}");
            }
            // Chromium's own background requests (Google services) are not the mail's, and a
            // connection it opened ahead (a preconnect) that never sent a request line fetched
            // nothing.
            let mut fetched = std::mem::take(&mut *requested.lock().unwrap());
            fetched.retain(|l| {
                !l.trim().is_empty() && !l.contains("google") && !l.contains("gvt1.com")
            });
            if name == "control" {
                for host in ["tracker.example", "fonts.example"] {
                    assert!(
                        fetched.iter().any(|l| l.contains(host)),
                        "the check must see the control page load {host}: {fetched:?}"
                    );
                }
            } else {
                assert!(
                    fetched.is_empty(),
                    "{name} loaded external resources: {fetched:?}"
                );
            }
        }
    }
}

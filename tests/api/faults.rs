//! Issue 17, database faults: PostgreSQL stopped under load and started again, and a pool
//! exhausted by slow statements. Requests fail fast with a JSON 503 (never a 500, never a hang),
//! `/ready` says not ready meanwhile, the server recovers by itself, and webhooks acknowledged
//! just before the outage are processed after it.
use diesel::{Connection, PgConnection, RunQueryDsl};
use oasis_db::cluster::{ClusterOptions, EmbeddedCluster};
use oasis_tests::{spawn_app_with, TestApp};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const WEBHOOK_SECRET: &str = "faults_webhook_secret";

/// One answer: status, JSON body (Null if none), how long it took.
struct Answer {
    status: u16,
    body: Value,
    took: Duration,
}

async fn timed(req: reqwest::RequestBuilder) -> Answer {
    let t = Instant::now();
    // The client's own bound is far above the server's: a hang shows up as a failure here.
    match req.timeout(Duration::from_secs(60)).send().await {
        Ok(r) => {
            let status = r.status().as_u16();
            let text = r.text().await.unwrap_or_default();
            Answer {
                status,
                body: serde_json::from_str(&text).unwrap_or(Value::Null),
                took: t.elapsed(),
            }
        }
        Err(e) => panic!(
            "request failed without an answer after {:?}: {e}",
            t.elapsed()
        ),
    }
}

fn assert_json_503(a: &Answer, what: &str, bound: Duration) {
    assert_eq!(a.status, 503, "{what}: {} {}", a.status, a.body);
    assert_eq!(a.body["code"], "service_unavailable", "{what}: {}", a.body);
    assert!(a.body["detail"].is_string(), "{what}: {}", a.body);
    assert!(
        a.took <= bound,
        "{what} took {:?} (bound {bound:?})",
        a.took
    );
}

/// A signed, distinct `payment.captured` cheer event for `creator`.
fn cheer_event(n: u32, creator: i64) -> (String, String) {
    let id = format!("evt_fault_{n:06}");
    let body = serde_json::json!({
        "entity": "event", "event": "payment.captured", "contains": ["payment"],
        "created_at": 1_790_000_000,
        "payload": {"payment": {"entity": {
            "id": format!("pay_fault{n:010}"), "entity": "payment", "amount": 500 + n,
            "currency": "INR", "status": "captured", "order_id": format!("order_fault{n:08}"),
            "invoice_id": null,
            "notes": {"type": "cheer", "creatorID": creator.to_string(), "name": "F", "message": "m"},
            "created_at": 1_790_000_000}}}
    })
    .to_string();
    (id, body)
}

fn post_webhook(app: &TestApp, id: &str, body: &str) -> reqwest::RequestBuilder {
    app.client
        .post(app.url("/razorpay/webhooks/"))
        .header("Content-Type", "application/json")
        .header(
            "X-Razorpay-Signature",
            razorpay::sign_webhook(body.as_bytes(), WEBHOOK_SECRET),
        )
        .header("X-Razorpay-Event-Id", id)
        .body(body.to_owned())
}

fn standalone(s: &mut oasis_server::Settings) {
    s.razorpay.key_id = Some("rzp_test_faults".into());
    s.razorpay.key_secret = Some(secrecy::SecretString::from("faults_key_secret"));
    s.razorpay.webhook_secret = Some(secrecy::SecretString::from(WEBHOOK_SECRET));
    // Cheers paid by webhook need no call to Razorpay.
    s.razorpay.api_base = "http://127.0.0.1:9".into();
}

fn scalar(url: &str, sql: &str) -> i64 {
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let mut c = PgConnection::establish(url).expect("connect");
    diesel::sql_query(sql)
        .get_result::<N>(&mut c)
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .n
}

/// A user with an API key, written straight into the database at `url`.
fn seed_user(url: &str, name: &str, creator: bool) -> (i64, String) {
    let mut c = PgConnection::establish(url).expect("connect");
    #[derive(diesel::QueryableByName)]
    struct Id {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        id: i64,
    }
    let row: Id = diesel::sql_query(format!(
        "INSERT INTO users (username, email, first_name, last_name, is_creator, email_verified)
         VALUES ('{name}', '{name}@example.com', 'F', 'T', {creator}, true) RETURNING id"
    ))
    .get_result(&mut c)
    .expect("insert user");
    let token = format!("{:0>40}", format!("fa17{:x}", row.id));
    oasis_db::identity::insert_token(&mut c, row.id, &token).expect("token");
    (row.id, token)
}

#[tokio::test]
async fn postgres_stopped_under_load_gives_json_503s_and_the_server_recovers_alone() {
    // This test's own cluster, which it stops and starts.
    let root = tempfile::tempdir().expect("temp dir");
    let cluster_root = root.path().join("pg");
    let opts = ClusterOptions { ephemeral: true };
    let (r, o) = (cluster_root.clone(), opts.clone());
    let cluster = tokio::task::spawn_blocking(move || EmbeddedCluster::start(&r, &o))
        .await
        .unwrap()
        .expect("cluster starts");
    let url = cluster.url("oasis_faults");
    let checkout = Duration::from_millis(1000);
    let u = url.clone();
    let app = spawn_app_with(move |s| {
        standalone(s);
        s.database_url = Some(u);
        s.db_pool_size = 4;
        s.db_checkout_timeout_ms = checkout.as_millis() as u64;
        s.job_lease_secs = 2;
    })
    .await;
    // A 503 must come within the checkout wait plus generous slack for a loaded machine.
    let bound = checkout + Duration::from_secs(8);
    let (creator, _) = seed_user(&url, "fault_creator", true);
    let (_, token) = seed_user(&url, "fault_fan", false);
    let me = || {
        app.client
            .get(app.url("/authenticate/rest-auth/user/"))
            .header("Authorization", format!("Token {token}"))
    };
    let a = timed(me()).await;
    assert_eq!(a.status, 200, "{}", a.body);

    // Load: webhooks keep arriving while PostgreSQL stops (fast shutdown: connections cut).
    let acked: Arc<std::sync::Mutex<Vec<String>>> = Arc::default();
    let seq = Arc::new(AtomicU32::new(0));
    let statuses: Arc<std::sync::Mutex<BTreeMap<u16, u32>>> = Arc::default();
    let stopping = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let mut senders = Vec::new();
    for _ in 0..4 {
        let (client, base) = (app.client.clone(), app.address.clone());
        let (acked, seq, statuses, stopping) = (
            acked.clone(),
            seq.clone(),
            statuses.clone(),
            stopping.clone(),
        );
        senders.push(tokio::spawn(async move {
            while stopping.load(Ordering::SeqCst) {
                let n = seq.fetch_add(1, Ordering::SeqCst);
                let (id, body) = cheer_event(n, creator);
                let req = client
                    .post(format!("{base}/razorpay/webhooks/"))
                    .header("Content-Type", "application/json")
                    .header(
                        "X-Razorpay-Signature",
                        razorpay::sign_webhook(body.as_bytes(), WEBHOOK_SECRET),
                    )
                    .header("X-Razorpay-Event-Id", &id)
                    .body(body);
                let a = timed(req).await;
                *statuses.lock().unwrap().entry(a.status).or_default() += 1;
                assert!(
                    a.status == 200 || a.status == 503,
                    "webhook during the stop: {} {}",
                    a.status,
                    a.body
                );
                assert!(a.took <= bound, "webhook took {:?}", a.took);
                if a.status == 200 {
                    acked.lock().unwrap().push(id);
                }
            }
        }));
    }
    // Let some be acknowledged first.
    let deadline = Instant::now() + Duration::from_secs(60);
    while acked.lock().unwrap().len() < 20 {
        assert!(
            Instant::now() < deadline,
            "no webhook acknowledged before the stop"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let cluster = tokio::task::spawn_blocking(move || {
        cluster.stop().expect("pg_ctl stop");
        cluster
    })
    .await
    .unwrap();
    let down_at = Instant::now();
    stopping.store(false, Ordering::SeqCst);
    for s in senders {
        s.await.expect("sender");
    }
    let acked_before = acked.lock().unwrap().clone();

    // Down for ~10 s: every request answers a JSON 503 within the bound; `/ready` too.
    let mut down_answers = 0;
    while down_at.elapsed() < Duration::from_secs(10) {
        let (n, body) = cheer_event(900_000 + down_answers, creator);
        let (a, b, c) = tokio::join!(
            timed(me()),
            timed(app.client.get(app.url("/ready"))),
            timed(post_webhook(&app, &n, &body)),
        );
        assert_json_503(&a, "an authenticated read", bound);
        assert_json_503(&b, "/ready", bound);
        assert_json_503(&c, "a webhook", bound);
        down_answers += 1;
    }
    assert!(down_answers >= 2, "the outage was exercised");

    // Start again; the server must recover without a restart.
    let (r, o) = (cluster_root.clone(), opts.clone());
    let cluster2 = tokio::task::spawn_blocking(move || {
        drop(cluster);
        EmbeddedCluster::start(&r, &o)
    })
    .await
    .unwrap()
    .expect("cluster restarts");
    let up_at = Instant::now();
    let deadline = up_at + Duration::from_secs(60);
    loop {
        let a = timed(app.client.get(app.url("/ready"))).await;
        if a.status == 200 {
            break;
        }
        assert_json_503(&a, "/ready while recovering", bound);
        assert!(Instant::now() < deadline, "/ready never recovered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Every request after recovery succeeds (dead pooled connections are weeded out).
    for _ in 0..3 {
        let answers = futures_join(vec![me(), me(), me(), me(), me(), me()]).await;
        for a in answers {
            assert!(
                a.status == 200 || a.status == 503,
                "after recovery: {} {}",
                a.status,
                a.body
            );
        }
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let a = timed(me()).await;
        if a.status == 200 {
            break;
        }
        assert_json_503(&a, "a read while recovering", bound);
        assert!(Instant::now() < deadline, "reads never recovered");
    }
    eprintln!(
        "faults: {} webhooks acknowledged before the stop ({:?} statuses), {down_answers} rounds of 503s while down, ready again {:?} after the restart",
        acked_before.len(),
        statuses.lock().unwrap(),
        up_at.elapsed()
    );

    // Nothing acknowledged is lost: every acked webhook is processed after the restart.
    let ids = acked_before
        .iter()
        .map(|i| format!("'{i}'"))
        .collect::<Vec<_>>()
        .join(",");
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let done = scalar(
            &url,
            &format!(
                "SELECT count(*) AS n FROM billing_webhook_events
                  WHERE event_id IN ({ids}) AND processed_at IS NOT NULL"
            ),
        );
        if done as usize == acked_before.len() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{done} of {} acknowledged webhooks processed",
            acked_before.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let paid = scalar(
        &url,
        &format!(
            "SELECT count(*) AS n FROM payments WHERE kind = 'cheer' AND razorpay_payment_id IN
               (SELECT payload->'payment'->'entity'->>'id' FROM
                  (SELECT convert_from(body, 'UTF8')::jsonb->'payload' AS payload
                     FROM billing_webhook_events WHERE event_id IN ({ids})) e)"
        ),
    );
    assert_eq!(
        paid as usize,
        acked_before.len(),
        "each acknowledged tip recorded once"
    );
    app.stop().await;
    drop(app);
    tokio::task::spawn_blocking(move || cluster2.stop())
        .await
        .unwrap()
        .expect("stop");
}

async fn futures_join(reqs: Vec<reqwest::RequestBuilder>) -> Vec<Answer> {
    let handles: Vec<_> = reqs.into_iter().map(|r| tokio::spawn(timed(r))).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.expect("request task"));
    }
    out
}

#[tokio::test]
async fn a_pool_exhausted_by_slow_statements_answers_503_instead_of_waiting() {
    let app = spawn_app_with(|s| {
        s.db_pool_size = 2;
        s.db_checkout_timeout_ms = 1000;
        s.db_statement_timeout_ms = 1000;
        // What is measured is the pool: every request must reach PostgreSQL, none is answered
        // from the read cache.
        s.read_cache.enabled = false;
    })
    .await;
    let fan = app.create_user("slow_fan", false);
    let me = || {
        app.client
            .get(app.url("/authenticate/rest-auth/user/"))
            .header("Authorization", format!("Token {}", fan.token))
    };
    assert_eq!(timed(me()).await.status, 200);
    // Another client holds a lock every authenticated request waits for.
    let mut locker = app.conn();
    diesel::connection::SimpleConnection::batch_execute(
        &mut locker,
        "BEGIN; LOCK TABLE auth_tokens IN ACCESS EXCLUSIVE MODE",
    )
    .expect("lock");
    // Three times as many requests as connections: the first ones hit the statement timeout,
    // the others wait for a connection and give up after the checkout timeout (or get one
    // freed by a timed-out statement and time out themselves). All within a few seconds.
    let answers = futures_join((0..6).map(|_| me()).collect()).await;
    for a in &answers {
        assert_json_503(a, "a request behind a lock", Duration::from_secs(12));
    }
    diesel::connection::SimpleConnection::batch_execute(&mut locker, "ROLLBACK").expect("unlock");
    // Timed-out statements leave their connections usable.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let a = timed(me()).await;
        if a.status == 200 {
            break;
        }
        assert_json_503(&a, "right after the lock", Duration::from_secs(12));
        assert!(Instant::now() < deadline, "never recovered");
    }
    for a in futures_join((0..4).map(|_| me()).collect()).await {
        assert_eq!(a.status, 200, "{}", a.body);
    }
    app.stop().await;
}

#[derive(diesel::QueryableByName)]
struct Setting {
    #[diesel(sql_type = diesel::sql_types::Text)]
    statement_timeout: String,
}

/// The timeout a brand-new server connection to the app's database starts with (what a
/// transaction-mode pooler's new server connections get).
fn fresh_connections_timeout(app: &TestApp) -> String {
    let mut conn = PgConnection::establish(&app.db.direct_url()).expect("direct connection");
    diesel::sql_query("SHOW statement_timeout")
        .get_result::<Setting>(&mut conn)
        .expect("show")
        .statement_timeout
}

#[tokio::test]
async fn with_the_role_scope_every_new_server_connection_starts_with_the_statement_timeout() {
    use oasis_server::config::StatementTimeoutScope;
    // The default scope sets the timeout on the pool's own connections only.
    let app = spawn_app_with(|s| {
        s.db_statement_timeout_ms = 1234;
        s.db_statement_timeout_scope = StatementTimeoutScope::Connection;
    })
    .await;
    assert_eq!(fresh_connections_timeout(&app), "0");
    app.stop().await;
    // The role scope stores it in the database at start-up.
    let app = spawn_app_with(|s| {
        s.db_statement_timeout_ms = 1234;
        s.db_statement_timeout_scope = StatementTimeoutScope::Role;
    })
    .await;
    assert_eq!(fresh_connections_timeout(&app), "1234ms");
    app.stop().await;
}

//! The webhook storm (issue 17; docs/reliability.md). Two real `oasis` processes on one
//! database behind a round-robin relay receive the simulator's webhooks for a mix of flows
//! (memberships created, charged, renewed, pending, halted, cancelled; one-time purchases; cheers;
//! commissions paid and refunded). The relay duplicates 30 % of deliveries (half of them
//! re-serialised and re-signed), cuts 5 % of connections mid-request (the simulator redelivers),
//! and the flows run concurrently so events arrive shuffled. One process is SIGKILLed midway
//! and restarted. Then `oasis billing reconcile` runs and the final state is compared with the
//! simulator's: every captured payment recorded once with its amount and refunds, every
//! membership's status, paid count and access as Razorpay says, every commission request's
//! outcome, the ledger balanced, every acknowledged event processed.
//!
//! `cargo test -p oasis-server --test storm` runs a small storm (CI); `just storm` runs
//! `cargo test --release -p oasis-server --test storm -- --events 10000`.
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use diesel::{Connection, PgConnection, RunQueryDsl};
use futures_util::StreamExt;
use rand::Rng;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_oasis");
const KEY_ID: &str = "rzp_test_storm";
const KEY_SECRET: &str = "storm_key_secret";
const WEBHOOK_SECRET: &str = "storm_webhook_secret";
const CI_EVENTS: usize = 600;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--list") {
        println!("storm: test");
        return;
    }
    // Name filters (`cargo test --workspace <filter>`): run only when one matches "storm".
    let filters: Vec<&String> = args
        .iter()
        .enumerate()
        .skip(1)
        .filter(|(i, a)| {
            const TAKE_VALUES: [&str; 8] = [
                "--events",
                "--test-threads",
                "--skip",
                "--color",
                "--format",
                "--logfile",
                "--shuffle-seed",
                "-Z",
            ];
            !a.starts_with('-') && !TAKE_VALUES.contains(&args[i - 1].as_str())
        })
        .map(|(_, a)| a)
        .collect();
    if !filters.is_empty() && !filters.iter().any(|f| "storm".contains(f.as_str())) {
        return;
    }
    let events = args
        .iter()
        .position(|a| a == "--events")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .or_else(|| std::env::var("OASIS_STORM_EVENTS").ok()?.parse().ok())
        .unwrap_or(CI_EVENTS);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let ok = rt.block_on(storm(events));
    if !ok {
        std::process::exit(1);
    }
}

// ---------------------------------------------------------------------------------------------
// the relay: round-robin, duplicates, cuts, acknowledgement times

#[derive(Default)]
struct Relay {
    backends: Vec<String>,
    rr: AtomicUsize,
    http: reqwest::Client,
    /// First 2xx per event id (wall clock, to compare with the database's `processed_at`).
    acked: Mutex<HashMap<String, chrono::DateTime<chrono::Utc>>>,
    /// Responses with a 5xx from a backend (the relay's own 502s for cuts and dead backends
    /// are not counted).
    five_xx: Mutex<Vec<String>>,
    deliveries: AtomicU64,
    duplicates: AtomicU64,
    reserialised: AtomicU64,
    cuts: AtomicU64,
    backend_down: AtomicU64,
    in_flight: AtomicI64,
}

fn header<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

impl Relay {
    /// Sends one delivery to `backend`; `None` when no answer came (a dead backend).
    async fn send(&self, backend: &str, id: Option<&str>, sig: &str, body: Vec<u8>) -> Option<u16> {
        let mut req = self
            .http
            .post(format!("{backend}/razorpay/webhooks/"))
            .header("Content-Type", "application/json")
            .header("X-Razorpay-Signature", sig)
            .body(body);
        if let Some(id) = id {
            req = req.header("X-Razorpay-Event-Id", id);
        }
        let status = req.send().await.ok()?.status().as_u16();
        if status >= 500 {
            self.five_xx
                .lock()
                .unwrap()
                .push(format!("{status} from {backend} for {id:?}"));
        }
        if status == 200 {
            if let Some(id) = id {
                self.acked
                    .lock()
                    .unwrap()
                    .entry(id.to_owned())
                    .or_insert_with(chrono::Utc::now);
            }
        }
        Some(status)
    }

    /// Writes the request line, headers and half the body to `backend`, then closes.
    async fn cut(&self, backend: &str, id: &str, sig: &str, body: &[u8]) {
        use tokio::io::AsyncWriteExt;
        let addr = backend.trim_start_matches("http://");
        if let Ok(mut s) = tokio::net::TcpStream::connect(addr).await {
            let head = format!(
                "POST /razorpay/webhooks/ HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nX-Razorpay-Signature: {sig}\r\nX-Razorpay-Event-Id: {id}\r\nContent-Length: {}\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(head.as_bytes()).await;
            let _ = s.write_all(&body[..body.len() / 2]).await;
            let _ = s.flush().await;
        }
    }
}

async fn relay(req: HttpRequest, body: web::Bytes, st: web::Data<Relay>) -> HttpResponse {
    let st = st.into_inner();
    st.in_flight.fetch_add(1, Ordering::SeqCst);
    let out = relay_one(&req, body, &st).await;
    st.in_flight.fetch_sub(1, Ordering::SeqCst);
    out
}

async fn relay_one(req: &HttpRequest, body: web::Bytes, st: &Arc<Relay>) -> HttpResponse {
    let id = header(req, "X-Razorpay-Event-Id").unwrap_or("").to_owned();
    let sig = header(req, "X-Razorpay-Signature").unwrap_or("").to_owned();
    st.deliveries.fetch_add(1, Ordering::Relaxed);
    let n = st.rr.fetch_add(1, Ordering::Relaxed);
    let (target, other) = (st.backends[n % 2].clone(), st.backends[(n + 1) % 2].clone());
    let (cut, dup, reser, no_id) = {
        let mut rng = rand::thread_rng();
        (
            rng.gen_bool(0.05),
            rng.gen_bool(0.30),
            rng.gen_bool(0.5),
            rng.gen_bool(0.1),
        )
    };
    if cut {
        st.cuts.fetch_add(1, Ordering::Relaxed);
        st.cut(&target, &id, &sig, &body).await;
        return HttpResponse::BadGateway().finish();
    }
    if dup {
        st.duplicates.fetch_add(1, Ordering::Relaxed);
        let (st2, id2) = (st.clone(), id.clone());
        let (bytes, sig2) = if reser {
            st.reserialised.fetch_add(1, Ordering::Relaxed);
            // Same event, other bytes (pretty-printed), signed again with the secret.
            let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let b = serde_json::to_vec_pretty(&v).expect("json");
            let s = razorpay::sign_webhook(&b, WEBHOOK_SECRET);
            (b, s)
        } else {
            (body.to_vec(), sig.clone())
        };
        st.in_flight.fetch_add(1, Ordering::SeqCst);
        // Some re-serialised copies come without the event id (stored as another event, keyed
        // by the body's hash: processing must still apply each payment once).
        let without_id = reser && no_id;
        tokio::spawn(async move {
            let idh = (!without_id).then_some(id2.as_str());
            let _ = st2.send(&other, idh, &sig2, bytes).await;
            st2.in_flight.fetch_sub(1, Ordering::SeqCst);
        });
    }
    match st.send(&target, Some(&id), &sig, body.to_vec()).await {
        Some(status) => {
            HttpResponse::build(actix_web::http::StatusCode::from_u16(status).expect("status"))
                .finish()
        }
        None => {
            st.backend_down.fetch_add(1, Ordering::Relaxed);
            HttpResponse::BadGateway().finish()
        }
    }
}

// ---------------------------------------------------------------------------------------------
// processes

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn oasis_cmd(dir: &std::path::Path, db_url: &str, sim: &str) -> Command {
    let mut c = Command::new(BIN);
    c.env_clear()
        .envs(pooler_env())
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("OASIS_DATA_DIR", dir)
        .env("DATABASE_URL", db_url)
        .env("OASIS_BCRYPT_COST", "4")
        .env("RUST_LOG", "warn")
        .env("RAZORPAY_KEY_ID", KEY_ID)
        .env("RAZORPAY_KEY_SECRET", KEY_SECRET)
        .env("RAZORPAY_WEBHOOK_SECRET", WEBHOOK_SECRET)
        .env("RAZORPAY_API_BASE", sim)
        .env(
            "OASIS_SECRET_KEY",
            "storm-secret-key-0123456789abcdef0123456789",
        )
        .env("OASIS_REGISTRATIONS_PER_HOUR", "0")
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    c
}

fn start_oasis(dir: &std::path::Path, db_url: &str, sim: &str, port: u16) -> Child {
    let log = std::fs::File::create(dir.join(format!("oasis-{port}.log"))).expect("log");
    let mut child = oasis_cmd(dir, db_url, sim)
        .env("OASIS_BIND", format!("127.0.0.1:{port}"))
        .env("OASIS_PUBLIC_URL", format!("http://127.0.0.1:{port}"))
        .stderr(log)
        .spawn()
        .expect("oasis starts");
    let deadline = Instant::now() + Duration::from_secs(120);
    let client = reqwest::blocking::Client::new();
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            panic!("oasis on {port} exited early with {s}");
        }
        if let Ok(r) = client.get(format!("http://127.0.0.1:{port}/ready")).send() {
            if r.status().is_success() {
                return child;
            }
        }
        assert!(Instant::now() < deadline, "oasis on {port} not ready");
        std::thread::sleep(Duration::from_millis(100));
    }
}

// ---------------------------------------------------------------------------------------------
// the driver

struct World {
    api: String,
    sim: String,
    http: reqwest::Client,
    creators: Vec<Creator>,
    fans: Mutex<Vec<String>>,
    /// 5xx answers to the driver's own API calls.
    api_5xx: Mutex<Vec<String>>,
    expected_events: AtomicUsize,
    commissions: Mutex<Vec<(i64, bool)>>,
}

#[derive(Clone)]
struct Creator {
    id: i64,
    token: String,
    tier: i64,
    offering: i64,
}

impl World {
    async fn call(&self, method: &str, path: &str, token: Option<&str>, body: Value) -> Value {
        let url = format!("{}{path}", self.api);
        let mut req = match method {
            "GET" => self.http.get(url),
            "PATCH" => self.http.patch(url).json(&body),
            _ => self.http.post(url).json(&body),
        };
        if let Some(t) = token {
            req = req.header("Authorization", format!("Token {t}"));
        }
        let r = req.send().await.expect("API reachable");
        let status = r.status().as_u16();
        let v: Value = r.json().await.unwrap_or(Value::Null);
        if status >= 500 {
            self.api_5xx
                .lock()
                .unwrap()
                .push(format!("{status} {method} {path}: {v}"));
        }
        assert!(status < 300, "{method} {path}: {status} {v}");
        v
    }

    async fn sim(&self, path: &str, body: Value) -> Value {
        let r = self
            .http
            .post(format!("{}{path}", self.sim))
            .basic_auth(KEY_ID, Some(KEY_SECRET))
            .json(&body)
            .send()
            .await
            .expect("sim reachable");
        let status = r.status();
        let v: Value = r.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "{path}: {status} {v}");
        v
    }

    async fn sim_get(&self, path: &str) -> Value {
        self.http
            .get(format!("{}{path}", self.sim))
            .basic_auth(KEY_ID, Some(KEY_SECRET))
            .send()
            .await
            .expect("sim reachable")
            .json()
            .await
            .expect("sim json")
    }

    async fn pay(&self, key: &str, id: &str) {
        let v = self
            .sim("/_sim/checkout", json!({ key: id, "outcome": "success" }))
            .await;
        assert!(v["razorpay_payment_id"].is_string(), "{v}");
    }

    fn fan(&self) -> String {
        self.fans.lock().unwrap().pop().expect("enough fans seeded")
    }

    fn expect(&self, n: usize) {
        self.expected_events.fetch_add(n, Ordering::Relaxed);
    }

    async fn cycle(&self, sid: &str, outcome: &str) {
        self.sim(
            &format!("/_sim/subscriptions/{sid}/cycle"),
            json!({ "outcome": outcome }),
        )
        .await;
    }

    /// One flow, chosen by `roll` (0..100).
    async fn flow(&self, roll: u32, c: &Creator) {
        let fan = self.fan();
        match roll {
            // Memberships: created and charged, then renewed, failing, halted, cancelled.
            0..=49 => {
                let r = self
                    .call(
                        "POST",
                        "/subscriptions/create",
                        Some(&fan),
                        json!({"tierID": c.tier}),
                    )
                    .await;
                let sid = r["SubscriptionID"].as_str().expect("sub id").to_owned();
                self.pay("subscription_id", &sid).await;
                self.expect(5);
                let after = rand::thread_rng().gen_range(0..100);
                match after {
                    0..=34 => {}
                    35..=59 => {
                        self.cycle(&sid, "charged").await;
                        self.cycle(&sid, "charged").await;
                        self.expect(6);
                    }
                    60..=69 => {
                        self.cycle(&sid, "pending").await;
                        self.cycle(&sid, "halted").await;
                        self.expect(4);
                    }
                    70..=79 => {
                        self.cycle(&sid, "pending").await;
                        self.cycle(&sid, "charged").await;
                        self.expect(6);
                    }
                    _ => {
                        self.cycle(&sid, "charged").await;
                        self.sim(
                            &format!("/v1/subscriptions/{sid}/cancel"),
                            json!({"cancel_at_cycle_end": false}),
                        )
                        .await;
                        self.expect(4);
                    }
                }
            }
            // One-time purchases.
            50..=64 => {
                let r = self
                    .call(
                        "POST",
                        "/subscriptions/create_onetime/",
                        Some(&fan),
                        json!({"tierID": c.tier, "currency": "INR"}),
                    )
                    .await;
                let oid = r["SubscriptionID"].as_str().expect("order id").to_owned();
                self.pay("order_id", &oid).await;
                self.expect(3);
            }
            // Cheers.
            65..=84 => {
                let amount = rand::thread_rng().gen_range(100..50_000);
                let r = self
                    .call(
                        "POST",
                        "/subscriptions/create_order",
                        Some(&fan),
                        json!({"amount": amount, "currency": "INR", "creatorID": c.id,
                               "name": "Storm", "message": "☔ thanks"}),
                    )
                    .await;
                let oid = r["SubscriptionID"].as_str().expect("order id").to_owned();
                self.pay("order_id", &oid).await;
                self.expect(3);
            }
            // Commissions: paid, and some rejected (refunded) once the payment is in.
            _ => {
                let r = self
                    .call(
                        "POST",
                        "/commissions/api/commission-user/",
                        Some(&fan),
                        json!({"commissionID": c.offering, "description": "A storm",
                               "contactDetails": "storm@example.com", "mode_of_delivery": "1",
                               "currency": "INR"}),
                    )
                    .await;
                let id = r["id"].as_i64().expect("request id");
                let oid = r["SubscriptionID"].as_str().expect("order id").to_owned();
                self.pay("order_id", &oid).await;
                self.expect(3);
                let refund = rand::thread_rng().gen_bool(0.4);
                if refund {
                    let path = format!("/commissions/api/commission-user/{id}/");
                    let deadline = Instant::now() + Duration::from_secs(120);
                    loop {
                        let v = self.call("GET", &path, Some(&fan), Value::Null).await;
                        if v["status"] == "ordered" {
                            break;
                        }
                        assert!(
                            Instant::now() < deadline,
                            "commission {id} never ordered: {v}"
                        );
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                    self.call(
                        "PATCH",
                        &path,
                        Some(&c.token),
                        json!({"status": "rejected", "message": "Too busy"}),
                    )
                    .await;
                    self.expect(2);
                }
                self.commissions.lock().unwrap().push((id, refund));
            }
        }
    }
}

/// Inserts `n` fans with API keys straight into the database; answers their keys.
fn seed_fans(conn: &mut PgConnection, n: usize) -> Vec<String> {
    #[derive(diesel::QueryableByName)]
    struct Id {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        id: i64,
    }
    let ids: Vec<Id> = diesel::sql_query(format!(
        "INSERT INTO users (username, email, first_name, last_name, is_creator, email_verified)
         SELECT 'fan' || g, 'fan' || g || '@storm.test', 'Storm', 'Fan', false, true
           FROM generate_series(1, {n}) g RETURNING id"
    ))
    .load(conn)
    .expect("fans");
    conn.transaction::<_, diesel::result::Error, _>(|c| {
        Ok(ids
            .iter()
            .map(|Id { id }| {
                let token = format!("{:0>40}", format!("5f{id:x}"));
                oasis_db::identity::insert_token(c, *id, &token).expect("token");
                token
            })
            .collect())
    })
    .expect("tokens")
}

fn seed_creator(conn: &mut PgConnection, i: usize) -> (i64, String) {
    #[derive(diesel::QueryableByName)]
    struct Id {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        id: i64,
    }
    let Id { id } = diesel::sql_query(format!(
        "INSERT INTO users (username, email, first_name, last_name, is_creator, email_verified)
         VALUES ('creator{i}', 'creator{i}@storm.test', 'Storm', 'Creator', true, true) RETURNING id"
    ))
    .get_result(conn)
    .expect("creator");
    let token = format!("{:0>40}", format!("c0{id:x}"));
    oasis_db::identity::insert_token(conn, id, &token).expect("token");
    (id, token)
}

// ---------------------------------------------------------------------------------------------
// the storm

#[derive(diesel::QueryableByName)]
struct N {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

fn count(conn: &mut PgConnection, sql: &str) -> i64 {
    diesel::sql_query(sql)
        .get_result::<N>(conn)
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .n
}

async fn storm(target: usize) -> bool {
    let t0 = Instant::now();
    let db = tokio::task::spawn_blocking(oasis_testdb::TestDb::new)
        .await
        .unwrap();
    let dir = KeepOnPanic(Some(tempfile::tempdir().expect("dir")));
    let relay_port = free_port();
    let (sim, sim_addr, _sim_handle) = razorpay_sim::spawn(
        razorpay_sim::SimConfig {
            key_id: KEY_ID.into(),
            key_secret: KEY_SECRET.into(),
            webhook_secret: WEBHOOK_SECRET.into(),
            webhook_url: Some(format!("http://127.0.0.1:{relay_port}/razorpay/webhooks/")),
            state_file: None,
        },
        "127.0.0.1:0",
    )
    .await
    .expect("simulator");
    let _ = &sim;
    let sim_base = format!("http://{sim_addr}");
    let ports = [free_port(), free_port()];
    let backends: Vec<String> = ports
        .iter()
        .map(|p| format!("http://127.0.0.1:{p}"))
        .collect();
    let (d, u, s) = (dir.path().to_owned(), db.url().to_owned(), sim_base.clone());
    let (a, b) = tokio::task::spawn_blocking(move || {
        (
            start_oasis(&d, &u, &s, ports[0]),
            start_oasis(&d, &u, &s, ports[1]),
        )
    })
    .await
    .unwrap();
    let a = Arc::new(Mutex::new(a));
    let b = Arc::new(Mutex::new(b));
    // Whatever happens (a panic included), both processes go when the storm ends.
    let _reaper = Reaper(vec![a.clone(), b.clone()]);

    let relay_state = web::Data::new(Relay {
        backends: backends.clone(),
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap(),
        ..Relay::default()
    });
    let rs = relay_state.clone();
    let relay_server = HttpServer::new(move || {
        App::new()
            .app_data(rs.clone())
            .app_data(web::PayloadConfig::new(1 << 20))
            .default_service(web::to(relay))
    })
    .workers(2)
    .disable_signals()
    .listen(TcpListener::bind(("127.0.0.1", relay_port)).expect("relay port"))
    .expect("relay")
    .run();
    let relay_handle = relay_server.handle();
    tokio::spawn(relay_server);

    // The world: creators with a tier and a commission offering, and a fan per flow.
    let flows_max = target / 3 + 50;
    let u = db.url().to_owned();
    let (creator_keys, fans) = tokio::task::spawn_blocking(move || {
        let mut c = PgConnection::establish(&u).expect("db");
        let creators: Vec<(i64, String)> = (0..4).map(|i| seed_creator(&mut c, i)).collect();
        (creators, seed_fans(&mut c, flows_max))
    })
    .await
    .unwrap();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let mut world = World {
        api: backends[0].clone(),
        sim: sim_base.clone(),
        http,
        creators: Vec::new(),
        fans: Mutex::new(fans),
        api_5xx: Mutex::default(),
        expected_events: AtomicUsize::new(0),
        commissions: Mutex::default(),
    };
    for (i, (id, token)) in creator_keys.into_iter().enumerate() {
        let price = [10_000, 25_000, 49_900, 99_900][i];
        let tier = world
            .call(
                "POST",
                "/content/api/tiers/",
                Some(&token),
                json!({"name": format!("Tier {i}"), "description": "d", "price": price,
                       "currency": "INR", "benefits": ["a"]}),
            )
            .await["id"]
            .as_i64()
            .expect("tier");
        let offering = world
            .call(
                "POST",
                "/commissions/api/commission-creator/",
                Some(&token),
                json!({"title": "Portrait", "description": "A drawing", "price": 20_000 + i as i64 * 100,
                       "currency": "INR", "delivery_days": 7, "slots": 1000, "is_open": true}),
            )
            .await["id"]
            .as_i64()
            .expect("offering");
        world.creators.push(Creator {
            id,
            token,
            tier,
            offering,
        });
    }
    let world = Arc::new(world);
    // The simulator shuffles the events of each action too.
    world.sim("/_sim/chaos", json!({"shuffle": true})).await;

    // Flows, 16 at a time, until the expected number of events is reached; B is killed
    // halfway and restarted.
    let killed_at: Arc<Mutex<Option<Instant>>> = Arc::default();
    let flows = Arc::new(AtomicUsize::new(0));
    {
        let w = world.clone();
        let stream = futures_util::stream::iter(0..flows_max)
            .take_while(|_| {
                let more = w.expected_events.load(Ordering::Relaxed) < target;
                async move { more }
            })
            .map(|i| {
                let (w, b, killed_at, flows) =
                    (world.clone(), b.clone(), killed_at.clone(), flows.clone());
                let (d, u, s, p) = (
                    dir.path().to_owned(),
                    db.url().to_owned(),
                    sim_base.clone(),
                    ports[1],
                );
                async move {
                    flows.fetch_add(1, Ordering::Relaxed);
                    if w.expected_events.load(Ordering::Relaxed) >= target / 2
                        && killed_at.lock().unwrap().is_none()
                    {
                        *killed_at.lock().unwrap() = Some(Instant::now());
                        let b2 = b.clone();
                        tokio::task::spawn_blocking(move || {
                            let mut child = b2.lock().unwrap();
                            child.kill().expect("SIGKILL");
                            let _ = child.wait();
                            *child = start_oasis(&d, &u, &s, p);
                        });
                    }
                    let roll = rand::thread_rng().gen_range(0..100);
                    let c = w.creators[i % w.creators.len()].clone();
                    w.flow(roll, &c).await;
                }
            })
            .buffer_unordered(16);
        stream.collect::<Vec<()>>().await;
    }
    let driven = t0.elapsed();
    eprintln!(
        "storm: {} flows driven in {driven:?}, ~{} events expected",
        flows.load(Ordering::Relaxed),
        world.expected_events.load(Ordering::Relaxed)
    );

    // Quiet: every event delivered (or given up), relay idle, inbox processed, jobs done.
    let u = db.url().to_owned();
    let settle = |label: &'static str| {
        let (w, relay_state, u) = (world.clone(), relay_state.clone(), u.clone());
        async move {
            let deadline = Instant::now() + Duration::from_secs(300);
            loop {
                let events = w.sim_get("/_sim/webhooks").await;
                let pending = events["items"]
                    .as_array()
                    .map(|items| {
                        items
                            .iter()
                            .filter(|e| {
                                e["delivered"] != true
                                    && e["dropped"] != true
                                    && e["attempts"].as_u64().unwrap_or(0)
                                        < razorpay_sim::WEBHOOK_MAX_ATTEMPTS as u64
                            })
                            .count()
                    })
                    .unwrap_or(0);
                let u2 = u.clone();
                let (unprocessed, jobs) = tokio::task::spawn_blocking(move || {
                    let mut c = PgConnection::establish(&u2).expect("db");
                    (
                        count(&mut c, "SELECT count(*) AS n FROM billing_webhook_events WHERE processed_at IS NULL"),
                        count(&mut c, "SELECT count(*) AS n FROM jobs WHERE done_at IS NULL AND dead_at IS NULL AND kind LIKE 'billing.%'"),
                    )
                })
                .await
                .unwrap();
                let relaying = relay_state.in_flight.load(Ordering::SeqCst);
                if pending == 0 && relaying == 0 && unprocessed == 0 && jobs == 0 {
                    return;
                }
                if Instant::now() > deadline {
                    eprintln!("storm: {label}: not quiet after 300 s (undelivered {pending}, relaying {relaying}, unprocessed {unprocessed}, billing jobs {jobs}); comparing anyway");
                    return;
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    };
    settle("after the flows").await;
    let quiet = t0.elapsed();

    // Reconciliation, as an operator (or the periodic job) would run it.
    let (d, u, s) = (dir.path().to_owned(), db.url().to_owned(), sim_base.clone());
    let out = tokio::task::spawn_blocking(move || {
        oasis_cmd(&d, &u, &s)
            .args(["billing", "reconcile"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .expect("reconcile runs")
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "reconcile: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    settle("after reconciliation").await;

    // ------------------------------------------------------------------ the comparison
    let mut lost = Vec::new();
    let mut doubled = Vec::new();
    let mut mismatched = Vec::new();
    let sim_payments = list_all(&world, "/v1/payments").await;
    let sim_subs = list_all(&world, "/v1/subscriptions").await;
    let sim_orders = list_all(&world, "/v1/orders").await;
    let acked = relay_state.acked.lock().unwrap().clone();
    let commissions = world.commissions.lock().unwrap().clone();
    let u = db.url().to_owned();
    let tamper = std::env::args().any(|a| a == "--tamper");
    let report = tokio::task::spawn_blocking(move || {
        let mut c = PgConnection::establish(&u).expect("db");
        if tamper {
            // Checks the checker: one wrong amount, one wrong membership status.
            diesel::sql_query(
                "UPDATE payments SET amount = amount + 1
                  WHERE id = (SELECT min(id) FROM payments)",
            )
            .execute(&mut c)
            .expect("tamper");
            diesel::sql_query(
                "UPDATE memberships SET status = 'expired'
                  WHERE id = (SELECT min(id) FROM memberships WHERE razorpay_subscription_id IS NOT NULL)",
            )
            .execute(&mut c)
            .expect("tamper");
        }
        compare(&mut c, &sim_payments, &sim_subs, &sim_orders, &acked, &commissions)
    })
    .await
    .unwrap();
    lost.extend(report.lost);
    doubled.extend(report.doubled);
    mismatched.extend(report.mismatched);
    let mut five = relay_state.five_xx.lock().unwrap().clone();
    five.extend(world.api_5xx.lock().unwrap().iter().cloned());

    let n = report.events;
    println!(
        "{n} events, {} lost, {} doubled, {} mismatched, {} 5xx",
        lost.len(),
        doubled.len(),
        mismatched.len(),
        five.len()
    );
    println!(
        "longest delay between a webhook's acknowledgement and its effect: {:.2} s (median {:.2} s)",
        report.max_delay_secs, report.median_delay_secs
    );
    println!(
        "{} flows, {} payments, {} subscriptions, {} orders; {} deliveries through the relay, {} duplicated ({} re-serialised), {} cut mid-request, {} to a dead process; process B SIGKILLed {:?} into the storm; flows driven in {driven:?}, quiet after {quiet:?}, total {:?}",
        flows.load(Ordering::Relaxed),
        report.payments,
        report.subscriptions,
        report.orders,
        relay_state.deliveries.load(Ordering::Relaxed),
        relay_state.duplicates.load(Ordering::Relaxed),
        relay_state.reserialised.load(Ordering::Relaxed),
        relay_state.cuts.load(Ordering::Relaxed),
        relay_state.backend_down.load(Ordering::Relaxed),
        killed_at.lock().unwrap().map(|k| k.duration_since(t0)),
        t0.elapsed(),
    );
    for (what, list) in [
        ("lost", &lost),
        ("doubled", &doubled),
        ("mismatched", &mismatched),
        ("5xx", &five),
    ] {
        for line in list.iter().take(20) {
            println!("  {what}: {line}");
        }
    }
    relay_handle.stop(false).await;
    let ok = lost.is_empty() && doubled.is_empty() && mismatched.is_empty() && five.is_empty();
    if !ok {
        eprintln!(
            "storm FAILED; the processes' logs are in {}",
            dir.keep().display()
        );
    }
    ok
}

/// The storm's folder (the processes' logs): kept, and its ERROR lines printed, when the storm
/// panics (a driver call answered 5xx, a flow timed out), so that the cause is in the output.
struct KeepOnPanic(Option<tempfile::TempDir>);

impl KeepOnPanic {
    fn path(&self) -> &std::path::Path {
        self.0.as_ref().expect("storm dir").path()
    }

    fn keep(mut self) -> std::path::PathBuf {
        self.0.take().expect("storm dir").keep()
    }
}

impl Drop for KeepOnPanic {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        let Some(dir) = self.0.take() else { return };
        let dir = dir.keep();
        eprintln!(
            "storm panicked; the processes' logs are in {}",
            dir.display()
        );
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !(name.starts_with("oasis-") && name.ends_with(".log")) {
                continue;
            }
            let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
            for line in text.lines().filter(|l| l.contains("ERROR")).take(20) {
                eprintln!("  {name}: {line}");
            }
        }
    }
}

/// Kills the `oasis` processes when dropped.
struct Reaper(Vec<Arc<Mutex<Child>>>);

impl Drop for Reaper {
    fn drop(&mut self) {
        for c in &self.0 {
            let mut c = c.lock().unwrap_or_else(|e| e.into_inner());
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Every item of a simulator collection (100 a page).
async fn list_all(w: &World, path: &str) -> Vec<Value> {
    let mut out = Vec::new();
    loop {
        let page = w
            .sim_get(&format!("{path}?count=100&skip={}", out.len()))
            .await;
        let items = page["items"].as_array().cloned().unwrap_or_default();
        if items.is_empty() {
            return out;
        }
        out.extend(items);
    }
}

#[derive(Default)]
struct Report {
    events: usize,
    payments: usize,
    subscriptions: usize,
    orders: usize,
    lost: Vec<String>,
    doubled: Vec<String>,
    mismatched: Vec<String>,
    max_delay_secs: f64,
    median_delay_secs: f64,
}

#[derive(diesel::QueryableByName)]
struct PaymentRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    razorpay_payment_id: String,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    rows: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    amount: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    amount_refunded: i64,
}

#[derive(diesel::QueryableByName)]
struct MembershipRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    key: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    status: String,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    paid_count: i64,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    access: bool,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::BigInt>)]
    current_end: Option<i64>,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    rows: i64,
}

#[derive(diesel::QueryableByName)]
struct EventRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    event_id: String,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    rows: i64,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>)]
    processed_at: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(diesel::QueryableByName)]
struct RequestRow {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    id: i64,
    #[diesel(sql_type = diesel::sql_types::Text)]
    status: String,
}

fn compare(
    c: &mut PgConnection,
    sim_payments: &[Value],
    sim_subs: &[Value],
    sim_orders: &[Value],
    acked: &HashMap<String, chrono::DateTime<chrono::Utc>>,
    commissions: &[(i64, bool)],
) -> Report {
    let mut r = Report {
        subscriptions: sim_subs.len(),
        orders: sim_orders.len(),
        ..Report::default()
    };
    // Payments: every captured one (refunded ones were captured first) once, same amounts.
    let rows: Vec<PaymentRow> = diesel::sql_query(
        "SELECT razorpay_payment_id, count(*) AS rows, max(amount) AS amount,
                max(amount_refunded) AS amount_refunded
           FROM payments GROUP BY razorpay_payment_id",
    )
    .load(c)
    .expect("payments");
    let ours: HashMap<String, PaymentRow> = rows
        .into_iter()
        .map(|p| (p.razorpay_payment_id.clone(), p))
        .collect();
    let mut captured = 0;
    for p in sim_payments {
        let id = p["id"].as_str().unwrap_or_default();
        let status = p["status"].as_str().unwrap_or_default();
        if !matches!(status, "captured" | "refunded") {
            continue;
        }
        captured += 1;
        match ours.get(id) {
            None => r.lost.push(format!("payment {id} ({status}) not recorded")),
            Some(row) => {
                if row.rows > 1 {
                    r.doubled
                        .push(format!("payment {id} recorded {} times", row.rows));
                }
                let (amount, refunded) = (
                    p["amount"].as_i64().unwrap_or(-1),
                    p["amount_refunded"].as_i64().unwrap_or(0),
                );
                if row.amount != amount || row.amount_refunded != refunded {
                    r.mismatched.push(format!(
                        "payment {id}: ours {}/{} refunded, Razorpay's {amount}/{refunded}",
                        row.amount, row.amount_refunded
                    ));
                }
            }
        }
    }
    r.payments = captured;
    let known: std::collections::HashSet<&str> = sim_payments
        .iter()
        .filter_map(|p| p["id"].as_str())
        .collect();
    for id in ours.keys() {
        if !known.contains(id.as_str()) {
            r.mismatched
                .push(format!("payment {id} recorded but unknown to Razorpay"));
        }
    }

    // Memberships: status, paid cycles, period end and access as Razorpay's subscription says.
    let rows: Vec<MembershipRow> = diesel::sql_query(format!(
        "SELECT m.razorpay_subscription_id AS key, max(m.status) AS status,
                max(m.paid_count)::bigint AS paid_count, bool_or({}) AS access,
                max(extract(epoch FROM m.current_end))::bigint AS current_end, count(*) AS rows
           FROM memberships m WHERE m.razorpay_subscription_id IS NOT NULL
          GROUP BY m.razorpay_subscription_id",
        oasis_db::billing::HAS_ACCESS
    ))
    .load(c)
    .expect("memberships");
    let ours: HashMap<String, MembershipRow> =
        rows.into_iter().map(|m| (m.key.clone(), m)).collect();
    let now = chrono::Utc::now();
    for s in sim_subs {
        let id = s["id"].as_str().unwrap_or_default();
        let Some(m) = ours.get(id) else {
            r.lost.push(format!("subscription {id} has no membership"));
            continue;
        };
        if m.rows > 1 {
            r.doubled
                .push(format!("subscription {id}: {} memberships", m.rows));
        }
        let status = s["status"].as_str().unwrap_or_default();
        let paid = s["paid_count"].as_i64().unwrap_or(-1);
        let end = s["current_end"].as_i64();
        let start = s["current_start"].as_i64();
        let expected_access = oasis_billing::MembershipStatus::parse(status).is_some_and(|st| {
            oasis_billing::has_access(
                &oasis_billing::entitlement::AccessFacts {
                    kind: oasis_billing::MembershipKind::Recurring,
                    status: st,
                    current_start: start.and_then(|e| chrono::DateTime::from_timestamp(e, 0)),
                    current_end: end.and_then(|e| chrono::DateTime::from_timestamp(e, 0)),
                    cancel_at_period_end: false,
                },
                now,
            )
        });
        if m.status != status || m.paid_count != paid || m.access != expected_access {
            r.mismatched.push(format!(
                "subscription {id}: ours {} paid {} access {} end {:?}, Razorpay's {status} paid {paid} access {expected_access} end {end:?}",
                m.status, m.paid_count, m.access, m.current_end
            ));
        }
    }

    // One-time purchases: an order paid at Razorpay is an active membership here.
    let onetime: HashMap<String, String> = diesel::sql_query(
        "SELECT razorpay_order_id AS key, status, 0::bigint AS paid_count, false AS access,
                NULL::bigint AS current_end, count(*) OVER (PARTITION BY razorpay_order_id) AS rows
           FROM memberships WHERE kind = 'one_time' AND razorpay_order_id IS NOT NULL",
    )
    .load::<MembershipRow>(c)
    .expect("one-time")
    .into_iter()
    .map(|m| (m.key, m.status))
    .collect();
    for o in sim_orders {
        let id = o["id"].as_str().unwrap_or_default();
        if let Some(status) = onetime.get(id) {
            let paid = o["status"] == "paid";
            if paid != (status == "active") {
                r.mismatched.push(format!(
                    "one-time order {id}: ours {status}, Razorpay's {}",
                    o["status"]
                ));
            }
        }
    }

    // Commissions: paid ones ordered; rejected ones rejected (their refund is checked with the
    // payments above).
    let rows: Vec<RequestRow> = diesel::sql_query("SELECT id, status FROM commission_requests")
        .load(c)
        .expect("requests");
    let ours: HashMap<i64, String> = rows.into_iter().map(|q| (q.id, q.status)).collect();
    for (id, refunded) in commissions {
        let want = if *refunded { "rejected" } else { "ordered" };
        match ours.get(id) {
            Some(s) if s == want => {}
            other => r.mismatched.push(format!(
                "commission request {id}: {other:?}, expected {want}"
            )),
        }
    }

    // The ledger: every posting sums to zero; each payment's entries match its split.
    let bad = count(
        c,
        "SELECT (SELECT count(*) FROM (SELECT posting_id FROM ledger_entries GROUP BY posting_id
                                        HAVING sum(amount) <> 0) x)
              + (SELECT count(*) FROM ledger_accounts a
                  WHERE (SELECT COALESCE(sum(e.amount), 0) FROM ledger_entries e
                           JOIN ledger_postings p ON p.id = e.posting_id
                          WHERE p.razorpay_payment_id = a.razorpay_payment_id
                            AND e.account = 'payer') <> a.refunded - a.gross) AS n",
    );
    if bad > 0 {
        r.mismatched
            .push(format!("{bad} ledger postings or accounts do not balance"));
    }

    // Events: every acknowledged one stored once and processed; the delay from its first
    // acknowledgement to its processing.
    let rows: Vec<EventRow> = diesel::sql_query(
        "SELECT event_id, count(*) AS rows, max(processed_at) AS processed_at
           FROM billing_webhook_events GROUP BY event_id",
    )
    .load(c)
    .expect("events");
    let stored: HashMap<String, EventRow> =
        rows.into_iter().map(|e| (e.event_id.clone(), e)).collect();
    let mut delays = Vec::new();
    for (id, at) in acked {
        match stored.get(id) {
            None => r
                .lost
                .push(format!("event {id} acknowledged but not stored")),
            Some(e) => {
                if e.rows > 1 {
                    r.doubled
                        .push(format!("event {id} stored {} times", e.rows));
                }
                match e.processed_at {
                    None => r.lost.push(format!("event {id} never processed")),
                    Some(p) => delays.push((p - *at).num_milliseconds().max(0) as f64 / 1000.0),
                }
            }
        }
    }
    r.events = stored
        .keys()
        .filter(|k| k.starts_with("evt_"))
        .count()
        .max(acked.len());
    delays.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    r.max_delay_secs = delays.last().copied().unwrap_or(0.0);
    r.median_delay_secs = delays.get(delays.len() / 2).copied().unwrap_or(0.0);
    r
}

/// What the suite passes on to the processes it starts so that it can run behind a
/// transaction-mode pooler (scripts/test-via-pgbouncer.sh, docs/scaling.md).
fn pooler_env() -> Vec<(&'static str, String)> {
    [
        "OASIS_DB_STATEMENT_CACHE",
        "OASIS_DB_STATEMENT_TIMEOUT_SCOPE",
    ]
    .into_iter()
    .filter_map(|k| std::env::var(k).ok().map(|v| (k, v)))
    .collect()
}

//! `spawn_app()`: the real Oasis application on 127.0.0.1:0 against its own fresh database, with a
//! typed-enough HTTP client. Set `TEST_LOG=1` to see the server's logs.
use oasis_server::{Application, Settings};
use oasis_testdb::TestDb;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Once;

pub use oasis_testdb;
pub use reqwest;
pub use serde_json::json;

pub struct TestApp {
    pub address: String,
    pub port: u16,
    pub db: TestDb,
    pub client: reqwest::Client,
    pub data_dir: tempfile::TempDir,
    pub settings: Settings,
    handle: actix_web::dev::ServerHandle,
    streams: oasis_server::stream::StreamHub,
    pub reads: std::sync::Arc<oasis_server::read_cache::ReadCache>,
}

/// A response with its status and parsed JSON body (Null when not JSON).
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

static LOG: Once = Once::new();

/// Settings for a test app: port 0, fresh data dir, fast bcrypt, fixed secret.
pub fn test_settings(data_dir: &std::path::Path, database_url: &str) -> Settings {
    let mut env: HashMap<&str, String> = HashMap::new();
    env.insert("OASIS_BIND", "127.0.0.1:0".into());
    env.insert("OASIS_DATA_DIR", data_dir.display().to_string());
    env.insert("DATABASE_URL", database_url.into());
    env.insert(
        "OASIS_SECRET_KEY",
        "test-secret-key-0123456789abcdef0123456789abcdef".into(),
    );
    env.insert("OASIS_BCRYPT_COST", "4".into());
    env.insert("OASIS_WORKERS", "2".into());
    env.insert("OASIS_DB_POOL_SIZE", "4".into());
    // Passed through so that the suite can run behind a transaction-mode pooler
    // (docs/scaling.md: `TESTDB_POOLER_URL=… OASIS_DB_STATEMENT_CACHE=false cargo test`).
    for var in [
        "OASIS_DB_STATEMENT_CACHE",
        "OASIS_DB_STATEMENT_TIMEOUT_SCOPE",
        "OASIS_READ_CACHE",
    ] {
        if let Ok(v) = std::env::var(var) {
            env.insert(var, v);
        }
    }
    Settings::load_from(|k| env.get(k).cloned()).expect("test settings")
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Spawns the app after letting `tweak` adjust its settings.
pub async fn spawn_app_with(tweak: impl FnOnce(&mut Settings)) -> TestApp {
    LOG.call_once(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            oasis_server::telemetry::init(oasis_server::config::LogFormat::Text);
        }
    });
    let db = tokio::task::spawn_blocking(TestDb::new)
        .await
        .expect("test db");
    let data_dir = tempfile::tempdir().expect("temp dir");
    let mut settings = test_settings(data_dir.path(), db.url());
    // Bound first so that the public URL (the origin of absolute links) names the real port.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    let port = listener.local_addr().expect("local addr").port();
    settings.bind = format!("127.0.0.1:{port}");
    settings.public_url = format!("http://127.0.0.1:{port}");
    tweak(&mut settings);
    // LISTEN needs a session: past a transaction-mode pooler, the listener connects directly.
    if settings.database_url.as_deref() == Some(db.url()) {
        settings.listen_database_url = Some(db.direct_url());
    }
    let app = Application::build_on(settings.clone(), listener)
        .await
        .expect("application starts");
    assert_eq!(app.port(), port);
    let handle = app.handle();
    let streams = app.streams();
    let reads = app.read_cache();
    tokio::spawn(app.run_until_stopped());
    TestApp {
        streams,
        reads,
        address: format!("http://127.0.0.1:{port}"),
        port,
        db,
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client"),
        data_dir,
        settings,
        handle,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn send(&self, req: reqwest::RequestBuilder) -> Resp {
        let res = req.send().await.expect("request sent");
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let text = res.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Resp {
            status,
            headers,
            body,
            text,
        }
    }

    fn with_auth(req: reqwest::RequestBuilder, token: Option<&str>) -> reqwest::RequestBuilder {
        match token {
            Some(t) if t.contains('.') => req.header("Authorization", format!("Bearer {t}")),
            Some(t) => req.header("Authorization", format!("Token {t}")),
            None => req,
        }
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Resp {
        self.send(Self::with_auth(self.client.get(self.url(path)), token))
            .await
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> Resp {
        self.send(Self::with_auth(self.client.delete(self.url(path)), token))
            .await
    }

    pub async fn delete_json(&self, path: &str, body: &Value, token: Option<&str>) -> Resp {
        self.send(Self::with_auth(
            self.client.delete(self.url(path)).json(body),
            token,
        ))
        .await
    }

    pub async fn post(&self, path: &str, body: &Value, token: Option<&str>) -> Resp {
        self.send(Self::with_auth(
            self.client.post(self.url(path)).json(body),
            token,
        ))
        .await
    }

    pub async fn patch(&self, path: &str, body: &Value, token: Option<&str>) -> Resp {
        self.send(Self::with_auth(
            self.client.patch(self.url(path)).json(body),
            token,
        ))
        .await
    }

    pub async fn put(&self, path: &str, body: &Value, token: Option<&str>) -> Resp {
        self.send(Self::with_auth(
            self.client.put(self.url(path)).json(body),
            token,
        ))
        .await
    }

    /// A direct database connection for asserting on stored rows.
    pub fn conn(&self) -> diesel::PgConnection {
        self.db.conn()
    }

    /// Waits until the server has heard every write committed so far (through [`Self::conn`],
    /// or by another process): its read cache answers from them from then on. The server's own
    /// writes need no waiting (it reads them right after they ran).
    pub async fn settle(&self) {
        settle(&self.reads, &self.db).await
    }

    /// Stops like SIGTERM does: live streams end, then the graceful stop.
    pub async fn stop(&self) {
        self.streams.shutdown();
        self.handle.stop(true).await;
    }

    /// A second server process's worth of application (its own port, pool, listener, job
    /// runner unless `tweak` turns it off) on this app's database.
    pub async fn spawn_peer(&self, tweak: impl FnOnce(&mut Settings)) -> Peer {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind port 0");
        let port = listener.local_addr().expect("local addr").port();
        let mut settings = self.settings.clone();
        settings.bind = format!("127.0.0.1:{port}");
        settings.public_url = format!("http://127.0.0.1:{port}");
        tweak(&mut settings);
        let app = Application::build_on(settings, listener)
            .await
            .expect("peer starts");
        let handle = app.handle();
        let streams = app.streams();
        tokio::spawn(app.run_until_stopped());
        Peer {
            address: format!("http://127.0.0.1:{port}"),
            handle,
            streams,
        }
    }
}

static SYNC: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// Sends a `sync <n>` marker on the read cache's channel and waits until `reads` heard it:
/// NOTIFYs arrive in commit order, so everything committed before it was heard too.
pub async fn settle(reads: &oasis_server::read_cache::ReadCache, db: &TestDb) {
    let Some(v) = reads.versions() else { return };
    let n = SYNC.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        + 1_000_000 * u64::from(std::process::id());
    let mut c = db.conn();
    tokio::task::spawn_blocking(move || oasis_db::touch::send_sync(&mut c, n))
        .await
        .expect("blocking")
        .expect("sync marker sent");
    let until = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while v.synced() != n {
        assert!(
            std::time::Instant::now() < until,
            "the server never heard sync {n}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
}

/// Another application on a [`TestApp`]'s database (see [`TestApp::spawn_peer`]).
pub struct Peer {
    pub address: String,
    handle: actix_web::dev::ServerHandle,
    streams: oasis_server::stream::StreamHub,
}

impl Peer {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }
    pub async fn stop(&self) {
        self.streams.shutdown();
        self.handle.stop(true).await;
    }
}

/// One Server-Sent Event as a client sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct SseEvent {
    pub id: Option<String>,
    pub event: Option<String>,
    pub data: Value,
}

/// A minimal EventSource: reads a `text/event-stream` response and splits it into events
/// (comments such as heartbeats are counted, not returned).
pub struct SseStream {
    res: reqwest::Response,
    buf: String,
    pub heartbeats: usize,
}

impl SseStream {
    /// Opens `url` (an `Authorization` header when `token` is set, `Last-Event-ID` when
    /// given); `Err` holds a non-200 answer's status and body.
    pub async fn open(
        url: &str,
        token: Option<&str>,
        last_event_id: Option<i64>,
    ) -> Result<Self, (u16, Value)> {
        let client = reqwest::Client::new();
        let mut req = client.get(url).header("Accept", "text/event-stream");
        if let Some(t) = token {
            req = req.header("Authorization", format!("Token {t}"));
        }
        if let Some(id) = last_event_id {
            req = req.header("Last-Event-ID", id.to_string());
        }
        let res = req.send().await.expect("stream request sent");
        let status = res.status().as_u16();
        if status != 200 {
            let body = res.json().await.unwrap_or(Value::Null);
            return Err((status, body));
        }
        assert_eq!(
            res.headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some("text/event-stream")
        );
        Ok(Self {
            res,
            buf: String::new(),
            heartbeats: 0,
        })
    }

    /// The next event within `within`; `None` when the stream ended. Panics at the deadline.
    pub async fn next(&mut self, within: std::time::Duration) -> Option<SseEvent> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            while let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let mut ev = SseEvent {
                    id: None,
                    event: None,
                    data: Value::Null,
                };
                let mut any = false;
                for line in block.lines() {
                    if line.starts_with(':') {
                        self.heartbeats += 1;
                    } else if let Some(v) = line.strip_prefix("id: ") {
                        ev.id = Some(v.to_owned());
                    } else if let Some(v) = line.strip_prefix("event: ") {
                        ev.event = Some(v.to_owned());
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        ev.data = serde_json::from_str(v).expect("data is JSON");
                        any = true;
                    }
                }
                if any {
                    return Some(ev);
                }
            }
            let chunk = tokio::time::timeout_at(deadline, self.res.chunk())
                .await
                .expect("an event before the deadline");
            match chunk {
                Ok(Some(bytes)) => self.buf.push_str(&String::from_utf8_lossy(&bytes)),
                Ok(None) | Err(_) => return None,
            }
        }
    }

    /// The next event that is not `unread_count`, skipping those.
    pub async fn next_notification(&mut self, within: std::time::Duration) -> Option<SseEvent> {
        loop {
            let ev = self.next(within).await?;
            if ev.event.is_none() {
                return Some(ev);
            }
        }
    }

    /// Reads until an `unread_count` event says `n` (bounded), returning the notification
    /// events seen on the way.
    pub async fn until_unread(&mut self, n: i64, within: std::time::Duration) -> Vec<SseEvent> {
        let mut seen = Vec::new();
        loop {
            let ev = self.next(within).await.expect("stream still open");
            if ev.event.as_deref() == Some("unread_count") {
                if ev.data["unread_count"] == n {
                    return seen;
                }
            } else {
                seen.push(ev);
            }
        }
    }
}

/// The earnings ledger's invariant, checked over every test's data when its app goes away: each
/// posting's entries sum to zero, and each payment's entries add up to its recorded split less
/// what was refunded (no paisa appears or disappears).
impl Drop for TestApp {
    fn drop(&mut self) {
        use diesel::RunQueryDsl;
        #[derive(diesel::QueryableByName)]
        struct N {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        if std::thread::panicking() {
            return;
        }
        let Ok(mut c) = std::panic::catch_unwind(|| self.db.conn()) else {
            return;
        };
        // A report over two tables: plain SQL.
        let bad = diesel::sql_query(
            "SELECT (SELECT count(*) FROM (SELECT posting_id FROM ledger_entries GROUP BY posting_id
                                            HAVING sum(amount) <> 0) x)
                  + (SELECT count(*) FROM ledger_accounts a
                      WHERE (SELECT COALESCE(sum(e.amount), 0) FROM ledger_entries e
                               JOIN ledger_postings p ON p.id = e.posting_id
                              WHERE p.razorpay_payment_id = a.razorpay_payment_id
                                AND e.account = 'payer') <> a.refunded - a.gross) AS n",
        )
        .get_result::<N>(&mut c);
        if let Ok(N { n }) = bad {
            assert_eq!(n, 0, "the earnings ledger does not balance");
        }
    }
}

/// A user created directly in the database, with an API key.
#[derive(Debug, Clone)]
pub struct TestUser {
    pub id: i64,
    pub username: String,
    pub email: String,
    pub token: String,
}

static USER_SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

impl TestApp {
    /// Inserts a verified user (creator or fan) and an API key for it, bypassing registration.
    pub fn create_user(&self, username: &str, is_creator: bool) -> TestUser {
        use diesel::prelude::*;
        use diesel::sql_types::{BigInt, Bool, Text};
        #[derive(QueryableByName)]
        struct Id {
            #[diesel(sql_type = BigInt)]
            id: i64,
        }
        let mut conn = self.conn();
        let email = format!("{username}@example.com");
        let row: Id = diesel::sql_query(
            "INSERT INTO users (username, email, first_name, last_name, is_creator, email_verified)
             VALUES ($1, $2, 'Test', 'User', $3, true) RETURNING id",
        )
        .bind::<Text, _>(username)
        .bind::<Text, _>(&email)
        .bind::<Bool, _>(is_creator)
        .get_result(&mut conn)
        .expect("insert user");
        let n = USER_SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let token = format!("{:0>40}", format!("{:x}{:x}", row.id, n + 0xabc0));
        oasis_db::identity::insert_token(&mut conn, row.id, &token).expect("insert token");
        TestUser {
            id: row.id,
            username: username.to_owned(),
            email,
            token,
        }
    }
}

impl TestApp {
    /// Gives a user (e.g. one from [`TestApp::create_user`], which has no usable password) a
    /// password, as if they had set one.
    pub fn set_password(&self, user_id: i64, password: &str) {
        use diesel::prelude::*;
        use diesel::sql_types::{BigInt, Text};
        use oasis_identity::password::{Bcrypt, PasswordHasher};
        let hash = Bcrypt::new(self.settings.bcrypt_cost)
            .and_then(|b| b.hash(password))
            .expect("bcrypt");
        diesel::sql_query("UPDATE users SET password_hash = $2 WHERE id = $1")
            .bind::<BigInt, _>(user_id)
            .bind::<Text, _>(hash)
            .execute(&mut self.conn())
            .expect("set password");
    }
}

pub mod graph;
pub mod oidc;
pub mod smtp;

/// One-value queries for assertions on stored state: `sql` must return one row with one column
/// (it is wrapped as a scalar subquery, so its column name does not matter).
impl TestApp {
    pub fn query_i64(&self, sql: &str) -> i64 {
        use diesel::RunQueryDsl;
        diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(&format!(
            "({sql})::bigint"
        )))
        .get_result(&mut self.conn())
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    pub fn query_bool(&self, sql: &str) -> bool {
        use diesel::RunQueryDsl;
        diesel::select(diesel::dsl::sql::<diesel::sql_types::Bool>(&format!(
            "({sql})::boolean"
        )))
        .get_result(&mut self.conn())
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    pub fn query_text(&self, sql: &str) -> String {
        use diesel::RunQueryDsl;
        diesel::select(diesel::dsl::sql::<diesel::sql_types::Text>(&format!(
            "({sql})::text"
        )))
        .get_result(&mut self.conn())
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }
}

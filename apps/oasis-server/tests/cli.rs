//! The real `oasis` binary: start-up with nothing configured, configuration errors, subcommands,
//! graceful shutdown. (One test binary; each test uses its own data dir and port.)
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_oasis");

fn oasis(data_dir: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.env_clear()
        .envs(pooler_env())
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("OASIS_DATA_DIR", data_dir)
        .env("OASIS_BCRYPT_COST", "4")
        .env("RUST_LOG", "info")
        .current_dir(data_dir)
        .stdin(Stdio::null());
    c
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_ready(port: u16, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(90);
    let client = reqwest::blocking::Client::new();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("server exited early with {status}");
        }
        if let Ok(r) = client.get(format!("http://127.0.0.1:{port}/ready")).send() {
            if r.status().is_success() {
                return;
            }
        }
        assert!(Instant::now() < deadline, "server not ready in time");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn terminate(child: &mut Child) -> std::process::ExitStatus {
    let ok = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(ok.success());
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "server did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `oasis serve` on `db` and `port` with `extra` settings, output discarded; returns once ready.
fn serve_quietly(
    dir: &Path,
    db: &oasis_testdb::TestDb,
    port: u16,
    extra: &[(&str, String)],
) -> Child {
    let mut cmd = oasis(dir);
    cmd.env("DATABASE_URL", db.url())
        .env("OASIS_BIND", format!("127.0.0.1:{port}"))
        .env("RUST_LOG", "warn")
        .envs(extra.iter().map(|(k, v)| (*k, v)))
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = cmd.spawn().unwrap();
    wait_ready(port, &mut child);
    child
}

fn stderr_lines(child: &mut Child) -> std::thread::JoinHandle<Vec<String>> {
    let err = child.stderr.take().unwrap();
    std::thread::spawn(move || BufReader::new(err).lines().map_while(Result::ok).collect())
}

#[test]
fn help_lists_subcommands() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for cmd in ["serve", "migrate"] {
        assert!(text.contains(cmd), "--help mentions {cmd}: {text}");
    }
}

#[test]
fn malformed_environment_value_is_one_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    for (var, value) in [
        ("OASIS_BIND", "not-an-address"),
        ("OASIS_JWT_ACCESS_TTL", "soon"),
        ("OASIS_LOG_FORMAT", "yaml"),
        ("DATABASE_URL", "mysql://nope/x"),
    ] {
        let out = oasis(dir.path()).env(var, value).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{var}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
        assert!(err.contains(var), "names {var}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    // Production without a secret key.
    let out = oasis(dir.path())
        .env("OASIS_ENV", "production")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("OASIS_SECRET_KEY"));
}

#[test]
fn without_database_url_or_postgres_binaries_start_up_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let out = oasis(dir.path())
        .env("OASIS_PG_BIN", dir.path().join("no-postgres-here"))
        .env("OASIS_BIND", format!("127.0.0.1:{}", free_port()))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    let last = err.trim().lines().last().unwrap_or_default().to_owned();
    assert!(
        last.contains("install PostgreSQL") && last.contains("DATABASE_URL"),
        "{err}"
    );
    assert!(!err.contains("panicked"));
}

#[test]
fn embedded_cluster_starts_from_nothing_is_reused_and_stops_with_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    for round in 0..2 {
        let port = free_port();
        let mut child = oasis(dir.path())
            .env("OASIS_DATA_DIR", &data)
            .env("OASIS_BIND", format!("127.0.0.1:{port}"))
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let logs = stderr_lines(&mut child);
        wait_ready(port, &mut child);
        assert!(data.join("postgres/data/PG_VERSION").is_file());
        // Unix socket inside the data folder, no TCP port.
        assert!(data.join("postgres/.s.PGSQL.5432").exists());
        assert!(data.join("secret_key").is_file(), "dev secret generated");
        let status = terminate(&mut child);
        assert!(status.success(), "clean exit on SIGTERM: {status}");
        let logs = logs.join().unwrap().join("\n");
        assert!(
            !data.join("postgres/data/postmaster.pid").exists(),
            "embedded cluster stopped with the server"
        );
        if round == 0 {
            assert!(logs.contains("applied migrations"), "{logs}");
        } else {
            assert!(
                !logs.contains("applied migrations"),
                "second start is a no-op: {logs}"
            );
        }
    }
}

#[test]
fn database_url_is_honoured_by_migrate_and_serve() {
    let db = oasis_testdb::TestDb::empty();
    let dir = tempfile::tempdir().unwrap();
    let out = oasis(dir.path())
        .arg("migrate")
        .env("DATABASE_URL", db.url())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !dir.path().join("postgres").exists(),
        "no embedded cluster when DATABASE_URL is set"
    );
    use diesel::prelude::*;
    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let n: N = diesel::sql_query("SELECT count(*) AS n FROM __diesel_schema_migrations")
        .get_result(&mut db.conn())
        .unwrap();
    assert!(n.n >= 2, "migrations recorded in the DATABASE_URL database");
    // A database that does not exist yet is created.
    let name = format!("{}_created", db.name());
    let fresh = db.server_url_for(&name);
    let port = free_port();
    let mut child = oasis(dir.path())
        .env("DATABASE_URL", &fresh)
        .env("OASIS_BIND", format!("127.0.0.1:{port}"))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_ready(port, &mut child);
    assert!(terminate(&mut child).success());
    let mut admin = oasis_db::admin::maintenance_connection(&fresh).unwrap();
    oasis_db::admin::drop_database(&mut admin, &name).unwrap();
}

#[test]
fn a_private_data_dir_still_works_when_run_as_root() {
    use std::os::unix::fs::PermissionsExt;
    // `mktemp -d` makes 0700 folders; as root the cluster runs as `postgres`, which must still
    // reach its data (as non-root the folder is ours anyway).
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("private");
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700)).unwrap();
    let port = free_port();
    let mut child = oasis(dir.path())
        .env("OASIS_DATA_DIR", &data)
        .env("OASIS_BIND", format!("127.0.0.1:{port}"))
        .stderr(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    wait_ready(port, &mut child);
    assert!(terminate(&mut child).success());
    let mode = std::fs::metadata(&data).unwrap().permissions().mode();
    assert_eq!(
        mode & 0o077 & !0o001,
        0,
        "only traversal was granted: {mode:o}"
    );
}

/// Waits (bounded) for the first `.eml` file in `dir`; returns its text.
fn wait_eml(dir: &Path, child: &mut Child) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("server exited early with {status}");
        }
        let eml = std::fs::read_dir(dir).ok().and_then(|d| {
            d.flatten()
                .map(|e| e.path())
                .find(|p| p.extension().is_some_and(|x| x == "eml"))
        });
        if let Some(text) = eml.and_then(|p| std::fs::read_to_string(p).ok()) {
            if !text.is_empty() {
                return text;
            }
        }
        assert!(Instant::now() < deadline, "no email in {}", dir.display());
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn production_never_logs_the_links_of_emails() {
    let db = oasis_testdb::TestDb::new();
    for production in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut cmd = oasis(dir.path());
        cmd.env("DATABASE_URL", db.url())
            .env("OASIS_BIND", format!("127.0.0.1:{port}"))
            .env("OASIS_PUBLIC_URL", format!("http://127.0.0.1:{port}"))
            .stderr(Stdio::piped())
            .stdout(Stdio::null());
        if production {
            cmd.env("OASIS_ENV", "production")
                .env(
                    "OASIS_SECRET_KEY",
                    "cli-test-secret-0123456789abcdef0123456789",
                )
                .env("RAZORPAY_KEY_ID", "rzp_test_cli")
                .env("RAZORPAY_KEY_SECRET", "cli_key_secret")
                .env("RAZORPAY_WEBHOOK_SECRET", "cli_webhook_secret")
                .env("RAZORPAY_API_BASE", "http://127.0.0.1:9");
        }
        let mut child = cmd.spawn().unwrap();
        let logs = stderr_lines(&mut child);
        wait_ready(port, &mut child);
        let user = if production { "prod_user" } else { "dev_user" };
        let r = reqwest::blocking::Client::new()
            .post(format!(
                "http://127.0.0.1:{port}/authenticate/rest-auth/registration/"
            ))
            .json(&serde_json::json!({
                "email": format!("{user}@example.com"), "first_name": "P", "last_name": "Q",
                "username": user, "password": "Tr0ub4dor&3-horse",
                "password2": "Tr0ub4dor&3-horse", "login_type": "manual"
            }))
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 201);
        let mail = wait_eml(&dir.path().join("outbox"), &mut child);
        let marker = "account-confirm-email/";
        let i = mail.find(marker).expect("confirmation link in the email") + marker.len();
        let key: String = mail[i..]
            .chars()
            .take_while(|c| c.is_ascii_hexdigit())
            .collect();
        assert_eq!(key.len(), 64, "{mail}");
        // The outbox line is logged once the file is written.
        std::thread::sleep(Duration::from_millis(500));
        assert!(terminate(&mut child).success());
        let logs = logs.join().unwrap().join("\n");
        assert!(logs.contains("email written to the outbox"), "{logs}");
        assert_eq!(
            logs.contains(&key),
            !production,
            "links are logged in development only: {logs}"
        );
    }
}

/// An SMTP server that, while `hold` is set, accepts connections and never answers them (a
/// mail job stuck on the network); otherwise it speaks just enough SMTP to take a message.
struct HoldingSmtp {
    port: u16,
    hold: std::sync::Arc<std::sync::atomic::AtomicBool>,
    held: std::sync::Arc<std::sync::atomic::AtomicU32>,
    delivered: std::sync::Arc<std::sync::atomic::AtomicU32>,
}

impl HoldingSmtp {
    fn start() -> Self {
        use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
        use std::sync::Arc;
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let hold = Arc::new(AtomicBool::new(true));
        let held = Arc::new(AtomicU32::new(0));
        let delivered = Arc::new(AtomicU32::new(0));
        let (h, n, d) = (hold.clone(), held.clone(), delivered.clone());
        std::thread::spawn(move || {
            for sock in listener.incoming().map_while(Result::ok) {
                let (h, n, d) = (h.clone(), n.clone(), d.clone());
                std::thread::spawn(move || {
                    use std::io::{Read, Write};
                    let mut sock = sock;
                    if h.load(Ordering::SeqCst) {
                        n.fetch_add(1, Ordering::SeqCst);
                        // Silent until the client goes away.
                        let mut buf = [0u8; 256];
                        while matches!(sock.read(&mut buf), Ok(k) if k > 0) {}
                        return;
                    }
                    let mut r = BufReader::new(sock.try_clone().unwrap());
                    let _ = sock.write_all(b"220 hold ESMTP\r\n");
                    let mut line = String::new();
                    loop {
                        line.clear();
                        if r.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let cmd = line.trim_end().to_ascii_uppercase();
                        let reply: &[u8] = if cmd.starts_with("EHLO") || cmd.starts_with("HELO") {
                            b"250 hold\r\n"
                        } else if cmd == "DATA" {
                            let _ = sock.write_all(b"354 go on\r\n");
                            loop {
                                line.clear();
                                if r.read_line(&mut line).unwrap_or(0) == 0 {
                                    return;
                                }
                                if line == ".\r\n" || line == ".\n" {
                                    break;
                                }
                            }
                            d.fetch_add(1, Ordering::SeqCst);
                            b"250 queued\r\n"
                        } else if cmd == "QUIT" {
                            let _ = sock.write_all(b"221 bye\r\n");
                            return;
                        } else {
                            b"250 ok\r\n"
                        };
                        let _ = sock.write_all(reply);
                    }
                });
            }
        });
        Self {
            port,
            hold,
            held,
            delivered,
        }
    }
    fn held(&self) -> u32 {
        self.held.load(std::sync::atomic::Ordering::SeqCst)
    }
    fn delivered(&self) -> u32 {
        self.delivered.load(std::sync::atomic::Ordering::SeqCst)
    }
    fn release(&self) {
        self.hold.store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Issue 17, recovery after a crash: a process running a job holds its lease only while it
/// runs (a heartbeat extends it, so a second process does not take the job from a live one),
/// and when the process is killed with SIGKILL another process takes the job over within
/// 15 s (here with a 3 s lease; the default is 10 s).
#[test]
fn a_killed_processs_running_job_is_taken_over_by_another_within_15_s() {
    const LEASE_SECS: u64 = 3;
    let db = oasis_testdb::TestDb::new();
    let smtp = HoldingSmtp::start();
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let ports = [free_port(), free_port()];
    let start = |i: usize| {
        serve_quietly(
            dirs[i].path(),
            &db,
            ports[i],
            &[
                ("SMTP_URL", format!("smtp://127.0.0.1:{}", smtp.port)),
                ("OASIS_JOB_LEASE_SECS", LEASE_SECS.to_string()),
            ],
        )
    };
    let mut a = start(0);
    // A registration queues its confirmation mail; process A takes the job and hangs in SMTP.
    let r = reqwest::blocking::Client::new()
        .post(format!(
            "http://127.0.0.1:{}/authenticate/rest-auth/registration/",
            ports[0]
        ))
        .json(&serde_json::json!({
            "email": "crash@example.com", "first_name": "C", "last_name": "K",
            "username": "crash", "password": "Tr0ub4dor&3-horse",
            "password2": "Tr0ub4dor&3-horse", "login_type": "manual"
        }))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let deadline = Instant::now() + Duration::from_secs(60);
    while smtp.held() == 0 {
        assert!(
            Instant::now() < deadline,
            "process A never started the mail job"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut b = start(1);
    // Three leases long, A is alive and its heartbeat keeps the job: B does not start it too.
    std::thread::sleep(Duration::from_secs(3 * LEASE_SECS));
    assert_eq!(smtp.held(), 1, "a live process's job was taken over");
    assert_eq!(smtp.delivered(), 0);

    a.kill().unwrap(); // SIGKILL
    let killed = Instant::now();
    let _ = a.wait();
    smtp.release();
    let deadline = killed + Duration::from_secs(60);
    while smtp.delivered() == 0 {
        assert!(
            Instant::now() < deadline,
            "nobody took the dead process's job over"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let took = killed.elapsed();
    eprintln!("job taken over and done {took:?} after SIGKILL (lease {LEASE_SECS} s)");
    assert!(
        took <= Duration::from_secs(15),
        "taken over after {took:?}, more than 15 s"
    );
    assert_eq!(
        smtp.held(),
        1,
        "B never hung: it ran the job once, after the kill"
    );
    assert!(terminate(&mut b).success());
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

/// Inserts a verified user with an API token (as the API tests' `create_user`); returns
/// `(id, token)`.
fn user_with_token(db: &oasis_testdb::TestDb, username: &str, is_creator: bool) -> (i64, String) {
    use diesel::prelude::*;
    use diesel::sql_types::{BigInt, Bool, Text};
    #[derive(QueryableByName)]
    struct Id {
        #[diesel(sql_type = BigInt)]
        id: i64,
    }
    let mut conn = db.conn();
    let row: Id = diesel::sql_query(
        "INSERT INTO users (username, email, first_name, last_name, is_creator, email_verified)
         VALUES ($1, $1 || '@example.com', 'T', 'U', $2, true) RETURNING id",
    )
    .bind::<Text, _>(username)
    .bind::<Bool, _>(is_creator)
    .get_result(&mut conn)
    .unwrap();
    let token = format!("{:0>40}", format!("c11{:x}", row.id));
    oasis_db::identity::insert_token(&mut conn, row.id, &token).unwrap();
    (row.id, token)
}

/// An open `GET /feed/api/notifications/stream` on a raw socket: what has arrived so far.
struct RawStream {
    sock: std::net::TcpStream,
    seen: String,
}

impl RawStream {
    fn open(port: u16, token: &str) -> Self {
        use std::io::Write;
        let mut sock = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        write!(
            sock,
            "GET /feed/api/notifications/stream HTTP/1.1\r\nHost: x\r\n\
             Authorization: Token {token}\r\nAccept: text/event-stream\r\n\r\n"
        )
        .unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        Self {
            sock,
            seen: String::new(),
        }
    }

    /// Reads until `what` has arrived (true) or the peer closed the stream (false).
    fn until(&mut self, what: &str, within: Duration) -> bool {
        use std::io::Read;
        let deadline = Instant::now() + within;
        let mut buf = [0u8; 4096];
        while !self.seen.contains(what) {
            assert!(
                Instant::now() < deadline,
                "no {what:?} within {within:?}; got {:?}",
                self.seen
            );
            match self.sock.read(&mut buf) {
                Ok(0) => return false,
                Ok(n) => self.seen.push_str(&String::from_utf8_lossy(&buf[..n])),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => return false,
            }
        }
        true
    }
}

/// Issue 15: two real `oasis serve` processes on one database. A notification raised through
/// process A (a new post of a followed creator; B runs no jobs, so the fan-out certainly runs
/// on A) arrives on a stream held on process B, through PostgreSQL's LISTEN/NOTIFY; B's
/// SIGTERM then ends the stream cleanly, well before actix's 30 s graceful timeout.
#[test]
fn a_notification_raised_by_one_os_process_reaches_a_stream_held_by_another() {
    let db = oasis_testdb::TestDb::new();
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let ports = [free_port(), free_port()];
    let start = |i: usize, jobs: bool| {
        serve_quietly(
            dirs[i].path(),
            &db,
            ports[i],
            &[("OASIS_BACKGROUND_JOBS", jobs.to_string())],
        )
    };
    let mut a = start(0, true);
    let mut b = start(1, false);
    let (creator, creator_token) = user_with_token(&db, "os_creator", true);
    let (_, fan_token) = user_with_token(&db, "os_fan", false);
    let http = reqwest::blocking::Client::new();
    let on_a = |path: &str| format!("http://127.0.0.1:{}{path}", ports[0]);
    let r = http
        .post(on_a(&format!("/feed/api/follow/{creator}")))
        .header("Authorization", format!("Token {fan_token}"))
        .json(&serde_json::json!({}))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);

    let mut stream = RawStream::open(ports[1], &fan_token);
    assert!(stream.until("{\"unread_count\":0}", Duration::from_secs(30)));
    let r = http
        .post(on_a("/content/api/content/"))
        .header("Authorization", format!("Token {creator_token}"))
        .json(&serde_json::json!({"title": "Across OS processes", "body": "b", "tiers": []}))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    assert!(
        stream.until("Across OS processes", Duration::from_secs(60)),
        "the stream on B ended before the notification came"
    );
    assert!(stream.until("{\"unread_count\":1}", Duration::from_secs(30)));
    assert!(
        stream.seen.contains("\nid: "),
        "the event carries its id: {}",
        stream.seen
    );

    let stopping = Instant::now();
    let stopper = std::thread::spawn(move || terminate(&mut b));
    assert!(
        !stream.until("never sent", Duration::from_secs(25)),
        "B's SIGTERM ended the stream"
    );
    assert!(stopping.elapsed() < Duration::from_secs(25));
    assert!(stopper.join().unwrap().success());
    assert!(terminate(&mut a).success());
}

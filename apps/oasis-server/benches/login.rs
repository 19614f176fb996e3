//! Login benchmark: password logins per second through the real `oasis` binary, against the raw
//! bcrypt-verify rate of this machine (same cost, one verifying thread per core). bcrypt is the
//! bottleneck by design, so the ratio shows how much the HTTP + database path costs on top.
//!
//! ```text
//! cargo bench -p oasis-server --bench login                       # cost 12, 8 clients, 10 s
//! cargo bench -p oasis-server --bench login -- --cost 10 --clients 16 --secs 20
//! ```
//! Uses `DATABASE_URL` when set (a server to create a scratch database on), otherwise a private
//! throwaway PostgreSQL cluster.
use diesel::sql_types::Text;
use diesel::{Connection, PgConnection, RunQueryDsl};
use oasis_identity::password::{Bcrypt, PasswordHasher};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_oasis");
const PASSWORD: &str = "bench-Passw0rd-!";

struct Args {
    clients: usize,
    secs: u64,
    cost: u32,
}

fn args() -> Args {
    let mut a = Args {
        clients: 8,
        secs: 10,
        cost: 12,
    };
    let argv: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i < argv.len() {
        let val = argv.get(i + 1).and_then(|v| v.parse::<u64>().ok());
        match (argv[i].as_str(), val) {
            ("--clients", Some(v)) => a.clients = v.max(1) as usize,
            ("--secs", Some(v)) => a.secs = v.max(1),
            ("--cost", Some(v)) => a.cost = v.clamp(4, 31) as u32,
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    a
}

fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// Verifies per second with one thread per core for `secs` seconds.
fn raw_verify_rate(hasher: &Bcrypt, hash: &str, secs: u64) -> f64 {
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let threads: Vec<_> = (0..cores())
        .map(|_| {
            let (stop, count, hasher, hash) =
                (stop.clone(), count.clone(), hasher.clone(), hash.to_owned());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    assert!(hasher.verify(PASSWORD, &hash));
                    count.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(secs));
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        let _ = t.join();
    }
    count.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.0.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.0.kill();
    }
}

fn start_server(database_url: &str, data_dir: &std::path::Path, port: u16, cost: u32) -> Server {
    let child = Command::new(BIN)
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", database_url)
        .env("OASIS_BIND", format!("127.0.0.1:{port}"))
        .env("OASIS_DATA_DIR", data_dir)
        .env("OASIS_BCRYPT_COST", cost.to_string())
        .env(
            "OASIS_SECRET_KEY",
            "bench-secret-key-0123456789abcdef0123456789abcdef",
        )
        .env("RUST_LOG", "warn")
        .current_dir(data_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("start the oasis binary");
    let server = Server(child);
    let deadline = Instant::now() + Duration::from_secs(120);
    let client = reqwest::blocking::Client::new();
    loop {
        if let Ok(r) = client.get(format!("http://127.0.0.1:{port}/ready")).send() {
            if r.status().is_success() {
                return server;
            }
        }
        assert!(Instant::now() < deadline, "server not ready in time");
        std::thread::sleep(Duration::from_millis(200));
    }
}

struct Outcome {
    latencies: Vec<Duration>,
    errors: usize,
    elapsed: Duration,
}

async fn load(url: String, body: serde_json::Value, clients: usize, secs: u64) -> Outcome {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .build()
        .expect("client");
    let start = Instant::now();
    let end = start + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (client, url, body) = (client.clone(), url.clone(), body.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0;
            while Instant::now() < end {
                let t = Instant::now();
                let ok = match client.post(&url).json(&body).send().await {
                    Ok(r) => r.status().is_success() & r.bytes().await.is_ok(),
                    Err(_) => false,
                };
                if ok {
                    lat.push(t.elapsed());
                } else {
                    errors += 1;
                }
            }
            (lat, errors)
        }));
    }
    let mut out = Outcome {
        latencies: Vec::new(),
        errors: 0,
        elapsed: Duration::ZERO,
    };
    for t in tasks {
        let (lat, errors) = t.await.expect("client task");
        out.latencies.extend(lat);
        out.errors += errors;
    }
    out.elapsed = start.elapsed();
    out
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1000.0
}

fn report(name: &str, mut o: Outcome) -> f64 {
    o.latencies.sort();
    let n = o.latencies.len();
    let rate = n as f64 / o.elapsed.as_secs_f64();
    println!(
        "{name:<40} {rate:>8.1} req/s  p50 {:>6.1} ms  p99 {:>6.1} ms  ({n} ok, {} errors, {:.1} s)",
        pct(&o.latencies, 0.50),
        pct(&o.latencies, 0.99),
        o.errors,
        o.elapsed.as_secs_f64(),
    );
    rate
}

fn main() {
    let a = args();
    let hasher = Bcrypt::new(a.cost).expect("bcrypt");
    let hash = hasher.hash(PASSWORD).expect("hash");

    let db = oasis_testdb::TestDb::new();
    let data_dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let _server = start_server(db.url(), data_dir.path(), port, a.cost);
    let mut conn = PgConnection::establish(db.url()).expect("connect");
    diesel::sql_query(
        "INSERT INTO users (username, email, password_hash, email_verified)
         VALUES ('bench', 'bench@example.com', $1, true)",
    )
    .bind::<Text, _>(&hash)
    .execute(&mut conn)
    .expect("seed user");

    println!(
        "login benchmark: bcrypt cost {}, {} cores, {} clients, {} s per scenario",
        a.cost,
        cores(),
        a.clients,
        a.secs
    );
    let raw = raw_verify_rate(&hasher, &hash, a.secs);
    println!(
        "{:<40} {raw:>8.1} verifies/s ({} threads)",
        "raw bcrypt verify",
        cores()
    );

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let base = format!("http://127.0.0.1:{port}");
    let login = serde_json::json!({"username": "bench", "password": PASSWORD});
    // Sanity check, then warm up.
    let r = reqwest::blocking::Client::new()
        .post(format!("{base}/authenticate/rest-auth/login/"))
        .json(&login)
        .send()
        .expect("login");
    assert!(r.status().is_success(), "login: {}", r.status());
    rt.block_on(load(
        format!("{base}/authenticate/rest-auth/login/"),
        login.clone(),
        a.clients,
        1,
    ));
    let o = rt.block_on(load(
        format!("{base}/authenticate/rest-auth/login/"),
        login.clone(),
        a.clients,
        a.secs,
    ));
    let key_rate = report("POST /authenticate/rest-auth/login/", o);
    let o = rt.block_on(load(
        format!("{base}/authenticate/api/token/"),
        login,
        a.clients,
        a.secs,
    ));
    let jwt_rate = report("POST /authenticate/api/token/", o);
    // Measured again after the load: on a shared machine the two numbers show the noise.
    let raw_after = raw_verify_rate(&hasher, &hash, a.secs);
    println!(
        "{:<40} {raw_after:>8.1} verifies/s (again, after the HTTP runs)",
        "raw bcrypt verify"
    );
    let raw = (raw + raw_after) / 2.0;
    println!(
        "login / raw verify (mean of both raw runs): {:.0}% (API key), {:.0}% (JWT pair)",
        100.0 * key_rate / raw,
        100.0 * jwt_rate / raw
    );
}

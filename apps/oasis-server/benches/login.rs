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
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod common;

use common::{free_port, pct, start_server, Outcome, RequestFn};
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
    let _server = start_server(
        db.url(),
        data_dir.path(),
        port,
        &[("OASIS_BCRYPT_COST", a.cost.to_string())],
    );
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

/// `clients` concurrent loops POSTing `body` to `url` for `secs` seconds.
async fn load(url: String, body: serde_json::Value, clients: usize, secs: u64) -> Outcome {
    let post: RequestFn = Arc::new(move |c, _base, _rng| c.post(&url).json(&body));
    common::load(Arc::new(String::new()), clients, secs, post).await
}

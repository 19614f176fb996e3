//! What the benchmarks share: the real `oasis` binary started on a free port, and a bounded
//! concurrent load loop with latency percentiles.
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_oasis");

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

pub struct Server(Child);

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

/// Starts the release `oasis` binary on 127.0.0.1:`port` against `database_url` and waits for
/// `/ready`; `env` adds settings (e.g. `OASIS_BCRYPT_COST`). Stopped (SIGTERM) on drop.
pub fn start_server(
    database_url: &str,
    data_dir: &std::path::Path,
    port: u16,
    env: &[(&str, String)],
) -> Server {
    let child = Command::new(BIN)
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", database_url)
        .env("OASIS_BIND", format!("127.0.0.1:{port}"))
        .env("OASIS_DATA_DIR", data_dir)
        .env(
            "OASIS_SECRET_KEY",
            "bench-secret-key-0123456789abcdef0123456789abcdef",
        )
        .env("RUST_LOG", "warn")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
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

pub type RequestFn = Arc<
    dyn Fn(&reqwest::Client, &str, &mut rand::rngs::StdRng) -> reqwest::RequestBuilder
        + Send
        + Sync,
>;

pub struct Outcome {
    pub latencies: Vec<Duration>,
    pub errors: usize,
    pub elapsed: Duration,
}

/// `clients` concurrent loops, each sending one request at a time for `secs` seconds.
pub async fn load(base: Arc<String>, clients: usize, secs: u64, request: RequestFn) -> Outcome {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .build()
        .expect("client");
    let start = Instant::now();
    let end = start + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for i in 0..clients {
        let (client, base, request) = (client.clone(), base.clone(), request.clone());
        tasks.push(tokio::spawn(async move {
            use rand::SeedableRng;
            let mut rng = rand::rngs::StdRng::seed_from_u64(i as u64);
            let mut lat = Vec::new();
            let mut errors = 0;
            while Instant::now() < end {
                let t = Instant::now();
                let ok = match request(&client, &base, &mut rng).send().await {
                    Ok(r) => {
                        let ok = r.status().is_success();
                        ok & r.bytes().await.is_ok()
                    }
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

pub fn pct(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1000.0
}

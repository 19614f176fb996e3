//! Feed benchmark: the real `oasis` binary on 127.0.0.1 against a seeded database
//! (1,000 creators × 100 posts = 100,000 posts, 10,000 fans following 20 creators each, 10% of
//! them members of one tier, ~30% of posts gated, 200k likes, 50k comments), loaded by a bounded
//! number of concurrent clients for a fixed time.
//!
//! ```text
//! cargo bench -p oasis-server --bench feed                      # defaults: 32 clients, 20 s
//! cargo bench -p oasis-server --bench feed -- --clients 64 --secs 30
//! cargo bench -p oasis-server --bench feed -- --only search
//! DATABASE_URL=postgres://… cargo bench -p oasis-server --bench feed -- --keep   # seed only
//! ```
//! Uses `DATABASE_URL` when set (a server to create a scratch database on), otherwise a private
//! throwaway PostgreSQL cluster. Prints throughput and latency percentiles per scenario.
use diesel::{Connection, PgConnection, RunQueryDsl};
use rand::Rng;
use std::sync::Arc;
use std::time::Instant;

mod common;

use common::{free_port, load, pct, start_server, Outcome, RequestFn};
const CREATORS: i64 = 1_000;
const POSTS_PER_CREATOR: i64 = 100;
const FANS: i64 = 10_000;
const FOLLOWS_PER_FAN: i64 = 20;

struct Args {
    clients: usize,
    secs: u64,
    warmup: u64,
    /// Run only scenarios whose name contains this.
    only: Option<String>,
    /// Seed, print the database URL, keep the database and exit (to inspect plans).
    keep: bool,
}

fn args() -> Args {
    let mut a = Args {
        clients: 32,
        secs: 20,
        warmup: 3,
        only: None,
        keep: false,
    };
    let argv: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i < argv.len() {
        if argv[i] == "--keep" {
            a.keep = true;
            i += 1;
            continue;
        }
        if argv[i] == "--only" {
            a.only = argv.get(i + 1).cloned();
            i += 2;
            continue;
        }
        let val = argv.get(i + 1).and_then(|v| v.parse::<u64>().ok());
        match (argv[i].as_str(), val) {
            ("--clients", Some(v)) => a.clients = v.max(1) as usize,
            ("--secs", Some(v)) => a.secs = v.max(1),
            ("--warmup", Some(v)) => a.warmup = v,
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    a
}

fn exec(conn: &mut PgConnection, what: &str, sql: &str) {
    let t = Instant::now();
    diesel::sql_query(sql)
        .execute(conn)
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    eprintln!("  {what}: {:.1} s", t.elapsed().as_secs_f64());
}

/// Set-based seeding (generate_series), then VACUUM ANALYZE.
fn seed(conn: &mut PgConnection) {
    let t = Instant::now();
    eprintln!("seeding…");
    exec(
        conn,
        "creators",
        &format!(
            "INSERT INTO users (username, email, first_name, last_name, is_creator, email_verified, bio)
             SELECT 'creator' || g, 'creator' || g || '@bench.local', 'Creator', 'Number ' || g,
                    true, true, 'I make things #' || g
             FROM generate_series(1, {CREATORS}) g"
        ),
    );
    exec(
        conn,
        "fans",
        &format!(
            "INSERT INTO users (username, email, first_name, last_name, is_creator, email_verified)
             SELECT 'fan' || g, 'fan' || g || '@bench.local', 'Fan', 'Number ' || g, false, true
             FROM generate_series(1, {FANS}) g"
        ),
    );
    exec(
        conn,
        "API tokens",
        "INSERT INTO auth_tokens (user_id, key_hash)
         SELECT id, sha256(convert_to('benchtoken-' || username, 'UTF8')) FROM users",
    );
    exec(
        conn,
        "tiers",
        "INSERT INTO tiers (creator_id, name, description, price, currency, benefits)
         SELECT id, 'Supporter', 'Early access', 50000, 'INR', '[\"early access\"]'::jsonb
         FROM users WHERE is_creator",
    );
    exec(
        conn,
        "posts",
        &format!(
            "INSERT INTO posts (creator_id, title, body, created_at, updated_at)
             SELECT c.id, 'Post ' || g || ' by ' || c.username,
                    repeat('Lorem ipsum dolor sit amet, consectetur adipiscing elit. ', 8) || g,
                    now() - make_interval(mins => ((g * 7 + c.id * 13) % 144000)::int),
                    now() - make_interval(mins => ((g * 7 + c.id * 13) % 144000)::int)
             FROM users c CROSS JOIN generate_series(1, {POSTS_PER_CREATOR}) g
             WHERE c.is_creator"
        ),
    );
    exec(
        conn,
        "post tiers (30% gated)",
        "INSERT INTO post_tiers (post_id, tier_id)
         SELECT p.id, t.id FROM posts p JOIN tiers t ON t.creator_id = p.creator_id
         WHERE p.id % 10 < 3",
    );
    // Creator rank 0..999 and fan rank 0..9999, to spread follows deterministically.
    exec(
        conn,
        "follows",
        &format!(
            "WITH c AS (SELECT id, row_number() OVER (ORDER BY id) - 1 AS r FROM users WHERE is_creator),
                  f AS (SELECT id, row_number() OVER (ORDER BY id) - 1 AS r FROM users
                        WHERE NOT is_creator AND username LIKE 'fan%')
             INSERT INTO follows (follower_id, creator_id, created_at)
             SELECT f.id, c.id, now() - make_interval(hours => ((f.r + k) % 700)::int)
             FROM f CROSS JOIN generate_series(0, {FOLLOWS_PER_FAN} - 1) k
             JOIN c ON c.r = (f.r * 7 + k * 37) % {CREATORS}"
        ),
    );
    exec(
        conn,
        "memberships (10% of fans, one tier each)",
        &format!(
            "WITH c AS (SELECT id, row_number() OVER (ORDER BY id) - 1 AS r FROM users WHERE is_creator),
                  f AS (SELECT id, row_number() OVER (ORDER BY id) - 1 AS r FROM users
                        WHERE NOT is_creator AND username LIKE 'fan%')
             INSERT INTO memberships (user_id, tier_id, kind, status, amount, currency,
                                      current_start, current_end, paid_count)
             SELECT f.id, t.id, 'recurring', 'active', 50000, 'INR', now() - interval '3 days',
                    now() + interval '27 days', 1
             FROM f JOIN c ON c.r = (f.r * 7) % {CREATORS} JOIN tiers t ON t.creator_id = c.id
             WHERE f.r % 10 = 0"
        ),
    );
    exec(
        conn,
        "likes (2 per post)",
        "WITH f AS (SELECT id, row_number() OVER (ORDER BY id) - 1 AS r FROM users
                    WHERE NOT is_creator AND username LIKE 'fan%')
         INSERT INTO likes (post_id, user_id)
         SELECT p.id, f.id FROM posts p CROSS JOIN generate_series(0, 1) k
         JOIN f ON f.r = (p.id * 13 + k) % 10000",
    );
    exec(
        conn,
        "comments (1 per 2 posts)",
        "WITH f AS (SELECT id, row_number() OVER (ORDER BY id) - 1 AS r FROM users
                    WHERE NOT is_creator AND username LIKE 'fan%')
         INSERT INTO comments (post_id, user_id, text)
         SELECT p.id, f.id, 'Nice one!' FROM posts p JOIN f ON f.r = (p.id * 31) % 10000
         WHERE p.id % 2 = 0",
    );
    exec(conn, "VACUUM ANALYZE", "VACUUM ANALYZE");
    eprintln!("seeded in {:.1} s", t.elapsed().as_secs_f64());
}

fn report(name: &str, mut o: Outcome) {
    o.latencies.sort();
    let n = o.latencies.len();
    println!(
        "{name:<44} {:>8.0} req/s  p50 {:>6.1} ms  p90 {:>6.1} ms  p99 {:>6.1} ms  max {:>6.1} ms  ({n} ok, {} errors, {:.1} s)",
        n as f64 / o.elapsed.as_secs_f64(),
        pct(&o.latencies, 0.50),
        pct(&o.latencies, 0.90),
        pct(&o.latencies, 0.99),
        pct(&o.latencies, 1.0),
        o.errors,
        o.elapsed.as_secs_f64(),
    );
}

fn main() {
    let a = args();
    let db = oasis_testdb::TestDb::new();
    let mut conn = PgConnection::establish(db.url()).expect("connect");
    seed(&mut conn);
    drop(conn);
    if a.keep {
        println!("seeded database kept: {}", db.url());
        std::mem::forget(db);
        return;
    }

    let data_dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let _server = start_server(db.url(), data_dir.path(), port, &[]);
    let base = Arc::new(format!("http://127.0.0.1:{port}"));

    // Sanity: a fan's feed answers with 10 posts, some locked, and the count of 2,000.
    let check = reqwest::blocking::Client::new()
        .get(format!("{base}/feed/api/feed"))
        .header("Authorization", "Token benchtoken-fan1")
        .send()
        .expect("feed");
    assert!(check.status().is_success(), "feed: {}", check.status());
    let body: serde_json::Value = check.json().expect("json");
    assert_eq!(body["results"].as_array().map(Vec::len), Some(10), "{body}");
    assert_eq!(
        body["count"].as_i64(),
        Some(FOLLOWS_PER_FAN * POSTS_PER_CREATOR),
        "{body}"
    );

    let feed: RequestFn = Arc::new(|c, base, rng| {
        let fan = rng.gen_range(1..=FANS);
        c.get(format!("{base}/feed/api/feed"))
            .header("Authorization", format!("Token benchtoken-fan{fan}"))
    });
    let feed_deep: RequestFn = Arc::new(|c, base, rng| {
        let fan = rng.gen_range(1..=FANS);
        let page = rng.gen_range(2..=5);
        c.get(format!("{base}/feed/api/feed?page={page}"))
            .header("Authorization", format!("Token benchtoken-fan{fan}"))
    });
    let profile: RequestFn = Arc::new(|c, base, rng| {
        // Creator ids follow the seeding order: 1..=1000.
        let creator = rng.gen_range(1..=CREATORS);
        c.get(format!("{base}/feed/api/user-profile/{creator}"))
    });
    let stats: RequestFn = Arc::new(|c, base, rng| {
        let n = rng.gen_range(1..=CREATORS);
        c.get(format!("{base}/feed/api/stats"))
            .header("Authorization", format!("Token benchtoken-creator{n}"))
    });
    let search: RequestFn = Arc::new(|c, base, rng| {
        let n = rng.gen_range(1..=CREATORS);
        c.get(format!("{base}/feed/api/search?q=creator{n}"))
            .header("Authorization", format!("Token benchtoken-fan{n}"))
    });

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    println!(
        "\n{} creators, {} posts, {} fans × {} follows; {} concurrent clients, {} s per scenario \
         (server, PostgreSQL and load generator share this machine)",
        CREATORS,
        CREATORS * POSTS_PER_CREATOR,
        FANS,
        FOLLOWS_PER_FAN,
        a.clients,
        a.secs
    );
    for (name, req) in [
        ("GET /feed/api/feed (page 1, random fan)", feed),
        ("GET /feed/api/feed?page=2..5", feed_deep),
        ("GET /feed/api/user-profile/<id> (anonymous)", profile),
        ("GET /feed/api/search?q=creatorN", search),
        ("GET /feed/api/stats (random creator)", stats),
    ] {
        if a.only.as_deref().is_some_and(|o| !name.contains(o)) {
            continue;
        }
        if a.warmup > 0 {
            rt.block_on(load(base.clone(), a.clients, a.warmup, req.clone()));
        }
        let o = rt.block_on(load(base.clone(), a.clients, a.secs, req));
        report(name, o);
    }
}

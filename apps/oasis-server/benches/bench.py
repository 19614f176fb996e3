#!/usr/bin/env python3
"""`just bench`: the hot reads, login and webhook intake of the release `oasis` binary against
PostgreSQL's own speed, measured in ONE run on this machine; writes docs/benchmarks.md.

    just bench                       # = cargo build --release; python3 apps/oasis-server/benches/bench.py
    python3 apps/oasis-server/benches/bench.py --secs 5 --only small --no-write   # quick look

What it does (stdlib only; needs wrk, pgbench and the PostgreSQL 15 server binaries):
1. starts a private PostgreSQL cluster (fsync off, pg_stat_statements preloaded) in a temp dir;
2. per dataset (`small`: 50 creators x 200 posts, half gated, 100 fans x 20 follows — the shape
   the Django predecessor was measured on; `large`: 1,000 creators x 100 posts, 10,000 fans x 20
   follows), migrates a database with `oasis migrate`, seeds it with set-based SQL, starts
   `oasis serve` and, right before the routes, runs `pgbench -S` (simple and prepared protocol)
   on a pgbench database in the same cluster;
3. drives each hot route with wrk (32 connections, tokens and ids rotated by hot.lua), reading
   the server's CPU and RSS from /proc and PostgreSQL's statements per request from
   pg_stat_statements;
4. 256 connections on the feed, login (`cargo bench --bench login`), webhook intake
   (webhooks.py) against a pgbench single-row-insert script, and the RSS of 10,000 idle
   notification streams (sse_idle.py);
5. writes docs/benchmarks.md with every figure and its ratio to the goal.
"""
import argparse, hashlib, hmac, json, math, os, platform, re, shutil, signal, socket, subprocess, sys, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
BENCHES = Path(__file__).resolve().parent
PGBIN = Path(os.environ.get("PGBIN", "/usr/lib/postgresql/15/bin"))
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
OASIS = Path(os.environ.get("OASIS_BIN", TARGET / "release" / "oasis"))

p = argparse.ArgumentParser()
p.add_argument("--secs", type=int, default=10, help="seconds per measured scenario")
p.add_argument("--warmup", type=int, default=2)
p.add_argument("--clients", type=int, default=32)
p.add_argument("--webhook-clients", type=int, default=32,
               help="connections for webhook intake and for its pgbench insert (the same on both sides)")
p.add_argument("--only", help="run only datasets whose name contains this (small, large)")
p.add_argument("--routes", help="run only routes whose name contains this")
p.add_argument("--no-extras", action="store_true", help="skip login, webhooks, idle streams and 256 connections")
p.add_argument("--extras", default="c256,webhooks,login,sse",
               help="which extras to run (comma-separated from c256, webhooks, login, sse)")
p.add_argument("--sse-streams", type=int, default=10000, help="idle notification streams to open")
p.add_argument("--server-env", action="append", default=[], metavar="K=V",
               help="extra environment of the measured server (repeatable), e.g. OASIS_READ_CACHE_MB=32")
p.add_argument("--no-write", action="store_true", help="print, do not write docs/benchmarks.md")
p.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"))
p.add_argument("--keep", action="store_true", help="leave the cluster running (prints its port)")
p.add_argument("--pgbouncer", choices=["session", "transaction"],
               help="servers reach PostgreSQL through Debian's pgbouncer in this pool mode")
p.add_argument("--statement-cache", choices=["true", "false"], default="true",
               help="OASIS_DB_STATEMENT_CACHE of the servers (false for transaction pooling)")
p.add_argument("--plan-1m", action="store_true",
               help="only: generate 1,000,000 posts / 100,000 fans, write the feed's EXPLAIN "
                    "(ANALYZE, BUFFERS) to docs/feed-plan-1m.txt")
a = p.parse_args()

RUN_START = time.time()


def log(*m):
    print(f"[{time.time() - RUN_START:6.1f}s]", *m, file=sys.stderr, flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def as_postgres(cmd, **kw):
    """Runs a PostgreSQL server binary (they refuse to run as root)."""
    if os.geteuid() == 0:
        cmd = ["/usr/sbin/runuser", "-u", "postgres", "--"] + cmd
    return subprocess.run(cmd, check=True, **kw)


# ------------------------------------------------------------------------------------------
# PostgreSQL


class Cluster:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="oasis-bench-")
        os.chmod(self.dir, 0o755)
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres")
        self.port = free_port()
        self.data = os.path.join(self.dir, "data")
        as_postgres([str(PGBIN / "initdb"), "-D", self.data, "-U", "postgres", "--auth=trust", "-N"],
                    stdout=subprocess.DEVNULL)
        opts = (f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
                "-c max_connections=400 -c shared_buffers=512MB "
                "-c shared_preload_libraries=pg_stat_statements "
                "-c pg_stat_statements.track_planning=on -c pg_stat_statements.max=1000")
        as_postgres([str(PGBIN / "pg_ctl"), "-w", "-D", self.data, "-l",
                     os.path.join(self.dir, "log"), "-o", opts, "start"], stdout=subprocess.DEVNULL)
        self.pid = int(open(os.path.join(self.data, "postmaster.pid")).readline())
        self.bouncer = None

    def url(self, db):
        return f"postgres://postgres@127.0.0.1:{self.port}/{db}"

    def app_url(self, db):
        """Where the servers connect: PostgreSQL itself, or pgbouncer in front of it."""
        if self.bouncer:
            return f"postgres://postgres@127.0.0.1:{self.bouncer_port}/{db}"
        return self.url(db)

    def start_pgbouncer(self, mode):
        exe = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
        self.bouncer_port = free_port()
        ini = os.path.join(self.dir, "pgbouncer.ini")
        users = os.path.join(self.dir, "users.txt")
        with open(users, "w") as fh:
            fh.write('"postgres" ""\n')
        with open(ini, "w") as fh:
            fh.write(f"""[databases]
* = host=127.0.0.1 port={self.port}
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {self.bouncer_port}
unix_socket_dir =
auth_type = trust
auth_file = {users}
pool_mode = {mode}
max_client_conn = 1000
default_pool_size = 32
ignore_startup_parameters = extra_float_digits,options
logfile = {os.path.join(self.dir, "pgbouncer.log")}
pidfile = {os.path.join(self.dir, "pgbouncer.pid")}
""")
        if os.geteuid() == 0:
            shutil.chown(ini, "postgres")
            shutil.chown(users, "postgres")
        as_postgres([exe, "-d", ini], stdout=subprocess.DEVNULL)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.bouncer_port), 1).close()
                break
            except OSError:
                time.sleep(0.1)
        self.bouncer = mode
        self.bouncer_version = subprocess.run([exe, "--version"], capture_output=True,
                                              text=True).stdout.splitlines()[0]

    def psql(self, db, sql, quiet=True):
        out = subprocess.run(["psql", "-X", "-v", "ON_ERROR_STOP=1", "-qtA", "-F", "\t", "-h",
                              "127.0.0.1", "-p", str(self.port), "-U", "postgres", db],
                             input=sql, capture_output=True, text=True)
        if out.returncode != 0:
            raise SystemExit(f"psql {db}: {out.stderr}\n{sql[:400]}")
        return out.stdout

    def stop(self):
        if self.bouncer:
            pid = open(os.path.join(self.dir, "pgbouncer.pid")).read().strip()
            subprocess.run(["kill", "-TERM", pid])
        as_postgres([str(PGBIN / "pg_ctl"), "-D", self.data, "-m", "fast", "stop"],
                    stdout=subprocess.DEVNULL)
        shutil.rmtree(self.dir, ignore_errors=True)

    def backend_cpu(self):
        """CPU seconds of every process of this cluster (postmaster children), from /proc."""
        total = 0.0
        tick = os.sysconf("SC_CLK_TCK")
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                st = open(f"/proc/{d}/stat").read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(st[1]) == self.pid or int(d) == self.pid:
                total += (int(st[11]) + int(st[12])) / tick
        return total

    def pgbench(self, db, args, secs):
        out = subprocess.run([str(PGBIN / "pgbench"), "-h", "127.0.0.1", "-p", str(self.port),
                              "-U", "postgres", "-n", "-T", str(secs)] + args + [db],
                             capture_output=True, text=True, check=True).stdout
        tps = float(re.search(r"tps = ([\d.]+)", out).group(1))
        lat = re.search(r"latency average = ([\d.]+) ms", out)
        return {"tps": tps, "lat_avg_ms": float(lat.group(1)) if lat else None}


# ------------------------------------------------------------------------------------------
# Datasets (set-based seeding)

DATASETS = {
    "small": dict(creators=50, posts=200, fans=100, follows=20, gated_pct=50,
                  label="50 creators x 200 posts (half gated), 100 fans x 20 follows"),
    "large": dict(creators=1000, posts=100, fans=10000, follows=20, gated_pct=50,
                  label="1,000 creators x 100 posts = 100,000 posts (half gated), 10,000 fans x 20 follows"),
}


def seed_sql(d, engagement=True):
    c, n, f, k, g = d["creators"], d["posts"], d["fans"], d["follows"], d["gated_pct"]
    return seed_core(c, n, f, k, g) + (seed_engagement(f) if engagement else "")


def seed_core(c, n, f, k, g):
    return f"""
INSERT INTO users (username, email, first_name, last_name, is_creator, email_verified, bio)
SELECT 'creator' || i, 'creator' || i || '@bench.local', 'Creator', 'Number ' || i, true, true,
       'I make things #' || i FROM generate_series(1, {c}) i;
INSERT INTO users (username, email, first_name, last_name, is_creator, email_verified)
SELECT 'fan' || i, 'fan' || i || '@bench.local', 'Fan', 'Number ' || i, false, true
FROM generate_series(1, {f}) i;
INSERT INTO auth_tokens (user_id, key_hash)
SELECT id, sha256(convert_to('benchtoken-' || username, 'UTF8')) FROM users;
INSERT INTO tiers (creator_id, name, description, price, currency, benefits)
SELECT id, 'Supporter', 'Early access', 50000, 'INR', '["early access"]'::jsonb
FROM users WHERE is_creator;
INSERT INTO posts (creator_id, title, body, created_at, updated_at)
SELECT u.id, 'Post ' || i || ' by ' || u.username,
       repeat('Lorem ipsum dolor sit amet, consectetur adipiscing elit. ', 8) || i,
       now() - make_interval(mins => ((i * 7 + u.id * 13) % 144000)::int),
       now() - make_interval(mins => ((i * 7 + u.id * 13) % 144000)::int)
FROM users u CROSS JOIN generate_series(1, {n}) i WHERE u.is_creator;
INSERT INTO post_tiers (post_id, tier_id)
SELECT p.id, t.id FROM posts p JOIN tiers t ON t.creator_id = p.creator_id
WHERE p.id % 100 < {g};
CREATE TEMP TABLE cr AS SELECT id, row_number() OVER (ORDER BY id) - 1 AS r FROM users WHERE is_creator;
CREATE TEMP TABLE fr AS SELECT id, row_number() OVER (ORDER BY id) - 1 AS r FROM users WHERE NOT is_creator;
INSERT INTO follows (follower_id, creator_id, created_at)
SELECT fr.id, cr.id, now() - make_interval(hours => ((fr.r + j) % 700)::int)
FROM fr CROSS JOIN generate_series(0, {k} - 1) j JOIN cr ON cr.r = (fr.r * 7 + j * 37) % {c}
ON CONFLICT DO NOTHING;
-- 10% of fans hold a membership to the first creator they follow.
INSERT INTO memberships (user_id, tier_id, kind, status, amount, currency, current_start,
                         current_end, paid_count)
SELECT fr.id, t.id, 'recurring', 'active', 50000, 'INR', now() - interval '3 days',
       now() + interval '27 days', 1
FROM fr JOIN cr ON cr.r = (fr.r * 7) % {c} JOIN tiers t ON t.creator_id = cr.id
WHERE fr.r % 10 = 0;
"""


def seed_engagement(f):
    return f"""
INSERT INTO likes (post_id, user_id)
SELECT p.id, fr.id FROM posts p CROSS JOIN generate_series(0, 1) j
JOIN fr ON fr.r = (p.id * 13 + j) % {f} ON CONFLICT DO NOTHING;
INSERT INTO comments (post_id, user_id, text)
SELECT p.id, fr.id, 'Nice one!' FROM posts p JOIN fr ON fr.r = (p.id * 31) % {f} WHERE p.id % 2 = 0;
"""


def request_lists(cl, db, d, tmp):
    """Files of `<path>\\t<token>` lines per route, rotated by hot.lua."""
    q = lambda sql: [l.split("\t") for l in cl.psql(db, sql).splitlines() if l]
    fans = [r[0] for r in q("SELECT username FROM users WHERE NOT is_creator ORDER BY id")]
    creators = [r[0] for r in q("SELECT id FROM users WHERE is_creator ORDER BY id")]
    gated = "EXISTS (SELECT 1 FROM post_tiers pt WHERE pt.post_id = p.id)"
    # A member reading a gated post of the creator they pay (body shown) ...
    entitled = q(f"""SELECT p.id, u.username FROM memberships m JOIN users u ON u.id = m.user_id
        JOIN tiers t ON t.id = m.tier_id
        CROSS JOIN LATERAL (SELECT p.id FROM posts p WHERE p.creator_id = t.creator_id AND {gated}
                            ORDER BY p.id LIMIT 50) p ORDER BY u.id, p.id LIMIT 2000""")
    # ... and a fan reading a gated post of a creator they follow without paying (body null).
    locked = q(f"""SELECT p.id, u.username FROM follows f JOIN users u ON u.id = f.follower_id
        CROSS JOIN LATERAL (SELECT p.id FROM posts p WHERE p.creator_id = f.creator_id AND {gated}
                            ORDER BY p.id LIMIT 2) p
        WHERE NOT EXISTS (SELECT 1 FROM memberships m JOIN tiers t ON t.id = m.tier_id
                          WHERE m.user_id = u.id AND t.creator_id = f.creator_id)
        ORDER BY u.id, p.id LIMIT 2000""")
    tok = lambda name: f"benchtoken-{name}"
    routes = {
        "feed": [(f"/feed/api/feed?page=1", tok(u)) for u in fans],
        "profile_anon": [(f"/feed/api/user-profile/{c}", "-") for c in creators],
        "profile_user": [(f"/feed/api/user-profile/{c}", tok(fans[i % len(fans)]))
                         for i, c in enumerate(creators * max(1, 200 // len(creators)))],
        "post_entitled": [(f"/content/api/content/{pid}", tok(u)) for pid, u in entitled],
        "post_locked": [(f"/content/api/content/{pid}", tok(u)) for pid, u in locked],
        "tiers": [(f"/content/api/tiers?creator={c}", "-") for c in creators],
    }
    files = {}
    for name, reqs in routes.items():
        assert reqs, f"no requests for {name}"
        path = os.path.join(tmp, f"{db}-{name}.txt")
        with open(path, "w") as fh:
            fh.writelines(f"{u}\t{t}\n" for u, t in reqs)
        files[name] = (path, reqs)
    return files


ROUTE_LABELS = {
    "feed": "feed page 1 (`GET /feed/api/feed?page=1`, fan token)",
    "feed_warm": "feed page 1, warm (each fan's page read once before)",
    "profile_anon": "creator profile, anonymous (`GET /feed/api/user-profile/<id>`)",
    "profile_user": "creator profile, logged in (fan token)",
    "post_entitled": "post detail, entitled (member reads a gated post)",
    "post_locked": "post detail, locked (follower without the tier)",
    "tiers": "tier list (`GET /content/api/tiers?creator=<id>`)",
}


# ------------------------------------------------------------------------------------------
# The server


class Server:
    def __init__(self, url, data_dir, extra_env=None):
        self.port = free_port()
        env = {"PATH": os.environ.get("PATH", ""), "DATABASE_URL": url,
               "OASIS_BIND": f"127.0.0.1:{self.port}", "OASIS_DATA_DIR": data_dir,
               "OASIS_SECRET_KEY": "bench-secret-key-0123456789abcdef0123456789abcdef",
               "RUST_LOG": "warn", "OASIS_DB_STATEMENT_CACHE": a.statement_cache}
        env.update(kv.split("=", 1) for kv in a.server_env)
        env.update(extra_env or {})
        self.proc = subprocess.Popen([str(OASIS), "serve"], env=env, cwd=data_dir,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        self.base = f"http://127.0.0.1:{self.port}"
        deadline = time.time() + 120
        while True:
            try:
                if self.get("/ready")[0] == 200:
                    break
            except OSError:
                pass
            if time.time() > deadline or self.proc.poll() is not None:
                raise SystemExit("oasis did not become ready")
            time.sleep(0.2)

    def get(self, path, token=None):
        import http.client
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        h = {"Authorization": f"Token {token}"} if token and token != "-" else {}
        c.request("GET", path, headers=h)
        r = c.getresponse()
        body = r.read()
        c.close()
        return r.status, body

    def cpu(self):
        st = open(f"/proc/{self.proc.pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(st[11]) + int(st[12])) / os.sysconf("SC_CLK_TCK")

    def threads(self):
        for line in open(f"/proc/{self.proc.pid}/status"):
            if line.startswith("Threads:"):
                return int(line.split()[1])
        return 0

    def rss_mb(self):
        for line in open(f"/proc/{self.proc.pid}/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def wrk(server, reqfile, secs, clients, script="hot.lua", env=None):
    threads = min(2, clients)
    out = subprocess.run(["wrk", f"-t{threads}", f"-c{clients}", f"-d{secs}s", "--latency",
                          "--timeout", "5s", "-s", str(BENCHES / script), server.base],
                         env=dict(os.environ, BENCH_REQUESTS=reqfile or "", **(env or {})),
                         capture_output=True, text=True, check=True).stdout

    def ms(label):
        m = re.search(rf"^\s*{label}%?\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not m:
            return None
        v = float(m.group(1))
        return {"us": v / 1000, "ms": v, "s": v * 1000}[m.group(2)]

    n = int(re.search(r"(\d+) requests in", out).group(1))
    errors = 0
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors += int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors += sum(int(x) for x in m.groups()) if m else 0
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)), "n": n,
            "p50": ms("50"), "p99": ms("99"), "errors": errors}


def statements(cl, db, requests):
    """pg_stat_statements since the last reset: statements per request and where time went."""
    rows = cl.psql(db, """SELECT calls, round(total_plan_time::numeric, 1),
        round(total_exec_time::numeric, 1), regexp_replace(left(query, 90), '\\s+', ' ', 'g')
        FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
          AND query NOT ILIKE '%pg_stat_statements%'
        ORDER BY total_plan_time + total_exec_time DESC""")
    out = []
    for line in rows.splitlines():
        calls, plan, exe, q = line.split("\t", 3)
        out.append({"calls": int(calls), "plan_ms": float(plan), "exec_ms": float(exe), "query": q})
    calls = sum(r["calls"] for r in out)
    return {"per_request": calls / max(requests, 1),
            "plan_ms_per_request": sum(r["plan_ms"] for r in out) / max(requests, 1),
            "exec_ms_per_request": sum(r["exec_ms"] for r in out) / max(requests, 1),
            "top": out[:4]}


def extra(name):
    return not a.no_extras and name in a.extras.split(",")


def measure(cl, db, server, name, reqfile, clients=None, warmup=None):
    clients = clients or a.clients
    warmup = a.warmup if warmup is None else warmup
    if warmup:
        wrk(server, reqfile, warmup, clients)
    cl.psql(db, "SELECT pg_stat_statements_reset()")
    cpu0, pg0, t0 = server.cpu(), cl.backend_cpu(), time.time()
    r = wrk(server, reqfile, a.secs, clients)
    dt = time.time() - t0
    r["cpu_pct"] = 100 * (server.cpu() - cpu0) / dt
    r["pg_cpu_ms_per_req"] = 1000 * (cl.backend_cpu() - pg0) / max(r["n"], 1)
    r["rss_mb"] = server.rss_mb()
    r["threads"] = server.threads()
    r["sql"] = statements(cl, db, r["n"])
    r["clients"] = clients
    log(f"  {name:<14} {r['rps']:8.0f} req/s p50 {r['p50']:.1f} ms p99 {r['p99']:.1f} ms "
        f"err {r['errors']} cpu {r['cpu_pct']:.0f}% pg {r['pg_cpu_ms_per_req']:.2f} ms/req "
        f"rss {r['rss_mb']:.1f} MB threads {r['threads']} sql/req {r['sql']['per_request']:.1f}")
    return r


def sanity(server, files):
    """Each route answers 200 with the right shape before it is timed."""
    path, tok = files["feed"][1][0]
    s, b = server.get(path, tok)
    body = json.loads(b)
    assert s == 200 and len(body["results"]) == 10, (s, b[:300])
    s, b = server.get(*files["post_entitled"][1][0])
    assert s == 200 and json.loads(b)["body"] is not None, (s, b[:300])
    s, b = server.get(*files["post_locked"][1][0])
    assert s == 200 and json.loads(b)["body"] is None, (s, b[:300])
    for r in ("profile_anon", "profile_user", "tiers"):
        s, b = server.get(*files[r][1][0])
        assert s == 200, (r, s, b[:300])


# ------------------------------------------------------------------------------------------
# Extras: login, webhooks


def login_bench(cl):
    env = dict(os.environ, DATABASE_URL=cl.url("postgres"))
    out = subprocess.run(["cargo", "bench", "-q", "-p", "oasis-server", "--bench", "login", "--",
                          "--secs", str(max(3, a.secs // 2)), "--cost", "10"],
                         cwd=ROOT, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        log("login bench failed:", out.stderr[-2000:])
        return None
    text = out.stdout
    raw = [float(x) for x in re.findall(r"raw bcrypt verify\s+([\d.]+) verifies/s", text)]
    rates = re.findall(r"^(POST \S+.*?)\s+([\d.]+) req/s\s+p50\s+([\d.]+) ms\s+p99\s+([\d.]+) ms\s+\((\d+) ok, (\d+) errors",
                       text, re.M)
    return {"raw": sum(raw) / len(raw) if raw else None, "text": text.strip(),
            "routes": [{"name": n.strip(), "rps": float(r), "p50": float(p5), "p99": float(p9),
                        "errors": int(e)} for n, r, p5, p9, _, e in rates]}


def webhook_bench(cl, tmp):
    db = "oasis_webhooks"
    cl.psql("postgres", f"CREATE DATABASE {db}")
    subprocess.run([str(OASIS), "migrate"], env={"PATH": os.environ["PATH"],
                   "DATABASE_URL": cl.url(db), "OASIS_SECRET_KEY": "x" * 48,
                   "OASIS_DATA_DIR": tmp}, cwd=tmp, check=True, capture_output=True)
    keys = {"RAZORPAY_KEY_ID": "rzp_test_b", "RAZORPAY_KEY_SECRET": "ksec",
            "RAZORPAY_WEBHOOK_SECRET": "whsec", "RAZORPAY_API_BASE": "http://127.0.0.1:9"}
    # Intake alone (verify + store + enqueue), driven by wrk: a process that runs no jobs, so
    # that processing does not share the cores while intake is measured.
    event = json.dumps({"entity": "event", "event": "payment.captured", "contains": ["payment"],
        "created_at": 1790000000, "payload": {"payment": {"entity": {
            "id": "pay_WrkIntake00001", "entity": "payment", "amount": 34800, "currency": "INR",
            "status": "captured", "order_id": "order_WrkIntake0001", "invoice_id": None,
            "notes": {"type": "cheer", "creatorID": "1", "name": "B", "message": "m"},
            "created_at": 1790000000}}}}).encode()
    body_file = os.path.join(tmp, "webhook.json")
    with open(body_file, "wb") as fh:
        fh.write(event)
    intake_server = Server(cl.app_url(db), tempfile.mkdtemp(dir=tmp),
                           dict(keys, OASIS_BACKGROUND_JOBS="false"))
    try:
        w = wrk(intake_server, None, a.secs, a.webhook_clients, script="webhook.lua",
                env={"WEBHOOK_BODY_FILE": body_file, "WEBHOOK_RUN": str(int(time.time())),
                     "WEBHOOK_SIGNATURE": hmac.new(b"whsec", event, hashlib.sha256).hexdigest()})
        w["rss_mb"] = intake_server.rss_mb()
    finally:
        intake_server.stop()
    stored = int(cl.psql(db, "SELECT count(*) FROM billing_webhook_events").strip() or 0)
    # The processing run below starts from an empty inbox and queue (TRUNCATE: a DELETE would
    # leave the intake run's rows as dead tuples for every take of the queue to step over).
    cl.psql(db, "TRUNCATE jobs, billing_webhook_events")
    data = tempfile.mkdtemp(dir=tmp)
    server = Server(cl.app_url(db), data, keys)
    try:
        per = max(200, a.secs * 60)
        out = subprocess.run([sys.executable, str(BENCHES / "webhooks.py"), "--threads", "8",
                              "--per-thread", str(per), "--port", str(server.port), "--secret",
                              "whsec", "--pg-socket-dir", cl.dir, "--pg-port", str(cl.port),
                              "--db", db], capture_output=True, text=True, check=True).stdout
        rss = server.rss_mb()
    finally:
        server.stop()
    intake = re.search(r"stored \(2xx\) in ([\d.]+)s = (\d+)/s", out)
    proc = re.search(r"processed: (\d+) of (\d+) within ([\d.]+)s", out)
    total = int(proc.group(2))
    # The database alone: one single-row insert per transaction, as many clients as wrk had.
    cl.psql(db, "CREATE TABLE bench_insert (id bigserial PRIMARY KEY, payload jsonb NOT NULL, "
                "created_at timestamptz NOT NULL DEFAULT now())")
    script = os.path.join(tmp, "insert.sql")
    with open(script, "w") as fh:
        fh.write("INSERT INTO bench_insert (payload) VALUES ('{\"event\": \"payment.captured\"}');\n")
    pg = cl.pgbench(db, ["-c", str(a.webhook_clients), "-j", "2", "-f", script], max(3, a.secs // 2))
    return {"wrk": w, "wrk_stored": stored,
            "intake_rps": float(intake.group(2)), "stored": total, "processed": int(proc.group(1)),
            "processed_rps": int(proc.group(1)) / float(proc.group(3)), "rss_mb": rss,
            "pgbench_insert_tps": pg["tps"], "text": out.strip()}


def sse_bench(cl):
    """Idle notification streams (sse_idle.py) against a database of this run's cluster."""
    out = subprocess.run([sys.executable, str(BENCHES / "sse_idle.py"), "--streams", str(a.sse_streams),
                          "--db", cl.url("oasis_sse")], capture_output=True, text=True)
    line = next((l for l in out.stdout.splitlines() if l.startswith("RESULT ")), None)
    if out.returncode != 0 or line is None:
        log(f"  sse_idle.py failed: {out.stderr.strip()[-500:]}")
        return None
    return json.loads(line[len("RESULT "):])


# ------------------------------------------------------------------------------------------
# Report


def machine():
    mem = next(l for l in open("/proc/meminfo") if l.startswith("MemTotal")).split()[1]
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    pgv = subprocess.run([str(PGBIN / "postgres"), "--version"], capture_output=True, text=True).stdout.strip()
    wrkv = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.splitlines()[0]
    load = open("/proc/loadavg").read().split()[:3]
    return {"cores": os.cpu_count(), "cpu": cpu, "mem_gib": int(mem) / 1024 / 1024, "pg": pgv,
            "wrk": wrkv, "kernel": platform.release(), "load": " ".join(load)}


cl_bouncer = [None]


def verdict(ok):
    return "**met**" if ok else "**not met**"


def write_report(results, extras, m, elapsed):
    L = []
    w = L.append
    w("# Benchmarks\n")
    w("Written by `just bench` (apps/oasis-server/benches/bench.py); numbers from ONE run, so the "
      "ratios compare Oasis with PostgreSQL's own speed on the same machine at the same moment. "
      "Never edit by hand: re-run the command.\n")
    w("```text\njust bench    # = cargo build --release --bin oasis; cargo bench --bench login --no-run; python3 apps/oasis-server/benches/bench.py\n```\n")
    w(f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(RUN_START))}, whole run {elapsed / 60:.1f} min")
    w(f"- machine: {m['cores']} cores ({m['cpu']}), {m['mem_gib']:.0f} GiB, Linux {m['kernel']}; "
      f"load average at the end {m['load']}")
    w(f"- {m['pg']} (private cluster: fsync off, shared_buffers 512MB, pg_stat_statements), {m['wrk']}")
    if a.pgbouncer:
        w(f"- the servers connect through **{cl_bouncer[0]}, pool_mode = {a.pgbouncer}** "
          f"(OASIS_DB_STATEMENT_CACHE={a.statement_cache}); pgbench connects directly")
    w(f"- server, PostgreSQL and load generator share these {m['cores']} cores; "
      f"{a.clients} connections, {a.warmup} s warm-up + {a.secs} s per figure; "
      "`pgbench -S` (scale 10) runs right before each dataset's routes\n")
    for ds, r in results.items():
        pg = r["pgbench"]
        goal = pg["prepared"]["tps"]
        w(f"## Dataset `{ds}`: {DATASETS[ds]['label']}\n")
        w(f"`pgbench -S` on the same PostgreSQL: **{goal:,.0f} TPS** prepared protocol (`-M prepared`, the "
          f"goal's denominator), {pg['simple']['tps']:,.0f} TPS simple protocol; 32 clients, 2 threads.\n")
        w("| route | req/s | ÷ pgbench -S (goal ≥ 0.5) | p50 ms | p99 ms (goal ≤ 25) | errors | server CPU | "
          "PG CPU ms/req | SQL statements/req | server RSS MB |")
        w("|---|---|---|---|---|---|---|---|---|---|")
        for name, x in r["routes"].items():
            ratio = x["rps"] / goal
            w(f"| {ROUTE_LABELS[name]} | {x['rps']:,.0f} | {ratio:.2f} {verdict(ratio >= 0.5)} | "
              f"{x['p50']:.1f} | {x['p99']:.1f} {verdict(x['p99'] <= 25)} | {x['errors']} | "
              f"{x['cpu_pct']:.0f} % | {x['pg_cpu_ms_per_req']:.2f} | {x['sql']['per_request']:.1f} | "
              f"{x['rss_mb']:.1f} |")
        w("")
        w("<details><summary>Where PostgreSQL's time went (pg_stat_statements, per route)</summary>\n")
        for name, x in r["routes"].items():
            s = x["sql"]
            w(f"**{name}**: {s['per_request']:.2f} statements/request, planning "
              f"{s['plan_ms_per_request']:.3f} ms + execution {s['exec_ms_per_request']:.3f} ms per request\n")
            w("| calls | plan ms | exec ms | statement |\n|---|---|---|---|")
            for t in s["top"]:
                w(f"| {t['calls']} | {t['plan_ms']} | {t['exec_ms']} | `{t['query'].replace('|', '/')}` |")
            w("")
        w("</details>\n")
    if "c256" in extras:
        x = extras["c256"]
        w("## 256 connections (feed, dataset `large`)\n")
        w("| req/s | p50 ms | p99 ms | errors (goal 0) | server RSS MB (goal ≤ 64) |\n|---|---|---|---|---|")
        w(f"| {x['rps']:,.0f} | {x['p50']:.1f} | {x['p99']:.1f} | {x['errors']} {verdict(x['errors'] == 0)} | "
          f"{x['rss_mb']:.1f} {verdict(x['rss_mb'] <= 64)} |\n")
    rss = max([x["rss_mb"] for r in results.values() for x in r["routes"].values()] +
              [extras.get("c256", {}).get("rss_mb", 0)])
    w(f"Highest server RSS seen under load: **{rss:.1f} MB** (goal ≤ 64 MB: {verdict(rss <= 64)}).\n")
    if extras.get("login"):
        lg = extras["login"]
        w("## Login (bcrypt cost 10, `cargo bench --bench login`)\n")
        w(f"Raw bcrypt verify on all cores, same run: **{lg['raw']:,.1f} verifies/s**.\n")
        w("| route | req/s | ÷ raw verify (goal ≥ 0.9) | p50 ms | p99 ms | errors |\n|---|---|---|---|---|---|")
        for x in lg["routes"]:
            ratio = x["rps"] / lg["raw"]
            w(f"| {x['name']} | {x['rps']:,.1f} | {ratio:.2f} {verdict(ratio >= 0.9)} | {x['p50']:.1f} | "
              f"{x['p99']:.1f} | {x['errors']} |")
        w("")
    if extras.get("webhooks"):
        x = extras["webhooks"]
        i = x["wrk"]
        ratio = i["rps"] / x["pgbench_insert_tps"]
        w(f"## Webhook intake (verify + store + enqueue, {a.webhook_clients} connections)\n")
        w("Intake: wrk (`webhook.lua`: one signed body, a new `X-Razorpay-Event-Id` per request) "
          "against a process that runs no jobs (`OASIS_BACKGROUND_JOBS=false`). Processing: "
          "`webhooks.py` posts distinct `payment.captured` cheer events to a process that runs them, "
          "and times until every one is applied.\n")
        w(f"| intake /s | p50 ms | p99 ms | errors | stored | pgbench single-row insert TPS ({a.webhook_clients} clients) | "
          "ratio (goal ≥ 0.5) | intake /s while processing (webhooks.py) | processed | events applied /s |")
        w("|---|---|---|---|---|---|---|---|---|---|")
        w(f"| {i['rps']:,.0f} | {i['p50']:.1f} | {i['p99']:.1f} | {i['errors']} | {x['wrk_stored']:,} | "
          f"{x['pgbench_insert_tps']:,.0f} | {ratio:.2f} {verdict(ratio >= 0.5)} | {x['intake_rps']:,.0f} | "
          f"{x['processed']} of {x['stored']} | {x['processed_rps']:,.0f} |\n")
    if extras.get("sse"):
        x = extras["sse"]
        scaled = x["extra_mb"] * 10000 / max(x["streams"], 1)
        w("## Idle notification streams (`sse_idle.py`: `GET /feed/api/notifications/stream`, each open "
          "and past its first event, nothing sent after)\n")
        w("| streams | server RSS before MB | with the streams MB | extra MB | bytes a stream | "
          "extra for 10,000 (goal ≤ 64 MB) |\n|---|---|---|---|---|---|")
        w(f"| {x['streams']:,} | {x['base_mb']:.1f} | {x['peak_mb']:.1f} | {x['extra_mb']:.1f} | "
          f"{x['bytes_per_stream']:,.0f} | {scaled:.1f} {verdict(scaled <= 64)} |\n")
    w("## Goals not met\n")
    miss = []
    if extras.get("sse"):
        x = extras["sse"]
        scaled = x["extra_mb"] * 10000 / max(x["streams"], 1)
        if scaled > 64:
            miss.append(f"- idle streams: {scaled:.1f} MB extra for 10,000, {scaled - 64:.1f} MB over 64 MB")
    if extras.get("webhooks"):
        x = extras["webhooks"]
        ratio = x["wrk"]["rps"] / x["pgbench_insert_tps"]
        if ratio < 0.5:
            miss.append(f"- webhook intake: {ratio:.2f} × pgbench single-row insert, "
                        f"{0.5 / ratio:.1f}× short of 0.5")
    if extras.get("login"):
        lg = extras["login"]
        for x in lg["routes"]:
            if x["rps"] / lg["raw"] < 0.9:
                miss.append(f"- login {x['name']}: {x['rps'] / lg['raw']:.2f} × raw bcrypt verify"
                            " (goal ≥ 0.9)")
    if "c256" in extras:
        x = extras["c256"]
        if x["errors"]:
            miss.append(f"- 256 connections: {x['errors']} errors")
    if rss > 64:
        miss.append(f"- server RSS under load: {rss:.1f} MB, {rss - 64:.1f} MB over 64 MB")
    for ds, r in results.items():
        goal = r["pgbench"]["prepared"]["tps"]
        for name, x in r["routes"].items():
            ratio = x["rps"] / goal
            if ratio < 0.5:
                miss.append(f"- `{ds}` {name}: {ratio:.2f} × pgbench -S, {0.5 / ratio:.1f}× short of 0.5"
                            f" (and {x['rps'] / r['pgbench']['simple']['tps']:.2f} × the simple-protocol pgbench)")
            if x["p99"] > 25:
                miss.append(f"- `{ds}` {name}: p99 {x['p99']:.1f} ms, {x['p99'] - 25:.1f} ms over 25 ms")
            if x["errors"]:
                miss.append(f"- `{ds}` {name}: {x['errors']} errors")
    w("\n".join(miss) if miss else "None in this run.")
    w("\nSee docs/scaling.md for what the profile shows as the limit on this machine.")
    text = "\n".join(L) + "\n"
    if a.no_write:
        print(text)
    else:
        Path(a.out).write_text(text)
        log(f"wrote {a.out}")


# ------------------------------------------------------------------------------------------


def plan_1m(cl, tmp):
    """The feed's plan on 10,000 creators x 100 posts = 1,000,000 posts, 100,000 fans x 20
    follows: the statement the server really runs (taken from pg_stat_statements after one
    request), EXPLAINed as the prepared statement a pooled connection keeps."""
    d = dict(creators=10000, posts=100, fans=100000, follows=20, gated_pct=50)
    db = "oasis_1m"
    cl.psql("postgres", f"CREATE DATABASE {db}")
    subprocess.run([str(OASIS), "migrate"], env={"PATH": os.environ["PATH"],
                   "DATABASE_URL": cl.url(db), "OASIS_SECRET_KEY": "x" * 48,
                   "OASIS_DATA_DIR": tmp}, cwd=tmp, check=True, capture_output=True)
    t = time.time()
    # Triggers off while generating (the counter is filled set-based afterwards).
    cl.psql(db, "SET session_replication_role = replica;" + seed_sql(d, engagement=False) +
            "INSERT INTO creator_post_counts (creator_id, posts) "
            "SELECT creator_id, count(*) FROM posts GROUP BY creator_id;")
    cl.psql(db, "VACUUM ANALYZE; CREATE EXTENSION IF NOT EXISTS pg_stat_statements;")
    seeded = time.time() - t
    counts = cl.psql(db, "SELECT (SELECT count(*) FROM posts), (SELECT count(*) FROM users WHERE NOT is_creator), "
                         "(SELECT count(*) FROM follows), (SELECT count(*) FROM post_tiers)").split()
    log(f"1m: seeded in {seeded:.1f} s: {counts}")
    fan = "fan50000"
    fan_id = cl.psql(db, f"SELECT id FROM users WHERE username = '{fan}'").strip()
    # auto_explain in the server's own sessions: the plans of the statement exactly as the server
    # runs it (its prepared statement, its parameters), ANALYZE and BUFFERS included.
    cl.psql(db, f"ALTER DATABASE {db} SET session_preload_libraries = 'auto_explain';"
                f"ALTER DATABASE {db} SET auto_explain.log_min_duration = 0;"
                f"ALTER DATABASE {db} SET auto_explain.log_analyze = on;"
                f"ALTER DATABASE {db} SET auto_explain.log_buffers = on;"
                f"ALTER DATABASE {db} SET auto_explain.log_timing = on;")
    log_path = os.path.join(cl.dir, "log")
    log_start = os.path.getsize(log_path)
    data = tempfile.mkdtemp(dir=tmp)
    # One connection, so that the 7 requests reuse one prepared statement like a pooled
    # connection does.
    server = Server(cl.url(db), data, {"OASIS_DB_POOL_SIZE": "1", "OASIS_WORKERS": "1"})
    try:
        for _ in range(7):
            status, body = server.get("/feed/api/feed?page=1", f"benchtoken-{fan}")
            assert status == 200, body[:300]
        feed_count = json.loads(body)["count"]
    finally:
        server.stop()
    with open(log_path) as fh:
        fh.seek(log_start)
        entries = re.split(r"\n(?=\d{4}-\d\d-\d\d )", fh.read())
    plans = [e for e in entries if "auto_explain" not in e and "plan:" in e
             and "pin AS MATERIALIZED" in e]
    assert plans, "no auto_explain plan of the feed statement in the PostgreSQL log"
    def clean(e):
        head, _, body = e.partition("plan:")
        return head.strip() + "\n" + "\n".join(l[1:] if l.startswith("\t") else l
                                                 for l in body.splitlines()).strip()
    text = (f"# The feed's plan on a generated 1,000,000-post / 100,000-fan database\n"
            f"# written by `python3 apps/oasis-server/benches/bench.py --plan-1m` on "
            f"{time.strftime('%Y-%m-%d %H:%M UTC')}\n"
            f"# data: {counts[0]} posts (10,000 creators x 100, half gated), {counts[1]} fans, "
            f"{counts[2]} follows (20 per fan), 10% of fans members of one tier; generated set-based in "
            f"{seeded:.0f} s\n"
            f"# viewer: {fan} (id {fan_id}), page 1, 10 posts; feed count {feed_count}\n"
            f"# plans: auto_explain (ANALYZE, BUFFERS) of the server's own statement, on one pooled\n"
            f"# connection: its 1st execution and its {len(plans)}th (the plan a long-lived\n"
            f"# connection keeps using). Timings are from whatever else the machine was doing.\n\n"
            f"-- execution 1\n{clean(plans[0])}\n\n-- execution {len(plans)}\n{clean(plans[-1])}\n")
    Path(ROOT / "docs" / "feed-plan-1m.txt").write_text(text)
    log("wrote docs/feed-plan-1m.txt")


def main():
    if not OASIS.exists():
        raise SystemExit(f"{OASIS} missing: run `cargo build --release -p oasis-server` first")
    for tool in ("wrk", "psql"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} not found (apt-get install -y wrk postgresql-client)")
    tmp = tempfile.mkdtemp(prefix="oasis-bench-run-")
    cl = Cluster()
    log(f"PostgreSQL on port {cl.port} ({cl.dir})")
    results, extras = {}, {}
    if a.plan_1m:
        try:
            plan_1m(cl, tmp)
        finally:
            cl.stop()
        return
    if a.pgbouncer:
        cl.start_pgbouncer(a.pgbouncer)
        log(f"{cl.bouncer_version} in {a.pgbouncer} mode on port {cl.bouncer_port}")
    try:
        cl.psql("postgres", "CREATE DATABASE pgbench")
        as_postgres([str(PGBIN / "pgbench"), "-i", "-q", "-s", "10", "-h", "127.0.0.1", "-p",
                     str(cl.port), "-U", "postgres", "pgbench"], capture_output=True)
        for ds, d in DATASETS.items():
            if a.only and a.only not in ds:
                continue
            db = f"oasis_{ds}"
            cl.psql("postgres", f"CREATE DATABASE {db}")
            subprocess.run([str(OASIS), "migrate"], env={"PATH": os.environ["PATH"],
                           "DATABASE_URL": cl.url(db), "OASIS_SECRET_KEY": "x" * 48,
                           "OASIS_DATA_DIR": tmp}, cwd=tmp, check=True, capture_output=True)
            t = time.time()
            cl.psql(db, seed_sql(d))
            cl.psql(db, "VACUUM ANALYZE; CREATE EXTENSION IF NOT EXISTS pg_stat_statements;")
            log(f"{ds}: seeded in {time.time() - t:.1f} s")
            files = request_lists(cl, db, d, tmp)
            data = tempfile.mkdtemp(dir=tmp)
            server = Server(cl.app_url(db), data)
            try:
                sanity(server, files)
                pg = {"simple": cl.pgbench("pgbench", ["-S", "-c", "32", "-j", "2"], a.secs),
                      "prepared": cl.pgbench("pgbench", ["-S", "-M", "prepared", "-c", "32", "-j", "2"], a.secs)}
                log(f"{ds}: pgbench -S {pg['simple']['tps']:.0f} TPS simple, {pg['prepared']['tps']:.0f} prepared")
                routes = {}
                for name, (path, _) in files.items():
                    if a.routes and a.routes not in name:
                        continue
                    routes[name] = measure(cl, db, server, name, path)
                    if name == "feed" and ds == "large":
                        # The cold figure above is mostly first reads (10,000 fans in 10 s). The
                        # warm one: after a warm-up long enough for each wrk thread to pass
                        # every fan once, as on a read-mostly day when fans come back.
                        secs = math.ceil(2 * len(files[name][1]) / max(routes[name]["rps"], 1)) + 1
                        routes["feed_warm"] = measure(cl, db, server, "feed_warm", path, warmup=secs)
                if ds == "large" and extra("c256"):
                    extras["c256"] = measure(cl, db, server, "feed@256", files["feed"][0], clients=256)
                results[ds] = {"pgbench": pg, "routes": routes}
            finally:
                server.stop()
        if extra("webhooks"):
            log("webhooks…")
            extras["webhooks"] = webhook_bench(cl, tmp)
            log(f"  intake {extras['webhooks']['wrk']['rps']:.0f}/s (wrk, jobs off), "
                f"{extras['webhooks']['intake_rps']:.0f}/s while processing, pgbench insert "
                f"{extras['webhooks']['pgbench_insert_tps']:.0f} TPS")
        if extra("login"):
            log("login…")
            extras["login"] = login_bench(cl)
        if extra("sse"):
            log(f"idle streams ({a.sse_streams})…")
            extras["sse"] = sse_bench(cl)
    finally:
        if a.keep:
            log(f"cluster kept: {cl.url('oasis_large')} (stop: pg_ctl -D {cl.data} stop)")
        else:
            cl.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    cl_bouncer[0] = getattr(cl, "bouncer_version", None)
    write_report(results, extras, machine(), time.time() - RUN_START)


main()

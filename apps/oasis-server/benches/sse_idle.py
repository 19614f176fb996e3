#!/usr/bin/env python3
"""Idle live-stream memory: RSS of `oasis serve` before and after N idle
`GET /feed/api/notifications/stream` connections (goal: 10,000 streams in <= 64 MB extra).

    python3 apps/oasis-server/benches/sse_idle.py [--streams 10000] [--db postgres://...]

Needs a PostgreSQL server (DATABASE_URL-style --db; the database is dropped and recreated) and
the release binary ($OASIS_BIN or $CARGO_TARGET_DIR/release/oasis). Stdlib only. Each stream
is a raw socket whose first event (`unread_count`) has arrived, so every one is fully open; it
asks for compression as a browser does (the stream answers uncompressed).

Where the memory goes (heaptrack, 3,000 streams; reproduce with a wrapper `OASIS_BIN` that runs
`heaptrack -o /tmp/ht/oasis .../release/oasis "$@"` for `serve`, then `heaptrack_print -p 1`):
actix-http's HTTP/1 dispatcher allocates a read and a write buffer of 8 KiB each per connection
(16 KiB, fixed constants in actix-http 3.x), tokio's task cell of the connection ~2 KiB, the
stream's own channel and state ~1 KiB. See docs/scaling.md.
"""
import argparse, hashlib, json, os, resource, selectors, socket, subprocess, sys, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
OASIS = Path(os.environ.get("OASIS_BIN", TARGET / "release" / "oasis"))

p = argparse.ArgumentParser()
p.add_argument("--streams", type=int, default=10000)
p.add_argument("--users", type=int, default=2000, help="streams are spread over this many users")
p.add_argument("--db", default="postgres://postgres@127.0.0.1:5432/oasis_bench_sse")
a = p.parse_args()

soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
if hard < a.streams + 200:
    sys.exit(f"RLIMIT_NOFILE hard limit {hard} is too low for {a.streams} streams")


def psql(db_url, sql):
    out = subprocess.run(["psql", "-X", "-qtA", "-v", "ON_ERROR_STOP=1", db_url], input=sql,
                         capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"psql: {out.stderr}")
    return out.stdout


base, name = a.db.rsplit("/", 1)
psql(base + "/postgres", f"DROP DATABASE IF EXISTS {name} WITH (FORCE); CREATE DATABASE {name};")
data = tempfile.mkdtemp(prefix="oasis-sse-")
env = dict(os.environ, DATABASE_URL=a.db, OASIS_DATA_DIR=data, OASIS_SSE_MAX=str(a.streams + 10),
           OASIS_SSE_MAX_PER_USER=str(a.streams // a.users + 1), OASIS_WORKERS="2",
           OASIS_SECRET_KEY="bench-secret-key-0123456789abcdef0123456789", RUST_LOG="warn")
subprocess.run([str(OASIS), "migrate"], env=env, check=True, stdout=subprocess.DEVNULL)
tokens = [f"ssebench{i:032x}" for i in range(a.users)]
rows = ",".join(f"('sse{i}', 'sse{i}@example.com', 'S', 'B', false, true)" for i in range(a.users))
psql(a.db, f"INSERT INTO users (username, email, first_name, last_name, is_creator, email_verified) VALUES {rows};")
vals = ",".join(f"((SELECT id FROM users WHERE username = 'sse{i}'), '\\x{hashlib.sha256(t.encode()).hexdigest()}')"
                for i, t in enumerate(tokens))
psql(a.db, f"INSERT INTO auth_tokens (user_id, key_hash) VALUES {vals};")

s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
env["OASIS_BIND"] = f"127.0.0.1:{port}"
server = subprocess.Popen([str(OASIS), "serve"], env=env,
                          preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard)))


def rss_kb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


try:
    deadline = time.time() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 1).close()
            break
        except OSError:
            if time.time() > deadline:
                sys.exit("server did not start")
            time.sleep(0.2)
    # Warm up: one stream, then measure the baseline.
    def open_stream(i):
        c = socket.create_connection(("127.0.0.1", port))
        c.sendall((f"GET /feed/api/notifications/stream HTTP/1.1\r\nHost: x\r\n"
                   f"Authorization: Token {tokens[i % a.users]}\r\nAccept: text/event-stream\r\n"
                   f"Accept-Encoding: gzip, deflate, br\r\n\r\n").encode())
        c.setblocking(False)
        return c
    warm = open_stream(0)
    time.sleep(1)
    base_kb = rss_kb(server.pid)
    sel = selectors.DefaultSelector()
    socks, opened, buf = [], 0, {}
    for i in range(a.streams):
        c = open_stream(i + 1)
        socks.append(c)
        sel.register(c, selectors.EVENT_READ)
        buf[c] = b""
        # Keep at most 256 handshakes in flight.
        while len(socks) - opened > 256 or (i == a.streams - 1 and opened < a.streams):
            for key, _ in sel.select(timeout=30):
                data = key.fileobj.recv(65536)
                if not data:
                    sys.exit("a stream closed: " + buf[key.fileobj][:300].decode(errors="replace"))
                buf[key.fileobj] += data
                if b"unread_count" in buf[key.fileobj]:
                    sel.unregister(key.fileobj)
                    opened += 1
    time.sleep(2)
    peak_kb = rss_kb(server.pid)
    extra_mb = (peak_kb - base_kb) / 1024
    per_stream = (peak_kb - base_kb) * 1024 / max(opened, 1)
    print(f"idle streams: {opened}; server RSS {base_kb / 1024:.1f} MB -> {peak_kb / 1024:.1f} MB; "
          f"extra {extra_mb:.1f} MB ({per_stream:.0f} bytes a stream); "
          f"goal <= 64 MB for 10,000: {'met' if extra_mb * 10000 / max(opened, 1) <= 64 else 'NOT met'}")
    # For bench.py (`just bench`), which folds the figure into docs/benchmarks.md.
    print("RESULT " + json.dumps({"streams": opened, "base_mb": base_kb / 1024, "peak_mb": peak_kb / 1024,
                                  "extra_mb": extra_mb, "bytes_per_stream": per_stream}))
finally:
    server.terminate()
    try:
        server.wait(30)
    except subprocess.TimeoutExpired:
        server.kill()

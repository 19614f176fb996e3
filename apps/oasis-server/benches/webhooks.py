#!/usr/bin/env python3
"""Webhook intake and processing throughput against a running `oasis` (stdlib only).

Start the server with a webhook secret, e.g. (release build, fresh data dir):
    OASIS_BIND=127.0.0.1:18766 RAZORPAY_KEY_ID=rzp_test_b RAZORPAY_KEY_SECRET=ksec \
    RAZORPAY_WEBHOOK_SECRET=whsec RAZORPAY_API_BASE=http://127.0.0.1:9 RUST_LOG=warn \
    target/release/oasis
then: python3 apps/oasis-server/benches/webhooks.py --threads 8 --per-thread 500 \
          --port 18766 --secret whsec --pg-socket-dir .oasis/postgres
It posts signed, distinct `payment.captured` cheer events (loopback only), reports the intake rate
(2xx once durably stored) and, with --pg-socket-dir, polls PostgreSQL until every event is
processed and reports the end-to-end time.
"""
import argparse, hashlib, hmac, http.client, json, subprocess, threading, time

p = argparse.ArgumentParser()
p.add_argument("--threads", type=int, default=8)
p.add_argument("--per-thread", type=int, default=500)
p.add_argument("--port", type=int, default=18766)
p.add_argument("--secret", default="whsec")
p.add_argument("--pg-socket-dir")
p.add_argument("--pg-port", type=int, default=5432)
p.add_argument("--db", default="oasis")
a = p.parse_args()
secret = a.secret.encode()
run = str(int(time.time()))


def body(i):
    return json.dumps({"entity": "event", "event": "payment.captured", "contains": ["payment"],
        "created_at": 1790000000, "payload": {"payment": {"entity": {
            "id": f"pay_{run[-7:]}{i:07d}", "entity": "payment", "amount": 34800, "currency": "INR",
            "status": "captured", "order_id": f"order_{run[-7:]}{i:07d}", "invoice_id": None,
            "notes": {"type": "cheer", "creatorID": "1", "name": "B", "message": "m"},
            "created_at": 1790000000}}}}).encode()


def worker(t, out):
    c = http.client.HTTPConnection("127.0.0.1", a.port)
    ok = 0
    for k in range(a.per_thread):
        i = t * a.per_thread + k
        b = body(i)
        sig = hmac.new(secret, b, hashlib.sha256).hexdigest()
        c.request("POST", "/razorpay/webhooks/", b, {"Content-Type": "application/json",
                  "X-Razorpay-Signature": sig, "X-Razorpay-Event-Id": f"evt_{run}_{i}"})
        r = c.getresponse()
        r.read()
        ok += r.status == 200
    out.append(ok)


out = []
threads = [threading.Thread(target=worker, args=(t, out)) for t in range(a.threads)]
t0 = time.time()
for t in threads:
    t.start()
for t in threads:
    t.join()
dt = time.time() - t0
total = sum(out)
print(f"intake: {total} webhooks stored (2xx) in {dt:.2f}s = {total / dt:.0f}/s")
if a.pg_socket_dir:
    q = ["psql", "-qtA", "-h", a.pg_socket_dir, "-p", str(a.pg_port), "-U", "postgres", a.db, "-c",
         f"SELECT count(*) FROM billing_webhook_events WHERE event_id LIKE 'evt_{run}_%' AND processed_at IS NOT NULL"]
    deadline = time.time() + 300
    while time.time() < deadline:
        n = int(subprocess.check_output(q).strip() or 0)
        if n >= total:
            break
        time.sleep(0.2)
    print(f"processed: {n} of {total} within {time.time() - t0:.2f}s of the first POST")

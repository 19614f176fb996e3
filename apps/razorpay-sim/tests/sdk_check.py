"""Drives a running razorpay-sim with the official Razorpay Python SDK.

Usage: python sdk_check.py BASE_URL KEY_ID KEY_SECRET WEBHOOK_SECRET

Prints "OK <step>" per step and "ALL OK" at the end; any failure raises
(non-zero exit status). Run by tests/e2e/python_sdk.rs.
"""
import json
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, HTTPServer

import razorpay
from razorpay.errors import BadRequestError, SignatureVerificationError

base_url, key_id, key_secret, webhook_secret = sys.argv[1:5]
client = razorpay.Client(auth=(key_id, key_secret), base_url=base_url)


def ok(step):
    print("OK", step, flush=True)


def control(path, body):
    req = urllib.request.Request(
        base_url + "/_sim/" + path,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req) as resp:
        return json.loads(resp.read())


# A webhook receiver: records raw bodies and headers.
received = []
lock = threading.Lock()


class Hook(BaseHTTPRequestHandler):
    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        with lock:
            received.append(
                (
                    body.decode("utf-8"),
                    self.headers.get("X-Razorpay-Signature"),
                    self.headers.get("X-Razorpay-Event-Id"),
                )
            )
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


server = HTTPServer(("127.0.0.1", 0), Hook)
threading.Thread(target=server.serve_forever, daemon=True).start()
control("webhook_url", {"url": "http://127.0.0.1:%d/hook" % server.server_address[1]})
control("chaos", {"noncanonical_json": True})

# Plans.
plan = client.plan.create(
    {
        "period": "monthly",
        "interval": 1,
        "item": {"name": "Gold tier", "amount": 49900, "currency": "INR"},
        "notes": {"tierID": "4"},
    }
)
assert plan["id"].startswith("plan_") and len(plan["id"]) == 19, plan
assert plan["entity"] == "plan" and plan["item"]["amount"] == 49900, plan
fetched = client.plan.fetch(plan["id"])
assert fetched["id"] == plan["id"] and fetched["item"]["id"].startswith("item_"), fetched
ok("plan create/fetch")

# Subscriptions.
sub = client.subscription.create(
    {
        "plan_id": plan["id"],
        "total_count": 120,
        "customer_notify": 1,
        "notes": {"type": "subscription", "tierID": 4},
    }
)
assert sub["id"].startswith("sub_") and sub["status"] == "created", sub
assert client.subscription.fetch(sub["id"])["plan_id"] == plan["id"]
ok("subscription create/fetch")

checkout = control("checkout", {"subscription_id": sub["id"], "outcome": "success"})
assert set(checkout) == {"razorpay_payment_id", "razorpay_subscription_id", "razorpay_signature"}, checkout
assert client.utility.verify_subscription_payment_signature(dict(checkout)) is True
try:
    client.utility.verify_subscription_payment_signature(
        dict(checkout, razorpay_payment_id="pay_AAAAAAAAAAAAAA")
    )
    raise AssertionError("tampered subscription signature accepted")
except SignatureVerificationError:
    pass
ok("verify_subscription_payment_signature")

# The first charge's invoice (one per billed cycle), as reconciliation reads it.
invoices = client.invoice.all({"subscription_id": sub["id"]})
assert invoices["entity"] == "collection" and invoices["count"] == 1, invoices
inv = invoices["items"][0]
assert inv["id"].startswith("inv_") and inv["status"] == "paid", inv
assert inv["payment_id"] == checkout["razorpay_payment_id"] and inv["amount_paid"] == inv["amount"], inv
assert client.invoice.fetch(inv["id"])["subscription_id"] == sub["id"]
ok("subscription invoices")

active = client.subscription.fetch(sub["id"])
assert active["status"] == "active" and active["paid_count"] == 1, active
cancelled = client.subscription.cancel(sub["id"], {"cancel_at_cycle_end": 0})
assert cancelled["status"] == "cancelled" and cancelled["ended_at"], cancelled
try:
    client.subscription.cancel(sub["id"])
    raise AssertionError("cancelling a cancelled subscription succeeded")
except BadRequestError as e:
    assert "not cancellable" in str(e), e
ok("subscription cancel")

# Pause / resume, with Razorpay's state rules: only an active subscription pauses (an
# authenticated one is cancelled instead), only a paused one resumes, a paused one is not billed.
plan2 = client.plan.create(
    {"period": "monthly", "interval": 1, "item": {"name": "Silver", "amount": 20000, "currency": "INR"}}
)
sub2 = client.subscription.create({"plan_id": plan2["id"], "total_count": 12})
control("checkout", {"subscription_id": sub2["id"], "outcome": "success"})
try:
    client.subscription.resume(sub2["id"], {"resume_at": "now"})
    raise AssertionError("resuming an active subscription succeeded")
except BadRequestError as e:
    assert "cannot be resumed" in str(e), e
paused = client.subscription.pause(sub2["id"], {"pause_at": "now"})
assert paused["status"] == "paused" and paused["paused_at"], paused
try:
    client.subscription.pause(sub2["id"], {"pause_at": "now"})
    raise AssertionError("pausing a paused subscription succeeded")
except BadRequestError as e:
    assert "cannot be paused" in str(e), e
try:
    control("subscriptions/%s/cycle" % sub2["id"], {"outcome": "charged"})
    raise AssertionError("a paused subscription was billed")
except urllib.error.HTTPError as e:
    assert e.code == 400, e
resumed = client.subscription.resume(sub2["id"], {"resume_at": "now"})
assert resumed["status"] == "active" and resumed.get("paused_at") is None, resumed
# A future start: authorised now (authenticated), first charge at start_at.
start_at = int(time.time()) + 7 * 86400
later = client.subscription.create({"plan_id": plan2["id"], "total_count": 12, "start_at": start_at})
assert later["start_at"] == start_at and later["charge_at"] == start_at, later
control("checkout", {"subscription_id": later["id"], "outcome": "success"})
auth = client.subscription.fetch(later["id"])
assert auth["status"] == "authenticated" and auth["paid_count"] == 0, auth
gone = client.subscription.pause(later["id"], {"pause_at": "now"})
assert gone["status"] == "cancelled", gone
ok("subscription pause/resume")

# Update with schedule_change_at: now switches the plan at once, cycle_end schedules it.
plan3 = client.plan.create(
    {"period": "monthly", "interval": 1, "item": {"name": "Gold", "amount": 50000, "currency": "INR"}}
)
now_change = client.subscription.edit(sub2["id"], {"plan_id": plan3["id"], "schedule_change_at": "now"})
assert now_change["plan_id"] == plan3["id"] and now_change["has_scheduled_changes"] is False, now_change
later_change = client.subscription.edit(sub2["id"], {"plan_id": plan2["id"], "schedule_change_at": "cycle_end"})
assert later_change["plan_id"] == plan3["id"], later_change
assert later_change["has_scheduled_changes"] is True, later_change
assert later_change["change_scheduled_at"] == later_change["current_end"], later_change
try:
    client.subscription.edit(sub2["id"], {"plan_id": plan2["id"], "schedule_change_at": "tomorrow"})
    raise AssertionError("an unknown schedule_change_at was accepted")
except BadRequestError as e:
    assert "schedule_change_at" in str(e), e
ok("subscription update schedule_change_at")


def raw(method, path, body=None):
    """A request without the SDK: (status, parsed JSON body)."""
    import base64

    req = urllib.request.Request(
        base_url + path,
        data=None if body is None else json.dumps(body).encode(),
        headers={
            "Content-Type": "application/json",
            "Authorization": "Basic "
            + base64.b64encode(("%s:%s" % (key_id, key_secret)).encode()).decode(),
        },
        method=method,
    )
    try:
        with urllib.request.urlopen(req) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def half_up(numerator, denominator):
    return (2 * numerator + denominator) // (2 * denominator)


# Razorpay's documented update rules (razorpay.com/docs/payments/subscriptions/update,
# .../api/payments/subscriptions/update-subscription): `now` changes the plan at once and, for an
# upgrade, charges the difference of the remaining amounts through an invoice; no state change.
SUBSCRIPTION_KEYS = {"id", "entity", "plan_id", "customer_id", "status", "current_start",
    "current_end", "ended_at", "quantity", "notes", "charge_at", "start_at", "end_at",
    "auth_attempts", "total_count", "paid_count", "customer_notify", "created_at", "expire_by",
    "short_url", "has_scheduled_changes", "change_scheduled_at", "source", "offer_id",
    "remaining_count"}
lo = client.plan.create(
    {"period": "monthly", "interval": 1, "item": {"name": "Lo", "amount": 30000, "currency": "INR"}}
)
hi = client.plan.create(
    {"period": "monthly", "interval": 1, "item": {"name": "Hi", "amount": 60000, "currency": "INR"}}
)
upg = client.subscription.create({"plan_id": lo["id"], "total_count": 12, "notes": {"k": "v"}})
first = control("checkout", {"subscription_id": upg["id"], "outcome": "success"})
paid = client.subscription.fetch(upg["id"])
asked_at = int(time.time())
edited = client.subscription.edit(upg["id"], {"plan_id": hi["id"], "schedule_change_at": "now"})
answered_at = int(time.time()) + 1
assert SUBSCRIPTION_KEYS <= set(edited), sorted(SUBSCRIPTION_KEYS - set(edited))
assert edited["entity"] == "subscription" and edited["id"] == upg["id"], edited
assert edited["status"] == "active" and edited["plan_id"] == hi["id"], edited
assert edited["has_scheduled_changes"] is False and edited["change_scheduled_at"] is None, edited
assert (edited["paid_count"], edited["remaining_count"], edited["total_count"]) == (1, 11, 12), edited
assert (edited["current_start"], edited["current_end"]) == (paid["current_start"], paid["current_end"]), edited
assert edited["notes"] == {"k": "v"}, edited
cycle = paid["current_end"] - paid["current_start"]
ceiling = half_up(30000 * (paid["current_end"] - asked_at), cycle)
floor = half_up(30000 * (paid["current_end"] - answered_at), cycle)
invoices = client.invoice.all({"subscription_id": upg["id"]})
assert invoices["count"] == 2, invoices
proration = [i for i in invoices["items"] if i["payment_id"] != first["razorpay_payment_id"]]
assert len(proration) == 1, invoices
proration = proration[0]
assert floor <= proration["amount"] <= ceiling and proration["amount"] > 29000, (floor, ceiling, proration)
assert proration["status"] == "paid" and proration["amount_paid"] == proration["amount"], proration
assert proration["billing_end"] == paid["current_end"], proration
charge = client.payment.fetch(proration["payment_id"])
assert charge["status"] == "captured" and charge["amount"] == proration["amount"], charge
assert charge["invoice_id"] == proration["id"] and charge["currency"] == "INR", charge
# A downgrade `now` refunds through a credit note (not simulated); equal amounts move nothing.
same = client.plan.create(
    {"period": "monthly", "interval": 1, "item": {"name": "Hi2", "amount": 60000, "currency": "INR"}}
)
client.subscription.edit(upg["id"], {"plan_id": same["id"], "schedule_change_at": "now"})
assert client.invoice.all({"subscription_id": upg["id"]})["count"] == 2
client.subscription.edit(upg["id"], {"plan_id": hi["id"]})  # schedule_change_at defaults to now
# USD: a prorated difference under 50 cents is refused, the subscription left as it was.
usd_lo = client.plan.create(
    {"period": "monthly", "interval": 1, "item": {"name": "U", "amount": 1000, "currency": "USD"}}
)
usd_hi = client.plan.create(
    {"period": "monthly", "interval": 1, "item": {"name": "U+", "amount": 1040, "currency": "USD"}}
)
usd = client.subscription.create({"plan_id": usd_lo["id"], "total_count": 12})
control("checkout", {"subscription_id": usd["id"], "outcome": "success"})
try:
    client.subscription.edit(usd["id"], {"plan_id": usd_hi["id"], "schedule_change_at": "now"})
    raise AssertionError("a 40-cent prorated difference was accepted")
except BadRequestError as e:
    assert "50 cents" in str(e), e
assert client.subscription.fetch(usd["id"])["plan_id"] == usd_lo["id"]
# Only authenticated and active subscriptions can be updated.
unpaid = client.subscription.create({"plan_id": lo["id"], "total_count": 12})
try:
    client.subscription.edit(unpaid["id"], {"plan_id": hi["id"], "schedule_change_at": "now"})
    raise AssertionError("a created subscription was updated")
except BadRequestError as e:
    assert "created" in str(e), e
ok("subscription update now: prorated charge")

# `cycle_end`: a pending update (has_scheduled_changes, change_scheduled_at = current_end) that
# goes live at the renewal: the renewal bills the new plan, and remaining_count is what was asked.
later = client.subscription.edit(
    upg["id"], {"plan_id": lo["id"], "schedule_change_at": "cycle_end", "remaining_count": 5}
)
assert SUBSCRIPTION_KEYS <= set(later), later
assert later["plan_id"] == hi["id"] and later["remaining_count"] == 11, later
assert later["has_scheduled_changes"] is True and later["change_scheduled_at"] == paid["current_end"], later
pending = client.subscription.pending_update(upg["id"])
assert pending["id"] == upg["id"] and pending["plan_id"] == lo["id"], pending
assert pending["remaining_count"] == 5 and pending["has_scheduled_changes"] is True, pending
dropped = client.subscription.cancel_scheduled_changes(upg["id"])
assert dropped["plan_id"] == hi["id"] and dropped["has_scheduled_changes"] is False, dropped
try:
    client.subscription.pending_update(upg["id"])
    raise AssertionError("a cancelled pending update was still there")
except BadRequestError as e:
    assert "scheduled changes" in str(e), e
client.subscription.edit(
    upg["id"], {"plan_id": lo["id"], "schedule_change_at": "cycle_end", "remaining_count": 5}
)
renewal = control("subscriptions/%s/cycle" % upg["id"], {"outcome": "charged"})
assert renewal["payment"]["amount"] == 30000, renewal
renewed = client.subscription.fetch(upg["id"])
assert renewed["plan_id"] == lo["id"] and renewed["has_scheduled_changes"] is False, renewed
assert (renewed["paid_count"], renewed["remaining_count"], renewed["total_count"]) == (2, 4, 6), renewed
ok("subscription pending update")

# UPI and eMandate mandates cannot be updated ("subscriptions cannot be updated when payment mode
# is UPI"): BAD_REQUEST_ERROR, which the SDK raises as BadRequestError; nothing changes or is charged.
for method, mode in (("upi", "UPI"), ("netbanking", "emandate")):
    mandate = client.subscription.create({"plan_id": lo["id"], "total_count": 12})
    control("checkout", {"subscription_id": mandate["id"], "outcome": "success", "method": method})
    for when in ("now", "cycle_end"):
        try:
            client.subscription.edit(mandate["id"], {"plan_id": hi["id"], "schedule_change_at": when})
            raise AssertionError("a %s mandate was updated" % method)
        except BadRequestError as e:
            assert str(e) == "subscriptions cannot be updated when payment mode is " + mode, e
    status, body = raw("PATCH", "/v1/subscriptions/" + mandate["id"],
                       {"plan_id": hi["id"], "schedule_change_at": "now"})
    assert status == 400, (status, body)
    assert set(body) == {"error"}, body
    assert body["error"]["code"] == "BAD_REQUEST_ERROR", body
    assert body["error"]["description"] == "subscriptions cannot be updated when payment mode is " + mode, body
    after = client.subscription.fetch(mandate["id"])
    assert after["plan_id"] == lo["id"] and after["has_scheduled_changes"] is False, after
    assert client.invoice.all({"subscription_id": mandate["id"]})["count"] == 1
ok("subscription update refused for UPI and eMandate mandates")

# Orders.
order = client.order.create(
    {
        "amount": 34800,
        "currency": "INR",
        "receipt": "sdk-check-1",
        "notes": {"type": "cheer", "message": "\u20b9 for https://example.com/a"},
    }
)
assert order["id"].startswith("order_") and order["status"] == "created", order
assert client.order.fetch(order["id"])["amount_due"] == 34800
ok("order create/fetch")

checkout = control("checkout", {"order_id": order["id"], "outcome": "success", "method": "upi"})
assert set(checkout) == {"razorpay_payment_id", "razorpay_order_id", "razorpay_signature"}, checkout
assert client.utility.verify_payment_signature(dict(checkout)) is True
try:
    client.utility.verify_payment_signature(dict(checkout, razorpay_order_id="order_AAAAAAAAAAAAAA"))
    raise AssertionError("tampered order signature accepted")
except SignatureVerificationError:
    pass
ok("verify_payment_signature")

payments = client.order.payments(order["id"])
assert payments["entity"] == "collection" and payments["count"] == 1, payments
payment = client.payment.fetch(checkout["razorpay_payment_id"])
assert payment["status"] == "captured" and payment["notes"]["type"] == "cheer", payment
assert client.order.fetch(order["id"])["status"] == "paid"
ok("order payments")

# Route: a linked account, its stakeholder and route product (reviewed through the control
# API), transfers from the captured cheer payment, hold release, reversal and settlement.
account_body = {
        "email": "creator@example.org",
        "phone": "9000090000",
        "type": "route",
        "reference_id": "oasis-7",
        "legal_business_name": "Asha Rao Studio",
        "business_type": "individual",
        "contact_name": "Asha Rao",
        "profile": {
            "category": "entertainment",
            "subcategory": "creator",
            "addresses": {"registered": {"street1": "1 MG Road", "street2": "Indiranagar",
                "city": "Bengaluru", "state": "KARNATAKA", "postal_code": "560038", "country": "IN"}},
        },
}
acc = client.account.create(account_body)
assert acc["id"].startswith("acc_") and acc["type"] == "route" and acc["status"] == "created", acc
assert client.account.fetch(acc["id"])["legal_business_name"] == "Asha Rao Studio"
edited = client.account.edit(acc["id"], {"phone": "9000090001"})
assert edited["phone"] == "9000090001", edited
try:
    client.account.create(dict(account_body, reference_id="oasis-8"))
    raise AssertionError("a second account with the same email was created")
except BadRequestError as e:
    assert "already exists" in str(e), e
sth = client.stakeholder.create(acc["id"], {"name": "Asha Rao", "email": "creator@example.org"})
assert sth["id"].startswith("sth_") and sth["entity"] == "stakeholder", sth
assert client.stakeholder.edit(acc["id"], sth["id"], {"name": "Asha R."})["name"] == "Asha R."
prd = client.product.requestProductConfiguration(acc["id"], {"product_name": "route", "tnc_accepted": True})
assert prd["id"].startswith("acc_prd_") and prd["activation_status"] == "requested", prd
assert prd["requirements"], prd
prd = client.product.edit(acc["id"], prd["id"], {
    "settlements": {"account_number": "123456789012", "ifsc_code": "HDFC0001234",
                    "beneficiary_name": "Asha Rao"},
    "tnc_accepted": True,
})
assert prd["activation_status"] == "under_review" and not prd["requirements"], prd
ok("linked account, stakeholder, product configuration")

pay_id = checkout["razorpay_payment_id"]
try:
    client.payment.transfer(pay_id, {"transfers": [{"account": acc["id"], "amount": 1000, "currency": "INR"}]})
    raise AssertionError("a transfer to an account under review was made")
except BadRequestError as e:
    assert "not activated" in str(e), e
changed = control("route/products", {"account_id": acc["id"], "activation_status": "activated"})
assert changed["count"] == 1 and changed["items"][0]["activation_status"] == "activated", changed
assert client.product.fetch(acc["id"], prd["id"])["activation_status"] == "activated"
control("transfers/fail_next", {"count": 1})
failed = client.payment.transfer(pay_id, {"transfers": [
    {"account": acc["id"], "amount": 30000, "currency": "INR", "notes": {"oasis_transfer": "1"}, "on_hold": True}]})
assert failed["entity"] == "collection" and failed["items"][0]["status"] == "failed", failed
made = client.payment.transfer(pay_id, {"transfers": [
    {"account": acc["id"], "amount": 30000, "currency": "INR", "notes": {"oasis_transfer": "2"}, "on_hold": True}]})
trf = made["items"][0]
assert trf["id"].startswith("trf_") and trf["status"] == "processed" and trf["on_hold"] is True, trf
assert trf["source"] == pay_id and trf["recipient"] == acc["id"] and trf["notes"]["oasis_transfer"] == "2", trf
listed = client.payment.transfers(pay_id)
assert listed["count"] == 2 and {t["status"] for t in listed["items"]} == {"failed", "processed"}, listed
try:
    client.payment.transfer(pay_id, {"transfers": [{"account": acc["id"], "amount": 30000, "currency": "INR"}]})
    raise AssertionError("transfers above the captured amount were made")
except BadRequestError as e:
    assert "greater than" in str(e), e
assert client.transfer.fetch(trf["id"])["amount"] == 30000
none = control("settlements/run", {})
assert none["count"] == 0, "a held transfer was settled: %r" % none
released = client.transfer.edit(trf["id"], {"on_hold": False})
assert released["on_hold"] is False, released
settled = control("settlements/run", {})
assert settled["count"] == 1 and settled["items"][0]["utr"], settled
setl = settled["items"][0]
assert client.settlement.fetch(setl["id"])["utr"] == setl["utr"]
assert client.transfer.fetch(trf["id"])["recipient_settlement_id"] == setl["id"]
by_setl = client.transfer.all({"recipient_settlement_id": setl["id"]})
assert [t["id"] for t in by_setl["items"]] == [trf["id"]], by_setl
rev = client.transfer.reverse(trf["id"], {"amount": 30000, "notes": {"oasis_reversal": "1"}})
assert rev["id"].startswith("rvrsl_") and rev["transfer_id"] == trf["id"] and rev["amount"] == 30000, rev
assert client.transfer.reversals(trf["id"])["count"] == 1
assert client.transfer.fetch(trf["id"])["status"] == "reversed"
ok("transfers, hold release, settlement, reversal")

# Unknown id: Razorpay answers 400 BAD_REQUEST_ERROR, the SDK raises BadRequestError.
for call in (
    lambda: client.order.fetch("order_AAAAAAAAAAAAAA"),
    lambda: client.subscription.fetch("sub_AAAAAAAAAAAAAA"),
    lambda: client.plan.fetch("plan_AAAAAAAAAAAAAA"),
    lambda: client.invoice.fetch("inv_AAAAAAAAAAAAAA"),
):
    try:
        call()
        raise AssertionError("unknown id did not raise")
    except BadRequestError as e:
        assert str(e) == "The id provided does not exist", e
ok("BadRequestError")

# Webhooks: 5 for the subscription checkout, 1 cancel, 3 for the order checkout.
deadline = time.time() + 60
while time.time() < deadline:
    with lock:
        if len(received) >= 9:
            break
    time.sleep(0.05)
with lock:
    got = list(received)
assert len(got) >= 9, [json.loads(b)["event"] for b, _, _ in got]
events = set()
for body, signature, event_id in got:
    assert event_id, "missing X-Razorpay-Event-Id"
    assert client.utility.verify_webhook_signature(body, signature, webhook_secret) is True
    try:
        client.utility.verify_webhook_signature(body, signature, "not-the-secret")
        raise AssertionError("wrong webhook secret accepted")
    except SignatureVerificationError:
        pass
    events.add(json.loads(body)["event"])
assert {"subscription.authenticated", "subscription.activated", "subscription.charged",
        "subscription.cancelled", "payment.authorized", "payment.captured", "order.paid"} <= events, events
assert any("\\/" in body for body, _, _ in got), "expected non-canonical bodies"
assert any("\\u20b9" in body for body, _, _ in got), "expected \\u20b9 in a body"
ok("verify_webhook_signature")

route_events = {"product.route.under_review", "product.route.activated", "transfer.processed",
                "transfer.failed", "settlement.processed"}
deadline = time.time() + 60
while time.time() < deadline:
    with lock:
        seen = {json.loads(b)["event"] for b, _, _ in received}
    if route_events <= seen:
        break
    time.sleep(0.05)
assert route_events <= seen, seen
with lock:
    settlement_hooks = [json.loads(b) for b, _, _ in received if json.loads(b)["event"] == "settlement.processed"]
assert settlement_hooks[0]["payload"]["settlement"]["entity"]["utr"] == setl["utr"], settlement_hooks
ok("route webhooks")

# One card number keeps one card_id (as a saved card does) and a UPI mandate shows its UPI ID,
# on the mandate's authorisation payment as the SDK fetches it: what Oasis keys its one trial
# per card and UPI ID on.
def authorised_payment(extra):
    s = client.subscription.create({"plan_id": plan2["id"], "total_count": 12,
                                    "start_at": int(time.time()) + 7 * 86400})
    c = control("checkout", dict({"subscription_id": s["id"], "outcome": "success"}, **extra))
    return client.payment.fetch(c["razorpay_payment_id"])


a1 = authorised_payment({"card": "4111 1111 1111 1111"})
a2 = authorised_payment({"card": "4111111111111111"})
b1 = authorised_payment({"card": "5555 5555 5555 4444"})
assert a1["method"] == "card" and a1["card_id"].startswith("card_"), a1
assert a1["card_id"] == a2["card_id"] != b1["card_id"], (a1, a2, b1)
assert a1["invoice_id"] is None and a1["status"] == "refunded", a1
u1 = authorised_payment({"method": "upi", "vpa": "fan@okaxis"})
assert u1["method"] == "upi" and u1["vpa"] == "fan@okaxis" and u1["card_id"] is None, u1
ok("mandate instruments: one card_id per card, the UPI ID")

server.shutdown()
print("ALL OK", flush=True)

//! The `/_sim` control API: plays the customer and the passage of time.

use crate::api::{apply_change, cancel_now, cycle_secs, mark_captured, settle_order};
use crate::input::{ApiError, Input};
use crate::state::{alnum, check_id, new_id, now, OrderRec, State, SubRec};
use crate::webhooks::{Chaos, Emitter};
use crate::Simulator;
use actix_web::{http::header, HttpRequest, HttpResponse};
use rand::Rng;
use razorpay::{
    Invoice, InvoiceStatus, Notes, Order, OrderStatus, Payment, PaymentStatus, Refund,
    RefundStatus, SubscriptionStatus,
};
use serde_json::{json, Value};

type Res = Result<Value, ApiError>;

/// Entry point for every request under `/_sim`.
pub(crate) fn handle(sim: &Simulator, req: &HttpRequest, body: &[u8]) -> HttpResponse {
    let tail = req.match_info().unprocessed().to_owned();
    let segs: Vec<&str> = tail.split('/').filter(|s| !s.is_empty()).collect();
    let method = req.method().as_str().to_ascii_uppercase();
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let input = || Input::parse(content_type, body);
    let res = match (method.as_str(), segs.as_slice()) {
        ("GET", ["health"]) => Ok(json!({"status": "ok"})),
        ("POST", ["checkout"]) => input().and_then(|i| checkout(sim, i)),
        ("POST", ["subscriptions", id, "cycle"]) => input().and_then(|i| cycle(sim, id, i)),
        ("POST", ["subscriptions", id, "expire"]) => expire(sim, id),
        ("POST", ["route", "products"]) => {
            input().and_then(|i| crate::route::set_product_status(sim, i))
        }
        ("POST", ["transfers", "fail_next"]) => {
            input().and_then(|i| crate::route::fail_next(sim, i))
        }
        ("POST", ["transfers", "drop_next_answer"]) => {
            input().and_then(|i| crate::route::drop_next_answer(sim, i))
        }
        ("POST", ["settlements", "run"]) => {
            input().and_then(|i| crate::route::run_settlements(sim, i))
        }
        ("POST", ["payments", id, "dispute"]) => {
            input().and_then(|i| crate::route::dispute(sim, id, i))
        }
        ("GET", ["webhooks"]) => Ok(webhook_log(sim)),
        ("POST", ["webhooks", "redeliver"]) => input().and_then(|i| redeliver(sim, i)),
        ("POST", ["webhooks", "drop_next"]) => input().and_then(|i| drop_next(sim, i)),
        ("GET", ["chaos"]) => {
            Ok(serde_json::to_value(&*sim.shared.lock_chaos()).unwrap_or_default())
        }
        ("POST", ["chaos"]) => set_chaos(sim, body),
        ("POST", ["reset"]) => Ok(reset(sim)),
        ("GET", ["webhook_url"]) => Ok(json!({ "url": sim.shared.webhook_url() })),
        ("POST", ["webhook_url"]) => input().and_then(|i| {
            i.only(&["url"])?;
            let url = i.req_str("url")?;
            sim.set_webhook_url(url.clone());
            Ok(json!({ "url": url }))
        }),
        _ => Err(ApiError::unknown_url()),
    };
    match res {
        Ok(v) => HttpResponse::Ok().json(v),
        Err(e) => e.response(),
    }
}

fn digits(n: usize) -> String {
    let mut rng = rand::thread_rng();
    (0..n)
        .map(|_| char::from(b'0' + rng.gen_range(0..10u8)))
        .collect()
}

const METHODS: [&str; 5] = ["card", "netbanking", "wallet", "emi", "upi"];

/// A new payment in `created` status with method-specific details filled in
/// (the caller sets notes, order, invoice and customer).
fn new_payment(amount: i64, currency: &str, method: &str, success: bool) -> Payment {
    let mut p = Payment {
        id: new_id("pay"),
        entity: "payment".into(),
        amount,
        currency: currency.to_owned(),
        status: PaymentStatus::Created,
        order_id: None,
        invoice_id: None,
        international: false,
        method: Some(method.to_owned()),
        amount_refunded: 0,
        refund_status: None,
        captured: false,
        description: None,
        card_id: None,
        bank: None,
        wallet: None,
        vpa: None,
        email: Some("void@razorpay.com".into()),
        contact: Some("+919000090000".into()),
        customer_id: None,
        notes: Notes::new(),
        fee: None,
        tax: None,
        error_code: None,
        error_description: None,
        error_source: None,
        error_step: None,
        error_reason: None,
        acquirer_data: json!({}),
        created_at: now(),
    };
    match method {
        "card" | "emi" => {
            p.card_id = Some(new_id("card"));
            p.acquirer_data = json!({ "auth_code": digits(6) });
        }
        "netbanking" => {
            p.bank = Some("HDFC".into());
            p.acquirer_data = json!({ "bank_transaction_id": digits(7) });
        }
        "wallet" => {
            p.wallet = Some("freecharge".into());
            p.acquirer_data = json!({ "transaction_id": null });
        }
        _ => {
            p.vpa = Some(
                if success {
                    "success@razorpay"
                } else {
                    "failure@razorpay"
                }
                .into(),
            );
            p.acquirer_data = json!({
                "rrn": digits(12),
                "upi_transaction_id": alnum(32).to_uppercase(),
            });
        }
    }
    p
}

fn fail(p: &mut Payment) {
    p.status = PaymentStatus::Failed;
    p.error_code = Some("BAD_REQUEST_ERROR".into());
    p.error_description = Some("Payment failed because the customer's bank declined it.".into());
    p.error_source = Some("bank".into());
    p.error_step = Some("payment_authorization".into());
    p.error_reason = Some("payment_failed".into());
}

/// What Checkout hands the frontend when a payment fails.
fn checkout_error(p: &Payment, key: &str, id: &str) -> Value {
    json!({
        "error": {
            "code": "BAD_REQUEST_ERROR",
            "description": p.error_description,
            "source": p.error_source,
            "step": p.error_step,
            "reason": p.error_reason,
            "metadata": { "payment_id": p.id, key: id },
        }
    })
}

fn checkout(sim: &Simulator, input: Input) -> Res {
    input.only(&[
        "order_id",
        "subscription_id",
        "outcome",
        "method",
        "amount",
        "currency",
        "card",
        "vpa",
    ])?;
    // What the fan paid with: a card number (one card number keeps one `card_id`) or a UPI ID.
    let paid_with = PaidWith {
        card: input.str("card")?,
        vpa: input.str("vpa")?,
    };
    // A payment for another amount or currency than its order asked (what a tampered or
    // misconfigured Checkout produces): orders only.
    let amount = input.int("amount")?;
    let currency = input.str("currency")?;
    let success = match input.str("outcome")?.as_deref() {
        None | Some("success") => true,
        Some("failure") => false,
        Some(_) => {
            return Err(ApiError::validation(
                "outcome must be success or failure",
                Some("outcome"),
            ))
        }
    };
    let method = input.str("method")?.unwrap_or_else(|| "card".into());
    if !METHODS.contains(&method.as_str()) {
        return Err(ApiError::validation(
            "method must be one of card, netbanking, wallet, emi, upi",
            Some("method"),
        ));
    }
    let paid_as = Tamper { amount, currency };
    match (input.str("order_id")?, input.str("subscription_id")?) {
        (Some(o), None) => checkout_order(sim, &o, success, &method, paid_as, &paid_with),
        (None, Some(_)) if paid_as.amount.is_some() || paid_as.currency.is_some() => {
            Err(ApiError::validation(
                "amount and currency can only be overridden for an order",
                Some("amount"),
            ))
        }
        (None, Some(s)) => checkout_subscription(sim, &s, success, &method, &paid_with),
        _ => Err(ApiError::validation(
            "exactly one of order_id and subscription_id is required",
            Some("order_id"),
        )),
    }
}

/// The instrument a Checkout payment is made with (`None`: a new card, or the simulator's
/// test UPI ID).
#[derive(Clone, Default)]
struct PaidWith {
    card: Option<String>,
    vpa: Option<String>,
}

impl PaidWith {
    /// Sets the payment's `card_id` (card and EMI) or `vpa` (UPI) from what was paid with.
    fn apply(&self, st: &mut State, p: &mut Payment) {
        match p.method.as_deref() {
            Some("card" | "emi") => {
                if let Some(number) = self.card.as_ref().filter(|c| !c.trim().is_empty()) {
                    let digits: String = number.chars().filter(char::is_ascii_digit).collect();
                    let id = st
                        .cards
                        .entry(digits)
                        .or_insert_with(|| new_id("card"))
                        .clone();
                    p.card_id = Some(id);
                }
            }
            Some("upi") => {
                if let Some(vpa) = self.vpa.as_ref().filter(|v| !v.trim().is_empty()) {
                    p.vpa = Some(vpa.trim().to_owned());
                }
            }
            _ => {}
        }
    }
}

/// Overrides of what a Checkout payment pays (`None`: what the order asks).
#[derive(Clone, Default)]
struct Tamper {
    amount: Option<i64>,
    currency: Option<String>,
}

fn checkout_order(
    sim: &Simulator,
    order_id: &str,
    success: bool,
    method: &str,
    paid_as: Tamper,
    paid_with: &PaidWith,
) -> Res {
    let secret = sim.config().key_secret.clone();
    sim.mutate(|st, em| {
        let rec = st.order_mut(order_id).map_err(|e| ApiError {
            field: Some("order_id".into()),
            ..e
        })?;
        if rec.order.status == OrderStatus::Paid {
            return Err(ApiError::state("Order has already been paid", "order_id"));
        }
        let manual = rec.manual_capture;
        rec.order.attempts += 1;
        rec.order.status = OrderStatus::Attempted;
        let mut p = new_payment(
            paid_as.amount.unwrap_or(rec.order.amount_due),
            paid_as.currency.as_deref().unwrap_or(&rec.order.currency),
            method,
            success,
        );
        p.notes = rec.order.notes.clone();
        p.order_id = Some(rec.order.id.clone());
        paid_with.apply(st, &mut p);
        if !success {
            fail(&mut p);
            em.pay("payment.failed", &p);
            st.payments.push(p.clone());
            return Ok(checkout_error(&p, "order_id", order_id));
        }
        p.status = PaymentStatus::Authorized;
        em.pay("payment.authorized", &p);
        if !manual {
            mark_captured(&mut p);
            em.pay("payment.captured", &p);
            settle_order(st, &p, em);
        }
        st.payments.push(p.clone());
        Ok(json!({
            "razorpay_payment_id": p.id,
            "razorpay_order_id": order_id,
            "razorpay_signature": razorpay::sign_order(order_id, &p.id, &secret),
        }))
    })
}

fn sub_index(st: &State, id: &str) -> Result<usize, ApiError> {
    check_id(id, "sub")?;
    st.subscriptions
        .iter()
        .position(|r| r.sub.id == id)
        .ok_or_else(ApiError::not_found)
}

/// How a subscription payment is billed.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Billing {
    /// A cycle's charge: through the cycle's invoice (the open one of a retried cycle, else a
    /// newly issued one) and its order.
    Cycle,
    /// The token authorisation of a future-start subscription: an order of its own, no invoice.
    Authorisation,
}

/// The subscription's open (issued, unpaid) invoice, or a newly issued one for the next cycle:
/// `(order id, invoice id)`.
fn open_invoice(st: &mut State, idx: usize, amount: i64, currency: &str) -> (String, String) {
    let sub = st.subscriptions[idx].sub.clone();
    if let Some(inv) = st.invoices.iter().find(|i| {
        i.subscription_id.as_deref() == Some(sub.id.as_str()) && i.status == InvoiceStatus::Issued
    }) {
        let order_id = inv.order_id.clone().unwrap_or_default();
        if let Some(o) = st.orders.iter_mut().find(|o| o.order.id == order_id) {
            o.order.attempts += 1;
        }
        return (order_id, inv.id.clone());
    }
    let plan = st.plans.iter().find(|p| p.id == sub.plan_id).cloned();
    let cycle = plan.as_ref().map(cycle_secs).unwrap_or(30 * 86_400);
    let start = sub.current_end.unwrap_or_else(now);
    issue_invoice(st, idx, amount, currency, start, start + cycle)
}

/// Issues an invoice of the subscription (and its order) for `amount`, billing
/// `start..end`: `(order id, invoice id)`.
fn issue_invoice(
    st: &mut State,
    idx: usize,
    amount: i64,
    currency: &str,
    start: i64,
    end: i64,
) -> (String, String) {
    let sub = st.subscriptions[idx].sub.clone();
    let plan = st.plans.iter().find(|p| p.id == sub.plan_id).cloned();
    let t = now();
    let order = Order {
        id: new_id("order"),
        entity: "order".into(),
        amount,
        amount_paid: 0,
        amount_due: amount,
        currency: currency.to_owned(),
        receipt: None,
        offer_id: None,
        status: OrderStatus::Attempted,
        attempts: 1,
        notes: sub.notes.clone(),
        created_at: t,
    };
    let item_name = plan
        .as_ref()
        .map(|p| p.item.name.clone())
        .unwrap_or_default();
    let invoice = Invoice {
        id: new_id("inv"),
        entity: "invoice".into(),
        invoice_type: Some("invoice".into()),
        receipt: None,
        invoice_number: None,
        customer_id: sub.customer_id.clone(),
        order_id: Some(order.id.clone()),
        subscription_id: Some(sub.id.clone()),
        payment_id: None,
        status: InvoiceStatus::Issued,
        line_items: json!([{
            "id": new_id("li"),
            "item_id": null,
            "name": item_name,
            "description": null,
            "amount": amount,
            "unit_amount": amount,
            "gross_amount": amount,
            "tax_amount": 0,
            "taxable_amount": amount,
            "net_amount": amount,
            "currency": currency,
            "type": "plan",
            "tax_inclusive": false,
            "quantity": 1,
            "taxes": [],
        }]),
        amount,
        amount_paid: 0,
        amount_due: amount,
        gross_amount: Some(amount),
        tax_amount: Some(0),
        currency: currency.to_owned(),
        currency_symbol: Some(if currency == "INR" { "₹" } else { currency }.to_owned()),
        description: None,
        notes: Notes::new(),
        short_url: Some(format!("https://rzp.io/i/{}", alnum(9))),
        billing_start: Some(start),
        billing_end: Some(end),
        date: Some(t),
        issued_at: Some(t),
        paid_at: None,
        cancelled_at: None,
        expired_at: None,
        expire_by: None,
        partial_payment: false,
        created_at: t,
    };
    let ids = (order.id.clone(), invoice.id.clone());
    st.orders.push(OrderRec {
        order,
        manual_capture: false,
    });
    st.invoices.push(invoice);
    ids
}

/// Creates a payment for a subscription charge (on its cycle's invoice and order, or on an
/// order of its own for a token authorisation).
fn charge_payment(
    st: &mut State,
    idx: usize,
    amount: i64,
    method: &str,
    success: bool,
    billing: Billing,
) -> Payment {
    let sub = st.subscriptions[idx].sub.clone();
    let currency = st
        .plans
        .iter()
        .find(|p| p.id == sub.plan_id)
        .map(|p| p.item.currency.clone())
        .unwrap_or_else(|| "INR".into());
    let (order_id, invoice_id) = match billing {
        Billing::Cycle => {
            let (o, i) = open_invoice(st, idx, amount, &currency);
            (o, Some(i))
        }
        Billing::Authorisation => {
            let order = Order {
                id: new_id("order"),
                entity: "order".into(),
                amount,
                amount_paid: 0,
                amount_due: amount,
                currency: currency.clone(),
                receipt: None,
                offer_id: None,
                status: OrderStatus::Attempted,
                attempts: 1,
                notes: sub.notes.clone(),
                created_at: now(),
            };
            let id = order.id.clone();
            st.orders.push(OrderRec {
                order,
                manual_capture: false,
            });
            (id, None)
        }
    };
    let mut p = new_payment(amount, &currency, method, success);
    p.notes = sub.notes.clone();
    p.order_id = Some(order_id);
    p.invoice_id = invoice_id;
    p.customer_id = sub.customer_id.clone();
    mandate_instrument(&st.subscriptions[idx], &mut p);
    p
}

/// A subscription's payments are made with its mandate's card or UPI ID.
fn mandate_instrument(rec: &SubRec, p: &mut Payment) {
    match p.method.as_deref() {
        Some("card" | "emi") if rec.card_id.is_some() => p.card_id = rec.card_id.clone(),
        Some("upi") if rec.vpa.is_some() => p.vpa = rec.vpa.clone(),
        _ => {}
    }
}

/// Bills one cycle successfully: payment authorized+captured, counters and
/// period advanced, `subscription.activated` (when `activate`), `subscription.charged`,
/// and `subscription.completed` after the last cycle.
fn bill_success(
    st: &mut State,
    idx: usize,
    amount: i64,
    method: &str,
    activate: bool,
    em: &mut Emitter,
) -> Payment {
    let mut p = charge_payment(st, idx, amount, method, true, Billing::Cycle);
    p.status = PaymentStatus::Authorized;
    em.pay("payment.authorized", &p);
    mark_captured(&mut p);
    em.pay("payment.captured", &p);
    // The invoice's order is settled without `order.paid`: subscription
    // charges are announced by `subscription.charged`.
    settle_order(st, &p, &mut Emitter::default());
    if let Some(inv) = st
        .invoices
        .iter_mut()
        .find(|i| Some(&i.id) == p.invoice_id.as_ref())
    {
        inv.status = InvoiceStatus::Paid;
        inv.payment_id = Some(p.id.clone());
        inv.amount_paid = p.amount;
        inv.amount_due = (inv.amount - p.amount).max(0);
        inv.paid_at = Some(now());
    }
    st.payments.push(p.clone());
    let cycle = {
        let plan_id = &st.subscriptions[idx].sub.plan_id;
        st.plans
            .iter()
            .find(|pl| &pl.id == plan_id)
            .map(cycle_secs)
            .unwrap_or(30 * 86_400)
    };
    let t = now();
    let sub = &mut st.subscriptions[idx].sub;
    let start = sub.current_end.unwrap_or(t);
    sub.current_start = Some(start);
    sub.current_end = Some(start + cycle);
    sub.charge_at = Some(start + cycle);
    sub.paid_count += 1;
    sub.remaining_count = Some((sub.total_count - sub.paid_count).max(0));
    sub.status = SubscriptionStatus::Active;
    if activate {
        em.sub("subscription.activated", sub);
    }
    let done = sub.remaining_count == Some(0);
    if done {
        sub.status = SubscriptionStatus::Completed;
        sub.ended_at = Some(t);
        sub.charge_at = None;
    }
    em.sub_pay("subscription.charged", sub, &p);
    if done {
        em.sub_pay("subscription.completed", sub, &p);
    }
    p
}

/// Charges the prorated difference of an immediate upgrade (`PATCH … schedule_change_at:
/// now`): an invoice for the rest of the current cycle, paid at once by a captured payment
/// (`payment.authorized`, `payment.captured`, `invoice.paid`). The period and the paid count do
/// not move: it is not a cycle's charge.
pub(crate) fn charge_proration(st: &mut State, idx: usize, amount: i64, em: &mut Emitter) {
    let sub = st.subscriptions[idx].sub.clone();
    let currency = st
        .plans
        .iter()
        .find(|p| p.id == sub.plan_id)
        .map(|p| p.item.currency.clone())
        .unwrap_or_else(|| "INR".into());
    let t = now();
    let (order_id, invoice_id) =
        issue_invoice(st, idx, amount, &currency, t, sub.current_end.unwrap_or(t));
    let method = st.subscriptions[idx]
        .sub
        .payment_method
        .clone()
        .unwrap_or_else(|| "card".into());
    let mut p = new_payment(amount, &currency, &method, true);
    p.notes = sub.notes.clone();
    p.order_id = Some(order_id);
    p.invoice_id = Some(invoice_id.clone());
    p.customer_id = sub.customer_id.clone();
    mandate_instrument(&st.subscriptions[idx], &mut p);
    p.status = PaymentStatus::Authorized;
    em.pay("payment.authorized", &p);
    mark_captured(&mut p);
    em.pay("payment.captured", &p);
    settle_order(st, &p, &mut Emitter::default());
    if let Some(inv) = st.invoices.iter_mut().find(|i| i.id == invoice_id) {
        inv.status = InvoiceStatus::Paid;
        inv.payment_id = Some(p.id.clone());
        inv.amount_paid = p.amount;
        inv.amount_due = 0;
        inv.paid_at = Some(t);
    }
    st.payments.push(p);
}

/// The subscription entity's `payment_method` for a Checkout method.
fn mandate_method(method: &str) -> &'static str {
    match method {
        "netbanking" => "emandate",
        "upi" => "upi",
        "wallet" => "wallet",
        _ => "card",
    }
}

fn checkout_subscription(
    sim: &Simulator,
    sub_id: &str,
    success: bool,
    method: &str,
    paid_with: &PaidWith,
) -> Res {
    let secret = sim.config().key_secret.clone();
    sim.mutate(|st, em| {
        let idx = sub_index(st, sub_id).map_err(|e| ApiError {
            field: Some("subscription_id".into()),
            ..e
        })?;
        let rec = &mut st.subscriptions[idx];
        if rec.sub.status != SubscriptionStatus::Created {
            return Err(ApiError::state(
                format!(
                    "Subscription cannot be authorised in {} status.",
                    rec.sub.status
                ),
                "subscription_id",
            ));
        }
        rec.sub.auth_attempts += 1;
        let plan_amount = st
            .plans
            .iter()
            .find(|p| p.id == st.subscriptions[idx].sub.plan_id)
            .map(|p| p.item.amount)
            .unwrap_or(0);
        let rec = &st.subscriptions[idx];
        let first_amount = plan_amount * rec.sub.quantity + rec.addons_amount;
        let immediate = rec.immediate;
        // The mandate's instrument: what was paid with (a new card when no number is given).
        let mut probe = new_payment(0, "INR", method, success);
        paid_with.apply(st, &mut probe);
        st.subscriptions[idx].card_id = probe.card_id;
        st.subscriptions[idx].vpa = probe.vpa;
        if !success {
            let mut p = charge_payment(st, idx, first_amount, method, false, Billing::Cycle);
            fail(&mut p);
            em.pay("payment.failed", &p);
            st.payments.push(p.clone());
            return Ok(checkout_error(&p, "subscription_id", sub_id));
        }
        st.subscriptions[idx].sub.customer_id = Some(new_id("cust"));
        st.subscriptions[idx].sub.payment_method = Some(mandate_method(method).to_owned());
        let payment = if immediate {
            // The authorisation payment is the first charge.
            st.subscriptions[idx].sub.status = SubscriptionStatus::Authenticated;
            em.sub("subscription.authenticated", &st.subscriptions[idx].sub);
            bill_success(st, idx, first_amount, method, true, em)
        } else {
            // Future start: a token authorisation payment, refunded at once;
            // the first charge happens at start_at (`/_sim/.../cycle`).
            let mut p = charge_payment(st, idx, 100, method, true, Billing::Authorisation);
            mark_captured(&mut p);
            p.amount_refunded = p.amount;
            p.refund_status = Some("full".into());
            p.status = PaymentStatus::Refunded;
            if let Some(oid) = &p.order_id {
                if let Some(o) = st.orders.iter_mut().find(|o| &o.order.id == oid) {
                    o.order.amount_paid = p.amount;
                    o.order.amount_due = 0;
                    o.order.status = OrderStatus::Paid;
                }
            }
            st.refunds.push(Refund {
                id: new_id("rfnd"),
                entity: "refund".into(),
                amount: p.amount,
                currency: p.currency.clone(),
                payment_id: p.id.clone(),
                notes: Notes::new(),
                receipt: None,
                acquirer_data: json!({ "arn": null }),
                created_at: now(),
                batch_id: None,
                status: RefundStatus::Processed,
                speed_processed: Some("normal".into()),
                speed_requested: Some("normal".into()),
            });
            st.payments.push(p.clone());
            st.subscriptions[idx].sub.status = SubscriptionStatus::Authenticated;
            em.sub("subscription.authenticated", &st.subscriptions[idx].sub);
            p
        };
        Ok(json!({
            "razorpay_payment_id": payment.id,
            "razorpay_subscription_id": sub_id,
            "razorpay_signature": razorpay::sign_subscription(&payment.id, sub_id, &secret),
        }))
    })
}

fn cycle(sim: &Simulator, sub_id: &str, input: Input) -> Res {
    input.only(&["outcome", "method"])?;
    let outcome = input.str("outcome")?.unwrap_or_else(|| "charged".into());
    if !["charged", "pending", "halted"].contains(&outcome.as_str()) {
        return Err(ApiError::validation(
            "outcome must be charged, pending or halted",
            Some("outcome"),
        ));
    }
    let method = input.str("method")?.unwrap_or_else(|| "card".into());
    sim.mutate(|st, em| {
        let idx = sub_index(st, sub_id)?;
        let status = st.subscriptions[idx].sub.status.clone();
        use SubscriptionStatus as S;
        let allowed = match outcome.as_str() {
            "charged" => matches!(
                status,
                S::Active | S::Authenticated | S::Pending | S::Halted
            ),
            "pending" => matches!(status, S::Active | S::Authenticated | S::Pending),
            _ => matches!(status, S::Active | S::Authenticated | S::Pending),
        };
        if !allowed {
            return Err(ApiError::state(
                format!("Subscription cannot be billed ({outcome}) in {status} status."),
                "status",
            ));
        }
        // A cancellation requested for the cycle end takes effect instead of billing.
        if st.subscriptions[idx].cancel_at_cycle_end {
            cancel_now(&mut st.subscriptions[idx], em);
            return Ok(json!({ "subscription": st.subscriptions[idx].sub, "payment": null }));
        }
        if let Some(change) = st.subscriptions[idx].scheduled.clone() {
            apply_change(st, idx, &change);
            em.sub("subscription.updated", &st.subscriptions[idx].sub);
        }
        let amount = {
            let sub = &st.subscriptions[idx].sub;
            st.plans
                .iter()
                .find(|p| p.id == sub.plan_id)
                .map(|p| p.item.amount)
                .unwrap_or(0)
                * sub.quantity
                + if sub.paid_count == 0 {
                    st.subscriptions[idx].addons_amount
                } else {
                    0
                }
        };
        let payment = if outcome == "charged" {
            let activate = status != S::Active;
            bill_success(st, idx, amount, &method, activate, em)
        } else {
            let mut p = charge_payment(st, idx, amount, &method, false, Billing::Cycle);
            fail(&mut p);
            em.pay("payment.failed", &p);
            st.payments.push(p.clone());
            let sub = &mut st.subscriptions[idx].sub;
            if outcome == "pending" {
                sub.status = S::Pending;
                sub.charge_at = Some(now() + 86_400);
                em.sub("subscription.pending", sub);
            } else {
                sub.status = S::Halted;
                sub.charge_at = None;
                em.sub("subscription.halted", sub);
            }
            p
        };
        Ok(json!({ "subscription": st.subscriptions[idx].sub, "payment": payment }))
    })
}

fn expire(sim: &Simulator, sub_id: &str) -> Res {
    sim.mutate(|st, _| {
        let idx = sub_index(st, sub_id)?;
        let sub = &mut st.subscriptions[idx].sub;
        if sub.status != SubscriptionStatus::Created {
            return Err(ApiError::state(
                format!(
                    "Only created subscriptions expire; this one is {}.",
                    sub.status
                ),
                "status",
            ));
        }
        sub.status = SubscriptionStatus::Expired;
        sub.ended_at = Some(now());
        sub.charge_at = None;
        Ok(json!(sub))
    })
}

fn webhook_log(sim: &Simulator) -> Value {
    sim.read(|st| {
        let items: Vec<Value> = st
            .events
            .iter()
            .map(|e| {
                json!({
                    "event_id": e.id,
                    "event": e.event,
                    "created_at": e.created_at,
                    "attempts": e.attempts,
                    "deliveries": e.deliveries,
                    "last_status": e.last_status,
                    "last_error": e.last_error,
                    "delivered": e.delivered,
                    "dropped": e.dropped,
                    "noncanonical": e.noncanonical,
                    "body": e.body,
                })
            })
            .collect();
        json!({ "entity": "collection", "count": items.len(), "items": items })
    })
}

fn redeliver(sim: &Simulator, input: Input) -> Res {
    input.only(&["event_id"])?;
    let id = input.req_str("event_id")?;
    let found = sim.read(|st| st.events.iter().any(|e| e.id == id));
    if !found {
        return Err(ApiError::not_found());
    }
    sim.enqueue(vec![id.clone()]);
    Ok(json!({ "event_id": id, "queued": true }))
}

fn drop_next(sim: &Simulator, input: Input) -> Res {
    input.only(&["count"])?;
    let count = input.int("count")?.unwrap_or(1);
    if count < 0 {
        return Err(ApiError::validation("count must be >= 0", Some("count")));
    }
    let mut chaos = sim.shared.lock_chaos();
    chaos.drop_next = u32::try_from(count).unwrap_or(u32::MAX);
    Ok(json!({ "drop_next": chaos.drop_next }))
}

fn set_chaos(sim: &Simulator, body: &[u8]) -> Res {
    let new: Chaos = if body.iter().all(u8::is_ascii_whitespace) {
        Chaos::default()
    } else {
        serde_json::from_slice(body)
            .map_err(|e| ApiError::validation(format!("invalid chaos settings: {e}"), None))?
    };
    let mut chaos = sim.shared.lock_chaos();
    *chaos = new;
    Ok(serde_json::to_value(&*chaos).unwrap_or_default())
}

fn reset(sim: &Simulator) -> Value {
    {
        let mut st = sim.shared.lock_state();
        let account_id = st.account_id.clone();
        *st = State {
            account_id,
            ..State::default()
        };
        sim.shared.save(&st);
    }
    *sim.shared.lock_chaos() = Chaos::default();
    json!({ "reset": true })
}

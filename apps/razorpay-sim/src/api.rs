//! The `/v1` Razorpay API subset.

use crate::input::{ApiError, Input};
use crate::state::{
    alnum, check_id, new_id, now, OrderRec, RefundKey, ScheduledChange, State, SubRec,
};
use crate::webhooks::Emitter;
use crate::Simulator;
use actix_web::{http::header, HttpRequest, HttpResponse};
use base64::Engine as _;
use razorpay::{
    Collection, Item, Order, OrderStatus, Payment, PaymentStatus, Period, Plan, Refund,
    RefundStatus, Subscription, SubscriptionStatus,
};
use serde::Serialize;
use serde_json::{json, Value};

type Res = Result<Value, ApiError>;

fn to_value<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// Entry point for every request under `/v1`.
pub(crate) fn handle(
    sim: &Simulator,
    req: &HttpRequest,
    body: &[u8],
    version: &str,
) -> HttpResponse {
    if let Err(e) = auth(sim, req) {
        return e.response();
    }
    let tail = req.match_info().unprocessed().to_owned();
    let method = req.method().as_str().to_ascii_uppercase();
    let mut injected = take_failure(sim, &method, &format!("/{version}{tail}"));
    if let Some((status, false)) = injected {
        return ApiError::server(status).response();
    }
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if version == "v2" {
        let segs: Vec<&str> = tail.split('/').filter(|s| !s.is_empty()).collect();
        let res = Input::parse(content_type, body)
            .and_then(|input| crate::route::route_v2(sim, &method, &segs, input));
        if let Some((status, true)) = injected {
            return ApiError::server(status).response();
        }
        return match res {
            Ok(v) => HttpResponse::Ok().json(v),
            Err(e) => e.response(),
        };
    }
    if injected.is_none() && method == "POST" && is_payment_transfers(&tail) {
        let mut c = sim.shared.lock_chaos();
        if c.drop_transfer_answers > 0 {
            c.drop_transfer_answers -= 1;
            injected = Some((504, true));
        }
    }
    let refund_key = req
        .headers()
        .get(razorpay::REFUND_IDEMPOTENCY_HEADER)
        .map(|v| v.to_str().unwrap_or("\u{0}").to_owned());
    let res = route(
        sim,
        &method,
        &tail,
        req.query_string(),
        content_type,
        body,
        refund_key.as_deref(),
    );
    if let Some((status, true)) = injected {
        return ApiError::server(status).response();
    }
    match res {
        Ok(v) => HttpResponse::Ok().json(v),
        Err(e) => e.response(),
    }
}

fn auth(sim: &Simulator, req: &HttpRequest) -> Result<(), ApiError> {
    let missing =
        || ApiError::unauthorized("Please provide your api key for authentication purposes");
    let failed = || ApiError::unauthorized("Authentication failed");
    let Some(h) = req.headers().get(header::AUTHORIZATION) else {
        return Err(missing());
    };
    let Some(b64) = h.to_str().ok().and_then(|s| s.strip_prefix("Basic ")) else {
        return Err(failed());
    };
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|_| failed())?;
    let decoded = String::from_utf8(decoded).map_err(|_| failed())?;
    let (id, secret) = decoded.split_once(':').unwrap_or((decoded.as_str(), ""));
    if id.is_empty() {
        return Err(missing());
    }
    let cfg = sim.config();
    if id == cfg.key_id && secret == cfg.key_secret {
        Ok(())
    } else {
        Err(failed())
    }
}

/// `/payments/:id/transfers`.
fn is_payment_transfers(tail: &str) -> bool {
    let segs: Vec<&str> = tail.split('/').filter(|s| !s.is_empty()).collect();
    matches!(segs.as_slice(), ["payments", _, "transfers"])
}

/// Consumes one matching injected failure: `(status, after_processing)`.
fn take_failure(sim: &Simulator, method: &str, path: &str) -> Option<(u16, bool)> {
    let mut chaos = sim.shared.lock_chaos();
    let idx = chaos.fail_routes.iter().position(|f| {
        f.times > 0
            && path.starts_with(&f.path_prefix)
            && f.method
                .as_deref()
                .is_none_or(|m| m == "*" || m.eq_ignore_ascii_case(method))
    })?;
    let f = &mut chaos.fail_routes[idx];
    f.times -= 1;
    let out = (f.status, f.when.as_deref() == Some("after"));
    if f.times == 0 {
        chaos.fail_routes.remove(idx);
    }
    Some(out)
}

fn route(
    sim: &Simulator,
    method: &str,
    tail: &str,
    query: &str,
    ct: &str,
    body: &[u8],
    refund_key: Option<&str>,
) -> Res {
    let segs: Vec<&str> = tail.split('/').filter(|s| !s.is_empty()).collect();
    let input = || Input::parse(ct, body);
    let q = || Query::parse(query);
    let raw_query = Input::from_map(crate::input::parse_form(query.as_bytes()));
    if let Some(res) = crate::route::route_v1(sim, method, &segs, &raw_query, &input) {
        return res;
    }
    match (method, segs.as_slice()) {
        ("POST", ["plans"]) => create_plan(sim, input()?),
        ("GET", ["plans"]) => {
            let q = q()?;
            sim.read(|st| q.list(st.plans.iter(), |p| p.created_at))
        }
        ("GET", ["plans", id]) => sim.read(|st| st.plan(id).map(to_value)),

        ("POST", ["subscriptions"]) => create_subscription(sim, input()?),
        ("GET", ["subscriptions"]) => {
            let q = q()?;
            let plan = q.plan_id.clone();
            sim.read(|st| {
                q.list(
                    st.subscriptions
                        .iter()
                        .map(|r| &r.sub)
                        .filter(|s| plan.as_deref().is_none_or(|p| s.plan_id == p)),
                    |s| s.created_at,
                )
            })
        }
        ("GET", ["subscriptions", id]) => {
            check_id(id, "sub")?;
            sim.read(|st| {
                st.subscriptions
                    .iter()
                    .find(|r| r.sub.id == *id)
                    .map(|r| to_value(&r.sub))
                    .ok_or_else(ApiError::not_found)
            })
        }
        ("PATCH", ["subscriptions", id]) => update_subscription(sim, id, input()?),
        ("POST", ["subscriptions", id, "cancel"]) => cancel_subscription(sim, id, input()?),
        ("GET", ["subscriptions", id, "retrieve_scheduled_changes"]) => {
            sim.read(|st| pending_update(st, id))
        }
        ("POST", ["subscriptions", id, "cancel_scheduled_changes"]) => {
            cancel_scheduled_changes(sim, id)
        }
        ("POST", ["subscriptions", id, "pause"]) => pause_subscription(sim, id, input()?),
        ("POST", ["subscriptions", id, "resume"]) => resume_subscription(sim, id, input()?),

        ("POST", ["orders"]) => create_order(sim, input()?),
        ("GET", ["orders"]) => {
            let q = q()?;
            sim.read(|st| q.list(st.orders.iter().map(|o| &o.order), |o| o.created_at))
        }
        ("GET", ["orders", id]) => {
            check_id(id, "order")?;
            sim.read(|st| {
                st.orders
                    .iter()
                    .find(|o| o.order.id == *id)
                    .map(|o| to_value(&o.order))
                    .ok_or_else(ApiError::not_found)
            })
        }
        ("GET", ["orders", id, "payments"]) => {
            check_id(id, "order")?;
            let q = q()?;
            sim.read(|st| {
                if !st.orders.iter().any(|o| o.order.id == *id) {
                    return Err(ApiError::not_found());
                }
                q.list(
                    st.payments
                        .iter()
                        .filter(|p| p.order_id.as_deref() == Some(id)),
                    |p| p.created_at,
                )
            })
        }

        ("GET", ["payments"]) => {
            let q = q()?;
            sim.read(|st| q.list(st.payments.iter(), |p| p.created_at))
        }
        ("GET", ["payments", id]) => {
            check_id(id, "pay")?;
            sim.read(|st| {
                st.payments
                    .iter()
                    .find(|p| p.id == *id)
                    .map(to_value)
                    .ok_or_else(ApiError::not_found)
            })
        }
        ("POST", ["payments", id, "capture"]) => capture_payment(sim, id, input()?),
        ("POST", ["payments", id, "refund"]) => {
            let key = match refund_key {
                Some(k) => Some(idempotency_key(k)?),
                None => None,
            };
            let body = String::from_utf8_lossy(body).into_owned();
            refund_payment(sim, id, input()?, key.map(|k| (k, body)))
        }
        ("GET", ["payments", id, "refunds"]) => {
            check_id(id, "pay")?;
            let q = q()?;
            sim.read(|st| {
                if !st.payments.iter().any(|p| p.id == *id) {
                    return Err(ApiError::not_found());
                }
                q.list(st.refunds.iter().filter(|r| r.payment_id == *id), |r| {
                    r.created_at
                })
            })
        }
        ("GET", ["refunds"]) => {
            let q = q()?;
            sim.read(|st| q.list(st.refunds.iter(), |r| r.created_at))
        }
        ("GET", ["refunds", id]) => sim.read(|st| st.refund(id).map(to_value)),

        ("GET", ["invoices"]) => {
            let q = q()?;
            if let Some(s) = &q.subscription_id {
                check_id(s, "sub")?;
            }
            if let Some(p) = &q.payment_id {
                check_id(p, "pay")?;
            }
            sim.read(|st| {
                q.list(
                    st.invoices.iter().filter(|i| {
                        q.subscription_id
                            .as_deref()
                            .is_none_or(|s| i.subscription_id.as_deref() == Some(s))
                            && q.payment_id
                                .as_deref()
                                .is_none_or(|p| i.payment_id.as_deref() == Some(p))
                    }),
                    |i| i.created_at,
                )
            })
        }
        ("GET", ["invoices", id]) => sim.read(|st| st.invoice(id).map(to_value)),
        _ => Err(ApiError::unknown_url()),
    }
}

/// Collection query: `count` (default 10, max 100), `skip`, `from`, `to`, and the filters
/// `plan_id` (subscriptions), `subscription_id` and `payment_id` (invoices).
struct Query {
    count: i64,
    skip: i64,
    from: Option<i64>,
    to: Option<i64>,
    plan_id: Option<String>,
    subscription_id: Option<String>,
    payment_id: Option<String>,
}

impl Query {
    fn parse(query: &str) -> Result<Query, ApiError> {
        let input = Input::from_map(crate::input::parse_form(query.as_bytes()));
        let count = input.int("count")?.unwrap_or(10);
        if count > 100 {
            return Err(ApiError::validation(
                "The count may not be greater than 100.",
                Some("count"),
            ));
        }
        if count < 1 {
            return Err(ApiError::validation(
                "The count must be at least 1.",
                Some("count"),
            ));
        }
        let skip = input.int("skip")?.unwrap_or(0);
        if skip < 0 {
            return Err(ApiError::validation(
                "The skip must be at least 0.",
                Some("skip"),
            ));
        }
        Ok(Query {
            count,
            skip,
            from: input.int("from")?,
            to: input.int("to")?,
            plan_id: input.str("plan_id")?,
            subscription_id: input.str("subscription_id")?,
            payment_id: input.str("payment_id")?,
        })
    }

    /// Newest first, filtered by `from`/`to`, then `skip`/`count`.
    fn list<'a, T: Serialize + Clone + 'a>(
        &self,
        items: impl DoubleEndedIterator<Item = &'a T>,
        created_at: impl Fn(&T) -> i64,
    ) -> Res {
        let items: Vec<T> = items
            .rev()
            .filter(|x| self.from.is_none_or(|f| created_at(x) >= f))
            .filter(|x| self.to.is_none_or(|t| created_at(x) <= t))
            .skip(self.skip as usize)
            .take(self.count as usize)
            .cloned()
            .collect();
        Ok(to_value(&Collection {
            entity: "collection".into(),
            count: items.len() as i64,
            items,
        }))
    }
}

// ---------------------------------------------------------------------------
// validation helpers
// ---------------------------------------------------------------------------

fn amount(input: &Input, key: &str) -> Result<i64, ApiError> {
    let a = input.req_int(key)?;
    if a < 100 {
        return Err(ApiError::validation(
            format!("The {key} must be at least 100."),
            Some(key),
        ));
    }
    Ok(a)
}

fn currency(input: &Input) -> Result<String, ApiError> {
    let c = input.req_str("currency")?;
    if c.len() != 3 || !c.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(ApiError::validation(
            "The selected currency is invalid.",
            Some("currency"),
        ));
    }
    Ok(c)
}

/// Seconds in one billing cycle (months are 30 days, quarters 91, years 365).
pub(crate) fn cycle_secs(plan: &Plan) -> i64 {
    let day = 86_400;
    let per = match plan.period {
        Period::Daily => day,
        Period::Weekly => 7 * day,
        Period::Monthly => 30 * day,
        Period::Quarterly => 91 * day,
        Period::Yearly => 365 * day,
        Period::Other(_) => 30 * day,
    };
    per * plan.interval.max(1)
}

// ---------------------------------------------------------------------------
// plans
// ---------------------------------------------------------------------------

fn create_plan(sim: &Simulator, input: Input) -> Res {
    input.only(&["period", "interval", "item", "notes"])?;
    let period_s = input.req_str("period")?;
    let period = Period::parse(&period_s);
    if let Period::Other(_) = period {
        return Err(ApiError::validation(
            "The selected period is invalid.",
            Some("period"),
        ));
    }
    let interval = input.req_int("interval")?;
    if interval < 1 {
        return Err(ApiError::validation(
            "The interval must be at least 1.",
            Some("interval"),
        ));
    }
    if period == Period::Daily && interval < 7 {
        return Err(ApiError::validation(
            "The interval must be at least 7 for daily plans.",
            Some("interval"),
        ));
    }
    let item_in = input.obj("item")?.ok_or_else(|| input.required("item"))?;
    item_in.only(&["name", "amount", "currency", "description"])?;
    let name = item_in.req_str("name")?;
    let amt = amount(&item_in, "amount").map_err(|e| ApiError {
        field: Some(format!("item.{}", e.field.clone().unwrap_or_default())),
        ..e
    })?;
    let cur = currency(&item_in)?;
    let description = item_in.str("description")?;
    let notes = input.notes()?;
    let t = now();
    let plan = Plan {
        id: new_id("plan"),
        entity: "plan".into(),
        interval,
        period,
        item: Item {
            id: new_id("item"),
            active: true,
            name,
            description,
            amount: amt,
            unit_amount: amt,
            currency: cur,
            item_type: Some("plan".into()),
            unit: None,
            tax_inclusive: false,
            hsn_code: None,
            sac_code: None,
            tax_rate: None,
            tax_id: None,
            tax_group_id: None,
            created_at: t,
            updated_at: Some(t),
        },
        notes,
        created_at: t,
    };
    sim.mutate(|st, _| {
        st.plans.push(plan.clone());
        Ok(to_value(&plan))
    })
}

// ---------------------------------------------------------------------------
// subscriptions
// ---------------------------------------------------------------------------

fn with_field(field: &str) -> impl Fn(ApiError) -> ApiError + '_ {
    move |e| ApiError {
        field: Some(field.to_owned()),
        ..e
    }
}

fn create_subscription(sim: &Simulator, input: Input) -> Res {
    input.only(&[
        "plan_id",
        "total_count",
        "quantity",
        "customer_notify",
        "start_at",
        "expire_by",
        "addons",
        "offer_id",
        "notes",
        "notify_info",
    ])?;
    let plan_id = input.req_str("plan_id")?;
    let total_count = input.req_int("total_count")?;
    if !(1..=10_000).contains(&total_count) {
        return Err(ApiError::validation(
            "The total count must be between 1 and 10000.",
            Some("total_count"),
        ));
    }
    let quantity = input.int("quantity")?.unwrap_or(1);
    if quantity < 1 {
        return Err(ApiError::validation(
            "The quantity must be at least 1.",
            Some("quantity"),
        ));
    }
    let customer_notify = input.bool("customer_notify")?.unwrap_or(true);
    let t = now();
    let start_at = input.int("start_at")?;
    if start_at.is_some_and(|s| s < t) {
        return Err(ApiError::validation(
            "start_at cannot be lesser than the current time.",
            Some("start_at"),
        ));
    }
    let expire_by = input.int("expire_by")?;
    if expire_by.is_some_and(|e| e <= t) {
        return Err(ApiError::validation(
            "expire_by cannot be lesser than the current time.",
            Some("expire_by"),
        ));
    }
    let mut addons_amount = 0;
    for addon in input.array("addons")? {
        addon.only(&["item"])?;
        let item = addon.obj("item")?.ok_or_else(|| addon.required("item"))?;
        item.only(&["name", "amount", "currency", "description"])?;
        item.req_str("name")?;
        addons_amount += item.req_int("amount")?;
        item.req_str("currency")?;
    }
    let offer_id = input.str("offer_id")?;
    let notes = input.notes()?;
    sim.mutate(|st, _| {
        let plan = st.plan(&plan_id).map_err(with_field("plan_id"))?.clone();
        let start = start_at.unwrap_or(t);
        let sub = Subscription {
            id: new_id("sub"),
            entity: "subscription".into(),
            plan_id: plan.id.clone(),
            customer_id: None,
            status: SubscriptionStatus::Created,
            current_start: None,
            current_end: None,
            ended_at: None,
            quantity,
            notes,
            charge_at: Some(start),
            start_at: Some(start),
            end_at: Some(start + cycle_secs(&plan) * total_count),
            auth_attempts: 0,
            total_count,
            paid_count: 0,
            remaining_count: Some(total_count),
            customer_notify,
            created_at: t,
            expire_by,
            short_url: Some(format!("https://rzp.io/i/{}", alnum(10))),
            has_scheduled_changes: false,
            change_scheduled_at: None,
            source: Some("api".into()),
            offer_id,
            paused_at: None,
            payment_method: None,
        };
        let v = to_value(&sub);
        st.subscriptions.push(SubRec {
            sub,
            immediate: start_at.is_none_or(|s| s <= t),
            cancel_at_cycle_end: false,
            scheduled: None,
            addons_amount,
            card_id: None,
            vpa: None,
        });
        Ok(v)
    })
}

/// Cancels now: `cancelled`, `ended_at`, `subscription.cancelled`.
pub(crate) fn cancel_now(rec: &mut SubRec, em: &mut Emitter) {
    let t = now();
    rec.sub.status = SubscriptionStatus::Cancelled;
    rec.sub.ended_at = Some(t);
    rec.sub.charge_at = None;
    rec.sub.paused_at = None;
    rec.cancel_at_cycle_end = false;
    em.sub("subscription.cancelled", &rec.sub);
}

fn cancel_subscription(sim: &Simulator, id: &str, input: Input) -> Res {
    input.only(&["cancel_at_cycle_end"])?;
    let at_end = input.bool("cancel_at_cycle_end")?.unwrap_or(false);
    sim.mutate(|st, em| {
        let rec = st.sub_mut(id)?;
        if rec.sub.status.is_terminal() {
            return Err(ApiError::state(
                format!(
                    "Subscription is not cancellable in {} status.",
                    rec.sub.status
                ),
                "status",
            ));
        }
        let waits_for_cycle = matches!(
            rec.sub.status,
            SubscriptionStatus::Active
                | SubscriptionStatus::Pending
                | SubscriptionStatus::Halted
                | SubscriptionStatus::Paused
        );
        if at_end && waits_for_cycle {
            rec.cancel_at_cycle_end = true;
            rec.sub.end_at = rec.sub.current_end.or(rec.sub.end_at);
        } else {
            cancel_now(rec, em);
        }
        Ok(to_value(&rec.sub))
    })
}

fn now_only(input: &Input, key: &str) -> Result<(), ApiError> {
    input.only(&[key])?;
    match input.str(key)? {
        None => Ok(()),
        Some(s) if s == "now" => Ok(()),
        Some(_) => Err(ApiError::validation(
            format!("The selected {key} is invalid. Only now is supported."),
            Some(key),
        )),
    }
}

/// Razorpay pauses only `active` subscriptions; pausing an `authenticated` one (authorised, not
/// yet charged) cancels it ("If you pause a Subscription in the authenticated state, it goes to
/// the cancelled state": razorpay.com/docs/api/payments/subscriptions/pause-subscription).
fn pause_subscription(sim: &Simulator, id: &str, input: Input) -> Res {
    now_only(&input, "pause_at")?;
    sim.mutate(|st, em| {
        let rec = st.sub_mut(id)?;
        if rec.sub.status == SubscriptionStatus::Authenticated {
            cancel_now(rec, em);
            return Ok(to_value(&rec.sub));
        }
        if rec.sub.status != SubscriptionStatus::Active {
            return Err(ApiError::state(
                format!(
                    "Subscription cannot be paused in {} status.",
                    rec.sub.status
                ),
                "status",
            ));
        }
        rec.sub.status = SubscriptionStatus::Paused;
        rec.sub.paused_at = Some(now());
        em.sub("subscription.paused", &rec.sub);
        Ok(to_value(&rec.sub))
    })
}

fn resume_subscription(sim: &Simulator, id: &str, input: Input) -> Res {
    now_only(&input, "resume_at")?;
    sim.mutate(|st, em| {
        let rec = st.sub_mut(id)?;
        if rec.sub.status != SubscriptionStatus::Paused {
            return Err(ApiError::state(
                format!(
                    "Subscription cannot be resumed in {} status.",
                    rec.sub.status
                ),
                "status",
            ));
        }
        rec.sub.status = SubscriptionStatus::Active;
        rec.sub.paused_at = None;
        em.sub("subscription.resumed", &rec.sub);
        Ok(to_value(&rec.sub))
    })
}

/// Applies an update now (plan, quantity, remaining count).
pub(crate) fn apply_change(st: &mut State, idx: usize, change: &ScheduledChange) {
    let rec = &mut st.subscriptions[idx];
    if let Some(p) = &change.plan_id {
        rec.sub.plan_id = p.clone();
    }
    if let Some(q) = change.quantity {
        rec.sub.quantity = q;
    }
    if let Some(r) = change.remaining_count {
        rec.sub.remaining_count = Some(r);
        rec.sub.total_count = rec.sub.paid_count + r;
    }
    rec.sub.has_scheduled_changes = false;
    rec.sub.change_scheduled_at = None;
    rec.scheduled = None;
}

/// `GET /v1/subscriptions/:id/retrieve_scheduled_changes`: the subscription as its pending
/// update (`schedule_change_at: cycle_end`) will make it, `has_scheduled_changes: true`
/// (razorpay.com/docs/api/payments/subscriptions/fetch-pending-update-details).
fn pending_update(st: &State, id: &str) -> Res {
    check_id(id, "sub")?;
    let rec = st
        .subscriptions
        .iter()
        .find(|r| r.sub.id == id)
        .ok_or_else(ApiError::not_found)?;
    let Some(change) = &rec.scheduled else {
        return Err(ApiError::bad_request(
            "Subscription does not have any scheduled changes.",
        ));
    };
    let mut sub = rec.sub.clone();
    if let Some(p) = &change.plan_id {
        sub.plan_id = p.clone();
    }
    if let Some(q) = change.quantity {
        sub.quantity = q;
    }
    if let Some(r) = change.remaining_count {
        sub.remaining_count = Some(r);
        sub.total_count = sub.paid_count + r;
    }
    Ok(to_value(&sub))
}

/// `POST /v1/subscriptions/:id/cancel_scheduled_changes`: drops the pending update (a live one
/// cannot be cancelled: razorpay.com/docs/api/payments/subscriptions/cancel-update).
fn cancel_scheduled_changes(sim: &Simulator, id: &str) -> Res {
    sim.mutate(|st, _| {
        let rec = st.sub_mut(id)?;
        if rec.scheduled.take().is_none() {
            return Err(ApiError::bad_request(
                "Subscription does not have any scheduled changes.",
            ));
        }
        rec.sub.has_scheduled_changes = false;
        rec.sub.change_scheduled_at = None;
        Ok(to_value(&rec.sub))
    })
}

/// The amount one cycle of the subscription's plan bills (plan amount × quantity).
fn plan_amount(st: &State, idx: usize) -> i64 {
    let sub = &st.subscriptions[idx].sub;
    st.plans
        .iter()
        .find(|p| p.id == sub.plan_id)
        .map(|p| p.item.amount)
        .unwrap_or(0)
        * sub.quantity
}

fn plan_currency(st: &State, idx: usize) -> String {
    let sub = &st.subscriptions[idx].sub;
    st.plans
        .iter()
        .find(|p| p.id == sub.plan_id)
        .map(|p| p.item.currency.clone())
        .unwrap_or_else(|| "INR".into())
}

/// Razorpay's proration of an immediate update: `difference` × the part of the current cycle
/// left at `at`, rounded half up (integer arithmetic).
pub(crate) fn prorated(sub: &Subscription, difference: i64, at: i64) -> i64 {
    let (Some(start), Some(end)) = (sub.current_start, sub.current_end) else {
        return 0;
    };
    let cycle = (end - start).max(1);
    let left = (end - at.max(start)).clamp(0, cycle);
    let diff = i128::from(difference) * i128::from(left);
    ((2 * diff + i128::from(cycle)) / (2 * i128::from(cycle))) as i64
}

fn update_subscription(sim: &Simulator, id: &str, input: Input) -> Res {
    input.only(&[
        "plan_id",
        "quantity",
        "remaining_count",
        "start_at",
        "offer_id",
        "schedule_change_at",
        "customer_notify",
    ])?;
    let plan_id = input.str("plan_id")?;
    let quantity = input.int("quantity")?;
    if quantity.is_some_and(|q| q < 1) {
        return Err(ApiError::validation(
            "The quantity must be at least 1.",
            Some("quantity"),
        ));
    }
    let remaining_count = input.int("remaining_count")?;
    if remaining_count.is_some_and(|r| r < 1) {
        return Err(ApiError::validation(
            "The remaining count must be at least 1.",
            Some("remaining_count"),
        ));
    }
    let start_at = input.int("start_at")?;
    let offer_id = input.str("offer_id")?;
    let customer_notify = input.bool("customer_notify")?;
    let at_cycle_end = match input.str("schedule_change_at")?.as_deref() {
        None | Some("now") => false,
        Some("cycle_end") => true,
        Some(_) => {
            return Err(ApiError::validation(
                "The selected schedule_change_at is invalid.",
                Some("schedule_change_at"),
            ))
        }
    };
    sim.mutate(|st, em| {
        if let Some(p) = &plan_id {
            st.plan(p).map_err(with_field("plan_id"))?;
        }
        check_id(id, "sub")?;
        let idx = st
            .subscriptions
            .iter()
            .position(|r| r.sub.id == id)
            .ok_or_else(ApiError::not_found)?;
        let rec = &mut st.subscriptions[idx];
        // "subscriptions cannot be updated when payment mode is UPI" (the update-subscription
        // API reference); only card mandates can change plan.
        if plan_id.is_some() {
            if let Some(m) = rec.sub.payment_method.as_deref().filter(|m| *m != "card") {
                let mode = if m == "upi" {
                    "UPI".to_owned()
                } else {
                    m.to_owned()
                };
                return Err(ApiError::validation(
                    format!("subscriptions cannot be updated when payment mode is {mode}"),
                    None,
                ));
            }
        }
        if !matches!(
            rec.sub.status,
            SubscriptionStatus::Authenticated | SubscriptionStatus::Active
        ) {
            return Err(ApiError::state(
                format!(
                    "Subscription cannot be updated in {} status.",
                    rec.sub.status
                ),
                "status",
            ));
        }
        if let Some(s) = start_at {
            if rec.sub.status != SubscriptionStatus::Authenticated || s < now() {
                return Err(ApiError::validation(
                    "start_at can only be changed to a future time before the first charge.",
                    Some("start_at"),
                ));
            }
            rec.sub.start_at = Some(s);
            rec.sub.charge_at = Some(s);
        }
        if let Some(o) = offer_id {
            rec.sub.offer_id = Some(o);
        }
        if let Some(n) = customer_notify {
            rec.sub.customer_notify = n;
        }
        let change = ScheduledChange {
            plan_id,
            quantity,
            remaining_count,
        };
        if at_cycle_end {
            rec.sub.has_scheduled_changes = true;
            rec.sub.change_scheduled_at = rec.sub.current_end.or(rec.sub.charge_at);
            rec.scheduled = Some(change);
        } else {
            let before = plan_amount(st, idx);
            let quantity = change.quantity.unwrap_or(st.subscriptions[idx].sub.quantity);
            let after = match &change.plan_id {
                Some(p) => st.plan(p).map(|p| p.item.amount).unwrap_or(0) * quantity,
                None => before / st.subscriptions[idx].sub.quantity.max(1) * quantity,
            };
            let active = st.subscriptions[idx].sub.status == SubscriptionStatus::Active;
            // Razorpay prorates an immediate change of an active subscription: the difference of
            // the remaining amounts is charged (an upgrade) or refunded through a credit note (a
            // downgrade; not simulated: Oasis never downgrades now). A non-zero difference below
            // the quantity × the smallest currency subunit (in USD below 50 cents) is refused,
            // and the subscription is left as it was.
            let charge = if active && after != before {
                let charge = prorated(&st.subscriptions[idx].sub, (after - before).abs(), now());
                let usd = plan_currency(st, idx).eq_ignore_ascii_case("USD");
                if usd && charge < 50 {
                    return Err(ApiError::validation(
                        "The prorated amount difference between the existing and the new plan must be at least 50 cents ($0.5).",
                        None,
                    ));
                }
                if charge < quantity {
                    return Err(ApiError::validation(
                        "The difference amount after updating the subscription cannot be less than the quantity multiplied by the smallest currency subunit.",
                        None,
                    ));
                }
                charge
            } else {
                0
            };
            apply_change(st, idx, &change);
            if after > before && charge > 0 {
                crate::control::charge_proration(st, idx, charge, em);
            }
            em.sub("subscription.updated", &st.subscriptions[idx].sub);
        }
        Ok(to_value(&st.subscriptions[idx].sub))
    })
}

// ---------------------------------------------------------------------------
// orders, payments, refunds
// ---------------------------------------------------------------------------

fn create_order(sim: &Simulator, input: Input) -> Res {
    input.only(&[
        "amount",
        "currency",
        "receipt",
        "notes",
        "partial_payment",
        "payment",
        "first_payment_min_amount",
    ])?;
    let amt = amount(&input, "amount")?;
    let cur = currency(&input)?;
    let receipt = input.str("receipt")?;
    if receipt.as_ref().is_some_and(|r| r.chars().count() > 40) {
        return Err(ApiError::validation(
            "The receipt may not be greater than 40 characters.",
            Some("receipt"),
        ));
    }
    let notes = input.notes()?;
    input.bool("partial_payment")?;
    input.int("first_payment_min_amount")?;
    let mut manual_capture = false;
    if let Some(p) = input.obj("payment")? {
        p.only(&["capture", "capture_options"])?;
        match p.req_str("capture")?.as_str() {
            "automatic" => {}
            "manual" => manual_capture = true,
            _ => {
                return Err(ApiError::validation(
                    "The selected payment.capture is invalid.",
                    Some("payment.capture"),
                ))
            }
        }
    }
    let order = Order {
        id: new_id("order"),
        entity: "order".into(),
        amount: amt,
        amount_paid: 0,
        amount_due: amt,
        currency: cur,
        receipt,
        offer_id: None,
        status: OrderStatus::Created,
        attempts: 0,
        notes,
        created_at: now(),
    };
    sim.mutate(|st, _| {
        st.orders.push(OrderRec {
            order: order.clone(),
            manual_capture,
        });
        Ok(to_value(&order))
    })
}

/// Marks a payment captured (fee 2%, GST 18% on the fee).
pub(crate) fn mark_captured(p: &mut Payment) {
    p.status = PaymentStatus::Captured;
    p.captured = true;
    let fee = p.amount * 2 / 100;
    let tax = fee * 18 / 100;
    p.fee = Some(fee + tax);
    p.tax = Some(tax);
}

/// Adds a captured payment to its order; `order.paid` when fully paid.
pub(crate) fn settle_order(st: &mut State, p: &Payment, em: &mut Emitter) {
    let Some(oid) = &p.order_id else { return };
    let Some(rec) = st.orders.iter_mut().find(|o| &o.order.id == oid) else {
        return;
    };
    let o = &mut rec.order;
    o.amount_paid += p.amount;
    o.amount_due = (o.amount - o.amount_paid).max(0);
    if o.amount_due == 0 {
        o.status = OrderStatus::Paid;
        em.order_paid(p, o);
    } else {
        o.status = OrderStatus::Attempted;
    }
}

fn capture_payment(sim: &Simulator, id: &str, input: Input) -> Res {
    input.only(&["amount", "currency"])?;
    let amt = input.req_int("amount")?;
    let cur = input.req_str("currency")?;
    sim.mutate(|st, em| {
        let p = st.payment_mut(id)?;
        match p.status {
            PaymentStatus::Authorized => {}
            PaymentStatus::Captured | PaymentStatus::Refunded => {
                return Err(ApiError::bad_request(
                    "This payment has already been captured",
                ))
            }
            _ => {
                return Err(ApiError::bad_request(
                    "Only payments which have been authorized and not yet captured can be captured",
                ))
            }
        }
        if amt != p.amount {
            return Err(ApiError::validation(
                "Capture amount must be equal to the amount authorized",
                Some("amount"),
            ));
        }
        if cur != p.currency {
            return Err(ApiError::validation(
                "The currency should be same as the payment currency",
                Some("currency"),
            ));
        }
        mark_captured(p);
        let p = p.clone();
        em.pay("payment.captured", &p);
        settle_order(st, &p, em);
        Ok(to_value(&p))
    })
}

/// `X-Refund-Idempotency`: at least 10 characters of `[A-Za-z0-9_-]`.
fn idempotency_key(k: &str) -> Result<String, ApiError> {
    let ok = k.len() >= 10
        && k.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(k.to_owned())
    } else {
        Err(ApiError::bad_request(
            "The idempotency key must be at least 10 characters long and contain only alphabets, numbers, hyphens and underscores.",
        ))
    }
}

/// `(key, raw body)` of an idempotent refund request.
type RefundIdempotency = (String, String);

fn refund_payment(
    sim: &Simulator,
    id: &str,
    input: Input,
    idempotency: Option<RefundIdempotency>,
) -> Res {
    input.only(&["amount", "speed", "notes", "receipt"])?;
    let amt = input.int("amount")?;
    let speed = input.str("speed")?.unwrap_or_else(|| "normal".into());
    if speed != "normal" && speed != "optimum" {
        return Err(ApiError::validation(
            "The selected speed is invalid.",
            Some("speed"),
        ));
    }
    let notes = input.notes()?;
    let receipt = input.str("receipt")?;
    sim.mutate(|st, em| {
        if let Some((key, body)) = &idempotency {
            if let Some(k) = st.refund_keys.iter().find(|k| &k.key == key) {
                // The same request again answers what it did; another one is refused.
                if k.payment_id != id || &k.body != body {
                    return Err(ApiError::bad_request(
                        "Different request with the same idempotency key has already been processed.",
                    ));
                }
                return st.refund(&k.refund_id).map(to_value);
            }
        }
        let p = st.payment_mut(id)?;
        if p.status == PaymentStatus::Refunded {
            return Err(ApiError::bad_request(
                "The payment has been fully refunded already",
            ));
        }
        if p.status != PaymentStatus::Captured {
            return Err(ApiError::bad_request(
                "Only captured payments can be refunded",
            ));
        }
        let left = p.amount - p.amount_refunded;
        let amt = amt.unwrap_or(left);
        if amt < 100 {
            return Err(ApiError::validation(
                "The amount must be at least 100.",
                Some("amount"),
            ));
        }
        if amt > left {
            return Err(ApiError::validation(
                "The refund amount provided is greater than amount captured",
                Some("amount"),
            ));
        }
        p.amount_refunded += amt;
        if p.amount_refunded == p.amount {
            p.refund_status = Some("full".into());
            p.status = PaymentStatus::Refunded;
        } else {
            p.refund_status = Some("partial".into());
        }
        let p = p.clone();
        let refund = Refund {
            id: new_id("rfnd"),
            entity: "refund".into(),
            amount: amt,
            currency: p.currency.clone(),
            payment_id: p.id.clone(),
            notes,
            receipt,
            acquirer_data: json!({ "arn": null }),
            created_at: now(),
            batch_id: None,
            status: RefundStatus::Processed,
            speed_processed: Some("normal".into()),
            speed_requested: Some(speed),
        };
        em.refund("refund.created", &refund, &p);
        em.refund("refund.processed", &refund, &p);
        st.refunds.push(refund.clone());
        if let Some((key, body)) = idempotency {
            st.refund_keys.push(RefundKey {
                key,
                payment_id: p.id.clone(),
                body,
                refund_id: refund.id.clone(),
            });
        }
        Ok(to_value(&refund))
    })
}

//! Checkout flows: recurring memberships, one-time tier purchases, cheers, the free tier,
//! ending a membership and guest checkout.
use super::sync::{
    enqueue_sync, sync_order, sync_payload, sync_subscription, sync_subscription_payment,
};
use super::{api_error, gateway, idempotency, int_field, str_field};
use crate::auth::AuthUser;
use crate::context::AppContext;
use crate::error::ApiError;
use crate::web;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use chrono::Utc;
use oasis_billing::checkout::{validate_cheer, EndType, GuestPaymentType};
use oasis_billing::ports::{NewOrder, OrderKind};
use oasis_billing::BillingError;
use oasis_db::billing::{self as store, Reservation, TierInfo};
use razorpay::{CancelAt, CreateOrder, CreatePlan, CreateSubscription, Notes, Period, PlanItem};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

#[derive(Serialize, utoipa::ToSchema)]
pub struct CheckoutStarted {
    /// `sub_…` (recurring) or `order_…` (one-time purchase, cheer): open Razorpay Checkout with it.
    #[serde(rename = "SubscriptionID")]
    subscription_id: String,
    /// The Razorpay key id for Checkout.
    public_key: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Details {
    details: &'static str,
}

const CREATED: Details = Details {
    details: "Subscription created",
};

#[derive(Deserialize, utoipa::ToSchema)]
pub struct CreateBody {
    #[serde(rename = "tierID")]
    #[schema(value_type = i64)]
    tier_id: Option<Value>,
}

#[derive(Deserialize, utoipa::ToSchema)]
// Named apart from the catalog's `TierBody` (same Rust name): one schema would replace the other.
#[schema(as = PublicTierBody)]
pub struct TierBody {
    #[serde(rename = "tierID")]
    #[schema(value_type = i64)]
    tier_id: Option<Value>,
}

fn started(ctx: &AppContext, id: String) -> (StatusCode, Value) {
    (
        StatusCode::OK,
        json!(CheckoutStarted {
            subscription_id: id,
            public_key: ctx.payments.key_id().to_owned(),
        }),
    )
}

/// Loads a tier that can be bought with money.
async fn paid_tier(ctx: &AppContext, tier_id: i64, buyer: i64) -> Result<TierInfo, ApiError> {
    let tier = ctx
        .db
        .run(move |c| Ok(store::tier(c, tier_id)?))
        .await?
        .ok_or_else(|| ApiError::field("tierID", "Tier not found."))?;
    if !tier.is_active {
        return Err(ApiError::field(
            "tierID",
            "This tier accepts no new members.",
        ));
    }
    if tier.price == 0 {
        return Err(ApiError::field(
            "tierID",
            "This is a free tier: join it with /subscriptions/subscribe_to_public_tier.",
        ));
    }
    if tier.creator_id == buyer {
        return Err(ApiError::field(
            "tierID",
            "You cannot subscribe to your own tier.",
        ));
    }
    Ok(tier)
}

enum Step {
    Done(String),
    Wait,
    Retry,
    Create {
        membership_id: i64,
        plan: Option<String>,
    },
}

/// Starts (or returns the pending) recurring membership of `user_id` in `tier_id`. Two
/// concurrent calls share one Razorpay subscription: the partial unique index admits one
/// reservation; the other call waits for its subscription id.
pub(crate) async fn start_recurring(
    ctx: &AppContext,
    user_id: i64,
    tier_id: i64,
) -> Result<String, ApiError> {
    let tier = paid_tier(ctx, tier_id, user_id).await?;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let t = tier.clone();
        let step = ctx
            .db
            .tx(move |c| {
                let plan = store::plan_id(c, t.id, t.price, &t.currency)?;
                Ok(
                    match store::reserve_recurring(c, user_id, t.id, t.price, &t.currency)? {
                        Reservation::New(membership_id) => Step::Create {
                            membership_id,
                            plan,
                        },
                        Reservation::Existing(m) => match m.razorpay_subscription_id {
                            Some(sid) if m.status == "created" => Step::Done(sid),
                            Some(_) => return Err(api_error(BillingError::AlreadySubscribed)),
                            None if m.created_at < Utc::now() - chrono::Duration::minutes(2) => {
                                // Abandoned mid-flight (crash between Razorpay and our commit).
                                store::drop_reservation(c, m.id)?;
                                Step::Retry
                            }
                            None => Step::Wait,
                        },
                    },
                )
            })
            .await?;
        match step {
            Step::Done(sid) => return Ok(sid),
            Step::Retry => continue,
            Step::Wait => {
                if Instant::now() > deadline {
                    return Err(api_error(BillingError::InProgress));
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Step::Create {
                membership_id,
                plan,
            } => {
                let created = create_subscription(ctx, &tier, plan, user_id).await;
                return match created {
                    Ok(sid) => {
                        let s = sid.clone();
                        ctx.db
                            .tx(move |c| Ok(store::attach_subscription(c, membership_id, &s)?))
                            .await?;
                        Ok(sid)
                    }
                    Err(e) => {
                        let _ = ctx
                            .db
                            .tx(move |c| Ok(store::drop_reservation(c, membership_id)?))
                            .await;
                        Err(e)
                    }
                };
            }
        }
    }
}

async fn create_subscription(
    ctx: &AppContext,
    tier: &TierInfo,
    plan: Option<String>,
    user_id: i64,
) -> Result<String, ApiError> {
    let client = ctx.payments.client();
    let plan_id = match plan {
        Some(p) => p,
        None => {
            let name: String = tier.name.chars().take(100).collect();
            let p = client
                .create_plan(&CreatePlan {
                    period: Period::Monthly,
                    interval: 1,
                    item: PlanItem {
                        name: if name.trim().is_empty() {
                            format!("Tier {}", tier.id)
                        } else {
                            name
                        },
                        amount: tier.price,
                        currency: tier.currency.clone(),
                        description: None,
                    },
                    notes: Notes::new().with("tierID", tier.id.to_string()),
                })
                .await
                .map_err(gateway)?;
            let (tid, price, cur) = (tier.id, tier.price, tier.currency.clone());
            ctx.db
                .tx(move |c| Ok(store::save_plan(c, tid, price, &cur, &p.id)?))
                .await?
        }
    };
    let sub = client
        .create_subscription(&CreateSubscription {
            plan_id,
            total_count: oasis_billing::TOTAL_COUNT_MONTHLY,
            notes: Notes::new()
                .with("type", "subscription")
                .with("userID", user_id.to_string())
                .with("tierID", tier.id.to_string()),
            ..Default::default()
        })
        .await
        .map_err(gateway)?;
    Ok(sub.id)
}

/// Starts a one-time purchase of a tier (one period of access, no renewal).
pub(crate) async fn start_onetime(
    ctx: &AppContext,
    user_id: i64,
    username: &str,
    tier_id: i64,
    currency: Option<&str>,
) -> Result<String, ApiError> {
    let tier = paid_tier(ctx, tier_id, user_id).await?;
    if let Some(cur) = currency.map(str::trim).filter(|c| !c.is_empty()) {
        if !cur.eq_ignore_ascii_case(&tier.currency) {
            return Err(ApiError::field(
                "currency",
                format!("This tier is priced in {}.", tier.currency),
            ));
        }
    }
    let notes = Notes::new()
        .with("type", "subscription")
        .with("username", username)
        .with("userID", user_id.to_string())
        .with("tierID", tier.id.to_string());
    let order = ctx
        .payments
        .client()
        .create_order(&CreateOrder {
            amount: tier.price,
            currency: tier.currency.clone(),
            receipt: Some(format!(
                "ot-{user_id}-{}-{}",
                tier.id,
                Utc::now().timestamp()
            )),
            notes: notes.clone(),
            ..Default::default()
        })
        .await
        .map_err(gateway)?;
    let oid = order.id.clone();
    let notes_json = serde_json::to_value(&notes).unwrap_or_default();
    ctx.db
        .tx(move |c| {
            store::insert_order(
                c,
                &NewOrder {
                    razorpay_order_id: oid,
                    kind: OrderKind::OneTime,
                    user_id: Some(user_id),
                    creator_id: Some(tier.creator_id),
                    tier_id: Some(tier.id),
                    reference_id: None,
                    amount: tier.price,
                    currency: tier.currency.clone(),
                    name: String::new(),
                    message: String::new(),
                    notes: notes_json,
                },
            )?;
            Ok(())
        })
        .await?;
    Ok(order.id)
}

/// Starts the payment of a commission (for the commissions domain): a Razorpay order with notes
/// `{type: commission, creatorID, username, commissionID}` stored as a `commission` order. Its
/// payment is recorded once (`payments.kind = 'commission'`, `billing_orders.reference_id` =
/// the commission id) by the webhook, the Checkout callback or reconciliation, like any order.
/// Returns the `order_…` id for Checkout.
#[allow(clippy::too_many_arguments)]
pub async fn start_commission_order(
    ctx: &AppContext,
    payer_id: i64,
    payer_username: &str,
    commission_id: i64,
    creator_id: i64,
    amount: i64,
    currency: &str,
) -> Result<String, ApiError> {
    let cur: oasis_kernel::Currency =
        currency
            .parse()
            .map_err(|e: oasis_kernel::ParseCurrencyError| {
                ApiError::field("currency", e.to_string())
            })?;
    if amount < cur.min_charge() || amount > cur.max_charge() {
        return Err(ApiError::field(
            "amount",
            "Amount out of bounds for the currency.",
        ));
    }
    let notes = Notes::new()
        .with("type", "commission")
        .with("creatorID", creator_id.to_string())
        .with("username", payer_username)
        .with("commissionID", commission_id.to_string());
    let order = ctx
        .payments
        .client()
        .create_order(&CreateOrder {
            amount,
            currency: cur.code().to_owned(),
            receipt: Some(format!("comm-{commission_id}-{}", Utc::now().timestamp())),
            notes: notes.clone(),
            ..Default::default()
        })
        .await
        .map_err(gateway)?;
    let new = NewOrder {
        razorpay_order_id: order.id.clone(),
        kind: OrderKind::Commission,
        user_id: Some(payer_id),
        creator_id: Some(creator_id),
        tier_id: None,
        reference_id: Some(commission_id),
        amount,
        currency: cur.code().to_owned(),
        name: String::new(),
        message: String::new(),
        notes: serde_json::to_value(&notes).unwrap_or_default(),
    };
    ctx.db
        .tx(move |c| {
            store::insert_order(c, &new)?;
            Ok(())
        })
        .await?;
    Ok(order.id)
}

/// Start a recurring (monthly) membership.
#[utoipa::path(post, path = "/subscriptions/create", tag = "billing", request_body = CreateBody,
    params(("Idempotency-Key" = Option<String>, Header, description = "replays the first response")),
    responses((status = 200, body = CheckoutStarted),
        (status = 400, description = "unknown/free/inactive/own tier, or already a member"),
        (status = 401), (status = 409, description = "same request in progress"),
        (status = 502, description = "Razorpay failed")),
    security(("token" = []), ("jwt" = [])))]
pub async fn create(
    req: HttpRequest,
    user: AuthUser,
    ctx: web::Data<AppContext>,
    body: web::Json<CreateBody>,
) -> Result<HttpResponse, ApiError> {
    let tier_id = int_field(&body.tier_id, "tierID")?;
    let fp = json!({ "tierID": tier_id });
    idempotency::run(&req, &ctx.db, user.user_id, &fp, || async {
        let sid = start_recurring(&ctx, user.user_id, tier_id).await?;
        Ok(started(&ctx, sid))
    })
    .await
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct SaveBody {
    #[serde(rename = "tierID")]
    #[schema(value_type = Option<i64>)]
    tier_id: Option<Value>,
    razorpay_payment_id: Option<String>,
    /// The seed's spelling of `razorpay_payment_id`.
    razor_payment_id: Option<String>,
    razorpay_signature: Option<String>,
    razorpay_subscription_id: Option<String>,
    /// For a one-time tier purchase.
    razorpay_order_id: Option<String>,
}

/// Confirm a Checkout payment of a recurring membership (`razorpay_subscription_id`) or a
/// one-time tier purchase (`razorpay_order_id`). The signature is verified first; a bad one
/// records nothing.
#[utoipa::path(post, path = "/subscriptions/save", tag = "billing", request_body = SaveBody,
    params(("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = Details), (status = 400, description = "bad signature or missing field"),
        (status = 401), (status = 404, description = "someone else's checkout")),
    security(("token" = []), ("jwt" = [])))]
pub async fn save(
    req: HttpRequest,
    user: AuthUser,
    ctx: web::Data<AppContext>,
    body: web::Json<SaveBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let payment_id = body
        .razorpay_payment_id
        .clone()
        .or(body.razor_payment_id.clone());
    let payment_id = str_field(&payment_id, "razorpay_payment_id")?.to_owned();
    let signature = str_field(&body.razorpay_signature, "razorpay_signature")?.to_owned();
    let secret = ctx.payments.key_secret();
    let target = match (
        body.razorpay_subscription_id
            .as_deref()
            .filter(|s| !s.is_empty()),
        body.razorpay_order_id.as_deref().filter(|s| !s.is_empty()),
    ) {
        (Some(sub), _) => {
            if !razorpay::verify_subscription_signature(&payment_id, sub, &signature, secret) {
                return Err(api_error(BillingError::BadSignature));
            }
            Target::Subscription(sub.to_owned())
        }
        (None, Some(order)) => {
            if !razorpay::verify_order_signature(order, &payment_id, &signature, secret) {
                return Err(api_error(BillingError::BadSignature));
            }
            Target::Order(order.to_owned())
        }
        (None, None) => {
            return Err(ApiError::field(
                "razorpay_subscription_id",
                "This field is required.",
            ))
        }
    };
    // `tierID` is informational (the subscription/order says which tier); a malformed one is
    // still a field error, as in DRF.
    if body.tier_id.as_ref().is_some_and(|v| !v.is_null()) {
        int_field(&body.tier_id, "tierID")?;
    }
    let fp = json!({ "payment": payment_id, "signature": signature });
    idempotency::run(&req, &ctx.db, user.user_id, &fp, || async {
        confirm(&ctx, user.user_id, target, &payment_id).await?;
        Ok((StatusCode::OK, json!(CREATED)))
    })
    .await
}

enum Target {
    Subscription(String),
    Order(String),
}

/// After a verified Checkout signature: make sure the checkout is not someone else's, then
/// fetch Razorpay's truth and apply it; if Razorpay cannot be reached now, a durable
/// `billing.sync` job applies it later (the webhook and reconciliation would too).
async fn confirm(
    ctx: &AppContext,
    user_id: i64,
    target: Target,
    payment_id: &str,
) -> Result<(), ApiError> {
    match &target {
        Target::Subscription(sub) => {
            let s = sub.clone();
            let owner = ctx
                .db
                .run(move |c| Ok(store::lock_membership_by_subscription(c, &s)?.map(|m| m.user_id)))
                .await?;
            if owner.is_some_and(|o| o != user_id) {
                return Err(ApiError::not_found());
            }
            let inline = async {
                sync_subscription(&ctx.db, &ctx.payments, sub).await?;
                sync_subscription_payment(&ctx.db, &ctx.payments, sub, payment_id).await
            }
            .await;
            if let Err(e) = inline {
                tracing::warn!(subscription = %sub, error = %e, "confirmation deferred to a sync job");
                let payload = sync_payload(Some(sub), Some(payment_id), None);
                ctx.db.tx(move |c| enqueue_sync(c, &payload)).await?;
                ctx.jobs.wake();
            }
        }
        Target::Order(order) => {
            let o = order.clone();
            let owner = ctx
                .db
                .run(move |c| Ok(store::lock_order(c, &o)?.and_then(|o| o.user_id)))
                .await?;
            if owner.is_some_and(|o| o != user_id) {
                return Err(ApiError::not_found());
            }
            if let Err(e) = sync_order(&ctx.db, &ctx.payments, order).await {
                tracing::warn!(order = %order, error = %e, "confirmation deferred to a sync job");
                let payload = sync_payload(None, None, Some(order));
                ctx.db.tx(move |c| enqueue_sync(c, &payload)).await?;
                ctx.jobs.wake();
            }
        }
    }
    Ok(())
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct OnetimeBody {
    #[serde(rename = "tierID")]
    #[schema(value_type = i64)]
    tier_id: Option<Value>,
    /// Must be the tier's currency when given.
    currency: Option<String>,
}

/// Start a one-time purchase of a tier: 30 days of access, no renewal. `SubscriptionID` holds
/// the `order_…`.
#[utoipa::path(post, path = "/subscriptions/create_onetime/", tag = "billing", request_body = OnetimeBody,
    params(("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = CheckoutStarted), (status = 400), (status = 401), (status = 502)),
    security(("token" = []), ("jwt" = [])))]
pub async fn create_onetime(
    req: HttpRequest,
    user: AuthUser,
    ctx: web::Data<AppContext>,
    body: web::Json<OnetimeBody>,
) -> Result<HttpResponse, ApiError> {
    let tier_id = int_field(&body.tier_id, "tierID")?;
    let currency = body.currency.clone();
    let fp = json!({ "tierID": tier_id, "currency": currency });
    idempotency::run(&req, &ctx.db, user.user_id, &fp, || async {
        let oid = start_onetime(
            &ctx,
            user.user_id,
            &user.username,
            tier_id,
            currency.as_deref(),
        )
        .await?;
        Ok(started(&ctx, oid))
    })
    .await
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct OrderBody {
    /// Integer minor units (paise, cents); 100 to the currency's maximum.
    #[schema(value_type = i64)]
    amount: Option<Value>,
    /// `INR` or `USD`.
    currency: Option<String>,
    #[serde(rename = "creatorID")]
    #[schema(value_type = i64)]
    creator_id: Option<Value>,
    name: Option<String>,
    /// At most 1000 characters.
    message: Option<String>,
}

fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

/// Start a cheer (a tip with a message) to a creator.
#[utoipa::path(post, path = "/subscriptions/create_order", tag = "billing", request_body = OrderBody,
    params(("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = CheckoutStarted), (status = 400), (status = 401), (status = 502)),
    security(("token" = []), ("jwt" = [])))]
pub async fn create_order(
    req: HttpRequest,
    user: AuthUser,
    ctx: web::Data<AppContext>,
    body: web::Json<OrderBody>,
) -> Result<HttpResponse, ApiError> {
    let amount = int_field(&body.amount, "amount")?;
    let creator_id = int_field(&body.creator_id, "creatorID")?;
    let currency = str_field(&body.currency, "currency")?.to_owned();
    let name = body.name.clone().unwrap_or_default();
    let message = body.message.clone().unwrap_or_default();
    let cheer = validate_cheer(amount, &currency, &name, &message).map_err(api_error)?;
    let fp = json!({ "amount": amount, "currency": currency, "creatorID": creator_id, "name": name, "message": message });
    idempotency::run(&req, &ctx.db, user.user_id, &fp, || async {
        let is_creator = ctx
            .db
            .run(move |c| Ok(store::is_creator(c, creator_id)?))
            .await?;
        if !is_creator {
            return Err(ApiError::field("creatorID", "Creator not found."));
        }
        let display = if cheer.name.is_empty() {
            user.username.clone()
        } else {
            cheer.name.clone()
        };
        let notes = Notes::new()
            .with("type", "cheer")
            .with("creatorID", creator_id.to_string())
            .with("username", user.username.clone())
            .with("name", truncate(&display, 100))
            .with("message", truncate(&cheer.message, 250));
        let order = ctx
            .payments
            .client()
            .create_order(&CreateOrder {
                amount: cheer.amount,
                currency: cheer.currency.code().to_owned(),
                receipt: Some(format!("cheer-{}-{}", user.user_id, Utc::now().timestamp())),
                notes: notes.clone(),
                ..Default::default()
            })
            .await
            .map_err(gateway)?;
        let oid = order.id.clone();
        let uid = user.user_id;
        let notes_json = serde_json::to_value(&notes).unwrap_or_default();
        ctx.db
            .tx(move |c| {
                store::insert_order(
                    c,
                    &NewOrder {
                        razorpay_order_id: oid,
                        kind: OrderKind::Cheer,
                        user_id: Some(uid),
                        creator_id: Some(creator_id),
                        tier_id: None,
                        reference_id: None,
                        amount: cheer.amount,
                        currency: cheer.currency.code().to_owned(),
                        name: display,
                        message: cheer.message,
                        notes: notes_json,
                    },
                )?;
                Ok(())
            })
            .await?;
        Ok(started(&ctx, order.id))
    })
    .await
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct SaveOrderBody {
    name: Option<String>,
    message: Option<String>,
    /// When given, must equal the order's amount (integer minor units).
    #[schema(value_type = Option<i64>)]
    amount: Option<Value>,
    razorpay_payment_id: Option<String>,
    razor_payment_id: Option<String>,
    razorpay_signature: Option<String>,
    razorpay_order_id: Option<String>,
    /// The seed's field for the order id.
    razorpay_subscription_id: Option<String>,
}

/// Confirm a cheer's Checkout payment (order signature verified first).
#[utoipa::path(post, path = "/subscriptions/save_order", tag = "billing", request_body = SaveOrderBody,
    params(("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = Details), (status = 400, description = "bad signature or field"),
        (status = 401), (status = 404)),
    security(("token" = []), ("jwt" = [])))]
pub async fn save_order(
    req: HttpRequest,
    user: AuthUser,
    ctx: web::Data<AppContext>,
    body: web::Json<SaveOrderBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let payment_id = body
        .razorpay_payment_id
        .clone()
        .or(body.razor_payment_id.clone());
    let payment_id = str_field(&payment_id, "razorpay_payment_id")?.to_owned();
    let signature = str_field(&body.razorpay_signature, "razorpay_signature")?.to_owned();
    let order_id = body
        .razorpay_order_id
        .clone()
        .filter(|s| !s.is_empty())
        .or(body.razorpay_subscription_id.clone());
    let order_id = str_field(&order_id, "razorpay_order_id")?.to_owned();
    if !razorpay::verify_order_signature(
        &order_id,
        &payment_id,
        &signature,
        ctx.payments.key_secret(),
    ) {
        return Err(api_error(BillingError::BadSignature));
    }
    let amount = match &body.amount {
        None | Some(Value::Null) => None,
        v => Some(int_field(v, "amount")?),
    };
    if let Some(m) = &body.message {
        if m.chars().count() > oasis_billing::checkout::MAX_MESSAGE_CHARS {
            return Err(ApiError::field(
                "message",
                "Ensure this field has no more than 1000 characters.",
            ));
        }
    }
    if let Some(n) = &body.name {
        if n.chars().count() > oasis_billing::checkout::MAX_NAME_CHARS {
            return Err(ApiError::field(
                "name",
                "Ensure this field has no more than 100 characters.",
            ));
        }
    }
    let fp = json!({ "payment": payment_id, "signature": signature, "name": body.name, "message": body.message });
    idempotency::run(&req, &ctx.db, user.user_id, &fp, || async {
        let (oid, uid) = (order_id.clone(), user.user_id);
        let (name, message) = (body.name.clone(), body.message.clone());
        ctx.db
            .tx(move |c| {
                if let Some(o) = store::lock_order(c, &oid)? {
                    if o.user_id.is_some_and(|u| u != uid) {
                        return Err(ApiError::not_found());
                    }
                    if amount.is_some_and(|a| a != o.amount) {
                        return Err(ApiError::field(
                            "amount",
                            "Does not match the order's amount.",
                        ));
                    }
                    if o.kind == "cheer" {
                        let n = name.as_deref().map(str::trim).filter(|s| !s.is_empty());
                        let m = message.as_deref().filter(|s| !s.is_empty());
                        store::set_order_message(c, o.id, n, m)?;
                    }
                }
                Ok(())
            })
            .await?;
        confirm(
            &ctx,
            user.user_id,
            Target::Order(order_id.clone()),
            &payment_id,
        )
        .await?;
        Ok((StatusCode::OK, json!(CREATED)))
    })
    .await
}

/// Join a creator's free (price 0) tier.
#[utoipa::path(post, path = "/subscriptions/subscribe_to_public_tier", tag = "billing", request_body = TierBody,
    responses((status = 201, body = Details, description = "joined"), (status = 200, body = Details, description = "already a member"),
        (status = 400, description = "unknown, inactive or paid tier"), (status = 401)),
    security(("token" = []), ("jwt" = [])))]
pub async fn subscribe_to_public_tier(
    user: AuthUser,
    ctx: web::Data<AppContext>,
    body: web::Json<TierBody>,
) -> Result<HttpResponse, ApiError> {
    let tier_id = int_field(&body.tier_id, "tierID")?;
    let uid = user.user_id;
    let joined = ctx
        .db
        .tx(move |c| {
            let tier = store::tier(c, tier_id)?
                .ok_or_else(|| ApiError::field("tierID", "Tier not found."))?;
            if tier.price != 0 {
                return Err(ApiError::field("tierID", "This tier is not free."));
            }
            if !tier.is_active {
                return Err(ApiError::field(
                    "tierID",
                    "This tier accepts no new members.",
                ));
            }
            let joined = store::join_free_tier(c, uid, tier.id, &tier.currency)?;
            if joined {
                on_membership_started(c, uid, tier.creator_id)?;
            }
            Ok(joined)
        })
        .await?;
    let status = if joined {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(HttpResponse::build(status).json(CREATED))
}

/// A fan's membership started: the fan follows the creator.
fn on_membership_started(
    c: &mut diesel::PgConnection,
    user_id: i64,
    creator_id: i64,
) -> Result<(), ApiError> {
    Ok(super::sync::follow_creator(c, user_id, creator_id)?)
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct EndBody {
    /// Tier id.
    #[schema(value_type = i64)]
    tier: Option<Value>,
    /// 1 = at the end of the paid cycle, 0 = now (access ends now).
    #[schema(value_type = i64)]
    end_type: Option<Value>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct EndStatus {
    /// `Success` or `Failed`.
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'static str>,
}

/// End the caller's membership of a tier.
#[utoipa::path(post, path = "/subscriptions/end/", tag = "billing", request_body = EndBody,
    params(("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = EndStatus), (status = 400), (status = 401), (status = 502)),
    security(("token" = []), ("jwt" = [])))]
pub async fn end(
    req: HttpRequest,
    user: AuthUser,
    ctx: web::Data<AppContext>,
    body: web::Json<EndBody>,
) -> Result<HttpResponse, ApiError> {
    let tier_id = int_field(&body.tier, "tier")?;
    let end_type = EndType::parse(int_field(&body.end_type, "end_type")?).map_err(api_error)?;
    let fp = json!({ "tier": tier_id, "end_type": end_type == EndType::CycleEnd });
    idempotency::run(&req, &ctx.db, user.user_id, &fp, || async {
        let uid = user.user_id;
        let m = ctx
            .db
            .run(move |c| Ok(store::lock_endable_membership(c, uid, tier_id)?))
            .await?;
        let failed = (
            StatusCode::OK,
            json!(EndStatus {
                status: "Failed",
                message: Some("Subscription does not exist")
            }),
        );
        let Some(m) = m else { return Ok(failed) };
        let now = Utc::now();
        if m.kind == "free" {
            ctx.db
                .tx(move |c| Ok(store::cancel_membership(c, m.id, false, now)?))
                .await?;
            return Ok((
                StatusCode::OK,
                json!(EndStatus {
                    status: "Success",
                    message: None
                }),
            ));
        }
        let Some(sid) = m.razorpay_subscription_id.clone() else {
            return Ok(failed);
        };
        let at = if end_type == EndType::CycleEnd {
            CancelAt::CycleEnd
        } else {
            CancelAt::Now
        };
        let s = ctx
            .payments
            .client()
            .cancel_subscription(&sid, at)
            .await
            .map_err(gateway)?;
        let snap = super::sync::to_subscription(&s, Utc::now());
        let notes = super::sync::notes_map(&s.notes);
        let at_end = end_type == EndType::CycleEnd;
        ctx.db
            .tx(move |c| {
                let a = oasis_billing::apply::apply_subscription(
                    &mut oasis_db::billing::PgBilling(c),
                    &snap,
                    &notes,
                    Utc::now(),
                )?;
                super::sync::with_follow(a, c)?;
                store::cancel_membership(c, m.id, at_end, now)?;
                Ok(())
            })
            .await?;
        Ok((
            StatusCode::OK,
            json!(EndStatus {
                status: "Success",
                message: None
            }),
        ))
    })
    .await
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct GuestBody {
    email: Option<String>,
    phone: Option<String>,
    password: Option<String>,
    /// `recurring`, `oneTime` or `commission`.
    payment_type: Option<String>,
    #[serde(rename = "tierID")]
    #[schema(value_type = Option<i64>)]
    tier_id: Option<Value>,
    currency: Option<String>,
    #[serde(rename = "commissionID")]
    #[schema(value_type = Option<i64>)]
    commission_id: Option<Value>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct GuestStarted {
    email: String,
    phone: String,
    username: String,
    #[serde(rename = "SubscriptionID")]
    subscription_id: String,
    public_key: String,
    /// API key of the (unverified) account: `Authorization: Token <key>`.
    key: String,
}

fn hasher(cost: u32) -> std::sync::Arc<oasis_identity::password::Bcrypt> {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};
    static HASHERS: Mutex<Option<HashMap<u32, Arc<oasis_identity::password::Bcrypt>>>> =
        Mutex::new(None);
    let mut g = HASHERS.lock().unwrap_or_else(|e| e.into_inner());
    g.get_or_insert_with(HashMap::new)
        .entry(cost)
        .or_insert_with(|| {
            Arc::new(
                oasis_identity::password::Bcrypt::new(cost)
                    .expect("bcrypt cost validated by config"),
            )
        })
        .clone()
}

/// Guest checkout: creates an unverified account (or, for an existing email, signs in with its
/// correct password) and starts the payment.
#[utoipa::path(post, path = "/subscriptions/get_ghost_user/", tag = "billing", request_body = GuestBody,
    params(("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = GuestStarted), (status = 400, description = "invalid field, or wrong password for an existing email"),
        (status = 502)))]
pub async fn get_ghost_user(
    req: HttpRequest,
    ctx: web::Data<AppContext>,
    body: web::Json<GuestBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let email = str_field(&body.email, "email")?.to_ascii_lowercase();
    if email.len() > 254
        || !email.contains('@')
        || email.starts_with('@')
        || email.ends_with('@')
        || email.contains(' ')
    {
        return Err(ApiError::field("email", "Enter a valid email address."));
    }
    let password = body.password.clone().unwrap_or_default();
    if password.is_empty() {
        return Err(ApiError::field("password", "This field is required."));
    }
    let phone = body.phone.clone().unwrap_or_default().trim().to_owned();
    let valid_phone = |p: &str| {
        let digits = p.chars().filter(char::is_ascii_digit).count();
        (6..=15).contains(&digits)
            && p.len() <= 32
            && p.chars().enumerate().all(|(i, c)| {
                c.is_ascii_digit() || matches!(c, ' ' | '-' | '(' | ')') || (c == '+' && i == 0)
            })
    };
    if !phone.is_empty() && !valid_phone(&phone) {
        return Err(ApiError::field("phone", "Enter a valid phone number."));
    }
    let ptype = GuestPaymentType::parse(str_field(&body.payment_type, "payment_type")?)
        .map_err(api_error)?;
    let tier_id = match ptype {
        GuestPaymentType::Recurring | GuestPaymentType::OneTime => {
            Some(int_field(&body.tier_id, "tierID")?)
        }
        GuestPaymentType::Commission => {
            int_field(&body.commission_id, "commissionID")?;
            return Err(ApiError::field(
                "payment_type",
                "Commission payments are not available yet.",
            ));
        }
    };
    let fp = json!({ "email": email, "type": body.payment_type, "tierID": tier_id, "currency": body.currency });
    idempotency::run(&req, &ctx.db, 0, &fp, || async {
        // Validate the target before creating any account.
        if let Some(t) = tier_id {
            paid_tier(&ctx, t, 0).await?;
        }
        let client = crate::routes::identity::client_addr(&req);
        let (user_id, username) = guest_account(&ctx, &email, &phone, &password, client).await?;
        let key = oasis_identity::secrets::new_api_key();
        let k = key.clone();
        ctx.db
            .tx(move |c| Ok(oasis_db::identity::insert_token(c, user_id, &k)?))
            .await?;
        let tier_id = tier_id.unwrap_or_default();
        let id = match ptype {
            GuestPaymentType::Recurring => start_recurring(&ctx, user_id, tier_id).await?,
            _ => start_onetime(&ctx, user_id, &username, tier_id, body.currency.as_deref()).await?,
        };
        Ok((
            StatusCode::OK,
            json!(GuestStarted {
                email: email.clone(),
                phone: phone.clone(),
                username,
                subscription_id: id,
                public_key: ctx.payments.key_id().to_owned(),
                key,
            }),
        ))
    })
    .await
}

/// The guest's account: an existing one only with its correct password (wrong guesses are
/// throttled exactly like failed logins — same scopes, same limit), else a new unverified `guest`
/// account whose password passes the same validators as registration.
async fn guest_account(
    ctx: &AppContext,
    email: &str,
    phone: &str,
    password: &str,
    client: String,
) -> Result<(i64, String), ApiError> {
    use oasis_identity::service::{self, ThrottlePolicy};
    use oasis_identity::IdentityRepo;
    let h = hasher(ctx.settings.bcrypt_cost);
    let policy = ThrottlePolicy {
        max_failures: ctx.settings.login_max_failures,
        window: chrono::Duration::seconds(ctx.settings.login_window_secs),
    };
    let e = email.to_owned();
    let (existing, scopes) = ctx
        .db
        .run(move |c| {
            let mut repo = oasis_db::identity::PgIdentity(c);
            let user = repo.user_by_email(&e)?;
            let scopes = service::login_scopes(&e, user.as_ref(), &client);
            if user.is_some() {
                service::check_throttle(&mut repo, &scopes, policy, Utc::now())?;
            }
            Ok((user, scopes))
        })
        .await?;
    if let Some(u) = existing {
        let (h, pw, stored) = (h.clone(), password.to_owned(), u.password_hash.clone());
        let ok = web::block(move || {
            oasis_identity::password::check_password(h.as_ref(), stored.as_deref(), &pw)
        })
        .await?;
        if !ok {
            ctx.db
                .run(move |c| {
                    Ok(oasis_db::identity::PgIdentity(c).record_failure(&scopes, Utc::now())?)
                })
                .await?;
            return Err(ApiError::field(
                "password",
                "An account with this email exists; enter its password.",
            ));
        }
        return Ok((u.id, u.username));
    }
    let problems = oasis_identity::password::validate(
        password,
        oasis_identity::password::UserAttributes {
            username: email.split('@').next().unwrap_or_default(),
            email,
            first_name: "",
            last_name: "",
        },
    );
    if !problems.is_empty() {
        let mut errs = oasis_kernel::FieldErrors::new();
        for p in problems {
            errs.add("password", p);
        }
        return Err(ApiError::Validation(errs));
    }
    let pw = password.to_owned();
    let hash = web::block(move || {
        use oasis_identity::password::PasswordHasher;
        h.hash(&pw)
    })
    .await?
    .map_err(ApiError::internal)?;
    let (e, ph) = (email.to_owned(), phone.to_owned());
    let created = ctx
        .db
        .tx(move |c| {
            let phone = (!ph.is_empty()).then_some(ph.as_str());
            Ok(store::create_guest_user(c, &e, phone, &hash)?)
        })
        .await?;
    match created {
        Some(u) => Ok(u),
        None => Err(ApiError::field(
            "email",
            "An account with this email was just created; retry.",
        )),
    }
}

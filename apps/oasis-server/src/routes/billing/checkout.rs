//! Checkout flows: recurring memberships, one-time tier purchases, cheers, the free tier,
//! ending a membership and guest checkout.
use super::sync::{confirm_subscription_payment, enqueue_sync, sync_order, sync_payload};
use super::{api_error, gateway, int_field, str_field};
use crate::auth::AuthUser;
use crate::context::AppContext;
use crate::error::ApiError;
use crate::idempotency;
use crate::routes::identity::{self, IdentityState, LoginRefusal};
use crate::web;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use chrono::Utc;
use oasis_billing::checkout::{
    check_razorpay_id, validate_cheer, EndType, GuestPaymentType, RazorpayIdKind,
};
use oasis_billing::integrity::{self, Asked, VoidReason};
use oasis_billing::ports::{NewOrder, OrderKind};
use oasis_billing::BillingError;
use oasis_db::billing::{self as store, Reservation, TierInfo};
use oasis_db::identity::PgIdentity;
use oasis_identity::service;
use oasis_identity::{IdentityError, IdentityRepo};
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
    /// A pending checkout made before the tier changed was voided (its cancellation at
    /// Razorpay queued): make a new one.
    Replaced,
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
                            Some(sid) if m.status == "created" => {
                                let asked = Asked {
                                    amount: m.amount,
                                    currency: &m.currency,
                                };
                                if integrity::reusable(&asked, &t.to_ref()) {
                                    Step::Done(sid)
                                } else {
                                    // Made at another price: cancel it at Razorpay (best effort,
                                    // recorded; a payment that still comes is refunded) and make
                                    // a new one.
                                    store::void_membership(
                                        c,
                                        m.id,
                                        VoidReason::Replaced,
                                        Utc::now(),
                                    )?;
                                    store::request_subscription_cancel(
                                        c,
                                        m.id,
                                        &sid,
                                        VoidReason::Replaced,
                                    )?;
                                    Step::Replaced
                                }
                            }
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
            Step::Replaced => {
                tracing::info!(
                    user = user_id,
                    tier = tier_id,
                    "billing: a stale pending checkout was replaced"
                );
                ctx.jobs.wake();
                continue;
            }
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
    idempotency::run(&req, &ctx, user.user_id, &fp, || async {
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
    check_razorpay_id("razorpay_payment_id", &payment_id, RazorpayIdKind::Payment)
        .map_err(api_error)?;
    let secret = ctx.payments.key_secret();
    let target = match (
        body.razorpay_subscription_id
            .as_deref()
            .filter(|s| !s.is_empty()),
        body.razorpay_order_id.as_deref().filter(|s| !s.is_empty()),
    ) {
        (Some(sub), _) => {
            check_razorpay_id(
                "razorpay_subscription_id",
                sub,
                RazorpayIdKind::Subscription,
            )
            .map_err(api_error)?;
            if !razorpay::verify_subscription_signature(&payment_id, sub, &signature, secret) {
                return Err(api_error(BillingError::BadSignature));
            }
            Target::Subscription(sub.to_owned())
        }
        (None, Some(order)) => {
            check_razorpay_id("razorpay_order_id", order, RazorpayIdKind::Order)
                .map_err(api_error)?;
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
    idempotency::run(&req, &ctx, user.user_id, &fp, || async {
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
            let inline =
                confirm_subscription_payment(&ctx.db, &ctx.payments, sub, payment_id).await;
            if let Err(e) = inline {
                tracing::warn!(subscription = %sub, error = %e, "confirmation deferred to a sync job");
                let payload = sync_payload(Some(sub), Some(payment_id), None);
                ctx.db.tx(move |c| enqueue_sync(c, &payload)).await?;
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
            }
        }
    }
    // Applying may have queued work (a refund, a cancellation, notifications).
    ctx.jobs.wake();
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
    idempotency::run(&req, &ctx, user.user_id, &fp, || async {
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
    idempotency::run(&req, &ctx, user.user_id, &fp, || async {
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

/// Confirm a cheer's Checkout payment (order signature verified first). The first accepted
/// call fixes the cheer's public `name` and `message`; later calls answer the same and change
/// nothing.
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
    let (order_field, order_id) = match body.razorpay_order_id.clone().filter(|s| !s.is_empty()) {
        Some(o) => ("razorpay_order_id", Some(o)),
        // The seed's field for the order id.
        None => (
            "razorpay_subscription_id",
            body.razorpay_subscription_id.clone(),
        ),
    };
    let order_id = str_field(&order_id, "razorpay_order_id")?.to_owned();
    check_razorpay_id("razorpay_payment_id", &payment_id, RazorpayIdKind::Payment)
        .map_err(api_error)?;
    check_razorpay_id(order_field, &order_id, RazorpayIdKind::Order).map_err(api_error)?;
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
    idempotency::run(&req, &ctx, user.user_id, &fp, || async {
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
                        // The first accepted callback fixes the public name and message; a
                        // replayed signature cannot rewrite them later.
                        let n = name.as_deref().map(str::trim).filter(|s| !s.is_empty());
                        let m = message.as_deref().filter(|s| !s.is_empty());
                        store::confirm_order_message(c, o.id, n, m)?;
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
    idempotency::run(&req, &ctx, user.user_id, &fp, || async {
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

/// Guest checkout: for an existing email, signs in exactly like `/rest-auth/login/` (same
/// throttle, same refusals, an unverified email included); for a new one, creates an unverified
/// `guest` account (counted against the per-address registration limit). Then starts the
/// payment. The password's strength is checked first, alike for every email.
#[utoipa::path(post, path = "/subscriptions/get_ghost_user/", tag = "billing", request_body = GuestBody,
    params(("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = GuestStarted),
        (status = 400, description = "invalid field (a weak password for any email), or login's refusal: `Unable to log in with provided credentials.` / `E-mail is not verified.`"),
        (status = 429, description = "too many failed logins, or new accounts from this address; see Retry-After"),
        (status = 502)))]
pub async fn get_ghost_user(
    req: HttpRequest,
    ctx: web::Data<AppContext>,
    st: web::Data<IdentityState>,
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
            int_field(&body.tier_id, "tierID")?
        }
        GuestPaymentType::Commission => {
            int_field(&body.commission_id, "commissionID")?;
            return Err(ApiError::field(
                "payment_type",
                "Commission payments are not available yet.",
            ));
        }
    };
    // The password's strength, judged on what the caller sent only (never on whether or whose
    // account the email names): a weak password gets the same field errors for every email,
    // before any account is looked up.
    guest_password_strength(&email, &password)?;
    // The password is not part of the fingerprint (a stored hash of it could be cracked
    // offline); the reply is bound to the account the password opened instead.
    let fp = json!({ "email": email, "phone": phone, "type": body.payment_type,
                     "tierID": tier_id, "currency": body.currency });
    let claim = idempotency::Claim::from_request(&req, &fp)?;
    // Validate the target before touching any account.
    paid_tier(&ctx, tier_id, 0).await?;
    let guest = guest_account(&ctx, &st, &req, &email, &phone, &password, claim.as_ref()).await?;
    let (user_id, username, created) = match guest {
        Guest::Replay { user_id, stored } => return replay_guest(&ctx, user_id, stored).await,
        Guest::Run {
            user_id,
            username,
            created,
        } => (user_id, username, created),
    };
    let started = async {
        let id = match ptype {
            GuestPaymentType::Recurring => start_recurring(&ctx, user_id, tier_id).await?,
            _ => start_onetime(&ctx, user_id, &username, tier_id, body.currency.as_deref()).await?,
        };
        Ok::<_, ApiError>(json!(GuestStarted {
            email: email.clone(),
            phone: phone.clone(),
            username: username.clone(),
            subscription_id: id,
            public_key: ctx.payments.key_id().to_owned(),
            key: String::new(),
        }))
    }
    .await;
    let reply = match started {
        Ok(reply) => reply,
        Err(e) => {
            if let Some(c) = &claim {
                idempotency::finish(&ctx.db, user_id, c, None).await;
            }
            if created {
                // Nobody holds a key to the account this request made: remove it, so that a
                // retry creates it afresh instead of meeting an unverified account.
                let dropped = ctx
                    .db
                    .tx(move |c| Ok(store::delete_unused_guest_user(c, user_id)?))
                    .await;
                if let Err(d) = dropped {
                    tracing::warn!(user = user_id, error = %d, "could not remove an unused guest account");
                }
            }
            return Err(e);
        }
    };
    // Stored without the API key: a replay mints a new one for the authenticated caller.
    let stored = without_key(reply);
    if let Some(c) = &claim {
        idempotency::finish(&ctx.db, user_id, c, Some((StatusCode::OK, &stored))).await;
    }
    let key = ctx
        .db
        .tx(move |c| Ok(service::issue_api_key(&mut PgIdentity(c), user_id)?))
        .await?;
    Ok(HttpResponse::Ok().json(with_key(stored, key)))
}

fn without_key(mut reply: Value) -> Value {
    if let Some(o) = reply.as_object_mut() {
        o.remove("key");
    }
    reply
}

fn with_key(mut reply: Value, key: String) -> Value {
    if let Some(o) = reply.as_object_mut() {
        o.insert("key".to_owned(), Value::String(key));
    }
    reply
}

/// Registration's password validators, over the attributes the caller sent.
fn guest_password_strength(email: &str, password: &str) -> Result<(), ApiError> {
    let problems = oasis_identity::password::validate(
        password,
        oasis_identity::password::UserAttributes {
            username: email.split('@').next().unwrap_or_default(),
            email,
            first_name: "",
            last_name: "",
        },
    );
    if problems.is_empty() {
        return Ok(());
    }
    let mut errs = oasis_kernel::FieldErrors::new();
    for p in problems {
        errs.add("password", p);
    }
    Err(ApiError::Validation(errs))
}

/// The account a guest checkout acts for, known only once its password was checked (or it was
/// just created): only then is the Idempotency-Key looked at, under that account's id.
enum Guest {
    /// Run the checkout; the Idempotency-Key (if any) is claimed for `user_id`.
    Run {
        user_id: i64,
        username: String,
        /// Made by this request.
        created: bool,
    },
    /// The authenticated account already holds a reply for this Idempotency-Key.
    Replay {
        user_id: i64,
        stored: idempotency::Stored,
    },
}

/// Replays a stored guest reply with a new API key for its (just authenticated) account: the
/// stored reply holds no credential.
async fn replay_guest(
    ctx: &AppContext,
    user_id: i64,
    stored: idempotency::Stored,
) -> Result<HttpResponse, ApiError> {
    let reply: Value = serde_json::from_slice(&stored.body).map_err(ApiError::internal)?;
    let key = ctx
        .db
        .tx(move |c| Ok(service::issue_api_key(&mut PgIdentity(c), user_id)?))
        .await?;
    let body = serde_json::to_vec(&with_key(reply, key)).map_err(ApiError::internal)?;
    Ok(idempotency::replayed(stored.status, body))
}

/// The guest's account: a new email gets a new unverified `guest` account; an existing one is
/// signed in to with login's check (wrong password → login's refusal; unverified email →
/// login's refusal, unless this very account holds a reply for the Idempotency-Key, i.e. the
/// request that created it is being retried).
async fn guest_account(
    ctx: &AppContext,
    st: &IdentityState,
    req: &HttpRequest,
    email: &str,
    phone: &str,
    password: &str,
    claim: Option<&idempotency::Claim>,
) -> Result<Guest, ApiError> {
    let e = email.to_owned();
    let existing = ctx
        .db
        .run(move |c| Ok(PgIdentity(c).user_by_email(&e)?))
        .await?;
    if existing.is_none() {
        if let Some(g) = create_guest(ctx, st, req, email, phone, password, claim).await? {
            return Ok(g);
        }
        // Another request created this email meanwhile: sign in to it like any existing one.
    }
    let checked =
        identity::check_email_password(ctx, st, req, email.to_owned(), password.to_owned()).await?;
    let (user_id, username, verified) = match checked {
        Ok(u) => (u.id, u.username, true),
        Err(LoginRefusal::NotVerified) => {
            let e = email.to_owned();
            let u = ctx
                .db
                .run(move |c| Ok(PgIdentity(c).user_by_email(&e)?))
                .await?
                .ok_or(IdentityError::EmailNotVerified)?;
            (u.id, u.username, false)
        }
        Err(refusal) => return Err(refusal.into()),
    };
    let Some(claim) = claim.cloned() else {
        return if verified {
            Ok(Guest::Run {
                user_id,
                username,
                created: false,
            })
        } else {
            Err(IdentityError::EmailNotVerified.into())
        };
    };
    let ttl = ctx.settings.idempotency_ttl_secs;
    let found = ctx
        .db
        .run(move |c| {
            if verified {
                idempotency::begin(c, user_id, &claim, ttl)
            } else {
                idempotency::find(c, user_id, &claim, ttl)
            }
        })
        .await?;
    match found {
        Some(stored) => Ok(Guest::Replay { user_id, stored }),
        None if verified => Ok(Guest::Run {
            user_id,
            username,
            created: false,
        }),
        None => Err(IdentityError::EmailNotVerified.into()),
    }
}

/// A new unverified `guest` account, throttled like a login for an unknown email and counted
/// against the per-address registration limit; its Idempotency-Key (if any) is claimed in the
/// creating transaction. `None` when another request created the email first.
async fn create_guest(
    ctx: &AppContext,
    st: &IdentityState,
    req: &HttpRequest,
    email: &str,
    phone: &str,
    password: &str,
    claim: Option<&idempotency::Claim>,
) -> Result<Option<Guest>, ApiError> {
    let client = identity::client_addr(req);
    let scopes = service::login_scopes(email, None, &client);
    let per_hour = ctx.settings.registrations_per_hour;
    let policy = st.policy;
    let cl = client.clone();
    ctx.db
        .run(move |c| {
            service::check_throttle(&mut PgIdentity(c), &scopes, policy, Utc::now())?;
            identity::check_registration_limit(c, per_hour, &cl)?;
            Ok(())
        })
        .await?;
    let hash = st.hash(password.to_owned()).await?;
    let (e, ph) = (email.to_owned(), phone.to_owned());
    let (claim, ttl) = (claim.cloned(), ctx.settings.idempotency_ttl_secs);
    ctx.db
        .tx(move |c| {
            let phone = (!ph.is_empty()).then_some(ph.as_str());
            let Some((user_id, username)) = store::create_guest_user(c, &e, phone, &hash)? else {
                return Ok(None);
            };
            identity::reserve_registration(c, per_hour, &client)?;
            if let Some(claim) = &claim {
                if let Some(stored) = idempotency::begin(c, user_id, claim, ttl)? {
                    // Unreachable for a new account id; answered correctly all the same.
                    return Ok(Some(Guest::Replay { user_id, stored }));
                }
            }
            Ok(Some(Guest::Run {
                user_id,
                username,
                created: true,
            }))
        })
        .await
}
